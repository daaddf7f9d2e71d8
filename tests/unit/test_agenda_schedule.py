"""When the daily agenda is due and what it lists: pure, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time

from bot.domain.agenda import local_day, next_agenda, todays
from bot.domain.sessions import Scanned
from bot.slack.commands import Agenda, Help, parse

NEW_YORK = "America/New_York"


def test_the_agenda_keeps_its_wall_clock_time_across_spring_forward_and_fall_back() -> None:
    before_spring = datetime(2027, 3, 13, 13, 0, tzinfo=UTC)  # Saturday 08:00 EST
    assert next_agenda(time(7, 30), NEW_YORK, before_spring) == datetime(2027, 3, 14, 11, 30, tzinfo=UTC)
    before_fall = datetime(2027, 11, 6, 12, 0, tzinfo=UTC)  # Saturday 08:00 EDT
    assert next_agenda(time(7, 30), NEW_YORK, before_fall) == datetime(2027, 11, 7, 12, 30, tzinfo=UTC)


def test_a_dst_day_is_23_hours_and_only_its_conferences_are_listed() -> None:
    sunday = datetime(2027, 3, 14, 15, 0, tzinfo=UTC)
    start, end = local_day(sunday, NEW_YORK)
    assert (end - start).total_seconds() == 23 * 3600

    def at(moment: datetime, title: str) -> Scanned:
        return Scanned(1, "Course", 2, title, moment, None, None, 3, False)

    listed = todays(
        [
            at(datetime(2027, 3, 15, 3, 59, tzinfo=UTC), "late Sunday"),  # 23:59 EDT Sunday
            at(datetime(2027, 3, 14, 4, 59, tzinfo=UTC), "Saturday night"),  # 23:59 EST Saturday
            at(datetime(2027, 3, 14, 14, 0, tzinfo=UTC), "morning"),
        ],
        sunday,
        NEW_YORK,
    )
    assert [e.title for e in listed] == ["morning", "late Sunday"]


def test_agenda_command() -> None:
    assert parse("agenda 7:30") == Agenda(time(7, 30))
    assert parse("agenda off") == Agenda(None)
    for bad in ("agenda", "agenda 25:00", "agenda 7am"):
        assert isinstance(parse(bad), Help), bad


def test_subscribe_with_a_reminder_lead() -> None:
    from bot.slack.commands import Subscribe

    assert parse("subscribe Biology 101 remind 15") == Subscribe("Biology 101", remind=15)
    assert parse("subscribe 42 remind off") == Subscribe("42", remind=0)
    assert parse("subscribe Biology 101") == Subscribe("Biology 101")
    for bad in ("subscribe Art remind", "subscribe Art remind soon"):
        assert isinstance(parse(bad), Help), bad
