"""The poll tick claims units and nothing else: a recording check or quiet-hour summary that waits on a
slow Canvas or Slack must not hold it. The poll job never overlaps itself, so a poll tick held for seconds
(a recording check's serial Canvas requests timing out) left every user of the replica unpolled that long:
the chaos soak lost alerts of sessions that started and ended inside such a stall (CI, 2026-12-05: three
"never queued", sessions live 84-95 s, during the Canvas timeouts after Slack came back)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.engine.quiet_summaries import QuietSummaries
from bot.engine.recordings import RecordingWatcher
from bot.runtime import Runtime
from bot.store.db import upgrade
from tests.support import fernet_key


async def test_a_hanging_recording_check_does_not_hold_the_poll_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hung = asyncio.Event()

    async def hang(self: object) -> int:
        hung.set()
        await asyncio.Event().wait()  # a Canvas that never answers
        return 0

    monkeypatch.setattr(RecordingWatcher, "tick", hang)
    monkeypatch.setattr(QuietSummaries, "tick", hang)
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = load_settings(
        canvas_base_url="http://127.0.0.1:9/",
        slack_bot_token="xoxb-test",
        slack_api_url="http://127.0.0.1:9/api/",
        database_url=url,
        token_encryption_keys=fernet_key(),
        poll_interval_seconds=2,
        _env_file=None,
    )
    runtime = Runtime.build(settings)
    try:
        poll = runtime.scheduler._poll
        assert poll is not None
        for _ in range(3):
            await asyncio.wait_for(poll(), timeout=5)  # before: waited for the hung checks forever
        assert not hung.is_set(), "the poll tick ran a recording check or summary itself"
    finally:
        await runtime.close()
