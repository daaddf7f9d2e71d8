"""APScheduler wiring: a poll tick and a dispatch tick, each never overlapping itself.

New outbox rows wake the dispatcher at once (modify_job next_run_time=now) so alert latency is not
bounded below by the tick interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

POLL_JOB = "poll"
DISPATCH_JOB = "dispatch"


class EngineScheduler:
    """Made first (its `wake_dispatcher` is what every producer of outbox rows is given), its jobs added
    once the engine they drive exists (`add_jobs`), then started with the app."""

    def __init__(self, *, poll_every: float = 1.0, dispatch_every: float = 1.0) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._poll_every = poll_every
        self._dispatch_every = dispatch_every
        self._poll: Callable[[], Awaitable[int]] | None = None
        self._dispatch: Callable[[], Awaitable[int]] | None = None
        self.last_poll_tick: datetime | None = None
        self._dispatching = False
        self._woken_while_dispatching = False
        self._running: set[asyncio.Task[object]] = set()  # job runs in progress, for `stop`
        self._stopping = False

    def add_jobs(
        self,
        poll: Callable[[], Awaitable[int]],
        dispatch: Callable[[], Awaitable[int]],
        *,
        periodic: dict[str, tuple[Callable[[], Awaitable[int]], float]] | None = None,
    ) -> None:
        """The poll tick, the dispatch tick and any other periodic job, each never overlapping itself."""
        self._poll, self._dispatch = poll, dispatch
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        # Jittered ticks: replicas would otherwise keep a fixed phase, and the one ticking just before
        # the other would claim nearly every unit as it falls due.
        every = self._poll_every
        self._scheduler.add_job(
            self._stoppable(self._run_poll),
            "interval",
            seconds=every,
            jitter=every / 4,
            id=POLL_JOB,
            **common,
        )
        self._scheduler.add_job(
            self._stoppable(self._run_dispatch),
            "interval",
            seconds=self._dispatch_every,
            id=DISPATCH_JOB,
            **common,
        )
        for job_id, (run, seconds) in (periodic or {}).items():
            self._scheduler.add_job(
                self._stoppable(self._guarded(job_id, run)), "interval", seconds=seconds, id=job_id, **common
            )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Start no more runs; runs in progress go on (tests that stop the loop themselves)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def stop(self) -> None:
        """Start no more runs and cancel those in progress, waiting until they are gone: what they were
        doing is redone by the next process or replica (the schedule and the outbox are durable). Their
        cancellation is the shutdown's, not a failure, so nothing is logged as one: the runs are
        cancelled here, not by APScheduler's shutdown (which cancels its pending runs, and logs each as
        a job that raised)."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.pause()
        await asyncio.sleep(0)  # runs submitted a moment ago start, see `_stopping` and return
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.sleep(0)  # APScheduler hears each run end before its shutdown
        self.shutdown()

    def _stoppable(self, run: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A job run that `stop` can cancel without APScheduler logging it as a job that raised."""

        async def stoppable() -> None:
            task = asyncio.current_task()
            if task is None or self._stopping:
                return
            self._running.add(task)
            try:
                await run()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
            finally:
                self._running.discard(task)

        return stoppable

    def wake_dispatcher(self) -> None:
        """New outbox rows: dispatch now. A wake during a dispatch pass is kept and served right after it
        (APScheduler would skip a run while one is going: max_instances=1), not at the next tick."""
        if self._dispatching:
            self._woken_while_dispatching = True
        elif self._scheduler.running:
            self._scheduler.modify_job(DISPATCH_JOB, next_run_time=datetime.now(UTC))

    async def _run_poll(self) -> None:
        assert self._poll is not None, "add_jobs first"
        try:
            await self._poll()
        except Exception:
            log.exception("poll tick failed; the next tick retries")
        self.last_poll_tick = datetime.now(UTC)

    @staticmethod
    def _guarded(job_id: str, run: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
        async def guarded() -> None:
            try:
                await run()
            except Exception:
                log.exception("%s tick failed; the next tick retries", job_id)

        return guarded

    async def _run_dispatch(self) -> None:
        self._dispatching = True
        try:
            while True:
                self._woken_while_dispatching = False
                try:
                    assert self._dispatch is not None, "add_jobs first"
                    await self._dispatch()
                except Exception:
                    log.exception("dispatch tick failed; the next tick retries")
                    return
                if not self._woken_while_dispatching:
                    return
        finally:
            self._dispatching = False
