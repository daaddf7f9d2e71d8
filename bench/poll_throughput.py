"""(a)+(b)+(e) How fast one bot process polls N linked users, against a sequential poller and a ceiling.

For each N: a fresh sandbox Canvas process and a fresh SQLite DB with N linked users, all due now, plus
WARM_UP users the bot polls once beforehand in the same process (not counted) so that imports, caches
and pools are warm, as they are in a bot that has been running for a while.
  bot              `Poller.tick()` (built by `Runtime.build`, as `confbot run` does: its CanvasClient
                   sends on its own aiohttp.ClientSession) until all N were polled. Right after
                   Runtime.build the process applies the gc calls `confbot run` makes (read from the
                   bot.cli module: gc.freeze and the generation-0 threshold); they stay for later phases.
  ceiling aiohttp  the bot's HTTP stack with no bot code: a bare aiohttp.ClientSession at the same
                   concurrency, same URL, headers and token per user; reads and discards the body (no
                   decrypt, no parsing, no database).
  sequential       the straightforward poller: httpx.Client, one user after another (decrypt, GET, parse
                   with the bot's model, record last_poll_at), on a sample of the users.
  variants         the bot again at other POLL_CONCURRENCY values (same users, made due again).

    python -m bench.poll_throughput --users 1000 10000 [--concurrency 200] [--variants 50 500] [--profile F]
    python -m bench.poll_throughput --users 10000 --latency 0.1 --variants 500   # a Canvas 100 ms away

--concurrency defaults to POLL_CONCURRENCY's shipped default (bot/config.py).
--latency puts every API request of every phase behind a fixed delay (bench.slow_canvas), as a remote
Canvas is; on plain loopback the sandbox answers at once and only CPU decides throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import httpx

from bench.common import (
    BenchDb,
    ChildServer,
    Probe,
    Usage,
    apply_cli_gc,
    bench_db,
    bot_settings,
    machine_line,
    peak_rss_kib,
    rss_kib,
    sandbox_canvas,
    seed,
    shipped_concurrency,
    table,
    verdict,
)
from bot.canvas.errors import strip_json_prefix
from bot.domain.models import ConferenceList
from bot.runtime import Runtime
from bot.store.crypto import TokenCipher

LIVE_PATH = "/api/v1/conferences"
LIVE_PARAMS = {"state": "live", "per_page": "100"}
HEADERS = {"User-Agent": "confbot/0.1", "Accept": "application/json"}
WARM_UP = 300
"""Users polled once before the measured bot phase (and never counted): see warm_up()."""


@dataclass
class Phase:
    name: str
    polls: int
    usage: Usage
    errors: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0

    @property
    def rate(self) -> float:
        return self.polls / max(self.usage.wall, 1e-9)

    @property
    def bot_cpu_ms(self) -> float:
        return 1000 * self.usage.bot_cpu / max(self.polls, 1)

    @property
    def sandbox_cpu_ms(self) -> float:
        return 1000 * self.usage.sandbox_cpu / max(self.polls, 1)

    @property
    def rss_per_user_bytes(self) -> float:
        return 1024 * (self.rss_after_kib - self.rss_before_kib) / max(self.polls, 1)


def _tokens(db: BenchDb) -> list[str]:
    """Plaintext tokens of the measured users, in order (kept in memory only, never printed)."""
    cipher = TokenCipher([db.key])
    with sqlite3.connect(db.path) as connection:
        sql = "SELECT access_token_enc FROM linked_users WHERE id > ? ORDER BY id"
        rows = connection.execute(sql, (WARM_UP,)).fetchall()
    return [cipher.decrypt(blob) for (blob,) in rows]


def _poll_state(db: BenchDb) -> tuple[int, int]:
    """(users polled successfully, users whose last poll failed) according to the database."""
    with sqlite3.connect(db.path) as connection:
        ok = connection.execute("SELECT count(*) FROM linked_users WHERE last_success_at IS NOT NULL")
        failed = connection.execute("SELECT count(*) FROM linked_users WHERE last_error IS NOT NULL")
        return int(ok.fetchone()[0]), int(failed.fetchone()[0])


def make_due(db: BenchDb) -> None:
    """Put every user back to "never polled" so the next run does the same work (which users are due is
    the pollers' in-memory schedule since issue 14: see `poll_now`)."""
    with sqlite3.connect(db.path) as connection:
        connection.execute(
            "UPDATE linked_users SET last_poll_at = NULL, last_success_at = NULL, last_error = NULL, "
            "consecutive_failures = 0, poll_requested_at = NULL"
        )


async def start_polling(runtime: Runtime) -> None:
    """Take the bucket leases and load the schedules, as the first poll tick of `confbot run` does (with
    the bench's hour-long interval nothing but the first unit of the pass is due yet)."""
    await runtime.leases.renew()
    now = datetime.now(UTC)
    for poller in runtime.pollers:
        await poller.sync(now)


def poll_now(runtime: Runtime, unit_ids: range) -> None:
    """Make these users due now in the pollers' schedules."""
    for poller in runtime.pollers:
        poller.poll_now(unit_ids)


async def tick_all(runtime: Runtime) -> int:
    """One poll tick of every poller Runtime.build made (users and channel subscriptions), waiting until
    every poll it started is written (a tick itself returns once the due units are claimed)."""
    claimed = sum(await asyncio.gather(*(poller.tick() for poller in runtime.pollers)))
    await asyncio.gather(*(poller.settle() for poller in runtime.pollers))
    return claimed


async def run_bot(
    db: BenchDb,
    canvas: ChildServer,
    users: int,
    concurrency: int,
    profile: cProfile.Profile | None = None,
    *,
    warm: bool = True,
) -> Phase:
    """Build the bot as `confbot run` does and tick until `users` were polled.

    With `warm`, the same Runtime first polls the WARM_UP users once (not counted): imports, the
    engine's compiled-statement cache and the connection pools are then warm, as in a bot that has
    been running for a while, so a 1,000-user figure is not mostly one-off start-up cost.
    """
    # A long interval: each user is polled exactly once even if the full pass takes minutes.
    settings = bot_settings(db, canvas.url, interval=3600, concurrency=concurrency)
    runtime = Runtime.build(settings)
    apply_cli_gc()  # as `confbot run` does right after Runtime.build
    try:
        await start_polling(runtime)
        if warm:
            poll_now(runtime, range(1, WARM_UP + 1))
            await tick_all(runtime)
            make_due(db)
        poll_now(runtime, range(WARM_UP + 1, WARM_UP + users + 1))
        rss_before = rss_kib()
        probe = Probe(canvas.pid)
        if profile is not None:
            profile.enable()
        polled = 0
        while polled < users:
            done = await tick_all(runtime)
            if done == 0:
                break
            polled += done
        if profile is not None:
            profile.disable()
        usage = probe.stop()
        rss_after = rss_kib()
    finally:
        await runtime.close()
    ok, failed = _poll_state(db)
    name = f"bot (Poller.tick), concurrency {concurrency}"
    return Phase(name, ok, usage, failed + (users - ok), rss_before, rss_after)


async def _drive(
    canvas: ChildServer, tokens: list[str], concurrency: int, get: Callable[[str], Awaitable[int]]
) -> tuple[Usage, int]:
    """`concurrency` workers share one iterator of tokens; returns the usage and the non-200 count."""
    queue: Iterator[str] = iter(tokens)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for token in queue:
            errors += await get(token) != 200

    probe = Probe(canvas.pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return probe.stop(), errors


async def run_ceiling_aiohttp(canvas: ChildServer, tokens: list[str], concurrency: int) -> Phase:
    """A bare aiohttp.ClientSession, the bot's HTTP stack: the same requests without any bot code."""
    url = canvas.url + LIVE_PATH
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def get(token: str) -> int:
            headers = {**HEADERS, "Authorization": f"Bearer {token}"}
            async with session.get(url, params=LIVE_PARAMS, headers=headers) as response:
                await response.read()
                return response.status

        usage, errors = await _drive(canvas, tokens, concurrency, get)
    return Phase("ceiling: bare aiohttp.ClientSession", len(tokens), usage, errors)


def run_sequential(db: BenchDb, canvas: ChildServer, sample: int) -> Phase:
    """What a first, obvious implementation does: a for loop over users with a blocking client."""
    cipher = TokenCipher([db.key])
    errors = 0
    with sqlite3.connect(db.path) as connection:
        rows = connection.execute(
            "SELECT id, access_token_enc FROM linked_users ORDER BY id DESC LIMIT ?", (sample,)
        ).fetchall()
        with httpx.Client(base_url=canvas.url, timeout=30) as client:
            probe = Probe(canvas.pid)
            for uid, blob in rows:
                token = cipher.decrypt(blob)
                response = client.get(
                    LIVE_PATH, params=LIVE_PARAMS, headers={"Authorization": f"Bearer {token}"}
                )
                if response.status_code == 200:
                    ConferenceList.model_validate_json(strip_json_prefix(response.content))
                else:
                    errors += 1
                connection.execute(
                    "UPDATE linked_users SET last_poll_at = datetime('now') WHERE id = ?", (uid,)
                )
            connection.commit()
            usage = probe.stop()
    return Phase("sequential (httpx.Client)", len(rows), usage, errors)


def measure(
    users: int,
    concurrency: int,
    sequential_sample: int,
    profile: cProfile.Profile | None,
    variants: list[int],
    latency: float = 0.0,
) -> list[Phase]:
    """[bot, ceiling aiohttp, sequential, *variants], all against one sandbox process."""
    with sandbox_canvas(latency) as canvas, bench_db() as db:
        seconds = seed(db, canvas.url, WARM_UP + users)
        print(
            f"  seeded {WARM_UP:,} + {users:,} users in {seconds:.1f}s (sandbox Canvas pid {canvas.pid})",
            flush=True,
        )
        bot = asyncio.run(run_bot(db, canvas, users, concurrency, profile))
        print(f"  bot done in {bot.usage.wall:.1f}s", flush=True)
        tokens = _tokens(db)
        bare = asyncio.run(run_ceiling_aiohttp(canvas, tokens, concurrency))
        print(f"  ceiling (bare aiohttp) done in {bare.usage.wall:.1f}s", flush=True)
        del tokens
        sequential = run_sequential(db, canvas, min(users, sequential_sample))
        print(f"  sequential done in {sequential.usage.wall:.1f}s", flush=True)
        phases = [bot, bare, sequential]
        for variant in variants:
            make_due(db)
            phase = asyncio.run(run_bot(db, canvas, users, variant))
            print(f"  variant {phase.name} done in {phase.usage.wall:.1f}s", flush=True)
            phases.append(phase)
    return phases


def report(users: int, concurrency: int, phases: list[Phase], latency: float = 0.0) -> str:
    bot, bare, sequential = phases[:3]
    headers = [
        "phase",
        "polls",
        "errors",
        "wall s",
        "polls/s",
        "client CPU ms/poll",
        "sandbox CPU ms/req",
        "CPU",
        "bot vs this",
    ]
    rows = [
        [
            p.name,
            p.polls,
            p.errors,
            round(p.usage.wall, 2),
            round(p.rate),
            p.bot_cpu_ms,
            p.sandbox_cpu_ms,
            p.usage.describe(),
            "-" if p is bot else f"{bot.rate / p.rate:.0%}",
        ]
        for p in phases
    ]
    where = f", Canvas latency {1000 * latency:g} ms" if latency else ", loopback"
    title = f"### {users:,} linked users, concurrency {concurrency}{where}"
    lines = [title, "", table(headers, rows[:3]), ""]
    seconds_100k = 100_000 / bot.rate
    ratio_seq = bot.rate / sequential.rate
    checks: list[tuple[str, str, bool]] = [
        (
            "100k users / 60 s (one replica)",
            (
                f"{bot.usage.wall:.0f} s for 100k (measured)"
                if users >= 100_000
                else f"{seconds_100k:.0f} s for 100k (EXTRAPOLATED from {users:,} users)"
            ),
            (bot.usage.wall if users >= 100_000 else seconds_100k) <= 60,
        ),
        ("bot CPU <= 0.3 ms/poll", f"{bot.bot_cpu_ms:.3f} ms", bot.bot_cpu_ms <= 0.3),
        ("bot / sequential >= 20x", f"{ratio_seq:.2f}x", ratio_seq >= 20),
        (
            "bot / ceiling (bare aiohttp) >= 70%",
            f"{bot.rate / bare.rate:.0%} (CPU: {bare.bot_cpu_ms / bot.bot_cpu_ms:.0%})",
            bot.rate / bare.rate >= 0.7,
        ),
        (
            f"RSS <= 2 KB/user (after a {WARM_UP}-user warm-up)",
            f"{bot.rss_per_user_bytes:,.0f} B/user ({bot.rss_before_kib:,} -> {bot.rss_after_kib:,} KiB, "
            f"peak {peak_rss_kib():,} KiB)",
            bot.rss_per_user_bytes <= 2048,
        ),
    ]
    lines.append(table(["target", "measured", "verdict"], [[a, b, verdict(c)] for a, b, c in checks]))
    lines.append(
        "\n(CPU: the ceiling's client CPU per request over the bot's CPU per poll, the rate ratio an idle"
        " machine would show when both are CPU-bound; the verdict uses the measured rates.)"
    )
    if users > sequential.polls:
        lines.append(f"\n(sequential rate measured on a sample of {sequential.polls:,} users)")
    if len(phases) > 3:
        lines += ["", "POLL_CONCURRENCY variants (same users made due again, same sandbox):", ""]
        variant_rows = [
            [*r[:-1], f"{p.rate / bare.rate:.0%} of the aiohttp ceiling"]
            for r, p in zip(rows[3:], phases[3:], strict=True)
        ]
        lines.append(table([*headers[:-1], "vs ceiling"], variant_rows))
    return "\n".join(lines)


def print_profile(profile: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    out.write("\n--- by own time ---\n")
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[1000])
    parser.add_argument(
        "--concurrency", type=int, default=shipped_concurrency(), help="POLL_CONCURRENCY (default as shipped)"
    )
    parser.add_argument(
        "--sequential-sample",
        type=int,
        help="users the sequential poller polls (default 2000; with --latency, about 20 s worth)",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds of Canvas latency per request (default none)"
    )
    parser.add_argument(
        "--variants",
        type=int,
        nargs="*",
        default=[50, 500],
        help="other POLL_CONCURRENCY values to run the bot at (none: --variants with no value)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the bot phase, write the top functions here"
    )
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    for users in args.users:
        profile = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        sample = args.sequential_sample or (2000 if not args.latency else max(50, int(20 / args.latency)))
        phases = measure(users, args.concurrency, sample, profile, args.variants, args.latency)
        print(report(users, args.concurrency, phases, args.latency))
        print(f"(run took {time.perf_counter() - started:.0f}s; {machine_line()})\n", flush=True)
        if profile is not None:
            print("(the bot phase ran under cProfile: its CPU and rate figures include the profiler)")
            with open(args.profile, "w") as handle:
                handle.write(print_profile(profile, 40))
            print(f"profile of the bot phase written to {args.profile}")


if __name__ == "__main__":
    main()
