"""`confbot check` against the sandbox Canvas and Slack and a real SQLite file.

Each test sets the environment an operator would, runs the check in-process (one test runs the real
`confbot check` command), and reads the printed lines as the operator would.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from bot.ops.check import migrations_result, run_check
from bot.store.db import upgrade
from tests.support import SlackWorld


def check(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], canvas_token: str | None = None
) -> tuple[int, list[str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    code = run_check(out, canvas_token=canvas_token)
    return code, out.getvalue().splitlines()


def line(lines: list[str], name: str) -> str:
    """The line of one item; lines read `ok    <item>: ...` or `FAIL  <item>: ...`."""
    matches = [item for item in lines if item.split(":", 1)[0].split(None, 1)[-1] == name]
    assert matches, f"no {name!r} line in:\n" + "\n".join(lines)
    return matches[0]


def assert_no_secrets(lines: list[str], env: dict[str, str]) -> None:
    text = "\n".join(lines)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TOKEN_ENCRYPTION_KEYS"):
        if env.get(name):
            assert env[name] not in text, f"{name} was printed"


def test_all_ok_after_db_upgrade(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    upgrade(env["DATABASE_URL"])

    code, lines = check(monkeypatch, env)

    failed = [item for item in lines if item.startswith("FAIL")]
    assert code == 0, "\n".join(lines)
    assert failed == []
    assert lines[-1] == "all checks passed"
    assert "T0001" in line(lines, "slack")
    assert line(lines, "migrations").startswith("ok")
    assert "set (hidden)" in line(lines, "SLACK_BOT_TOKEN")
    assert_no_secrets(lines, env)


def test_missing_database_file_says_run_db_upgrade(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    code, lines = check(monkeypatch, env)

    assert code == 1
    assert "confbot db upgrade" in line(lines, "migrations")
    assert not (tmp_path / "confbot.db").exists(), "check must not create the database"


def test_empty_database_says_run_db_upgrade(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "confbot.db").touch()

    code, lines = check(monkeypatch, env)

    assert code == 1
    assert line(lines, "database").startswith("ok")
    migrations = line(lines, "migrations")
    assert migrations.startswith("FAIL")
    assert "run `confbot db upgrade`" in migrations


def test_wrong_slack_token_reports_invalid_auth_with_a_fix(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    upgrade(env["DATABASE_URL"])
    env["SLACK_BOT_TOKEN"] = "xoxb-not-a-real-token-123456"

    code, lines = check(monkeypatch, env)

    assert code == 1
    slack_line = line(lines, "slack")
    assert slack_line.startswith("FAIL")
    assert "invalid_auth" in slack_line
    assert "OAuth & Permissions" in slack_line
    assert line(lines, "canvas").startswith("ok"), "one bad token must not hide the other checks"
    assert_no_secrets(lines, env)


def test_user_token_instead_of_bot_token_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    env["SLACK_BOT_TOKEN"] = "xoxp-a-user-token-123456"

    code, lines = check(monkeypatch, env)

    assert code == 1
    settings_line = line(lines, "settings")
    assert "SLACK_BOT_TOKEN" in settings_line and "xoxb-" in settings_line
    assert_no_secrets(lines, env)


def test_missing_canvas_base_url_gives_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    upgrade(env["DATABASE_URL"])
    monkeypatch.delenv("CANVAS_BASE_URL")
    del env["CANVAS_BASE_URL"]

    code, lines = check(monkeypatch, env)

    assert code == 1
    mentions = [item for item in lines if "CANVAS_BASE_URL is required" in item]
    assert mentions == ["FAIL  settings: configuration error: CANVAS_BASE_URL is required (see .env.example)"]
    assert "CANVAS_BASE_URL" in line(lines, "canvas")
    # The rest of the configuration is still checked, so the operator fixes everything in one go.
    assert line(lines, "slack").startswith("ok")
    assert line(lines, "migrations").startswith("ok")


def test_a_url_that_is_not_canvas_is_reported(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], slack: SlackWorld
) -> None:
    env["CANVAS_BASE_URL"] = slack.slack.url

    code, lines = check(monkeypatch, env)

    assert code == 1
    canvas_line = line(lines, "canvas")
    assert canvas_line.startswith("FAIL")
    assert "CANVAS_BASE_URL" in canvas_line


def test_unreachable_database_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    from bot.sandbox.server import free_port

    env["DATABASE_URL"] = f"postgresql+asyncpg://confbot:s3cret-password@127.0.0.1:{free_port()}/confbot"

    code, lines = check(monkeypatch, env)

    assert code == 1
    assert line(lines, "database").startswith("FAIL")
    assert "DATABASE_URL" in line(lines, "database")
    assert "s3cret-password" not in "\n".join(lines)


def test_confbot_check_command_exit_status(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "CANVAS_BASE_URL is required" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_migration_states_name_the_fix() -> None:
    assert migrations_result({"0001"}, {"0001"}, {"0001"}).ok
    behind = migrations_result({"0001"}, {"0002"}, {"0001", "0002"})
    assert not behind.ok and "confbot db upgrade" in behind.message
    ahead = migrations_result({"0003"}, {"0002"}, {"0001", "0002"})
    assert not ahead.ok and "upgrade confbot" in ahead.message


def test_unparseable_database_url_is_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    env["DATABASE_URL"] = "not a url"

    code, lines = check(monkeypatch, env)

    assert code == 1
    assert "DATABASE_URL" in line(lines, "database")
    assert line(lines, "canvas").startswith("ok")


def test_unreachable_canvas_says_dns_or_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from bot.sandbox.server import free_port

    env["CANVAS_BASE_URL"] = "http://canvas.invalid"
    _, lines = check(monkeypatch, env)
    assert "DNS lookup failed" in line(lines, "canvas")

    env["CANVAS_BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    _, lines = check(monkeypatch, env)
    assert "connection refused" in line(lines, "canvas")


def test_a_key_run_refuses_is_refused_by_check(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    upgrade(env["DATABASE_URL"])
    env["TOKEN_ENCRYPTION_KEYS"] = "notakey"

    code, lines = check(monkeypatch, env)

    assert code == 1
    assert "TOKEN_ENCRYPTION_KEYS must be comma-separated Fernet keys" in line(lines, "settings")
    assert not any("set (hidden)" in item for item in lines if "TOKEN_ENCRYPTION_KEYS" in item)
