"""`.env.example` documents every setting (operators copy it as their starting point)."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_names_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= named
