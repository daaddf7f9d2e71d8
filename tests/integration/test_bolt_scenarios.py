"""The real Bolt app and its real listeners, driven in process the way bolt-python's own tests do it.

Each request is built as Slack sends it (form-encoded slash commands, `payload=` interactivity, JSON
event envelopes), signed with slack_sdk's `SignatureVerifier` and handed to `AsyncApp.async_dispatch`:
no HTTP server for the bot. Canvas and Slack are the sandboxes on loopback, so what is asserted is what a
Slack user would see: the reply on the response_url, a DM, the published App Home, the opened modal.

Listeners ack first and work after the ack, so `async_dispatch` returns before the reply exists: tests
wait for the reply (a condition with a deadline), never for a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot.config import load_settings
from bot.engine.linking import link_with_token
from bot.messages.blocks import (
    ACTION_CONNECT,
    ACTION_JOIN,
    ACTION_OPEN,
    ACTION_OPEN_TOKEN_MODAL,
    ACTION_RELINK,
    TOKEN_ACTION_ID,
    TOKEN_BLOCK_ID,
    TOKEN_MODAL_CALLBACK_ID,
)
from bot.messages.home import (
    ACTION_QUIET_CLEAR,
    ACTION_QUIET_END,
    ACTION_QUIET_START,
    ACTION_TOGGLE_ALERTS,
    ACTION_UNMUTE,
)
from bot.runtime import Runtime
from bot.store import repo
from bot.store.db import upgrade
from bot.store.models import utcnow
from tests.blockkit import button_urls, buttons, mrkdwn_texts
from tests.support import CanvasWorld, Sandbox, SlackWorld, fernet_key

T = TypeVar("T")

SECRET = "bolt-scenario-signing-secret"
FORM = "application/x-www-form-urlencoded"
ACK_DEADLINE = 3.0  # Slack gives up on an ack after 3 s
SETTLE_SECONDS = 10.0
BIO_CHANNEL = "CBIO"


async def eventually(condition: Callable[[], T], *, what: str, within: float = 10.0) -> T:
    """Poll `condition` (yielding to the event loop, where Bolt's after-ack work runs) until truthy."""
    try:
        async with asyncio.timeout(within):
            while True:
                if value := condition():
                    return value
                await asyncio.sleep(0.02)  # the sandboxes can only be asked, not awaited
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


@dataclass
class PooledSandbox(Sandbox):
    """A sandbox whose control calls share one keep-alive connection (a new client per call costs ~30 ms,
    and a scenario makes dozens of them)."""

    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(self.url + path, json=body or {})
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(self.url + path, params=params)
        response.raise_for_status()
        return response.json()


# --- requests as Slack sends them ---------------------------------------------------------------------------


@dataclass
class Scene:
    """The bot's Bolt app over a fresh database, a small school in the sandbox Canvas and Slack."""

    runtime: Runtime
    app: AsyncApp
    canvas: CanvasWorld
    slack: SlackWorld
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    after_ack: set[asyncio.Task[Any]] = field(default_factory=set)
    verified: list[dict[str, Any]] = field(default_factory=list)  # bodies that got past the signature check

    def __post_init__(self) -> None:
        async def observe(body: dict[str, Any], next_: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
            """Bolt runs app middleware after its own request verification and before any listener."""
            self.verified.append(body)
            return await next_()

        self.app.use(observe)

    @property
    def team(self) -> str:
        return self.slack.team_id

    async def send(
        self,
        body: str,
        content_type: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> BoltResponse:
        """Sign `body` as Slack does, dispatch it in process and check the ack beat Slack's deadline."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signed = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        headers: dict[str, str | Sequence[str]] = {
            "content-type": [content_type],
            "x-slack-request-timestamp": [stamp],
            "x-slack-signature": [signature or str(signed)],
        }
        before = asyncio.all_tasks()
        began = time.monotonic()
        response = await self.app.async_dispatch(AsyncBoltRequest(body=body, headers=headers))
        assert time.monotonic() - began < ACK_DEADLINE, "Slack would have shown an error: acked too late"
        self.after_ack |= asyncio.all_tasks() - before  # the listener's work after its ack, if unfinished
        return response

    async def settle(self) -> None:
        """Wait until every listener has finished what it does after its ack."""
        pending = {task for task in self.after_ack if not task.done()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=SETTLE_SECONDS)
            assert not late, f"{len(late)} listener(s) still running after {SETTLE_SECONDS}s"

    # slash commands -----------------------------------------------------------------------------------------

    def command_body(self, user: str, text: str, channel: str, response_url: str) -> str:
        return urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": self.team,
                "team_domain": "test-u",
                "channel_id": channel,
                "channel_name": "directmessage" if channel.startswith("D") else "biology",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/conferences",
                "text": text,
                "api_app_id": "A0BOLT",
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": "1337.42.slash",
            }
        )

    def new_response_url(self) -> dict[str, str]:
        return dict(self.slack.slack.post("/_sandbox/response_urls"))

    def posts_to(self, response_url: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.slack.slack.get(f"/_sandbox/response_urls/{response_url['id']}")["posts"])

    async def command(self, user: str, text: str = "", channel: str = "D0DM") -> dict[str, Any]:
        """`/conferences text` typed by `user`; returns the reply Slack shows them (on the response_url)."""
        response_url = self.new_response_url()
        acked = await self.send(self.command_body(user, text, channel, response_url["url"]), FORM)
        assert acked.status == 200, acked.body
        posts = await eventually(lambda: self.posts_to(response_url), what=f"a reply to `{text}`")
        assert len(posts) == 1, posts
        reply = posts[0]
        assert reply["response_type"] == "ephemeral" and not reply["replace_original"]
        return reply

    # interactivity and events -------------------------------------------------------------------------------

    async def interact(self, payload: dict[str, Any]) -> BoltResponse:
        return await self.send(urlencode({"payload": json.dumps(payload)}), FORM)

    async def click(
        self, user: str, action: dict[str, Any], *, surface: Literal["home", "message"] = "home"
    ) -> BoltResponse:
        """A block_actions payload: `user` clicked `action` on the App Home (or a message)."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "api_app_id": "A0BOLT",
            "team": {"id": self.team, "domain": "test-u"},
            "user": {"id": user, "team_id": self.team, "username": user.lower()},
            "trigger_id": "1337.42.click",
            "actions": [{"block_id": "b1", "action_ts": f"{time.time():.6f}", **action}],
        }
        if surface == "home":
            payload["container"] = {"type": "view", "view_id": "VHOME"}
            payload["view"] = {"id": "VHOME", "type": "home", "blocks": []}
        else:
            payload["container"] = {"type": "message", "channel_id": "D0DM", "message_ts": "1.000001"}
            payload["channel"] = {"id": "D0DM"}
        return await self.interact(payload)

    async def submit_token(self, user: str, token: str) -> BoltResponse:
        return await self.interact(
            {
                "type": "view_submission",
                "api_app_id": "A0BOLT",
                "team": {"id": self.team, "domain": "test-u"},
                "user": {"id": user, "team_id": self.team},
                "trigger_id": "1337.42.submit",
                "view": {
                    "id": "VTOKEN",
                    "type": "modal",
                    "callback_id": TOKEN_MODAL_CALLBACK_ID,
                    "state": {
                        "values": {
                            TOKEN_BLOCK_ID: {TOKEN_ACTION_ID: {"type": "plain_text_input", "value": token}}
                        }
                    },
                },
            }
        )

    async def event(self, event: dict[str, Any]) -> BoltResponse:
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.team,
            "api_app_id": "A0BOLT",
            "type": "event_callback",
            "event_id": f"Ev{time.monotonic_ns()}",
            "event_time": int(time.time()),
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "authorizations": [{"team_id": self.team, "user_id": "UBOT", "is_bot": True}],
        }
        return await self.send(json.dumps(envelope), "application/json")

    # what Slack recorded ------------------------------------------------------------------------------------

    def homes(self, user: str) -> list[dict[str, Any]]:
        """Every App Home the bot published for `user` (views.publish), oldest first."""
        calls = self.slack.calls("views.publish")
        return [call["args"]["view"] for call in calls if call["args"].get("user_id") == user]

    async def published_home(self, user: str, count: int) -> str:
        """The `count`-th App Home published for `user`, as JSON text (emoji kept as they are)."""
        await eventually(lambda: len(self.homes(user)) >= count, what=f"App Home #{count} for {user}")
        return json.dumps(self.homes(user)[count - 1], ensure_ascii=False)

    async def link(self, slack_user: str, person: str) -> None:
        await link_with_token(
            self.runtime.sessions,
            self.runtime.canvas,
            self.runtime.cipher,
            team_id=self.team,
            slack_user_id=slack_user,
            token=self.people[person]["token"],
        )


def shown(reply: dict[str, Any]) -> str:
    """Everything mrkdwn the user reads in a reply: its text and every mrkdwn block."""
    return "\n".join(mrkdwn_texts(reply))


# --- the school ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at the latest migration, copied for each test (migrating each one costs more)."""
    path = tmp_path_factory.mktemp("template") / "confbot.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    assert not path.with_name("confbot.db-wal").exists(), "the template must be one self-contained file"
    return path


def build_school(canvas: CanvasWorld, slack: SlackWorld) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ada studies Biology 101 and Chemistry 7, Tess teaches Biology 101, Nora has a Canvas account.
    In Biology a session is live and an older one has ended; the Chemistry lab has not started.
    #biology was made by Tess (New York time) and has the bot in it."""
    ada, tess, nora = canvas.user("Ada Lovelace"), canvas.user("Tess Teacher"), canvas.user("Nora New")
    bio, chem = canvas.course("Biology 101"), canvas.course("Chemistry 7")
    canvas.enroll(bio["id"], ada["id"])
    canvas.enroll(bio["id"], tess["id"], "TeacherEnrollment")
    canvas.enroll(chem["id"], ada["id"])
    live = canvas.conference(bio["id"], "Office hours & Q/A", [ada["id"], tess["id"]])
    canvas.start(live["id"])
    old = canvas.conference(bio["id"], "Old lecture", [ada["id"]])
    canvas.start(old["id"])
    canvas.end(old["id"])
    canvas.conference(chem["id"], "Titration lab", [ada["id"]])
    for user in ("UADA", "UTESS", "UNORA"):
        slack.user(user, tz="America/New_York")
    channel = {"id": BIO_CHANNEL, "name": "biology", "team_id": slack.team_id, "creator": "UTESS"}
    slack.slack.post("/_sandbox/channels", {**channel, "members": ["UTESS"]})
    return {"ada": ada, "tess": tess, "nora": nora}, {"bio": bio, "chem": chem, "live": live}


@pytest.fixture
async def scene(
    tmp_path: Path, migrated: Path, canvas_sandbox: Sandbox, slack_sandbox: Sandbox
) -> AsyncIterator[Scene]:
    """The school of `build_school` with Ada (UADA) and Tess (UTESS) linked; Nora (UNORA) is not."""
    canvas = CanvasWorld(PooledSandbox(canvas_sandbox.server))
    slack = SlackWorld(PooledSandbox(slack_sandbox.server))
    slack.setup()
    people, courses = build_school(canvas, slack)
    database = shutil.copy(migrated, tmp_path / "confbot.db")
    settings = load_settings(
        canvas_base_url=canvas.canvas.url,
        slack_api_url=slack.slack.url + "/api/",
        slack_bot_token=slack.bot_token,
        slack_signing_secret=SECRET,
        database_url=f"sqlite+aiosqlite:///{database}",
        token_encryption_keys=fernet_key(),
        _env_file=None,
    )
    runtime = Runtime.build(settings)
    world = Scene(runtime, runtime.bolt_app(), canvas, slack, people, courses)
    try:
        await world.link("UADA", "ada")
        await world.link("UTESS", "tess")
        yield world
        await world.settle()
    finally:
        await runtime.close()
        for sandbox in (canvas.canvas, slack.slack):
            assert isinstance(sandbox, PooledSandbox)
            sandbox.http.close()


# --- /conferences -------------------------------------------------------------------------------------------


async def test_empty_command_lists_live_conferences_with_a_join_button(scene: Scene) -> None:
    reply = await scene.command("UADA", "")
    assert "Live now (1): Office hours &amp; Q/A" in reply["text"]
    assert "*Office hours &amp; Q/A*" in shown(reply) and "Biology 101" in shown(reply)
    bio, live = scene.courses["bio"], scene.courses["live"]
    join = f"{scene.canvas.canvas.url}/courses/{bio['id']}/conferences/{live['id']}/join"
    assert button_urls(reply) == [join]
    assert "Titration lab" not in str(reply) and "Old lecture" not in str(reply)


async def test_unlinked_user_is_asked_to_link_with_a_token(scene: Scene) -> None:
    reply = await scene.command("UNORA", "")
    assert "Connect your Canvas account" in reply["text"]
    assert [b["action_id"] for b in buttons(reply)] == [ACTION_OPEN_TOKEN_MODAL]


async def test_live_lists_only_what_is_live(scene: Scene) -> None:
    reply = await scene.command("UADA", "live")
    assert reply["text"] == "Live now (1): Office hours &amp; Q/A"
    assert "Titration lab" not in str(reply) and "Old lecture" not in str(reply)


async def test_all_lists_live_then_not_started_then_ended(scene: Scene) -> None:
    reply = await scene.command("UADA", "all")
    assert reply["text"].startswith(
        "Your conferences (3): Office hours &amp; Q/A, Titration lab, Old lecture"
    )
    text = shown(reply)
    assert "not started" in text and "ended · lasted" in text and "🔴 started" in text


async def test_course_lists_one_courses_conferences(scene: Scene) -> None:
    reply = await scene.command("UADA", f"course {scene.courses['chem']['id']}")
    assert reply["text"] == "Your conferences (1): Titration lab"
    assert "Chemistry 7" in shown(reply) and "not started" in shown(reply)

    unknown = await scene.command("UADA", "course 987654")
    assert unknown["text"] == "Canvas does not know that course."


async def test_course_the_user_is_not_in_is_not_blamed_on_canvas_being_down(scene: Scene) -> None:
    """Fails before: Canvas's 401 without WWW-Authenticate (Forbidden) fell into "Canvas is not
    answering right now"."""
    reply = await scene.command("UTESS", f"course {scene.courses['chem']['id']}")
    assert (
        reply["text"] == "Canvas does not let you see that course's conferences: you are not enrolled in it."
    )


async def test_link_without_oauth_offers_the_token_modal(scene: Scene) -> None:
    reply = await scene.command("UNORA", "link")
    assert "Link with a token" in shown(reply)
    assert [b["action_id"] for b in buttons(reply)] == [ACTION_OPEN_TOKEN_MODAL]


async def test_unlink_forgets_the_token_and_status_then_says_not_linked(scene: Scene) -> None:
    reply = await scene.command("UADA", "unlink")
    assert reply["text"] == "Unlinked. I deleted your Canvas token and will not send you alerts."
    assert "Canvas: not linked" in (await scene.command("UADA", "status"))["text"]
    assert "Connect your Canvas account" in (await scene.command("UADA", "live"))["text"]
    again = await scene.command("UADA", "unlink")
    assert again["text"] == "Your Slack account is not linked to Canvas."


async def test_status_shows_the_link_and_alerts(scene: Scene) -> None:
    reply = await scene.command("UADA", "status")
    assert reply["text"] == "Canvas: linked as Ada Lovelace · Last checked: not yet · Alerts: on"
    assert "*Canvas:* linked as Ada Lovelace" in shown(reply)
    nora = await scene.command("UNORA", "status")
    assert nora["text"].startswith("Canvas: not linked — use `/conferences link`")


async def test_status_says_checked_within_the_interval_while_a_live_replica_polls_and_the_time_otherwise(
    scene: Scene,
) -> None:
    """A poll that changes nothing stores nothing (issue 14): the stored success is the first one, 20
    minutes ago here. While a live replica leases the user's bucket and no error is recorded, that
    replica polls them every interval: "checked within the last minute". With no replica polling, or
    once polls fail, the last success stored is what is known, and shown."""
    stored = utcnow() - timedelta(minutes=20)
    async with scene.runtime.sessions.begin() as session:
        await repo.update_linked(session, scene.team, "UADA", last_success_at=stored)
    unpolled = await scene.command("UADA", "status")
    assert "within the last" not in unpolled["text"] and "(20 min ago)" in unpolled["text"]

    assert await scene.runtime.leases.renew() > 0  # this replica takes the buckets: it polls now
    healthy = await scene.command("UADA", "status")
    assert "Last checked: within the last 1 min" in healthy["text"]

    async with scene.runtime.sessions.begin() as session:
        await repo.update_linked(session, scene.team, "UADA", consecutive_failures=3, last_error="Transient")
    failing = await scene.command("UADA", "status")
    assert "within the last" not in failing["text"] and "(20 min ago)" in failing["text"]


async def test_alerts_off_then_on_is_what_status_reports(scene: Scene) -> None:
    off = await scene.command("UADA", "alerts off")
    assert off["text"] == "Alerts are off. `/conferences alerts on` turns them back on."
    assert "Alerts: off — use `/conferences alerts on`" in (await scene.command("UADA", "status"))["text"]

    on = await scene.command("UADA", "alerts on")
    assert on["text"] == "Alerts are on."
    assert (await scene.command("UADA", "status"))["text"].endswith("Alerts: on")


async def test_alerts_for_an_unlinked_user_asks_to_link(scene: Scene) -> None:
    reply = await scene.command("UNORA", "alerts on")
    assert "Connect your Canvas account" in reply["text"]


async def test_teacher_subscribes_a_channel_the_bot_is_in(scene: Scene) -> None:
    reply = await scene.command("UTESS", "subscribe Biology 101", channel=BIO_CHANNEL)
    assert reply["text"] == "This channel now gets an alert when a *Biology 101* conference goes live."
    listed = await scene.command("UADA", "subscriptions", channel=BIO_CHANNEL)
    assert f"• *Biology 101* ({scene.courses['bio']['id']})" in listed["text"]
    again = await scene.command("UTESS", f"subscribe {scene.courses['bio']['id']}", channel=BIO_CHANNEL)
    assert again["text"] == "This channel already follows *Biology 101*."


async def test_student_may_not_subscribe_a_channel(scene: Scene) -> None:
    reply = await scene.command("UADA", "subscribe Biology 101", channel=BIO_CHANNEL)
    assert "Only teachers, TAs and designers of *Biology 101*" in reply["text"]
    assert "Canvas lists you there as: student" in reply["text"]
    assert "follows no course" in (await scene.command("UADA", "subscriptions", channel=BIO_CHANNEL))["text"]


async def test_unsubscribe_stops_following_the_course(scene: Scene) -> None:
    await scene.command("UTESS", "subscribe bio", channel=BIO_CHANNEL)
    reply = await scene.command("UTESS", "unsubscribe Biology 101", channel=BIO_CHANNEL)
    assert reply["text"] == "This channel no longer follows *Biology 101*."
    listed = await scene.command("UTESS", "subscriptions", channel=BIO_CHANNEL)
    assert "This channel follows no course" in listed["text"]
    missing = await scene.command("UTESS", "unsubscribe Biology 101", channel=BIO_CHANNEL)
    assert "This channel follows no single course matching “Biology 101”" in missing["text"]


async def test_subscribe_needs_the_bot_in_the_channel(scene: Scene) -> None:
    scene.slack.slack.post(
        "/_sandbox/channels",
        {"id": "CNOBOT", "name": "nobot", "team_id": scene.team, "members": ["UTESS"], "bot_member": False},
    )
    reply = await scene.command("UTESS", "subscribe Biology 101", channel="CNOBOT")
    assert reply["text"].startswith("I am not a member of this channel yet. Invite me with `/invite")
    in_a_dm = await scene.command("UTESS", "subscribe Biology 101", channel="D0DM")
    assert in_a_dm["text"] == "Run `/conferences subscribe` in the channel that should get the alerts."


async def test_student_may_not_unsubscribe_the_teachers_subscription(scene: Scene) -> None:
    """Fails before: any channel member, linked or not, removed a teacher's subscription."""
    await scene.command("UTESS", "subscribe Biology 101", channel=BIO_CHANNEL)
    for who in ("UADA", "UNORA"):  # a linked student, someone not linked at all
        reply = await scene.command(who, "unsubscribe Biology 101", channel=BIO_CHANNEL)
        assert reply["text"].startswith("Only teachers, TAs and designers of *Biology 101*")
    listed = await scene.command("UTESS", "subscriptions", channel=BIO_CHANNEL)
    assert "*Biology 101*" in listed["text"]
    removed = await scene.command("UTESS", "unsubscribe Biology 101", channel=BIO_CHANNEL)
    assert removed["text"] == "This channel no longer follows *Biology 101*."


async def test_subscriptions_of_a_channel_that_follows_nothing(scene: Scene) -> None:
    reply = await scene.command("UADA", "subscriptions", channel=BIO_CHANNEL)
    assert reply["text"] == (
        "This channel follows no course. A teacher can run `/conferences subscribe &lt;course&gt;`."
    )


async def test_digest_daily_uses_the_channel_creators_time_zone(scene: Scene) -> None:
    await scene.command("UTESS", "subscribe Biology 101", channel=BIO_CHANNEL)
    reply = await scene.command("UADA", "digest daily 08:00", channel=BIO_CHANNEL)
    lines = reply["text"].split("\n")
    assert lines[0] == "Digest on: daily at 08:00 in America/New_York (the channel creator's time zone)."
    assert lines[1].startswith("Next digest: ") and "08:00 E" in lines[1]  # EST or EDT
    assert len(lines) == 2, "the channel follows a course: no hint to subscribe one"


async def test_digest_weekly_with_a_zone_replaces_the_daily_one(scene: Scene) -> None:
    await scene.command("UADA", "digest daily 08:00", channel=BIO_CHANNEL)
    reply = await scene.command("UADA", "digest weekly mon 09:00 Europe/Paris", channel=BIO_CHANNEL)
    lines = reply["text"].split("\n")
    assert lines[0] == "Digest on: every Monday at 09:00 in Europe/Paris (as you asked)."
    assert lines[1].startswith("Next digest: Mon ") and "09:00 CE" in lines[1]  # CET or CEST
    assert "follows no courses yet" in lines[2]
    assert (await scene.command("UADA", "digest off", channel=BIO_CHANNEL))["text"] == (
        "Digest off: this channel gets no more summaries."
    )
    assert (await scene.command("UADA", "digest off", channel=BIO_CHANNEL))["text"] == (
        "This channel had no digest to turn off."
    ), "one digest per channel: the weekly one replaced the daily one"


async def test_digest_off_without_a_digest(scene: Scene) -> None:
    reply = await scene.command("UADA", "digest off", channel=BIO_CHANNEL)
    assert reply["text"] == "This channel had no digest to turn off."


async def test_mute_shows_on_the_app_home_and_unmute_clears_it(scene: Scene) -> None:
    muted = await scene.command("UADA", "mute Chemistry 7")
    assert muted["text"] == "Muted *Chemistry 7*: no more DMs about its conferences."
    await scene.event({"type": "app_home_opened", "user": "UADA", "channel": "D0DM", "tab": "home"})
    assert "🔕 Muted: *Chemistry 7*" in await scene.published_home("UADA", 1)

    unmuted = await scene.command("UADA", f"unmute {scene.courses['chem']['id']}")
    assert unmuted["text"] == "Unmuted *Chemistry 7*: you will get its alerts again."
    await scene.event({"type": "app_home_opened", "user": "UADA", "channel": "D0DM", "tab": "home"})
    home = await scene.published_home("UADA", 2)
    assert "Muted: *Chemistry 7*" not in home and "No muted courses" in home


async def test_mute_a_course_the_user_does_not_take(scene: Scene) -> None:
    reply = await scene.command("UTESS", "mute Chemistry")
    assert reply["text"] == "None of your courses is called “Chemistry”."


async def test_help_lists_every_subcommand(scene: Scene) -> None:
    reply = await scene.command("UADA", "help")
    assert reply["text"] == "How to use /conferences"
    text = shown(reply)
    usages = ("live", "all", "course &lt;id&gt;", "link", "unlink", "status", "digest off", "alerts on|off")
    for usage in usages:
        assert f"`/conferences {usage}`" in text
    assert "<id>" not in text, "Slack would read <id> as a link"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("frobnicate", "I didn't understand `frobnicate`. Here is what I can do:"),
        ("digest daily 25:00", "`25:00` is not a valid time"),
        ("alerts maybe", "`alerts` takes `on` or `off`, not `maybe`."),
        ("status please", "`status` takes no arguments (got `please`)."),
        ("subscribe", "`subscribe` needs a course"),
    ],
)
async def test_unknown_or_malformed_input_gets_help_with_the_reason(
    scene: Scene, text: str, reason: str
) -> None:
    reply = await scene.command("UADA", text)
    assert reason in reply["text"]
    assert "*What I can do*" in shown(reply)


# --- App Home and its buttons -------------------------------------------------------------------------------


async def test_app_home_opened_publishes_live_conferences_and_settings(scene: Scene) -> None:
    acked = await scene.event({"type": "app_home_opened", "user": "UADA", "channel": "D0DM", "tab": "home"})
    assert acked.status == 200
    home = await scene.published_home("UADA", 1)
    assert "Linked as *Ada Lovelace*" in home and "Office hours &amp; Q/A" in home
    assert "DM alerts are *on*" in home and "Turn alerts off" in home


async def test_app_home_of_an_unlinked_user_offers_the_token_modal(scene: Scene) -> None:
    await scene.event({"type": "app_home_opened", "user": "UNORA", "channel": "D0DM2", "tab": "home"})
    home = await scene.published_home("UNORA", 1)
    assert "You have not linked Canvas yet" in home and ACTION_OPEN_TOKEN_MODAL in home


async def test_app_home_messages_tab_publishes_nothing(scene: Scene) -> None:
    messages_tab = {"type": "app_home_opened", "user": "UADA", "channel": "D0DM", "tab": "messages"}
    acked = await scene.event(messages_tab)
    assert acked.status == 200
    await scene.settle()
    assert scene.slack.calls("views.publish") == []


async def test_toggle_alerts_button_turns_alerts_off_and_on(scene: Scene) -> None:
    acked = await scene.click("UADA", {"action_id": ACTION_TOGGLE_ALERTS, "type": "button", "value": "off"})
    assert acked.status == 200
    off = await scene.published_home("UADA", 1)
    assert "DM alerts are *off*" in off and "Turn alerts on" in off
    assert "Alerts: off" in (await scene.command("UADA", "status"))["text"]

    await scene.click("UADA", {"action_id": ACTION_TOGGLE_ALERTS, "type": "button", "value": "on"})
    assert "DM alerts are *on*" in await scene.published_home("UADA", 2)


async def test_unmute_button_unmutes_the_course(scene: Scene) -> None:
    await scene.command("UADA", "mute chem")
    chem = scene.courses["chem"]["id"]
    acked = await scene.click("UADA", {"action_id": ACTION_UNMUTE, "type": "button", "value": str(chem)})
    assert acked.status == 200
    home = await scene.published_home("UADA", 1)
    assert "Muted: *Chemistry 7*" not in home and "No muted courses" in home


async def test_quiet_hours_pickers_set_quiet_hours_in_the_users_zone_and_clear_clears(scene: Scene) -> None:
    start = {"action_id": ACTION_QUIET_START, "type": "timepicker", "selected_time": "22:00"}
    end = {"action_id": ACTION_QUIET_END, "type": "timepicker", "selected_time": "07:30"}
    assert (await scene.click("UADA", start)).status == 200
    assert "Quiet hours: *off*" in await scene.published_home("UADA", 1), "only a start so far"
    await scene.click("UADA", end)
    home = await scene.published_home("UADA", 2)
    assert "Quiet hours: *22:00 to 07:30 (America/New_York)*" in home
    assert '"initial_time": "22:00"' in home and '"initial_time": "07:30"' in home
    assert ACTION_QUIET_CLEAR in home

    await scene.click("UADA", {"action_id": ACTION_QUIET_CLEAR, "type": "button"})
    cleared = await scene.published_home("UADA", 3)
    assert "Quiet hours: *off*" in cleared and "initial_time" not in cleared
    assert ACTION_QUIET_CLEAR not in cleared, "nothing left to clear"


# --- the token modal ----------------------------------------------------------------------------------------


async def test_use_a_token_button_opens_the_token_modal(scene: Scene) -> None:
    button = {"action_id": ACTION_OPEN_TOKEN_MODAL, "type": "button"}
    assert (await scene.click("UNORA", button, surface="message")).status == 200
    opened = await eventually(lambda: scene.slack.calls("views.open"), what="views.open")
    assert opened[0]["args"]["trigger_id"] == "1337.42.click", "opened with the click's trigger"
    view = opened[0]["args"]["view"]
    assert view["type"] == "modal" and view["callback_id"] == TOKEN_MODAL_CALLBACK_ID
    assert [b.get("block_id") for b in view["blocks"]][-1] == TOKEN_BLOCK_ID
    assert f"{scene.canvas.canvas.url}/profile/settings" in json.dumps(view), "where to make a token"


async def test_submitting_a_good_token_links_and_confirms_by_dm(scene: Scene) -> None:
    acked = await scene.submit_token("UNORA", "  " + scene.people["nora"]["token"] + "\n")
    assert acked.status == 200 and acked.body in ("", "{}"), "an empty ack closes the modal"
    dm = await eventually(lambda: scene.slack.dms_to("UNORA"), what="the link confirmation DM")
    assert dm[0]["text"] == "Linked to Canvas as *Nora New*. I will tell you when your conferences go live."
    assert (await scene.command("UNORA", "status"))["text"].startswith("Canvas: linked as Nora New")


async def test_submitting_a_bad_token_keeps_the_modal_open_with_an_error(scene: Scene) -> None:
    acked = await scene.submit_token("UNORA", "1~not-a-real-token")
    assert acked.status == 200
    answer = json.loads(acked.body)
    assert answer == {
        "response_action": "errors",
        "errors": {TOKEN_BLOCK_ID: "Canvas did not accept this token. Check it and try again."},
    }
    await scene.settle()
    assert scene.slack.dms_to("UNORA") == []
    assert "Canvas: not linked" in (await scene.command("UNORA", "status"))["text"]


@pytest.mark.parametrize("action_id", [ACTION_JOIN, ACTION_OPEN, ACTION_CONNECT, ACTION_RELINK])
async def test_link_buttons_are_acked_and_do_nothing_else(scene: Scene, action_id: str) -> None:
    button = {"action_id": action_id, "type": "button", "url": "https://canvas.example/x", "value": "1"}
    acked = await scene.click("UADA", button, surface="message")
    assert acked.status == 200
    await scene.settle()
    calls = scene.slack.slack.get("/_sandbox/calls")["calls"]
    assert [c["method"] for c in calls if c["method"] != "auth.test"] == [], "no message, no view"


# --- events that end a workspace ----------------------------------------------------------------------------


async def test_app_uninstalled_forgets_the_team(scene: Scene) -> None:
    await scene.command("UTESS", "subscribe Biology 101", channel=BIO_CHANNEL)
    acked = await scene.event({"type": "app_uninstalled"})
    assert acked.status == 200
    await scene.settle()
    assert "Canvas: not linked" in (await scene.command("UADA", "status"))["text"]
    assert "Canvas: not linked" in (await scene.command("UTESS", "status"))["text"]
    assert "follows no course" in (await scene.command("UTESS", "subscriptions", channel=BIO_CHANNEL))["text"]


async def test_tokens_revoked_forgets_the_team_only_when_the_bot_token_goes(scene: Scene) -> None:
    await scene.event({"type": "tokens_revoked", "tokens": {"oauth": ["UADA"], "bot": []}})
    await scene.settle()
    assert "Canvas: linked as Ada Lovelace" in (await scene.command("UADA", "status"))["text"]

    await scene.event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT"]}})
    await scene.settle()
    assert "Canvas: not linked" in (await scene.command("UADA", "status"))["text"]


# --- request verification -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forgery",
    [
        {"secret": "not-the-signing-secret"},
        {"signature": "v0=" + "0" * 64},
        {"timestamp": int(time.time()) - 10 * 60},  # a replayed request: older than Slack's 5 minutes
    ],
    ids=["wrong-secret", "garbage-signature", "stale-timestamp"],
)
async def test_a_badly_signed_request_is_refused_and_runs_no_listener(
    scene: Scene, forgery: dict[str, Any]
) -> None:
    response_url = scene.new_response_url()
    body = scene.command_body("UADA", "alerts off", "D0DM", response_url["url"])
    refused = await scene.send(body, FORM, **forgery)
    assert refused.status == 401
    assert scene.verified == [], "refused before any middleware or listener"
    assert scene.posts_to(response_url) == []
    assert (await scene.command("UADA", "status"))["text"].endswith("Alerts: on"), "alerts off never ran"
    assert [body["text"] for body in scene.verified] == ["status"], "the observer does see signed requests"
