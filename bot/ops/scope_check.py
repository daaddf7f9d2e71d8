"""`confbot check`'s Canvas developer key lines: the key and its redirect URI, and each scope with a token.

The first failure a Canvas admin meets is at the authorize page, in a student's browser, long after the
key was set up. These checks meet it first. Without a token, an authorize request (never followed, so
nothing is approved) shows whether Canvas knows the key, whether its Redirect URIs include
`PUBLIC_BASE_URL/canvas/oauth/callback`, and whether it grants the scopes the bot asks for. With a test
token (`confbot check --canvas-token -`), every endpoint the bot calls is called once, one line per scope.
Canvas checks a token's scopes before it looks anything up, so an id that exists nowhere proves a scope
as well as a real one and needs no data in the test account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.canvas import network
from bot.canvas.client import CanvasClient
from bot.canvas.errors import (
    CanvasError,
    InsufficientScope,
    InvalidToken,
    Throttled,
    Transient,
    oauth_refusal,
)
from bot.canvas.oauth import CALLBACK_PATH, authorize_url
from bot.canvas.scopes import SCOPE_NAMES, scopes_named_in, where_to_tick
from bot.config import Settings
from bot.ops.check_result import CheckResult, fail, ok

TIMEOUT = 15
PROBE_ID = 0
"""A course or group id no Canvas has: the answer (404) comes after the scope check, which is what counts."""

Probe = Callable[[CanvasClient, str], Awaitable[object]]

PROBES: dict[str, Probe] = {
    "url:GET|/api/v1/users/:id": lambda canvas, token: canvas.self_user(token),
    "url:GET|/api/v1/conferences": lambda canvas, token: canvas.live_conferences(token),
    "url:GET|/api/v1/courses": lambda canvas, token: canvas.courses(token),
    "url:GET|/api/v1/courses/:id": lambda canvas, token: canvas.course(token, PROBE_ID),
    "url:GET|/api/v1/courses/:course_id/conferences": (
        lambda canvas, token: canvas.course_conferences(token, PROBE_ID)
    ),
    "url:GET|/api/v1/courses/:course_id/users": lambda canvas, token: canvas.course_users(token, PROBE_ID),
    "url:GET|/api/v1/groups/:group_id": lambda canvas, token: canvas.group(token, PROBE_ID),
    "url:GET|/api/v1/groups/:group_id/conferences": (
        lambda canvas, token: canvas.group_conferences(token, PROBE_ID)
    ),
}
"""The client call behind each scope (a unit test keeps the keys equal to SCOPE_NAMES)."""


def missing_scope_fix(scope: str) -> str:
    return (
        f"{scope} is missing; tick it at {where_to_tick(scope)}, then make a new test token "
        "(a token keeps the scopes it was made with)"
    )


async def check_scopes(settings: Settings, token: str) -> list[CheckResult]:
    """One line per scope the bot needs: `ok`, or the missing scope and where to tick it."""
    results: list[CheckResult] = []
    async with CanvasClient(settings.canvas_root, timeout=TIMEOUT) as canvas:
        for scope in SCOPE_NAMES:
            try:
                await PROBES[scope](canvas, token)
            except InsufficientScope:
                results.append(fail("canvas scope", missing_scope_fix(scope)))
                continue
            except InvalidToken as error:
                return [
                    fail("canvas token", f"Canvas refused the test token ({error.status}); make a new one")
                ]
            except (Throttled, Transient) as error:
                results.append(fail("canvas scope", f"{scope} not checked: {error}"))
                continue
            except CanvasError:
                pass  # not found, not yours: answered after the scope check, so the scope is granted
            results.append(ok("canvas scope", f"{scope} granted"))
    return results


async def check_developer_key(settings: Settings) -> list[CheckResult]:
    """Ask Canvas's authorize endpoint about the key, the redirect URI and the scopes, approving nothing."""
    if settings.canvas_client_id is None:
        return [ok("canvas key", "no developer key (CANVAS_CLIENT_ID unset): users link with access tokens")]
    redirect_uri = settings.public_root + CALLBACK_PATH
    scopes = SCOPE_NAMES if settings.canvas_scopes else ()
    client_id = settings.canvas_client_id
    url = authorize_url(settings.canvas_root, client_id, redirect_uri, "confbot-check", scopes)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            answer = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        return [fail("canvas key", f"cannot reach {settings.canvas_root}: {network.describe(error)}")]
    return [key_verdict(answer, client_id, redirect_uri, settings.canvas_scopes)]


def key_verdict(answer: httpx.Response, client_id: str, redirect_uri: str, scopes_on: bool) -> CheckResult:
    """What Canvas's answer to an authorize request says about the developer key (see the module doc)."""
    refusal = oauth_refusal(answer.content) if answer.status_code in (400, 401) else None
    if refusal is not None and refusal[0] == "invalid_client":
        return fail(
            "canvas key",
            f"Canvas does not know developer key {client_id}: copy CANVAS_CLIENT_ID from Admin > Developer "
            "Keys (the Details column) and check the key is switched ON",
        )
    if refusal is not None and "redirect_uri" in (refusal[1] or ""):
        return fail(
            "canvas key",
            f"the developer key's Redirect URIs do not include {redirect_uri}; add exactly that on the key "
            "(Admin > Developer Keys > Edit), or set PUBLIC_BASE_URL to the address it names",
        )
    location = answer.headers.get("Location", "") if answer.is_redirect else ""
    if location.startswith(redirect_uri):
        query = parse_qs(urlsplit(location).query)
        error = query.get("error", [""])[0]
        description = query.get("error_description", [""])[0]
        if error == "invalid_scope" and not scopes_on:
            return fail("canvas key", "the developer key enforces scopes but CANVAS_SCOPES is off; set it on")
        if error == "invalid_scope":
            missing = scopes_named_in(description) or ["(Canvas named none)"]
            ticks = "; ".join(where_to_tick(scope) for scope in missing)
            return fail("canvas key", f"the developer key does not grant {', '.join(missing)}; tick {ticks}")
        if error:
            return fail("canvas key", f"Canvas refused the authorize request: {error} {description}".strip())
    if answer.is_redirect or answer.status_code == 200:
        asked = f" and the {len(SCOPE_NAMES)} scopes" if scopes_on else ""
        return ok(
            "canvas key",
            f"Canvas accepts developer key {client_id} with redirect URI {redirect_uri}{asked}; prove each "
            "scope with a test token: confbot check --canvas-token -",
        )
    return fail("canvas key", f"the authorize request answered {answer.status_code}; check CANVAS_BASE_URL")
