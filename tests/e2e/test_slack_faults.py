"""`confbot run` reaching the sandbox Slack through the fault proxy: a broken connection after Slack
accepted an alert must never become a second alert."""

from __future__ import annotations

import sqlite3

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


def test_a_session_that_starts_and_ends_inside_a_slack_outage_is_cancelled_not_queued(
    canvas: CanvasWorld, slack: SlackWorld, slack_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    """Its alert never left, so the poll that sees the end cancels it: no stale card after the outage,
    and no "ended" edit queued behind the live alerts (before, each such pair took dispatcher turns
    after recovery while alerts of sessions still live waited; the chaos soak lost some that way)."""
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")
    faulty_bot.start()
    faulty_bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    lecture, seminar = (canvas.conference(bio["id"], title, [ada["id"]]) for title in ("Lecture", "Seminar"))

    with slack_faults.active(Fault("respond", path="chat.postMessage", status=503)):
        canvas.start(lecture["id"])
        wait_for(lambda: slack_faults.count("respond") >= 1, timeout=15, what="the alert to meet the outage")
        canvas.end(lecture["id"])
        polled = requests_by(canvas, ada["token"])
        wait_for(
            lambda: requests_by(canvas, ada["token"]) > polled + 2, timeout=15, what="polls after the end"
        )
    canvas.start(seminar["id"])  # Slack is back: the next alert goes out
    wait_for(lambda: slack.dms_to("UADA"), timeout=20, what="the seminar's alert")

    assert [m["text"].split(" is live")[0] for m in slack.dms_to("UADA")] == ["Seminar"], (
        "no stale lecture card"
    )
    assert slack.calls("chat.update") == [], "nothing to edit: the lecture's alert was cancelled"
    with sqlite3.connect(faulty_bot.db_path) as db:
        rows = db.execute(
            "SELECT event, status, last_error FROM outbox WHERE conference_id = ?", (lecture["id"],)
        ).fetchall()
    assert rows == [("started", "failed", "conference ended before the alert could be sent")], (
        "cancelled by the poll that saw the end, with no edit queued for the dispatcher"
    )
