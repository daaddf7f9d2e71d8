"""`one_of`: the poll batch's `id IN (...)`, bound as one value, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.id_lists import one_of
from bot.store.models import CanvasContext
from tests.pg import db_url, pg_url  # noqa: F401  (fixtures: each test on SQLite and PostgreSQL)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:  # noqa: F811
    await upgrade_async(db_url)
    engine = create_engine(db_url)
    factory = session_factory(engine)
    async with factory.begin() as session:
        session.add_all(
            CanvasContext(context_type="Course", context_id=n, name=f"Course {n}") for n in range(1, 1201)
        )
    yield factory
    await engine.dispose()


async def _matching(sessions: SessionFactory, ids: list[int]) -> list[int]:
    async with sessions() as session:
        found = await session.scalars(
            select(CanvasContext.context_id).where(one_of(session, CanvasContext.context_id, ids))
        )
        return sorted(found)


async def test_one_of_finds_exactly_the_listed_ids_whatever_the_batch(sessions: SessionFactory) -> None:
    assert await _matching(sessions, [5, 999, 5, 70_000, 2**40]) == [
        5,
        999,
    ]  # repeats, strangers, Canvas-size ids
    assert await _matching(sessions, []) == []
    big = list(range(2, 1201, 2))  # 600 ids: a whole poll batch and more, in one bound value
    assert await _matching(sessions, big) == big
    assert await _matching(sessions, [1]) == [1]  # the same statement serves a different length
