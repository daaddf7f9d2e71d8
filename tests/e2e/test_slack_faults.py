"""`confbot run` reaching the sandbox Slack through the fault proxy: a broken connection after Slack
accepted an alert must never become a second alert."""

from __future__ import annotations

import httpx
import pytest

from tests.faults import Fault, FaultKind, FaultProxy
from tests.support import BotProcess, CanvasWorld, SlackWorld, requests_by, wait_for

pytestmark = pytest.mark.e2e


def _alerts_sent(bot: BotProcess) -> float:
    for line in httpx.get(bot.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith('confbot_slack_messages_total{event="started"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("kind", ["reset", "drop"])
def test_a_broken_connection_after_slack_accepted_is_one_alert_not_two(
    kind: FaultKind, canvas: CanvasWorld, slack: SlackWorld, slack_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    """Slack records the message, then the connection is reset (RST) or closed (FIN) before the answer.
    slack_sdk's default connection-error retry used to post it again inside the same call."""
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")
    faulty_bot.start()
    faulty_bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    lecture = canvas.conference(bio["id"], "Lecture", [ada["id"]])
    polled = requests_by(canvas, ada["token"])
    wait_for(lambda: requests_by(canvas, ada["token"]) > polled + 1, timeout=10, what="a poll of Ada")

    slack_faults.add(Fault(kind, path="chat.postMessage", times=1))
    canvas.start(lecture["id"])
    wait_for(lambda: _alerts_sent(faulty_bot) == 1, timeout=20, what="the alert to be recorded as sent")

    assert slack_faults.count(kind) == 1, "the fault happened"
    assert len(slack.dms_to("UADA")) == 1, "exactly one DM, never two"
    assert slack_faults.seen("conversations.history") >= 1, "the outbox looked before deciding"
    assert len([c for c in slack.calls("chat.postMessage") if c.get("ok")]) == 1
