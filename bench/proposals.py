"""EXPERIMENTS: proposed `bot/` changes that are NOT shipped, applied by monkeypatching this process only.

Nothing here is imported by the bot. Each proposal is a context manager that swaps one piece of the
shipped code for a sketch of the change and puts the original back on exit; `bench.cpu_profile` runs
the shipped bot and each proposal against the same users and reports CPU per poll, and
`bench.poll_throughput --proposal NAME` runs every bot phase with it (the output says "NOT THE SHIPPED BOT").

Already shipped, so gone from here: direct aiohttp sends (bot/canvas/client.py), gc.freeze plus a
higher generation-0 threshold (bot/cli.py; the bench applies the CLI's own calls, bench.common.apply_cli_gc)
POLL_CONCURRENCY 200 (bot/config.py) and pipelined batches in Poller.tick (bot/engine/poller.py).

  core_claim      UserUnits.claim with Core column rows and one executemany UPDATE for the new
                  next_poll_at values, instead of ORM LinkedUser objects and a unit-of-work flush.
  decrypt_cache   TokenCipher.decrypt remembers plaintexts by ciphertext (a process-wide dict), so a
                  token is decrypted once per process rather than once per poll.
  empty_fast_path the live-list parser returns [] without pydantic for the exact empty envelope.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import bot.canvas.client as client_module
from bot.canvas.models import Conference
from bot.engine.credentials import StoredToken
from bot.engine.poll_units import ContextKey, PollJob, UserUnits
from bot.engine.quiet_hours import QuietHours
from bot.store import repo
from bot.store.crypto import TokenCipher
from bot.store.models import KnownConference, LinkedUser, MutedContext

Proposal = Callable[[], contextlib.AbstractContextManager[None]]


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


# -- all together --------------------------------------------------------------------------------


@contextlib.contextmanager
def everything() -> Iterator[None]:
    with core_claim(), decrypt_cache(), empty_fast_path():
        yield


PROPOSALS: dict[str, Proposal] = {
    "core_claim": core_claim,
    "decrypt_cache": decrypt_cache,
    "empty_fast_path": empty_fast_path,
    "combined": everything,
}


@contextlib.contextmanager
def _patch(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)
