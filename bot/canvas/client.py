"""One shared async Canvas REST client for every linked user.

The bot polls on behalf of up to 100k users, so the client is built once (one connection
pool) and the token travels per call in the Authorization header. It does not retry or
sleep: it classifies each failure precisely (see `errors`) and the scheduler decides when
to try again. It never sends a token to any host other than `base_url`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import TypeAdapter, ValidationError

from bot.canvas.errors import Transient, error_for_response, strip_json_prefix
from bot.canvas.models import CanvasUser, Conference, ConferenceList, Course, Group

logger = logging.getLogger(__name__)

MAX_PAGES = 100
"""More pages than this (10,000 items at per_page=100) means a server bug, not data."""

T = TypeVar("T")

_COURSES = TypeAdapter(list[Course])


def _conferences(body: bytes) -> list[Conference]:
    return ConferenceList.model_validate_json(body).conferences


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class CanvasClient:
    """Typed access to the handful of Canvas endpoints the bot needs."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        max_connections: int = 100,
        user_agent: str = "confbot/0.1",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = _origin(httpx.URL(self.base_url))
        self._owns_http = http is None
        # httpx's API over aiohttp's connection pool: httpcore's pool costs ~3 ms CPU per request at
        # 50 connections (bench/RESULTS.md), aiohttp's well under 1 ms; errors still map to httpx's.
        self._http = http or httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=AiohttpTransport(limits=httpx.Limits(max_connections=max_connections)),
        )
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, but only if this client created it."""
        if self._owns_http:
            await self._http.aclose()

    # -- endpoints ---------------------------------------------------------------------------

    async def self_user(self, token: str) -> CanvasUser:
        """Who the token belongs to; also the cheapest way to check a token still works."""
        return await self._get_one(token, "/api/v1/users/self", None, CanvasUser.model_validate_json)

    async def live_conferences(self, token: str) -> list[Conference]:
        """Live conferences across all the user's courses and groups (the only `state`-aware index)."""
        params = {"state": "live", "per_page": "100"}
        return await self._get_all(token, "/api/v1/conferences", params, _conferences)

    async def all_conferences(self, token: str) -> list[Conference]:
        """Every conference of the user's courses and groups, live or not (`/conferences all`)."""
        return await self._get_all(token, "/api/v1/conferences", {"per_page": "100"}, _conferences)

    async def course_conferences(self, token: str, course_id: int) -> list[Conference]:
        """Every conference in a course the user may see (all states: Canvas ignores `state` here)."""
        path = f"/api/v1/courses/{int(course_id)}/conferences"
        return await self._get_all(token, path, {"per_page": "100"}, _conferences)

    async def group_conferences(self, token: str, group_id: int) -> list[Conference]:
        """Every conference in a group the user may see."""
        path = f"/api/v1/groups/{int(group_id)}/conferences"
        return await self._get_all(token, path, {"per_page": "100"}, _conferences)

    async def course(self, token: str, course_id: int) -> Course:
        """One course with the user's own enrollments (Canvas includes them by default)."""
        path = f"/api/v1/courses/{int(course_id)}"
        return await self._get_one(token, path, None, Course.model_validate_json)

    async def group(self, token: str, group_id: int) -> Group:
        """One group, with the course it belongs to when it is a course group."""
        path = f"/api/v1/groups/{int(group_id)}"
        return await self._get_one(token, path, None, Group.model_validate_json)

    async def courses(self, token: str) -> list[Course]:
        """The user's active courses, each with the user's enrollments in it."""
        return await self._get_all(token, "/api/v1/courses", {"per_page": "100"}, _COURSES.validate_json)

    # -- plumbing ----------------------------------------------------------------------------

    async def _get_one(
        self, token: str, path: str, params: dict[str, str] | None, parse: Callable[[bytes], T]
    ) -> T:
        response = await self._request(token, self.base_url + path, params)
        return self._parse(response, parse)

    async def _get_all(
        self, token: str, path: str, params: dict[str, str], parse: Callable[[bytes], list[T]]
    ) -> list[T]:
        """Follow `rel="next"` links verbatim: Canvas bookmarks are opaque, so never build page URLs."""
        items: list[T] = []
        seen: set[str] = set()
        url = self.base_url + path
        page_params: dict[str, str] | None = params
        while True:
            response = await self._request(token, url, page_params)
            items.extend(self._parse(response, parse))
            next_url = self._next_url(response)
            if next_url is None:
                return items
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise Transient(f"GET {path}: pagination loop or more than {MAX_PAGES} pages")
            seen.add(next_url)
            url, page_params = next_url, None

    def _next_url(self, response: httpx.Response) -> str | None:
        link = response.links.get("next")
        if not link or not link.get("url"):
            return None
        target = response.request.url.join(link["url"])
        if _origin(target) != self._origin:
            # The token rides along on every page request: never hand it to another host.
            raise Transient(f"GET {response.request.url.path}: next page link points at another host")
        return str(target)

    async def _request(self, token: str, url: str, params: dict[str, str] | None) -> httpx.Response:
        headers = {**self._headers, "Authorization": f"Bearer {token}"}
        try:
            response = await self._http.get(url, params=params, headers=headers, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise Transient(f"GET {httpx.URL(url).path}: timed out ({type(exc).__name__})") from None
        except httpx.RequestError as exc:
            raise Transient(f"GET {httpx.URL(url).path}: {type(exc).__name__}: {exc}") from None
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("GET %s -> %s", response.request.url.path, response.status_code)
        return response

    @staticmethod
    def _parse(response: httpx.Response, parse: Callable[[bytes], T]) -> T:
        what = f"GET {response.request.url.path}"
        if not 200 <= response.status_code < 300:
            error = error_for_response(response, what)
            logger.debug("canvas %s", error)
            raise error
        try:
            return parse(strip_json_prefix(response.content))
        except ValueError as exc:  # ValidationError is a ValueError; so is bad JSON
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            raise Transient(
                f"{what}: unparseable body ({count} problem(s))", status=response.status_code
            ) from None
