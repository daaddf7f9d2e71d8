"""Canvas access tokens for polling: decrypt, refresh OAuth tokens before they expire or after a 401.

Canvas sends no new refresh_token on refresh, so the stored one is kept. Only a final refusal
(`OAuthError.dead_grant`: invalid_grant, invalid_client, invalid_request "refresh_token not found")
means the user must relink. Anything else at the token endpoint (its throttle, 5xx, a proxy's HTML
page, a reset, a timeout) raises `Throttled` / `Transient`, so callers back off and keep the link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, update

from bot.canvas.errors import OAuthError, Throttled, Transient
from bot.canvas.oauth import CanvasOAuth
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, utcnow

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)


class RelinkNeeded(Exception):
    """Canvas said this link is dead (token invalid and no working refresh)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class StoredToken:
    user_id: int
    kind: str
    access_enc: bytes
    refresh_enc: bytes | None
    expires_at: datetime | None

    @classmethod
    def of(cls, user: LinkedUser | Row[Any]) -> StoredToken:
        """From a LinkedUser or a claimed row with the same column names."""
        return cls(
            user.id, user.token_kind, user.access_token_enc, user.refresh_token_enc, user.token_expires_at
        )

    @property
    def refreshable(self) -> bool:
        return self.refresh_enc is not None


class Credentials:
    def __init__(
        self,
        sessions: SessionFactory,
        cipher: TokenCipher,
        oauth: CanvasOAuth | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._oauth = oauth
        self._clock = clock

    async def access_token(self, stored: StoredToken) -> str:
        """A usable token, refreshed first when it expires within a few minutes.

        When that early refresh fails for now (throttle, outage) the current token is still good
        until it expires, so it is used: a busy token endpoint must not stop polling early.
        """
        now = self._clock()
        expiring = stored.expires_at is not None and stored.expires_at - REFRESH_MARGIN <= now
        if not (expiring and stored.refreshable):
            return self._cipher.decrypt(stored.access_enc)
        try:
            return await self.refresh(stored)
        except (Throttled, Transient) as error:
            if stored.expires_at is None or stored.expires_at <= now:
                raise
            log.info(
                "early refresh of linked user %s failed for now (%s); using its token until it expires",
                stored.user_id,
                type(error).__name__,
            )
            return self._cipher.decrypt(stored.access_enc)

    async def refresh(self, stored: StoredToken) -> str:
        """A new access token, stored; `RelinkNeeded` only when Canvas says the grant is dead.

        Raises `Throttled` / `Transient` (CanvasErrors, which the poller backs off on) for every other
        failure, including an OAuth2 error that is not final.
        """
        if stored.refresh_enc is None or self._oauth is None:
            raise RelinkNeeded("Canvas rejected the access token")
        try:
            grant = await self._oauth.refresh(self._cipher.decrypt(stored.refresh_enc))
        except OAuthError as error:
            if error.dead_grant:
                raise RelinkNeeded(f"Canvas refused to refresh the link ({error.error})") from None
            raise Transient(
                f"Canvas could not refresh the token right now ({error.error})", status=error.status
            ) from None
        token = grant.access_token.get_secret_value()
        expires_at = self._clock() + timedelta(seconds=grant.expires_in) if grant.expires_in else None
        stored.access_enc = self._cipher.encrypt(token)
        stored.expires_at = expires_at
        async with self._sessions.begin() as session:
            await session.execute(
                update(LinkedUser)
                .where(LinkedUser.id == stored.user_id)
                .values(access_token_enc=stored.access_enc, token_expires_at=expires_at)
            )
        log.info("refreshed the Canvas token of linked user %s", stored.user_id)
        return token
