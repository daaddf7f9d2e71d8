"""Fixtures: sandbox Canvas and Slack on loopback, and the bot as a real process."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.sandbox.canvas import create_canvas_app
from bot.sandbox.server import start_in_thread
from bot.sandbox.slack import create_slack_app
from tests.faults import FaultProxy
from tests.support import BotProcess, CanvasWorld, Sandbox, SlackWorld, sandbox_bot

E2E = "tests/e2e/"


def _phase(item: pytest.Item) -> int:
    """0: the chaos soak, 1: tests in process, 2: tests that start processes."""
    if item.get_closest_marker("soak"):
        return 0
    return 2 if item.nodeid.startswith(E2E) else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The minutes-long chaos soak first, then the in-process tests beside it, the e2e tests last: with
    the gate below, the parallel run (pytest-xdist, `-n` in pyproject.toml) is two phases in one command."""
    items.sort(key=_phase)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """In a parallel run the chaos soak runs beside in-process tests only: its replicas poll every second
    and owe alerts within two, so e2e tests starting bot processes on the same two cores made it lose
    alerts to CPU starvation (and its load timed their waits out). The soak holds a lock exclusively, e2e
    tests share it, so they wait for the soak to end (outside their timeout: this wrapper is outermost)."""
    phase = _phase(item)
    run_id = getattr(item.config, "workerinput", {}).get("testrunuid")
    if run_id is None or phase == 1:  # one process runs tests one by one: nothing to keep apart
        yield
        return
    path = Path(tempfile.gettempdir()) / f"confbot-soak-gate-{run_id}.lock"
    with path.open("a") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX if phase == 0 else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)


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
