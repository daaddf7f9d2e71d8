"""The daily agenda DM, with time travel: a real (SQLite, migrated) database, the real runner and
renderer, an injected clock walked across the spring-forward night in New York, and a stand-in Slack
that only answers users.info (the locale and zone). The agenda must come at 07:30 on the wall clock
both before and after the change, once a day, listing only that local day's conferences."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.sessions import ScanChanges, Scanned
from bot.engine.agenda import AgendaRunner
from bot.engine.locales import Locales
from bot.store import sessions as store
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, OutboxMessage
from tests.support import Clock

NEW_YORK = "America/New_York"
# 2027-03-14 02:00 EST clocks jump to 03:00 EDT: 07:30 local is 12:30 UTC before, 11:30 UTC after.
SATURDAY_0730 = datetime(2027, 3, 13, 12, 30, tzinfo=UTC)
SUNDAY_0730 = datetime(2027, 3, 14, 11, 30, tzinfo=UTC)


class ProfileOnlySlack:
    async def users_info(self, **args: Any) -> dict[str, Any]:
        return {"ok": True, "user": {"id": args["user"], "tz": NEW_YORK, "locale": "es-ES"}}

    async def for_team(self, team_id: str) -> Any:
        return self

    async def for_outbox(self, team_id: str) -> Any:
        return self


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agenda.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


def _scheduled(conference_id: int, title: str, start_at: datetime) -> Scanned:
    return Scanned(conference_id, "Course", 42, title, start_at, None, None, 12, False)


async def _agendas(sessions: SessionFactory) -> list[OutboxMessage]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.contains(":agenda:"))
        )
        return list(rows)


async def test_the_agenda_comes_at_0730_wall_clock_on_both_sides_of_a_dst_change(
    sessions: SessionFactory,
) -> None:
    clock = Clock()
    clock.now = SATURDAY_0730 - timedelta(hours=1)
    async with sessions.begin() as session:
        user = LinkedUser(
            team_id="T1",
            slack_user_id="UEVA",
            canvas_user_id=1,
            canvas_name="Eva",
            token_kind="pat",
            access_token_enc=b"x",
            agenda_at="07:30",
            agenda_next_at=SATURDAY_0730,
        )
        session.add(user)
        await session.flush()
        changes = ScanChanges(
            changed=[
                _scheduled(1, "Saturday seminar <b>", SATURDAY_0730 + timedelta(hours=2)),
                _scheduled(2, "Sunday lab", SUNDAY_0730 + timedelta(hours=3)),
                _scheduled(3, "Monday lecture", SUNDAY_0730 + timedelta(days=1)),
            ]
        )
        await store.write_catalog(session, user.id, changes)
    runner = AgendaRunner(
        sessions,
        Locales(sessions, ProfileOnlySlack(), clock=clock),
        canvas_root="https://canvas.test",
        clock=clock,
    )

    assert await runner.tick() == 0, "not before 07:30"
    clock.now = SATURDAY_0730
    assert await runner.tick() == 1
    assert await runner.tick() == 0, "once a day"
    clock.now = SUNDAY_0730 - timedelta(minutes=1)  # 07:29 EDT on Sunday: not yet
    assert await runner.tick() == 0
    clock.now = SUNDAY_0730
    assert await runner.tick() == 1, "07:30 on the wall clock, 23 hours after Saturday's"

    saturday, sunday = await _agendas(sessions)
    assert saturday.dedup_key.endswith(":agenda:2027-03-13") and sunday.dedup_key.endswith(
        ":agenda:2027-03-14"
    )
    shown = str(saturday.payload["message"]["blocks"])
    assert "Saturday seminar &lt;b&gt;" in shown and "Sunday lab" not in shown
    assert "09:30" in shown, "times in the reader's zone"
    assert "sábado" in shown.lower(), "in the reader's language (es)"
    assert "Sunday lab" in str(sunday.payload["message"]["blocks"])
    assert "https://canvas.test/courses/42/conferences/2/join" in str(sunday.payload["message"]["blocks"])
