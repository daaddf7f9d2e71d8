"""OAuth grants from the sandbox Canvas without a browser: authorize as a user, exchange the code.

Tests that need OAuth-linked users start from real grants (access token, refresh token, expires_in)
made by the sandbox's own token endpoint, exactly what the bot's callback would have received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support import BotProcess, CanvasWorld, Sandbox, SlackWorld, fernet_key

REDIRECT_URI = "https://bot.test/canvas/oauth/callback"


def oauth_bot_process(
    workdir: Path, canvas: CanvasWorld, slack: SlackWorld, client_id: str, client_secret: str
) -> BotProcess:
    """`confbot run` (not started) linking through Canvas OAuth with this developer key, redirected back to
    itself (PUBLIC_BASE_URL is the process's own address); the key at Canvas is the test's to make."""
    process = BotProcess(workdir=workdir, env={})
    process.env.update(
        {
            "CANVAS_BASE_URL": canvas.canvas.url,
            "CANVAS_CLIENT_ID": client_id,
            "CANVAS_CLIENT_SECRET": client_secret,
            "PUBLIC_BASE_URL": process.url,
            "SLACK_API_URL": slack.slack.url + "/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": fernet_key(),
            "POLL_INTERVAL_SECONDS": "1",
            "CANVAS_TIMEOUT_SECONDS": "2",
        }
    )
    return process


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


def link_oauth_in_process(bot: BotProcess, team_id: str, links: list[tuple[str, dict[str, Any]]]) -> None:
    """Store OAuth grants for Slack users through the real linking code, as the callback does."""
    import asyncio

    from bot.canvas.client import CanvasClient
    from bot.domain.models import CanvasUser
    from bot.engine.linking import link_with_token
    from bot.store.crypto import TokenCipher
    from bot.store.db import create_engine, session_factory, upgrade

    env = bot.full_env()
    upgrade(env["DATABASE_URL"])

    async def run() -> None:
        engine = create_engine(env["DATABASE_URL"])
        cipher = TokenCipher(env["TOKEN_ENCRYPTION_KEYS"].split(","))
        async with CanvasClient(env["CANVAS_BASE_URL"]) as canvas:
            for slack_user, grant in links:
                await link_with_token(
                    session_factory(engine),
                    canvas,
                    cipher,
                    team_id=team_id,
                    slack_user_id=slack_user,
                    token=grant["access_token"],
                    token_kind="oauth",
                    refresh_token=grant["refresh_token"],
                    expires_in=grant["expires_in"],
                    canvas_user=CanvasUser(id=grant["user"]["id"], name=grant["user"]["name"]),
                )
        await engine.dispose()

    asyncio.run(run())
