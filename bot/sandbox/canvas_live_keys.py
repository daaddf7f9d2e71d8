"""The sandbox's Live Events signing keys: previous, current and next RSA key, rotated like Instructure's.

Instructure publishes a JWK set with three keys and signs with the middle one; a rotation retires the
previous key, signs with what was next, and publishes a fresh next one. A receiver that cached the set
therefore keeps verifying across one rotation without refetching; only a second rotation (or a missed
fetch) brings a `kid` it has never seen, which is what the bot's refetch-on-unknown-kid is for.

Keys are generated on first use: RSA generation costs tens of milliseconds, and most sandboxes never
emit a Live Event.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_BITS = 2048
TOKEN_LIFETIME_SECONDS = 300
"""How long a signed delivery stays valid (`exp - iat`)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


class LiveEventsKeyRing:
    """Three published keys (previous, current, next) and a rogue one that is never published."""

    def __init__(self) -> None:
        self._serial = itertools.count(1)
        self._keys: list[SigningKey] = []
        self._rogue: SigningKey | None = None

    def _new_key(self) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        return SigningKey(kid=f"sandbox-live-events-{next(self._serial)}", private_key=key)

    def _published(self) -> list[SigningKey]:
        if not self._keys:
            self._keys = [self._new_key() for _ in range(3)]
        return self._keys

    @property
    def current_kid(self) -> str:
        return self._published()[1].kid

    def jwks(self) -> dict[str, Any]:
        """The JWK set as Instructure serves it: `{"keys": [previous, current, next]}`, public parts only."""
        return {"keys": [key.public_jwk() for key in self._published()]}

    def rotate(self) -> str:
        """Retire the previous key, sign with the next one, publish a new next one; the new current kid."""
        _retired, current, upcoming = self._published()
        self._keys = [current, upcoming, self._new_key()]
        return self.current_kid

    def sign(self, event: dict[str, Any], *, forged: bool = False, expired: bool = False) -> str:
        """A compact RS256 JWT whose claims are the event plus `iat`/`exp`, with the signing key's `kid`.

        `forged` signs with a key outside the set under the current kid (a signature that cannot verify);
        `expired` dates the token so that `exp` passed ten minutes ago. Times are real Unix seconds, not
        the sandbox clock: the receiver judges them on its own clock, which tests do not move.
        """
        current = self._published()[1]
        key = current
        if forged:
            if self._rogue is None:
                self._rogue = self._new_key()
            key = self._rogue
        issued = int(time.time()) - (TOKEN_LIFETIME_SECONDS + 600 if expired else 0)
        claims = {**event, "iat": issued, "exp": issued + TOKEN_LIFETIME_SECONDS}
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": current.kid})
