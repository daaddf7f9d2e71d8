"""Several `confbot run` replicas on one PostgreSQL database, then a chaos soak.

Each replica reaches the sandboxes through its own URL prefix (`/r0`, `/r1`), so the test can tell which
replica polled Canvas and which one posted to Slack without any hook inside the bot. Expectations come
only from what the test itself did in the sandbox Canvas: every participant of every conference session
gets exactly one DM, and every ended session's DM is edited to "Ended".
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import RunningServer, start_in_thread
from bot.sandbox.slack import create_slack_app
from bot.store.db import create_engine
from tests.pg import pg_url  # noqa: F401  (fixture)
from tests.support import (
    BotProcess,
    CanvasWorld,
    Sandbox,
    SlackWorld,
    fernet_key,
    link_in_process,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REPLICAS = 2
DOOR = re.compile(r"^/r(\d+)(/.*)$")


class ReplicaDoors:
    """ASGI wrapper: `/r{n}/path` reaches the app as `/path`, counted per replica n and path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.counts: Counter[tuple[int, str]] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (match := DOOR.match(scope["path"])):
            replica, path = int(match.group(1)), match.group(2)
            with self._lock:
                self.counts[(replica, path)] += 1
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)

    def count(self, replica: int, path: str) -> int:
        with self._lock:
            return self.counts[(replica, path)]


@dataclass
class Fleet:
    canvas: CanvasWorld
    slack: SlackWorld
    canvas_doors: ReplicaDoors
    slack_doors: ReplicaDoors
    replicas: list[BotProcess]
    database_url: str
    servers: list[RunningServer] = field(default_factory=list)

    def polls(self, replica: int) -> int:
        return self.canvas_doors.count(replica, "/api/v1/conferences")

    def posts(self, replica: int) -> int:
        return self.slack_doors.count(replica, "/api/chat.postMessage")

    def outbox(self) -> dict[str, int]:
        """Outbox rows by status, read straight from PostgreSQL."""

        async def read() -> dict[str, int]:
            engine = create_engine(self.database_url)
            try:
                async with engine.connect() as connection:
                    rows = await connection.execute(text("SELECT status, count(*) FROM outbox GROUP BY 1"))
                    return {str(status): int(count) for status, count in rows.all()}
            finally:
                await engine.dispose()

        return asyncio.run(read())


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[Fleet]:  # noqa: F811
    canvas_doors = ReplicaDoors(create_canvas_app())
    slack_doors = ReplicaDoors(create_slack_app())
    canvas_server, slack_server = start_in_thread(canvas_doors), start_in_thread(slack_doors)
    slack = SlackWorld(Sandbox(slack_server))
    slack.setup()
    key = fernet_key()
    replicas = []
    for n in range(REPLICAS):
        workdir = tmp_path / f"replica{n}"
        workdir.mkdir()
        env = {
            "DATABASE_URL": pg_url,
            "CANVAS_BASE_URL": f"{canvas_server.url}/r{n}",
            "SLACK_API_URL": f"{slack_server.url}/r{n}/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": key,
            "POLL_INTERVAL_SECONDS": "1",
            "CANVAS_TIMEOUT_SECONDS": "2",
        }
        replicas.append(BotProcess(workdir=workdir, env=env))
    yield Fleet(
        canvas=CanvasWorld(Sandbox(canvas_server)),
        slack=slack,
        canvas_doors=canvas_doors,
        slack_doors=slack_doors,
        replicas=replicas,
        database_url=pg_url,
        servers=[canvas_server, slack_server],
    )
    for replica in replicas:
        replica.stop()
    for server in (canvas_server, slack_server):
        server.stop()


def _people(fleet: Fleet, count: int) -> list[dict[str, Any]]:
    """`count` Canvas users, each with a Slack user U0000.. and linked in the bot's database."""
    users = [fleet.canvas.user(f"Student {n}") | {"slack": f"U{n:04d}"} for n in range(count)]
    for user in users:
        fleet.slack.user(user["slack"])
    link_in_process(fleet.replicas[0], fleet.slack.team_id, [(u["slack"], u["token"]) for u in users])
    return users


def _requests_by_token(fleet: Fleet) -> dict[str, int]:
    return dict(fleet.canvas.canvas.get("/_sandbox/requests")["by_token"])


def _title(message: dict[str, Any]) -> str:
    """The conference title of an alert: "<title> is live in ..." or "<title> in ... has ended"."""
    return str(message["text"]).split(" is live in ", 1)[0].split(" in ", 1)[0]


def test_two_replicas_share_polls_and_alert_once(fleet: Fleet) -> None:
    people = _people(fleet, 6)
    course = fleet.canvas.course("Biology 101")
    for person in people:
        fleet.canvas.enroll(course["id"], person["id"])
    for replica in fleet.replicas:
        replica.start()
    wait_for(
        lambda: all(fleet.polls(n) >= 10 for n in range(REPLICAS)),
        timeout=20,
        what="both replicas to poll Canvas",
    )

    lecture = fleet.canvas.conference(course["id"], "Lecture 1", [p["id"] for p in people])
    fleet.canvas.start(lecture["id"])
    wait_for(
        lambda: all(fleet.slack.dms_to(p["slack"]) for p in people), timeout=15, what="every participant's DM"
    )
    by_token = _requests_by_token(fleet)
    wait_for(
        lambda: all(_requests_by_token(fleet).get(p["token"], 0) >= by_token[p["token"]] + 2 for p in people),
        timeout=20,
        what="everyone polled twice more",
    )
    assert [len(fleet.slack.dms_to(p["slack"])) for p in people] == [1] * len(people)
    assert sum(fleet.posts(n) for n in range(REPLICAS)) == len(people), "no replica re-posted an alert"

    fleet.canvas.end(lecture["id"])
    wait_for(
        lambda: all("Ended" in str(fleet.slack.dms_to(p["slack"])[0]["blocks"]) for p in people),
        timeout=15,
        what="every DM edited to Ended",
    )
    assert [len(fleet.slack.dms_to(p["slack"])) for p in people] == [1] * len(people)
    assert fleet.outbox() == {"sent": 2 * len(people)}


# --- chaos soak -----------------------------------------------------------------------------------

SOAK_USERS = 40
SOAK_COURSES = 8
SOAK_CONFERENCES = 240
START_WINDOW = 45.0  # seconds over which conferences start
DURATION = (9.0, 16.0)  # how long each session stays live: longer than a participant's worst poll gap
# Replica 1 is SIGKILLed at KILL_AT in the middle of the burst of starts, so it can die between Slack
# accepting an alert and committing it as sent; the other replica's retry must find that alert (its
# dedup key rides along as message metadata) instead of posting it again. KILL_CALM > 0 keeps starts
# away from the kill, to tell that recovery apart from the rest when investigating a failure.
KILL_AT = 19.0
KILL_CALM = float(os.environ.get("CONFBOT_SOAK_KILL_CALM", "0"))


@dataclass(order=True)
class Step:
    at: float
    order: int
    what: str = field(compare=False)
    run: Callable[[], object] = field(compare=False)


@dataclass
class Session:
    title: str
    participants: list[str]
    conference_id: int = 0
    started: bool = False
    ended: bool = False


@dataclass
class Chaos:
    """What the test did: the source of every expectation."""

    sessions: list[Session] = field(default_factory=list)
    canvas_faults: Counter[str] = field(default_factory=Counter)
    slack_faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0


def _plan(fleet: Fleet, people: list[dict[str, Any]], rng: random.Random, chaos: Chaos) -> list[Step]:
    courses = [fleet.canvas.course(f"Course {c}") for c in range(SOAK_COURSES)]
    members: dict[int, list[dict[str, Any]]] = {c["id"]: [] for c in courses}
    for person in people:
        for course in rng.sample(courses, 2):
            fleet.canvas.enroll(course["id"], person["id"])
            members[course["id"]].append(person)
    steps: list[Step] = []
    for n in range(SOAK_CONFERENCES):
        course = rng.choice(courses)
        chosen = rng.sample(members[course["id"]], rng.randint(2, 4))
        session = Session(title=f"Soak {n:04d}", participants=[p["slack"] for p in chosen])
        conference = fleet.canvas.conference(course["id"], session.title, [p["id"] for p in chosen])
        session.conference_id = conference["id"]
        chaos.sessions.append(session)
        begin = rng.uniform(0, START_WINDOW)
        while KILL_AT - KILL_CALM <= begin <= KILL_AT:
            begin = rng.uniform(0, START_WINDOW)
        steps.append(Step(begin, len(steps), f"start {n}", partial(_start, fleet, session)))
        end = begin + rng.uniform(*DURATION)
        steps.append(Step(end, len(steps), f"end {n}", partial(_end, fleet, session)))
    steps += _faults(fleet, chaos)
    return sorted(steps)


def _start(fleet: Fleet, session: Session) -> None:
    fleet.canvas.start(session.conference_id)
    session.started = True


def _end(fleet: Fleet, session: Session) -> None:
    fleet.canvas.end(session.conference_id)
    session.ended = True


def _faults(fleet: Fleet, chaos: Chaos) -> list[Step]:
    canvas, slack = fleet.canvas.canvas, fleet.slack.slack

    def canvas_fault(kind: str, count: int, **extra: Any) -> Callable[[], None]:
        def inject() -> None:
            canvas.post("/_sandbox/faults", {"kind": kind, "count": count, **extra})
            chaos.canvas_faults[kind] += count

        return inject

    def throttle(status: int, count: int) -> Callable[[], None]:
        def inject() -> None:
            canvas.post("/_sandbox/settings", {"throttle_status": status})
            canvas.post("/_sandbox/faults", {"kind": "throttle", "count": count})
            chaos.canvas_faults[f"throttle_{status}"] += count

        return inject

    def slack_fault(method: str, status: int, count: int) -> Callable[[], None]:
        def inject() -> None:
            slack.post(
                "/_sandbox/faults", {"method": method, "status": status, "retry_after": 1, "count": count}
            )
            chaos.slack_faults[f"{method} {status}"] += count

        return inject

    timeline: list[tuple[float, str, Callable[[], object]]] = [
        (4, "canvas 500s", canvas_fault("error_500", 40)),
        (7, "slack 429s", slack_fault("chat.postMessage", 429, 25)),
        (9, "canvas timeouts", canvas_fault("timeout", 12, seconds=3.0)),
        (KILL_AT, "kill replica 1", lambda: _kill(fleet, chaos)),
        (KILL_AT + 5, "restart replica 1", lambda: _restart(fleet)),
        (26, "canvas 403 throttle", throttle(403, 40)),
        (28, "slack 500s", slack_fault("chat.postMessage", 500, 10)),
        (30, "canvas 429 throttle", throttle(429, 40)),
        (33, "slack 503s", slack_fault("chat.postMessage", 503, 10)),
        (35, "canvas 500s again", canvas_fault("error_500", 30)),
        (37, "canvas timeouts again", canvas_fault("timeout", 8, seconds=3.0)),
        (39, "slack update 503s", slack_fault("chat.update", 503, 10)),
        (41, "slack update 429s", slack_fault("chat.update", 429, 20)),
        (44, "slack update 500s", slack_fault("chat.update", 500, 8)),
    ]
    return [Step(at, 10_000 + i, what, run) for i, (at, what, run) in enumerate(timeline)]


def _kill(fleet: Fleet, chaos: Chaos) -> None:
    fleet.replicas[1].kill()
    chaos.kills += 1


def _restart(fleet: Fleet) -> None:
    """Start in a thread: waiting for /healthz must not hold up the rest of the timeline."""
    threading.Thread(target=fleet.replicas[1].start, daemon=True).start()


def _run(steps: list[Step]) -> None:
    """Play the timeline in real time (the pacing is the workload, not a wait for the bot)."""
    began = time.monotonic()
    for step in steps:
        delay = began + step.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        step.run()


@pytest.mark.soak
@pytest.mark.timeout(175)
def test_chaos_soak_every_participant_alerted_exactly_once(fleet: Fleet) -> None:
    seed = int(os.environ.get("CONFBOT_SOAK_SEED", "20261128"))
    rng = random.Random(seed)
    began = time.monotonic()
    people = _people(fleet, SOAK_USERS)
    chaos = Chaos()
    steps = _plan(fleet, people, rng, chaos)
    for replica in fleet.replicas:
        replica.start()
    wait_for(
        lambda: all(fleet.polls(n) >= SOAK_USERS for n in range(REPLICAS)),
        timeout=30,
        what="both replicas to poll",
    )
    setup_done = time.monotonic()

    _run(steps)
    chaos_done = time.monotonic()

    expected = {(who, s.title) for s in chaos.sessions for who in s.participants}
    assert all(s.started and s.ended for s in chaos.sessions)

    def quiet() -> list[dict[str, Any]] | None:
        """No outbox row left to send, and every expected DM exists and was edited to Ended."""
        if fleet.outbox().get("pending", 0):
            return None
        messages = fleet.slack.messages()
        ended = {(m["user"], _title(m)) for m in messages if "Ended" in str(m["blocks"])}
        return messages if expected <= ended else None

    messages = wait_for(quiet, timeout=110, interval=1.0, what="every alert sent and every edit made")
    assert messages is not None
    quiet_done = time.monotonic()

    by_pair: Counter[tuple[str, str]] = Counter()
    for message in messages:
        by_pair[(message["user"], _title(message))] += 1
    missing = sorted(expected - set(by_pair))
    duplicated = sorted(pair for pair, count in by_pair.items() if count > 1)
    unexpected = sorted(set(by_pair) - expected)
    not_ended = sorted((m["user"], m["text"][:40]) for m in messages if "Ended" not in str(m["blocks"]))
    report = (
        f"seed={seed} sessions={len(chaos.sessions)} dms_expected={len(expected)} dms={len(messages)} "
        f"canvas_faults={dict(chaos.canvas_faults)} slack_faults={dict(chaos.slack_faults)} "
        f"kills={chaos.kills} polls={[fleet.polls(n) for n in range(REPLICAS)]} "
        f"posts={[fleet.posts(n) for n in range(REPLICAS)]} outbox={fleet.outbox()} "
        f"setup={setup_done - began:.0f}s chaos={chaos_done - setup_done:.0f}s "
        f"drain={quiet_done - chaos_done:.0f}s"
    )
    print(report)
    assert not missing, f"missed DMs {missing[:10]} ({report})"
    assert not duplicated, f"duplicate DMs {duplicated[:10]} ({report})"
    assert not unexpected, f"DMs nobody should get {unexpected[:10]} ({report})"
    assert not not_ended, f"DMs never edited to Ended {not_ended[:10]} ({report})"
    assert fleet.outbox().get("failed", 0) == 0, report
    assert all(fleet.polls(n) > 0 and fleet.posts(n) > 0 for n in range(REPLICAS)), report
    restarted = fleet.replicas[1]
    assert restarted.starts == 2 and restarted.process is not None and restarted.process.poll() is None
