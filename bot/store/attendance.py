"""Attendance snapshots, their reports' schedule, and cached course rosters. Callers own the transactions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.attendance import SNAPSHOT_KEPT, Snapshot
from bot.store import repo
from bot.store.models import CourseRoster, LinkedUser, SessionAttendance

Names = dict[int, tuple[str, str]]  # Canvas id -> (name, sortable name)


async def save_snapshots(session: AsyncSession, snapshots: Iterable[Snapshot], now: datetime) -> None:
    """One row per session, the first writer's: every destination's poll sees the same end, and the
    lists it saw first are the ones closest to the end."""
    rows = [
        {
            "conference_id": s.conference_id,
            "started_at": s.started_at,
            "context_type": s.context_type,
            "context_id": s.context_id,
            "title": s.title,
            "ended_at": s.ended_at,
            "participants": list(s.participants),
            "invited": list(s.invited),
            "attended": list(s.attended),
            "again": s.again,
            "taken_at": now,
            "next_report_at": now,
            "report_attempts": 0,
            "expires_at": now + SNAPSHOT_KEPT,
        }
        for s in snapshots
    ]
    await repo.insert_ignore(session, SessionAttendance, rows, ["conference_id", "started_at"])


def _snapshot(row: SessionAttendance) -> Snapshot:
    return Snapshot(
        conference_id=row.conference_id,
        started_at=row.started_at,
        context_type=row.context_type,
        context_id=row.context_id,
        title=row.title,
        ended_at=row.ended_at,
        participants=tuple(int(i) for i in row.participants),
        invited=tuple(int(i) for i in row.invited),
        attended=tuple(int(i) for i in row.attended),
        again=row.again,
    )


async def claim_reports(
    session: AsyncSession, now: datetime, *, limit: int, lease: timedelta
) -> list[tuple[Snapshot, int]]:
    """Snapshots whose teachers' report is due, each with its attempts so far; leased (pushed `lease`
    on) so another replica does not build the same report meanwhile. Expired snapshots are dropped."""
    await session.execute(delete(SessionAttendance).where(SessionAttendance.expires_at <= now))
    rows = (
        await session.scalars(
            select(SessionAttendance)
            .where(SessionAttendance.reported_at.is_(None), SessionAttendance.next_report_at <= now)
            .order_by(SessionAttendance.next_report_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        row.next_report_at = now + lease
    return [(_snapshot(row), row.report_attempts) for row in rows]


async def reported(session: AsyncSession, snapshot: Snapshot, now: datetime) -> None:
    await session.execute(update(SessionAttendance).where(*_key(snapshot)).values(reported_at=now))


async def report_later(session: AsyncSession, snapshot: Snapshot, attempts: int, at: datetime) -> None:
    await session.execute(
        update(SessionAttendance).where(*_key(snapshot)).values(report_attempts=attempts, next_report_at=at)
    )


def _key(snapshot: Snapshot) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (
        SessionAttendance.conference_id == snapshot.conference_id,
        SessionAttendance.started_at == snapshot.started_at,
    )


async def snapshot_for(session: AsyncSession, conference_id: int, started_at: datetime) -> Snapshot | None:
    row = await session.get(SessionAttendance, (conference_id, started_at))
    return None if row is None else _snapshot(row)


async def linked_people(session: AsyncSession, canvas_ids: Sequence[int]) -> list[LinkedUser]:
    """Linked users (in any workspace) among these Canvas ids whose link works."""
    if not canvas_ids:
        return []
    rows = await session.scalars(
        select(LinkedUser)
        .where(LinkedUser.canvas_user_id.in_(list(canvas_ids)), LinkedUser.needs_relink.is_(False))
        .order_by(LinkedUser.id)
    )
    return list(rows.all())


async def roster(session: AsyncSession, course_id: int, fresh_after: datetime) -> Names | None:
    """The cached roster of a course, or None when there is none fetched after `fresh_after`."""
    row = await session.get(CourseRoster, course_id)
    if row is None or row.fetched_at <= fresh_after:
        return None
    return {int(key): (str(value[0]), str(value[1])) for key, value in row.names.items()}


async def save_roster(session: AsyncSession, course_id: int, names: Names, now: datetime) -> None:
    values = {"course_id": course_id, "names": {str(k): list(v) for k, v in names.items()}, "fetched_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(CourseRoster).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["course_id"], set_={"names": values["names"], "fetched_at": now}
        )
    )
