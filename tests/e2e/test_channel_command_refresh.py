"""Issue 10, one credentials path, end to end: a channel command refreshes an expired OAuth token silently.

`/conferences subscribe` reads the teacher's courses (with enrollments) from Canvas. It used to decrypt
the stored token and call Canvas itself, so once an OAuth access token had expired at Canvas the teacher
was told to relink, although the bot held a working refresh token. The bot polls once an hour here, so
the poller cannot refresh the token first: the command itself must.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.oauth_support import developer_key, grant_for, link_oauth_in_process, works
from tests.support import BotProcess, CanvasWorld, SlackWorld, slash, wait_for

pytestmark = pytest.mark.e2e

CLIENT_ID, CLIENT_SECRET = "10000000000001", "sandbox-developer-key-secret"


def polled_once(bot: BotProcess, slack_user_id: str) -> bool:
    with sqlite3.connect(bot.db_path) as db:
        row = db.execute(
            "SELECT last_success_at FROM linked_users WHERE slack_user_id = ?", (slack_user_id,)
        ).fetchone()
    return row is not None and row[0] is not None


def test_subscribe_with_an_access_token_expired_at_canvas_refreshes_and_succeeds(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    redirect = bot.url + "/canvas/oauth/callback"
    bot.env.update(
        {
            "CANVAS_CLIENT_ID": CLIENT_ID,
            "CANVAS_CLIENT_SECRET": CLIENT_SECRET,
            "PUBLIC_BASE_URL": bot.url,
            "POLL_INTERVAL_SECONDS": "3600",  # one poll at start, then none while the test runs
        }
    )
    developer_key(canvas.canvas, CLIENT_ID, CLIENT_SECRET, redirect)
    teacher = canvas.user("Prof. Curie")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], teacher["id"], "TeacherEnrollment")
    slack.user("UTEACH")
    slack.slack.post(
        "/_sandbox/channels",
        {"id": "CBIO", "name": "bio", "team_id": slack.team_id, "members": ["UTEACH"], "bot_member": True},
    )
    grant = grant_for(canvas.canvas, teacher["id"], CLIENT_ID, CLIENT_SECRET, redirect)
    link_oauth_in_process(bot, slack.team_id, [("UTEACH", grant)])
    bot.start()
    wait_for(lambda: polled_once(bot, "UTEACH"), timeout=15, what="the first poll, with the linked token")

    canvas.canvas.post("/_sandbox/clock", {"advance_seconds": 3700})  # the access token expires at Canvas
    assert not works(canvas.canvas, grant["access_token"])

    reply = slash(bot, slack, "UTEACH", f"subscribe {bio['id']}", channel_id="CBIO")
    assert "now gets an alert" in reply["text"] and "relink" not in reply["text"]
    assert "Biology 101" in slash(bot, slack, "UTEACH", "subscriptions", channel_id="CBIO")["text"]
    status = str(slash(bot, slack, "UTEACH", "status"))
    assert "linked as" in status and "stopped working" not in status
