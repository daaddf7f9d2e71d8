"""Canvas failures, classified by what the caller should do next.

The scheduler never inspects status codes itself: it reacts to the exception class.
`InvalidToken` means re-link or refresh, `Throttled` means back off (never unlink),
`Transient` means try again later, `Forbidden`/`NotFound` mean the resource is not for
this user, and `InsufficientScope` means the developer key's configuration lacks a scope: an
operator's fault that no refresh or relink can mend. Messages are built from Canvas' own error
text plus the request path, never from headers or query strings, so a token cannot leak into a
log line.

`error_for_answer` is the one mapping from an answer (status, headers, body) to one of these
classes. It is pure, so it serves the API client (aiohttp) and the OAuth client (httpx) alike
without either building the other's response objects, and it is tested without a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum

from bot.canvas.scopes import INSUFFICIENT_SCOPES_MESSAGE, scope_for_request

# Canvas' leaky bucket (RequestThrottle): each request is charged this much up front and
# the bucket drains at this rate per second. Used to turn X-Rate-Limit-Remaining into a wait.
_UP_FRONT_COST = 50.0
_OUTFLOW_PER_SECOND = 10.0
_MAX_HINT_SECONDS = 60.0
_MAX_MESSAGE_CHARS = 200


class CanvasError(Exception):
    """Base class; `status` is the HTTP status when there was a response at all."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidToken(CanvasError):
    """The token itself is bad, expired or revoked (401 with WWW-Authenticate)."""


class Forbidden(CanvasError):
    """The token is fine but may not see this resource (401 without WWW-Authenticate, 403)."""


UNLISTED_SCOPE = "(a request outside bot/canvas/scopes.py)"


class InsufficientScope(CanvasError):
    """The token works but its scopes do not cover this endpoint (a developer key with Enforce Scopes).

    Canvas answers 401 without WWW-Authenticate. Not an `InvalidToken`: refreshing keeps the same scopes
    and relinking asks Canvas for scopes the key lacks, so telling users to relink would only spread the
    fault. `request` is the refused "METHOD /path"; `missing_scope` the scope it needs.
    """

    def __init__(self, message: str, *, request: str, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.request = request

    @property
    def missing_scope(self) -> str:
        """The Canvas scope string the developer key must grant (a fixed text for a request outside the
        list, a bug: it is a metric label, so it must not carry the request's ids)."""
        scope = scope_for_request(self.request)
        return scope.name if scope is not None else UNLISTED_SCOPE


class NotFound(CanvasError):
    """The course, group or conference does not exist (or is hidden as if it did not)."""


class Throttled(CanvasError):
    """Canvas' per-token rate limit; `retry_after` is a hint in seconds when one is known."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Transient(CanvasError):
    """Worth retrying later: 5xx, timeouts, connection errors, redirects, unparseable bodies."""


# The token endpoint's answers after which a refresh token can never work again, as Canvas writes them
# (Canvas::OAuth::RequestError, lib/canvas/oauth/request_error.rb): the grant belongs to another key or
# is gone (invalid_grant), the developer key itself is unknown or its secret wrong (invalid_client),
# or the refresh token was deleted or revoked (invalid_request "refresh_token not found").
DEAD_GRANT_ERRORS = frozenset({"invalid_grant", "invalid_client"})
DEAD_REFRESH_DESCRIPTION = "refresh_token not found"
_MAX_OAUTH_ERROR_CHARS = 64


def is_dead_grant(error: str, description: str | None) -> bool:
    """Whether an OAuth2 error answer means the link is dead for good (the user must relink).

    Everything else the token endpoint can say (another `invalid_request`, `invalid_scope`,
    `unsupported_grant_type`, ...) is not proof the grant is dead, so it must never unlink anyone.
    """
    if error in DEAD_GRANT_ERRORS:
        return True
    return (
        error == "invalid_request"
        and description is not None
        and DEAD_REFRESH_DESCRIPTION in description.lower()
    )


class OAuthError(CanvasError):
    """The token endpoint answered with an OAuth2 error body (`{"error": ..., "error_description": ...}`).

    Only well-formed OAuth2 refusals become this class: throttles, HTML pages from a proxy, 5xx and
    network failures are `Throttled` / `Transient` instead. `dead_grant` says whether the refusal is
    final; callers decide on that one property, never on the status code.
    """

    def __init__(self, error: str, description: str | None = None, *, status: int | None = None) -> None:
        error = error[:_MAX_OAUTH_ERROR_CHARS]
        message = f"{error}: {description}" if description else error
        super().__init__(message, status=status)
        self.error = error
        self.description = description

    @property
    def dead_grant(self) -> bool:
        """True when Canvas will never honour this grant again (see `is_dead_grant`)."""
        return is_dead_grant(self.error, self.description)


def strip_json_prefix(body: bytes) -> bytes:
    """Drop the `while(1);` anti-JSON-hijacking prefix Canvas can put in front of a body."""
    body = body.lstrip()
    if body.startswith(b"while(1);"):
        return body[len(b"while(1);") :]
    return body


def canvas_message(body: bytes) -> str | None:
    """Canvas' human message from `{"errors":[{"message":..}]}` or similar shapes, if any."""
    try:
        data = json.loads(strip_json_prefix(body))
    except ValueError:
        return None
    message: object = None
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message")
        elif isinstance(errors, dict):
            message = "; ".join(f"{key}: {value}" for key, value in errors.items())
        elif isinstance(data.get("message"), str):
            message = data["message"]
    if isinstance(message, str) and message:
        return message[:_MAX_MESSAGE_CHARS]
    return None


def throttle_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: `Retry-After` if given, else enough drain for one more request.

    `headers` must look names up case-insensitively, as aiohttp's and httpx's headers both do.
    """
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass  # an HTTP-date; fall through to the bucket estimate
    remaining = headers.get("X-Rate-Limit-Remaining")
    if remaining is None:
        return None
    try:
        left = float(remaining)
    except ValueError:
        return None
    wait = (_UP_FRONT_COST - left) / _OUTFLOW_PER_SECOND
    return min(_MAX_HINT_SECONDS, max(1.0, wait))


class Endpoint(Enum):
    """Which kind of Canvas endpoint answered: the same status means different things on each.

    On the REST API a 401 or 404 is about the token or the resource. The token endpoint speaks
    OAuth2: only a JSON `{"error": ...}` body is a refusal there, and any other failure (an HTML
    401 from a proxy, a WAF's 403) says nothing about the grant, so it must not end a link.
    """

    API = "api"
    TOKEN = "token"


def error_for_answer(
    status: int, headers: Mapping[str, str], body: bytes, what: str, endpoint: Endpoint = Endpoint.API
) -> CanvasError:
    """Map a non-2xx Canvas answer to the exception the caller should react to.

    `what` names the request (method and path, no query) for the message; `headers` must look
    names up case-insensitively (aiohttp's and httpx's do). Rules shared by both endpoints come
    first: a redirect, 5xx or 408 is worth retrying, and Canvas' throttle (429, or 403 text
    "Rate Limit Exceeded") means back off, never unlink.
    """
    detail = canvas_message(body) if endpoint is Endpoint.API else None

    def msg(default: str) -> str:
        return f"{what}: {status} {detail or default}"

    if 300 <= status < 400:
        return Transient(msg("redirect instead of JSON (is web conferencing configured?)"), status=status)
    if status >= 500 or status == 408:
        return Transient(msg("server error"), status=status)
    if status == 429 or (status == 403 and b"Rate Limit Exceeded" in body):
        return Throttled(msg("rate limit exceeded"), status=status, retry_after=throttle_hint(headers))
    if endpoint is Endpoint.TOKEN:
        refusal = oauth_refusal(body)
        if refusal is None:
            return Transient(msg("without an OAuth2 error body"), status=status)
        return OAuthError(*refusal, status=status)
    if status in (401, 403) and detail == INSUFFICIENT_SCOPES_MESSAGE and "WWW-Authenticate" not in headers:
        return InsufficientScope(msg("insufficient scopes"), request=what, status=status)
    if status == 401:
        if "WWW-Authenticate" in headers:
            return InvalidToken(msg("invalid access token"), status=status)
        return Forbidden(msg("unauthorized"), status=status)
    if status == 403:
        return Forbidden(msg("forbidden"), status=status)
    if status == 404:
        return NotFound(msg("not found"), status=status)
    return CanvasError(msg("unexpected answer"), status=status)


def oauth_refusal(body: bytes) -> tuple[str, str | None] | None:
    """`(error, error_description)` from an OAuth2 error body, or None when the body is not one."""
    try:
        data = json.loads(strip_json_prefix(body))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if not isinstance(error, str) or not error:
        return None
    description = data.get("error_description")
    return error, description[:_MAX_MESSAGE_CHARS] if isinstance(description, str) else None
