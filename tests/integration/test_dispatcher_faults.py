"""The dispatcher under Slack faults: real SQLite, the sandbox Slack behind the fault proxy (or limiting
history reads like Slack), an injected clock (no sleeps: the test moves time and ticks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.domain.diff import Event, EventKind
from bot.domain.outbox import OutboxEvent, RelinkPayload
from bot.engine.alerts import outbox_row, queued
from bot.engine.delivery import HistoryBudget, sent_marker
from bot.engine.dispatcher import LIVE_ALERT_BACKOFF_CAP, MAX_ATTEMPTS, Dispatcher, retry_wait
from bot.sandbox.server import start_in_thread
from bot.sandbox.slack import create_slack_app
from bot.sandbox.slack_state import SlackState
from bot.slackweb.clients import SingleWorkspace
from bot.store import repo
from bot.store.db import SessionFactory, create_engine, session_factory, upgrade_async
from bot.store.models import OutboxMessage
from tests.faults import Fault, FaultProxy
from tests.support import Clock, Sandbox, SlackWorld


@dataclass
class Outbox:
    sessions: SessionFactory
    clock: Clock

    async def add(self, *rows: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await repo.enqueue(session, list(rows))

    async def rows(self) -> dict[str, OutboxMessage]:
        async with self.sessions() as session:
            return {r.dedup_key: r for r in (await session.scalars(select(OutboxMessage))).all()}

    async def row(self, dedup_key: str) -> OutboxMessage:
        return (await self.rows())[dedup_key]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    yield Outbox(session_factory(engine), Clock())
    await engine.dispose()


def proxied_client(slack: SlackWorld, proxy: FaultProxy) -> AsyncWebClient:
    """A client reaching the sandbox through the proxy, retrying nothing by itself (like the bot's)."""
    return AsyncWebClient(token=slack.bot_token, base_url=proxy.url + "/api/", timeout=5, retry_handlers=[])


def alert_row(
    clock: Clock,
    conference_id: int,
    destination: str = "UADA",
    kind: EventKind = "started",
    started: datetime | None = None,
) -> dict[str, Any]:
    """An alert row as the poller queues it; `started` defaults to a minute ago."""
    started = started or clock.now.replace(microsecond=0) - timedelta(minutes=1)
    event = Event(kind, conference_id, started, f"Talk {conference_id}", "Course", 7)
    return outbox_row(
        event,
        team_id="T0001",
        destination=destination,
        context_name="Biology",
        canvas_root="http://canvas.test",
        now=clock.now,
    )


async def test_a_dropped_connection_counts_an_attempt_and_is_retried(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """aiohttp's ServerDisconnectedError is no OSError: it used to escape and re-lease the row uncounted."""
    slack.user("UADA")
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    with slack_faults.active(Fault("drop", path="chat.postMessage", forward=False)):
        assert await dispatcher.tick() == 0
    assert slack_faults.count("drop") == 1
    failed = await outbox.row(row["dedup_key"])
    assert failed.status == "pending" and failed.attempts == 1
    assert failed.last_error == "network: ServerDisconnectedError"
    assert slack.dms_to("UADA") == []

    outbox.clock.advance(60)
    assert await dispatcher.tick() == 1
    assert len(slack.dms_to("UADA")) == 1
    assert (await outbox.row(row["dedup_key"])).status == "sent"


def relink_prompt(clock: Clock, key: str, **stored: Any) -> dict[str, Any]:
    """A relink row as this version queues it, with `stored` columns as another writer left them."""
    row = queued(
        key,
        team_id="T0001",
        destination="UADA",
        event=OutboxEvent.RELINK,
        payload=RelinkPayload(reason="token revoked"),
        now=clock.now,
    )
    return row | stored


async def test_an_unknown_event_fails_for_good_with_a_reason(outbox: Outbox, slack: SlackWorld) -> None:
    slack.user("UADA")
    await outbox.add(relink_prompt(outbox.clock, "T0001:UADA:future", event="hologram"))
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)

    assert await dispatcher.tick() == 0
    row = await outbox.row("T0001:UADA:future")
    assert row.status == "failed"
    assert row.last_error == "unknown event 'hologram'"
    outbox.clock.advance(3600)
    assert await dispatcher.tick() == 0, "not claimed again"


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("post", {}, "unreadable PostPayload: message: Field required"),
        ("post", {"message": {"text": "hi"}}, "unreadable PostPayload: message.blocks: Field required"),
        ("relink", ["not", "an", "object"], "unreadable RelinkPayload: payload: Input should be"),
        ("started", {"title": "Talk"}, "unreadable AlertPayload: conference_id: Field required"),
    ],
)
async def test_a_payload_that_does_not_parse_fails_for_good_with_a_reason(
    outbox: Outbox, slack: SlackWorld, event: str, payload: object, reason: str
) -> None:
    """Corrupt, or written by an incompatible version: no retry can read it, so it is not retried."""
    slack.user("UADA")
    await outbox.add(relink_prompt(outbox.clock, "T0001:UADA:corrupt", event=event, payload=payload))
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)

    assert await dispatcher.tick() == 0
    row = await outbox.row("T0001:UADA:corrupt")
    assert row.status == "failed"
    assert row.last_error is not None and row.last_error.startswith(reason)
    outbox.clock.advance(3600)
    assert await dispatcher.tick() == 0, "not claimed again"
    assert slack.dms_to("UADA") == []


async def test_any_other_failure_is_logged_with_the_outbox_id_and_counted(
    outbox: Outbox, slack: SlackWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure nobody classified (a bug) is retried with its attempts counted, so it ends as failed
    after MAX_ATTEMPTS instead of looping forever."""
    slack.user("UADA")
    await outbox.add(relink_prompt(outbox.clock, "T0001:UADA:broken"))
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])

    async def broken_relink_url(team_id: str, user_id: str) -> str | None:
        raise RuntimeError("relink page unavailable")

    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(client), clock=outbox.clock, relink_url=broken_relink_url
    )

    assert await dispatcher.tick() == 0
    row = await outbox.row("T0001:UADA:broken")
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "error: RuntimeError: relink page unavailable"
    assert any(f"outbox {row.id} (relink) failed" in record.getMessage() for record in caplog.records)
    for _ in range(20):
        outbox.clock.advance(600)
        await dispatcher.tick()
    assert (await outbox.row("T0001:UADA:broken")).status == "failed"
    assert slack.dms_to("UADA") == []


def test_retry_wait_keeps_a_card_going_with_capped_backoff_and_bounds_the_rest() -> None:
    waits = [retry_wait("started", attempts, transient=True) for attempts in range(1, 2000)]
    assert waits[:3] == [2.0, 4.0, 8.0]
    assert all(wait == LIVE_ALERT_BACKOFF_CAP for wait in waits[6:]), "capped, never given up"
    assert retry_wait("started", MAX_ATTEMPTS, transient=False) is None, "Slack refused it: bounded"
    for edit in ("ended", "reopened"):
        assert retry_wait(edit, 1000, transient=True) == LIVE_ALERT_BACKOFF_CAP, (
            "an undone edit leaves a live card"
        )
        assert retry_wait(edit, MAX_ATTEMPTS, transient=False) is None
    assert retry_wait("post", MAX_ATTEMPTS, transient=True) is None, "other rows stay bounded"
    assert retry_wait("relink", MAX_ATTEMPTS - 1, transient=True) == 2.0 ** (MAX_ATTEMPTS - 1)


SLACK_DOWN = Fault("respond", path="chat.postMessage", status=503, body=b"upstream unavailable")


async def _outage(dispatcher: Dispatcher, outbox: Outbox, proxy: FaultProxy, minutes: float) -> None:
    """Slack answers chat.postMessage with 503 for `minutes` of the dispatcher's clock."""
    with proxy.active(replace(SLACK_DOWN)):
        for _ in range(int(minutes * 6)):
            await dispatcher.tick()
            outbox.clock.advance(10)


async def test_a_live_conference_alert_outlives_a_six_minute_slack_outage(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """8 attempts used to be about 4.4 minutes of 5xx: the alert was failed for good mid-conference."""
    slack.user("UADA")
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    await _outage(dispatcher, outbox, slack_faults, minutes=6.5)
    during = await outbox.row(row["dedup_key"])
    assert during.status == "pending" and during.attempts >= MAX_ATTEMPTS, "used to be failed here"
    assert slack_faults.count("respond") >= MAX_ATTEMPTS
    assert slack.dms_to("UADA") == []

    outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)
    assert await dispatcher.tick() == 1
    assert len(slack.dms_to("UADA")) == 1, "the alert arrives after recovery"
    assert (await outbox.row(row["dedup_key"])).status == "sent"


async def test_a_conference_that_ended_during_the_outage_gets_no_live_card(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    slack.user("UADA")
    started = alert_row(outbox.clock, 1)
    await outbox.add(started)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )

    await _outage(dispatcher, outbox, slack_faults, minutes=3)
    outbox.clock.advance(1.5)  # past the destination's pacing
    ended = alert_row(outbox.clock, 1, kind="ended", started=started["started_at"])
    await outbox.add(ended)
    await _outage(dispatcher, outbox, slack_faults, minutes=1)
    outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)
    for _ in range(3):
        await dispatcher.tick()
        outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)

    assert slack.dms_to("UADA") == [], "no stale live card, and nothing to edit"
    rows = await outbox.rows()
    assert rows[started["dedup_key"]].status == "failed"
    assert rows[started["dedup_key"]].last_error == "conference ended before the alert could be sent"
    assert rows[ended["dedup_key"]].status == "sent" and rows[ended["dedup_key"]].slack_ts is None
    assert rows[ended["dedup_key"]].last_error == "no alert to edit"


def test_history_budget_spaces_reads_and_honours_retry_after() -> None:
    budget = HistoryBudget(per_minute=1)
    assert budget.take(1000.0) == 0.0
    assert budget.take(1010.0) == 50.0, "the next turn is a minute after the last read"
    assert budget.take(1060.0) == 0.0
    budget.back_off(1061.0, 120)
    assert budget.take(1100.0) == 81.0


@pytest.fixture
def limited(outbox: Outbox) -> Iterator[SlackWorld]:
    """A sandbox Slack on the test's clock that allows one history read a minute."""
    state = SlackState(clock=lambda: outbox.clock.now.timestamp(), history_reads_per_minute=1)
    server = start_in_thread(create_slack_app(state))
    world = SlackWorld(Sandbox(server))
    world.setup()
    for user in ("UADA", "UBOB", "UCY"):
        world.user(user)
    yield world
    server.stop()


def interrupted(outbox: Outbox, conference_id: int, destination: str) -> dict[str, Any]:
    row = alert_row(outbox.clock, conference_id, destination)
    row["sending_since"] = outbox.clock.now - timedelta(seconds=5)  # the outcome of a post is unknown
    return row


def _client(slack: SlackWorld) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])


async def test_look_ups_take_turns_and_none_is_replaced_by_a_blind_post(
    outbox: Outbox,
    limited: SlackWorld,
) -> None:
    rows = [interrupted(outbox, 1, "UADA"), interrupted(outbox, 2, "UBOB"), interrupted(outbox, 3, "UCY")]
    reached = await _client(limited).chat_postMessage(
        channel="UBOB", text="Talk 2 is live", metadata=sent_marker(rows[1]["dedup_key"])
    )
    await outbox.add(*rows)
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(_client(limited)), clock=outbox.clock)

    await dispatcher.tick()
    assert len(limited.calls("conversations.history")) == 1, "one read, the others wait their turn"
    waiting = [r for r in (await outbox.rows()).values() if r.status == "pending"]
    assert len(waiting) == 2 and {r.last_error for r in waiting} == {"waiting for a history read turn"}
    assert all(r.attempts == 0 for r in waiting), "waiting for a turn is no failure"

    for _ in range(4):
        outbox.clock.advance(60)
        await dispatcher.tick()
    assert {r.status for r in (await outbox.rows()).values()} == {"sent"}
    assert (await outbox.row(rows[1]["dedup_key"])).slack_ts == reached["ts"]
    assert [len(limited.dms_to(u)) for u in ("UADA", "UBOB", "UCY")] == [1, 1, 1], "no duplicate"
    history = limited.calls("conversations.history")
    assert len(history) == 3 and all(c["status"] == 200 for c in history), "never over Slack's limit"
    assert all(int(c["args"]["limit"]) <= 15 for c in history)


async def test_a_429_on_the_look_up_backs_off_and_looks_again(
    outbox: Outbox,
    limited: SlackWorld,
) -> None:
    """Another process (or a lower limit than ours) spent Slack's budget: the 429 is "unknown"."""
    row = interrupted(outbox, 1, "UADA")
    await outbox.add(row)
    other = await _client(limited).conversations_open(users="UBOB")
    await _client(limited).conversations_history(channel=other["channel"]["id"], limit=1)  # this minute's
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(_client(limited)), clock=outbox.clock)

    await dispatcher.tick()
    after_429 = await outbox.row(row["dedup_key"])
    assert after_429.status == "pending" and after_429.last_error == "history ratelimited"
    assert limited.dms_to("UADA") == [], "not posted blindly"
    assert limited.calls("conversations.history")[-1]["status"] == 429

    await dispatcher.tick()
    assert len(limited.calls("conversations.history")) == 2, "Retry-After is honoured: no read before"
    outbox.clock.advance(60)
    await dispatcher.tick()
    assert (await outbox.row(row["dedup_key"])).status == "sent"
    assert len(limited.dms_to("UADA")) == 1


async def test_a_look_up_reads_past_the_first_page_and_resumes_after_waiting_its_turn(
    outbox: Outbox,
    limited: SlackWorld,
) -> None:
    """Fails before: after an outage a DM held more than a page (15) of fresh alerts; the look-up read
    only the newest page, missed the interrupted alert on the next one and posted it again."""
    row = interrupted(outbox, 1, "UADA")
    client = _client(limited)
    await client.chat_postMessage(
        channel="UADA", text="Talk 1 is live", metadata=sent_marker(row["dedup_key"])
    )
    for n in range(2, 22):  # twenty more alerts in the same DM right after it
        await client.chat_postMessage(channel="UADA", text=f"Talk {n} is live")
    await outbox.add(row)
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)

    await dispatcher.tick()
    waiting = await outbox.row(row["dedup_key"])
    assert waiting.status == "pending" and waiting.last_error == "waiting for a history read turn"
    outbox.clock.advance(60)  # Slack's one read a minute
    await dispatcher.tick()

    found = await outbox.row(row["dedup_key"])
    assert found.status == "sent" and found.slack_ts is not None
    assert [m["text"] for m in limited.dms_to("UADA")].count("Talk 1 is live") == 1, "not posted again"
    reads = limited.calls("conversations.history")
    assert len(reads) == 2 and all(r["status"] == 200 for r in reads), "two pages, each in its own minute"


async def test_card_edits_that_land_out_of_order_leave_the_card_as_the_newest_edit_says(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """An "ended" edit that waited out a 503 lands after the "reopened" one: the card must stay live."""
    slack.user("UADA")
    started = alert_row(outbox.clock, 1)
    await outbox.add(started)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )
    assert await dispatcher.tick() == 1

    outbox.clock.advance(1.5)  # past the destination's pacing
    ended = alert_row(outbox.clock, 1, kind="ended", started=started["started_at"])
    await outbox.add(ended)
    with slack_faults.active(Fault("respond", path="chat.update", status=503, times=1)):
        await dispatcher.tick()
    waiting = await outbox.row(ended["dedup_key"])
    assert waiting.status == "pending" and waiting.last_error == "http 503", "the end edit waits out the 503"

    reopened = dict(ended, event="reopened", dedup_key=ended["dedup_key"].replace(":ended", ":reopened:1"))
    await outbox.add(reopened)
    outbox.clock.advance(1.5)  # past the destination's pacing, short of the end edit's 2 s back-off
    await dispatcher.tick()  # so the reopening lands first
    rows = await outbox.rows()
    assert rows[reopened["dedup_key"]].status == "sent" and rows[ended["dedup_key"]].status == "pending"
    outbox.clock.advance(120)
    await dispatcher.tick()
    rows = await outbox.rows()
    assert rows[ended["dedup_key"]].status == rows[reopened["dedup_key"]].status == "sent"
    (card,) = slack.dms_to("UADA")
    assert card["edits"] == 2
    assert "Ended" not in str(card["blocks"]), "the newest edit reopened the card"


async def test_when_slack_answers_again_alerts_backing_off_from_the_outage_go_at_once(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """Fails before: after recovery a live alert still waited out its back-off (up to a minute) and a
    503 left it 'maybe sent', so its retry spent a scarce history read first."""
    for user in ("UADA", "UBOB"):
        slack.user(user)
    early = alert_row(outbox.clock, 1, destination="UADA")
    await outbox.add(early)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )
    await _outage(dispatcher, outbox, slack_faults, minutes=3)
    waiting = await outbox.row(early["dedup_key"])
    assert waiting.status == "pending" and waiting.sending_since is None, "a 503 posted nothing"
    assert waiting.next_attempt_at > outbox.clock.now + timedelta(seconds=10), "backing off"

    await outbox.add(alert_row(outbox.clock, 2, destination="UBOB"))  # a fresh alert goes through...
    await dispatcher.tick()
    await dispatcher.tick()
    assert (await outbox.row(early["dedup_key"])).status == "sent", "...and wakes the one that waited"
    assert len(slack.dms_to("UADA")) == 1 and len(slack.dms_to("UBOB")) == 1
    assert slack.calls("conversations.history") == [], "no look-up: nothing had been posted"


async def test_alerts_that_need_no_slack_call_do_not_hold_up_the_destinations_real_one(
    outbox: Outbox, slack: SlackWorld
) -> None:
    """Fails before: each stale alert took the destination's one-a-second slot before finding it had
    nothing to post, so after an outage the live alert queued behind every stale one."""
    slack.user("UADA")
    ended_sessions = [alert_row(outbox.clock, n) for n in (1, 2, 3)]
    ends = [
        alert_row(outbox.clock, n, kind="ended", started=row["started_at"])
        for n, row in zip((1, 2, 3), ended_sessions, strict=True)
    ]
    live = alert_row(outbox.clock, 4)
    await outbox.add(*ended_sessions, *ends, live)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client_direct(slack)), clock=outbox.clock
    )

    await dispatcher.tick()  # one tick, the clock standing still: one slot for UADA
    rows = await outbox.rows()
    assert rows[live["dedup_key"]].status == "sent"
    assert [rows[r["dedup_key"]].last_error for r in ended_sessions] == [
        "conference ended before the alert could be sent"
    ] * 3
    (dm,) = slack.dms_to("UADA")
    assert "Talk 4" in dm["text"]


def proxied_client_direct(slack: SlackWorld) -> AsyncWebClient:
    return AsyncWebClient(
        token=slack.bot_token, base_url=slack.slack.url + "/api/", timeout=5, retry_handlers=[]
    )


async def test_after_an_outage_a_users_live_alerts_go_at_once_ahead_of_older_edits(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """Fails before: one message a second per DM, claimed oldest first, so the edit of a card from before
    the outage went ahead and a student's fourth live alert came four seconds after Slack recovered
    (the chaos soak lost alerts of sessions that ended in those seconds)."""
    slack.user("UADA")
    before = alert_row(outbox.clock, 1)
    await outbox.add(before)
    dispatcher = Dispatcher(
        outbox.sessions,
        SingleWorkspace(proxied_client(slack, slack_faults)),
        clock=outbox.clock,
        batch_size=1,  # one row a claim: the claim order decides who goes first
    )
    assert await dispatcher.tick() == 1
    end_of_before = alert_row(outbox.clock, 1, kind="ended", started=before["started_at"])
    await outbox.add(end_of_before)
    live = [alert_row(outbox.clock, n) for n in (2, 3, 4)]
    outbox.clock.advance(0.1)
    await outbox.add(*live)  # queued after the edit

    with slack_faults.active(Fault("respond", path="^/api/", status=503)):  # every call, edits too
        for _ in range(6):
            await dispatcher.tick()
            outbox.clock.advance(10)
    outbox.clock.advance(LIVE_ALERT_BACKOFF_CAP)
    await dispatcher.tick()  # the clock standing still: everything in this tick went at once

    rows = await outbox.rows()
    assert [rows[r["dedup_key"]].status for r in live] == ["sent"] * 3
    delivered = [
        call["method"]
        for call in slack.slack.get("/_sandbox/calls")["calls"]
        if call["method"] in ("chat.postMessage", "chat.update") and call["ok"]
    ]
    assert delivered == ["chat.postMessage"] * 4 + ["chat.update"], "the live alerts before the old edit"
    assert rows[end_of_before["dedup_key"]].status == "sent", "the burst had room for the edit too"


async def test_an_alert_cancelled_because_its_session_ended_is_never_posted_even_if_claimed(
    outbox: Outbox, slack: SlackWorld
) -> None:
    """The poller cancels an alert that never left when Canvas says its session ended (after an outage
    the backlog held hundreds of those, each costing the dispatcher a turn while live alerts waited).
    A row already claimed by the dispatcher must then not be posted; one whose send has begun is not
    cancelled (it may be in Slack, so its card gets the "ended" edit)."""
    slack.user("UADA")
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    async with outbox.sessions.begin() as session:
        (claimed,) = await repo.claim_outbox(session, outbox.clock.now, limit=1, lease=timedelta(minutes=1))
        assert await repo.cancel_unsent_alert(
            session, "T0001", "UADA", 1, row["started_at"], outbox.clock.now
        ), "its send had not begun"
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.slack.url + "/api/", retry_handlers=[])
    dispatcher = Dispatcher(outbox.sessions, SingleWorkspace(client), clock=outbox.clock)
    assert await dispatcher._deliver(claimed) is False
    assert slack.dms_to("UADA") == []
    cancelled = await outbox.row(row["dedup_key"])
    assert (
        cancelled.status == "failed"
        and cancelled.last_error == "conference ended before the alert could be sent"
    )

    sending = alert_row(outbox.clock, 2)
    await outbox.add(sending)
    async with outbox.sessions.begin() as session:
        assert await repo.mark_sending(session, (await outbox.row(sending["dedup_key"])).id, outbox.clock.now)
        assert not await repo.cancel_unsent_alert(
            session, "T0001", "UADA", 2, sending["started_at"], outbox.clock.now
        ), "a send that began may have reached Slack: not cancelled"


async def test_waking_after_an_outage_leaves_a_row_another_replica_is_sending_alone(outbox: Outbox) -> None:
    """Fails before: replica B, seeing Slack answer again, made every row backing off from the outage due,
    including one replica A had just claimed and was posting; B claimed it too and both posted it (the
    chaos soak's duplicate with 16 deliveries at once)."""
    row = alert_row(outbox.clock, 1)
    await outbox.add(row)
    async with outbox.sessions.begin() as session:  # an earlier attempt met the outage
        stored = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedup_key == row["dedup_key"])
        )
        assert stored is not None
        stored.last_error, stored.attempts = "http 503", 3
    lease = timedelta(minutes=1)
    async with outbox.sessions.begin() as session:  # replica A claims it: it is sending now
        (claimed,) = await repo.claim_outbox(session, outbox.clock.now, limit=10, lease=lease)
    outbox.clock.advance(0.1)
    async with outbox.sessions.begin() as session:  # replica B sees Slack answer again
        assert await repo.wake_backed_off(session, outbox.clock.now, ("http 5", "network: ")) == 0
        assert await repo.claim_outbox(session, outbox.clock.now, limit=10, lease=lease) == []

    outbox.clock.advance(lease.total_seconds())  # A died holding it: once its lease ran out, it is B's
    async with outbox.sessions.begin() as session:
        (again,) = await repo.claim_outbox(session, outbox.clock.now, limit=10, lease=lease)
    assert again.id == claimed.id


async def test_attempts_slack_never_saw_leave_the_dms_burst_for_after_the_outage(
    outbox: Outbox, slack: SlackWorld, slack_faults: FaultProxy
) -> None:
    """Fails before: every 503 during an outage spent one of the DM's messages, so when Slack came back
    the student's alerts trickled out at one a second (the soak lost alerts of sessions ending then)."""
    slack.user("UADA")
    live = [alert_row(outbox.clock, n) for n in (1, 2, 3, 4)]
    await outbox.add(*live)
    dispatcher = Dispatcher(
        outbox.sessions, SingleWorkspace(proxied_client(slack, slack_faults)), clock=outbox.clock
    )
    with slack_faults.active(replace(SLACK_DOWN)):
        await dispatcher.tick()
    assert slack_faults.count("respond") == 4, "each alert met the outage once"
    outbox.clock.advance(2)  # the first back-off; Slack is back

    await dispatcher.tick()
    assert len(slack.dms_to("UADA")) == 4, "all four at once: Slack had counted none of the failed ones"
