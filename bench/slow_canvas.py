"""The sandbox Canvas behind a fixed response latency, as a remote Canvas is (run as a child process).

On loopback the sandbox answers in well under a millisecond, so a poller's speed is only its CPU; a
real Canvas is tens to hundreds of milliseconds away, and then how many requests are in flight decides
throughput. Every `/api/` request waits `--latency` seconds (asyncio.sleep: no CPU) before the sandbox
handles it; the `/_sandbox` control routes used for seeding answer at once.

    python -m bench.slow_canvas --port P --latency 0.1
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.sandbox.canvas import create_canvas_app


class Latency:
    """ASGI middleware: sleep before every API request, like a network round trip plus server time."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/api/"):
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True, help="seconds added to every API request")
    args = parser.parse_args(argv)
    app = Latency(create_canvas_app(), args.latency)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
