"""Session scan overhead: Canvas requests per user-hour of the session scan vs the live poll.

`confbot run` (a child process, as production) polls a few hundred linked users for a while, at an
interval and a scan interval in the defaults' ratio (60 s : 600 s, compressed), against the sandbox
Canvas, which counts requests per route. A quarter of the users have a conference scheduled within the
day, so their scans also read their courses (who teaches, for the host nudge): the realistic worst
case. Issue 11's target: the scan adds at most 10% to the live polling's requests.

    python -m bench.scan_overhead --users 300 --interval 2 --scan-interval 20 --seconds 80
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.common import (
    bench_db,
    bot_settings,
    confbot_run,
    loadavg,
    machine_line,
    new_bot_token,
    sandbox_canvas,
    sandbox_slack,
    seed,
    shipped_concurrency,
    table,
    verdict,
)

LIVE = "GET /api/v1/conferences?state=live"
FULL = "GET /api/v1/conferences"
COURSES = "GET /api/v1/courses"


def _schedule_some(canvas_url: str, db_path: str, share: float) -> int:
    """Give `share` of the seeded users a course with a conference scheduled in two hours."""
    with sqlite3.connect(db_path) as connection:
        users = [int(row[0]) for row in connection.execute("SELECT canvas_user_id FROM linked_users")]
    chosen = users[: int(len(users) * share)]
    start_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    with httpx.Client(base_url=canvas_url, timeout=30) as canvas:
        course = canvas.post("/_sandbox/courses", json={"name": "Scheduled"}).json()
        for user in chosen:
            canvas.post(
                f"/_sandbox/courses/{course['id']}/enrollments",
                json={"user_id": user, "type": "StudentEnrollment"},
            )
        canvas.post(
            "/_sandbox/conferences",
            json={
                "context_type": "Course",
                "context_id": course["id"],
                "title": "Planned",
                "user_ids": chosen,
                "start_at": start_at,
            },
        ).raise_for_status()
    return len(chosen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--interval", type=float, default=2.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--scan-interval", type=float, default=20.0, help="SESSION_SCAN_INTERVAL_SECONDS")
    parser.add_argument("--seconds", type=float, default=80.0, help="measured window after a warm-up")
    parser.add_argument("--quick", action="store_true", help="100 users, 30 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.seconds = 100, 30.0
    print(machine_line(), flush=True)
    load_before = loadavg()
    bot_token = new_bot_token()
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seed(db, canvas.url, args.users)
        scheduled = _schedule_some(canvas.url, str(db.path), 0.25)
        settings = bot_settings(
            db,
            canvas.url,
            interval=args.interval,
            concurrency=shipped_concurrency(),
            slack_url=slack.url,
            bot_token=bot_token,
            signing_secret=secrets.token_hex(16),
        )
        env_scan = {"SESSION_SCAN_INTERVAL_SECONDS": str(args.scan_interval)}
        with (
            confbot_run(db, settings, extra_env=env_scan),
            httpx.Client(base_url=canvas.url, timeout=30) as client,
        ):
            time.sleep(args.scan_interval * 1.2)  # warm-up: every user's first scan (due at link) is done
            client.post("/_sandbox/requests/reset").raise_for_status()
            began = time.monotonic()
            time.sleep(args.seconds)  # the measured window: wall-clock time is what is measured here
            routes = client.get("/_sandbox/requests", params={"routes": 1}).json()["by_route"]
            took = time.monotonic() - began
    live, full, courses = routes.get(LIVE, 0), routes.get(FULL, 0), routes.get(COURSES, 0)
    added = (full + courses) / live if live else float("inf")
    per_user_hour = 3600 / (took * args.users)
    print(
        f"\n### Session scan overhead: {args.users} users ({scheduled} with a scheduled conference), "
        f"interval {args.interval:g}s, scan every {args.scan_interval:g}s, {took:.0f}s measured\n"
    )
    print(
        table(
            ["route", "requests", "per user-hour (compressed time)", "share of the live poll's"],
            [
                [f"live poll `{LIVE}`", live, f"{live * per_user_hour:.0f}", "100%"],
                [
                    f"scan: full listing `{FULL}`",
                    full,
                    f"{full * per_user_hour:.0f}",
                    f"{100 * full / max(live, 1):.1f}%",
                ],
                [
                    f"scan: `{COURSES}` (scheduled soon)",
                    courses,
                    f"{courses * per_user_hour:.0f}",
                    f"{100 * courses / max(live, 1):.1f}%",
                ],
            ],
        )
    )
    print(
        f"\nscan adds **{100 * added:.1f}%** to the live polling's requests "
        f"(at the defaults, 60 s / 600 s: {60 * added:.1f} requests per user-hour on top of 60): "
        f"{verdict(added <= 0.10)} (target ≤ 10%)"
    )
    print(f"load: {load_before} → {loadavg()}")


if __name__ == "__main__":
    main()
