"""A fault proxy for the tests: real-world network and server faults in front of the sandboxes.

The sandboxes answer like Canvas and Slack on a good day; this proxy sits between the bot and a sandbox
(on loopback, its own thread and event loop) and makes the bad days happen on demand:

- `reset` / `drop`: the request is fully sent and, with `forward=True`, even processed upstream (Slack
  accepted the message, Canvas recorded the refresh); then the connection is reset (RST) or closed
  (FIN) without an answer. The client cannot tell whether its request took effect.
- `hang`: accept the request and never answer (until the client gives up or the proxy stops).
- `delay`: wait, then forward (a slow page; Link headers and bodies pass through untouched).
- `slow_body`: forward, send the headers, then drip the body over `seconds`.
- `respond`: answer without forwarding: 5xx storms, HTML error pages from a proxy, throttles.
- `endless_pages`: a page every `seconds`, each with a fresh `rel="next"` link (a Canvas that keeps
  paginating slowly: no single request is slow enough for a request timeout to catch it).

Rules match on method, a path regular expression and a substring of the Authorization header, and
apply `times` times (None: until removed) with a probability. Everything is counted so a test can
assert that the fault it asked for really happened.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Literal

import httpx

FaultKind = Literal["reset", "drop", "hang", "delay", "slow_body", "respond", "endless_pages"]

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te"}
MAX_HEADER_BYTES = 64 * 1024

HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)
CANVAS_THROTTLE_BODY = b"403 Forbidden (Rate Limit Exceeded)"


@dataclass
class Fault:
    """One rule. `path` is a regular expression searched in the request path (query excluded)."""

    kind: FaultKind
    path: str = ""
    method: str | None = None
    token: str | None = None
    times: int | None = None
    probability: float = 1.0
    seconds: float = 0.0
    forward: bool = True
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    applied: int = 0

    def matches(self, method: str, path: str, authorization: str) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path and re.search(self.path, path) is None:
            return False
        if self.token is not None and self.token not in authorization:
            return False
        return random.random() < self.probability


def html_page(status: int = 502, path: str = "") -> Fault:
    """A load balancer's HTML error page where JSON was expected."""
    return Fault(
        "respond", path=path, status=status, body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"}
    )


def canvas_throttle(path: str = "", *, times: int | None = None, token: str | None = None) -> Fault:
    """Canvas's leaky bucket overflowing: 403 text/plain `403 Forbidden (Rate Limit Exceeded)`."""
    return Fault(
        "respond",
        path=path,
        times=times,
        token=token,
        status=403,
        body=CANVAS_THROTTLE_BODY,
        headers={"Content-Type": "text/plain", "X-Rate-Limit-Remaining": "0.0"},
    )


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 in front of `upstream`, applying the first matching Fault."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._rules: list[Fault] = []
        self._lock = threading.Lock()
        self.applied: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control (any thread) -----------------------------------------------------------------

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._rules.extend(faults)

    def remove(self, *faults: Fault) -> None:
        with self._lock:
            self._rules = [rule for rule in self._rules if all(rule is not f for f in faults)]

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    @contextmanager
    def active(self, *faults: Fault) -> Iterator[None]:
        """The faults hold inside the block only (an outage with a start and an end)."""
        self.add(*faults)
        try:
            yield
        finally:
            self.remove(*faults)

    def count(self, kind: str) -> int:
        with self._lock:
            return self.applied[kind]

    def seen(self, path_fragment: str) -> int:
        with self._lock:
            return sum(n for path, n in self.requests.items() if path_fragment in path)

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    # -- the proxy (its own loop) -------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0), follow_redirects=False)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        assert self._server is not None and self._client is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def _pick(self, request: _Request) -> Fault | None:
        with self._lock:
            self.requests[request.path] += 1
            for rule in self._rules:
                if rule.matches(request.method, request.path, request.header("authorization")):
                    rule.applied += 1
                    self.applied[rule.kind] += 1
                    return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._answer(request, self._pick(request), writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _answer(self, request: _Request, fault: Fault | None, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be used again."""
        if fault is None:
            await _write(writer, *await self._forward(request))
            return True
        if fault.kind == "hang":
            await asyncio.sleep(3600)
            return False
        if fault.kind in ("reset", "drop"):
            if fault.forward:
                await self._forward(request)
            if fault.kind == "reset":
                _reset(writer)
            else:
                writer.close()
            return False
        if fault.kind == "respond":
            headers = [(k, v) for k, v in fault.headers.items()]
            await _write(writer, fault.status, headers, fault.body)
            return True
        if fault.kind == "endless_pages":
            await asyncio.sleep(fault.seconds)
            page = f"http://{request.header('host')}{request.path}?page=bookmark:{uuid.uuid4().hex}"
            link = f'<{page}>; rel="next"'
            headers = [("Content-Type", "application/json"), ("Link", link)]
            await _write(writer, 200, headers, fault.body or b'{"conferences": []}')
            return True
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await _write(writer, *await self._forward(request))
            return True
        status, headers, body = await self._forward(request)
        await _write(writer, status, headers, body, drip_seconds=fault.seconds)
        return True

    async def _forward(self, request: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        """Pass the request on; Host is kept, so the sandbox's Link headers name the proxy."""
        assert self._client is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
        async with self._client.stream(
            request.method, self.upstream + request.target, headers=headers, content=request.body
        ) as response:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            out = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in HOP_BY_HOP]
            return response.status_code, out, body


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("request head too large")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
    length = 0
    for key, value in headers:
        if key.lower() == "content-length":
            length = int(value)
        if key.lower() == "transfer-encoding" and "chunked" in value.lower():
            return _Request(method, target, headers, await _read_chunked(reader))
    body = await reader.readexactly(length) if length else b""
    return _Request(method, target, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _write(
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    drip_seconds: float = 0.0,
) -> None:
    head = [f"HTTP/1.1 {status} {_reason(status)}"]
    head += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
    head += [f"Content-Length: {len(body)}", "", ""]
    writer.write("\r\n".join(head).encode("latin-1"))
    if drip_seconds <= 0 or not body:
        writer.write(body)
        await writer.drain()
        return
    await writer.drain()
    pieces = 10
    step = max(1, len(body) // pieces)
    for start in range(0, len(body), step):
        await asyncio.sleep(drip_seconds / pieces)
        writer.write(body[start : start + step])
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: the client sees 'connection reset by peer'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
