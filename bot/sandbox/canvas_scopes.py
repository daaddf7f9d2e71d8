"""Developer key scopes as Canvas enforces them, for the sandbox.

A developer key with "Enforce Scopes" (`require_scopes`) lists the endpoints its tokens may call, each as
`url:<VERB>|<route pattern>` (`url:GET|/api/v1/courses/:course_id/conferences`). Canvas checks them in
three places, reproduced here from its sources:

- `/login/oauth2/auth` (OAuth2ProviderController#auth, Canvas::OAuth::Provider#valid_scopes?): the
  `scope` parameter must name at least one scope and only scopes of the key, otherwise the browser goes
  back to the redirect URI with `error=invalid_scope` and a description listing what was not granted;
- every API request (AuthenticationMethods#validate_scopes, AccessToken#url_scopes_for_method): the
  token's own scopes, turned into path patterns, must match the request (HEAD counts as GET), otherwise
  401 `{"errors":[{"message":"Insufficient scopes on access token."}]}` *without* WWW-Authenticate;
- saving the key (DeveloperKey#invalidate_access_tokens_if_scopes_removed!): removing a scope from a key
  destroys every token issued under it.

The bot's own scope list lives in bot/canvas/scopes.py; the sandbox imports nothing of the bot, so the
matching rule is written here again, as Canvas writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

INSUFFICIENT_SCOPES = {"errors": [{"message": "Insufficient scopes on access token."}]}
INVALID_SCOPE_TEXT = (
    "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource owner. "
    "The following scopes were requested, but not granted: "
)
ALWAYS_ALLOWED_PATHS = ("/login/oauth2/token",)


@lru_cache(maxsize=1024)
def _route_regex(route: str) -> re.Pattern[str]:
    """AccessToken#url_scopes_for_method: `:param` and `*glob` segments, optional `(...)`, a format."""
    path = re.sub(r":[^/)]+", "[^/]+", route)
    path = re.sub(r"\*[^/)]+", ".+", path)
    path = path.replace("(", "(?:").replace(")", "|)")
    return re.compile(f"^{path}(?:\\.[^/]+|)$")


def allows(scopes: Iterable[str], method: str, path: str) -> bool:
    """Whether a token holding `scopes` may send `method path` (Canvas reads HEAD as GET)."""
    verb = "GET" if method.upper() == "HEAD" else method.upper()
    if path in ALWAYS_ALLOWED_PATHS:
        return True
    prefix = f"url:{verb}|"
    return any(
        _route_regex(scope.removeprefix(prefix)).match(path) for scope in scopes if scope.startswith(prefix)
    )


def not_granted(requested: list[str], key_scopes: Iterable[str]) -> list[str]:
    """Requested scopes the key does not hold (Canvas::OAuth::Provider#missing_scopes)."""
    held = set(key_scopes)
    return [scope for scope in requested if scope not in held]


def to_sentence(items: list[str]) -> str:
    """Rails' Array#to_sentence in English: "a", "a and b", "a, b, and c"."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"
