"""How many Canvas polls may be in flight at once, from Little's law instead of a tuned number.

Little's law: the work in a system is its arrival rate times the time each item spends in it. Polls
arrive at `units / interval` per second (every unit is due once an interval) and each holds a slot for
about the measured hold time (the Canvas round trips of one poll, plus the event loop's own delay), so
`rate x hold time` slots are busy on average. A `headroom` factor above one absorbs the variance around
that mean (a burst of due units, a slow page) and lets a backlog drain; a `floor` keeps a small
deployment from crawling on one slot; the operator's `POLL_CONCURRENCY` is the ceiling, because each slot
is also an open connection and a share of one process's CPU.

Canvas throttles per token (a 403 "Rate Limit Exceeded" or a 429). The unit whose token was throttled
already waits out the Retry-After on its own (the poller's back-off); the shared limit reacts only when
throttles are a noticeable share of recent answers (`throttle_share`), which is what more concurrency
than Canvas tolerates looks like, so one hot token cannot halve everyone's limit every second. The
reaction is AIMD, as TCP does: halve at most once per cooldown, then give back a few slots a second.

Everything here is arithmetic on numbers and a clock value handed in: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_FLOOR = 4
DEFAULT_HEADROOM = 2.0
"""Twice the mean: Little's law gives the mean occupancy, and the slots must also cover its spread."""
LATENCY_TAU_SECONDS = 10.0
"""Memory of the hold-time average: a minute-old Canvas slowdown no longer counts, one second's jitter
does not swing the limit."""
BACKLOG_DRAIN_SECONDS = 1.0
"""Polls waiting for a slot are demand too: Little's law sized for the steady state alone would drain a
backlog (a restart, every unit overdue) at only (headroom - 1) x the due rate, and poll lag would grow
to an interval. Waiting polls count as arriving over this long, so a backlog of the whole interval gets
the ceiling and the few polls due at each tick barely move the limit."""
FOLD_SECONDS = 0.5
"""Samples are averaged over this long before they move the estimate (an average per half second,
however many thousand polls finish in it)."""


def littles_law_limit(
    *, target_rate: float, hold_seconds: float, headroom: float, floor: int, ceiling: int
) -> int:
    """Slots for `target_rate` arrivals a second each held `hold_seconds`: rate x time x headroom,
    rounded up, at least `floor`, at most `ceiling` (the ceiling wins over the floor)."""
    # A hair below each integer still rounds to it: 3,333.33/s x 0.1 s x 1.5 is 500, not 501.
    wanted = math.ceil(max(target_rate, 0.0) * max(hold_seconds, 0.0) * headroom - 1e-9)
    return max(1, min(ceiling, max(floor, wanted)))


@dataclass(slots=True)
class HoldTime:
    """An exponentially weighted mean of slot hold times, folded in half-second windows.

    Time-based rather than per-sample: at 3,000 polls a second a per-sample weight would forget
    everything within milliseconds, at two a second it would remember for minutes."""

    tau: float = LATENCY_TAU_SECONDS
    value: float | None = None
    _sum: float = 0.0
    _count: int = 0
    _window_start: float | None = None

    def observe(self, seconds: float, now: float) -> None:
        if self._window_start is None:
            self._window_start = now
        self._sum += seconds
        self._count += 1
        if self.value is None:  # the first sample is all we know: take it at once
            self.value = seconds
            self._sum, self._count, self._window_start = 0.0, 0, now
            return
        self.fold(now)

    def fold(self, now: float) -> None:
        """Move the mean toward the current window's average once the window is FOLD_SECONDS old."""
        if self._window_start is None or self._count == 0 or now - self._window_start < FOLD_SECONDS:
            return
        mean = self._sum / self._count
        weight = 1.0 - math.exp(-(now - self._window_start) / self.tau)
        self.value = mean if self.value is None else self.value + weight * (mean - self.value)
        self._sum, self._count, self._window_start = 0.0, 0, now


@dataclass(slots=True)
class ThrottleCap:
    """AIMD cap from Canvas throttles: None while Canvas has not throttled a noticeable share.

    A throttled answer halves it (never below `floor`) when throttles are at least `share` of the answers
    of the last two windows of `cooldown` seconds, and no sooner than `cooldown` after the previous cut,
    so a burst of 403s from one batch halves it once and one hot token among thousands of answers not at
    all. Then `increase_per_second` slots come back each second, until the cap reaches the ceiling and
    is lifted."""

    share: float = 0.01
    cooldown: float = 1.0
    decrease: float = 0.5
    increase_per_second: float = 2.0
    cap: float | None = None
    _answers: int = 0
    _throttles: int = 0
    _previous_answers: int = 0
    _previous_throttles: int = 0
    _window_start: float | None = None
    _last_cut: float | None = None
    _grown_at: float | None = None

    def answer(self, *, throttled: bool, now: float, current_limit: int, floor: int) -> None:
        if self._window_start is None:
            self._window_start = now
        elif now - self._window_start >= self.cooldown:
            self._previous_answers, self._previous_throttles = self._answers, self._throttles
            self._answers, self._throttles, self._window_start = 0, 0, now
        self._answers += 1
        self._throttles += int(throttled)
        if not throttled:
            return
        if self._last_cut is not None and now - self._last_cut < self.cooldown:
            return
        throttles = self._throttles + self._previous_throttles
        if throttles >= self.share * (self._answers + self._previous_answers):
            self.cap = max(float(floor), current_limit * self.decrease)
            self._last_cut = self._grown_at = now

    def recover(self, now: float, ceiling: int) -> None:
        """Additive increase since the last change; lifted once back at the ceiling."""
        if self.cap is None or self._grown_at is None:
            return
        self.cap += self.increase_per_second * max(0.0, now - self._grown_at)
        self._grown_at = now
        if self.cap >= ceiling:
            self.cap = None


@dataclass(slots=True)
class ConcurrencyControl:
    """The limit's inputs and the rule that turns them into a number of slots.

    `ceiling` is POLL_CONCURRENCY. Until the first hold time is measured the limit is the ceiling (what
    a fixed semaphore gave) and so it is until the units are first counted, so a new replica starts no
    slower than before."""

    ceiling: int
    floor: int = DEFAULT_FLOOR
    headroom: float = DEFAULT_HEADROOM
    units: int | None = None
    """Units to poll each interval; None until first counted (the limit is then the ceiling)."""
    interval: float = 60.0
    hold: HoldTime = field(default_factory=HoldTime)
    throttle: ThrottleCap = field(default_factory=ThrottleCap)

    @property
    def target_rate(self) -> float:
        """Polls due a second: every unit once an interval."""
        if self.units is None or self.interval <= 0:
            return 0.0
        return self.units / self.interval

    def demand(self, units: int, interval: float) -> None:
        self.units, self.interval = max(0, units), interval

    def held(self, seconds: float, now: float) -> None:
        """A slot was held this long (one poll or scan, all its Canvas requests)."""
        self.hold.observe(seconds, now)

    def answered(self, *, throttled: bool, now: float) -> None:
        """Canvas answered one request; `throttled` when it was a rate-limit answer. Only a throttle can
        cut the limit, so only then is the current one worked out (this runs for every request)."""
        current = self.limit(now) if throttled else self.ceiling
        self.throttle.answer(throttled=throttled, now=now, current_limit=current, floor=self.floor)

    def limit(self, now: float, waiting: int = 0) -> int:
        """Slots now, given `waiting` polls queued for one (see BACKLOG_DRAIN_SECONDS)."""
        self.hold.fold(now)
        self.throttle.recover(now, self.ceiling)
        if self.hold.value is None or self.units is None:
            limit = self.ceiling
        else:
            limit = littles_law_limit(
                target_rate=self.target_rate + max(0, waiting) / BACKLOG_DRAIN_SECONDS,
                hold_seconds=self.hold.value,
                headroom=self.headroom,
                floor=self.floor,
                ceiling=self.ceiling,
            )
        if self.throttle.cap is not None:
            limit = max(min(self.floor, self.ceiling), min(limit, math.floor(self.throttle.cap)))
        return limit
