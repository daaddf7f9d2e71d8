"""Linking with a personal access token: the "Use a token" button opens a modal; submitting links.

The modal, its errors and the confirmation are in the clicking user's language (``reader``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.canvas.errors import CanvasError, InvalidToken
from bot.domain.models import CanvasUser
from bot.messages import blocks
from bot.messages.i18n import Translator
from bot.messages.mrkdwn import escape

LinkToken = Callable[[str, str, str], Awaitable[CanvasUser]]
"""(team id, Slack user id, token) -> who the token belongs to at Canvas, stored as that user's link."""

Reader = Callable[[str, str], Awaitable[Translator]]
"""(team id, Slack user id) -> that user's language (Locales.for_user)."""


def _who(body: dict[str, Any]) -> tuple[str, str]:
    return (body.get("team") or {}).get("id") or body["user"].get("team_id", ""), body["user"]["id"]


def register(app: AsyncApp, link_token: LinkToken, *, canvas_root: str, reader: Reader) -> None:
    @app.action(blocks.ACTION_OPEN_TOKEN_MODAL)
    async def open_token_modal(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        # The trigger_id lives 3 seconds: the language is usually stored, and its look-up capped anyway.
        t = await reader(*_who(body))
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.token_modal(settings_url=f"{canvas_root}/profile/settings", t=t),
        )

    @app.view(blocks.TOKEN_MODAL_CALLBACK_ID)
    async def token_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        value = view["state"]["values"][blocks.TOKEN_BLOCK_ID][blocks.TOKEN_ACTION_ID].get("value") or ""
        team_id, user_id = _who(body)
        t = await reader(team_id, user_id)
        try:
            who = await link_token(team_id, user_id, value.strip())
        except InvalidToken:
            await ack(
                response_action="errors",
                errors={
                    blocks.TOKEN_BLOCK_ID: t._("Canvas did not accept this token. Check it and try again.")
                },
            )
            return
        except CanvasError:
            await ack(
                response_action="errors",
                errors={
                    blocks.TOKEN_BLOCK_ID: t._("Canvas is not answering right now. Try again in a minute.")
                },
            )
            return
        await ack()
        await client.chat_postMessage(channel=user_id, **blocks.linked_confirmation(escape(who.name), t=t))
