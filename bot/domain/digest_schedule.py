"""When a channel digest is due: local wall-clock slots in an IANA zone, turned into UTC instants.

Pure (no I/O, no clock): the runner passes "now" in. A digest is configured as a local time ("08:00 in
America/New_York") because that is what people mean; storing a fixed UTC time would drift by an hour at
every daylight-saving change. Two DST corner cases need a rule:

* a local time that does not exist (spring forward, e.g. 02:30 on the night clocks jump 02:00 -> 03:00) is
  shifted forward by the length of the gap (02:30 -> 03:30), so the digest still comes that day;
* a local time that happens twice (fall back, e.g. 01:30) means its first occurrence, so it comes once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.domain.zones import zone

Frequency = Literal["daily", "weekly"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A digest schedule; ``weekday`` (0 = Monday) is set exactly when the frequency is weekly."""

    frequency: Frequency
    at: time
    zone: str
    weekday: int | None = None

    def __post_init__(self) -> None:
        if (self.frequency == "weekly") != (self.weekday is not None):
            raise ValueError("a weekly schedule needs a weekday and a daily one must not have one")
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        if zone(self.zone) is None:  # fail at construction, not at the first tick
            raise ValueError(f"unknown time zone {self.zone!r}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def period(self) -> timedelta:
        """Nominal length of one period; what a first digest (no previous run) looks back over."""
        return timedelta(days=7 if self.frequency == "weekly" else 1)

    def runs_on(self, day: date) -> bool:
        return self.weekday is None or day.weekday() == self.weekday


def parse_hhmm(text: str) -> time:
    """The stored ``HH:MM`` form of a digest time."""
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def local_slot(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz``, with the DST rules of the module doc.

    PEP 495's fold=0 gives both rules: in a gap it applies the offset from before the transition (which
    lands one gap-length later), and for a repeated time it picks the first occurrence.
    """
    wall = datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    return wall.astimezone(UTC)


def _slots_around(schedule: Schedule, moment: datetime, days_before: int, days_after: int) -> list[datetime]:
    tz = schedule.tz
    today = moment.astimezone(tz).date()
    days = (today + timedelta(days=offset) for offset in range(-days_before, days_after + 1))
    return [local_slot(day, schedule.at, tz) for day in days if schedule.runs_on(day)]


def next_slot(schedule: Schedule, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (UTC). Missed slots are skipped, never replayed."""
    _require_aware(after)
    return min(slot for slot in _slots_around(schedule, after, 1, 8) if slot > after)


def previous_slot(schedule: Schedule, at_or_before: datetime) -> datetime:
    """The latest slot at or before the given instant: the period a due digest is posted for.

    It names the digest (its dedup key), so every replica, and a retry after a crash, agrees on which
    period a late run belongs to.
    """
    _require_aware(at_or_before)
    return max(slot for slot in _slots_around(schedule, at_or_before, 8, 1) if slot <= at_or_before)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("digest schedules work on timezone-aware datetimes")
