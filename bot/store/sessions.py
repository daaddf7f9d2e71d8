"""Sessions beyond Canvas's live scope (opened by Live Events or the session scan) and the scan's
catalog of each user's conferences. Callers own the transactions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.sessions import ScanChanges, Scanned
from bot.store.id_lists import one_of
from bot.store.models import (
    KnownConference,
    LinkedUser,
    OpenedSession,
    OutboxMessage,
    Subscription,
    SubscriptionKnownConference,
    UserConference,
)


@dataclass(frozen=True, slots=True)
class OpenedHint:
    """A session opened beyond Canvas's live scope (OpenedSession), as a poll needs it."""

    opened_at: datetime
    context_type: str
    context_id: int


async def opened_for_users(
    session: AsyncSession, linked_user_ids: list[int], now: datetime
) -> dict[int, dict[int, OpenedHint]]:
    """Unexpired opened sessions in the courses and groups of the users' conferences (as the session scan
    knows them): not only the conferences the scan has seen, since a Live Event may be the first news
    of a new one. The poll's look-up of the details decides whether the user can see it at all."""
    found: dict[int, dict[int, OpenedHint]] = {uid: {} for uid in linked_user_ids}
    rows = await session.execute(
        select(UserConference.linked_user_id, OpenedSession)
        .join(
            OpenedSession,
            (OpenedSession.context_type == UserConference.context_type)
            & (OpenedSession.context_id == UserConference.context_id),
        )
        .where(
            one_of(session, UserConference.linked_user_id, linked_user_ids), OpenedSession.expires_at > now
        )
        .distinct()
    )
    for user_id, opened in rows.all():
        hint = OpenedHint(opened.opened_at, opened.context_type, opened.context_id)
        found[user_id][opened.conference_id] = hint
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
        where=OpenedSession.expires_at <= statement.excluded.opened_at,
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


async def never_scanned(session: AsyncSession, linked_user_ids: list[int]) -> set[int]:
    """Those of these linked users whose session scan has never succeeded (`next_scan_at` unset)."""
    if not linked_user_ids:
        return set()
    found = await session.scalars(
        select(LinkedUser.id).where(
            one_of(session, LinkedUser.id, linked_user_ids), LinkedUser.next_scan_at.is_(None)
        )
    )
    return set(found)


async def mark_scanned(session: AsyncSession, linked_user_id: int, next_scan: datetime) -> None:
    """A user's first scan succeeded. Later scans are scheduled in memory by the replica that polls the
    user (engine/session_scan.py): this is the only scan-schedule write, so a scan costs no row."""
    await session.execute(
        update(LinkedUser).where(LinkedUser.id == linked_user_id).values(next_scan_at=next_scan)
    )


def _scanned(row: UserConference) -> Scanned:
    return Scanned(
        conference_id=row.conference_id,
        context_type=row.context_type,
        context_id=row.context_id,
        title=row.title,
        start_at=row.start_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        invited=row.invited,
        teaches=row.teaches,
    )


async def load_catalog(session: AsyncSession, linked_user_id: int) -> dict[int, Scanned]:
    rows = await session.scalars(
        select(UserConference).where(UserConference.linked_user_id == linked_user_id)
    )
    return {row.conference_id: _scanned(row) for row in rows}


async def load_catalogs(session: AsyncSession, linked_user_ids: list[int]) -> dict[int, dict[int, Scanned]]:
    """What the previous scans of these users found, by user (a user with nothing found is left out)."""
    catalogs: dict[int, dict[int, Scanned]] = {}
    rows = await session.scalars(
        select(UserConference).where(one_of(session, UserConference.linked_user_id, linked_user_ids))
    )
    for row in rows:
        catalogs.setdefault(row.linked_user_id, {})[row.conference_id] = _scanned(row)
    return catalogs


async def write_catalog(session: AsyncSession, linked_user_id: int, changes: ScanChanges) -> None:
    """Write what the scan found different (an upsert: two replicas may scan one user at once)."""
    if changes.gone:
        await session.execute(
            delete(UserConference).where(
                UserConference.linked_user_id == linked_user_id,
                UserConference.conference_id.in_(changes.gone),
            )
        )
    if not changes.changed:
        return
    rows = [{"linked_user_id": linked_user_id, **asdict(entry)} for entry in changes.changed]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(UserConference).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["linked_user_id", "conference_id"],
            set_={
                key: statement.excluded[key]
                for key in rows[0]
                if key not in ("linked_user_id", "conference_id")
            },
        )
    )


async def poll_participants_now(session: AsyncSession, conference_ids: list[int], now: datetime) -> int:
    """Ask for the polls of every linked user the scan knows in these conferences now (a Live Event or a
    scan saw one start); returns how many users that was."""
    if not conference_ids:
        return 0
    participants = select(UserConference.linked_user_id).where(
        UserConference.conference_id.in_(conference_ids)
    )
    return await _request_polls(session, LinkedUser, LinkedUser.id.in_(participants), now)


async def _request_polls(session: AsyncSession, model: Any, which: ColumnElement[bool], now: datetime) -> int:
    """Ask for these units' polls now: `poll_requested_at`, which the replica holding each unit's bucket
    reads on its next tick (issue 14: the schedules live in the replicas' memory, so the request must
    reach the owner through the database). A request already pending since before now is moved to now,
    so a poll that began before this request cannot clear it."""
    pending = or_(model.poll_requested_at.is_(None), model.poll_requested_at < now)
    result = await session.execute(update(model).where(which, pending).values(poll_requested_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A scheduled conference of a linked user, with what a reminder or nudge needs about them."""

    entry: Scanned
    linked_user_id: int
    team_id: str
    slack_user_id: str
    reminder_minutes: int | None
    quiet_start: str | None
    quiet_end: str | None
    timezone: str | None


async def scheduled_between(session: AsyncSession, earliest: datetime, latest: datetime) -> list[Scheduled]:
    """Conferences of linked users (alerts on) scheduled to start within [earliest, latest)."""
    rows = await session.execute(
        select(UserConference, LinkedUser)
        .join(LinkedUser, LinkedUser.id == UserConference.linked_user_id)
        .where(
            UserConference.start_at >= earliest,
            UserConference.start_at < latest,
            LinkedUser.needs_relink.is_(False),
            LinkedUser.alerts_enabled.is_(True),
        )
    )
    return [
        Scheduled(
            entry=_scanned(row),
            linked_user_id=user.id,
            team_id=user.team_id,
            slack_user_id=user.slack_user_id,
            reminder_minutes=user.reminder_minutes,
            quiet_start=user.quiet_start,
            quiet_end=user.quiet_end,
            timezone=user.timezone,
        )
        for row, user in rows.all()
    ]


async def live_sessions_of(session: AsyncSession, linked_user_ids: list[int]) -> set[tuple[int, int]]:
    """(user, conference) pairs whose latest session the live poll holds open: started, so nothing to
    remind or nudge about, whatever the last scan saw."""
    if not linked_user_ids:
        return set()
    rows = await session.execute(
        select(KnownConference.linked_user_id, KnownConference.conference_id).where(
            KnownConference.linked_user_id.in_(linked_user_ids), KnownConference.ended_at.is_(None)
        )
    )
    return {(int(user_id), int(conference_id)) for user_id, conference_id in rows.all()}


REMINDER_KEY_SUFFIX = ":remind"


async def deferred_reminders(session: AsyncSession, now: datetime) -> list[OutboxMessage]:
    """People's reminders held for later (quiet hours): each is checked against the person's catalog
    before it goes. Only rows that carry their conference (a person's reminder does; a channel's, which
    no quiet hours hold, does not): a channel reminder enqueued a moment after this tick's clock, or
    paced, matched too, found no linked person for its channel and was dropped as stale."""
    return list(
        await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.dedup_key.endswith(REMINDER_KEY_SUFFIX),
                OutboxMessage.conference_id.is_not(None),
            )
        )
    )


async def conference_context(session: AsyncSession, conference_id: int) -> tuple[str, int] | None:
    """The course or group of a conference, as any user's scan saw it (None: no scan has seen it)."""
    row = (
        await session.execute(
            select(UserConference.context_type, UserConference.context_id)
            .where(UserConference.conference_id == conference_id)
            .limit(1)
        )
    ).first()
    return None if row is None else (str(row[0]), int(row[1]))


async def poll_concerned_now(
    session: AsyncSession,
    conference_id: int,
    *,
    canvas_user_id: int | None,
    course_id: int | None,
    now: datetime,
) -> int:
    """Ask now for every poll that may see this conference: its participants as the scan knows them, the
    users the scan knows in its course (a conference newer than their last scan), the linked accounts of
    the Canvas user who joined, and the channel subscriptions of its course."""
    due = await poll_participants_now(session, [conference_id], now)
    if course_id is not None:
        in_course = select(UserConference.linked_user_id).where(
            UserConference.context_type == "Course", UserConference.context_id == course_id
        )
        due += await _request_polls(session, LinkedUser, LinkedUser.id.in_(in_course), now)
    if canvas_user_id is not None:
        due += await _request_polls(session, LinkedUser, LinkedUser.canvas_user_id == canvas_user_id, now)
    if course_id is not None:
        due += await _request_polls(session, Subscription, Subscription.course_id == course_id, now)
    return due


@dataclass(frozen=True, slots=True)
class AgendaDue:
    """A user whose daily agenda is due: what the runner needs to render it and to schedule the next."""

    linked_user_id: int
    team_id: str
    slack_user_id: str
    agenda_at: str
    due_at: datetime


async def due_agendas(session: AsyncSession, now: datetime, limit: int) -> list[AgendaDue]:
    """Users whose agenda is due (a read: the dedup key, not a lock, keeps each day's agenda single)."""
    rows = await session.scalars(
        select(LinkedUser)
        .where(
            LinkedUser.agenda_at.is_not(None),
            LinkedUser.agenda_next_at <= now,
            LinkedUser.needs_relink.is_(False),
        )
        .order_by(LinkedUser.agenda_next_at)
        .limit(limit)
    )
    return [
        AgendaDue(u.id, u.team_id, u.slack_user_id, u.agenda_at or "", u.agenda_next_at or now) for u in rows
    ]


async def schedule_agenda(
    session: AsyncSession, linked_user_id: int, due_at: datetime, next_at: datetime | None
) -> None:
    """Move a user's agenda on to `next_at`, unless another replica (or a new setting) already did."""
    await session.execute(
        update(LinkedUser)
        .where(LinkedUser.id == linked_user_id, LinkedUser.agenda_next_at == due_at)
        .values(agenda_next_at=next_at)
    )


@dataclass(frozen=True, slots=True)
class ChannelScheduled:
    """A scheduled conference of a subscribed course, as its channel's reminder needs it."""

    entry: Scanned
    subscription_id: int
    team_id: str
    channel_id: str
    reminder_minutes: int | None


async def scheduled_for_channels(
    session: AsyncSession, earliest: datetime, latest: datetime
) -> list[ChannelScheduled]:
    """Conferences of subscribed courses scheduled within [earliest, latest), as the subscriber's session
    scan sees them (the subscription is polled with the subscriber's token too), unless the channel's
    reminders are off or the conference is live for the channel already."""
    rows = await session.execute(
        select(UserConference, Subscription)
        .join(Subscription, Subscription.subscriber_id == UserConference.linked_user_id)
        .where(
            UserConference.context_type == "Course",
            UserConference.context_id == Subscription.course_id,
            UserConference.start_at >= earliest,
            UserConference.start_at < latest,
            or_(Subscription.reminder_minutes.is_(None), Subscription.reminder_minutes > 0),
        )
    )
    found = [
        ChannelScheduled(_scanned(row), sub.id, sub.team_id, sub.channel_id, sub.reminder_minutes)
        for row, sub in rows.all()
    ]
    if not found:
        return []
    live = await session.execute(
        select(SubscriptionKnownConference.subscription_id, SubscriptionKnownConference.conference_id).where(
            SubscriptionKnownConference.subscription_id.in_({item.subscription_id for item in found}),
            SubscriptionKnownConference.ended_at.is_(None),
        )
    )
    open_now = {(int(s), int(c)) for s, c in live.all()}
    return [item for item in found if (item.subscription_id, item.entry.conference_id) not in open_now]
