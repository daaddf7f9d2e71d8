"""The dispatcher under Slack faults: real SQLite, the sandbox Slack behind the fault proxy, an injected
clock (no sleeps: the test moves time and ticks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.engine.alerts import outbox_row, queued
from bot.engine.diff import Event, EventKind
from bot.engine.dispatcher import LIVE_ALERT_BACKOFF_CAP, MAX_ATTEMPTS, Dispatcher, retry_wait
from bot.runtime import SingleWorkspace
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import OutboxMessage, utcnow
from tests.faults import Fault, FaultProxy
from tests.support import SlackWorld


class Clock:
    """The dispatcher's clock: moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Outbox:
    sessions: SessionFactory
    clock: Clock

    async def add(self, *rows: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await repo.enqueue(session, list(rows))

    async def rows(self) -> dict[str, OutboxMessage]:
        async with self.sessions() as session:
            return {r.dedup_key: r for r in (await session.scalars(select(OutboxMessage))).all()}

    async def row(self, dedup_key: str) -> OutboxMessage:
        return (await self.rows())[dedup_key]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield Outbox(session_factory(engine), Clock())
    await engine.dispose()


def proxied_client(slack: SlackWorld, proxy: FaultProxy) -> AsyncWebClient:
    """A client reaching the sandbox through the proxy, retrying nothing by itself (like the bot's)."""
    return AsyncWebClient(token=slack.bot_token, base_url=proxy.url + "/api/", timeout=5, retry_handlers=[])


def alert_row(
    clock: Clock,
    conference_id: int,
    destination: str = "UADA",
    kind: EventKind = "started",
    started: datetime | None = None,
) -> dict[str, Any]:
    """An alert row as the poller queues it; `started` defaults to a minute ago."""
    started = started or clock.now.replace(microsecond=0) - timedelta(minutes=1)
    event = Event(kind, conference_id, started, f"Talk {conference_id}", "Course", 7)
    return outbox_row(
        event,
        team_id="T0001",
        destination=destination,
        context_name="Biology",
        canvas_root="http://canvas.test",
        now=clock.now,
    )


async def test_a_dropped_connection_counts_an_attempt_and_is_retried(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """aiohttp's ServerDisconnectedError is no OSError: it used to escape and re-lease the row uncounted."""
    slack.user("UADA")
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    with slack_faults.active(Fault("drop", path="chat.postMessage", forward=False)):
        assert await dispatcher.tick() == 0
    assert slack_faults.count("drop") == 1
    failed = await outbox.row(row["dedup_key"])
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == "network: ServerDisconnectedError"
    assert slack.dms_to("UADA") == []

    outbox.clock.advance(60)
    assert await dispatcher.tick() == 1
    assert len(slack.dms_to("UADA")) == 1
    assert (await outbox.row(row["dedup_key"])).status == "sent"


async def test_an_unknown_event_fails_for_good_with_a_reason(outbox: Outbox, slack: SlackWorld) -> None:
    slack.user("UADA")
    unknown = queued(
        "T0001:UADA:future",
        team_id="T0001",
        destination="UADA",
        event="hologram",
        payload={},
        now=outbox.clock.now,
    )
    await outbox.add(unknown)
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)

    assert await dispatcher.tick() == 0
    row = await outbox.row("T0001:UADA:future")
    assert row.status == "failed"
    assert row.last_error == "unknown event 'hologram'"
    outbox.clock.advance(3600)
    assert await dispatcher.tick() == 0, "not claimed again"


async def test_any_other_failure_is_logged_with_the_outbox_id_and_counted(
    outbox: Outbox, slack: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A row whose payload the handler cannot read (bad data, a bug) is retried with its attempts
    counted, so it ends as failed after MAX_ATTEMPTS instead of looping forever."""
    slack.user("UADA")
    broken = queued(
        "T0001:UADA:broken",
        team_id="T0001",
        destination="UADA",
        event="post",
        payload={},
        now=outbox.clock.now,
    )
    await outbox.add(broken)
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)

    assert await dispatcher.tick() == 0
    row = await outbox.row("T0001:UADA:broken")
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("error: KeyError")
    assert any(f"outbox {row.id} (post) failed" in record.getMessage() for record in caplog.records)
    for _ in range(20):
        outbox.clock.advance(600)
        await dispatcher.tick()
    assert (await outbox.row("T0001:UADA:broken")).status == "failed"
    assert slack.dms_to("UADA") == []


def test_retry_wait_keeps_a_live_alert_going_with_capped_backoff_and_bounds_the_rest() -> None:
    waits = [retry_wait("started", attempts, transient=True) for attempts in range(1, 2000)]
    assert waits[:3] == [2.0, 4.0, 8.0]
    assert all(wait == LIVE_ALERT_BACKOFF_CAP for wait in waits[6:]), "capped, never given up"
    assert retry_wait("started", MAX_ATTEMPTS, transient=False) is None, "Slack refused it: bounded"
    assert retry_wait("ended", MAX_ATTEMPTS, transient=True) is None, "other rows stay bounded"
    assert retry_wait("relink", MAX_ATTEMPTS - 1, transient=True) == 2.0 ** (MAX_ATTEMPTS - 1)


SLACK_DOWN = Fault("respond", path="chat.postMessage", status=503, body=b"upstream unavailable")


async def _outage(dispatcher: Dispatcher, outbox: Outbox, proxy: FaultProxy, minutes: float) -> None:
    """Slack answers chat.postMessage with 503 for `minutes` of the dispatcher's clock."""
    with proxy.active(replace(SLACK_DOWN)):
        for _ in range(int(minutes * 6)):
            await dispatcher.tick()
            outbox.clock.advance(10)


async def test_a_live_conference_alert_outlives_a_six_minute_slack_outage(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """8 attempts used to be about 4.4 minutes of 5xx: the alert was failed for good mid-conference."""
    slack.user("UADA")
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    await _outage(dispatcher, outbox, slack_faults, minutes=6.5)
    during = await outbox.row(row["dedup_key"])
    assert during.status == "pending" and during.attempts > MAX_ATTEMPTS
    assert slack_faults.count("respond") > MAX_ATTEMPTS
    assert slack.dms_to("UADA") == []

    outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)
    assert await dispatcher.tick() == 1
    assert len(slack.dms_to("UADA")) == 1, "the alert arrives after recovery"
    assert (await outbox.row(row["dedup_key"])).status == "sent"


async def test_a_conference_that_ended_during_the_outage_gets_no_live_card(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    slack.user("UADA")
    started = alert_row(outbox.clock, 1)
    await outbox.add(started)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    await _outage(dispatcher, outbox, slack_faults, minutes=3)
    ended = alert_row(outbox.clock, 1, kind="ended", started=started["started_at"])
    await outbox.add(ended)
    await _outage(dispatcher, outbox, slack_faults, minutes=1)
    outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)
    for _ in range(3):
        await dispatcher.tick()
        outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)

    assert slack.dms_to("UADA") == [], "no stale live card, and nothing to edit"
    rows = await outbox.rows()
    assert rows[started["dedup_key"]].status == "failed"
    assert rows[started["dedup_key"]].last_error == "conference ended before the alert could be sent"
    assert rows[ended["dedup_key"]].status == "sent" and rows[ended["dedup_key"]].slack_ts is None
    assert rows[ended["dedup_key"]].last_error == "no alert to edit"
