"""How the sandbox Canvas shapes its answers: JSON documents, error bodies and Link pagination.

Kept apart from the routes so the exact wire shapes clients depend on live in one place.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from bot.sandbox.canvas_state import (
    ENROLLMENT_TYPES,
    CanvasState,
    Conference,
    Course,
    Group,
    Recording,
    User,
    iso,
)

JSON_TYPE = "application/json; charset=utf-8"
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}
UNAUTHENTICATED = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
THROTTLED_BODY = "403 Forbidden (Rate Limit Exceeded)"

T = TypeVar("T")


def encode(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def json_response(
    state: CanvasState, body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Compact JSON, optionally behind Canvas' old `while(1);` anti-hijacking prefix."""
    return json_text_response(state, encode(body), status, headers)


def json_text_response(
    state: CanvasState, text: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    if state.settings.while1_prefix:
        text = "while(1);" + text
    return Response(text, status_code=status, headers=headers, media_type=JSON_TYPE)


def user_json(user: User) -> dict[str, Any]:
    parts = user.name.split()
    sortable = f"{parts[-1]}, {' '.join(parts[:-1])}" if len(parts) > 1 else user.name
    return {
        "id": user.id,
        "name": user.name,
        "short_name": user.name,
        "sortable_name": sortable,
        "avatar_url": None,
        "locale": None,
        "effective_locale": "en",
    }


def recording_json(recording: Recording) -> dict[str, Any]:
    created: int | str | None = (
        iso(recording.created_at) if recording.created_at_iso else int(recording.created_at * 1000)
    )
    return {
        "recording_id": recording.recording_id,
        "title": recording.title,
        "duration_minutes": recording.duration_minutes,
        "playback_url": recording.playback_url,
        "playback_formats": [
            {"type": "presentation", "url": recording.format_url, "length": recording.duration_minutes}
        ],
        "created_at": created,
    }


def conference_url(conference: Conference) -> str:
    prefix = "courses" if conference.context_type == "Course" else "groups"
    return f"/{prefix}/{conference.context_id}/conferences/{conference.id}"


def conference_json(conference: Conference) -> dict[str, Any]:
    # Canvas's infer_conference_details: start_at ||= started_at; end_at ||= start_at + duration.
    start_at = conference.start_at if conference.start_at is not None else conference.started_at
    end_at = conference.end_at
    if end_at is None and start_at is not None and conference.duration:
        end_at = start_at + conference.duration * 60
    return {
        "id": conference.id,
        "title": conference.title,
        "conference_type": conference.conference_type,
        "description": conference.description,
        "duration": conference.duration,
        "started_at": iso(conference.started_at),
        "ended_at": iso(conference.ended_at),
        "start_at": iso(start_at),
        "end_at": iso(end_at),
        "conference_key": conference.conference_key,
        "context_type": conference.context_type,
        "context_id": conference.context_id,
        "has_advanced_settings": False,
        "long_running": conference.long_running,
        "user_settings": {},
        "recordings": [recording_json(r) for r in conference.recordings],
        "users": conference.users(),
        "invitees": list(conference.invitees),
        "attendees": list(conference.attendees),
        "url": conference_url(conference),
        "join_url": conference.join_url,
    }


def conferences_text(conferences: Sequence[Conference]) -> str:
    """The `{"conferences": [...]}` envelope built from each conference's cached encoding."""
    parts = []
    for conference in conferences:
        if conference.cached_json is None:
            conference.cached_json = encode(conference_json(conference))
        parts.append(conference.cached_json)
    return '{"conferences":[' + ",".join(parts) + "]}"


def course_json(state: CanvasState, course: Course, user_id: int) -> dict[str, Any]:
    return {
        "id": course.id,
        "name": course.name,
        "course_code": course.course_code,
        "workflow_state": "available",
        "account_id": 1,
        "enrollment_term_id": 1,
        "start_at": None,
        "end_at": None,
        "default_view": "modules",
        "enrollments": [
            {
                "type": ENROLLMENT_TYPES[e.type],
                "role": e.type,
                "role_id": list(ENROLLMENT_TYPES).index(e.type) + 1,
                "user_id": e.user_id,
                "enrollment_state": e.state,
                "limit_privileges_to_course_section": False,
            }
            for e in state.active_enrollments(course, user_id)
        ],
    }


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "course_id": group.course_id,
        "context_type": "Course" if group.course_id is not None else "Account",
        "members_count": len(group.member_ids),
    }


def per_page(request: Request) -> int:
    try:
        requested = int(request.query_params.get("per_page", "10"))
    except ValueError:
        requested = 10
    return min(100, max(1, requested))


def _link(request: Request, rel: str, page: str, size: int) -> str:
    url = request.url.include_query_params(page=page, per_page=size)
    return f'<{url}>; rel="{rel}"'


def encode_bookmark(conference: Conference) -> str:
    raw = json.dumps([conference.created_at, conference.id]).encode()
    return "bookmark:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_bookmark(page: str | None) -> tuple[float, int] | None:
    """The position after which a page starts; anything unreadable restarts at the top."""
    if not page or not page.startswith("bookmark:"):
        return None
    encoded = page.removeprefix("bookmark:")
    try:
        created, ident = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        return float(created), int(ident)
    except (ValueError, TypeError, binascii.Error):
        return None


def bookmark_page(request: Request, items: Sequence[Conference]) -> tuple[list[Conference], str]:
    """Slice newest-first `items` after the bookmark; Link has current and next only, like Canvas."""
    size = per_page(request)
    page = request.query_params.get("page") or "first"
    after = decode_bookmark(page)
    start = 0
    if after is not None:
        start = next((i for i, c in enumerate(items) if c.sort_key < after), len(items))
    chunk = list(items[start : start + size + 1])
    links = [_link(request, "current", page, size)]
    if len(chunk) > size:
        chunk = chunk[:size]
        links.append(_link(request, "next", encode_bookmark(chunk[-1]), size))
    return chunk, ",".join(links)


def numbered_page(request: Request, items: Sequence[T]) -> tuple[list[T], str]:
    """Numeric pages with current/next/prev/first/last, as Canvas' plain index endpoints do."""
    size = per_page(request)
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    last = max(1, math.ceil(len(items) / size))
    links = [_link(request, "current", str(page), size)]
    if page < last:
        links.append(_link(request, "next", str(page + 1), size))
    if page > 1:
        links.append(_link(request, "prev", str(page - 1), size))
    links.append(_link(request, "first", "1", size))
    links.append(_link(request, "last", str(last), size))
    chunk = list(items[(page - 1) * size : page * size])
    return chunk, ",".join(links)
