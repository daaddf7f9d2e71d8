"""Canvas OAuth `state`: signed (HMAC), expiring, bound to one Slack team+user, single-use.

The signature rejects forged or tampered states without touching the database; the stored nonce makes
each state usable once (a replayed callback fails) and ties the callback to whoever clicked the button.

A state goes through two hands: the one in the Slack "Connect" link names the Slack user only; the start
page re-issues it with a `browser` nonce that it also sets as a cookie, and only such a bound state is
accepted at the callback, and only with that cookie. So a Canvas authorisation URL (or callback URL)
forwarded to someone else cannot complete there and tie their Canvas to the sender's Slack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.messages.i18n import N_

STATE_TTL = timedelta(minutes=10)


class StateError(Exception):
    """The state is forged, tampered with, expired or already used; the message is safe to show (an
    English msgid: the page translates it)."""


@dataclass(frozen=True, slots=True)
class StateClaims:
    nonce: str
    team_id: str
    slack_user_id: str
    expires_at: datetime
    browser: str | None = None
    """The nonce of the browser that opened the start page (its cookie), None in a Slack link's state."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"confbot canvas oauth state\x00" + secret).digest()

    def issue(self, team_id: str, slack_user_id: str, now: datetime) -> tuple[str, StateClaims]:
        """The state for a Slack user's "Connect" link (not yet bound to a browser)."""
        claims = StateClaims(secrets.token_urlsafe(24), team_id, slack_user_id, now + STATE_TTL)
        return self._encode(claims), claims

    def bind(self, claims: StateClaims) -> tuple[str, str]:
        """The same state bound to a new browser nonce: (state for Canvas, nonce for the cookie)."""
        browser = secrets.token_urlsafe(24)
        bound = StateClaims(claims.nonce, claims.team_id, claims.slack_user_id, claims.expires_at, browser)
        return self._encode(bound), browser

    def _encode(self, claims: StateClaims) -> str:
        fields: list[object] = [
            claims.nonce,
            claims.team_id,
            claims.slack_user_id,
            int(claims.expires_at.timestamp()),
        ]
        if claims.browser is not None:
            fields.append(claims.browser)
        body = _b64(json.dumps(fields, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, state: str, now: datetime) -> StateClaims:
        body, _, signature = state.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise StateError(N_("This link is not valid. Start again with /conferences link."))
        try:
            nonce, team_id, user_id, expires, *rest = json.loads(_unb64(body))
            expires_at = datetime.fromtimestamp(int(expires), tz=now.tzinfo)
        except (ValueError, TypeError, OverflowError):
            raise StateError(N_("This link is not valid. Start again with /conferences link.")) from None
        if expires_at <= now:
            raise StateError(N_("This link has expired. Run /conferences link again."))
        browser = str(rest[0]) if rest else None
        return StateClaims(str(nonce), str(team_id), str(user_id), expires_at, browser)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
