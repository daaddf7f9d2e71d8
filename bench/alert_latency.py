"""(c) Alert latency: conference start at the sandbox Canvas -> chat.postMessage at the sandbox Slack.

The bot runs in this process as `confbot run` wires it (Runtime.build, scheduler started: poll tick,
dispatch tick, wake-on-enqueue). Canvas and Slack sandboxes are child processes. Users are spread over
one course per conference; conferences start at random moments over a window, and each alert's latency
is the Slack sandbox's recorded call time minus the moment the start request was sent (both read
`time.time()` on this machine).

    python -m bench.alert_latency --users 300 --conferences 20 --interval 5 --window 30

Course names are not cached beforehand: every conference is its course's first alert, so the path
where many users' polls look up the same unknown course name at once (ContextNames.lookup) is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time
from typing import Any

import httpx

from bench.common import (
    TEAM_ID,
    BenchDb,
    Probe,
    apply_cli_gc,
    bench_db,
    bot_settings,
    machine_line,
    new_bot_token,
    percentile,
    sandbox_canvas,
    sandbox_slack,
    seed,
    shipped_concurrency,
    table,
    verdict,
)
from bot.runtime import Runtime


def _linked(db: BenchDb) -> list[tuple[int, str]]:
    with sqlite3.connect(db.path) as connection:
        rows = connection.execute("SELECT canvas_user_id, slack_user_id FROM linked_users ORDER BY id")
        return [(int(a), str(b)) for a, b in rows]


def _polled_users(db: BenchDb) -> int:
    with sqlite3.connect(db.path) as connection:
        row = connection.execute("SELECT count(*) FROM linked_users WHERE last_success_at IS NOT NULL")
        return int(row.fetchone()[0])


def build_world(
    canvas_url: str, slack_url: str, linked: list[tuple[int, str]], conferences: int
) -> list[int]:
    """One course per conference, users dealt round-robin; returns the conference ids."""
    ids: list[int] = []
    with httpx.Client(base_url=canvas_url, timeout=30) as canvas, httpx.Client(base_url=slack_url) as slack:
        for _canvas_id, slack_id in linked:
            slack.post("/_sandbox/users", json={"id": slack_id, "team_id": TEAM_ID}).raise_for_status()
        for index in range(conferences):
            members = [cid for n, (cid, _s) in enumerate(linked) if n % conferences == index]
            course = canvas.post("/_sandbox/courses", json={"name": f"Bench course {index}"}).json()
            for member in members:
                canvas.post(
                    f"/_sandbox/courses/{course['id']}/enrollments",
                    json={"user_id": member, "type": "StudentEnrollment"},
                ).raise_for_status()
            conference = canvas.post(
                "/_sandbox/conferences",
                json={
                    "context_type": "Course",
                    "context_id": course["id"],
                    "title": f"Bench lecture {index}",
                    "user_ids": members,
                },
            )
            conference.raise_for_status()
            ids.append(int(conference.json()["id"]))
    return ids


async def _wait(condition: Any, limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {limit:.0f}s")
        await asyncio.sleep(0.2)


async def run(
    db: BenchDb,
    canvas_url: str,
    canvas_pid: int,
    slack_url: str,
    bot_token: str,
    conference_ids: list[int],
    *,
    users: int,
    interval: float,
    window: float,
    rng: random.Random,
) -> tuple[dict[int, float], list[dict[str, Any]], float]:
    settings = bot_settings(
        db,
        canvas_url,
        interval=interval,
        concurrency=shipped_concurrency(),
        slack_url=slack_url,
        bot_token=bot_token,
    )
    runtime = Runtime.build(settings)
    apply_cli_gc()  # as `confbot run` does right after Runtime.build
    starts: dict[int, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:

        async def polled_everyone() -> bool:
            return await asyncio.to_thread(_polled_users, db) >= users

        async def alerts() -> list[dict[str, Any]]:
            answer = await client.get(f"{slack_url}/_sandbox/calls", params={"method": "chat.postMessage"})
            calls: list[dict[str, Any]] = answer.json()["calls"]
            return calls

        async def all_alerted() -> bool:
            return len(await alerts()) >= users

        runtime.scheduler.start()
        try:
            await _wait(polled_everyone, 10 * interval + 60, "a first poll of every user")
            probe = Probe(canvas_pid)
            offsets = sorted(rng.uniform(0, window) for _ in conference_ids)
            began = time.monotonic()
            for conference_id, offset in zip(conference_ids, offsets, strict=True):
                await asyncio.sleep(max(0.0, began + offset - time.monotonic()))
                starts[conference_id] = time.time()
                response = await client.post(f"{canvas_url}/_sandbox/conferences/{conference_id}/start")
                response.raise_for_status()
            await _wait(all_alerted, 3 * interval + 30, "every alert to reach Slack")
            usage = probe.stop()
            calls = await alerts()
        finally:
            await runtime.close()
    return starts, calls, usage.bot_cpu / max(usage.wall, 1e-9)


def latencies(starts: dict[int, float], calls: list[dict[str, Any]]) -> list[float]:
    found: list[float] = []
    for call in calls:
        text = str(call.get("args", {}).get("text", ""))
        for conference_id, started in starts.items():
            if f"/conferences/{conference_id}/join" in text:
                found.append(float(call["at"]) - started)
                break
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--conferences", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--window", type=float, default=30.0, help="starts are spread over this many seconds")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    bot_token = new_bot_token()
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seed(db, canvas.url, args.users)
        conference_ids = build_world(canvas.url, slack.url, _linked(db), args.conferences)
        starts, calls, bot_core = asyncio.run(
            run(
                db,
                canvas.url,
                canvas.pid,
                slack.url,
                bot_token,
                conference_ids,
                users=args.users,
                interval=args.interval,
                window=args.window,
                rng=random.Random(args.seed),
            )
        )
    found = latencies(starts, calls)
    p50, p99 = percentile(found, 50), percentile(found, 99)
    target = args.interval + 1.0
    print(
        f"\n### Alert latency: {args.users} users, {args.conferences} conferences started over "
        f"{args.window:.0f}s, poll interval {args.interval:g}s"
        "\n"
    )
    print(
        table(
            ["alerts", "p50 s", "p90 s", "p99 s", "max s", "bot CPU (share of a core)"],
            [
                [
                    len(found),
                    p50,
                    percentile(found, 90),
                    p99,
                    max(found, default=float("nan")),
                    f"{bot_core:.0%}",
                ]
            ],
        )
    )
    print()
    print(
        table(
            ["target", "measured", "verdict"],
            [[f"p99 <= {target:g} s", f"{p99:.2f} s", verdict(p99 <= target)]],
        )
    )
    print(f"\n({machine_line()})")


if __name__ == "__main__":
    main()
