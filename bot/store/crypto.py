"""Token encryption at rest with Fernet; several keys allow rotation (the first one encrypts)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)

KEY_FILE_NAME = "confbot.keys"


class TokenCipher:
    """Encrypts Canvas tokens; decrypts with any configured key so old rows stay readable during rotation."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one Fernet key is required")
        try:
            self._fernets = [Fernet(key.strip().encode()) for key in keys]
        except (ValueError, TypeError):
            raise ValueError(
                "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys "
                "(make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
        self._multi = MultiFernet(self._fernets)
        self._keys = [key.strip() for key in keys]

    def derived_secret(self, purpose: str) -> bytes:
        """A stable secret for signing (e.g. OAuth state), derived from the current encryption key."""
        return hashlib.sha256(purpose.encode() + b"\x00" + self._keys[0].encode()).digest()

    def encrypt(self, plaintext: str) -> bytes:
        return self._multi.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._multi.decrypt(ciphertext).decode()
        except InvalidToken:
            raise ValueError("token cannot be decrypted with the configured keys") from None

    def rotate(self, ciphertext: bytes) -> bytes:
        """Re-encrypt under the first key (MultiFernet.rotate keeps the original timestamp)."""
        return self._multi.rotate(ciphertext)


def parse_keys(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def load_or_create_keys(raw: str | None, key_dir: Path) -> list[str]:
    """Configured keys, or a key file next to the database created on first run (with a warning).

    Generating a key keeps `confbot run` a one-command start on SQLite; production sets the variable.
    """
    keys = parse_keys(raw)
    if keys:
        return keys
    path = key_dir / KEY_FILE_NAME
    if path.exists():
        return parse_keys(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "TOKEN_ENCRYPTION_KEYS is not set: generated a key in %s. Back it up with the database, "
        "or set TOKEN_ENCRYPTION_KEYS.",
        path,
    )
    return [key]
