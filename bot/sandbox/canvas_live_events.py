"""Sandbox Canvas Live Events: each conference join POSTed to a subscribed URL, as Data Services does.

Canvas logs a conference join (`ConferencesController#join`) as an asset access at level
"participate", which Live Events emits as `asset_accessed` with `asset_type` "web_conference"
(doc/api/data_services/json/canvas/event-types/asset_accessed.json; lib/canvas/live_events.rb). The
event built here has that envelope: `metadata` about the request and `body` about the asset, every id
a string, local or global (`shard * 10**13 + local`) as the subscription asks.

Delivery is HTTPS POST, signed (the body is an RS256 JWT whose claims are the event, see
`canvas_live_keys`) or unsigned (the body is the JSON), with Instructure's best-effort habits available
as faults: late, duplicated, out of order, and retried after an answer that never came back (the
receiver then sees the same event twice). Forged and expired signatures show what a receiver refuses.

Deliveries run as tasks on the sandbox server's own event loop (captured when the subscription is set),
so a join never waits for the receiver: `CanvasState.start_conference` only hands the event over.
First attempts go out one at a time in order, so an out-of-order fault is a fact, not a race; retries
run on their own, as Canvas's do.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from bot.sandbox.canvas_live_keys import LiveEventsKeyRing
from bot.sandbox.canvas_state import CanvasState, Conference

SHARD_ID = 2107
"""The sandbox's shard in global ids (the docs' examples are on shard 2107)."""
GLOBAL_ID_SHARD_FACTOR = 10**13
ROOT_ACCOUNT_UUID = "SandboxRootAccount0000000000000000000000"
REORDER_HOLD_SECONDS = 0.5
"""How long an out-of-order fault holds an event for a later one to overtake it; then it goes alone."""
DELIVERY_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class LiveEventsFaults:
    delay_seconds: float = 0.0
    duplicate: bool = False
    reorder: bool = False
    fail_first: int = 0
    """The first N attempts reach the receiver but their answers are lost, so each is retried."""
    forged: bool = False
    expired: bool = False


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where and how joins are delivered; `url` None means no subscription."""

    url: str | None = None
    signed: bool = True
    global_ids: bool = False
    faults: LiveEventsFaults = field(default_factory=LiveEventsFaults)
    max_attempts: int = 4
    retry_seconds: float = 0.2
    canvas_url: str = "https://canvas.sandbox.test"


@dataclass(slots=True)
class Delivery:
    """One POST of one event, and what the receiver answered."""

    request_id: str
    conference_id: int
    user_id: int
    attempt: int
    status: int | None = None
    error: str | None = None
    answer_lost: bool = False
    duplicate: bool = False
    at: float = 0.0


@dataclass(slots=True)
class _Queued:
    event: dict[str, Any]
    subscription: Subscription
    due: float


def canvas_id(local: int, *, global_ids: bool) -> str:
    """An id as Live Events send it: a string, global when the subscription asks for global ids."""
    return str(SHARD_ID * GLOBAL_ID_SHARD_FACTOR + local if global_ids else local)


def event_time(ts: float) -> str:
    """Live Events time: ISO 8601 UTC with milliseconds and `Z` (yyyy-MM-ddTHH:mm:ss.SSSZ)."""
    whole = int(ts)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"


def asset_accessed_event(
    state: CanvasState, conference: Conference, user_id: int, subscription: Subscription
) -> dict[str, Any]:
    """The `asset_accessed` event Canvas emits when `user_id` joins `conference`, at the sandbox clock."""

    def ident(local: int) -> str:
        return canvas_id(local, global_ids=subscription.global_ids)

    course = state.context_course(conference) if conference.context_type == "Course" else None
    enrollments = state.active_enrollments(course, user_id) if course is not None else []
    role = "GroupMembership" if conference.context_type == "Group" else None
    if enrollments:
        role = enrollments[0].type
    context_path = f"{subscription.canvas_url}/{conference.context_type.lower()}s/{conference.context_id}"
    hostname = subscription.canvas_url.split("://", 1)[-1].split("/", 1)[0]
    metadata = {
        "root_account_uuid": ROOT_ACCOUNT_UUID,
        "root_account_id": ident(1),
        "root_account_lti_guid": f"{ROOT_ACCOUNT_UUID}.{hostname}",
        "user_login": f"user{user_id}@example.edu",
        "user_account_id": ident(1),
        "user_sis_id": None,
        "user_id": ident(user_id),
        "time_zone": "Etc/UTC",
        "context_type": conference.context_type,
        "context_id": ident(conference.context_id),
        "context_sis_source_id": None,
        "context_account_id": ident(1),
        "context_role": role,
        "request_id": str(uuid.uuid4()),
        "session_id": secrets.token_hex(16),
        "hostname": hostname,
        "http_method": "GET",
        "user_agent": "Mozilla/5.0 (sandbox Canvas)",
        "client_ip": "127.0.0.1",
        "url": f"{context_path}/conferences/{conference.id}/join",
        "referrer": f"{context_path}/conferences",
        "producer": "canvas",
        "event_name": "asset_accessed",
        "event_time": event_time(state.clock.now()),
    }
    body: dict[str, Any] = {
        "asset_name": conference.title,
        "asset_type": "web_conference",
        "asset_id": ident(conference.id),
        "asset_subtype": None,
        "category": "conferences",
        "role": role,
        "level": "participate",
    }
    if enrollments:
        body["enrollment_id"] = ident(enrollments[0].id)
    return {"metadata": metadata, "body": body}


class LiveEventsEmitter:
    """Hears every join of a `CanvasState` and delivers it to the subscribed URL, faults applied."""

    def __init__(self, state: CanvasState) -> None:
        self._state = state
        self.keys = LiveEventsKeyRing()
        self.subscription = Subscription()
        self.deliveries: list[Delivery] = []
        self.jwks_requests = 0
        self.pending = 0
        """Events accepted and not yet finished (delivered, or every attempt spent)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._held: _Queued | None = None
        self._held_timer: asyncio.TimerHandle | None = None
        self._answers_to_lose = 0
        self._tasks: set[asyncio.Task[None]] = set()
        state.join_listeners.append(self.on_join)

    def subscribe(self, subscription: Subscription) -> None:
        """Set the subscription; call it on the loop that serves the sandbox (deliveries run there)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._spawn(self._deliver_in_order())
        self.subscription = subscription
        self._answers_to_lose = subscription.faults.fail_first
        if subscription.signed:
            self.keys.jwks()  # generate the keys now rather than during the first join

    def on_join(self, conference: Conference, user_id: int) -> None:
        """`CanvasState.join_listeners` hook: build the event now (the join's time and state), send later."""
        subscription, loop = self.subscription, self._loop
        if subscription.url is None or loop is None:
            return
        event = asset_accessed_event(self._state, conference, user_id, subscription)
        loop.call_soon_threadsafe(self._accept, event, subscription)

    def _accept(self, event: dict[str, Any], subscription: Subscription) -> None:
        """On the loop: queue the event, or hold it for the next one to overtake it (reorder fault)."""
        assert self._loop is not None
        self.pending += 1
        item = _Queued(event, subscription, due=self._loop.time() + subscription.faults.delay_seconds)
        if not subscription.faults.reorder:
            self._queue.put_nowait(item)
        elif self._held is None:
            self._held = item
            self._held_timer = self._loop.call_later(REORDER_HOLD_SECONDS, self._release_held)
        else:
            self._queue.put_nowait(item)
            self._release_held()

    def _release_held(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
        held, self._held, self._held_timer = self._held, None, None
        if held is not None:
            self._queue.put_nowait(held)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _deliver_in_order(self) -> None:
        """First attempts, one at a time in queue order; a failed one leaves its retries to a task."""
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            if (wait := item.due - loop.time()) > 0:
                await asyncio.sleep(wait)
            delivered = await self._post(item, attempt=1)
            if item.subscription.faults.duplicate:
                await self._post(item, attempt=1, duplicate=True)
            if delivered or item.subscription.max_attempts <= 1:
                self.pending -= 1
            else:
                self._spawn(self._retry(item))

    async def _retry(self, item: _Queued) -> None:
        """Canvas retries a delivery that got no 2xx, backing off between attempts."""
        try:
            for attempt in range(2, item.subscription.max_attempts + 1):
                await asyncio.sleep(item.subscription.retry_seconds * 2 ** (attempt - 2))
                if await self._post(item, attempt=attempt):
                    return
        finally:
            self.pending -= 1

    async def _post(self, item: _Queued, *, attempt: int, duplicate: bool = False) -> bool:
        """POST the event once; True when the receiver answered 2xx and the answer was not lost."""
        subscription, event = item.subscription, item.event
        assert subscription.url is not None
        if subscription.signed:
            faults = subscription.faults
            body = self.keys.sign(event, forged=faults.forged, expired=faults.expired).encode()
            content_type = "application/jwt"
        else:
            body, content_type = json.dumps(event).encode(), "application/json"
        record = Delivery(
            request_id=event["metadata"]["request_id"],
            conference_id=int(event["body"]["asset_id"]) % GLOBAL_ID_SHARD_FACTOR,
            user_id=int(event["metadata"]["user_id"]) % GLOBAL_ID_SHARD_FACTOR,
            attempt=attempt,
            duplicate=duplicate,
            at=time.time(),
        )
        try:
            async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_SECONDS) as client:
                response = await client.post(
                    subscription.url, content=body, headers={"Content-Type": content_type}
                )
            record.status = response.status_code
        except httpx.HTTPError as error:
            record.error = type(error).__name__
        if self._answers_to_lose > 0 and not duplicate:
            self._answers_to_lose -= 1
            record.answer_lost = True
        self.deliveries.append(record)
        return record.status is not None and 200 <= record.status < 300 and not record.answer_lost

    def report(self) -> dict[str, Any]:
        """What the control API shows: every attempt, what is still in flight, JWKS fetches."""
        return {
            "deliveries": [asdict(delivery) for delivery in self.deliveries],
            "pending": self.pending,
            "jwks_requests": self.jwks_requests,
            "current_kid": self.keys.current_kid if self._loop and self.subscription.signed else None,
        }
