"""Course and group names for alerts and lists, cached in the database (names rarely change)."""

from __future__ import annotations

import asyncio
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
        self._in_flight: dict[ContextKey, asyncio.Future[str | None]] = {}

    async def lookup(self, token: str, keys: Iterable[ContextKey]) -> dict[ContextKey, str]:
        """Names for `keys`: cached ones from the DB, others fetched with `token` and cached."""
        wanted = set(keys)
        if not wanted:
            return {}
        async with self._sessions() as session:
            names = await repo.context_names(session, wanted)
        for key in wanted - names.keys():
            name = await self._fetch_once(token, key)
            if name is not None:
                names[key] = name
        return names

    async def _fetch_once(self, token: str, key: ContextKey) -> str | None:
        """One Canvas request per course even when many users' polls see its new conference at once."""
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            name = await self._fetch(token, key)
            future.set_result(name)
            return name
        except BaseException as error:
            future.set_exception(error)
            raise
        finally:
            del self._in_flight[key]

    async def _fetch(self, token: str, key: ContextKey) -> str | None:
        context_type, context_id = key
        try:
            if context_type == "Group":
                name = (await self._canvas.group(token, context_id)).name
            else:
                name = (await self._canvas.course(token, context_id)).name
        except CanvasError as error:
            log.info("could not name %s %s (%s)", context_type, context_id, type(error).__name__)
            return None
        async with self._sessions.begin() as session:
            await repo.save_context_name(session, context_type, context_id, name, utcnow())
        return name
