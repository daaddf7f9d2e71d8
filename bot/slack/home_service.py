"""App Home I/O: gather the user's state (DB + Canvas), publish the view in their language (their Slack
locale, from Locales), apply settings changes."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bot.canvas.errors import CanvasError
from bot.domain.quiet_hours import QuietHours
from bot.engine.canvas_link import CanvasLinkFlow
from bot.engine.credentials import RelinkNeeded
from bot.engine.locales import Locales
from bot.messages.blocks import ConferenceCard
from bot.messages.home import HomeState, home_view
from bot.messages.i18n import Text
from bot.slack.handlers import ConferenceLister
from bot.slackweb.clients import TeamClients
from bot.slackweb.users import slack_time_zone
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import MutedContext, utcnow

log = logging.getLogger(__name__)


class HomeService:
    """The App Home tab: what is live for the user, their link and their alert settings."""

    def __init__(
        self,
        sessions: SessionFactory,
        slack: TeamClients,
        link_flow: CanvasLinkFlow,
        lister: ConferenceLister,
        locales: Locales,
        *,
        reminder_lead: int = 10,
    ) -> None:
        self._reminder_lead = reminder_lead  # minutes, for users who never chose (REMINDER_LEAD_MINUTES)
        self._sessions = sessions
        self._locales = locales
        self._slack = slack
        self._link_flow = link_flow
        self._lister = lister

    async def publish(self, team_id: str, user_id: str) -> None:
        client = await self._slack.for_team(team_id)
        if client is None:
            return
        view = home_view(
            await self._state(team_id, user_id),
            utcnow(),
            await self._link_flow.start_url(team_id, user_id),
            t=await self._locales.for_user(team_id, user_id),
        )
        await client.views_publish(user_id=user_id, view=view)

    async def _state(self, team_id: str, user_id: str) -> HomeState:
        async with self._sessions() as session:
            user = await repo.get_linked(session, team_id, user_id)
            if user is None:
                return HomeState(None, False, False, (), None, None, None, ())
            muted = (
                await session.scalars(
                    select(MutedContext)
                    .where(MutedContext.linked_user_id == user.id)
                    .order_by(MutedContext.name)
                )
            ).all()
        live: tuple[ConferenceCard, ...] = ()
        error: Text | None = None
        if not user.needs_relink:
            try:
                live = tuple(await self._lister.live_cards(user))
            except RelinkNeeded:
                error = Text("Canvas rejected the link; relink it.")
            except CanvasError:
                error = Text("Canvas is not answering right now.")
        return HomeState(
            canvas_name=user.canvas_name,
            needs_relink=user.needs_relink,
            alerts_on=user.alerts_enabled,
            muted=[(m.context_id, m.name) for m in muted],
            quiet=QuietHours.parse(user.quiet_start, user.quiet_end, user.timezone),
            quiet_start=user.quiet_start,
            quiet_end=user.quiet_end,
            live=live,
            live_error=error,
            reminder_minutes=self._reminder_lead if user.reminder_minutes is None else user.reminder_minutes,
            agenda_at=user.agenda_at,
            attendance_on=user.attendance_enabled,
            missed_on=user.missed_enabled,
        )

    async def set_alerts(self, team_id: str, user_id: str, on: bool) -> None:
        await self._update(team_id, user_id, alerts_enabled=on)

    async def unmute(self, team_id: str, user_id: str, course_id: int) -> None:
        async with self._sessions.begin() as session:
            user = await repo.get_linked(session, team_id, user_id)
            if user is not None:
                await repo.unmute_course(session, user.id, course_id)

    async def set_quiet(
        self,
        team_id: str,
        user_id: str,
        *,
        start: str | None = None,
        end: str | None = None,
        clear: bool = False,
    ) -> None:
        values: dict[str, Any] = {}
        if clear:
            values = {"quiet_start": None, "quiet_end": None}
        else:
            if start is not None:
                values["quiet_start"] = start
            if end is not None:
                values["quiet_end"] = end
            values["timezone"] = await self._slack_tz(team_id, user_id)
        await self._update(team_id, user_id, **values)

    async def _slack_tz(self, team_id: str, user_id: str) -> str:
        client = await self._slack.for_team(team_id)
        zone = await slack_time_zone(client, user_id) if client else None
        return zone or "UTC"

    async def _update(self, team_id: str, user_id: str, **values: Any) -> None:
        async with self._sessions.begin() as session:
            await repo.update_linked(session, team_id, user_id, **values)
