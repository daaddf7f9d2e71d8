"""What a Canvas Live Event about a conference join does: it only accelerates polling.

A verified join (bot/web/live_events.py checked the signature or the secret path) makes every poll that
may see the conference due now, so its alert goes out in seconds instead of up to a poll period. And it
opens a session (`opened_sessions`, shared by every destination, keyed by the event's time) that the live
poll may not be able to see: a reused long-running room whose first start was days ago never appears in
`state=live` again. The poll still decides: it alerts only when Canvas's details say the conference is
running (a late delivery about a session that already ended opens nothing), and a session opened here
ends only on Canvas's `ended_at`. A second join, a duplicated or a retried delivery find the session open
and change nothing: still one alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain.live_events import ConferenceJoined
from bot.domain.models import LIVE_WINDOW
from bot.store import sessions as store
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)


class LiveEventIntake:
    def __init__(
        self,
        sessions: SessionFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_polls_due: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_polls_due = on_polls_due

    async def conference_joined(self, joined: ConferenceJoined) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            context = await store.conference_context(session, joined.conference_id)
            if context is None and joined.context_type in ("Course", "Group") and joined.context_id:
                context = (joined.context_type, joined.context_id)
            opened = False
            if context is not None:
                opened = await store.open_session(
                    session,
                    conference_id=joined.conference_id,
                    context_type=context[0],
                    context_id=context[1],
                    opened_at=min(joined.event_time, now),
                    source="event",
                    lasts=LIVE_WINDOW,
                )
            due = await store.poll_concerned_now(
                session,
                joined.conference_id,
                canvas_user_id=joined.user_id,
                course_id=context[1] if context is not None and context[0] == "Course" else None,
                now=now,
            )
        log.info(
            "live event: conference %s joined (%s); %d poll(s) made due",
            joined.conference_id,
            "session opened" if opened else "session already open" if context else "context unknown",
            due,
        )
        if due and self._on_polls_due:
            self._on_polls_due()
