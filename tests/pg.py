"""PostgreSQL for tests: a fresh throwaway database per test, created and dropped through the `test` DB.

Each test gets `confbot_<random>` so tests (and leftover bot processes of a failed test) never see each
other's rows. Only an unreachable server skips: once 127.0.0.1:5432 answers, any failure is a real one,
so a broken PostgreSQL setup cannot hide behind a green-but-skipped run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

HOST = os.environ.get("CONFBOT_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CONFBOT_TEST_PG_PORT", "5432"))
USER = os.environ.get("CONFBOT_TEST_PG_USER", "root")
ADMIN_DATABASE = "test"


def reachable(timeout: float = 1.0) -> bool:
    """Whether anything listens on the PostgreSQL port (the one condition under which tests skip)."""
    try:
        with socket.create_connection((HOST, PORT), timeout=timeout):
            return True
    except OSError:
        return False


def url_for(database: str, driver: str = "postgresql+asyncpg") -> str:
    """SQLAlchemy URL of `database` (trust auth: no password)."""
    return f"{driver}://{USER}@{HOST}:{PORT}/{database}"


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(host=HOST, port=PORT, user=USER, database=ADMIN_DATABASE)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> str:
    """Create `confbot_<random>` and return its name (the name is generated, never user input)."""
    name = f"confbot_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    """Drop it even if a killed bot process still holds connections (FORCE, PostgreSQL >= 13)."""
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A fresh database for the block; yields its SQLAlchemy asyncpg URL; skips if PostgreSQL is down."""
    if not reachable():
        pytest.skip(f"PostgreSQL is not reachable at {HOST}:{PORT}")
    name = create_database()
    try:
        yield url_for(name)
    finally:
        drop_database(name)


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
