"""Issue 9 item 4: how much a 50 MB unsigned POST to /slack/events grows `confbot run`'s memory.

The bot is `python -m bot.cli run` in a child process (sandbox Canvas and Slack beside it, a few linked
users polling). After a warm-up (one signed slash command, so the Slack path is loaded), the same
unsigned body of `--megabytes` MB is sent three ways: with a declared Content-Length, chunked (no
length: the streaming cap must stop it), and whole by an ordinary client. Each should be refused (413)
before the bot holds it. The figures are the child's VmRSS growth over the three and its VmHWM (peak)
against the RSS before them, read from /proc/<pid>/status. Target: RSS grows by < 20 MB.

    python -m bench.unsigned_post                  # 50 MB
    python -m bench.unsigned_post --megabytes 10   # quicker (CI smoke)
"""

from __future__ import annotations

import argparse
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import (
    TEAM_ID,
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
from bot.sandbox.slack import signed_slash_command

MB = 1024 * 1024
FORM = "application/x-www-form-urlencoded"
TARGET_KIB = 20 * 1024


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def blocks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(closed without an answer)"


def send_raw(port: int, head: bytes, body: Iterator[bytes]) -> str:
    """Send head then body over a socket, stop sending once the bot answers; its status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        for chunk in body:
            connection.setblocking(False)
            try:
                answer += connection.recv(65536)
            except BlockingIOError:
                pass
            connection.setblocking(True)
            if answer:
                break
            try:
                connection.sendall(chunk)
            except OSError:
                break
        deadline = time.monotonic() + 10
        while b"\r\n" not in answer and time.monotonic() < deadline:
            try:
                part = connection.recv(65536)
            except OSError:
                break
            if not part:
                break
            answer += part
        return status_line(answer)


def send_whole(url: str, size: int) -> str:
    try:
        response = httpx.post(url, content=b"x" * size, headers={"Content-Type": FORM}, timeout=30)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as error:
        return f"closed mid-upload ({type(error).__name__})"
    return f"HTTP {response.status_code}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=int, default=50)
    args = parser.parse_args(argv)
    size = args.megabytes * MB
    print(machine_line(), flush=True)
    bot_token, secret = new_bot_token(), secrets.token_hex(16)
    with sandbox_canvas() as canvas, sandbox_slack(bot_token) as slack, bench_db() as db:
        seed(db, canvas.url, 10)
        settings = bot_settings(
            db,
            canvas.url,
            interval=10,
            concurrency=shipped_concurrency(),
            slack_url=slack.url,
            bot_token=bot_token,
            signing_secret=secret,
        )
        with confbot_run(db, settings) as bot, httpx.Client(timeout=30) as client:
            user = "U0000RSS1"
            client.post(f"{slack.url}/_sandbox/users", json={"id": user, "team_id": TEAM_ID})
            minted = client.post(
                f"{slack.url}/_sandbox/response_urls",
                json={"team_id": TEAM_ID, "user_id": user, "channel_id": "D0BENCH01"},
            ).json()
            body, headers = signed_slash_command(
                secret,
                team_id=TEAM_ID,
                user_id=user,
                channel_id="D0BENCH01",
                text="help",
                response_url=minted["url"],
            )
            warm = client.post(f"{bot.url}/slack/events", content=body, headers=headers).status_code
            time.sleep(1.0)  # let the warm-up's reply and a poll tick settle before the baseline
            load = loadavg()
            rss_before, peak_before = memory_kib(bot.pid, "VmRSS"), memory_kib(bot.pid, "VmHWM")
            path = "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            declared = f"{path}Content-Type: {FORM}\r\nContent-Length: {size}\r\n\r\n".encode()
            chunked = f"{path}Content-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
            framed = (b"%x\r\n%s\r\n" % (len(c), c) for c in blocks(size))
            answers = [
                ("declared Content-Length, raw socket", send_raw(bot.port, declared, blocks(size))),
                ("chunked (no length), raw socket", send_raw(bot.port, chunked, framed)),
                ("whole body, httpx", send_whole(f"{bot.url}/slack/events", size)),
            ]
            rss_after, peak_after = memory_kib(bot.pid, "VmRSS"), memory_kib(bot.pid, "VmHWM")
            still_serves = client.get(f"{bot.url}/healthz").status_code
            tracebacks = bot.log().count("Traceback")
    grown = rss_after - rss_before
    peak_over = max(0, peak_after - max(peak_before, rss_before))
    print(f"\n### {args.megabytes} MB unsigned POST to /slack/events (warm-up slash command: HTTP {warm})\n")
    print(table(["sent as", "answer"], answers))
    print()
    print(
        table(
            ["VmRSS before KiB", "VmRSS after KiB", "growth KiB", "VmHWM before KiB", "VmHWM after KiB"],
            [[rss_before, rss_after, grown, peak_before, peak_after]],
        )
    )
    print()
    print(
        table(
            ["target", "measured", "verdict"],
            [
                ["RSS growth < 20 MB", f"{grown / 1024:.1f} MB", verdict(grown < TARGET_KIB)],
                [
                    "peak above the earlier peak < 20 MB",
                    f"{peak_over / 1024:.1f} MB",
                    verdict(peak_over < TARGET_KIB),
                ],
            ],
        )
    )
    print(f"\n/healthz afterwards: HTTP {still_serves}; tracebacks in the bot's log: {tracebacks}")
    print(f"load before the posts: {load}")
    print(f"({machine_line()})")


if __name__ == "__main__":
    main()
