"""Reminders in subscribed channels: `/conferences subscribe <course> remind <minutes>|off`.

A channel that follows a course gets a reminder before each scheduled start of that course's conferences
(the subscription's lead, else REMINDER_LEAD_MINUTES), once per (channel, conference, start_at): a moved
start reminds again, and a conference already live in the channel gets none. In the channel's language.
Quiet hours are a person's, so they do not apply here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.domain.sessions import reminder_due
from bot.engine import alerts
from bot.engine.locales import Locales
from bot.engine.reminders import MAX_REMINDER_MINUTES, upcoming_of
from bot.messages.i18n import Translator
from bot.messages.schedule_blocks import reminder
from bot.store import repo
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow


class ChannelReminders:
    def __init__(
        self,
        sessions: SessionFactory,
        locales: Locales,
        *,
        lead: timedelta,
        canvas_root: str,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._lead = lead
        self._canvas_root = canvas_root
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Queue every channel reminder due now (languages read before the writing transaction)."""
        now = self._clock()
        async with self._sessions() as session:
            scheduled = await store.scheduled_for_channels(
                session, now, now + timedelta(minutes=MAX_REMINDER_MINUTES)
            )
            due = [item for item in scheduled if reminder_due(item.entry, self._lead_of(item), now)]
            names = await repo.context_names(
                session, {(i.entry.context_type, i.entry.context_id) for i in due}
            )
        readers = {
            channel: await self._locales.for_channel(*channel)
            for channel in {(i.team_id, i.channel_id) for i in due}
        }
        rows = [self._row(item, names, readers[(item.team_id, item.channel_id)], now) for item in due]
        async with self._sessions.begin() as session:
            await repo.enqueue(session, rows)
        if rows and self._on_enqueued:
            self._on_enqueued()
        return len(rows)

    def _lead_of(self, item: store.ChannelScheduled) -> timedelta:
        return self._lead if item.reminder_minutes is None else timedelta(minutes=item.reminder_minutes)

    def _row(
        self, item: store.ChannelScheduled, names: dict[tuple[str, int], str], t: Translator, now: datetime
    ) -> dict[str, Any]:
        entry = item.entry
        assert entry.start_at is not None
        upcoming = upcoming_of(entry, names, self._canvas_root)
        minutes = max(1, round((entry.start_at - now).total_seconds() / 60))
        key = f"{item.team_id}:{item.channel_id}:{entry.conference_id}:{int(entry.start_at.timestamp())}"
        return alerts.post_row(
            key + store.REMINDER_KEY_SUFFIX,
            team_id=item.team_id,
            destination=item.channel_id,
            message=reminder(upcoming, minutes, now, t=t),
            now=now,
        )
