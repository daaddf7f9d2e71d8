"""`POST /canvas/live-events`: Canvas Live Events (Data Services, HTTPS delivery) in, conference joins out.

A join is the only signal Canvas gives for a reused long-running room (its `started_at` never changes,
so a poll sees nothing new), and seconds instead of a poll period for every other start. Instructure
warns that Live Events are best-effort (late, duplicated, retried, out of order), so they only hand a
`ConferenceJoined` to a sink that accelerates polling; they never replace it, and nothing here assumes
an event arrives once or in order.

Two ways in, each mounted only when configured (otherwise 404, as if the route did not exist):

- signed (`CANVAS_LIVE_EVENTS_JWKS_URL`): the body is a compact JWT whose claims are the event, RS256
  only, checked against Instructure's JWK set (`jwks.JwksCache`), with `exp` and `iat` required;
- unsigned (`CANVAS_LIVE_EVENTS_SECRET`): the body is the event JSON, taken only at
  `/canvas/live-events/<secret>`, the path being the only proof of origin.

An unauthenticated request costs a bounded body (256 KiB, `BodyLimitMiddleware`), one signature check
and at most one throttled JWKS fetch; it never reaches the sink, so it never makes confbot call Canvas.
Tokens and the secret are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Settings
from bot.domain.live_events import ConferenceJoined, conference_joined
from bot.web.body_limit import BodyLimitMiddleware
from bot.web.jwks import Clock, JwksCache, JwksTiming, JwksUnavailable

log = logging.getLogger(__name__)

SIGNED_PATH = "/canvas/live-events"
UNSIGNED_PATH = "/canvas/live-events/{secret}"

MAX_LIVE_EVENT_BYTES = 256 * 1024
"""The largest Live Events delivery accepted. The biggest Canvas events truncate their text fields to
8,192 characters; an `asset_accessed` is about 2 KB, and a signed one a third more in base64."""

JWT_LEEWAY_SECONDS = 60.0
"""Clock skew forgiven on `exp` and `iat`: Instructure's clock and ours are NTP-synced, not identical."""

ALGORITHMS = ["RS256"]
"""The only algorithm Live Events are signed with. Naming it keeps `none` and HS256 (an HMAC keyed with
the public key anyone can download) from ever verifying."""

Sink = Callable[[ConferenceJoined], Awaitable[None]]


class InvalidLiveEvent(Exception):
    """A signed delivery that does not prove it came from Canvas: answered 401, never acted on."""


@dataclass(frozen=True, slots=True)
class LiveEventsConfig:
    """What the receiver needs from the settings, plus limits tests may tighten."""

    jwks_url: str | None = None
    secret: SecretStr | None = field(default=None, repr=False)
    max_body_bytes: int = MAX_LIVE_EVENT_BYTES
    leeway_seconds: float = JWT_LEEWAY_SECONDS
    jwks_timing: JwksTiming = field(default_factory=JwksTiming)

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveEventsConfig:
        url = settings.canvas_live_events_jwks_url
        return cls(jwks_url=None if url is None else str(url), secret=settings.canvas_live_events_secret)


class LiveEventsReceiver:
    """The two Live Events routes over explicit dependencies: `http` fetches the JWK set, `clock`
    (Unix seconds) judges `exp`/`iat` and the JWKS cache, `sink` takes each verified conference join."""

    def __init__(
        self, config: LiveEventsConfig, *, http: httpx.AsyncClient, sink: Sink, clock: Clock = time.time
    ) -> None:
        self._config = config
        self._sink = sink
        self._clock = clock
        self.jwks = (
            None if config.jwks_url is None else JwksCache(config.jwks_url, http, clock, config.jwks_timing)
        )

    def routes(self) -> list[BaseRoute]:
        """The configured routes, each behind the Live Events body cap; none when nothing is configured."""
        cap = [Middleware(BodyLimitMiddleware, max_bytes=self._config.max_body_bytes)]
        routes: list[BaseRoute] = []
        if self.jwks is not None:
            routes.append(Route(SIGNED_PATH, self.signed, methods=["POST"], middleware=cap))
        if self._config.secret is not None:
            routes.append(Route(UNSIGNED_PATH, self.unsigned, methods=["POST"], middleware=cap))
        return routes

    async def signed(self, request: Request) -> Response:
        """POST /canvas/live-events: a JWT signed by a key of the JWK set, or 401."""
        assert self.jwks is not None  # the route exists only with a JWK set
        body = await request.body()
        try:
            claims = await self._verified_claims(body)
        except InvalidLiveEvent as error:
            log.info("Live Event refused: %s", error)
            return PlainTextResponse("invalid signature", status_code=401)
        except JwksUnavailable:
            # Not the sender's fault: 503 makes Canvas retry, when the key set may be reachable again.
            log.warning("Live Event not checked: the JWK set is unavailable")
            return PlainTextResponse("signing keys unavailable", status_code=503)
        return await self._deliver(claims)

    async def unsigned(self, request: Request) -> Response:
        """POST /canvas/live-events/<secret>: the event JSON, taken only at the right secret path."""
        secret = self._config.secret
        assert secret is not None  # the route exists only with a secret
        given = str(request.path_params["secret"]).encode()
        if not hmac.compare_digest(given, secret.get_secret_value().encode()):
            log.info("Live Event refused: wrong secret path")
            return PlainTextResponse("unknown path", status_code=401)
        try:
            event = json.loads(await request.body())
        except ValueError:  # not UTF-8 (UnicodeDecodeError) or not JSON
            return PlainTextResponse("body is not JSON", status_code=400)
        if not isinstance(event, dict):
            return PlainTextResponse("body is not a JSON object", status_code=400)
        return await self._deliver(event)

    async def _verified_claims(self, body: bytes) -> dict[str, Any]:
        """The claims of a compact JWT that a current Live Events key signed, or InvalidLiveEvent."""
        assert self.jwks is not None
        try:
            token = body.decode("ascii").strip()
            header = jwt.get_unverified_header(token)
        except (UnicodeDecodeError, jwt.PyJWTError) as error:
            raise InvalidLiveEvent("not a compact JWT") from error
        if header.get("alg") not in ALGORITHMS:
            raise InvalidLiveEvent("algorithm is not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidLiveEvent("no key id")
        key = await self.jwks.key_for(kid)
        if key is None:
            raise InvalidLiveEvent("key id not in the JWK set")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                # exp/iat are judged below on our clock; PyJWT's own check would read the wall clock.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise InvalidLiveEvent(f"signature check failed ({type(error).__name__})") from error
        _check_times(claims, self._clock(), self._config.leeway_seconds)
        return claims

    async def _deliver(self, event: Mapping[str, Any]) -> Response:
        """Hand a conference join to the sink; anything else is acknowledged and dropped."""
        joined = conference_joined(event)
        if joined is None:
            return PlainTextResponse("ignored")
        try:
            await self._sink(joined)
        except Exception as error:  # the sink's failure must become Canvas's retry, not our traceback
            log.warning(
                "Live Event join of conference %s not taken: %s", joined.conference_id, type(error).__name__
            )
            return PlainTextResponse("not taken, retry later", status_code=503)
        log.info("Live Event: conference %s joined", joined.conference_id)
        return PlainTextResponse("ok")


def _check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """`exp` and `iat` are required numbers: not expired, not issued in the future (`nbf`, if present,
    reached). Each within `leeway` seconds."""
    times = {}
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if value is None and name == "nbf":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidLiveEvent(f"{name} is not a number")  # NaN would pass every comparison
        times[name] = float(value)
    if times["exp"] <= now - leeway:
        raise InvalidLiveEvent("expired")
    if times["iat"] > now + leeway:
        raise InvalidLiveEvent("issued in the future")
    if "nbf" in times and times["nbf"] > now + leeway:
        raise InvalidLiveEvent("not valid yet")


def live_events_routes(
    settings: Settings, *, http: httpx.AsyncClient, sink: Sink, clock: Clock = time.time
) -> list[BaseRoute]:
    """The Live Events routes `CANVAS_LIVE_EVENTS_JWKS_URL` and `CANVAS_LIVE_EVENTS_SECRET` ask for
    (an empty list when neither is set), delivering joins to `sink`. `http` must outlive the app."""
    receiver = LiveEventsReceiver(LiveEventsConfig.from_settings(settings), http=http, sink=sink, clock=clock)
    return receiver.routes()
