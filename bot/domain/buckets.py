"""Poll buckets and the in-memory poll schedule (issue 14). Pure: no I/O, no clock of its own.

Replicas share the polling by leasing hash buckets of poll units instead of claiming rows, so the
database is written when something changes (a conference, an error, a back-off) and for one lease
heartbeat per held bucket, not once per poll. Each replica keeps the units of its buckets in a `Schedule`
(a heap of due times) and polls from it.
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_BUCKETS = 256
HASH_MULTIPLIER = 2654435761
"""Knuth's multiplicative hash: neighbouring unit ids land in unrelated buckets. Small enough that
`id * HASH_MULTIPLIER` stays inside a signed 64-bit integer for every 32-bit id, so the store can compute
the same bucket in SQL (bigint arithmetic) on PostgreSQL and SQLite alike."""
JITTER = 0.03
"""A poll's period is drawn from [interval * (1 - JITTER), interval]: downwards only, so no unit waits
longer than one interval, and replicas' polls do not fall due in lockstep."""


def kind_salt(kind: str) -> int:
    """A per-kind offset so user 7 and subscription 7 are not always in the same bucket (stable across
    processes and versions: CRC-32, not Python's salted `hash`)."""
    return zlib.crc32(kind.encode()) & 0xFFFF


def bucket_of(kind: str, unit_id: int, buckets: int = DEFAULT_BUCKETS) -> int:
    """The bucket of a poll unit; the store's SQL expression (`store.buckets.bucket_expr`) must agree."""
    return (unit_id * HASH_MULTIPLIER + kind_salt(kind)) % buckets


def fair_share(buckets: int, replicas: int) -> int:
    """How many buckets one replica should hold: rounded up, so the shares always cover every bucket."""
    return math.ceil(buckets / max(replicas, 1))


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """What a replica does at one heartbeat: buckets to try to take, buckets to hand back."""

    take: tuple[int, ...]
    release: tuple[int, ...]


def plan_leases(held: Iterable[int], available: Iterable[int], share: int) -> LeasePlan:
    """Take free or expired buckets up to `share`, release the surplus above it (highest first, so
    replicas shrinking at once tend to release different ones). A newcomer counts as a live replica
    before it holds anything, so the others' shares shrink and they hand buckets back for it to take."""
    mine = sorted(set(held))
    if len(mine) > share:
        return LeasePlan(take=(), release=tuple(mine[share:]))
    room = share - len(mine)
    candidates = sorted(set(available) - set(mine))
    return LeasePlan(take=tuple(candidates[:room]), release=())


def next_due(due: datetime, now: datetime, step: timedelta) -> datetime:
    """A fixed-rate schedule: `step` after the time the unit was due, or after now when that has passed."""
    return due + step if due + step > now else now + step


def jittered(interval: timedelta, rng: random.Random | None = None) -> timedelta:
    """One period: the interval shortened by up to JITTER (see JITTER)."""
    factor = (rng or random).uniform(1.0 - JITTER, 1.0)
    return interval * factor


def first_polls(
    units: Iterable[int], now: datetime, until: datetime, rng: random.Random | None = None
) -> dict[int, datetime]:
    """Due times of units taken over at `now`, spread evenly (in random order) over [now, until), so a
    taken-over bucket costs Canvas a steady rate, not a burst. `until` is when the last of them must be
    polled: one interval after the previous owner's lease ran out (it polled each unit at most one
    interval before that), never before now."""
    ordered = list(units)
    (rng or random).shuffle(ordered)
    window = max(until - now, timedelta(0))
    step = window / len(ordered) if ordered else timedelta(0)
    return {unit: now + step * index for index, unit in enumerate(ordered)}


class Schedule:
    """Poll units by due time (a heap with lazy deletion): the replica's own copy of its buckets' poll
    schedule, kept in memory so a poll that changes nothing writes nothing."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int]] = []
        self._due: dict[int, datetime] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, unit: int) -> bool:
        return unit in self._due

    def units(self) -> list[int]:
        return list(self._due)

    def due_at(self, unit: int) -> datetime | None:
        return self._due.get(unit)

    def put(self, unit: int, due: datetime) -> None:
        """Schedule (or reschedule) a unit at `due`."""
        self._due[unit] = due
        heapq.heappush(self._heap, (due, unit))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._compact()

    def request(self, unit: int, now: datetime) -> None:
        """Poll this unit now (a Live Event, a scan): earlier than its schedule, never later."""
        due = self._due.get(unit)
        if due is None or due > now:
            self.put(unit, now)

    def remove(self, unit: int) -> None:
        self._due.pop(unit, None)  # its heap entries are skipped when they surface

    def pop_due(self, now: datetime, limit: int) -> list[tuple[int, datetime]]:
        """Up to `limit` units due by `now`, earliest first, each with the time it was due. They leave
        the schedule: the caller puts each back at its next due time."""
        popped: list[tuple[int, datetime]] = []
        while self._heap and len(popped) < limit:
            due, unit = self._heap[0]
            if self._due.get(unit) != due:
                heapq.heappop(self._heap)  # stale: rescheduled or removed since
                continue
            if due > now:
                break
            heapq.heappop(self._heap)
            del self._due[unit]
            popped.append((unit, due))
        return popped

    def oldest_due(self) -> datetime | None:
        """The earliest due time in the schedule (None: empty)."""
        while self._heap:
            due, unit = self._heap[0]
            if self._due.get(unit) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def lag(self, now: datetime) -> timedelta:
        """How late the most overdue unit is (zero when none is)."""
        oldest = self.oldest_due()
        return max(now - oldest, timedelta(0)) if oldest is not None else timedelta(0)

    def _compact(self) -> None:
        self._heap = [(due, unit) for unit, due in self._due.items()]
        heapq.heapify(self._heap)


def recently_checked(last_success: datetime | None, failing: bool, lease_live: bool) -> bool:
    """Whether a unit is being polled on schedule, so "checked within the last interval" is what a person
    should be told. A poll that changes nothing writes nothing (issue 14), so the stored success is only
    the unit's first one (or the last before an error): what says polling goes on is that the unit's
    bucket is leased by a live replica (`lease_live`), which polls every unit of it each interval and
    writes any error it meets."""
    return last_success is not None and not failing and lease_live
