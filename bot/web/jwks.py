"""The JWK set that signs Canvas Live Events, fetched once and kept, refetched for a key it lacks.

Instructure publishes its Live Events keys as a JWK set holding the previous, current and next key and
rotates them monthly, so a cached set stays good for weeks: the next key is in it before it signs
anything. A `kid` the cache does not know is therefore either a rotation we missed (refetch) or a forgery
(refetching for every one would let any sender make us hammer the JWKS host). Both are served by one
rule: refetch for an unknown kid at most once per `refetch_interval_seconds`, and answer "unknown" in
between.

Only RSA signing keys are kept: Live Events are RS256, and a symmetric or unsigned key in a fetched set
must never be able to verify anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWTError

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 64 * 1024
"""A JWK set of three 4096-bit RSA keys is under 3 KB; anything near this is not a key set."""

Clock = Callable[[], float]


class JwksUnavailable(Exception):
    """No key set could be fetched, and none is cached: the sender is not at fault, so not a 401."""


@dataclass(frozen=True, slots=True)
class JwksTiming:
    """How long a fetched set is trusted, and how often an unknown kid may cause a refetch."""

    ttl_seconds: float = 3600.0
    refetch_interval_seconds: float = 60.0
    timeout_seconds: float = 10.0


class JwksCache:
    """Keys by `kid` from one JWK set URL; `key_for` is the only way in and is safe to call concurrently."""

    def __init__(
        self, url: str, http: httpx.AsyncClient, clock: Clock, timing: JwksTiming | None = None
    ) -> None:
        self._url = url
        self._http = http
        self._clock = clock
        self._timing = timing or JwksTiming()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Fetch attempts so far (tests and metrics read it)."""

    async def key_for(self, kid: str) -> PyJWK | None:
        """The RSA key named `kid`, or None when the set does not have it even after a refetch.

        Raises JwksUnavailable when nothing is cached and the set cannot be fetched now.
        """
        async with self._lock:  # one fetch at a time; waiters then see its result
            if self._stale():
                await self._refresh(reason="expired" if self._fetched_at is not None else "first use")
            key = self._keys.get(kid)
            if key is None and self._may_refetch():
                await self._refresh(reason="unknown kid")
                key = self._keys.get(kid)
            if key is None and self._fetched_at is None:
                raise JwksUnavailable("the JWK set could not be fetched")
            return key

    def _stale(self) -> bool:
        if self._fetched_at is None:
            return self._may_refetch()
        return self._clock() - self._fetched_at >= self._timing.ttl_seconds and self._may_refetch()

    def _may_refetch(self) -> bool:
        last = self._last_attempt
        return last is None or self._clock() - last >= self._timing.refetch_interval_seconds

    async def _refresh(self, *, reason: str) -> None:
        """Fetch the set; on failure keep what is cached (keys rotate monthly, an outage is shorter)."""
        self._last_attempt = self._clock()
        self.fetches += 1
        try:
            document = await self._fetch()
        except (httpx.HTTPError, ValueError) as error:
            log.warning("Live Events JWK set fetch failed (%s): %s", reason, type(error).__name__)
            return
        keys = _rsa_signing_keys(document)
        if not keys:
            log.warning("Live Events JWK set (%s) holds no RSA signing key; keeping the cached one", reason)
            return
        self._keys, self._fetched_at = keys, self._clock()
        log.info("Live Events JWK set fetched (%s): %d keys", reason, len(keys))

    async def _fetch(self) -> Any:
        async with self._http.stream("GET", self._url, timeout=self._timing.timeout_seconds) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError("JWK set too large")
        return json.loads(bytes(body))


def _rsa_signing_keys(document: Any) -> dict[str, PyJWK]:
    """The usable keys of a JWK set document by kid: RSA, for signatures, RS256 or unspecified."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return {}
    keys: dict[str, PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", "RS256") != "RS256":
            continue
        try:
            keys[kid] = PyJWK.from_dict(entry, algorithm="RS256")
        except (PyJWTError, ValueError, TypeError):  # a malformed key: skip it, keep the others
            continue
    return keys
