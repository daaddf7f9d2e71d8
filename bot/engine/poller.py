"""Poll due units against Canvas, diff, and write state + outbox rows in one transaction.

Fetches run concurrently (bounded by a semaphore, over one shared httpx pool) with the database released;
only the claim and the write-back touch it. The same loop serves linked users and channel subscriptions
(see poll_units.py for what differs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, InvalidToken, Throttled
from bot.canvas.models import Conference
from bot.engine import alerts
from bot.engine.contexts import ContextNames, fallback_name
from bot.engine.credentials import Credentials, RelinkNeeded
from bot.engine.diff import Diff, Event, Seen, diff, vanished
from bot.engine.poll_units import PollJob, PollUnits
from bot.engine.quiet_summaries import HELD
from bot.engine.recordings import watch_row
from bot.metrics import Metrics
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_BACKOFF_FACTOR = 4
BATCHES_IN_FLIGHT = 2


@dataclass(slots=True)
class PollOutcome:
    job: PollJob
    result: Diff | None = None
    names: dict[tuple[str, int], str] = field(default_factory=dict)
    error: Exception | None = None
    relink_reason: str | None = None

    @property
    def result_name(self) -> str:
        if self.result is not None:
            return "ok"
        if self.relink_reason is not None:
            return "InvalidToken"
        return type(self.error).__name__


class Poller:
    def __init__(
        self,
        units: PollUnits,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        contexts: ContextNames,
        *,
        canvas_root: str,
        interval: float,
        semaphore: asyncio.Semaphore,
        batch_size: int = 500,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._units = units
        self._sessions = sessions
        self._canvas = canvas
        self._credentials = credentials
        self._contexts = contexts
        self._canvas_root = canvas_root
        self._interval = interval
        self._semaphore = semaphore
        self._batch_size = batch_size
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._metrics = metrics

    def next_poll(self) -> datetime:
        """Spread polls with jitter (downwards only, so no unit waits longer than one interval)."""
        return self._clock() + timedelta(seconds=self._interval * random.uniform(0.85, 1.0))

    async def tick(self) -> int:
        """Poll every due unit; returns how many were polled.

        Batches overlap: the next batch is claimed and polled while the previous one is still
        finishing and being written, so the Canvas budget (the semaphore) never sits idle between
        batches. At most BATCHES_IN_FLIGHT are claimed ahead; a claim is a lease, so that is safe.
        """
        total = 0
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                async with self._sessions.begin() as session:
                    jobs = await self._units.claim(session, self._clock(), self._batch_size, self.next_poll)
                if jobs:
                    running.add(asyncio.create_task(self._run_batch(jobs)))
                    total += len(jobs)
                if len(jobs) < self._batch_size:
                    break
                if len(running) >= BATCHES_IN_FLIGHT:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
        return total

    async def _run_batch(self, jobs: list[PollJob]) -> None:
        outcomes = await asyncio.gather(*(self._poll(job) for job in jobs))
        await self._write(outcomes)
        if self._metrics:
            for outcome in outcomes:
                self._metrics.poll_result(self._units.kind, outcome.result_name)

    async def _poll(self, job: PollJob) -> PollOutcome:
        outcome = PollOutcome(job=job)
        async with self._semaphore:
            try:
                token = await self._credentials.access_token(job.token)
                try:
                    current = await self._units.fetch(self._canvas, token, job, self._clock())
                except InvalidToken:
                    if not job.token.refreshable:
                        raise
                    token = await self._credentials.refresh(job.token)
                    current = await self._units.fetch(self._canvas, token, job, self._clock())
                resolved = await self._resolve_vanished(token, job.previous, current)
                outcome.result = diff(job.previous, current, self._clock(), resolved=resolved)
                started = {
                    (e.context_type, e.context_id) for e in outcome.result.events if e.kind == "started"
                }
                outcome.names = await self._contexts.lookup(token, started)
            except RelinkNeeded as error:
                outcome.relink_reason = error.reason
            except InvalidToken as error:
                outcome.relink_reason = str(error) or "Canvas rejected the token"
            except CanvasError as error:
                outcome.error = error
            except Exception as error:  # one unit's surprise must not sink the batch; retried with back-off
                log.exception("poll of %s %s failed unexpectedly", self._units.kind, job.unit_id)
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
        rows: list[dict[str, Any]] = []
        watches: list[dict[str, Any]] = []
        succeeded: list[int] = []
        async with self._sessions.begin() as session:
            for outcome in outcomes:
                job = outcome.job
                if outcome.result is not None:
                    succeeded.append(job.unit_id)
                    model = self._units.known_model
                    await repo.replace_known(session, model, job.unit_id, job.previous, outcome.result.keep)
                    events = self._announced(job, outcome)
                    rows.extend(self._rows_for(job, outcome, events, now))
                    watches.extend(self._watches_for(job, events, now))
                elif outcome.relink_reason is not None:
                    await self._dead_token(session, job, outcome.relink_reason, now, rows)
                elif outcome.error is not None:
                    await self._units.record(
                        session,
                        [job.unit_id],
                        consecutive_failures=job.failures + 1,
                        last_error=type(outcome.error).__name__,
                        last_poll_at=now,
                        next_poll_at=self._retry_at(job, outcome.error, now),
                    )
            if succeeded:
                await self._units.record(
                    session,
                    succeeded,
                    last_poll_at=now,
                    last_success_at=now,
                    consecutive_failures=0,
                    last_error=None,
                )
            await repo.enqueue(session, rows)
            await repo.watch_recordings(session, watches)
        if rows and self._on_enqueued:
            self._on_enqueued()

    async def _dead_token(
        self, session: Any, job: PollJob, reason: str, now: datetime, rows: list[dict[str, Any]]
    ) -> None:
        await repo.mark_needs_relink(session, job.token.user_id, reason, now)
        rows.extend(self._units.relink_rows(job, reason, now))
        if self._units.kind == "user":
            log.warning("user %s needs to relink Canvas: %s", job.destination, reason)

    def _announced(self, job: PollJob, outcome: PollOutcome) -> list[Event]:
        """Events that reach Slack: none with alerts off, no starts in muted courses."""
        assert outcome.result is not None
        if not job.alerts_enabled:
            return []
        return [
            event
            for event in outcome.result.events
            if event.kind == "ended" or (event.context_type, event.context_id) not in job.muted
        ]

    def _rows_for(
        self, job: PollJob, outcome: PollOutcome, events: list[Event], now: datetime
    ) -> list[dict[str, Any]]:
        """Outbox rows; starts during the user's quiet hours are held for the summary (quiet_summaries.py)."""
        held = job.quiet is not None and job.quiet.active(now)
        rows = [
            alerts.outbox_row(
                event,
                team_id=job.team_id,
                destination=job.destination,
                context_name=outcome.names.get((event.context_type, event.context_id))
                or fallback_name((event.context_type, event.context_id)),
                canvas_root=self._canvas_root,
                now=now,
            )
            for event in events
        ]
        if held:
            for row in rows:
                if row["event"] == "started":
                    row["status"] = HELD
        return rows

    def _watches_for(self, job: PollJob, events: list[Event], now: datetime) -> list[dict[str, Any]]:
        """Every ended alert starts a watch for its recordings (replied in the alert's thread)."""
        return [
            watch_row(
                team_id=job.team_id,
                destination=job.destination,
                event_conference_id=event.conference_id,
                started_at=event.started_at,
                context_type=event.context_type,
                context_id=event.context_id,
                linked_user_id=job.token.user_id,
                now=now,
                first_check=timedelta(seconds=self._interval),
            )
            for event in events
            if event.kind == "ended"
        ]

    def _retry_at(self, job: PollJob, error: Exception, now: datetime) -> datetime:
        """Exponential back-off from the poll interval, capped at MAX_BACKOFF_FACTOR intervals so a unit
        misses at most a few minutes of alerts after Canvas recovers; a throttle's Retry-After is a floor."""
        delay = timedelta(seconds=self._interval * min(2**job.failures, MAX_BACKOFF_FACTOR))
        if isinstance(error, Throttled) and error.retry_after:
            delay = max(delay, timedelta(seconds=error.retry_after))
        return now + min(delay, MAX_BACKOFF)
