"""Live Event latency: a join at the sandbox Canvas -> the alert DM at the sandbox Slack, when polling
alone would take a minute.

`confbot run` (a child process, as production) polls every 60 s and takes signed Live Events, verified
against the sandbox Canvas's JWK set. Each conference's start is a join, which the sandbox delivers as
an `asset_accessed` event; the bot polls that conference's participants at once. Half the rooms are
long-running ones first opened a week ago, which `state=live` never shows: only the event (and the
session it opens) can alert them. Issue 11's target: within 3 s.

    python -m bench.live_event_latency --users 200 --conferences 20
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.common import (
    TEAM_ID,
    bench_db,
    bot_settings,
    confbot_run,
    loadavg,
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

TARGET = 3.0


def _linked(db_path: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute("SELECT canvas_user_id, slack_user_id FROM linked_users ORDER BY id")
        return [(int(a), str(b)) for a, b in rows]


def _state_of(db_path: str, slack_id: str) -> str:
    """Why a user got no alert: what the scan and the poller recorded for them."""
    with sqlite3.connect(db_path) as connection:
        user_id, last_poll, next_poll, error = connection.execute(
            "SELECT id, last_poll_at, next_poll_at, last_error FROM linked_users WHERE slack_user_id = ?",
            (slack_id,),
        ).fetchone()
        known = connection.execute(
            "SELECT count(*) FROM user_conferences WHERE linked_user_id = ?", (user_id,)
        ).fetchone()[0]
    return f"catalog rows {known}, last poll {last_poll}, next poll {next_poll}, last error {error}"


def _world(
    canvas: httpx.Client, slack: httpx.Client, linked: list[tuple[int, str]], rooms: int
) -> list[tuple[int, list[int]]]:
    """One course per room, users dealt round-robin; every other room long-running, opened last week.
    Returns each room with its members (who join it)."""
    for _canvas_id, slack_id in linked:
        slack.post("/_sandbox/users", json={"id": slack_id, "team_id": TEAM_ID}).raise_for_status()
    ids = []
    last_week = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    for index in range(rooms):
        members = [cid for n, (cid, _s) in enumerate(linked) if n % rooms == index]
        course = canvas.post("/_sandbox/courses", json={"name": f"Course {index}"}).json()
        for member in members:
            canvas.post(
                f"/_sandbox/courses/{course['id']}/enrollments",
                json={"user_id": member, "type": "StudentEnrollment"},
            ).raise_for_status()
        reused = index % 2 == 1
        room = canvas.post(
            "/_sandbox/conferences",
            json={
                "context_type": "Course",
                "context_id": course["id"],
                "title": f"Room {index}",
                "user_ids": members,
                "long_running": reused,
            },
        ).json()
        if reused:  # first opened last week, before confbot listened: never in state=live again
            canvas.post(
                f"/_sandbox/conferences/{room['id']}/start", json={"at": last_week}
            ).raise_for_status()
        ids.append((int(room["id"]), members))
    return ids


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--conferences", type=int, default=20)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between joins")
    parser.add_argument("--quick", action="store_true", help="40 users, 4 conferences")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.conferences = 40, 4
    print(machine_line(), flush=True)
    load_before = loadavg()
    bot_token = new_bot_token()
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seed(db, canvas.url, args.users)
        settings = bot_settings(
            db,
            canvas.url,
            interval=60.0,
            concurrency=shipped_concurrency(),
            slack_url=slack.url,
            bot_token=bot_token,
            signing_secret=secrets.token_hex(16),
        )
        extra = {"CANVAS_LIVE_EVENTS_JWKS_URL": f"{canvas.url}/_sandbox/live_events/jwks.json"}
        linked = _linked(str(db.path))
        with (
            httpx.Client(base_url=canvas.url, timeout=30) as canvas_api,
            httpx.Client(base_url=slack.url, timeout=30) as slack_api,
        ):
            rooms = _world(canvas_api, slack_api, linked, args.conferences)
            with confbot_run(db, settings, extra_env=extra) as bot:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # every user's first poll and first session scan
                    routes = canvas_api.get("/_sandbox/requests", params={"routes": 1}).json()["by_route"]
                    if (
                        min(
                            routes.get("GET /api/v1/conferences", 0),
                            routes.get("GET /api/v1/conferences?state=live", 0),
                        )
                        >= args.users
                    ):
                        break
                    time.sleep(0.5)
                canvas_api.post(
                    "/_sandbox/live_events", json={"url": f"{bot.url}/canvas/live-events", "signed": True}
                )
                joined: dict[int, float] = {}
                for room, members in rooms:
                    joined[room] = time.time()
                    canvas_api.post(f"/_sandbox/conferences/{room}/start", json={"user_ids": members[:1]})

                    time.sleep(args.gap)  # joins spread like a morning's lectures, not one burst
                expected = len(linked)
                deadline = time.monotonic() + 30
                calls: list[dict[str, Any]] = []
                while time.monotonic() < deadline:
                    calls = slack_api.get("/_sandbox/calls", params={"method": "chat.postMessage"}).json()[
                        "calls"
                    ]
                    if len(calls) >= expected:
                        break
                    time.sleep(0.2)
                alerted = {str(call.get("args", {}).get("channel", "")) for call in calls}
                for _canvas_id, slack_id in linked:
                    if slack_id not in alerted:
                        print(f"no alert for {slack_id}: {_state_of(str(db.path), slack_id)}")
    latencies: dict[str, list[float]] = {"new room": [], "reused week-old room": []}
    for call in calls:
        text = str(call.get("args", {}).get("text", ""))
        for index, (room, _members) in enumerate(rooms):
            if f"/conferences/{room}/join" in text:
                kind = "reused week-old room" if index % 2 else "new room"
                took = float(call["at"]) - joined[room]
                latencies[kind].append(took)
                if took > TARGET:
                    who = call.get("args", {}).get("channel")
                    print(f"late: {who} in room {index} ({kind}) after {took:.1f}s")
    rows = []
    everything = [v for values in latencies.values() for v in values]
    for kind, values in [*latencies.items(), ("all", everything)]:
        if values:
            rows.append(
                [
                    kind,
                    len(values),
                    f"{percentile(values, 50):.2f}",
                    f"{percentile(values, 99):.2f}",
                    f"{max(values):.2f}",
                ]
            )
    print(
        f"\n### Live Event latency: {args.users} users, {args.conferences} rooms joined {args.gap:g}s apart, "
        "poll interval 60 s\n"
    )
    print(table(["rooms", "alerts", "p50 s", "p99 s", "max s"], rows))
    met = bool(everything) and len(everything) >= len(linked) and max(everything) <= TARGET
    print(
        f"\n{len(everything)} of {len(linked)} alerts arrived; "
        f"{verdict(met)} (every alert within {TARGET:g} s of its join)"
    )
    print(f"load: {load_before} → {loadavg()}")


if __name__ == "__main__":
    main()
