"""Canvas models: tolerant parsing, the live rule, join links, secret-safe token grants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from bot.canvas import Conference, Course, Group, Recording, TokenGrant
from bot.domain.diff import Seen, diff
from bot.domain.models import ConferenceList, past_live_window
from bot.messages.blocks import ConferenceCard, conference_status

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def conference(**fields: object) -> Conference:
    base: dict[str, object] = {"id": 7, "title": "Lecture", "context_type": "Course", "context_id": 3}
    base.update(fields)
    return Conference.model_validate(base)


def test_recording_created_at_epoch_milliseconds_is_utc() -> None:
    recording = Recording.model_validate({"recording_id": 99, "created_at": 1_700_000_000_123})
    assert recording.recording_id == "99"
    assert recording.created_at == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def test_recording_created_at_iso_string_with_offset_becomes_utc() -> None:
    recording = Recording.model_validate({"recording_id": "r1", "created_at": "2025-03-10T14:00:00+02:00"})
    assert recording.created_at == datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert recording.created_at is not None and recording.created_at.tzinfo is UTC


def test_recording_with_garbage_date_still_parses() -> None:
    recording = Recording.model_validate(
        {"recording_id": "r1", "created_at": "soon", "duration_minutes": "x"}
    )
    assert recording.created_at is None
    assert recording.duration_minutes is None


def test_recording_best_url_prefers_playback_url_then_first_format_with_url() -> None:
    formats = [{"type": "notes", "url": None}, {"type": "video", "url": "https://bbb/v", "length": 12}]
    assert (
        Recording.model_validate({"recording_id": "a", "playback_formats": formats}).best_url
        == "https://bbb/v"
    )
    direct = {"recording_id": "a", "playback_url": "https://bbb/p", "playback_formats": formats}
    assert Recording.model_validate(direct).best_url == "https://bbb/p"
    assert Recording.model_validate({"recording_id": "a"}).best_url is None


def test_conference_tolerates_nulls_and_unknown_fields() -> None:
    conf = Conference.model_validate(
        {
            "id": 7,
            "title": None,
            "conference_type": None,
            "description": None,
            "duration": None,
            "started_at": None,
            "ended_at": None,
            "context_type": "Course",
            "context_id": 3,
            "long_running": None,
            "url": None,
            "join_url": None,
            "recordings": None,
            "users": None,
            "user_settings": {"record": True},
            "has_advanced_settings": 0,
            "something_new_in_2030": [1, 2],
        }
    )
    assert conf.title == ""
    assert conf.recordings == []
    assert conf.users == []
    assert conf.long_running is False


def test_conference_timestamps_are_utc_aware() -> None:
    conf = conference(started_at="2025-03-10T11:30:00Z")
    assert conf.started_at == datetime(2025, 3, 10, 11, 30, tzinfo=UTC)
    assert conf.started_at is not None and conf.started_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("started", "ended", "live"),
    [
        (NOW - timedelta(hours=23, minutes=59), None, True),
        (NOW - timedelta(hours=24, minutes=1), None, False),
        (NOW - timedelta(hours=1), NOW - timedelta(minutes=5), False),
        (None, None, False),
        (NOW - timedelta(hours=1), NOW + timedelta(minutes=30), True),
        (NOW - timedelta(minutes=1), NOW, False),
    ],
    ids=["23h59-live", "24h01-zombie", "ended", "never-started", "ends-later", "ended-just-now"],
)
def test_is_live_follows_canvas_rule(started: datetime | None, ended: datetime | None, live: bool) -> None:
    conf = conference(
        started_at=started.isoformat() if started else None, ended_at=ended.isoformat() if ended else None
    )
    assert conf.is_live(NOW) is live


def test_is_live_accepts_naive_and_non_utc_now() -> None:
    conf = conference(started_at="2025-03-10T11:00:00Z")
    assert conf.is_live(NOW.replace(tzinfo=None))
    assert conf.is_live(NOW.astimezone(timezone(timedelta(hours=-5))))


@pytest.mark.parametrize(
    ("enrollment", "manages"),
    [
        ({"type": "teacher"}, True),
        ({"type": "TeacherEnrollment", "enrollment_state": "active"}, True),
        ({"type": "ta"}, True),
        ({"type": "TaEnrollment"}, True),
        ({"type": "designer"}, True),
        ({"type": "student"}, False),
        ({"type": "StudentEnrollment"}, False),
        ({"type": "observer"}, False),
        ({"type": "TeacherEnrollment", "enrollment_state": "invited"}, False),
    ],
)
def test_course_can_manage_conferences(enrollment: dict[str, str], manages: bool) -> None:
    course = Course.model_validate({"id": 1, "name": "Bio", "enrollments": [enrollment]})
    assert course.can_manage_conferences is manages


def test_course_and_group_tolerate_nulls() -> None:
    course = Course.model_validate({"id": 1, "name": None, "course_code": None, "enrollments": None})
    assert course.name == "" and course.enrollments == [] and not course.can_manage_conferences
    assert Group.model_validate({"id": 2, "name": "G", "course_id": None}).course_id is None


def test_token_grant_never_shows_tokens() -> None:
    grant = TokenGrant.model_validate(
        {
            "access_token": "1~supersecretaccess",
            "token_type": "Bearer",
            "refresh_token": "1~supersecretrefresh",
            "expires_in": 3600,
            "user": {"id": 42, "name": "Ada"},
        }
    )
    for text in (repr(grant), str(grant), f"{grant}", repr(grant.model_dump())):
        assert "supersecret" not in text
    assert grant.access_token.get_secret_value() == "1~supersecretaccess"
    assert grant.user is not None and grant.user.id == 42


@pytest.mark.parametrize("bad_id", [2**63, 2**64, -1])
def test_an_id_no_database_column_can_hold_is_refused_at_the_edge(bad_id: int) -> None:
    """Fails before the change: 2**63 was accepted and then failed the database write of a whole batch."""
    listing = {"conferences": [{"id": bad_id, "title": "x", "context_type": "Course", "context_id": 1}]}
    with pytest.raises(ValidationError):
        ConferenceList.model_validate(listing)


def test_the_largest_canvas_id_is_accepted() -> None:
    largest = 2**63 - 1
    listing = {
        "conferences": [{"id": largest, "title": "x", "context_type": "Course", "context_id": largest}]
    }
    assert ConferenceList.model_validate(listing).conferences[0].id == largest


def test_the_24_hour_live_window_has_one_boundary_everywhere() -> None:
    """Canvas's scope is `started_at BETWEEN now() - 1 day AND now()`: exactly a day ago is still live.
    The diff, the model and the card status used three copies of the window that disagreed there."""
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    for age, live in ((timedelta(hours=24), True), (timedelta(hours=24, microseconds=1), False)):
        started = now - age
        assert past_live_window(started, now) is not live
        card = ConferenceCard(1, "Talk", "Biology", None, started, None, "https://canvas.test/j")
        assert (conference_status(card, now) == "live") is live
        previous = {1: Seen(1, started, "Talk", "Course", 7)}
        ended = [e.kind for e in diff(previous, [], now).events]
        assert (ended == []) is live, f"a session {age} old is {'live' if live else 'over'}"
