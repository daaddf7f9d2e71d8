"""The resizable Canvas limiter (bot/engine/limiter.py): `async with` like a semaphore, its size following
the measured hold time and Canvas's throttles. The clock is injected: no sleeps, no real time."""

from __future__ import annotations

import asyncio

from bot.domain.concurrency import FOLD_SECONDS, ConcurrencyControl
from bot.engine.limiter import AdaptiveLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, gauge: list[int], control: ConcurrencyControl | None = None) -> AdaptiveLimiter:
    control = control or ConcurrencyControl(ceiling=200, floor=4, headroom=2.0, interval=10)
    made = AdaptiveLimiter(control, clock=clock, on_limit=gauge.append)
    made.demand(1_000, interval=10)  # 100 polls due a second
    return made


async def hold(slots: AdaptiveLimiter, clock: Clock, seconds: float) -> None:
    """One slot held `seconds` of the injected clock."""
    async with slots:
        clock.now += seconds


async def test_the_limit_grows_when_canvas_gets_slower() -> None:
    clock, gauge = Clock(), []
    slots = limiter(clock, gauge)
    assert slots.limit == 200 and gauge == [200], "the ceiling until a hold time is measured"
    await hold(slots, clock, 0.02)
    assert slots.limit == 4, "100/s x 20 ms x 2 = 4 (the floor)"
    for _ in range(200):  # Canvas now takes half a second, for 100 s of the clock
        await hold(slots, clock, 0.5)
    assert slots.limit == 100, "100/s x 0.5 s x 2"
    assert gauge[-1] == 100 and gauge[0] == 200


async def test_a_waiter_gets_in_when_the_limit_grows_and_not_before() -> None:
    clock, gauge = Clock(), []
    control = ConcurrencyControl(ceiling=200, floor=4, headroom=2.0, interval=10)
    slots = limiter(clock, gauge, control)
    await hold(slots, clock, 0.01)  # limit 4, the floor (one waiter adds 1/s x 10 ms x 2)
    holders = [asyncio.Event() for _ in range(4)]
    done = asyncio.Event()

    async def holder(release: asyncio.Event) -> None:
        async with slots:
            await release.wait()

    tasks = [asyncio.create_task(holder(release)) for release in holders]
    await asyncio.sleep(0)  # let them enter
    assert slots.in_use == 4

    async def late() -> None:
        async with slots:
            done.set()

    waiter = asyncio.create_task(late())
    await asyncio.sleep(0)
    assert slots.waiting == 1 and not done.is_set()
    # Slower polls elsewhere (as the limiter's own slots would report them): the demand needs more
    # slots, and the waiter gets one without anyone leaving.
    control.held(2.0, now=clock.now)
    clock.now += 60 * FOLD_SECONDS
    control.held(2.0, now=clock.now)
    slots.demand(1_000, interval=10)  # any input re-evaluates the limit
    await asyncio.wait_for(done.wait(), 1)
    assert slots.limit > 4
    for release in holders:
        release.set()
    await asyncio.gather(waiter, *tasks)
    assert slots.in_use == 0


async def test_throttles_shrink_the_limit_and_work_in_flight_finishes() -> None:
    clock, gauge = Clock(), []
    slots = limiter(clock, gauge)
    for _ in range(200):
        await hold(slots, clock, 0.5)
    assert slots.limit == 100
    for _ in range(5):  # Canvas answers 403 Rate Limit Exceeded, a second apart
        clock.now += 1.0
        slots.answered(True)
    # Halved each second, two slots coming back between cuts: 100, 50, 26, 14, 8, 5.
    assert slots.limit == 5
    clock.now += 9.5
    await hold(slots, clock, 0.5)  # the limit is worked out again as each slot is given back
    assert slots.limit == 25, "then 2 slots a second come back"


async def test_a_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    clock, gauge = Clock(), []
    slots = limiter(clock, gauge)
    await hold(slots, clock, 0.01)  # limit 4, the floor (one waiter adds 1/s x 10 ms x 2)
    release = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await release.wait()

    tasks = [asyncio.create_task(holder()) for _ in range(5)]
    await asyncio.sleep(0)
    assert slots.in_use == 4 and slots.waiting == 1
    tasks[-1].cancel()
    await asyncio.gather(tasks[-1], return_exceptions=True)
    assert slots.waiting == 0 and slots.in_use == 4
    release.set()
    await asyncio.gather(*tasks[:-1])
    assert slots.in_use == 0


async def test_a_queue_of_waiters_raises_the_limit_by_itself() -> None:
    clock, gauge = Clock(), []
    slots = limiter(clock, gauge)
    await hold(slots, clock, 0.02)  # 100/s x 20 ms x 2 = 4
    release = asyncio.Event()

    async def holder() -> None:
        async with slots:
            await release.wait()

    tasks = [asyncio.create_task(holder()) for _ in range(100)]
    await asyncio.sleep(0)
    # (100/s + waiting/1 s) x 20 ms x 2: the queue admits more of itself until it balances.
    assert 4 < slots.in_use < 100
    release.set()
    await asyncio.gather(*tasks)
    assert slots.in_use == 0 and slots.waiting == 0
