"""Reminders before a scheduled start and the host nudge after it, from the session scan's catalog.

Exactly once per (destination, conference, start_at): the dedup key holds the scheduled start, so a moved
start arms a new reminder and a second replica's tick inserts nothing. A conference that started (the live
poll holds its session open) or that the catalog shows started gets neither. During the user's quiet
hours a reminder waits for their end when that is still before the start, and is dropped when the
conference started, moved or disappeared meanwhile.

Each message is rendered when it is queued, in its recipient's language and time zone (Locales, as the
quiet-hour summaries do). Who needs one is read first and their languages looked up with no transaction
open, so a slow users.info never holds the outbox rows this tick updates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.quiet_hours import QuietHours
from bot.domain.sessions import NUDGE_WINDOW, Scanned, nudge_due, reminder_due
from bot.engine import alerts
from bot.engine.contexts import fallback_name
from bot.engine.locales import Locales
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.messages.schedule_blocks import Upcoming, host_nudge, reminder
from bot.store import repo
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)

MAX_REMINDER_MINUTES = 24 * 60
"""The longest lead `/conferences remind` accepts: the catalog is read this far ahead."""
NUDGE_KEY_SUFFIX = ":nudge"

Reader = tuple[str, str]
"""(team id, Slack user id): whose language a reminder or nudge is rendered in."""


def upcoming_of(entry: Scanned, names: Mapping[tuple[str, int], str], canvas_root: str) -> Upcoming:
    """A scheduled conference as reminders, nudges and agendas show it: the course's cached name (else a
    fallback) and the join link every message uses."""
    assert entry.start_at is not None, "only scheduled conferences are shown as upcoming"
    context = (entry.context_type, entry.context_id)
    return Upcoming(
        conference_id=entry.conference_id,
        title=entry.title,
        context_name=names.get(context) or fallback_name(context),
        start_at=entry.start_at,
        join_url=alerts.join_url(canvas_root, entry.context_type, entry.context_id, entry.conference_id),
    )


class ReminderRunner:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        lead: timedelta,
        nudge_after: timedelta,
        canvas_root: str,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
        locales: Locales | None = None,
    ) -> None:
        """Without `locales` (narrow tests) every message is in English."""
        self._sessions = sessions
        self._locales = locales
        self._lead = lead
        self._nudge_after = nudge_after
        self._canvas_root = canvas_root
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Queue every reminder and nudge due now; returns how many rows were queued."""
        now = self._clock()
        readers = await self._readers(now)
        async with self._sessions.begin() as session:
            await self._drop_stale_deferred(session, now)
            rows: list[dict[str, Any]] = []
            scheduled, names = await self._due(session, now)
            for item in scheduled:
                t = DEFAULT_TRANSLATOR if readers is None else readers.get((item.team_id, item.slack_user_id))
                if t is None:  # queued already, or due since the look-up: the next tick, in their language
                    continue
                rows.extend(self._rows_for(item, names, now, t))
            await repo.enqueue(session, rows)
        if rows and self._on_enqueued:
            self._on_enqueued()
        return len(rows)

    async def _due(
        self, session: AsyncSession, now: datetime
    ) -> tuple[list[store.Scheduled], dict[tuple[str, int], str]]:
        """Scheduled conferences with a reminder or nudge due now (not started), and their course names."""
        earliest = now - self._nudge_after - NUDGE_WINDOW
        latest = now + timedelta(minutes=MAX_REMINDER_MINUTES)
        scheduled = await store.scheduled_between(session, earliest, latest)
        live = await store.live_sessions_of(session, list({s.linked_user_id for s in scheduled}))
        due = [
            item
            for item in scheduled
            if (item.linked_user_id, item.entry.conference_id) not in live and self._due_keys(item, now)
        ]
        names = await repo.context_names(session, {(s.entry.context_type, s.entry.context_id) for s in due})
        return due, names

    async def _readers(self, now: datetime) -> dict[Reader, Translator] | None:
        """The language of everyone with a reminder or nudge to queue now (None: no Locales, English).

        Read in a short transaction of its own and looked up after it closed: Locales may ask Slack, and
        no row may stay locked meanwhile. People whose messages are all queued already are not looked up,
        so a reminder due for ten minutes costs one look-up, not one per tick."""
        if self._locales is None:
            return None
        async with self._sessions() as session:
            scheduled, _ = await self._due(session, now)
            wanted = {item: self._due_keys(item, now) for item in scheduled}
            every_key = [key for keys in wanted.values() for key in keys]
            queued = set(
                await session.scalars(
                    select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(every_key))
                )
            )
        people = {(item.team_id, item.slack_user_id) for item, keys in wanted.items() if keys - queued}
        return {person: await self._locales.for_user(*person) for person in people}

    def _due_keys(self, item: store.Scheduled, now: datetime) -> set[str]:
        """The dedup keys of what is due for `item` now: its reminder, its nudge, both or neither."""
        keys = set()
        if reminder_due(item.entry, self._lead_of(item), now):
            keys.add(self._key(item) + store.REMINDER_KEY_SUFFIX)
        if nudge_due(item.entry, self._nudge_after, now):
            keys.add(self._key(item) + NUDGE_KEY_SUFFIX)
        return keys

    def _lead_of(self, item: store.Scheduled) -> timedelta:
        """The user's own reminder lead, else REMINDER_LEAD_MINUTES (0: off)."""
        return self._lead if item.reminder_minutes is None else timedelta(minutes=item.reminder_minutes)

    @staticmethod
    def _key(item: store.Scheduled) -> str:
        """Once per (destination, conference, start_at): a moved start is a new key."""
        assert item.entry.start_at is not None
        start = int(item.entry.start_at.timestamp())
        return f"{item.team_id}:{item.slack_user_id}:{item.entry.conference_id}:{start}"

    def _rows_for(
        self, item: store.Scheduled, names: dict[tuple[str, int], str], now: datetime, t: Translator
    ) -> list[dict[str, Any]]:
        entry = item.entry
        assert entry.start_at is not None
        upcoming = upcoming_of(entry, names, self._canvas_root)
        key = self._key(item)
        rows = []
        if reminder_due(entry, self._lead_of(item), now):
            send_at = now
            quiet = QuietHours.parse(item.quiet_start, item.quiet_end, item.timezone)
            if quiet is not None and quiet.active(now):
                send_at = quiet.ends_after(now)
            if send_at < entry.start_at:
                minutes = max(1, round((entry.start_at - send_at).total_seconds() / 60))
                row = alerts.post_row(
                    key + store.REMINDER_KEY_SUFFIX,
                    team_id=item.team_id,
                    destination=item.slack_user_id,
                    message=reminder(upcoming, minutes, send_at, t=t),
                    now=now,
                )
                row.update(
                    conference_id=entry.conference_id, started_at=entry.start_at, next_attempt_at=send_at
                )
                rows.append(row)
        if nudge_due(entry, self._nudge_after, now):
            row = alerts.post_row(
                key + NUDGE_KEY_SUFFIX,
                team_id=item.team_id,
                destination=item.slack_user_id,
                message=host_nudge(upcoming, entry.invited, now, t=t),
                now=now,
            )
            rows.append(row)
        return rows

    async def _drop_stale_deferred(self, session: Any, now: datetime) -> None:
        """A reminder waiting out quiet hours is dropped when its conference started, moved or went."""
        for message in await store.deferred_reminders(session, now):
            user = await repo.get_linked(session, message.team_id, message.destination)
            catalog = {} if user is None else await store.load_catalog(session, user.id)
            entry = catalog.get(message.conference_id or 0)
            if entry is None or not entry.waiting_to_start or entry.start_at != message.started_at:
                message.status = "failed"
                message.last_error = "the conference started, moved or was deleted before the reminder"
                message.sent_at = now
