"""The session scan: a slower full listing per linked user that sees what the live poll cannot.

`GET /api/v1/conferences?state=live` only shows conferences first started within the last day. Every
`SESSION_SCAN_INTERVAL_SECONDS` (jittered, spread like polls) each user's full listing is compared with
the last one (domain/sessions.py): scheduled times feed reminders and nudges, and a conference older than
a day whose `ended_at` went back to null was restarted, so a session is opened for it (shared by every
destination) and its participants are polled at once. Only differences are written.

Which users are due lives in memory, as the polls' schedule does (issue 14): a replica scans the linked
users it polls (its buckets'), so a scan that finds nothing new writes nothing. The one write a scan
schedule makes is `next_scan_at` on a user's first scan, which marks them scanned: a user never scanned
is scanned at once, by whichever replica holds them; the others' first scans after a start or a takeover
are spread over one interval, like the polls' (no replica knows when the previous holder last scanned).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError
from bot.domain.buckets import Schedule
from bot.domain.models import LIVE_WINDOW, Conference
from bot.domain.sessions import compare_scan
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.store import repo
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

SCHEDULE_HORIZON = timedelta(days=1)
"""Enrollments (who teaches) are fetched only for users with a conference scheduled this close: the one
thing they are needed for is the host nudge."""

FAILED_SCAN_RETRY_SECONDS = 60.0
"""A failed scan is retried after a tenth of the scan interval, at most this long."""

TEACHING_TTL = timedelta(hours=12)
"""How long a user's teaching roles, read for the host nudge, are trusted (per process)."""

Listing = tuple[list[Conference], frozenset[tuple[str, int]]]


@dataclass(frozen=True, slots=True)
class _Scanned:
    """One user's successful scan, waiting to be recorded."""

    user_id: int
    listed: list[Conference]
    teaching: frozenset[tuple[str, int]]
    first: bool


class SessionScanner:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        contexts: ContextNames,
        *,
        units: Callable[[], Collection[int]],
        interval: float,
        semaphore: AbstractAsyncContextManager[object],  # asyncio.Semaphore or engine.limiter's
        deadline: float = 30.0,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`units`: the linked users this replica polls (the user poller's schedule), the ones it scans."""
        self._units = units
        self._schedule = Schedule()
        self._sessions = sessions
        self._canvas = canvas
        self._credentials = credentials
        self._contexts = contexts
        self._interval = interval
        self._semaphore = semaphore
        self._deadline = deadline
        self._batch_size = batch_size
        self._clock = clock
        self._teaching: dict[
            int, tuple[datetime, frozenset[tuple[str, int]]]
        ] = {}  # user -> (until, courses)

    def _next_scan(self) -> datetime:
        """Jittered upwards only, so scans never cost more than one listing per interval per user."""
        return self._clock() + timedelta(seconds=self._interval * random.uniform(1.0, 1.15))

    def due_at(self, user_id: int) -> datetime | None:
        """When this user's next scan is due here (None: not one of this replica's users)."""
        return self._schedule.due_at(user_id)

    async def tick(self) -> int:
        """Scan every user whose scan is due (up to a batch); returns how many were scanned."""
        now = self._clock()
        await self._follow_units(now)
        due = self._schedule.pop_due(now, self._batch_size)
        for user_id, _ in due:
            self._schedule.put(user_id, self._next_scan())
        if not due:
            return 0
        async with self._sessions() as session:
            users = await repo.load_users(session, [user_id for user_id, _ in due])
            never = await store.never_scanned(session, [user.id for user in users])
        for gone in {user_id for user_id, _ in due} - {user.id for user in users}:
            self._schedule.remove(gone)  # unlinked or must relink: the poller drops it too
        pending = {
            asyncio.create_task(self._scan(user.id, StoredToken.of(user), user.id in never)) for user in users
        }
        while pending:  # write what has finished, in one transaction, while the rest are still out
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            finished = [scanned for task in done if (scanned := self._result_of(task)) is not None]
            if finished:
                await self._record_or_retry(finished)
        return len(users)

    async def _record_or_retry(self, scans: list[_Scanned]) -> None:
        """Record these scans; if the database refuses, they are scanned again soon (the rest of the batch
        still goes on: a scan is only worth its write)."""
        try:
            await self._record(scans)
        except Exception:
            log.exception("recording %d session scans failed; they are retried soon", len(scans))
            for scan in scans:
                self._retry_soon(scan.user_id)

    @staticmethod
    def _result_of(task: asyncio.Task[_Scanned | None]) -> _Scanned | None:
        if task.cancelled():
            return None
        if (error := task.exception()) is not None:  # one user's surprise must not sink the batch
            log.error("session scan failed unexpectedly", exc_info=error)
            return None
        return task.result()

    async def _follow_units(self, now: datetime) -> None:
        """Scan what this replica polls: drop users it no longer polls, add those it took on (never
        scanned: due now; the others spread over one interval)."""
        held = self._units()
        for user_id in [u for u in self._schedule.units() if u not in held]:
            self._schedule.remove(user_id)
        new = [user_id for user_id in held if user_id not in self._schedule]
        if not new:
            return
        async with self._sessions() as session:
            never = await store.never_scanned(session, new)
        for user_id in new:
            spread = timedelta(seconds=random.uniform(0.0, self._interval))
            self._schedule.put(user_id, now if user_id in never else now + spread)

    async def _scan(self, user_id: int, token: StoredToken, first: bool) -> _Scanned | None:
        """One user's listing (None: it failed, and is retried soon, in memory)."""
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._deadline):
                    listed, teaching = await self._credentials.call(
                        token, lambda access: self._listing(user_id, access)
                    )
            except (CanvasError, RelinkNeeded, TimeoutError) as error:
                # The live poll owns back-off and relinking; a scan tries again a little later.
                log.info("session scan of linked user %s failed: %s", user_id, type(error).__name__)
                self._retry_soon(user_id)
                return None
        return _Scanned(user_id, listed, teaching, first)

    def _retry_soon(self, user_id: int) -> None:
        """Scan again within a tenth of the interval: until a scan is recorded, the user's schedules and
        Live Event participations are unknown. In memory: nothing is known to write."""
        if user_id in self._schedule:
            retry = timedelta(seconds=min(self._interval / 10, FAILED_SCAN_RETRY_SECONDS))
            self._schedule.put(user_id, self._clock() + retry)

    async def _record(self, scans: list[_Scanned]) -> None:
        """Write what these scans changed, in one transaction with one read of their catalogs (a scan that
        found nothing new writes nothing); a user's first scan marks them scanned."""
        now = self._clock()
        async with self._sessions.begin() as session:
            catalogs = await store.load_catalogs(session, [scan.user_id for scan in scans])
            restarted: list[int] = []
            for scan in scans:
                changes = compare_scan(catalogs.get(scan.user_id, {}), scan.listed, now, scan.teaching)
                await store.write_catalog(session, scan.user_id, changes)
                for restart in changes.restarts:
                    await store.open_session(
                        session,
                        conference_id=restart.conference_id,
                        context_type=restart.context_type,
                        context_id=restart.context_id,
                        opened_at=restart.opened_at,
                        source="scan",
                        lasts=LIVE_WINDOW,
                    )
                    restarted.append(restart.conference_id)
                if scan.first:
                    await store.mark_scanned(
                        session, scan.user_id, self._schedule.due_at(scan.user_id) or now
                    )
            if restarted:
                log.info("session scan: %d conference(s) restarted beyond the live scope", len(restarted))
                await store.poll_participants_now(session, restarted, now)

    async def _listing(self, user_id: int, token: str) -> Listing:
        conferences = await self._canvas.all_conferences(token)
        now = self._clock()
        soon = [
            c
            for c in conferences
            if c.start_at is not None and now - SCHEDULE_HORIZON < c.start_at < now + SCHEDULE_HORIZON
        ]
        if not soon:
            return conferences, frozenset()
        await self._contexts.lookup(
            token, {(c.context_type, c.context_id) for c in soon}
        )  # names for reminders
        return conferences, await self._courses_taught(user_id, token, now)

    async def _courses_taught(self, user_id: int, token: str, now: datetime) -> frozenset[tuple[str, int]]:
        """The courses the user teaches, read from Canvas at most every TEACHING_TTL: roles rarely change,
        and reading them on every scan would add a request per scan to every teacher's budget."""
        known = self._teaching.get(user_id)
        if known is not None and known[0] > now:
            return known[1]
        courses = await self._canvas.courses(token)
        taught = frozenset(("Course", course.id) for course in courses if course.taught)
        if len(self._teaching) > 10 * self._batch_size:  # drop what expired before growing further
            self._teaching = {uid: entry for uid, entry in self._teaching.items() if entry[0] > now}
        self._teaching[user_id] = (now + TEACHING_TTL, taught)
        return taught
