"""Alerts held during a user's quiet hours go out as one summary when the quiet hours end.

The summary is rendered when it is queued, in the user's language: looked up (Locales) before the
transaction that claims the held rows, so no Slack call runs while rows are locked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.outbox import AlertPayload, OutboxEvent, OutboxStatus, UnreadablePayload
from bot.domain.quiet_hours import QuietHours
from bot.engine import alerts
from bot.engine.locales import Locales
from bot.messages import blocks
from bot.messages.cards import card_from_payload
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)


class QuietSummaries:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
        locales: Locales | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def _readers(self) -> dict[tuple[str, str], Translator]:
        """The language of each user with held alerts (asked of Slack when their stored one is old)."""
        if self._locales is None:
            return {}
        async with self._sessions() as session:
            holders = (
                await session.execute(
                    select(OutboxMessage.team_id, OutboxMessage.destination)
                    .where(OutboxMessage.status == OutboxStatus.HELD.value)
                    .distinct()
                )
            ).all()
        return {(team, user): await self._locales.for_user(team, user) for team, user in holders}

    async def tick(self) -> int:
        now = self._clock()
        readers = await self._readers()
        async with self._sessions.begin() as session:
            held = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.status == OutboxStatus.HELD.value)
                    .order_by(OutboxMessage.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not held:
                return 0
            groups: dict[tuple[str, str], list[OutboxMessage]] = defaultdict(list)
            for row in held:
                groups[(row.team_id, row.destination)].append(row)
            rows: list[dict[str, Any]] = []
            for (team_id, user_id), messages in groups.items():
                user = await repo.get_linked(session, team_id, user_id)
                quiet = QuietHours.parse(user.quiet_start, user.quiet_end, user.timezone) if user else None
                if quiet is not None and quiet.active(now):
                    continue
                t = readers.get((team_id, user_id), DEFAULT_TRANSLATOR)
                rows.append(await self._summary(session, team_id, user_id, messages, now, t))
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([m.id for m in messages]))
                    .values(status=OutboxStatus.SUMMARIZED.value, sent_at=now)
                )
            await repo.enqueue(session, rows)
        if rows and self._on_enqueued:
            self._on_enqueued()
        return len(rows)

    async def _summary(
        self,
        session: AsyncSession,
        team_id: str,
        user_id: str,
        messages: list[OutboxMessage],
        now: datetime,
        t: Translator,
    ) -> dict[str, Any]:
        """Held starts as one list; those whose `ended` row is queued too are shown as ended. A held row
        whose payload cannot be read is left out of the list (and marked summarized with the rest)."""

        def ended_key(held: OutboxMessage) -> str:
            assert held.conference_id is not None and held.started_at is not None
            return alerts.dedup_key(team_id, user_id, held.conference_id, held.started_at, OutboxEvent.ENDED)

        ended_rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.in_([ended_key(m) for m in messages]))
        )
        ended_at = {row.dedup_key: _readable(row) for row in ended_rows}
        cards = []
        for held in messages:
            payload = _readable(held)
            if payload is None:
                continue
            end = ended_at.get(ended_key(held))
            cards.append(
                card_from_payload(payload.model_copy(update={"ended_at": end.ended_at if end else None}))
            )
        return alerts.post_row(
            f"{team_id}:{user_id}:quiet_summary:{messages[0].id}",
            team_id=team_id,
            destination=user_id,
            message=blocks.quiet_summary(cards, now, t=t),
            now=now,
        )


def _readable(row: OutboxMessage) -> AlertPayload | None:
    try:
        return AlertPayload.from_stored(row.payload)
    except UnreadablePayload as error:
        log.error("outbox %s left out of a quiet-hours summary: %s", row.id, error)
        return None
