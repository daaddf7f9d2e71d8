"""Issue 9 item 1 end to end: a throttled Canvas token endpoint unlinks nobody; a dead grant does.

A real `confbot run` reaches Canvas only through the fault proxy, with a developer key configured
and several OAuth-linked users. Their access tokens expire at Canvas (the sandbox clock jumps past
`expires_in`), so every poll answers 401 and the bot must refresh, while the token endpoint answers
Canvas' throttle (403 text/plain "Rate Limit Exceeded") for a while.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from tests.faults import FaultProxy, canvas_throttle
from tests.oauth_support import developer_key, grant_for, link_oauth_in_process
from tests.support import BotProcess, CanvasWorld, SlackWorld, slash, wait_for

pytestmark = pytest.mark.e2e

CLIENT_ID, CLIENT_SECRET = "10000000000001", "sandbox-developer-key-secret"
TOKEN_ENDPOINT = "^/login/oauth2/token$"
RELINK_TEXT = "stopped working"


def start_with_oauth_users(
    bot: BotProcess, canvas: CanvasWorld, slack: SlackWorld, names: list[str]
) -> tuple[int, dict[str, dict[str, Any]]]:
    """A course with one OAuth-linked Slack user per name; returns the course id and grants by Slack id."""
    redirect = bot.url + "/canvas/oauth/callback"
    bot.env.update(
        {"CANVAS_CLIENT_ID": CLIENT_ID, "CANVAS_CLIENT_SECRET": CLIENT_SECRET, "PUBLIC_BASE_URL": bot.url}
    )
    developer_key(canvas.canvas, CLIENT_ID, CLIENT_SECRET, redirect)
    course = canvas.course("Biology 101")
    grants: dict[str, dict[str, Any]] = {}
    for name in names:
        person = canvas.user(name)
        canvas.enroll(course["id"], person["id"])
        slack_id = "U" + name.upper()
        slack.user(slack_id)
        grants[slack_id] = grant_for(canvas.canvas, person["id"], CLIENT_ID, CLIENT_SECRET, redirect)
    link_oauth_in_process(bot, slack.team_id, list(grants.items()))
    bot.start()
    return int(course["id"]), grants


def relink_dms(slack: SlackWorld, slack_id: str) -> list[dict[str, Any]]:
    return [m for m in slack.dms_to(slack_id) if RELINK_TEXT in str(m["text"])]


def alerted(slack: SlackWorld, slack_id: str, title: str) -> bool:
    return any(title in str(m["text"]) for m in slack.dms_to(slack_id))


def canvas_user_ids(grants: dict[str, dict[str, Any]]) -> list[int]:
    return [int(grant["user"]["id"]) for grant in grants.values()]


def test_a_throttled_token_endpoint_unlinks_nobody_and_polling_resumes(
    canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    names = ["Ada", "Bob", "Cy", "Dee", "Eve"]
    course, grants = start_with_oauth_users(faulty_bot, canvas, slack, names)
    before = canvas.conference(course, "Before the burst", canvas_user_ids(grants))
    canvas.start(before["id"])
    for slack_id in grants:
        wait_for(partial(alerted, slack, slack_id, "Before the burst"), timeout=15, what=f"{slack_id} polled")

    throttle = replace(canvas_throttle(path=TOKEN_ENDPOINT), method="POST")
    with canvas_faults.active(throttle):
        canvas.canvas.post("/_sandbox/clock", {"advance_seconds": 3700})  # every access token expires
        wait_for(
            lambda: throttle.applied >= 2 * len(grants) or any(relink_dms(slack, s) for s in grants),
            timeout=60,
            what="every user's refresh throttled, and retried after backing off",
        )
        unlinked = [slack_id for slack_id in grants if relink_dms(slack, slack_id)]
        assert unlinked == [], "a throttled refresh sent relink DMs"
        for slack_id in grants:
            assert RELINK_TEXT not in str(slash(faulty_bot, slack, slack_id, "status"))

    after = canvas.conference(course, "After the burst", canvas_user_ids(grants))
    canvas.start(after["id"])
    for slack_id in grants:
        wait_for(
            partial(alerted, slack, slack_id, "After the burst"),
            timeout=45,
            what=f"{slack_id} refreshed and alerted once the throttle ended",
        )
    for slack_id in grants:
        assert not relink_dms(slack, slack_id)
        status = str(slash(faulty_bot, slack, slack_id, "status"))
        assert "linked as" in status and RELINK_TEXT not in status


def test_a_dead_grant_unlinks_its_user_once_and_no_one_else(
    canvas: CanvasWorld, slack: SlackWorld, canvas_faults: FaultProxy, faulty_bot: BotProcess
) -> None:
    course, grants = start_with_oauth_users(faulty_bot, canvas, slack, ["Ada", "Bob"])
    first = canvas.conference(course, "Before revocation", canvas_user_ids(grants))
    canvas.start(first["id"])
    for slack_id in grants:
        wait_for(
            partial(alerted, slack, slack_id, "Before revocation"), timeout=15, what=f"{slack_id} polled"
        )

    # Ada revokes the app in her Canvas settings: her access token dies and its refresh token with it,
    # so Canvas answers the refresh with 400 invalid_request "refresh_token not found".
    canvas.canvas.post(f"/_sandbox/tokens/{grants['UADA']['access_token']}/revoke")
    wait_for(lambda: relink_dms(slack, "UADA"), timeout=15, what="Ada's relink DM")
    refreshes = canvas_faults.seen("/login/oauth2/token")

    second = canvas.conference(course, "After revocation", canvas_user_ids(grants))
    canvas.start(second["id"])
    wait_for(lambda: alerted(slack, "UBOB", "After revocation"), timeout=15, what="Bob still alerted")
    assert len(relink_dms(slack, "UADA")) == 1, "exactly one relink DM"
    assert not alerted(slack, "UADA", "After revocation"), "a dead link is not polled"
    assert canvas_faults.seen("/login/oauth2/token") == refreshes, "nor refreshed again"
    assert not relink_dms(slack, "UBOB")
    assert RELINK_TEXT in str(slash(faulty_bot, slack, "UADA", "status"))
