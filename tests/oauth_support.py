"""OAuth grants from the sandbox Canvas without a browser: authorize as a user, exchange the code.

Tests that need OAuth-linked users start from real grants (access token, refresh token, expires_in)
made by the sandbox's own token endpoint, exactly what the bot's callback would have received.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support import Sandbox

REDIRECT_URI = "https://bot.test/canvas/oauth/callback"


def developer_key(
    canvas: Sandbox, client_id: str, client_secret: str, redirect_uri: str = REDIRECT_URI
) -> None:
    canvas.post(
        "/_sandbox/developer_keys",
        {"client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri},
    )


def grant_for(
    canvas: Sandbox, user_id: int, client_id: str, client_secret: str, redirect_uri: str = REDIRECT_URI
) -> dict[str, Any]:
    """The token answer Canvas gives a bot after `user_id` approved `client_id` (straight to the sandbox)."""
    approved = httpx.get(
        canvas.url + "/login/oauth2/auth",
        params={
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": "test",
            "sandbox_user_id": user_id,
        },
        follow_redirects=False,
    )
    assert approved.status_code == 302, approved.text
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    answer = httpx.post(
        canvas.url + "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )
    assert answer.status_code == 200, answer.text
    grant: dict[str, Any] = answer.json()
    assert grant["refresh_token"] and grant["expires_in"]
    return grant


def works(canvas: Sandbox, access_token: str) -> bool:
    """Whether Canvas accepts the access token right now (asked of the sandbox directly)."""
    answer = httpx.get(canvas.url + "/api/v1/users/self", headers={"Authorization": f"Bearer {access_token}"})
    return answer.status_code == 200
