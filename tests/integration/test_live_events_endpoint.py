"""The bot's Live Events routes on loopback, fed by the sandbox Canvas's emitter and its JWK set:
verified joins reach the sink with local ids; forged, expired, unknown-key, wrong-secret and oversized
deliveries are refused before anything acts on them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.domain.live_events import ConferenceJoined
from bot.sandbox.server import free_port
from bot.web.jwks import JwksTiming
from bot.web.live_events import LiveEventsConfig, LiveEventsReceiver
from tests.live_events_support import CanvasWithConference, start_canvas_with_conference
from tests.support import wait_for

SECRET = "s3cret-path-" + "x" * 24
SHARD = 2107 * 10**13


class Clock:
    """The receiver's clock: real time plus an offset the test moves (JWKS refetch interval)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Bot:
    """The Live Events routes served on loopback, with what reached the sink."""

    url: str
    receiver: LiveEventsReceiver
    clock: Clock
    joins: list[ConferenceJoined] = field(default_factory=list)
    sink_failures: int = 0

    def post(self, path: str, content: bytes) -> httpx.Response:
        return httpx.post(self.url + path, content=content, timeout=10)


@contextmanager
def serving_bot(jwks_url: str | None, secret: str | None, timing: JwksTiming | None = None) -> Iterator[Bot]:
    """Serve `LiveEventsReceiver.routes()` in a thread with its own loop; its JWKS client lives and is
    closed on that loop."""
    port, clock, started = free_port(), Clock(), threading.Event()
    holder: dict[str, Any] = {}

    async def sink(joined: ConferenceJoined) -> None:
        bot: Bot = holder["bot"]
        if bot.sink_failures > 0:
            bot.sink_failures -= 1
            raise RuntimeError("store unavailable")
        bot.joins.append(joined)

    async def serve() -> None:
        config = LiveEventsConfig(
            jwks_url=jwks_url,
            secret=None if secret is None else SecretStr(secret),
            max_body_bytes=64 * 1024,
            jwks_timing=timing or JwksTiming(),
        )
        async with httpx.AsyncClient() as http:
            receiver = LiveEventsReceiver(config, http=http, sink=sink, clock=clock)
            holder["bot"] = Bot(f"http://127.0.0.1:{port}", receiver, clock)
            app = Starlette(routes=receiver.routes())
            server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="off"))
            holder["server"] = server
            started.set()
            await server.serve()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    wait_for(lambda: holder["server"].started, what="the bot's routes to listen")
    try:
        yield holder["bot"]
    finally:
        holder["server"].should_exit = True
        thread.join(10)


@pytest.fixture
def canvas() -> Iterator[CanvasWithConference]:
    world = start_canvas_with_conference()
    yield world
    world.server.stop()


@pytest.fixture
def bot(canvas: CanvasWithConference) -> Iterator[Bot]:
    with serving_bot(canvas.url + "/_sandbox/live_events/jwks.json", SECRET) as running:
        yield running


def statuses(canvas: CanvasWithConference, attempts: int) -> list[int | None]:
    report = wait_for(lambda: canvas.settled(attempts), what=f"{attempts} delivery attempts")
    return [delivery["status"] for delivery in report["deliveries"]]


def event(**body: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "event_name": "asset_accessed",
            "event_time": "2024-05-01T10:00:00.000Z",
            "user_id": "5",
        },
        "body": {"asset_type": "web_conference", "asset_id": "77", "level": "participate", **body},
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signed_join_reaches_the_sink_once_with_local_ids(canvas: CanvasWithConference, bot: Bot) -> None:
    canvas.subscribe(bot.url + "/canvas/live-events")
    ada = canvas.user_ids[0]
    canvas.join(user_ids=[ada])
    assert statuses(canvas, 1) == [200]
    (joined,) = bot.joins
    assert (joined.conference_id, joined.user_id, joined.context_type, joined.context_id) == (
        canvas.conference_id,
        ada,
        "Course",
        canvas.course_id,
    )
    assert abs((datetime.now(UTC) - joined.event_time).total_seconds()) < 60


def test_global_ids_arrive_as_local_ids(canvas: CanvasWithConference, bot: Bot) -> None:
    canvas.subscribe(bot.url + "/canvas/live-events", global_ids=True)
    canvas.join()
    assert statuses(canvas, 2) == [200, 200]
    assert {(j.conference_id, j.user_id, j.context_id) for j in bot.joins} == {
        (canvas.conference_id, user_id, canvas.course_id) for user_id in canvas.user_ids
    }


def test_an_unsigned_join_at_the_secret_path(canvas: CanvasWithConference, bot: Bot) -> None:
    canvas.subscribe(f"{bot.url}/canvas/live-events/{SECRET}", signed=False, global_ids=True)
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 1) == [200]
    assert [j.conference_id for j in bot.joins] == [canvas.conference_id]


@pytest.mark.parametrize(
    ("path_suffix", "subscription"),
    [
        ("", {"faults": {"forged": True}}),
        ("", {"faults": {"expired": True}}),
        ("", {"signed": False}),  # unsigned JSON where a JWT is due
        ("/" + SECRET[:-1] + "y", {"signed": False}),  # wrong secret
        ("/" + SECRET + "x", {"signed": False}),
    ],
    ids=["forged", "expired", "unsigned-at-signed-route", "wrong-secret", "longer-secret"],
)
def test_unproven_deliveries_are_401_and_reach_nothing(
    canvas: CanvasWithConference, bot: Bot, path_suffix: str, subscription: dict[str, Any]
) -> None:
    canvas.subscribe(bot.url + "/canvas/live-events" + path_suffix, max_attempts=1, **subscription)
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 1) == [401]
    assert bot.joins == []


def test_a_duplicated_or_retried_event_reaches_the_sink_as_the_same_join(
    canvas: CanvasWithConference, bot: Bot
) -> None:
    """Live Events may arrive twice; the sink sees equal joins (deduplication is the engine's job)."""
    canvas.subscribe(bot.url + "/canvas/live-events", retry_seconds=0.05, faults={"duplicate": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 2) == [200, 200]
    assert len(bot.joins) == 2 and bot.joins[0] == bot.joins[1]


def test_a_sink_failure_is_503_so_canvas_retries(canvas: CanvasWithConference, bot: Bot) -> None:
    bot.sink_failures = 1
    canvas.subscribe(bot.url + "/canvas/live-events", retry_seconds=0.05)
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 2) == [503, 200]
    assert [j.conference_id for j in bot.joins] == [canvas.conference_id]


def test_one_rotation_needs_no_refetch_two_need_one(canvas: CanvasWithConference, bot: Bot) -> None:
    canvas.subscribe(bot.url + "/canvas/live-events", max_attempts=1)
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 1) == [200]
    canvas.post("/_sandbox/live_events/rotate")  # signs with the published "next" key: already cached
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 2) == [200, 200]
    assert canvas.report()["jwks_requests"] == 1
    canvas.post("/_sandbox/live_events/rotate", {"times": 2})  # a key never seen: refetch
    bot.clock.offset += 61  # past the refetch interval since the first fetch
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 3) == [200, 200, 200]
    assert canvas.report()["jwks_requests"] == 2
    assert len(bot.joins) == 3


def test_unknown_kids_refetch_at_most_once_per_interval(canvas: CanvasWithConference, bot: Bot) -> None:
    canvas.subscribe(bot.url + "/canvas/live-events", max_attempts=1)
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 1) == [200]
    canvas.post("/_sandbox/live_events/rotate", {"times": 2})
    canvas.join(user_ids=canvas.user_ids[:1])
    canvas.join(user_ids=canvas.user_ids[:1])
    assert statuses(canvas, 3) == [200, 401, 401]
    assert canvas.report()["jwks_requests"] == 1


def test_other_events_are_acknowledged_and_ignored(canvas: CanvasWithConference, bot: Bot) -> None:
    keys = canvas.emitter.keys
    ignored = [
        event(level=None),
        event(asset_type="course", asset_subtype="conferences"),
        {**event(), "metadata": {"event_name": "logged_in", "event_time": "2024-05-01T10:00:00.000Z"}},
        {"something": "else"},
    ]
    for body in ignored:
        signed = bot.post("/canvas/live-events", keys.sign(body).encode())
        assert (signed.status_code, signed.text) == (200, "ignored")
        unsigned = bot.post(f"/canvas/live-events/{SECRET}", json.dumps(body).encode())
        assert (unsigned.status_code, unsigned.text) == (200, "ignored")
    assert bot.post("/canvas/live-events", keys.sign(event()).encode()).text == "ok"
    assert [j.conference_id for j in bot.joins] == [77]


def test_only_rs256_verifies(canvas: CanvasWithConference, bot: Bot) -> None:
    kid = canvas.emitter.keys.current_kid
    claims = b64(json.dumps({**event(), "iat": int(time.time()), "exp": int(time.time()) + 300}).encode())
    none = f"{b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{claims}."
    public = json.dumps(canvas.emitter.keys.jwks()["keys"][1]).encode()  # "HS256 keyed with the public key"
    hs_head = f"{b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{claims}"
    hs256 = f"{hs_head}.{b64(hmac.new(public, hs_head.encode(), hashlib.sha256).digest())}"
    for token in (none, hs256, "not.a.jwt", "garbage", "\u00e9t\u00e9"):
        assert bot.post("/canvas/live-events", token.encode()).status_code == 401
    header, _, signature = canvas.emitter.keys.sign(event()).split(".")
    assert bot.post("/canvas/live-events", f"{header}.{claims}.{signature}".encode()).status_code == 401
    assert bot.joins == []


def test_oversized_bodies_are_413(bot: Bot) -> None:
    big = b"x" * (64 * 1024 + 1)
    assert bot.post("/canvas/live-events", big).status_code == 413
    assert bot.post(f"/canvas/live-events/{SECRET}", big).status_code == 413


def test_malformed_unsigned_bodies_are_400(bot: Bot) -> None:
    for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"'):
        assert bot.post(f"/canvas/live-events/{SECRET}", body).status_code == 400
    assert bot.joins == []


def test_unconfigured_routes_do_not_exist(canvas: CanvasWithConference) -> None:
    with serving_bot(jwks_url=None, secret=SECRET) as unsigned_only:
        assert unsigned_only.post("/canvas/live-events", b"x").status_code == 404
    with serving_bot(jwks_url=canvas.url + "/_sandbox/live_events/jwks.json", secret=None) as signed_only:
        assert signed_only.post(f"/canvas/live-events/{SECRET}", b"{}").status_code == 404
        assert signed_only.receiver.jwks is not None


def test_an_unreachable_key_set_is_503_not_401(canvas: CanvasWithConference) -> None:
    with serving_bot(jwks_url=f"http://127.0.0.1:{free_port()}/jwks", secret=None) as bot:
        token = canvas.emitter.keys.sign(event())
        assert bot.post("/canvas/live-events", token.encode()).status_code == 503
        assert bot.joins == []
