"""The session scan's comparison and the reminder/nudge schedule: pure, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.models import Conference
from bot.domain.quiet_hours import QuietHours
from bot.domain.sessions import Scanned, compare_scan, nudge_due, reminder_due, scanned_from
from bot.slack.commands import Help, Remind, parse

NOW = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)


def conf(cid: int = 7, **fields: Any) -> Conference:
    times = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}
    return Conference.model_validate(
        {"id": cid, "title": "Office hours", "context_type": "Course", "context_id": 3, **times}
    )


def entry(**fields: Any) -> Scanned:
    return scanned_from(conf(**fields), teaches=bool(fields.pop("teaches", False)))


def test_an_unchanged_listing_writes_nothing() -> None:
    listing = [conf(start_at=NOW + timedelta(hours=1))]
    first = compare_scan({}, listing, NOW)
    assert [e.conference_id for e in first.changed] == [7]
    again = compare_scan({e.conference_id: e for e in first.changed}, listing, NOW + timedelta(minutes=10))
    assert again.changed == [] and again.gone == [] and again.restarts == []
    gone = compare_scan({e.conference_id: e for e in first.changed}, [], NOW)
    assert gone.gone == [7]


def test_a_restart_older_than_a_day_opens_a_session_from_the_previous_end() -> None:
    week_ago, ended = NOW - timedelta(days=7), NOW - timedelta(days=6)
    before = {7: entry(started_at=week_ago, ended_at=ended)}
    restarted = compare_scan(before, [conf(started_at=week_ago)], NOW)
    assert [(r.conference_id, r.opened_at) for r in restarted.restarts] == [(7, NOW)]

    young = {7: entry(started_at=NOW - timedelta(hours=3), ended_at=NOW - timedelta(hours=2))}
    assert compare_scan(young, [conf(started_at=NOW - timedelta(hours=3))], NOW).restarts == [], (
        "within a day state=live shows it: the live poll opens that session"
    )
    never_ended = {7: entry(started_at=week_ago)}
    assert compare_scan(never_ended, [conf(started_at=week_ago)], NOW).restarts == [], (
        "no evidence, no session"
    )


def test_reminder_is_due_within_the_lead_before_a_start_that_has_not_happened() -> None:
    lead = timedelta(minutes=10)
    planned = entry(start_at=NOW + timedelta(minutes=10))
    assert reminder_due(planned, lead, NOW)
    assert not reminder_due(planned, lead, NOW - timedelta(seconds=1)), "not before the lead time"
    assert not reminder_due(planned, lead, NOW + timedelta(minutes=10)), "not at or after the start"
    assert not reminder_due(planned, timedelta(0), NOW), "0 minutes: reminders off"
    started = entry(start_at=NOW + timedelta(minutes=5), started_at=NOW - timedelta(minutes=1))
    assert not reminder_due(started, lead, NOW)
    reused = entry(
        start_at=NOW + timedelta(minutes=5),
        started_at=NOW - timedelta(days=7),
        ended_at=NOW - timedelta(days=7),
    )
    assert reminder_due(reused, lead, NOW), "a weekly room whose last session ended is waiting again"


def test_nudge_only_for_teachers_after_the_grace_and_not_forever() -> None:
    after = timedelta(minutes=5)
    late = entry(start_at=NOW - timedelta(minutes=5), teaches=True)
    assert nudge_due(late, after, NOW)
    assert not nudge_due(late, after, NOW - timedelta(seconds=1))
    assert not nudge_due(late, after, NOW + timedelta(hours=2)), (
        "a bot down all morning does not nudge at noon"
    )
    assert not nudge_due(entry(start_at=NOW - timedelta(minutes=5)), after, NOW), "students are not nudged"


def test_quiet_hours_end_after_now_in_the_users_zone() -> None:
    quiet = QuietHours.parse("22:00", "07:00", "America/New_York")
    assert quiet is not None
    night = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)  # 23:00 in New York
    assert quiet.ends_after(night) == datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_remind_command() -> None:
    assert parse("remind 15") == Remind(15)
    assert parse("remind off") == Remind(0)
    for bad in ("remind", "remind 0", "remind 1441", "remind ten", "remind ²"):
        assert isinstance(parse(bad), Help), bad
