"""Which language (and time zone) each reader gets: the one place a Translator is chosen.

* A person (a DM, an ephemeral reply, their App Home) reads in their Slack locale, from users.info with
  ``include_locale``. It is stored on their link (``linked_users.locale``, with when it was asked) so every
  replica and the next process render their DMs alike without asking again, and asked again once it is
  older than ``ttl`` (people change their Slack language rarely; a day late is fine). People who are not
  linked (a slash command before linking) are remembered in memory for the same time.
* A channel reads in its own language (``/conferences language <code>``, table ``channel_settings``), else
  the workspace default (the ``DEFAULT_LANGUAGE`` setting), else English.

Slack failing to answer never holds a message back: the stored locale, however old, or English is used.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.messages.i18n import ENGLISH, Translator, supported_locale, translator
from bot.slackweb.clients import TeamClients
from bot.slackweb.users import SlackProfile, slack_profile
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import ChannelSetting, utcnow

log = logging.getLogger(__name__)

LOCALE_TTL = timedelta(hours=24)
LOOKUP_TIMEOUT_SECONDS = 3.0
"""users.info is answered in milliseconds; an alert must not wait long for its language."""
FAILED_LOOKUP_RETRY = timedelta(minutes=5)
"""After Slack failed to answer, how long a reader keeps their fallback before Slack is asked again."""
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class _Remembered:
    profile: SlackProfile
    until: datetime


def is_user_destination(destination: str) -> bool:
    """A DM goes to a user id (U…, W… on Enterprise Grid); anything else is a channel."""
    return destination.startswith(("U", "W"))


class Locales:
    def __init__(
        self,
        sessions: SessionFactory,
        slack: TeamClients,
        *,
        default_locale: str = ENGLISH,
        ttl: timedelta = LOCALE_TTL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._slack = slack
        self.default_locale = supported_locale(default_locale)
        self._ttl = ttl
        self._clock = clock
        self._remembered: dict[tuple[str, str], _Remembered] = {}

    async def for_destination(self, team_id: str, destination: str) -> Translator:
        """Whoever reads a message sent to ``destination``: a user's DM, or a channel."""
        if is_user_destination(destination):
            return await self.for_user(team_id, destination)
        return await self.for_channel(team_id, destination)

    async def for_channel(self, team_id: str, channel_id: str) -> Translator:
        return translator(await self.channel_locale(team_id, channel_id))

    async def channel_locale(self, team_id: str, channel_id: str) -> str:
        """The channel's own language, else the workspace default."""
        async with self._sessions() as session:
            chosen = await session.scalar(
                select(ChannelSetting.locale).where(
                    ChannelSetting.team_id == team_id, ChannelSetting.channel_id == channel_id
                )
            )
        return supported_locale(chosen) if chosen else self.default_locale

    async def set_channel_locale(self, team_id: str, channel_id: str, locale: str, user_id: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(ChannelSetting, (team_id, channel_id))
            if row is None:
                session.add(
                    ChannelSetting(
                        team_id=team_id,
                        channel_id=channel_id,
                        locale=locale,
                        updated_by=user_id,
                        updated_at=self._clock(),
                    )
                )
            else:
                row.locale, row.updated_by, row.updated_at = locale, user_id, self._clock()

    async def for_user(self, team_id: str, user_id: str) -> Translator:
        """The user's Slack locale and time zone: stored on their link while fresh, else asked of Slack."""
        now = self._clock()
        remembered = self._remembered.get((team_id, user_id))
        if remembered is not None and now < remembered.until:
            return translator(remembered.profile.locale, remembered.profile.tz)
        async with self._sessions() as session:
            linked = await repo.get_linked(session, team_id, user_id)
        stored = SlackProfile(None, None)
        if linked is not None:
            stored = SlackProfile(linked.locale, linked.timezone)
            checked = linked.locale_checked_at
            if checked is not None and now - checked < self._ttl:
                return translator(stored.locale, stored.tz)
        profile = await self._ask_slack(team_id, user_id)
        if profile is None:  # keep what we had; ask again a little later, not on every message
            await self._remember(team_id, user_id, stored, now + FAILED_LOOKUP_RETRY, linked is not None)
            return translator(stored.locale, stored.tz)
        merged = SlackProfile(profile.locale or stored.locale, profile.tz or stored.tz)
        await self._remember(team_id, user_id, merged, now + self._ttl, linked is not None, checked=now)
        return translator(merged.locale, merged.tz)

    async def _ask_slack(self, team_id: str, user_id: str) -> SlackProfile | None:
        client = await self._slack.for_team(team_id)
        if client is None:
            return None
        try:
            return await asyncio.wait_for(slack_profile(client, user_id), LOOKUP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.info("users.info took over %ss; using the stored language", LOOKUP_TIMEOUT_SECONDS)
            return None
        except Exception as error:  # a look-up must never cost the message it is for
            log.warning("locale look-up failed: %s", type(error).__name__)
            return None

    async def _remember(
        self,
        team_id: str,
        user_id: str,
        profile: SlackProfile,
        until: datetime,
        linked: bool,
        *,
        checked: datetime | None = None,
    ) -> None:
        """On the link when there is one (durable, shared by replicas), in memory otherwise. A failed
        look-up of a linked user is remembered in memory only: the stored check time stays, so the next
        process asks again."""
        if linked and checked is not None:
            values: dict[str, object] = {"locale": profile.locale, "locale_checked_at": checked}
            if profile.tz is not None:
                values["timezone"] = profile.tz
            async with self._sessions.begin() as session:
                await repo.update_linked(session, team_id, user_id, **values)
            self._remembered.pop((team_id, user_id), None)
            return
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[(team_id, user_id)] = _Remembered(profile, until)
