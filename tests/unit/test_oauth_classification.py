"""What a token-endpoint answer means, without servers: only Canvas' final refusals end a link."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.canvas.errors import CanvasError, OAuthError, Throttled, Transient, is_dead_grant
from bot.canvas.oauth import TOKEN_PATH, CanvasOAuth


@pytest.mark.parametrize(
    ("error", "description", "dead"),
    [
        ("invalid_grant", "authorization_code not found", True),
        ("invalid_grant", "incorrect client", True),
        ("invalid_client", "unknown client", True),
        ("invalid_client", None, True),
        ("invalid_request", "refresh_token not found", True),
        ("invalid_request", "Refresh_Token Not Found", True),
        ("invalid_request", "redirect_uri does not match client settings", False),
        ("invalid_request", None, False),
        ("invalid_scope", "client does not have access to specified account", False),
        ("unsupported_grant_type", "The grant_type you requested is not currently supported", False),
        ("temporarily_unavailable", None, False),
    ],
)
def test_only_final_refusals_are_dead_grants(error: str, description: str | None, dead: bool) -> None:
    assert is_dead_grant(error, description) is dead
    assert OAuthError(error, description, status=400).dead_grant is dead


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=body,
        headers=headers,
        request=httpx.Request("POST", "https://canvas.test" + TOKEN_PATH),
    )


def oauth_body(error: str, description: str) -> bytes:
    return json.dumps({"error": error, "error_description": description}).encode()


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (answer(403, b"403 Forbidden (Rate Limit Exceeded)", {"Content-Type": "text/plain"}), Throttled),
        (answer(429, b"", {"Retry-After": "3"}), Throttled),
        (answer(404, b"<html><h1>Not Found</h1></html>", {"Content-Type": "text/html"}), Transient),
        (answer(400, b"<html><h1>Bad Request</h1></html>", {"Content-Type": "text/html"}), Transient),
        (answer(401, b"<html>Unauthorized</html>", {"Content-Type": "text/html"}), Transient),
        (answer(403, b'{"errors":[{"message":"blocked by WAF"}]}'), Transient),
        (answer(400, b'["not", "an", "oauth", "body"]'), Transient),
        (answer(400, b'{"error": ""}'), Transient),
        (answer(502, oauth_body("invalid_grant", "from a confused proxy")), Transient),
        (answer(302, b"", {"Location": "https://sso.test/login"}), Transient),
    ],
)
def test_answers_without_an_oauth_refusal_are_not_oauth_errors(
    response: httpx.Response, expected: type[CanvasError]
) -> None:
    error = CanvasOAuth._error(response)
    assert type(error) is expected
    assert error.status == response.status_code


def test_the_throttle_hint_comes_along() -> None:
    error = CanvasOAuth._error(answer(429, b"", {"Retry-After": "3"}))
    assert isinstance(error, Throttled) and error.retry_after == 3
    canvas = CanvasOAuth._error(
        answer(403, b"403 Forbidden (Rate Limit Exceeded)", {"X-Rate-Limit-Remaining": "0"})
    )
    assert isinstance(canvas, Throttled) and canvas.retry_after == 5


@pytest.mark.parametrize(
    ("status", "error", "description", "dead"),
    [
        (400, "invalid_grant", "incorrect client", True),
        (401, "invalid_client", "invalid client", True),
        (400, "invalid_request", "refresh_token not found", True),
        (400, "invalid_request", "You must provide the refresh_token parameter", False),
    ],
)
def test_oauth_refusals_keep_their_error_and_say_whether_they_are_final(
    status: int, error: str, description: str, dead: bool
) -> None:
    refusal = CanvasOAuth._error(answer(status, b"while(1);" + oauth_body(error, description)))
    assert isinstance(refusal, OAuthError)
    assert (refusal.error, refusal.description, refusal.status) == (error, description, status)
    assert refusal.dead_grant is dead
