"""Issue 6: with SLACK_APP_TOKEN the bot takes Slack's traffic over Socket Mode (sandbox Slack's socket)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox.slack import signed_slash_command
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, fernet_key, wait_for

pytestmark = pytest.mark.e2e


class SocketBot(BotProcess):
    """`confbot run` as Socket Mode operators configure it: an app-level token and no signing secret."""

    def full_env(self) -> dict[str, str]:
        env = super().full_env()
        env.pop("SLACK_SIGNING_SECRET", None)
        return env


def socket_status(slack: SlackWorld) -> dict[str, int]:
    return dict(slack.slack.get("/_sandbox/socket/status"))


@pytest.fixture
def app_token(slack: SlackWorld) -> str:
    return str(slack.slack.post("/_sandbox/app_tokens")["token"])


def socket_env(canvas: CanvasWorld, slack: SlackWorld, app_token: str) -> dict[str, str]:
    return {
        "CANVAS_BASE_URL": canvas.canvas.url,
        "SLACK_API_URL": slack.slack.url + "/api/",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": app_token,
        "TOKEN_ENCRYPTION_KEYS": fernet_key(),
        "POLL_INTERVAL_SECONDS": "1",
    }


@pytest.fixture
def socket_bot(tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld, app_token: str) -> Iterator[SocketBot]:
    process = SocketBot(workdir=tmp_path, env=socket_env(canvas, slack, app_token))
    process.start()
    wait_for(lambda: socket_status(slack)["connections"] == 1, timeout=15, what="the bot's socket")
    yield process
    process.stop()


def send_envelope(slack: SlackWorld, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        slack.slack.url + "/_sandbox/socket/send", json={"type": kind, "payload": payload}, timeout=10
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def socket_slash(slack: SlackWorld, user_id: str, text: str) -> dict[str, Any]:
    """/conferences over the socket: the envelope is acked, and the reply lands on its response_url."""
    made = slack.slack.post("/_sandbox/response_urls")
    sent = send_envelope(
        slack,
        "slash_commands",
        {
            "token": "sandbox-verification-token",
            "team_id": slack.team_id,
            "team_domain": slack.team_id.lower(),
            "channel_id": "C1",
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/conferences",
            "text": text,
            "api_app_id": "A0SANDBOX1",
            "is_enterprise_install": "false",
            "response_url": made["url"],
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        },
    )
    assert sent["ack"]["envelope_id"] == sent["envelope_id"]
    posts = wait_for(
        lambda: slack.slack.get(f"/_sandbox/response_urls/{made['id']}")["posts"],
        timeout=10,
        what=f"a reply to /conferences {text} sent over the socket",
    )
    return dict(posts[0])


def test_slash_command_and_button_over_socket_mode_without_a_signing_secret(
    slack: SlackWorld, socket_bot: SocketBot, app_token: str
) -> None:
    slack.user("UADA")

    reply = socket_slash(slack, "UADA", "link")
    assert "Connect your Canvas" in str(reply)
    assert reply["response_type"] == "ephemeral"

    sent = send_envelope(
        slack,
        "interactive",
        {
            "type": "block_actions",
            "api_app_id": "A0SANDBOX1",
            "team": {"id": slack.team_id, "domain": slack.team_id.lower()},
            "user": {"id": "UADA", "team_id": slack.team_id, "name": "uada"},
            "channel": {"id": "C1", "name": "general"},
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1"},
            "trigger_id": "13345224609.738474920.socketbutton",
            "actions": [
                {
                    "type": "button",
                    "action_id": "open_token_modal",
                    "block_id": "b1",
                    "action_ts": "1700000001.000200",
                }
            ],
        },
    )
    assert sent["ack"]["envelope_id"] == sent["envelope_id"]
    views = wait_for(
        lambda: slack.slack.get("/_sandbox/views", type="modal")["views"],
        timeout=10,
        what="the token modal opened from a button clicked over the socket",
    )
    assert views[0]["trigger_id"] == "13345224609.738474920.socketbutton"

    assert httpx.get(socket_bot.url + "/healthz").status_code == 200
    made = slack.slack.post("/_sandbox/response_urls")  # no signing secret set: HTTP requests never verify
    body, headers = signed_slash_command(
        SIGNING_SECRET,
        team_id=slack.team_id,
        user_id="UADA",
        channel_id="C1",
        text="",
        response_url=made["url"],
    )
    assert httpx.post(socket_bot.url + "/slack/events", content=body, headers=headers).status_code == 401

    assert app_token not in socket_bot.logs()


def test_refresh_request_reconnects_and_shutdown_closes_the_socket(
    slack: SlackWorld, socket_bot: SocketBot
) -> None:
    slack.user("UBOB")
    before = socket_status(slack)["opened"]

    refreshed = httpx.post(slack.slack.url + "/_sandbox/socket/disconnect", json={}, timeout=10)
    assert refreshed.json() == {"sent": 1}
    wait_for(
        lambda: (lambda s: s["opened"] > before and s["connections"] == 1)(socket_status(slack)),
        timeout=15,
        what="the bot to reconnect on a fresh socket after refresh_requested",
    )
    assert "Connect your Canvas" in str(socket_slash(slack, "UBOB", "link"))

    socket_bot.stop()
    wait_for(lambda: socket_status(slack)["connections"] == 0, timeout=10, what="the socket to close")
    assert "Traceback" not in socket_bot.logs()


@pytest.mark.parametrize("wrong", ["unregistered", "bot token"])
def test_a_token_slack_refuses_stops_start_up_with_a_hint_and_no_token_in_output(
    tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld, wrong: str
) -> None:
    token = "xapp-1-A0SANDBOX1-1-" + "f" * 64 if wrong == "unregistered" else slack.bot_token
    bot = SocketBot(workdir=tmp_path, env=socket_env(canvas, slack, token))
    result = bot.cli("run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    if wrong == "unregistered":
        assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in output
    else:  # an xoxb- token is refused by the settings validation, before any call to Slack
        assert (
            result.returncode == 2
            and "SLACK_APP_TOKEN must be an app-level token (starts with xapp-)" in output
        )
    assert token not in output
    assert socket_status(slack)["connections"] == 0


def test_sandbox_socket_answers_like_slack_without_a_client(slack: SlackWorld, app_token: str) -> None:
    api = slack.slack.url + "/api/apps.connections.open"
    opened = httpx.post(api, headers={"Authorization": f"Bearer {app_token}"}).json()
    assert opened["ok"] is True and opened["url"].startswith("ws://127.0.0.1:")
    assert "ticket=" in opened["url"]
    for token, error in (("xapp-unknown", "invalid_auth"), (slack.bot_token, "not_allowed_token_type")):
        answer = httpx.post(api, headers={"Authorization": f"Bearer {token}"}).json()
        assert answer == {"ok": False, "error": error}
    assert httpx.post(api).json()["error"] == "not_authed"

    lonely = httpx.post(
        slack.slack.url + "/_sandbox/socket/send", json={"type": "slash_commands", "payload": {}}
    )
    assert lonely.status_code == 409 and "no Socket Mode client" in lonely.json()["error"]
    bad = httpx.post(slack.slack.url + "/_sandbox/app_tokens", json={"token": "xoxb-not-an-app-token"})
    assert bad.status_code == 400
