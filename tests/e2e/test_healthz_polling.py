"""Issue 9 item 10: /healthz says "degraded" while polling is stalled, and "ok" again once it catches up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults import Fault, FaultProxy
from tests.support import BotProcess, CanvasWorld, SlackWorld, fernet_key, link_in_process, wait_for

pytestmark = pytest.mark.e2e


def health(bot: BotProcess) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(bot.url + "/healthz", timeout=5)
    return answer.status_code, answer.json()


def stalled_report(bot: BotProcess) -> dict[str, Any] | None:
    status, body = health(bot)
    return body if status == 503 else None


def test_healthz_is_degraded_while_canvas_hangs_every_poll_and_recovers_after(
    tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy
) -> None:
    bot = BotProcess(
        workdir=tmp_path,
        env={
            "CANVAS_BASE_URL": canvas_faults.url,
            "SLACK_API_URL": slack.slack.url + "/api/",
            "SLACK_BOT_TOKEN": slack.bot_token,
            "TOKEN_ENCRYPTION_KEYS": fernet_key(),
            "POLL_INTERVAL_SECONDS": "1",
            "CANVAS_TIMEOUT_SECONDS": "10",  # a hung poll stays in flight far longer than two intervals
        },
    )
    people = [canvas.user(f"Student {n}") for n in range(3)]
    link_in_process(bot, slack.team_id, [(f"U{n}", person["token"]) for n, person in enumerate(people)])
    bot.start()
    try:
        wait_for(lambda: health(bot)[0] == 200, timeout=10, what="a healthy bot")
        assert health(bot)[1]["status"] == "ok"

        with canvas_faults.active(Fault("hang", path=r"^/api/v1/conferences")):
            degraded = wait_for(
                lambda: stalled_report(bot), timeout=15, what="/healthz to report the stalled polls"
            )
            assert degraded is not None
            assert degraded["status"] == "degraded" and degraded["polling"] == "stalled"
            assert degraded["poll_lag_seconds"] >= 2 * 1  # (rounded to 0.1 s)
            assert degraded["database"] == "ok" and degraded["scheduler"] == "running"
            assert canvas_faults.count("hang") >= 1

        wait_for(lambda: health(bot)[0] == 200, timeout=40, what="/healthz to recover after the hang")
        recovered = health(bot)[1]
        assert recovered["polling"] == "ok" and recovered["poll_lag_seconds"] <= 2
    finally:
        bot.stop()
