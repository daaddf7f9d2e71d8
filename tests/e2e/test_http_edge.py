"""Issue 9 item 4: the HTTP edge refuses oversized and malformed requests before Bolt reads or parses them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from bot.sandbox.slack_signing import FORM_CONTENT_TYPE, signed_request
from bot.web.body_limit import MAX_REQUEST_BODY_BYTES
from tests.support import SIGNING_SECRET, BotProcess, SlackWorld, slash

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
FIFTY_MB = 50 * MB


def memory_kb(bot: BotProcess, field: str) -> int:
    """A figure from /proc/<pid>/status of the bot process (VmRSS now, VmHWM the peak), in kB."""
    assert bot.process is not None
    with open(f"/proc/{bot.process.pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc status")


def post_large(bot: BotProcess, content: bytes | Iterator[bytes]) -> int | None:
    """POST an unsigned body: the status, or None when the bot answered and closed mid-upload."""
    try:
        return httpx.post(
            bot.url + "/slack/events",
            content=content,
            headers={"Content-Type": FORM_CONTENT_TYPE},
            timeout=30,
        ).status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def sent_raw(bot: BotProcess, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request over a plain socket, stop sending once the bot answers; the answer's bytes."""
    import socket

    with socket.create_connection(("127.0.0.1", bot.port), timeout=30) as connection:
        connection.sendall(head)
        connection.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += connection.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            try:
                connection.setblocking(True)
                connection.sendall(chunk)
                connection.setblocking(False)
            except OSError:
                break
        connection.setblocking(True)
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            part = connection.recv(65536)
            if not part:
                break
            answer += part
        return answer


def test_fifty_megabyte_unsigned_posts_get_413_without_the_bot_holding_them(
    bot: BotProcess, slack: SlackWorld
) -> None:
    bot.start()
    slack.user("UADA")
    assert slash(bot, slack, "UADA", "help")["text"]  # warm: the Slack path is loaded before measuring
    rss_before, peak_before = memory_kb(bot, "VmRSS"), memory_kb(bot, "VmHWM")

    declared = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM_CONTENT_TYPE}\r\n"
        f"Content-Length: {FIFTY_MB}\r\n\r\n"
    ).encode()
    answer = sent_raw(bot, declared, chunks(FIFTY_MB))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    chunked_head = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {FORM_CONTENT_TYPE}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    framed = (b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks(FIFTY_MB))
    answer = sent_raw(bot, chunked_head, framed)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]

    assert post_large(bot, b"x" * FIFTY_MB) in (413, None)  # an ordinary client too
    grown_kb = memory_kb(bot, "VmRSS") - rss_before
    assert grown_kb < 20 * 1024, f"RSS grew by {grown_kb} kB"
    peak_kb = memory_kb(bot, "VmHWM")
    assert peak_kb < max(peak_before, rss_before + 20 * 1024), f"peak RSS {peak_kb} kB, was {rss_before} kB"

    assert "Traceback" not in bot.logs()
    assert slash(bot, slack, "UADA", "help")["text"]  # and it still serves Slack


def test_a_body_just_under_the_cap_still_reaches_bolt(bot: BotProcess) -> None:
    bot.start()
    body = b"payload=" + b"x" * (MAX_REQUEST_BODY_BYTES - len(b"payload="))
    answer = httpx.post(bot.url + "/slack/events", content=body, headers={"Content-Type": FORM_CONTENT_TYPE})
    assert answer.status_code in (400, 401)  # parsed or verified, but not refused for its size
    oversize = httpx.post(
        bot.url + "/slack/events", content=body + b"x", headers={"Content-Type": FORM_CONTENT_TYPE}
    )
    assert oversize.status_code == 413


def test_malformed_requests_get_4xx_and_no_traceback(bot: BotProcess, slack: SlackWorld) -> None:
    bot.start()
    url = bot.url + "/slack/events"

    def post(body: bytes, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body, headers=headers).status_code

    not_utf8 = b"command=%2Fconferences&text=\xff\xfe"
    assert post(not_utf8, {"Content-Type": FORM_CONTENT_TYPE}) == 400
    assert post(not_utf8, {"Content-Type": "application/json"}) == 400  # (slack_sdk cannot sign non-UTF-8)

    bad_json = ("payload=" + quote("{not json")).encode()
    assert post(bad_json, {"Content-Type": FORM_CONTENT_TYPE}) == 400
    assert post(bad_json, signed_request(SIGNING_SECRET, bad_json)) == 400
    not_an_object = ("payload=" + quote("[1, 2]")).encode()
    assert post(not_an_object, signed_request(SIGNING_SECRET, not_an_object)) == 400
    json_list = b"[1, 2]"
    assert post(json_list, signed_request(SIGNING_SECRET, json_list, "application/json")) == 400

    command = b"command=%2Fconferences&text=help&team_id=" + slack.team_id.encode()
    for stamp in ("not-a-number", "1_700_000_000", "+1700000000", "9" * 5000):
        headers = signed_request(SIGNING_SECRET, command)
        headers["X-Slack-Request-Timestamp"] = stamp
        assert post(command, headers) == 401, stamp

    badly_signed = signed_request(SIGNING_SECRET, command)
    badly_signed["X-Slack-Signature"] = "v0=" + "0" * 64
    assert post(command, badly_signed) == 401
    assert post(command, {"Content-Type": FORM_CONTENT_TYPE}) == 401

    assert "Traceback" not in bot.logs()
    assert httpx.get(bot.url + "/healthz").status_code == 200
