"""Canvas OAuth `state`: signed (HMAC), expiring, bound to one Slack team+user, single-use.

The signature rejects forged or tampered states without touching the database; the stored nonce makes
each state usable once (a replayed callback fails) and ties the callback to whoever clicked the button.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

STATE_TTL = timedelta(minutes=10)


class StateError(Exception):
    """The state is forged, tampered with, expired or already used; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class StateClaims:
    nonce: str
    team_id: str
    slack_user_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"confbot canvas oauth state\x00" + secret).digest()

    def issue(self, team_id: str, slack_user_id: str, now: datetime) -> tuple[str, StateClaims]:
        claims = StateClaims(secrets.token_urlsafe(24), team_id, slack_user_id, now + STATE_TTL)
        body = _b64(
            json.dumps(
                [claims.nonce, team_id, slack_user_id, int(claims.expires_at.timestamp())],
                separators=(",", ":"),
            ).encode()
        )
        return f"{body}.{self._sign(body)}", claims

    def verify(self, state: str, now: datetime) -> StateClaims:
        body, _, signature = state.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise StateError("This link is not valid. Start again with /conferences link.")
        try:
            nonce, team_id, user_id, expires = json.loads(_unb64(body))
        except (ValueError, TypeError):
            raise StateError("This link is not valid. Start again with /conferences link.") from None
        expires_at = datetime.fromtimestamp(int(expires), tz=now.tzinfo)
        if expires_at <= now:
            raise StateError("This link has expired. Run /conferences link again.")
        return StateClaims(str(nonce), str(team_id), str(user_id), expires_at)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
