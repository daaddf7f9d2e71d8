"""The daily agenda DM: each morning at the user's chosen local time, today's scheduled conferences with
their Join buttons, from the session scan's catalog.

Once per user and local day: the dedup key holds the local date, so a second replica, or a retry after a
crash between queueing and rescheduling, queues nothing new. The language and zone are looked up before
the transaction (a Slack look-up must not hold rows), and the next agenda is the next local slot, so it
stays at the same wall-clock time across daylight-saving changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.agenda import next_agenda, todays
from bot.domain.digest_schedule import parse_hhmm
from bot.engine import alerts
from bot.engine.locales import Locales
from bot.engine.reminders import upcoming_of
from bot.messages.agenda_blocks import agenda
from bot.messages.i18n import Translator
from bot.store import repo
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

BATCH = 200


class AgendaRunner:
    def __init__(
        self,
        sessions: SessionFactory,
        locales: Locales,
        *,
        canvas_root: str,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._canvas_root = canvas_root
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Queue every agenda due now; returns how many were queued."""
        now = self._clock()
        async with self._sessions() as session:
            due = await store.due_agendas(session, now, BATCH)
        readers = [(item, await self._locales.for_user(item.team_id, item.slack_user_id)) for item in due]
        queued = 0
        async with self._sessions.begin() as session:
            for item, t in readers:
                zone = t.zone or "UTC"
                row = await self._row(session, item, t, zone, now)
                await repo.enqueue(session, [row])
                queued += 1
                following = next_agenda(parse_hhmm(item.agenda_at), zone, now)
                await store.schedule_agenda(session, item.linked_user_id, item.due_at, following)
        if queued and self._on_enqueued:
            self._on_enqueued()
        return queued

    async def _row(
        self, session: Any, item: store.AgendaDue, t: Translator, zone: str, now: datetime
    ) -> dict[str, Any]:
        catalog = (await store.load_catalog(session, item.linked_user_id)).values()
        today = todays(catalog, now, zone)
        names = await repo.context_names(session, {(e.context_type, e.context_id) for e in today})
        items = [upcoming_of(entry, names, self._canvas_root) for entry in today]
        local_date = t.local(now, zone).date().isoformat()
        return alerts.post_row(
            f"{item.team_id}:{item.slack_user_id}:agenda:{local_date}",
            team_id=item.team_id,
            destination=item.slack_user_id,
            message=agenda(items, now, t.with_zone(zone)),
            now=now,
        )
