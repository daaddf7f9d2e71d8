"""The Live Events JWK set cache: fetched once, refetched on expiry or for an unknown kid at most once a
minute, RSA signing keys only, and a failed fetch never throws away keys that still work."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.web.jwks import MAX_JWKS_BYTES, JwksCache, JwksTiming, JwksUnavailable

URL = "https://keys.example.test/jwks"


@cache
def rsa_jwk(kid: str) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return {**RSAAlgorithm.to_jwk(key, as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}


class KeyServer:
    """A JWK set endpoint whose document or failure the test sets; counts requests."""

    def __init__(self, *kids: str) -> None:
        self.document: Any = {"keys": [rsa_jwk(kid) for kid in kids]}
        self.status = 200
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if isinstance(self.document, bytes):
            return httpx.Response(self.status, content=self.document)
        return httpx.Response(self.status, json=self.document)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def cache_for(server: KeyServer, clock: Clock) -> JwksCache:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    return JwksCache(URL, http, clock, JwksTiming(ttl_seconds=3600, refetch_interval_seconds=60))


async def test_the_set_is_fetched_once_and_kept() -> None:
    server, clock = KeyServer("a", "b"), Clock()
    jwks = await cache_for(server, clock)
    assert (await jwks.key_for("a")) is not None
    clock.now += 3000
    assert (await jwks.key_for("b")) is not None
    assert server.requests == 1


async def test_an_unknown_kid_refetches_at_most_once_per_interval() -> None:
    server, clock = KeyServer("a"), Clock()
    jwks = await cache_for(server, clock)
    assert await jwks.key_for("a") is not None
    server.document = {"keys": [rsa_jwk("a"), rsa_jwk("b")]}
    clock.now += 10
    assert await jwks.key_for("b") is None  # fetched 10 s ago: not yet
    clock.now += 50
    assert await jwks.key_for("b") is not None  # a rotation we had missed, found by the refetch
    assert server.requests == 2
    assert await jwks.key_for("forged") is None  # just refetched: a forger cannot make us hammer the host
    assert server.requests == 2
    clock.now += 60
    assert await jwks.key_for("forged") is None
    assert server.requests == 3


async def test_an_expired_set_is_refetched() -> None:
    server, clock = KeyServer("a"), Clock()
    jwks = await cache_for(server, clock)
    await jwks.key_for("a")
    server.document = {"keys": [rsa_jwk("b")]}
    clock.now += 3600
    assert await jwks.key_for("a") is None
    assert await jwks.key_for("b") is not None
    assert server.requests == 2


@pytest.mark.parametrize(
    "broken",
    [500, b"not json", b"x" * (MAX_JWKS_BYTES + 1), {"keys": []}, {"nokeys": 1}, [1, 2]],
)
async def test_a_failed_refetch_keeps_the_keys_that_work(broken: Any) -> None:
    server, clock = KeyServer("a"), Clock()
    jwks = await cache_for(server, clock)
    await jwks.key_for("a")
    if isinstance(broken, int):
        server.status = broken
    else:
        server.document = broken
    clock.now += 3600
    assert await jwks.key_for("a") is not None
    assert server.requests == 2


async def test_no_set_at_all_is_unavailable_not_unknown() -> None:
    server, clock = KeyServer("a"), Clock()
    server.status = 503
    jwks = await cache_for(server, clock)
    with pytest.raises(JwksUnavailable):
        await jwks.key_for("a")
    with pytest.raises(JwksUnavailable):  # and the next request does not refetch at once
        await jwks.key_for("a")
    assert server.requests == 1
    server.status = 200
    clock.now += 60
    assert await jwks.key_for("a") is not None


async def test_only_rsa_signing_keys_are_kept() -> None:
    server, clock = KeyServer(), Clock()
    server.document = {
        "keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {**rsa_jwk("enc"), "use": "enc"},
            {**rsa_jwk("ps"), "alg": "PS256"},
            {**rsa_jwk("no-kid"), "kid": None},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            json.loads(json.dumps({**rsa_jwk("good"), "alg": "RS256"})),
            "not a key",
        ]
    }
    jwks = await cache_for(server, clock)
    for kid in ("hmac", "enc", "ps", "broken"):
        clock.now += 60
        assert await jwks.key_for(kid) is None
    assert await jwks.key_for("good") is not None
