"""Socket Mode: receive Slack's commands, clicks and events over an outbound WebSocket.

With SLACK_APP_TOKEN set the bot needs no public URL for Slack: Bolt's aiohttp Socket Mode handler
opens the socket and feeds every envelope through the same AsyncApp listeners as `/slack/events`.
The HTTP server keeps running beside it for /healthz, /metrics and the OAuth callbacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

_HINTS = {
    "invalid_auth": "copy the app-level token (xapp-...) from Basic Information > App-Level Tokens",
    "not_allowed_token_type": "SLACK_APP_TOKEN must be the app-level xapp- token, not the xoxb- bot token",
    "not_authed": "SLACK_APP_TOKEN is empty",
    "missing_scope": "the app-level token needs the connections:write scope",
}


class SocketModeError(RuntimeError):
    """Slack refused to open a socket; the message says what to fix and never contains the token."""


@dataclass
class SocketModeRunner:
    """A connected Socket Mode client; the handler reconnects by itself on `disconnect` or a dead socket."""

    handler: AsyncSocketModeHandler

    async def close(self) -> None:
        await self.handler.close_async()  # type: ignore[no-untyped-call]


async def start_socket_mode(app: AsyncApp, app_token: str, *, api_url: str | None = None) -> SocketModeRunner:
    """Connect and return once the first socket is open (unlike `start_async`, which never returns).

    The first `apps.connections.open` is made here, so a wrong token stops start-up with a readable
    error instead of the client's endless "Failed to connect; Retrying..." loop.  `api_url` is the
    Slack Web API root; by default the one the Bolt app's client uses.
    """
    web_client = AsyncWebClient(base_url=api_url or app.client.base_url, timeout=15)
    try:
        opened = await web_client.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown_error"))
        raise SocketModeError(
            f"Slack refused SLACK_APP_TOKEN ({code}): {_HINTS.get(code, 'check the app-level token')}"
        ) from None
    handler = AsyncSocketModeHandler(app, app_token, logger=log, web_client=web_client)
    handler.client.wss_uri = str(opened["url"])
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it unannotated
    except BaseException:
        await handler.close_async()  # type: ignore[no-untyped-call]
        raise
    log.info("Socket Mode connected")
    return SocketModeRunner(handler)
