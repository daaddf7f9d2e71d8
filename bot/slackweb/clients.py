"""Web API clients sharing one HTTP session per process, with the retries each kind of call can bear.

slack_sdk's AsyncWebClient opens and closes an aiohttp ClientSession for every call unless it is given
one (a TLS handshake per message). Every client built here uses the one session of its `SlackHttp`,
created on first use inside the running event loop (the runtime is built before the loop exists) and
closed with the runtime.

Retries: slack_sdk's default `AsyncConnectionErrorRetryHandler` sends a request again when the
connection breaks, even after Slack accepted it; for chat.postMessage that is a silent second message
(Slack has no idempotency key). A 429 is always safe to repeat (Slack did nothing), a broken connection
is not. So:
- outbox clients retry nothing: the outbox's own recovery (sending_since + the metadata look-up in
  bot/engine/delivery.py) decides, and it handles 429 itself without holding a send slot;
- interactive clients (Bolt's listeners: views.open, chat.postEphemeral, App Home; OAuth calls) wait
  out one 429 and never repeat a call whose connection broke.
"""

from __future__ import annotations

from typing import Any, Protocol

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

TIMEOUT_SECONDS = 15


class SlackHttp:
    """The process's one aiohttp session for Slack and the clients that use it."""

    def __init__(self, base_url: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = base_url
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The shared session; made on first use, inside the event loop that will use it."""
        if self._session is None or self._session.closed:
            # slack_sdk passes no per-request timeout when given a session: the session carries it.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    def client(self, token: str | None, *, outbox: bool = False) -> AsyncWebClient:
        """A client for `token`; `outbox=True` for the dispatcher's posts and edits (no retries)."""
        handlers: list[AsyncRetryHandler] = (
            [] if outbox else [AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
        )
        return SharedSessionClient(
            self, token=token, base_url=self.base_url, timeout=int(self._timeout), retry_handlers=handlers
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SharedSessionClient(AsyncWebClient):
    """An AsyncWebClient whose `session` is the shared one, looked up at each call (so a client built
    before the event loop runs still uses a session of that loop). Bolt copies `client.session` into
    its per-request clients, which then share it too."""

    def __init__(self, http: SlackHttp, **kwargs: Any) -> None:
        self._http = http
        super().__init__(**kwargs)

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._http.session()

    @session.setter
    def session(self, value: aiohttp.ClientSession | None) -> None:
        """AsyncBaseClient.__init__ assigns `session=None`; the shared session is the only one."""


class TeamClients(Protocol):
    """Which Web API client serves a team: one bot token (SingleWorkspace) or each workspace's own
    installation (installations.MultiWorkspace). `for_outbox` clients retry nothing (see above)."""

    async def for_team(self, team_id: str) -> AsyncWebClient | None: ...

    async def for_outbox(self, team_id: str) -> AsyncWebClient | None: ...


class SingleWorkspace:
    """SLACK_BOT_TOKEN mode: one bot token serves every team id we see.

    `client` serves interactive calls; `outbox_client` (the same token, no retries below the outbox:
    bot/slackweb/clients.py) the dispatcher's posts. Without one, the dispatcher uses `client`."""

    def __init__(self, client: AsyncWebClient | None, outbox_client: AsyncWebClient | None = None) -> None:
        self.client = client
        self._outbox_client = outbox_client or client

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        return self.client

    async def for_outbox(self, team_id: str) -> AsyncWebClient | None:
        return self._outbox_client


def slack_clients(http: SlackHttp, token: str | None) -> SingleWorkspace:
    """Both clients of the bot token, sharing the process's Slack session."""
    if not token:
        return SingleWorkspace(None)
    return SingleWorkspace(http.client(token), http.client(token, outbox=True))
