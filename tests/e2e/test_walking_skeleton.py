"""Issue 2's path end to end: sandbox Canvas + Slack on loopback, `confbot run` as a real process."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bot.sandbox.slack import signed_slash_command
from tests.blockkit import button_urls, mrkdwn_texts
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, requests_by, wait_for

pytestmark = pytest.mark.e2e

POLL = 1.0  # POLL_INTERVAL_SECONDS of the bot fixture


def _wait_for_polls(canvas: CanvasWorld, tokens: list[str], count: int = 2) -> None:
    """Wait until every token has been polled `count` more times: proof the bot looked again."""
    before = {t: requests_by(canvas, t) for t in tokens}
    wait_for(
        lambda: all(requests_by(canvas, t) >= before[t] + count for t in tokens),
        timeout=10 * POLL,
        what="the bot to poll again",
    )


@pytest.fixture
def classroom(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> dict[str, Any]:
    """Two linked students in Biology; only Ada is also in Chemistry."""
    ada, bob = canvas.user("Ada Lovelace"), canvas.user("Bob Babbage")
    bio, chem = canvas.course("Biology 101"), canvas.course("Chemistry 7")
    for user in (ada, bob):
        canvas.enroll(bio["id"], user["id"])
    canvas.enroll(chem["id"], ada["id"])
    slack.user("UADA")
    slack.user("UBOB")
    bot.start()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    bot.cli("link", "--slack-user", "UBOB", "--canvas-token", bob["token"])  # team from auth.test
    return {"ada": ada, "bob": bob, "bio": bio, "chem": chem}


def test_conference_start_reaches_each_participant_once_and_end_edits_it(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess, classroom: dict[str, Any]
) -> None:
    ada, bob = classroom["ada"], classroom["bob"]
    bio, chem = classroom["bio"], classroom["chem"]
    lecture = canvas.conference(bio["id"], "<!channel> & <b>", [ada["id"], bob["id"]])
    lab = canvas.conference(chem["id"], "Titration lab", [ada["id"]])
    _wait_for_polls(canvas, [ada["token"], bob["token"]], count=1)

    canvas.start(lecture["id"])
    canvas.start(lab["id"])
    wait_for(
        lambda: len(slack.dms_to("UADA")) == 2 and len(slack.dms_to("UBOB")) == 1,
        timeout=3 * POLL + 1,
        what="one DM per conference per participant",
    )

    join = f"{canvas.canvas.url}/courses/{bio['id']}/conferences/{lecture['id']}/join"
    bob_dm = slack.dms_to("UBOB")[0]
    assert join in button_urls(bob_dm)
    assert "Titration lab" not in str(bob_dm), "Bob is not in Chemistry"
    assert "&lt;!channel&gt; &amp; &lt;b&gt;" in bob_dm["text"]
    assert not any("<!channel>" in text for text in mrkdwn_texts(bob_dm)), "mrkdwn must be escaped"
    assert "<!channel> & <b>" in str(bob_dm["blocks"]), "the plain_text header shows the title as is"
    assert "Biology 101" in str(bob_dm["blocks"])

    metrics = httpx.get(bot.url + "/metrics").text
    assert 'confbot_slack_messages_total{event="started"} 3.0' in metrics
    assert 'confbot_polls_total{kind="user",result="ok"}' in metrics
    assert "confbot_alert_latency_seconds_count 3.0" in metrics
    assert "confbot_outbox_pending 0.0" in metrics

    bot.kill()
    bot.start()
    _wait_for_polls(canvas, [ada["token"], bob["token"]], count=2)
    assert len(slack.dms_to("UADA")) == 2 and len(slack.dms_to("UBOB")) == 1, "no second DM after restart"

    canvas.end(lecture["id"])
    wait_for(
        lambda: "Ended" in str(slack.dms_to("UBOB")[0]["blocks"]),
        timeout=5 * POLL,
        what="the alert to be edited to ended",
    )
    edited = slack.dms_to("UBOB")[0]
    assert edited["ts"] == bob_dm["ts"] and edited["edits"] >= 1
    assert "lasted" in str(edited["blocks"])
    assert join not in button_urls(edited), "an ended conference has no Join button"
    assert len(slack.dms_to("UBOB")) == 1

    tokens = [ada["token"], bob["token"], slack.bot_token]
    logs, db = bot.logs(), bot.db_path.read_bytes()
    for token in tokens:
        assert token not in logs
        assert token.encode() not in db


def test_slash_command_acks_fast_then_lists_live_conferences(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess, classroom: dict[str, Any]
) -> None:
    ada, bio = classroom["ada"], classroom["bio"]
    canvas.start(canvas.conference(bio["id"], "Office hours & Q/A", [ada["id"]])["id"])
    response_url = slack.slack.post("/_sandbox/response_urls")["url"]
    body, headers = signed_slash_command(
        SIGNING_SECRET,
        team_id=slack.team_id,
        user_id="UADA",
        channel_id="C1",
        text="",
        response_url=response_url,
    )
    began = time.monotonic()
    ack = httpx.post(bot.url + "/slack/events", content=body, headers=headers, timeout=10)
    assert ack.status_code == 200
    assert time.monotonic() - began < 3.0

    response_id = response_url.rsplit("/", 1)[1]
    posts = wait_for(
        lambda: slack.slack.get(f"/_sandbox/response_urls/{response_id}")["posts"],
        timeout=10,
        what="the reply on response_url",
    )
    assert "Office hours &amp; Q/A" in str(posts[0]["blocks"])
    assert posts[0].get("response_type") == "ephemeral"

    forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert httpx.post(bot.url + "/slack/events", content=body, headers=forged).status_code == 401


def test_unknown_subcommand_and_unlinked_user_get_help(slack: SlackWorld, bot: BotProcess) -> None:
    bot.start()
    for user, text, expected in (("UNEW", "", "Connect your Canvas"), ("UNEW", "frobnicate", "frobnicate")):
        response_url = slack.slack.post("/_sandbox/response_urls")["url"]
        body, headers = signed_slash_command(
            SIGNING_SECRET,
            team_id=slack.team_id,
            user_id=user,
            channel_id="C1",
            text=text,
            response_url=response_url,
        )
        assert httpx.post(bot.url + "/slack/events", content=body, headers=headers).status_code == 200
        response_id = response_url.rsplit("/", 1)[1]
        posts = wait_for(
            lambda rid=response_id: slack.slack.get(f"/_sandbox/response_urls/{rid}")["posts"],
            timeout=10,
            what="a reply",
        )
        assert expected in str(posts[0])
