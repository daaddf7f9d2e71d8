"""Bucket leases and the poll units in them (issue 14): the only SQL of the sharing between replicas.

A replica holds a bucket while its `lease_until` is ahead; its heartbeat renews every held bucket and its
own `poll_replicas` row. Buckets are taken with `FOR UPDATE SKIP LOCKED` and a conditional UPDATE (only
if still free or expired), so two replicas never hold one bucket: on PostgreSQL a replica skips the rows
another is taking instead of waiting for them, and the condition re-checked under the row lock refuses a
bucket someone took in between; SQLite serialises writers anyway.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, cast, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.buckets import HASH_MULTIPLIER, bucket_of, kind_salt
from bot.store.models import LinkedUser, PollBucket, PollReplica, Subscription

USER = "user"
SUBSCRIPTION = "subscription"


def bucket_expr(kind: str, buckets: int) -> ColumnElement[int]:
    """`domain.buckets.bucket_of` in SQL (bigint arithmetic: the same on PostgreSQL and SQLite)."""
    column = LinkedUser.id if kind == USER else Subscription.id
    return (cast(column, BigInteger) * HASH_MULTIPLIER + kind_salt(kind)) % buckets


async def ensure_buckets(session: AsyncSession, buckets: int) -> None:
    """Create the bucket rows 0..buckets-1 that do not exist yet (every replica may try at once)."""
    existing = await session.scalar(
        select(func.count()).select_from(PollBucket).where(PollBucket.bucket < buckets)
    )
    if existing == buckets:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [{"bucket": bucket} for bucket in range(buckets)]
    await session.execute(insert(PollBucket).values(rows).on_conflict_do_nothing(index_elements=["bucket"]))


async def heartbeat(
    session: AsyncSession, replica: str, held: Collection[int], now: datetime, lease: timedelta
) -> set[int]:
    """Renew this replica's row and the leases of the buckets it holds (one UPDATE); returns the buckets
    still its own (a bucket taken by another after this replica's lease ran out is not)."""
    until = now + lease
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(PollReplica).values(replica=replica, seen_until=until)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["replica"], set_={"seen_until": until})
    )
    if not held:
        return set()
    renewed = await session.scalars(
        update(PollBucket)
        .where(PollBucket.owner == replica, PollBucket.bucket.in_(list(held)))
        .values(lease_until=until)
        .returning(PollBucket.bucket)
    )
    return set(renewed.all())


async def live_replicas(session: AsyncSession, now: datetime) -> int:
    """Replicas whose heartbeat has not lapsed (the caller has just written its own)."""
    count = await session.scalar(
        select(func.count()).select_from(PollReplica).where(PollReplica.seen_until > now)
    )
    return int(count or 0)


async def take(
    session: AsyncSession,
    replica: str,
    wanted: int,
    buckets: int,
    now: datetime,
    lease: timedelta,
    holding: Collection[int] = (),
) -> dict[int, datetime | None]:
    """Take up to `wanted` free or expired buckets (or this replica's own it stopped polling); returns
    each taken bucket with the lease it had (when its previous owner's lease ran out or it was released;
    None: never held), which bounds when its units were last polled. `holding`, the buckets the caller
    holds now, are not candidates: counted in, they filled `wanted` ahead of a dead replica's buckets
    numbered above them, which then were never taken."""
    if wanted <= 0:
        return {}
    free = or_(
        PollBucket.owner.is_(None),
        PollBucket.lease_until.is_(None),
        PollBucket.lease_until <= now,
        PollBucket.owner == replica,  # its own, dropped when its heartbeat lapsed: take it straight back
    )
    rows = (
        await session.execute(
            select(PollBucket.bucket, PollBucket.lease_until)
            .where(PollBucket.bucket < buckets, PollBucket.bucket.not_in(list(holding)), free)
            .order_by(PollBucket.bucket)
            .limit(wanted)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return {}
    previous = {int(bucket): lease_until for bucket, lease_until in rows}
    taken = await session.scalars(
        update(PollBucket)
        .where(PollBucket.bucket.in_(list(previous)), free)
        .values(owner=replica, lease_until=now + lease)
        .returning(PollBucket.bucket)
    )
    return {bucket: previous[bucket] for bucket in taken.all()}


async def release(session: AsyncSession, replica: str, released: Collection[int], now: datetime) -> None:
    """Hand buckets back: free at once for another replica, their lease ending now (so the taker knows
    their units were polled up to now)."""
    if released:
        await session.execute(
            update(PollBucket)
            .where(PollBucket.owner == replica, PollBucket.bucket.in_(list(released)))
            .values(owner=None, lease_until=now)
        )


async def retire(session: AsyncSession, replica: str, now: datetime) -> None:
    """Shutdown: release every bucket of this replica and stop counting it as live."""
    await session.execute(
        update(PollBucket).where(PollBucket.owner == replica).values(owner=None, lease_until=now)
    )
    await session.execute(delete(PollReplica).where(PollReplica.replica == replica))


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A poll unit as the schedule needs it: its id, and when its back-off ends if it is in one."""

    unit_id: int
    back_off_until: datetime | None


def _active(kind: str) -> ColumnElement[bool]:
    if kind == USER:
        return LinkedUser.needs_relink.is_(False)
    return and_(LinkedUser.id == Subscription.subscriber_id, LinkedUser.needs_relink.is_(False))


def _refs(rows: Any) -> list[UnitRef]:
    return [
        UnitRef(int(unit_id), next_poll_at if failures else None) for unit_id, failures, next_poll_at in rows
    ]


def _unit_columns(kind: str) -> tuple[Any, Any, Any]:
    model: Any = LinkedUser if kind == USER else Subscription
    return model.id, model.consecutive_failures, model.next_poll_at


async def units_in(session: AsyncSession, kind: str, held: Collection[int], buckets: int) -> list[UnitRef]:
    """Every unit to poll in these buckets (a takeover or a start: one scan of the ids, not per poll)."""
    if not held:
        return []
    query = select(*_unit_columns(kind)).where(_active(kind), bucket_expr(kind, buckets).in_(list(held)))
    return _refs((await session.execute(query)).all())


async def units_since(session: AsyncSession, kind: str, since: datetime) -> list[UnitRef]:
    """Units linked (or relinked), or subscribed, since `since`: new work for whoever holds their bucket.
    An indexed range read; the caller keeps those of its own buckets."""
    if kind == USER:
        changed: ColumnElement[bool] = LinkedUser.linked_at >= since
    else:
        changed = or_(Subscription.created_at >= since, LinkedUser.linked_at >= since)
    query = select(*_unit_columns(kind)).where(_active(kind), changed)
    return _refs((await session.execute(query)).all())


async def requested(session: AsyncSession, kind: str) -> dict[int, datetime]:
    """Units whose poll was asked for now (poll_requested_at set), by id: an indexed read."""
    model: Any = LinkedUser if kind == USER else Subscription
    rows = await session.execute(
        select(model.id, model.poll_requested_at).where(model.poll_requested_at.is_not(None))
    )
    return {int(unit_id): at for unit_id, at in rows.all()}


async def clear_requested(session: AsyncSession, kind: str, served: Mapping[int, datetime]) -> None:
    """The polls asked for have run: clear each request, unless a newer one came meanwhile."""
    model: Any = LinkedUser if kind == USER else Subscription
    for unit_id, at in served.items():
        await session.execute(
            update(model)
            .where(model.id == unit_id, model.poll_requested_at <= at)
            .values(poll_requested_at=None)
        )


async def holders(session: AsyncSession, now: datetime) -> dict[int, str]:
    """Who holds which bucket now (tests, `confbot check`-style diagnostics)."""
    rows = await session.execute(
        select(PollBucket.bucket, PollBucket.owner).where(
            PollBucket.owner.is_not(None), PollBucket.lease_until > now
        )
    )
    return {int(bucket): str(owner) for bucket, owner in rows.all()}


async def leased_by_live_replica(
    session: AsyncSession, kind: str, unit_id: int, buckets: int, now: datetime
) -> bool:
    """Whether a live replica holds this unit's bucket (so polls it every interval): its lease is ahead."""
    held = await session.scalar(
        select(PollBucket.bucket).where(
            PollBucket.bucket == bucket_of(kind, unit_id, buckets),
            PollBucket.owner.is_not(None),
            PollBucket.lease_until > now,
        )
    )
    return held is not None
