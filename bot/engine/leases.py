"""This replica's bucket leases (issue 14): which poll units it polls, renewed by a heartbeat.

Every `renew_every` (a third of the lease) the heartbeat renews the held buckets and this replica's
liveness row, then takes free or expired buckets up to its fair share of the live replicas, or hands back
its surplus when a replica joined. The pollers read `held` on every tick and load or drop units to match.
A replica whose heartbeat cannot reach the database keeps polling only until its own lease would have run
out, then stops: by then another replica may have taken its buckets.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.buckets import DEFAULT_BUCKETS, fair_share, plan_leases
from bot.store import buckets as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(seconds=30)


def replica_name() -> str:
    """Unique per process (host, pid and a random tail: a restarted process is a new replica)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Taken:
    """A bucket this replica took, and until when its units had been polled by someone else: its units
    must all be polled within one interval of that."""

    bucket: int
    covered_until: datetime | None


class BucketLeases:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        buckets: int = DEFAULT_BUCKETS,
        lease: timedelta = DEFAULT_LEASE,
        replica: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.buckets = buckets
        self.lease = lease
        self.replica = replica or replica_name()
        self._clock = clock
        self._held: dict[int, datetime | None] = {}  # bucket -> covered_until when taken
        self._generation = 0
        self._renewed_at: datetime | None = None  # last heartbeat that reached the database
        self._first_try: datetime | None = None  # the first heartbeat's start: lag counts from it
        self._created = False

    @property
    def renew_every(self) -> timedelta:
        return self.lease / 3

    @property
    def generation(self) -> int:
        """Bumped whenever `held` changes, so a poller knows to resynchronise."""
        return self._generation

    @property
    def held(self) -> dict[int, datetime | None]:
        """Held buckets, each with when its previous holder's lease ended (None: nobody held it)."""
        return dict(self._held)

    @property
    def last_renewed(self) -> datetime | None:
        """When the heartbeat last reached the database (None: never yet)."""
        return self._renewed_at

    def lag(self, now: datetime) -> timedelta | None:
        """How far the heartbeat is behind (None before it is first tried): the leases, and with them
        the polling, stop when it falls a lease behind. A replica whose first heartbeat never gets
        through (the database locked from the start) polls nothing, and lags from that first try."""
        since = self._renewed_at or self._first_try
        if since is None:
            return None
        return max(now - since - self.renew_every, timedelta(0))

    async def renew(self) -> int:
        """One heartbeat: renew, then take or release toward the fair share; returns buckets held."""
        now = self._clock()
        self._first_try = self._first_try or now
        try:
            async with self._sessions.begin() as session:
                if not self._created:
                    await store.ensure_buckets(session, self.buckets)
                still = await store.heartbeat(session, self.replica, list(self._held), now, self.lease)
                replicas = await store.live_replicas(session, now)
                share = fair_share(self.buckets, replicas)
                plan = plan_leases(still, (), share)
                taken: dict[int, datetime | None] = {}
                if plan.release:
                    await store.release(session, self.replica, plan.release, now)
                else:
                    taken = await store.take(
                        session, self.replica, share - len(still), self.buckets, now, self.lease, still
                    )
        except Exception as error:
            log.warning("bucket lease heartbeat failed (%s); retrying", type(error).__name__)
            self.expire_if_lapsed(now)
            return len(self._held)
        self._created = True
        self._renewed_at = now
        before = set(self._held)
        lost = before - still
        if lost:
            log.warning("lost %d poll buckets to another replica", len(lost))
        held = {bucket: self._held[bucket] for bucket in still if bucket not in plan.release}
        held.update(taken)
        self._held = held
        if set(held) != before:
            self._generation += 1
            log.info("holding %d of %d poll buckets (%d live replicas)", len(held), self.buckets, replicas)
        return len(held)

    def expire_if_lapsed(self, now: datetime) -> None:
        """The heartbeat has not reached the database for a lease (failing, or stuck behind a lock):
        another replica may hold these buckets now, so this one stops polling them."""
        if self._held and self._renewed_at is not None and now >= self._renewed_at + self.lease:
            log.warning("poll bucket leases lapsed; polling stops until the database answers")
            self._held = {}
            self._generation += 1

    async def retire(self) -> None:
        """Shutdown: hand every bucket back at once, so another replica need not wait out the lease."""
        held, self._held = self._held, {}
        self._generation += 1
        if not self._created and not held:
            return
        try:
            async with self._sessions.begin() as session:
                await store.retire(session, self.replica, self._clock())
        except Exception as error:
            log.warning(
                "could not release poll buckets (%s); they expire in %s", type(error).__name__, self.lease
            )
