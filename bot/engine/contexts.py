"""Course and group names for alerts and lists, cached in the database (names rarely change)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

ContextKey = tuple[str, int]


def fallback_name(key: ContextKey) -> str:
    return f"{key[0]} {key[1]}"


class ContextNames:
    def __init__(self, sessions: SessionFactory, canvas: CanvasClient) -> None:
        self._sessions = sessions
        self._canvas = canvas

    async def lookup(self, token: str, keys: Iterable[ContextKey]) -> dict[ContextKey, str]:
        """Names for `keys`: cached ones from the DB, others fetched with `token` and cached."""
        wanted = set(keys)
        if not wanted:
            return {}
        async with self._sessions() as session:
            names = await repo.context_names(session, wanted)
        fetched: dict[ContextKey, str] = {}
        for key in wanted - names.keys():
            context_type, context_id = key
            try:
                if context_type == "Group":
                    fetched[key] = (await self._canvas.group(token, context_id)).name
                else:
                    fetched[key] = (await self._canvas.course(token, context_id)).name
            except CanvasError as error:
                log.info("could not name %s %s (%s)", context_type, context_id, type(error).__name__)
        if fetched:
            now = utcnow()
            async with self._sessions.begin() as session:
                for (context_type, context_id), name in fetched.items():
                    await repo.save_context_name(session, context_type, context_id, name, now)
        return names | fetched
