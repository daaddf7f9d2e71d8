"""A scope the developer key lacks reaches the operator, not the users (sandbox Canvas over loopback).

Every refused call passes the client's hook, even one whose caller swallows the error; the operator gets
one log line per missing scope naming it and where to tick it, and a per-scope counter in /metrics.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import generate_latest

from bot.canvas import CanvasClient, InsufficientScope
from bot.canvas.scopes import SCOPE_NAMES
from bot.ops.metrics import Metrics
from bot.ops.scope_alarm import MissingScopeAlarm
from tests.oauth_support import REDIRECT_URI
from tests.support import CanvasWorld

CLIENT_ID = "10000000000055"
GROUP_CONFERENCES = "url:GET|/api/v1/groups/:group_id/conferences"


async def test_each_missing_scope_is_logged_once_and_counted_every_time(
    canvas: CanvasWorld, caplog: pytest.LogCaptureFixture
) -> None:
    canvas.canvas.post(
        "/_sandbox/developer_keys",
        {
            "client_id": CLIENT_ID,
            "client_secret": "s",
            "redirect_uri": REDIRECT_URI,
            "scopes": list(SCOPE_NAMES),
            "require_scopes": True,
        },
    )
    ada = canvas.user("Ada")
    scopes = [s for s in SCOPE_NAMES if s != GROUP_CONFERENCES]
    token = canvas.canvas.post(
        "/_sandbox/tokens", {"user_id": ada["id"], "client_id": CLIENT_ID, "scopes": scopes}
    )["token"]
    metrics = Metrics()
    alarm = MissingScopeAlarm(metrics)

    with caplog.at_level(logging.INFO):
        async with CanvasClient(canvas.canvas.url, on_insufficient_scope=alarm.refused_call) as client:
            assert await client.live_conferences(token) == []  # within the scopes: no alarm
            for group_id in (11, 12, 13):
                with pytest.raises(InsufficientScope) as refused:
                    await client.group_conferences(token, group_id)
                assert refused.value.missing_scope == GROUP_CONFERENCES

    told = [r.getMessage() for r in caplog.records if "does not grant scope" in r.getMessage()]
    assert len(told) == 1
    assert f"does not grant scope {GROUP_CONFERENCES}" in told[0]
    assert "Enforce Scopes > Conferences > " + GROUP_CONFERENCES in told[0]
    assert "Nobody is asked to relink" in told[0]
    assert token not in caplog.text
    exposition = generate_latest(metrics.registry).decode()
    assert f'confbot_canvas_missing_scope_total{{scope="{GROUP_CONFERENCES}"}} 3.0' in exposition


def test_a_refused_authorization_names_the_scopes_canvas_lists() -> None:
    metrics = Metrics()
    alarm = MissingScopeAlarm(metrics)
    description = (
        "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the resource "
        "owner. The following scopes were requested, but not granted: url:GET|/api/v1/courses and "
        f"{GROUP_CONFERENCES}"
    )

    alarm.refused_authorization(description, SCOPE_NAMES)
    alarm.refused_authorization("...not granted: ", ())  # CANVAS_SCOPES=off against an enforcing key

    exposition = generate_latest(metrics.registry).decode()
    assert 'confbot_canvas_missing_scope_total{scope="url:GET|/api/v1/courses"} 1.0' in exposition
    assert f'confbot_canvas_missing_scope_total{{scope="{GROUP_CONFERENCES}"}} 1.0' in exposition
    assert "CANVAS_SCOPES is off" in exposition
