"""Queries shared by the engine, the Slack handlers and the CLI. Callers own the transactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import starmap
from typing import Any, NamedTuple, cast

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.domain.diff import Seen
from bot.domain.outbox import ENDED_BEFORE_SENT
from bot.store.id_lists import one_of
from bot.store.models import (
    Base,
    CanvasContext,
    KnownConference,
    LinkedUser,
    MutedContext,
    OutboxMessage,
    RecordingWatch,
    SubscriptionKnownConference,
)


async def get_linked(session: AsyncSession, team_id: str, slack_user_id: str) -> LinkedUser | None:
    return await session.scalar(
        select(LinkedUser).where(LinkedUser.team_id == team_id, LinkedUser.slack_user_id == slack_user_id)
    )


async def update_linked(session: AsyncSession, team_id: str, slack_user_id: str, **values: Any) -> bool:
    """Change a linked user's settings; False when the Slack user is not linked."""
    result = await session.execute(
        update(LinkedUser)
        .where(LinkedUser.team_id == team_id, LinkedUser.slack_user_id == slack_user_id)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


async def unmute_course(session: AsyncSession, linked_user_id: int, course_id: int) -> None:
    await session.execute(
        delete(MutedContext).where(
            MutedContext.linked_user_id == linked_user_id,
            MutedContext.context_type == "Course",
            MutedContext.context_id == course_id,
        )
    )


async def upsert_link(
    session: AsyncSession,
    *,
    team_id: str,
    slack_user_id: str,
    canvas_user_id: int,
    canvas_name: str,
    token_kind: str,
    access_token_enc: bytes,
    refresh_token_enc: bytes | None,
    token_expires_at: datetime | None,
    now: datetime,
) -> LinkedUser:
    """Link or relink: a relink to another Canvas account forgets what the old account saw."""
    user = await get_linked(session, team_id, slack_user_id)
    if user is None:
        user = LinkedUser(team_id=team_id, slack_user_id=slack_user_id)
        session.add(user)
    elif user.canvas_user_id != canvas_user_id:
        await session.execute(delete(KnownConference).where(KnownConference.linked_user_id == user.id))
    user.canvas_user_id = canvas_user_id
    user.canvas_name = canvas_name
    user.token_kind = token_kind
    user.access_token_enc = access_token_enc
    user.refresh_token_enc = refresh_token_enc
    user.token_expires_at = token_expires_at
    user.needs_relink = False
    user.relink_reason = None
    user.consecutive_failures = 0
    user.last_error = None
    user.linked_at = now
    user.next_poll_at = now
    if user.alerts_enabled is None:
        user.alerts_enabled = True
    await session.flush()
    return user


class PolledUser(NamedTuple):
    """What a poll needs of its user's row. A plain tuple: this is read for every poll, and an attribute
    of SQLAlchemy's Row costs about 20 times one of a NamedTuple (some 20 are read per poll)."""

    id: int
    team_id: str
    slack_user_id: str
    token_kind: str
    access_token_enc: bytes
    refresh_token_enc: bytes | None
    token_expires_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    alerts_enabled: bool
    linked_at: datetime
    quiet_start: str | None
    quiet_end: str | None
    timezone: str | None


POLLED_USER_COLUMNS = tuple(getattr(LinkedUser, name) for name in PolledUser._fields)


async def load_users(session: AsyncSession, ids: Sequence[int]) -> list[PolledUser]:
    """The rows a poll of these users needs (those still linked): a read by primary key. Which users are
    due is the poller's in-memory schedule (issue 14), so a poll no longer writes its user's row to
    claim it."""
    if not ids:
        return []
    rows = await session.execute(
        select(*POLLED_USER_COLUMNS).where(
            one_of(session, LinkedUser.id, ids), LinkedUser.needs_relink.is_(False)
        )
    )
    return list(starmap(PolledUser, rows))


KnownModel = type[KnownConference] | type[SubscriptionKnownConference]


def _owner(model: KnownModel) -> InstrumentedAttribute[int]:
    if model is KnownConference:
        return KnownConference.linked_user_id
    return SubscriptionKnownConference.subscription_id


async def mark_needs_relink(session: AsyncSession, linked_user_id: int, reason: str, now: datetime) -> None:
    """Canvas said the token is dead: stop polling this user until they link again."""
    await session.execute(
        update(LinkedUser)
        .where(LinkedUser.id == linked_user_id)
        .values(needs_relink=True, relink_reason=reason[:255], last_poll_at=now)
    )


async def load_known(
    session: AsyncSession, model: KnownModel, owners: list[int]
) -> dict[int, dict[int, Seen]]:
    """The last live sets of several poll sources in one query."""
    owner = _owner(model)
    known: dict[int, dict[int, Seen]] = {owner_id: {} for owner_id in owners}
    rows = await session.execute(select(model, owner).where(one_of(session, owner, owners)))
    for found, owner_id in rows:
        row = cast(KnownConference | SubscriptionKnownConference, found)
        known[owner_id][row.conference_id] = Seen(
            conference_id=row.conference_id,
            started_at=row.started_at,
            title=row.title,
            context_type=row.context_type,
            context_id=row.context_id,
            missing_polls=row.missing_polls,
            canvas_started_at=row.canvas_started_at,
            ended_at=row.ended_at,
        )
    return known


async def replace_known(
    session: AsyncSession, model: KnownModel, owner_id: int, previous: dict[int, Seen], keep: dict[int, Seen]
) -> None:
    """Write only what changed between the previous and the new live set (most polls change nothing)."""
    owner = _owner(model)
    gone = [cid for cid in previous if cid not in keep]
    fresh: list[dict[str, Any]] = []  # new conferences, and new sessions of known ones
    if gone:
        await session.execute(delete(model).where(owner == owner_id, model.conference_id.in_(gone)))
    for cid, seen in keep.items():
        before = previous.get(cid)
        if before == seen:
            continue
        if before is not None and before.started_at == seen.started_at:
            await session.execute(
                update(model)
                .where(owner == owner_id, model.conference_id == cid)
                .values(missing_polls=seen.missing_polls, title=seen.title, ended_at=seen.ended_at)
            )
            continue
        fresh.append(
            {
                owner.key: owner_id,
                "conference_id": cid,
                "started_at": seen.started_at,
                "title": seen.title,
                "context_type": seen.context_type,
                "context_id": seen.context_id,
                "missing_polls": seen.missing_polls,
                "canvas_started_at": seen.canvas_started_at,
                "ended_at": seen.ended_at,
            }
        )
    if fresh:
        await session.execute(_upsert_known(session, model, owner, fresh))


def _upsert_known(
    session: AsyncSession, model: KnownModel, owner: InstrumentedAttribute[int], rows: list[dict[str, Any]]
) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE: when a poll outlasts the poll interval, another replica may poll
    the same unit at once and write the same new conference first; a plain INSERT would then fail the
    whole batch's transaction (every unit in it polled for nothing), an upsert just agrees with it."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(model).values(rows)
    columns = (
        "started_at",
        "title",
        "context_type",
        "context_id",
        "missing_polls",
        "canvas_started_at",
        "ended_at",
    )
    return statement.on_conflict_do_update(
        index_elements=[owner.key, "conference_id"],
        set_={column: statement.excluded[column] for column in columns},
    )


async def context_names(session: AsyncSession, keys: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    if not keys:
        return {}
    rows = await session.scalars(
        select(CanvasContext).where(CanvasContext.context_id.in_([cid for _, cid in keys]))
    )
    return {(r.context_type, r.context_id): r.name for r in rows if (r.context_type, r.context_id) in keys}


async def save_context_name(
    session: AsyncSession, context_type: str, context_id: int, name: str, now: datetime
) -> None:
    """Upsert: several pollers may learn the same course name at the same moment."""
    values = {"context_type": context_type, "context_id": context_id, "name": name, "fetched_at": now}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(CanvasContext).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["context_type", "context_id"], set_={"name": name, "fetched_at": now}
        )
    )


async def insert_ignore(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], unique: list[str]
) -> None:
    """INSERT ... ON CONFLICT (unique) DO NOTHING, on PostgreSQL and SQLite alike."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(model).values(list(rows)).on_conflict_do_nothing(index_elements=unique))


async def enqueue(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Outbox rows keyed by dedup_key: a second poller, replica or replay adds nothing."""
    await insert_ignore(session, OutboxMessage, rows, ["dedup_key"])


async def watch_recordings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_ignore(
        session, RecordingWatch, rows, ["team_id", "destination", "conference_id", "started_at"]
    )


async def claim_outbox(
    session: AsyncSession, now: datetime, *, limit: int, lease: timedelta
) -> list[OutboxMessage]:
    """Pending messages whose time has come, alerts first, then oldest first; leased like poll units.

    Alerts ("started") go before edits and other posts: after an outage the backlog holds both, and a
    card for a conference that is live now is worth more than the edit of one that ended a while ago."""
    rows = (
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            # By due time, not id: a row put back for a second (paced, waiting for its alert) queues behind
            # rows that were due before it, instead of being claimed first on every tick.
            .order_by(
                case((OutboxMessage.event == "started", 0), else_=1),
                OutboxMessage.next_attempt_at,
                OutboxMessage.id,
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        row.next_attempt_at = row.leased_until = now + lease
    await session.flush()
    return list(rows)


async def alert_for(
    session: AsyncSession, team_id: str, destination: str, conference_id: int, started_at: datetime
) -> OutboxMessage | None:
    """The `started` alert of one conference session at one destination."""
    return await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.team_id == team_id,
            OutboxMessage.destination == destination,
            OutboxMessage.conference_id == conference_id,
            OutboxMessage.started_at == started_at,
            OutboxMessage.event == "started",
        )
    )


async def original_alert(session: AsyncSession, message: OutboxMessage) -> OutboxMessage | None:
    """The `started` message an `ended` edit refers to."""
    if message.conference_id is None or message.started_at is None:
        return None
    return await alert_for(
        session, message.team_id, message.destination, message.conference_id, message.started_at
    )


@dataclass(frozen=True, slots=True)
class SessionHistory:
    """What one conference session's card at one destination has been through, from the outbox."""

    started: bool
    ended: int
    reopened: int


async def session_history(
    session: AsyncSession, team_id: str, destination: str, conference_id: int, started_at: datetime
) -> SessionHistory:
    """Counts of the session's alert, end edits and reopen edits (indexed by ix_outbox_alert)."""
    rows = await session.execute(
        select(OutboxMessage.event, func.count())
        .where(
            OutboxMessage.team_id == team_id,
            OutboxMessage.destination == destination,
            OutboxMessage.conference_id == conference_id,
            OutboxMessage.started_at == started_at,
        )
        .group_by(OutboxMessage.event)
    )
    counts = {str(event): int(count) for event, count in rows.all()}
    return SessionHistory(counts.get("started", 0) > 0, counts.get("ended", 0), counts.get("reopened", 0))


async def cancel_unsent_alert(
    session: AsyncSession,
    team_id: str,
    destination: str,
    conference_id: int,
    started_at: datetime,
    now: datetime,
) -> bool:
    """The session ended before its alert left: fail the alert now, so it needs no edit and no turn of
    the dispatcher. Only an alert no send has begun on (`sending_since` null: `mark_sending` and this
    exclude each other row by row); False when there is none, or it may be in Slack already."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.team_id == team_id,
            OutboxMessage.destination == destination,
            OutboxMessage.conference_id == conference_id,
            OutboxMessage.started_at == started_at,
            OutboxMessage.event == "started",
            OutboxMessage.status == "pending",
            OutboxMessage.sending_since.is_(None),
        )
        .values(status="failed", sent_at=now, last_error=ENDED_BEFORE_SENT)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def update_outbox(
    session: AsyncSession, message_id: int, values: dict[str, Any], *, only_pending: bool = False
) -> None:
    """Write one attempt's outcome in one conditional UPDATE. Read-then-write would lose a race: the
    poller's `cancel_unsent_alert` can fail the row between the read and the write, and the attempt's
    `last_error` would then overwrite the reason the row really ended with."""
    statement = update(OutboxMessage).where(OutboxMessage.id == message_id)
    if only_pending:
        statement = statement.where(OutboxMessage.status == "pending")
    await session.execute(statement.values(**values))


async def mark_sending(
    session: AsyncSession, message_id: int, now: datetime, *, hold_until: datetime | None = None
) -> bool:
    """Record that a post of this row begins now; False when the row is no longer pending (cancelled by
    `cancel_unsent_alert`, or finished elsewhere): then it must not be posted. `hold_until` renews the
    claim's lease for a send that takes several calls (a file upload), so no other replica starts it."""
    values: dict[str, Any] = {"sending_since": now}
    if hold_until is not None:
        values |= {"next_attempt_at": hold_until, "leased_until": hold_until}
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "pending")
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def latest_card_edit(session: AsyncSession, message: OutboxMessage) -> OutboxMessage | None:
    """The newest "ended" or "reopened" row of the session `message` belongs to: the card's true state."""
    if message.conference_id is None or message.started_at is None:
        return None
    return await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.team_id == message.team_id,
            OutboxMessage.destination == message.destination,
            OutboxMessage.conference_id == message.conference_id,
            OutboxMessage.started_at == message.started_at,
            OutboxMessage.event.in_(("ended", "reopened")),
        )
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )


async def wake_backed_off(session: AsyncSession, now: datetime, reasons: Sequence[str]) -> int:
    """Make pending rows backing off for one of `reasons` (last_error prefixes) due now; how many.

    A row another replica holds (its lease has not run out) is left alone: made due, it would be claimed
    and posted a second time while the first replica is still sending it."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at > now,
            or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until <= now),
            or_(*(OutboxMessage.last_error.startswith(reason) for reason in reasons)),
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
