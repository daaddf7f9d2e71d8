"""The demo page's rendering: mrkdwn into styled runs, Block Kit into cards, and the page's own guards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.demo.cards import conversations
from bot.demo.controls import ControlRoom
from bot.demo.page import create_page_app
from bot.demo.render import message_html
from bot.demo.spans import Run, styled_runs
from bot.demo.world import World
from bot.messages.mrkdwn import escape


def test_styles_become_runs_and_nothing_is_styled_inside_code() -> None:
    assert styled_runs("a *b _c_* `*d*` ~e~") == [
        Run("a "),
        Run("b ", ("bold",)),
        Run("c", ("bold", "italic")),
        Run(" "),
        Run("*d*", ("code",)),
        Run(" "),
        Run("e", ("strike",)),
    ]
    assert styled_runs("2*3*4 and snake_case_name") == [Run("2*3*4 and snake_case_name")]


def test_a_hostile_title_is_shown_as_text_in_every_block_kind() -> None:
    title = '<img src=x onerror="alert(1)"> &amp; <!channel>'
    message = {
        "ts": "1700000000.000100",
        "text": title,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*" + escape(title) + "*"},
                "fields": [{"type": "plain_text", "text": title}],
                "accessory": {"type": "button", "text": {"type": "plain_text", "text": title}, "url": "x"},
            },
            {"type": "context", "elements": [{"type": "image", "alt_text": title, "image_url": "x"}]},
            {"type": "mystery"},
        ],
    }
    shown = str(message_html(message))
    assert "<img" not in shown and "onerror=&#34;" in shown
    assert "href" not in shown, "a button URL that is not absolute http(s) is no link"
    assert "[mystery block]" in shown


def test_thread_replies_sit_under_their_parent_and_channels_show_their_name() -> None:
    parent = {"channel": "C1", "ts": "1.0", "text": "Live now", "user": None}
    reply = {"channel": "C1", "ts": "2.0", "thread_ts": "1.0", "text": "Recording ready", "user": None}
    (channel,) = conversations([reply, parent], {}, {"C1": "biology-101"})
    assert channel.title == "#biology-101"
    assert [c.ts for c in channel.cards] == ["1.0"]
    assert [c.ts for c in channel.cards[0].replies] == ["2.0"]


@pytest.fixture
async def page() -> AsyncIterator[httpx.AsyncClient]:
    room = ControlRoom(
        http=httpx.AsyncClient(),
        canvas_url="http://127.0.0.1:9",
        slack_url="http://127.0.0.1:9",
        bot_url="http://127.0.0.1:9",
        signing_secret="unused",
        world=World(course_id=1, channel_id="C1"),
        post_digest_now=_never,
    )
    app = create_page_app("http://127.0.0.1:9", controls=room)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://127.0.0.1") as client:
        yield client


async def _never(channel: str) -> int:
    raise AssertionError("no control may run in these tests")


async def test_a_control_without_the_page_token_is_refused(page: httpx.AsyncClient) -> None:
    answer = await page.post(
        "/control/digest", data={"csrf": "guessed"}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 403 and answer.json() == {"ok": False, "note": "stale page: reload it"}


async def test_only_loopback_host_names_are_served(page: httpx.AsyncClient) -> None:
    assert (await page.get("/feed", headers={"Host": "attacker.example"})).status_code == 400


async def test_the_page_carries_a_strict_content_security_policy(page: httpx.AsyncClient) -> None:
    shown = await page.get("/")
    assert shown.status_code == 200
    assert "script-src 'self'" in shown.headers["content-security-policy"]
    assert "The sandbox Slack is not answering." in shown.text
    assert (await page.get("/static/page.js")).headers["content-type"].startswith("text/javascript")
