"""Channel digests end to end in-process: real SQLite, sandbox Canvas and Slack over loopback, real ticks.

Time is an injected clock handed to the digest runner and the dispatcher, so a test can stand at
07:59:59 on the morning clocks change, or come back three days later, without sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select, update

from bot.config import load_settings
from bot.engine.digests import DigestRunner
from bot.engine.dispatcher import Dispatcher
from bot.engine.linking import link_with_token
from bot.messages.blocks import Message
from bot.runtime import Runtime
from bot.slack import commands
from bot.slack.digest_command import DigestCommand, configure_digest
from bot.slackweb.clients import SingleWorkspace
from bot.store.db import create_engine, session_factory, upgrade
from bot.store.models import Digest, LinkedUser, OutboxMessage, Subscription
from tests.blockkit import mrkdwn_texts
from tests.support import CanvasWorld, SlackWorld, fernet_key

TEAM = "T0001"


async def configure(bot: Any, command: DigestCommand, caller: Caller, **kwargs: Any) -> Message:
    """/conferences digest ... as the slash command runs it, with this bot's database and Slack."""
    return await configure_digest(bot.runtime.sessions, bot.runtime.slack, command, caller, **kwargs)


class Clock:
    """The time the bot believes it is; tests move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Caller:
    team_id: str
    user_id: str
    channel_id: str


@dataclass
class Bot:
    runtime: Runtime
    clock: Clock
    runner: DigestRunner
    dispatcher: Dispatcher
    slack: SlackWorld
    canvas: CanvasWorld

    def new_runner(self, sessions: Any = None) -> DigestRunner:
        return DigestRunner(
            sessions or self.runtime.sessions,
            self.runtime.canvas,
            self.runtime.credentials,
            canvas_root=self.runtime.settings.canvas_root,
            clock=self.clock,
        )

    async def at(self, moment: datetime) -> int:
        """Stand at `moment`, run one digest tick and deliver what it queued; returns posts queued."""
        self.clock.now = moment
        queued = await self.runner.tick()
        await self.dispatcher.tick()
        return queued

    def posts(self, channel: str) -> list[dict[str, Any]]:
        return self.slack.messages(channel=channel)

    async def digest_row(self, channel: str) -> Digest | None:
        async with self.runtime.sessions() as session:
            return await session.scalar(select(Digest).where(Digest.channel_id == channel))

    async def link(self, slack_user: str, canvas_token: str) -> int:
        await link_with_token(
            self.runtime.sessions,
            self.runtime.canvas,
            self.runtime.cipher,
            team_id=TEAM,
            slack_user_id=slack_user,
            token=canvas_token,
        )
        async with self.runtime.sessions() as session:
            user = await session.scalar(select(LinkedUser).where(LinkedUser.slack_user_id == slack_user))
            assert user is not None
            return user.id

    async def subscribe(self, channel: str, course: dict[str, Any], subscriber_id: int) -> None:
        async with self.runtime.sessions.begin() as session:
            session.add(
                Subscription(
                    team_id=TEAM,
                    channel_id=channel,
                    course_id=course["id"],
                    course_name=course["name"],
                    subscriber_id=subscriber_id,
                )
            )


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'confbot.db'}"
    upgrade(url)
    yield url


@pytest.fixture
async def bot(database_url: str, canvas: CanvasWorld, slack: SlackWorld) -> AsyncIterator[Bot]:
    settings = load_settings(
        canvas_base_url=canvas.canvas.url,
        slack_bot_token=slack.bot_token,
        slack_api_url=slack.slack.url + "/api/",
        database_url=database_url,
        token_encryption_keys=fernet_key(),
        _env_file=None,
    )
    runtime = Runtime.build(settings)
    clock = Clock(datetime.now(UTC))
    web = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/")
    dispatcher = Dispatcher(runtime.sessions, SingleWorkspace(web), clock=clock)
    world = Bot(runtime, clock, None, dispatcher, slack, canvas)  # type: ignore[arg-type]
    world.runner = world.new_runner()
    yield world
    await runtime.close()


@pytest.fixture
def teacher(canvas: CanvasWorld, slack: SlackWorld) -> dict[str, Any]:
    """A teacher of Biology 101, in New York, who created #biology; a colleague in Paris."""
    user = canvas.user("Tess Teacher")
    course = canvas.course("Biology 101")
    canvas.enroll(course["id"], user["id"], "TeacherEnrollment")
    slack.user("UTESS", tz="America/New_York")
    slack.user("UPIERRE", tz="Europe/Paris")
    channel = slack.slack.post(
        "/_sandbox/channels",
        {"team_id": TEAM, "name": "biology", "creator": "UTESS", "members": ["UTESS", "UPIERRE"]},
    )
    return {"user": user, "course": course, "channel": channel["id"]}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def subscribed(bot: Bot, teacher: dict[str, Any]) -> str:
    subscriber = await bot.link("UTESS", teacher["user"]["token"])
    await bot.subscribe(teacher["channel"], teacher["course"], subscriber)
    return str(teacher["channel"])


# --- schedule: DST, missed slots, replicas --------------------------------------------------------------


async def test_daily_0800_digest_posts_at_0800_new_york_time_on_both_sides_of_the_dst_switch(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    # Configured by the Paris colleague: the zone still comes from the channel creator (New York).
    reply = await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0)),
        Caller(TEAM, "UPIERRE", channel),
        now=utc(2024, 3, 8, 18, 0),
    )
    assert "daily at 08:00 in America/New_York (the channel creator's time zone)" in reply["text"]
    assert "Next digest: Sat 9 Mar 2024, 08:00 EST" in reply["text"]

    assert await bot.at(utc(2024, 3, 9, 12, 59, 59)) == 0, "07:59:59 EST: not yet"
    assert await bot.at(utc(2024, 3, 9, 13, 0)) == 1, "08:00 EST = 13:00 UTC"
    assert len(bot.posts(channel)) == 1

    # Clocks spring forward at 02:00 on Sunday 10 March: 08:00 EDT is now 12:00 UTC.
    assert await bot.at(utc(2024, 3, 10, 11, 59, 59)) == 0
    assert await bot.at(utc(2024, 3, 10, 12, 0)) == 1
    assert await bot.at(utc(2024, 3, 10, 13, 0)) == 0, "not again at the old UTC time"
    posts = bot.posts(channel)
    assert len(posts) == 2
    assert all("(late)" not in post["text"] for post in posts)
    assert all(post["text"].startswith("Daily conference digest") for post in posts)
    row = await bot.digest_row(channel)
    assert row is not None and row.next_run_at == utc(2024, 3, 11, 12, 0)
    assert row.last_run_at == utc(2024, 3, 10, 12, 0)


async def test_slots_missed_while_down_for_three_days_post_once_marked_late(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0)),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3, 10),
    )
    row = await bot.digest_row(channel)
    assert row is not None and row.next_run_at == utc(2024, 6, 3, 12, 0)

    back_up = utc(2024, 6, 6, 15, 30)  # 11:30 EDT on the 6th: four slots (3rd-6th) went by
    assert await bot.at(back_up) == 1
    assert await bot.at(back_up + timedelta(seconds=1)) == 0
    posts = bot.posts(channel)
    assert len(posts) == 1
    assert "(late)" in posts[0]["text"]
    assert "(late)" in posts[0]["blocks"][0]["text"]["text"]
    row = await bot.digest_row(channel)
    assert row is not None and row.next_run_at == utc(2024, 6, 7, 12, 0), "the next future slot"

    assert await bot.at(utc(2024, 6, 7, 12, 0, 30)) == 1
    assert "(late)" not in bot.posts(channel)[-1]["text"], "back on time the next morning"


async def test_two_replicas_ticking_at_once_post_each_digest_once(
    bot: Bot, teacher: dict[str, Any], database_url: str
) -> None:
    subscriber = await bot.link("UTESS", teacher["user"]["token"])
    channels = []
    for index in range(12):
        made = bot.slack.slack.post(
            "/_sandbox/channels", {"team_id": TEAM, "name": f"section-{index}", "creator": "UTESS"}
        )
        channels.append(made["id"])
        await bot.subscribe(made["id"], teacher["course"], subscriber)
        await configure_digest(
            bot.runtime.sessions,
            bot.runtime.slack,
            commands.DigestDaily(time(8, 0), "UTC"),
            Caller(TEAM, "UTESS", made["id"]),
            now=utc(2024, 6, 3, 7),
        )
    # A second replica: its own engine and connection pool on the same database.
    other_engine = create_engine(database_url)
    replica = bot.new_runner(session_factory(other_engine))
    try:
        for day in (3, 4):
            bot.clock.now = utc(2024, 6, day, 8, 0, 5)
            counts = await asyncio.gather(
                bot.runner.tick(), replica.tick(), bot.runner.tick(), replica.tick()
            )
            assert sum(counts) == len(channels)
            await bot.dispatcher.tick()
    finally:
        await other_engine.dispose()
    for channel in channels:
        assert len(bot.posts(channel)) == 2, "one digest a day per channel"


async def test_a_slow_replica_that_lost_its_lease_does_not_post_a_second_time(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0), "UTC"),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3),
    )
    slow = bot.new_runner()
    bot.clock.now = utc(2024, 6, 3, 8, 0)
    jobs = await slow._claim()  # claims, then "hangs" on Canvas for longer than the lease
    assert len(jobs) == 1
    assert await bot.at(utc(2024, 6, 3, 8, 6)) == 1, "the lease ran out: another replica posts"
    assert await slow._run(jobs[0]) is False
    await bot.dispatcher.tick()
    assert len(bot.posts(channel)) == 1


async def test_the_period_dedup_key_holds_even_if_the_schedule_is_rewound(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0), "UTC"),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3),
    )
    assert await bot.at(utc(2024, 6, 3, 8, 1)) == 1
    async with bot.runtime.sessions.begin() as session:  # e.g. a database restored from a backup
        await session.execute(update(Digest).values(next_run_at=utc(2024, 6, 3, 8, 0), last_run_at=None))
    await bot.at(utc(2024, 6, 3, 8, 2))
    async with bot.runtime.sessions() as session:
        rows = await session.scalar(select(func.count()).select_from(OutboxMessage))
    assert rows == 1
    assert len(bot.posts(channel)) == 1


# --- configuring ----------------------------------------------------------------------------------------


async def test_a_zone_given_in_the_command_wins_and_weekly_names_its_day(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    reply = await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.parse("digest weekly mon 09:00 europe/paris"),  # type: ignore[arg-type]
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 5, 12),
    )
    assert "every Monday at 09:00 in Europe/Paris (as you asked)" in reply["text"]
    assert "Next digest: Mon 10 Jun 2024, 09:00 CEST" in reply["text"]
    row = await bot.digest_row(channel)
    assert row is not None
    assert (row.frequency, row.weekday, row.at_time, row.timezone) == ("weekly", 0, "09:00", "Europe/Paris")
    assert row.next_run_at == utc(2024, 6, 10, 7, 0)


async def test_reconfiguring_replaces_the_digest_and_off_removes_it(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = await subscribed(bot, teacher)
    caller = Caller(TEAM, "UTESS", channel)
    await configure_digest(
        bot.runtime.sessions, bot.runtime.slack, commands.DigestDaily(time(8, 0)), caller, now=utc(2024, 6, 3)
    )
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(17, 30)),
        caller,
        now=utc(2024, 6, 3),
    )
    row = await bot.digest_row(channel)
    assert row is not None and row.at_time == "17:30" and row.next_run_at == utc(2024, 6, 3, 21, 30)

    reply = await configure(bot, commands.DigestOff(), caller)
    assert "Digest off" in reply["text"]
    assert await bot.digest_row(channel) is None
    assert await bot.at(utc(2024, 6, 4, 21, 30)) == 0
    again = await configure(bot, commands.DigestOff(), caller)
    assert "no digest" in again["text"]


async def test_a_channel_without_subscriptions_is_told_to_subscribe_first_and_gets_no_empty_posts(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    channel = teacher["channel"]
    reply = await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0)),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3),
    )
    assert "subscribe a course first" in reply["text"]
    assert await bot.digest_row(channel) is not None, "configured anyway"
    assert await bot.at(utc(2024, 6, 3, 12, 0)) == 0
    assert bot.posts(channel) == []
    row = await bot.digest_row(channel)
    assert row is not None and row.next_run_at == utc(2024, 6, 4, 12, 0)


# --- content --------------------------------------------------------------------------------------------


async def test_digest_shows_live_held_with_durations_and_recordings_per_course_escaped(
    bot: Bot, teacher: dict[str, Any], canvas: CanvasWorld
) -> None:
    channel = await subscribed(bot, teacher)
    chem = canvas.course("Chemistry & <Physics>")
    canvas.enroll(chem["id"], teacher["user"]["id"], "TeacherEnrollment")
    subscriber = await bot.link("UTESS", teacher["user"]["token"])
    await bot.subscribe(channel, chem, subscriber)
    tess = [teacher["user"]["id"]]
    bio_id = teacher["course"]["id"]

    now = datetime.now(UTC).replace(microsecond=0)
    lecture = canvas.conference(bio_id, "<!channel> Lecture 4", tess)
    canvas.canvas.post(f"/_sandbox/conferences/{lecture['id']}/start", {"at": _iso(now - timedelta(hours=3))})
    ended = now - timedelta(hours=3) + timedelta(minutes=50)
    canvas.canvas.post(f"/_sandbox/conferences/{lecture['id']}/end", {"at": _iso(ended)})
    recording = canvas.canvas.post(
        f"/_sandbox/conferences/{lecture['id']}/recordings",
        {"title": "Lecture 4 <b>", "duration_minutes": 48},
    )
    office = canvas.conference(bio_id, "Office hours", tess)
    canvas.start(office["id"])
    canvas.conference(chem["id"], "Lab briefing (not started)", tess)

    slot = (now - timedelta(minutes=1)).replace(second=0)
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(slot.time().replace(tzinfo=None), "UTC"),
        Caller(TEAM, "UTESS", channel),
        now=slot - timedelta(seconds=1),
    )
    assert await bot.at(datetime.now(UTC)) == 1
    posts = bot.posts(channel)
    assert len(posts) == 1
    post = posts[0]
    body = "\n".join(mrkdwn_texts(post))
    join = f"{canvas.canvas.url}/courses/{bio_id}/conferences/{office['id']}/join"
    assert f"<{join}|Office hours> · started" in body
    assert "&lt;!channel&gt; Lecture 4 · lasted 50 min" in body
    playback = recording["playback_url"]
    assert f"<{playback}|Lecture 4 &lt;b&gt;> · 48 min" in body
    assert "No conferences in: Chemistry &amp; &lt;Physics&gt;" in body
    assert "*Biology 101*" in body
    assert "(late)" not in post["text"]
    assert not any("<!channel>" in text for text in mrkdwn_texts(post)), "a Canvas title must never ping"
    assert "1 live now · 1 held · 1 new recordings" in post["text"]


async def test_a_course_canvas_cannot_read_is_flagged_while_the_rest_is_posted(
    bot: Bot, teacher: dict[str, Any], canvas: CanvasWorld
) -> None:
    channel = await subscribed(bot, teacher)
    ghost = {"id": 999_999, "name": "Deleted course"}
    subscriber = await bot.link("UTESS", teacher["user"]["token"])
    await bot.subscribe(channel, ghost, subscriber)
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0), "UTC"),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3),
    )
    assert await bot.at(utc(2024, 6, 3, 8, 0)) == 1
    body = "\n".join(mrkdwn_texts(bot.posts(channel)[0]))
    assert "*Deleted course*\n⚠️ Canvas no longer knows this course." in body
    assert "Biology 101" in body


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_with_the_default_clock_under_time_travel_the_dst_switch_is_followed_too(
    bot: Bot, teacher: dict[str, Any]
) -> None:
    """The runner as the lead wires it (clock = utcnow), with the whole process travelling in time."""
    channel = await subscribed(bot, teacher)
    runner = DigestRunner(
        bot.runtime.sessions,
        bot.runtime.canvas,
        bot.runtime.credentials,
        canvas_root=bot.runtime.settings.canvas_root,
    )
    dispatcher = Dispatcher(bot.runtime.sessions, bot.dispatcher._slack)
    with time_machine.travel(utc(2024, 3, 8, 18, 0), tick=False) as traveller:
        await configure_digest(
            bot.runtime.sessions,
            bot.runtime.slack,
            commands.DigestDaily(time(8, 0)),
            Caller(TEAM, "UTESS", channel),
        )
        posted = []
        for moment in (utc(2024, 3, 9, 13, 0), utc(2024, 3, 10, 12, 0), utc(2024, 3, 11, 12, 0)):
            traveller.move_to(moment - timedelta(seconds=1))
            assert await runner.tick() == 0
            traveller.move_to(moment)
            assert await runner.tick() == 1
            await dispatcher.tick()
            posted.append(len(bot.posts(channel)))
    assert posted == [1, 2, 3]


async def test_a_course_whose_subscriber_must_relink_says_so(
    bot: Bot, teacher: dict[str, Any], canvas: CanvasWorld
) -> None:
    channel = await subscribed(bot, teacher)
    async with bot.runtime.sessions.begin() as session:
        await session.execute(update(LinkedUser).values(needs_relink=True))
    await configure_digest(
        bot.runtime.sessions,
        bot.runtime.slack,
        commands.DigestDaily(time(8, 0), "UTC"),
        Caller(TEAM, "UTESS", channel),
        now=utc(2024, 6, 3),
    )
    assert await bot.at(utc(2024, 6, 3, 8, 0)) == 1
    body = "\n".join(mrkdwn_texts(bot.posts(channel)[0]))
    assert "*Biology 101*\n⚠️ The Canvas link of the person who subscribed this course stopped working" in body
    assert teacher["user"]["token"] not in body
