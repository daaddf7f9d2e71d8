"""The daily agenda: when each user's morning DM is due, and which conferences it lists. Pure.

The agenda is set as a local wall-clock time in the user's Slack time zone ("07:30"), so it follows
daylight-saving changes: the UTC instant moves, the wall-clock time does not (digest_schedule's rules for
times that do not exist or happen twice apply).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta

from bot.domain.digest_schedule import Schedule, local_slot, next_slot
from bot.domain.sessions import Scanned
from bot.domain.zones import zone


def next_agenda(at: time, zone_name: str, after: datetime) -> datetime:
    """The first agenda instant (UTC) strictly after `after`: `at` local time in `zone_name`."""
    return next_slot(Schedule("daily", at, zone_name), after)


def local_day(moment: datetime, zone_name: str) -> tuple[datetime, datetime]:
    """The UTC instants where the local day of `moment` begins and ends (a DST day is 23 or 25 hours)."""
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"unknown time zone {zone_name!r}")
    day = moment.astimezone(tz).date()
    return local_slot(day, time(0), tz), local_slot(day + timedelta(days=1), time(0), tz)


def todays(entries: Iterable[Scanned], moment: datetime, zone_name: str) -> list[Scanned]:
    """The scheduled conferences of the local day of `moment`, earliest first."""
    start, end = local_day(moment, zone_name)
    found = [e for e in entries if e.start_at is not None and start <= e.start_at < end]
    return sorted(found, key=lambda e: (e.start_at or start, e.title))
