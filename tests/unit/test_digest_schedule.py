"""Digest slots: the local wall-clock time a channel asked for, whatever daylight saving does."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.digest_schedule import Schedule, local_slot, next_slot, previous_slot
from bot.messages.i18n import translator
from bot.slack.digest_command import describe_schedule

NY = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def daily(hhmm: str, zone: str = NY) -> Schedule:
    hour, minute = map(int, hhmm.split(":"))
    return Schedule("daily", time(hour, minute), zone)


def test_daily_0800_new_york_follows_the_spring_forward_switch() -> None:
    schedule = daily("08:00")
    saturday = next_slot(schedule, utc(2024, 3, 9, 0, 0))
    sunday = next_slot(schedule, saturday)
    monday = next_slot(schedule, sunday)
    assert saturday == utc(2024, 3, 9, 13, 0)  # EST, UTC-5
    assert sunday == utc(2024, 3, 10, 12, 0)  # EDT from 02:00 that night, UTC-4
    assert monday == utc(2024, 3, 11, 12, 0)


def test_daily_0800_new_york_follows_the_fall_back_switch() -> None:
    schedule = daily("08:00")
    assert next_slot(schedule, utc(2024, 11, 2, 12, 0)) == utc(2024, 11, 3, 13, 0)


def test_every_slot_of_a_year_is_0800_local() -> None:
    schedule = daily("08:00")
    moment, tz = utc(2024, 1, 1), ZoneInfo(NY)
    days = set()
    for _ in range(366):
        moment = next_slot(schedule, moment)
        local = moment.astimezone(tz)
        assert (local.hour, local.minute) == (8, 0)
        days.add(local.date())
    assert len(days) == 366, "one digest per day, none skipped or doubled"


def test_a_time_skipped_by_spring_forward_is_shifted_forward_the_same_day() -> None:
    # 2024-03-10 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that day.
    slot = next_slot(daily("02:30"), utc(2024, 3, 10, 0, 0))
    assert slot == utc(2024, 3, 10, 7, 30)
    assert slot.astimezone(ZoneInfo(NY)).strftime("%Y-%m-%d %H:%M %Z") == "2024-03-10 03:30 EDT"


def test_a_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    # 2024-11-03 01:00-02:00 happens twice (EDT, then EST).
    schedule = daily("01:30")
    first = next_slot(schedule, utc(2024, 11, 3, 0, 0))
    assert first == utc(2024, 11, 3, 5, 30)  # 01:30 EDT
    assert next_slot(schedule, first) == utc(2024, 11, 4, 6, 30), "not again at 01:30 EST"


def test_next_slot_is_strictly_after_the_given_moment() -> None:
    schedule = daily("08:00")
    slot = utc(2024, 6, 3, 12, 0)
    assert next_slot(schedule, slot - timedelta(microseconds=1)) == slot
    assert next_slot(schedule, slot) == slot + timedelta(days=1)


def test_after_three_days_down_the_next_slot_is_the_next_future_one_not_a_replay() -> None:
    schedule = daily("08:00")
    back_up = utc(2024, 6, 6, 15, 0)  # missed the 3rd, 4th, 5th and 6th at 12:00 UTC
    assert previous_slot(schedule, back_up) == utc(2024, 6, 6, 12, 0)
    assert next_slot(schedule, back_up) == utc(2024, 6, 7, 12, 0)


def test_weekly_runs_on_its_weekday_in_its_zone() -> None:
    monday_0900_paris = Schedule("weekly", time(9, 0), "Europe/Paris", weekday=0)
    wednesday = utc(2024, 6, 5, 10, 0)
    slot = next_slot(monday_0900_paris, wednesday)
    assert slot == utc(2024, 6, 10, 7, 0)  # CEST, UTC+2
    assert next_slot(monday_0900_paris, slot) == utc(2024, 6, 17, 7, 0)
    assert previous_slot(monday_0900_paris, wednesday) == utc(2024, 6, 3, 7, 0)


def test_weekly_slot_can_fall_on_another_utc_day() -> None:
    # Monday 08:00 in Auckland is Sunday evening in UTC.
    schedule = Schedule("weekly", time(8, 0), "Pacific/Auckland", weekday=0)
    slot = next_slot(schedule, utc(2024, 6, 1))
    assert slot.weekday() == 6 and slot.astimezone(ZoneInfo("Pacific/Auckland")).weekday() == 0


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island moves its clocks by 30 minutes (first Sunday of April, 02:00 -> 01:30).
    schedule = daily("09:00", "Australia/Lord_Howe")
    before = next_slot(schedule, utc(2024, 4, 5, 0, 0))
    after = next_slot(schedule, before)
    assert after - before == timedelta(hours=24, minutes=30)


def test_local_slot_for_ordinary_times() -> None:
    assert local_slot(date(2024, 1, 15), time(8, 0), ZoneInfo("Asia/Kolkata")) == utc(2024, 1, 15, 2, 30)


@pytest.mark.parametrize(
    ("frequency", "weekday", "zone"),
    [("weekly", None, NY), ("daily", 2, NY), ("weekly", 7, NY), ("daily", None, "Mars/Olympus")],
)
def test_inconsistent_schedules_are_refused_up_front(frequency: str, weekday: int | None, zone: str) -> None:
    with pytest.raises(ValueError):
        Schedule(frequency, time(8, 0), zone, weekday)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        next_slot(daily("08:00"), datetime(2024, 1, 1))


def test_describe_and_label_name_the_local_time_in_the_readers_language() -> None:
    english, spanish, portuguese = translator("en"), translator("es-ES"), translator("pt-BR")
    assert describe_schedule(Schedule("weekly", time(8, 30), NY, 0), english) == "every Monday at 08:30"
    assert describe_schedule(daily("07:05"), english) == "daily at 07:05"
    assert english.day_label(utc(2024, 3, 11, 12, 0), NY) == "Mon 11 Mar 2024, 08:00 EDT"
    assert describe_schedule(Schedule("weekly", time(8, 30), NY, 0), spanish) == "cada lunes a las 08:30"
    assert describe_schedule(daily("07:05"), portuguese) == "todos os dias às 07:05"
    assert portuguese.day_label(utc(2024, 3, 11, 12, 0), NY) == "seg., 11 de mar. de 2024, 08:00 EDT"
