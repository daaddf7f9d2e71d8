"""Quiet hours in the user's own time zone (pure): is an alert held now?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain import zones


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    zone: str

    @classmethod
    def parse(cls, start: str | None, end: str | None, zone: str | None) -> QuietHours | None:
        """None unless all three are set and valid (a broken setting must never hold alerts forever)."""
        if not (start and end and zone) or start == end:
            return None
        if zones.zone(zone) is None:
            return None
        try:
            return cls(time.fromisoformat(start), time.fromisoformat(end), zone)
        except ValueError:
            return None

    def active(self, now: datetime) -> bool:
        """Local wall-clock check; windows may wrap midnight (22:00-07:00)."""
        local = now.astimezone(ZoneInfo(self.zone)).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, now: datetime) -> datetime:
        """When the quiet window that is active at `now` ends (the next local `end`), in now's zone."""
        local = now.astimezone(ZoneInfo(self.zone))
        end = datetime.combine(local.date(), self.end, tzinfo=ZoneInfo(self.zone))
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=ZoneInfo(self.zone))
        return end.astimezone(now.tzinfo)
