"""Reminders before a scheduled start and the host nudge after it, from the session scan's catalog.

Exactly once per (destination, conference, start_at): the dedup key holds the scheduled start, so a moved
start arms a new reminder and a second replica's tick inserts nothing. A conference that started (the live
poll holds its session open) or that the catalog shows started gets neither. During the user's quiet
hours a reminder waits for their end when that is still before the start, and is dropped when the
conference started, moved or disappeared meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bot.domain.quiet_hours import QuietHours
from bot.domain.sessions import NUDGE_WINDOW, nudge_due, reminder_due
from bot.engine import alerts
from bot.engine.contexts import fallback_name
from bot.messages.schedule_blocks import Upcoming, host_nudge, reminder
from bot.store import repo
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

MAX_REMINDER_MINUTES = 24 * 60
"""The longest lead `/conferences remind` accepts: the catalog is read this far ahead."""


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
    ) -> None:
        self._sessions = sessions
        self._lead = lead
        self._nudge_after = nudge_after
        self._canvas_root = canvas_root
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Queue every reminder and nudge due now; returns how many rows were queued."""
        now = self._clock()
        earliest = now - self._nudge_after - NUDGE_WINDOW
        latest = now + timedelta(minutes=MAX_REMINDER_MINUTES)
        async with self._sessions.begin() as session:
            await self._drop_stale_deferred(session, now)
            scheduled = await store.scheduled_between(session, earliest, latest)
            live = await store.live_sessions_of(session, list({s.linked_user_id for s in scheduled}))
            names = await repo.context_names(
                session, {(s.entry.context_type, s.entry.context_id) for s in scheduled}
            )
            rows: list[dict[str, Any]] = []
            for item in scheduled:
                if (item.linked_user_id, item.entry.conference_id) in live:
                    continue
                rows.extend(self._rows_for(item, names, now))
            await repo.enqueue(session, rows)
        if rows and self._on_enqueued:
            self._on_enqueued()
        return len(rows)

    def _rows_for(
        self, item: store.Scheduled, names: dict[tuple[str, int], str], now: datetime
    ) -> list[dict[str, Any]]:
        entry = item.entry
        assert entry.start_at is not None
        context = (entry.context_type, entry.context_id)
        upcoming = Upcoming(
            conference_id=entry.conference_id,
            title=entry.title,
            context_name=names.get(context) or fallback_name(context),
            start_at=entry.start_at,
            join_url=alerts.join_url(
                self._canvas_root, entry.context_type, entry.context_id, entry.conference_id
            ),
        )
        key = f"{item.team_id}:{item.slack_user_id}:{entry.conference_id}:{int(entry.start_at.timestamp())}"
        rows = []
        lead = self._lead if item.reminder_minutes is None else timedelta(minutes=item.reminder_minutes)
        if reminder_due(entry, lead, now):
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
                    message=reminder(upcoming, minutes, send_at),
                    now=now,
                )
                row.update(
                    conference_id=entry.conference_id, started_at=entry.start_at, next_attempt_at=send_at
                )
                rows.append(row)
        if nudge_due(entry, self._nudge_after, now):
            row = alerts.post_row(
                key + ":nudge",
                team_id=item.team_id,
                destination=item.slack_user_id,
                message=host_nudge(upcoming, entry.invited, now),
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
