"""The `/_sandbox` control API: how tests, the demo and benchmarks build and steer the fake Canvas.

No authentication, JSON in and out; a bad request answers 4xx `{"error": ...}` so a broken test
setup fails loudly instead of silently testing nothing.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox.canvas_render import conference_json, recording_json
from bot.sandbox.canvas_state import (
    FAULT_KINDS,
    CanvasState,
    DeveloperKey,
    Fault,
    SandboxError,
    User,
    iso,
    parse_iso,
)

Body = dict[str, Any]
ControlHandler = Callable[[CanvasState, Body, Request], Awaitable[Any]]


def _str(body: Body, key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise SandboxError(f"{key} must be a non-empty string")
    return value


def _opt_str(body: Body, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise SandboxError(f"{key} must be a string")
    return value


def _int(body: Body, key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SandboxError(f"{key} must be an integer")
    return value


def _number(body: Body, key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SandboxError(f"{key} must be a number")
    return float(value)


def _bool(body: Body, key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise SandboxError(f"{key} must be true or false")
    return value


def _int_list(body: Body, key: str) -> list[int]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SandboxError(f"{key} must be a list of integers")
    return value


def _str_list(body: Body, key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SandboxError(f"{key} must be a list of non-empty strings")
    return value


def _at(body: Body) -> float | None:
    text = _opt_str(body, "at")
    return None if text is None else parse_iso(text)


def control(handler: ControlHandler, status: int = 200) -> Callable[[Request], Awaitable[Response]]:
    """Parse the JSON body, run the handler on the state, map SandboxError to a 4xx answer."""

    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = await handler(request.app.state.canvas, body, request)
        except SandboxError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return JSONResponse(result, status_code=status)

    return endpoint


def _path_int(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    return value


async def create_user(state: CanvasState, body: Body, request: Request) -> Any:
    user, token = state.add_user(_str(body, "name"), _opt_str(body, "token"))
    return {"id": user.id, "name": user.name, "token": token}


async def bulk_users(state: CanvasState, body: Body, request: Request) -> Any:
    """Thousands of users with personal tokens in one call, for the benchmark's setup."""
    count = _int(body, "count")
    if not 0 <= count <= 1_000_000:
        raise SandboxError("count must be between 0 and 1000000")
    prefix = _str(body, "prefix", "bench")
    made = []
    for index in range(count):
        user, token = state.add_user(f"{prefix} {index}", f"1~{secrets.token_hex(20)}")
        made.append({"id": user.id, "token": token})
    return {"users": made}


async def create_token(state: CanvasState, body: Body, request: Request) -> Any:
    """A personal token; with `client_id` (and `scopes`) one as that developer key's OAuth flow makes it."""
    client_id = _opt_str(body, "client_id")
    if client_id is not None and client_id not in state.developer_keys:
        raise SandboxError(f"no developer key {client_id}", 404)
    scopes = _str_list(body, "scopes") if "scopes" in body else None
    return {"token": state.issue_token(_int(body, "user_id"), client_id=client_id, scopes=scopes)}


async def revoke_token(state: CanvasState, body: Body, request: Request) -> Any:
    state.revoke_token(request.path_params["token"])
    return {}


async def create_course(state: CanvasState, body: Body, request: Request) -> Any:
    course = state.add_course(
        _str(body, "name"),
        _opt_str(body, "course_code"),
        _bool(body, "conferencing_disabled", False),
    )
    return {"id": course.id, "name": course.name}


async def update_course(state: CanvasState, body: Body, request: Request) -> Any:
    course = state.course(_path_int(request, "course_id"))
    course.conferencing_disabled = _bool(body, "conferencing_disabled", course.conferencing_disabled)
    return {"id": course.id, "name": course.name}


async def enroll(state: CanvasState, body: Body, request: Request) -> Any:
    enrollment_state = _str(body, "state", "active")
    if enrollment_state not in ("active", "invited", "completed", "inactive"):
        raise SandboxError("state must be active, invited, completed or inactive")
    state.enroll(_path_int(request, "course_id"), _int(body, "user_id"), _str(body, "type"), enrollment_state)
    return {}


async def create_group(state: CanvasState, body: Body, request: Request) -> Any:
    course_id = body.get("course_id")
    if course_id is not None:
        course_id = _int(body, "course_id")
    group = state.add_group(_str(body, "name"), course_id, _int_list(body, "user_ids"))
    return {"id": group.id, "name": group.name}


async def create_conference(state: CanvasState, body: Body, request: Request) -> Any:
    context_type = body.get("context_type", "Course")
    if context_type not in ("Course", "Group"):
        raise SandboxError("context_type must be Course or Group")
    conference = state.add_conference(
        context_type=context_type,
        context_id=_int(body, "context_id"),
        title=_str(body, "title"),
        conference_type=_str(body, "conference_type", "BigBlueButton"),
        description=_opt_str(body, "description"),
        user_ids=_int_list(body, "user_ids"),
        long_running=_bool(body, "long_running", False),
        duration=_int(body, "duration", 60),
        join_url=_opt_str(body, "join_url"),
        initiator=_int(body, "initiator_id") if body.get("initiator_id") is not None else None,
    )
    if body.get("start_at") is not None:
        end_at = body.get("end_at")
        end = None if end_at is None else parse_iso(str(end_at))
        state.schedule_conference(conference.id, parse_iso(_str(body, "start_at")), end)
    return conference_json(conference)


async def schedule_conference(state: CanvasState, body: Body, request: Request) -> Any:
    """Move a conference's scheduled start (and end); null start_at clears the schedule."""
    start_at, end_at = body.get("start_at"), body.get("end_at")
    return conference_json(
        state.schedule_conference(
            _path_int(request, "conference_id"),
            None if start_at is None else parse_iso(str(start_at)),
            None if end_at is None else parse_iso(str(end_at)),
        )
    )


async def restart_conference(state: CanvasState, body: Body, request: Request) -> Any:
    return conference_json(state.restart_conference(_path_int(request, "conference_id")))


async def delete_conference(state: CanvasState, body: Body, request: Request) -> Any:
    state.delete_conference(_path_int(request, "conference_id"))
    return {"deleted": True}


async def start_conference(state: CanvasState, body: Body, request: Request) -> Any:
    attendees = _int_list(body, "user_ids") if "user_ids" in body else None
    return conference_json(state.start_conference(_path_int(request, "conference_id"), _at(body), attendees))


async def end_conference(state: CanvasState, body: Body, request: Request) -> Any:
    return conference_json(state.end_conference(_path_int(request, "conference_id"), _at(body)))


async def add_recording(state: CanvasState, body: Body, request: Request) -> Any:
    created_format = _str(body, "created_at_format", "epoch_ms")
    if created_format not in ("epoch_ms", "iso"):
        raise SandboxError("created_at_format must be epoch_ms or iso")
    playback = body.get("playback_url")
    recording = state.add_recording(
        _path_int(request, "conference_id"),
        str(request.base_url).rstrip("/"),
        title=_opt_str(body, "title"),
        duration_minutes=_int(body, "duration_minutes", 45),
        # `playback_url`: true/false (the sandbox's own page or null), or the URL text itself.
        with_playback_url=isinstance(playback, str) or _bool(body, "playback_url", True),
        playback_url=playback if isinstance(playback, str) else None,
        format_url=_opt_str(body, "format_url"),
        created_at_iso=created_format == "iso",
    )
    return recording_json(recording)


async def add_fault(state: CanvasState, body: Body, request: Request) -> Any:
    kind = _str(body, "kind")
    if kind not in FAULT_KINDS:
        raise SandboxError(f"kind must be one of {sorted(FAULT_KINDS)}")
    default_seconds = 30.0 if kind == "timeout" else 1.0
    fault = Fault(
        kind=kind,
        remaining=_int(body, "count", 1),
        seconds=_number(body, "seconds", default_seconds),
        token=_opt_str(body, "token"),
        path_prefix=_str(body, "path_prefix", "/api/v1"),
    )
    if fault.remaining > 0:
        state.faults.append(fault)
    return {}


async def clear_faults(state: CanvasState, body: Body, request: Request) -> Any:
    state.faults.clear()
    return {}


async def update_settings(state: CanvasState, body: Body, request: Request) -> Any:
    settings = state.settings
    if "throttle_status" in body:
        status = _int(body, "throttle_status")
        if status not in (403, 429):
            raise SandboxError("throttle_status must be 403 or 429")
        settings.throttle_status = status
    settings.bucket_high_water = _number(body, "bucket_high_water", settings.bucket_high_water)
    settings.up_front_cost = _number(body, "up_front_cost", settings.up_front_cost)
    settings.request_cost = _number(body, "request_cost", settings.request_cost)
    settings.outflow_per_second = _number(body, "outflow_per_second", settings.outflow_per_second)
    settings.while1_prefix = _bool(body, "while1_prefix", settings.while1_prefix)
    return {
        "throttle_status": settings.throttle_status,
        "bucket_high_water": settings.bucket_high_water,
        "up_front_cost": settings.up_front_cost,
        "request_cost": settings.request_cost,
        "outflow_per_second": settings.outflow_per_second,
        "while1_prefix": settings.while1_prefix,
    }


async def add_developer_key(state: CanvasState, body: Body, request: Request) -> Any:
    """Create or replace a key; `scopes` and `require_scopes` ("Enforce Scopes") as the admin ticked them."""
    key = DeveloperKey(
        client_id=_str(body, "client_id"),
        client_secret=_str(body, "client_secret"),
        redirect_uri=_str(body, "redirect_uri"),
        scopes=_str_list(body, "scopes"),
        require_scopes=_bool(body, "require_scopes", False),
    )
    state.put_developer_key(key)
    return {}


async def login(state: CanvasState, body: Body, request: Request) -> Any:
    user: User = state.user(_int(body, "user_id"))
    state.logged_in_user_id = user.id
    return {}


async def advance_clock(state: CanvasState, body: Body, request: Request) -> Any:
    if "advance_seconds" in body:
        state.clock.advance(_number(body, "advance_seconds", 0.0))
    return {"now": iso(state.clock.now())}


async def request_counts(state: CanvasState, body: Body, request: Request) -> Any:
    """Requests per token; with `?times=1` also each request's arrival time (Unix seconds) per token, with
    `?times=live` only the live poll's requests' (the session scan's listings left out)."""
    answer: dict[str, Any] = {"by_token": dict(state.request_counts), "total": state.request_total}
    if request.query_params.get("times") == "live":
        answer["times_by_token"] = {token: list(times) for token, times in state.live_poll_times.items()}
    elif request.query_params.get("times"):
        answer["times_by_token"] = {token: list(times) for token, times in state.request_times.items()}
    if request.query_params.get("routes"):
        answer["by_route"] = dict(state.route_totals)
        answer["routes_by_token"] = {token: dict(routes) for token, routes in state.route_counts.items()}
    return answer


async def issued_tokens(state: CanvasState, body: Body, request: Request) -> Any:
    return {"issued": list(state.issued)}


async def reset_request_counts(state: CanvasState, body: Body, request: Request) -> Any:
    state.request_counts.clear()
    state.request_times.clear()
    state.live_poll_times.clear()
    state.route_totals.clear()
    state.route_counts.clear()
    state.request_total = 0
    return {}


async def playback_page(request: Request) -> Response:
    """Where sandbox recordings' playback URLs lead, so a clicked link does not dead-end."""
    recording_id = html.escape(request.path_params["recording_id"])
    return HTMLResponse(f"<!doctype html><html><body><h1>Recording {recording_id}</h1></body></html>")


def control_routes() -> list[BaseRoute]:
    post = ["POST"]
    return [
        Route("/_sandbox/users", control(create_user), methods=post),
        Route("/_sandbox/bulk_users", control(bulk_users), methods=post),
        Route("/_sandbox/tokens", control(create_token), methods=post),
        Route("/_sandbox/tokens", control(issued_tokens), methods=["GET"]),
        Route("/_sandbox/tokens/{token}/revoke", control(revoke_token), methods=post),
        Route("/_sandbox/courses", control(create_course), methods=post),
        Route("/_sandbox/courses/{course_id:int}", control(update_course), methods=post),
        Route("/_sandbox/courses/{course_id:int}/enrollments", control(enroll), methods=post),
        Route("/_sandbox/groups", control(create_group), methods=post),
        Route("/_sandbox/conferences", control(create_conference), methods=post),
        Route("/_sandbox/conferences/{conference_id:int}/start", control(start_conference), methods=post),
        Route("/_sandbox/conferences/{conference_id:int}/end", control(end_conference), methods=post),
        Route("/_sandbox/conferences/{conference_id:int}/restart", control(restart_conference), methods=post),
        Route(
            "/_sandbox/conferences/{conference_id:int}/schedule", control(schedule_conference), methods=post
        ),
        Route("/_sandbox/conferences/{conference_id:int}", control(delete_conference), methods=["DELETE"]),
        Route("/_sandbox/conferences/{conference_id:int}/recordings", control(add_recording), methods=post),
        Route("/_sandbox/faults", control(add_fault), methods=post),
        Route("/_sandbox/faults", control(clear_faults), methods=["DELETE"]),
        Route("/_sandbox/settings", control(update_settings), methods=post),
        Route("/_sandbox/developer_keys", control(add_developer_key), methods=post),
        Route("/_sandbox/login", control(login), methods=post),
        Route("/_sandbox/clock", control(advance_clock), methods=["GET", "POST"]),
        Route("/_sandbox/requests", control(request_counts), methods=["GET"]),
        Route("/_sandbox/requests/reset", control(reset_request_counts), methods=post),
        Route("/_sandbox/playback/{recording_id}", playback_page, methods=["GET"]),
    ]
