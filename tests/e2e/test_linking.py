"""Issue 3 end to end: Canvas OAuth linking through the sandbox, refresh, relink, and token hygiene."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.blockkit import buttons
from tests.oauth_support import oauth_bot_process
from tests.support import BotProcess, CanvasWorld, SlackWorld, requests_by, slash, wait_for

pytestmark = pytest.mark.e2e

CLIENT_ID, CLIENT_SECRET = "10000000000001", "sandbox-developer-key-secret"


@pytest.fixture
def oauth_bot(tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld) -> Iterator[BotProcess]:
    process = oauth_bot_process(tmp_path, canvas, slack, CLIENT_ID, CLIENT_SECRET)
    canvas.canvas.post(
        "/_sandbox/developer_keys",
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": process.url + "/canvas/oauth/callback",
        },
    )
    process.start()
    yield process
    process.stop()


def connect_link(bot: BotProcess, slack: SlackWorld, slack_user: str) -> str:
    """The "Connect Canvas" button's URL from `/conferences link`."""
    reply = slash(bot, slack, slack_user, "link")
    return str(
        next(b["url"] for b in buttons(reply) if b.get("url", "").startswith(bot.url + "/canvas/oauth/start"))
    )


def browser_link(
    bot: BotProcess, slack: SlackWorld, canvas_user_id: int, slack_user: str, browser: httpx.Client
) -> str:
    """Click "Connect Canvas", approve in Canvas, follow the redirect in one `browser` (its cookie jar);
    returns the callback URL used."""
    start = connect_link(bot, slack, slack_user)
    to_canvas = browser.get(start)
    assert to_canvas.status_code == 302
    authorize = to_canvas.headers["location"]
    assert parse_qs(urlsplit(authorize).query)["client_id"] == [CLIENT_ID]
    back = browser.get(f"{authorize}&sandbox_user_id={canvas_user_id}")
    assert back.status_code == 302, back.text
    assert back.status_code == 302
    callback = back.headers["location"]
    page = browser.get(callback)
    assert page.status_code == 200, page.text
    assert "Canvas linked" in page.text
    return callback


def test_oauth_round_trip_links_polls_refreshes_and_rejects_bad_state(
    canvas: CanvasWorld, slack: SlackWorld, oauth_bot: BotProcess
) -> None:
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")

    browser = httpx.Client()
    callback = browser_link(oauth_bot, slack, ada["id"], "UADA", browser)
    wait_for(
        lambda: any("Linked to Canvas as *Ada Lovelace*" in m["text"] for m in slack.dms_to("UADA")),
        timeout=5,
        what="the link confirmation DM",
    )
    assert "linked as Ada Lovelace" in str(slash(oauth_bot, slack, "UADA", "status"))

    replay = browser.get(callback)
    assert replay.status_code == 400 and "already used" in replay.text
    query = parse_qs(urlsplit(callback).query)
    forged_state = query["state"][0][:-4] + "AAAA"
    forged = httpx.get(
        oauth_bot.url + "/canvas/oauth/callback", params={"code": query["code"][0], "state": forged_state}
    )
    assert forged.status_code == 400 and "not valid" in forged.text
    assert httpx.get(oauth_bot.url + "/canvas/oauth/start", params={"state": forged_state}).status_code == 400

    first = canvas.conference(bio["id"], "Morning lecture", [ada["id"]])
    canvas.start(first["id"])
    wait_for(
        lambda: any("Morning lecture" in m["text"] for m in slack.dms_to("UADA")),
        timeout=5,
        what="an alert polled with the OAuth token",
    )

    canvas.canvas.post("/_sandbox/clock", {"advance_seconds": 3700})  # the access token expires
    second = canvas.conference(bio["id"], "Afternoon lab", [ada["id"]])
    canvas.start(second["id"])
    wait_for(
        lambda: any("Afternoon lab" in m["text"] for m in slack.dms_to("UADA")),
        timeout=10,
        what="an alert after the token was refreshed",
    )
    assert "stopped working" not in str(slash(oauth_bot, slack, "UADA", "status"))

    issued = canvas.canvas.get("/_sandbox/tokens")["issued"]
    assert "Unlinked" in slash(oauth_bot, slack, "UADA", "unlink")["text"]
    oauth_tokens = [t for t in issued if t != ada["token"]]  # the sandbox also made Ada a PAT
    current = [
        t
        for t in oauth_tokens
        if httpx.get(
            canvas.canvas.url + "/api/v1/users/self", headers={"Authorization": f"Bearer {t}"}
        ).status_code
        == 200
    ]
    assert current == [], "unlink revoked the access token at Canvas"
    assert "not linked" in str(slash(oauth_bot, slack, "UADA", "status"))
    assert len(issued) >= 3, "PAT-less run: access, refresh and refreshed access tokens"
    logs, db = oauth_bot.logs(), oauth_bot.db_path.read_bytes()
    for token in [*issued, slack.bot_token, CLIENT_SECRET]:
        assert token not in logs
        assert token.encode() not in db


def test_revoked_token_gets_one_relink_dm_and_is_not_polled_again(
    canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess
) -> None:
    ada, bob = canvas.user("Ada"), canvas.user("Bob")
    slack.user("UADA")
    slack.user("UBOB")
    bot.start()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    bot.cli("link", "--slack-user", "UBOB", "--team", slack.team_id, "--canvas-token", bob["token"])
    wait_for(lambda: requests_by(canvas, ada["token"]) >= 1, timeout=5, what="Ada to be polled")

    canvas.canvas.post(f"/_sandbox/tokens/{ada['token']}/revoke")
    relink = wait_for(
        lambda: [m for m in slack.dms_to("UADA") if "stopped working" in m["text"]],
        timeout=5,
        what="the relink DM",
    )
    polls_after_relink = requests_by(canvas, ada["token"])
    bob_now = requests_by(canvas, bob["token"])
    wait_for(lambda: requests_by(canvas, bob["token"]) >= bob_now + 3, timeout=10, what="three more polls")
    assert requests_by(canvas, ada["token"]) == polls_after_relink, "a dead token is not polled again"
    assert len([m for m in slack.dms_to("UADA") if "stopped working" in m["text"]]) == 1
    assert any(b.get("action_id") == "open_token_modal" for b in buttons(relink[0])), (
        "PAT users relink by token"
    )
    assert "stopped working" in str(slash(bot, slack, "UADA", "status"))


def test_canvas_errors_never_unlink(canvas: CanvasWorld, slack: SlackWorld, bot: BotProcess) -> None:
    ada = canvas.user("Ada")
    bio = canvas.course("Biology")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")
    bot.start()
    bot.cli("link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", ada["token"])
    for fault in (
        {"kind": "error_500", "count": 3},
        {"kind": "throttle", "count": 2},
        {"kind": "timeout", "count": 1, "seconds": 3},
    ):
        canvas.canvas.post("/_sandbox/faults", {**fault, "token": ada["token"]})
    canvas.canvas.post("/_sandbox/settings", {"throttle_status": 429})
    lecture = canvas.conference(bio["id"], "Survives faults", [ada["id"]])
    canvas.start(lecture["id"])
    wait_for(
        lambda: any("Survives faults" in m["text"] for m in slack.dms_to("UADA")),
        timeout=60,
        what="the alert once Canvas recovers",
    )
    assert not any("stopped working" in m["text"] for m in slack.dms_to("UADA"))
    status = str(slash(bot, slack, "UADA", "status"))
    assert "linked as Ada" in status and "stopped working" not in status


def test_a_forwarded_canvas_link_does_not_complete_in_another_browser(
    canvas: CanvasWorld, slack: SlackWorld, oauth_bot: BotProcess
) -> None:
    """The sender opens their Connect link and forwards the Canvas page; the victim approves it there."""
    victim = canvas.user("Victim Vera")
    slack.user("UMAL")
    slack.user("UVERA")
    sender_browser, victim_browser = httpx.Client(), httpx.Client()

    authorize = sender_browser.get(connect_link(oauth_bot, slack, "UMAL")).headers["location"]
    assert "confbot_canvas_link" in sender_browser.cookies
    back = victim_browser.get(f"{authorize}&sandbox_user_id={victim['id']}")
    assert back.status_code == 302
    refused = victim_browser.get(back.headers["location"])
    assert refused.status_code == 403 and "another browser" in refused.text
    assert "Canvas linked" not in refused.text
    assert "not linked" in str(slash(oauth_bot, slack, "UMAL", "status"))

    # the Slack link's own state (never bound to a browser) is no good at the callback either
    unbound = parse_qs(urlsplit(connect_link(oauth_bot, slack, "UMAL")).query)["state"][0]
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    direct = sender_browser.get(
        oauth_bot.url + "/canvas/oauth/callback", params={"state": unbound, "code": code}
    )
    assert direct.status_code == 403
    assert "not linked" in str(slash(oauth_bot, slack, "UMAL", "status"))

    # the victim's own link, in the victim's own browser, still works
    browser_link(oauth_bot, slack, victim["id"], "UVERA", victim_browser)
    assert "linked as Victim Vera" in str(slash(oauth_bot, slack, "UVERA", "status"))
    assert "not linked" in str(slash(oauth_bot, slack, "UMAL", "status"))
