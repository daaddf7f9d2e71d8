"""A faithful local Slack: Web API, response_urls and a control API, as one Starlette app.

Point slack_sdk at it with `AsyncWebClient(token=..., base_url=f"{url}/api/")`.  Tests set the world up
through `/_sandbox/*` (teams, users, channels, OAuth codes, faults) and read back what the bot did
(calls, messages, ephemerals, views, response_url posts).  Run standalone with
`python -m bot.sandbox.slack --port 8900 --team T0001 --bot-token xoxb-...`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.routing import Route

from bot.sandbox.slack_api import METHODS, web_api
from bot.sandbox.slack_control import CONTROL_ROUTES
from bot.sandbox.slack_files import FILE_METHODS, FILE_ROUTES
from bot.sandbox.slack_signing import interactivity_body, signed_request, signed_slash_command
from bot.sandbox.slack_socket import SOCKET_ROUTES, SocketHub
from bot.sandbox.slack_state import SlackState

__all__ = [
    "SlackState",
    "create_slack_app",
    "interactivity_body",
    "main",
    "signed_request",
    "signed_slash_command",
]


METHODS.update(FILE_METHODS)  # files.* live in slack_files.py (which builds on slack_api's helpers)


def create_slack_app(state: SlackState | None = None) -> Starlette:
    """The sandbox as an ASGI app; its state is `app.state.slack` (pass one in to share or pre-seed it)."""
    app = Starlette(
        routes=[
            Route("/api/{method}", web_api, methods=["GET", "POST"]),
            *CONTROL_ROUTES,
            *FILE_ROUTES,
            *SOCKET_ROUTES,
        ]
    )
    app.state.slack = state if state is not None else SlackState()
    app.state.slack_socket = SocketHub()
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the sandbox on loopback; the bot token comes from the command line and is never printed."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bot.sandbox.slack", description=__doc__)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--team", help="create this workspace at start, e.g. T0001")
    parser.add_argument("--team-name", default=None)
    parser.add_argument("--bot-token", help="bot token the workspace accepts (generated when omitted)")
    parser.add_argument("--bot-user-id", default=None)
    args = parser.parse_args(argv)
    state = SlackState()
    if args.team:
        state.add_team(args.team, args.team_name, args.bot_token, args.bot_user_id)
    elif args.bot_token:
        parser.error("--bot-token needs --team")
    print(f"sandbox Slack on http://127.0.0.1:{args.port}/api/", file=sys.stderr)
    uvicorn.run(create_slack_app(state), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
