"""A resizable limit on Canvas work in flight, used as `async with limiter:` like the semaphore it replaces.

The limit is recomputed from Little's law (bot/domain/concurrency.py) as slots are released, Canvas
answers and the unit count changes: it measures each slot's hold time itself (the whole poll or scan:
every page, refresh and look-up, which is what occupies a slot), hears throttles from the Canvas client
(`answered`, handed to CanvasClient as its `on_answer`), and learns the demand from a periodic count of
the units (`demand`); polls queued for a slot count as demand as well (a backlog after a restart drains
at the ceiling, not at the steady state's rate). A limit that shrinks never interrupts work in flight:
new entries wait until the slots in use fall below it. Waiters are served first come, first served, as
asyncio.Semaphore does.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from types import TracebackType

from bot.domain.concurrency import ConcurrencyControl


class AdaptiveLimiter:
    def __init__(
        self,
        control: ConcurrencyControl,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_limit: Callable[[int], None] | None = None,
    ) -> None:
        """`clock` is monotonic seconds (injected by tests); `on_limit` hears each new limit (a gauge)."""
        self._control = control
        self._clock = clock
        self._on_limit = on_limit
        self._in_use = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._entered: dict[asyncio.Task[object] | None, list[float]] = {}
        self._limit = control.limit(clock())
        if on_limit is not None:
            on_limit(self._limit)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- inputs ------------------------------------------------------------------------------

    def demand(self, units: int, interval: float) -> None:
        """`units` are each due once every `interval` seconds."""
        self._control.demand(units, interval)
        self._refresh()

    def answered(self, throttled: bool) -> None:
        """Canvas answered one request (CanvasClient's `on_answer`): whether it throttled. The hold time
        is measured per slot, not per request; an answer that was no throttle cannot change the limit."""
        self._control.answered(throttled=throttled, now=self._clock())
        if throttled:
            self._refresh()

    # -- the slots ---------------------------------------------------------------------------

    async def __aenter__(self) -> None:
        if self._in_use < self._limit and not self._waiters:
            self._in_use += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._refresh()  # a queue is demand too: the limit may grow for it
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # the slot was handed over just as the task was cancelled
                else:
                    self._waiters.remove(waiter)
                raise
        self._entered.setdefault(asyncio.current_task(), []).append(self._clock())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = asyncio.current_task()
        starts = self._entered.get(task)
        if starts:
            started = starts.pop()
            if not starts:
                del self._entered[task]
            now = self._clock()
            self._control.held(now - started, now)
        self._release()

    def _release(self) -> None:
        self._in_use -= 1
        self._refresh()

    def _refresh(self) -> None:
        limit = self._control.limit(self._clock(), waiting=len(self._waiters))
        if limit != self._limit:
            self._limit = limit
            if self._on_limit is not None:
                self._on_limit(limit)
        while self._waiters and self._in_use < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_use += 1
                waiter.set_result(None)
