"""Fixtures: sandbox Canvas and Slack on loopback, and the bot as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import start_in_thread
from bot.sandbox.slack import create_slack_app
from tests.faults import FaultProxy
from tests.support import BotProcess, CanvasWorld, Sandbox, SlackWorld, sandbox_bot

SLOWEST_FIRST = ("tests/e2e/test_soak.py",)
"""Modules whose tests run minutes: started first, so the parallel run (pytest-xdist, `-n` in
pyproject.toml) finishes the other tests beside them instead of waiting for them at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(SLOWEST_FIRST))


@pytest.fixture
def canvas_sandbox() -> Iterator[Sandbox]:
    server = start_in_thread(create_canvas_app())
    yield Sandbox(server)
    server.stop(wait=False)


@pytest.fixture
def slack_sandbox() -> Iterator[Sandbox]:
    server = start_in_thread(create_slack_app())
    yield Sandbox(server)
    server.stop(wait=False)


@pytest.fixture
def canvas(canvas_sandbox: Sandbox) -> CanvasWorld:
    return CanvasWorld(canvas_sandbox)


@pytest.fixture
def slack(slack_sandbox: Sandbox) -> SlackWorld:
    world = SlackWorld(slack_sandbox)
    world.setup()
    return world


@pytest.fixture
def bot(tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld) -> Iterator[BotProcess]:
    process = sandbox_bot(tmp_path, canvas.canvas.url, slack.slack.url, slack.bot_token)
    yield process
    process.stop()


@pytest.fixture
def canvas_faults(canvas_sandbox: Sandbox) -> Iterator[FaultProxy]:
    """A fault proxy in front of the sandbox Canvas (point the bot at `.url`)."""
    proxy = FaultProxy(canvas_sandbox.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def slack_faults(slack_sandbox: Sandbox) -> Iterator[FaultProxy]:
    """A fault proxy in front of the sandbox Slack (point the bot at `.url + "/api/"`)."""
    proxy = FaultProxy(slack_sandbox.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def faulty_bot(
    tmp_path: Path,
    canvas: CanvasWorld,
    slack: SlackWorld,
    canvas_faults: FaultProxy,
    slack_faults: FaultProxy,
) -> Iterator[BotProcess]:
    """`confbot run` reaching Canvas and Slack only through the fault proxies."""
    process = sandbox_bot(
        tmp_path, canvas_faults.url, slack_faults.url, slack.bot_token, CANVAS_TIMEOUT_SECONDS="2"
    )
    yield process
    process.stop()
