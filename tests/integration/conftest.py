"""Fixtures shared by the `confbot check` tests (tests/integration/test_check*.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from tests.support import SIGNING_SECRET, Sandbox, SlackWorld, fernet_key


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's shell or a `.env` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, canvas_sandbox: Sandbox, slack: SlackWorld
) -> dict[str, str]:
    """A complete single-workspace configuration pointing at the sandboxes; tests tweak it."""
    _clean_env(monkeypatch, tmp_path)
    values = {
        "CANVAS_BASE_URL": canvas_sandbox.url,
        "SLACK_API_URL": slack.slack.url + "/api/",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'confbot.db'}",
        "TOKEN_ENCRYPTION_KEYS": fernet_key(),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
