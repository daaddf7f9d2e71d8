"""`/conferences digest daily|weekly|off`: a channel's digest schedule, in a time zone Slack tells us.

The digests themselves are built and queued by bot.engine.digests.DigestRunner; this only stores the
schedule and says when the next one comes, in the language of whoever ran the command.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from slack_sdk.errors import SlackApiError
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.digest_schedule import Schedule, next_slot
from bot.messages import blocks
from bot.messages.blocks import Message
from bot.messages.i18n import DEFAULT_TRANSLATOR, Text, Translator
from bot.slack import commands
from bot.slackweb.clients import TeamClients
from bot.slackweb.users import slack_time_zone
from bot.store.db import SessionFactory
from bot.store.models import Digest, Subscription, utcnow

log = logging.getLogger(__name__)


class DigestCaller(Protocol):
    """Who ran the command and where (handlers.Caller fits)."""

    @property
    def team_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def channel_id(self) -> str: ...


DigestCommand = commands.DigestDaily | commands.DigestWeekly | commands.DigestOff


async def configure_digest(
    sessions: SessionFactory,
    slack: TeamClients,
    command: DigestCommand,
    caller: DigestCaller,
    *,
    now: datetime | None = None,
    t: Translator = DEFAULT_TRANSLATOR,
) -> Message:
    """Turn a channel's digest on (or move it) or off, and say when it runs next, in which zone."""
    now = now or utcnow()
    if isinstance(command, commands.DigestOff):
        async with sessions.begin() as session:
            result = await session.execute(
                delete(Digest).where(Digest.team_id == caller.team_id, Digest.channel_id == caller.channel_id)
            )
        if getattr(result, "rowcount", 0):
            return blocks.simple(t._("Digest off: this channel gets no more summaries."))
        return blocks.simple(t._("This channel had no digest to turn off."))

    zone, source = command.zone, Text("as you asked")
    if zone is None:
        zone, source = await creator_zone(slack, caller)
    if isinstance(command, commands.DigestWeekly):
        schedule = Schedule("weekly", command.at, zone, command.weekday)
    else:
        schedule = Schedule("daily", command.at, zone)
    next_run = next_slot(schedule, now)
    async with sessions.begin() as session:
        await _upsert(session, caller, schedule, next_run)
        subscribed = await session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.team_id == caller.team_id, Subscription.channel_id == caller.channel_id)
        )
    lines = [
        t._(
            "Digest on: %(schedule)s in %(zone)s (%(source)s).",
            schedule=describe_schedule(schedule, t),
            zone=zone,
            source=t.text(source),
        ),
        t._("Next digest: %(when)s.", when=t.day_label(next_run, zone)),
    ]
    if not subscribed:
        lines.append(
            t._(
                "This channel follows no courses yet, so there is nothing to summarise: "
                "subscribe a course first with `/conferences subscribe &lt;course&gt;`."
            )
        )
    return blocks.simple("\n".join(lines))


def describe_schedule(schedule: Schedule, t: Translator) -> str:
    """ "daily at 08:00" / "every Monday at 08:00" in the reader's words (the zone is named separately)."""
    clock = schedule.at.strftime("%H:%M")
    if schedule.weekday is None:
        return t._("daily at %(time)s", time=clock)
    return t._("every %(day)s at %(time)s", day=t.weekday(schedule.weekday), time=clock)


async def _upsert(
    session: AsyncSession, caller: DigestCaller, schedule: Schedule, next_run: datetime
) -> None:
    """One digest per channel; reconfiguring replaces it (and its lease) atomically."""
    values = {
        "frequency": schedule.frequency,
        "weekday": schedule.weekday,
        "at_time": schedule.at.strftime("%H:%M"),
        "timezone": schedule.zone,
        "created_by": caller.user_id,
        "next_run_at": next_run,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Digest).values(team_id=caller.team_id, channel_id=caller.channel_id, **values)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["team_id", "channel_id"], set_=values)
    )


async def creator_zone(slack: TeamClients, caller: DigestCaller) -> tuple[str, Text]:
    """The channel creator's Slack time zone, else the caller's, else UTC; with a phrase saying which."""
    client = await slack.for_team(caller.team_id)
    if client is None:
        return "UTC", Text("no Slack client to look up a time zone")
    creator: str | None = None
    try:
        info = await client.conversations_info(channel=caller.channel_id)
        creator = (info.get("channel") or {}).get("creator") or None
    except (SlackApiError, TimeoutError, OSError) as error:
        log.info("conversations.info failed for the digest zone: %s", type(error).__name__)
    candidates = [
        (creator, Text("the channel creator's time zone")),
        (caller.user_id, Text("your time zone")),
    ]
    for user_id, phrase in candidates:
        zone = await slack_time_zone(client, user_id) if user_id else None
        if zone is not None:
            return zone, phrase
    return "UTC", Text("no Slack time zone found; add a zone, e.g. `digest daily 08:00 Europe/Paris`")
