"""Proposed `bot/` changes, applied by monkeypatching this process only, so the bench can measure them.

Nothing here is imported by the bot. Each proposal is a context manager that swaps one piece of the
shipped code for a sketch of the change and puts the original back on exit; `bench.cpu_profile` runs
the shipped bot and each proposal against the same users and reports CPU per poll.

  direct_aiohttp  CanvasClient's GET path on the aiohttp session its httpx-aiohttp transport already
                  owns: no httpx.Request/Response objects on the common path (200, one page). Errors and
                  extra pages still go through the shipped httpx code, so behaviour does not change.
  cached_url      keeps httpx, but CanvasClient._request hands it an httpx.URL built once per
                  (url, params) instead of a string plus a params dict that httpx parses and merges
                  on every request (the live-list URL is the same for every user).
  core_claim      UserUnits.claim with Core column rows and one executemany UPDATE for the new
                  next_poll_at values, instead of ORM LinkedUser objects and a unit-of-work flush.
  decrypt_cache   TokenCipher.decrypt remembers plaintexts by ciphertext (a process-wide dict), so a
                  token is decrypted once per process rather than once per poll.
  pipelined       Poller.tick claims the next batch while the previous one is still in flight (at most
                  two batches at once) instead of waiting for every poll of a batch and its write.
                  With a remote Canvas the batch barrier leaves the semaphore idle during each batch's
                  slowest requests, the write and the next claim. Same claim, poll and write code.
  gc_tuned        after start-up, gc.freeze() the long-lived objects and raise the generation-0
                  threshold from 700 to 10,000 allocations: each poll allocates hundreds of short-lived
                  objects (httpx and aiohttp requests, responses, headers), so the default threshold
                  runs a collection every couple of polls, each one scanning the young objects.
  empty_fast_path the live-list parser returns [] without pydantic for the exact empty envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar, cast

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import bot.canvas.client as client_module
from bot.canvas.client import CanvasClient
from bot.canvas.errors import Transient, strip_json_prefix
from bot.canvas.models import Conference
from bot.engine.credentials import StoredToken
from bot.engine.poll_units import ContextKey, PollJob, UserUnits
from bot.engine.poller import Poller
from bot.engine.quiet_hours import QuietHours
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.models import KnownConference, LinkedUser, MutedContext

T = TypeVar("T")

Proposal = Callable[[], contextlib.AbstractContextManager[None]]


# -- direct_aiohttp ------------------------------------------------------------------------------


def _session(client: CanvasClient) -> aiohttp.ClientSession:
    """The aiohttp session behind the client's httpx-aiohttp transport (one pool for both paths)."""
    transport = client._http._transport
    assert isinstance(transport, AiohttpTransport)
    if not isinstance(transport.client, aiohttp.ClientSession):
        transport.client = transport.get_client()
    return transport.client


_TIMEOUT = aiohttp.ClientTimeout(total=15.0)  # CANVAS_TIMEOUT_SECONDS' default
_URLS: dict[tuple[str, tuple[tuple[str, str], ...]], yarl.URL] = {}


def _url(url: str, params: dict[str, str] | None) -> yarl.URL:
    """Parsed once per (url, params): the live-list URL is the same for every user."""
    key = (url, tuple(sorted((params or {}).items())))
    found = _URLS.get(key)
    if found is None:
        found = _URLS[key] = yarl.URL(url).with_query(params) if params else yarl.URL(url)
    return found


async def _direct_get_all(
    self: CanvasClient,
    token: str,
    path: str,
    params: dict[str, str],
    parse: Callable[[bytes], list[T]],
) -> list[T]:
    """One page and a 2xx answer (almost every poll): parse aiohttp's body directly. Anything else
    is replayed through the shipped httpx path so error mapping and pagination stay exactly as they are."""
    url = self.base_url + path
    headers = {**self._headers, "Authorization": f"Bearer {token}"}
    try:
        async with _session(self).get(
            _url(url, params),
            headers=headers,
            allow_redirects=False,
            timeout=_TIMEOUT,
        ) as answer:
            body = await answer.read()
            simple = 200 <= answer.status < 300 and 'rel="next"' not in answer.headers.get("Link", "")
    except TimeoutError:
        raise Transient(f"GET {path}: timed out") from None
    except aiohttp.ClientError as exc:
        raise Transient(f"GET {path}: {type(exc).__name__}") from None
    if not simple:
        return await _SHIPPED_GET_ALL(self, token, path, params, parse)
    try:
        return parse(strip_json_prefix(body))
    except ValueError:
        raise Transient(f"GET {path}: unparseable body") from None


_SHIPPED_GET_ALL = CanvasClient._get_all


@contextlib.contextmanager
def direct_aiohttp() -> Iterator[None]:
    with _patch(CanvasClient, "_get_all", _direct_get_all):
        yield


# -- cached_url ----------------------------------------------------------------------------------

_HTTPX_URLS: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}


async def _request_cached_url(
    self: CanvasClient, token: str, url: str, params: dict[str, str] | None
) -> httpx.Response:
    key = (url, tuple(sorted((params or {}).items())))
    target = _HTTPX_URLS.get(key)
    if target is None:
        target = _HTTPX_URLS[key] = httpx.URL(url, params=params) if params else httpx.URL(url)
    headers = {**self._headers, "Authorization": f"Bearer {token}"}
    try:
        return await self._http.get(target, headers=headers, follow_redirects=False)
    except httpx.TimeoutException as exc:
        raise Transient(f"GET {target.path}: timed out ({type(exc).__name__})") from None
    except httpx.RequestError as exc:
        raise Transient(f"GET {target.path}: {type(exc).__name__}: {exc}") from None


@contextlib.contextmanager
def cached_url() -> Iterator[None]:
    with _patch(CanvasClient, "_request", _request_cached_url):
        yield


# -- core_claim ----------------------------------------------------------------------------------

_CLAIM_COLUMNS = (
    LinkedUser.id,
    LinkedUser.team_id,
    LinkedUser.slack_user_id,
    LinkedUser.token_kind,
    LinkedUser.access_token_enc,
    LinkedUser.refresh_token_enc,
    LinkedUser.token_expires_at,
    LinkedUser.consecutive_failures,
    LinkedUser.alerts_enabled,
    LinkedUser.linked_at,
    LinkedUser.quiet_start,
    LinkedUser.quiet_end,
    LinkedUser.timezone,
)
_TABLE = cast(Table, LinkedUser.__table__)
_RESCHEDULE = update(_TABLE).where(_TABLE.c.id == bindparam("uid")).values(next_poll_at=bindparam("due"))


async def _core_claim(
    self: UserUnits, session: AsyncSession, now: datetime, limit: int, next_poll: Callable[[], datetime]
) -> list[PollJob]:
    """Same rows, same lease (FOR UPDATE SKIP LOCKED, then next_poll_at moved), no ORM objects."""
    rows = (
        await session.execute(
            select(*_CLAIM_COLUMNS)
            .where(LinkedUser.needs_relink.is_(False), LinkedUser.next_poll_at <= now)
            .order_by(LinkedUser.next_poll_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    await session.execute(_RESCHEDULE, [{"uid": row.id, "due": next_poll()} for row in rows])
    ids = [row.id for row in rows]
    known = await repo.load_known(session, KnownConference, ids)
    muted: dict[int, set[ContextKey]] = {uid: set() for uid in ids}
    for mute in await session.scalars(select(MutedContext).where(MutedContext.linked_user_id.in_(ids))):
        muted[mute.linked_user_id].add((mute.context_type, mute.context_id))
    return [
        PollJob(
            unit_id=row.id,
            team_id=row.team_id,
            destination=row.slack_user_id,
            token=StoredToken(
                row.id, row.token_kind, row.access_token_enc, row.refresh_token_enc, row.token_expires_at
            ),
            previous=known[row.id],
            failures=row.consecutive_failures,
            alerts_enabled=row.alerts_enabled,
            muted=frozenset(muted[row.id]),
            linked_at=row.linked_at,
            quiet=QuietHours.parse(row.quiet_start, row.quiet_end, row.timezone),
        )
        for row in rows
    ]


@contextlib.contextmanager
def core_claim() -> Iterator[None]:
    with _patch(UserUnits, "claim", _core_claim):
        yield


# -- decrypt_cache -------------------------------------------------------------------------------

_PLAINTEXTS: dict[bytes, str] = {}
_SHIPPED_DECRYPT = TokenCipher.decrypt


def _cached_decrypt(self: TokenCipher, ciphertext: bytes) -> str:
    """Keyed by ciphertext: a refreshed or rotated token is a new ciphertext, so never stale."""
    found = _PLAINTEXTS.get(ciphertext)
    if found is None:
        found = _PLAINTEXTS[ciphertext] = _SHIPPED_DECRYPT(self, ciphertext)
    return found


def prefill_decrypt_cache(cipher: TokenCipher, ciphertexts: list[bytes]) -> None:
    """The steady state: every token was decrypted once, by an earlier poll of the same process."""
    for blob in ciphertexts:
        _cached_decrypt(cipher, blob)


@contextlib.contextmanager
def decrypt_cache() -> Iterator[None]:
    with _patch(TokenCipher, "decrypt", _cached_decrypt):
        yield


# -- empty_fast_path -----------------------------------------------------------------------------

_EMPTY = b'{"conferences":[]}'
_SHIPPED_CONFERENCES = client_module._conferences


def _conferences_fast(body: bytes) -> list[Conference]:
    """Most users have no live conference: skip pydantic for the exact empty envelope."""
    if body == _EMPTY:
        return []
    return _SHIPPED_CONFERENCES(body)


@contextlib.contextmanager
def empty_fast_path() -> Iterator[None]:
    with _patch(client_module, "_conferences", _conferences_fast):
        yield


# -- gc_tuned ------------------------------------------------------------------------------------

GC_THRESHOLD = (10_000, 10, 10)


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """What `confbot run` would do once Runtime.build and the imports are done."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


# -- pipelined -----------------------------------------------------------------------------------

_IN_FLIGHT_BATCHES = 2


async def _batch(self: Poller, jobs: list[PollJob]) -> int:
    outcomes = await asyncio.gather(*(self._poll(job) for job in jobs))
    await self._write(outcomes)
    if self._metrics:
        for outcome in outcomes:
            self._metrics.poll_result(self._units.kind, outcome.result_name)
    return len(jobs)


async def _pipelined_tick(self: Poller) -> int:
    """Poll every due unit; a new batch is claimed as soon as fewer than two are in flight."""
    total = 0
    running: set[asyncio.Task[int]] = set()
    try:
        while True:
            async with self._sessions.begin() as session:
                jobs = await self._units.claim(session, self._clock(), self._batch_size, self.next_poll)
            if jobs:
                running.add(asyncio.create_task(_batch(self, jobs)))
            if len(jobs) < self._batch_size:
                break
            if len(running) >= _IN_FLIGHT_BATCHES:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                total += sum(task.result() for task in done)
        for task in asyncio.as_completed(running):
            total += await task
        running = set()
    finally:
        for task in running:
            task.cancel()
    return total


@contextlib.contextmanager
def pipelined() -> Iterator[None]:
    with _patch(Poller, "tick", _pipelined_tick):
        yield


# -- all together --------------------------------------------------------------------------------


@contextlib.contextmanager
def everything() -> Iterator[None]:
    with direct_aiohttp(), core_claim(), decrypt_cache(), empty_fast_path(), gc_tuned():
        yield


PROPOSALS: dict[str, Proposal] = {
    "direct_aiohttp": direct_aiohttp,
    "cached_url": cached_url,
    "core_claim": core_claim,
    "decrypt_cache": decrypt_cache,
    "empty_fast_path": empty_fast_path,
    "gc_tuned": gc_tuned,
    "pipelined": pipelined,
    "combined (all but cached_url, pipelined)": everything,
}


@contextlib.contextmanager
def _patch(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)
