"""CanvasClient on its one (production, aiohttp) path against odd answers served over loopback.

A tiny scripted server gives the exact answers a sandbox would not (Link header shapes, a
`while(1);` prefix, bookmarks, next links to other hosts); the fault proxy in front of the sandbox
Canvas gives canned failures (`Fault("respond", ...)`, `canvas_throttle`, `hang`). What the client
sent is read from the server side, as Canvas would see it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bot.canvas import (
    MAX_PAGES,
    CanvasClient,
    CanvasError,
    Forbidden,
    InvalidToken,
    NotFound,
    Throttled,
    Transient,
)
from bot.sandbox.server import free_port, serving
from tests.conftest import Sandbox
from tests.faults import Fault, FaultProxy, canvas_throttle

TOKEN = "7~t0psecrettokenvalue"
Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Seen:
    """One request as it reached the server: the target byte for byte, and its Authorization."""

    url: str
    authorization: str


@dataclass
class ScriptedCanvas:
    """An ASGI app answering each path with the handler a test wrote for it (500 when unscripted)."""

    url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        query = scope["query_string"].decode("latin-1")
        target = self.url + scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        with self._lock:
            self.seen.append(Seen(target, request.headers.get("authorization", "")))
        handler = self.routes.get(scope["path"])
        response = handler(request) if handler else Response(b"unscripted", status_code=500)
        await response(scope, receive, send)

    def on(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def respond(self, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.on(path, lambda _request: Response(content, status_code=status, headers=headers))

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for seen in self.seen if urlsplit(seen.url).path == path)


def scripted_server() -> Iterator[ScriptedCanvas]:
    script = ScriptedCanvas()
    with serving(script) as url:
        script.url = url
        yield script


@pytest.fixture
def canvas() -> Iterator[ScriptedCanvas]:
    yield from scripted_server()


@pytest.fixture
def elsewhere() -> Iterator[ScriptedCanvas]:
    """Another host (another port on loopback): the token must never travel there."""
    yield from scripted_server()


@pytest.fixture
async def client(canvas: ScriptedCanvas) -> AsyncIterator[CanvasClient]:
    async with CanvasClient(canvas.url, timeout=2.0) as shipped:
        yield shipped


@pytest.fixture
async def proxied(canvas_faults: FaultProxy) -> AsyncIterator[CanvasClient]:
    async with CanvasClient(canvas_faults.url, timeout=2.0) as shipped:
        yield shipped


def conf_json(conf_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": conf_id, "title": f"C{conf_id}", "context_type": "Course", "context_id": 1, **extra}


def page(base: str, ids: list[int], next_url: str | None = None, *, prefix: bool = False) -> Response:
    """A Canvas list page: Link with `rel="current"` first, then `rel="next"` when there is one."""
    body = json.dumps({"conferences": [conf_json(i) for i in ids]})
    links = [f'<{base}/api/v1/conferences?page=first>; rel="current"']
    if next_url:
        links.append(f'<{next_url}>; rel="next"')
    content = ("while(1);" if prefix else "") + body
    return Response(content, headers={"Link": ",".join(links), "Content-Type": "application/json"})


# -- pagination and parsing ----------------------------------------------------------------------


async def test_live_conferences_follows_opaque_next_links(
    canvas: ScriptedCanvas, client: CanvasClient
) -> None:
    page2 = f"{canvas.url}/api/v1/conferences?state=live&page=bookmark:WzE2LDE1XQ&per_page=100"
    # Written relative and with characters a URL library would like to re-quote: sent as written.
    page3 = '/api/v1/conferences?state=live&page=bookmark:[9,"8"]%3D%2B&per_page=100'

    def answer(request: Request) -> Response:
        bookmark = request.query_params.get("page")
        if bookmark is None:
            return page(canvas.url, [3, 2], page2)
        if bookmark == "bookmark:WzE2LDE1XQ":
            return page(canvas.url, [1], page3, prefix=True)
        return page(canvas.url, [0])

    canvas.on("/api/v1/conferences", answer)
    conferences = await client.live_conferences(TOKEN)

    assert [c.id for c in conferences] == [3, 2, 1, 0]
    assert [seen.url for seen in canvas.seen[1:]] == [page2, canvas.url + page3]
    first = parse_qs(urlsplit(canvas.seen[0].url).query)
    assert first == {"state": ["live"], "per_page": ["100"]}
    assert all(seen.authorization == f"Bearer {TOKEN}" for seen in canvas.seen)


@pytest.mark.parametrize(
    "link",
    [
        '<{next}>; rel="next"',
        '<{first}>; rel="current", <{next}>; rel="next"',
        "<{first}>; rel=current,<{next}>; rel=next",
        '<{next}>; REL="Next"',
        '<{first}>; rel="first last", <{next}>; title="p"; rel="next prev"',
    ],
    ids=["only-next", "spaced", "unquoted", "upper-case", "several-rels"],
)
async def test_next_link_is_found_in_every_link_header_shape(
    canvas: ScriptedCanvas, client: CanvasClient, link: str
) -> None:
    first = f"{canvas.url}/api/v1/conferences?page=first"
    header = link.format(first=first, next=f"{canvas.url}/api/v1/conferences?page=2")

    def answer(request: Request) -> Response:
        if request.query_params.get("page") == "2":
            return Response(json.dumps({"conferences": [conf_json(2)]}))
        return Response(json.dumps({"conferences": [conf_json(1)]}), headers={"Link": header})

    canvas.on("/api/v1/conferences", answer)
    assert [c.id for c in await client.all_conferences(TOKEN)] == [1, 2]


async def test_a_page_with_only_a_current_link_is_the_last(
    canvas: ScriptedCanvas, client: CanvasClient
) -> None:
    canvas.on("/api/v1/conferences", lambda _request: page(canvas.url, [7]))
    assert [c.id for c in await client.live_conferences(TOKEN)] == [7]
    assert canvas.hits("/api/v1/conferences") == 1


async def test_while1_prefix_is_stripped(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    canvas.respond("/api/v1/users/self", body=b'while(1);{"id": 5, "name": "Ada", "short_name": "A"}')
    user = await client.self_user(TOKEN)
    assert (user.id, user.name, user.short_name) == (5, "Ada", "A")


async def test_course_and_group_conferences_and_courses(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    canvas.respond("/api/v1/courses/4/conferences", body={"conferences": [conf_json(1)]})
    canvas.respond(
        "/api/v1/groups/9/conferences",
        body={"conferences": [conf_json(2, context_type="Group", context_id=9)]},
    )
    canvas.respond(
        "/api/v1/courses/4",
        body={"id": 4, "name": "Bio", "enrollments": [{"type": "teacher", "enrollment_state": "active"}]},
    )
    canvas.respond("/api/v1/groups/9", body={"id": 9, "name": "Team", "course_id": 4})
    canvas.respond("/api/v1/courses", body=[{"id": 4, "name": "Bio"}, {"id": 5, "name": "Chem"}])

    assert [c.id for c in await client.course_conferences(TOKEN, 4)] == [1]
    assert [c.context_type for c in await client.group_conferences(TOKEN, 9)] == ["Group"]
    assert (await client.course(TOKEN, 4)).can_manage_conferences
    assert (await client.group(TOKEN, 9)).course_id == 4
    assert [c.name for c in await client.courses(TOKEN)] == ["Bio", "Chem"]


async def test_next_link_to_another_host_is_refused(
    canvas: ScriptedCanvas, elsewhere: ScriptedCanvas, client: CanvasClient
) -> None:
    elsewhere.on("/api/v1/conferences", lambda _request: page(elsewhere.url, [2]))
    canvas.on(
        "/api/v1/conferences", lambda _r: page(canvas.url, [1], f"{elsewhere.url}/api/v1/conferences?page=2")
    )
    with pytest.raises(Transient) as caught:
        await client.live_conferences(TOKEN)
    assert elsewhere.seen == []
    assert "another host" in str(caught.value)


async def test_next_link_to_another_scheme_is_refused(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    """Same host and port, another scheme (the mirror of an https -> http downgrade)."""
    other_scheme = canvas.url.replace("http://", "https://") + "/api/v1/conferences?page=2"
    canvas.on("/api/v1/conferences", lambda _request: page(canvas.url, [1], other_scheme))
    with pytest.raises(Transient, match="another host"):
        await client.live_conferences(TOKEN)
    assert canvas.hits("/api/v1/conferences") == 1


async def test_pagination_loop_is_detected(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    loop = f"{canvas.url}/api/v1/conferences?page=bookmark:same"
    canvas.on("/api/v1/conferences", lambda _request: page(canvas.url, [1], loop))
    with pytest.raises(Transient, match="pagination loop"):
        await client.live_conferences(TOKEN)
    assert canvas.hits("/api/v1/conferences") == 2


async def test_endless_pagination_stops_after_max_pages(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    def answer(request: Request) -> Response:
        n = int(request.query_params.get("n", "0"))
        return page(canvas.url, [n], f"{canvas.url}/api/v1/conferences?n={n + 1}")

    canvas.on("/api/v1/conferences", answer)
    with pytest.raises(Transient):
        await client.live_conferences(TOKEN)
    assert canvas.hits("/api/v1/conferences") == MAX_PAGES + 1


# -- failures, canned by the fault proxy in front of the sandbox Canvas ------------------------------


def canned(status: int, body: bytes, **headers: str) -> Fault:
    return Fault("respond", path="/api/v1/conferences", status=status, body=body, headers=headers)


def errors_body(message: str) -> bytes:
    return json.dumps({"errors": [{"message": message}]}).encode()


WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (canned(401, errors_body("Invalid access token."), **WWW_AUTHENTICATE), InvalidToken),
        (canned(401, errors_body("Expired access token."), **WWW_AUTHENTICATE), InvalidToken),
        (canned(401, b'{"status": "unauthorized", "errors": [{"message": "no"}]}'), Forbidden),
        (canned(403, errors_body("forbidden")), Forbidden),
        (canvas_throttle("/api/v1/conferences"), Throttled),
        (canned(429, b"", **{"Retry-After": "7"}), Throttled),
        (canned(404, errors_body("The specified resource does not exist.")), NotFound),
        (canned(500, b'{"errors": [{"message": "An error occurred."}], "error_report_id": 1}'), Transient),
        (canned(503, b"<html>maintenance</html>"), Transient),
        (canned(302, b"<html>redirected</html>", Location="/login"), Transient),
        (canned(200, b"<html>login page</html>"), Transient),
        (canned(200, b'{"conferences": [{"id": "not-a-number"}]}'), Transient),
        (canned(422, b'{"errors": {"state": "bad"}}'), CanvasError),
    ],
    ids=["401-invalid", "401-expired", "401-no-www-authenticate", "403", "403-rate-limit", "429", "404",
         "500", "503-html", "302-html", "200-html", "200-bad-shape", "422"],
)  # fmt: skip
async def test_error_mapping(
    canvas_faults: FaultProxy, proxied: CanvasClient, fault: Fault, expected: type[CanvasError]
) -> None:
    with canvas_faults.active(fault), pytest.raises(CanvasError) as caught:
        await proxied.live_conferences(TOKEN)
    assert fault.applied == 1
    assert type(caught.value) is expected
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


async def test_invalid_token_message_comes_from_canvas(
    canvas_faults: FaultProxy, proxied: CanvasClient
) -> None:
    revoked = Fault(
        "respond",
        path="/api/v1/users/self",
        status=401,
        body=errors_body("Revoked access token."),
        headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
    )
    with canvas_faults.active(revoked), pytest.raises(InvalidToken, match="Revoked access token") as caught:
        await proxied.self_user(TOKEN)
    assert caught.value.status == 401


async def test_redirect_is_not_followed(canvas: ScriptedCanvas, client: CanvasClient) -> None:
    canvas.respond("/api/v1/courses/1/conferences", 302, b"", location=f"{canvas.url}/courses/1")
    canvas.respond("/courses/1", body={"conferences": []})
    with pytest.raises(Transient):
        await client.course_conferences(TOKEN, 1)
    assert canvas.hits("/courses/1") == 0


async def test_throttle_retry_after_header(canvas_faults: FaultProxy, proxied: CanvasClient) -> None:
    throttle = Fault("respond", path="/api/v1/users/self", status=429, headers={"Retry-After": "12"})
    with canvas_faults.active(throttle), pytest.raises(Throttled) as caught:
        await proxied.self_user(TOKEN)
    assert caught.value.retry_after == 12.0


async def test_throttle_hint_from_remaining_bucket(canvas_faults: FaultProxy, proxied: CanvasClient) -> None:
    throttle = canvas_throttle("/api/v1/users/self")
    throttle.headers["X-Rate-Limit-Remaining"] = "-30.5"
    with canvas_faults.active(throttle), pytest.raises(Throttled) as caught:
        await proxied.self_user(TOKEN)
    assert caught.value.retry_after is not None and caught.value.retry_after > 1


async def test_timeout_and_connection_error_are_transient(canvas_sandbox: Sandbox) -> None:
    proxy = FaultProxy(canvas_sandbox.url)
    try:
        async with CanvasClient(proxy.url, timeout=0.5) as slow:
            with (
                proxy.active(Fault("hang", path="/api/v1/users/self")),
                pytest.raises(Transient, match="timed out"),
            ):
                await slow.self_user(TOKEN)
        assert proxy.count("hang") == 1
    finally:
        proxy.stop()
    async with CanvasClient(f"http://127.0.0.1:{free_port()}", timeout=2.0) as nobody:
        with pytest.raises(Transient, match="connection refused"):
            await nobody.courses(TOKEN)


async def test_logs_never_contain_the_token(
    canvas: ScriptedCanvas, client: CanvasClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canvas.respond(
        "/api/v1/users/self",
        401,
        {"errors": [{"message": "Invalid access token."}]},
        **{"WWW-Authenticate": "Bearer"},
    )
    canvas.on("/api/v1/conferences", lambda _request: page(canvas.url, [1]))
    with pytest.raises(InvalidToken):
        await client.self_user(TOKEN)
    await client.live_conferences(TOKEN)
    assert caplog.records
    assert TOKEN not in caplog.text


async def test_every_answer_is_reported_with_whether_it_was_a_throttle(canvas_faults: FaultProxy) -> None:
    """The poll concurrency hears Canvas's throttles from here (bot/engine/limiter.py): a 403 "Rate Limit
    Exceeded" and a 429 are throttles, a 200 and a 404 are answers that are not."""
    heard: list[bool] = []
    async with CanvasClient(canvas_faults.url, timeout=2.0, on_answer=heard.append) as client:
        with canvas_faults.active(canvas_throttle("/api/v1/users/self")), pytest.raises(Throttled):
            await client.self_user(TOKEN)
        throttle = Fault("respond", path="/api/v1/users/self", status=429, headers={"Retry-After": "1"})
        with canvas_faults.active(throttle), pytest.raises(Throttled):
            await client.self_user(TOKEN)
        missing = Fault("respond", path="/api/v1/users/self", status=404, body=errors_body("not found"))
        with canvas_faults.active(missing), pytest.raises(NotFound):
            await client.self_user(TOKEN)
    assert heard == [True, True, False]
