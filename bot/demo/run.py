"""`confbot demo`: the whole product on one machine, with no accounts and no internet.

It starts the sandbox Canvas and sandbox Slack on loopback, runs the real bot in-process against them
(real HTTP, real database, real scheduler), links a teacher and two students, then plays a script: a
conference starts, everyone gets a DM with a Join button, a student types `/conferences`, the conference
ends and the alerts are edited. Every Slack message is printed as it arrives and shown on a small live
page. Tokens stay in memory: they are never printed, and the database lives in a temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import json
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from cryptography.fernet import Fernet

from bot.config import Settings, load_settings
from bot.demo.page import JSON, Ansi, Reply, create_page_app, message_lines
from bot.engine.linking import link_with_token
from bot.ops import logs
from bot.runtime import Runtime
from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import RunningServer, free_port, start_in_thread
from bot.sandbox.slack import create_slack_app, signed_slash_command
from bot.store.db import upgrade_async
from bot.web.app import create_app

TEAM_ID = "T0DEMO"
COURSE_NAME = "Biology 101"
# Deliberately full of mrkdwn and HTML metacharacters: the demo shows they arrive as plain text.
CONFERENCE_TITLE = "Lecture 5: Cells & <Membranes>"
POLL_SECONDS = 2.0
ONCE_TIMEOUT = 60.0
STEP_TIMEOUT = 25.0


class DemoError(Exception):
    """A step of the script did not happen; the message says which."""


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str
    enrollment: str


PEOPLE = (
    Person("UGRACE", "Grace Hopper", "TeacherEnrollment"),
    Person("UADA", "Ada Lovelace", "StudentEnrollment"),
    Person("UALAN", "Alan Turing", "StudentEnrollment"),
)


@dataclass
class World:
    """What the script created; Canvas tokens are kept out of repr so no traceback can print them."""

    course_id: int = 0
    canvas_ids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict, repr=False)
    bot_token: str = field(default="", repr=False)

    @property
    def names(self) -> dict[str, str]:
        return {person.slack_id: person.name for person in PEOPLE}


class Console:
    """Everything the demo prints goes through here (stdout, flushed, optional colour)."""

    def __init__(self, ansi: Ansi) -> None:
        self.ansi = ansi

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"{self.ansi('1;36', '▶')} {text}")

    def lines(self, lines: list[str]) -> None:
        self.say("\n" + "\n".join(lines))


async def until(condition: Callable[[], Any], *, within: float, what: str, every: float = 0.1) -> Any:
    """Poll `condition` (sync or async) until truthy; DemoError naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


class Feed:
    """Follows the sandbox Slack: prints each new or edited message once, keeps the latest snapshot."""

    def __init__(self, http: httpx.AsyncClient, slack_url: str, console: Console, names: Mapping[str, str]):
        self.http, self.slack_url, self.console, self.names = http, slack_url, console, names
        self.messages: list[JSON] = []
        self._printed: dict[tuple[str, str], int] = {}

    async def refresh(self) -> None:
        response = await self.http.get(f"{self.slack_url}/_sandbox/messages")
        response.raise_for_status()
        messages: list[JSON] = sorted(response.json()["messages"], key=lambda m: float(m["ts"]))
        for message in messages:
            key, edits = (message["channel"], message["ts"]), int(message.get("edits") or 0)
            if self._printed.get(key) != edits:
                self._printed[key] = edits
                self.console.lines(
                    message_lines(message, self._heading(message), self.console.ansi, self.names)
                )
        self.messages = messages

    def _heading(self, message: JSON) -> str:
        user = message.get("user")
        if user:
            return f"DM to {self.names.get(user, user)}"
        return f"#{message.get('channel')}"

    async def watch(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.refresh()
            await asyncio.sleep(0.25)

    def dms(self, predicate: Callable[[JSON], bool]) -> dict[str, JSON]:
        """Latest DM per recipient matching `predicate`."""
        return {m["user"]: m for m in self.messages if m.get("user") and predicate(m)}


# --- setting the world up ------------------------------------------------------------------------------


async def _post(http: httpx.AsyncClient, url: str, body: JSON | None = None) -> Any:
    response = await http.post(url, json=body or {})
    if response.status_code >= 400:
        raise DemoError(f"sandbox refused {url.split('/_sandbox', 1)[-1]}: {response.text[:200]}")
    return response.json()


async def build_world(http: httpx.AsyncClient, canvas_url: str, slack_url: str) -> World:
    """A Slack workspace with three people, and a Canvas course they are enrolled in."""
    world = World()
    team = await _post(http, f"{slack_url}/_sandbox/teams", {"team_id": TEAM_ID, "team_name": "Demo U"})
    world.bot_token = team["bot_token"]
    course = await _post(http, f"{canvas_url}/_sandbox/courses", {"name": COURSE_NAME})
    world.course_id = course["id"]
    for person in PEOPLE:
        handle = person.name.split()[0].lower()
        await _post(
            http, f"{slack_url}/_sandbox/users", {"id": person.slack_id, "team_id": TEAM_ID, "name": handle}
        )
        user = await _post(http, f"{canvas_url}/_sandbox/users", {"name": person.name})
        world.canvas_ids[person.slack_id], world.tokens[person.slack_id] = user["id"], user["token"]
        await _post(
            http,
            f"{canvas_url}/_sandbox/courses/{course['id']}/enrollments",
            {"user_id": user["id"], "type": person.enrollment},
        )
    return world


def demo_settings(canvas_url: str, slack_url: str, world: World, workdir: str, secret: str) -> Settings:
    """Settings for the in-process bot; nothing is read from `.env`, OAuth and Socket Mode stay off."""
    port = free_port()
    return load_settings(
        _env_file=None,
        canvas_base_url=canvas_url,
        slack_api_url=f"{slack_url}/api/",
        slack_bot_token=world.bot_token,
        slack_signing_secret=secret,
        canvas_client_id=None,
        canvas_client_secret=None,
        slack_client_id=None,
        slack_client_secret=None,
        slack_app_token=None,
        public_base_url=f"http://127.0.0.1:{port}",
        database_url=f"sqlite+aiosqlite:///{workdir}/confbot.db",
        token_encryption_keys=Fernet.generate_key().decode(),
        poll_interval_seconds=POLL_SECONDS,
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: asyncio.run turns Ctrl-C into a clean cancellation."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


@dataclass
class RunningBot:
    url: str
    runtime: Runtime
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=10)
        except TimeoutError:
            self.server.force_exit = True
            await self.task


async def start_bot(settings: Settings) -> RunningBot:
    """Migrations, the Runtime and the web app with its scheduler, served on this event loop."""
    await upgrade_async(settings.database_url)
    runtime = Runtime.build(settings)
    config = uvicorn.Config(
        create_app(runtime),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), within=15, what="the bot to start")
    if task.done():
        raise DemoError("the bot did not start (see the log above)")
    return RunningBot(f"http://{settings.host}:{settings.port}", runtime, server, task)


# --- the script ----------------------------------------------------------------------------------------


@dataclass
class Demo:
    console: Console
    http: httpx.AsyncClient
    canvas_url: str
    slack_url: str
    world: World
    bot: RunningBot
    feed: Feed
    signing_secret: str = field(repr=False)
    replies: list[Reply] = field(default_factory=list)
    conference_id: int = 0

    async def link_people(self) -> None:
        runtime = self.bot.runtime
        for person in PEOPLE:
            who = await link_with_token(
                runtime.sessions,
                runtime.canvas,
                runtime.cipher,
                team_id=TEAM_ID,
                slack_user_id=person.slack_id,
                token=self.world.tokens[person.slack_id],
            )
            role = "teacher" if person.enrollment == "TeacherEnrollment" else "student"
            self.console.step(f"Linked Slack user {person.slack_id} to Canvas user {who.name} ({role})")

    async def start_conference(self) -> None:
        conference = await _post(
            self.http,
            f"{self.canvas_url}/_sandbox/conferences",
            {
                "context_type": "Course",
                "context_id": self.world.course_id,
                "title": CONFERENCE_TITLE,
                "user_ids": list(self.world.canvas_ids.values()),
            },
        )
        self.conference_id = int(conference["id"])
        self.console.step(f'Created conference "{CONFERENCE_TITLE}" in {COURSE_NAME}')
        await _post(self.http, f"{self.canvas_url}/_sandbox/conferences/{self.conference_id}/start")
        self.console.step(f"Started it in Canvas; the bot polls Canvas every {POLL_SECONDS:.0f} s…")
        await until(
            lambda: len(self.feed.dms(lambda m: "Live now" in str(m.get("blocks")))) == len(PEOPLE),
            within=STEP_TIMEOUT,
            what="a live alert DM to each of the three people",
        )

    async def slash_command(self, person: Person) -> None:
        self.console.step(f"{person.name} types /conferences in Slack")
        alert = self.feed.dms(lambda m: True)[person.slack_id]
        minted = await _post(
            self.http, f"{self.slack_url}/_sandbox/response_urls", {"user_id": person.slack_id}
        )
        body, headers = signed_slash_command(
            self.signing_secret,
            team_id=TEAM_ID,
            user_id=person.slack_id,
            channel_id=alert["channel"],
            text="",
            response_url=minted["url"],
        )
        ack = await self.http.post(f"{self.bot.url}/slack/events", content=body, headers=headers)
        if ack.status_code != 200:
            raise DemoError(f"the bot answered the slash command with HTTP {ack.status_code}")

        async def posts() -> list[JSON]:
            response = await self.http.get(f"{self.slack_url}/_sandbox/response_urls/{minted['id']}")
            return list(response.json()["posts"])

        posted = await until(posts, within=STEP_TIMEOUT, what="the reply to /conferences")
        reply = Reply(person.slack_id, "/conferences", posted[0])
        self.replies.append(reply)
        heading = f"reply to /conferences, only visible to {person.name}"
        message = {**reply.post, "ts": reply.post.get("at")}
        self.console.lines(message_lines(message, heading, self.console.ansi, self.world.names))

    async def end_conference(self) -> None:
        await _post(self.http, f"{self.canvas_url}/_sandbox/conferences/{self.conference_id}/end")
        self.console.step("Ended the conference in Canvas; the bot edits each alert…")
        await until(
            lambda: (
                len(self.feed.dms(lambda m: bool(m.get("edits")) and "Ended" in str(m.get("blocks"))))
                == len(PEOPLE)
            ),
            within=STEP_TIMEOUT,
            what="every alert to be edited to 'Ended'",
        )

    async def script(self) -> None:
        began = time.monotonic()
        await self.link_people()
        await self.start_conference()
        await self.slash_command(PEOPLE[1])
        await self.end_conference()
        self.console.step(f"Scenario complete in {time.monotonic() - began:.1f} s.")


def _banner(console: Console, urls: Mapping[str, str]) -> None:
    ansi = console.ansi
    console.say(ansi("1", "confbot demo") + " — sandbox Canvas, sandbox Slack and the bot, all on 127.0.0.1")
    console.say("no accounts, no internet; the database is a temporary file deleted on exit")
    for label, url in urls.items():
        console.say(f"  {label:<15} {ansi('4;34', url)}")
    console.say()


def _hints(console: Console, canvas_url: str, world: World) -> None:
    body = json.dumps(
        {
            "context_type": "Course",
            "context_id": world.course_id,
            "title": "Office hours",
            "user_ids": list(world.canvas_ids.values()),
        }
    )
    console.say()
    console.say("The bot keeps running; press Ctrl-C to stop. Poke the sandbox Canvas to see more alerts:")
    console.say(f"  curl -s -X POST {canvas_url}/_sandbox/conferences -H 'content-type: application/json' \\")
    console.say(f"       -d '{body}'")
    console.say(f"  curl -s -X POST {canvas_url}/_sandbox/conferences/<id>/start   # then …/<id>/end")


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
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        world = await build_world(http, canvas.url, slack.url)
        secret = secrets.token_hex(16)
        bot = await start_bot(demo_settings(canvas.url, slack.url, world, workdir, secret))
        stack.push_async_callback(bot.stop)
        replies: list[Reply] = []
        page = _start_page(slack.url, world, replies, page_port)
        stack.callback(page.stop)
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
        run = Demo(console, http, canvas.url, slack.url, world, bot, feed, secret, replies)
        try:
            async with asyncio.timeout(ONCE_TIMEOUT if once else None):
                await run.script()
        except TimeoutError:
            print(f"demo failed: the scenario did not finish within {ONCE_TIMEOUT:.0f} s", file=sys.stderr)
            return 1
        except DemoError as error:
            print(f"demo failed: {error}", file=sys.stderr)
            return 1
        if once:
            return 0
        _hints(console, canvas.url, world)
        console.say(f"Demo page: {page.url}/")
        await asyncio.Event().wait()
    return 0


def _start_page(slack_url: str, world: World, replies: list[Reply], port: int) -> RunningServer:
    try:
        return start_in_thread(create_page_app(slack_url, names=world.names, replies=replies), port)
    except RuntimeError as error:
        raise DemoError(f"cannot serve the demo page on port {port or 'any'}: {error}") from None


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
