"""What each `/conferences` subcommand does (I/O: database and Canvas). Rendering lives in blocks.py.

Every reply is in the language of the person who ran the command (their Slack locale, from Locales), which
is decided once per command here and handed to whatever renders the reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import time, timedelta
from typing import assert_never

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, Forbidden, InsufficientScope, NotFound, Throttled
from bot.canvas.oauth import CanvasOAuth
from bot.domain.agenda import next_agenda
from bot.domain.buckets import recently_checked
from bot.domain.models import Conference
from bot.engine.alerts import join_url
from bot.engine.canvas_link import CanvasLinkFlow
from bot.engine.contexts import ContextNames, fallback_name
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.linking import unlink
from bot.engine.locales import Locales
from bot.messages import blocks
from bot.messages.blocks import ConferenceCard, Message
from bot.messages.i18n import LANGUAGE_NAMES, Text, Translator
from bot.slack import commands
from bot.slack.caller import Caller
from bot.slack.channel_commands import ChannelCommands
from bot.slack.digest_command import configure_digest
from bot.slackweb.clients import TeamClients
from bot.store import buckets as bucket_store
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, utcnow

log = logging.getLogger(__name__)


class ConferenceLister:
    """A linked user's conferences as cards, with their token from `Credentials` (refreshed before it
    expires and when Canvas says it expired; `RelinkNeeded` only when the link is dead)."""

    def __init__(
        self, canvas: CanvasClient, contexts: ContextNames, credentials: Credentials, *, canvas_root: str
    ) -> None:
        self._canvas = canvas
        self._contexts = contexts
        self._credentials = credentials
        self._canvas_root = canvas_root

    async def live_cards(self, user: LinkedUser) -> list[ConferenceCard]:
        """Canvas applied the live rule with its own clock: trust `state=live` as is."""
        return await self._fetch(user, self._canvas.live_conferences)

    async def all_cards(self, user: LinkedUser) -> list[ConferenceCard]:
        return await self._fetch(user, self._canvas.all_conferences)

    async def course_cards(self, user: LinkedUser, course_id: int) -> list[ConferenceCard]:
        async def course(token: str) -> list[Conference]:
            return await self._canvas.course_conferences(token, course_id)

        return await self._fetch(user, course)

    async def _fetch(
        self, user: LinkedUser, fetch: Callable[[str], Awaitable[list[Conference]]]
    ) -> list[ConferenceCard]:
        async def cards(token: str) -> list[ConferenceCard]:
            return await self._cards(token, await fetch(token))

        return await self._credentials.call(StoredToken.of(user), cards)

    async def _cards(self, token: str, conferences: Sequence[Conference]) -> list[ConferenceCard]:
        names = await self._contexts.lookup(token, {(c.context_type, c.context_id) for c in conferences})
        root = self._canvas_root
        return [
            ConferenceCard(
                conference_id=c.id,
                title=c.title,
                context_name=names.get((c.context_type, c.context_id))
                or fallback_name((c.context_type, c.context_id)),
                conference_type=c.conference_type,
                started_at=c.started_at,
                ended_at=c.ended_at,
                join_url=join_url(root, c.context_type, c.context_id, c.id, served=c.join_url),
            )
            for c in conferences
        ]


class CommandHandler:
    """Runs one parsed `/conferences` command for its caller and returns the reply to show."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        slack: TeamClients,
        link_flow: CanvasLinkFlow,
        oauth: CanvasOAuth | None,
        cipher: TokenCipher,
        channels: ChannelCommands,
        lister: ConferenceLister,
        locales: Locales,
        poll_interval: timedelta,
        poll_buckets: int,
    ) -> None:
        self._sessions = sessions
        self._poll_interval = poll_interval
        self._poll_buckets = poll_buckets
        self._locales = locales
        self._slack = slack
        self._link_flow = link_flow
        self._oauth = oauth
        self._cipher = cipher
        self._channels = channels
        self.lister = lister

    async def reader(self, caller: Caller) -> Translator:
        """The caller's language and time zone (their Slack locale; English when unknown)."""
        return await self._locales.for_user(caller.team_id, caller.user_id)

    async def handle(self, command: commands.Command, caller: Caller) -> Message:
        t = await self.reader(caller)
        match command:
            case commands.Help(reason=reason):
                return blocks.help_message(reason, t=t)
            case commands.Link():
                return blocks.link_instructions(await self._link_url(caller), t=t)
            case commands.Unlink():
                return await self._unlink(caller, t)
            case commands.Status():
                return await self._status(caller, t)
            case commands.Alerts(on=on):
                return await self._alerts(caller, on, t)
            case commands.Remind(minutes=minutes):
                return await self._remind(caller, minutes, t)
            case commands.Agenda(at=at):
                return await self._agenda(caller, at, t)
            case commands.Attendance(on=on):
                return await self._setting(caller, t, attendance_enabled=on)
            case commands.Missed(on=on):
                return await self._setting(caller, t, missed_enabled=on)
            case commands.Live() | commands.All() | commands.CourseList():
                return await self._list(command, caller, t)
            case commands.DigestDaily() | commands.DigestWeekly() | commands.DigestOff():
                return await configure_digest(self._sessions, self._slack, command, caller, t=t)
            case commands.Language(code=code):
                return await self._language(caller, code, t)
            case commands.Unsubscribe():
                return await self._channels.unsubscribe(await self._linked(caller), command, caller, t)
            case commands.Subscriptions():
                return await self._channels.list(caller, t)
            case commands.Subscribe() | commands.Mute() | commands.Unmute():
                user = await self._linked(caller)
                if user is None:
                    return blocks.link_instructions(await self._link_url(caller), t=t)
                if isinstance(command, commands.Subscribe):
                    return await self._channels.subscribe(user, command, caller, t)
                return await self._channels.mute(user, command, t)
            case _:
                assert_never(command)

    async def _language(self, caller: Caller, code: str | None, t: Translator) -> Message:
        """Show or set the channel's language: what its alerts, edits, recordings and digests are in.
        Replies stay in the caller's own language."""
        if not caller.in_channel:
            return blocks.simple(
                t._(
                    "Run `/conferences language` in a channel. Your own messages follow your Slack "
                    "language setting."
                )
            )
        if code is None:
            current = await self._locales.channel_locale(caller.team_id, caller.channel_id)
            return blocks.simple(
                t._(
                    "This channel's alerts and digests are in %(language)s. Change it with "
                    "`/conferences language en`, `es` or `pt-BR`.",
                    language=LANGUAGE_NAMES[current],
                )
            )
        await self._locales.set_channel_locale(caller.team_id, caller.channel_id, code, caller.user_id)
        return blocks.simple(
            t._("This channel's alerts and digests are now in %(language)s.", language=LANGUAGE_NAMES[code])
        )

    async def _link_url(self, caller: Caller) -> str | None:
        """The user's own "Connect Canvas" link (OAuth), or None: link with a token instead."""
        return await self._link_flow.start_url(caller.team_id, caller.user_id)

    async def _linked(self, caller: Caller) -> LinkedUser | None:
        async with self._sessions() as session:
            return await repo.get_linked(session, caller.team_id, caller.user_id)

    async def _list(self, command: commands.Command, caller: Caller, t: Translator) -> Message:
        user = await self._linked(caller)
        if user is None:
            return blocks.link_instructions(await self._link_url(caller), t=t)
        if user.needs_relink:
            return blocks.relink_prompt(
                await self._link_url(caller), user.relink_reason or "token rejected", t=t
            )
        if isinstance(command, commands.CourseList) and not command.course.isdigit():
            return blocks.help_message(
                Text("`course` needs a Canvas course id (a number), not “%(got)s”.", got=command.course), t=t
            )
        try:
            if isinstance(command, commands.CourseList):
                cards = await self.lister.course_cards(user, int(command.course))
            elif isinstance(command, commands.All):
                cards = await self.lister.all_cards(user)
            else:
                return blocks.live_list(await self.lister.live_cards(user), utcnow(), t=t)
        except RelinkNeeded:
            return blocks.relink_prompt(await self._link_url(caller), "Canvas rejected the token", t=t)
        except NotFound:
            return blocks.simple(t._("Canvas does not know that course."))
        except Forbidden:
            return blocks.simple(
                t._("Canvas does not let you see that course's conferences: you are not enrolled in it.")
            )
        except Throttled:
            return blocks.simple(t._("Canvas asked me to slow down. Try again in a minute."))
        except InsufficientScope:
            return blocks.simple(
                t._(
                    "Canvas does not allow me to read that yet (its developer key lacks a permission). "
                    "Nothing is wrong with your account; the bot's operator has been told."
                )
            )
        except CanvasError as error:
            log.info("listing failed for %s: %s", caller.user_id, type(error).__name__)
            return blocks.simple(t._("Canvas is not answering right now. Try again in a minute."))
        return blocks.all_list(cards, utcnow(), t=t)

    async def _unlink(self, caller: Caller, t: Translator) -> Message:
        removed = await unlink(self._sessions, caller.team_id, caller.user_id)
        if removed is None:
            return blocks.simple(t._("Your Slack account is not linked to Canvas."))
        if removed.user.token_kind == "oauth" and self._oauth is not None:
            try:
                await self._oauth.revoke(self._cipher.decrypt(removed.user.access_token_enc))
            except CanvasError as error:
                log.info(
                    "revoking at Canvas failed (%s); the token is deleted here anyway", type(error).__name__
                )
        text = t._("Unlinked. I deleted your Canvas token and will not send you alerts.")
        if removed.subscriptions:
            text += " " + t.ngettext(
                "The %(count)d channel subscription you set up was removed with it.",
                "The %(count)d channel subscriptions you set up were removed with it.",
                removed.subscriptions,
            )
        return blocks.simple(text)

    async def _status(self, caller: Caller, t: Translator) -> Message:
        user = await self._linked(caller)
        if user is None:
            return blocks.status_message(None, None, False, False, utcnow(), t=t)
        now = utcnow()
        failing = user.consecutive_failures > 0 or user.last_error is not None or user.needs_relink
        async with self._sessions() as session:
            leased = await bucket_store.leased_by_live_replica(
                session, bucket_store.USER, user.id, self._poll_buckets, now
            )
        fresh = recently_checked(user.last_success_at, failing, leased)
        return blocks.status_message(
            user.canvas_name,
            user.last_success_at,
            user.alerts_enabled,
            user.needs_relink,
            now,
            checked_within=self._poll_interval if fresh else None,
            t=t,
        )

    async def _agenda(self, caller: Caller, at: time | None, t: Translator) -> Message:
        """Set or stop the daily agenda; its first run is the next `at` in the caller's Slack time zone."""
        zone = t.zone or "UTC"
        values: dict[str, object] = {"agenda_at": None, "agenda_next_at": None}
        if at is not None:
            values = {"agenda_at": f"{at:%H:%M}", "agenda_next_at": next_agenda(at, zone, utcnow())}
        async with self._sessions.begin() as session:
            linked = await repo.update_linked(session, caller.team_id, caller.user_id, **values)
        if not linked:
            return blocks.link_instructions(await self._link_url(caller), t=t)
        if at is None:
            return blocks.simple(
                t._("The daily agenda is off. `/conferences agenda 07:30` turns it back on.")
            )
        return blocks.simple(
            t._(
                "Every morning at %(time)s (%(zone)s) I'll DM you the day's scheduled conferences.",
                time=at.strftime("%H:%M"),
                zone=zone,
            )
        )

    async def _remind(self, caller: Caller, minutes: int, t: Translator) -> Message:
        async with self._sessions.begin() as session:
            linked = await repo.update_linked(
                session, caller.team_id, caller.user_id, reminder_minutes=minutes
            )
        if not linked:
            return blocks.link_instructions(await self._link_url(caller), t=t)
        if minutes == 0:
            return blocks.simple(t._("Reminders are off. `/conferences remind 10` turns them back on."))
        return blocks.simple(
            t._("I'll remind you %(minutes)d min before each scheduled conference starts.", minutes=minutes)
        )

    async def _setting(self, caller: Caller, t: Translator, **values: bool) -> Message:
        """`attendance on|off`, `missed on|off`: one switch on the caller's link."""
        async with self._sessions.begin() as session:
            linked = await repo.update_linked(session, caller.team_id, caller.user_id, **values)
        if not linked:
            return blocks.link_instructions(await self._link_url(caller), t=t)
        replies = {
            ("attendance_enabled", True): t._(
                "Attendance reports are on: after each session of a course you teach, I'll DM you who came."
            ),
            ("attendance_enabled", False): t._(
                "Attendance reports are off. `/conferences attendance on` turns them back on."
            ),
            ("missed_enabled", True): t._(
                "When you miss a session you were invited to, I'll DM you its recording."
            ),
            ("missed_enabled", False): t._(
                "No more recordings of sessions you missed. `/conferences missed on` turns them back on."
            ),
        }
        [(name, on)] = values.items()
        return blocks.simple(replies[(name, on)])

    async def _alerts(self, caller: Caller, on: bool, t: Translator) -> Message:
        async with self._sessions.begin() as session:
            linked = await repo.update_linked(session, caller.team_id, caller.user_id, alerts_enabled=on)
        if not linked:
            return blocks.link_instructions(await self._link_url(caller), t=t)
        return blocks.simple(
            t._("Alerts are on.")
            if on
            else t._("Alerts are off. `/conferences alerts on` turns them back on.")
        )
