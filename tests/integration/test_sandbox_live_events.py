"""The sandbox Canvas's Live Events over loopback: the documented `asset_accessed` shape, signed or not,
key rotation, and Instructure's delivery habits as faults (late, duplicated, out of order, retried)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from bot.sandbox.server import start_in_thread
from tests.live_events_support import CanvasWithConference, RecordingReceiver, start_canvas_with_conference
from tests.support import wait_for

SHARD = 2107 * 10**13
EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture
def canvas() -> Iterator[CanvasWithConference]:
    world = start_canvas_with_conference()
    yield world
    world.server.stop()


@pytest.fixture
def receiver() -> Iterator[RecordingReceiver]:
    recording = RecordingReceiver()
    server = start_in_thread(recording.app())
    recording.url = server.url + "/hook"
    yield recording
    server.stop()


def claims_of(canvas: CanvasWithConference, token: bytes) -> dict[str, Any]:
    """Verify a delivery as a receiver would: the kid's key from the published JWK set, RS256."""
    keys = jwt.PyJWKSet.from_dict(httpx.get(canvas.url + "/_sandbox/live_events/jwks.json").json())
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, Any] = jwt.decode(token, keys[kid].key, algorithms=["RS256"])
    return claims


def test_an_unsigned_join_is_the_documented_asset_accessed_event(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    canvas.subscribe(receiver.url, signed=False)
    canvas.join()
    report = wait_for(lambda: canvas.settled(2), what="two deliveries")
    assert [d["status"] for d in report["deliveries"]] == [200, 200]
    assert [r.content_type for r in receiver.received] == ["application/json"] * 2
    events = [json.loads(r.body) for r in receiver.received]
    assert sorted(e["metadata"]["user_id"] for e in events) == sorted(str(u) for u in canvas.user_ids)
    event = events[0]
    metadata, body = event["metadata"], event["body"]
    assert metadata["event_name"] == "asset_accessed"
    assert metadata["producer"] == "canvas"
    assert EVENT_TIME.match(metadata["event_time"])
    assert (metadata["context_type"], metadata["context_id"]) == ("Course", str(canvas.course_id))
    assert metadata["context_role"] == "StudentEnrollment"
    assert metadata["url"].endswith(f"/courses/{canvas.course_id}/conferences/{canvas.conference_id}/join")
    assert {"root_account_uuid", "root_account_id", "request_id", "session_id", "hostname"} <= set(metadata)
    assert body == {
        "asset_name": "Office hours",
        "asset_type": "web_conference",
        "asset_id": str(canvas.conference_id),
        "asset_subtype": None,
        "category": "conferences",
        "role": "StudentEnrollment",
        "level": "participate",
        "enrollment_id": body["enrollment_id"],
    }
    assert len({e["metadata"]["request_id"] for e in events}) == 2


def test_a_signed_join_is_a_jwt_of_the_event_under_the_current_key_with_global_ids(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    subscribed = canvas.subscribe(receiver.url, signed=True, global_ids=True)
    assert subscribed["jwks_url"] == canvas.url + "/_sandbox/live_events/jwks.json"
    canvas.join(user_ids=canvas.user_ids[:1])
    wait_for(lambda: canvas.settled(1), what="one delivery")
    (delivery,) = receiver.received
    assert delivery.content_type == "application/jwt"
    assert jwt.get_unverified_header(delivery.body) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": subscribed["current_kid"],
    }
    claims = claims_of(canvas, delivery.body)
    assert 0 < claims["exp"] - claims["iat"] <= 600 and abs(claims["iat"] - time.time()) < 60
    assert claims["metadata"]["user_id"] == str(SHARD + canvas.user_ids[0])
    assert claims["metadata"]["context_id"] == str(SHARD + canvas.course_id)
    assert claims["body"]["asset_id"] == str(SHARD + canvas.conference_id)
    assert claims["body"]["level"] == "participate"


def test_keys_rotate_like_instructures_previous_current_next(canvas: CanvasWithConference) -> None:
    first = canvas.subscribe("http://127.0.0.1:9/unused")["current_kid"]
    before = [key["kid"] for key in httpx.get(canvas.url + "/_sandbox/live_events/jwks.json").json()["keys"]]
    assert before[1] == first and len(before) == 3
    rotated = canvas.post("/_sandbox/live_events/rotate")["current_kid"]
    after = httpx.get(canvas.url + "/_sandbox/live_events/jwks.json").json()["keys"]
    assert rotated == before[2]
    assert [key["kid"] for key in after][:2] == before[1:]
    assert all(key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key for key in after)
    assert canvas.report()["jwks_requests"] == 2


def test_forged_and_expired_deliveries_do_not_verify(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    canvas.subscribe(receiver.url, faults={"forged": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    canvas.subscribe(receiver.url, faults={"expired": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    wait_for(lambda: canvas.settled(2), what="two deliveries")
    forged, expired = (r.body for r in receiver.received)
    with pytest.raises(jwt.InvalidSignatureError):
        claims_of(canvas, forged)
    with pytest.raises(jwt.ExpiredSignatureError):
        claims_of(canvas, expired)


def test_a_slow_receiver_never_holds_up_the_join(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    receiver.delay_seconds = 1.0
    canvas.subscribe(receiver.url, signed=False)
    started = time.monotonic()
    canvas.join()
    assert time.monotonic() - started < 0.5
    wait_for(lambda: canvas.settled(2), what="the slow deliveries")


def test_late_delivery(canvas: CanvasWithConference, receiver: RecordingReceiver) -> None:
    canvas.subscribe(receiver.url, signed=False, faults={"delay_seconds": 0.6})
    joined_at = time.monotonic()
    canvas.join(user_ids=canvas.user_ids[:1])
    wait_for(lambda: canvas.settled(1), what="the late delivery")
    assert receiver.received[0].at - joined_at >= 0.6


def test_duplicated_delivery_is_the_same_event_twice(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    canvas.subscribe(receiver.url, signed=False, faults={"duplicate": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    report = wait_for(lambda: canvas.settled(2), what="the delivery and its duplicate")
    assert [d["duplicate"] for d in report["deliveries"]] == [False, True]
    first, second = receiver.received
    assert first.body == second.body


def test_out_of_order_delivery_puts_a_later_join_first(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    canvas.subscribe(receiver.url, signed=False, faults={"reorder": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    later = canvas.new_conference("Lab")
    canvas.join(later, user_ids=canvas.user_ids[:1])
    wait_for(lambda: canvas.settled(2), what="both deliveries")
    arrived = [json.loads(r.body)["body"]["asset_id"] for r in receiver.received]
    assert arrived == [str(later), str(canvas.conference_id)]


def test_a_lone_held_event_still_goes_out(canvas: CanvasWithConference, receiver: RecordingReceiver) -> None:
    canvas.subscribe(receiver.url, signed=False, faults={"reorder": True})
    canvas.join(user_ids=canvas.user_ids[:1])
    report = wait_for(lambda: canvas.settled(1), what="the held delivery")
    assert report["deliveries"][0]["status"] == 200


def test_a_lost_answer_is_retried_so_the_receiver_sees_the_event_again(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    canvas.subscribe(receiver.url, signed=False, retry_seconds=0.05, faults={"fail_first": 1})
    canvas.join(user_ids=canvas.user_ids[:1])
    report = wait_for(lambda: canvas.settled(2), what="the retry")
    attempts = [(d["attempt"], d["status"], d["answer_lost"]) for d in report["deliveries"]]
    assert attempts == [(1, 200, True), (2, 200, False)]
    first, second = receiver.received
    assert first.body == second.body


def test_a_refused_delivery_is_retried_with_backoff_then_given_up(
    canvas: CanvasWithConference, receiver: RecordingReceiver
) -> None:
    receiver.answers = [500, 503, 401]
    canvas.subscribe(receiver.url, signed=False, retry_seconds=0.05, max_attempts=3)
    canvas.join(user_ids=canvas.user_ids[:1])
    report = wait_for(lambda: canvas.settled(3), what="three attempts")
    assert [(d["attempt"], d["status"]) for d in report["deliveries"]] == [(1, 500), (2, 503), (3, 401)]
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1


def test_an_unreachable_receiver_is_recorded_and_no_subscription_sends_nothing(
    canvas: CanvasWithConference,
) -> None:
    canvas.join()  # not subscribed: nothing to deliver
    assert canvas.report()["deliveries"] == []
    canvas.subscribe("http://127.0.0.1:9/nothing-listens", max_attempts=1)
    canvas.join(user_ids=canvas.user_ids[:1])
    report = wait_for(lambda: canvas.settled(1), what="the failed attempt")
    assert report["deliveries"][0]["status"] is None and report["deliveries"][0]["error"] == "ConnectError"


@pytest.mark.parametrize(
    "body",
    [{"url": "ftp://x"}, {"url": None, "faults": {"bogus": True}}, {"url": None, "max_attempts": 0}],
)
def test_a_bad_subscription_is_refused(canvas: CanvasWithConference, body: dict[str, Any]) -> None:
    response = httpx.post(canvas.url + "/_sandbox/live_events", json=body)
    assert response.status_code == 400
