"""Locales: whose language a message is in, and how long a Slack user's locale is trusted; reminders and
host nudges rendered in their recipient's language.

Against a real (SQLite, migrated) database and a stand-in Slack client that counts users.info calls, with
an injected clock: no server, no sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engine.locales import FAILED_LOOKUP_RETRY, LOCALE_TTL, Locales
from bot.engine.reminders import ReminderRunner
from bot.messages.i18n import Translator, translator
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import CanvasContext, LinkedUser, OutboxMessage, UserConference
from tests.support import Clock


@dataclass
class FakeSlack:
    """users.info answers from `profiles`; `down` makes it fail as Slack does (SlackApiError)."""

    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    async def users_info(self, **args: Any) -> dict[str, Any]:
        self.calls.append(args)
        if self.down:
            raise SlackApiError("boom", {"ok": False, "error": "fatal_error"})
        user = dict(self.profiles[args["user"]])
        if not args.get("include_locale"):
            user.pop("locale", None)
        return {"ok": True, "user": user}

    async def for_team(self, team_id: str) -> Any:
        return self

    async def for_outbox(self, team_id: str) -> Any:
        return self


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locales.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


async def link(sessions: SessionFactory, user_id: str) -> None:
    async with sessions.begin() as session:
        session.add(
            LinkedUser(
                team_id="T1",
                slack_user_id=user_id,
                canvas_user_id=1,
                canvas_name="Eva",
                token_kind="pat",
                access_token_enc=b"x",
            )
        )


async def stored(sessions: SessionFactory, user_id: str) -> LinkedUser:
    async with sessions() as session:
        user = await repo.get_linked(session, "T1", user_id)
    assert user is not None
    return user


async def test_a_linked_users_locale_is_asked_once_stored_and_asked_again_after_a_day(
    sessions: SessionFactory,
) -> None:
    clock = Clock()
    slack = FakeSlack({"UEVA": {"id": "UEVA", "locale": "es-ES", "tz": "Europe/Madrid"}})
    await link(sessions, "UEVA")
    locales = Locales(sessions, slack, clock=clock)

    t = await locales.for_user("T1", "UEVA")
    assert (t.locale, t.zone) == ("es", "Europe/Madrid")
    assert slack.calls == [{"user": "UEVA", "include_locale": True}]
    row = await stored(sessions, "UEVA")
    assert (row.locale, row.timezone, row.locale_checked_at) == ("es-ES", "Europe/Madrid", clock.now)

    # Another process (a fresh Locales) reads it from the link without asking Slack.
    assert (await Locales(sessions, slack, clock=clock).for_user("T1", "UEVA")).locale == "es"
    assert len(slack.calls) == 1

    slack.profiles["UEVA"]["locale"] = "pt-BR"
    clock.advance(LOCALE_TTL.total_seconds() - 1)
    assert (await locales.for_user("T1", "UEVA")).locale == "es", "still fresh"
    clock.advance(2)
    assert (await locales.for_user("T1", "UEVA")).locale == "pt_BR", "a day later Slack is asked again"
    assert len(slack.calls) == 2


async def test_slack_failing_keeps_the_stored_language_and_retries_later_not_per_message(
    sessions: SessionFactory,
) -> None:
    clock = Clock()
    slack = FakeSlack({"UEVA": {"id": "UEVA", "locale": "es-LA", "tz": "America/Bogota"}})
    await link(sessions, "UEVA")
    locales = Locales(sessions, slack, clock=clock)
    assert (await locales.for_user("T1", "UEVA")).locale == "es"

    clock.advance(LOCALE_TTL.total_seconds() + 1)
    slack.down = True
    for _ in range(3):
        assert (await locales.for_user("T1", "UEVA")).locale == "es", "the stored one, however old"
    assert len(slack.calls) == 2, "one failed look-up, then the fallback is remembered"
    clock.advance(FAILED_LOOKUP_RETRY.total_seconds() + 1)
    slack.down = False
    assert (await locales.for_user("T1", "UEVA")).locale == "es"
    assert len(slack.calls) == 3


async def test_unknown_people_get_english_and_unlinked_ones_are_remembered_in_memory(
    sessions: SessionFactory,
) -> None:
    clock = Clock()
    slack = FakeSlack({"UNEW": {"id": "UNEW", "locale": "pt-BR"}, "UFR": {"id": "UFR", "locale": "fr-FR"}})
    locales = Locales(sessions, slack, clock=clock)
    assert (await locales.for_user("T1", "UNEW")).locale == "pt_BR"
    assert (await locales.for_user("T1", "UNEW")).locale == "pt_BR"
    assert len(slack.calls) == 1
    assert (await locales.for_user("T1", "UFR")).locale == "en", "a language without a catalog"
    slack.down = True
    assert (await locales.for_user("T1", "UGONE")).locale == "en"


async def test_a_channel_reads_its_own_language_else_the_workspace_default(sessions: SessionFactory) -> None:
    slack = FakeSlack()
    spanish_workspace = Locales(sessions, slack, default_locale="es")
    english_workspace = Locales(sessions, slack)
    assert (await english_workspace.for_destination("T1", "C1")).locale == "en"
    assert (await spanish_workspace.for_destination("T1", "C1")).locale == "es"

    await english_workspace.set_channel_locale("T1", "C1", "pt_BR", "UANA")
    assert (await spanish_workspace.for_destination("T1", "C1")).locale == "pt_BR"
    await english_workspace.set_channel_locale("T1", "C1", "en", "UBOB")
    assert (await spanish_workspace.channel_locale("T1", "C1")) == "en"
    assert (await spanish_workspace.for_destination("T2", "C1")).locale == "es", "per workspace"
    assert slack.calls == [], "a channel's language needs no Slack call"


# --- reminders and host nudges ----------------------------------------------------------------------------


class WatchedLocales(Locales):
    """Locales noting, at each look-up, how many database connections this process had checked out: none
    means no transaction (and so no row lock) is held while Slack is asked."""

    def __init__(self, engine: AsyncEngine, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine = engine
        self.lookups: list[tuple[str, int]] = []

    async def for_user(self, team_id: str, user_id: str) -> Translator:
        self.lookups.append((user_id, self._engine.pool.checkedout()))  # type: ignore[attr-defined]
        return await super().for_user(team_id, user_id)


async def scheduled(
    sessions: SessionFactory, user_id: str, conference_id: int, title: str, start_at: datetime, teaches: bool
) -> None:
    """`user_id` (linked) is invited to a conference of course 5 that the session scan saw scheduled."""
    linked = await stored(sessions, user_id)
    async with sessions.begin() as session:
        session.add(
            UserConference(
                linked_user_id=linked.id,
                conference_id=conference_id,
                context_type="Course",
                context_id=5,
                title=title,
                start_at=start_at,
                invited=3,
                teaches=teaches,
            )
        )


async def queued(sessions: SessionFactory) -> dict[str, dict[str, Any]]:
    """Each queued message's rendering by recipient."""
    async with sessions() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    return {row.destination: row.payload["message"] for row in rows}


async def test_reminders_and_nudges_are_in_each_recipients_language_looked_up_with_no_row_locked(
    engine: AsyncEngine, sessions: SessionFactory
) -> None:
    clock = Clock()
    slack = FakeSlack(
        {
            "UEVA": {"id": "UEVA", "locale": "es-ES", "tz": "Europe/Madrid"},
            "UBOB": {"id": "UBOB", "locale": "en-US", "tz": "America/Chicago"},
            "UANA": {"id": "UANA", "locale": "pt-BR", "tz": "America/Sao_Paulo"},
        }
    )
    for user in slack.profiles:
        await link(sessions, user)
    async with sessions.begin() as session:
        session.add(CanvasContext(context_type="Course", context_id=5, name="Biología & <Co>"))
    seminar_at = clock.now + timedelta(minutes=5)
    await scheduled(sessions, "UEVA", 11, "Seminar", seminar_at, teaches=False)
    await scheduled(sessions, "UBOB", 11, "Seminar", seminar_at, teaches=False)
    await scheduled(sessions, "UANA", 12, "Lecture", clock.now - timedelta(minutes=6), teaches=True)
    locales = WatchedLocales(engine, sessions, slack, clock=clock)
    runner = ReminderRunner(
        sessions,
        lead=timedelta(minutes=10),
        nudge_after=timedelta(minutes=5),
        canvas_root="https://canvas.test",
        clock=clock,
        locales=locales,
    )

    assert await runner.tick() == 3
    assert sorted(locales.lookups) == [("UANA", 0), ("UBOB", 0), ("UEVA", 0)], "no connection held"
    messages = await queued(sessions)
    headers = {user: message["blocks"][0]["text"]["text"] for user, message in messages.items()}
    assert headers == {
        "UEVA": "⏰ Empieza en 5 min: Seminar",
        "UBOB": "⏰ Starts in 5 min: Seminar",
        "UANA": "Ainda não começou: Lecture",
    }
    madrid = translator("es-ES", "Europe/Madrid").clock(seminar_at)
    assert messages["UEVA"]["text"] == (
        f"Seminar en Biología &amp; &lt;Co&gt; empieza en 5 min (<!date^{int(seminar_at.timestamp())}"
        f"^{{time}}|{madrid}>)"
    ), "the course escaped, the time in her zone"
    assert "3 pessoas convidadas" in messages["UANA"]["text"]

    clock.advance(15)
    assert await runner.tick() == 0, "queued once"
    assert len(locales.lookups) == 3, "nobody with everything queued is looked up again"
