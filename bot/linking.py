"""Linking a Slack user to Canvas: shared by the CLI, the token modal and the OAuth callback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from bot.canvas.client import CanvasClient
from bot.canvas.models import CanvasUser
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, OutboxMessage, Subscription, utcnow

log = logging.getLogger(__name__)


async def link_with_token(
    sessions: SessionFactory,
    canvas: CanvasClient,
    cipher: TokenCipher,
    *,
    team_id: str,
    slack_user_id: str,
    token: str,
    token_kind: str = "pat",
    refresh_token: str | None = None,
    expires_in: int | None = None,
    canvas_user: CanvasUser | None = None,
) -> CanvasUser:
    """Check the token against users/self (CanvasError propagates: nothing is saved), then store it."""
    who = canvas_user or await canvas.self_user(token)
    now = utcnow()
    async with sessions.begin() as session:
        await repo.upsert_link(
            session,
            team_id=team_id,
            slack_user_id=slack_user_id,
            canvas_user_id=who.id,
            canvas_name=who.name,
            token_kind=token_kind,
            access_token_enc=cipher.encrypt(token),
            refresh_token_enc=cipher.encrypt(refresh_token) if refresh_token else None,
            token_expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            now=now,
        )
    log.info("linked Slack user %s (team %s) to Canvas user %s", slack_user_id, team_id, who.id)
    return who


@dataclass(frozen=True, slots=True)
class Unlinked:
    user: LinkedUser
    subscriptions: int


async def unlink(sessions: SessionFactory, team_id: str, slack_user_id: str) -> Unlinked | None:
    """Forget the user's tokens and per-user state; returns the removed row (caller may revoke at Canvas)
    and how many channel subscriptions went with it."""
    async with sessions.begin() as session:
        user = await repo.get_linked(session, team_id, slack_user_id)
        if user is None:
            return None
        # Known conferences, mutes, recording watches and the user's channel subscriptions go with the
        # row (ON DELETE CASCADE): without the token nothing of theirs can be polled.
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.team_id == team_id,
                OutboxMessage.destination == slack_user_id,
                OutboxMessage.status == "pending",
            )
        )
        subscriptions = await session.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.subscriber_id == user.id)
        )
        await session.delete(user)
        return Unlinked(user, subscriptions or 0)
