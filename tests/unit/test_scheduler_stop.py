"""Stopping the engine's scheduler: runs in progress end, and a deploy's shutdown logs no failure."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.engine.scheduler import EngineScheduler


async def test_stop_cancels_a_tick_in_progress_without_logging_it_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fails before: the poll tick still running at shutdown was cancelled by the event loop's teardown,
    and APScheduler logged 'raised an exception' with a CancelledError traceback on every deploy."""
    tick_running = asyncio.Event()
    tick_cancelled = asyncio.Event()

    async def poll() -> int:
        tick_running.set()
        try:
            await asyncio.Event().wait()  # a tick waiting for Canvas slots
        except asyncio.CancelledError:
            tick_cancelled.set()
            raise
        return 0

    async def dispatch() -> int:
        return 0

    scheduler = EngineScheduler(poll_every=0.05, dispatch_every=3600)
    scheduler.add_jobs(poll, dispatch)
    caplog.set_level(logging.INFO)
    scheduler.start()
    await asyncio.wait_for(tick_running.wait(), 5)

    await asyncio.wait_for(scheduler.stop(), 5)

    assert tick_cancelled.is_set()
    assert not scheduler.running
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == []
