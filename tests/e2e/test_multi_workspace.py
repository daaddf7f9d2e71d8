"""Issue 6: install two workspaces through Slack OAuth (sandbox oauth.v2.access); each team's alerts go
out with its own bot token; uninstalling a workspace forgets its data."""

from __future__ import annotations

import json
import re
import sqlite3

import httpx
import pytest

from bot.sandbox.slack import signed_request
from tests.support import SIGNING_SECRET, BotProcess, CanvasWorld, SlackWorld, link_in_process, wait_for

pytestmark = pytest.mark.e2e

CLIENT_ID, CLIENT_SECRET = "1111.2222", "slack-client-secret"


def install(bot: BotProcess, slack: SlackWorld, team_id: str, installer: str) -> None:
    with httpx.Client() as browser:
        page = browser.get(bot.url + "/slack/install")
        assert page.status_code in (200, 302)
        state = re.search(r"state=([A-Za-z0-9_\-.%]+)", page.headers.get("location", "") + page.text)
        assert state, "the install page links to Slack's authorize URL with a state"
        code = slack.slack.post(
            "/_sandbox/oauth_codes",
            {
                "team_id": team_id,
                "team_name": f"School {team_id}",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authed_user_id": installer,
            },
        )["code"]
        # Bolt's state cookie is `Secure`: browsers send it to http://localhost, httpx does not.
        cookie = page.headers["set-cookie"].split(";", 1)[0]
        done = browser.get(
            bot.url + "/slack/oauth_redirect",
            params={"code": code, "state": state.group(1)},
            headers={"Cookie": cookie},
        )
        assert done.status_code == 200, done.text


def test_two_workspaces_each_use_their_own_token(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    bot.env.pop("SLACK_BOT_TOKEN")
    bot.env.update(
        {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET, "PUBLIC_BASE_URL": bot.url}
    )
    bot.start()
    install(bot, slack, "TAAA", "UAADMIN")
    install(bot, slack, "TBBB", "UBADMIN")
    for team, user in (("TAAA", "UALICE"), ("TBBB", "UBOB")):
        slack.slack.post("/_sandbox/users", {"id": user, "team_id": team, "name": user.lower()})

    alice, bob = canvas.user("Alice"), canvas.user("Bob")
    course = canvas.course("Shared course")
    for person in (alice, bob):
        canvas.enroll(course["id"], person["id"])
    link_in_process(bot, "TAAA", [("UALICE", alice["token"])])
    link_in_process(bot, "TBBB", [("UBOB", bob["token"])])
    canvas.start(canvas.conference(course["id"], "Joint lecture", [alice["id"], bob["id"]])["id"])

    posts = wait_for(
        lambda: (calls := slack.calls("chat.postMessage")) and len(calls) >= 2 and calls,
        timeout=10,
        what="one alert per workspace",
    )
    teams_by_user = {c["args"]["channel"]: c["team_id"] for c in posts if c.get("ok")}
    assert teams_by_user == {"UALICE": "TAAA", "UBOB": "TBBB"}

    with sqlite3.connect(bot.db_path) as db:
        stored = " ".join(str(row) for row in db.execute("SELECT bot_token FROM slack_bots"))
    assert "xoxb-" not in stored and "enc:" in stored, "bot tokens are encrypted at rest"

    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "TBBB",
            "api_app_id": "A1",
            "event_id": "Ev9",
            "event_time": 1,
            "event": {"type": "app_uninstalled", "event_ts": "9.9"},
        }
    ).encode()
    answer = httpx.post(
        bot.url + "/slack/events",
        content=body,
        headers=signed_request(SIGNING_SECRET, body, "application/json"),
    )
    assert answer.status_code == 200

    def forgotten() -> bool:
        with sqlite3.connect(bot.db_path) as db:
            users = db.execute("SELECT count(*) FROM linked_users WHERE team_id = 'TBBB'").fetchone()[0]
            bots = db.execute("SELECT count(*) FROM slack_bots WHERE team_id = 'TBBB'").fetchone()[0]
            kept = db.execute("SELECT count(*) FROM linked_users WHERE team_id = 'TAAA'").fetchone()[0]
        return users == 0 and bots == 0 and kept == 1

    wait_for(forgotten, timeout=10, what="team TBBB forgotten, TAAA kept")
