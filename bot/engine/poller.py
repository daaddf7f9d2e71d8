"""Poll due units against Canvas, diff, and write state + outbox rows.

Which units are due lives in memory (issue 14): the replica leases hash buckets of the units
(engine/leases.py) and schedules its buckets' units in a heap, so a poll that changes nothing writes
nothing. The database is written only for a change: the live set, outbox rows, an error and its back-off
(written, so it survives a restart or a takeover), clearing an error, clearing a poll request. A Live
Event or a scan asks for a poll through `poll_requested_at`, which the holder of the unit's bucket reads on
every tick, as it reads the units linked since its previous tick.

Every unit is polled on its own: a due unit's poll runs as a task with a total deadline (all pages,
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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, InvalidToken, Throttled, Transient
from bot.domain.attendance import snapshots_of
from bot.domain.buckets import (
    Schedule,
    bucket_of,
    first_polls,
    jittered,
    next_due,
)
from bot.domain.diff import Diff, Event, diff, vanished
from bot.domain.models import Conference
from bot.domain.outbox import OutboxEvent
from bot.engine import alerts
from bot.engine.contexts import ContextNames, fallback_name
from bot.engine.credentials import Credentials, RelinkNeeded
from bot.engine.leases import BucketLeases
from bot.engine.poll_units import PollJob, PollUnits
from bot.engine.recordings import watch_row
from bot.ops.metrics import Metrics
from bot.store import attendance, repo, sessions
from bot.store import buckets as bucket_store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=30)
MAX_BACKOFF_FACTOR = 4
CLAIMED_AHEAD = 2
"""Units started at most: this many batches, so a started unit waiting for a Canvas slot does not wait
long (its job was read from the database when it started); two batches keep the slots busy."""
SINCE_MARGIN = timedelta(seconds=10)
"""Units linked since the previous tick are looked for from this much earlier: a link committed a moment
after its `linked_at`, or stamped by a replica whose clock is a little behind, is still found."""


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
        leases: BucketLeases | None = None,
    ) -> None:
        """`leases`: the replica's bucket leases, shared by its pollers and renewed by their own job;
        without, the poller holds leases of its own and renews them from its tick (tests, benchmarks)."""
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
        self._own_leases = leases is None
        self._leases = leases or BucketLeases(sessions, clock=clock)
        self._schedule = Schedule()
        self._buckets: set[int] = set()  # the buckets whose units are in the schedule
        self._generation = -1  # the leases' generation the schedule matches
        self._since: datetime | None = None  # where the next look for newly linked units starts
        self._requested: dict[int, datetime] = {}  # poll requests seen, until a poll serves them
        self._succeeded: dict[int, datetime] = {}
        """Each scheduled unit's last successful poll, in memory: written only with a change that needs
        it (the unit's first success, or the error that ends a run of successes), so `/conferences
        status` can tell when a failing unit last worked."""

    def next_poll(self, due: datetime) -> datetime:
        """When a unit started now, that was due at `due`, is due next: one interval after `due`.

        Counted from when it was due, not from when it started, so a tick's lag (a busy process, a
        slow database) delays that one poll but does not stretch every later period by it; a unit
        started more than an interval late starts afresh from now. Jitter spreads polls, downwards only,
        so no unit waits longer than one interval."""
        return next_due(due, self._clock(), jittered(timedelta(seconds=self._interval)))

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def scheduled(self) -> int:
        """Units in this replica's schedule (its buckets' units of this kind)."""
        return len(self._schedule)

    def scheduled_units(self) -> set[int]:
        """The units in this replica's schedule (its buckets' units of this kind, less any to relink)."""
        return set(self._schedule.units())

    def poll_now(self, unit_ids: Iterable[int]) -> int:
        """Make these units of this replica's schedule due now (benchmarks; an operator's "poll them
        now"); returns how many were in it. In memory: another replica's units are not touched."""
        now = self._clock()
        scheduled = [unit_id for unit_id in unit_ids if unit_id in self._schedule]
        for unit_id in scheduled:
            self._schedule.request(unit_id, now)
        return len(scheduled)

    def due_at(self, unit_id: int) -> datetime | None:
        """When this unit is next due here (None: not in this replica's schedule)."""
        return self._schedule.due_at(unit_id)

    @property
    def leases(self) -> BucketLeases:
        return self._leases

    def lag(self, now: datetime) -> timedelta:
        """How late this replica's most overdue unit is; a unit in back-off is not due, so not late."""
        return self._schedule.lag(now)

    async def sync(self, now: datetime) -> None:
        """Match the schedule to the held buckets, add units linked since the previous tick, and take the
        poll requests of held units (a Live Event, a scan): reads only."""
        if self._own_leases and (
            (renewed := self._leases.last_renewed) is None or now >= renewed + self._leases.renew_every
        ):
            await self._leases.renew()
        self._leases.expire_if_lapsed(now)
        async with self._sessions() as session:
            if self._leases.generation != self._generation:
                await self._follow_leases(session, now)
            since, self._since = self._since, now - SINCE_MARGIN
            if since is not None and self._buckets:
                for ref in await bucket_store.units_since(session, self._units.kind, since):
                    if ref.unit_id not in self._schedule and self._holds(ref.unit_id):
                        self._schedule.put(ref.unit_id, max(ref.back_off_until or now, now))
            asked = await bucket_store.requested(session, self._units.kind) if self._buckets else {}
        for unit_id in [u for u in self._requested if u not in asked]:
            del self._requested[unit_id]  # served (cleared by the poll), or the unit is gone
        for unit_id, at in asked.items():
            if self._requested.get(unit_id) == at or not self._holds(unit_id):
                continue
            self._requested[unit_id] = at
            if unit_id in self._in_flight:
                self._due_again.add(unit_id)  # the poll in flight may have asked Canvas before this
            else:
                self._schedule.request(unit_id, now)

    def _holds(self, unit_id: int) -> bool:
        return bucket_of(self._units.kind, unit_id, self._leases.buckets) in self._buckets

    async def _follow_leases(self, session: Any, now: datetime) -> None:
        """Drop the units of buckets lost; load those of buckets taken, their first polls spread over
        what is left of one interval since their previous holder's lease ended (so every unit is polled
        within interval + lease of that holder's death), a back-off recorded in the database kept."""
        held = self._leases.held
        self._generation = self._leases.generation
        lost = self._buckets - set(held)
        gained = set(held) - self._buckets
        if lost:
            for unit_id in self._schedule.units():
                if bucket_of(self._units.kind, unit_id, self._leases.buckets) in lost:
                    self._schedule.remove(unit_id)
                    self._succeeded.pop(unit_id, None)
        self._buckets = set(held)
        if not gained:
            return
        interval = timedelta(seconds=self._interval)
        by_deadline: dict[datetime, list[int]] = defaultdict(list)
        for ref in await bucket_store.units_in(session, self._units.kind, gained, self._leases.buckets):
            if ref.unit_id in self._schedule:
                continue
            if ref.back_off_until is not None and ref.back_off_until > now:
                self._schedule.put(ref.unit_id, ref.back_off_until)
                continue
            covered = held[bucket_of(self._units.kind, ref.unit_id, self._leases.buckets)]
            until = now + interval if covered is None else min(max(covered + interval, now), now + interval)
            by_deadline[until].append(ref.unit_id)
        for until, unit_ids in by_deadline.items():
            for unit_id, due in first_polls(unit_ids, now, until).items():
                self._schedule.put(unit_id, due)

    async def tick(self) -> int:
        """Start the poll of every due unit of the schedule; returns how many were due.

        It does not wait for the polls: they finish (or hit their deadline) on their own and the writer
        records them. It starts while units are due and there is room (CLAIMED_AHEAD batches), waiting
        for room when the poller is full, so a tick lasts as long as there is due work and no longer.
        """
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_finished(), name=f"{self._units.kind}-writer")
        await self.sync(self._clock())
        limit = self._batch_size * CLAIMED_AHEAD
        total = 0
        while True:
            room = limit - len(self._in_flight)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            wanted = min(room, self._batch_size)
            now = self._clock()
            due = self._schedule.pop_due(now, wanted)
            starting: list[int] = []
            for unit_id, was_due in due:
                self._schedule.put(unit_id, self.next_poll(was_due))
                if unit_id in self._in_flight:
                    # One poll at a time. It came due again while in flight (its poll outlasted the
                    # interval): the poll in flight may have asked Canvas before that, so it is due
                    # again as soon as that poll is written, not an interval later.
                    self._due_again.add(unit_id)
                else:
                    starting.append(unit_id)
            if starting:
                async with self._sessions() as session:
                    jobs = await self._units.load(session, starting, now)
                for gone in set(starting) - {job.unit_id for job in jobs}:
                    self._schedule.remove(gone)  # unlinked, or must relink: a relink is found again
                    self._succeeded.pop(gone, None)
                for job in jobs:
                    job.requested = self._requested.get(job.unit_id)
                    self._in_flight[job.unit_id] = asyncio.create_task(self._poll(job))
            total += len(due)
            if len(due) < wanted:
                return total

    async def settle(self) -> None:
        """Wait until every poll started so far is written (tests, benchmarks, shutdown)."""
        while self._in_flight:
            self._room.clear()
            await self._room.wait()

    async def close(self) -> None:
        """Stop polling: cancel polls in flight and the writer; hand back leases of the poller's own."""
        tasks = [*self._in_flight.values(), *([self._writer] if self._writer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()
        if self._own_leases:
            await self._leases.retire()

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
                    for result, count in Counter(outcome.result_name for outcome in batch).items():
                        self._metrics.poll_result(self._units.kind, result, count)
                await self._poll_again_if_asked(batch)
                self._room.set()

    async def _poll_again_if_asked(self, written: list[PollOutcome]) -> None:
        """Units due again while these polls were in flight are due now. Checked after they left
        `_in_flight`, so a tick that comes later polls them itself and none is missed in between; a
        unit that failed keeps its back-off. In memory: nothing is written."""
        again = [o.job.unit_id for o in written if o.job.unit_id in self._due_again and o.result is not None]
        self._due_again.difference_update(o.job.unit_id for o in written)
        now = self._clock()
        for unit_id in again:
            if unit_id in self._schedule:
                self._schedule.request(unit_id, now)

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
        retry_at = self._retry_at(job, failed, now)
        async with self._sessions.begin() as session:
            await self._units.record(
                session,
                [job.unit_id],
                consecutive_failures=job.failures + 1,
                last_error=f"StoreError: {type(error).__name__}"[:255],
                last_poll_at=now,
                next_poll_at=retry_at,
            )
            await self._clear_requests(session, [outcome])
        self._back_off(job.unit_id, retry_at)
        outcome.result, outcome.error = None, failed

    def _back_off(self, unit_id: int, until: datetime) -> None:
        """Its next poll after an error: at the back-off written with the error (if still this replica's)."""
        if unit_id in self._schedule:
            self._schedule.put(unit_id, until)

    async def _clear_requests(self, session: Any, outcomes: list[PollOutcome]) -> None:
        """The poll requests these polls served; cleared only where no newer request came meanwhile."""
        served = {o.job.unit_id: o.job.requested for o in outcomes if o.job.requested is not None}
        if served:
            await bucket_store.clear_requested(session, self._units.kind, served)

    async def _poll(self, job: PollJob) -> None:
        """Poll one unit within its deadline and hand the outcome to the writer."""
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
        self._finished.append(outcome)
        self._has_finished.set()

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
        """Write what these polls changed, and nothing for a poll that changed nothing (issue 14): a batch
        of such polls does not even open a transaction."""
        now = self._clock()
        changed = [outcome for outcome in outcomes if not self._changed_nothing(outcome)]
        if changed:
            await self._write_changes(changed, now)
        for outcome in outcomes:
            if outcome.result is not None and outcome.job.unit_id in self._schedule:
                self._succeeded[outcome.job.unit_id] = now

    @staticmethod
    def _changed_nothing(outcome: PollOutcome) -> bool:
        """A success that leaves everything stored as it was: same live set, no event, no session closed,
        no error to clear, no first success to record, no poll request to clear."""
        job, result = outcome.job, outcome.result
        return (
            result is not None
            and not result.events
            and not outcome.closed
            and not job.errored
            and job.last_success_at is not None
            and job.requested is None
            and result.keep == job.previous
        )

    async def _write_changes(self, outcomes: list[PollOutcome], now: datetime) -> None:
        rows: list[dict[str, Any]] = []
        watches: list[dict[str, Any]] = []
        recovered: list[int] = []  # errors to clear
        first: list[int] = []  # first successes: the row says so once, then the bucket lease does
        backed_off: dict[int, datetime] = {}
        async with self._sessions.begin() as session:
            for outcome in outcomes:
                job = outcome.job
                if outcome.result is not None:
                    if job.errored:
                        recovered.append(job.unit_id)
                    elif job.last_success_at is None:
                        first.append(job.unit_id)
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
                    backed_off[job.unit_id] = self._retry_at(job, outcome.error, now)
                    await self._units.record(
                        session,
                        [job.unit_id],
                        consecutive_failures=job.failures + 1,
                        last_error=type(outcome.error).__name__,
                        last_poll_at=now,
                        next_poll_at=backed_off[job.unit_id],
                        last_success_at=self._succeeded.get(job.unit_id, job.last_success_at),
                    )
            if recovered:
                await self._units.record(
                    session,
                    recovered,
                    last_poll_at=now,
                    last_success_at=now,
                    consecutive_failures=0,
                    last_error=None,
                )
            if first:
                await self._units.record(session, first, last_poll_at=now, last_success_at=now)
            await self._clear_requests(session, outcomes)
            await repo.enqueue(session, rows)
            await repo.watch_recordings(session, watches)
        for unit_id, until in backed_off.items():
            self._back_off(unit_id, until)
        if rows and self._on_enqueued:
            self._on_enqueued()

    async def _dead_token(
        self, session: Any, job: PollJob, reason: str, now: datetime, rows: list[dict[str, Any]]
    ) -> None:
        await repo.mark_needs_relink(session, job.token.user_id, reason, now)
        if self._units.kind == "user":
            self._schedule.remove(job.unit_id)
            self._succeeded.pop(job.unit_id, None)  # polled again once relinked (found as newly linked)
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
