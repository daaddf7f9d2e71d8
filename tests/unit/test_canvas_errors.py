"""What a failed Canvas answer means, without servers: `error_for_answer` and `throttle_hint`.

Both Canvas clients (the aiohttp API client and the httpx OAuth client) hand their answers to
this one pure mapping as (status, headers, body), so these cases hold for both.
"""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict

from bot.canvas import CanvasError, Forbidden, InvalidToken, NotFound, OAuthError, Throttled, Transient
from bot.canvas.errors import Endpoint, error_for_answer, throttle_hint

WHAT = "GET /api/v1/conferences"
TOKEN = "7~t0psecrettokenvalue"
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}


def errors_body(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (401, WWW_AUTHENTICATE, errors_body("Invalid access token."), InvalidToken),
        (401, WWW_AUTHENTICATE, errors_body("Expired access token."), InvalidToken),
        (401, {}, b'{"status": "unauthorized", "errors": [{"message": "no"}]}', Forbidden),
        (403, {}, errors_body("forbidden"), Forbidden),
        (403, {}, b"403 Forbidden (Rate Limit Exceeded)", Throttled),
        (429, {"Retry-After": "7"}, b"", Throttled),
        (404, {}, errors_body("The specified resource does not exist."), NotFound),
        (500, {}, b'{"errors": [{"message": "An error occurred."}], "error_report_id": 1}', Transient),
        (503, {}, b"<html>maintenance</html>", Transient),
        (302, {"Location": "https://canvas.test/login"}, b"<html>redirected</html>", Transient),
        (408, {}, b"", Transient),
        (422, {}, b'{"errors": {"state": "bad"}}', CanvasError),
    ],
    ids=["401-invalid", "401-expired", "401-no-www-authenticate", "403", "403-rate-limit", "429", "404",
         "500", "503-html", "302-html", "408", "422"],
)  # fmt: skip
def test_api_answers_map_to_what_the_caller_should_do(
    status: int, headers: dict[str, str], body: bytes, expected: type[CanvasError]
) -> None:
    error = error_for_answer(status, headers, body, WHAT)
    assert type(error) is expected
    assert error.status == status
    assert str(error).startswith(f"{WHAT}: {status} ")


def test_header_names_are_matched_as_the_clients_give_them() -> None:
    """aiohttp and httpx both hand over case-insensitive headers; the mapping relies on that."""
    headers = CIMultiDict({"www-authenticate": "Bearer", "retry-after": "4"})
    assert type(error_for_answer(401, headers, b"", WHAT)) is InvalidToken
    assert throttle_hint(headers) == 4.0


def test_the_message_is_canvas_own_and_never_carries_a_header() -> None:
    error = error_for_answer(
        401, {**WWW_AUTHENTICATE, "X-Echo": TOKEN}, b"while(1);" + errors_body("Revoked access token."), WHAT
    )
    assert isinstance(error, InvalidToken)
    assert str(error) == f"{WHAT}: 401 Revoked access token."
    assert TOKEN not in repr(error)


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"X-Rate-Limit-Remaining": "0.0"}, 5.0),
        ({"X-Rate-Limit-Remaining": "-30.5"}, 8.05),
        ({"X-Rate-Limit-Remaining": "600"}, 1.0),
        ({"X-Rate-Limit-Remaining": "-5000"}, 60.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "X-Rate-Limit-Remaining": "10"}, 4.0),
        ({"X-Rate-Limit-Remaining": "lots"}, None),
        ({}, None),
    ],
)
def test_throttle_hint_from_headers(headers: dict[str, str], hint: float | None) -> None:
    assert throttle_hint(headers) == (pytest.approx(hint) if hint is not None else None)
    throttled = error_for_answer(429, headers, b"", WHAT)
    assert isinstance(throttled, Throttled) and throttled.retry_after == throttle_hint(headers)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error": "invalid_grant", "error_description": "authorization_code not found"}', OAuthError),
        (401, b'while(1);{"error": "invalid_client"}', OAuthError),
        (401, b"<html>Unauthorized</html>", Transient),
        (404, b"<html>Not Found</html>", Transient),
        (403, errors_body("blocked by WAF"), Transient),
        (403, b"403 Forbidden (Rate Limit Exceeded)", Throttled),
        (502, b'{"error": "invalid_grant"}', Transient),
    ],
)
def test_the_token_endpoint_only_refuses_with_an_oauth2_body(
    status: int, body: bytes, expected: type[CanvasError]
) -> None:
    """The same statuses that mean InvalidToken/NotFound on the API mean nothing about a grant here."""
    error = error_for_answer(status, {}, body, "POST /login/oauth2/token", Endpoint.TOKEN)
    assert type(error) is expected
    assert error.status == status
