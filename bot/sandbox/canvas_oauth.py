"""Canvas' OAuth2 endpoints as the sandbox plays them: authorize, token exchange, refresh, revoke.

The "browser user" who approves an authorization is whoever `POST /_sandbox/login` named, or the
`sandbox_user_id` query parameter; without one a small page lists users to pick from.

A key with "Enforce Scopes" refuses an authorization whose `scope` is empty or names a scope the key
lacks (`error=invalid_scope`, see canvas_scopes.py); its tokens carry the scopes they were approved with.

Refusals at the token endpoint use Canvas' own errors (Canvas::OAuth::RequestError,
lib/canvas/oauth/request_error.rb), including the final ones a client must tell apart from a
passing fault: 401 invalid_client ("unknown client" / "invalid client"), 400 invalid_grant
("incorrect client": a grant of another developer key) and 400 invalid_request
"refresh_token not found" (the token was deleted or revoked).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.sandbox.canvas_render import WWW_AUTHENTICATE, json_response
from bot.sandbox.canvas_scopes import INVALID_SCOPE_TEXT, not_granted, to_sentence
from bot.sandbox.canvas_state import (
    AUTH_CODE_TTL_SECONDS,
    OAUTH_TOKEN_TTL_SECONDS,
    AccessToken,
    AuthCode,
    CanvasState,
    DeveloperKey,
)


def _state(request: Request) -> CanvasState:
    state: CanvasState = request.app.state.canvas
    return state


def bearer_token(request: Request) -> str | None:
    """Canvas reads `Authorization: Bearer` first and falls back to the `access_token` parameter."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.query_params.get("access_token") or None


async def read_params(request: Request) -> dict[str, str]:
    """Query string, form body or JSON body merged, as Rails' `params` would see them."""
    params = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return params
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            loaded: Any = json.loads(raw)
        except ValueError:
            return params
        if isinstance(loaded, dict):
            params.update({str(k): str(v) for k, v in loaded.items() if v is not None})
        return params
    params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _oauth_error(state: CanvasState, error: str, description: str, status: int = 400) -> Response:
    return json_response(state, {"error": error, "error_description": description}, status)


def _redirect_allowed(key: DeveloperKey, redirect_uri: str) -> bool:
    """Canvas accepts the registered URI or anything beneath it."""
    return redirect_uri == key.redirect_uri or redirect_uri.startswith(key.redirect_uri.rstrip("/") + "/")


def _login_picker(state: CanvasState, request: Request) -> Response:
    rows = []
    for user in list(state.users.values())[:50]:
        url = request.url.include_query_params(sandbox_user_id=user.id)
        rows.append(f'<li><a href="{html.escape(str(url))}">{html.escape(user.name)}</a></li>')
    body = (
        "<!doctype html><html><head><title>Log In to Canvas (sandbox)</title></head><body>"
        "<h1>Sandbox Canvas login</h1><p>Pick the user who authorizes this app:</p>"
        f"<ul>{''.join(rows)}</ul></body></html>"
    )
    return HTMLResponse(body)


async def authorize(request: Request) -> Response:
    state = _state(request)
    params = request.query_params
    key = state.developer_keys.get(params.get("client_id", ""))
    if key is None:
        return _oauth_error(state, "invalid_client", "unknown client")
    redirect_uri = params.get("redirect_uri", "")
    if not _redirect_allowed(key, redirect_uri):
        return _oauth_error(state, "invalid_request", "redirect_uri does not match client settings")
    requested = (params.get("scope") or params.get("scopes") or "").split()
    if key.require_scopes and (not requested or not_granted(requested, key.scopes)):
        # Canvas::OAuth::InvalidScopeError, sent back to the redirect URI without `state`.
        missing = to_sentence(not_granted(requested, key.scopes))
        return _redirect_with(
            redirect_uri, {"error": "invalid_scope", "error_description": INVALID_SCOPE_TEXT + missing}
        )
    if params.get("response_type") != "code":
        return _oauth_error(state, "unsupported_response_type", "response_type must be code")
    user_id: int | None = state.logged_in_user_id
    if "sandbox_user_id" in params:
        try:
            user_id = int(params["sandbox_user_id"])
        except ValueError:
            user_id = None
    if user_id is None or user_id not in state.users:
        return _login_picker(state, request)
    code = secrets.token_hex(16)
    state.auth_codes[code] = AuthCode(
        code=code,
        client_id=key.client_id,
        redirect_uri=redirect_uri,
        user_id=user_id,
        expires_at=state.clock.now() + AUTH_CODE_TTL_SECONDS,
        scope=params.get("scope"),
    )
    query = {"code": code}
    if "state" in params:
        query["state"] = params["state"]
    return _redirect_with(redirect_uri, query)


def _redirect_with(redirect_uri: str, query: dict[str, str]) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(query), status_code=302)


def _client_credentials(request: Request, params: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (ValueError, binascii.Error):
            decoded = ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return params.get("client_id", ""), params.get("client_secret", "")


def _token_body(state: CanvasState, record: AccessToken, *, with_refresh: bool) -> dict[str, Any]:
    user = state.users[record.user_id]
    body: dict[str, Any] = {
        "access_token": record.token,
        "token_type": "Bearer",
        "user": {"id": user.id, "name": user.name, "global_id": str(user.id), "effective_locale": "en"},
        "canvas_region": "sandbox",
        "expires_in": OAUTH_TOKEN_TTL_SECONDS,
    }
    if with_refresh:
        body["refresh_token"] = record.refresh_token
    return body


async def token(request: Request) -> Response:
    state = _state(request)
    params = await read_params(request)
    client_id, secret = _client_credentials(request, params)
    key = state.developer_keys.get(client_id)
    if key is None:
        return _oauth_error(state, "invalid_client", "unknown client", 401)
    if not secrets.compare_digest(key.client_secret, secret):
        return _oauth_error(state, "invalid_client", "invalid client", 401)
    grant = params.get("grant_type")
    if grant == "authorization_code":
        return _exchange_code(state, key, params)
    if grant == "refresh_token":
        return _refresh(state, key, params)
    if not grant:
        return _oauth_error(state, "invalid_request", "grant_type required")
    return _oauth_error(
        state, "unsupported_grant_type", "The grant_type you requested is not currently supported"
    )


def _exchange_code(state: CanvasState, key: DeveloperKey, params: dict[str, str]) -> Response:
    code_text = params.get("code")
    if not code_text:
        return _oauth_error(
            state,
            "invalid_request",
            "You must provide the code parameter when using the authorization_code grant type",
        )
    code = state.auth_codes.pop(code_text, None)  # single use, even when the exchange then fails
    if code is None or code.client_id != key.client_id:
        return _oauth_error(state, "invalid_grant", "authorization_code not found")
    if code.expires_at <= state.clock.now():
        return _oauth_error(state, "invalid_grant", "authorization_code expired")
    if params.get("redirect_uri", "") != code.redirect_uri:
        return _oauth_error(state, "invalid_grant", "redirect_uri does not match")
    issued = state.issue_token(
        code.user_id,
        ttl=OAUTH_TOKEN_TTL_SECONDS,
        client_id=key.client_id,
        refresh=True,
        scopes=code.scope.split() if code.scope else None,
    )
    return json_response(state, _token_body(state, state.tokens[issued], with_refresh=True))


def _refresh(state: CanvasState, key: DeveloperKey, params: dict[str, str]) -> Response:
    refresh_text = params.get("refresh_token")
    if not refresh_text:
        return _oauth_error(
            state,
            "invalid_request",
            "You must provide the refresh_token parameter when using the refresh_token grant type",
        )
    record = state.refresh_tokens.get(refresh_text)
    if record is None:
        return _oauth_error(state, "invalid_request", "refresh_token not found")
    if record.client_id != key.client_id:
        return _oauth_error(state, "invalid_grant", "incorrect client")
    state.rotate_access_token(record)
    return json_response(state, _token_body(state, record, with_refresh=False))


async def revoke(request: Request) -> Response:
    state = _state(request)
    access = bearer_token(request)
    if access is None or access not in state.tokens:
        return json_response(state, {"errors": [{"message": "Invalid access token."}]}, 401, WWW_AUTHENTICATE)
    state.revoke_token(access)
    return json_response(state, {})


def oauth_routes() -> list[BaseRoute]:
    return [
        Route("/login/oauth2/auth", authorize, methods=["GET"]),
        Route("/login/oauth2/token", token, methods=["POST"]),
        Route("/login/oauth2/token", revoke, methods=["DELETE"]),
    ]
