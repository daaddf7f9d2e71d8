"""Issue 9 item 5 end to end: a Canvas server that fills `join_url` (and recording URLs) with mentions or
scripts, through the sandbox Canvas, `confbot run` and the sandbox Slack (whose validator refuses what Slack
refuses). The DM must point at Canvas' own join path and ping nobody."""

from __future__ import annotations

import pytest

from tests.blockkit import button_urls, mrkdwn_texts
from tests.support import BotProcess, CanvasWorld, SlackWorld, wait_for

pytestmark = pytest.mark.e2e

POLL = 1.0  # POLL_INTERVAL_SECONDS of the bot fixture


@pytest.mark.parametrize("hostile", ["<!channel>", "javascript:alert(1)", "http://x|<!here>"])
def test_hostile_join_url_gives_a_dm_to_the_canvas_join_path_without_mention(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess, hostile: str
) -> None:
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")
    bot.start()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    lecture = canvas.canvas.post(
        "/_sandbox/conferences",
        {
            "context_type": "Course",
            "context_id": bio["id"],
            "title": "Lecture",
            "user_ids": [ada["id"]],
            "join_url": hostile,
        },
    )
    assert lecture["join_url"] == hostile, "the sandbox plays a server that fills join_url"
    canvas.start(lecture["id"])

    wait_for(lambda: len(slack.dms_to("UADA")) == 1, timeout=5 * POLL + 2, what="the live alert DM")
    dm = slack.dms_to("UADA")[0]
    join = f"{canvas.canvas.url}/courses/{bio['id']}/conferences/{lecture['id']}/join"
    assert button_urls(dm) == [join]
    assert f"<{join}>" in dm["text"]
    for text in mrkdwn_texts(dm):
        assert "<!" not in text.replace("<!date^", "") and "<@" not in text, text
        assert "javascript:" not in text and "x|" not in text, text
