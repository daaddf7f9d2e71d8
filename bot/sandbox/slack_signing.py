"""Requests as Slack sends them to the bot: form bodies signed with the app's signing secret.

Signing with slack_sdk's own `SignatureVerifier` means the bot's verification is tested against the
exact algorithm Slack documents, not a re-implementation that could share a bug with it.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def signed_request(
    signing_secret: str, body: bytes, content_type: str = FORM_CONTENT_TYPE, *, timestamp: int | None = None
) -> dict[str, str]:
    """Headers Slack would send with `body` (a stale `timestamp` lets tests check replay rejection)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": str(signature),
    }


def signed_slash_command(
    signing_secret: str,
    *,
    team_id: str,
    user_id: str,
    channel_id: str,
    text: str,
    response_url: str,
    command: str = "/conferences",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    user_name: str = "sandbox.user",
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A slash command POST body with the fields Slack sends, and its signed headers."""
    fields = {
        "token": "sandbox-verification-token",
        "team_id": team_id,
        "team_domain": team_id.lower(),
        "channel_id": channel_id,
        "channel_name": "directmessage" if channel_id.startswith("D") else "general",
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A0SANDBOX1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    body = urlencode(fields).encode()
    return body, signed_request(signing_secret, body, FORM_CONTENT_TYPE, timestamp=timestamp)


def interactivity_body(payload: dict[str, Any]) -> bytes:
    """Form body of an interactivity request (`block_actions`, `view_submission`): one `payload` field."""
    return urlencode({"payload": json.dumps(payload)}).encode()
