"""CanvasOAuth against respx-mocked token-endpoint answers (OAuth stays on httpx, so respx fits)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from bot.canvas import CanvasOAuth, OAuthError, Transient, authorize_url

BASE = "https://canvas.test"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def test_authorize_url_carries_all_parameters() -> None:
    url = authorize_url(
        BASE + "/",
        "10000000000001",
        "https://bot.test/canvas/oauth/callback",
        "st4te",
        ["url:GET|/api/v1/conferences"],
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/login/oauth2/auth"
    assert parse_qs(parts.query) == {
        "client_id": ["10000000000001"],
        "response_type": ["code"],
        "redirect_uri": ["https://bot.test/canvas/oauth/callback"],
        "state": ["st4te"],
        "scope": ["url:GET|/api/v1/conferences"],
    }
    assert "scope" not in authorize_url(BASE, "1", "https://r", "s")


@pytest.fixture
async def oauth() -> AsyncIterator[CanvasOAuth]:
    async with CanvasOAuth(BASE, "cid", "csecret") as client:
        yield client


async def test_exchange_code(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.post("/login/oauth2/token").respond(
        json={
            "access_token": "1~access",
            "token_type": "Bearer",
            "refresh_token": "1~refresh",
            "expires_in": 3600,
            "user": {"id": 8, "name": "Ada"},
        }
    )
    grant = await oauth.exchange_code("thecode", "https://bot.test/cb")
    assert grant.access_token.get_secret_value() == "1~access"
    assert grant.refresh_token is not None and grant.refresh_token.get_secret_value() == "1~refresh"
    assert grant.user is not None and grant.user.id == 8
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["thecode"] and form["redirect_uri"] == ["https://bot.test/cb"]
    assert form["client_id"] == ["cid"] and form["client_secret"] == ["csecret"]
    assert "1~access" not in repr(grant)
    assert "csecret" not in repr(oauth)


async def test_refresh_keeps_old_refresh_token(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    mock.post("/login/oauth2/token").respond(
        json={
            "access_token": "1~new",
            "token_type": "Bearer",
            "expires_in": 3600,
            "user": {"id": 8, "name": "A"},
        }
    )
    grant = await oauth.refresh("1~oldrefresh")
    assert grant.access_token.get_secret_value() == "1~new"
    assert grant.refresh_token is not None and grant.refresh_token.get_secret_value() == "1~oldrefresh"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "authorization_code not found"},
            "invalid_grant",
        ),
        (400, {"error": "invalid_request", "error_description": "missing code"}, "invalid_request"),
        (401, {"error": "invalid_client", "error_description": "unknown client"}, "invalid_client"),
    ],
)
async def test_token_endpoint_errors(
    oauth: CanvasOAuth, mock: respx.MockRouter, status: int, body: dict[str, str], error: str
) -> None:
    mock.post("/login/oauth2/token").respond(status, json=body)
    with pytest.raises(OAuthError) as caught:
        await oauth.exchange_code("code", "https://bot.test/cb")
    assert caught.value.error == error
    assert caught.value.status == status
    assert "csecret" not in str(caught.value)


async def test_token_endpoint_outage_is_transient(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.post("/login/oauth2/token")
    route.respond(502, text="bad gateway")
    with pytest.raises(Transient):
        await oauth.refresh("1~r")
    route.mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(Transient):
        await oauth.refresh("1~r")


async def test_revoke(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.delete("/login/oauth2/token")
    route.respond(200, json={})
    await oauth.revoke("1~gone")
    assert route.calls.last.request.headers["Authorization"] == "Bearer 1~gone"
    route.respond(
        401, json={"errors": [{"message": "Invalid access token."}]}, headers={"WWW-Authenticate": "Bearer"}
    )
    await oauth.revoke("1~gone")
    route.respond(500, json={})
    with pytest.raises(Transient):
        await oauth.revoke("1~gone")
