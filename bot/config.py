"""Settings from the environment and `.env`, validated once at start-up.

Every name here is a contract (see DESIGN.md): deploy manifests and operators set them by these names.
"""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line an operator can act on."""


class Settings(BaseSettings):
    """The bot's configuration. Secrets are SecretStr so they never show up in reprs or logs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    canvas_base_url: AnyHttpUrl = Field(description="Canvas root URL, e.g. https://canvas.example.edu")
    canvas_client_id: str | None = Field(default=None, description="Canvas developer key id (OAuth linking)")
    canvas_client_secret: SecretStr | None = Field(default=None, description="Canvas developer key secret")
    slack_bot_token: SecretStr | None = Field(default=None, description="xoxb- token, single-workspace mode")
    slack_signing_secret: SecretStr | None = Field(default=None, description="Verifies requests from Slack")
    slack_app_token: SecretStr | None = Field(default=None, description="xapp- token: Socket Mode")
    slack_client_id: str | None = Field(default=None, description="Slack app client id (multi-workspace)")
    slack_client_secret: SecretStr | None = Field(default=None, description="Slack app client secret")
    slack_api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://slack.com/api/"), description="Slack Web API base URL"
    )
    public_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://localhost:3000"), description="Where Slack and Canvas redirect back to"
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///confbot.db", description="SQLAlchemy async database URL"
    )
    token_encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys; the first encrypts. Unset: generated next to the DB",
    )
    poll_interval_seconds: float = Field(default=60, gt=0, description="How often each user is polled")
    canvas_timeout_seconds: float = Field(default=15, gt=0, description="Timeout of one Canvas request")
    poll_concurrency: int = Field(
        default=200,
        ge=1,
        description="Canvas requests in flight at once (100k users a minute at 100 ms needs ~170)",
    )
    host: str = Field(default="0.0.0.0", description="HTTP bind address")  # noqa: S104 - a server's default
    port: int = Field(default=3000, ge=0, le=65535, description="HTTP port")
    log_level: str = Field(default="INFO", description="Python logging level")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        return value

    @model_validator(mode="after")
    def _slack_mode_is_complete(self) -> Settings:
        if self.slack_client_id and not self.slack_client_secret:
            raise ValueError("SLACK_CLIENT_SECRET is required when SLACK_CLIENT_ID is set")
        if self.canvas_client_id and not self.canvas_client_secret:
            raise ValueError("CANVAS_CLIENT_SECRET is required when CANVAS_CLIENT_ID is set")
        return self

    @property
    def canvas_root(self) -> str:
        """Base URL without a trailing slash, ready for f-strings."""
        return str(self.canvas_base_url).rstrip("/")

    @property
    def public_root(self) -> str:
        return str(self.public_base_url).rstrip("/")

    @property
    def slack_api_root(self) -> str:
        """slack_sdk wants the base URL with a trailing slash."""
        url = str(self.slack_api_url)
        return url if url.endswith("/") else url + "/"

    @property
    def canvas_oauth_enabled(self) -> bool:
        return bool(self.canvas_client_id and self.canvas_client_secret)

    @cached_property
    def sqlite_path(self) -> Path | None:
        """File of a SQLite database, or None for other backends and in-memory SQLite."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        rest = self.database_url.removeprefix(prefix).split("?", 1)[0]
        return None if rest in ("", ":memory:") else Path(rest)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        name = "_".join(str(p) for p in item["loc"]).upper() or "settings"
        message = "is required" if item["type"] == "missing" else item["msg"]
        parts.append(f"{name} {message}")
    return "; ".join(parts)


def load_settings(**overrides: object) -> Settings:
    """Build Settings or raise ConfigError with one readable line (never a pydantic traceback)."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(f"configuration error: {_describe(error)} (see .env.example)") from None


def load_settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
