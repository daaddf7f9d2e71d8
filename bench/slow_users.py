"""Issue 9: do healthy users keep their poll period and alert latency while 1% of users are slow?

N linked users (default 10,000); a random 1% of them sit behind a Canvas that takes `--slow-seconds`
(default 10 s) to answer every API request: the sandbox Canvas's own per-token "delay" fault, which
holds the request server-side and then answers normally, so the slow users' polls succeed (under the
bot's CANVAS_TIMEOUT_SECONDS, default 15) but take 10 s. The bot is the real `confbot run` in a
child process (as bench.ack_latency runs it), at `--interval` seconds (POLL_INTERVAL_SECONDS).

Phases:
  warm-up   the bot starts with every user due; wait until every healthy user was polled once.
  measure   a window of `--measure` seconds. Meanwhile conferences start, one per sampled healthy
            user (own course each), at random moments over the first `--window` seconds; then wait
            until their alerts reached the sandbox Slack (at most `--alert-wait` after the last start).
Figures, for the healthy users only (the slow 1% are shown beside them for context):
  poll period    the time between two consecutive polls of the same user, read from the sandbox
                 Canvas's request log (arrival time of each API request per token; requests less than
                 POLL_GAP s apart are one poll). A user whose open gap at the window's end already
                 exceeds the target counts that gap too (a lower bound of a period that missed), so a
                 user stalled for the whole window cannot hide by being polled only once.
  alert latency  Slack sandbox's chat.postMessage time minus the moment the start request was sent
                 (both time.time() on this machine); an alert that never came counts as infinite.
                 Split in two: waiting for the poll (start -> the user's first Canvas request after
                 it, from the request log) and poll -> Slack (that request -> chat.postMessage: the
                 poll's own time, the write, the outbox and the dispatcher).
Target: both p99 <= interval + 2 s.

    python -m bench.slow_users                       # 10,000 users, interval 10 s, ~5 min
    python -m bench.slow_users --quick               # 1,000 users, shorter (CI smoke)
    python -m bench.slow_users --users 10000 --interval 10 --measure 120 --sample 100

The bot runs from the `bot` package this process imports: the header prints where the child
process's `bot` comes from (set PYTHONPATH to measure another checkout, e.g. a git worktree).
"""

from __future__ import annotations

import argparse
import math
import random
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import httpx

import bot
from bench.common import (
    TEAM_ID,
    BenchDb,
    SystemCpu,
    bench_db,
    bot_env,
    bot_settings,
    child_bot_package,
    machine_line,
    new_bot_token,
    percentile,
    poll_starts,
    process_cpu,
    sandbox_canvas,
    sandbox_slack,
    seed,
    shipped_concurrency,
    table,
    verdict,
)
from bot.sandbox.server import free_port
from bot.store.crypto import TokenCipher

SLACK_MARGIN = 2.0
"""The target: period and alert latency p99 within interval + this."""
FAULT_COUNT = 1_000_000_000
"""A fault's `count` large enough to last the whole run."""


@dataclass(frozen=True, slots=True)
class Member:
    canvas_user_id: int
    slack_user_id: str
    token: str  # kept in memory only; never printed


@dataclass(frozen=True, slots=True)
class Periods:
    """Poll periods of a group of users over the measurement window."""

    users: int
    polls: int
    gaps: list[float]
    """Observed gaps between consecutive polls, plus open gaps at the window's end above the target."""
    unpolled: int
    """Users with no poll at all inside the window."""
    longest_without_poll: float
    """Longest stretch any user of the group went without a poll, the open end included."""


# -- pure logic ---------------------------------------------------------------------------------


def user_gaps(starts: Sequence[float], window: tuple[float, float]) -> tuple[list[float], float, int]:
    """(closed gaps that end inside the window, the open gap at the window's end, polls in window).

    The last poll before the window opens the first gap, so a gap that straddles the window's start
    is counted; the open gap runs from the last poll (or the window's start) to the window's end.
    """
    begin, end = window
    before = [s for s in starts if s < begin]
    inside = [s for s in starts if begin <= s <= end]
    chain = ([before[-1]] if before else []) + inside
    closed = [b - a for a, b in pairwise(chain)]
    last = chain[-1] if chain else begin
    return closed, end - last, len(inside)


def periods(
    times_by_token: dict[str, list[float]],
    tokens: Sequence[str],
    window: tuple[float, float],
    target: float,
) -> Periods:
    gaps: list[float] = []
    polls = unpolled = 0
    longest = 0.0
    for token in tokens:
        closed, open_end, polled = user_gaps(poll_starts(times_by_token.get(token, [])), window)
        gaps.extend(closed)
        if open_end > target:
            gaps.append(open_end)  # already longer than the target: a period that missed it
        polls += polled
        unpolled += polled == 0
        longest = max(longest, open_end, *closed)
    return Periods(len(tokens), polls, gaps, unpolled, longest)


def alert_latencies(starts: dict[int, float], calls: list[dict[str, object]]) -> dict[int, float]:
    """Conference id -> seconds from its start to the first chat.postMessage carrying its join link."""
    found: dict[int, float] = {}
    for call in calls:
        args = call.get("args")
        text = str(args.get("text", "")) if isinstance(args, dict) else ""
        for conference_id, started in starts.items():
            if conference_id not in found and f"/conferences/{conference_id}/join" in text:
                at = call.get("at")
                assert isinstance(at, (int, float))
                found[conference_id] = float(at) - started
    return found


def first_request_after(request_times: Sequence[float], at: float) -> float | None:
    """The first request at or after `at`: the poll whose live list can show a conference started at `at`."""
    return min((t for t in request_times if t >= at), default=None)


@dataclass(frozen=True, slots=True)
class AlertSplit:
    """Where an alert's latency went: waiting for the user's next poll, the poll until its outbox row
    was committed, and that row until Slack had the DM."""

    wait_for_poll: list[float]
    poll_to_outbox: list[float]
    outbox_to_slack: list[float]


def alert_split(
    starts: dict[int, float],
    latencies: dict[int, float],
    token_of: dict[int, str],
    times_by_token: dict[str, list[float]],
    enqueued: dict[int, float],
) -> AlertSplit:
    """Per arrived alert, from its start: the first request of its user after it (the poll that can see
    it), the outbox row's created_at (`enqueued`, epoch seconds), and the chat.postMessage."""
    split = AlertSplit([], [], [])
    for conference_id, latency in latencies.items():
        started = starts[conference_id]
        polled = first_request_after(times_by_token.get(token_of[conference_id], []), started)
        queued = enqueued.get(conference_id)
        if polled is None or queued is None or not started <= polled <= queued <= started + latency:
            continue  # not all three moments seen in order: nothing to split
        split.wait_for_poll.append(polled - started)
        split.poll_to_outbox.append(queued - polled)
        split.outbox_to_slack.append(started + latency - queued)
    return split


def enqueued_at(db_path: Path) -> dict[int, float]:
    """Conference id -> when its "started" outbox row was written (created_at, naive UTC), epoch s."""
    with sqlite3.connect(db_path, timeout=30) as connection:
        rows = connection.execute(
            "SELECT conference_id, min(created_at) FROM outbox WHERE event = 'started' GROUP BY conference_id"
        ).fetchall()
    return {
        int(cid): datetime.fromisoformat(str(at)).replace(tzinfo=UTC).timestamp()
        for cid, at in rows
        if cid is not None
    }


# -- the world ----------------------------------------------------------------------------------


def members(db: BenchDb) -> list[Member]:
    cipher = TokenCipher([db.key])
    with sqlite3.connect(db.path) as connection:
        rows = connection.execute(
            "SELECT canvas_user_id, slack_user_id, access_token_enc FROM linked_users ORDER BY id"
        ).fetchall()
    return [Member(int(c), str(s), cipher.decrypt(blob)) for c, s, blob in rows]


def make_slow(canvas: httpx.Client, slow: Sequence[Member], seconds: float) -> None:
    """Every API request of these users' tokens waits `seconds` in the sandbox, then answers."""
    for member in slow:
        canvas.post(
            "/_sandbox/faults",
            json={"kind": "delay", "seconds": seconds, "token": member.token, "count": FAULT_COUNT},
        ).raise_for_status()


def conferences_for(canvas: httpx.Client, slack: httpx.Client, sample: Sequence[Member]) -> dict[int, int]:
    """One course and one not-yet-started conference per sampled user; canvas user id -> conference id."""
    made: dict[int, int] = {}
    for index, member in enumerate(sample):
        slack.post(
            "/_sandbox/users", json={"id": member.slack_user_id, "team_id": TEAM_ID}
        ).raise_for_status()
        course = canvas.post("/_sandbox/courses", json={"name": f"Slow-users course {index}"}).json()
        canvas.post(
            f"/_sandbox/courses/{course['id']}/enrollments",
            json={"user_id": member.canvas_user_id, "type": "StudentEnrollment"},
        ).raise_for_status()
        conference = canvas.post(
            "/_sandbox/conferences",
            json={
                "context_type": "Course",
                "context_id": course["id"],
                "title": f"Slow-users lecture {index}",
                "user_ids": [member.canvas_user_id],
            },
        )
        conference.raise_for_status()
        made[member.canvas_user_id] = int(conference.json()["id"])
    return made


# -- the bot process ---------------------------------------------------------------------------


def where_bot_comes_from(env: dict[str, str], cwd: Path) -> str:
    """Which `bot` package the child `confbot run` imports, and that checkout's commit."""
    package = child_bot_package(env, cwd)
    tree = package.parent
    head = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
    ).stdout.strip()
    porcelain = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "bot"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    changed = [line[3:] for line in porcelain.splitlines() if line.strip()]
    state = f"uncommitted in bot/: {', '.join(changed)}" if changed else "bot/ clean"
    child = package / "__init__.py"
    return f"bot (child confbot run): {child}; bench process: {bot.__file__}; git {head[:80]!r}, {state}"


def wait_answering(url: str, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    """Any answer from /healthz means the bot is up (a stalled poller may rightly say "degraded")."""
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        try:
            httpx.get(url + "/healthz", timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError("the bot did not answer /healthz") from None
            time.sleep(0.1)


def tracebacks(log: str) -> list[str]:
    """The exception line of each traceback in the bot's log: the first unindented line after it."""
    lines = log.splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if line.startswith("Traceback"):
            closing = (x for x in lines[index + 1 :] if x and not x[0].isspace())
            found.append(next(closing, "(log ends inside a traceback)"))
    return found


def request_counts(canvas: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = canvas.get("/_sandbox/requests").json()["by_token"]
    return counts


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


@dataclass
class Cpu:
    """Cores used by the bot, the sandboxes and everything else (other engineers) over the window."""

    pids: dict[str, int]

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.before = {name: process_cpu(pid) for name, pid in self.pids.items()}
        self.system = SystemCpu.now()

    def describe(self) -> str:
        wall = max(time.monotonic() - self.started, 1e-9)
        used = {name: process_cpu(pid) - self.before[name] for name, pid in self.pids.items()}
        others = max(0.0, SystemCpu.now().busy - self.system.busy - sum(used.values()))
        parts = [f"{name} {seconds / wall:.2f}" for name, seconds in used.items()]
        return f"cores busy: {', '.join(parts)}, others {others / wall:.2f}"


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    window: tuple[float, float]
    times_by_token: dict[str, list[float]]
    starts: dict[int, float]
    latencies: dict[int, float]
    warm_up: float
    warm_up_complete: bool
    cpu: str
    load_during: list[str]
    token_of: dict[int, str]
    """Conference id -> the token of the user whose poll should see it start (never printed)."""
    enqueued: dict[int, float] = field(default_factory=dict)


def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    target = args.interval + SLACK_MARGIN
    bot_token, secret = new_bot_token(), secrets.token_hex(16)
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seconds = seed(db, canvas.url, args.users)
        everyone = members(db)
        slow = rng.sample(everyone, round(args.users * args.slow_share))
        slow_tokens = {m.token for m in slow}
        healthy = [m for m in everyone if m.token not in slow_tokens]
        sample = rng.sample(healthy, min(args.sample, len(healthy)))
        with (
            httpx.Client(base_url=canvas.url, timeout=60) as canvas_http,
            httpx.Client(base_url=slack.url, timeout=60) as slack_http,
        ):
            make_slow(canvas_http, slow, args.slow_seconds)
            conference_of = conferences_for(canvas_http, slack_http, sample)
            print(
                f"seeded {args.users:,} users in {seconds:.1f}s; {len(slow):,} slow "
                f"({args.slow_seconds:g} s per Canvas request), {len(sample)} conferences to start",
                flush=True,
            )
            settings = bot_settings(
                db,
                canvas.url,
                interval=args.interval,
                concurrency=shipped_concurrency(),
                slack_url=slack.url,
                bot_token=bot_token,
                signing_secret=secret,
            )
            port = free_port()
            env = bot_env(settings, host="127.0.0.1", port=port)
            env["CANVAS_TIMEOUT_SECONDS"] = str(args.canvas_timeout)
            env["LOG_LEVEL"] = args.log_level
            print(where_bot_comes_from(env, db.directory), flush=True)
            print(
                f"settings: POLL_INTERVAL_SECONDS={args.interval:g}, CANVAS_TIMEOUT_SECONDS="
                f"{args.canvas_timeout:g}, POLL_CONCURRENCY={settings.poll_concurrency}",
                flush=True,
            )
            log_path = db.directory / "bot.log"
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "run"],
                    env=env,
                    cwd=db.directory,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
                try:
                    outcome = drive(
                        args,
                        canvas_http,
                        slack_http,
                        process,
                        f"http://127.0.0.1:{port}",
                        healthy,
                        sample,
                        conference_of,
                        {"bot": process.pid, "canvas": canvas.pid, "slack": slack.pid},
                        rng,
                    )
                finally:
                    running_log = log_path.stat().st_size  # what it logged before being told to stop
                    process.terminate()
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait(timeout=10)
            errors = tracebacks(log_path.read_bytes()[:running_log].decode(errors="replace"))
            outcome.enqueued = enqueued_at(db.path)
            if args.keep_log:
                shutil.copyfile(log_path, args.keep_log)
    report(args, target, outcome, healthy, slow, errors)


def drive(
    args: argparse.Namespace,
    canvas: httpx.Client,
    slack: httpx.Client,
    process: subprocess.Popen[bytes],
    bot_url: str,
    healthy: list[Member],
    sample: list[Member],
    conference_of: dict[int, int],
    pids: dict[str, int],
    rng: random.Random,
) -> Outcome:
    wait_answering(bot_url, process)
    began = time.monotonic()
    healthy_tokens = [m.token for m in healthy]
    complete = False
    while time.monotonic() - began < args.warm_up_limit:
        counts = request_counts(canvas)
        if all(counts.get(token, 0) > 0 for token in healthy_tokens):
            complete = True
            break
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode} during the warm-up")
        time.sleep(1.0)
    warm_up = time.monotonic() - began
    print(
        f"warm-up: {'every healthy user polled once' if complete else 'INCOMPLETE'} after {warm_up:.0f}s; "
        f"load {loadavg()}",
        flush=True,
    )
    cpu = Cpu(pids)
    load_during = [loadavg()]
    window_start = time.time()
    window_end = window_start + args.measure
    offsets = sorted(rng.uniform(0, min(args.window, args.measure)) for _ in sample)
    starts: dict[int, float] = {}
    for member, offset in zip(sample, offsets, strict=True):
        time.sleep(max(0.0, window_start + offset - time.time()))
        conference_id = conference_of[member.canvas_user_id]
        starts[conference_id] = time.time()
        canvas.post(f"/_sandbox/conferences/{conference_id}/start").raise_for_status()
    load_during.append(loadavg())
    alert_deadline = max(starts.values(), default=window_start) + args.alert_wait
    latencies: dict[int, float] = {}
    while True:
        now = time.time()
        calls = slack.get("/_sandbox/calls", params={"method": "chat.postMessage"}).json()["calls"]
        latencies = alert_latencies(starts, calls)
        if now >= window_end and (len(latencies) == len(starts) or now >= alert_deadline):
            break
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode} during the window")
        time.sleep(0.5)
    load_during.append(loadavg())
    cpu_line = cpu.describe()
    times: dict[str, list[float]] = canvas.get("/_sandbox/requests", params={"times": "1"}).json()[
        "times_by_token"
    ]
    token_of = {conference_of[m.canvas_user_id]: m.token for m in sample}
    return Outcome(
        (window_start, window_end),
        times,
        starts,
        latencies,
        warm_up,
        complete,
        cpu_line,
        load_during,
        token_of,
    )


def report(
    args: argparse.Namespace,
    target: float,
    outcome: Outcome,
    healthy: list[Member],
    slow: list[Member],
    errors: list[str],
) -> None:
    healthy_periods = periods(outcome.times_by_token, [m.token for m in healthy], outcome.window, target)
    slow_periods = periods(outcome.times_by_token, [m.token for m in slow], outcome.window, target)
    found = [outcome.latencies.get(cid, math.inf) for cid in outcome.starts]
    missing = sum(1 for value in found if math.isinf(value))
    print(
        f"\n### Slow users: {args.users:,} users, {len(slow):,} ({args.slow_share:.0%}) behind a "
        f"{args.slow_seconds:g} s Canvas, interval {args.interval:g} s, CANVAS_TIMEOUT_SECONDS "
        f"{args.canvas_timeout:g}, window {args.measure:g} s after a {outcome.warm_up:.0f} s warm-up\n"
    )
    rows = []
    for name, group in (("healthy", healthy_periods), ("slow (context)", slow_periods)):
        rows.append(
            [
                name,
                group.users,
                group.polls,
                group.unpolled,
                percentile(group.gaps, 50),
                percentile(group.gaps, 99),
                max(group.gaps, default=math.nan),
                group.longest_without_poll,
            ]
        )
    print(
        table(
            [
                "users",
                "count",
                "polls in window",
                "not polled in window",
                "period p50 s",
                "period p99 s",
                "period max s",
                "longest without a poll s",
            ],
            rows,
        )
    )
    print()
    print(
        table(
            ["alerts (healthy users)", "started", "arrived", "p50 s", "p99 s", "max s"],
            [
                [
                    "conference start -> Slack DM",
                    len(found),
                    len(found) - missing,
                    percentile(found, 50),
                    percentile(found, 99),
                    max(found, default=math.nan),
                ]
            ],
        )
    )
    split = alert_split(
        outcome.starts, outcome.latencies, outcome.token_of, outcome.times_by_token, outcome.enqueued
    )
    print()
    print(
        table(
            ["alert latency, split", "alerts", "p50 s", "p99 s", "max s"],
            [
                [
                    name,
                    len(values),
                    percentile(values, 50),
                    percentile(values, 99),
                    max(values, default=math.nan),
                ]
                for name, values in (
                    ("start -> the user's next poll (Canvas request log)", split.wait_for_poll),
                    ("that poll -> its outbox row committed (poll, writer)", split.poll_to_outbox),
                    ("outbox row -> Slack DM (wake, dispatch, post)", split.outbox_to_slack),
                )
            ],
        )
    )
    period_p99 = percentile(healthy_periods.gaps, 99)
    alert_p99 = percentile(found, 99)
    print()
    print(
        table(
            ["target (healthy users)", "measured", "verdict"],
            [
                [f"poll period p99 <= {target:g} s", f"{period_p99:.2f} s", verdict(period_p99 <= target)],
                [
                    f"alert latency p99 <= {target:g} s",
                    f"{alert_p99:.2f} s" + (f" ({missing} never arrived)" if missing else ""),
                    verdict(alert_p99 <= target),
                ],
            ],
        )
    )
    print(
        f"\n(period: gaps between a user's consecutive polls in the window, plus open gaps at its end "
        f"already longer than {target:g} s; an alert that never arrived within {args.alert_wait:g} s of "
        f"the last start counts as infinite)"
    )
    if not outcome.warm_up_complete:
        print(f"WARNING: not every healthy user was polled within the {args.warm_up_limit:g} s warm-up")
    if errors:
        print(f"WARNING: while running, the bot logged {len(errors)} traceback(s), ending in:")
        for line, count in Counter(errors).most_common(5):
            print(f"  {count} x {line[:200]}")
    print(f"{outcome.cpu}; load average during the window: {' -> '.join(outcome.load_during)}")
    print(f"({machine_line()})")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,000 users, 20 alerts, a 3-interval window (CI smoke)"
    )
    parser.add_argument("--users", type=int, help="linked users (default 10,000; --quick 1,000)")
    parser.add_argument("--slow-share", type=float, default=0.01, help="share of users behind a slow Canvas")
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="seconds each slow request takes")
    parser.add_argument("--interval", type=float, default=10.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--canvas-timeout", type=float, default=15.0, help="CANVAS_TIMEOUT_SECONDS")
    parser.add_argument(
        "--measure", type=float, help="measurement window, s (default 12 intervals; --quick 3)"
    )
    parser.add_argument(
        "--window", type=float, help="conference starts spread over this many s (default half)"
    )
    parser.add_argument(
        "--sample", type=int, help="healthy users whose conference starts (default 100; --quick 20)"
    )
    parser.add_argument(
        "--alert-wait",
        type=float,
        help="wait for alerts after the last start (default 15 intervals; --quick 3)",
    )
    parser.add_argument("--warm-up-limit", type=float, default=300.0, help="give up the warm-up after this")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--log-level", default="WARNING", help="the bot's LOG_LEVEL")
    parser.add_argument("--keep-log", type=Path, help="copy the bot's log here (it never holds a token)")
    args = parser.parse_args(argv)
    args.users = args.users or (1000 if args.quick else 10_000)
    args.measure = args.measure or args.interval * (3 if args.quick else 12)
    args.window = args.window or args.measure / 2
    args.sample = args.sample or (20 if args.quick else 100)
    args.alert_wait = args.alert_wait or args.interval * (3 if args.quick else 15)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    print(machine_line(), flush=True)
    print(f"load: {loadavg()}", flush=True)
    run(args)


if __name__ == "__main__":
    main()
