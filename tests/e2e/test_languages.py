"""Issue 13's languages end to end: a Spanish-locale student's alert, `/conferences` reply and App Home are
Spanish; an English-locale classmate's are the same English as ever; a channel set to Portuguese gets its
alert in Portuguese. Sandbox Canvas + Slack on loopback, `confbot run` as a real process."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.blockkit import button_urls
from tests.e2e.test_channels import channel_posts
from tests.e2e.test_home import published, send_event
from tests.support import BotProcess, CanvasWorld, SlackWorld, slash, wait_for

pytestmark = pytest.mark.e2e


def _shown(message: dict[str, Any]) -> str:
    """What a reader sees of a message: its notification text and its blocks, as one string."""
    return message.get("text", "") + json.dumps(message.get("blocks"), ensure_ascii=False)


def test_a_spanish_students_alert_reply_and_home_are_spanish_an_english_ones_unchanged(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    eva, bob = canvas.user("Eva Gómez"), canvas.user("Bob Babbage")
    bio = canvas.course("Biology 101")
    for student in (eva, bob):
        canvas.enroll(bio["id"], student["id"])
    slack.user("UEVA", tz="Europe/Madrid", locale="es-ES")
    slack.user("UBOB", locale="en-US")
    bot.start()
    bot.cli("link", "--slack-user", "UEVA", "--team", slack.team_id, "--canvas-token", eva["token"])
    bot.cli("link", "--slack-user", "UBOB", "--team", slack.team_id, "--canvas-token", bob["token"])
    lecture = canvas.conference(bio["id"], "Mitosis <b> & más", [eva["id"], bob["id"]])
    canvas.start(lecture["id"])

    wait_for(
        lambda: len(slack.dms_to("UEVA")) == 1 and len(slack.dms_to("UBOB")) == 1,
        timeout=15,
        what="one alert DM each",
    )
    join = f"{canvas.canvas.url}/courses/{bio['id']}/conferences/{lecture['id']}/join"
    spanish, english = slack.dms_to("UEVA")[0], slack.dms_to("UBOB")[0]
    assert spanish["text"].startswith("Mitosis &lt;b&gt; &amp; más está en vivo en Biology 101 — únete: ")
    assert "🔴 En vivo ahora: Mitosis <b> & más" in _shown(spanish)
    assert "Comenzó <!date^" in _shown(spanish) and "Unirse" in _shown(spanish)
    assert re.search(r"<!date\^\d+\^{time}\|\d\d:\d\d CES?T>", _shown(spanish)), "fallback time in her zone"
    assert join in button_urls(spanish)
    assert english["text"].startswith("Mitosis &lt;b&gt; &amp; más is live in Biology 101 — join: ")
    assert "🔴 Live now: Mitosis <b> & más" in _shown(english) and '"Join"' in _shown(english)
    assert "Started <!date^" in _shown(english)
    assert not any(word in _shown(english) for word in ("vivo", "Unirse", "Comenzó"))
    assert any(c["args"].get("include_locale") for c in slack.calls("users.info")), "locale asked for"

    reply = slash(bot, slack, "UEVA", "", channel_id="DEVA")
    assert "En vivo ahora" in _shown(reply) and "Mitosis &lt;b&gt; &amp; más" in _shown(reply)
    assert "Unirse" in _shown(reply)
    help_reply = slash(bot, slack, "UEVA", "frobnicate", channel_id="DEVA")
    assert "No entendí `frobnicate`" in help_reply["text"] and "*Lo que puedo hacer*" in _shown(help_reply)
    english_reply = slash(bot, slack, "UBOB", "", channel_id="DBOB")
    assert "Live now" in _shown(english_reply) and "Join" in _shown(english_reply)

    send_event(bot, slack, {"type": "app_home_opened", "user": "UEVA", "tab": "home", "event_ts": "1.1"})
    view = json.dumps(json.loads(published(slack, 1)), ensure_ascii=False)
    assert "Conferencias de Canvas" in view and "Vinculado como *Eva Gómez*" in view
    assert "Desactivar alertas" in view and "Horas de silencio" in view
    send_event(bot, slack, {"type": "app_home_opened", "user": "UBOB", "tab": "home", "event_ts": "1.2"})
    view = json.dumps(json.loads(published(slack, 2)), ensure_ascii=False)
    assert "Canvas conferences" in view and "Linked as *Bob Babbage*" in view and "Turn alerts off" in view

    canvas.end(lecture["id"])
    wait_for(
        lambda: (
            "Terminada: Mitosis" in _shown(slack.dms_to("UEVA")[0])
            and "Ended: Mitosis" in _shown(slack.dms_to("UBOB")[0])
        ),
        timeout=15,
        what="each alert edited to ended in its reader's language",
    )
    assert "duró" in _shown(slack.dms_to("UEVA")[0]) and "lasted" in _shown(slack.dms_to("UBOB")[0])


def test_a_channel_set_to_portuguese_gets_its_alerts_in_portuguese(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ana = canvas.user("Ana Souza")
    bio = canvas.course("Biologia")
    canvas.enroll(bio["id"], ana["id"], "TeacherEnrollment")
    slack.user("UANA", locale="en-US")
    slack.slack.post(
        "/_sandbox/channels",
        {"id": "CBIO", "name": "bio", "team_id": slack.team_id, "creator": "UANA", "members": ["UANA"]},
    )
    bot.start()
    bot.cli("link", "--slack-user", "UANA", "--team", slack.team_id, "--canvas-token", ana["token"])

    assert "are in English" in slash(bot, slack, "UANA", "language", channel_id="CBIO")["text"]
    set_reply = slash(bot, slack, "UANA", "language pt-BR", channel_id="CBIO")
    assert "are now in Português (Brasil)" in set_reply["text"], "the reply is in the caller's own language"
    assert (
        "now gets an alert" in slash(bot, slack, "UANA", f"subscribe {bio['id']}", channel_id="CBIO")["text"]
    )
    canvas.start(canvas.conference(bio["id"], "Aula 1", [ana["id"]])["id"])

    posted = wait_for(lambda: channel_posts(slack, "CBIO"), timeout=15, what="the channel alert")
    assert posted[0]["text"].startswith("Aula 1 está ao vivo em Biologia")
    assert "Participar" in _shown(posted[0])
    wait_for(lambda: slack.dms_to("UANA"), timeout=15, what="her own DM")
    assert slack.dms_to("UANA")[0]["text"].startswith("Aula 1 is live in Biologia"), "her DM is hers: English"
