"""The store on real PostgreSQL: the same migrations, bucket leases that split work, atomic dedup.

These are the guarantees several replicas rely on, checked with real concurrent transactions rather
than assumed from SQLite (which serialises writers and so never exercises them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.diff import Seen
from bot.domain.outbox import ENDED_BEFORE_SENT
from bot.engine.leases import BucketLeases
from bot.store import buckets, repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade
from bot.store.models import KnownConference, LinkedUser, OutboxMessage
from tests.pg import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
TABLES = {
    "alembic_version",
    "canvas_contexts",
    "digests",
    "known_conferences",
    "linked_users",
    "muted_contexts",
    "oauth_states",
    "outbox",
    "poll_buckets",
    "poll_replicas",
    "subscription_known_conferences",
    "subscriptions",
}


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:  # noqa: F811
    await asyncio.to_thread(upgrade, pg_url)
    engine = create_engine(pg_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


def _user(n: int, due: datetime) -> LinkedUser:
    return LinkedUser(
        team_id="T1",
        slack_user_id=f"U{n:04d}",
        canvas_user_id=n,
        canvas_name=f"User {n}",
        token_kind="pat",
        access_token_enc=b"not-a-real-token",
        next_poll_at=due,
        linked_at=due,
    )


def _row(key: str) -> dict[str, Any]:
    return {
        "dedup_key": key,
        "team_id": "T1",
        "destination": "U0001",
        "event": "started",
        "conference_id": 7,
        "started_at": NOW,
        "payload": {"title": "Lecture"},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }


async def _add_users(sessions: SessionFactory, count: int) -> None:
    async with sessions.begin() as session:
        session.add_all(_user(n, NOW - timedelta(seconds=count - n)) for n in range(count))


async def test_migrations_apply_on_postgresql_and_are_idempotent(pg_url: str) -> None:  # noqa: F811
    await asyncio.to_thread(upgrade, pg_url)
    await asyncio.to_thread(upgrade, pg_url)  # a second replica starting later finds nothing to do
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            kind = await connection.scalar(
                text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'linked_users' AND column_name = 'next_poll_at'"
                )
            )
    finally:
        await engine.dispose()
    assert tables >= TABLES
    head = await asyncio.to_thread(_head_revision)
    assert version == head
    assert kind == "timestamp with time zone"


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from bot.store.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None
    return head


async def test_concurrent_takers_get_disjoint_buckets(sessions: SessionFactory) -> None:
    """Replica A holds its take open; replica B, taking everything, must skip A's buckets, not wait."""
    async with sessions.begin() as session:
        await buckets.ensure_buckets(session, 20)
    a_took = asyncio.Event()
    release_a = asyncio.Event()

    async def replica_a() -> set[int]:
        async with sessions.begin() as session:
            taken = await buckets.take(session, "A", 8, 20, NOW, LEASE)
            a_took.set()
            await release_a.wait()
            return set(taken)

    async def replica_b() -> set[int]:
        await a_took.wait()
        async with sessions.begin() as session:
            return set(await buckets.take(session, "B", 100, 20, NOW, LEASE))

    task_a = asyncio.create_task(replica_a())
    b_held = await asyncio.wait_for(replica_b(), timeout=10)  # finishes while A still holds its locks
    release_a.set()
    a_held = await task_a

    assert len(a_held) == 8 and len(b_held) == 12
    assert not a_held & b_held
    async with sessions() as session:
        assert await buckets.holders(session, NOW) == {
            **dict.fromkeys(a_held, "A"),
            **dict.fromkeys(b_held, "B"),
        }
        assert await buckets.take(session, "C", 100, 20, NOW, LEASE) == {}, "nothing free while leased"


async def test_racing_replicas_never_share_a_bucket(sessions: SessionFactory) -> None:
    """Four replicas start at once and heartbeat a few rounds: each bucket has one holder, none is
    left unheld, and each holds its fair share."""
    clock = {"now": NOW}
    replicas = [
        BucketLeases(sessions, buckets=64, lease=LEASE, replica=f"R{n}", clock=lambda: clock["now"])
        for n in range(4)
    ]
    for _ in range(4):
        await asyncio.gather(*(replica.renew() for replica in replicas))
        clock["now"] += LEASE / 3
    held = [set(replica.held) for replica in replicas]
    every = [bucket for mine in held for bucket in mine]
    assert len(every) == len(set(every)) == 64, held
    assert all(len(mine) == 16 for mine in held), [len(mine) for mine in held]
    async with sessions() as session:
        owners = await buckets.holders(session, clock["now"])
    assert {b: r.replica for r in replicas for b in r.held} == owners


async def test_a_dead_replicas_buckets_are_taken_over_once_its_lease_runs_out(
    sessions: SessionFactory,
) -> None:
    clock = {"now": NOW}
    a = BucketLeases(sessions, buckets=16, lease=LEASE, replica="A", clock=lambda: clock["now"])
    b = BucketLeases(sessions, buckets=16, lease=LEASE, replica="B", clock=lambda: clock["now"])
    await a.renew()
    await b.renew()
    await a.renew()  # A sees B: hands back half
    await b.renew()
    assert len(a.held) == len(b.held) == 8
    died = clock["now"]  # A is SIGKILLed: no retire, no more heartbeats
    clock["now"] = died + LEASE / 2
    await b.renew()
    assert len(b.held) == 8, "A's leases still run"
    clock["now"] = died + LEASE + timedelta(seconds=1)
    await b.renew()
    assert len(b.held) == 16, "within one lease (and a heartbeat) of A's death"
    a_buckets = set(a.held)
    assert set(b.held) >= a_buckets
    covered = [b.held[bucket] for bucket in a_buckets]
    assert all(until is not None and until <= died + LEASE for until in covered), "when A's polls stopped"
    await a.renew()  # A was only paused after all: its heartbeat finds the buckets gone
    assert set(a.held).isdisjoint(b.held)


async def test_outbox_claims_are_disjoint(sessions: SessionFactory) -> None:
    async with sessions.begin() as session:
        await repo.enqueue(session, [_row(f"k{n}") for n in range(10)])
    first_claimed = asyncio.Event()
    release = asyncio.Event()

    async def first() -> list[int]:
        async with sessions.begin() as session:
            rows = await repo.claim_outbox(session, NOW, limit=4, lease=timedelta(seconds=60))
            first_claimed.set()
            await release.wait()
            return [r.id for r in rows]

    task = asyncio.create_task(first())
    await first_claimed.wait()
    async with sessions.begin() as session:
        second = [r.id for r in await repo.claim_outbox(session, NOW, limit=100, lease=timedelta(seconds=60))]
    release.set()
    assert len(second) == 6 and not set(second) & set(await task)


async def test_same_dedup_key_from_two_transactions_yields_one_row(
    sessions: SessionFactory, engine: AsyncEngine
) -> None:
    """B inserts while A's insert of the same key is uncommitted: B waits on the unique index, then
    does nothing once A commits. Neither fails, and exactly one row exists."""
    a_inserted = asyncio.Event()
    commit_a = asyncio.Event()

    async def transaction_a() -> None:
        async with sessions.begin() as session:
            await repo.enqueue(session, [_row("T1:U0001:7:1:started")])
            a_inserted.set()
            await commit_a.wait()

    async def transaction_b() -> None:
        await a_inserted.wait()
        async with sessions.begin() as session:
            await repo.enqueue(session, [_row("T1:U0001:7:1:started"), _row("other")])

    task_a = asyncio.create_task(transaction_a())
    task_b = asyncio.create_task(transaction_b())
    await a_inserted.wait()
    await _wait_until_blocked(engine)
    assert not task_b.done(), "B must wait for A's outcome, not insert a duplicate"
    commit_a.set()
    await asyncio.wait_for(asyncio.gather(task_a, task_b), timeout=10)

    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).where(OutboxMessage.dedup_key == "T1:U0001:7:1:started")
        )
        total = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 1 and total == 2


async def _wait_until_blocked(engine: AsyncEngine) -> None:
    """Until some backend of this database waits on a lock (B queued behind A's uncommitted key)."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        assert asyncio.get_running_loop().time() < deadline, "B never queued behind A"
        await asyncio.sleep(0.02)


async def test_overlapping_polls_of_one_user_both_write_their_live_set(sessions: SessionFactory) -> None:
    """A poll slower than the interval lets another replica poll the same user meanwhile; both see the
    same new conference and both write it. Neither write may fail (it would roll back a whole batch)."""
    await _add_users(sessions, 1)
    async with sessions() as session:
        user_id = (await session.scalars(select(LinkedUser.id))).one()
    seen = Seen(conference_id=7, started_at=NOW, title="Lecture", context_type="Course", context_id=3)
    first_wrote = asyncio.Event()
    release = asyncio.Event()

    async def replica(wrote_first: bool) -> None:
        if not wrote_first:
            await first_wrote.wait()
        async with sessions.begin() as session:
            await repo.replace_known(session, KnownConference, user_id, {}, {7: seen})
            if wrote_first:
                first_wrote.set()
                await release.wait()

    first = asyncio.create_task(replica(True))
    second = asyncio.create_task(replica(False))
    await first_wrote.wait()
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
    async with sessions() as session:
        known = await repo.load_known(session, KnownConference, [user_id])
    assert known == {user_id: {7: seen}}


async def test_utc_datetime_round_trips_aware_datetimes(sessions: SessionFactory) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    linked = datetime(2026, 3, 1, 17, 30, 15, 123456, tzinfo=india)
    async with sessions.begin() as session:
        user = _user(1, NOW)
        user.linked_at = linked
        session.add(user)
    async with sessions() as session:
        loaded = await session.scalar(select(LinkedUser))
    assert loaded is not None
    assert loaded.linked_at == linked
    assert loaded.linked_at.utcoffset() == timedelta(0)
    assert loaded.linked_at.hour == 12 and loaded.linked_at.microsecond == 123456
    with pytest.raises(StatementError, match="naive datetime"):
        async with sessions.begin() as session:
            session.add(_user(2, datetime(2026, 3, 1, 12, 0)))


async def _scalar(sessions: SessionFactory, query: str) -> Any:
    """One value read in a transaction of its own (pg_stat_activity is a snapshot per transaction)."""
    async with sessions() as session:
        return await session.scalar(text(query))


async def test_an_attempt_written_after_the_poller_cancelled_the_alert_keeps_the_cancel_reason(
    sessions: SessionFactory,
) -> None:
    """Fails before (CI's chaos soak: a failed alert whose reason read "http 503"): the dispatcher read
    the row as pending, the poller failed it because the session had ended, and the attempt's write then
    replaced the reason. Here the poller's cancel holds the row while the attempt is written."""
    async with sessions.begin() as session:
        await repo.enqueue(session, [_row("alert")])
        message_id = (await session.scalars(select(OutboxMessage.id))).one()
    async with sessions() as poller:
        async with poller.begin():
            assert await repo.cancel_unsent_alert(poller, "T1", "U0001", 7, NOW, NOW)

            async def attempt() -> None:
                async with sessions.begin() as session:
                    values = {"attempts": 1, "last_error": "http 503", "next_attempt_at": NOW}
                    await repo.update_outbox(session, message_id, values, only_pending=True)

            written = asyncio.create_task(attempt())
            deadline = asyncio.get_running_loop().time() + 10
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            while not await _scalar(sessions, waiting):  # the attempt waits on the cancel's row lock
                assert asyncio.get_running_loop().time() < deadline, "the attempt never reached the row"
                await asyncio.sleep(0.01)
        await asyncio.wait_for(written, timeout=10)
    async with sessions() as session:
        row = await session.get(OutboxMessage, message_id)
    assert row is not None
    assert (row.status, row.attempts, row.last_error) == ("failed", 0, ENDED_BEFORE_SENT)
