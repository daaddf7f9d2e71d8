"""CanvasClient and CanvasOAuth against the sandbox Canvas over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from bot.canvas import (
    CanvasClient,
    CanvasOAuth,
    Forbidden,
    InvalidToken,
    NotFound,
    OAuthError,
    Throttled,
    Transient,
    authorize_url,
)
from bot.engine.alerts import join_url
from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import serving


@pytest.fixture
def canvas_app() -> Starlette:
    return create_canvas_app()


@pytest.fixture
def canvas_url(canvas_app: Starlette) -> Iterator[str]:
    with serving(canvas_app) as url:
        yield url


@pytest.fixture
async def control(canvas_url: str) -> AsyncIterator[Control]:
    async with httpx.AsyncClient(base_url=canvas_url) as http:
        yield Control(http)


@pytest.fixture
async def client(canvas_url: str) -> AsyncIterator[CanvasClient]:
    async with CanvasClient(canvas_url, timeout=2.0) as canvas:
        yield canvas


class Control:
    """Thin wrapper over the sandbox's `/_sandbox` control API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(f"/_sandbox{path}", json=body or {})
        response.raise_for_status()
        return response.json() if response.content else None

    async def user(self, name: str) -> tuple[int, str]:
        data = await self.post("/users", {"name": name})
        return int(data["id"]), str(data["token"])

    async def course(self, name: str) -> int:
        return int((await self.post("/courses", {"name": name}))["id"])

    async def enroll(self, course_id: int, user_id: int, kind: str = "StudentEnrollment") -> None:
        await self.post(f"/courses/{course_id}/enrollments", {"user_id": user_id, "type": kind})

    async def conference(self, course_id: int, title: str, user_ids: list[int], *, start: bool = True) -> int:
        body = {"context_type": "Course", "context_id": course_id, "title": title, "user_ids": user_ids}
        conf_id = int((await self.post("/conferences", body))["id"])
        if start:
            await self.post(f"/conferences/{conf_id}/start")
        return conf_id

    async def fault(self, kind: str, count: int = 1, seconds: float | None = None) -> None:
        body: dict[str, Any] = {"kind": kind, "count": count}
        if seconds is not None:
            body["seconds"] = seconds
        await self.post("/faults", body)


async def test_student_sees_started_conference_as_live(client: CanvasClient, control: Control) -> None:
    student, token = await control.user("Ada Student")
    course = await control.course("Biology 101")
    await control.enroll(course, student)
    live_id = await control.conference(course, "Lecture 1", [student])
    await control.conference(course, "Not yet", [student], start=False)

    me = await client.self_user(token)
    assert (me.id, me.name) == (student, "Ada Student")

    live = await client.live_conferences(token)
    assert [c.id for c in live] == [live_id]
    conf = live[0]
    assert conf.title == "Lecture 1"
    assert conf.is_live(datetime.now(UTC))
    assert (
        join_url(client.base_url, conf.context_type, conf.context_id, conf.id, served=conf.join_url)
        == f"{client.base_url}/courses/{course}/conferences/{live_id}/join"
    )

    everything = await client.course_conferences(token, course)
    assert {c.title for c in everything} == {"Lecture 1", "Not yet"}


async def test_live_list_spans_bookmark_pages(client: CanvasClient, control: Control) -> None:
    student, token = await control.user("Many")
    course = await control.course("Big course")
    await control.enroll(course, student)
    ids = {await control.conference(course, f"Room {n}", [student]) for n in range(105)}

    live = await client.live_conferences(token)
    assert {c.id for c in live} == ids
    assert len(live) == 105


async def test_one_users_canvas_cookies_never_ride_on_anothers_request(
    canvas_app: Starlette, canvas_url: str, control: Control
) -> None:
    # Canvas sets a cookie on every API answer. By host name (a cookie jar ignores cookies from an IP
    # address), so a client that kept cookies would send Ada's to Canvas with Ben's token.
    ada_id, ada = await control.user("Ada")
    ben_id, ben = await control.user("Ben")
    by_name = canvas_url.replace("127.0.0.1", "localhost")
    async with CanvasClient(by_name, timeout=2.0) as canvas:
        assert (await canvas.self_user(ada)).id == ada_id
        assert (await canvas.self_user(ben)).id == ben_id
        await canvas.live_conferences(ada)
    async with httpx.AsyncClient() as http:  # the sandbox does set the cookie: a keeping client sends it
        await http.get(f"{by_name}/api/v1/users/self", headers={"Authorization": f"Bearer {ada}"})
        await http.get(f"{by_name}/api/v1/users/self", headers={"Authorization": f"Bearer {ben}"})
    assert canvas_app.state.canvas.requests_with_cookies == 1


async def test_teacher_can_manage_student_cannot(client: CanvasClient, control: Control) -> None:
    teacher, teacher_token = await control.user("Tea Cher")
    student, student_token = await control.user("Stu Dent")
    course = await control.course("Chemistry")
    await control.enroll(course, teacher, "TeacherEnrollment")
    await control.enroll(course, student)

    assert (await client.course(teacher_token, course)).can_manage_conferences
    assert not (await client.course(student_token, course)).can_manage_conferences
    assert [c.id for c in await client.courses(teacher_token)] == [course]


async def test_unknown_course_is_not_found(client: CanvasClient, control: Control) -> None:
    _, token = await control.user("Lost")
    with pytest.raises(NotFound):
        await client.course(token, 999_999)


async def test_revoked_token_is_invalid(client: CanvasClient, control: Control) -> None:
    _, token = await control.user("Gone")
    await control.post(f"/tokens/{token}/revoke")
    with pytest.raises(InvalidToken) as caught:
        await client.live_conferences(token)
    assert token not in str(caught.value)


async def test_server_error_then_recovery(client: CanvasClient, control: Control) -> None:
    _, token = await control.user("Retry")
    await control.fault("error_500")
    with pytest.raises(Transient):
        await client.live_conferences(token)
    assert await client.live_conferences(token) == []


async def test_throttle_as_403_and_as_429(client: CanvasClient, control: Control) -> None:
    _, token = await control.user("Busy")
    await control.fault("throttle")
    with pytest.raises(Throttled) as first:
        await client.self_user(token)
    assert first.value.status == 403

    await control.post("/settings", {"throttle_status": 429})
    await control.fault("throttle")
    with pytest.raises(Throttled) as second:
        await client.self_user(token)
    assert second.value.status == 429


async def test_timeout_is_transient(canvas_url: str, control: Control) -> None:
    _, token = await control.user("Slow")
    await control.fault("timeout", seconds=5.0)
    async with CanvasClient(canvas_url, timeout=0.5) as impatient:
        with pytest.raises(Transient):
            await impatient.self_user(token)


async def test_oauth_link_refresh_and_revoke(canvas_url: str, control: Control, client: CanvasClient) -> None:
    user_id, _ = await control.user("Oauth User")
    redirect = "https://bot.test/canvas/oauth/callback"
    await control.post(
        "/developer_keys",
        {"client_id": "170000000000001", "client_secret": "s3cret", "redirect_uri": redirect},
    )
    url = authorize_url(canvas_url, "170000000000001", redirect, "xyz")
    answer = await control.http.get(url + f"&sandbox_user_id={user_id}")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]

    async with CanvasOAuth(canvas_url, "170000000000001", "s3cret") as oauth:
        grant = await oauth.exchange_code(query["code"][0], redirect)
        assert grant.user is not None and grant.user.id == user_id
        access = grant.access_token.get_secret_value()
        assert (await client.self_user(access)).id == user_id

        with pytest.raises(OAuthError) as reused:
            await oauth.exchange_code(query["code"][0], redirect)
        assert reused.value.error == "invalid_grant"

        assert grant.refresh_token is not None
        old_refresh = grant.refresh_token.get_secret_value()
        refreshed = await oauth.refresh(old_refresh)
        assert refreshed.refresh_token is not None
        assert refreshed.refresh_token.get_secret_value() == old_refresh
        new_access = refreshed.access_token.get_secret_value()
        assert (await client.self_user(new_access)).id == user_id

        await oauth.revoke(new_access)
        with pytest.raises(InvalidToken):
            await client.self_user(new_access)
        await oauth.revoke(new_access)  # already invalid: still fine

    async with CanvasOAuth(canvas_url, "170000000000001", "wrong") as bad:
        with pytest.raises(OAuthError) as caught:
            await bad.refresh(old_refresh)
        assert caught.value.error == "invalid_client"


async def test_outsider_is_forbidden_not_unlinked(client: CanvasClient, control: Control) -> None:
    _, token = await control.user("Outsider")
    course = await control.course("Private")
    with pytest.raises(Forbidden):
        await client.course_conferences(token, course)
    assert (await client.self_user(token)).name == "Outsider"


async def test_conferencing_disabled_redirect_is_transient(client: CanvasClient, control: Control) -> None:
    student, token = await control.user("Redirected")
    course = int((await control.post("/courses", {"name": "No BBB", "conferencing_disabled": True}))["id"])
    await control.enroll(course, student)
    with pytest.raises(Transient) as caught:
        await client.course_conferences(token, course)
    assert caught.value.status == 302


async def test_while1_prefixed_answers_parse(client: CanvasClient, control: Control) -> None:
    student, token = await control.user("Prefixed")
    course = await control.course("Old Canvas")
    await control.enroll(course, student)
    conf_id = await control.conference(course, "Prefixed talk", [student])
    await control.post("/settings", {"while1_prefix": True})
    assert [c.id for c in await client.live_conferences(token)] == [conf_id]
    assert (await client.self_user(token)).id == student


async def test_recordings_with_epoch_ms_and_no_playback_url(client: CanvasClient, control: Control) -> None:
    teacher, token = await control.user("Rec Teacher")
    course = await control.course("Recorded")
    await control.enroll(course, teacher, "TeacherEnrollment")
    conf_id = await control.conference(course, "Taped", [teacher])
    await control.post(f"/conferences/{conf_id}/end")
    await control.post(f"/conferences/{conf_id}/recordings", {"playback_url": False})
    await control.post(f"/conferences/{conf_id}/recordings", {"created_at_format": "iso"})

    (conf,) = [c for c in await client.course_conferences(token, course) if c.id == conf_id]
    assert not conf.is_live(datetime.now(UTC))
    assert len(conf.recordings) == 2
    for recording in conf.recordings:
        assert recording.created_at is not None and recording.created_at.tzinfo is UTC
        assert recording.best_url is not None and "/_sandbox/playback/" in recording.best_url
