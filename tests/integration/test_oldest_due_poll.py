"""The poll lag /healthz reports (issue 9 item 10), from the replica's in-memory schedule (issue 14):
units whose user must relink are not scheduled, so they never count; a unit in back-off is scheduled at
the back-off written with its error, so it never looks late; a unit nobody polled does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.canvas.client import CanvasClient
from bot.engine.poll_units import SubscriptionUnits, UserUnits
from bot.engine.poller import Poller
from bot.store.crypto import TokenCipher
from bot.store.db import create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser, Subscription
from tests.pollers import poller_for_test
from tests.support import Clock, fernet_key

CANVAS = "http://127.0.0.1:9/"  # never answers: these tests only sync, they never poll
INTERVAL = 60.0


async def test_only_pollable_units_count_and_back_off_is_not_lag(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = Clock()
    now = clock.now

    def user(
        slack_id: str, *, failures: int = 0, next_poll_in: timedelta = timedelta(0), relink: bool = False
    ) -> LinkedUser:
        return LinkedUser(
            team_id="T1",
            slack_user_id=slack_id,
            canvas_user_id=1,
            canvas_name=slack_id,
            token_kind="pat",
            access_token_enc=b"x",
            needs_relink=relink,
            consecutive_failures=failures,
            next_poll_at=now + next_poll_in,
        )

    async with sessions.begin() as session:
        backing_off = user("UBACKOFF", failures=2, next_poll_in=timedelta(minutes=20))
        relinking = user("URELINK", next_poll_in=-timedelta(days=3), relink=True)
        session.add_all([backing_off, relinking])
        await session.flush()
        session.add(
            Subscription(
                team_id="T1", channel_id="C1", course_id=7, course_name="Bio", subscriber_id=relinking.id
            )
        )

    cipher = TokenCipher([fernet_key()])
    async with CanvasClient(CANVAS) as client:

        def poller(units: UserUnits | SubscriptionUnits) -> Poller:
            return poller_for_test(
                units,
                sessions,
                client,
                cipher,
                clock,
                canvas_root="http://127.0.0.1:9/",
                interval=INTERVAL,
                slots=1,
            )

        users, subscriptions = poller(UserUnits()), poller(SubscriptionUnits())
        await users.sync(now)
        await subscriptions.sync(now)
        assert users.scheduled == 1 and subscriptions.scheduled == 0, "nothing of a user who must relink"
        assert users.due_at(backing_off.id) == now + timedelta(minutes=20), "the back-off survives a start"
        clock.advance(5 * 60)
        assert users.lag(clock.now) == timedelta(0), "in back-off: not late"

        async with sessions.begin() as session:
            late = user("ULATE")
            session.add(late)
        clock.advance(1)
        await users.sync(clock.now)  # found as newly linked: due at once
        assert users.due_at(late.id) == clock.now
        clock.advance(30)  # nobody polled it
        assert users.lag(clock.now) == timedelta(seconds=30)
        await users.close()
        await subscriptions.close()
    await engine.dispose()
