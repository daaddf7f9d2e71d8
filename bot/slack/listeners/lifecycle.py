"""The app leaving a workspace (`app_uninstalled`, `tokens_revoked` of the bot token): forget the team."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp, forget_team: Callable[[str], Awaitable[None]]) -> None:
    @app.event("app_uninstalled")
    async def uninstalled(context: dict[str, Any]) -> None:
        await forget_team(context["team_id"])

    @app.event("tokens_revoked")
    async def tokens_revoked(event: dict[str, Any], context: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):
            await forget_team(context["team_id"])
