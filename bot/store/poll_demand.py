"""How many poll units there are: the demand side of the poll concurrency (bot/domain/concurrency.py)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import LinkedUser, Subscription


async def pollable_units(session: AsyncSession) -> int:
    """Linked users and channel subscriptions that are polled (their token is not waiting for a relink).

    Two aggregate counts, run every few seconds: each unit is due once an interval, so this count over the
    interval is the poll rate the concurrency limit must sustain."""
    users = await session.scalar(
        select(func.count()).select_from(LinkedUser).where(LinkedUser.needs_relink.is_(False))
    )
    subscriptions = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .join(LinkedUser, LinkedUser.id == Subscription.subscriber_id)
        .where(LinkedUser.needs_relink.is_(False))
    )
    return int(users or 0) + int(subscriptions or 0)
