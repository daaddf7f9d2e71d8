"""App Home and quiet hours end to end: the Home tab shows live conferences and settings; alerts held
during quiet hours arrive as one summary when they end."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from bot.sandbox.slack import interactivity_body, signed_request
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, link_in_process, wait_for

pytestmark = pytest.mark.e2e


def send_event(bot: BotProcess, slack: SlackWorld, event: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": slack.team_id,
            "api_app_id": "A0001",
            "event_id": f"Ev{event['event_ts']}",
            "event_time": 1,
            "event": event,
        }
    ).encode()
    headers = signed_request(SIGNING_SECRET, body, "application/json")
    assert httpx.post(bot.url + "/slack/events", content=body, headers=headers).status_code == 200


def click(bot: BotProcess, slack: SlackWorld, user: str, action: dict[str, Any]) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": slack.team_id},
        "user": {"id": user, "team_id": slack.team_id},
        "trigger_id": "1.2.3",
        "view": {"type": "home", "id": "VHOME"},
        "actions": [{"block_id": "b", "action_ts": "1", **action}],
    }
    body = interactivity_body(payload)
    assert (
        httpx.post(
            bot.url + "/slack/events", content=body, headers=signed_request(SIGNING_SECRET, body)
        ).status_code
        == 200
    )


def published(slack: SlackWorld, count: int) -> str:
    calls = wait_for(
        lambda: (c := slack.calls("views.publish")) and len(c) >= count and c,
        timeout=10,
        what=f"{count} views.publish calls",
    )
    return json.dumps(calls[count - 1]["args"])


def test_home_tab_shows_live_conference_and_toggles_alerts(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    canvas.start(canvas.conference(bio["id"], "Seminar <b>", [ada["id"]])["id"])
    slack.user("UADA")
    link_in_process(bot, slack.team_id, [("UADA", ada["token"])])
    bot.start()
    send_event(bot, slack, {"type": "app_home_opened", "user": "UADA", "tab": "home", "event_ts": "1.1"})
    view = published(slack, 1)
    assert "Linked as *Ada Lovelace*" in view and "Seminar &lt;b&gt;" in view and "Turn alerts off" in view

    click(bot, slack, "UADA", {"action_id": "home_toggle_alerts", "type": "button", "value": "off"})
    assert "DM alerts are *off*" in published(slack, 2)


def test_quiet_hours_hold_alerts_then_send_one_summary(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ada = canvas.user("Ada")
    bio = canvas.course("Biology")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA", tz="America/New_York")
    link_in_process(bot, slack.team_id, [("UADA", ada["token"])])
    bot.start()
    local = datetime.now(ZoneInfo("America/New_York"))
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    click(bot, slack, "UADA", {"action_id": "home_quiet_start", "type": "timepicker", "selected_time": start})
    click(bot, slack, "UADA", {"action_id": "home_quiet_end", "type": "timepicker", "selected_time": end})
    assert "America/New_York" in published(slack, 2)

    first, second = (canvas.conference(bio["id"], title, [ada["id"]]) for title in ("Quiet one", "Quiet two"))
    canvas.start(first["id"])
    canvas.start(second["id"])
    before = canvas.canvas.get("/_sandbox/requests")["by_token"].get(ada["token"], 0)
    wait_for(
        lambda: canvas.canvas.get("/_sandbox/requests")["by_token"].get(ada["token"], 0) >= before + 3,
        timeout=10,
        what="polls during quiet hours",
    )
    assert slack.dms_to("UADA") == [], "alerts are held during quiet hours"

    click(bot, slack, "UADA", {"action_id": "home_quiet_clear", "type": "button"})
    summary = wait_for(lambda: slack.dms_to("UADA"), timeout=10, what="the quiet-hours summary")
    assert len(summary) == 1
    assert "While you were in quiet hours" in str(summary[0]["blocks"])
    assert "Quiet one" in str(summary[0]["blocks"]) and "Quiet two" in str(summary[0]["blocks"])
