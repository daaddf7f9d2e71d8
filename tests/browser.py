"""Headless Chromium for the demo page's browser tests, and where their screenshots are kept.

Screenshots are test artefacts: they go to `test-artifacts/` at the repository root (gitignored;
`CONFBOT_TEST_ARTIFACTS` moves it), and each test prints the path it wrote, so CI logs point at them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
)


def artifact_path(name: str) -> Path:
    """Where a test keeps `name`; the directory is created on demand."""
    default = Path(__file__).resolve().parents[1] / "test-artifacts"
    root = Path(os.environ.get("CONFBOT_TEST_ARTIFACTS") or default)
    root.mkdir(parents=True, exist_ok=True)
    return root / name
