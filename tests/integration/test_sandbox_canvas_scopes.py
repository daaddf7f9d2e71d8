"""The sandbox Canvas enforces developer key scopes as Canvas does (over loopback HTTP).

What the bot relies on: an authorize request naming a scope the key lacks comes back to the redirect URI
as `error=invalid_scope` with the scopes named; a token outside its scopes gets 401 "Insufficient scopes
on access token." without WWW-Authenticate (so it is not mistaken for a dead token); a key without
"Enforce Scopes" ignores them; removing a scope from a key destroys its tokens.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.oauth_support import REDIRECT_URI
from tests.support import CanvasWorld

CLIENT_ID, SECRET = "10000000000042", "scoped-secret"
SELF = "url:GET|/api/v1/users/:id"
CONFERENCES = "url:GET|/api/v1/conferences"
COURSE_CONFERENCES = "url:GET|/api/v1/courses/:course_id/conferences"


def _key(canvas: CanvasWorld, scopes: list[str], *, enforce: bool = True) -> None:
    canvas.canvas.post(
        "/_sandbox/developer_keys",
        {
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "redirect_uri": REDIRECT_URI,
            "scopes": scopes,
            "require_scopes": enforce,
        },
    )


def _authorize(canvas: CanvasWorld, user_id: int, scope: str | None) -> httpx.Response:
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "state": "s1",
        "sandbox_user_id": str(user_id),
    }
    if scope is not None:
        params["scope"] = scope
    return httpx.get(canvas.canvas.url + "/login/oauth2/auth", params=params, follow_redirects=False)


def _token(canvas: CanvasWorld, user_id: int, scope: str | None) -> str:
    approved = _authorize(canvas, user_id, scope)
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    answer = httpx.post(
        canvas.canvas.url + "/login/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
        },
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _get(canvas: CanvasWorld, token: str, path: str, method: str = "GET") -> httpx.Response:
    return httpx.request(method, canvas.canvas.url + path, headers={"Authorization": f"Bearer {token}"})


def test_a_token_answers_only_within_the_scopes_it_was_approved_with(canvas: CanvasWorld) -> None:
    ada = canvas.user("Ada")
    course = canvas.course("Biology")
    canvas.enroll(course["id"], ada["id"])
    _key(canvas, [SELF, CONFERENCES, COURSE_CONFERENCES])
    token = _token(canvas, ada["id"], f"{SELF} {CONFERENCES}")

    assert _get(canvas, token, "/api/v1/users/self").status_code == 200
    assert _get(canvas, token, "/api/v1/conferences").status_code == 200
    assert _get(canvas, token, "/api/v1/users/self", "HEAD").status_code == 200  # HEAD is read as GET

    refused = _get(canvas, token, f"/api/v1/courses/{course['id']}/conferences")
    assert refused.status_code == 401
    assert refused.json() == {"errors": [{"message": "Insufficient scopes on access token."}]}
    assert "www-authenticate" not in refused.headers
    # Canvas checks scopes before it looks the resource up: an unknown course is refused the same way.
    assert _get(canvas, token, "/api/v1/courses/0/conferences").status_code == 401


def test_asking_for_a_scope_the_key_lacks_returns_invalid_scope_to_the_redirect_uri(
    canvas: CanvasWorld,
) -> None:
    ada = canvas.user("Ada")
    _key(canvas, [SELF])

    refused = _authorize(canvas, ada["id"], f"{SELF} {CONFERENCES} {COURSE_CONFERENCES}")

    assert refused.status_code == 302
    location = refused.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_scope"]
    assert query["error_description"][0].endswith(f"not granted: {CONFERENCES} and {COURSE_CONFERENCES}")
    assert "code" not in query and "state" not in query  # Canvas appends only the error
    assert parse_qs(urlsplit(_authorize(canvas, ada["id"], None).headers["location"]).query)["error"] == [
        "invalid_scope"
    ]


def test_a_key_without_enforcement_ignores_scopes(canvas: CanvasWorld) -> None:
    ada = canvas.user("Ada")
    _key(canvas, [], enforce=False)

    token = _token(canvas, ada["id"], None)

    assert _get(canvas, token, "/api/v1/courses").status_code == 200


def test_removing_a_scope_from_the_key_destroys_its_tokens_and_control_tokens_carry_scopes(
    canvas: CanvasWorld,
) -> None:
    ada = canvas.user("Ada")
    _key(canvas, [SELF, CONFERENCES])
    oauth_token = _token(canvas, ada["id"], f"{SELF} {CONFERENCES}")
    minted = canvas.canvas.post(
        "/_sandbox/tokens", {"user_id": ada["id"], "client_id": CLIENT_ID, "scopes": [SELF]}
    )["token"]
    assert _get(canvas, minted, "/api/v1/users/self").status_code == 200
    assert _get(canvas, minted, "/api/v1/conferences").status_code == 401

    _key(canvas, [SELF])  # the admin unticks a scope

    for token in (oauth_token, minted):
        dead = _get(canvas, token, "/api/v1/users/self")
        assert dead.status_code == 401 and "www-authenticate" in dead.headers
    too_wide = httpx.post(
        canvas.canvas.url + "/_sandbox/tokens",
        json={"user_id": ada["id"], "client_id": CLIENT_ID, "scopes": [CONFERENCES]},
    )
    assert too_wide.status_code == 400
