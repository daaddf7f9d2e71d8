"""What gets polled: linked users (DMs) and channel subscriptions (one course each).

Each kind knows how to load the units the schedule says are due, what to ask Canvas, where its state
lives and how to record the result; the Poller does the rest (schedule, concurrency, diff, outbox) the
same way for both. Loading is a read: which units are due lives in the poller's memory (issue 14).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.canvas.client import CanvasClient
from bot.domain.diff import Seen, live_filter
from bot.domain.models import Conference
from bot.domain.quiet_hours import QuietHours
from bot.engine import alerts
from bot.engine.credentials import StoredToken
from bot.store import repo, sessions
from bot.store.id_lists import one_of
from bot.store.models import (
    KnownConference,
    LinkedUser,
    MutedContext,
    Subscription,
    SubscriptionKnownConference,
)
from bot.store.sessions import OpenedHint

ContextKey = tuple[str, int]


@dataclass(slots=True)
class PollJob:
    """A due unit, detached from the session so the fetch can run without holding the database."""

    unit_id: int
    team_id: str
    destination: str  # Slack user id (DM) or channel id
    token: StoredToken
    previous: dict[int, Seen]
    failures: int
    alerts_enabled: bool = True
    muted: frozenset[ContextKey] = frozenset()
    course_id: int | None = None
    linked_at: datetime | None = None
    quiet: QuietHours | None = None
    opened: dict[int, OpenedHint] = field(default_factory=dict)  # sessions beyond the live scope
    errored: bool = False  # its row records an error: the next success clears it (a write)
    last_success_at: datetime | None = None
    requested: datetime | None = None  # the poll request this poll serves (cleared once written)


class PollUnits(Protocol):
    kind: str
    known_model: repo.KnownModel

    async def load(self, session: AsyncSession, unit_ids: list[int], now: datetime) -> list[PollJob]:
        """The jobs of these units; a unit that is gone or must relink is left out."""
        ...

    async def fetch(
        self, canvas: CanvasClient, token: str, job: PollJob, now: datetime
    ) -> list[Conference]: ...

    async def record(self, session: AsyncSession, unit_ids: list[int], **values: object) -> None: ...

    def relink_rows(self, job: PollJob, reason: str, now: datetime) -> list[dict[str, object]]: ...


class UserUnits:
    """A linked user: `GET /api/v1/conferences?state=live`, alerts by DM, muted courses skipped."""

    kind = "user"
    known_model: repo.KnownModel = KnownConference

    async def load(self, session: AsyncSession, unit_ids: list[int], now: datetime) -> list[PollJob]:
        users = await repo.load_users(session, unit_ids)
        if not users:
            return []
        ids = [u.id for u in users]
        known = await repo.load_known(session, KnownConference, ids)
        opened = await sessions.opened_for_users(session, ids, now)
        muted: dict[int, set[ContextKey]] = {}
        for row in await session.scalars(
            select(MutedContext).where(one_of(session, MutedContext.linked_user_id, ids))
        ):
            muted.setdefault(row.linked_user_id, set()).add((row.context_type, row.context_id))
        return [
            PollJob(
                unit_id=u.id,
                team_id=u.team_id,
                destination=u.slack_user_id,
                token=StoredToken.of(u),
                previous=known[u.id],
                failures=u.consecutive_failures,
                alerts_enabled=u.alerts_enabled,
                muted=frozenset(muted.get(u.id, ())),
                linked_at=u.linked_at,
                quiet=QuietHours.parse(u.quiet_start, u.quiet_end, u.timezone),
                opened=opened[u.id],
                errored=u.consecutive_failures > 0 or u.last_error is not None,
                last_success_at=u.last_success_at,
            )
            for u in users
        ]

    async def fetch(self, canvas: CanvasClient, token: str, job: PollJob, now: datetime) -> list[Conference]:
        return await canvas.live_conferences(token)

    async def record(self, session: AsyncSession, unit_ids: list[int], **values: object) -> None:
        await session.execute(
            update(LinkedUser).where(one_of(session, LinkedUser.id, unit_ids)).values(**values)
        )

    def relink_rows(self, job: PollJob, reason: str, now: datetime) -> list[dict[str, object]]:
        """The token is dead: stop polling the user and DM them once (the key includes linked_at)."""
        assert job.linked_at is not None
        return [alerts.relink_row(job.team_id, job.destination, job.linked_at, reason, now)]


@dataclass
class SubscriptionUnits:
    """A channel's course: the course index (which ignores `state`) filtered by the live rule."""

    kind: str = "subscription"
    known_model: repo.KnownModel = field(default=SubscriptionKnownConference)

    async def load(self, session: AsyncSession, unit_ids: list[int], now: datetime) -> list[PollJob]:
        if not unit_ids:
            return []
        rows = (
            await session.execute(
                select(Subscription, LinkedUser)
                .join(LinkedUser, LinkedUser.id == Subscription.subscriber_id)
                .where(one_of(session, Subscription.id, unit_ids), LinkedUser.needs_relink.is_(False))
            )
        ).all()
        if not rows:
            return []
        known = await repo.load_known(session, SubscriptionKnownConference, [s.id for s, _ in rows])
        return [
            PollJob(
                unit_id=s.id,
                team_id=s.team_id,
                destination=s.channel_id,
                token=StoredToken.of(owner),
                previous=known[s.id],
                failures=s.consecutive_failures,
                course_id=s.course_id,
                opened=await sessions.opened_for_course(session, s.course_id, now),
                errored=s.consecutive_failures > 0 or s.last_error is not None,
                last_success_at=s.last_success_at,
            )
            for s, owner in rows
        ]

    async def fetch(self, canvas: CanvasClient, token: str, job: PollJob, now: datetime) -> list[Conference]:
        assert job.course_id is not None
        return live_filter(await canvas.course_conferences(token, job.course_id), now)

    async def record(self, session: AsyncSession, unit_ids: list[int], **values: object) -> None:
        await session.execute(
            update(Subscription).where(one_of(session, Subscription.id, unit_ids)).values(**values)
        )

    def relink_rows(self, job: PollJob, reason: str, now: datetime) -> list[dict[str, object]]:
        """The subscriber's own poll tells them to relink; the subscription waits (load skips it)."""
        return []
