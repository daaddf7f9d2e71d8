"""Issue 11: what the live poll cannot see. The session scan (a full listing per user, here every second)
learns scheduled times and restarts older than a day; reminders and host nudges come from it. Real
processes: sandbox Canvas and Slack on loopback and `confbot run`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.blockkit import button_urls
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, sandbox_bot, slash, wait_for

pytestmark = pytest.mark.e2e

SCAN = 1.0  # SESSION_SCAN_INTERVAL_SECONDS
LEAD = 60.0  # REMINDER_LEAD_MINUTES=1
NUDGE = 60.0  # HOST_NUDGE_MINUTES=1


@pytest.fixture
def scanning_bot(tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld) -> Iterator[BotProcess]:
    process = sandbox_bot(
        tmp_path,
        canvas.canvas.url,
        slack.slack.url,
        slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SESSION_SCAN_INTERVAL_SECONDS=str(SCAN),
        REMINDER_LEAD_MINUTES="1",
        HOST_NUDGE_MINUTES="1",
    )
    yield process
    process.stop()


@pytest.fixture
def course(canvas: CanvasWorld, slack: SlackWorld, scanning_bot: BotProcess) -> dict[str, Any]:
    """Biology with a linked student (Ada) and a linked teacher (Grace)."""
    bio = canvas.course("Biology 101")
    ada, grace = canvas.user("Ada Lovelace"), canvas.user("Grace Hopper")
    canvas.enroll(bio["id"], ada["id"])
    canvas.enroll(bio["id"], grace["id"], "TeacherEnrollment")
    slack.user("UADA")
    slack.user("UGRACE")
    scanning_bot.start()
    scanning_bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    scanning_bot.cli(
        "link", "--slack-user", "UGRACE", "--team", slack.team_id, "--canvas-token", grace["token"]
    )
    return {"bio": bio, "ada": ada, "grace": grace}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _headers(messages: list[dict[str, Any]]) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m["blocks"] if b["type"] == "header"]


def test_restart_on_day_three_of_a_reused_room_is_alerted_within_a_scan_period(
    canvas: CanvasWorld, slack: SlackWorld, course: dict[str, Any]
) -> None:
    ada = course["ada"]
    office = canvas.conference(course["bio"]["id"], "Office hours", [ada["id"]])
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    canvas.canvas.post(f"/_sandbox/conferences/{office['id']}/start", {"at": _iso(three_days_ago)})
    canvas.canvas.post(
        f"/_sandbox/conferences/{office['id']}/end", {"at": _iso(three_days_ago + timedelta(hours=1))}
    )
    scans = _scanned(canvas, ada["token"])
    wait_for(lambda: _scanned(canvas, ada["token"]) >= scans + 2, timeout=10 * SCAN, what="two scans of Ada")
    assert slack.dms_to("UADA") == [], "an old, ended room is not news"

    canvas.canvas.post(f"/_sandbox/conferences/{office['id']}/restart")  # day three: the room is reused
    wait_for(lambda: slack.dms_to("UADA"), timeout=10 * SCAN, what="the reused room's alert")
    (alert,) = slack.dms_to("UADA")
    assert _headers([alert]) == ["🔴 Live again: Office hours"]
    join = f"{canvas.canvas.url}/courses/{course['bio']['id']}/conferences/{office['id']}/join"
    assert join in button_urls(alert)

    canvas.end(office["id"])
    wait_for(
        lambda: "Ended" in " ".join(_headers(slack.dms_to("UADA"))), timeout=10 * SCAN, what="the end edit"
    )
    assert len(slack.dms_to("UADA")) == 1


def _scanned(canvas: CanvasWorld, token: str) -> int:
    """Full listings (no `state`) the sandbox served to this token: the session scan's requests."""
    routes = canvas.canvas.get("/_sandbox/requests", routes=1)["routes_by_token"].get(token, {})
    return int(routes.get("GET /api/v1/conferences", 0))


def _reminders(slack: SlackWorld, user: str) -> list[str]:
    return [h for h in _headers(slack.dms_to(user)) if h.startswith("⏰")]


def test_a_reminder_comes_once_at_the_lead_time_and_a_moved_start_rearms_it(
    canvas: CanvasWorld, slack: SlackWorld, course: dict[str, Any]
) -> None:
    ada = course["ada"]
    ahead = 6.0
    start_at = datetime.now(UTC) + timedelta(seconds=LEAD + ahead)
    seminar = canvas.canvas.post(
        "/_sandbox/conferences",
        {
            "context_type": "Course",
            "context_id": course["bio"]["id"],
            "title": "Seminar",
            "user_ids": [ada["id"]],
            "start_at": _iso(start_at),
        },
    )
    due = time.monotonic() + ahead
    wait_for(lambda: _reminders(slack, "UADA"), timeout=ahead + 10 * SCAN, what="the reminder")
    assert time.monotonic() >= due - 1.0, "not before the lead time"
    assert _reminders(slack, "UADA") == ["⏰ Starts in 1 min: Seminar"]
    assert seminar_join(canvas, course, seminar) in button_urls(slack.dms_to("UADA")[0])

    moved = datetime.now(UTC) + timedelta(seconds=LEAD + 2)
    canvas.canvas.post(f"/_sandbox/conferences/{seminar['id']}/schedule", {"start_at": _iso(moved)})
    wait_for(
        lambda: len(_reminders(slack, "UADA")) == 2, timeout=2 + 10 * SCAN, what="the moved start's reminder"
    )

    canvas.start(seminar["id"])
    wait_for(
        lambda: any("Live now" in h for h in _headers(slack.dms_to("UADA"))),
        timeout=10 * SCAN,
        what="the alert",
    )
    scans = _scanned(canvas, ada["token"])
    wait_for(lambda: _scanned(canvas, ada["token"]) >= scans + 2, timeout=10 * SCAN, what="two more scans")
    assert len(_reminders(slack, "UADA")) == 2, "exactly once per (destination, conference, start_at)"


def seminar_join(canvas: CanvasWorld, course: dict[str, Any], conference: dict[str, Any]) -> str:
    return f"{canvas.canvas.url}/courses/{course['bio']['id']}/conferences/{conference['id']}/join"


def test_the_teacher_is_nudged_once_when_a_scheduled_conference_has_not_started(
    canvas: CanvasWorld, slack: SlackWorld, course: dict[str, Any]
) -> None:
    ada, grace = course["ada"], course["grace"]
    ahead = 4.0
    start_at = datetime.now(UTC) - timedelta(seconds=NUDGE - ahead)
    lecture = canvas.canvas.post(
        "/_sandbox/conferences",
        {
            "context_type": "Course",
            "context_id": course["bio"]["id"],
            "title": "Lecture <b>",
            "user_ids": [ada["id"], grace["id"]],
            "start_at": _iso(start_at),
        },
    )
    due = time.monotonic() + ahead
    wait_for(lambda: slack.dms_to("UGRACE"), timeout=ahead + 10 * SCAN, what="the host nudge")
    assert time.monotonic() >= due - 1.0, "not before HOST_NUDGE_MINUTES"
    (nudge,) = slack.dms_to("UGRACE")
    assert _headers([nudge]) == ["Not started yet: Lecture <b>"]
    assert "2 people are invited" in nudge["text"] and "Lecture &lt;b&gt;" in nudge["text"]
    assert seminar_join(canvas, course, lecture) in button_urls(nudge)

    scans = _scanned(canvas, grace["token"])
    wait_for(lambda: _scanned(canvas, grace["token"]) >= scans + 2, timeout=10 * SCAN, what="two more scans")
    assert len(slack.dms_to("UGRACE")) == 1, "one nudge"
    assert slack.dms_to("UADA") == [], "students are not nudged"


def test_a_subscribed_channel_gets_its_own_reminder_once(
    canvas: CanvasWorld, slack: SlackWorld, scanning_bot: BotProcess, course: dict[str, Any]
) -> None:
    grace, bio = course["grace"], course["bio"]
    channel = {"id": "CBIO", "name": "bio", "team_id": slack.team_id, "creator": "UGRACE"}
    slack.slack.post("/_sandbox/channels", {**channel, "members": ["UGRACE"], "bot_member": True})
    reply = slash(scanning_bot, slack, "UGRACE", f"subscribe {bio['id']} remind 1", channel_id="CBIO")
    assert "reminder 1 min before each scheduled start" in reply["text"]

    ahead = 5.0
    start_at = datetime.now(UTC) + timedelta(seconds=LEAD + ahead)
    canvas.canvas.post(
        "/_sandbox/conferences",
        {
            "context_type": "Course",
            "context_id": bio["id"],
            "title": "Lab safety",
            "user_ids": [grace["id"]],
            "start_at": _iso(start_at),
        },
    )

    def channel_reminders() -> list[str]:
        posts = [m for m in slack.messages(channel="CBIO") if m["channel"] == "CBIO"]
        return [h for h in _headers(posts) if h.startswith("⏰")]

    wait_for(channel_reminders, timeout=ahead + 30 * SCAN, what="the channel's reminder")
    assert channel_reminders() == ["⏰ Starts in 1 min: Lab safety"]
    scans = _scanned(canvas, grace["token"])
    wait_for(lambda: _scanned(canvas, grace["token"]) >= scans + 2, timeout=10 * SCAN, what="two more scans")
    assert len(channel_reminders()) == 1, "once per (channel, conference, start_at)"
