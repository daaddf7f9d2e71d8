"""repo.oldest_due_poll: what /healthz measures its poll lag from (issue 9 item 10)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.store import repo
from bot.store.db import create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, Subscription, utcnow


async def test_only_claimable_units_count_and_back_off_is_not_lag(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = utcnow()

    def user(slack_id: str, next_poll_in: timedelta, needs_relink: bool = False) -> LinkedUser:
        return LinkedUser(
            team_id="T1",
            slack_user_id=slack_id,
            canvas_user_id=1,
            canvas_name=slack_id,
            token_kind="pat",
            access_token_enc=b"x",
            needs_relink=needs_relink,
            next_poll_at=now + next_poll_in,
        )

    async with sessions.begin() as session:
        assert await repo.oldest_due_poll(session) is None
        backing_off = user("UBACKOFF", timedelta(minutes=20))
        relinking = user("URELINK", -timedelta(days=3), needs_relink=True)
        session.add_all([backing_off, relinking])
    async with sessions() as session:
        assert await repo.oldest_due_poll(session) == now + timedelta(minutes=20)  # future: no lag

    async with sessions.begin() as session:
        session.add(
            Subscription(
                team_id="T1",
                channel_id="C1",
                course_id=7,
                course_name="Bio",
                subscriber_id=relinking.id,
                next_poll_at=now - timedelta(days=2),  # never claimed while its owner must relink
            )
        )
        session.add(user("ULATE", -timedelta(seconds=30)))
    async with sessions() as session:
        assert await repo.oldest_due_poll(session) == now - timedelta(seconds=30)

    async with sessions.begin() as session:
        session.add(
            Subscription(
                team_id="T1",
                channel_id="C2",
                course_id=8,
                course_name="Chem",
                subscriber_id=backing_off.id,
                next_poll_at=now - timedelta(minutes=5),
            )
        )
    async with sessions() as session:
        assert await repo.oldest_due_poll(session) == now - timedelta(minutes=5)
    await engine.dispose()
