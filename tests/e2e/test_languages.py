"""Issue 13's languages end to end: a Spanish-locale student's alert, `/conferences` reply and App Home are
Spanish; an English-locale classmate's are the same English as ever; a channel set to Portuguese gets its
alert in Portuguese; reminders, the host nudge, `/conferences remind` and a restart's "Live again" alert
are in each reader's language. Sandbox Canvas + Slack on loopback, `confbot run` as a real process."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
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


def _headers(messages: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "header"]


def test_reminders_nudges_remind_and_live_again_are_in_each_readers_language(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    eva, ana = canvas.user("Eva Gómez"), canvas.user("Ana Souza")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], eva["id"])
    canvas.enroll(bio["id"], ana["id"], "TeacherEnrollment")
    slack.user("UEVA", tz="Europe/Madrid", locale="es-ES")
    slack.user("UANA", tz="America/Sao_Paulo", locale="pt-BR")
    # Scan every second; a one-minute lead and nudge, so a start 45 s ahead is due a reminder at once and
    # one 65 s ago a nudge.
    bot.env.update(
        {"SESSION_SCAN_INTERVAL_SECONDS": "1", "REMINDER_LEAD_MINUTES": "1", "HOST_NUDGE_MINUTES": "1"}
    )
    bot.start()
    bot.cli("link", "--slack-user", "UEVA", "--team", slack.team_id, "--canvas-token", eva["token"])
    bot.cli("link", "--slack-user", "UANA", "--team", slack.team_id, "--canvas-token", ana["token"])
    now = datetime.now(UTC)

    def scheduled(title: str, start_at: datetime) -> dict[str, Any]:
        return canvas.canvas.post(
            "/_sandbox/conferences",
            {
                "context_type": "Course",
                "context_id": bio["id"],
                "title": title,
                "user_ids": [eva["id"], ana["id"]],
                "start_at": start_at.isoformat(),
            },
        )

    seminar = scheduled("Seminario <b>", now + timedelta(seconds=45))
    scheduled("Aula 3", now - timedelta(seconds=65))
    wait_for(
        lambda: len(slack.dms_to("UEVA")) == 1 and len(slack.dms_to("UANA")) == 2,
        timeout=20,
        what="Eva's reminder, Ana's reminder and nudge",
    )
    assert _headers(slack.dms_to("UEVA")) == ["⏰ Empieza en 1 min: Seminario <b>"]
    (reminder,) = slack.dms_to("UEVA")
    assert reminder["text"].startswith("Seminario &lt;b&gt; en Biology 101 empieza en 1 min (<!date^")
    assert re.search(r"\|\d\d:\d\d CES?T>\)$", reminder["text"]), "the fallback time in her zone"
    assert "Unirse" in _shown(reminder)
    assert sorted(_headers(slack.dms_to("UANA"))) == [
        "Ainda não começou: Aula 3",
        "⏰ Começa em 1 min: Seminario <b>",
    ]
    (nudge,) = [m for m in slack.dms_to("UANA") if "Aula 3" in m["text"]]
    assert "2 pessoas convidadas" in nudge["text"] and '"Iniciar"' in _shown(nudge)

    reply = slash(bot, slack, "UEVA", "remind 15", channel_id="DEVA")
    assert reply["text"] == "Te avisaré 15 min antes de que empiece cada conferencia programada."
    refused = slash(bot, slack, "UEVA", "remind ten", channel_id="DEVA")
    assert refused["text"].startswith("`ten` no es una antelación válida para el recordatorio")
    assert "un mensaje directo esos minutos antes" in _shown(refused), "the help line too"
    send_event(bot, slack, {"type": "app_home_opened", "user": "UEVA", "tab": "home", "event_ts": "1.1"})
    view = json.dumps(json.loads(published(slack, 1)), ensure_ascii=False)
    assert "Recordatorios: *15 min* antes de un inicio programado" in view

    canvas.start(seminar["id"])
    # Both see the first session live and then ended before the restart: a session that starts and ends
    # between two of a reader's polls is one she never saw, and her next alert is then not "live again".
    wait_for(
        lambda: len(slack.dms_to("UEVA")) == 2 and len(slack.dms_to("UANA")) == 3,
        timeout=15,
        what="Eva's and Ana's alerts",
    )
    canvas.end(seminar["id"])
    wait_for(
        lambda: (
            "Terminada" in _shown(slack.dms_to("UEVA")[1]) and "Encerrada" in _shown(slack.dms_to("UANA")[2])
        ),
        timeout=15,
        what="the end edits",
    )
    canvas.start(seminar["id"])  # restarted the same day: a new session, its own alert
    wait_for(lambda: len(slack.dms_to("UEVA")) == 3, timeout=15, what="the restart's alert")
    again = slack.dms_to("UEVA")[2]
    assert _headers([again]) == ["🔴 En vivo de nuevo: Seminario <b>"]
    assert again["text"].startswith("Seminario &lt;b&gt; está en vivo de nuevo en Biology 101 — únete: ")
    # Ana teaches the course: besides her reminder, nudge and alerts she gets the first session's
    # attendance report, so her restart alert is waited for by what it says, not by a count of DMs.
    wait_for(
        lambda: "🔴 Ao vivo de novo: Seminario <b>" in _headers(slack.dms_to("UANA")),
        timeout=15,
        what="Ana's restart alert, in Portuguese",
    )
