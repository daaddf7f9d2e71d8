"""Run an ASGI app on a loopback port in a background thread (tests, demo, bench)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    """A port nobody listens on right now (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, *, wait: bool = True) -> None:
        """Stop serving. `wait=False` returns at once and lets uvicorn close on its own thread (about
        0.15 s of its polling and grace period): for a test's teardown, where nothing needs the port
        closed afterwards; a test that stops a server to cut the bot off must wait."""
        self.server.should_exit = True
        if wait:
            self.thread.join(timeout=10)


def start_in_thread(app: ASGIApp, port: int = 0, *, timeout: float = 10.0) -> RunningServer:
    """Serve `app` on 127.0.0.1 in a daemon thread with its own event loop; returns once it accepts."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.01)
    return RunningServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)


@contextmanager
def serving(app: ASGIApp, port: int = 0) -> Iterator[str]:
    """Context manager form of start_in_thread yielding the base URL."""
    running = start_in_thread(app, port)
    try:
        yield running.url
    finally:
        running.stop()
