"""The one credentials path: every Canvas caller gets its token through `Credentials.call`.

The poller, the slash commands (lists, channel subscriptions, mutes), App Home, digests and the
recording watcher all hand `call` what they want to do with a token. `call` refreshes an OAuth token
that expires within a few minutes, and on a 401 (`InvalidToken`) refreshes once and runs the operation
again, so an expired token never asks a user to relink. Canvas sends no new refresh_token on refresh,
so the stored one is kept. Only a final refusal
(`OAuthError.dead_grant`: invalid_grant, invalid_client, invalid_request "refresh_token not found")
means the user must relink. Anything else at the token endpoint (its throttle, 5xx, a proxy's HTML
page, a reset, a timeout) raises `Throttled` / `Transient`, so callers back off and keep the link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, select, update

from bot.canvas.errors import InvalidToken, OAuthError, Throttled, Transient
from bot.canvas.oauth import CanvasOAuth
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, utcnow
from bot.store.repo import PolledUser

log = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)

T = TypeVar("T")


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
    def of(cls, user: LinkedUser | PolledUser | Row[Any]) -> StoredToken:
        """From a LinkedUser, a polled user's row or any row with the same column names."""
        return cls(
            user.id, user.token_kind, user.access_token_enc, user.refresh_token_enc, user.token_expires_at
        )

    @property
    def refreshable(self) -> bool:
        return self.refresh_enc is not None


class Credentials:
    """Hands out Canvas tokens: refreshed before they expire and after a 401, relinking only on a dead grant.

    Refreshes of one user are serialised in this process, and a refresh first looks whether another
    caller (or replica) already stored a newer token: Canvas invalidates the previous access token on
    every refresh, so two racing refreshes would otherwise leave one caller with a dead token.
    """

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
        self._refreshing: dict[int, asyncio.Lock] = {}

    async def call(self, stored: StoredToken, operation: Callable[[str], Awaitable[T]]) -> T:
        """Run `operation(token)` with a usable token; on a 401, refresh once and run it again.

        `operation` may run twice, so it must not have done anything it cannot repeat before Canvas
        answered 401. Raises `RelinkNeeded` when the token is rejected and cannot be refreshed (a personal
        access token, OAuth not configured) or when the token endpoint says the grant is dead. A freshly
        refreshed token that is rejected too is `Transient`, and any other `CanvasError` (a throttled or
        failing token endpoint included) propagates unchanged: it says nothing about the link, so
        callers back off.
        """
        token = await self.access_token(stored)
        try:
            return await operation(token)
        except InvalidToken as error:
            if not (stored.refreshable and self._oauth is not None):
                raise RelinkNeeded(str(error) or "Canvas rejected the access token") from None
        token = await self.refresh(stored, rejected=token)
        try:
            return await operation(token)
        except InvalidToken:
            # Not proof of a dead link: another replica's refresh may have replaced this token between
            # our refresh and our call (Canvas keeps only the newest). Only the token endpoint says a
            # grant is dead; here the caller backs off and the next call refreshes again.
            raise Transient("Canvas rejected a freshly refreshed token; trying again later") from None

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

    async def refresh(self, stored: StoredToken, *, rejected: str | None = None) -> str:
        """A new access token, stored; `RelinkNeeded` only when Canvas says the grant is dead.

        If a newer token than `stored` holds was stored meanwhile (another poll, command or replica
        refreshed), that one is adopted instead of refreshing again, unless it is `rejected`, the
        token Canvas just refused. Raises `Throttled` / `Transient` (CanvasErrors, which the poller
        backs off on) for every other failure, including an OAuth2 error that is not final.
        """
        if stored.refresh_enc is None or self._oauth is None:
            raise RelinkNeeded("Canvas rejected the access token")
        lock = self._refreshing.setdefault(stored.user_id, asyncio.Lock())
        async with lock, self._sessions.begin() as session:
            # The user's row stays locked (PostgreSQL: FOR UPDATE) until the new token is stored, so a
            # replica refreshing the same user waits and then adopts it instead of refreshing again,
            # which would kill the token just handed out. The poller's claims skip locked rows.
            row = (
                await session.execute(
                    select(LinkedUser.access_token_enc, LinkedUser.token_expires_at)
                    .where(LinkedUser.id == stored.user_id)
                    .with_for_update()
                )
            ).first()
            newer = self._newer_token(stored, *(row or (None, None)), rejected=rejected)
            if newer is not None:
                return newer
            token = await self._refresh_at_canvas(stored, stored.refresh_enc)
            await session.execute(
                update(LinkedUser)
                .where(LinkedUser.id == stored.user_id)
                .values(access_token_enc=stored.access_enc, token_expires_at=stored.expires_at)
            )
        log.info("refreshed the Canvas token of linked user %s", stored.user_id)
        return token

    def _newer_token(
        self,
        stored: StoredToken,
        access_enc: bytes | None,
        expires_at: datetime | None,
        *,
        rejected: str | None,
    ) -> str | None:
        """The token stored for this user (`access_enc`) if it is newer than `stored`, adopted into it."""
        if access_enc is None or access_enc == stored.access_enc:
            return None
        token = self._cipher.decrypt(access_enc)
        if token == rejected:
            return None
        if expires_at is not None and expires_at - REFRESH_MARGIN <= self._clock():
            return None  # stored meanwhile, but itself about to expire: refresh anyway
        stored.access_enc, stored.expires_at = access_enc, expires_at
        return token

    async def _refresh_at_canvas(self, stored: StoredToken, refresh_enc: bytes) -> str:
        """A new access token from the token endpoint, set on `stored` (the caller writes it)."""
        assert self._oauth is not None
        try:
            grant = await self._oauth.refresh(self._cipher.decrypt(refresh_enc))
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
        return token
