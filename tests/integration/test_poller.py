"""The Poller against the sandbox Canvas and a real SQLite database, on an injected clock (no sleeps):
a due user is polled once a tick, a live conference becomes one alert row, the next poll falls one
interval after the previous one was due, and a session that ends before its alert left cancels it.
Issue 14: the schedule is in memory, so a poll that changes nothing writes no row; a poll request reaches
the poller through the database; a back-off is written and outlives the Poller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPICursor

from bot.canvas.client import CanvasClient
from bot.engine.linking import link_with_token
from bot.engine.poll_units import UserUnits
from bot.engine.poller import Poller
from bot.store import sessions as store_sessions
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, OutboxMessage
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures: each test on SQLite and PostgreSQL)
from tests.pollers import poller_for_test
from tests.support import CanvasWorld, Clock, fernet_key

INTERVAL = 60.0


class RowsWritten:
    """Rows the database reports written (INSERT/UPDATE/DELETE rowcounts), counted at the cursor. The
    lease heartbeat's rows (poll_buckets, poll_replicas) are counted apart: they are written once per
    third of a lease, not per poll, and this clock jumps a whole interval between polls."""

    def __init__(self) -> None:
        self.rows = 0
        self.heartbeat_rows = 0
        self.statements: list[str] = []

    def __call__(
        self, _conn: Connection, cursor: DBAPICursor, statement: str, *_args: object, **_kwargs: object
    ) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb not in ("INSERT", "UPDATE", "DELETE") or cursor.rowcount <= 0:
            return
        if "poll_buckets" in statement or "poll_replicas" in statement:
            self.heartbeat_rows += cursor.rowcount
        else:
            self.rows += cursor.rowcount
            self.statements.append(statement.split("\n", 1)[0][:80])


@dataclass
class World:
    poller: Poller
    sessions: SessionFactory
    clock: Clock
    canvas: CanvasWorld
    course_id: int
    ada: dict[str, object]
    ada_id: int
    written: RowsWritten
    make_poller: Callable[[], Poller]

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
        """When Ada is next due, in the poller's in-memory schedule."""
        due = self.poller.due_at(self.ada_id)
        assert due is not None
        return due

    async def ada_row(self) -> LinkedUser:
        async with self.sessions() as session:
            user = await session.scalar(select(LinkedUser))
        assert user is not None
        return user


@pytest.fixture
async def world(db_url: str, canvas: CanvasWorld) -> AsyncIterator[World]:  # noqa: F811
    url = db_url
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

        def make_poller() -> Poller:
            return poller_for_test(
                UserUnits(), sessions, client, cipher, clock, canvas_root=canvas.canvas.url, interval=INTERVAL
            )

        poller = make_poller()
        assert await poller.tick() == 1, (
            "a user found at start is polled at once (the only one in its bucket)"
        )
        await poller.settle()
        async with sessions() as session:
            ada_id = (await session.scalars(select(LinkedUser.id))).one()
        written = RowsWritten()
        event.listen(engine.sync_engine, "after_cursor_execute", written)
        world = World(poller, sessions, clock, canvas, int(course["id"]), ada, ada_id, written, make_poller)
        yield world
        await world.poller.close()
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
    async with world.sessions.begin() as session:  # a Live Event asks for a poll now
        await session.execute(update(LinkedUser).values(poll_requested_at=world.clock.now))
    assert await world.poller.tick() == 0, "noted, not started: one poll of a unit at a time"
    await world.poller.settle()
    assert await world.next_poll_at() <= world.clock.now, "due again at once, not an interval later"
    assert await world.poll() == 1
    assert await world.next_poll_at() > world.clock.now, "then back on its interval"
    assert (await world.ada_row()).poll_requested_at is None, "the request served is cleared"


async def test_polls_that_change_nothing_write_no_row(world: World) -> None:
    """Issue 14: the schedule is in memory; an unchanged poll writes nothing (not even a claim, nor a
    "last checked" stamp: before, one every 30 intervals made 0.033 rows per poll)."""
    polls = 0
    for _ in range(40):
        world.clock.now = await world.next_poll_at()
        polls += await world.poll()
    assert polls == 40
    assert world.written.rows == 0, world.written.statements


async def test_a_start_writes_its_state_and_alert_and_the_polls_after_it_nothing(world: World) -> None:
    lecture = world.canvas.conference(world.course_id, "Lecture", [world.ada["id"]])
    world.canvas.start(lecture["id"])
    world.clock.now = await world.next_poll_at()
    await world.poll()
    assert world.written.rows == 3, world.written.statements  # course name, known_conferences, outbox
    for _ in range(5):
        world.clock.now = await world.next_poll_at()
        await world.poll()
    assert world.written.rows == 3, world.written.statements


async def test_a_live_event_request_reaches_the_owner_and_is_polled_on_its_next_tick(world: World) -> None:
    lecture = world.canvas.conference(world.course_id, "Lecture", [world.ada["id"]])
    world.canvas.start(lecture["id"])
    world.clock.advance(5)  # well before Ada's next regular poll
    assert await world.next_poll_at() > world.clock.now
    async with world.sessions.begin() as session:  # what LiveEventIntake does for the join
        asked = await store_sessions.poll_concerned_now(
            session, lecture["id"], canvas_user_id=int(world.ada["id"]), course_id=None, now=world.clock.now
        )
    assert asked == 1
    assert await world.poll() == 1, "polled on the next tick"
    assert await world.outbox() == [("started", "pending", None)]
    assert (await world.ada_row()).poll_requested_at is None
    before = world.written.rows
    assert await world.poll() == 0, "once"
    assert world.written.rows == before


async def test_an_error_backs_off_in_the_database_and_a_new_poller_keeps_it(world: World) -> None:
    for _ in range(3):  # successes write nothing; the error's write says when Ada was last polled well
        world.clock.now = await world.next_poll_at()
        await world.poll()
    last_good = world.clock.now
    world.canvas.canvas.post("/_sandbox/faults", {"kind": "error_500", "count": 1})
    world.clock.now = await world.next_poll_at()
    await world.poll()
    row = await world.ada_row()
    assert row.consecutive_failures == 1 and row.last_error is not None
    assert row.last_success_at == last_good
    assert row.next_poll_at == world.clock.now + timedelta(seconds=INTERVAL)  # the first back-off
    assert await world.next_poll_at() == row.next_poll_at

    await world.poller.close()  # a restart, or another replica taking the bucket over
    world.poller = world.make_poller()
    world.clock.advance(INTERVAL / 2)
    assert await world.poll() == 0, "the back-off holds across the restart"
    assert await world.next_poll_at() == row.next_poll_at
    world.clock.now = row.next_poll_at
    assert await world.poll() == 1
    row = await world.ada_row()
    assert row.consecutive_failures == 0 and row.last_error is None, "cleared after the success"
