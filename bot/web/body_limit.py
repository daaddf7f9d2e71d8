"""A cap on request bodies, enforced before anything reads them (pure ASGI, wraps the whole app).

Bolt reads the whole body of `/slack/events` into memory (and decodes and parses it) before it checks
Slack's signature, so without a cap anyone who can reach the bot can make it hold an arbitrarily large
unsigned body: a 35 MB POST took the process from 102 to 376 MB, enough to OOM-kill a 384 Mi pod. This
middleware answers 413 from the `Content-Length` header alone when it is over the cap, and for bodies
without a length (chunked) it reads at most the cap and then stops and answers 413. An accepted body is
buffered (it is small) and replayed to the app unchanged, so every route (Slack, the Canvas OAuth
callback, anything added later) is protected without knowing about the cap.

It is not Starlette's BaseHTTPMiddleware on purpose: that wraps the app in a task and a stream per
request and has had its own body-handling bugs; this is a few lines over the ASGI protocol itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_REQUEST_BODY_BYTES = 1024 * 1024
"""The largest request body the bot accepts (1 MiB).

Slack's payloads are small: a slash command is well under 4 KB and an Events API callback a few KB. The
biggest legitimate ones are interactivity payloads, and the largest of those a `view_submission`: a modal
holds at most 100 blocks, each input at most 3,000 characters, plus 3,000 characters of
`private_metadata`; the whole JSON view is echoed back along with its `state`. Form-encoding can triple
that (non-ASCII text becomes %XX per UTF-8 byte), which still lands in the low hundreds of KB. 1 MiB
leaves several times that margin while bounding what an unauthenticated sender can make us hold.
"""

_DIGITS = re.compile(r"[0-9]{1,19}")


async def _send_status(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | str | None:
    """The request's Content-Length as an int, None when absent, or "invalid" when it is not a number."""
    values = [value for name, value in scope.get("headers", []) if name.lower() == b"content-length"]
    if not values:
        return None
    text = values[0].decode("latin-1").strip()
    if len(set(values)) > 1 or not _DIGITS.fullmatch(text):
        return "invalid"
    return int(text)


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before reading them; replay accepted ones."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BODY_BYTES) -> None:
        self._app = app
        self._max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared == "invalid":
            await _send_status(send, 400, "Invalid Content-Length")
            return
        if isinstance(declared, int) and declared > self._max_bytes:
            await _send_status(send, 413, "Request body too large")
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-body: nobody is left to answer
            chunk = bytes(message.get("body", b""))
            received += len(chunk)
            if received > self._max_bytes:
                await _send_status(send, 413, "Request body too large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self._app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that yields the buffered body once, then defers to the real one (for disconnects)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
