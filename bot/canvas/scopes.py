"""Every Canvas API endpoint the bot calls, as the scope a Canvas admin ticks on the developer key.

Managed Canvas instances usually switch on "Enforce Scopes" for developer keys: a token may then call
only the endpoints named by its scopes, and the authorize request must name them (`scope=`, space
separated). This list is the one place they are written down: the authorize URL sends it, `confbot check`
proves each one with a test token, the README's admin guide prints it (a unit test keeps the two equal),
and a refused call is traced back to the scope it lacks.

A scope is `url:<VERB>|<route>` where the route is Canvas's own pattern with `:param` placeholders
(`url:GET|/api/v1/courses/:course_id/conferences`), so it must match Canvas's routes exactly: `GET
/api/v1/users/self` is served by the `users/:id` route, hence `url:GET|/api/v1/users/:id`. The OAuth
endpoints under /login/oauth2 need no scope. Canvas lists scopes on the developer key page grouped by the
resource they belong to (`group`), which is where an admin looks for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

INSUFFICIENT_SCOPES_MESSAGE = "Insufficient scopes on access token."
"""Canvas's 401 body message (AuthenticationMethods::AccessTokenScopeError) for a call outside the scopes."""

_SCOPE_IN_TEXT = re.compile(r"url:[A-Z]+\|[^\s,]+")


@dataclass(frozen=True, slots=True)
class CanvasScope:
    """One endpoint the bot calls: its Canvas scope, where the key page lists it, and why it is needed."""

    method: str
    route: str
    group: str
    purpose: str

    @property
    def name(self) -> str:
        """The scope string as Canvas writes it, e.g. `url:GET|/api/v1/conferences`."""
        return f"url:{self.method}|{self.route}"

    def covers(self, method: str, path: str) -> bool:
        """Whether this scope lets a token send `method path` (a path without its query string)."""
        verb = "GET" if method.upper() == "HEAD" else method.upper()
        return verb == self.method and _route_pattern(self.route).match(path) is not None


@lru_cache(maxsize=64)
def _route_pattern(route: str) -> re.Pattern[str]:
    """Canvas's own rule (AccessToken#url_scopes_for_method): a `:param` matches one path segment, and a
    format suffix (`.json`) is allowed."""
    return re.compile("^" + re.sub(r":[^/)]+", "[^/]+", route) + r"(?:\.[^/]+|)$")


SCOPES: tuple[CanvasScope, ...] = (
    CanvasScope("GET", "/api/v1/users/:id", "Users", "who the token belongs to (users/self), when linking"),
    CanvasScope("GET", "/api/v1/conferences", "Conferences", "the live conferences of each linked user"),
    CanvasScope(
        "GET", "/api/v1/courses", "Courses", "the user's courses and roles, for channel subscriptions"
    ),
    CanvasScope("GET", "/api/v1/courses/:id", "Courses", "a course's name and the user's enrollments in it"),
    CanvasScope(
        "GET",
        "/api/v1/courses/:course_id/conferences",
        "Conferences",
        "a course's conferences: channel alerts, digests, ends, recordings",
    ),
    CanvasScope(
        "GET",
        "/api/v1/courses/:course_id/users",
        "Courses",
        "a course's people by name, for the attendance report sent to its teachers",
    ),
    CanvasScope("GET", "/api/v1/groups/:group_id", "Groups", "a group's name for a group conference's alert"),
    CanvasScope(
        "GET",
        "/api/v1/groups/:group_id/conferences",
        "Conferences",
        "a group's conferences: ends and recordings",
    ),
)

SCOPE_NAMES: tuple[str, ...] = tuple(scope.name for scope in SCOPES)


def scope_for(method: str, path: str) -> CanvasScope | None:
    """The scope a request needs, or None for a request outside the list (a bug worth a test)."""
    return next((scope for scope in SCOPES if scope.covers(method, path)), None)


def scope_for_request(what: str) -> CanvasScope | None:
    """The scope behind a request named as "GET /api/v1/..." (how the client names requests in errors)."""
    method, _, path = what.partition(" ")
    return scope_for(method, path.split("?", 1)[0])


def scopes_named_in(text: str) -> list[str]:
    """The scope strings in a text such as Canvas's invalid_scope description ("...not granted: a and b")."""
    return _SCOPE_IN_TEXT.findall(text)


def where_to_tick(name: str) -> str:
    """Where a Canvas admin switches a scope on, for a log line or a `confbot check` line."""
    group = next((scope.group for scope in SCOPES if scope.name == name), None)
    place = f"{group} > {name}" if group else name
    return f"Canvas > Admin > Developer Keys > this key's Edit > Enforce Scopes > {place}"
