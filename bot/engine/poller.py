"""Poll due units against Canvas, diff, and write state + outbox rows.

Every unit is polled on its own: a claimed unit's poll runs as a task with a total deadline (all pages,
refreshes and look-ups together), holding one slot of the shared Canvas budget (the semaphore) with the
database released. Results are written as they complete, by one writer that takes whatever has finished
since its last write (so a busy poller still writes in batches), and a write that fails is retried unit by
unit so one unit's bad data cannot sink the others. A slow or hanging Canvas for one user therefore costs
that user a slot and a back-off, never anyone else's alert. The same loop serves linked users and channel
subscriptions (see poll_units.py for what differs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, InvalidToken, Throttled, Transient
from bot.domain.attendance import snapshots_of
from bot.domain.diff import Diff, Event, diff, vanished
from bot.domain.models import Conference
from bot.domain.outbox import OutboxEvent
from bot.engine import alerts
from bot.engine.contexts import ContextNames, fallback_name
from bot.engine.credentials import Credentials, RelinkNeeded
from bot.engine.poll_units import PollJob, PollUnits
from bot.engine.recordings import watch_row
from bot.ops.metrics import Metrics
from bot.store import attendance, repo, sessions
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_BACKOFF_FACTOR = 4
CLAIMED_AHEAD = 2
"""Units claimed at most: this many batches. A claim is a lease, so a claimed unit waiting for a Canvas
slot must not wait long; two batches keep the slots busy while the next claim runs."""


@dataclass(slots=True)
class PollOutcome:
    job: PollJob
    result: Diff | None = None
    names: dict[tuple[str, int], str] = field(default_factory=dict)
    error: Exception | None = None
    relink_reason: str | None = None
    closed: dict[int, datetime] = field(default_factory=dict)  # opened sessions Canvas says have ended

    @property
    def result_name(self) -> str:
        if self.result is not None:
            return "ok"
        if self.relink_reason is not None:
            return "InvalidToken"
        return type(self.error).__name__


def next_due(due: datetime, now: datetime, step: timedelta) -> datetime:
    """A fixed-rate schedule: `step` after the time the unit was due, or after now when that has passed."""
    return due + step if due + step > now else now + step


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
        semaphore: AbstractAsyncContextManager[object],  # asyncio.Semaphore or engine.limiter's
        deadline: float = 30.0,
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
        self._deadline = deadline
        self._batch_size = batch_size
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._metrics = metrics
        self._in_flight: dict[int, asyncio.Task[None]] = {}  # unit id -> its poll, until written
        self._due_again: set[int] = set()  # in flight when claimed again: poll again once written
        self._finished: list[PollOutcome] = []  # polled, waiting for the writer
        self._has_finished = asyncio.Event()
        self._room = asyncio.Event()  # set whenever a unit leaves _in_flight
        self._writer: asyncio.Task[None] | None = None

    def next_poll(self, due: datetime) -> datetime:
        """When a unit claimed now, that was due at `due`, is due next: one interval after `due`.

        Counted from when it was due, not from when it was claimed, so a tick's lag (a busy process, a
        slow database) delays that one poll but does not stretch every later period by it; a unit
        claimed more than an interval late starts afresh from now. Jitter spreads polls, downwards only,
        so no unit waits longer than one interval."""
        return next_due(due, self._clock(), timedelta(seconds=self._interval * random.uniform(0.85, 1.0)))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def tick(self) -> int:
        """Claim every due unit and start its poll; returns how many were claimed.

        It does not wait for the polls: they finish (or hit their deadline) on their own and the writer
        records them. It claims while units are due and there is room (CLAIMED_AHEAD batches), waiting
        for room when the poller is full, so a tick lasts as long as there is due work and no longer.
        """
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_finished(), name=f"{self._units.kind}-writer")
        limit = self._batch_size * CLAIMED_AHEAD
        total = 0
        while True:
            room = limit - len(self._in_flight)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            wanted = min(room, self._batch_size)
            async with self._sessions.begin() as session:
                jobs = await self._units.claim(session, self._clock(), wanted, self.next_poll)
            for job in jobs:
                if job.unit_id in self._in_flight:
                    # One poll at a time. It was due again (a Live Event or a scan asked for it, or the
                    # lease ran out): the poll in flight may have asked Canvas before what prompted this,
                    # so it is due again as soon as that poll is written, not an interval later.
                    self._due_again.add(job.unit_id)
                    continue
                self._in_flight[job.unit_id] = asyncio.create_task(self._poll_and_hand_over(job))
            total += len(jobs)
            if len(jobs) < wanted:
                return total

    async def settle(self) -> None:
        """Wait until every poll started so far is written (tests, benchmarks, shutdown)."""
        while self._in_flight:
            self._room.clear()
            await self._room.wait()

    async def close(self) -> None:
        """Stop polling: cancel polls in flight (their units fall due again) and the writer."""
        tasks = [*self._in_flight.values(), *([self._writer] if self._writer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()

    async def _poll_and_hand_over(self, job: PollJob) -> None:
        outcome = await self._poll(job)
        self._finished.append(outcome)
        self._has_finished.set()

    async def _write_finished(self) -> None:
        """The one writer: records whatever has finished since its previous write, then lets units go."""
        while True:
            await self._has_finished.wait()
            self._has_finished.clear()
            while self._finished:
                batch = self._finished[: self._batch_size]
                del self._finished[: len(batch)]
                try:
                    await self._write_each_alone_on_failure(batch)
                except Exception:  # the writer must outlive anything; the units are due again anyway
                    log.exception("writing %d %s poll results failed", len(batch), self._units.kind)
                for outcome in batch:
                    self._in_flight.pop(outcome.job.unit_id, None)
                    if self._metrics:
                        self._metrics.poll_result(self._units.kind, outcome.result_name)
                await self._poll_again_if_asked(batch)
                self._room.set()

    async def _poll_again_if_asked(self, written: list[PollOutcome]) -> None:
        """Units claimed again while these polls were in flight are due now. Checked after they left
        `_in_flight`, so a claim that comes later polls them itself and none is missed in between; a
        unit that failed keeps its back-off."""
        again = [o.job.unit_id for o in written if o.job.unit_id in self._due_again and o.result is not None]
        self._due_again.difference_update(o.job.unit_id for o in written)
        if not again:
            return
        try:
            async with self._sessions.begin() as session:
                await self._units.record(session, again, next_poll_at=self._clock())
        except Exception:  # they are due an interval later anyway
            log.exception("could not make %d %s polls due again", len(again), self._units.kind)

    async def _write_each_alone_on_failure(self, outcomes: list[PollOutcome]) -> None:
        """One transaction for the batch; if the database refuses it, each unit alone, so a value that
        cannot be stored fails only its own unit (recorded as that unit's error, with back-off)."""
        try:
            await self._write(outcomes)
            return
        except Exception as error:
            if len(outcomes) == 1:
                await self._record_unwritable(outcomes[0], error)
                return
        for outcome in outcomes:
            try:
                await self._write([outcome])
            except Exception as error:
                await self._record_unwritable(outcome, error)

    async def _record_unwritable(self, outcome: PollOutcome, error: Exception) -> None:
        job = outcome.job
        log.error("could not store the poll of %s %s (%s); backing off", self._units.kind, job.unit_id, error)
        now = self._clock()
        failed = Transient(f"result could not be stored: {type(error).__name__}")
        async with self._sessions.begin() as session:
            await self._units.record(
                session,
                [job.unit_id],
                consecutive_failures=job.failures + 1,
                last_error=f"StoreError: {type(error).__name__}"[:255],
                last_poll_at=now,
                next_poll_at=self._retry_at(job, failed, now),
            )
        outcome.result, outcome.error = None, failed

    async def _poll(self, job: PollJob) -> PollOutcome:
        outcome = PollOutcome(job=job)
        async with self._semaphore:
            try:
                async with asyncio.timeout(self._deadline):
                    await self._poll_within_deadline(job, outcome)
            except RelinkNeeded as error:
                outcome.relink_reason = error.reason
            except CanvasError as error:
                outcome.error = error
            except TimeoutError:
                outcome.error = Transient(f"the whole poll took longer than {self._deadline:g}s")
            except Exception as error:  # one unit's surprise must not sink the others; retried with back-off
                log.exception("poll of %s %s failed unexpectedly", self._units.kind, job.unit_id)
                outcome.error = error
        return outcome

    async def _poll_within_deadline(self, job: PollJob, outcome: PollOutcome) -> None:
        """Poll with the token `Credentials.call` gives: a 401 anywhere refreshes once and polls again."""

        async def poll_with(token: str) -> tuple[Diff, dict[tuple[str, int], str]]:
            current = await self._units.fetch(self._canvas, token, job, self._clock())
            resolved = await self._resolve_vanished(token, job, current)
            opened = {cid: hint.opened_at for cid, hint in job.opened.items()}
            result = diff(job.previous, current, self._clock(), resolved=resolved, opened=opened)
            # An opened session whose details show an end is closed, so later polls stop looking it up.
            outcome.closed = {
                cid: ended
                for cid in job.opened
                if cid in resolved and (ended := resolved[cid].ended_at) is not None
            }
            started = {(e.context_type, e.context_id) for e in result.events if e.kind == "started"}
            return result, await self._contexts.lookup(token, started)

        outcome.result, outcome.names = await self._credentials.call(job.token, poll_with)

    async def _resolve_vanished(
        self, token: str, job: PollJob, current: list[Conference]
    ) -> dict[int, Conference]:
        """Look up conferences missing from the live list, to learn whether and when they really ended,
        and those with a session opened beyond the live scope, to learn whether they are running.

        Every poll while one is missing, not only the first: the details decide (see `diff`), and a
        list that flaps for longer than the grace polls must not end a session Canvas says is running.
        """
        missing = vanished(job.previous, current)
        live_ids = {c.id for c in current}
        hinted = {cid: hint for cid, hint in job.opened.items() if cid not in live_ids}
        contexts = {(seen.context_type, seen.context_id) for seen in missing}
        contexts |= {(hint.context_type, hint.context_id) for hint in hinted.values()}
        wanted = {seen.conference_id for seen in missing} | set(hinted)
        resolved: dict[int, Conference] = {}
        for context_type, context_id in contexts:
            try:
                if context_type == "Group":
                    listed = await self._canvas.group_conferences(token, context_id)
                else:
                    listed = await self._canvas.course_conferences(token, context_id)
            except InvalidToken:
                raise  # Credentials.call's to answer: refresh once and poll again, or relink
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
                    events = await self._new_to_slack(session, job, self._announced(job, outcome))
                    rows.extend(self._rows_for(job, outcome, events, now))
                    watches.extend(self._watches_for(job, [e for e, _ in events if e.kind == "ended"], now))
                    # Who came, as Canvas listed it at the end (every end it reported, alerts on or off).
                    await attendance.save_snapshots(session, snapshots_of(outcome.result.events), now)
                    for conference_id, ended_at in outcome.closed.items():
                        await sessions.close_opened_session(session, conference_id, ended_at)
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

    async def _new_to_slack(self, session: Any, job: PollJob, events: list[Event]) -> list[tuple[Event, str]]:
        """Each event with the outbox event it becomes, given what this session's card already shows.

        A start of a session whose card was edited to "ended" (Canvas's live list flapped for longer
        than its details could tell us, or the details were unreachable) is a "reopened" edit back to
        live; an end of a card already ended adds nothing. Ends and reopenings are numbered so a card
        can go ended -> live -> ended again, each edit once (keys `ended`, `reopened:1`, `ended:2`...).
        """
        edits: list[tuple[Event, str]] = []
        for event in events:
            history = await repo.session_history(
                session, job.team_id, job.destination, event.conference_id, event.started_at
            )
            shows_ended = history.ended > history.reopened
            if event.kind == "started" and not history.started:
                edits.append((event, "started"))
            elif event.kind == "started" and shows_ended:
                edits.append((event, f"reopened:{history.reopened + 1}"))
            elif event.kind == "ended" and not shows_ended:
                if history.started and await repo.cancel_unsent_alert(
                    session,
                    job.team_id,
                    job.destination,
                    event.conference_id,
                    event.started_at,
                    self._clock(),
                ):
                    continue  # its alert never left: nothing to edit, nothing to follow up
                edits.append((event, "ended" if history.ended == 0 else f"ended:{history.ended + 1}"))
        return edits

    def _rows_for(
        self, job: PollJob, outcome: PollOutcome, events: list[tuple[Event, str]], now: datetime
    ) -> list[dict[str, Any]]:
        """Outbox rows; starts during the user's quiet hours are held for the summary (quiet_summaries.py)."""
        quiet = job.quiet is not None and job.quiet.active(now)
        rows = []
        for event, edit in events:
            edit_event, _, number = edit.partition(":")  # "ended", "reopened:1", "ended:2" (_new_to_slack)
            rows.append(
                alerts.outbox_row(
                    event,
                    team_id=job.team_id,
                    destination=job.destination,
                    context_name=outcome.names.get((event.context_type, event.context_id))
                    or fallback_name((event.context_type, event.context_id)),
                    canvas_root=self._canvas_root,
                    now=now,
                    edit=OutboxEvent(edit_event),
                    occurrence=int(number) if number else None,
                    quiet=quiet,
                )
            )
        return rows

    def _watches_for(self, job: PollJob, ended: list[Event], now: datetime) -> list[dict[str, Any]]:
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
            for event in ended
        ]

    def _retry_at(self, job: PollJob, error: Exception, now: datetime) -> datetime:
        """Exponential back-off from the poll interval, capped at MAX_BACKOFF_FACTOR intervals so a unit
        misses at most a few minutes of alerts after Canvas recovers; a throttle's Retry-After is a floor."""
        delay = timedelta(seconds=self._interval * min(2**job.failures, MAX_BACKOFF_FACTOR))
        if isinstance(error, Throttled) and error.retry_after:
            delay = max(delay, timedelta(seconds=error.retry_after))
        return now + min(delay, MAX_BACKOFF)
