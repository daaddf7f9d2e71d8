"""The bot's Canvas scope list: Canvas's format, each request traced to its scope, the refusal mapped.

A Canvas admin ticks exactly these strings on the developer key, so each must be Canvas's route pattern
(`:param` placeholders, `users/:id` for users/self), and every refused request must name the one the admin
has to tick. The README's admin guide lists them too; `test_readme_lists_the_scopes_of_the_code` keeps it
equal to the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.canvas import Forbidden, InsufficientScope, InvalidToken
from bot.canvas.errors import UNLISTED_SCOPE, error_for_answer
from bot.canvas.scopes import SCOPE_NAMES, SCOPES, scope_for, scope_for_request, scopes_named_in
from bot.ops.scope_check import PROBES

README = Path(__file__).resolve().parents[2] / "README.md"
INSUFFICIENT = json.dumps({"errors": [{"message": "Insufficient scopes on access token."}]}).encode()


def test_every_scope_is_a_canvas_route_pattern() -> None:
    assert len(set(SCOPE_NAMES)) == len(SCOPE_NAMES)
    for name in SCOPE_NAMES:
        assert re.fullmatch(r"url:GET\|/api/v1(/[a-z_]+|/:[a-z_]+)+", name), name
    assert "url:GET|/api/v1/users/:id" in SCOPE_NAMES  # Canvas routes users/self through users/:id
    assert not any(name.startswith("url:GET|/login/") for name in SCOPE_NAMES)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/users/self", "url:GET|/api/v1/users/:id"),
        ("GET", "/api/v1/conferences", "url:GET|/api/v1/conferences"),
        ("GET", "/api/v1/courses", "url:GET|/api/v1/courses"),
        ("GET", "/api/v1/courses/12", "url:GET|/api/v1/courses/:id"),
        ("HEAD", "/api/v1/courses/12.json", "url:GET|/api/v1/courses/:id"),
        ("GET", "/api/v1/courses/12/conferences", "url:GET|/api/v1/courses/:course_id/conferences"),
        ("GET", "/api/v1/courses/12/users", "url:GET|/api/v1/courses/:course_id/users"),
        ("GET", "/api/v1/groups/7", "url:GET|/api/v1/groups/:group_id"),
        ("GET", "/api/v1/groups/7/conferences", "url:GET|/api/v1/groups/:group_id/conferences"),
    ],
)
def test_each_request_the_client_sends_has_exactly_one_scope(method: str, path: str, scope: str) -> None:
    found = scope_for(method, path)
    assert found is not None and found.name == scope
    assert [s.name for s in SCOPES if s.covers(method, path)] == [scope]


def test_requests_outside_the_list_have_no_scope() -> None:
    assert scope_for("GET", "/api/v1/courses/12/enrollments") is None
    assert scope_for("DELETE", "/api/v1/courses/12") is None
    unlisted = error_for_answer(401, {}, INSUFFICIENT, "GET /api/v1/courses/12/enrollments")
    assert isinstance(unlisted, InsufficientScope) and unlisted.missing_scope == UNLISTED_SCOPE  # no ids
    assert scope_for_request("GET /api/v1/courses/3/conferences?per_page=100") == scope_for(
        "GET", "/api/v1/courses/3/conferences"
    )


def test_the_insufficient_scopes_401_is_its_own_error_naming_the_missing_scope() -> None:
    error = error_for_answer(401, {}, INSUFFICIENT, "GET /api/v1/groups/7/conferences")

    assert type(error) is InsufficientScope
    assert not isinstance(error, InvalidToken | Forbidden)  # never refreshed, relinked or read as "not yours"
    assert error.missing_scope == "url:GET|/api/v1/groups/:group_id/conferences"
    assert str(error) == "GET /api/v1/groups/7/conferences: 401 Insufficient scopes on access token."


def test_a_bearer_challenge_or_another_message_is_not_a_scope_fault() -> None:
    challenge = {"WWW-Authenticate": "Bearer"}
    assert type(error_for_answer(401, challenge, INSUFFICIENT, "GET /api/v1/conferences")) is InvalidToken
    other = json.dumps({"errors": [{"message": "user not authorized to perform that action"}]}).encode()
    assert type(error_for_answer(401, {}, other, "GET /api/v1/conferences")) is Forbidden


def test_scopes_are_read_back_from_canvas_invalid_scope_description() -> None:
    description = (
        "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource "
        "owner. The following scopes were requested, but not granted: url:GET|/api/v1/courses, "
        "url:GET|/api/v1/groups/:group_id, and url:GET|/api/v1/conferences"
    )
    assert scopes_named_in(description) == [
        "url:GET|/api/v1/courses",
        "url:GET|/api/v1/groups/:group_id",
        "url:GET|/api/v1/conferences",
    ]


def test_confbot_check_probes_every_scope() -> None:
    """`confbot check --canvas-token` calls one endpoint per scope; a new scope needs its probe."""
    assert list(PROBES) == list(SCOPE_NAMES)


def test_readme_lists_the_scopes_of_the_code() -> None:
    """The admin guide's list is what an admin ticks: it must be the code's list, no more, no less."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- canvas-scopes:start -->", 1)[1].split("<!-- canvas-scopes:end -->", 1)[0]
    assert re.findall(r"`(url:[A-Z]+\|[^`]+)`", block) == list(SCOPE_NAMES)
