"""`/_sandbox/live_events`: subscribe a URL to the sandbox's Live Events, rotate keys, see deliveries.

- `POST /_sandbox/live_events` `{url, signed, global_ids, max_attempts, retry_seconds, faults: {delay_seconds,
  duplicate, reorder, fail_first, forged, expired}}`: the subscription (`url: null` ends it);
- `GET /_sandbox/live_events/jwks.json`: the public JWK set (previous, current, next key), as Instructure
  publishes it; each fetch is counted;
- `POST /_sandbox/live_events/rotate` `{times}`: rotate the keys once or more;
- `GET /_sandbox/live_events/deliveries`: every attempt with the receiver's status, what is pending,
  JWKS fetches; `DELETE` forgets the attempts.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox.canvas_control import Body, _bool, _int, _number, _opt_str, control
from bot.sandbox.canvas_live_events import LiveEventsEmitter, LiveEventsFaults, Subscription
from bot.sandbox.canvas_state import CanvasState, SandboxError


def _emitter(request: Request) -> LiveEventsEmitter:
    emitter: LiveEventsEmitter = request.app.state.live_events
    return emitter


def _faults(body: Body) -> LiveEventsFaults:
    faults = body.get("faults", {})
    if not isinstance(faults, dict):
        raise SandboxError("faults must be an object")
    unknown = set(faults) - set(LiveEventsFaults.__dataclass_fields__)
    if unknown:
        raise SandboxError(f"unknown faults: {', '.join(sorted(unknown))}")
    parsed = LiveEventsFaults(
        delay_seconds=_number(faults, "delay_seconds", 0.0),
        duplicate=_bool(faults, "duplicate", False),
        reorder=_bool(faults, "reorder", False),
        fail_first=_int(faults, "fail_first", 0),
        forged=_bool(faults, "forged", False),
        expired=_bool(faults, "expired", False),
    )
    if parsed.delay_seconds < 0 or parsed.fail_first < 0:
        raise SandboxError("delay_seconds and fail_first must not be negative")
    return parsed


async def subscribe(state: CanvasState, body: Body, request: Request) -> Any:
    url = _opt_str(body, "url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise SandboxError("url must be an http(s) URL or null")
    subscription = Subscription(
        url=url,
        signed=_bool(body, "signed", True),
        global_ids=_bool(body, "global_ids", False),
        faults=_faults(body),
        max_attempts=_int(body, "max_attempts", 4),
        retry_seconds=_number(body, "retry_seconds", 0.2),
        canvas_url=str(request.base_url).rstrip("/"),
    )
    if subscription.max_attempts < 1 or subscription.retry_seconds < 0:
        raise SandboxError("max_attempts must be at least 1 and retry_seconds not negative")
    emitter = _emitter(request)
    emitter.subscribe(subscription)
    return {
        "subscription": {"url": url, "signed": subscription.signed, "global_ids": subscription.global_ids},
        "jwks_url": f"{subscription.canvas_url}/_sandbox/live_events/jwks.json",
        "current_kid": emitter.keys.current_kid if subscription.signed else None,
    }


async def rotate_keys(state: CanvasState, body: Body, request: Request) -> Any:
    times = _int(body, "times", 1)
    if not 1 <= times <= 10:
        raise SandboxError("times must be between 1 and 10")
    keys = _emitter(request).keys
    for _ in range(times):
        keys.rotate()
    return {"current_kid": keys.current_kid}


async def deliveries(state: CanvasState, body: Body, request: Request) -> Any:
    return _emitter(request).report()


async def forget_deliveries(state: CanvasState, body: Body, request: Request) -> Any:
    emitter = _emitter(request)
    emitter.deliveries.clear()
    emitter.jwks_requests = 0
    return {}


async def jwks(request: Request) -> Response:
    emitter = _emitter(request)
    emitter.jwks_requests += 1
    return JSONResponse(emitter.keys.jwks())


def live_events_routes() -> list[BaseRoute]:
    return [
        Route("/_sandbox/live_events", control(subscribe), methods=["POST"]),
        Route("/_sandbox/live_events/jwks.json", jwks, methods=["GET"]),
        Route("/_sandbox/live_events/rotate", control(rotate_keys), methods=["POST"]),
        Route("/_sandbox/live_events/deliveries", control(deliveries), methods=["GET"]),
        Route("/_sandbox/live_events/deliveries", control(forget_deliveries), methods=["DELETE"]),
    ]
