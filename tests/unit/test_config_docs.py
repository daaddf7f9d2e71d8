"""The README's configuration table is generated from Settings and must stay in sync with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.ops.config_docs import END, README, START, is_secret, main, readme_block, settings_table


def test_readme_table_matches_the_settings() -> None:
    assert readme_block(README.read_text(encoding="utf-8")) == settings_table(), (
        "README configuration table is stale: run `python -m bot.ops.config_docs`"
    )


def test_every_setting_has_a_row_with_a_description() -> None:
    rows = settings_table().splitlines()[2:]
    names = [row.split("|")[1].strip() for row in rows]

    assert names == [name.upper() for name in Settings.model_fields]
    assert all(row.split("|")[2].strip() for row in rows), "a setting has no description"


def test_required_and_default_values_are_shown() -> None:
    rows = {row.split("|")[1].strip(): row.split("|")[3].strip() for row in settings_table().splitlines()[2:]}

    assert rows["CANVAS_BASE_URL"] == "required"
    assert rows["DATABASE_URL"] == "`sqlite+aiosqlite:///confbot.db`"
    assert rows["PORT"] == "`3000`"
    assert rows["SLACK_BOT_TOKEN"] == "unset"


def test_secrets_have_no_default_value() -> None:
    secrets = {name: field for name, field in Settings.model_fields.items() if is_secret(field)}

    assert "slack_bot_token" in secrets and "token_encryption_keys" in secrets
    assert all(field.get_default() is None for field in secrets.values())


def test_regenerating_rewrites_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nintro\n\n{START}\n| old | table |\n{END}\n\n## after\n", encoding="utf-8")

    assert main([str(readme), "--check"]) == 1
    assert main([str(readme)]) == 0

    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# title\n\nintro\n\n")
    assert text.endswith(f"{END}\n\n## after\n")
    assert readme_block(text) == settings_table()
    assert main([str(readme), "--check"]) == 0


def test_a_readme_without_markers_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n", encoding="utf-8")

    with pytest.raises(ValueError, match="settings-table"):
        main([str(readme)])
