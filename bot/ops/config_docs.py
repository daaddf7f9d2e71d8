"""The README's configuration table, generated from `Settings` so the docs cannot drift from the code.

`python -m bot.ops.config_docs` rewrites the block between the settings-table markers in README.md;
`python -m bot.ops.config_docs --check` only reports whether it is stale (exit 1), for CI.
A unit test compares the README block with `settings_table()`, so adding a setting without
regenerating the table fails the build.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from bot.config import Settings, is_secret_annotation

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def env_name(field_name: str) -> str:
    """pydantic-settings matches environment variables case-insensitively; upper case is the convention."""
    return field_name.upper()


def is_secret(field: FieldInfo) -> bool:
    """A SecretStr field (optional or not): its value must never appear in docs, logs or `confbot check`."""
    return is_secret_annotation(field.annotation)


def _cell(text: str) -> str:
    """Markdown table cells break on `|` and newlines."""
    return " ".join(text.split()).replace("|", "\\|")


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        # A secret with a built-in value would be a shared secret; show nothing rather than leak it.
        return "unset"
    return f"`{_cell(str(value))}`"


def settings_table() -> str:
    """The markdown table (name | meaning | default), one row per setting, in declaration order."""
    lines = ["| name | meaning | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = _cell(field.description or "")
        if is_secret(field):
            meaning = f"{meaning} (secret)" if meaning else "(secret)"
        lines.append(f"| {env_name(name)} | {meaning} | {default_text(field)} |")
    return "\n".join(lines)


def readme_block(text: str) -> str:
    """The current table between the markers (without them), stripped."""
    try:
        _head, rest = text.split(START, 1)
        body, _tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"README has no {START} ... {END} block") from None
    return body.strip()


def replace_block(text: str, table: str) -> str:
    head, rest = text.split(START, 1)
    _body, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.ops.config_docs", description=__doc__)
    parser.add_argument("readme", nargs="?", type=Path, default=README, help="README to update")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale, change nothing")
    args = parser.parse_args(argv)
    path: Path = args.readme
    text = path.read_text(encoding="utf-8")
    table = settings_table()
    if readme_block(text) == table:
        print(f"{path}: settings table is up to date")
        return 0
    if args.check:
        print(f"{path}: settings table is stale; run `python -m bot.ops.config_docs`", file=sys.stderr)
        return 1
    path.write_text(replace_block(text, table), encoding="utf-8")
    print(f"{path}: settings table rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
