"""Bolt AsyncApp: `/conferences`, the token modal, and acks for link buttons.

Every listener acks first; Canvas and database work happens after the ack (Bolt keeps the listener
running after it has answered Slack), so the 3-second deadline never depends on Canvas.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.canvas.errors import CanvasError, InvalidToken
from bot.linking import link_with_token
from bot.runtime import Runtime
from bot.slack import blocks, commands
from bot.slack.handlers import Caller, CommandHandler
from bot.slack.home import (
    ACTION_QUIET_CLEAR,
    ACTION_QUIET_END,
    ACTION_QUIET_START,
    ACTION_TOGGLE_ALERTS,
    ACTION_UNMUTE,
)
from bot.slack.home_service import HomeService
from bot.slack.installations import BOT_SCOPES
from bot.slack.mrkdwn import escape
from bot.teams import forget_team

log = logging.getLogger(__name__)


def _oauth_settings(runtime: Runtime) -> AsyncOAuthSettings | None:
    """Multi-workspace install (`/slack/install` -> Slack -> `/slack/oauth_redirect`) with a client id."""
    settings = runtime.settings
    if runtime.installations is None or settings.slack_client_secret is None:
        return None
    api_root = settings.slack_api_root
    authorize = "https://slack.com/oauth/v2/authorize"
    if api_root != "https://slack.com/api/":
        authorize = api_root.removesuffix("api/") + "oauth/v2/authorize"
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        installation_store=runtime.installations,
        state_store=AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=runtime.engine),
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
        redirect_uri=f"{settings.public_root}/slack/oauth_redirect",
        authorization_url=authorize,
    )


async def _forget(runtime: Runtime, team_id: str) -> None:
    await forget_team(runtime.sessions, team_id)
    if runtime.installations is not None:
        await runtime.installations.async_delete_all(enterprise_id=None, team_id=team_id)


def build_bolt_app(runtime: Runtime) -> AsyncApp:
    settings = runtime.settings
    # Socket Mode needs no signing secret (Slack does not sign socket payloads and Bolt skips the check
    # for them). Bolt refuses an empty secret, and /slack/events must then reject every request, so an
    # unguessable throwaway secret stands in.
    signing_secret = (
        settings.slack_signing_secret.get_secret_value()
        if settings.slack_signing_secret
        else secrets.token_hex(32)
    )
    app = AsyncApp(
        # interactive calls: the shared session, a 429 waited out, never a repeat after a broken connection
        client=runtime.slack.client or runtime.slack_http.client(None),
        signing_secret=signing_secret,
        request_verification_enabled=True,
        oauth_settings=_oauth_settings(runtime),
    )
    handler = CommandHandler(runtime, runtime.credentials)

    @app.event("app_uninstalled")
    async def uninstalled(context: dict[str, Any]) -> None:
        await _forget(runtime, context["team_id"])

    @app.event("tokens_revoked")
    async def tokens_revoked(event: dict[str, Any], context: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):
            await _forget(runtime, context["team_id"])

    home = HomeService(runtime, handler.lister)

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await home.publish(context["team_id"], event["user"])

    def _who(body: dict[str, Any]) -> tuple[str, str]:
        user = body["user"]
        return (body.get("team") or {}).get("id") or user.get("team_id", ""), user["id"]

    @app.action(ACTION_TOGGLE_ALERTS)
    async def toggle_alerts(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        team_id, user_id = _who(body)
        await home.set_alerts(team_id, user_id, action.get("value") == "on")
        await home.publish(team_id, user_id)

    @app.action(ACTION_UNMUTE)
    async def unmute(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        team_id, user_id = _who(body)
        await home.unmute(team_id, user_id, int(action["value"]))
        await home.publish(team_id, user_id)

    @app.action(re.compile(f"^({ACTION_QUIET_START}|{ACTION_QUIET_END}|{ACTION_QUIET_CLEAR})$"))
    async def quiet_hours(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        team_id, user_id = _who(body)
        picked = action.get("selected_time")
        if action["action_id"] == ACTION_QUIET_CLEAR:
            await home.set_quiet(team_id, user_id, clear=True)
        elif action["action_id"] == ACTION_QUIET_START:
            await home.set_quiet(team_id, user_id, start=picked)
        else:
            await home.set_quiet(team_id, user_id, end=picked)
        await home.publish(team_id, user_id)

    @app.command("/conferences")
    async def conferences(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        caller = Caller(command["team_id"], command["user_id"], command.get("channel_id", ""))
        parsed = commands.parse(command.get("text") or "")
        try:
            message = await handler.handle(parsed, caller)
        except Exception:
            log.exception("/conferences failed")
            message = blocks.simple("Something went wrong on my side. Please try again.")
        await respond(response_type="ephemeral", replace_original=False, **message)

    @app.action(blocks.ACTION_OPEN_TOKEN_MODAL)
    async def open_token_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.token_modal(settings_url=f"{settings.canvas_root}/profile/settings"),
        )

    for action in (blocks.ACTION_JOIN, blocks.ACTION_OPEN, blocks.ACTION_CONNECT, blocks.ACTION_RELINK):

        @app.action(action)
        async def ack_link_button(ack: AsyncAck) -> None:
            """Link buttons open in the browser, but Slack still sends block_actions: ack them."""
            await ack()

    @app.view(blocks.TOKEN_MODAL_CALLBACK_ID)
    async def token_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        value = view["state"]["values"][blocks.TOKEN_BLOCK_ID][blocks.TOKEN_ACTION_ID].get("value") or ""
        token = value.strip()
        team_id = (body.get("team") or {}).get("id") or body["user"].get("team_id", "")
        user_id = body["user"]["id"]
        try:
            who = await link_with_token(
                runtime.sessions,
                runtime.canvas,
                runtime.cipher,
                team_id=team_id,
                slack_user_id=user_id,
                token=token,
            )
        except InvalidToken:
            await ack(
                response_action="errors",
                errors={blocks.TOKEN_BLOCK_ID: "Canvas did not accept this token. Check it and try again."},
            )
            return
        except CanvasError:
            await ack(
                response_action="errors",
                errors={blocks.TOKEN_BLOCK_ID: "Canvas is not answering right now. Try again in a minute."},
            )
            return
        await ack()
        await client.chat_postMessage(
            channel=user_id,
            **blocks.simple(
                f"Linked to Canvas as *{escape(who.name)}*. I will tell you when your conferences go live."
            ),
        )

    return app
