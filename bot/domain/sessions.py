"""What the session scan learns from a full conference listing, and when scheduled conferences are owed a
reminder or a nudge. Pure: the engine feeds it stored rows and Canvas's answer.

Canvas's `state=live` only shows conferences first started within the last day, so a room reused after
that day is invisible to the live poll; the only trace of its restart in the API is a full listing's
`ended_at` going from a time back to null. The scan compares listings to find it (`compare_scan`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.models import Conference, past_live_window

NUDGE_WINDOW = timedelta(hours=1)
"""A host is nudged only within this long after the nudge is due: a bot that was down all morning does
not nudge about a lecture that was due at 9."""


@dataclass(frozen=True, slots=True)
class Scanned:
    """What the scan remembers of one conference of one user."""

    conference_id: int
    context_type: str
    context_id: int
    title: str
    start_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    invited: int
    teaches: bool

    @property
    def waiting_to_start(self) -> bool:
        """Scheduled and not started for this date: never started, or a reused room whose last session
        ended before the scheduled start (Canvas keeps the first started_at)."""
        if self.start_at is None:
            return False
        if self.started_at is None:
            return True
        return self.ended_at is not None and self.ended_at < self.start_at


def scanned_from(conference: Conference, teaches: bool) -> Scanned:
    return Scanned(
        conference_id=conference.id,
        context_type=conference.context_type,
        context_id=conference.context_id,
        title=conference.title,
        start_at=conference.start_at,
        started_at=conference.started_at,
        ended_at=conference.ended_at,
        invited=len(conference.users),
        teaches=teaches,
    )


@dataclass(frozen=True, slots=True)
class Restart:
    """A conference restarted beyond Canvas's live scope, its new session opened when the scan saw it (the
    first scan to record it in `opened_sessions` fixes that time for every destination)."""

    conference_id: int
    context_type: str
    context_id: int
    opened_at: datetime


@dataclass(slots=True)
class ScanChanges:
    changed: list[Scanned] = field(default_factory=list)  # new or different: to write
    gone: list[int] = field(default_factory=list)  # no longer listed: to delete
    restarts: list[Restart] = field(default_factory=list)


def compare_scan(
    previous: Mapping[int, Scanned],
    listed: Iterable[Conference],
    now: datetime,
    teaching: frozenset[tuple[str, int]] = frozenset(),
) -> ScanChanges:
    """Changes between the last scan and this listing; only differences are written, so a scan of a user
    whose conferences did not change writes nothing.

    A restart is reported only where the live poll is blind: a conference whose last scan saw it ended,
    that is running again now, and whose first start is more than a day old. (A younger one is in
    `state=live`, and the live poll's own diff opens its session.)
    """
    changes = ScanChanges()
    seen: set[int] = set()
    for conference in listed:
        seen.add(conference.id)
        entry = scanned_from(conference, (conference.context_type, conference.context_id) in teaching)
        before = previous.get(conference.id)
        if before == entry:
            continue
        changes.changed.append(entry)
        restarted = bool(
            before is not None
            and before.ended_at is not None
            and entry.ended_at is None
            and entry.started_at is not None
            and past_live_window(entry.started_at, now)
        )
        if restarted:
            changes.restarts.append(Restart(entry.conference_id, entry.context_type, entry.context_id, now))
    changes.gone = [cid for cid in previous if cid not in seen]
    return changes


def reminder_due(entry: Scanned, lead: timedelta, now: datetime) -> bool:
    """Within `lead` before a scheduled start that has not happened."""
    if entry.start_at is None or not entry.waiting_to_start or lead <= timedelta(0):
        return False
    return entry.start_at - lead <= now < entry.start_at


def nudge_due(entry: Scanned, after: timedelta, now: datetime) -> bool:
    """`after` past a scheduled start that has not happened, for someone who teaches the course."""
    if entry.start_at is None or not entry.waiting_to_start or not entry.teaches:
        return False
    due = entry.start_at + after
    return due <= now < due + NUDGE_WINDOW
