"""The Web API methods the bot uses, with Slack's error names, shapes and limits.

slack_sdk sends some methods as JSON (chat.*, views.*), some as query parameters (users.info,
conversations.*, auth.*) and oauth.v2.access as a form with HTTP Basic client credentials; every method
here accepts all of these so the sandbox does not depend on how a client chose to encode a call.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot.sandbox.slack_blocks import validate_blocks, validate_view
from bot.sandbox.slack_socket import socket_hub, socket_url
from bot.sandbox.slack_state import (
    JSON,
    OAUTH_CODE_LIFETIME_SECONDS,
    Channel,
    Message,
    SlackState,
    Team,
    User,
    random_id,
    stable_id,
)

MAX_TEXT = 40_000
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
_SECRET_FIELDS = ("token", "client_secret")
_NO_AUTH_METHODS = {"oauth.v2.access", "api.test"}


class ApiError(Exception):
    """An `{"ok": false}` answer; `extra` carries details such as `response_metadata`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class RateLimited(Exception):
    """HTTP 429 `ratelimited` with Retry-After, as Slack answers a method over its rate tier."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("ratelimited")
        self.retry_after = retry_after


@dataclass
class Caller:
    team: Team
    token: str
    user_id: str


@dataclass
class ParsedRequest:
    args: JSON
    token: str | None
    basic_auth: tuple[str, str] | None


async def parse_request(request: Request) -> ParsedRequest:
    """Merge query, form and JSON arguments; pick the token from `Authorization` or a `token` field."""
    args: JSON = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body:
        if content_type == "application/json":
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise ApiError("invalid_json") from exc
            if not isinstance(parsed, dict):
                raise ApiError("invalid_json")
            args.update(parsed)
        else:
            args.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for key in _JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str) and value:
            try:
                args[key] = json.loads(value)
            except ValueError:
                pass  # left as a string, so validation reports it the way Slack does
    token = args.pop("token", None)
    basic: tuple[str, str] | None = None
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
            basic = (user, password)
        except (binascii.Error, UnicodeDecodeError):
            basic = None
    return ParsedRequest(args=args, token=str(token) if token else None, basic_auth=basic)


def redacted(args: JSON) -> JSON:
    """Arguments as recorded: never keep a secret in the call log."""
    return {key: ("***" if key in _SECRET_FIELDS else value) for key, value in args.items()}


def authenticate(state: SlackState, token: str | None) -> Caller:
    if not token:
        raise ApiError("not_authed")
    record = state.tokens.get(token)
    if record is None or record.team_id not in state.teams:
        raise ApiError("invalid_auth")
    if record.revoked:
        raise ApiError("token_revoked")
    return Caller(team=state.teams[record.team_id], token=token, user_id=record.user_id)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true"))


def _team_user(state: SlackState, caller: Caller, user_id: Any) -> User:
    user = state.users.get(str(user_id or ""))
    if user is None or user.team_id != caller.team.team_id:
        raise ApiError("user_not_found")
    return user


def _team_channel(state: SlackState, caller: Caller, channel_id: Any) -> Channel:
    channel_id = str(channel_id or "")
    if channel_id.startswith("#"):
        for candidate in state.channels.values():
            if candidate.team_id == caller.team.team_id and candidate.name == channel_id[1:]:
                return candidate
        raise ApiError("channel_not_found")
    channel = state.channels.get(channel_id)
    if channel is None or channel.team_id != caller.team.team_id:
        raise ApiError("channel_not_found")
    return channel


def _postable_channel(state: SlackState, caller: Caller, channel_id: Any) -> Channel:
    """Where a post lands: a user id means the bot's DM with that user, as on real Slack."""
    channel_id = str(channel_id or "")
    if channel_id[:1] in ("U", "W"):
        try:
            user = _team_user(state, caller, channel_id)
        except ApiError as exc:
            raise ApiError("channel_not_found") from exc
        return state.dm_channel(caller.team, user.id)
    channel = _team_channel(state, caller, channel_id)
    if caller.team.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    return channel


def _content(args: JSON, *, required: bool = True) -> tuple[str | None, list[Any] | None]:
    """Text and blocks of a message, checked against Slack's limits."""
    text = args.get("text")
    text = None if text is None else str(text)
    blocks = args.get("blocks")
    if blocks in (None, ""):
        blocks = None
    if required and not text and not blocks and not args.get("attachments"):
        raise ApiError("no_text")
    if text is not None and len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    if blocks is not None:
        errors = validate_blocks(blocks)
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {error}" for error in errors]},
            )
    return text, blocks


def _message_json(message: Message, caller: Caller) -> JSON:
    data: JSON = {
        "type": "message",
        "user": caller.team.bot_user_id,
        "bot_id": caller.team.bot_id,
        "app_id": caller.team.app_id,
        "team": caller.team.team_id,
        "text": message.text,
        "ts": message.ts,
    }
    if message.blocks is not None:
        data["blocks"] = message.blocks
    if message.thread_ts:
        data["thread_ts"] = message.thread_ts
    if message.files:
        data["files"] = list(message.files)
    return data


def auth_test(state: SlackState, caller: Caller, args: JSON) -> JSON:
    team = caller.team
    return {
        "url": f"https://{team.team_id.lower()}.slack.com/",
        "team": team.team_name,
        "user": state.users[team.bot_user_id].name if team.bot_user_id in state.users else "bot",
        "team_id": team.team_id,
        "user_id": caller.user_id,
        "bot_id": team.bot_id,
        "is_enterprise_install": False,
    }


def auth_revoke(state: SlackState, caller: Caller, args: JSON) -> JSON:
    if not _truthy(args.get("test")):
        state.tokens[caller.token].revoked = True
    return {"revoked": True}


def chat_post_message(state: SlackState, caller: Caller, args: JSON) -> JSON:
    channel = _postable_channel(state, caller, args.get("channel"))
    text, blocks = _content(args)
    thread_ts = args.get("thread_ts")
    message = Message(
        channel=channel.id,
        ts=state.next_ts(),
        team_id=caller.team.team_id,
        text=text or "",
        blocks=blocks,
        thread_ts=str(thread_ts) if thread_ts else None,
        user=channel.im_user,
        bot_user_id=caller.team.bot_user_id,
        metadata=_metadata(args.get("metadata")),
    )
    state.messages[(channel.id, message.ts)] = message
    return {"channel": channel.id, "ts": message.ts, "message": _message_json(message, caller)}


def _metadata(raw: Any) -> JSON | None:
    """Message metadata as Slack keeps it: an event_type and an event_payload object."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str):
        raise ApiError("invalid_metadata_format")
    return {"event_type": raw["event_type"], "event_payload": dict(raw.get("event_payload") or {})}


def _history(state: SlackState, caller: Caller, args: JSON, *, thread_ts: str | None) -> JSON:
    """conversations.history / .replies: newest first between `oldest` and `latest` (both exclusive
    unless `inclusive`), `has_more` when the window holds more than the page, metadata only when asked
    for; over `state.history_reads_per_minute` a 429 with Retry-After (and at most 15 messages a page)."""
    method = "conversations.history" if thread_ts is None else "conversations.replies"
    retry_after = state.history_retry_after(caller.team.team_id, method)
    if retry_after is not None:
        raise RateLimited(retry_after)
    channel = _team_channel(state, caller, args.get("channel"))
    if channel.im_user is None and caller.team.bot_user_id not in channel.members:
        raise ApiError("not_in_channel")
    oldest = float(args.get("oldest") or 0)
    latest = float(args.get("latest") or "inf")
    inclusive = _truthy(args.get("inclusive"))
    limit = max(1, min(int(args.get("limit") or 100), 15 if state.history_reads_per_minute else 1000))

    def in_view(message: Message) -> bool:
        if thread_ts is None:  # history: top-level messages only
            return message.thread_ts is None
        return thread_ts in (message.ts, message.thread_ts)  # replies: the parent and its thread

    found = [
        m
        for (channel_id, _), m in state.messages.items()
        if channel_id == channel.id
        and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        and in_view(m)
    ]
    found.sort(key=lambda m: float(m.ts), reverse=True)
    with_metadata = _truthy(args.get("include_all_metadata"))
    messages = []
    for message in found[:limit]:
        data = _message_json(message, caller)
        if with_metadata and message.metadata is not None:
            data["metadata"] = message.metadata
        messages.append(data)
    return {"messages": messages, "has_more": len(found) > limit}


def conversations_history(state: SlackState, caller: Caller, args: JSON) -> JSON:
    return _history(state, caller, args, thread_ts=None)


def conversations_replies(state: SlackState, caller: Caller, args: JSON) -> JSON:
    if not args.get("ts"):
        raise ApiError("thread_not_found")
    return _history(state, caller, args, thread_ts=str(args["ts"]))


def chat_update(state: SlackState, caller: Caller, args: JSON) -> JSON:
    channel = _team_channel(state, caller, args.get("channel"))
    message = state.messages.get((channel.id, str(args.get("ts") or "")))
    if message is None:
        raise ApiError("message_not_found")
    text, blocks = _content(args)
    message.history.append({"text": message.text, "blocks": message.blocks, "replaced_at": state.clock()})
    if text is not None:
        message.text = text
    if "blocks" in args:  # like Slack: omitted blocks are kept, an empty list removes them
        message.blocks = blocks
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": _message_json(message, caller),
    }


def chat_post_ephemeral(state: SlackState, caller: Caller, args: JSON) -> JSON:
    channel = _postable_channel(state, caller, args.get("channel"))
    user = _team_user(state, caller, args.get("user"))
    humans = channel.members - {caller.team.bot_user_id}
    if humans and user.id not in humans:  # a channel created without members accepts anyone
        raise ApiError("user_not_in_channel")
    text, blocks = _content(args)
    ts = state.next_ts()
    state.ephemerals.append(
        {
            "channel": channel.id,
            "user": user.id,
            "team_id": caller.team.team_id,
            "ts": ts,
            "text": text or "",
            "blocks": blocks,
            "thread_ts": args.get("thread_ts"),
        }
    )
    return {"message_ts": ts}


def users_info(state: SlackState, caller: Caller, args: JSON) -> JSON:
    include_locale = _truthy(args.get("include_locale"))
    user = _team_user(state, caller, args.get("user"))
    return {"user": user.to_json(state.clock(), include_locale=include_locale)}


def conversations_open(state: SlackState, caller: Caller, args: JSON) -> JSON:
    if args.get("channel"):
        channel = _team_channel(state, caller, args["channel"])
    else:
        raw = args.get("users") or ""
        user_ids = raw if isinstance(raw, list) else [part.strip() for part in str(raw).split(",")]
        user_ids = [str(user_id) for user_id in user_ids if user_id]
        if not user_ids:
            raise ApiError("users_list_not_supplied")
        users = [_team_user(state, caller, user_id) for user_id in user_ids]
        if len(users) == 1:
            channel = state.dm_channel(caller.team, users[0].id)
        else:
            members = sorted({caller.team.bot_user_id, *(user.id for user in users)})
            channel_id = stable_id("G", caller.team.team_id, *members)
            channel = state.channels.setdefault(
                channel_id,
                Channel(channel_id, "mpdm-" + "--".join(members), caller.team.team_id, caller.user_id),
            )
            channel.members.update(members)
    if _truthy(args.get("return_im")):
        return {"channel": channel.to_json(caller.team.bot_user_id)}
    return {"channel": {"id": channel.id}}


def conversations_info(state: SlackState, caller: Caller, args: JSON) -> JSON:
    return {"channel": _team_channel(state, caller, args.get("channel")).to_json(caller.team.bot_user_id)}


def _checked_view(args: JSON) -> JSON:
    view = args.get("view")
    errors = validate_view(view)
    if errors:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {error}" for error in errors]}
        )
    assert isinstance(view, dict)
    return view


def _store_view(
    state: SlackState, caller: Caller, view_id: str, view: JSON, *, method: str, **context: Any
) -> JSON:
    previous = state.views.get(view_id, {})
    record: JSON = {
        "id": view_id,
        "team_id": caller.team.team_id,
        "user_id": context.get("user_id", previous.get("user_id")),
        "trigger_id": context.get("trigger_id", previous.get("trigger_id")),
        "method": method,
        "type": view.get("type"),
        "view": view,
        "hash": f"{int(state.clock())}.{random_id('h')}",
        "updates": previous.get("updates", -1) + 1,
    }
    state.views[view_id] = record
    return {
        "view": {
            "id": view_id,
            "team_id": caller.team.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": record["hash"],
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": caller.team.app_id,
            "bot_id": caller.team.bot_id,
        }
    }


def views_open(state: SlackState, caller: Caller, args: JSON) -> JSON:
    if not args.get("trigger_id"):
        raise ApiError("invalid_arguments")
    view = _checked_view(args)
    method = "views.push" if args.get("_push") else "views.open"
    return _store_view(state, caller, random_id("V"), view, method=method, trigger_id=args["trigger_id"])


def views_publish(state: SlackState, caller: Caller, args: JSON) -> JSON:
    user = _team_user(state, caller, args.get("user_id"))
    view = _checked_view(args)
    if view.get("type") != "home":
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": ["[ERROR] view type must be home"]}
        )
    view_id = stable_id("V", caller.team.team_id, user.id, "home")
    return _store_view(state, caller, view_id, view, method="views.publish", user_id=user.id)


def views_update(state: SlackState, caller: Caller, args: JSON) -> JSON:
    view_id = args.get("view_id")
    if not view_id and args.get("external_id"):
        for candidate in state.views.values():
            if candidate["view"].get("external_id") == args["external_id"]:
                view_id = candidate["id"]
    record = state.views.get(str(view_id or ""))
    if record is None or record["team_id"] != caller.team.team_id:
        raise ApiError("not_found")
    if args.get("hash") and args["hash"] != record["hash"]:
        raise ApiError("hash_conflict")
    return _store_view(state, caller, record["id"], _checked_view(args), method="views.update")


def oauth_v2_access(state: SlackState, basic: tuple[str, str] | None, args: JSON) -> JSON:
    """Exchange a control-API code for a fresh bot token, creating the workspace on first install."""
    client_id, client_secret = basic or (str(args.get("client_id", "")), str(args.get("client_secret", "")))
    code = state.oauth_codes.get(str(args.get("code") or ""))
    if code is None or state.clock() - code.created_at > OAUTH_CODE_LIFETIME_SECONDS:
        raise ApiError("invalid_code")
    if client_id != code.client_id:
        raise ApiError("invalid_client_id")
    if client_secret != code.client_secret:
        raise ApiError("bad_client_secret")
    if code.redirect_uri and args.get("redirect_uri") != code.redirect_uri:
        raise ApiError("bad_redirect_uri")
    del state.oauth_codes[code.code]
    team, token = state.add_team(code.team_id, code.team_name)
    if code.authed_user_id not in state.users:
        state.users[code.authed_user_id] = User(
            id=code.authed_user_id,
            team_id=team.team_id,
            name=code.authed_user_id.lower(),
            real_name=code.authed_user_id,
            is_admin=True,
        )
    return {
        "app_id": team.app_id,
        "authed_user": {"id": code.authed_user_id},
        "scope": code.scope,
        "token_type": "bot",
        "access_token": token,
        "bot_user_id": team.bot_user_id,
        "team": {"id": team.team_id, "name": team.team_name},
        "enterprise": None,
        "is_enterprise_install": False,
    }


Method = Callable[[SlackState, Caller, JSON], JSON]
METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "auth.revoke": auth_revoke,
    "chat.postMessage": chat_post_message,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "users.info": users_info,
    "conversations.open": conversations_open,
    "conversations.info": conversations_info,
    "views.open": views_open,
    "views.push": lambda state, caller, args: views_open(state, caller, {**args, "_push": True}),
    "views.publish": views_publish,
    "views.update": views_update,
}


def apps_connections_open(request: Request, state: SlackState, token: str | None) -> JSON:
    """Socket Mode: only an app-level (xapp-) token registered through the control API gets a URL."""
    if not token:
        raise ApiError("not_authed")
    if token in state.tokens:
        raise ApiError("not_allowed_token_type")
    hub = socket_hub(request.app)
    if token not in hub.app_tokens:
        raise ApiError("invalid_auth")
    return {"url": socket_url(request, hub.issue_ticket(state.clock()))}


def _dispatch(state: SlackState, method: str, parsed: ParsedRequest) -> JSON:
    if method == "api.test":
        return {"args": redacted(parsed.args)}
    if method == "oauth.v2.access":
        return oauth_v2_access(state, parsed.basic_auth, parsed.args)
    handler = METHODS.get(method)
    if handler is None:
        raise ApiError("unknown_method")
    return handler(state, authenticate(state, parsed.token), parsed.args)


async def web_api(request: Request) -> Response:
    """`/api/{method}`: record the call, apply any injected fault, then answer like Slack (HTTP 200)."""
    state: SlackState = request.app.state.slack
    state.base_url = str(request.base_url).rstrip("/")
    method = request.path_params["method"]
    parse_error: ApiError | None = None
    try:
        parsed = await parse_request(request)
    except ApiError as exc:
        parsed, parse_error = ParsedRequest({}, None, None), exc
    token_record = state.tokens.get(parsed.token or "")
    call: JSON = {
        "method": method,
        "args": redacted(parsed.args),
        "team_id": token_record.team_id if token_record else None,
        "at": state.clock(),
    }
    state.calls.append(call)
    fault = state.take_fault(method)
    if fault is not None:
        call.update(status=fault.status, ok=False, error="ratelimited" if fault.status == 429 else "fault")
        if fault.status == 429:
            return JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        return PlainTextResponse("Internal Server Error (sandbox fault)", status_code=fault.status)
    try:
        if parse_error is not None:
            raise parse_error
        if method == "apps.connections.open":  # needs the request: the URL points back at this server
            body: JSON = {"ok": True, **apps_connections_open(request, state, parsed.token)}
        else:
            body = {"ok": True, **_dispatch(state, method, parsed)}
    except ApiError as exc:
        body = {"ok": False, "error": exc.error, **exc.extra}
    except RateLimited as exc:
        call.update(status=429, ok=False, error="ratelimited")
        return JSONResponse(
            {"ok": False, "error": "ratelimited"},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    call.update(status=200, ok=body["ok"], error=body.get("error"))
    return JSONResponse(body)
