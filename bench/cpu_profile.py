"""Where the bot's CPU per poll goes, and how much each proposed `bot/` change would save.

    python -m bench.cpu_profile [--users 3000] [--rounds 5] [--out /tmp/confbot-profile.txt]
    python -m bench.cpu_profile --latency 0.1 --concurrency 500 --only decrypt_cache --ab-only

1. profile  One warm bot pass (bench.poll_throughput.run_bot, POLL_CONCURRENCY as shipped, the CLI's gc
            settings applied) under cProfile. Own
            time is grouped by library; a C builtin's time goes to the library that called it (so
            Fernet's Rust HMAC counts as cryptography, a socket send as asyncio). Shares are of the
            profiled event-loop time, and "ms/poll" scales them to the unprofiled event-loop CPU. cProfile
            only sees the event-loop thread: aiosqlite runs SQLite in threads of its own, whose CPU is
            the difference between process CPU and event-loop-thread CPU (shown separately).
2. A/B      The shipped bot, then the same bot with one EXPERIMENT from bench.proposals monkeypatched in
            this process, against the same users made due again. The variants are interleaved over
            rounds (the order rotates) so a burst of other engineers' load hits them alike; figures
            are medians over the rounds. No profiler.
3. micro    timeit of single costs outside the bot: parsing a live list, Fernet, yarl URLs, headers.
4. in situ  synchronous hot spots timed inside a normal pass, and cyclic GC time (gc.callbacks).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import inspect
import io
import json
import pstats
import sqlite3
import statistics
import time
import timeit
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import yarl
from multidict import CIMultiDict
from pydantic import TypeAdapter

import bot.canvas.client as client_module
from bench.common import (
    BenchDb,
    ChildServer,
    bench_db,
    machine_line,
    sandbox_canvas,
    seed,
    shipped_concurrency,
    table,
)
from bench.poll_throughput import (
    LIVE_PARAMS,
    LIVE_PATH,
    WARM_UP,
    Phase,
    make_due,
    run_bot,
)
from bench.proposals import PROPOSALS, prefill_decrypt_cache
from bot.canvas.models import ConferenceList
from bot.engine.credentials import StoredToken
from bot.engine.poll_units import UserUnits
from bot.store.crypto import TokenCipher
from bot.store.db import create_engine, session_factory
from bot.store.models import utcnow

Func = tuple[str, int, str]

LIBRARIES: list[tuple[str, str]] = [
    ("/httpx/", "httpx (failure path only)"),
    ("/httpcore/", "httpcore"),
    ("/aiohttp/", "aiohttp (client, connector, parser)"),
    ("/yarl/", "yarl (URLs)"),
    ("/multidict/", "multidict (headers)"),
    ("/sqlalchemy/", "SQLAlchemy (event-loop side)"),
    ("/aiosqlite/", "aiosqlite (event-loop side)"),
    ("/pydantic", "pydantic"),
    ("/cryptography/", "cryptography (Fernet)"),
    ("/bot/engine/", "bot/engine"),
    ("/bot/canvas/", "bot/canvas"),
    ("/bot/store/", "bot/store"),
    ("/bot/", "bot (other)"),
    ("/asyncio/", "asyncio (loop, tasks, sockets, epoll)"),
    ("/bench/", "bench harness"),
]


def library(func: Func) -> str | None:
    """The library a Python function belongs to; None for a C builtin (charged to its callers)."""
    filename = func[0]
    if filename == "~" or filename.startswith("<"):
        return None
    for marker, name in LIBRARIES:
        if marker in filename:
            return name
    return "stdlib (other: " + "/".join(filename.rsplit("/", 2)[-2:]) + ")"


def own_time_by_library(stats: pstats.Stats) -> dict[str, float]:
    """Own time per library; each builtin's own time is split over its callers' libraries."""
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tottime, _ct, callers) in raw.items():
        owner = library(func)
        if owner is not None:
            totals[owner] += tottime
            continue
        by_caller = {caller: entry[2] for caller, entry in callers.items()}
        charged = sum(by_caller.values())
        if charged <= 0:
            totals["C builtins (no caller)"] += tottime
            continue
        for caller, share in by_caller.items():
            totals[library(caller) or "C builtins (called from C)"] += tottime * share / charged
    return dict(totals)


def top_functions(stats: pstats.Stats, limit: int) -> list[tuple[str, int, float, float]]:
    raw: dict[Func, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:limit]
    out: list[tuple[str, int, float, float]] = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in rows:
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        where = name if filename == "~" else f"{short}:{line} {name}"
        out.append((where, calls, tottime, cumtime))
    return out


def _ciphertexts(db: BenchDb) -> list[bytes]:
    with sqlite3.connect(db.path) as connection:
        return [bytes(blob) for (blob,) in connection.execute("SELECT access_token_enc FROM linked_users")]


# -- 1. profile ----------------------------------------------------------------------------------


def profile_pass(
    db: BenchDb, canvas: ChildServer, users: int, concurrency: int
) -> tuple[Phase, pstats.Stats]:
    make_due(db)
    profiler = cProfile.Profile()
    phase = asyncio.run(run_bot(db, canvas, users, concurrency, profiler))
    return phase, pstats.Stats(profiler, stream=io.StringIO())


def report_profile(stats: pstats.Stats, loop_ms: float, thread_ms: float, users: int) -> str:
    by_library = own_time_by_library(stats)
    profiled = sum(by_library.values())
    rows = [
        [name, f"{seconds / profiled:.1%}", round(loop_ms * seconds / profiled, 3)]
        for name, seconds in sorted(by_library.items(), key=lambda kv: kv[1], reverse=True)
        if seconds / profiled >= 0.005
    ]
    lines = [
        f"### Event-loop thread CPU by library ({users:,} users, profiled pass)",
        "",
        f"Unprofiled (A/B 'shipped' median): event-loop thread {loop_ms:.3f} ms/poll, "
        f"other threads (aiosqlite's SQLite work) {thread_ms:.3f} ms/poll.",
        "",
        table(["library (own time, builtins charged to callers)", "share", "≈ ms/poll"], rows),
        "",
        "### Top functions by own time (profiled pass)",
        "",
        table(
            ["function", "calls", "own s", "cumulative s"],
            [[w, c, round(t, 3), round(ct, 3)] for w, c, t, ct in top_functions(stats, 25)],
        ),
    ]
    return "\n".join(lines)


# -- 2. A/B --------------------------------------------------------------------------------------


def ab_runs(
    db: BenchDb, canvas: ChildServer, users: int, concurrency: int, rounds: int, only: list[str]
) -> dict[str, list[Phase]]:
    names = ["shipped", *(only or PROPOSALS)]
    prefill_decrypt_cache(TokenCipher([db.key]), _ciphertexts(db))
    results: dict[str, list[Phase]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            make_due(db)
            if name == "shipped":
                phase = asyncio.run(run_bot(db, canvas, users, concurrency))
            else:
                with PROPOSALS[name]():
                    phase = asyncio.run(run_bot(db, canvas, users, concurrency))
            if phase.errors:
                raise RuntimeError(f"{name}: {phase.errors} polls failed")
            results[name].append(phase)
        print(f"  A/B round {round_index + 1}/{rounds} done", flush=True)
    return results


def _median(phases: list[Phase], value: Callable[[Phase], float]) -> float:
    return statistics.median(value(p) for p in phases)


def report_ab(results: dict[str, list[Phase]], users: int, concurrency: int, latency: float) -> str:
    def cpu(p: Phase) -> float:
        return p.bot_cpu_ms

    def loop(p: Phase) -> float:
        return 1000 * p.usage.loop_cpu / max(p.polls, 1)

    def rate(p: Phase) -> float:
        return p.rate

    def others(p: Phase) -> float:
        return p.usage.others_cpu / max(p.usage.wall, 1e-9)

    base = _median(results["shipped"], cpu)
    rows = []
    for name, phases in results.items():
        median_cpu = _median(phases, cpu)
        rows.append(
            [
                name,
                len(phases),
                round(median_cpu, 3),
                f"{min(cpu(p) for p in phases):.3f}-{max(cpu(p) for p in phases):.3f}",
                round(_median(phases, loop), 3),
                round(median_cpu - _median(phases, loop), 3),
                "-" if name == "shipped" else f"{median_cpu - base:+.3f} ({median_cpu / base - 1:+.0%})",
                round(_median(phases, rate)),
                f"{_median(phases, others):.2f}",
            ]
        )
    headers = [
        "variant",
        "runs",
        "bot CPU ms/poll (median)",
        "range",
        "event-loop thread",
        "other threads",
        "vs shipped",
        "polls/s (median)",
        "others' cores busy",
    ]
    where = f"Canvas latency {1000 * latency:g} ms" if latency else "loopback"
    title = (
        f"### A/B: proposals monkeypatched in ({users:,} users, concurrency {concurrency}, {where}, "
        "no profiler)"
    )
    return "\n".join([title, "", table(headers, rows)])


# -- 3. micro ------------------------------------------------------------------------------------


def _per_call_us(statement: Callable[[], object], number: int = 2000) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def micro(db: BenchDb, canvas: ChildServer) -> str:
    cipher = TokenCipher([db.key])
    blobs = _ciphertexts(db)
    token = cipher.decrypt(blobs[-1])
    with httpx.Client(base_url=canvas.url) as client:
        answer = client.get(LIVE_PATH, params=LIVE_PARAMS, headers={"Authorization": f"Bearer {token}"})
    empty = answer.content
    raw_headers = list(answer.headers.raw)
    one = json.dumps(
        {
            "conferences": [
                {
                    "id": 9001,
                    "title": "Lecture 7",
                    "conference_type": "BigBlueButton",
                    "description": None,
                    "duration": 60,
                    "started_at": "2025-01-01T10:00:00Z",
                    "ended_at": None,
                    "context_type": "Course",
                    "context_id": 42,
                    "long_running": False,
                    "url": "/courses/42/conferences/9001",
                    "join_url": None,
                    "recordings": [],
                    "users": [1, 2, 3],
                }
            ]
        }
    ).encode()
    envelope = TypeAdapter(ConferenceList)
    url = canvas.url + LIVE_PATH
    base_headers = {"User-Agent": "confbot/0.1", "Accept": "application/json"}
    prebuilt = yarl.URL(url).with_query(LIVE_PARAMS)
    cached: dict[bytes, str] = {blobs[-1]: token}
    cases: list[tuple[str, Callable[[], object]]] = [
        (
            "parse empty list: ConferenceList.model_validate_json (shipped)",
            lambda: ConferenceList.model_validate_json(empty),
        ),
        (
            "parse empty list: TypeAdapter(ConferenceList).validate_json",
            lambda: envelope.validate_json(empty),
        ),
        ("parse empty list: fast path (bytes equality)", lambda: empty == b'{"conferences":[]}'),
        (
            "parse 1 conference: ConferenceList.model_validate_json (shipped)",
            lambda: ConferenceList.model_validate_json(one),
        ),
        (
            "parse 1 conference: TypeAdapter(ConferenceList).validate_json",
            lambda: envelope.validate_json(one),
        ),
        ("Fernet decrypt (TokenCipher.decrypt, shipped)", lambda: cipher.decrypt(blobs[-1])),
        ("decrypt from a per-process dict (proposal)", lambda: cached.get(blobs[-1])),
        (
            "yarl: URL(str).extend_query(params), what aiohttp does per shipped request",
            lambda: yarl.URL(url).extend_query(LIVE_PARAMS),
        ),
        ("yarl: URL built once, reused (not shipped)", lambda: prebuilt),
        (
            "headers: {**base, Authorization} + CIMultiDict (shipped dict; aiohttp copies it)",
            lambda: CIMultiDict({**base_headers, "Authorization": "Bearer " + token}),
        ),
        (
            "httpx.Response for a failure (shipped on non-2xx only)",
            lambda: httpx.Response(401, headers=raw_headers, content=empty),
        ),
    ]
    rows = [[name, round(_per_call_us(statement), 2)] for name, statement in cases]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sample = {blob: cipher.decrypt(blob) for blob in blobs[:2000]}
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(sample)
    tracemalloc.stop()
    del sample
    lines = [
        "### Micro-benchmarks (timeit, best of 5; µs per call)",
        "",
        table(["operation", "µs/call"], rows),
        "",
        f"A process-wide plaintext cache costs about {per_entry:,.0f} B per token (tracemalloc, "
        "ciphertext key + plaintext str + dict slot).",
    ]
    return "\n".join(lines)


# -- 4. in situ ----------------------------------------------------------------------------------

SYNC_COSTS: list[tuple[str, Any, str]] = [
    ("TokenCipher.decrypt (Fernet)", TokenCipher, "decrypt"),
    ("live-list parse (bot.canvas.client._conferences)", client_module, "_conferences"),
    ("StoredToken.of (ORM attribute reads)", StoredToken, "of"),
]


def in_situ(db: BenchDb, canvas: ChildServer, users: int, concurrency: int) -> list[list[object]]:
    """CPU inside a few synchronous hot functions during a normal (unprofiled) bot pass.

    Each is wrapped with a thread_time() accumulator, so the figure is what the call costs in the bot
    (cold caches, other tasks in between), not in a tight timeit loop. Coroutines cannot be timed so
    (thread time would include whatever other tasks ran while they waited).
    """
    spent: dict[str, float] = {name: 0.0 for name, _, _ in SYNC_COSTS}
    calls: dict[str, int] = {name: 0 for name, _, _ in SYNC_COSTS}
    originals = [(owner, attr, inspect.getattr_static(owner, attr)) for _, owner, attr in SYNC_COSTS]
    inherited = [attr not in vars(owner) for _, owner, attr in SYNC_COSTS]

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.thread_time() - started
                calls[name] += 1

        return wrapper

    gc_name = "cyclic GC collections (gc.callbacks; calls = collections)"
    spent[gc_name], calls[gc_name] = 0.0, 0
    gc_started = [0.0]

    def on_gc(stage: str, _info: dict[str, int]) -> None:
        if stage == "start":
            gc_started[0] = time.thread_time()
        else:
            spent[gc_name] += time.thread_time() - gc_started[0]
            calls[gc_name] += 1

    make_due(db)
    gc.callbacks.append(on_gc)
    try:
        for (name, owner, attr), (_, _, original) in zip(SYNC_COSTS, originals, strict=True):
            if isinstance(original, classmethod):
                setattr(owner, attr, classmethod(timed(name, original.__func__)))
            else:
                setattr(owner, attr, timed(name, original))
        phase = asyncio.run(run_bot(db, canvas, users, concurrency))
    finally:
        gc.callbacks.remove(on_gc)
        for (owner, attr, original), from_base in zip(originals, inherited, strict=True):
            if from_base:
                delattr(owner, attr)  # an inherited method: drop the wrapper, the base class has it
            else:
                setattr(owner, attr, original)
    polled = phase.polls + WARM_UP  # the wrappers also saw the warm-up polls
    return [
        [
            name,
            calls[name],
            round(1e6 * spent[name] / max(calls[name], 1), 1),
            round(1000 * spent[name] / polled, 4),
        ]
        for name in spent
    ]


async def claim_cost(db: BenchDb, batch: int, repeats: int) -> list[list[object]]:
    """CPU of one UserUnits.claim of `batch` due users (Core rows, shipped), rolled back each time so
    every claim sees the same rows. process_time, so aiosqlite's thread is included."""
    engine = create_engine(db.url)
    sessions = session_factory(engine)
    costs: dict[str, list[float]] = {"UserUnits.claim (Core rows, shipped)": []}
    try:
        for _ in range(repeats):
            for name in costs:
                session = sessions()
                await session.begin()
                started = time.process_time()
                jobs = await UserUnits().claim(session, utcnow(), batch, utcnow)
                costs[name].append((time.process_time() - started) / max(len(jobs), 1))
                await session.rollback()
                await session.close()
    finally:
        await engine.dispose()
    return [
        [name, round(1000 * min(values), 4), round(1000 * statistics.median(values), 4)]
        for name, values in costs.items()
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=shipped_concurrency())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="also write the full pstats listing (cumulative and own) here")
    parser.add_argument("--latency", type=float, default=0.0, help="Canvas latency per request, seconds")
    parser.add_argument("--only", nargs="*", default=[], choices=sorted(PROPOSALS), help="A/B only these")
    parser.add_argument("--ab-only", action="store_true", help="skip the profile, micro and in-situ parts")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    with sandbox_canvas(args.latency) as canvas, bench_db() as db:
        seed(db, canvas.url, WARM_UP + args.users)
        results = ab_runs(db, canvas, args.users, args.concurrency, args.rounds, args.only)
        print()
        print(report_ab(results, args.users, args.concurrency, args.latency))
        if args.ab_only:
            print(f"\n({machine_line()})")
            return
        phase, stats = profile_pass(db, canvas, args.users, args.concurrency)
        print(f"  profiled pass: {phase.polls:,} polls, {phase.errors} errors", flush=True)
        micro_text = micro(db, canvas)
        make_due(db)
        claims = asyncio.run(claim_cost(db, 500, 7))
        situ = in_situ(db, canvas, args.users, args.concurrency)
    shipped = results["shipped"]
    loop_ms = _median(shipped, lambda p: 1000 * p.usage.loop_cpu / max(p.polls, 1))
    thread_ms = _median(shipped, lambda p: p.bot_cpu_ms) - loop_ms
    print()
    print(report_profile(stats, loop_ms, thread_ms, args.users))
    print()
    print(micro_text)
    print()
    print("### Claim of a 500-user batch, per user (ms; process CPU incl. the SQLite thread; rolled back)\n")
    print(table(["claim", "best ms/user", "median ms/user"], claims))
    print("\n### In situ: synchronous hot spots timed inside a normal bot pass (thread CPU)\n")
    print(table(["function", "calls", "µs/call", "ms/poll"], situ))
    if args.out:
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(60)
        with open(args.out, "w") as handle:
            handle.write(out.getvalue())
        print(f"\nfull profile written to {args.out}")
    print(f"\n({machine_line()})")


if __name__ == "__main__":
    main()
