"""Locales: whose language a message is in, and how long a Slack user's locale is trusted.

Against a real (SQLite, migrated) database and a stand-in Slack client that counts users.info calls, with
an injected clock: no server, no sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.engine.locales import FAILED_LOOKUP_RETRY, LOCALE_TTL, Locales
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import LinkedUser
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
async def sessions(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locales.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


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
