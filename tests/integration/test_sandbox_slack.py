"""The sandbox Slack behaves like Slack for the real slack_sdk client the bot uses."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.server import serving
from bot.sandbox.slack import (
    SlackState,
    create_slack_app,
    interactivity_body,
    signed_request,
    signed_slash_command,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class FakeClock:
    """Settable time so expiry (30-minute response_urls) is tested without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    url: str
    state: SlackState
    clock: FakeClock
    control: httpx.AsyncClient
    token: str
    bot_user_id: str

    def client(self, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
        return AsyncWebClient(token=token or self.token, base_url=f"{self.url}/api/", **kwargs)

    async def messages(self, **query: str) -> list[dict[str, Any]]:
        response = await self.control.get("/_sandbox/messages", params=query)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["messages"]
        return result


@pytest.fixture
def served() -> Iterator[tuple[str, SlackState, FakeClock]]:
    clock = FakeClock()
    state = SlackState(clock=clock)
    with serving(create_slack_app(state)) as url:
        yield url, state, clock


@pytest.fixture
async def world(served: tuple[str, SlackState, FakeClock]) -> AsyncIterator[World]:
    url, state, clock = served
    async with httpx.AsyncClient(base_url=url) as control:
        team = (await control.post("/_sandbox/teams", json={"team_id": "T1", "team_name": "Uni"})).json()
        await control.post("/_sandbox/teams", json={"team_id": "T2", "bot_token": "xoxb-other"})
        for user in (
            {"id": "U1", "team_id": "T1", "name": "ada", "tz": "America/New_York"},
            {"id": "U2", "team_id": "T1", "name": "bob", "is_admin": True},
            {"id": "U9", "team_id": "T2", "name": "eve"},
        ):
            (await control.post("/_sandbox/users", json=user)).raise_for_status()
        for channel in (
            {"id": "C1", "name": "cs101", "team_id": "T1", "members": ["U1"]},
            {"id": "C2", "name": "quiet", "team_id": "T1", "bot_member": False},
            {"id": "C9", "name": "elsewhere", "team_id": "T2"},
        ):
            (await control.post("/_sandbox/channels", json=channel)).raise_for_status()
        yield World(url, state, clock, control, team["bot_token"], team["bot_user_id"])


async def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


async def test_message_to_a_user_lands_in_the_bots_dm_and_is_listed(world: World) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Live* now"}}]
    posted = await world.client().chat_postMessage(channel="U1", text="Live now", blocks=blocks)

    opened = await world.client().conversations_open(users="U1")
    assert posted["channel"].startswith("D")
    assert opened["channel"]["id"] == posted["channel"]
    assert posted["message"]["user"] == world.bot_user_id
    [listed] = await world.messages(channel=posted["channel"])
    assert listed["ts"] == posted["ts"]
    assert (listed["user"], listed["team_id"], listed["text"]) == ("U1", "T1", "Live now")
    assert listed["blocks"] == blocks


async def test_timestamps_are_unique_and_increasing(world: World) -> None:
    stamps = [(await world.client().chat_postMessage(channel="C1", text=str(i)))["ts"] for i in range(5)]

    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5


async def test_update_edits_the_message_and_keeps_its_history(world: World) -> None:
    client = world.client()
    posted = await client.chat_postMessage(channel="U1", text="started")
    await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="ended")

    [listed] = await world.messages(channel=posted["channel"])
    assert (listed["text"], listed["edits"]) == ("ended", 1)
    assert listed["history"][0]["text"] == "started"
    missing = await api_error(client.chat_update(channel=posted["channel"], ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"
    by_user_id = await api_error(client.chat_update(channel="U1", ts=posted["ts"], text="x"))
    assert by_user_id.response["error"] == "channel_not_found"


async def test_channel_posts_need_an_existing_channel_of_the_team_with_the_bot_in_it(world: World) -> None:
    client = world.client()

    assert (await client.chat_postMessage(channel="C1", text="hi"))["channel"] == "C1"
    assert (await api_error(client.chat_postMessage(channel="C2", text="hi"))).response[
        "error"
    ] == "not_in_channel"
    for channel in ("C404", "C9", "U9", "U404"):
        error = await api_error(client.chat_postMessage(channel=channel, text="hi"))
        assert error.response["error"] == "channel_not_found", channel


async def test_bad_tokens_are_refused(world: World) -> None:
    assert (await api_error(world.client("xoxb-bogus").auth_test())).response["error"] == "invalid_auth"
    async with httpx.AsyncClient(base_url=world.url) as http:
        assert (await http.post("/api/auth.test")).json() == {"ok": False, "error": "not_authed"}

    await world.client().auth_revoke()

    assert (await api_error(world.client().auth_test())).response["error"] == "token_revoked"


async def test_auth_test_identifies_team_and_bot(world: World) -> None:
    identity = await world.client().auth_test()

    assert (identity["team_id"], identity["team"], identity["user_id"]) == ("T1", "Uni", world.bot_user_id)
    assert identity["bot_id"].startswith("B")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str = "Join", url: str = "https://canvas.example.edu/join") -> dict[str, Any]:
    element = {"type": "button", "text": {"type": "plain_text", "text": text}, "url": url}
    return {"type": "actions", "elements": [element]}


@pytest.mark.parametrize(
    "blocks",
    [
        [_section("x")] * 51,
        [_section("x" * 3001)],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        [_button(text="b" * 76)],
        [_button(url=("https://e.x/" + "u" * 3000)[:3001])],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "not plain"}}],
        [{"type": "sectoin", "text": {"type": "mrkdwn", "text": "typo"}}],
        ["not an object"],
    ],
    ids=["51-blocks", "section-3001", "header-151", "button-76", "url-3001", "mrkdwn-header", "typo", "str"],
)
async def test_blocks_over_slack_limits_are_rejected_and_not_posted(world: World, blocks: list[Any]) -> None:
    error = await api_error(world.client().chat_postMessage(channel="U1", text="t", blocks=blocks))

    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"]
    assert await world.messages() == []


async def test_blocks_at_the_limits_are_accepted(world: World) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        _section("x" * 3000),
        _button(text="b" * 75, url=("https://e.x/" + "u" * 3000)[:3000]),
        *[{"type": "divider"}] * 47,
    ]

    posted = await world.client().chat_postMessage(channel="U1", text="t", blocks=blocks)

    assert len(posted["message"]["blocks"]) == 50


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_text_rules(world: World) -> None:
    client = world.client()

    assert (await api_error(client.chat_postMessage(channel="U1"))).response["error"] == "no_text"
    too_long = await api_error(client.chat_postMessage(channel="U1", text="x" * 40_001))
    assert too_long.response["error"] == "msg_too_long"


async def test_form_encoded_calls_with_a_token_field_are_accepted(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.url) as http:
        form = {"token": world.token, "channel": "U1", "text": "hi", "blocks": json.dumps([_section("hi")])}
        answer = (await http.post("/api/chat.postMessage", data=form)).json()

    assert answer["ok"] is True
    [listed] = await world.messages()
    assert listed["blocks"] == [_section("hi")]


async def test_rate_limit_fault_is_a_429_with_retry_after(world: World) -> None:
    fault = {"method": "chat.postMessage", "status": 429, "retry_after": 7, "count": 1}
    await world.control.post("/_sandbox/faults", json=fault)

    error = await api_error(world.client().chat_postMessage(channel="U1", text="hi"))

    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    assert (await world.client().chat_postMessage(channel="U1", text="hi"))["ok"]


async def test_rate_limit_retry_handler_gets_through(world: World) -> None:
    fault = {"method": "*", "status": 429, "retry_after": 0, "count": 1}
    await world.control.post("/_sandbox/faults", json=fault)
    client = world.client(retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])

    posted = await client.chat_postMessage(channel="U1", text="hi")

    assert posted["ok"]
    calls = (await world.control.get("/_sandbox/calls", params={"method": "chat.postMessage"})).json()
    assert [call["status"] for call in calls["calls"]] == [429, 200]
    assert len(await world.messages()) == 1


async def test_server_error_fault_and_clearing_faults(world: World) -> None:
    await world.control.post("/_sandbox/faults", json={"method": "auth.test", "status": 503, "count": 5})

    error = await api_error(world.client().auth_test())
    assert error.response.status_code == 503
    await world.control.delete("/_sandbox/faults")

    assert (await world.client().auth_test())["ok"]


async def test_calls_are_recorded_with_team_and_without_secrets(world: World) -> None:
    await world.client().chat_postMessage(channel="U1", text="hi")
    async with httpx.AsyncClient(base_url=world.url) as http:
        await http.post("/api/users.info", data={"token": world.token, "user": "U1"})

    calls = (await world.control.get("/_sandbox/calls")).json()["calls"]

    assert [(call["method"], call["team_id"]) for call in calls] == [
        ("chat.postMessage", "T1"),
        ("users.info", "T1"),
    ]
    assert world.token not in json.dumps(calls)
    await world.control.post("/_sandbox/calls/reset")
    assert (await world.control.get("/_sandbox/calls")).json() == {"calls": []}


async def test_users_info_gives_zone_and_roles_within_the_team_only(world: World) -> None:
    user = (await world.client().users_info(user="U1"))["user"]

    assert (user["id"], user["team_id"], user["name"], user["tz"]) == ("U1", "T1", "ada", "America/New_York")
    assert user["tz_offset"] in (-5 * 3600, -4 * 3600)
    assert user["tz_label"].startswith("Eastern")
    assert (await world.client().users_info(user="U2"))["user"]["is_admin"] is True
    for other in ("U9", "U404"):
        assert (await api_error(world.client().users_info(user=other))).response["error"] == "user_not_found"


async def test_users_info_gives_the_locale_only_when_asked_as_slack_does(world: World) -> None:
    await world.control.post(
        "/_sandbox/users", json={"id": "U7", "team_id": "T1", "name": "eva", "locale": "es-ES"}
    )

    assert "locale" not in (await world.client().users_info(user="U7"))["user"]
    assert (await world.client().users_info(user="U7", include_locale=True))["user"]["locale"] == "es-ES"
    assert (await world.client().users_info(user="U1", include_locale=True))["user"]["locale"] == "en-US"


async def test_conversations_info(world: World) -> None:
    channel = (await world.client().conversations_info(channel="C1"))["channel"]

    assert (channel["id"], channel["name"], channel["is_channel"], channel["is_member"]) == (
        "C1",
        "cs101",
        True,
        True,
    )
    assert (await world.client().conversations_info(channel="C2"))["channel"]["is_member"] is False


async def test_ephemeral_messages_are_kept_apart(world: World) -> None:
    answer = await world.client().chat_postEphemeral(channel="C1", user="U1", text="only you")

    ephemerals = (await world.control.get("/_sandbox/ephemerals")).json()["ephemerals"]
    assert [(e["channel"], e["user"], e["ts"]) for e in ephemerals] == [("C1", "U1", answer["message_ts"])]
    assert await world.messages() == []
    outsider = await api_error(world.client().chat_postEphemeral(channel="C1", user="U2", text="x"))
    assert outsider.response["error"] == "user_not_in_channel"


async def test_views_are_recorded_and_validated(world: World) -> None:
    client = world.client()
    home = {"type": "home", "blocks": [_section("Your conferences")]}
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Link Canvas"}, "blocks": []}

    published = await client.views_publish(user_id="U1", view=home)
    opened = await client.views_open(trigger_id="123.456.abc", view=modal)
    await client.views_update(view_id=opened["view"]["id"], view={**modal, "blocks": [_section("done")]})

    views = {v["id"]: v for v in (await world.control.get("/_sandbox/views")).json()["views"]}
    assert views[published["view"]["id"]]["user_id"] == "U1"
    assert views[opened["view"]["id"]]["view"]["blocks"] == [_section("done")]
    too_big = await api_error(
        client.views_publish(user_id="U1", view={"type": "home", "blocks": [{"type": "divider"}] * 101})
    )
    assert too_big.response["error"] == "invalid_arguments"


async def test_response_url_takes_five_posts(world: World) -> None:
    minted = (await world.control.post("/_sandbox/response_urls", json={})).json()
    async with httpx.AsyncClient() as http:
        statuses = [
            (await http.post(minted["url"], json={"text": f"reply {i}"})).status_code for i in range(6)
        ]
        posts = (await world.control.get(f"/_sandbox/response_urls/{minted['id']}")).json()["posts"]

    assert statuses == [200] * 5 + [404]
    assert [post["text"] for post in posts] == [f"reply {i}" for i in range(5)]
    assert posts[0]["response_type"] == "ephemeral"


async def test_response_url_expires_after_thirty_minutes(world: World) -> None:
    minted = (await world.control.post("/_sandbox/response_urls", json={})).json()
    world.clock.now += 31 * 60
    async with httpx.AsyncClient() as http:
        answer = await http.post(minted["url"], json={"text": "too late"})

    assert (answer.status_code, answer.json()["error"]) == (404, "expired_url")


async def test_signed_slash_command_verifies_with_slack_sdk() -> None:
    body, headers = signed_slash_command(
        SECRET, team_id="T1", user_id="U1", channel_id="D1", text="live", response_url="http://x/response/1"
    )

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    fields = parse_qs(body.decode())
    assert (fields["command"], fields["text"], fields["team_id"]) == (["/conferences"], ["live"], ["T1"])
    stale_body, stale = signed_slash_command(
        SECRET, team_id="T1", user_id="U1", channel_id="D1", text="", response_url="u", timestamp=1
    )
    assert not SignatureVerifier(SECRET).is_valid_request(stale_body, stale)


def test_signed_interactivity_payload_verifies() -> None:
    body = interactivity_body({"type": "block_actions", "actions": [{"action_id": "join"}]})

    headers = signed_request(SECRET, body, "application/x-www-form-urlencoded")

    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert json.loads(parse_qs(body.decode())["payload"][0])["type"] == "block_actions"


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
async def test_oauth_v2_access_round_trip(world: World) -> None:
    grant = {
        "team_id": "T3",
        "team_name": "College",
        "client_id": "111.222",
        "client_secret": "shh",
        "authed_user_id": "U30",
    }
    code = (await world.control.post("/_sandbox/oauth_codes", json=grant)).json()["code"]
    anonymous = AsyncWebClient(base_url=f"{world.url}/api/")

    wrong = await api_error(anonymous.oauth_v2_access(client_id="111.222", client_secret="nope", code=code))
    installed = await anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code=code)

    assert wrong.response["error"] == "bad_client_secret"
    assert installed["token_type"] == "bot"
    assert installed["access_token"].startswith("xoxb-")
    assert installed["team"] == {"id": "T3", "name": "College"}
    assert installed["authed_user"]["id"] == "U30"
    assert (installed["enterprise"], installed["is_enterprise_install"]) == (None, False)
    identity = await world.client(installed["access_token"]).auth_test()
    assert (identity["team_id"], identity["user_id"]) == ("T3", installed["bot_user_id"])
    reused = await api_error(anonymous.oauth_v2_access(client_id="111.222", client_secret="shh", code=code))
    assert reused.response["error"] == "invalid_code"


async def test_control_api_explains_mistakes(world: World) -> None:
    answer = await world.control.post("/_sandbox/users", json={"id": "U5", "team_id": "T404"})

    assert answer.status_code == 400
    assert "T404" in answer.json()["error"]
