"""Settings from the environment and `.env`, validated once at start-up.

Every name here is a contract (see DESIGN.md): deploy manifests and operators set them by these names.
"""

from __future__ import annotations

import re
import sys
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.messages.i18n import supported_locale


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line an operator can act on.

    `fields` names the settings whose own value is invalid (empty when the values are fine one by one
    but their combination is not), so `confbot check` can stand in defaults and still run the rest.
    """

    def __init__(self, message: str, *, fields: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.fields = fields


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
MIN_PATH_SECRET_LENGTH = 32
_PATH_SECRET = re.compile(rf"[A-Za-z0-9_-]{{{MIN_PATH_SECRET_LENGTH},256}}")
MAKE_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"


class Settings(BaseSettings):
    """The bot's configuration. Secrets are SecretStr so they never show up in reprs or logs.

    Every value is checked here, before anything opens a database or a socket: a wrong setting must be
    one line at start-up, never a traceback from the first component that trips on it.
    """

    # An empty variable (`SLACK_APP_TOKEN=` in .env) means "unset", not "set to nothing".
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    canvas_base_url: AnyHttpUrl = Field(description="Canvas root URL, e.g. https://canvas.example.edu")
    canvas_client_id: str | None = Field(default=None, description="Canvas developer key id (OAuth linking)")
    canvas_client_secret: SecretStr | None = Field(default=None, description="Canvas developer key secret")
    canvas_live_events_jwks_url: AnyHttpUrl | None = Field(
        default=None,
        description="JWK set that signs Canvas Live Events (HTTPS delivery, Sign Payload on). Set: "
        "POST /canvas/live-events takes signed events",
    )
    canvas_live_events_secret: SecretStr | None = Field(
        default=None,
        description="Unsigned Canvas Live Events are taken only at POST /canvas/live-events/<this value> "
        "(at least 32 letters, digits, - or _)",
    )
    canvas_scopes: bool = Field(
        default=True,
        description="Name the Canvas scopes the bot needs in the authorize request (a key with Enforce "
        "Scopes requires them); `off` for a developer key without Enforce Scopes",
    )
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
    session_scan_interval_seconds: float = Field(
        default=600,
        gt=0,
        description="How often each user's full conference list is read (schedules, restarts after day one)",
    )
    reminder_lead_minutes: int = Field(
        default=10, ge=0, le=1440, description="Reminder DM this long before a scheduled start (0: none)"
    )
    host_nudge_minutes: int = Field(
        default=5, ge=1, le=120, description="Nudge a course's teachers this long after a missed start"
    )
    poll_buckets: int = Field(
        default=256,
        ge=1,
        le=65536,
        description="Partitions of the poll units that replicas lease (every replica must use the same "
        "number)",
    )
    poll_lease_seconds: float = Field(
        default=30,
        gt=0,
        description="A replica's lease on its poll buckets, renewed every third of it: a replica that dies "
        "loses its buckets after this long and another takes them",
    )
    poll_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Ceiling on Canvas polls in flight at once. The limit in force follows Little's law: "
        "units / POLL_INTERVAL_SECONDS x measured poll time x 2 (100k users every 30 s at 100 ms: ~670), "
        "at least 4, halved while Canvas throttles a noticeable share; metric confbot_poll_concurrency_limit",
    )
    slack_history_reads_per_minute: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="conversations.history reads a minute (only after an interrupted send). Unset: 50 "
        "with SLACK_BOT_TOKEN (an app built for its own workspace keeps Tier 3), 1 with SLACK_CLIENT_ID "
        "(a distributed app not in the Marketplace)",
    )
    host: str = Field(default="0.0.0.0", description="HTTP bind address")  # noqa: S104 - a server's default
    port: int = Field(default=3000, ge=0, le=65535, description="HTTP port")
    log_level: str = Field(default="INFO", description="Python logging level")
    default_language: str = Field(
        default="en",
        description="The workspace's language for channel posts without `/conferences language`: en, es "
        "or pt-BR (people get their own Slack language)",
    )

    @field_validator("canvas_base_url")
    @classmethod
    def _canvas_root(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if "/api/" in (value.path or "") + "/":
            raise ValueError("must be the Canvas root (e.g. https://canvas.example.edu), without /api/v1")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        elif value.startswith("sqlite:///"):
            value = "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in DATABASE_SCHEMES:
            shown = f"'{scheme}'" if scheme else "none"
            raise ValueError(
                f"must start with sqlite+aiosqlite:/// or postgresql+asyncpg:// (scheme: {shown}), "
                "e.g. sqlite+aiosqlite:///confbot.db"
            )
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL; e.g. postgresql+asyncpg://user:pass@host/db") from None
        return value

    @field_validator("token_encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
        if not keys or not all(_is_fernet_key(key) for key in keys):
            # Never echo the value: it is a secret even when it is malformed.
            raise ValueError(
                f"must be comma-separated Fernet keys (44 characters each); make one with: {MAKE_KEY}, "
                "or unset it to have a key generated next to the database"
            )
        return value

    @field_validator("canvas_live_events_secret")
    @classmethod
    def _live_events_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # It is a path segment that is the only proof of an unsigned delivery: long enough not to be
        # guessed, and nothing a URL would have to escape (Canvas's form takes the URL as typed).
        if value is not None and not _PATH_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError(
                f"must be at least {MIN_PATH_SECRET_LENGTH} letters, digits, - or _ (it is part of the URL "
                "Canvas posts to); make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError(
                "must be the Bot User OAuth Token (starts with xoxb-) from your app's OAuth & Permissions "
                "page, not a user (xoxp-) or app-level (xapp-) token"
            )
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be an app-level token (starts with xapp-) from Basic Information > App-Level Tokens, "
                "with the connections:write scope"
            )
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be an address to listen on, e.g. 0.0.0.0 or 127.0.0.1")
        return value.strip()

    @field_validator("default_language")
    @classmethod
    def _default_language(cls, value: str) -> str:
        code = value.strip().lower().replace("_", "-")
        if code not in ("en", "es", "pt-br", "pt"):
            raise ValueError("must be en, es or pt-BR")
        return supported_locale(code)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _pairs_are_complete(self) -> Settings:
        for id_name, secret_name in (
            ("slack_client_id", "slack_client_secret"),
            ("canvas_client_id", "canvas_client_secret"),
        ):
            has_id, has_secret = getattr(self, id_name) is not None, getattr(self, secret_name) is not None
            if has_id != has_secret:
                present, missing = (id_name, secret_name) if has_id else (secret_name, id_name)
                raise ValueError(
                    f"{missing.upper()} is required when {present.upper()} is set "
                    "(both come from the same app credentials page); set both or neither"
                )
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

    @property
    def history_reads_per_minute(self) -> float:
        """SLACK_HISTORY_READS_PER_MINUTE, or what Slack allows this kind of app: since 2025-05-29 a
        commercially distributed app outside the Marketplace (multi-workspace install) gets about one
        conversations.history read a minute; an internal app (one workspace, its own bot token) keeps
        Tier 3, about 50."""
        if self.slack_history_reads_per_minute is not None:
            return self.slack_history_reads_per_minute
        return 1.0 if self.slack_client_id is not None else 50.0

    @cached_property
    def sqlite_path(self) -> Path | None:
        """File of a SQLite database, or None for other backends and in-memory SQLite."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        rest = self.database_url.removeprefix(prefix).split("?", 1)[0]
        return None if rest in ("", ":memory:") else Path(rest)


def _is_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def _problem(item: ErrorDetails) -> tuple[str | None, str]:
    """(field, "NAME what is wrong and how to fix it") for one pydantic error, values of secrets unshown."""
    field = str(item["loc"][0]) if item["loc"] else None
    if field is None:  # a model validator: its message already names the settings
        return None, item["msg"].removeprefix("Value error, ")
    name = field.upper()
    if item["type"] == "missing":
        return field, f"{name} is required"
    message = item["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "must be", 1).replace("URL scheme should be", "must use", 1)
    info = Settings.model_fields.get(field)
    secret = info is not None and is_secret_annotation(info.annotation)
    if not secret and field != "database_url" and item["type"] != "value_error":
        # Show what was read (not for secrets, nor a database URL that may carry a password).
        message = f"{message} (got {item['input']!r})"
        if field in _EXAMPLES:
            message = f"{message}; e.g. {name}={_EXAMPLES[field]}"
    return field, f"{name} {message}"


# What a pydantic type error should point to, so the line carries its fix.
_EXAMPLES = {
    "canvas_base_url": "https://canvas.example.edu",
    "canvas_live_events_jwks_url": "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks",
    "slack_api_url": "https://slack.com/api/",
    "public_base_url": "https://confbot.example.edu",
    "poll_interval_seconds": "60",
    "canvas_timeout_seconds": "15",
    "poll_concurrency": "200",
    "poll_buckets": "256",
    "poll_lease_seconds": "30",
    "slack_history_reads_per_minute": "1",
    "port": "3000",
}


def is_secret_annotation(annotation: object) -> bool:
    """SecretStr or SecretStr | None: a value that must never be printed."""
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _config_error(error: ValidationError) -> ConfigError:
    problems = [_problem(item) for item in error.errors()]
    fields = frozenset(field for field, _ in problems if field is not None)
    text = "; ".join(message for _, message in problems)
    return ConfigError(f"configuration error: {text} (see .env.example)", fields=fields)


class SlackMode(StrEnum):
    """How Slack reaches the bot; each mode needs its own set of credentials."""

    HTTP = "HTTP"
    SOCKET = "Socket Mode"
    MULTI_WORKSPACE = "multi-workspace"


_CREDENTIALS_HELP = (
    "set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP), SLACK_APP_TOKEN and SLACK_BOT_TOKEN "
    "(Socket Mode), or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET (multi-workspace)"
)


def slack_mode(settings: Settings) -> SlackMode:
    """The Slack mode the credentials select, or ConfigError naming what the mode still lacks.

    Multi-workspace wins when a client id is set (each install brings its own bot token), Socket Mode
    when an app token is set, HTTP otherwise: the same precedence as `Runtime.build` and `web.py`.
    """
    if settings.slack_client_id is not None:
        if settings.slack_bot_token is not None:
            raise ConfigError(
                "configuration error: SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set; multi-workspace "
                "installs bring their own bot tokens: unset SLACK_BOT_TOKEN, or unset SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET for one workspace"
            )
        if settings.slack_signing_secret is None:
            raise ConfigError(
                "configuration error: SLACK_SIGNING_SECRET is required in multi-workspace mode "
                "(SLACK_CLIENT_ID is set); copy it from Basic Information > App Credentials"
            )
        return SlackMode.MULTI_WORKSPACE
    if settings.slack_app_token is not None:
        if settings.slack_bot_token is None:
            raise ConfigError(
                "configuration error: SLACK_BOT_TOKEN is required in Socket Mode (SLACK_APP_TOKEN is set); "
                "install the app and copy the xoxb- Bot User OAuth Token"
            )
        return SlackMode.SOCKET
    if settings.slack_bot_token is None:
        raise ConfigError(f"configuration error: no Slack credentials; {_CREDENTIALS_HELP}")
    if settings.slack_signing_secret is None:
        raise ConfigError(
            "configuration error: SLACK_SIGNING_SECRET is required in HTTP mode (SLACK_BOT_TOKEN is set); "
            "copy it from Basic Information > App Credentials, or set SLACK_APP_TOKEN for Socket Mode"
        )
    return SlackMode.HTTP


def validate_for_serving(settings: Settings) -> SlackMode:
    """Everything `confbot run` needs beyond valid values, checked before it touches anything.

    `confbot run` and `confbot check` both call this, so `check` can never pass what `run` refuses.
    It only reads: the database directory must exist (SQLite would fail deep inside a migration).
    """
    mode = slack_mode(settings)
    path = settings.sqlite_path
    if path is not None and not path.resolve().parent.is_dir():
        raise ConfigError(
            f"configuration error: DATABASE_URL points into {path.resolve().parent}, which does not exist; "
            "create the directory or fix DATABASE_URL",
            fields=frozenset({"database_url"}),
        )
    return mode


def display_database_url(url: str) -> str:
    """A database URL with its password masked (the URL is otherwise the most useful thing to show)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def load_settings(*, serving: bool = False, **overrides: Any) -> Settings:
    """Build Settings or raise ConfigError with one readable line (never a pydantic traceback).

    `serving=True` also requires a complete Slack mode and a usable database location (`confbot run`).
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise _config_error(error) from None
    if serving:
        validate_for_serving(settings)
    return settings


def load_settings_or_exit(*, serving: bool = False) -> Settings:
    """Settings for a command, or the one-line error on stderr and exit status 2."""
    try:
        return load_settings(serving=serving)
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
