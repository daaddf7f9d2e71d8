"""`confbot demo`: the whole product on one machine, with no accounts and no internet.

It starts the sandbox Canvas and sandbox Slack on loopback, runs the real bot in-process against them
(real HTTP, real database, real scheduler), links a teacher and two students, then plays a script: a
conference starts, everyone gets a DM with a Join button, a student types `/conferences`, the conference
ends and the alerts are edited. Every Slack message is printed as it arrives and shown on a live page,
which is also a control room: start, end and restart conferences, add recordings, type slash commands as
anyone, subscribe the channel, open App Homes, post a digest. Tokens stay in memory: they are never
printed, and the database lives in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from sqlalchemy import update

from bot.config import Settings
from bot.demo.console import Console, Feed
from bot.demo.controls import STEP_TIMEOUT, ControlRoom, DigestTrigger, until
from bot.demo.page import create_page_app
from bot.demo.serving import LoopServer, serve_on_loop
from bot.demo.terminal import Ansi, message_lines
from bot.demo.world import (
    COURSE_NAME,
    PEOPLE,
    POLL_SECONDS,
    TEAM_ID,
    DemoError,
    World,
    build_world,
    demo_settings,
)
from bot.engine.digests import DigestRunner
from bot.engine.linking import link_with_token
from bot.ops import logs
from bot.runtime import Runtime
from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import start_in_thread
from bot.sandbox.slack import create_slack_app
from bot.store.db import upgrade_async
from bot.store.models import Digest, utcnow
from bot.web.app import create_app

# Deliberately full of mrkdwn and HTML metacharacters: the demo shows they arrive as plain text.
CONFERENCE_TITLE = "Lecture 5: Cells & <Membranes>"
ONCE_TIMEOUT = 60.0


async def start_bot(settings: Settings) -> tuple[Runtime, LoopServer]:
    """Migrations, the Runtime and the web app with its scheduler, served on this event loop."""
    await upgrade_async(settings.database_url)
    runtime = Runtime.build(settings)
    server = await serve_on_loop(create_app(runtime), settings.port, what="the bot", lifespan="on")
    return runtime, server


def digest_trigger(runtime: Runtime) -> DigestTrigger:
    """`post_digest_now(channel)`: mark the channel's digest due and run the digest runner once, as its
    scheduled tick would; the bot's own scheduler then delivers it like any queued post."""
    runner = DigestRunner(
        runtime.sessions,
        runtime.canvas,
        runtime.credentials,
        canvas_root=runtime.settings.canvas_root,
        on_enqueued=runtime.scheduler.wake_dispatcher,
    )

    async def post_digest_now(channel_id: str) -> int:
        async with runtime.sessions.begin() as session:
            await session.execute(
                update(Digest)
                .where(Digest.team_id == TEAM_ID, Digest.channel_id == channel_id)
                .values(next_run_at=utcnow())
            )
        return await runner.tick()

    return post_digest_now


@dataclass
class Script:
    """The scripted scenario `confbot demo` plays first (and `--once` plays alone)."""

    console: Console
    runtime: Runtime
    world: World
    controls: ControlRoom
    feed: Feed

    async def link_people(self) -> None:
        for person in PEOPLE:
            who = await link_with_token(
                self.runtime.sessions,
                self.runtime.canvas,
                self.runtime.cipher,
                team_id=TEAM_ID,
                slack_user_id=person.slack_id,
                token=self.world.tokens[person.slack_id],
            )
            linked = f"Linked Slack user {person.slack_id} to Canvas user {who.name} ({person.role})"
            self.console.step(linked)

    async def start_conference(self) -> int:
        conference_id = await self.controls.create(CONFERENCE_TITLE)
        self.console.step(f'Created conference "{CONFERENCE_TITLE}" in {COURSE_NAME}')
        await self.controls.act(conference_id, "start")
        self.console.step(f"Started it in Canvas; the bot polls Canvas every {POLL_SECONDS:.0f} s…")
        await until(
            lambda: len(self.feed.dms(lambda m: "Live now" in str(m.get("blocks")))) == len(PEOPLE),
            within=STEP_TIMEOUT,
            what="a live alert DM to each of the three people",
        )
        return conference_id

    async def slash_command(self) -> None:
        student = PEOPLE[1]
        self.console.step(f"{student.name} types /conferences in Slack")
        reply = await self.controls.slash(student.slack_id, "")
        heading = f"reply to /conferences, only visible to {student.name}"
        message = {**reply.post, "ts": reply.post.get("at")}
        self.console.lines(message_lines(message, heading, self.console.ansi, self.world.names))

    async def end_conference(self, conference_id: int) -> None:
        await self.controls.act(conference_id, "end")
        self.console.step("Ended the conference in Canvas; the bot edits each alert…")
        await until(
            lambda: (
                len(self.feed.dms(lambda m: bool(m.get("edits")) and "Ended" in str(m.get("blocks"))))
                == len(PEOPLE)
            ),
            within=STEP_TIMEOUT,
            what="every alert to be edited to 'Ended'",
        )

    async def play(self) -> None:
        began = time.monotonic()
        await self.link_people()
        conference_id = await self.start_conference()
        await self.slash_command()
        await self.end_conference(conference_id)
        self.console.step(f"Scenario complete in {time.monotonic() - began:.1f} s.")


def _banner(console: Console, urls: Mapping[str, str]) -> None:
    ansi = console.ansi
    console.say(ansi("1", "confbot demo") + " — sandbox Canvas, sandbox Slack and the bot, all on 127.0.0.1")
    console.say("no accounts, no internet; the database is a temporary file deleted on exit")
    for label, url in urls.items():
        console.say(f"  {label:<15} {ansi('4;34', url)}")
    console.say()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _stop_on_sigterm() -> None:
    """SIGTERM (docker stop, kill) cancels the demo like Ctrl-C does, so the cleanup below still runs."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def demo(once: bool, page_port: int, console: Console) -> int:
    _stop_on_sigterm()
    async with contextlib.AsyncExitStack() as stack:
        canvas = start_in_thread(create_canvas_app())
        stack.callback(canvas.stop)
        slack = start_in_thread(create_slack_app())
        stack.callback(slack.stop)
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="confbot-demo-"))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=STEP_TIMEOUT + 5))
        world = await build_world(http, canvas.url, slack.url)
        secret = secrets.token_hex(16)
        runtime, bot = await start_bot(demo_settings(canvas.url, slack.url, world, workdir, secret))
        stack.push_async_callback(bot.stop)
        controls = ControlRoom(
            http=http,
            canvas_url=canvas.url,
            slack_url=slack.url,
            bot_url=bot.url,
            signing_secret=secret,
            world=world,
            post_digest_now=digest_trigger(runtime),
        )
        stack.push_async_callback(controls.close)
        page_app = create_page_app(slack.url, controls=controls)
        page = await serve_on_loop(page_app, page_port, what="the demo page")
        stack.push_async_callback(page.stop)
        _banner(
            console,
            {
                "demo page": page.url + "/",
                "sandbox Canvas": canvas.url,
                "sandbox Slack": f"{slack.url}/api/",
                "bot": f"{bot.url}/slack/events",
            },
        )
        feed = Feed(http, slack.url, console, world.names)
        watcher = asyncio.create_task(feed.watch())
        stack.push_async_callback(_cancel, watcher)
        try:
            async with asyncio.timeout(ONCE_TIMEOUT if once else None):
                await Script(console, runtime, world, controls, feed).play()
        except TimeoutError:
            print(f"demo failed: the scenario did not finish within {ONCE_TIMEOUT:.0f} s", file=sys.stderr)
            return 1
        if once:
            return 0
        console.say()
        console.say("The bot keeps running; press Ctrl-C to stop. Drive it from the demo page:")
        console.say("start, end and restart conferences, type /conferences as anyone, open App Homes.")
        console.say(f"Demo page: {page.url}/")
        await asyncio.Event().wait()
    return 0


def run_demo(once: bool, page_port: int) -> int:
    """Entry point of `confbot demo [--once] [--port P]`; returns the process exit code."""
    logs.configure("WARNING")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    console = Console(Ansi(sys.stdout.isatty() and "NO_COLOR" not in os.environ))
    try:
        return asyncio.run(demo(once, page_port, console))
    except DemoError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.say("\nstopped.")
        return 0
