"""Channel subscriptions and per-user mutes: `/conferences subscribe|unsubscribe|subscriptions|mute|unmute`.

Subscribing needs a teacher/TA/designer enrollment in the course (checked with Canvas) or a workspace
admin/owner, and the bot must be a member of the channel so its alerts can be posted there. Replies are in
the caller's language (``t``, chosen by the CommandHandler).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, select

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError
from bot.domain.models import Course
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.messages import blocks
from bot.messages.blocks import Message
from bot.messages.i18n import Translator
from bot.messages.mrkdwn import escape
from bot.slack import commands
from bot.slack.caller import Caller
from bot.slack.course_lookup import Found, find_course
from bot.slackweb.clients import TeamClients
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, MutedContext, Subscription, utcnow

log = logging.getLogger(__name__)


class ChannelCommands:
    """Subscriptions of a channel to a course's conferences, and a user's muted courses."""

    def __init__(
        self, sessions: SessionFactory, canvas: CanvasClient, slack: TeamClients, credentials: Credentials
    ) -> None:
        self._sessions = sessions
        self._canvas = canvas
        self._slack = slack
        self._credentials = credentials

    async def _courses(self, user: LinkedUser, t: Translator) -> list[Course] | Message:
        """The user's courses (with enrollments), their token from `Credentials`: an expired OAuth token
        is refreshed silently; only a dead link asks the user to relink."""
        try:
            return await self._credentials.call(StoredToken.of(user), self._canvas.courses)
        except RelinkNeeded:
            return blocks.simple(t._("Canvas rejected your link. Run `/conferences link` to relink."))
        except CanvasError:
            return blocks.simple(t._("Canvas is not answering right now. Try again in a minute."))

    async def _course(self, user: LinkedUser, query: str, t: Translator) -> Course | Message:
        courses = await self._courses(user, t)
        if not isinstance(courses, list):
            return courses
        found = find_course(query, courses)
        if isinstance(found, Found):
            return found.course
        return blocks.simple(escape(t.text(found.reason)))

    async def _is_workspace_admin(self, caller: Caller) -> bool:
        client = await self._slack.for_team(caller.team_id)
        if client is None:
            return False
        try:
            user = (await client.users_info(user=caller.user_id))["user"]
        except SlackApiError:
            return False
        return bool(user.get("is_admin") or user.get("is_owner"))

    async def _bot_in_channel(self, caller: Caller) -> bool:
        client = await self._slack.for_team(caller.team_id)
        if client is None:
            return False
        try:
            channel = (await client.conversations_info(channel=caller.channel_id))["channel"]
        except SlackApiError:
            return False
        return bool(channel.get("is_member"))

    async def subscribe(
        self, user: LinkedUser, command: commands.Subscribe, caller: Caller, t: Translator
    ) -> Message:
        if not caller.in_channel:
            return blocks.simple(
                t._("Run `/conferences subscribe` in the channel that should get the alerts.")
            )
        course = await self._course(user, command.course, t)
        if not isinstance(course, Course):
            return course
        name = escape(course.name)
        if not course.can_manage_conferences and not await self._is_workspace_admin(caller):
            # Canvas's enrollment types, shown as Canvas names them (student, teacher, ta...).
            roles = ", ".join(sorted({e.type.removesuffix("Enrollment").lower() for e in course.enrollments}))
            return blocks.simple(
                t._(
                    "Only teachers, TAs and designers of *%(course)s* (or workspace admins) can subscribe a "
                    "channel. Canvas lists you there as: %(roles)s.",
                    course=name,
                    roles=escape(roles) or t._("not enrolled"),
                )
            )
        if not await self._bot_in_channel(caller):
            return blocks.simple(
                t._(
                    "I am not a member of this channel yet. Invite me with `/invite @confbot`, "
                    "then try again."
                )
            )
        async with self._sessions.begin() as session:
            existing = await session.scalar(
                select(Subscription).where(
                    Subscription.team_id == caller.team_id,
                    Subscription.channel_id == caller.channel_id,
                    Subscription.course_id == course.id,
                )
            )
            if existing is not None and command.remind is None:
                return blocks.simple(t._("This channel already follows *%(course)s*.", course=name))
            if existing is not None:
                existing.reminder_minutes = command.remind
            else:
                session.add(
                    Subscription(
                        team_id=caller.team_id,
                        channel_id=caller.channel_id,
                        course_id=course.id,
                        course_name=course.name,
                        subscriber_id=user.id,
                        next_poll_at=utcnow(),
                        reminder_minutes=command.remind,
                    )
                )
        if command.remind == 0:
            return blocks.simple(
                t._(
                    "This channel follows *%(course)s*, without reminders before scheduled starts.",
                    course=name,
                )
            )
        if command.remind is not None:
            return blocks.simple(
                t._(
                    "This channel follows *%(course)s* and gets a reminder %(minutes)d min before each "
                    "scheduled start.",
                    course=name,
                    minutes=command.remind,
                )
            )
        return blocks.simple(
            t._("This channel now gets an alert when a *%(course)s* conference goes live.", course=name)
        )

    async def unsubscribe(
        self, user: LinkedUser | None, command: commands.Unsubscribe, caller: Caller, t: Translator
    ) -> Message:
        """Who may subscribe a channel may unsubscribe it (a teacher, TA or designer of the course, or a
        workspace admin), and so may the person who subscribed it; nobody else, linked or not."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Subscription).where(
                        Subscription.team_id == caller.team_id, Subscription.channel_id == caller.channel_id
                    )
                )
            ).all()
        wanted = command.course.strip().casefold()
        match = [s for s in rows if str(s.course_id) == wanted or s.course_name.casefold() == wanted]
        if not match:
            match = [s for s in rows if wanted in s.course_name.casefold()]
        if len(match) != 1:
            return blocks.simple(
                t._(
                    "This channel follows no single course matching “%(query)s”. "
                    "See `/conferences subscriptions`.",
                    query=escape(command.course),
                )
            )
        subscription = match[0]
        name = escape(subscription.course_name)
        if not await self._may_unsubscribe(user, subscription, caller, t):
            return blocks.simple(
                t._(
                    "Only teachers, TAs and designers of *%(course)s*, workspace admins, or whoever "
                    "subscribed this channel can unsubscribe it.",
                    course=name,
                )
            )
        async with self._sessions.begin() as session:
            await session.execute(delete(Subscription).where(Subscription.id == subscription.id))
        return blocks.simple(t._("This channel no longer follows *%(course)s*.", course=name))

    async def _may_unsubscribe(
        self, user: LinkedUser | None, subscription: Subscription, caller: Caller, t: Translator
    ) -> bool:
        if user is not None and subscription.subscriber_id == user.id:
            return True
        if await self._is_workspace_admin(caller):
            return True
        if user is None:
            return False
        courses = await self._courses(user, t)
        return isinstance(courses, list) and any(
            c.id == subscription.course_id and c.can_manage_conferences for c in courses
        )

    async def list(self, caller: Caller, t: Translator) -> Message:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Subscription)
                    .where(
                        Subscription.team_id == caller.team_id, Subscription.channel_id == caller.channel_id
                    )
                    .order_by(Subscription.course_name)
                )
            ).all()
        if not rows:
            return blocks.simple(
                t._(
                    "This channel follows no course. "
                    "A teacher can run `/conferences subscribe &lt;course&gt;`."
                )
            )
        lines = "\n".join(f"• *{escape(s.course_name)}* ({s.course_id})" for s in rows[:100])
        return blocks.simple(t._("This channel follows:") + "\n" + lines)

    async def mute(
        self, user: LinkedUser, command: commands.Mute | commands.Unmute, t: Translator
    ) -> Message:
        course = await self._course(user, command.course, t)
        if not isinstance(course, Course):
            return course
        name = escape(course.name)
        async with self._sessions.begin() as session:
            await repo.unmute_course(session, user.id, course.id)
            if isinstance(command, commands.Mute):
                session.add(
                    MutedContext(
                        linked_user_id=user.id, context_type="Course", context_id=course.id, name=course.name
                    )
                )
        if isinstance(command, commands.Mute):
            return blocks.simple(t._("Muted *%(course)s*: no more DMs about its conferences.", course=name))
        return blocks.simple(t._("Unmuted *%(course)s*: you will get its alerts again.", course=name))
