"""The HTTP face of the bot (Starlette): Slack requests, health, and the engine's lifecycle."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler, to_starlette_response
from slack_bolt.async_app import AsyncBoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.canvas.oauth import CALLBACK_PATH
from bot.engine.canvas_link import START_PATH
from bot.runtime import Runtime
from bot.slack.socket_mode import SocketModeRunner, start_socket_mode
from bot.store.models import utcnow
from bot.web.body_limit import BodyLimitMiddleware
from bot.web.live_events import live_events_routes

log = logging.getLogger(__name__)

MAX_POLL_LAG_INTERVALS = 2
"""/healthz says "degraded" once the oldest due poll is this many poll intervals late: one interval of
lateness is normal jitter and batching; two mean the poller is not keeping up or not running at all."""

_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")
"""What Slack sends in X-Slack-Request-Timestamp: Unix seconds in ASCII digits.

slack_sdk's verifier calls int() on the header, which raises on "abc" (a 500) and accepts what Slack
never sends (" 12", "1_0", Arabic-Indic digits, and over 4,300 digits raises again)."""


def _bolt_request(request: Request, body: bytes) -> AsyncBoltRequest | Response:
    """Bolt's request for a POST body, or the 4xx for one Bolt would crash on.

    Bolt decodes and parses the body before it verifies the signature, so a body that is not UTF-8, not
    JSON where JSON is due (`payload=...`), or JSON that is not an object raises inside Bolt (a 500 and a
    traceback for an unauthenticated sender). Those are refused here; a well-formed body, signed or not,
    goes on to Bolt, whose signature check answers 401 as before.
    """
    timestamp = request.headers.get("x-slack-request-timestamp")
    if timestamp is not None and not _SLACK_TIMESTAMP.fullmatch(timestamp):
        return PlainTextResponse("invalid request", status_code=401)
    try:
        text_body = body.decode("utf-8")
    except UnicodeDecodeError:
        return PlainTextResponse("request body is not UTF-8", status_code=400)
    try:
        bolt_request = AsyncBoltRequest(
            body=text_body, query=request.url.query, headers=dict(request.headers)
        )
    except (ValueError, TypeError, AttributeError):  # json.JSONDecodeError is a ValueError
        return PlainTextResponse("request body is not a Slack payload", status_code=400)
    if not isinstance(bolt_request.body, dict):
        return PlainTextResponse("request body is not a Slack payload", status_code=400)
    return bolt_request


def create_app(runtime: Runtime, *, run_engine: bool = True) -> Starlette:
    """The bot's ASGI app. The Canvas Live Events routes that the settings configure
    (`CANVAS_LIVE_EVENTS_JWKS_URL`, `CANVAS_LIVE_EVENTS_SECRET`) hand each conference join to the engine."""
    link_flow = runtime.link_flow
    # The JWK set's client: a request per key rotation, so httpx; closed with the app.
    live_events_http = httpx.AsyncClient()
    live_routes: list[BaseRoute] = live_events_routes(
        runtime.settings, http=live_events_http, sink=runtime.live_events.conference_joined
    )

    bolt = runtime.bolt_app()
    slack_handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        """POST: Slack's commands, interactivity and events, parsed safely (see `_bolt_request`)."""
        parsed = _bolt_request(request, await request.body())
        if isinstance(parsed, Response):
            return parsed
        return to_starlette_response(await bolt.async_dispatch(parsed))

    async def slack_oauth(request: Request) -> Response:
        """GET: Slack's install and OAuth redirect pages (Bolt's OAuth flow, no body)."""
        return await slack_handler.handle(request)

    max_poll_lag = MAX_POLL_LAG_INTERVALS * runtime.settings.poll_interval_seconds

    async def _poll_lag_seconds() -> float | None:
        """How late this replica's polling is (its schedule's most overdue unit, or its bucket lease
        heartbeat), or None before it polls. In memory: the schedules live there (issue 14)."""
        return runtime.poll_lag(utcnow())

    async def healthz(_request: Request) -> Response:
        """200 "ok", or 503 "degraded" when the database fails, the scheduler stopped or polling lags."""
        database = "ok"
        try:
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # any failure means "not healthy"; the kind is enough for a probe
            database = f"error: {type(error).__name__}"
        scheduler = "running" if runtime.scheduler.running else "stopped"
        lag = await _poll_lag_seconds() if database == "ok" else None
        polling = "ok" if lag is None or lag <= max_poll_lag else "stalled"
        engine_ok = not run_engine or (scheduler == "running" and polling == "ok")
        healthy = database == "ok" and engine_ok
        body: dict[str, object] = {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "scheduler": scheduler,
            "polling": polling,
            "max_poll_lag_seconds": max_poll_lag,
        }
        if lag is not None:
            body["poll_lag_seconds"] = round(lag, 1)
        last = runtime.scheduler.last_poll_tick
        if last is not None:
            body["last_poll_tick"] = last.isoformat()
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def metrics(_request: Request) -> Response:
        now = utcnow()
        body = await runtime.metrics.render(runtime.sessions, now, runtime.poll_lag(now))
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
            await live_events_http.aclose()
            await runtime.close()

    app = Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/slack/install", slack_oauth, methods=["GET"]),
            Route("/slack/oauth_redirect", slack_oauth, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route(START_PATH, link_flow.start, methods=["GET"]),
            Route(CALLBACK_PATH, link_flow.callback, methods=["GET"]),
            *live_routes,
        ],
        # every route, POST or not, sits behind the body cap: no handler reads an unbounded body
        middleware=[Middleware(BodyLimitMiddleware)],
        lifespan=lifespan,
    )
    return app
