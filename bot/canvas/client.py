"""One shared async Canvas REST client for every linked user.

The bot polls on behalf of up to 100k users, so the client is built once (one connection
pool) and the token travels per call in the Authorization header. It does not retry or
sleep: it classifies each failure precisely (see `errors`) and the scheduler decides when
to try again. It never sends a token to any host other than `base_url`.

Requests go out on aiohttp's pool directly, in production and in the tests alike: building
httpx request/response objects for every poll cost more CPU than the rest of a poll together
(bench/RESULTS.md). A failed answer goes to `errors.error_for_answer` as status, headers and
body, the same pure mapping the httpx-based OAuth client uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

import aiohttp
import yarl
from pydantic import TypeAdapter, ValidationError

from bot.canvas import network
from bot.canvas.errors import (
    InsufficientScope,
    Throttled,
    Transient,
    error_for_answer,
    strip_json_prefix,
)
from bot.domain.models import CanvasUser, Conference, ConferenceList, Course, Group

logger = logging.getLogger(__name__)

MAX_PAGES = 100
"""More pages than this (10,000 items at per_page=100) means a server bug, not data."""

T = TypeVar("T")

_COURSES = TypeAdapter(list[Course])
_USERS = TypeAdapter(list[CanvasUser])


def _conferences(body: bytes) -> list[Conference]:
    return ConferenceList.model_validate_json(body).conferences


def _origin(url: yarl.URL) -> tuple[str, str | None, int | None]:
    """Scheme, host and port (the scheme's default when none is written), as a token's boundary."""
    return (url.scheme, url.host, url.port)


@dataclass(frozen=True, slots=True)
class _Page:
    """A successful answer: its body and, verbatim, the `rel="next"` link if Canvas sent one."""

    body: bytes
    next_link: str | None


class CanvasClient:
    """Typed access to the handful of Canvas endpoints the bot needs."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        max_connections: int = 100,
        user_agent: str = "confbot/0.1",
        on_insufficient_scope: Callable[[InsufficientScope], None] | None = None,
        on_answer: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_insufficient_scope` hears every call Canvas refuses for a scope the token lacks: every
        caller's, in one place, even where the caller swallows the error (a look-up that is a nicety).
        `on_answer` hears every answer Canvas gave (whether it was a throttle), so the
        poll concurrency can shrink when Canvas throttles; a timeout or a connection error is no answer."""
        self.base_url = base_url.rstrip("/")
        self._on_insufficient_scope = on_insufficient_scope
        self._on_answer = on_answer
        self._origin = _origin(yarl.URL(self.base_url))
        self._session: aiohttp.ClientSession | None = None
        self._timeout = timeout
        self._max_connections = max_connections
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        # Built once: the live poll runs for every user every interval, and building its URL from a
        # string and a query dict on each request was a measurable share of a poll's CPU.
        self._live_url = self._url("/api/v1/conferences", {"state": "live", "per_page": "100"})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (a later request opens a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- endpoints ---------------------------------------------------------------------------

    async def self_user(self, token: str) -> CanvasUser:
        """Who the token belongs to; also the cheapest way to check a token still works."""
        return await self._get_one(token, "/api/v1/users/self", None, CanvasUser.model_validate_json)

    async def live_conferences(self, token: str) -> list[Conference]:
        """Live conferences across all the user's courses and groups (the only `state`-aware index)."""
        return await self._get_all(token, "/api/v1/conferences", self._live_url, _conferences)

    async def all_conferences(self, token: str) -> list[Conference]:
        """Every conference of the user's courses and groups, live or not (`/conferences all`)."""
        return await self._get_all(
            token, "/api/v1/conferences", self._url_100("/api/v1/conferences"), _conferences
        )

    async def course_conferences(self, token: str, course_id: int) -> list[Conference]:
        """Every conference in a course the user may see (all states: Canvas ignores `state` here)."""
        path = f"/api/v1/courses/{int(course_id)}/conferences"
        return await self._get_all(token, path, self._url_100(path), _conferences)

    async def group_conferences(self, token: str, group_id: int) -> list[Conference]:
        """Every conference in a group the user may see."""
        path = f"/api/v1/groups/{int(group_id)}/conferences"
        return await self._get_all(token, path, self._url_100(path), _conferences)

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
        return await self._get_all(
            token, "/api/v1/courses", self._url_100("/api/v1/courses"), _COURSES.validate_json
        )

    async def course_users(self, token: str, course_id: int) -> list[CanvasUser]:
        """The people of a course (active and invited enrollments, every role), for names in reports."""
        path = f"/api/v1/courses/{int(course_id)}/users"
        return await self._get_all(token, path, self._url_100(path), _USERS.validate_json)

    # -- plumbing ----------------------------------------------------------------------------

    def _url(self, path: str, params: dict[str, str] | None = None) -> yarl.URL:
        """The first page's URL of `path` on this Canvas, with `params` as its query."""
        url = yarl.URL(self.base_url + path)
        return url if params is None else url.extend_query(params)

    def _url_100(self, path: str) -> yarl.URL:
        return self._url(path, {"per_page": "100"})

    async def _get_one(
        self, token: str, path: str, params: dict[str, str] | None, parse: Callable[[bytes], T]
    ) -> T:
        page = await self._request(token, self._url(path, params), path)
        return self._parse(page, path, parse)

    async def _get_all(
        self, token: str, path: str, first: yarl.URL, parse: Callable[[bytes], list[T]]
    ) -> list[T]:
        """Follow `rel="next"` links verbatim: Canvas bookmarks are opaque, so never build page URLs."""
        items: list[T] = []
        seen: set[yarl.URL] = set()
        url = first
        while True:
            page = await self._request(token, url, path)
            items.extend(self._parse(page, path, parse))
            if page.next_link is None:
                return items
            next_url = self._next_url(url, page.next_link, path)
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise Transient(f"GET {path}: pagination loop or more than {MAX_PAGES} pages")
            seen.add(next_url)
            url = next_url

    def _next_url(self, current: yarl.URL, link: str, path: str) -> yarl.URL:
        """The next page's URL, resolved against the current one without re-quoting anything (a next
        link is sent exactly as Canvas wrote it: encoded=True, no re-quoting of bookmarks)."""
        target = current.join(yarl.URL(link, encoded=True))
        if _origin(target) != self._origin:
            # The token rides along on every page request: never hand it to another host.
            raise Transient(f"GET {path}: next page link points at another host")
        return target

    async def _request(self, token: str, url: yarl.URL, path: str) -> _Page:
        """GET `url` with the token; `path` names the endpoint in error messages (never the query)."""
        headers = {**self._headers, "Authorization": f"Bearer {token}"}
        try:
            async with self._pool().get(url, headers=headers, allow_redirects=False) as answer:
                body = await answer.read()
                if 200 <= answer.status < 300:
                    if self._on_answer is not None:
                        self._on_answer(False)
                    return _Page(body, next_link(answer.headers.getall("Link", ())))
                error = error_for_answer(answer.status, answer.headers, body, f"GET {path}")
                if self._on_answer is not None:
                    self._on_answer(isinstance(error, Throttled))
        except TimeoutError as exc:
            raise Transient(f"GET {path}: {network.describe(exc)}") from None
        except aiohttp.ClientError as exc:
            raise Transient(f"GET {path}: {network.describe(exc)}") from None
        logger.debug("canvas %s", error)
        if isinstance(error, InsufficientScope) and self._on_insufficient_scope is not None:
            self._on_insufficient_scope(error)
        raise error

    def _pool(self) -> aiohttp.ClientSession:
        """Created on first use, inside the running event loop (aiohttp requires it)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                # One pool for every user's token: a cookie Canvas set on one user's answer must never
                # ride along on another's request (and a jar nobody needs costs every request a look-up).
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                raise_for_status=False,
            )
        return self._session

    @staticmethod
    def _parse(page: _Page, path: str, parse: Callable[[bytes], T]) -> T:
        try:
            return parse(strip_json_prefix(page.body))
        except ValueError as exc:  # ValidationError is a ValueError; so is bad JSON
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            raise Transient(f"GET {path}: unparseable body ({count} problem(s))", status=200) from None


def next_link(link_headers: Iterable[str]) -> str | None:
    """The `rel="next"` target of Link header values, exactly as written (relative or absolute).

    Canvas joins links with "," (`<url>; rel="current",<url>; rel="next"`); a URL cannot hold
    a bare "<" or ">", so each link is the text between them. Nothing is unquoted or re-quoted:
    bookmarks are opaque and go back to Canvas byte for byte.
    """
    for value in link_headers:
        for entry in value.split("<")[1:]:
            target, _, params = entry.partition(">")
            for param in params.split(";"):
                name, _, relation = param.partition("=")
                if name.strip().lower() == "rel" and "next" in relation.strip().strip('"').lower().split():
                    return target.strip() or None
    return None
