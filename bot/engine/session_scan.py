"""The session scan: a slower full listing per linked user that sees what the live poll cannot.

`GET /api/v1/conferences?state=live` only shows conferences first started within the last day. Every
`SESSION_SCAN_INTERVAL_SECONDS` (jittered, spread like polls) each user's full listing is compared with
the last one (domain/sessions.py): scheduled times feed reminders and nudges, and a conference older than
a day whose `ended_at` went back to null was restarted, so a session is opened for it (shared by every
destination) and its participants are polled at once. Only differences are written.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError
from bot.domain.models import LIVE_WINDOW, Conference
from bot.domain.sessions import compare_scan
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
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

DATABASE_WRITERS = 4
"""Scans of one batch writing their results at once. A batch is hundreds of scans gathered together: each
opening its own transaction as its listing arrived took every pooled connection, and other jobs (the
poll writer, quiet-hour summaries) timed out waiting for one (bench.scale, 100k users)."""

Listing = tuple[list[Conference], frozenset[tuple[str, int]]]


class SessionScanner:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        contexts: ContextNames,
        *,
        interval: float,
        semaphore: AbstractAsyncContextManager[object],  # asyncio.Semaphore or engine.limiter's
        deadline: float = 30.0,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._canvas = canvas
        self._credentials = credentials
        self._contexts = contexts
        self._interval = interval
        self._semaphore = semaphore
        self._deadline = deadline
        self._batch_size = batch_size
        self._clock = clock
        self._writers = asyncio.Semaphore(DATABASE_WRITERS)
        self._teaching: dict[
            int, tuple[datetime, frozenset[tuple[str, int]]]
        ] = {}  # user -> (until, courses)

    def _next_scan(self) -> datetime:
        """Jittered upwards only, so scans never cost more than one listing per interval per user."""
        return self._clock() + timedelta(seconds=self._interval * random.uniform(1.0, 1.15))

    async def tick(self) -> int:
        """Scan every user whose scan is due (up to a batch); returns how many were scanned."""
        async with self._sessions.begin() as session:
            users = await store.claim_due_scans(session, self._clock(), self._batch_size, self._next_scan)
            jobs = [(user.id, StoredToken.of(user)) for user in users]
        await asyncio.gather(*(self._scan(user_id, token) for user_id, token in jobs))
        return len(jobs)

    async def _scan(self, user_id: int, token: StoredToken) -> None:
        failed = False
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._deadline):
                    listed, teaching = await self._credentials.call(
                        token, lambda access: self._listing(user_id, access)
                    )
            except (CanvasError, RelinkNeeded, TimeoutError) as error:
                # The live poll owns back-off and relinking; a scan tries again a little later.
                log.info("session scan of linked user %s failed: %s", user_id, type(error).__name__)
                failed = True
        async with self._writers:
            await self._record(user_id, None if failed else (listed, teaching))

    async def _record(self, user_id: int, scanned: Listing | None) -> None:
        """Write one scan's result (None: it failed, retry it soon)."""
        if scanned is None:
            retry_at = self._clock() + timedelta(seconds=min(self._interval / 10, FAILED_SCAN_RETRY_SECONDS))
            async with self._sessions.begin() as session:
                await store.retry_scan_soon(session, user_id, retry_at)
            return
        listed, teaching = scanned
        now = self._clock()
        async with self._sessions.begin() as session:
            changes = compare_scan(await store.load_catalog(session, user_id), listed, now, teaching)
            await store.write_catalog(session, user_id, changes)
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
            if changes.restarts:
                log.info(
                    "session scan: %d conference(s) restarted beyond the live scope", len(changes.restarts)
                )
                await store.poll_participants_now(session, [r.conference_id for r in changes.restarts], now)

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
