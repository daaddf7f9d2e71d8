"""Serve an ASGI app on this event loop (the bot and the demo page), not on a thread of its own.

The page's controls call the bot's own parts (the database, the digest runner), whose connections belong
to the loop that made them, so everything the demo runs shares one loop. The socket is bound before
uvicorn starts, so a taken port is a one-line DemoError instead of uvicorn exiting the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from bot.demo.controls import until
from bot.demo.world import DemoError

HOST = "127.0.0.1"


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: asyncio.run turns Ctrl-C into a clean cancellation."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class LoopServer:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=10)
        except TimeoutError:
            self.server.force_exit = True
            await self.task


def _bound(port: int, what: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        raise DemoError(f"cannot serve {what} on port {port or 'any'}: {error.strerror or error}") from None
    return sock


async def serve_on_loop(
    app: ASGIApp, port: int, *, what: str, lifespan: Literal["on", "off"] = "off"
) -> LoopServer:
    """Serve `app` on 127.0.0.1:`port` (0: any free port) and return once it accepts connections."""
    sock = _bound(port, what)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan=lifespan)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started or task.done(), within=15, what=f"{what} to start")
    if task.done():
        sock.close()
        raise DemoError(f"{what} did not start (see the log above)")
    return LoopServer(f"http://{HOST}:{sock.getsockname()[1]}", server, task)
