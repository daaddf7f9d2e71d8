"""The operator CLI as an operator meets it: real `confbot` processes, their stderr and exit status.

Every bad configuration is one line and exit status 2 before anything is created, and `confbot check`
fails on the same configuration; `confbot link` reads the token off argv and says what went wrong
(a refused token, a host that does not resolve, nothing listening, TLS, a timeout, not a Canvas).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.sandbox.server import free_port
from bot.store.db import upgrade
from tests.faults import Fault, FaultProxy, html_page
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, Sandbox, SlackWorld, fernet_key

pytestmark = pytest.mark.e2e

SETTING_PREFIXES = ("CANVAS_", "SLACK_", "DATABASE_", "TOKEN_", "POLL_", "PORT", "HOST", "LOG_", "PUBLIC_")


def confbot(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """One `confbot` command; stdin is a pipe with `stdin` (or empty), never the test runner's terminal."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=90,
    )


def clean_env() -> dict[str, str]:
    """The test runner's environment without any confbot setting a developer may have exported."""
    return {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}


def test_missing_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = confbot("run", env=clean_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: CANVAS_BASE_URL is required (see .env.example)"
    ]


# --- the table of bad configurations -----------------------------------------------------------


@dataclass
class Deployment:
    """A complete single-workspace configuration against the sandboxes, which `confbot check` passes."""

    env: dict[str, str]
    migrated_db: Path

    def with_changes(self, changes: dict[str, str | None], database: Path) -> dict[str, str]:
        env = {**self.env, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env


@pytest.fixture
def deployment(tmp_path: Path, canvas_sandbox: Sandbox, slack: SlackWorld) -> Deployment:
    migrated = tmp_path / "migrated" / "confbot.db"
    migrated.parent.mkdir()
    upgrade(f"sqlite+aiosqlite:///{migrated}")
    env = clean_env()
    env.update(
        {
            "CANVAS_BASE_URL": canvas_sandbox.url,
            "SLACK_API_URL": slack.slack.url + "/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "TOKEN_ENCRYPTION_KEYS": fernet_key(),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
        }
    )
    return Deployment(env, migrated)


# (id, changes to the good configuration, the setting the one line must name)
BAD_CONFIGURATIONS: list[tuple[str, dict[str, str | None], str]] = [
    ("key not fernet", {"TOKEN_ENCRYPTION_KEYS": "notakey"}, "TOKEN_ENCRYPTION_KEYS"),
    ("second key broken", {"TOKEN_ENCRYPTION_KEYS": fernet_key() + ",tooshort"}, "TOKEN_ENCRYPTION_KEYS"),
    ("canvas url missing", {"CANVAS_BASE_URL": None}, "CANVAS_BASE_URL"),
    ("canvas url not a url", {"CANVAS_BASE_URL": "canvas example edu"}, "CANVAS_BASE_URL"),
    ("canvas url with api path", {"CANVAS_BASE_URL": "https://canvas.example.edu/api/v1"}, "CANVAS_BASE_URL"),
    ("no slack credentials", {"SLACK_BOT_TOKEN": None, "SLACK_SIGNING_SECRET": None}, "SLACK_BOT_TOKEN"),
    ("http mode without signing secret", {"SLACK_SIGNING_SECRET": None}, "SLACK_SIGNING_SECRET"),
    ("user token as bot token", {"SLACK_BOT_TOKEN": "xoxp-1-a-user-token"}, "SLACK_BOT_TOKEN"),
    (
        "socket mode without bot token",
        {"SLACK_APP_TOKEN": "xapp-1-A1-1-abc", "SLACK_BOT_TOKEN": None},
        "SLACK_BOT_TOKEN",
    ),
    ("bot token as app token", {"SLACK_APP_TOKEN": "xoxb-1-not-an-app-token"}, "SLACK_APP_TOKEN"),
    (
        "client id without secret",
        {"SLACK_CLIENT_ID": "1.2", "SLACK_BOT_TOKEN": None},
        "SLACK_CLIENT_SECRET",
    ),
    (
        "multi-workspace without signing secret",
        {
            "SLACK_CLIENT_ID": "1.2",
            "SLACK_CLIENT_SECRET": "client-secret",
            "SLACK_BOT_TOKEN": None,
            "SLACK_SIGNING_SECRET": None,
        },
        "SLACK_SIGNING_SECRET",
    ),
    ("mysql database", {"DATABASE_URL": "mysql://confbot:pw@localhost/confbot"}, "DATABASE_URL"),
    (
        "database in a missing directory",
        {"DATABASE_URL": "sqlite+aiosqlite:///no/such/dir/x.db"},
        "DATABASE_URL",
    ),
    ("port not a number", {"PORT": "http"}, "PORT"),
    ("port out of range", {"PORT": "70000"}, "PORT"),
    ("poll interval zero", {"POLL_INTERVAL_SECONDS": "0"}, "POLL_INTERVAL_SECONDS"),
    ("concurrency zero", {"POLL_CONCURRENCY": "0"}, "POLL_CONCURRENCY"),
    ("log level unknown", {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ("public url without scheme", {"PUBLIC_BASE_URL": "localhost:3000"}, "PUBLIC_BASE_URL"),
]


def test_the_good_configuration_passes_check(deployment: Deployment, tmp_path: Path) -> None:
    """The table below means something only if its starting point is a configuration check passes."""
    result = confbot("check", env=deployment.with_changes({}, deployment.migrated_db), cwd=tmp_path)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("changes", "setting"),
    [pytest.param(changes, setting, id=name) for name, changes, setting in BAD_CONFIGURATIONS],
)
def test_a_bad_configuration_is_one_line_exit_2_nothing_created_and_check_fails(
    deployment: Deployment, tmp_path: Path, changes: dict[str, str | None], setting: str
) -> None:
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = deployment.with_changes(changes, workdir / "confbot.db")

    result = confbot("run", env=env, cwd=workdir)

    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert list(workdir.iterdir()) == [], "nothing may be created: no database, no generated key file"
    for secret in ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS"):
        if secret in env and len(env[secret]) > 6:
            assert env[secret] not in result.stderr

    checked = confbot("check", env=deployment.with_changes(changes, deployment.migrated_db), cwd=workdir)

    assert checked.returncode != 0, checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr
    assert list(workdir.iterdir()) == []


# --- confbot link ------------------------------------------------------------------------------


def link_env(bot: BotProcess, **changes: str) -> dict[str, str]:
    env = bot.full_env()
    env.update(changes)
    return env


def test_link_checks_the_token_before_saving(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> None:
    refused = confbot(
        "link",
        "--slack-user",
        "UADA",
        "--team",
        "T0001",
        env=bot.full_env(),
        cwd=bot.workdir,
        stdin="1~forged\n",
    )
    assert refused.returncode == 1 and "Canvas refused the token" in refused.stderr
    assert "1~forged" not in refused.stderr + refused.stdout
    with sqlite3.connect(bot.db_path) as db:
        assert db.execute("SELECT count(*) FROM linked_users").fetchone()[0] == 0

    ada = canvas.user("Ada Lovelace")
    linked = confbot(
        "link",
        "--slack-user",
        "UADA",
        "--team",
        "T0001",
        env=bot.full_env(),
        cwd=bot.workdir,
        stdin=ada["token"],
    )
    assert linked.returncode == 0, linked.stderr
    assert "Ada Lovelace" in linked.stdout and ada["token"] not in linked.stdout + linked.stderr
    assert "warning" not in linked.stderr


def test_link_takes_the_token_from_stdin_without_argv_and_finds_the_team(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    grace = canvas.user("Grace Hopper")
    linked = confbot(
        "link", "--slack-user", "UGRACE", env=bot.full_env(), cwd=bot.workdir, stdin=grace["token"] + "\n"
    )
    assert linked.returncode == 0, linked.stderr
    assert "team T0001" in linked.stdout and "Grace Hopper" in linked.stdout

    dashed = confbot(
        "link",
        "--slack-user",
        "UGRACE",
        "--canvas-token",
        "-",
        env=bot.full_env(),
        cwd=bot.workdir,
        stdin=grace["token"],
    )
    assert dashed.returncode == 0, dashed.stderr


def test_a_token_in_argv_still_works_but_warns(canvas: CanvasWorld, bot: BotProcess) -> None:
    ada = canvas.user("Ada Lovelace")
    linked = confbot(
        "link",
        "--slack-user",
        "UADA",
        "--team",
        "T0001",
        "--canvas-token",
        ada["token"],
        env=bot.full_env(),
        cwd=bot.workdir,
    )
    assert linked.returncode == 0, linked.stderr
    assert "visible to other users" in linked.stderr
    assert ada["token"] not in linked.stderr


def test_link_without_a_token_or_a_slack_user_is_refused_before_the_database(bot: BotProcess) -> None:
    empty = confbot("link", "--slack-user", "UADA", "--team", "T0001", env=bot.full_env(), cwd=bot.workdir)
    assert empty.returncode == 2 and "no Canvas token given" in empty.stderr
    nobody = confbot(
        "link", "--slack-user", "", "--team", "T0001", env=bot.full_env(), cwd=bot.workdir, stdin="t"
    )
    assert nobody.returncode == 2 and "is not a Slack user id" in nobody.stderr
    assert not bot.db_path.exists()


@pytest.fixture
def proxied_bot(tmp_path: Path, slack: SlackWorld, canvas_faults: FaultProxy) -> BotProcess:
    return BotProcess(
        workdir=tmp_path,
        env={
            "CANVAS_BASE_URL": canvas_faults.url,
            "SLACK_API_URL": slack.slack.url + "/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": fernet_key(),
            "CANVAS_TIMEOUT_SECONDS": "1",
        },
    )


def link_error(bot: BotProcess, token: str = "7~any", **env: str) -> str:
    result = confbot(
        "link",
        "--slack-user",
        "UADA",
        "--team",
        "T0001",
        env=link_env(bot, **env),
        cwd=bot.workdir,
        stdin=token,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert token not in lines[0]
    return lines[0]


def test_link_names_each_network_failure_and_never_blames_the_token(
    canvas: CanvasWorld, canvas_sandbox: Sandbox, canvas_faults: FaultProxy, proxied_bot: BotProcess
) -> None:
    token = canvas.user("Ada Lovelace")["token"]
    errors = {
        "dns": link_error(proxied_bot, token, CANVAS_BASE_URL="http://canvas.invalid"),
        "refused": link_error(proxied_bot, token, CANVAS_BASE_URL=f"http://127.0.0.1:{free_port()}"),
        "tls": link_error(
            proxied_bot, token, CANVAS_BASE_URL=canvas_sandbox.url.replace("http://", "https://")
        ),
    }
    with canvas_faults.active(Fault("hang", path="users/self")):
        errors["timeout"] = link_error(proxied_bot, token)
    with canvas_faults.active(html_page(200, path="users/self")):
        errors["not canvas"] = link_error(proxied_bot, token)
    errors["refused token"] = link_error(proxied_bot, "1~forged")

    assert "DNS lookup failed" in errors["dns"]
    assert "connection refused" in errors["refused"]
    assert "TLS error" in errors["tls"]
    assert "timed out" in errors["timeout"]
    assert "is not a Canvas" in errors["not canvas"]
    assert errors["refused token"].startswith("Canvas refused the token")
    for kind, message in errors.items():
        if kind != "refused token":
            assert "refused the token" not in message, message
    assert len(set(errors.values())) == len(errors)


# --- help and version --------------------------------------------------------------------------


def test_version_and_help_texts(tmp_path: Path) -> None:
    from importlib import metadata

    version = confbot("--version", env=clean_env(), cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.strip() == f"confbot {metadata.version('canvas-confbot')}"

    for command in (
        ["run"],
        ["link"],
        ["demo"],
        ["check"],
        ["keys"],
        ["keys", "rotate"],
        ["db"],
        ["db", "upgrade"],
    ):
        shown = confbot(*command, "--help", env=clean_env(), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        _usage, _, rest = shown.stdout.partition("\n\n")
        description = rest.split("\n", 1)[0]
        assert len(description) > 10 and description[0].isupper(), shown.stdout
        examples = shown.stdout.split("\nexamples:\n", 1)[1]
        assert "confbot " + " ".join(command) in examples, shown.stdout


def test_run_logs_one_line_per_component_and_no_library_chatter(bot: BotProcess) -> None:
    bot.start()
    lines = [line for line in bot.logs().splitlines() if line.strip()]

    said = " | ".join(lines)
    assert any("slack: HTTP mode, one workspace" in line for line in lines), said
    assert any(f"http: listening on 127.0.0.1:{bot.port}" in line for line in lines), said
    assert any("poller: every 1s per user" in line for line in lines), said
    assert any(f"database: SQLite file {bot.db_path}" in line for line in lines), said
    assert "alembic" not in said and "setup plugin" not in said
    assert "token will be unused" not in said
    assert len(lines) <= 6, said  # the version line, four components, the generated key warning at most
