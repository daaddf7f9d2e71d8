"""Shared benchmark plumbing: the sandbox as its own process, seeding, CPU/RSS probes, tables.

The sandbox Canvas and Slack always run in child processes so the bot's CPU figures
(`time.process_time()` of this process) never include the server side. Seeding also runs in a
child (`python -m bench.seed`) so the bot process starts with a clean heap for the RSS figure.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import gc
import inspect
import os
import platform
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from cryptography.fernet import Fernet

import bot.cli
from bot.config import Settings, load_settings
from bot.sandbox.server import free_port

TEAM_ID = "T0001"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def shipped_concurrency() -> int:
    """POLL_CONCURRENCY's default as shipped (read from Settings, so the bench follows bot/config.py)."""
    default = Settings.model_fields["poll_concurrency"].default
    assert isinstance(default, int)
    return default


# -- the CLI's garbage-collector settings ---------------------------------------------------------


def cli_gc_calls() -> list[tuple[str, tuple[int, ...]]]:
    """The `gc.<name>(literal, ...)` calls the `bot.cli` module makes (`confbot run`, after start-up).

    Read from the module's source rather than copied, so the bench process runs with whatever the CLI
    ships: a copy of the numbers would silently go stale when the CLI's change. The CLI has no public
    function for these calls, so the module (a public one) is read as a whole, in source order.
    """
    tree = ast.parse(inspect.getsource(bot.cli))
    calls: list[tuple[str, tuple[int, ...]]] = []
    nodes = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Call)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    for node in nodes:
        if (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "gc"
        ):
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            calls.append((node.func.attr, args))
    if not calls:
        raise RuntimeError("bot.cli makes no gc calls any more: update bench.common.apply_cli_gc")
    return calls


def apply_cli_gc() -> str:
    """Apply the CLI's gc calls to this process (call it right after Runtime.build, as the CLI does)."""
    calls = cli_gc_calls()
    for name, args in calls:
        getattr(gc, name)(*args)
    return "; ".join(f"gc.{name}({', '.join(map(str, args))})" for name, args in calls)


# -- machine ------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPU(s) ({cpu_model()}), Python {platform.python_version()}, "
        f"load average {load}, gc threshold {gc.get_threshold()}, frozen {gc.get_freeze_count():,}"
    )


@dataclass
class SystemCpu:
    """Machine-wide busy CPU time from /proc/stat, to tell how much other work shared the cores."""

    busy: float
    total: float

    @classmethod
    def now(cls) -> SystemCpu:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        total = sum(fields[:8])
        return cls(busy=(total - idle) / CLOCK_TICKS, total=total / CLOCK_TICKS)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (the sandbox), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib() -> int:
    """Current resident set size of this process (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@dataclass
class Probe:
    """CPU of the bot (this process), of the sandbox process and of the whole machine over a phase."""

    sandbox_pid: int | None
    wall0: float = field(init=False)
    bot0: float = field(init=False)
    loop0: float = field(init=False)
    sandbox0: float = field(init=False)
    system0: SystemCpu = field(init=False)

    def __post_init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.bot0 = time.process_time()
        self.loop0 = time.thread_time()
        self.sandbox0 = process_cpu(self.sandbox_pid) if self.sandbox_pid else 0.0
        self.system0 = SystemCpu.now()

    def stop(self) -> Usage:
        system = SystemCpu.now()
        return Usage(
            wall=time.perf_counter() - self.wall0,
            bot_cpu=time.process_time() - self.bot0,
            loop_cpu=time.thread_time() - self.loop0,
            sandbox_cpu=(process_cpu(self.sandbox_pid) - self.sandbox0) if self.sandbox_pid else 0.0,
            machine_busy=system.busy - self.system0.busy,
        )


@dataclass
class Usage:
    wall: float
    bot_cpu: float
    loop_cpu: float
    """CPU of the thread that started and stopped the probe (the event loop's). The rest of bot_cpu is
    other threads': aiosqlite runs each SQLite connection in a thread of its own."""
    sandbox_cpu: float
    machine_busy: float

    @property
    def others_cpu(self) -> float:
        """CPU seconds used by everything except the bot and the sandbox (other engineers' tests)."""
        return max(0.0, self.machine_busy - self.bot_cpu - self.sandbox_cpu)

    def describe(self) -> str:
        wall = max(self.wall, 1e-9)
        return (
            f"cores busy: bot {self.bot_cpu / wall:.2f}, sandbox {self.sandbox_cpu / wall:.2f}, "
            f"others {self.others_cpu / wall:.2f} (of {os.cpu_count()})"
        )


# -- sandboxes as child processes -----------------------------------------------------------


@dataclass
class ChildServer:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode} before answering")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.05)


@contextlib.contextmanager
def child_server(module: str, *args: str) -> Iterator[ChildServer]:
    """`python -m <module> --port P ...` on loopback; stopped (by its own pid) on exit."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(
            url + "/_sandbox/clock" if module.endswith("canvas") else url + "/_sandbox/calls", process
        )
        yield ChildServer(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def sandbox_canvas(latency: float = 0.0) -> contextlib.AbstractContextManager[ChildServer]:
    """The sandbox Canvas; with `latency`, behind bench.slow_canvas's fixed delay per API request."""
    if latency > 0:
        return child_server("bench.slow_canvas", "--latency", str(latency))
    return child_server("bot.sandbox.canvas")


def sandbox_slack(bot_token: str) -> contextlib.AbstractContextManager[ChildServer]:
    return child_server("bot.sandbox.slack", "--team", TEAM_ID, "--bot-token", bot_token)


def new_bot_token() -> str:
    return "xoxb-bench-" + secrets.token_hex(12)


def child_bot_package(env: dict[str, str], cwd: Path) -> Path:
    """The `bot` package a child `confbot run` imports with this environment (another checkout's, with
    a PYTHONPATH), so a figure says which code it measured."""
    found = subprocess.run(
        [sys.executable, "-c", "import bot; print(bot.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(found).resolve().parent


# -- database ------------------------------------------------------------------------------


@dataclass
class BenchDb:
    """A fresh SQLite file in a temporary directory plus the Fernet key its tokens are encrypted with."""

    directory: Path
    key: str

    @property
    def path(self) -> Path:
        return self.directory / "bench.db"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.path}"


@contextlib.contextmanager
def bench_db() -> Iterator[BenchDb]:
    with tempfile.TemporaryDirectory(prefix="confbot-bench-") as directory:
        yield BenchDb(Path(directory), Fernet.generate_key().decode())


def seed(db: BenchDb, canvas_url: str, users: int, *, due_in: float = -1.0) -> float:
    """Create `users` Canvas users and matching linked users in a child process; returns seconds taken.

    The Fernet key travels in the environment, never on the command line.
    """
    started = time.perf_counter()
    env = {**os.environ, "TOKEN_ENCRYPTION_KEYS": db.key}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.seed",
            "--db",
            str(db.path),
            "--canvas",
            canvas_url,
            "--users",
            str(users),
            "--due-in",
            str(due_in),
        ],
        env=env,
        check=True,
    )
    return time.perf_counter() - started


# -- PostgreSQL (the test server: trust auth, an admin database `test`; tests/pg.py uses it too) ----

PG_HOST = os.environ.get("CONFBOT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CONFBOT_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CONFBOT_TEST_PG_USER", "root")
PG_ADMIN_DATABASE = "test"


def pg_database_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    """SQLAlchemy URL of `database` (trust auth: no password)."""
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def pg_connect(database: str = PG_ADMIN_DATABASE) -> Any:
    """An asyncpg connection to `database` (the admin database by default)."""
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)


async def pg_admin(statement: str) -> None:
    connection = await pg_connect()
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_pg_database(prefix: str) -> str:
    """Create `<prefix>_<random>` and return its name (the name is generated, never user input)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_pg_database(name: str) -> None:
    """Drop it even if a killed bot process still holds connections (FORCE, PostgreSQL >= 13)."""
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- figures -------------------------------------------------------------------------------

POLL_GAP = 1.0
"""Requests of one token closer together than this are one poll (a poll's pages and look-ups)."""


def poll_starts(request_times: Sequence[float], gap: float = POLL_GAP) -> list[float]:
    """The start of each poll: requests less than `gap` after the previous request belong to its poll."""
    starts: list[float] = []
    previous: float | None = None
    for at in sorted(request_times):
        if previous is None or at - previous >= gap:
            starts.append(at)
        previous = at
    return starts


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 100 samples is the 99th value)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small Markdown table, so the output can be pasted into RESULTS.md as it is."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


# -- the bot -------------------------------------------------------------------------------


def bot_settings(
    db: BenchDb,
    canvas_url: str,
    *,
    interval: float,
    concurrency: int,
    slack_url: str | None = None,
    bot_token: str | None = None,
    signing_secret: str | None = None,
) -> Settings:
    """The Settings `confbot run` would read from the environment, for the sandbox on loopback."""
    overrides: dict[str, Any] = {
        "canvas_base_url": canvas_url,
        "database_url": db.url,
        "token_encryption_keys": db.key,
        "poll_interval_seconds": interval,
        "poll_concurrency": concurrency,
    }
    if slack_url is not None:
        overrides["slack_api_url"] = slack_url + "/api/"
    if bot_token is not None:
        overrides["slack_bot_token"] = bot_token
    if signing_secret is not None:
        overrides["slack_signing_secret"] = signing_secret
    return load_settings(**overrides)


def bot_env(settings: Settings, *, host: str, port: int) -> dict[str, str]:
    """The same settings as environment variables, for `confbot run` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANVAS_", "SLACK_", "DATABASE_"))}
    env.update(
        {
            "CANVAS_BASE_URL": settings.canvas_root,
            "DATABASE_URL": settings.database_url,
            "POLL_INTERVAL_SECONDS": str(settings.poll_interval_seconds),
            "POLL_CONCURRENCY": str(settings.poll_concurrency),
            "SLACK_API_URL": settings.slack_api_root,
            "HOST": host,
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
    )
    for name, secret in (
        ("TOKEN_ENCRYPTION_KEYS", settings.token_encryption_keys),
        ("SLACK_BOT_TOKEN", settings.slack_bot_token),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
    ):
        if secret is not None:
            env[name] = secret.get_secret_value()
    return env


def loadavg() -> str:
    """/proc/loadavg as it is: the machine is shared, so every figure carries the load it ran under."""
    return Path("/proc/loadavg").read_text().strip()


@dataclass
class BotChild:
    """`confbot run` (`python -m bot.cli run`) in a child process, as production runs it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def confbot_run(
    db: BenchDb, settings: Settings, *, limit: float = 60.0, extra_env: dict[str, str] | None = None
) -> Iterator[BotChild]:
    """Start `confbot run` on a free loopback port; yield once /healthz answers (any status: a poller
    still catching up may rightly say "degraded"); stop it by its own pid on exit. `extra_env` adds
    settings `bot_settings` does not take (e.g. SESSION_SCAN_INTERVAL_SECONDS)."""
    port = free_port()
    log_path = db.directory / "bot.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env={**bot_env(settings, host="127.0.0.1", port=port), **(extra_env or {})},
            cwd=db.directory,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    child = BotChild(process, port, log_path)
    try:
        deadline = time.monotonic() + limit
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"confbot run exited with {process.returncode}: {child.log()[-2000:]}")
            try:
                httpx.get(child.url + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("confbot run did not answer /healthz") from None
                time.sleep(0.1)
        yield child
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
