"""The sandbox Canvas over real HTTP: the Canvas behaviours confbot's client and tests rely on."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.sandbox.canvas import CanvasState, create_canvas_app
from bot.sandbox.server import serving

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class Sandbox:
    """Thin helper over the control API so tests read as scenarios."""

    def __init__(self, client: httpx.Client, state: CanvasState) -> None:
        self.client = client
        self.state = state

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.post(f"/_sandbox{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    def user(self, name: str) -> tuple[int, str]:
        made = self.post("/users", {"name": name})
        return made["id"], made["token"]

    def course(self, name: str = "Biology 101", **extra: Any) -> int:
        course_id: int = self.post("/courses", {"name": name, **extra})["id"]
        return course_id

    def enroll(self, course_id: int, user_id: int, kind: str = "StudentEnrollment") -> None:
        self.post(f"/courses/{course_id}/enrollments", {"user_id": user_id, "type": kind})

    def conference(self, course_id: int, user_ids: list[int], title: str = "Lecture", **extra: Any) -> Any:
        body = {"context_type": "Course", "context_id": course_id, "title": title, "user_ids": user_ids}
        return self.post("/conferences", {"conference_type": "BigBlueButton", **body, **extra})

    def start(self, conference_id: int, hours_ago: float = 0.0) -> Any:
        at = datetime.now(UTC) + timedelta(seconds=self.state.clock.offset) - timedelta(hours=hours_ago)
        return self.post(f"/conferences/{conference_id}/start", {"at": at.isoformat()})

    def api(self, path: str, token: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    state = CanvasState()
    with serving(create_canvas_app(state)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Sandbox(client, state)


def titles(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["title"] for c in response.json()["conferences"]]


def links(response: httpx.Response) -> dict[str, str]:
    return {link["rel"]: str(link["url"]) for link in response.links.values()}


def test_live_means_started_within_24_hours_and_not_ended(sandbox: Sandbox) -> None:
    student, token = sandbox.user("Ada Lovelace")
    course = sandbox.course()
    sandbox.enroll(course, student)
    recent = sandbox.conference(course, [student], "recent")
    zombie = sandbox.conference(course, [student], "zombie")
    sandbox.conference(course, [student], "never started")
    ended = sandbox.conference(course, [student], "ended")
    sandbox.start(recent["id"], hours_ago=23)
    sandbox.start(zombie["id"], hours_ago=25)
    sandbox.start(ended["id"], hours_ago=1)
    sandbox.post(f"/conferences/{ended['id']}/end")

    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == ["recent"]
    assert sorted(titles(sandbox.api("/api/v1/conferences", token))) == [
        "ended",
        "never started",
        "recent",
        "zombie",
    ]

    sandbox.post("/clock", {"advance_seconds": 2 * 3600})
    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == []


def test_for_user_lists_only_own_conferences_in_active_contexts(sandbox: Sandbox) -> None:
    student, token = sandbox.user("Ada Lovelace")
    classmate, _ = sandbox.user("Grace Hopper")
    course = sandbox.course()
    other_course = sandbox.course("History")
    sandbox.enroll(course, student)
    sandbox.enroll(course, classmate)
    for conference in (
        sandbox.conference(course, [student], "mine"),
        sandbox.conference(course, [classmate], "classmate's"),
        sandbox.conference(other_course, [student], "not enrolled there"),
    ):
        sandbox.start(conference["id"])
    group = sandbox.post("/groups", {"name": "Team A", "course_id": course, "user_ids": [student]})
    group_conference = sandbox.post(
        "/conferences",
        {"context_type": "Group", "context_id": group["id"], "title": "team call", "user_ids": [student]},
    )
    sandbox.start(group_conference["id"])

    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == ["team call", "mine"]
    assert group_conference["url"] == f"/groups/{group['id']}/conferences/{group_conference['id']}"


def test_course_index_teacher_sees_all_student_only_own(sandbox: Sandbox) -> None:
    teacher, teacher_token = sandbox.user("Tess Teacher")
    student, student_token = sandbox.user("Sam Student")
    _, outsider_token = sandbox.user("Olive Outsider")
    course = sandbox.course()
    sandbox.enroll(course, teacher, "TeacherEnrollment")
    sandbox.enroll(course, student)
    sandbox.conference(course, [teacher, student], "everyone")
    sandbox.conference(course, [teacher], "staff only")

    path = f"/api/v1/courses/{course}/conferences"
    assert titles(sandbox.api(path, teacher_token)) == ["staff only", "everyone"]
    assert titles(sandbox.api(path, student_token)) == ["everyone"]
    assert titles(sandbox.api(path, teacher_token, state="live")) == ["staff only", "everyone"]

    denied = sandbox.api(path, outsider_token)
    assert denied.status_code == 401
    assert "WWW-Authenticate" not in denied.headers
    assert denied.json()["status"] == "unauthorized"

    missing = sandbox.api("/api/v1/courses/999999999/conferences", teacher_token)
    assert missing.status_code == 404
    assert missing.json() == {"errors": [{"message": "The specified resource does not exist."}]}


def test_course_with_conferencing_disabled_answers_html_redirect(sandbox: Sandbox) -> None:
    teacher, token = sandbox.user("Tess Teacher")
    course = sandbox.course(conferencing_disabled=True)
    sandbox.enroll(course, teacher, "TeacherEnrollment")
    response = sandbox.client.get(
        f"/api/v1/courses/{course}/conferences",
        headers={"Authorization": f"Bearer {token}"},
        follow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["location"].endswith(f"/courses/{course}")


def test_courses_list_shows_enrollment_roles(sandbox: Sandbox) -> None:
    user, token = sandbox.user("Tia Assistant")
    taught = sandbox.course("Chemistry")
    studied = sandbox.course("Physics")
    sandbox.enroll(taught, user, "TaEnrollment")
    sandbox.enroll(studied, user)

    courses = sandbox.api("/api/v1/courses", token).json()
    roles = {c["name"]: c["enrollments"][0] for c in courses}
    assert roles["Chemistry"]["type"] == "ta"
    assert roles["Physics"] == roles["Physics"] | {"type": "student", "enrollment_state": "active"}
    assert sandbox.api(f"/api/v1/courses/{taught}", token).json()["name"] == "Chemistry"
    me = sandbox.api("/api/v1/users/self", token).json()
    assert me == me | {"id": user, "name": "Tia Assistant", "sortable_name": "Assistant, Tia"}


def test_bookmark_pagination_follows_next_links_without_last(sandbox: Sandbox) -> None:
    student, token = sandbox.user("Ada Lovelace")
    course = sandbox.course()
    sandbox.enroll(course, student)
    for index in range(25):
        sandbox.start(sandbox.conference(course, [student], f"c{index:02d}")["id"])

    seen: list[str] = []
    sizes = []
    response = sandbox.api("/api/v1/conferences", token, state="live", per_page=10)
    while True:
        page = titles(response)
        seen += page
        sizes.append(len(page))
        rels = links(response)
        assert "current" in rels and "last" not in rels
        if "next" not in rels:
            break
        assert parse_qs(urlsplit(rels["next"]).query)["page"][0].startswith("bookmark:")
        response = sandbox.client.get(rels["next"], headers={"Authorization": f"Bearer {token}"})

    assert sizes == [10, 10, 5]
    assert seen == [f"c{index:02d}" for index in reversed(range(25))]


def test_course_index_uses_numbered_pages_with_first_and_last(sandbox: Sandbox) -> None:
    teacher, token = sandbox.user("Tess Teacher")
    course = sandbox.course()
    sandbox.enroll(course, teacher, "TeacherEnrollment")
    for index in range(12):
        sandbox.conference(course, [teacher], f"c{index}")
    response = sandbox.api(f"/api/v1/courses/{course}/conferences", token, per_page=5, page=2)
    assert len(titles(response)) == 5
    rels = links(response)
    assert {"current", "next", "prev", "first", "last"} <= set(rels)
    assert parse_qs(urlsplit(rels["last"]).query)["page"] == ["3"]


def test_bad_tokens_get_401_with_www_authenticate(sandbox: Sandbox) -> None:
    user, token = sandbox.user("Ada Lovelace")

    invalid = sandbox.api("/api/v1/users/self", "1~not-a-token")
    assert invalid.status_code == 401
    assert invalid.headers["WWW-Authenticate"] == 'Bearer realm="canvas-lms"'
    assert invalid.json() == {"errors": [{"message": "Invalid access token."}]}

    anonymous = sandbox.client.get("/api/v1/users/self")
    assert anonymous.status_code == 401
    assert "WWW-Authenticate" in anonymous.headers
    assert anonymous.json()["status"] == "unauthenticated"

    by_param = sandbox.client.get("/api/v1/users/self", params={"access_token": token})
    assert by_param.json()["id"] == user

    sandbox.post(f"/tokens/{token}/revoke")
    assert sandbox.api("/api/v1/users/self", token).status_code == 401
    second = sandbox.post("/tokens", {"user_id": user})["token"]
    assert sandbox.api("/api/v1/users/self", second).status_code == 200


@pytest.mark.parametrize("status", [403, 429])
def test_throttled_token_is_refused_until_the_bucket_drains(sandbox: Sandbox, status: int) -> None:
    _, token = sandbox.user("Busy Bee")
    _, other = sandbox.user("Calm Cat")
    sandbox.post("/settings", {"throttle_status": status, "request_cost": 250})

    codes = [sandbox.api("/api/v1/users/self", token).status_code for _ in range(4)]
    assert codes == [200, 200, 200, status]
    refused = sandbox.api("/api/v1/users/self", token)
    assert refused.status_code == status
    assert refused.headers["content-type"].startswith("text/plain")
    assert "X-Rate-Limit-Remaining" in refused.headers and "X-Request-Cost" in refused.headers
    if status == 403:
        assert refused.text == "403 Forbidden (Rate Limit Exceeded)"
    else:
        assert int(refused.headers["Retry-After"]) >= 1

    assert sandbox.api("/api/v1/users/self", other).status_code == 200
    sandbox.post("/clock", {"advance_seconds": 120})
    assert sandbox.api("/api/v1/users/self", token).status_code == 200


def test_every_api_response_reports_rate_limit_headers(sandbox: Sandbox) -> None:
    _, token = sandbox.user("Ada Lovelace")
    response = sandbox.api("/api/v1/conferences", token)
    assert float(response.headers["X-Rate-Limit-Remaining"]) > 0
    assert float(response.headers["X-Request-Cost"]) >= 0


def test_faults_fail_the_next_matching_requests_then_recover(sandbox: Sandbox) -> None:
    _, token = sandbox.user("Ada Lovelace")
    _, other = sandbox.user("Grace Hopper")
    sandbox.post("/faults", {"kind": "error_500", "count": 2, "token": token})

    assert sandbox.api("/api/v1/users/self", other).status_code == 200
    failures = [sandbox.api("/api/v1/users/self", token) for _ in range(2)]
    assert [f.status_code for f in failures] == [500, 500]
    body = failures[0].json()
    assert body["errors"] == [{"message": "An error occurred.", "error_code": "internal_server_error"}]
    assert isinstance(body["error_report_id"], int)
    assert sandbox.api("/api/v1/users/self", token).status_code == 200

    sandbox.post("/faults", {"kind": "throttle", "count": 1, "path_prefix": "/api/v1/conferences"})
    assert sandbox.api("/api/v1/users/self", token).status_code == 200
    assert sandbox.api("/api/v1/conferences", token).status_code == 403

    sandbox.post("/faults", {"kind": "delay", "count": 1, "seconds": 0.05})
    assert sandbox.api("/api/v1/users/self", token).status_code == 200

    sandbox.post("/faults", {"kind": "timeout", "count": 1, "seconds": 30})
    with pytest.raises(httpx.ReadTimeout):
        sandbox.client.get("/api/v1/users/self", headers={"Authorization": f"Bearer {token}"}, timeout=0.3)
    assert sandbox.api("/api/v1/users/self", token).status_code == 200

    sandbox.post("/faults", {"kind": "error_500", "count": 5})
    assert sandbox.client.delete("/_sandbox/faults").status_code == 200
    assert sandbox.api("/api/v1/users/self", token).status_code == 200

    counts = sandbox.client.get("/_sandbox/requests").json()
    assert counts["by_token"][token] == 9
    assert counts["total"] == 10
    sandbox.post("/requests/reset")
    assert sandbox.client.get("/_sandbox/requests").json() == {"by_token": {}, "total": 0}


def test_conference_json_matches_canvas_shapes(sandbox: Sandbox) -> None:
    student, token = sandbox.user("Ada Lovelace")
    course = sandbox.course()
    sandbox.enroll(course, student)
    conference = sandbox.conference(course, [student], "Office hours", long_running=True)
    sandbox.start(conference["id"])
    recording = sandbox.post(f"/conferences/{conference['id']}/recordings", {"duration_minutes": 30})
    assert isinstance(recording["created_at"], int)

    listed = sandbox.api("/api/v1/conferences", token, state="live").json()["conferences"][0]
    assert listed["join_url"] is None
    assert listed["url"] == f"/courses/{course}/conferences/{conference['id']}"
    assert listed["duration"] is None and listed["long_running"] is True
    assert ISO_Z.match(listed["started_at"]) and listed["ended_at"] is None
    assert listed["attendees"] == [student] and listed["users"] == [student]
    assert listed["context_type"] == "Course" and listed["context_id"] == course
    assert listed["id"] >= 1000
    (played,) = listed["recordings"]
    assert isinstance(played["created_at"], int)
    assert played["playback_formats"][0]["type"] == "presentation"

    page = sandbox.client.get(f"{listed['url']}/join")
    assert page.status_code == 200 and "Office hours" in page.text


def test_while1_prefix_wraps_json_bodies(sandbox: Sandbox) -> None:
    _, token = sandbox.user("Ada Lovelace")
    sandbox.post("/settings", {"while1_prefix": True})
    assert sandbox.api("/api/v1/users/self", token).text.startswith("while(1);{")


def _authorize(sandbox: Sandbox, redirect_uri: str = "https://bot.example/cb") -> str:
    response = sandbox.client.get(
        "/login/oauth2/auth",
        params={
            "client_id": "key1",
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": "xyz",
            "scope": "url:GET|/api/v1/conferences",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


def _token(sandbox: Sandbox, **form: str) -> httpx.Response:
    return sandbox.client.post(
        "/login/oauth2/token", data={"client_id": "key1", "client_secret": "s3cret", **form}
    )


def test_oauth_code_flow_refresh_and_revoke(sandbox: Sandbox) -> None:
    user, _ = sandbox.user("Ada Lovelace")
    sandbox.post(
        "/developer_keys",
        {"client_id": "key1", "client_secret": "s3cret", "redirect_uri": "https://bot.example/cb"},
    )
    sandbox.post("/login", {"user_id": user})
    code = _authorize(sandbox)

    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": "https://bot.example/cb"}
    issued = _token(sandbox, **grant).json()
    assert issued["token_type"] == "Bearer" and issued["expires_in"] == 3600
    assert issued["user"]["id"] == user and issued["refresh_token"]
    assert sandbox.api("/api/v1/users/self", issued["access_token"]).status_code == 200

    reused = _token(sandbox, **grant)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    refreshed = _token(sandbox, grant_type="refresh_token", refresh_token=issued["refresh_token"]).json()
    assert "refresh_token" not in refreshed
    assert refreshed["user"]["id"] == user and refreshed["expires_in"] == 3600
    assert sandbox.api("/api/v1/users/self", refreshed["access_token"]).status_code == 200

    sandbox.post("/clock", {"advance_seconds": 3601})
    expired = sandbox.api("/api/v1/users/self", refreshed["access_token"])
    assert expired.status_code == 401
    assert expired.json() == {"errors": [{"message": "Expired access token."}]}

    again = _token(sandbox, grant_type="refresh_token", refresh_token=issued["refresh_token"]).json()
    revoked = sandbox.client.delete(
        "/login/oauth2/token", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert revoked.status_code == 200 and revoked.json() == {}
    assert sandbox.api("/api/v1/users/self", again["access_token"]).status_code == 401
    after = _token(sandbox, grant_type="refresh_token", refresh_token=issued["refresh_token"])
    assert after.status_code == 400
    assert after.json() == {"error": "invalid_request", "error_description": "refresh_token not found"}


def test_oauth_rejects_expired_codes_bad_clients_and_bad_redirects(sandbox: Sandbox) -> None:
    user, _ = sandbox.user("Ada Lovelace")
    sandbox.post(
        "/developer_keys",
        {"client_id": "key1", "client_secret": "s3cret", "redirect_uri": "https://bot.example/cb"},
    )
    sandbox.post("/login", {"user_id": user})

    code = _authorize(sandbox)
    sandbox.post("/clock", {"advance_seconds": 601})
    late = _token(sandbox, grant_type="authorization_code", code=code, redirect_uri="https://bot.example/cb")
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"

    code = _authorize(sandbox)
    wrong_secret = sandbox.client.post(
        "/login/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "https://bot.example/cb"},
        headers={"Authorization": "Basic " + base64.b64encode(b"key1:nope").decode()},
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    basic = sandbox.client.post(
        "/login/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": "https://bot.example/cb"},
        headers={"Authorization": "Basic " + base64.b64encode(b"key1:s3cret").decode()},
    )
    assert basic.status_code == 200

    assert _token(sandbox).json()["error"] == "invalid_request"
    unknown = sandbox.client.get(
        "/login/oauth2/auth",
        params={"client_id": "nope", "response_type": "code", "redirect_uri": "https://bot.example/cb"},
    )
    assert unknown.status_code == 400
    elsewhere = sandbox.client.get(
        "/login/oauth2/auth",
        params={"client_id": "key1", "response_type": "code", "redirect_uri": "https://evil.example/cb"},
    )
    assert elsewhere.status_code == 400


def test_bulk_users_get_working_tokens(sandbox: Sandbox) -> None:
    made = sandbox.post("/bulk_users", {"count": 50, "prefix": "bench"})["users"]
    assert len({u["token"] for u in made}) == 50
    me = sandbox.api("/api/v1/users/self", made[-1]["token"]).json()
    assert me["id"] == made[-1]["id"]


def test_a_restart_keeps_started_at_and_a_day_later_leaves_the_live_scope(sandbox: Sandbox) -> None:
    """Canvas sets started_at once (`started_at ||= now`); restart only clears ended_at. So a room
    restarted the same day is live again with its first start, and one reused after a day never is."""
    student, token = sandbox.user("Ada")
    course = sandbox.course()
    sandbox.enroll(course, student)
    lecture = sandbox.conference(course, [student], "Lecture")
    first = sandbox.start(lecture["id"], hours_ago=2)["started_at"]
    sandbox.post(f"/conferences/{lecture['id']}/end")
    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == []

    again = sandbox.post(f"/conferences/{lecture['id']}/start")  # the host joins again
    assert again["started_at"] == first and again["ended_at"] is None
    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == ["Lecture"]

    sandbox.post(f"/conferences/{lecture['id']}/end")
    sandbox.state.clock.advance(3 * 24 * 3600)  # day three: reused again
    restarted = sandbox.post(f"/conferences/{lecture['id']}/restart")
    assert restarted["started_at"] == first and restarted["ended_at"] is None
    assert titles(sandbox.api("/api/v1/conferences", token, state="live")) == []
    full = sandbox.api("/api/v1/conferences", token).json()["conferences"]
    assert [(c["title"], c["ended_at"]) for c in full] == [("Lecture", None)]


def test_scheduled_times_follow_canvas_defaults_and_move(sandbox: Sandbox) -> None:
    student, token = sandbox.user("Ada")
    course = sandbox.course()
    sandbox.enroll(course, student)
    planned = sandbox.conference(course, [student], "Planned", start_at="2026-12-07T15:00:00Z", duration=90)
    assert (planned["start_at"], planned["end_at"]) == ("2026-12-07T15:00:00Z", "2026-12-07T16:30:00Z")
    moved = sandbox.post(f"/conferences/{planned['id']}/schedule", {"start_at": "2026-12-07T16:00:00Z"})
    assert (moved["start_at"], moved["end_at"]) == ("2026-12-07T16:00:00Z", "2026-12-07T17:30:00Z")

    adhoc = sandbox.conference(course, [student], "Ad hoc", duration=30)
    assert adhoc["start_at"] is None and adhoc["end_at"] is None
    started = sandbox.start(adhoc["id"])  # infer_conference_details: start_at ||= started_at
    assert started["start_at"] == started["started_at"]

    assert sandbox.client.delete(f"/_sandbox/conferences/{planned['id']}").status_code == 200
    assert titles(sandbox.api("/api/v1/conferences", token)) == ["Ad hoc"]
