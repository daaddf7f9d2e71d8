"""(a)+(b)+(e) How fast one bot process polls N linked users, against a sequential poller and the ceiling.

For each N: a fresh sandbox Canvas process and a fresh SQLite DB with N linked users, all due now.
  bot         `Poller.tick()` (built by `Runtime.build`, as `confbot run` does) until all N were polled.
  ceiling     httpx.AsyncClient, same concurrency and pool, same URL and token per user; reads and
              discards the body: no decrypt, no parsing, no database. What the sandbox process sustains.
  sequential  the straightforward poller: httpx.Client, one user after another (decrypt, GET, parse
              with the bot's model, record last_poll_at), on a sample of the users.

    python -m bench.poll_throughput --users 1000 10000 [--concurrency 50] [--profile out.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import io
import pstats
import sqlite3
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import httpx

from bench.aiohttp_transport import AiohttpTransport
from bench.common import (
    BenchDb,
    ChildServer,
    Probe,
    Usage,
    bench_db,
    bot_settings,
    machine_line,
    peak_rss_kib,
    rss_kib,
    sandbox_canvas,
    seed,
    table,
    verdict,
)
from bot.canvas.client import CanvasClient
from bot.canvas.errors import strip_json_prefix
from bot.canvas.models import ConferenceList
from bot.runtime import Runtime
from bot.store.crypto import TokenCipher

LIVE_PATH = "/api/v1/conferences"
LIVE_PARAMS = {"state": "live", "per_page": "100"}


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


def _tokens(db: BenchDb, limit: int | None = None) -> list[tuple[int, str]]:
    """Plaintext tokens by linked-user id (kept in memory only, never printed)."""
    cipher = TokenCipher([db.key])
    with sqlite3.connect(db.path) as connection:
        sql = "SELECT id, access_token_enc FROM linked_users ORDER BY id"
        rows = connection.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    return [(int(uid), cipher.decrypt(blob)) for uid, blob in rows]


def _poll_state(db: BenchDb) -> tuple[int, int]:
    """(users polled successfully, users whose last poll failed) according to the database."""
    with sqlite3.connect(db.path) as connection:
        ok = connection.execute("SELECT count(*) FROM linked_users WHERE last_success_at IS NOT NULL")
        failed = connection.execute("SELECT count(*) FROM linked_users WHERE last_error IS NOT NULL")
        return int(ok.fetchone()[0]), int(failed.fetchone()[0])


def _make_due(db: BenchDb) -> None:
    """Put every user back to "due now, never polled" so the next variant does the same work."""
    with sqlite3.connect(db.path) as connection:
        connection.execute(
            "UPDATE linked_users SET next_poll_at = datetime('now', '-1 second'), last_poll_at = NULL, "
            "last_success_at = NULL, last_error = NULL, consecutive_failures = 0"
        )


@contextlib.contextmanager
def aiohttp_canvas(clients: list[httpx.AsyncClient]) -> Iterator[None]:
    """While Runtime.build runs, hand it a CanvasClient whose httpx client sends through aiohttp.

    Everything else is wired by Runtime.build itself, so the variant differs only in the transport.
    """

    def factory(
        base_url: str, *, max_connections: int = 100, timeout: float = 15.0, **kwargs: Any
    ) -> CanvasClient:
        http = httpx.AsyncClient(
            transport=AiohttpTransport(limit=max_connections, timeout=timeout), timeout=timeout
        )
        clients.append(http)
        return CanvasClient(base_url, http=http, **kwargs)

    with mock.patch("bot.runtime.CanvasClient", factory):
        yield


async def tick_all(runtime: Runtime) -> int:
    """One poll tick of every poller Runtime.build made (users and channel subscriptions)."""
    return sum(await asyncio.gather(*(poller.tick() for poller in runtime.pollers)))


@contextlib.contextmanager
def sniffio_importable() -> Iterator[None]:
    """Make `import sniffio` succeed, as installing the package would.

    httpcore 1.0.9 runs `import sniffio` on every lock it takes; anyio 4 no longer pulls sniffio in,
    so each of those imports fails after a full sys.path scan. A stand-in module answering "asyncio"
    shows what adding `sniffio` to the dependencies would save, without touching the shared venv.
    """
    if importlib.util.find_spec("sniffio") is not None:
        yield
        return
    stub = types.ModuleType("sniffio")
    stub.current_async_library = lambda: "asyncio"  # type: ignore[attr-defined]
    sys.modules["sniffio"] = stub
    try:
        yield
    finally:
        del sys.modules["sniffio"]


async def run_bot(
    db: BenchDb,
    canvas: ChildServer,
    users: int,
    concurrency: int,
    profile: cProfile.Profile | None = None,
    *,
    transport: str = "httpx",
) -> Phase:
    # A long interval: each user is polled exactly once even if the full pass takes minutes.
    settings = bot_settings(db, canvas.url, interval=3600, concurrency=concurrency)
    extra: list[httpx.AsyncClient] = []
    with aiohttp_canvas(extra) if transport == "aiohttp" else contextlib.nullcontext():
        runtime = Runtime.build(settings)
    stub = sniffio_importable() if transport == "httpx+sniffio" else contextlib.nullcontext()
    try:
        stub.__enter__()
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
        stub.__exit__(None, None, None)
        for http in extra:
            await http.aclose()
        await runtime.close()
    ok, failed = _poll_state(db)
    name = f"bot (Poller.tick), {transport}, concurrency {concurrency}"
    return Phase(name, ok, usage, failed + (users - ok), rss_before, rss_after)


async def run_ceiling(canvas: ChildServer, tokens: list[tuple[int, str]], concurrency: int) -> Phase:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    errors = 0
    queue = iter(tokens)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _uid, token in queue:
            response = await client.get(
                LIVE_PATH, params=LIVE_PARAMS, headers={"Authorization": f"Bearer {token}"}
            )
            await response.aread()
            errors += response.status_code != 200

    async with httpx.AsyncClient(base_url=canvas.url, limits=limits, timeout=30) as client:
        probe = Probe(canvas.pid)
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        usage = probe.stop()
    return Phase("ceiling (bare AsyncClient)", len(tokens), usage, errors)


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
    experiments: list[tuple[int, str]],
) -> list[Phase]:
    with sandbox_canvas() as canvas, bench_db() as db:
        seconds = seed(db, canvas.url, users)
        print(f"  seeded {users:,} users in {seconds:.1f}s (sandbox Canvas pid {canvas.pid})", flush=True)
        bot = asyncio.run(run_bot(db, canvas, users, concurrency, profile))
        print(f"  bot done in {bot.usage.wall:.1f}s", flush=True)
        tokens = _tokens(db)
        ceiling = asyncio.run(run_ceiling(canvas, tokens, concurrency))
        del tokens
        print(f"  ceiling done in {ceiling.usage.wall:.1f}s", flush=True)
        sequential = run_sequential(db, canvas, min(users, sequential_sample))
        print(f"  sequential done in {sequential.usage.wall:.1f}s", flush=True)
        phases = [bot, ceiling, sequential]
        for variant_concurrency, transport in experiments:
            _make_due(db)
            phase = asyncio.run(run_bot(db, canvas, users, variant_concurrency, transport=transport))
            print(f"  experiment {phase.name} done in {phase.usage.wall:.1f}s", flush=True)
            phases.append(phase)
    return phases


def report(users: int, concurrency: int, phases: list[Phase]) -> str:
    bot, ceiling, sequential = phases[:3]
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
        ]
        for p in phases
    ]
    headers = [
        "phase",
        "polls",
        "errors",
        "wall s",
        "polls/s",
        "bot CPU ms/poll",
        "sandbox CPU ms/req",
        "CPU",
    ]
    lines = [f"### {users:,} linked users, concurrency {concurrency}", "", table(headers, rows[:3]), ""]
    seconds_100k = 100_000 / bot.rate
    ratio_seq = bot.rate / sequential.rate
    ratio_ceiling = bot.rate / ceiling.rate
    checks: list[tuple[str, str, bool]] = [
        (
            "100k users / 60 s (one replica)",
            f"{seconds_100k:.0f} s for 100k (extrapolated from this rate)",
            seconds_100k <= 60,
        ),
        ("bot CPU <= 0.3 ms/poll", f"{bot.bot_cpu_ms:.3f} ms", bot.bot_cpu_ms <= 0.3),
        ("bot / sequential >= 20x", f"{ratio_seq:.2f}x", ratio_seq >= 20),
        ("bot / ceiling >= 70%", f"{ratio_ceiling:.0%}", ratio_ceiling >= 0.7),
        (
            "RSS <= 2 KB/user (cold: includes one-off growth; see bench.rss_per_user)",
            f"{bot.rss_per_user_bytes:,.0f} B/user ({bot.rss_before_kib:,} -> {bot.rss_after_kib:,} KiB, "
            f"peak {peak_rss_kib():,} KiB)",
            bot.rss_per_user_bytes <= 2048,
        ),
    ]
    lines.append(table(["target", "measured", "verdict"], [[a, b, verdict(c)] for a, b, c in checks]))
    if users > sequential.polls:
        lines.append(f"\n(sequential rate measured on a sample of {sequential.polls:,} users)")
    if len(phases) > 3:
        lines += ["", "Experiments (same users, same sandbox; not the shipped configuration):", ""]
        lines.append(
            table(
                [*headers, "vs ceiling"],
                [[*r, f"{p.rate / ceiling.rate:.0%}"] for r, p in zip(rows[3:], phases[3:], strict=True)],
            )
        )
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
    parser.add_argument("--concurrency", type=int, default=50, help="POLL_CONCURRENCY (default as shipped)")
    parser.add_argument(
        "--sequential-sample", type=int, default=2000, help="users the sequential poller polls"
    )
    parser.add_argument(
        "--no-experiments",
        action="store_true",
        help="skip the variants (POLL_CONCURRENCY=10; sniffio importable; CanvasClient over aiohttp)",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the bot phase, write the top functions here"
    )
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    for users in args.users:
        profile = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        experiments = (
            []
            if args.no_experiments
            else [
                (10, "httpx"),
                (args.concurrency, "httpx+sniffio"),
                (10, "httpx+sniffio"),
                (args.concurrency, "aiohttp"),
            ]
        )
        phases = measure(users, args.concurrency, args.sequential_sample, profile, experiments)
        print(report(users, args.concurrency, phases))
        print(f"(run took {time.perf_counter() - started:.0f}s; {machine_line()})\n", flush=True)
        if profile is not None:
            print("(the bot phase ran under cProfile: its CPU and rate figures include the profiler)")
            with open(args.profile, "w") as handle:
                handle.write(print_profile(profile, 40))
            print(f"profile of the bot phase written to {args.profile}")


if __name__ == "__main__":
    main()
