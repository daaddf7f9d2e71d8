"""CanvasClient and CanvasOAuth against respx-mocked Canvas answers."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from bot.canvas import (
    MAX_PAGES,
    CanvasClient,
    CanvasError,
    CanvasOAuth,
    Forbidden,
    InvalidToken,
    NotFound,
    OAuthError,
    Throttled,
    Transient,
    authorize_url,
)

BASE = "https://canvas.test"
TOKEN = "7~t0psecrettokenvalue"


def conf_json(conf_id: int, **extra: Any) -> dict[str, Any]:
    return {"id": conf_id, "title": f"C{conf_id}", "context_type": "Course", "context_id": 1, **extra}


def page(ids: list[int], next_url: str | None = None, *, prefix: bool = False) -> httpx.Response:
    body = json.dumps({"conferences": [conf_json(i) for i in ids]})
    links = [f'<{BASE}/api/v1/conferences?page=first>; rel="current"']
    if next_url:
        links.append(f'<{next_url}>; rel="next"')
    content = ("while(1);" if prefix else "") + body
    return httpx.Response(200, text=content, headers={"Link": ",".join(links)})


@pytest.fixture
async def client() -> AsyncIterator[CanvasClient]:
    """respx intercepts httpx's default transport, so the unit tests give the client one explicitly;
    the aiohttp transport the bot uses by default is exercised against the sandbox Canvas."""
    async with httpx.AsyncClient(follow_redirects=False) as http, CanvasClient(BASE, http=http) as canvas:
        yield canvas


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


async def test_live_conferences_follows_opaque_next_links(
    client: CanvasClient, mock: respx.MockRouter
) -> None:
    page2 = f"{BASE}/api/v1/conferences?state=live&page=bookmark:WzE2LDE1XQ&per_page=100"
    page3 = f"{BASE}/api/v1/conferences?state=live&page=bookmark:WzksOF0&per_page=100"
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        query = parse_qs(urlsplit(str(request.url)).query)
        bookmark = query.get("page", [None])[0]
        if bookmark is None:
            return page([3, 2], page2)
        if bookmark == "bookmark:WzE2LDE1XQ":
            return page([1], page3, prefix=True)
        return page([0])

    mock.get("/api/v1/conferences").mock(side_effect=answer)
    conferences = await client.live_conferences(TOKEN)

    assert [c.id for c in conferences] == [3, 2, 1, 0]
    assert [str(r.url) for r in seen[1:]] == [page2, page3]
    first = parse_qs(urlsplit(str(seen[0].url)).query)
    assert first == {"state": ["live"], "per_page": ["100"]}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in seen)


async def test_while1_prefix_is_stripped(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/users/self").respond(200, text='while(1);{"id": 5, "name": "Ada", "short_name": "A"}')
    user = await client.self_user(TOKEN)
    assert (user.id, user.name, user.short_name) == (5, "Ada", "A")


async def test_course_and_group_conferences_and_courses(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/courses/4/conferences").respond(json={"conferences": [conf_json(1)]})
    mock.get("/api/v1/groups/9/conferences").respond(
        json={"conferences": [conf_json(2, context_type="Group", context_id=9)]}
    )
    mock.get("/api/v1/courses/4").respond(
        json={"id": 4, "name": "Bio", "enrollments": [{"type": "teacher", "enrollment_state": "active"}]}
    )
    mock.get("/api/v1/groups/9").respond(json={"id": 9, "name": "Team", "course_id": 4})
    mock.get("/api/v1/courses").respond(json=[{"id": 4, "name": "Bio"}, {"id": 5, "name": "Chem"}])

    assert [c.id for c in await client.course_conferences(TOKEN, 4)] == [1]
    assert [c.context_type for c in await client.group_conferences(TOKEN, 9)] == ["Group"]
    assert (await client.course(TOKEN, 4)).can_manage_conferences
    assert (await client.group(TOKEN, 9)).course_id == 4
    assert [c.name for c in await client.courses(TOKEN)] == ["Bio", "Chem"]


async def test_next_link_to_foreign_host_is_refused(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/conferences").mock(
        return_value=page([1], "https://evil.test/api/v1/conferences?page=2")
    )
    evil = mock.get("https://evil.test/api/v1/conferences")
    with pytest.raises(Transient) as caught:
        await client.live_conferences(TOKEN)
    assert not evil.called
    assert "another host" in str(caught.value)


async def test_next_link_downgraded_to_http_is_refused(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/conferences").mock(
        return_value=page([1], "http://canvas.test/api/v1/conferences?page=2")
    )
    with pytest.raises(Transient):
        await client.live_conferences(TOKEN)


async def test_pagination_loop_is_detected(client: CanvasClient, mock: respx.MockRouter) -> None:
    loop = f"{BASE}/api/v1/conferences?page=bookmark:same"
    route = mock.get("/api/v1/conferences").mock(return_value=page([1], loop))
    with pytest.raises(Transient):
        await client.live_conferences(TOKEN)
    assert route.call_count == 2


async def test_endless_pagination_stops_after_max_pages(client: CanvasClient, mock: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("n", "0"))
        return page([n], f"{BASE}/api/v1/conferences?n={n + 1}")

    route = mock.get("/api/v1/conferences").mock(side_effect=answer)
    with pytest.raises(Transient):
        await client.live_conferences(TOKEN)
    assert route.call_count == MAX_PAGES + 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(
                401,
                json={"errors": [{"message": "Invalid access token."}]},
                headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
            ),
            InvalidToken,
        ),
        (
            httpx.Response(
                401,
                json={"errors": [{"message": "Expired access token."}]},
                headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
            ),
            InvalidToken,
        ),
        (httpx.Response(401, json={"status": "unauthorized", "errors": [{"message": "no"}]}), Forbidden),
        (httpx.Response(403, json={"errors": [{"message": "forbidden"}]}), Forbidden),
        (httpx.Response(403, text="403 Forbidden (Rate Limit Exceeded)"), Throttled),
        (httpx.Response(429, headers={"Retry-After": "7"}), Throttled),
        (
            httpx.Response(404, json={"errors": [{"message": "The specified resource does not exist."}]}),
            NotFound,
        ),
        (
            httpx.Response(500, json={"errors": [{"message": "An error occurred."}], "error_report_id": 1}),
            Transient,
        ),
        (httpx.Response(503, text="<html>maintenance</html>"), Transient),
        (
            httpx.Response(302, text="<html>redirected</html>", headers={"Location": f"{BASE}/login"}),
            Transient,
        ),
        (httpx.Response(200, text="<html>login page</html>"), Transient),
        (httpx.Response(200, json={"conferences": [{"id": "not-a-number"}]}), Transient),
        (httpx.Response(422, json={"errors": {"state": "bad"}}), CanvasError),
    ],
    ids=[
        "401-invalid",
        "401-expired",
        "401-no-www-authenticate",
        "403",
        "403-rate-limit",
        "429",
        "404",
        "500",
        "503-html",
        "302-html",
        "200-html",
        "200-bad-shape",
        "422",
    ],
)
async def test_error_mapping(
    client: CanvasClient, mock: respx.MockRouter, response: httpx.Response, expected: type[CanvasError]
) -> None:
    mock.get("/api/v1/conferences").mock(return_value=response)
    with pytest.raises(CanvasError) as caught:
        await client.live_conferences(TOKEN)
    assert type(caught.value) is expected
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


async def test_invalid_token_message_comes_from_canvas(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/users/self").respond(
        401,
        json={"errors": [{"message": "Revoked access token."}]},
        headers={"WWW-Authenticate": 'Bearer realm="canvas-lms"'},
    )
    with pytest.raises(InvalidToken, match="Revoked access token") as caught:
        await client.self_user(TOKEN)
    assert caught.value.status == 401


async def test_redirect_is_not_followed(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/courses/1/conferences").respond(302, headers={"Location": f"{BASE}/courses/1"})
    target = mock.get("/courses/1")
    with pytest.raises(Transient):
        await client.course_conferences(TOKEN, 1)
    assert not target.called


async def test_throttle_retry_after_header(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/users/self").respond(429, headers={"Retry-After": "12"})
    with pytest.raises(Throttled) as caught:
        await client.self_user(TOKEN)
    assert caught.value.retry_after == 12.0


async def test_throttle_hint_from_remaining_bucket(client: CanvasClient, mock: respx.MockRouter) -> None:
    mock.get("/api/v1/users/self").respond(
        403, text="403 Forbidden (Rate Limit Exceeded)", headers={"X-Rate-Limit-Remaining": "-30.5"}
    )
    with pytest.raises(Throttled) as caught:
        await client.self_user(TOKEN)
    assert caught.value.retry_after is not None and caught.value.retry_after > 1


async def test_timeout_and_connection_error_are_transient(
    client: CanvasClient, mock: respx.MockRouter
) -> None:
    mock.get("/api/v1/users/self").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(Transient, match="timed out"):
        await client.self_user(TOKEN)
    mock.get("/api/v1/courses").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(Transient):
        await client.courses(TOKEN)


async def test_shared_http_client_is_not_closed() -> None:
    http = httpx.AsyncClient()
    async with CanvasClient(BASE, http=http):
        pass
    assert not http.is_closed
    await http.aclose()


# -- OAuth ---------------------------------------------------------------------------------------


def test_authorize_url_carries_all_parameters() -> None:
    url = authorize_url(
        BASE + "/",
        "10000000000001",
        "https://bot.test/canvas/oauth/callback",
        "st4te",
        ["url:GET|/api/v1/conferences"],
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{BASE}/login/oauth2/auth"
    assert parse_qs(parts.query) == {
        "client_id": ["10000000000001"],
        "response_type": ["code"],
        "redirect_uri": ["https://bot.test/canvas/oauth/callback"],
        "state": ["st4te"],
        "scope": ["url:GET|/api/v1/conferences"],
    }
    assert "scope" not in authorize_url(BASE, "1", "https://r", "s", None)


@pytest.fixture
async def oauth() -> AsyncIterator[CanvasOAuth]:
    async with CanvasOAuth(BASE, "cid", "csecret") as client:
        yield client


async def test_exchange_code(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.post("/login/oauth2/token").respond(
        json={
            "access_token": "1~access",
            "token_type": "Bearer",
            "refresh_token": "1~refresh",
            "expires_in": 3600,
            "user": {"id": 8, "name": "Ada"},
        }
    )
    grant = await oauth.exchange_code("thecode", "https://bot.test/cb")
    assert grant.access_token.get_secret_value() == "1~access"
    assert grant.refresh_token is not None and grant.refresh_token.get_secret_value() == "1~refresh"
    assert grant.user is not None and grant.user.id == 8
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["grant_type"] == ["authorization_code"]
    assert form["code"] == ["thecode"] and form["redirect_uri"] == ["https://bot.test/cb"]
    assert form["client_id"] == ["cid"] and form["client_secret"] == ["csecret"]
    assert "1~access" not in repr(grant)
    assert "csecret" not in repr(oauth)


async def test_refresh_keeps_old_refresh_token(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    mock.post("/login/oauth2/token").respond(
        json={
            "access_token": "1~new",
            "token_type": "Bearer",
            "expires_in": 3600,
            "user": {"id": 8, "name": "A"},
        }
    )
    grant = await oauth.refresh("1~oldrefresh")
    assert grant.access_token.get_secret_value() == "1~new"
    assert grant.refresh_token is not None and grant.refresh_token.get_secret_value() == "1~oldrefresh"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "authorization_code not found"},
            "invalid_grant",
        ),
        (400, {"error": "invalid_request", "error_description": "missing code"}, "invalid_request"),
        (401, {"error": "invalid_client", "error_description": "unknown client"}, "invalid_client"),
    ],
)
async def test_token_endpoint_errors(
    oauth: CanvasOAuth, mock: respx.MockRouter, status: int, body: dict[str, str], error: str
) -> None:
    mock.post("/login/oauth2/token").respond(status, json=body)
    with pytest.raises(OAuthError) as caught:
        await oauth.exchange_code("code", "https://bot.test/cb")
    assert caught.value.error == error
    assert caught.value.status == status
    assert "csecret" not in str(caught.value)


async def test_token_endpoint_outage_is_transient(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.post("/login/oauth2/token")
    route.respond(502, text="bad gateway")
    with pytest.raises(Transient):
        await oauth.refresh("1~r")
    route.mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(Transient):
        await oauth.refresh("1~r")


async def test_revoke(oauth: CanvasOAuth, mock: respx.MockRouter) -> None:
    route = mock.delete("/login/oauth2/token")
    route.respond(200, json={})
    await oauth.revoke("1~gone")
    assert route.calls.last.request.headers["Authorization"] == "Bearer 1~gone"
    route.respond(
        401, json={"errors": [{"message": "Invalid access token."}]}, headers={"WWW-Authenticate": "Bearer"}
    )
    await oauth.revoke("1~gone")
    route.respond(500, json={})
    with pytest.raises(Transient):
        await oauth.revoke("1~gone")


async def test_logs_never_contain_the_token(
    client: CanvasClient, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mock.get("/api/v1/users/self").respond(
        401, json={"errors": [{"message": "Invalid access token."}]}, headers={"WWW-Authenticate": "Bearer"}
    )
    mock.get("/api/v1/conferences").mock(return_value=page([1]))
    with pytest.raises(InvalidToken):
        await client.self_user(TOKEN)
    await client.live_conferences(TOKEN)
    assert caplog.records
    assert TOKEN not in caplog.text
