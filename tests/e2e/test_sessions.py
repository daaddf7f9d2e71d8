"""Issue 11: every session of a conference, through the sandbox Canvas (which starts like Canvas: started_at
set once, a restart only clears ended_at) and `confbot run` as a real process."""

from __future__ import annotations

from typing import Any

import pytest

from tests.blockkit import button_urls
from tests.support import BotProcess, CanvasWorld, SlackWorld, wait_for

pytestmark = pytest.mark.e2e

POLL = 1.0  # POLL_INTERVAL_SECONDS of the bot fixture


@pytest.fixture
def ada(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> dict[str, Any]:
    """A linked student in Biology."""
    student, bio = canvas.user("Ada Lovelace"), canvas.course("Biology 101")
    canvas.enroll(bio["id"], student["id"])
    slack.user("UADA")
    bot.start()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", student["token"])
    return {**student, "course": bio}


def _headers(message: dict[str, Any]) -> str:
    return " ".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "header")


def test_a_same_day_restart_is_alerted_once_and_its_end_edits_that_card(
    canvas: CanvasWorld, slack: SlackWorld, ada: dict[str, Any]
) -> None:
    lecture = canvas.conference(ada["course"]["id"], "Lecture 4", [ada["id"]])
    first_start = canvas.start(lecture["id"])["started_at"]
    wait_for(lambda: len(slack.dms_to("UADA")) == 1, timeout=10 * POLL, what="the first session's alert")
    canvas.end(lecture["id"])
    wait_for(lambda: "Ended" in _headers(slack.dms_to("UADA")[0]), timeout=10 * POLL, what="the end edit")

    again = canvas.start(lecture["id"])  # ended by mistake: the host joins again, Canvas restarts it
    assert again["started_at"] == first_start, "Canvas keeps the first start: the dedup key cannot"
    wait_for(lambda: len(slack.dms_to("UADA")) == 2, timeout=10 * POLL, what="the second session's alert")
    first, second = slack.dms_to("UADA")
    assert "Live again" in _headers(second) and "Ended" in _headers(first), "the earlier card stays ended"
    join = f"{canvas.canvas.url}/courses/{ada['course']['id']}/conferences/{lecture['id']}/join"
    assert join in button_urls(second)

    canvas.end(lecture["id"])
    wait_for(
        lambda: "Ended" in _headers(slack.dms_to("UADA")[1]), timeout=10 * POLL, what="the second end edit"
    )
    assert len(slack.dms_to("UADA")) == 2, "exactly one alert per session"
    assert slack.dms_to("UADA")[0]["edits"] == 1, "the first card was edited once, by its own end"
