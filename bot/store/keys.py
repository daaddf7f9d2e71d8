"""Key rotation: re-encrypt every stored token under the first key, so old keys can be retired."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser


async def rotate_all(sessions: SessionFactory, cipher: TokenCipher, *, batch: int = 500) -> int:
    """Returns how many users were re-encrypted; runs in batches so a big table never sits in memory."""
    done = 0
    last_id = 0
    while True:
        async with sessions.begin() as session:
            users = (
                await session.scalars(
                    select(LinkedUser).where(LinkedUser.id > last_id).order_by(LinkedUser.id).limit(batch)
                )
            ).all()
            for user in users:
                user.access_token_enc = cipher.rotate(user.access_token_enc)
                if user.refresh_token_enc is not None:
                    user.refresh_token_enc = cipher.rotate(user.refresh_token_enc)
        if not users:
            return done
        done += len(users)
        last_id = users[-1].id
