"""`confbot` command line: run | demo | check | link | keys rotate | db upgrade.

Every command validates its settings before it touches the database or the network, so a wrong
setting is one line on stderr and exit status 2, never a traceback or a half-created database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import re
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, TextIO

from bot.config import (
    Settings,
    SlackMode,
    display_database_url,
    load_settings_or_exit,
    slack_mode,
)
from bot.engine.linking import SLACK_TEAM_ID, SLACK_USER_ID
from bot.ops import logs

if TYPE_CHECKING:  # the CLI imports the heavy modules only for the subcommand that needs them
    from bot.runtime import Runtime

log = logging.getLogger("confbot")

TOKEN_PROMPT = "Canvas personal access token (input hidden): "
TOKEN_IN_ARGV_WARNING = (
    "warning: a token given as --canvas-token TOKEN is visible to other users of this machine (process "
    "list, shell history); leave the option out to be prompted, or pass --canvas-token - with the token "
    "on stdin"
)


class UsageError(Exception):
    """A command-line value the command cannot work with; one line, exit status 2."""


def version() -> str:
    """The installed distribution's version (a source checkout without metadata says so)."""
    try:
        return metadata.version("canvas-confbot")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


# --- start-up lines -------------------------------------------------------------------------------


def database_description(settings: Settings) -> str:
    """Which database, without its password: SQLite shows its file, others their masked URL."""
    path = settings.sqlite_path
    if path is not None:
        return f"SQLite file {path.resolve()}"
    if settings.database_url.startswith("sqlite"):
        return "SQLite in memory (nothing survives a restart)"
    return f"PostgreSQL at {display_database_url(settings.database_url)}"


def startup_lines(settings: Settings, mode: SlackMode) -> list[str]:
    """One line per component of `confbot run`: what it listens on and the mode it runs in."""
    if mode is SlackMode.MULTI_WORKSPACE:
        events = "over Socket Mode" if settings.slack_app_token else f"at {settings.public_root}/slack/events"
        slack = f"slack: multi-workspace, installs at {settings.public_root}/slack/install, events {events}"
    elif mode is SlackMode.SOCKET:
        slack = "slack: Socket Mode, one workspace (events over Slack's WebSocket, no public URL needed)"
    else:
        slack = f"slack: HTTP mode, one workspace, events at {settings.public_root}/slack/events"
    return [
        f"database: {database_description(settings)}, migrations applied",
        slack,
        f"poller: every {settings.poll_interval_seconds:g}s per user, at most {settings.poll_concurrency} "
        f"Canvas polls in flight (Little's law sizes the limit), Canvas at {settings.canvas_root}",
        f"http: listening on {settings.host}:{settings.port} (/slack/events, /healthz, /metrics)",
    ]


# --- commands -------------------------------------------------------------------------------------


def _upgrade_or_exit(settings: Settings) -> None:
    """Migrate, or one line naming the database when it cannot be reached (a server down, a bad password)."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.db import upgrade

    try:
        upgrade(settings.database_url)
    except (SQLAlchemyError, OSError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        kind = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        print(
            f"cannot open the database {display_database_url(settings.database_url)} ({kind}); "
            "check DATABASE_URL and that the server is up",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


def _run(settings: Settings) -> int:
    import uvicorn

    from bot.runtime import Runtime
    from bot.web.app import create_app

    mode = slack_mode(settings)
    _upgrade_or_exit(settings)
    runtime = Runtime.build(settings)
    app = create_app(runtime)
    # Everything built so far lives as long as the process: keep it out of every garbage collection,
    # and collect young objects far less often. A poll makes hundreds of short-lived objects, and the
    # ~1,000 polls in flight keep tens of thousands alive at any moment, which every young collection
    # traversed again: at (10_000, 10, 10) the collector took 16% of the bot's CPU at 3,300 polls/s,
    # at (100_000, 50, 100) under 1% (bench/RESULTS.md).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    log.info("confbot %s starting", version())
    for line in startup_lines(settings, mode):
        log.info("%s", line)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return 0


async def _link(settings: Settings, slack_user: str, team: str | None, token: str) -> int:
    from bot.canvas.errors import CanvasError
    from bot.engine.linking import describe_link_failure, link_with_token
    from bot.runtime import Runtime

    runtime = Runtime.build(settings)
    try:
        team_id = team or await _bot_team(runtime)
        who = await link_with_token(
            runtime.sessions,
            runtime.canvas,
            runtime.cipher,
            team_id=team_id,
            slack_user_id=slack_user,
            token=token,
        )
    except CanvasError as error:
        print(describe_link_failure(error, settings.canvas_root), file=sys.stderr)
        return 1
    except UsageError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        await runtime.close()
    print(f"linked Slack user {slack_user} (team {team_id}) to Canvas user {who.name} ({who.id})")
    return 0


async def _bot_team(runtime: Runtime) -> str:
    """The team of SLACK_BOT_TOKEN, so single-workspace operators need not know their team id."""
    from slack_sdk.errors import SlackApiError

    from bot.canvas import network

    assert runtime.slack.client is not None  # main() requires --team without a bot token
    try:
        answer = await runtime.slack.client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error")
        raise UsageError(f"Slack refused SLACK_BOT_TOKEN ({code}); fix it or pass --team T...") from None
    except Exception as error:  # slack_sdk surfaces aiohttp's errors, which are not OSErrors
        raise UsageError(
            f"cannot reach Slack at {runtime.settings.slack_api_root}: {network.describe(error)}; "
            "check SLACK_API_URL or pass --team T..."
        ) from None
    return str(answer["team_id"])


def read_token(
    option: str | None,
    *,
    stdin: TextIO,
    stderr: TextIO,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """The Canvas token from a hidden prompt (a terminal), stdin (a pipe, or `-`), or, warned, argv.

    A token in argv shows in `ps` and the shell history, so it is only accepted for old scripts.
    """
    if option is None:
        raw = prompt(TOKEN_PROMPT) if stdin.isatty() else stdin.readline()
    elif option == "-":
        raw = stdin.readline()
    else:
        print(TOKEN_IN_ARGV_WARNING, file=stderr)
        raw = option
    token = raw.strip()
    if not token:
        raise UsageError(
            "no Canvas token given: type it at the prompt or pipe it on stdin "
            "(make one at Canvas > Account > Settings > New Access Token)"
        )
    return token


def _slack_id(pattern: re.Pattern[str], kind: str, example: str) -> Callable[[str], str]:
    """An argparse type: refuses what cannot be a Slack id (an empty --slack-user included)."""

    def parse(value: str) -> str:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not a Slack {kind} id (they look like {example})")
        return value

    return parse


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    examples: Sequence[str],
    details: str = "",
) -> argparse.ArgumentParser:
    """A subcommand whose --help starts with what it does and ends with examples."""
    return sub.add_parser(
        name,
        help=summary,
        description=summary + (f"\n\n{details}" if details else ""),
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="confbot",
        description="Canvas conference alerts for Slack",
        epilog="examples:\n  confbot check\n  confbot run\n  confbot demo\n\n"
        "Settings come from the environment and .env (see .env.example).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"confbot {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        sub,
        "run",
        "Serve Slack requests and poll Canvas (applies database migrations first).",
        ["confbot run", "LOG_LEVEL=DEBUG confbot run"],
        "HTTP mode with SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET, Socket Mode with SLACK_APP_TOKEN, "
        "multi-workspace with SLACK_CLIENT_ID + SLACK_CLIENT_SECRET.",
    )
    link = _command(
        sub,
        "link",
        "Link a Slack user to Canvas with a personal access token (checked against Canvas first).",
        [
            "confbot link --slack-user U0123ABCD          # prompts for the token",
            "printf '%s\\n' \"$TOKEN\" | confbot link --slack-user U0123ABCD --team T0123ABCD",
        ],
        "The token is read from a hidden prompt, or from stdin when it is not a terminal.",
    )
    link.add_argument(
        "--slack-user",
        required=True,
        type=_slack_id(SLACK_USER_ID, "user", "U0123ABCD or W0123ABCD"),
        help="Slack user id, e.g. U0123ABCD",
    )
    link.add_argument(
        "--team",
        type=_slack_id(SLACK_TEAM_ID, "team", "T0123ABCD"),
        help="Slack team id (default: the bot token's team)",
    )
    link.add_argument(
        "--canvas-token",
        metavar="TOKEN",
        help="'-' reads the token from stdin (the default when stdin is not a terminal); a TOKEN "
        "given here is visible to other users and only accepted for old scripts",
    )
    demo = _command(
        sub,
        "demo",
        "Start a sandbox Canvas and Slack on loopback with the bot and play a scripted conference.",
        ["confbot demo", "confbot demo --once", "confbot demo --port 8080"],
    )
    demo.add_argument("--once", action="store_true", help="exit after the scripted scenario")
    demo.add_argument("--port", type=int, default=0, help="port of the demo page (default: any free port)")
    check = _command(
        sub,
        "check",
        "Validate the settings and reach Slack, Canvas and the database; changes nothing.",
        [
            "confbot check",
            "confbot check && confbot run",
            "printf '%s\\n' \"$TEST_TOKEN\" | confbot check --canvas-token -   # one line per Canvas scope",
        ],
        "Exit status 0 only when every line is ok. With --canvas-token, a token made under the developer "
        "key, each Canvas endpoint the bot needs is called once: one line per scope, ok or the missing scope "
        "and where to tick it. The token is never printed.",
    )
    check.add_argument(
        "--canvas-token",
        nargs="?",
        const="-",
        metavar="-",
        help="prove the developer key's scopes with this test token, read from stdin (or a hidden prompt "
        "on a terminal); a TOKEN given here is visible to other users",
    )
    keys = _command(
        sub,
        "keys",
        "Token encryption keys.",
        ["TOKEN_ENCRYPTION_KEYS=new,old confbot keys rotate"],
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    _command(
        keys_sub,
        "rotate",
        "Re-encrypt every stored token with the first TOKEN_ENCRYPTION_KEYS key.",
        ["TOKEN_ENCRYPTION_KEYS=new,old confbot keys rotate"],
        "Afterwards the old key can be dropped from TOKEN_ENCRYPTION_KEYS.",
    )
    db = _command(sub, "db", "Database maintenance.", ["confbot db upgrade"])
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    _command(
        db_sub,
        "upgrade",
        "Apply the database migrations (confbot run does it too).",
        ["confbot db upgrade", "DATABASE_URL=postgresql+asyncpg://confbot:pw@db/confbot confbot db upgrade"],
    )
    return parser


def _main_link(args: argparse.Namespace, settings: Settings) -> int:
    if args.team is None and settings.slack_bot_token is None:
        print(
            "--team is required when SLACK_BOT_TOKEN is not set (the workspace's id, e.g. T0123ABCD)",
            file=sys.stderr,
        )
        return 2
    try:
        token = read_token(args.canvas_token, stdin=sys.stdin, stderr=sys.stderr)
    except (UsageError, EOFError) as error:
        print(str(error) or "no Canvas token given", file=sys.stderr)
        return 2
    _upgrade_or_exit(settings)
    return asyncio.run(_link(settings, args.slack_user, args.team, token))


def _main_check(canvas_token: str | None) -> int:
    """`confbot check`; with `--canvas-token` the test token is read (stdin, prompt) but never shown."""
    from bot.ops.check import run_check

    token = None
    if canvas_token is not None:
        try:
            # `-` on a terminal asks at a hidden prompt instead of waiting on an echoing stdin.
            token = read_token(
                None if canvas_token == "-" and sys.stdin.isatty() else canvas_token,
                stdin=sys.stdin,
                stderr=sys.stderr,
            )
        except (UsageError, EOFError) as error:
            print(str(error) or "no Canvas token given", file=sys.stderr)
            return 2
    return run_check(canvas_token=token)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from bot.demo.run import run_demo

        return run_demo(once=args.once, page_port=args.port)
    if args.command == "check":
        return _main_check(args.canvas_token)
    settings = load_settings_or_exit(serving=args.command == "run")
    logs.configure(settings.log_level)
    if args.command == "run":
        return _run(settings)
    if args.command == "link":
        return _main_link(args, settings)
    if args.command == "keys":
        _upgrade_or_exit(settings)
        rotated = asyncio.run(_rotate_keys(settings))
        print(f"re-encrypted the tokens of {rotated} linked users with the first key")
        return 0
    if args.command == "db":
        _upgrade_or_exit(settings)
        print("database is up to date")
        return 0
    return 2


async def _rotate_keys(settings: Settings) -> int:
    from bot.runtime import build_cipher
    from bot.store.db import create_engine, session_factory
    from bot.store.keys import rotate_all

    engine = create_engine(settings.database_url)
    try:
        return await rotate_all(session_factory(engine), build_cipher(settings))
    finally:
        await engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
