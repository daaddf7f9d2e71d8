"""The Bolt AsyncApp: its Slack credentials and the listeners registered on it (bot/slack/listeners/).

Everything a listener uses is handed in here by the composition root (bot/runtime.py); nothing below
reaches for the runtime itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slack.handlers import CommandHandler
from bot.slack.home_service import HomeService
from bot.slack.listeners import app_home, lifecycle, slash_command, token_modal
from bot.slackweb.installations import BOT_SCOPES

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


def oauth_settings(
    *,
    client_id: str,
    client_secret: str,
    installations: AsyncInstallationStore,
    engine: AsyncEngine,
    api_root: str,
    public_root: str,
) -> AsyncOAuthSettings:
    """Multi-workspace install (`/slack/install` -> Slack -> `/slack/oauth_redirect`); the authorize
    page is Slack's unless SLACK_API_URL points elsewhere (the sandbox)."""
    authorize = "https://slack.com/oauth/v2/authorize"
    if api_root != "https://slack.com/api/":
        authorize = api_root.removesuffix("api/") + "oauth/v2/authorize"
    return AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=installations,
        state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        redirect_uri=f"{public_root}{REDIRECT_PATH}",
        authorization_url=authorize,
    )


def build_bolt_app(
    *,
    client: AsyncWebClient,
    signing_secret: str | None,
    oauth: AsyncOAuthSettings | None,
    handler: CommandHandler,
    home: HomeService,
    forget_team: Callable[[str], Awaitable[None]],
    link_token: token_modal.LinkToken,
    canvas_root: str,
    reader: token_modal.Reader,
) -> AsyncApp:
    """`client` serves interactive calls (the shared session, a 429 waited out, never a repeat after a
    broken connection). Socket Mode needs no signing secret (Slack does not sign socket payloads and
    Bolt skips the check for them); Bolt refuses an empty one and /slack/events must then reject every
    request, so an unguessable throwaway secret stands in."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or secrets.token_hex(32),
        request_verification_enabled=True,
        oauth_settings=oauth,
    )
    slash_command.register(app, handler)
    app_home.register(app, home)
    lifecycle.register(app, forget_team)
    token_modal.register(app, link_token, canvas_root=canvas_root, reader=reader)
    return app
