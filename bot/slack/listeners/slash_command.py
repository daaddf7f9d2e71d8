"""`/conferences ...`: parse, run after the ack, reply ephemerally; link buttons are acked."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.messages import blocks
from bot.messages.i18n import DEFAULT_TRANSLATOR
from bot.messages.schedule_blocks import ACTION_START
from bot.slack import commands
from bot.slack.caller import Caller
from bot.slack.handlers import CommandHandler

log = logging.getLogger(__name__)

LINK_BUTTONS = (
    blocks.ACTION_JOIN,
    blocks.ACTION_OPEN,
    blocks.ACTION_CONNECT,
    blocks.ACTION_RELINK,
    ACTION_START,
)


def register(app: AsyncApp, handler: CommandHandler) -> None:
    @app.command("/conferences")
    async def conferences(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        caller = Caller(command["team_id"], command["user_id"], command.get("channel_id", ""))
        parsed = commands.parse(command.get("text") or "")
        try:
            message = await handler.handle(parsed, caller)
        except Exception:
            log.exception("/conferences failed")
            try:
                t = await handler.reader(caller)
            except Exception:  # the database itself may be what failed: say it in English then
                t = DEFAULT_TRANSLATOR
            message = blocks.simple(t._("Something went wrong on my side. Please try again."))
        await respond(response_type="ephemeral", replace_original=False, **message)

    for action in LINK_BUTTONS:

        @app.action(action)
        async def ack_link_button(ack: AsyncAck) -> None:
            """Link buttons open in the browser, but Slack still sends block_actions: ack them."""
            await ack()
