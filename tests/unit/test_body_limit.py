"""The body cap as plain ASGI: what reaches the app, and what is answered without it."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.web.body_limit import BodyLimitMiddleware, Message, Receive, Scope, Send


class RecordingApp:
    """An ASGI app that reads its whole body and remembers it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def run(
    parts: list[bytes], headers: list[tuple[bytes, bytes]], max_bytes: int = 10
) -> tuple[int, RecordingApp, int]:
    """Drive the middleware with `parts` as the body; returns (status, app, body messages consumed)."""
    app = RecordingApp()
    pending = [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]
    consumed = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal consumed
        consumed += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    asyncio.run(BodyLimitMiddleware(app, max_bytes)(scope, receive, send))
    return int(sent[0]["status"]), app, consumed


def test_a_body_within_the_cap_is_replayed_whole_to_the_app() -> None:
    status, app, _ = run([b"abc", b"def", b"ghij"], [])
    assert (status, app.bodies) == (200, [b"abcdefghij"])


def test_a_declared_length_over_the_cap_is_refused_without_reading() -> None:
    status, app, consumed = run([b"x" * 11], [(b"content-length", b"11")])
    assert (status, app.bodies, consumed) == (413, [], 0)


def test_an_undeclared_body_is_cut_off_as_soon_as_it_passes_the_cap() -> None:
    status, app, consumed = run([b"x" * 6, b"x" * 6, b"x" * 6, b"x" * 6], [])
    assert (status, app.bodies, consumed) == (413, [], 2)


def test_a_content_length_that_is_not_a_number_is_a_400() -> None:
    assert run([b"x"], [(b"content-length", b"1e3")])[0] == 400
    assert run([b"x"], [(b"content-length", b"1"), (b"content-length", b"2")])[0] == 400
