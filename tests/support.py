"""Shared test helpers: waiting for conditions, sandbox handles, and the bot as a real process."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.fernet import Fernet

from bot.sandbox.server import RunningServer, free_port

T = TypeVar("T")

SIGNING_SECRET = "test-signing-secret"


def wait_for(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


@dataclass
class Sandbox:
    """A running sandbox server plus a control client."""

    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(self.url + path, json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        return response.json()


@dataclass
class CanvasWorld:
    """Convenience wrappers over the sandbox Canvas control API."""

    canvas: Sandbox

    def user(self, name: str) -> dict[str, Any]:
        return dict(self.canvas.post("/_sandbox/users", {"name": name}))

    def course(self, name: str) -> dict[str, Any]:
        return dict(self.canvas.post("/_sandbox/courses", {"name": name}))

    def enroll(self, course_id: int, user_id: int, kind: str = "StudentEnrollment") -> None:
        self.canvas.post(f"/_sandbox/courses/{course_id}/enrollments", {"user_id": user_id, "type": kind})

    def conference(self, course_id: int, title: str, user_ids: list[int]) -> dict[str, Any]:
        return dict(
            self.canvas.post(
                "/_sandbox/conferences",
                {"context_type": "Course", "context_id": course_id, "title": title, "user_ids": user_ids},
            )
        )

    def start(self, conference_id: int) -> dict[str, Any]:
        return dict(self.canvas.post(f"/_sandbox/conferences/{conference_id}/start"))

    def end(self, conference_id: int) -> dict[str, Any]:
        return dict(self.canvas.post(f"/_sandbox/conferences/{conference_id}/end"))


@dataclass
class SlackWorld:
    slack: Sandbox
    team_id: str = "T0001"
    bot_token: str = ""

    def setup(self) -> None:
        team = self.slack.post("/_sandbox/teams", {"team_id": self.team_id, "team_name": "Test U"})
        self.bot_token = team["bot_token"]

    def user(self, user_id: str, tz: str = "America/New_York", locale: str = "en-US") -> None:
        self.slack.post(
            "/_sandbox/users",
            {"id": user_id, "team_id": self.team_id, "name": user_id.lower(), "tz": tz, "locale": locale},
        )

    def messages(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.slack.get("/_sandbox/messages", **filters)["messages"])

    def dms_to(self, user_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m.get("user") == user_id]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return list(self.slack.get("/_sandbox/calls", method=method)["calls"])


@dataclass
class BotProcess:
    """`confbot run` as a real child process with its own SQLite file and captured log."""

    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    starts: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "bot.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "confbot.db"

    def full_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CANVAS_", "SLACK_", "DATABASE_"))}
        env.update(
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{self.db_path}",
                "HOST": "127.0.0.1",
                "PORT": str(self.port),
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "LOG_LEVEL": "INFO",
            }
        )
        env.update(self.env)
        return env

    def cli(self, *args: str, check: bool = True, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run another confbot subcommand against the same database (e.g. `link`), `stdin` piped in."""
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            env=self.full_env(),
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        with self.log_path.open("a") as log:
            log.write(result.stdout + result.stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"confbot {args[0]} failed: {result.stderr}")
        return result

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=self.full_env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1
        wait_for(self._healthy, timeout=30, what="the bot to answer /healthz")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"bot exited with {self.process.returncode}:\n{self.log_path.read_text()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def fernet_key() -> str:
    return Fernet.generate_key().decode()


def sandbox_bot(
    workdir: Path, canvas_url: str, slack_url: str, bot_token: str, **settings: str
) -> BotProcess:
    """`confbot run` against the sandboxes (or fault proxies in front of them), polling every second;
    `settings` add or override environment settings (e.g. SESSION_SCAN_INTERVAL_SECONDS="1")."""
    env = {
        "CANVAS_BASE_URL": canvas_url,
        "SLACK_API_URL": slack_url + "/api/",
        "SLACK_BOT_TOKEN": bot_token,
        "TOKEN_ENCRYPTION_KEYS": fernet_key(),
        "POLL_INTERVAL_SECONDS": "1",
        # Bucket leases scaled like the interval: a killed bot's successor (or a restart) takes its
        # buckets within seconds, not the production default's 30.
        "POLL_LEASE_SECONDS": "3",
    }
    return BotProcess(workdir=workdir, env={**env, **settings})


def link_in_process(bot: BotProcess, team_id: str, links: list[tuple[str, str]]) -> None:
    """Link many users through the real linking code against the bot's database (faster than N CLI runs)."""
    import asyncio

    from bot.canvas.client import CanvasClient
    from bot.engine.linking import link_with_token
    from bot.store.crypto import TokenCipher
    from bot.store.db import create_engine, session_factory, upgrade

    env = bot.full_env()
    upgrade(env["DATABASE_URL"])

    async def run() -> None:
        engine = create_engine(env["DATABASE_URL"])
        cipher = TokenCipher(env["TOKEN_ENCRYPTION_KEYS"].split(","))
        async with CanvasClient(env["CANVAS_BASE_URL"]) as canvas:
            for slack_user, token in links:
                await link_with_token(
                    session_factory(engine),
                    canvas,
                    cipher,
                    team_id=team_id,
                    slack_user_id=slack_user,
                    token=token,
                )
        await engine.dispose()

    asyncio.run(run())


def slash(
    bot: BotProcess, slack: SlackWorld, user_id: str, text: str, channel_id: str = "C1"
) -> dict[str, Any]:
    """Send a signed /conferences to the bot and return the first reply posted to its response_url."""
    from bot.sandbox.slack import signed_slash_command

    made = slack.slack.post("/_sandbox/response_urls")
    body, headers = signed_slash_command(
        SIGNING_SECRET,
        team_id=slack.team_id,
        user_id=user_id,
        channel_id=channel_id,
        text=text,
        response_url=made["url"],
    )
    assert httpx.post(bot.url + "/slack/events", content=body, headers=headers).status_code == 200
    posts = wait_for(
        lambda: slack.slack.get(f"/_sandbox/response_urls/{made['id']}")["posts"],
        timeout=10,
        what=f"a reply to /conferences {text}",
    )
    return dict(posts[0])


def requests_by(canvas: CanvasWorld, token: str) -> int:
    """How many Canvas API requests the sandbox saw with `token`."""
    return int(canvas.canvas.get("/_sandbox/requests")["by_token"].get(token, 0))


class Clock:
    """An injected clock the test moves (no sleeps): `clock()` is now, `advance(seconds)` moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class OutputLines:
    """Reads a child's stdout on a thread so waiting for a line can time out instead of hanging."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)

    def text(self) -> str:
        while not self._queue.empty():
            self.seen.append(self._queue.get_nowait())
        return "".join(self.seen)

    def wait_for(self, wanted: str, timeout: float) -> str:
        def arrived() -> bool:
            if wanted in self.text():
                return True
            if not self._pump_thread.is_alive() and self._queue.empty():  # EOF: the demo has exited
                raise AssertionError(f"demo exited with {self.process.returncode}:\n{self.text()}")
            return False

        wait_for(arrived, timeout=timeout, what=repr(wanted))
        return self.text()
