"""Settings validation as pure logic: each mistake is one line that names the setting, never a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, SlackMode, load_settings, slack_mode
from tests.support import fernet_key

BASE: dict[str, Any] = {"_env_file": None, "canvas_base_url": "https://canvas.example.edu"}


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        ({"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}, SlackMode.HTTP),
        ({"slack_bot_token": "xoxb-1", "slack_app_token": "xapp-1"}, SlackMode.SOCKET),
        (
            {"slack_client_id": "1.2", "slack_client_secret": "c", "slack_signing_secret": "s"},
            SlackMode.MULTI_WORKSPACE,
        ),
    ],
)
def test_complete_credentials_select_their_mode(values: dict[str, str], mode: SlackMode) -> None:
    assert slack_mode(load_settings(**{**BASE, **values})) is mode


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({}, "no Slack credentials"),
        ({"slack_signing_secret": "s"}, "no Slack credentials"),
        ({"slack_bot_token": "xoxb-1"}, "SLACK_SIGNING_SECRET is required in HTTP mode"),
        ({"slack_app_token": "xapp-1"}, "SLACK_BOT_TOKEN is required in Socket Mode"),
        (
            {"slack_client_id": "1", "slack_client_secret": "c"},
            "SLACK_SIGNING_SECRET is required in multi-workspace mode",
        ),
        (
            {
                "slack_client_id": "1",
                "slack_client_secret": "c",
                "slack_signing_secret": "s",
                "slack_bot_token": "xoxb-1",
            },
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set",
        ),
    ],
)
def test_incomplete_modes_are_refused_for_serving_only(values: dict[str, str], named: str) -> None:
    settings = load_settings(**{**BASE, **values})  # link, keys and db upgrade need no Slack mode
    with pytest.raises(ConfigError, match=named):
        slack_mode(settings)
    with pytest.raises(ConfigError, match=named):
        load_settings(serving=True, **{**BASE, **values})


def test_a_bad_key_is_named_without_echoing_it() -> None:
    secret = "definitely-not-a-fernet-key-but-secret"
    with pytest.raises(ConfigError) as caught:
        load_settings(**{**BASE, "token_encryption_keys": f"{fernet_key()},{secret}"})
    message = str(caught.value)
    assert "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys" in message
    assert secret not in message and "\n" not in message
    assert caught.value.fields == {"token_encryption_keys"}


def test_several_mistakes_are_still_one_line_naming_each() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**{**BASE, "port": "http", "log_level": "loud", "poll_interval_seconds": "-1"})
    message = str(caught.value)
    assert "\n" not in message
    assert "PORT must be a valid integer" in message and "e.g. PORT=3000" in message
    assert "LOG_LEVEL must be one of DEBUG, INFO" in message
    assert "POLL_INTERVAL_SECONDS must be greater than 0" in message
    assert caught.value.fields == {"port", "log_level", "poll_interval_seconds"}


def test_database_urls_are_normalised_or_refused_without_the_password() -> None:
    assert (
        load_settings(**BASE, database_url="postgres://u:p@h/db").database_url
        == "postgresql+asyncpg://u:p@h/db"
    )
    assert load_settings(**BASE, database_url="sqlite:///x.db").database_url == "sqlite+aiosqlite:///x.db"
    with pytest.raises(ConfigError) as caught:
        load_settings(**BASE, database_url="mysql://u:hunter2secret@h/db")
    assert "DATABASE_URL must start with" in str(caught.value) and "hunter2secret" not in str(caught.value)


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "")
    assert load_settings(**BASE).slack_app_token is None


def test_a_missing_database_directory_is_refused_for_serving(tmp_path: Path) -> None:
    values = {**BASE, "slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}
    with pytest.raises(ConfigError, match=r"DATABASE_URL points into .* which does not exist"):
        load_settings(serving=True, **values, database_url=f"sqlite+aiosqlite:///{tmp_path}/nope/x.db")


@pytest.mark.parametrize(
    ("values", "reads"),
    [
        ({"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}, 50.0),  # internal app: Tier 3
        ({"slack_client_id": "1.2", "slack_client_secret": "c", "slack_signing_secret": "s"}, 1.0),
        ({"slack_bot_token": "xoxb-1", "slack_history_reads_per_minute": "20"}, 20.0),  # the operator said
    ],
)
def test_history_reads_follow_what_slack_allows_the_kind_of_app(values: dict[str, str], reads: float) -> None:
    assert load_settings(**{**BASE, **values}).history_reads_per_minute == reads
