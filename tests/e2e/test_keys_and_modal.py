"""Key rotation and the token modal, against a real SQLite database and the sandboxes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from bot.sandbox.slack import interactivity_body, signed_request
from bot.store.crypto import TokenCipher
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, fernet_key, wait_for

pytestmark = pytest.mark.e2e


def _linked_token_blob(bot: BotProcess) -> bytes:
    import sqlite3

    with sqlite3.connect(bot.db_path) as db:
        return bytes(db.execute("SELECT access_token_enc FROM linked_users").fetchone()[0])


def test_keys_rotate_moves_every_token_to_the_new_key(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ada = canvas.user("Ada")
    old_key, new_key = bot.env["TOKEN_ENCRYPTION_KEYS"], fernet_key()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    assert TokenCipher([old_key]).decrypt(_linked_token_blob(bot)) == ada["token"]

    bot.env["TOKEN_ENCRYPTION_KEYS"] = f"{new_key},{old_key}"
    assert "1 linked users" in bot.cli("keys", "rotate").stdout
    assert TokenCipher([new_key]).decrypt(_linked_token_blob(bot)) == ada["token"]
    with pytest.raises(ValueError, match="cannot be decrypted"):
        TokenCipher([old_key]).decrypt(_linked_token_blob(bot))


def _post_interaction(bot: BotProcess, payload: dict[str, Any]) -> httpx.Response:
    body = interactivity_body(payload)
    return httpx.post(bot.url + "/slack/events", content=body, headers=signed_request(SIGNING_SECRET, body))


def _submission(slack: SlackWorld, token: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": slack.team_id},
        "user": {"id": "UADA", "team_id": slack.team_id},
        "view": {
            "type": "modal",
            "id": "V0001",
            "callback_id": "link_token_modal",
            "state": {"values": {"token_block": {"token": {"type": "plain_text_input", "value": token}}}},
        },
    }


def test_token_modal_links_a_valid_token_and_refuses_a_bad_one(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ada = canvas.user("Ada Lovelace")
    slack.user("UADA")
    bot.start()
    click = {
        "type": "block_actions",
        "team": {"id": slack.team_id},
        "user": {"id": "UADA", "team_id": slack.team_id},
        "trigger_id": "1337.42.abcd",
        "actions": [{"action_id": "open_token_modal", "type": "button", "block_id": "b", "action_ts": "1"}],
    }
    assert _post_interaction(bot, click).status_code == 200
    opened = wait_for(lambda: slack.calls("views.open"), timeout=5, what="the token modal")
    assert "token_block" in json.dumps(opened[0]["args"])

    refused = _post_interaction(bot, _submission(slack, "1~not-a-real-token"))
    assert refused.status_code == 200
    assert refused.json()["response_action"] == "errors"
    assert "did not accept" in refused.json()["errors"]["token_block"]

    accepted = _post_interaction(bot, _submission(slack, ada["token"]))
    assert accepted.status_code == 200 and not accepted.content.strip(b"{} ")
    wait_for(
        lambda: any("Linked to Canvas as *Ada Lovelace*" in m["text"] for m in slack.dms_to("UADA")),
        timeout=5,
        what="the link confirmation",
    )
    assert ada["token"] not in bot.logs()
