"""The HTTP face of the bot (Starlette): Slack requests, health, and the engine's lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.canvas_link import CALLBACK_PATH, START_PATH
from bot.runtime import Runtime
from bot.slack.app import build_bolt_app
from bot.socket_mode import SocketModeRunner, start_socket_mode
from bot.store.models import utcnow

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, run_engine: bool = True) -> Starlette:
    link_flow = runtime.link_flow

    bolt = build_bolt_app(runtime)
    slack_handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        return await slack_handler.handle(request)

    async def healthz(_request: Request) -> Response:
        database = "ok"
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # any failure means "not healthy"; the kind is enough for a probe
            database = f"error: {type(error).__name__}"
        scheduler = "running" if runtime.scheduler.running else "stopped"
        healthy = database == "ok" and (scheduler == "running" or not run_engine)
        body = {"status": "ok" if healthy else "degraded", "database": database, "scheduler": scheduler}
        last = runtime.scheduler.last_poll_tick
        if last is not None:
            body["last_poll_tick"] = last.isoformat()
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics(_request: Request) -> Response:
        body = await runtime.metrics.render(runtime.sessions, utcnow())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if run_engine:
            runtime.scheduler.start()
        socket: SocketModeRunner | None = None
        try:
            if runtime.settings.slack_app_token is not None:
                socket = await start_socket_mode(
                    bolt,
                    runtime.settings.slack_app_token.get_secret_value(),
                    api_url=runtime.settings.slack_api_root,
                )
            yield
        finally:
            if socket is not None:
                await socket.close()
            await runtime.close()

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/slack/install", slack_events, methods=["GET"]),
            Route("/slack/oauth_redirect", slack_events, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route(START_PATH, link_flow.start, methods=["GET"]),
            Route(CALLBACK_PATH, link_flow.callback, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
