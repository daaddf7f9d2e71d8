"""Polling under Canvas faults, through the fault proxy: one unit's trouble stays that unit's.

A real `confbot run` reaches the sandbox Canvas only through the proxy (`faulty_bot`), so a slow,
endlessly paginating, flapping or poisoned answer is exactly what the bot's HTTP client receives.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.store.db import create_engine
from tests.faults import Fault, FaultProxy, html_page
from tests.pg import pg_url  # noqa: F401  (fixture)
from tests.support import BotProcess, CanvasWorld, SlackWorld, fernet_key, link_in_process, wait_for

pytestmark = pytest.mark.e2e

POLL = 1.0  # POLL_INTERVAL_SECONDS of faulty_bot; CANVAS_TIMEOUT_SECONDS is 2
LIVE_LIST = r"^/api/v1/conferences$"


def _course_with(canvas: CanvasWorld, slack: SlackWorld, *names: str) -> tuple[dict[str, Any], list[Any]]:
    course = canvas.course("Biology 101")
    people = []
    for name in names:
        person = canvas.user(name)
        canvas.enroll(course["id"], person["id"])
        slack_id = "U" + name.upper()
        slack.user(slack_id)
        people.append(person | {"slack": slack_id})
    return course, people


def _link(bot: BotProcess, slack: SlackWorld, people: list[dict[str, Any]]) -> None:
    link_in_process(bot, slack.team_id, [(p["slack"], p["token"]) for p in people])


def _empty_live_list(token: str) -> Fault:
    """`state=live` answers an empty list for `token` (the course listings still tell the truth)."""
    return Fault(
        "respond",
        path=LIVE_LIST,
        token=token,
        status=200,
        body=json.dumps({"conferences": []}).encode(),
        headers={"Content-Type": "application/json"},
    )


def _unit_errors(bot: BotProcess) -> dict[str, str | None]:
    with sqlite3.connect(bot.db_path) as db:
        return dict(db.execute("SELECT slack_user_id, last_error FROM linked_users").fetchall())


def _pg_unit_errors(database_url: str) -> dict[str, str | None]:
    async def read() -> dict[str, str | None]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT slack_user_id, last_error FROM linked_users"))
                return {str(user): error for user, error in rows.all()}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_canvas_that_never_stops_paginating_delays_nobody_else(
    canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    """Fails before the fix: the batch waited ~100 pages of 1 s for the slow user before writing anyone."""
    course, (slow, quick) = _course_with(canvas, slack, "Slow", "Quick")
    canvas_faults.add(Fault("endless_pages", path=LIVE_LIST, token=slow["token"], seconds=1.0))
    faulty_bot.start()
    _link(faulty_bot, slack, [slow, quick])
    wait_for(lambda: canvas_faults.count("endless_pages") >= 2, timeout=10, what="the slow user's pages")

    lecture = canvas.conference(course["id"], "Lecture", [quick["id"]])
    canvas.start(lecture["id"])
    began = time.monotonic()
    wait_for(lambda: slack.dms_to("UQUICK"), timeout=3 * POLL + 2, what="the quick user's alert")
    assert time.monotonic() - began < 3 * POLL + 2

    errors = wait_for(
        lambda: (e := _unit_errors(faulty_bot)).get("USLOW") and e,
        timeout=15,
        what="the slow poll's deadline",
    )
    assert errors["USLOW"] == "Transient", "the slow user is degraded (backing off), not unlinked"
    assert errors["UQUICK"] is None
    assert not slack.dms_to("USLOW"), "no relink DM: a slow Canvas is not a dead token"


def test_a_live_list_that_flaps_for_many_polls_does_not_end_a_running_session(
    canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    """Fails before the fix: after two polls missing from state=live the card said "Ended" although the
    conference's details (the course listing) still said ended_at null."""
    course, (ada,) = _course_with(canvas, slack, "Ada")
    faulty_bot.start()
    _link(faulty_bot, slack, [ada])
    canvas.start(canvas.conference(course["id"], "Lecture", [ada["id"]])["id"])
    wait_for(lambda: slack.dms_to("UADA"), timeout=5 * POLL, what="the alert")

    empty = _empty_live_list(ada["token"])
    with canvas_faults.active(empty):
        wait_for(lambda: empty.applied >= 6, timeout=15 * POLL, what="six polls of the flapping list")
    polls_after = canvas_faults.seen("/api/v1/conferences")
    wait_for(
        lambda: canvas_faults.seen("/api/v1/conferences") >= polls_after + 2,
        timeout=10 * POLL,
        what="two polls after the list came back",
    )

    dm = slack.dms_to("UADA")
    assert len(dm) == 1, "the list's return is not a new session"
    assert "Ended" not in str(dm[0]["blocks"]) and dm[0].get("edits", 0) == 0


def test_a_card_ended_by_a_flap_is_shown_live_again_when_the_session_returns(
    canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    """Fails before the fix: with the details unreachable the grace rule ended the card, and when the same
    session came back (same started_at) its dedup key existed already, so the card stayed "Ended"."""
    course, (ada,) = _course_with(canvas, slack, "Ada")
    faulty_bot.start()
    _link(faulty_bot, slack, [ada])
    canvas.start(canvas.conference(course["id"], "Lecture", [ada["id"]])["id"])
    wait_for(lambda: slack.dms_to("UADA"), timeout=5 * POLL, what="the alert")

    empty = _empty_live_list(ada["token"])
    with canvas_faults.active(empty, html_page(502, path=r"/api/v1/courses/\d+/conferences")):
        wait_for(
            lambda: "Ended" in str(slack.dms_to("UADA")[0]["blocks"]),
            timeout=10 * POLL,
            what="the grace rule to end the card without details",
        )
    wait_for(
        lambda: "Ended" not in str(slack.dms_to("UADA")[0]["blocks"]),
        timeout=10 * POLL,
        what="the card to be shown live again",
    )
    dm = slack.dms_to("UADA")
    assert len(dm) == 1, "the same session: the card is edited back, no second alert"
    assert dm[0]["edits"] >= 2
    assert "Lecture" in str(dm[0]["blocks"])


@pytest.mark.postgres
def test_a_value_the_database_refuses_fails_only_its_own_unit(
    tmp_path: Path,
    canvas: CanvasWorld,
    slack: SlackWorld,
    canvas_faults: FaultProxy,
    pg_url: str,  # noqa: F811
) -> None:
    """Fails before the fix: PostgreSQL refuses a NUL in text, and the whole batch's write failed on every
    tick, so the healthy user in the same batch was never alerted."""
    course, (poisoned, healthy) = _course_with(canvas, slack, "Poisoned", "Healthy")
    bot = BotProcess(
        workdir=tmp_path,
        env={
            "DATABASE_URL": pg_url,
            "CANVAS_BASE_URL": canvas_faults.url,
            "SLACK_API_URL": slack.slack.url + "/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": fernet_key(),
            "POLL_INTERVAL_SECONDS": "1",
        },
    )
    try:
        bot.start()
        _link(bot, slack, [poisoned, healthy])
        bad = canvas.conference(course["id"], "Lecture\u0000 with a NUL", [poisoned["id"]])
        good = canvas.conference(course["id"], "Seminar", [healthy["id"]])
        canvas.start(bad["id"])
        canvas.start(good["id"])
        wait_for(lambda: slack.dms_to("UHEALTHY"), timeout=8 * POLL, what="the healthy user's alert")
        errors = wait_for(
            lambda: (e := _pg_unit_errors(pg_url)).get("UPOISONED") and e,
            timeout=10,
            what="the poisoned unit's error",
        )
        assert str(errors["UPOISONED"]).startswith("StoreError"), errors
        assert errors["UHEALTHY"] is None
        assert "could not store the poll of user" in bot.logs(), "said once, in the log"
    finally:
        bot.stop()
