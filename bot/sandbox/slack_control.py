"""`/_sandbox/*` control API (set up the world, inject faults, inspect traffic) and `response_url`s.

The control API needs no auth: it only ever listens on loopback, for tests, the demo and benchmarks.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.slack_blocks import validate_blocks
from bot.sandbox.slack_state import (
    DEFAULT_SCOPES,
    JSON,
    RESPONSE_URL_LIFETIME_SECONDS,
    RESPONSE_URL_USES,
    Channel,
    Fault,
    OAuthCode,
    ResponseUrl,
    SlackState,
    User,
    random_id,
)


class BadControlRequest(Exception):
    """A control call the test got wrong: answered 400 with a readable reason."""


def _state(request: Request) -> SlackState:
    state: SlackState = request.app.state.slack
    return state


async def _json(request: Request) -> JSON:
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise BadControlRequest("body must be JSON") from exc
    if not isinstance(data, dict):
        raise BadControlRequest("body must be a JSON object")
    return data


def _required(data: JSON, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadControlRequest(f"{key} is required")
    return value


def _known_team(state: SlackState, data: JSON) -> str:
    team_id = _required(data, "team_id")
    if team_id not in state.teams:
        raise BadControlRequest(f"unknown team {team_id}: POST /_sandbox/teams first")
    return team_id


async def create_team(request: Request) -> Response:
    data = await _json(request)
    team, token = _state(request).add_team(
        _required(data, "team_id"), data.get("team_name"), data.get("bot_token"), data.get("bot_user_id")
    )
    return JSONResponse(
        {
            "team_id": team.team_id,
            "team_name": team.team_name,
            "bot_token": token,
            "bot_user_id": team.bot_user_id,
            "bot_id": team.bot_id,
        }
    )


async def create_user(request: Request) -> Response:
    state = _state(request)
    data = await _json(request)
    user_id = _required(data, "id")
    name = data.get("name") or user_id.lower()
    user = User(
        id=user_id,
        team_id=_known_team(state, data),
        name=name,
        real_name=data.get("real_name") or name,
        tz=data.get("tz") or "America/New_York",
        locale=data.get("locale") or "en-US",
        is_admin=bool(data.get("is_admin", False)),
        is_owner=bool(data.get("is_owner", False)),
        is_bot=bool(data.get("is_bot", False)),
    )
    state.users[user_id] = user
    return JSONResponse(user.to_json(state.clock()))


async def create_channel(request: Request) -> Response:
    state = _state(request)
    data = await _json(request)
    team_id = _known_team(state, data)
    members = {str(member) for member in data.get("members") or []}
    if data.get("bot_member", True):
        members.add(state.teams[team_id].bot_user_id)
    channel = Channel(
        id=data.get("id") or random_id("C"),
        name=_required(data, "name"),
        team_id=team_id,
        creator=data.get("creator") or next(iter(sorted(members)), ""),
        members=members,
        created=int(state.clock()),
    )
    state.channels[channel.id] = channel
    return JSONResponse({"id": channel.id, "name": channel.name})


async def create_oauth_code(request: Request) -> Response:
    state = _state(request)
    data = await _json(request)
    code = OAuthCode(
        code=f"{secrets.randbelow(10**12)}.{secrets.token_hex(16)}",
        team_id=_required(data, "team_id"),
        team_name=data.get("team_name") or f"Sandbox {data['team_id']}",
        client_id=_required(data, "client_id"),
        client_secret=_required(data, "client_secret"),
        authed_user_id=_required(data, "authed_user_id"),
        scope=data.get("scope") or DEFAULT_SCOPES,
        redirect_uri=data.get("redirect_uri"),
        created_at=state.clock(),
    )
    state.oauth_codes[code.code] = code
    return JSONResponse({"code": code.code})


async def add_fault(request: Request) -> Response:
    data = await _json(request)
    status = int(data.get("status", 429))
    if status not in (429, 500, 503):
        raise BadControlRequest("status must be 429, 500 or 503")
    fault = Fault(
        method=data.get("method") or "*",
        status=status,
        retry_after=int(data.get("retry_after", 1)),
        count=int(data.get("count", 1)),
    )
    _state(request).faults.append(fault)
    return JSONResponse({"method": fault.method, "status": fault.status, "count": fault.count})


async def clear_faults(request: Request) -> Response:
    _state(request).faults.clear()
    return JSONResponse({"ok": True})


def _matches(record: JSON, request: Request, *keys: str) -> bool:
    return all(record.get(key) == request.query_params[key] for key in keys if key in request.query_params)


async def list_calls(request: Request) -> Response:
    calls = [call for call in _state(request).calls if _matches(call, request, "method", "team_id")]
    return JSONResponse({"calls": calls})


async def reset_calls(request: Request) -> Response:
    _state(request).calls.clear()
    return JSONResponse({"ok": True})


async def list_messages(request: Request) -> Response:
    messages = [message.to_json() for message in _state(request).messages.values()]
    selected = [item for item in messages if _matches(item, request, "channel", "team_id", "user")]
    return JSONResponse({"messages": selected})


async def list_ephemerals(request: Request) -> Response:
    items = [item for item in _state(request).ephemerals if _matches(item, request, "channel", "user")]
    return JSONResponse({"ephemerals": items})


async def list_views(request: Request) -> Response:
    views = [view for view in _state(request).views.values() if _matches(view, request, "user_id", "type")]
    return JSONResponse({"views": views})


async def reset_traffic(request: Request) -> Response:
    _state(request).reset()
    return JSONResponse({"ok": True})


async def create_response_url(request: Request) -> Response:
    """Mint a response_url as Slack attaches to a slash command; body may carry team/channel/user ids."""
    state = _state(request)
    data = await _json(request)
    url_id = secrets.token_hex(12)
    state.response_urls[url_id] = ResponseUrl(id=url_id, created_at=state.clock(), context=data)
    return JSONResponse({"url": f"{str(request.base_url).rstrip('/')}/response/{url_id}", "id": url_id})


async def response_url_posts(request: Request) -> Response:
    entry = _state(request).response_urls.get(request.path_params["url_id"])
    if entry is None:
        return JSONResponse({"error": "unknown response_url"}, status_code=404)
    return JSONResponse({"posts": entry.posts, "uses_left": RESPONSE_URL_USES - len(entry.posts)})


async def post_to_response_url(request: Request) -> Response:
    """Like Slack: 5 posts within 30 minutes, then 404; bad blocks are rejected without using a post."""
    state = _state(request)
    entry = state.response_urls.get(request.path_params["url_id"])
    if entry is None or state.clock() - entry.created_at > RESPONSE_URL_LIFETIME_SECONDS:
        return JSONResponse({"ok": False, "error": "expired_url"}, status_code=404)
    if len(entry.posts) >= RESPONSE_URL_USES:
        return JSONResponse({"ok": False, "error": "used_url"}, status_code=404)
    try:
        data = await _json(request)
    except BadControlRequest:
        return JSONResponse({"ok": False, "error": "invalid_payload"}, status_code=400)
    blocks: Any = data.get("blocks")
    if not data.get("text") and not blocks and not data.get("delete_original"):
        return JSONResponse({"ok": False, "error": "no_text"}, status_code=400)
    if blocks is not None and validate_blocks(blocks):
        return JSONResponse({"ok": False, "error": "invalid_blocks"}, status_code=400)
    entry.posts.append(
        {
            "text": data.get("text"),
            "blocks": blocks,
            "response_type": data.get("response_type", "ephemeral"),
            "replace_original": bool(data.get("replace_original", False)),
            "delete_original": bool(data.get("delete_original", False)),
            "thread_ts": data.get("thread_ts"),
            "context": entry.context,
            "at": state.clock(),
        }
    )
    return JSONResponse({"ok": True})


def _guarded(endpoint: Any) -> Any:
    async def wrapper(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except BadControlRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return response

    return wrapper


CONTROL_ROUTES = [
    Route("/_sandbox/teams", _guarded(create_team), methods=["POST"]),
    Route("/_sandbox/users", _guarded(create_user), methods=["POST"]),
    Route("/_sandbox/channels", _guarded(create_channel), methods=["POST"]),
    Route("/_sandbox/oauth_codes", _guarded(create_oauth_code), methods=["POST"]),
    Route("/_sandbox/faults", _guarded(add_fault), methods=["POST"]),
    Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
    Route("/_sandbox/calls", list_calls, methods=["GET"]),
    Route("/_sandbox/calls/reset", reset_calls, methods=["POST"]),
    Route("/_sandbox/messages", list_messages, methods=["GET"]),
    Route("/_sandbox/ephemerals", list_ephemerals, methods=["GET"]),
    Route("/_sandbox/views", list_views, methods=["GET"]),
    Route("/_sandbox/reset", reset_traffic, methods=["POST"]),
    Route("/_sandbox/response_urls", _guarded(create_response_url), methods=["POST"]),
    Route("/_sandbox/response_urls/{url_id}", response_url_posts, methods=["GET"]),
    Route("/response/{url_id}", post_to_response_url, methods=["POST"]),
]
