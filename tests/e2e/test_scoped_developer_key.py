"""Issue 12 end to end: a developer key with Enforce Scopes, as managed Canvas instances have them.

With exactly the scopes the README lists, a student links through the authorize page and is alerted
(course and group conferences, starts and ends). With one scope missing from the key, `confbot check`
names it, linking explains itself, and the bot logs it once and keeps polling with back-off, without a
single relink DM: the fault is the key's, and a relink could not mend it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.canvas.scopes import SCOPE_NAMES
from tests.e2e.test_linking import CLIENT_ID, CLIENT_SECRET, browser_link, connect_link
from tests.oauth_support import oauth_bot_process
from tests.support import BotProcess, CanvasWorld, SlackWorld, requests_by, slash, wait_for

pytestmark = pytest.mark.e2e

CONFERENCES = "url:GET|/api/v1/conferences"


def scoped_key(canvas: CanvasWorld, bot: BotProcess, scopes: list[str]) -> None:
    """The developer key as a Canvas admin creates it following the README: Enforce Scopes, these ticked."""
    canvas.canvas.post(
        "/_sandbox/developer_keys",
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": bot.url + "/canvas/oauth/callback",
            "scopes": scopes,
            "require_scopes": True,
        },
    )


@pytest.fixture
def scoped_bot(tmp_path: Path, canvas: CanvasWorld, slack: SlackWorld) -> Iterator[BotProcess]:
    """`confbot run` with a Canvas developer key (the key itself is made by each test)."""
    process = oauth_bot_process(tmp_path, canvas, slack, CLIENT_ID, CLIENT_SECRET)
    yield process
    process.stop()


def key_token(canvas: CanvasWorld, user_id: int, scopes: list[str]) -> str:
    """A token the key issues with these scopes (what an admin gets approving the key as a test user)."""
    made = canvas.canvas.post(
        "/_sandbox/tokens", {"user_id": user_id, "client_id": CLIENT_ID, "scopes": scopes}
    )
    return str(made["token"])


def relink_dms(slack: SlackWorld, user: str) -> list[dict[str, object]]:
    return [m for m in slack.dms_to(user) if "stopped working" in str(m["text"])]


def alert(slack: SlackWorld, user: str, title: str) -> dict[str, object] | None:
    """The DM alerting `user` about the conference called `title`, as it reads now (edits included)."""
    return next((m for m in slack.dms_to(user) if title in str(m["text"])), None)


def test_linking_and_polling_work_with_exactly_the_listed_scopes(
    canvas: CanvasWorld, slack: SlackWorld, scoped_bot: BotProcess
) -> None:
    scoped_key(canvas, scoped_bot, list(SCOPE_NAMES))
    scoped_bot.start()
    ada = canvas.user("Ada Lovelace")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    team = canvas.canvas.post(
        "/_sandbox/groups", {"name": "Lab team 4", "course_id": bio["id"], "user_ids": [ada["id"]]}
    )
    slack.user("UADA")

    authorize = httpx.Client().get(connect_link(scoped_bot, slack, "UADA")).headers["location"]
    assert parse_qs(urlsplit(authorize).query)["scope"] == [" ".join(SCOPE_NAMES)]
    browser_link(scoped_bot, slack, ada["id"], "UADA", httpx.Client())

    lecture = canvas.conference(bio["id"], "Scoped lecture", [ada["id"]])
    group_call = canvas.canvas.post(
        "/_sandbox/conferences",
        {"context_type": "Group", "context_id": team["id"], "title": "Group huddle", "user_ids": [ada["id"]]},
    )
    canvas.start(lecture["id"])
    canvas.start(group_call["id"])
    huddle = wait_for(lambda: alert(slack, "UADA", "Group huddle"), timeout=10, what="the group alert")
    assert "Lab team 4" in str(huddle["blocks"]), "the group's name came from groups/:group_id"
    wait_for(lambda: alert(slack, "UADA", "Scoped lecture"), timeout=10, what="the course alert")

    canvas.end(lecture["id"])  # gone from the live list: its end time comes from the course's index
    wait_for(
        lambda: "Ended" in str((alert(slack, "UADA", "Scoped lecture") or {}).get("blocks")),
        timeout=10,
        what="the lecture's alert edited to ended",
    )
    assert "does not grant scope" not in scoped_bot.logs()
    assert "confbot_canvas_missing_scope_total{" not in httpx.get(scoped_bot.url + "/metrics").text

    token = key_token(canvas, ada["id"], list(SCOPE_NAMES))
    proven = scoped_bot.cli("check", "--canvas-token", "-", stdin=token + "\n", check=False)
    scope_lines = [item for item in proven.stdout.splitlines() if "canvas scope:" in item]
    assert scope_lines == [f"ok    canvas scope: {scope} granted" for scope in SCOPE_NAMES], proven.stdout
    assert token not in proven.stdout + proven.stderr


def test_a_scope_missing_from_the_key_is_named_by_check_and_logged_without_a_relink_dm(
    canvas: CanvasWorld, slack: SlackWorld, scoped_bot: BotProcess
) -> None:
    without = [scope for scope in SCOPE_NAMES if scope != CONFERENCES]
    scoped_key(canvas, scoped_bot, without)  # the admin did not tick url:GET|/api/v1/conferences
    scoped_bot.start()
    ada, bob = canvas.user("Ada Lovelace"), canvas.user("Bob Babbage")
    bio = canvas.course("Biology 101")
    canvas.enroll(bio["id"], ada["id"])
    slack.user("UADA")
    slack.user("UBOB")

    # `confbot check` names the missing scope, from the key and from a test token the key issued
    token = key_token(canvas, ada["id"], without)
    checked = scoped_bot.cli("check", "--canvas-token", "-", stdin=token + "\n", check=False)
    assert checked.returncode == 1
    assert f"does not grant {CONFERENCES}" in checked.stdout
    missing = [item for item in checked.stdout.splitlines() if item.startswith("FAIL  canvas scope:")]
    assert len(missing) == 1 and f"{CONFERENCES} is missing; tick it at Canvas > Admin" in missing[0]
    assert token not in checked.stdout + checked.stderr

    # Ada linked with a token the key issued (it works for users/self): polling is refused, never relinked
    scoped_bot.cli(
        "link", "--slack-user", "UADA", "--team", slack.team_id, "--canvas-token", "-", stdin=token + "\n"
    )
    wait_for(
        lambda: requests_by(canvas, token) >= 3, timeout=15, what="Ada's polls to be refused a few times"
    )
    metrics = httpx.get(scoped_bot.url + "/metrics").text
    assert f'confbot_canvas_missing_scope_total{{scope="{CONFERENCES}"}}' in metrics
    assert 'confbot_polls_total{kind="user",result="InsufficientScope"}' in metrics
    told = [item for item in scoped_bot.logs().splitlines() if "does not grant scope" in item]
    assert len(told) == 1 and CONFERENCES in told[0] and "Enforce Scopes > Conferences" in told[0]

    # Bob tries to link: Canvas refuses the scopes, the page says why, nothing is linked
    browser = httpx.Client()
    authorize = browser.get(connect_link(scoped_bot, slack, "UBOB")).headers["location"]
    back = browser.get(f"{authorize}&sandbox_user_id={bob['id']}")
    assert back.status_code == 302 and "error=invalid_scope" in back.headers["location"]
    page = browser.get(back.headers["location"])
    assert page.status_code == 502 and "Canvas is not set up for confbot yet" in page.text
    assert "not linked" in str(slash(scoped_bot, slack, "UBOB", "status"))

    status = str(slash(scoped_bot, slack, "UADA", "status"))
    assert "linked as Ada Lovelace" in status and "stopped working" not in status
    assert relink_dms(slack, "UADA") == [] and relink_dms(slack, "UBOB") == []
    assert slack.dms_to("UBOB") == []
    assert len([item for item in scoped_bot.logs().splitlines() if "does not grant scope" in item]) == 1
    assert token not in scoped_bot.logs()
