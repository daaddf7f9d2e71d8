"""Issue 14's figures, one run each: real `confbot run` replicas against the sandbox Canvas and Slack.

N linked users (all due at once), Canvas `--latency` seconds away (bench.slow_canvas), `--replicas` 1 or 2
processes of `confbot run` (`python -m bot.cli run`) sharing one SQLite file or one PostgreSQL database
(`confbot_bench_<random>`, created and dropped here). Phases:
  first pass  from start until the sandbox Canvas has seen every user's token once: the capacity with
              every user due at once (users / first pass = polls/s the replicas can do).
  measure     a window of `--duration` seconds right after; with `--kill`, replica 2 is SIGKILLed
              `--kill-at` seconds into it.
Figures over the window (polls counted in the sandbox Canvas's log of live-poll requests, which keeps a
killed replica's polls up to the kill; the bots' own `confbot_polls_total` beside it as a check):
  polls/s, and the pass time it implies (users / polls/s: at steady state about the interval, since a
      bot that keeps up polls each user once an interval and no faster).
  poll lag    a live replica's lag as /healthz reports it (now - its most overdue unit's due time, from
              its in-memory schedule; the gauge `confbot_poll_lag_seconds` says the same), sampled every
              second: p50 / p99 / max of the samples. /metrics is read every 15 s, as Prometheus would.
  poll period each user's time between two consecutive polls, from the sandbox Canvas's request log.
  first-pass CPU per poll the replicas' CPU from /healthz to the first pass's end / users: the busy
                          figure (the projection uses it).
  bot CPU per poll        utime + stime (/proc/<pid>/stat) of the replicas over the window / polls; a
                          killed replica counts up to its last sample before the kill.
  sandbox CPU per poll    the same for the sandbox Canvas (with its latency layer) and Slack processes,
                          which share this machine's cores with the bots.
  PG rows written / poll  pg_stat_user_tables n_tup_ins + n_tup_upd + n_tup_del of the bench database,
                          delta over the window / polls (PostgreSQL flushes these about once a second).
  PG CPU per poll         /proc CPU of the backends serving the bench database (pg_stat_activity, client
                          backends and autovacuum workers), sampled every 0.5 s so backends that exit are
                          counted up to their last sample, / polls. pg_stat_statements is used only when
                          it is loaded (shared_preload_libraries); on this machine it is not.
  after the kill          for every user, its first poll after the kill - the kill, and - its last poll
                          before the kill; the max over ALL users (the request log does not say which
                          replica asked, so this bounds the killed replica's users from above), and how
                          many users' gap exceeded 1.1 intervals. "Polled" here is "its request reached
                          Canvas": a poll in flight at the kill counts though its result was never
                          written (with row claims that user's next recorded poll is an interval later).

    python -m bench.scale --users 2000 --interval 30 --latency 0.1 --replicas 2 --database postgres
    python -m bench.scale --replicas 2 --database postgres --kill
    python -m bench.scale --quick                        # CI smoke: 300 users, SQLite, ~15 s
    python -m bench.scale --project --from run.json      # 1M users every 30 s from a run's figures

It prints one line of JSON (`{"bench": "scale", ...}`) and a Markdown table. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    BenchDb,
    ChildServer,
    SystemCpu,
    bench_db,
    bot_env,
    bot_settings,
    child_bot_package,
    create_pg_database,
    drop_pg_database,
    loadavg,
    machine_line,
    new_bot_token,
    percentile,
    pg_connect,
    pg_database_url,
    poll_starts,
    process_cpu,
    sandbox_canvas,
    sandbox_slack,
    shipped_concurrency,
    table,
)
from bot.sandbox.server import free_port

SAMPLE_SECONDS = 0.5
METRICS_EVERY_SECONDS = 15.0
"""How often the /metrics page is read during the window, as a Prometheus scrape would (each page costs
the bot four aggregate queries: read every second, it was about 2% of the bot's CPU). The poll lag is
sampled every second from /healthz, which reads it from memory."""
PG_STATS_SETTLE_SECONDS = 11.0


# -- the projection (pure arithmetic) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    users: int
    interval: float
    polls_per_second: float
    per_replica_rate: float
    replicas: int
    bot_cpu_ms: float
    bot_cores: float
    pg_cpu_ms: float | None
    pg_cores: float | None
    rows_per_poll: float | None
    rows_per_second: float | None

    def arithmetic(self) -> list[str]:
        """Each figure with the sum that gives it, so a reader can check it by hand."""
        lines = [
            f"polls/s needed   = {self.users:,} users / {self.interval:g} s = {self.polls_per_second:,.0f}",
            f"replicas         = ceil({self.polls_per_second:,.0f} / {self.per_replica_rate:,.0f} "
            f"polls/s per replica) = {self.replicas}",
            f"bot cores        = {self.polls_per_second:,.0f} x {self.bot_cpu_ms:.3f} ms "
            f"= {self.bot_cores:,.1f}",
        ]
        if self.pg_cpu_ms is not None and self.pg_cores is not None:
            lines.append(
                f"PostgreSQL cores = {self.polls_per_second:,.0f} x {self.pg_cpu_ms:.3f} ms "
                f"= {self.pg_cores:,.1f}"
            )
        if self.rows_per_poll is not None and self.rows_per_second is not None:
            lines.append(
                f"rows written/s   = {self.polls_per_second:,.0f} x {self.rows_per_poll:.3f} = "
                f"{self.rows_per_second:,.0f}"
            )
        return lines


def project(
    *,
    users: int,
    interval: float,
    per_replica_rate: float,
    bot_cpu_ms: float,
    pg_cpu_ms: float | None = None,
    rows_per_poll: float | None = None,
) -> Projection:
    """Replicas and PostgreSQL cores for `users` polled every `interval` s, from per-poll figures:
    replicas = polls/s needed / polls/s one replica does; cores = polls/s x CPU per poll."""
    rate = users / interval
    return Projection(
        users=users,
        interval=interval,
        polls_per_second=rate,
        per_replica_rate=per_replica_rate,
        replicas=max(1, math.ceil(rate / per_replica_rate - 1e-9)),
        bot_cpu_ms=bot_cpu_ms,
        bot_cores=rate * bot_cpu_ms / 1000,
        pg_cpu_ms=pg_cpu_ms,
        pg_cores=None if pg_cpu_ms is None else rate * pg_cpu_ms / 1000,
        rows_per_poll=rows_per_poll,
        rows_per_second=None if rows_per_poll is None else rate * rows_per_poll,
    )


def after_kill(
    times_by_token: dict[str, list[float]], kill: float, end: float
) -> tuple[list[float], list[float], int]:
    """For each user: (first poll after `kill`) - kill, and that poll - its last poll before the kill.
    Users not polled between the kill and `end` are counted apart (their wait is at least end - kill)."""
    waits: list[float] = []
    gaps: list[float] = []
    unpolled = 0
    for times in times_by_token.values():
        before = [t for t in times if t <= kill]
        after = [t for t in times if kill < t <= end]
        if not after:
            unpolled += 1
            continue
        waits.append(after[0] - kill)
        if before:
            gaps.append(after[0] - before[-1])
    return waits, gaps, unpolled


# -- processes -------------------------------------------------------------------------------------


@dataclass
class Replica:
    index: int
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    killed_at: float | None = None
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (time.time(), cpu seconds)
    polls: list[tuple[float, float]] = field(default_factory=list)  # (time.time(), confbot_polls user)
    failures: list[tuple[float, float]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.killed_at is None and self.process.poll() is None


def start_replica(index: int, env: dict[str, str], directory: Path) -> Replica:
    port = free_port()
    log_path = directory / f"bot-{index}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env={**env, "PORT": str(port)},
            cwd=directory,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Replica(index, process, port, log_path)


def stop(replica: Replica) -> None:
    if replica.process.poll() is not None:
        return
    replica.process.terminate()
    try:
        replica.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait(timeout=10)


def wait_healthy(replica: Replica, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        if replica.process.poll() is not None:
            tail = replica.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"replica {replica.index} exited with {replica.process.returncode}: {tail}")
        try:
            httpx.get(replica.url + "/healthz", timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {replica.index} did not answer /healthz") from None
            time.sleep(0.1)


# -- the database ----------------------------------------------------------------------------------


@dataclass
class Database:
    kind: str
    url: str
    name: str | None  # PostgreSQL database name


@contextlib.contextmanager
def database(kind: str, db: BenchDb) -> Iterator[Database]:
    if kind == "sqlite":
        yield Database("sqlite", db.url, None)
        return
    name = create_pg_database("confbot_bench")
    try:
        yield Database("postgres", pg_database_url(name), name)
    finally:
        drop_pg_database(name)


def seed_users(
    target: Database, db: BenchDb, canvas_url: str, users: int, scan_interval: float, due_spread: float
) -> float:
    """bench.seed in a child process (the Fernet key in the environment, never on the command line).
    Every user is due to be polled now (or, with `due_spread`, at random within that many seconds); their
    session scans are spread over the scan interval, as in a bot that has run for a while (all due at
    once, they would crowd the first pass)."""
    started = time.perf_counter()
    where = ["--db", str(db.path)] if target.kind == "sqlite" else ["--url", target.url]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.seed",
            *where,
            "--canvas",
            canvas_url,
            "--users",
            str(users),
            "--due-in",
            "-1",
            "--scan-spread",
            str(scan_interval),
            "--due-spread",
            str(due_spread),
        ],
        env={**os.environ, "TOKEN_ENCRYPTION_KEYS": db.key},
        check=True,
    )
    return time.perf_counter() - started


@dataclass
class PgProbe:
    """Rows written and backend CPU of one PostgreSQL database, sampled while the bench runs."""

    connection: Any
    name: str
    own_pid: int = 0
    first_seen: dict[int, float] = field(default_factory=dict)
    last_seen: dict[int, float] = field(default_factory=dict)
    background_first: dict[int, float] = field(default_factory=dict)
    background_last: dict[int, float] = field(default_factory=dict)
    statements: bool = False

    @classmethod
    async def open(cls, name: str) -> PgProbe:
        connection = await pg_connect(name)
        probe = cls(connection, name)
        probe.own_pid = await connection.fetchval("SELECT pg_backend_pid()")
        preload = str(await connection.fetchval("SHOW shared_preload_libraries"))
        probe.statements = "pg_stat_statements" in preload
        return probe

    async def rows_written(self) -> dict[str, int]:
        """Rows inserted, updated or deleted so far, per table of the bench database."""
        rows = await self.connection.fetch(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS written FROM pg_stat_user_tables"
        )
        return {str(row["relname"]): int(row["written"]) for row in rows}

    async def sample(self, *, baseline: bool = False) -> None:
        """CPU so far of every backend of this database (and, apart, of the server's shared processes).
        With `baseline`, what they had used before the window: not counted."""
        rows = await self.connection.fetch("SELECT pid, datname FROM pg_stat_activity")
        for row in rows:
            pid = int(row["pid"])
            if pid == self.own_pid:
                continue
            try:
                used = process_cpu(pid)
            except (OSError, IndexError, ValueError):
                continue
            if row["datname"] == self.name:
                first, last = self.first_seen, self.last_seen
            elif row["datname"] is None:
                first, last = self.background_first, self.background_last
            else:
                continue  # other databases: other engineers' tests
            if pid not in first:
                first[pid] = used if baseline else 0.0  # born in the window: all its CPU counts
            last[pid] = used

    def backend_cpu(self) -> float:
        return sum(self.last_seen[pid] - self.first_seen[pid] for pid in self.last_seen)

    def background_cpu(self) -> float:
        return sum(self.background_last[pid] - self.background_first[pid] for pid in self.background_last)

    async def close(self) -> None:
        await self.connection.close()


# -- sampling the bots -----------------------------------------------------------------------------


def user_polls(text: str) -> tuple[float, float]:
    """(user polls, failed user polls) from a /metrics page (`confbot_polls_total{kind="user"}`)."""
    polls = failed = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "confbot_polls":
            continue
        for sample in family.samples:
            if sample.name == "confbot_polls_total" and sample.labels.get("kind") == "user":
                polls += sample.value
                if sample.labels.get("result") != "ok":
                    failed += sample.value
    return polls, failed


def gauge(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None


@dataclass
class Window:
    start: float = 0.0
    end: float = 0.0
    kill: float | None = None
    lag: list[float] = field(default_factory=list)
    limit: list[float] = field(default_factory=list)
    canvas_cpu: float = 0.0
    slack_cpu: float = 0.0
    machine_busy: float = 0.0
    rows: int | None = None
    rows_by_table: dict[str, int] = field(default_factory=dict)
    pg_cpu: float | None = None
    pg_background_cpu: float | None = None
    load_start: str = ""
    load_end: str = ""


def sample_cpu(replica: Replica) -> None:
    with contextlib.suppress(OSError, IndexError):
        replica.cpu.append((time.time(), process_cpu(replica.process.pid)))


async def scrape(client: httpx.AsyncClient, replica: Replica, window: Window, *, record_gauges: bool) -> None:
    """One /metrics page: its user poll counters, and with `record_gauges` the concurrency limit."""
    now = time.time()
    sample_cpu(replica)
    try:
        text = (await client.get(replica.url + "/metrics", timeout=5)).text
    except (OSError, httpx.HTTPError, IndexError):
        return
    polls, failed = user_polls(text)
    replica.polls.append((now, polls))
    replica.failures.append((now, failed))
    if record_gauges:
        limit = gauge(text, "confbot_poll_concurrency_limit")
        if limit is not None:
            window.limit.append(limit)


async def sample_lag(client: httpx.AsyncClient, replica: Replica, window: Window) -> None:
    """The replica's poll lag (its most overdue unit, from memory) as /healthz reports it."""
    sample_cpu(replica)
    try:
        lag = (await client.get(replica.url + "/healthz", timeout=5)).json().get("poll_lag_seconds")
    except (OSError, httpx.HTTPError, ValueError):
        return
    if isinstance(lag, int | float):
        window.lag.append(float(lag))


def delta_in(series: list[tuple[float, float]], start: float, end: float) -> float:
    """Last value at or before `end` minus the first at or after `start` (counters of one process)."""
    inside = [value for at, value in series if start <= at <= end]
    return inside[-1] - inside[0] if len(inside) >= 2 else 0.0


async def measure(
    args: argparse.Namespace,
    replicas: list[Replica],
    canvas: ChildServer,
    slack: ChildServer,
    target: Database,
) -> Window:
    window = Window()
    pg = await PgProbe.open(target.name) if target.name else None
    async with httpx.AsyncClient() as client:

        async def sample_all(*, every_page: bool = True) -> None:
            """Every live replica's CPU and the first one's lag; with `every_page`, every /metrics page."""
            alive = [r for r in replicas if r.alive]
            for replica in alive[1:]:
                sample_cpu(replica)
            if alive:
                await sample_lag(client, alive[0], window)
            if every_page:
                await asyncio.gather(*(scrape(client, r, window, record_gauges=r is alive[0]) for r in alive))

        window.load_start = loadavg()
        window.start = time.time()
        rows0 = await pg.rows_written() if pg else None
        if pg:
            await pg.sample(baseline=True)
        canvas0, slack0, system0 = process_cpu(canvas.pid), process_cpu(slack.pid), SystemCpu.now()
        await sample_all()
        deadline = window.start + args.duration
        kill_at = window.start + args.kill_at if args.kill else None
        next_scrape, next_page = 0.0, window.start + METRICS_EVERY_SECONDS
        while (now := time.time()) < deadline:
            if kill_at is not None and window.kill is None and now >= kill_at:
                victim = replicas[-1]
                await sample_all()  # its last figures, just before
                victim.process.send_signal(signal.SIGKILL)
                victim.killed_at = window.kill = time.time()
                print(
                    f"killed replica {victim.index} (SIGKILL) at +{window.kill - window.start:.1f}s",
                    flush=True,
                )
            if pg:
                await pg.sample()
            if now >= next_scrape:
                await sample_all(every_page=now >= next_page)
                next_scrape = now + 1.0
                if now >= next_page:
                    next_page = now + METRICS_EVERY_SECONDS
            for replica in replicas:
                if replica.killed_at is None and replica.process.poll() is not None:
                    raise RuntimeError(f"replica {replica.index} exited with {replica.process.returncode}")
            await asyncio.sleep(SAMPLE_SECONDS)
        await sample_all()
        window.end = time.time()
        window.canvas_cpu = process_cpu(canvas.pid) - canvas0
        window.slack_cpu = process_cpu(slack.pid) - slack0
        window.machine_busy = SystemCpu.now().busy - system0.busy
        if pg:
            await pg.sample()
            await asyncio.sleep(1.5)  # backends flush their table counters about once a second
            rows1 = await pg.rows_written()
            window.rows_by_table = {
                table: written - (rows0 or {}).get(table, 0)
                for table, written in rows1.items()
                if written - (rows0 or {}).get(table, 0)
            }
            window.rows = sum(window.rows_by_table.values())
            window.pg_cpu = pg.backend_cpu()
            window.pg_background_cpu = pg.background_cpu()
            await pg.close()
        window.load_end = loadavg()
    return window


def request_log(canvas: httpx.Client) -> dict[str, list[float]]:
    """Arrival times of each user's live-poll requests (the session scan's listings left out)."""
    answer = canvas.get("/_sandbox/requests", params={"times": "live"}).json()
    times: dict[str, list[float]] = answer.get("times_by_token", {})
    return times


def wait_first_pass(canvas: httpx.Client, users: int, replicas: list[Replica], limit: float) -> bool:
    """Until every user's token reached the sandbox Canvas once (or `limit` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        counts: dict[str, int] = canvas.get("/_sandbox/requests").json()["by_token"]
        if sum(1 for n in counts.values() if n > 0) >= users:
            return True
        for replica in replicas:
            if replica.process.poll() is not None:
                raise RuntimeError(f"replica {replica.index} exited with {replica.process.returncode}")
        time.sleep(2.0)  # each look is a JSON of every token: not too often at 100k users
    return False


# -- the run ---------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    bot_token, secret = new_bot_token(), secrets.token_hex(16)
    print(machine_line(), flush=True)
    with (
        sandbox_canvas(args.latency) as canvas,
        sandbox_slack(bot_token) as slack,
        bench_db() as db,
        database(args.database, db) as target,
    ):
        seeded = seed_users(
            target, db, canvas.url, args.users, args.scan_interval, args.interval if args.spread else 0.0
        )
        print(f"seeded {args.users:,} users in {seeded:.1f}s ({args.database})", flush=True)
        settings = bot_settings(
            db,
            canvas.url,
            interval=args.interval,
            concurrency=args.concurrency,
            slack_url=slack.url,
            bot_token=bot_token,
            signing_secret=secret,
        )
        env = bot_env(settings, host="127.0.0.1", port=0)
        env["DATABASE_URL"] = target.url
        env["SESSION_SCAN_INTERVAL_SECONDS"] = str(args.scan_interval)
        if args.bot_pythonpath:
            env["PYTHONPATH"] = args.bot_pythonpath
        print(f"bot package of the replicas: {child_bot_package(env, db.directory)}", flush=True)
        replicas: list[Replica] = []
        try:
            with httpx.Client(base_url=canvas.url, timeout=120) as canvas_http:
                started = time.time()
                replicas = [start_replica(i + 1, env, db.directory) for i in range(args.replicas)]
                for replica in replicas:
                    wait_healthy(replica)
                cpu0 = sum(process_cpu(r.process.pid) for r in replicas)
                complete = wait_first_pass(canvas_http, args.users, replicas, args.first_pass_limit)
                first_pass_cpu = sum(process_cpu(r.process.pid) for r in replicas) - cpu0
                if target.kind == "postgres":
                    # A backend that wrote less than a second ago flushes its table counters only when
                    # it has been idle PGSTAT_IDLE_INTERVAL (10 s): without this wait the first pass's
                    # writes land in the window's rows per poll (about +0.4 a poll at 2,000 users).
                    time.sleep(PG_STATS_SETTLE_SECONDS)
                window = asyncio.run(measure(args, replicas, canvas, slack, target))
                times = request_log(canvas_http)
        finally:
            for replica in replicas:
                stop(replica)
        logs = [r.log_path.read_text(errors="replace") for r in replicas]
        errors = sum(log.count("Traceback") for log in logs)
        for log in logs:  # each traceback's log line and exception, so a run that logged one says what
            for line in logged_failures(log):
                print(line, flush=True)
    return figures(args, started, complete, first_pass_cpu, window, times, replicas, errors)


def logged_failures(log: str) -> list[str]:
    """For each traceback in a replica's log: the log line that introduced it and its exception line
    (the last unindented line of the traceback), without the frames in between."""
    failures: list[str] = []
    lines = log.splitlines()
    for index, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        header = lines[index - 1] if index > 0 else ""
        end = index + 1
        while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
            end += 1
        exception = lines[end] if end < len(lines) else "(traceback cut off)"
        failures.append(f"{header[:300]}\n    -> {exception[:300]}")
    return failures


def figures(
    args: argparse.Namespace,
    started: float,
    complete: bool,
    first_pass_cpu: float,
    window: Window,
    times: dict[str, list[float]],
    replicas: list[Replica],
    errors: int,
) -> dict[str, Any]:
    firsts = sorted(min(ts) for ts in times.values() if ts)
    # With --spread the first polls are spread over an interval on purpose: no capacity figure.
    first_pass = (firsts[-1] - firsts[0]) if complete and firsts and not args.spread else None
    start, end = window.start, window.end
    seconds = end - start
    polls_by_metrics = sum(delta_in(r.polls, start, (r.killed_at or end)) for r in replicas)
    # Every poll asks for the live list once (one page here): the sandbox's log counts the polls of a
    # killed replica too, up to the kill.
    polls = sum(1 for ts in times.values() for t in ts if start <= t <= end)
    failed = sum(delta_in(r.failures, start, (r.killed_at or end)) for r in replicas)
    bot_cpu = sum(delta_in(r.cpu, start, (r.killed_at or end)) for r in replicas)
    periods = [
        b - a for ts in times.values() for a, b in pairwise(poll_starts([t for t in ts if start <= t <= end]))
    ]
    per_poll = 1000 / polls if polls else float("nan")
    result: dict[str, Any] = {
        "bench": "scale",
        "users": args.users,
        "interval": args.interval,
        "latency": args.latency,
        "replicas": args.replicas,
        "database": args.database,
        "concurrency_ceiling": args.concurrency,
        "duration": round(seconds, 1),
        "first_pass_s": None if first_pass is None else round(first_pass, 2),
        "first_pass_polls_per_s": None if not first_pass else round(args.users / first_pass, 1),
        "first_pass_bot_cpu_ms_per_poll": _r(1000 * first_pass_cpu / args.users, 4)
        if first_pass is not None
        else None,
        "start_to_first_pass_s": round(firsts[-1] - started, 2) if complete and firsts else None,
        "polls": int(polls),
        "polls_by_metrics": int(polls_by_metrics),
        "failed_polls": int(failed),
        "polls_per_s": round(polls / seconds, 1),
        "pass_time_s": round(args.users / (polls / seconds), 2) if polls else None,
        "poll_lag_p50_s": _r(percentile(window.lag, 50)),
        "poll_lag_p99_s": _r(percentile(window.lag, 99)),
        "poll_lag_max_s": _r(max(window.lag, default=float("nan"))),
        "poll_period_p50_s": _r(percentile(periods, 50)),
        "poll_period_p99_s": _r(percentile(periods, 99)),
        "poll_period_max_s": _r(max(periods, default=float("nan"))),
        "concurrency_limit_p50": _r(percentile(window.limit, 50)) if window.limit else None,
        "bot_cpu_ms_per_poll": _r(bot_cpu * per_poll, 4),
        "bot_cores": _r(bot_cpu / seconds),
        "canvas_cpu_ms_per_poll": _r(window.canvas_cpu * per_poll, 4),
        "canvas_cores": _r(window.canvas_cpu / seconds),
        "slack_cores": _r(window.slack_cpu / seconds),
        "pg_rows_per_poll": None
        if window.rows is None
        else _r(window.rows / polls if polls else float("nan"), 4),
        "pg_rows_per_poll_by_table": {
            table: _r(written / polls, 4) for table, written in sorted(window.rows_by_table.items())
        }
        if polls and window.rows is not None
        else None,
        "pg_cpu_ms_per_poll": None if window.pg_cpu is None else _r(window.pg_cpu * per_poll, 4),
        "pg_cpu_source": None if window.pg_cpu is None else "backends' /proc/<pid>/stat, sampled every 0.5 s",
        "pg_cores": None if window.pg_cpu is None else _r(window.pg_cpu / seconds),
        "pg_shared_processes_cores": None
        if window.pg_background_cpu is None
        else _r(window.pg_background_cpu / seconds),
        "others_cores": _r(
            max(
                0.0,
                window.machine_busy
                - bot_cpu
                - window.canvas_cpu
                - window.slack_cpu
                - (window.pg_cpu or 0.0)
                - (window.pg_background_cpu or 0.0),
            )
            / seconds
        ),
        "tracebacks_in_logs": errors,
        "load": f"{window.load_start} -> {window.load_end}",
    }
    if window.kill is not None:
        waits, gaps, unpolled = after_kill(times, window.kill, end)
        result.update(
            {
                "kill_at_s": round(window.kill - start, 1),
                "after_kill_wait_max_s": _r(max(waits, default=float("nan"))),
                "after_kill_wait_p99_s": _r(percentile(waits, 99)),
                "after_kill_gap_max_s": _r(max(gaps, default=float("nan"))),
                # Polls lost with the killed replica: claimed (next_poll_at already an interval on) but
                # not yet sent to Canvas, so the next one comes a whole interval later.
                "after_kill_gaps_over_1_1_interval": sum(1 for gap in gaps if gap > 1.1 * args.interval),
                "after_kill_unpolled_users": unpolled,
                "after_kill_window_s": round(end - window.kill, 1),
            }
        )
    return result


def _r(value: float, digits: int = 3) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def human(result: dict[str, Any]) -> str:
    rows = [(key, "-" if value is None else value) for key, value in result.items() if key != "bench"]
    return table(["figure", "value"], rows)


def busy_cpu_ms(figures: dict[str, Any]) -> float | None:
    """Bot CPU per poll for the projection: the first pass's (every user due at once, the bots busy),
    since at a small steady rate the fixed costs (ticks, counts, the bench's own /metrics scrapes) are
    shared by few polls; the window's when there was no complete first pass."""
    value = figures.get("first_pass_bot_cpu_ms_per_poll") or figures.get("bot_cpu_ms_per_poll")
    return None if value is None else float(value)


def projection_from(args: argparse.Namespace) -> Projection:
    figures: dict[str, Any] = {}
    if args.source:
        lines = [line for line in Path(args.source).read_text().splitlines() if line.startswith("{")]
        figures = json.loads(lines[-1])
    per_replica = args.per_replica_rate or (
        figures["first_pass_polls_per_s"] / figures["replicas"]
        if figures.get("first_pass_polls_per_s")
        else None
    )
    bot_cpu = args.bot_cpu_ms if args.bot_cpu_ms is not None else busy_cpu_ms(figures)
    if per_replica is None or bot_cpu is None:
        raise SystemExit("--project needs --from RUN.json or --per-replica-rate and --bot-cpu-ms")
    return project(
        users=args.target_users,
        interval=args.target_interval,
        per_replica_rate=per_replica,
        bot_cpu_ms=bot_cpu,
        pg_cpu_ms=args.pg_cpu_ms if args.pg_cpu_ms is not None else figures.get("pg_cpu_ms_per_poll"),
        rows_per_poll=args.rows_per_poll
        if args.rows_per_poll is not None
        else figures.get("pg_rows_per_poll"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=30.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument(
        "--latency", type=float, default=0.1, help="seconds the sandbox Canvas adds to each API request"
    )
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured after the first pass")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="users first due at random over one interval (a steady state from the start: every user's "
        "phase random, as after days of running) instead of all at once (the first pass)",
    )
    parser.add_argument(
        "--kill", action="store_true", help="SIGKILL replica 2 during the window (2 replicas)"
    )
    parser.add_argument(
        "--kill-at", type=float, default=None, help="seconds into the window (default: a third)"
    )
    parser.add_argument("--concurrency", type=int, default=shipped_concurrency(), help="POLL_CONCURRENCY")
    parser.add_argument(
        "--bot-pythonpath",
        help="PYTHONPATH of the replicas only (another checkout's bot); sandboxes and bench stay on this one",
    )
    parser.add_argument("--first-pass-limit", type=float, default=600.0)
    parser.add_argument("--scan-interval", type=float, default=600.0, help="SESSION_SCAN_INTERVAL_SECONDS")
    parser.add_argument("--quick", action="store_true", help="300 users, interval 5 s, 8 s window (CI)")
    parser.add_argument("--json", dest="json_path", help="also write the JSON line to this file")
    group = parser.add_argument_group("projection (--project)")
    group.add_argument("--project", action="store_true", help="project replicas and PostgreSQL cores only")
    group.add_argument("--from", dest="source", help="a file whose last JSON line is a run's figures")
    group.add_argument("--target-users", type=int, default=1_000_000)
    group.add_argument("--target-interval", type=float, default=30.0)
    group.add_argument(
        "--per-replica-rate", type=float, help="polls/s one replica does (default: the run's first pass)"
    )
    group.add_argument("--bot-cpu-ms", type=float)
    group.add_argument("--pg-cpu-ms", type=float)
    group.add_argument("--rows-per-poll", type=float)
    args = parser.parse_args(argv)
    if args.project:
        print("\n".join(projection_from(args).arithmetic()))
        return 0
    if args.quick:
        args.users, args.interval, args.latency, args.duration = 300, 5.0, 0.05, 8.0
    if args.kill and args.replicas != 2:
        parser.error("--kill needs --replicas 2")
    if args.kill_at is None:
        args.kill_at = args.duration / 3
    result = run(args)
    line = json.dumps(result)
    print(line)
    if args.json_path:
        Path(args.json_path).write_text(line + "\n")
    print(human(result))
    if result.get("first_pass_polls_per_s"):
        projected = project(
            users=args.target_users,
            interval=args.target_interval,
            per_replica_rate=result["first_pass_polls_per_s"] / args.replicas,
            bot_cpu_ms=busy_cpu_ms(result) or float("nan"),
            pg_cpu_ms=result["pg_cpu_ms_per_poll"],
            rows_per_poll=result["pg_rows_per_poll"],
        )
        print(f"\nprojection ({args.target_users:,} users every {args.target_interval:g} s, from this run):")
        print("\n".join(projected.arithmetic()))
        cpu = busy_cpu_ms(result)
        print(
            f"(a replica's rate is bounded by POLL_CONCURRENCY / latency = {args.concurrency} / "
            f"{args.latency:g} s = {args.concurrency / args.latency:,.0f} polls/s with a fixed ceiling, "
            f"and by one core / CPU per poll = 1000 / {cpu or float('nan'):.3f} ms = "
            f"{1000 / cpu if cpu else float('nan'):,.0f} polls/s; a first pass of a few thousand users is "
            "mostly ramp-up, so measure the rate at full size)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
