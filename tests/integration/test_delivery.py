"""A send interrupted after Slack accepted it is found, not repeated (real SQLite + sandbox Slack)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.domain.diff import Event
from bot.engine.alerts import outbox_row
from bot.engine.delivery import HistoryBudget, sent_marker
from bot.engine.dispatcher import Dispatcher
from bot.slackweb.clients import SingleWorkspace
from bot.store import repo
from bot.store.db import create_engine, session_factory, upgrade_async
from bot.store.models import OutboxMessage, utcnow
from tests.support import SlackWorld


def _row(conference_id: int, destination: str) -> dict[str, Any]:
    now = utcnow()
    event = Event("started", conference_id, now - timedelta(minutes=1), f"Talk {conference_id}", "Course", 7)
    row = outbox_row(
        event,
        team_id="T0001",
        destination=destination,
        context_name="Biology",
        canvas_root="http://canvas.test",
        now=now,
    )
    row["sending_since"] = now - timedelta(seconds=5)  # an earlier attempt was cut short
    return row


async def test_interrupted_send_is_found_not_repeated(tmp_path: Path, slack: SlackWorld) -> None:
    slack.user("UADA")
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/")
    reached, lost = _row(1001, "UADA"), _row(1002, "UADA")
    earlier = await client.chat_postMessage(
        channel="UADA", text="Talk 1001 is live", metadata=sent_marker(reached["dedup_key"])
    )
    async with sessions.begin() as session:
        await repo.enqueue(session, [reached, lost])

    history = HistoryBudget(per_minute=6000, burst=100)
    dispatcher = Dispatcher(sessions, SingleWorkspace(client), history=history)
    sent, deadline = 0, time.monotonic() + 10
    while sent < 2:
        assert time.monotonic() < deadline, "both rows should be delivered"
        sent += await dispatcher.tick()
        await asyncio.sleep(0.05)

    posts = slack.calls("chat.postMessage")
    assert [c["args"]["text"] for c in posts if c.get("ok")].count("Talk 1001 is live") == 1
    assert len([c for c in posts if c.get("ok")]) == 2, "only the lost one was posted again"
    async with sessions() as session:
        rows = {r.conference_id: r for r in (await session.scalars(select(OutboxMessage))).all()}
    assert rows[1001].slack_ts == earlier["ts"]
    assert all(r.status == "sent" for r in rows.values())
    await engine.dispose()
