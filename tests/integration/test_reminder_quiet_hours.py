"""Reminders and quiet hours, with an injected clock and a real (SQLite, migrated) database: a reminder due
during the user's quiet hours waits for their end when that is still before the start, is not sent at all
when the start comes first, and a deferred one is dropped when the conference moved meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.engine import alerts
from bot.engine.reminders import ReminderRunner
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, OutboxMessage, UserConference
from bot.store.sessions import REMINDER_KEY_SUFFIX
from tests.support import Clock

# 06:50 in New York (EST, UTC-5); quiet hours 22:00-07:00 end at 12:00 UTC.
NIGHT = datetime(2026, 12, 7, 11, 50, tzinfo=UTC)
QUIET_END = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'quiet.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


async def _user_with(sessions: SessionFactory, *starts: datetime) -> int:
    async with sessions.begin() as session:
        user = LinkedUser(
            team_id="T1",
            slack_user_id="UEVA",
            canvas_user_id=1,
            canvas_name="Eva",
            token_kind="pat",
            access_token_enc=b"x",
            quiet_start="22:00",
            quiet_end="07:00",
            timezone="America/New_York",
            reminder_minutes=30,
        )
        session.add(user)
        await session.flush()
        for n, start in enumerate(starts, start=1):
            session.add(
                UserConference(
                    linked_user_id=user.id,
                    conference_id=n,
                    context_type="Course",
                    context_id=5,
                    title=f"Class {n}",
                    start_at=start,
                    invited=2,
                    teaches=False,
                )
            )
        return user.id


async def _reminders(sessions: SessionFactory) -> list[OutboxMessage]:
    async with sessions() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.conference_id)))


def _runner(sessions: SessionFactory, clock: Clock) -> ReminderRunner:
    return ReminderRunner(
        sessions,
        lead=timedelta(minutes=10),
        nudge_after=timedelta(minutes=5),
        canvas_root="https://canvas.test",
        clock=clock,
    )


async def test_a_reminder_due_in_quiet_hours_waits_for_their_end_or_is_not_sent(
    sessions: SessionFactory,
) -> None:
    clock = Clock()
    clock.now = NIGHT
    later, sooner = NIGHT + timedelta(minutes=25), NIGHT + timedelta(minutes=5)
    await _user_with(sessions, later, sooner)

    assert await _runner(sessions, clock).tick() == 1
    (held,) = await _reminders(sessions)
    assert held.conference_id == 1 and held.next_attempt_at == QUIET_END, "sent when the quiet hours end"
    assert "15 min" in str(held.payload["message"]["blocks"]), "the lead as it will be when it arrives"
    # conference 2 starts before the quiet hours end: no reminder at all


async def test_a_deferred_reminder_is_dropped_when_its_conference_moves(sessions: SessionFactory) -> None:
    clock = Clock()
    clock.now = NIGHT
    user_id = await _user_with(sessions, NIGHT + timedelta(minutes=25))
    runner = _runner(sessions, clock)
    assert await runner.tick() == 1
    async with sessions.begin() as session:
        await session.execute(
            update(UserConference)
            .where(UserConference.linked_user_id == user_id)
            .values(start_at=NIGHT + timedelta(hours=3))
        )
    clock.advance(60)
    await runner.tick()
    (dropped,) = await _reminders(sessions)
    assert dropped.status == "failed" and "moved" in (dropped.last_error or "")


async def test_a_channels_reminder_waiting_its_turn_is_not_taken_for_a_persons_stale_one(
    sessions: SessionFactory,
) -> None:
    """Fails before (test_schedules' channel reminder, now and then): a channel reminder enqueued a moment
    after the people's reminder tick read its clock looked deferred, had no linked person and was dropped."""
    clock = Clock()
    clock.now = NIGHT
    await _user_with(sessions)
    message = {"text": "Starts in 1 min", "blocks": []}
    row = alerts.post_row(
        "T1:CBIO:7:1796508388" + REMINDER_KEY_SUFFIX,
        team_id="T1",
        destination="CBIO",
        message=message,
        now=NIGHT + timedelta(milliseconds=1),
    )
    async with sessions.begin() as session:
        await repo.enqueue(session, [row])
    await _runner(sessions, clock).tick()
    (channel,) = await _reminders(sessions)
    assert (channel.destination, channel.status) == ("CBIO", "pending")
