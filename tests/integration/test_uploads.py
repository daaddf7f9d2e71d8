"""An "upload" outbox row (the attendance report) reaches Slack once: shared by the dispatcher with
slack_sdk's files_upload_v2 into the user's DM, and after an interruption found by its file name instead of
being uploaded again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.domain.outbox import UploadFile, UploadPayload
from bot.engine import uploads
from bot.engine.alerts import upload_row
from bot.engine.dispatcher import Dispatcher
from bot.slackweb.clients import SingleWorkspace
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import OutboxMessage
from tests.support import Clock, SlackWorld

MESSAGE = {
    "text": "3 of 5 attended",
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*3 of 5*"}}],
}
FILE = UploadFile(filename="attendance-7-20260302-090000.csv", title="Attendance", content="a,b\r\n1,2\r\n")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


def _row(clock: Clock, **overrides: Any) -> dict[str, Any]:
    row = upload_row(
        "T0001:UTESS:7:1:attendance",
        team_id="T0001",
        destination="UTESS",
        message=MESSAGE,
        file=FILE,
        now=clock.now,
        session=(7, clock.now),
    )
    return row | overrides


async def _rows(db: SessionFactory) -> list[OutboxMessage]:
    async with db() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


def _shared(slack: SlackWorld) -> list[dict[str, Any]]:
    return [f for f in slack.slack.get("/_sandbox/files")["files"] if f["channel"]]


async def test_an_upload_row_is_shared_in_the_dm_once(db: SessionFactory, slack: SlackWorld) -> None:
    slack.user("UTESS")
    clock = Clock()
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(db, SingleWorkspace(client), clock=clock)
    async with db.begin() as session:
        await repo.enqueue(session, [_row(clock)])
    assert await dispatcher.tick() == 1
    [shared] = _shared(slack)
    assert shared["content"] == FILE.content and shared["channel"].startswith("D")
    [row] = await _rows(db)
    assert (row.status, row.slack_channel) == ("sent", shared["channel"])
    clock.now += timedelta(minutes=5)
    assert await dispatcher.tick() == 0 and len(_shared(slack)) == 1


async def test_an_interrupted_upload_that_reached_slack_is_not_shared_again(
    db: SessionFactory, slack: SlackWorld
) -> None:
    """The share landed, then the process died before recording it: the row is still pending with
    `sending_since` set. The next attempt finds the file by name in the DM's history."""
    slack.user("UTESS")
    clock = Clock()
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    channel = await uploads.conversation(client, "UTESS")
    await uploads.share(client, channel, UploadPayload(message=MESSAGE, file=FILE))  # type: ignore[arg-type]
    async with db.begin() as session:
        await repo.enqueue(session, [_row(clock, sending_since=clock.now - timedelta(seconds=5))])
    assert await Dispatcher(db, SingleWorkspace(client), clock=clock).tick() == 1
    assert len(_shared(slack)) == 1, "found, not uploaded a second time"
    [row] = await _rows(db)
    assert row.status == "sent" and row.slack_channel == channel


async def test_an_upload_this_version_cannot_read_fails_with_the_reason(
    db: SessionFactory, slack: SlackWorld
) -> None:
    clock = Clock()
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    bad = _row(clock)
    bad["payload"] = bad["payload"] | {"version": 2}
    async with db.begin() as session:
        await repo.enqueue(session, [bad])
    await Dispatcher(db, SingleWorkspace(client), clock=clock).tick()
    [row] = await _rows(db)
    assert row.status == "failed" and "version" in (row.last_error or "")
    assert not _shared(slack)
