"""Sessions beyond Canvas's live scope (opened by Live Events or the session scan) and the scan's
catalog of each user's conferences. Callers own the transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import OpenedSession, UserConference


@dataclass(frozen=True, slots=True)
class OpenedHint:
    """A session opened beyond Canvas's live scope (OpenedSession), as a poll needs it."""

    opened_at: datetime
    context_type: str
    context_id: int


async def opened_for_users(
    session: AsyncSession, linked_user_ids: list[int], now: datetime
) -> dict[int, dict[int, OpenedHint]]:
    """Unexpired opened sessions of the users' conferences (as the session scan knows them)."""
    found: dict[int, dict[int, OpenedHint]] = {uid: {} for uid in linked_user_ids}
    rows = await session.execute(
        select(UserConference.linked_user_id, OpenedSession)
        .join(OpenedSession, OpenedSession.conference_id == UserConference.conference_id)
        .where(UserConference.linked_user_id.in_(linked_user_ids), OpenedSession.expires_at > now)
    )
    for user_id, opened in rows.all():
        found[user_id][opened.conference_id] = OpenedHint(
            opened.opened_at, opened.context_type, opened.context_id
        )
    return found


async def opened_for_course(session: AsyncSession, course_id: int, now: datetime) -> dict[int, OpenedHint]:
    """Unexpired opened sessions of one course's conferences (a channel subscription's)."""
    rows = await session.scalars(
        select(OpenedSession).where(
            OpenedSession.context_type == "Course",
            OpenedSession.context_id == course_id,
            OpenedSession.expires_at > now,
        )
    )
    return {o.conference_id: OpenedHint(o.opened_at, o.context_type, o.context_id) for o in rows}


async def open_session(
    session: AsyncSession,
    *,
    conference_id: int,
    context_type: str,
    context_id: int,
    opened_at: datetime,
    source: str,
    lasts: timedelta,
) -> bool:
    """Record a session opened beyond the live scope, unless one of this conference is still open (a
    second join, a duplicated or late delivery of the same event: all the same session). True when this
    call opened it."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {
        "conference_id": conference_id,
        "context_type": context_type,
        "context_id": context_id,
        "opened_at": opened_at,
        "source": source,
        "expires_at": opened_at + lasts,
    }
    statement = insert(OpenedSession).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["conference_id"],
        set_={key: statement.excluded[key] for key in values if key != "conference_id"},
        where=OpenedSession.expires_at < statement.excluded.opened_at,
    )
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def close_opened_session(session: AsyncSession, conference_id: int, ended_at: datetime) -> None:
    """Canvas says the opened session ended: the row expires then, so the next join opens a new one."""
    await session.execute(
        update(OpenedSession)
        .where(OpenedSession.conference_id == conference_id, OpenedSession.expires_at > ended_at)
        .values(expires_at=ended_at)
    )
