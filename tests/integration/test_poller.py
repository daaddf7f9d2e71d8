"""The Poller against the sandbox Canvas and a real SQLite database, on an injected clock (no sleeps):
a due user is polled once a tick, a live conference becomes one alert row, the next poll falls one
interval after the previous one was due, and a session that ends before its alert left cancels it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.canvas.client import CanvasClient
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials
from bot.engine.linking import link_with_token
from bot.engine.poll_units import UserUnits
from bot.engine.poller import Poller
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, OutboxMessage
from tests.support import CanvasWorld, Clock, fernet_key

INTERVAL = 60.0


@dataclass
class World:
    poller: Poller
    sessions: SessionFactory
    clock: Clock
    canvas: CanvasWorld
    course_id: int
    ada: dict[str, object]

    async def poll(self) -> int:
        """One tick, then wait until every poll it started is written."""
        claimed = await self.poller.tick()
        await self.poller.settle()
        return claimed

    async def outbox(self) -> list[tuple[str, str, str | None]]:
        async with self.sessions() as session:
            rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        return [(row.event, row.status, row.last_error) for row in rows]

    async def next_poll_at(self) -> datetime:
        async with self.sessions() as session:
            user = await session.scalar(select(LinkedUser))
        assert user is not None
        return user.next_poll_at


@pytest.fixture
async def world(tmp_path: Path, canvas: CanvasWorld) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    cipher = TokenCipher([fernet_key()])
    clock = Clock()
    ada = canvas.user("Ada Lovelace")
    course = canvas.course("Biology 101")
    canvas.enroll(course["id"], ada["id"])
    async with CanvasClient(canvas.canvas.url) as client:
        await link_with_token(
            sessions, client, cipher, team_id="T1", slack_user_id="UADA", token=ada["token"]
        )
        poller = Poller(
            UserUnits(),
            sessions,
            client,
            Credentials(sessions, cipher, None, clock=clock),
            ContextNames(sessions, client),
            canvas_root=canvas.canvas.url,
            interval=INTERVAL,
            semaphore=asyncio.Semaphore(10),
            clock=clock,
        )
        yield World(poller, sessions, clock, canvas, int(course["id"]), ada)
        await poller.close()
    await engine.dispose()


async def test_a_due_user_is_polled_once_and_again_one_interval_after_it_was_due(world: World) -> None:
    due = await world.next_poll_at()
    world.clock.now = due + timedelta(seconds=5)  # this tick came 5 s late
    assert await world.poll() == 1
    next_due = await world.next_poll_at()
    assert due + timedelta(seconds=INTERVAL * 0.85) <= next_due <= due + timedelta(seconds=INTERVAL)
    assert await world.poll() == 0, "not due again within the interval"
    world.clock.now = next_due
    assert await world.poll() == 1


async def test_a_live_conference_is_one_alert_and_its_end_before_sending_cancels_it(world: World) -> None:
    lecture = world.canvas.conference(world.course_id, "Lecture", [world.ada["id"]])
    world.canvas.start(lecture["id"])
    world.clock.now = await world.next_poll_at()
    await world.poll()
    assert await world.outbox() == [("started", "pending", None)]

    world.canvas.end(lecture["id"])  # no dispatcher ran: the alert never left
    world.clock.now = await world.next_poll_at()
    await world.poll()
    assert await world.outbox() == [("started", "failed", "conference ended before the alert could be sent")]


async def test_a_poll_asked_for_while_one_is_in_flight_follows_it_at_once(world: World) -> None:
    """A Live Event (or a scan) makes a user due while their poll is still waiting for Canvas: that poll
    may have asked Canvas before the join, so the request must not be swallowed until the next interval."""
    world.canvas.canvas.post("/_sandbox/faults", {"kind": "delay", "seconds": 0.5, "count": 1})
    world.clock.now = await world.next_poll_at()
    assert await world.poller.tick() == 1  # in flight for half a second
    async with world.sessions.begin() as session:
        await session.execute(update(LinkedUser).values(next_poll_at=world.clock.now))  # asked for now
    assert await world.poller.tick() == 1, "claimed again while the first poll is in flight"
    await world.poller.settle()
    assert await world.next_poll_at() <= world.clock.now, "due again at once, not an interval later"
    assert await world.poll() == 1
    assert await world.next_poll_at() > world.clock.now, "then back on its interval"
