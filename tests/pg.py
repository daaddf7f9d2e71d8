"""PostgreSQL for tests: a fresh throwaway database per test, created and dropped through the `test` DB.

Each test gets `confbot_<random>` so tests (and leftover bot processes of a failed test) never see each
other's rows. Only an unreachable server skips: once 127.0.0.1:5432 answers, any failure is a real one,
so a broken PostgreSQL setup cannot hide behind a green-but-skipped run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.common import PG_HOST, PG_PORT, create_pg_database, drop_pg_database, pg_database_url


def reachable(timeout: float = 1.0) -> bool:
    """Whether anything listens on the PostgreSQL port (the one condition under which tests skip)."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database for the block; yields its SQLAlchemy asyncpg URL; skips if PostgreSQL is down."""
    if not reachable():
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}")
    name = create_pg_database("confbot")
    try:
        yield pg_database_url(name)
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL database (empty: no migrations applied)."""
    with throwaway_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test on SQLite (a file, one process) and on a throwaway PostgreSQL database (the several
    replicas case): a URL, no migrations applied."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
