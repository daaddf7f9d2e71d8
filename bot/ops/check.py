"""`confbot check`: tell an operator, one line per item, what works and how to fix what does not.

It exists so the first deployment fails here, with a fix, instead of in the logs of a running bot.
Every check is read-only: it never creates the SQLite file, never migrates, and calls Canvas without a
token (a 401 carrying `WWW-Authenticate: Bearer` is how only Canvas answers, so it proves the URL).
No secret is ever printed: values of SecretStr settings are hidden and every line is scrubbed of them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TextIO

import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from bot.canvas import network
from bot.config import ConfigError, Settings, display_database_url, load_settings
from bot.ops.check_result import CheckResult, fail, ok
from bot.ops.config_docs import env_name, is_secret
from bot.ops.scope_check import check_developer_key, check_scopes

TIMEOUT = 15
MIN_SCRUB = 6

# A stand-in for a broken required setting, so the checks that do not need it can still run.
_PLACEHOLDERS: dict[str, object] = {"canvas_base_url": "http://placeholder.invalid"}

# Which settings each check reads; a check whose inputs failed validation is skipped, not run on junk.
NEEDS: dict[str, set[str]] = {
    "slack": {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_client_id",
        "slack_api_url",
    },
    "canvas": {"canvas_base_url"},
    "canvas key": {"canvas_base_url", "canvas_client_id", "canvas_scopes", "public_base_url"},
    "canvas scope": {"canvas_base_url"},  # only with --canvas-token
    "database": {"database_url"},  # the database check reports migrations too
}


Check = Callable[[Settings], Awaitable[list[CheckResult]]]


# --- settings -------------------------------------------------------------------------------------


def load_for_check() -> tuple[Settings | None, CheckResult | None, set[str]]:
    """Settings, the error line if they did not pass `confbot run`'s validation, and the broken fields.

    The validation is `confbot run`'s own (`load_settings(serving=True)`), so `check` can never pass a
    configuration `run` refuses. When only some fields are wrong, the others are loaded anyway (the
    broken ones replaced by defaults or placeholders) so that, say, a missing CANVAS_BASE_URL does not
    hide a wrong Slack token. When the values are fine but do not make a complete Slack mode, the
    checks run on them as they are.
    """
    try:
        return load_settings(serving=True), None, set()
    except ConfigError as error:
        line = fail("settings", str(error))
        broken = set(error.fields)
    overrides: dict[str, object] = {}
    for name in broken:
        field = Settings.model_fields.get(name)
        if field is None or (field.is_required() and name not in _PLACEHOLDERS):
            return None, line, broken
        overrides[name] = _PLACEHOLDERS[name] if field.is_required() else field.get_default()
    try:
        return load_settings(serving=False, **overrides), line, broken
    except ConfigError:
        return None, line, broken


def describe_settings(settings: Settings) -> list[CheckResult]:
    """One line per setting with where it stands; secrets only say whether they are set."""
    results = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            shown = "unset"
        elif is_secret(field):
            shown = "set (hidden)"
        elif name == "database_url":
            shown = shown_url(value)
        else:
            shown = str(value)
        results.append(ok(env_name(name), shown))
    return results


# --- Slack ----------------------------------------------------------------------------------------

SLACK_FIXES = {
    "invalid_auth": "SLACK_BOT_TOKEN is not a valid token for this Slack; copy the Bot User OAuth Token "
    "(xoxb-...) from your app's OAuth & Permissions page",
    "not_authed": "SLACK_BOT_TOKEN is empty; copy the Bot User OAuth Token (xoxb-...) "
    "from OAuth & Permissions",
    "token_revoked": "the bot token was revoked (app uninstalled?); reinstall the app "
    "and copy the new xoxb- token",
    "account_inactive": "the bot token belongs to a deleted app or user; reinstall the app "
    "and copy the new token",
    "token_expired": "the bot token expired (token rotation is on); turn rotation off or use OAuth install",
}


async def check_slack(settings: Settings) -> list[CheckResult]:
    from slack_sdk.web.async_client import AsyncWebClient

    results: list[CheckResult] = []
    if settings.slack_bot_token is None:
        if settings.slack_client_id:
            results.append(ok("slack", "multi-workspace mode: bot tokens come from each workspace's install"))
        else:
            results.append(fail("slack", "skipped: no SLACK_BOT_TOKEN to call auth.test with"))
        return results
    token = settings.slack_bot_token.get_secret_value()
    client = AsyncWebClient(token=token, base_url=settings.slack_api_root, timeout=TIMEOUT)
    try:
        answer = await client.auth_test()
    except SlackApiError as error:
        code = str(error.response.get("error", "unknown_error"))
        fix = SLACK_FIXES.get(code, "check SLACK_BOT_TOKEN and SLACK_API_URL")
        results.append(fail("slack", f"auth.test answered {code}: {fix}"))
        return results
    except Exception as error:  # aiohttp's errors are not OSErrors; report any transport failure as one line
        results.append(
            fail(
                "slack",
                f"cannot reach {settings.slack_api_root}: {network.describe(error)}; "
                "check SLACK_API_URL and outbound HTTPS",
            )
        )
        return results
    results.append(
        ok("slack", f"auth.test: bot @{answer.get('user')} in {answer.get('team')} ({answer.get('team_id')})")
    )
    return results


# --- Canvas ---------------------------------------------------------------------------------------


async def check_canvas(settings: Settings) -> list[CheckResult]:
    url = f"{settings.canvas_root}/api/v1/users/self"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
            response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        return [
            fail(
                "canvas",
                f"cannot reach {settings.canvas_root}: {network.describe(error)}; check CANVAS_BASE_URL",
            )
        ]
    challenge = response.headers.get("WWW-Authenticate", "")
    if response.status_code == 401 and challenge.lower().startswith("bearer"):
        return [ok("canvas", f"{settings.canvas_root} answers like Canvas (401 asking for a token)")]
    if response.is_redirect:
        where = response.headers.get("Location", "?")
        return [
            fail(
                "canvas",
                f"{url} redirects to {where}; set CANVAS_BASE_URL to the Canvas root the API lives at",
            )
        ]
    if response.status_code == 404:
        return [
            fail("canvas", f"{url} is not found; CANVAS_BASE_URL must be the Canvas root, without /api/v1")
        ]
    return [
        fail(
            "canvas",
            f"{settings.canvas_root} is not a Canvas: {url} answered {response.status_code} without a Bearer "
            "challenge; check CANVAS_BASE_URL",
        )
    ]


# --- database -------------------------------------------------------------------------------------


def _current_and_heads(connection: Connection, url: str) -> tuple[set[str], set[str], set[str]]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from bot.store.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config(url))
    current = set(MigrationContext.configure(connection).get_current_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    return current, set(script.get_heads()), known


def migrations_result(current: set[str], heads: set[str], known: set[str]) -> CheckResult:
    if current == heads:
        return ok("migrations", f"at head ({', '.join(sorted(heads))})")
    if not current:
        return fail("migrations", "none applied (empty database); run `confbot db upgrade`")
    unknown = current - known
    if unknown:
        return fail(
            "migrations",
            f"database is at {', '.join(sorted(unknown))}, which this confbot does not know; "
            "it was migrated by a newer version: upgrade confbot",
        )
    return fail(
        "migrations",
        f"database at {', '.join(sorted(current))}, code at {', '.join(sorted(heads))}; "
        "run `confbot db upgrade`",
    )


async def check_database(settings: Settings) -> list[CheckResult]:
    from bot.store.db import create_engine

    url = settings.database_url
    shown = shown_url(url)
    path = settings.sqlite_path
    if path is not None and not path.exists():
        if not path.resolve().parent.is_dir():
            return [
                fail(
                    "database",
                    f"directory {path.resolve().parent} does not exist; create it or fix DATABASE_URL",
                ),
                fail("migrations", "no database yet; fix DATABASE_URL, then run `confbot db upgrade`"),
            ]
        return [
            ok("database", f"{shown} does not exist yet; `confbot db upgrade` or `confbot run` creates it"),
            fail("migrations", "none applied (no database file); run `confbot db upgrade`"),
        ]
    try:
        engine = create_engine(url)
    except Exception as error:  # SQLAlchemy rejects the URL itself: unknown dialect, missing driver
        return [
            fail("database", f"DATABASE_URL is not usable ({_kind(error)}); see .env.example for the format"),
            fail("migrations", "skipped: fix DATABASE_URL first"),
        ]
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            current, heads, known = await connection.run_sync(_current_and_heads, url)
    except Exception as error:  # driver errors share no base class; the operator needs the kind and the URL
        return [
            fail(
                "database",
                f"cannot connect to {shown} ({_kind(error)}); check DATABASE_URL and that the server is up",
            ),
            fail("migrations", "skipped: the database is not reachable"),
        ]
    finally:
        await engine.dispose()
    return [ok("database", f"{shown} answers SELECT 1"), migrations_result(current, heads, known)]


# --- running it -----------------------------------------------------------------------------------


def shown_url(url: str) -> str:
    """A database URL with its password masked."""
    return display_database_url(url)


def _kind(error: BaseException) -> str:
    """Type and first line of an error; `confbot check` output stays one line per item."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


def secret_values(settings: Settings | None) -> list[str]:
    if settings is None:
        return []
    values = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if is_secret(field) and value is not None:
            values.append(value.get_secret_value())
    try:
        password = make_url(settings.database_url).password
    except ArgumentError:
        password = None
    if password:
        values.append(str(password))
    # Very short values (a DB password like "pw") would shred ordinary words; only scrub real secrets.
    return [value for value in values if len(value) >= MIN_SCRUB]


def scrub(line: str, secrets: Iterable[str]) -> str:
    """Belt and braces: even an exception message that echoes a token prints as ***."""
    for value in sorted(secrets, key=len, reverse=True):
        line = line.replace(value, "***")
    return line


async def _bounded(name: str, check: Check, settings: Settings) -> list[CheckResult]:
    try:
        return await asyncio.wait_for(check(settings), timeout=TIMEOUT * 2)
    except TimeoutError:
        return [fail(name, f"no answer within {TIMEOUT * 2:.0f}s")]


CHECKS: dict[str, Check] = {
    "slack": check_slack,
    "canvas": check_canvas,
    "canvas key": check_developer_key,
    "database": check_database,
}

# Printed in this order whatever order the concurrent checks finish in.
ORDER = ["slack", "canvas", "canvas key", "canvas token", "canvas scope", "database", "migrations"]


def checks_for(canvas_token: str | None) -> dict[str, Check]:
    """Every check; with a Canvas test token also one line per scope the bot needs."""
    if canvas_token is None:
        return CHECKS

    async def scopes(settings: Settings) -> list[CheckResult]:
        return await check_scopes(settings, canvas_token)

    return {**CHECKS, "canvas scope": scopes}


async def collect(
    settings: Settings | None, broken: set[str], checks: dict[str, Check] = CHECKS
) -> list[CheckResult]:
    """Run the network checks concurrently; skip each one whose settings did not validate."""
    results: list[CheckResult] = []
    runnable: list[tuple[str, Check]] = []
    for name, check in checks.items():
        bad = sorted(env_name(field) for field in NEEDS[name] & broken)
        if settings is None or bad:
            reason = f"fix {', '.join(bad)} first" if bad else "fix the settings first"
            results.append(fail(name, f"skipped: {reason}"))
        else:
            runnable.append((name, check))
    if settings is not None:
        for outcome in await asyncio.gather(*(_bounded(name, check, settings) for name, check in runnable)):
            results.extend(outcome)
    return sorted(
        results, key=lambda result: ORDER.index(result.name) if result.name in ORDER else len(ORDER)
    )


def run_check(out: TextIO | None = None, canvas_token: str | None = None) -> int:
    """Print every check's line; exit status 0 only when every line is ok.

    `canvas_token` (a test token made under the developer key) adds one line per Canvas scope; it is
    scrubbed from every line like the settings' secrets.
    """
    stream = out or sys.stdout
    settings, settings_error, broken = load_for_check()
    results: list[CheckResult] = []
    if settings_error is not None:
        results.append(settings_error)
    elif settings is not None:
        results.extend(describe_settings(settings))
    results.extend(asyncio.run(collect(settings, broken, checks_for(canvas_token))))
    secrets = secret_values(settings) + ([canvas_token] if canvas_token else [])
    for result in results:
        print(scrub(result.line(), secrets), file=stream)
    failed = [result for result in results if not result.ok]
    print(
        scrub("all checks passed" if not failed else f"{len(failed)} check(s) failed", secrets), file=stream
    )
    return 0 if not failed else 1
