"""Issue 14's store and poller across replicas: the bucket SQL agrees with the pure hash on SQLite and
PostgreSQL, new links and poll requests are found, and a killed replica's users are polled by another
within interval + lease of its death (two Pollers on one database, an injected clock, no sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.canvas.client import CanvasClient
from bot.domain.buckets import bucket_of
from bot.domain.models import Conference
from bot.engine.leases import BucketLeases
from bot.engine.linking import link_with_token
from bot.engine.poll_units import PollJob, UserUnits
from bot.engine.poller import Poller
from bot.store import buckets
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, Subscription
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures: each test on SQLite and PostgreSQL)
from tests.pollers import poller_for_test
from tests.support import CanvasWorld, Clock, fernet_key

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = 60.0
LEASE = timedelta(seconds=30)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:  # noqa: F811
    await upgrade_async(db_url)
    engine = create_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def _add_users(sessions: SessionFactory, count: int, linked_at: datetime = NOW) -> list[int]:
    users = [
        LinkedUser(
            team_id="T1",
            slack_user_id=f"U{n:04d}",
            canvas_user_id=n,
            canvas_name=f"User {n}",
            token_kind="pat",
            access_token_enc=b"x",
            linked_at=linked_at,
        )
        for n in range(count)
    ]
    async with sessions.begin() as session:
        session.add_all(users)
        await session.flush()
        for n, user in enumerate(users[: count // 2]):
            session.add(
                Subscription(
                    team_id="T1",
                    channel_id=f"C{n}",
                    course_id=n,
                    course_name="c",
                    subscriber_id=user.id,
                    created_at=linked_at,
                )
            )
    return [user.id for user in users]


async def test_the_bucket_sql_agrees_with_the_pure_hash(sessions: SessionFactory) -> None:
    await _add_users(sessions, 300)
    held = {0, 3, 17, 100, 255}
    async with sessions() as session:
        for kind in (buckets.USER, buckets.SUBSCRIPTION):
            every = {ref.unit_id for ref in await buckets.units_in(session, kind, set(range(256)), 256)}
            assert len(every) == (300 if kind == buckets.USER else 150)
            mine = {ref.unit_id for ref in await buckets.units_in(session, kind, held, 256)}
            assert mine == {unit for unit in every if bucket_of(kind, unit, 256) in held}
            assert mine, "some units in these buckets"


async def test_new_links_and_poll_requests_are_found_and_a_request_is_cleared_only_if_not_renewed(
    sessions: SessionFactory,
) -> None:
    old = await _add_users(sessions, 4, linked_at=NOW - timedelta(hours=1))
    async with sessions() as session:
        assert await buckets.units_since(session, buckets.USER, NOW - timedelta(seconds=10)) == []
    async with sessions.begin() as session:
        await session.execute(update(LinkedUser).where(LinkedUser.id == old[0]).values(linked_at=NOW))
        await session.execute(update(LinkedUser).where(LinkedUser.id == old[1]).values(poll_requested_at=NOW))
    async with sessions() as session:
        found = await buckets.units_since(session, buckets.USER, NOW - timedelta(seconds=10))
        assert [ref.unit_id for ref in found] == [old[0]]
        assert await buckets.requested(session, buckets.USER) == {old[1]: NOW}
    later = NOW + timedelta(seconds=1)
    async with sessions.begin() as session:
        await session.execute(
            update(LinkedUser).where(LinkedUser.id == old[1]).values(poll_requested_at=later)
        )
        await buckets.clear_requested(session, buckets.USER, {old[1]: NOW})  # a poll that began before
    async with sessions() as session:
        assert await buckets.requested(session, buckets.USER) == {old[1]: later}, "the newer request stays"
    async with sessions.begin() as session:
        await buckets.clear_requested(session, buckets.USER, {old[1]: later})
    async with sessions() as session:
        assert await buckets.requested(session, buckets.USER) == {}


async def test_retire_hands_every_bucket_back_at_once(sessions: SessionFactory) -> None:
    clock = {"now": NOW}
    a = BucketLeases(sessions, buckets=8, lease=LEASE, replica="A", clock=lambda: clock["now"])
    b = BucketLeases(sessions, buckets=8, lease=LEASE, replica="B", clock=lambda: clock["now"])
    await a.renew()
    assert len(a.held) == 8
    await a.retire()
    clock["now"] += timedelta(seconds=1)
    await b.renew()
    assert len(b.held) == 8, "no wait for the lease after a clean shutdown"
    assert all(until == NOW for until in b.held.values())


class RecordingUnits(UserUnits):
    """Linked users, noting when each was polled and by whom."""

    def __init__(self, name: str, clock: Clock, polls: list[tuple[str, int, datetime]]) -> None:
        self._name, self._clock, self._polls = name, clock, polls

    async def fetch(self, canvas: CanvasClient, token: str, job: PollJob, now: datetime) -> list[Conference]:
        self._polls.append((self._name, job.unit_id, self._clock()))
        return await super().fetch(canvas, token, job, now)


@pytest.mark.parametrize("killed", ["first", "joiner"])
async def test_a_killed_replicas_users_are_polled_by_the_other_within_interval_plus_lease(
    tmp_path: Path, canvas: CanvasWorld, killed: str
) -> None:
    """Either replica may die. Fails before for the joiner (the chaos soak's lost alerts): the survivor
    held the lower-numbered buckets, and its take, ordered by bucket and counting its own held buckets
    as takeable, "took" those again and never reached the dead replica's."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    cipher = TokenCipher([fernet_key()])
    clock = Clock()
    polls: list[tuple[str, int, datetime]] = []
    async with CanvasClient(canvas.canvas.url) as client:
        for n in range(24):
            person = canvas.user(f"Student {n}")
            await link_with_token(
                sessions, client, cipher, team_id="T1", slack_user_id=f"U{n}", token=person["token"]
            )

        def replica(name: str) -> Poller:
            units = RecordingUnits(name, clock, polls)
            return poller_for_test(
                units, sessions, client, cipher, clock, canvas_root=canvas.canvas.url, interval=INTERVAL
            )

        a, b = replica("A"), replica("B")

        async def run(pollers: list[Poller], seconds: int) -> None:
            for _ in range(seconds):
                for poller in pollers:
                    await poller.tick()
                    await poller.settle()
                clock.advance(1)

        await run([a], 5)
        await run([a, b], 90)  # B joins: A hands half of its buckets back, B takes them
        assert a.scheduled + b.scheduled == 24 and a.scheduled and b.scheduled
        assert {who for who, _, at in polls if at > clock.now - timedelta(seconds=INTERVAL)} == {"A", "B"}

        dead, survivor = (a, b) if killed == "first" else (b, a)
        name = "B" if survivor is b else "A"
        dead_units = set(dead._schedule.units())
        died = clock.now  # SIGKILLed: no retire, no more ticks or heartbeats
        await run([survivor], int(INTERVAL + LEASE.total_seconds()) + 5)
        polled_after: dict[int, datetime] = {}  # each of the dead one's units: its first poll after
        for who, unit, at in polls:
            if who == name and at >= died and unit in dead_units:
                polled_after.setdefault(unit, at)
        assert set(polled_after) == dead_units, "every unit of the dead replica's buckets polled again"
        deadline = died + timedelta(seconds=INTERVAL) + LEASE
        assert max(polled_after.values()) <= deadline, max(polled_after.values()) - died
        assert survivor.scheduled == 24
        await survivor.close()
        dead._own_leases = False  # dead: it must not hand its buckets back
        await dead.close()
    await engine.dispose()


async def test_a_replica_whose_heartbeat_lapsed_stops_polling_and_takes_its_buckets_straight_back(
    sessions: SessionFactory,
) -> None:
    clock = {"now": NOW}
    a = BucketLeases(sessions, buckets=8, lease=LEASE, replica="A", clock=lambda: clock["now"])
    await a.renew()
    generation = a.generation
    clock["now"] += LEASE / 2
    a.expire_if_lapsed(clock["now"])
    assert len(a.held) == 8, "within its lease"
    clock["now"] += LEASE  # the heartbeat was stuck behind a lock for longer than a lease
    a.expire_if_lapsed(clock["now"])
    assert a.held == {} and a.generation > generation, "another replica may hold them now"
    lag = a.lag(clock["now"])
    assert lag is not None and lag >= LEASE
    await a.renew()
    assert len(a.held) == 8, "nobody took them: its own again at once"
