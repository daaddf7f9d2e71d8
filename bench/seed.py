"""Fill a fresh benchmark database: N sandbox Canvas users, each linked to a Slack user, all due.

`--db FILE` fills a SQLite file; `--url URL` any database SQLAlchemy's async engine reaches (PostgreSQL
for bench.scale), through the bot's own engine and migrations. Runs as its own process
(`python -m bench.seed`, started by `bench.common.seed`) so the bot process being measured never held
the seeding's objects. The Fernet key comes from TOKEN_ENCRYPTION_KEYS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from datetime import timedelta

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bot.store.crypto import TokenCipher, parse_keys
from bot.store.db import create_engine as create_async_engine
from bot.store.db import session_factory, upgrade
from bot.store.models import LinkedUser, utcnow

CHUNK = 10_000


def slack_user_id(index: int) -> str:
    return f"U{index:08d}"


def canvas_users(canvas_url: str, count: int) -> list[tuple[int, str]]:
    """(canvas user id, token) pairs created in bulk through the sandbox control API."""
    made: list[tuple[int, str]] = []
    with httpx.Client(base_url=canvas_url, timeout=120) as client:
        while len(made) < count:
            size = min(CHUNK, count - len(made))
            response = client.post("/_sandbox/bulk_users", json={"count": size, "prefix": "bench"})
            response.raise_for_status()
            made.extend((int(u["id"]), str(u["token"])) for u in response.json()["users"])
    return made


def linked_rows(
    cipher: TokenCipher,
    users: list[tuple[int, str]],
    due_in: float,
    start: int,
    scan_spread: float | None = None,
    due_spread: float = 0.0,
) -> list[LinkedUser]:
    """Linked users `start` .. `start + CHUNK` of `users`, due `due_in` seconds from now. With
    `scan_spread`, each one's session scan is due at a random moment within that many seconds (a bot's
    steady state) instead of now (every user just linked)."""
    now = utcnow()
    due = now + timedelta(seconds=due_in)
    spread = random.Random(start)
    return [
        LinkedUser(
            team_id="T0001",
            slack_user_id=slack_user_id(start + offset),
            canvas_user_id=canvas_id,
            canvas_name=f"bench {start + offset}",
            token_kind="pat",
            access_token_enc=cipher.encrypt(token),
            refresh_token_enc=None,
            token_expires_at=None,
            needs_relink=False,
            alerts_enabled=True,
            linked_at=now,
            next_poll_at=due + timedelta(seconds=spread.uniform(0, due_spread)) if due_spread else due,
            consecutive_failures=0,
            next_scan_at=None
            if scan_spread is None
            else now + timedelta(seconds=spread.uniform(0, scan_spread)),
        )
        for offset, (canvas_id, token) in enumerate(users[start : start + CHUNK])
    ]


def insert_linked(
    db_path: str,
    cipher: TokenCipher,
    users: list[tuple[int, str]],
    due_in: float,
    scan_spread: float | None = None,
    due_spread: float = 0.0,
) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    with Session(engine) as session:
        for start in range(0, len(users), CHUNK):
            session.add_all(linked_rows(cipher, users, due_in, start, scan_spread, due_spread))
            session.commit()
    engine.dispose()


async def insert_linked_async(
    url: str,
    cipher: TokenCipher,
    users: list[tuple[int, str]],
    due_in: float,
    scan_spread: float | None,
    due_spread: float = 0.0,
) -> None:
    engine = create_async_engine(url)
    sessions = session_factory(engine)
    try:
        for start in range(0, len(users), CHUNK):
            async with sessions.begin() as session:
                session.add_all(linked_rows(cipher, users, due_in, start, scan_spread, due_spread))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", help="SQLite file to create")
    where.add_argument(
        "--url", help="SQLAlchemy async URL of an empty database (e.g. postgresql+asyncpg://...)"
    )
    parser.add_argument("--canvas", required=True, help="sandbox Canvas base URL")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--due-in", type=float, default=-1.0, help="seconds from now until first poll")
    parser.add_argument("--due-spread", type=float, default=0.0, help="first polls due at random within this")
    parser.add_argument(
        "--scan-spread", type=float, help="session scans due at random within this many seconds"
    )
    args = parser.parse_args(argv)
    cipher = TokenCipher(parse_keys(os.environ.get("TOKEN_ENCRYPTION_KEYS")))
    if args.url:
        upgrade(args.url)
        asyncio.run(
            insert_linked_async(
                args.url,
                cipher,
                canvas_users(args.canvas, args.users),
                args.due_in,
                args.scan_spread,
                args.due_spread,
            )
        )
        return
    upgrade(f"sqlite+aiosqlite:///{args.db}")
    insert_linked(
        args.db, cipher, canvas_users(args.canvas, args.users), args.due_in, args.scan_spread, args.due_spread
    )


if __name__ == "__main__":
    main()
