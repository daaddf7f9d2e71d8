"""Several `confbot run` replicas on one PostgreSQL database, then a chaos soak.

Each replica reaches the sandboxes through its own URL prefix (`/r0`, `/r1`), so the test can tell which
replica polled Canvas and which one posted to Slack without any hook inside the bot. Between the
replicas and each sandbox sits a `tests.faults.FaultProxy`, which makes the network and server faults
the sandboxes never produce. Expectations come only from what the test itself did in the sandbox
Canvas and through the proxies: every participant of every conference session gets exactly one DM,
and every ended session's DM is edited to "Ended".

The chaos soak (issue 9) runs >= 500 conference sessions with, on top of the sandboxes' own faults
and one SIGKILL of a replica: resets and drops after Slack accepted a post or an edit, resets and
drops of Canvas API requests, OAuth-linked users whose access tokens expire while the token endpoint
throttles (403 text/plain, 429, an HTML 502, a reset after Canvas rotated the token), a slow 1% of
users (endless slow pages, 10 s answers) and a Slack outage: every Slack Web API call answers 503 for
OUTAGE seconds in the middle of the run. The issue asks for a 5-minute outage; to keep the suite under
10 minutes the default is 60 s, and

    CONFBOT_SOAK_OUTAGE_SECONDS=300 .venv/bin/pytest -q -p no:cacheprovider tests/e2e/test_soak.py -k chaos -s

runs the full 5-minute version (about 8 minutes). CONFBOT_SOAK_SEED picks another random workload.
It runs in the default suite (about 2.5 minutes); `-s` prints its one-line report.

An alert is lost when its session stayed live LOST_AFTER (two poll intervals) after Slack came back,
plus one second for each other alert its recipient was owed at that moment: Slack posts about one
message a second to a channel in real time, while this soak compresses the poll interval to a second.
The report gives the strict two-interval count beside it (`lost_ignoring_slack_rate`).
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
from tests.faults import Fault, FaultProxy, canvas_throttle, html_page
from tests.oauth_support import developer_key, grant_for, link_oauth_in_process
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
    canvas_proxy: FaultProxy
    slack_proxy: FaultProxy
    servers: list[RunningServer] = field(default_factory=list)

    def polls(self, replica: int) -> int:
        return self.canvas_doors.count(replica, "/api/v1/conferences")

    def posts(self, replica: int) -> int:
        return self.slack_doors.count(replica, "/api/chat.postMessage")

    def query(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of one SELECT (with bound `params`), read straight from PostgreSQL."""

        async def read() -> list[tuple[Any, ...]]:
            engine = create_engine(self.database_url)
            try:
                async with engine.connect() as connection:
                    return [tuple(row) for row in (await connection.execute(text(statement), params)).all()]
            finally:
                await engine.dispose()

        return asyncio.run(read())

    def outbox(self) -> dict[str, int]:
        """Outbox rows by status."""
        return {
            str(status): int(n) for status, n in self.query("SELECT status, count(*) FROM outbox GROUP BY 1")
        }


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[Fleet]:  # noqa: F811
    canvas_doors = ReplicaDoors(create_canvas_app())
    slack_doors = ReplicaDoors(create_slack_app())
    canvas_server, slack_server = start_in_thread(canvas_doors), start_in_thread(slack_doors)
    canvas_proxy, slack_proxy = FaultProxy(canvas_server.url), FaultProxy(slack_server.url)
    slack = SlackWorld(Sandbox(slack_server))
    slack.setup()
    key = fernet_key()
    replicas = []
    for n in range(REPLICAS):
        workdir = tmp_path / f"replica{n}"
        workdir.mkdir()
        env = {
            "DATABASE_URL": pg_url,
            "CANVAS_BASE_URL": f"{canvas_proxy.url}/r{n}",
            "SLACK_API_URL": f"{slack_proxy.url}/r{n}/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": key,
            "POLL_INTERVAL_SECONDS": "1",
            # The killed replica's users are polled again within interval + lease (issue 14): well inside
            # a session's DURATION, like the one-second interval stands for a minute.
            "POLL_LEASE_SECONDS": "3",
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
        canvas_proxy=canvas_proxy,
        slack_proxy=slack_proxy,
        servers=[canvas_server, slack_server],
    )
    for replica in replicas:
        replica.stop()
    for proxy in (canvas_proxy, slack_proxy):
        proxy.stop()
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

POLL_INTERVAL = 1.0  # POLL_INTERVAL_SECONDS of the replicas (the fleet fixture)
SOAK_USERS = 40  # linked with personal access tokens
OAUTH_USERS = 8  # linked through OAuth: their access tokens expire at Canvas and must be refreshed
SLOW_USERS = 2  # behind a Canvas that pages forever or answers in 10 s; invited to nothing
SOAK_COURSES = 8
SOAK_SESSIONS = 500
OUTAGE = float(os.environ.get("CONFBOT_SOAK_OUTAGE_SECONDS", "60"))
BEFORE_OUTAGE = 22.0  # seconds of starts before Slack goes down
AFTER_OUTAGE = 20.0  # seconds of starts after it is back
OUTAGE_AT = BEFORE_OUTAGE
START_WINDOW = BEFORE_OUTAGE + OUTAGE + AFTER_OUTAGE  # seconds over which sessions start
DURATION = (10.0, 18.0)  # how long each session stays live: longer than a participant's worst poll gap
# An alert is lost if its conference stayed live this long after Slack recovered and it never arrived
# (issue 9: two poll intervals)...
LOST_AFTER = 2 * POLL_INTERVAL
# ...plus the time Slack's own per-channel rate needs for that person's backlog. Slack posts about one
# message a second to one channel (bursts aside), in real time, while this soak compresses the poll
# interval to one second: a student with nine sessions live when Slack came back cannot have all nine
# cards within two seconds from any bot (the strict figure is reported beside it).
SLACK_CHANNEL_SPACING = 1.0
DRAIN = 60.0  # seconds the bot gets, after the last session ended, to send and edit everything
SETUP = 35.0
# Replica 1 is SIGKILLed at KILL_AT in the middle of the burst of starts, so it can die between Slack
# accepting an alert and committing it as sent; the other replica's retry must find that alert (its
# dedup key rides along as message metadata) instead of posting it again. KILL_CALM > 0 keeps starts
# away from the kill, to tell that recovery apart from the rest when investigating a failure.
KILL_AT = 12.0
KILL_CALM = float(os.environ.get("CONFBOT_SOAK_KILL_CALM", "0"))
TOKEN_BURST = 3.0  # seconds the token endpoint misbehaves in each wave of expired OAuth tokens
TOKEN_LIFETIME = 3600  # the sandbox's OAuth access token lifetime; the clock jumps past it per wave
CLIENT_ID, CLIENT_SECRET = "10000000000001", "soak-developer-key-secret"
RELINK_TEXT = "stopped working"


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
    started_at: float | None = None  # seconds since the timeline began, when the test started it
    ended_at: float | None = None

    def live_after(self, moment: float) -> float:
        """How long it stayed live after `moment` (seconds since the timeline began)."""
        assert self.started_at is not None and self.ended_at is not None
        return self.ended_at - max(self.started_at, moment)


@dataclass
class Chaos:
    """What the test did: the source of every expectation."""

    sessions: list[Session] = field(default_factory=list)
    canvas_faults: Counter[str] = field(default_factory=Counter)
    slack_faults: Counter[str] = field(default_factory=Counter)
    proxy_faults: dict[str, Fault] = field(default_factory=dict)
    kills: int = 0
    token_waves: int = 0
    began: float = 0.0  # time.monotonic() when the timeline began
    began_wall: float = 0.0  # time.time() then, to place database timestamps on the timeline
    outage: tuple[float, float] | None = None  # (down, up) in seconds since the timeline began

    def now(self) -> float:
        return time.monotonic() - self.began


@dataclass
class Cast:
    """Who is in the soak: `invited` get alerts; `slow` are polled (slowly) and invited to nothing."""

    invited: list[dict[str, Any]]
    slow: list[dict[str, Any]]
    oauth: list[str]  # Slack ids of the OAuth-linked among `invited`


def _cast(fleet: Fleet) -> Cast:
    """PAT users and slow users through the real linking code; OAuth users from real sandbox grants."""
    canvas = fleet.canvas
    developer_key(canvas.canvas, CLIENT_ID, CLIENT_SECRET)
    pats = [canvas.user(f"Student {n}") | {"slack": f"U{n:04d}"} for n in range(SOAK_USERS)]
    slow = [canvas.user(f"Slow {n}") | {"slack": f"US{n:03d}"} for n in range(SLOW_USERS)]
    oauth = [canvas.user(f"OAuth {n}") | {"slack": f"UO{n:03d}"} for n in range(OAUTH_USERS)]
    for person in pats + slow + oauth:
        fleet.slack.user(person["slack"])
    link_in_process(fleet.replicas[0], fleet.slack.team_id, [(u["slack"], u["token"]) for u in pats + slow])
    grants = [(u["slack"], grant_for(canvas.canvas, u["id"], CLIENT_ID, CLIENT_SECRET)) for u in oauth]
    link_oauth_in_process(fleet.replicas[0], fleet.slack.team_id, grants)
    return Cast(invited=pats + oauth, slow=slow, oauth=[u["slack"] for u in oauth])


def _plan(fleet: Fleet, cast: Cast, rng: random.Random, chaos: Chaos) -> list[Step]:
    courses = [fleet.canvas.course(f"Course {c}") for c in range(SOAK_COURSES)]
    members: dict[int, list[dict[str, Any]]] = {c["id"]: [] for c in courses}
    for person in cast.invited + cast.slow:
        for course in rng.sample(courses, 2):
            fleet.canvas.enroll(course["id"], person["id"])
            if person in cast.invited:
                members[course["id"]].append(person)
    steps: list[Step] = []
    for n in range(SOAK_SESSIONS):
        course = rng.choice(courses)
        chosen = rng.sample(members[course["id"]], rng.randint(2, 4))
        session = Session(title=f"Soak {n:04d}", participants=[p["slack"] for p in chosen])
        conference = fleet.canvas.conference(course["id"], session.title, [p["id"] for p in chosen])
        session.conference_id = conference["id"]
        chaos.sessions.append(session)
        begin = rng.uniform(0, START_WINDOW)
        while KILL_AT - KILL_CALM <= begin <= KILL_AT:
            begin = rng.uniform(0, START_WINDOW)
        steps.append(Step(begin, len(steps), f"start {n}", partial(_start, fleet, session, chaos)))
        end = begin + rng.uniform(*DURATION)
        steps.append(Step(end, len(steps), f"end {n}", partial(_end, fleet, session, chaos)))
    steps += _faults(fleet, cast, chaos)
    return sorted(steps)


def _start(fleet: Fleet, session: Session, chaos: Chaos) -> None:
    fleet.canvas.start(session.conference_id)
    session.started_at = chaos.now()


def _end(fleet: Fleet, session: Session, chaos: Chaos) -> None:
    fleet.canvas.end(session.conference_id)
    session.ended_at = chaos.now()


def _faults(fleet: Fleet, cast: Cast, chaos: Chaos) -> list[Step]:
    canvas, slack = fleet.canvas.canvas, fleet.slack.slack
    canvas_proxy, slack_proxy = fleet.canvas_proxy, fleet.slack_proxy

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

    def named(name: str, fault: Fault) -> Fault:
        chaos.proxy_faults[name] = fault
        return fault

    # For the whole run: the slow users' Canvas, and connections lost after the request was sent.
    canvas_proxy.add(
        named("slow endless pages", Fault("endless_pages", token=cast.slow[0]["token"], seconds=1.0)),
        *(
            named(f"slow 10s {u['slack']}", Fault("delay", token=u["token"], seconds=10.0))
            for u in cast.slow[1:]
        ),
        named("canvas api reset", Fault("reset", path="^/r\\d+/api/v1/", probability=0.003, times=25)),
        named("canvas api drop", Fault("drop", path="^/r\\d+/api/v1/", probability=0.003, times=25)),
    )
    # Each reset of an accepted post costs a conversations.history look-up, which Slack allows about
    # once a minute: a few of them, not a storm.
    slack_rules = [
        named("post reset", Fault("reset", path="chat\\.postMessage$", probability=0.01, times=2)),
        named("post drop", Fault("drop", path="chat\\.postMessage$", probability=0.01, times=2)),
        named("update reset", Fault("reset", path="chat\\.update$", probability=0.03, times=15)),
        named("update drop", Fault("drop", path="chat\\.update$", probability=0.03, times=15)),
    ]
    slack_proxy.add(*slack_rules)
    outage = named("slack outage 503", Fault("respond", path="^/r\\d+/api/", status=503))

    def slack_down() -> None:
        slack_proxy.remove(*slack_rules)  # the first matching rule applies: nothing gets through
        slack_proxy.add(outage)
        chaos.outage = (chaos.now(), chaos.now())

    def slack_up() -> None:
        slack_proxy.remove(outage)
        slack_proxy.add(*slack_rules)
        assert chaos.outage is not None
        chaos.outage = (chaos.outage[0], chaos.now())

    token_path = "^/r\\d+/login/oauth2/token$"

    def token_wave(name: str, *faults: Fault) -> Callable[[], None]:
        """Every OAuth access token expires at Canvas while the token endpoint misbehaves."""

        def inject() -> None:
            for fault in faults:
                fault.method = "POST"
                named(f"token {name}", fault)
            canvas_proxy.add(*faults)
            canvas.post("/_sandbox/clock", {"advance_seconds": TOKEN_LIFETIME + 100})
            chaos.token_waves += 1
            threading.Timer(TOKEN_BURST, canvas_proxy.remove, args=faults).start()

        return inject

    up = OUTAGE_AT + OUTAGE
    timeline: list[tuple[float, str, Callable[[], object]]] = [
        (3, "canvas 500s", canvas_fault("error_500", 40)),
        (5, "token throttle", token_wave("throttle 403", canvas_throttle(path=token_path))),
        (7, "slack 429s", slack_fault("chat.postMessage", 429, 25)),
        (9, "canvas timeouts", canvas_fault("timeout", 12, seconds=3.0)),
        (KILL_AT, "kill replica 1", lambda: _kill(fleet, chaos)),
        (KILL_AT + 5, "restart replica 1", lambda: _restart(fleet)),
        (18, "canvas 403 throttle", throttle(403, 40)),
        (20, "slack update 429s", slack_fault("chat.update", 429, 20)),
        (OUTAGE_AT, "slack outage begins", slack_down),
        (
            OUTAGE_AT + 10,
            "token 429",
            token_wave("429", Fault("respond", path=token_path, status=429, headers={"Retry-After": "1"})),
        ),
        (OUTAGE_AT + 15, "canvas 429 throttle", throttle(429, 40)),
        (up, "slack outage ends", slack_up),
        (up + 2, "slack 500s", slack_fault("chat.postMessage", 500, 10)),
        (
            up + 4,
            "token 502 page and reset after rotation",
            token_wave(
                "html 502 + reset", Fault("reset", path=token_path, times=2), html_page(502, token_path)
            ),
        ),
        (up + 6, "slack 503s", slack_fault("chat.postMessage", 503, 10)),
        (up + 8, "canvas 500s again", canvas_fault("error_500", 30)),
        (up + 10, "canvas timeouts again", canvas_fault("timeout", 8, seconds=3.0)),
        (up + 12, "slack update 503s", slack_fault("chat.update", 503, 10)),
        (up + 15, "slack update 500s", slack_fault("chat.update", 500, 8)),
    ]
    return [Step(at, FAULT_ORDER + i, what, run) for i, (at, what, run) in enumerate(timeline)]


def _kill(fleet: Fleet, chaos: Chaos) -> None:
    fleet.replicas[1].kill()
    chaos.kills += 1


def _restart(fleet: Fleet) -> None:
    """Start in a thread: waiting for /healthz must not hold up the rest of the timeline."""
    threading.Thread(target=fleet.replicas[1].start, daemon=True).start()


FAULT_ORDER = 10_000  # Step.order of fault steps: they play on their own thread


def _run(steps: list[Step], chaos: Chaos) -> None:
    """Play the timeline in real time (the pacing is the workload, not a wait for the bot).

    Faults play on a thread of their own so a late conference start (the sandboxes share two cores
    with the replicas) cannot stretch the outage or move the kill."""
    chaos.began, chaos.began_wall = time.monotonic(), time.time()

    def play(part: list[Step]) -> None:
        for step in part:
            delay = chaos.began + step.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            step.run()

    faults = threading.Thread(target=play, args=([s for s in steps if s.order >= FAULT_ORDER],))
    faults.start()
    play([s for s in steps if s.order < FAULT_ORDER])
    faults.join()


def _owed_at_recovery(sessions: list[Session], outage: tuple[float, float]) -> Counter[str]:
    """How many of each person's sessions were live when Slack came back: alerts owed at once."""
    up = outage[1]
    return Counter(
        who
        for s in sessions
        if s.started_at is not None and s.started_at < up and s.ended_at is not None and s.ended_at > up
        for who in s.participants
    )


def _required(
    session: Session, who: str, outage: tuple[float, float], owed: Counter[str] | None = None
) -> bool:
    """Whether `who` must have a DM for it: it ended before Slack went down, or it stayed live
    LOST_AFTER after Slack came back, plus (with `owed`) one channel spacing for each other alert that
    person was owed at that moment. Otherwise (it ended inside the outage or just after) a DM is
    optional, but one that exists must be edited to Ended."""
    down, up = outage
    assert session.ended_at is not None
    slack_pacing = SLACK_CHANNEL_SPACING * max(0, owed[who] - 1) if owed is not None else 0.0
    return session.ended_at < down or session.live_after(up) >= LOST_AFTER + slack_pacing


def _alert_row(fleet: Fleet, chaos: Chaos, who: str, conference_id: int) -> tuple[Any, ...]:
    """What became of a lost alert's outbox row: status, attempts, last error, and when (seconds on the
    timeline) it was queued and finished."""
    rows = fleet.query(
        "SELECT status, attempts, last_error, extract(epoch from created_at), extract(epoch from sent_at)"
        " FROM outbox WHERE event = 'started' AND destination = :who AND conference_id = :conference",
        who=who,
        conference=conference_id,
    )
    if not rows:
        return ("never queued",)
    status, attempts, error, created, finished = rows[0]

    def at(epoch: Any) -> float | None:
        return None if epoch is None else round(float(epoch) - chaos.began_wall, 1)

    return (status, attempts, error, at(created), at(finished))


@pytest.mark.soak
@pytest.mark.timeout(SETUP + START_WINDOW + DURATION[1] + DRAIN + 30)
def test_chaos_soak_every_participant_alerted_exactly_once(fleet: Fleet) -> None:
    seed = int(os.environ.get("CONFBOT_SOAK_SEED", "20261128"))
    rng = random.Random(seed)
    began = time.monotonic()
    cast = _cast(fleet)
    chaos = Chaos()
    steps = _plan(fleet, cast, rng, chaos)
    for replica in fleet.replicas:
        replica.env.update({"CANVAS_CLIENT_ID": CLIENT_ID, "CANVAS_CLIENT_SECRET": CLIENT_SECRET})
        replica.env["PUBLIC_BASE_URL"] = replica.url
        replica.start()
    everyone = len(cast.invited) + len(cast.slow)
    wait_for(
        lambda: all(fleet.polls(n) >= everyone for n in range(REPLICAS)),
        timeout=30,
        what="both replicas to poll",
    )
    setup_done = time.monotonic()

    _run(steps, chaos)
    chaos_done = time.monotonic()
    assert chaos.outage is not None and all(s.started_at is not None and s.ended_at for s in chaos.sessions)
    outage = chaos.outage

    titles = {s.title: s for s in chaos.sessions}
    invited = {(who, s.title) for s in chaos.sessions for who in s.participants}
    owed = _owed_at_recovery(chaos.sessions, outage)
    required = {
        (who, s.title) for s in chaos.sessions for who in s.participants if _required(s, who, outage, owed)
    }
    strictly = {(who, s.title) for s in chaos.sessions for who in s.participants if _required(s, who, outage)}

    def alerts() -> list[dict[str, Any]]:
        return [m for m in fleet.slack.messages() if _title(m) in titles]

    def quiet() -> list[dict[str, Any]] | None:
        """No outbox row left to send, every required DM exists, and every DM was edited to Ended."""
        if fleet.outbox().get("pending", 0):
            return None
        messages = alerts()
        ended = {(m["user"], _title(m)) for m in messages if "Ended" in str(m["blocks"])}
        delivered = {(m["user"], _title(m)) for m in messages}
        return messages if required <= ended and delivered <= ended else None

    try:
        drained = wait_for(quiet, timeout=DRAIN, interval=1.0, what="every alert sent and every edit made")
    except AssertionError:
        drained = None  # report what is missing below rather than a bare timeout
    messages = drained if drained is not None else alerts()
    quiet_done = time.monotonic()

    by_pair: Counter[tuple[str, str]] = Counter((m["user"], _title(m)) for m in messages)
    lost = sorted(required - set(by_pair))
    lost_strictly = sorted(strictly - set(by_pair))  # two intervals only, Slack's channel rate ignored
    duplicated = sorted(pair for pair, count in by_pair.items() if count > 1)
    unexpected = sorted(set(by_pair) - invited)
    stale = sorted((m["user"], _title(m)) for m in messages if "Ended" not in str(m["blocks"]))
    relink_dms = [m for m in fleet.slack.messages() if RELINK_TEXT in str(m["text"])]
    unlinked = fleet.query("SELECT slack_user_id, relink_reason FROM linked_users WHERE needs_relink")
    failed = fleet.query(
        "SELECT id, event, destination, conference_id, attempts, last_error FROM outbox"
        " WHERE status = 'failed'"
    )
    by_conference = {s.conference_id: s for s in chaos.sessions}
    unexplained_failed = [
        row
        for row in failed
        if not (
            row[1] == "started"
            and row[3] in by_conference
            and not _required(by_conference[row[3]], str(row[2]), outage, owed)
            and "ended" in str(row[5])
        )
    ]
    outbox = fleet.outbox()
    waiting = fleet.query(
        "SELECT event, left(coalesce(last_error, '-'), 40), (sending_since IS NOT NULL), count(*)"
        " FROM outbox WHERE status = 'pending' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 6"
    )
    proxy_faults = {name: fault.applied for name, fault in chaos.proxy_faults.items()}
    starts = sum(1 for s in chaos.sessions if s.started_at is not None)
    report = (
        f"seed={seed} outage={outage[1] - outage[0]:.0f}s starts={starts} dms_required={len(required)} "
        f"dms_optional={len(invited - required)} dms_delivered={len(set(by_pair))} "
        f"proxy_faults={proxy_faults} proxy_by_kind=canvas:{dict(fleet.canvas_proxy.applied)},"
        f"slack:{dict(fleet.slack_proxy.applied)} sandbox_canvas_faults={dict(chaos.canvas_faults)} "
        f"sandbox_slack_faults={dict(chaos.slack_faults)} token_waves={chaos.token_waves} "
        f"token_requests={fleet.canvas_proxy.seen('/login/oauth2/token')} kills={chaos.kills} "
        f"duplicates={len(duplicated)} lost={len(lost)} lost_ignoring_slack_rate={len(lost_strictly)} "
        f"most_owed_at_recovery={max(owed.values(), default=0)} stale={len(stale)} "
        f"unexpected={len(unexpected)} "
        f"unlinks={len(unlinked)} relink_dms={len(relink_dms)} failed={len(failed)} "
        f"unexplained_failed={len(unexplained_failed)} outbox={outbox} "
        f"pending_by_event_error_sending={waiting} unlinked={unlinked} "
        f"failed_unexplained={unexplained_failed[:3]} "
        f"polls={[fleet.polls(n) for n in range(REPLICAS)]} "
        f"posts={[fleet.posts(n) for n in range(REPLICAS)]} setup={setup_done - began:.0f}s "
        f"chaos={chaos_done - setup_done:.0f}s drain={quiet_done - chaos_done:.0f}s"
    )
    print(report)
    lost_detail = [
        (who, t, round(titles[t].started_at or 0, 1), round(titles[t].ended_at or 0, 1), *row)
        for who, t in lost
        for row in [_alert_row(fleet, chaos, who, titles[t].conference_id)]
    ]
    assert not duplicated, f"duplicate DMs {duplicated[:10]} ({report})"
    assert not lost, f"lost alerts (who, title, started, ended) {lost_detail[:10]} ({report})"
    assert not stale, f"DMs never edited to Ended {stale[:10]} ({report})"
    assert not unexpected, f"DMs nobody should get {unexpected[:10]} ({report})"
    assert not unlinked and not relink_dms, f"wrongful unlinks {unlinked} ({report})"
    assert outbox.get("pending", 0) == 0, report
    assert not unexplained_failed, f"failed outbox rows {unexplained_failed[:10]} ({report})"
    assert all(fault.applied > 0 for name, fault in chaos.proxy_faults.items() if "drop" not in name), report
    assert all(fleet.polls(n) > 0 and fleet.posts(n) > 0 for n in range(REPLICAS)), report
    restarted = fleet.replicas[1]
    assert restarted.starts == 2 and restarted.process is not None and restarted.process.poll() is None
