"""EXPERIMENTS: proposed `bot/` changes that are NOT shipped, applied by monkeypatching this process only.

Nothing here is imported by the bot. Each proposal is a context manager that swaps one piece of the
shipped code for a sketch of the change and puts the original back on exit; `bench.cpu_profile` runs
the shipped bot and each proposal against the same users and reports CPU per poll, and
`bench.poll_throughput --proposal NAME` runs every bot phase with it (the output says "NOT THE SHIPPED BOT").

Already shipped, so gone from here: direct aiohttp sends (bot/canvas/client.py), gc.freeze plus a
higher generation-0 threshold (bot/cli.py; the bench applies the CLI's own calls, bench.common.apply_cli_gc)
POLL_CONCURRENCY 200 (bot/config.py), pipelined batches in Poller.tick (bot/engine/poller.py) and
the Core-row claim with one executemany UPDATE (bot/store/repo.py claim_due_users).

  decrypt_cache   TokenCipher.decrypt remembers plaintexts by ciphertext (a process-wide dict), so a
                  token is decrypted once per process rather than once per poll.
  empty_fast_path the live-list parser returns [] without pydantic for the exact empty envelope.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import bot.canvas.client as client_module
from bot.canvas.models import Conference
from bot.store.crypto import TokenCipher

Proposal = Callable[[], contextlib.AbstractContextManager[None]]


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
    with decrypt_cache(), empty_fast_path():
        yield


PROPOSALS: dict[str, Proposal] = {
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
