"""The Live Events routes in process (ASGI transport, a mocked JWK set, a fake clock): `exp`/`iat`/`nbf`
judged on the injected clock, the routes the settings ask for, and nothing secret in the logs."""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.config import ConfigError, load_settings
from bot.domain.live_events import ConferenceJoined
from bot.web.live_events import (
    JWT_LEEWAY_SECONDS,
    SIGNED_PATH,
    UNSIGNED_PATH,
    LiveEventsConfig,
    LiveEventsReceiver,
    live_events_routes,
)

NOW = 1_700_000_000.0
SECRET = "A" * 40
EVENT = {
    "metadata": {"event_name": "asset_accessed", "event_time": "2023-11-14T22:13:20.000Z", "user_id": "9"},
    "body": {"asset_type": "web_conference", "asset_id": "31", "level": "participate"},
}


@cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_handler(request: httpx.Request) -> httpx.Response:
    jwk = RSAAlgorithm.to_jwk(signing_key().public_key(), as_dict=True)
    return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})


def token(**times: Any) -> bytes:
    claims = {**EVENT, "iat": NOW, "exp": NOW + 300}
    claims.update(times)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, signing_key(), algorithm="RS256", headers={"kid": "k1"}).encode()


async def post(path: str, body: bytes, joins: list[ConferenceJoined]) -> httpx.Response:
    async def sink(joined: ConferenceJoined) -> None:
        joins.append(joined)

    config = LiveEventsConfig(jwks_url="https://keys.test/jwks", secret=SecretStr(SECRET))
    async with httpx.AsyncClient(transport=httpx.MockTransport(jwks_handler)) as http:
        receiver = LiveEventsReceiver(config, http=http, sink=sink, clock=lambda: NOW)
        app = Starlette(routes=receiver.routes())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bot") as client:
            return await client.post(path, content=body)


@pytest.mark.parametrize(
    "times",
    [
        {},
        {"iat": NOW + JWT_LEEWAY_SECONDS - 1},  # our clock a little behind Instructure's
        {"exp": NOW - JWT_LEEWAY_SECONDS + 1},  # just expired, within the skew forgiven
        {"nbf": NOW + 10},
        {"iat": NOW - 86400, "exp": NOW + 1},  # an old token still valid: a late retry
    ],
)
async def test_a_token_valid_on_the_injected_clock_is_taken(times: dict[str, Any]) -> None:
    joins: list[ConferenceJoined] = []
    response = await post(SIGNED_PATH, token(**times), joins)
    assert (response.status_code, response.text) == (200, "ok")
    assert [(j.conference_id, j.user_id) for j in joins] == [(31, 9)]


@pytest.mark.parametrize(
    "times",
    [
        {"exp": None},
        {"iat": None},
        {"exp": NOW - JWT_LEEWAY_SECONDS},
        {"iat": NOW + JWT_LEEWAY_SECONDS + 1},
        {"nbf": NOW + JWT_LEEWAY_SECONDS + 1},
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": float("nan")},
        {"iat": float("nan")},
    ],
)
async def test_missing_or_failing_times_are_401(times: dict[str, Any]) -> None:
    joins: list[ConferenceJoined] = []
    response = await post(SIGNED_PATH, token(**times), joins)
    assert response.status_code == 401
    assert joins == []


async def test_no_token_or_secret_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    joins: list[ConferenceJoined] = []
    forged = token()[:-4] + b"AAAA"
    assert (await post(SIGNED_PATH, forged, joins)).status_code == 401
    wrong = "B" * 40
    assert (await post(f"/canvas/live-events/{wrong}", json.dumps(EVENT).encode(), joins)).status_code == 401
    assert (await post(f"/canvas/live-events/{SECRET}", json.dumps(EVENT).encode(), joins)).status_code == 200
    assert (await post(SIGNED_PATH, token(), joins)).status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))
    assert logged  # refusals and joins are logged ...
    for secret in (forged.decode(), token().decode().split(".")[2], SECRET, wrong):
        assert secret not in logged  # ... without what proves or fakes a delivery


def test_the_settings_choose_the_routes() -> None:
    base: dict[str, Any] = {"_env_file": None, "canvas_base_url": "https://canvas.example.edu"}
    http = httpx.AsyncClient()

    async def sink(joined: ConferenceJoined) -> None:
        return None

    def paths(**values: Any) -> list[str]:
        routes = live_events_routes(load_settings(**base, **values), http=http, sink=sink)
        return [getattr(route, "path", "") for route in routes]

    assert paths() == []
    assert paths(canvas_live_events_jwks_url="https://keys.example/jwks") == [SIGNED_PATH]
    assert paths(canvas_live_events_secret=SECRET) == [UNSIGNED_PATH]
    config = LiveEventsConfig.from_settings(load_settings(**base, canvas_live_events_secret=SECRET))
    assert SECRET not in repr(config)


@pytest.mark.parametrize("secret", ["short", "a" * 31, "has space" + "x" * 30, "slash/" + "x" * 30, "é" * 40])
def test_a_guessable_or_unroutable_secret_is_refused_without_echo(secret: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, canvas_base_url="https://c.example", canvas_live_events_secret=secret)
    message = str(caught.value)
    assert "CANVAS_LIVE_EVENTS_SECRET must be at least 32" in message and secret not in message
    assert caught.value.fields == {"canvas_live_events_secret"}
