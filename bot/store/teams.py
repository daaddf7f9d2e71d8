"""Forget a workspace: what `app_uninstalled` / `tokens_revoked` must do (nothing of that team remains)."""

from __future__ import annotations

import logging

from sqlalchemy import delete

from bot.store.db import SessionFactory
from bot.store.models import (
    ChannelSetting,
    Digest,
    LinkedUser,
    OAuthState,
    OutboxMessage,
    RecordingWatch,
    Subscription,
)

log = logging.getLogger(__name__)


async def forget_team(sessions: SessionFactory, team_id: str) -> None:
    """Delete the team's links (with their tokens), subscriptions, digests, channel languages and queued
    messages."""
    async with sessions.begin() as session:
        for model in (
            RecordingWatch,
            Subscription,
            Digest,
            OutboxMessage,
            OAuthState,
            ChannelSetting,
            LinkedUser,
        ):
            await session.execute(delete(model).where(model.team_id == team_id))
    log.info("forgot every link, subscription and message of team %s", team_id)
