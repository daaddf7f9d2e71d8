"""The dispatcher's wake-up: a wake that arrives during a dispatch pass is served right after it."""

from __future__ import annotations

import asyncio

from bot.engine.scheduler import EngineScheduler


async def test_a_wake_during_a_dispatch_pass_runs_another_pass_at_once() -> None:
    """Fails before: APScheduler skipped the woken run while a pass was going (max_instances=1), so the
    new row waited for the next regular tick (an hour here)."""
    passes = 0
    first_pass_running = asyncio.Event()
    release_first_pass = asyncio.Event()
    second_pass = asyncio.Event()

    async def dispatch() -> int:
        nonlocal passes
        passes += 1
        if passes == 1:
            first_pass_running.set()
            await release_first_pass.wait()
        else:
            second_pass.set()
        return 0

    async def poll() -> int:
        return 0

    scheduler = EngineScheduler(poll_every=3600, dispatch_every=3600)
    scheduler.add_jobs(poll, dispatch)
    scheduler.start()
    try:
        scheduler.wake_dispatcher()
        await asyncio.wait_for(first_pass_running.wait(), 5)
        scheduler.wake_dispatcher()  # a new outbox row while the first pass is still sending
        release_first_pass.set()
        await asyncio.wait_for(second_pass.wait(), 5)
        assert passes == 2
    finally:
        scheduler.shutdown()
