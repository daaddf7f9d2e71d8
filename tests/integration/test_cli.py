"""The operator CLI: clear one-line errors, and `link` refuses a token Canvas does not accept."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.support import BotProcess, CanvasWorld, SlackWorld


def test_missing_setting_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CANVAS_", "SLACK_", "DATABASE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: CANVAS_BASE_URL is required (see .env.example)"
    ]


def test_link_checks_the_token_before_saving(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> None:
    refused = bot.cli(
        "link", "--slack-user", "UADA", "--team", "T0001", "--canvas-token", "1~forged", check=False
    )
    assert refused.returncode == 1 and "Canvas refused the token" in refused.stderr
    assert "1~forged" not in refused.stderr + refused.stdout
    with sqlite3.connect(bot.db_path) as db:
        assert db.execute("SELECT count(*) FROM linked_users").fetchone()[0] == 0

    ada = canvas.user("Ada Lovelace")
    linked = bot.cli("link", "--slack-user", "UADA", "--team", "T0001", "--canvas-token", ada["token"])
    assert "Ada Lovelace" in linked.stdout and ada["token"] not in linked.stdout + linked.stderr
