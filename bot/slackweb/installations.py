"""Multi-workspace installs: slack_sdk's SQLAlchemy installation store with tokens encrypted at rest,
and per-team Web API clients (with bot token rotation) for the scheduler's messages, all on the
process's one Slack session (bot/slackweb/clients.py)."""

from __future__ import annotations

import copy
import logging
from typing import TypeVar

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.slackweb.clients import SlackHttp
from bot.store.crypto import TokenCipher

log = logging.getLogger(__name__)

# Must equal the manifest's bot scopes (tests/unit/test_deploy.py). The *:history scopes only serve
# the duplicate check after an interrupted send (bot/engine/delivery.py); files:write shares the
# attendance report's CSV (bot/engine/uploads.py).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "files:write",
    "im:write",
    "im:history",
    "users:read",
    "channels:read",
    "channels:history",
    "groups:read",
    "groups:history",
)
PREFIX = "enc:"
TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
ROTATE_MINUTES_BEFORE_EXPIRY = 120
Entity = TypeVar("Entity", Bot, Installation)


class EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore):
    """Same tables and queries as slack_sdk's store; token columns hold `enc:` + Fernet ciphertext."""

    def __init__(self, client_id: str, engine: AsyncEngine, cipher: TokenCipher) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self._cipher = cipher

    def _seal(self, entity: Entity) -> Entity:
        sealed = copy.copy(entity)
        for name in TOKEN_FIELDS:
            value = getattr(sealed, name, None)
            if value and not value.startswith(PREFIX):
                setattr(sealed, name, PREFIX + self._cipher.encrypt(value).decode())
        return sealed

    def _open(self, entity: Entity | None) -> Entity | None:
        if entity is None:
            return None
        for name in TOKEN_FIELDS:
            value = getattr(entity, name, None)
            if value and value.startswith(PREFIX):
                setattr(entity, name, self._cipher.decrypt(value.removeprefix(PREFIX).encode()))
        return entity

    async def async_save(self, installation: Installation) -> None:
        await super().async_save(self._seal(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        await super().async_save_bot(self._seal(bot))

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        found = await super().async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return self._open(found)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        found = await super().async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._open(found)


class MultiWorkspace:
    """Bot token of each installed team, rotated before it expires when the app uses token rotation."""

    def __init__(
        self, store: EncryptedInstallationStore, http: SlackHttp, client_id: str, client_secret: str
    ) -> None:
        self._store = store
        self._http = http
        self._rotator = AsyncTokenRotator(
            client_id=client_id, client_secret=client_secret, client=http.client(None)
        )
        self.client: AsyncWebClient | None = None  # Bolt resolves tokens per request from the store

    async def for_team(self, team_id: str) -> AsyncWebClient | None:
        """A client for interactive calls with the team's (fresh) bot token."""
        token = await self._bot_token(team_id)
        return self._http.client(token) if token else None

    async def for_outbox(self, team_id: str) -> AsyncWebClient | None:
        """A client for the dispatcher's posts: no retries below the outbox."""
        token = await self._bot_token(team_id)
        return self._http.client(token, outbox=True) if token else None

    async def _bot_token(self, team_id: str) -> str | None:
        bot = await self._store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            return None
        if bot.bot_refresh_token:
            rotated = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE_EXPIRY
            )
            if rotated is not None:
                await self._store.async_save_bot(rotated)
                bot = rotated
        return bot.bot_token
