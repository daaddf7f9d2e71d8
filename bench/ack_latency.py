"""(d) `/conferences` ack latency while the bot polls N users, as `confbot run` serves it.

The bot is `python -m bot.cli run` (uvicorn + Starlette + Bolt + scheduler) in a child process with N
linked users all due, so it polls flat out while signed slash commands (sandbox signing helper) arrive
at a steady rate from this process. Ack latency is the HTTP round trip of the slash-command POST; the
answer itself goes to a response_url at the sandbox Slack afterwards.

    python -m bench.ack_latency --users 10000 --requests 200 --rate 20
"""

from __future__ import annotations

import argparse
import random
import secrets
import sqlite3
import subprocess
import sys
import time

import httpx

from bench.common import (
    TEAM_ID,
    BenchDb,
    bench_db,
    bot_env,
    bot_settings,
    machine_line,
    new_bot_token,
    percentile,
    process_cpu,
    sandbox_canvas,
    sandbox_slack,
    seed,
    shipped_concurrency,
    table,
    verdict,
)
from bot.sandbox.server import free_port
from bot.sandbox.slack import signed_slash_command


def _polled(db: BenchDb) -> int:
    with sqlite3.connect(db.path, timeout=30) as connection:
        row = connection.execute("SELECT count(*) FROM linked_users WHERE last_success_at IS NOT NULL")
        return int(row.fetchone()[0])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the bot did not become healthy")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="slash commands per second")
    parser.add_argument("--interval", type=float, default=60.0, help="POLL_INTERVAL_SECONDS")
    args = parser.parse_args(argv)
    print(machine_line(), flush=True)
    bot_token, secret = new_bot_token(), secrets.token_hex(16)
    rng = random.Random(7)
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seed(db, canvas.url, args.users)
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
        bot_url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=bot_env(settings, host="127.0.0.1", port=port),
            cwd=db.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(bot_url, process)
            while _polled(db) == 0:
                time.sleep(0.1)
            acks: list[float] = []
            failures = 0
            with httpx.Client(timeout=30) as client:
                polled_before, bot_cpu_before = _polled(db), process_cpu(process.pid)
                canvas_cpu_before = process_cpu(canvas.pid)
                began = time.monotonic()
                for index in range(args.requests):
                    time.sleep(max(0.0, began + index / args.rate - time.monotonic()))
                    user = f"U{rng.randrange(args.users):08d}"
                    minted = client.post(
                        f"{slack.url}/_sandbox/response_urls",
                        json={"team_id": TEAM_ID, "user_id": user, "channel_id": "D0BENCH01"},
                    ).json()
                    body, headers = signed_slash_command(
                        secret,
                        team_id=TEAM_ID,
                        user_id=user,
                        channel_id="D0BENCH01",
                        text="",
                        response_url=minted["url"],
                    )
                    sent = time.perf_counter()
                    response = client.post(f"{bot_url}/slack/events", content=body, headers=headers)
                    acks.append(time.perf_counter() - sent)
                    failures += response.status_code != 200
                window = time.monotonic() - began
                polled_after, bot_cpu = _polled(db), process_cpu(process.pid) - bot_cpu_before
                canvas_cpu = process_cpu(canvas.pid) - canvas_cpu_before
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    ms = [1000 * a for a in acks]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    print(f"\n### /conferences ack latency, {args.users:,} users polling, {args.rate:g} commands/s\n")
    print(
        table(
            [
                "requests",
                "non-200",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "polls committed in window",
                "bot CPU",
                "sandbox Canvas CPU",
            ],
            [
                [
                    len(ms),
                    failures,
                    p50,
                    percentile(ms, 90),
                    p99,
                    max(ms),
                    f"{polled_after - polled_before:,} first polls in {window:.1f}s",
                    f"{bot_cpu / window:.2f} cores",
                    f"{canvas_cpu / window:.2f} cores",
                ]
            ],
        )
    )
    print()
    print(
        table(["target", "measured", "verdict"], [["ack p99 < 300 ms", f"{p99:.0f} ms", verdict(p99 < 300)]])
    )
    if polled_after == polled_before and canvas_cpu < 0.05 * window:
        print("\nWARNING: the sandbox Canvas was idle during the window: polling did not overlap.")
    print(f"\n({machine_line()})")


if __name__ == "__main__":
    main()
