"""Scheduled channel digests: claim due digests, read Canvas per subscribed course, queue one post.

Exactly once per period, across replicas and restarts, comes from three things:

* the claim is a compare-and-set lease on ``next_run_at`` (plus ``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
  so normally one replica works on a digest;
* the outbox row's dedup key names the period (``team:channel:digest:<slot epoch>``) and is inserted with
  ON CONFLICT DO NOTHING, so even two replicas that both got through post once;
* the post and the new ``next_run_at`` (the first slot strictly after now) commit together, so a missed
  slot, even days of them, is posted once, marked late, and never replayed.

Canvas is read between the claim and the write, with no transaction open; so is the channel's language
(``/conferences language``, else the workspace default), which the post is rendered in when it is queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, Forbidden, InsufficientScope, NotFound
from bot.domain.digest_schedule import Schedule, next_slot, parse_hhmm, previous_slot
from bot.domain.models import Conference
from bot.engine import alerts
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.locales import Locales
from bot.engine.recordings import playable_url
from bot.messages.blocks import Message
from bot.messages.digest_blocks import (
    CourseDigest,
    DigestConference,
    DigestContent,
    DigestRecording,
    digest_message,
)
from bot.messages.i18n import DEFAULT_TRANSLATOR, N_, Translator
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import Digest, LinkedUser, Subscription, utcnow

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=10)
LEASE = timedelta(minutes=5)
BROKEN_SCHEDULE_RETRY = timedelta(hours=1)


def digest_dedup_key(team_id: str, channel_id: str, slot: datetime) -> str:
    return f"{team_id}:{channel_id}:digest:{int(slot.timestamp())}"


def schedule_of(row: Digest) -> Schedule:
    if row.frequency == "weekly":
        return Schedule("weekly", parse_hhmm(row.at_time), row.timezone, row.weekday)
    return Schedule("daily", parse_hhmm(row.at_time), row.timezone)


# --- what goes into a digest (pure) ---------------------------------------------------------------------


def summarize_course(
    course_name: str,
    conferences: Sequence[Conference],
    since: datetime,
    now: datetime,
    canvas_root: str,
    ahead: timedelta = timedelta(days=1),
) -> CourseDigest:
    """Live now; held = ended (or, for zombies without an end, started) within (since, now]; recordings
    created in the period, or of a conference held in it when Canvas gives no creation time; coming up =
    scheduled to start within `ahead` (the next period) and not started for it."""

    def card(c: Conference) -> DigestConference:
        url = alerts.join_url(canvas_root, c.context_type, c.context_id, c.id, served=c.join_url)
        return DigestConference(c.id, c.title, c.started_at, c.ended_at, url)

    def newest_first(c: Conference) -> datetime:
        return c.started_at or datetime.min.replace(tzinfo=UTC)

    live = sorted((c for c in conferences if c.is_live(now)), key=newest_first, reverse=True)
    held = sorted(
        (
            c
            for c in conferences
            if c.started_at is not None and not c.is_live(now) and since < (c.ended_at or c.started_at) <= now
        ),
        key=newest_first,
        reverse=True,
    )
    held_ids = {c.id for c in held}
    recordings = [
        DigestRecording(r.title or "", c.title, playable_url(r), r.duration_minutes)
        for c in sorted(conferences, key=newest_first, reverse=True)
        for r in c.recordings
        if (since < r.created_at <= now if r.created_at is not None else c.id in held_ids)
    ]
    coming = sorted(
        (
            c
            for c in conferences
            if c.start_at is not None
            and now < c.start_at <= now + ahead
            and (c.started_at is None or (c.ended_at is not None and c.ended_at < c.start_at))
        ),
        key=lambda c: c.start_at or now,
    )
    scheduled = [DigestConference(c.id, c.title, c.start_at, None, card(c).join_url) for c in coming]
    return CourseDigest(
        course_name,
        tuple(map(card, live)),
        tuple(map(card, held)),
        tuple(recordings),
        problem=None,
        coming=tuple(scheduled),
    )


# --- the runner -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Source:
    course_id: int
    course_name: str
    token: StoredToken
    needs_relink: bool


@dataclass(slots=True)
class _Job:
    digest_id: int
    team_id: str
    channel_id: str
    schedule: Schedule
    slot: datetime
    since: datetime
    lease_until: datetime
    sources: list[_Source]


class DigestRunner:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        *,
        canvas_root: str,
        clock: Callable[[], datetime] = utcnow,
        concurrency: int = 8,
        batch_size: int = 50,
        late_after: timedelta = LATE_AFTER,
        on_enqueued: Callable[[], None] | None = None,
        locales: Locales | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._canvas = canvas
        self._credentials = credentials
        self._canvas_root = canvas_root
        self._clock = clock
        self._semaphore = asyncio.Semaphore(concurrency)
        self._batch_size = batch_size
        self._late_after = late_after
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Queue every due digest; returns how many posts were queued by this runner."""
        queued = 0
        while True:
            jobs = await self._claim()
            if not jobs:
                return queued
            batch = sum(await asyncio.gather(*(self._run(job) for job in jobs)))
            queued += batch
            if batch and self._on_enqueued:
                self._on_enqueued()
            if len(jobs) < self._batch_size:
                return queued

    async def _claim(self) -> list[_Job]:
        now = self._clock()
        lease_until = now + LEASE
        async with self._sessions.begin() as session:
            rows = (
                await session.scalars(
                    select(Digest)
                    .where(Digest.next_run_at <= now)
                    .order_by(Digest.next_run_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            jobs: list[_Job] = []
            for row in rows:
                job = await self._claim_one(session, row, now, lease_until)
                if job is not None:
                    jobs.append(job)
            for job in jobs:
                job.sources = await _sources(session, job.team_id, job.channel_id)
        return jobs

    async def _claim_one(
        self, session: AsyncSession, row: Digest, now: datetime, lease_until: datetime
    ) -> _Job | None:
        """Compare-and-set the lease: a replica that read the same row a moment earlier wins, we skip."""
        try:
            schedule = schedule_of(row)
        except ValueError:
            log.warning("digest %s has an unusable schedule; retrying in an hour", row.id)
            new_value = now + BROKEN_SCHEDULE_RETRY
            await session.execute(update(Digest).where(Digest.id == row.id).values(next_run_at=new_value))
            return None
        claimed = await session.execute(
            update(Digest)
            .where(Digest.id == row.id, Digest.next_run_at == row.next_run_at)
            .values(next_run_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        slot = previous_slot(schedule, now)
        since = row.last_run_at or slot - schedule.period
        return _Job(row.id, row.team_id, row.channel_id, schedule, slot, since, lease_until, [])

    async def _run(self, job: _Job) -> bool:
        courses = await asyncio.gather(*(self._course(job, source) for source in job.sources))
        now = self._clock()
        content = DigestContent(
            frequency=job.schedule.frequency,
            slot=job.slot,
            since=job.since,
            late=now - job.slot > self._late_after,
            courses=tuple(sorted(courses, key=lambda c: c.course_name.casefold())),
        )
        t = DEFAULT_TRANSLATOR
        if self._locales is not None:
            t = await self._locales.for_channel(job.team_id, job.channel_id)
        return await self._write(job, content, now, t)

    async def _course(self, job: _Job, source: _Source) -> CourseDigest:
        if source.needs_relink:
            return CourseDigest(source.course_name, problem=_RELINK)
        async with self._semaphore:
            try:
                conferences = await self._fetch(source)
            except RelinkNeeded:
                return CourseDigest(source.course_name, problem=_RELINK)
            except NotFound:
                return CourseDigest(source.course_name, problem=_GONE)
            except Forbidden:
                return CourseDigest(source.course_name, problem=_FORBIDDEN)
            except InsufficientScope:
                return CourseDigest(source.course_name, problem=_NOT_ALLOWED)
            except CanvasError as error:
                log.info("digest: course %s unreadable (%s)", source.course_id, type(error).__name__)
                return CourseDigest(source.course_name, problem=_UNANSWERED)
        return summarize_course(
            source.course_name,
            conferences,
            job.since,
            self._clock(),
            self._canvas_root,
            ahead=job.schedule.period,  # until the next digest
        )

    async def _fetch(self, source: _Source) -> list[Conference]:
        """The course's conferences with the subscriber's token (refreshed before expiry and on a 401)."""

        async def course_conferences(token: str) -> list[Conference]:
            return await self._canvas.course_conferences(token, source.course_id)

        return await self._credentials.call(source.token, course_conferences)

    async def _write(self, job: _Job, content: DigestContent, now: datetime, t: Translator) -> bool:
        """Queue the post and move the schedule on, together; skip if the digest changed meanwhile."""
        async with self._sessions.begin() as session:
            row = await session.get(Digest, job.digest_id)
            if row is None or row.next_run_at != job.lease_until:
                log.info("digest %s was reconfigured or taken over; not posting it", job.digest_id)
                return False
            row.next_run_at = next_slot(job.schedule, now)
            row.last_run_at = now
            if job.sources:
                await repo.enqueue(session, [_outbox_row(job, digest_message(content, now, t=t), now)])
        return bool(job.sources)


# Problems are msgids: digest_message translates them in the channel's language.
_FORBIDDEN = N_("The person who subscribed this course can no longer see its conferences in Canvas.")
_NOT_ALLOWED = N_(
    "Canvas does not allow confbot to read course conferences yet; the bot's operator has been told."
)
_RELINK = N_("The Canvas link of the person who subscribed this course stopped working; they need to relink.")
_GONE = N_("Canvas no longer knows this course.")
_UNANSWERED = N_("Canvas did not answer; this course is missing.")


async def _sources(session: AsyncSession, team_id: str, channel_id: str) -> list[_Source]:
    rows = await session.execute(
        select(Subscription, LinkedUser)
        .join(LinkedUser, Subscription.subscriber_id == LinkedUser.id)
        .where(Subscription.team_id == team_id, Subscription.channel_id == channel_id)
    )
    return [
        _Source(sub.course_id, sub.course_name, StoredToken.of(user), user.needs_relink) for sub, user in rows
    ]


def _outbox_row(job: _Job, message: Message, now: datetime) -> dict[str, Any]:
    return alerts.post_row(
        digest_dedup_key(job.team_id, job.channel_id, job.slot),
        team_id=job.team_id,
        destination=job.channel_id,
        message=message,
        now=now,
    )
