"""Poll due users against Canvas, diff, and write state + outbox rows in one transaction.

Fetches run concurrently (bounded by a semaphore, over one shared httpx pool) with the database released;
only the claim and the write-back touch it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, InvalidToken, Throttled
from bot.canvas.models import Conference
from bot.engine import alerts
from bot.engine.contexts import ContextNames, fallback_name
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.diff import Diff, Seen, diff, vanished
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import KnownConference, LinkedUser, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_BACKOFF_FACTOR = 4


@dataclass(slots=True)
class PollJob:
    """A claimed user, detached from the session so the fetch can run without holding the database."""

    user_id: int
    team_id: str
    slack_user_id: str
    alerts_enabled: bool
    linked_at: datetime
    failures: int
    previous: dict[int, Seen]
    token: StoredToken


@dataclass(slots=True)
class PollOutcome:
    job: PollJob
    result: Diff | None = None
    names: dict[tuple[str, int], str] = field(default_factory=dict)
    error: CanvasError | None = None
    relink_reason: str | None = None


class Poller:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        contexts: ContextNames,
        *,
        canvas_root: str,
        interval: float,
        concurrency: int,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._canvas = canvas
        self._credentials = credentials
        self._contexts = contexts
        self._canvas_root = canvas_root
        self._interval = interval
        self._semaphore = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._clock = clock
        self._on_enqueued = on_enqueued

    def next_poll(self, now: datetime) -> datetime:
        """Spread polls: +/-10 % jitter keeps users linked together from staying in lockstep."""
        return now + timedelta(seconds=self._interval * random.uniform(0.9, 1.1))

    async def tick(self) -> int:
        """Poll every due user (in batches); returns how many were polled."""
        total = 0
        while True:
            jobs = await self._claim()
            if not jobs:
                return total
            outcomes = await asyncio.gather(*(self._poll(job) for job in jobs))
            await self._write(outcomes)
            total += len(jobs)
            if len(jobs) < self._batch_size:
                return total

    async def _claim(self) -> list[PollJob]:
        now = self._clock()
        async with self._sessions.begin() as session:
            users = await repo.claim_due_users(
                session, now, limit=self._batch_size, lease=timedelta(seconds=self._interval)
            )
            if not users:
                return []
            known: dict[int, dict[int, Seen]] = defaultdict(dict)
            rows = await session.scalars(
                select(KnownConference).where(KnownConference.linked_user_id.in_([u.id for u in users]))
            )
            for row in rows:
                known[row.linked_user_id][row.conference_id] = Seen(
                    row.conference_id,
                    row.started_at,
                    row.title,
                    row.context_type,
                    row.context_id,
                    row.missing_polls,
                )
            for user in users:
                user.next_poll_at = self.next_poll(now)
            return [
                PollJob(
                    user_id=u.id,
                    team_id=u.team_id,
                    slack_user_id=u.slack_user_id,
                    alerts_enabled=u.alerts_enabled,
                    linked_at=u.linked_at,
                    failures=u.consecutive_failures,
                    previous=known.get(u.id, {}),
                    token=StoredToken.of(u),
                )
                for u in users
            ]

    async def _poll(self, job: PollJob) -> PollOutcome:
        outcome = PollOutcome(job=job)
        async with self._semaphore:
            try:
                token = await self._credentials.access_token(job.token)
                try:
                    current = await self._canvas.live_conferences(token)
                except InvalidToken:
                    if not job.token.refreshable:
                        raise
                    token = await self._credentials.refresh(job.token)
                    current = await self._canvas.live_conferences(token)
                now = self._clock()
                resolved = await self._resolve_vanished(token, job.previous, current)
                outcome.result = diff(job.previous, current, now, resolved=resolved)
                started = [e for e in outcome.result.events if e.kind == "started"]
                outcome.names = await self._contexts.lookup(
                    token, {(e.context_type, e.context_id) for e in started}
                )
            except RelinkNeeded as error:
                outcome.relink_reason = error.reason
            except InvalidToken as error:
                outcome.relink_reason = str(error) or "Canvas rejected the token"
            except CanvasError as error:
                outcome.error = error
        return outcome

    async def _resolve_vanished(
        self, token: str, previous: dict[int, Seen], current: list[Conference]
    ) -> dict[int, Conference]:
        """Look up conferences that just left the live list once, to learn their real ended_at."""
        first_miss = [seen for seen in vanished(previous, current) if seen.missing_polls == 0]
        contexts = {(seen.context_type, seen.context_id) for seen in first_miss}
        wanted = {seen.conference_id for seen in first_miss}
        resolved: dict[int, Conference] = {}
        for context_type, context_id in contexts:
            try:
                if context_type == "Group":
                    listed = await self._canvas.group_conferences(token, context_id)
                else:
                    listed = await self._canvas.course_conferences(token, context_id)
            except InvalidToken:
                raise
            except CanvasError:
                continue  # the grace-poll rule still ends it; an exact time is a nicety
            resolved.update({c.id: c for c in listed if c.id in wanted})
        return resolved

    async def _write(self, outcomes: list[PollOutcome]) -> None:
        now = self._clock()
        rows: list[dict[str, object]] = []
        succeeded: list[int] = []
        async with self._sessions.begin() as session:
            for outcome in outcomes:
                job = outcome.job
                if outcome.result is not None:
                    succeeded.append(job.user_id)
                    await repo.replace_known(session, job.user_id, job.previous, outcome.result.keep)
                    if job.alerts_enabled:
                        rows.extend(self._rows_for(job, outcome, now))
                elif outcome.relink_reason is not None:
                    await session.execute(
                        update(LinkedUser)
                        .where(LinkedUser.id == job.user_id)
                        .values(
                            needs_relink=True, relink_reason=outcome.relink_reason[:255], last_poll_at=now
                        )
                    )
                    rows.append(
                        alerts.relink_row(
                            job.team_id, job.slack_user_id, job.linked_at, outcome.relink_reason, now
                        )
                    )
                    log.warning(
                        "user %s needs to relink Canvas: %s", job.slack_user_id, outcome.relink_reason
                    )
                elif outcome.error is not None:
                    await session.execute(
                        update(LinkedUser)
                        .where(LinkedUser.id == job.user_id)
                        .values(
                            consecutive_failures=job.failures + 1,
                            last_error=type(outcome.error).__name__,
                            last_poll_at=now,
                            next_poll_at=self._retry_at(job, outcome.error, now),
                        )
                    )
            if succeeded:
                await session.execute(
                    update(LinkedUser)
                    .where(LinkedUser.id.in_(succeeded))
                    .values(last_poll_at=now, last_success_at=now, consecutive_failures=0, last_error=None)
                )
            await repo.enqueue(session, rows)
        if rows and self._on_enqueued:
            self._on_enqueued()

    def _rows_for(self, job: PollJob, outcome: PollOutcome, now: datetime) -> list[dict[str, object]]:
        assert outcome.result is not None
        return [
            alerts.outbox_row(
                event,
                team_id=job.team_id,
                destination=job.slack_user_id,
                context_name=outcome.names.get((event.context_type, event.context_id))
                or fallback_name((event.context_type, event.context_id)),
                canvas_root=self._canvas_root,
                now=now,
            )
            for event in outcome.result.events
        ]

    def _retry_at(self, job: PollJob, error: CanvasError, now: datetime) -> datetime:
        """Exponential back-off from the poll interval, capped at MAX_BACKOFF_FACTOR intervals so a user
        misses at most a few minutes of alerts after Canvas recovers; a throttle's Retry-After is a floor."""
        delay = timedelta(seconds=self._interval * min(2**job.failures, MAX_BACKOFF_FACTOR))
        if isinstance(error, Throttled) and error.retry_after:
            delay = max(delay, timedelta(seconds=error.retry_after))
        return now + min(delay, MAX_BACKOFF)
