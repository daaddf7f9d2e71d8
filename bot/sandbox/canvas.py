"""A faithful local Canvas LMS (conferences, courses, OAuth2) for tests, the demo and benchmarks.

It reproduces the behaviours confbot must survive — `state=live` semantics, participation filtering,
bookmark pagination, the per-token leaky bucket answering 403 (or 429), 401s with and without
`WWW-Authenticate`, 302s instead of JSON, `while(1);`, developer keys that enforce scopes — and lets
tests steer it through `/_sandbox`.

Throttling follows Canvas: each request reserves `up_front_cost` while in flight and is then charged
only `request_cost`, so sequential clients rarely throttle; raise `request_cost` (or lower
`bucket_high_water`) through `POST /_sandbox/settings` to provoke it. The bucket leaks on the sandbox
clock, so advancing the clock drains it.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import secrets
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox.canvas_control import control_routes
from bot.sandbox.canvas_live_control import live_events_routes
from bot.sandbox.canvas_live_events import LiveEventsEmitter
from bot.sandbox.canvas_oauth import bearer_token, oauth_routes
from bot.sandbox.canvas_render import (
    NOT_FOUND,
    THROTTLED_BODY,
    UNAUTHENTICATED,
    UNAUTHORIZED,
    WWW_AUTHENTICATE,
    bookmark_page,
    conferences_text,
    course_json,
    group_json,
    json_response,
    json_text_response,
    numbered_page,
    user_json,
)
from bot.sandbox.canvas_scopes import INSUFFICIENT_SCOPES
from bot.sandbox.canvas_state import Bucket, CanvasState, Conference, Course, User

__all__ = ["CanvasState", "create_canvas_app"]

CSRF_COOKIE = "_csrf_token"

Handler = Callable[[Request, User], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _state(request: Request) -> CanvasState:
    state: CanvasState = request.app.state.canvas
    return state


async def _sleep_unless_gone(request: Request, seconds: float) -> None:
    """Sleep like a slow server, but stop early once the client hung up so shutdown is not held up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(0.05, left))
        if await request.is_disconnected():
            return


def _throttled(state: CanvasState, bucket: Bucket) -> Response:
    if state.settings.throttle_status == 429:
        excess = bucket.level + state.settings.up_front_cost - state.settings.bucket_high_water
        wait = max(1, math.ceil(excess / max(state.settings.outflow_per_second, 0.001)))
        return PlainTextResponse("429 Too Many Requests", status_code=429, headers={"Retry-After": str(wait)})
    return PlainTextResponse(THROTTLED_BODY, status_code=403)


def _server_error(state: CanvasState) -> Response:
    body = {
        "errors": [{"message": "An error occurred.", "error_code": "internal_server_error"}],
        "error_report_id": state.next_error_report_id(),
    }
    return json_response(state, body, 500)


def api(handler: Handler) -> Endpoint:
    """Wrap an API handler with Canvas' request pipeline: count, faults, throttle, authenticate; every answer
    sets a cookie, as Canvas' does."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        token = bearer_token(request)
        live_only = request.query_params.get("state")
        route = f"{request.method} {request.url.path}" + (f"?state={live_only}" if live_only else "")
        state.count_request(token, route)
        if "cookie" in request.headers:
            state.requests_with_cookies += 1
        client = request.client.host if request.client else "anonymous"
        bucket, full = state.reserve(token or f"ip:{client}")
        cost = state.settings.request_cost
        try:
            fault = state.take_fault(request.url.path, token)
            if fault is not None and fault.kind in ("delay", "timeout"):
                await _sleep_unless_gone(request, fault.seconds)
            if fault is not None and fault.kind == "error_500":
                response = _server_error(state)
            elif full or (fault is not None and fault.kind == "throttle"):
                cost = 0.0
                response = _throttled(state, bucket)
            elif token is None:
                response = json_response(state, UNAUTHENTICATED, 401, WWW_AUTHENTICATE)
            else:
                user = state.authenticate(token)
                if isinstance(user, str):
                    response = json_response(state, {"errors": [{"message": user}]}, 401, WWW_AUTHENTICATE)
                elif state.scope_refused(token, request.method, request.url.path):
                    response = json_response(state, INSUFFICIENT_SCOPES, 401)  # no WWW-Authenticate
                else:
                    response = await handler(request, user)
        finally:
            state.settle(bucket, cost)
        response.headers["X-Request-Cost"] = f"{cost:.4f}"
        response.headers["X-Rate-Limit-Remaining"] = f"{state.remaining(bucket):.3f}"
        # Canvas answers API requests with a fresh masked CSRF cookie too, token-authenticated or not.
        response.set_cookie(CSRF_COOKIE, secrets.token_urlsafe(24), path="/", samesite="lax")
        return response

    return endpoint


def _redirect_to(request: Request, path: str) -> Response:
    """Canvas' `require_config` bounce: an HTML redirect where a JSON client expected data."""
    location = f"{request.base_url}".rstrip("/") + path
    body = f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.</body></html>'
    return HTMLResponse(body, status_code=302, headers={"Location": location})


def _int_param(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    return value


async def users_self(request: Request, user: User) -> Response:
    return json_response(_state(request), user_json(user))


async def conferences_for_user(request: Request, user: User) -> Response:
    state = _state(request)
    live_only = request.query_params.get("state") == "live"
    chunk, link = bookmark_page(request, state.conferences_for_user(user.id, live_only))
    return json_text_response(state, conferences_text(chunk), headers={"Link": link})


def _conference_index(request: Request, items: list[Conference]) -> Response:
    chunk, link = numbered_page(request, items)
    return json_text_response(_state(request), conferences_text(chunk), headers={"Link": link})


async def course_conferences(request: Request, user: User) -> Response:
    state = _state(request)
    course = state.courses.get(_int_param(request, "course_id"))
    if course is None:
        return json_response(state, NOT_FOUND, 404)
    if course.conferencing_disabled:
        return _redirect_to(request, f"/courses/{course.id}")
    if not state.active_enrollments(course, user.id):
        return json_response(state, UNAUTHORIZED, 401)
    see_all = state.manages(course, user.id)
    return _conference_index(request, state.context_conferences("Course", course.id, user.id, see_all))


async def group_conferences(request: Request, user: User) -> Response:
    state = _state(request)
    group = state.groups.get(_int_param(request, "group_id"))
    if group is None:
        return json_response(state, NOT_FOUND, 404)
    course = state.courses.get(group.course_id) if group.course_id is not None else None
    if course is not None and course.conferencing_disabled:
        return _redirect_to(request, f"/groups/{group.id}")
    manages = course is not None and state.manages(course, user.id)
    if user.id not in group.member_ids and not manages:
        return json_response(state, UNAUTHORIZED, 401)
    return _conference_index(request, state.context_conferences("Group", group.id, user.id, manages))


async def list_courses(request: Request, user: User) -> Response:
    state = _state(request)
    courses: list[Course] = [state.courses[cid] for cid in sorted(state.user_active_courses.get(user.id, ()))]
    chunk, link = numbered_page(request, courses)
    return json_response(state, [course_json(state, c, user.id) for c in chunk], headers={"Link": link})


async def show_course(request: Request, user: User) -> Response:
    state = _state(request)
    course = state.courses.get(_int_param(request, "course_id"))
    if course is None:
        return json_response(state, NOT_FOUND, 404)
    if not state.active_enrollments(course, user.id):
        return json_response(state, UNAUTHORIZED, 401)
    return json_response(state, course_json(state, course, user.id))


async def course_users(request: Request, user: User) -> Response:
    """`GET /api/v1/courses/:course_id/users`: people with an active enrollment, by sortable name (Canvas
    answers 401 to someone not in the course: reading the roster needs an enrollment)."""
    state = _state(request)
    course = state.courses.get(_int_param(request, "course_id"))
    if course is None:
        return json_response(state, NOT_FOUND, 404)
    if not state.active_enrollments(course, user.id):
        return json_response(state, UNAUTHORIZED, 401)
    ids = dict.fromkeys(e.user_id for e in course.enrollments if e.state == "active")
    people = sorted((state.users[i] for i in ids), key=lambda u: (user_json(u)["sortable_name"], u.id))
    chunk, link = numbered_page(request, people)
    return json_response(state, [user_json(u) for u in chunk], headers={"Link": link})


async def show_group(request: Request, user: User) -> Response:
    state = _state(request)
    group = state.groups.get(_int_param(request, "group_id"))
    if group is None:
        return json_response(state, NOT_FOUND, 404)
    course = state.courses.get(group.course_id) if group.course_id is not None else None
    if user.id not in group.member_ids and not (course is not None and state.manages(course, user.id)):
        return json_response(state, UNAUTHORIZED, 401)
    return json_response(state, group_json(group))


async def api_not_found(request: Request, user: User) -> Response:
    return json_response(_state(request), NOT_FOUND, 404)


async def join_page(request: Request) -> Response:
    """Stands in for Canvas' join redirect to BigBlueButton: a page a person can open from an alert."""
    state = _state(request)
    context_type = "Course" if request.url.path.startswith("/courses/") else "Group"
    context_id = _int_param(request, "context_id")
    conference = state.conferences.get(_int_param(request, "conference_id"))
    if conference is None or (conference.context_type, conference.context_id) != (context_type, context_id):
        return HTMLResponse("<html><body><h1>Page Not Found</h1></body></html>", status_code=404)
    title = html.escape(conference.title)
    live = "live now" if conference.is_live(state.clock.now()) else "not running"
    return HTMLResponse(
        f"<!doctype html><html><head><title>Join {title}</title></head><body>"
        f"<h1>{title}</h1><p>Sandbox conference {conference.id} ({live}).</p></body></html>"
    )


def api_routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/users/self", api(users_self)),
        Route("/api/v1/conferences", api(conferences_for_user)),
        Route("/api/v1/courses", api(list_courses)),
        Route("/api/v1/courses/{course_id:int}", api(show_course)),
        Route("/api/v1/courses/{course_id:int}/conferences", api(course_conferences)),
        Route("/api/v1/courses/{course_id:int}/users", api(course_users)),
        Route("/api/v1/groups/{group_id:int}", api(show_group)),
        Route("/api/v1/groups/{group_id:int}/conferences", api(group_conferences)),
        Route("/api/v1/{rest:path}", api(api_not_found), methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/courses/{context_id:int}/conferences/{conference_id:int}/join", join_page),
        Route("/groups/{context_id:int}/conferences/{conference_id:int}/join", join_page),
    ]


def create_canvas_app(state: CanvasState | None = None) -> Starlette:
    """The sandbox Canvas as an ASGI app; its world is `app.state.canvas`, its Live Events emitter
    (joins POSTed to a subscribed URL) `app.state.live_events`."""
    app = Starlette(routes=[*api_routes(), *oauth_routes(), *control_routes(), *live_events_routes()])
    app.state.canvas = state if state is not None else CanvasState()
    app.state.live_events = LiveEventsEmitter(app.state.canvas)
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the sandbox Canvas LMS on loopback.")
    parser.add_argument("--port", type=int, default=8900)
    args = parser.parse_args(argv)
    uvicorn.run(create_canvas_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
