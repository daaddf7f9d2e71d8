"""Digest content and rendering: what a channel reads, safe from Canvas titles, inside Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.models import Conference
from bot.engine.digests import summarize_course
from bot.messages.blocks import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT
from bot.messages.digest_blocks import (
    CourseDigest,
    DigestConference,
    DigestContent,
    DigestRecording,
    digest_message,
)
from bot.messages.mrkdwn import slack_length
from tests.blockkit import mrkdwn_texts

NOW = datetime(2024, 6, 4, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=1)
ROOT = "https://canvas.example.edu"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def conference(
    cid: int, title: str, started: datetime | None, ended: datetime | None, **extra: Any
) -> Conference:
    return Conference.model_validate(
        {
            "id": cid,
            "title": title,
            "context_type": "Course",
            "context_id": 7,
            "started_at": iso(started) if started else None,
            "ended_at": iso(ended) if ended else None,
            "join_url": None,
            **extra,
        }
    )


def content(*courses: CourseDigest, late: bool = False) -> DigestContent:
    return DigestContent("daily", NOW, SINCE, late, courses)


def assert_within_slack_limits(message: Any) -> None:
    assert len(message["blocks"]) <= MAX_MESSAGE_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "section":
            assert 0 < slack_length(block["text"]["text"]) <= MAX_SECTION_TEXT
        if block["type"] == "header":
            assert slack_length(block["text"]["text"]) <= 150


# --- what goes into a course's part ---------------------------------------------------------------------


def test_course_summary_sorts_conferences_into_live_held_and_recordings() -> None:
    recording = {
        "recording_id": "r1",
        "title": "Lecture 4 recording",
        "duration_minutes": 45,
        "playback_url": "https://bbb.example.edu/playback/r1",
        "created_at": int((NOW - timedelta(hours=2)).timestamp() * 1000),  # epoch ms, as BBB sends
    }
    old_recording = {
        **recording,
        "recording_id": "r0",
        "created_at": int((SINCE - timedelta(days=3)).timestamp() * 1000),
    }
    conferences = [
        conference(1, "Office hours", NOW - timedelta(minutes=20), None),
        conference(
            2,
            "Lecture 4",
            NOW - timedelta(hours=4),
            NOW - timedelta(hours=3, minutes=15),
            recordings=[recording],
        ),
        conference(
            3,
            "Last week",
            SINCE - timedelta(days=6),
            SINCE - timedelta(days=6) + timedelta(hours=1),
            recordings=[old_recording],
        ),
        conference(4, "Not started", None, None),
    ]
    summary = summarize_course("Biology 101", conferences, SINCE, NOW, ROOT)
    assert [c.title for c in summary.live] == ["Office hours"]
    assert summary.live[0].join_url == f"{ROOT}/courses/7/conferences/1/join"
    assert [c.title for c in summary.held] == ["Lecture 4"]
    assert [(r.title, r.url) for r in summary.recordings] == [
        ("Lecture 4 recording", "https://bbb.example.edu/playback/r1")
    ]


def test_a_conference_that_ended_after_the_last_digest_counts_as_held_even_if_it_started_before() -> None:
    started, ended = SINCE - timedelta(hours=1), SINCE + timedelta(hours=1)
    summary = summarize_course("C", [conference(1, "Overnight", started, ended)], SINCE, NOW, ROOT)
    assert [c.title for c in summary.held] == ["Overnight"]


def test_recording_without_creation_time_is_listed_with_its_held_conference() -> None:
    recording = {
        "recording_id": "r",
        "title": None,
        "playback_url": None,
        "playback_formats": [{"type": "presentation", "url": "https://bbb/p"}],
    }
    held = conference(
        1, "Seminar", NOW - timedelta(hours=3), NOW - timedelta(hours=2), recordings=[recording]
    )
    summary = summarize_course("C", [held], SINCE, NOW, ROOT)
    assert [(r.conference_title, r.url) for r in summary.recordings] == [("Seminar", "https://bbb/p")]


# --- rendering ------------------------------------------------------------------------------------------


def busy_course() -> CourseDigest:
    return CourseDigest(
        "Biology 101",
        live=(
            DigestConference(
                1, "Office hours", NOW - timedelta(minutes=20), None, f"{ROOT}/courses/7/conferences/1/join"
            ),
        ),
        held=(
            DigestConference(
                2, "Lecture 4", NOW - timedelta(hours=4), NOW - timedelta(hours=3, minutes=15), "x"
            ),
        ),
        recordings=(
            DigestRecording("Lecture 4 recording", "Lecture 4", "https://bbb.example.edu/playback/r1", 45),
        ),
    )


def test_digest_lists_live_held_with_durations_and_recordings_with_playback_links_per_course() -> None:
    quiet = CourseDigest("Chemistry 7")
    message = digest_message(content(busy_course(), quiet), NOW)
    body = "\n".join(mrkdwn_texts(message))
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Daily conference digest"},
    }
    assert "*Biology 101*" in body
    assert f"<{ROOT}/courses/7/conferences/1/join|Office hours> · started 20 min ago" in body
    assert "Lecture 4 · lasted 45 min" in body
    assert "<https://bbb.example.edu/playback/r1|Lecture 4 recording> · 45 min" in body
    assert "No conferences in: Chemistry 7" in body
    assert "1 live now · 1 held · 1 new recordings" in message["text"]
    assert_within_slack_limits(message)


def test_late_digest_says_so_in_heading_and_notification_text() -> None:
    message = digest_message(content(busy_course(), late=True), NOW)
    assert "(late)" in message["blocks"][0]["text"]["text"]
    assert "(late)" in message["text"]
    assert "(late)" not in digest_message(content(busy_course()), NOW)["text"]


def test_canvas_strings_are_escaped_everywhere() -> None:
    evil = "<!channel> & <https://evil.example|click>"
    course = CourseDigest(
        evil,
        live=(DigestConference(1, evil, NOW - timedelta(minutes=5), None, f"{ROOT}/j"),),
        held=(DigestConference(2, evil, NOW - timedelta(hours=2), NOW - timedelta(hours=1), "x"),),
        recordings=(DigestRecording(evil, evil, "https://bbb/r?a=1&b=<2>", 10),),
        problem=None,
    )
    message = digest_message(content(course, CourseDigest(evil)), NOW)
    for text in mrkdwn_texts(message):
        assert "<!channel>" not in text
        assert "<https://evil" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in json.dumps(message)


def test_200_conferences_in_one_course_stay_within_slack_limits() -> None:
    start = NOW - timedelta(hours=20)
    held = tuple(
        DigestConference(i, f"Session {i} " + "x" * 250, start, start + timedelta(minutes=50), "x")
        for i in range(200)
    )
    live = tuple(
        DigestConference(1000 + i, f"Live {i}", NOW - timedelta(minutes=i), None, f"{ROOT}/{i}")
        for i in range(200)
    )
    recordings = tuple(DigestRecording(f"Rec {i}", "S", f"https://bbb/{i}", 50) for i in range(200))
    message = digest_message(content(CourseDigest("Huge", live, held, recordings)), NOW)
    assert_within_slack_limits(message)
    body = "\n".join(mrkdwn_texts(message))
    assert "…and 190 more held" in body
    assert "…and 190 more live" in body
    assert "…and 190 more recordings" in body
    assert "200 live now · 200 held · 200 new recordings" in message["text"]


def test_200_busy_courses_are_cut_by_course_with_a_count() -> None:
    courses = tuple(
        CourseDigest(
            f"Course {i:03}",
            held=(DigestConference(i, "Lecture", NOW - timedelta(hours=2), NOW - timedelta(hours=1), "x"),),
        )
        for i in range(200)
    )
    message = digest_message(content(*courses), NOW)
    assert_within_slack_limits(message)
    body = "\n".join(mrkdwn_texts(message))
    shown = sum(f"*Course {i:03}*" in body for i in range(200))
    assert 0 < shown < 200
    assert f"…and {200 - shown} more courses" in body


def test_problems_are_shown_for_their_course() -> None:
    broken = CourseDigest("Physics", problem="Canvas did not answer; this course is missing.")
    body = "\n".join(mrkdwn_texts(digest_message(content(broken), NOW)))
    assert "*Physics*\n⚠️ Canvas did not answer" in body


def test_nothing_happened_and_no_courses_read_as_such() -> None:
    quiet = digest_message(content(CourseDigest("Art")), NOW)
    assert "No conferences since the last digest." in "\n".join(mrkdwn_texts(quiet))
    empty = digest_message(content(), NOW)
    assert "follows no courses" in "\n".join(mrkdwn_texts(empty))


def test_coming_up_lists_what_is_scheduled_before_the_next_digest_and_not_started() -> None:
    tomorrow = conference(1, "Review <session>", None, None, start_at=iso(NOW + timedelta(hours=20)))
    next_week = conference(2, "Exam", None, None, start_at=iso(NOW + timedelta(days=6)))
    already_live = conference(
        3, "Started early", NOW - timedelta(minutes=5), None, start_at=iso(NOW + timedelta(hours=1))
    )
    weekly_room = conference(
        4,
        "Office hours",
        NOW - timedelta(days=7),
        NOW - timedelta(days=7),
        start_at=iso(NOW + timedelta(hours=3)),
    )
    summary = summarize_course("Bio", [next_week, tomorrow, already_live, weekly_room], SINCE, NOW, ROOT)
    assert [c.title for c in summary.coming] == ["Office hours", "Review <session>"]
    weekly = summarize_course("Bio", [next_week, tomorrow], SINCE, NOW, ROOT, ahead=timedelta(days=7))
    assert [c.title for c in weekly.coming] == ["Review <session>", "Exam"]

    text = json.dumps(digest_message(content(summary), NOW))
    assert "Coming up" in text and "Review &lt;session&gt;" in text and "<session>" not in text
    assert f"{ROOT}/courses/7/conferences/1/join" in text
