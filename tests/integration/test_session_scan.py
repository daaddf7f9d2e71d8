"""The session scan against the sandbox Canvas (through its fault layer) and a real SQLite database, on an
injected clock: a scan that fails is retried within a tenth of the scan interval, not a whole interval
later, since until it succeeds the user's schedules and Live Event participations are unknown. Scans are
scheduled in memory (issue 14): only a user's first scan writes to their row."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.canvas.client import CanvasClient
from bot.engine.contexts import ContextNames
from bot.engine.credentials import Credentials
from bot.engine.linking import link_with_token
from bot.engine.session_scan import FAILED_SCAN_RETRY_SECONDS, SessionScanner
from bot.store.crypto import TokenCipher
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, UserConference
from tests.support import CanvasWorld, Clock, fernet_key

SCAN_INTERVAL = 600.0


@dataclass
class ScanDb:
    """A migrated SQLite database, a cipher for its tokens and the injected clock."""

    engine: AsyncEngine
    sessions: SessionFactory
    cipher: TokenCipher
    clock: Clock


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[ScanDb]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'scan.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield ScanDb(engine, session_factory(engine), TokenCipher([fernet_key()]), Clock())
    await engine.dispose()


def _scanner(
    sessions: SessionFactory,
    client: CanvasClient,
    cipher: TokenCipher,
    clock: Clock,
    *,
    slots: int,
    units: Callable[[], Collection[int]],
) -> SessionScanner:
    """The scanner as the runtime builds it, `slots` Canvas requests at once, on the injected clock,
    scanning `units` (in the runtime: the users its replica polls)."""
    return SessionScanner(
        sessions,
        client,
        Credentials(sessions, cipher, None, clock=clock),
        ContextNames(sessions, client),
        units=units,
        interval=SCAN_INTERVAL,
        semaphore=asyncio.Semaphore(slots),
        clock=clock,
    )


async def test_a_failed_scan_is_retried_soon_and_a_good_one_waits_an_interval(
    db: ScanDb, canvas: CanvasWorld
) -> None:
    sessions, cipher, clock = db.sessions, db.cipher, db.clock
    ada = _ada_with_a_lecture(canvas)
    async with CanvasClient(canvas.canvas.url) as client:
        user_id = await _link(sessions, client, cipher, "UADA", ada["token"])
        scanner = _scanner(sessions, client, cipher, clock, slots=4, units=lambda: {user_id})

        def next_scan_in() -> float:
            due = scanner.due_at(user_id)
            assert due is not None
            return (due - clock.now).total_seconds()

        async def marked_scanned() -> bool:
            async with sessions() as session:
                return await session.scalar(select(LinkedUser.next_scan_at)) is not None

        canvas.canvas.post(
            "/_sandbox/faults", {"kind": "error_500", "count": 3, "path_prefix": "/api/v1/conferences"}
        )
        assert await scanner.tick() == 1, "never scanned: scanned at once"
        assert 0 < next_scan_in() <= FAILED_SCAN_RETRY_SECONDS, "retried within a minute"
        assert not await marked_scanned()
        await asyncio.to_thread(httpx.delete, canvas.canvas.url + "/_sandbox/faults", timeout=10)

        clock.advance(FAILED_SCAN_RETRY_SECONDS)
        assert await scanner.tick() == 1
        assert next_scan_in() >= SCAN_INTERVAL, "a good scan waits a whole interval"
        assert await marked_scanned()
        assert await _catalog_titles(sessions) == ["Lecture"]


async def test_a_scan_the_database_refused_to_record_is_scanned_again_soon(
    db: ScanDb, canvas: CanvasWorld, tmp_path: Path
) -> None:
    """The listing arrived but its write failed (here the catalog table is briefly gone): nothing was
    recorded, so the user is scanned again within a tenth of the interval, not an interval later."""
    sessions, cipher, clock = db.sessions, db.cipher, db.clock
    ada = _ada_with_a_lecture(canvas)
    async with CanvasClient(canvas.canvas.url) as client:
        user_id = await _link(sessions, client, cipher, "UADA", ada["token"])
        scanner = _scanner(sessions, client, cipher, clock, slots=4, units=lambda: {user_id})
        other = sqlite3.connect(tmp_path / "scan.db")
        other.execute("ALTER TABLE user_conferences RENAME TO user_conferences_away")
        other.commit()
        assert await scanner.tick() == 1
        due = scanner.due_at(user_id)
        assert due is not None and due - clock.now <= timedelta(seconds=FAILED_SCAN_RETRY_SECONDS)
        other.execute("ALTER TABLE user_conferences_away RENAME TO user_conferences")
        other.commit()
        other.close()

        clock.now = due
        assert await scanner.tick() == 1
        assert await _catalog_titles(sessions) == ["Lecture"]


def _ada_with_a_lecture(canvas: CanvasWorld) -> dict[str, Any]:
    """Ada, a student of a course with a conference she can see."""
    ada, course = canvas.user("Ada"), canvas.course("Biology 101")
    canvas.enroll(course["id"], ada["id"])
    canvas.conference(course["id"], "Lecture", [ada["id"]])
    return ada


async def _catalog_titles(sessions: SessionFactory) -> list[str]:
    """What the recorded scans found, by title."""
    async with sessions() as session:
        return [row.title for row in await session.scalars(select(UserConference))]


async def _link(
    sessions: SessionFactory, client: CanvasClient, cipher: TokenCipher, slack_user_id: str, token: str
) -> int:
    await link_with_token(sessions, client, cipher, team_id="T1", slack_user_id=slack_user_id, token=token)
    async with sessions() as session:
        user_id = await session.scalar(select(LinkedUser.id).where(LinkedUser.slack_user_id == slack_user_id))
    assert user_id is not None
    return user_id


async def test_scans_that_change_nothing_write_nothing_and_follow_the_users_this_replica_polls(
    db: ScanDb, canvas: CanvasWorld
) -> None:
    """Issue 14: database load by change, not by poll or scan. A scanned user is scanned again an interval
    later without a row written; a user this replica stops polling (its bucket taken by another) is no
    longer scanned here, and one it takes on that was scanned before waits its turn within an interval."""
    engine, sessions, cipher, clock = db.engine, db.sessions, db.cipher, db.clock
    course = canvas.course("Biology 101")
    async with CanvasClient(canvas.canvas.url) as client:
        ids = []
        for name in ("Ada", "Ben"):
            person = canvas.user(name)
            canvas.enroll(course["id"], person["id"])
            ids.append(await _link(sessions, client, cipher, f"U{name}", person["token"]))
        ada, ben = ids
        polled_here = {ada, ben}
        scanner = _scanner(sessions, client, cipher, clock, slots=4, units=lambda: set(polled_here))
        assert await scanner.tick() == 2  # first scans: each marks its user scanned

        writes: list[str] = []
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: (
                writes.append(statement)
                if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
                else None
            ),
        )
        clock.advance(SCAN_INTERVAL * 1.2)
        assert await scanner.tick() == 2
        assert writes == [], "a scan that found nothing new wrote nothing"

        polled_here.discard(ben)  # another replica took Ben's bucket
        clock.advance(SCAN_INTERVAL * 1.2)
        assert await scanner.tick() == 1
        assert scanner.due_at(ben) is None

        polled_here.add(ben)  # and gave it back: Ben was scanned before, so he is not due at once
        assert await scanner.tick() == 0
        due = scanner.due_at(ben)
        assert due is not None and clock.now <= due <= clock.now + timedelta(seconds=SCAN_INTERVAL)


async def test_a_batch_of_scans_writes_through_one_connection_not_one_each(
    db: ScanDb, canvas: CanvasWorld
) -> None:
    """bench.scale at 100k users: hundreds of gathered scans each opened a transaction as its listing
    arrived, took every pooled connection, and other jobs timed out waiting for one. Now the scans that
    have finished are written together, one transaction at a time."""
    engine, sessions, cipher, clock = db.engine, db.sessions, db.cipher, db.clock
    course = canvas.course("Biology 101")
    out, most = 0, 0

    def checkout(*_: object) -> None:
        nonlocal out, most
        out += 1
        most = max(most, out)

    def checkin(*_: object) -> None:
        nonlocal out
        out -= 1

    async with CanvasClient(canvas.canvas.url) as client:
        for n in range(30):
            person = canvas.user(f"Student {n}")
            canvas.enroll(course["id"], person["id"])
            await link_with_token(
                sessions, client, cipher, team_id="T1", slack_user_id=f"U{n}", token=person["token"]
            )
        scanner = _scanner(sessions, client, cipher, clock, slots=30, units=lambda: set(range(1, 31)))
        event.listen(engine.sync_engine.pool, "checkout", checkout)
        event.listen(engine.sync_engine.pool, "checkin", checkin)
        assert await scanner.tick() == 30
    assert most == 1, f"{most} connections at once for 30 scans"
