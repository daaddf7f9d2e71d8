"""The App Home tab: published when opened, and its buttons (alerts on/off, unmute, quiet hours)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.messages.home import (
    ACTION_QUIET_CLEAR,
    ACTION_QUIET_END,
    ACTION_QUIET_START,
    ACTION_TOGGLE_ALERTS,
    ACTION_UNMUTE,
)
from bot.slack.home_service import HomeService


def _who(body: dict[str, Any]) -> tuple[str, str]:
    user = body["user"]
    return (body.get("team") or {}).get("id") or user.get("team_id", ""), user["id"]


def register(app: AsyncApp, home: HomeService) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await home.publish(context["team_id"], event["user"])

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
