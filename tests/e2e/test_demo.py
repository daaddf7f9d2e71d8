"""`confbot demo`: the scripted scenario as a real process, and the live page in a real browser."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.demo.controls import Reply
from bot.demo.page import create_page_app
from bot.messages.blocks import ConferenceCard, ended_alert, live_alert, live_list
from bot.sandbox.server import RunningServer, free_port, start_in_thread
from tests.browser import CHROMIUM, CHROMIUM_ARGS, artifact_path, needs_chromium
from tests.support import OutputLines, SlackWorld

pytestmark = pytest.mark.e2e

JOIN_LINE = re.compile(r"\[Join\] (http://127\.0\.0\.1:\d+/courses/\d+/conferences/(\d+)/join)")
CANVAS_TOKEN = re.compile(r"\d+~[0-9A-Za-z]{8,}")


def _demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", "demo", *args]


def _assert_no_tokens(output: str) -> None:
    assert "xoxb-" not in output, "a Slack bot token was printed"
    assert not CANVAS_TOKEN.search(output), "a Canvas token was printed"


def test_demo_once_plays_the_whole_story_and_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(_demo_command("--once"), cwd=tmp_path, capture_output=True, text=True, timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    joins = JOIN_LINE.findall(result.stdout)
    assert len({url for url, _ in joins}) == 1, "one conference, one Join URL"
    assert result.stdout.count("Live now: Lecture 5: Cells & <Membranes>") == 3, "a DM for each of three"
    assert "reply to /conferences, only visible to Ada Lovelace" in result.stdout
    assert result.stdout.count("(edited)") == 3
    assert result.stdout.count("Ended: Lecture 5: Cells & <Membranes>") == 3
    assert re.search(r"demo page\s+http://127\.0\.0\.1:\d+/", result.stdout)
    _assert_no_tokens(output)
    assert not list(tmp_path.iterdir()), "the demo leaves no database or key file behind"


def test_demo_keeps_serving_the_page_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        _demo_command("--port", str(port)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = OutputLines(process)
        lines.wait_for("press Ctrl-C to stop", timeout=60)
        feed = httpx.get(f"http://127.0.0.1:{port}/feed", timeout=10).text
        assert feed.count("(edited)") == 3
        assert "Lecture 5: Cells &amp; &lt;Membranes&gt;" in feed
        assert "only visible to Ada Lovelace" in feed
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        _assert_no_tokens(lines.wait_for("stopped.", timeout=5))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# --- the page in a browser -------------------------------------------------------------------------------


def _card(conference_id: int, title: str, join_url: str, *, ended: bool = False) -> ConferenceCard:
    started = datetime.now(UTC) - timedelta(minutes=3)
    return ConferenceCard(
        conference_id=conference_id,
        title=title,
        context_name="Biology 101",
        conference_type="BigBlueButton",
        started_at=started,
        ended_at=started + timedelta(minutes=42) if ended else None,
        join_url=join_url,
    )


def _api(slack: SlackWorld, method: str, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{slack.slack.url}/api/{method}",
        json=body,
        headers={"Authorization": f"Bearer {slack.bot_token}"},
        timeout=10,
    )
    answer: dict[str, Any] = response.json()
    assert answer["ok"], answer
    return answer


@pytest.fixture
def page(slack: SlackWorld) -> Iterator[RunningServer]:
    slack.user("UADA")
    slack.user("UALAN")
    now = datetime.now(UTC)
    live = live_alert(
        _card(7, "Lecture 5: Cells & <Membranes>", "http://canvas.test/courses/1/conferences/7/join"), now
    )
    _api(slack, "chat.postMessage", channel="UADA", **live)
    hostile = _card(8, '<img src=x onerror="document.title=1"> & <!channel>', "http://canvas.test/x/join")
    posted = _api(slack, "chat.postMessage", channel="UALAN", **live_alert(hostile, now))
    ended = ended_alert(_card(8, hostile.title, hostile.join_url, ended=True), now)
    _api(slack, "chat.update", channel=posted["channel"], ts=posted["ts"], **ended)
    reply = Reply(
        "UADA", "/conferences", {**live_list([_card(7, "Lab", "http://canvas.test/lab/join")], now)}
    )
    app = create_page_app(slack.slack.url, names={"UADA": "Ada Lovelace"}, replies=[reply])
    server = start_in_thread(app)
    yield server
    server.stop()


@needs_chromium
def test_page_shows_alert_cards_safely_and_refreshes_live(page: RunningServer, slack: SlackWorld) -> None:
    from playwright.sync_api import sync_playwright

    shot = artifact_path("demo-page.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 900, "height": 900})
            tab.goto(page.url + "/")
            ada = tab.locator("section.group", has_text="DM · Ada Lovelace (UADA)")
            assert "🔴 Live now: Lecture 5: Cells & <Membranes>" in ada.inner_text()
            assert "Biology 101" in ada.inner_text()
            join = ada.get_by_role("link", name="Join")
            assert join.get_attribute("href") == "http://canvas.test/courses/1/conferences/7/join"

            alan = tab.locator("section.group", has_text="DM · UALAN")
            assert '<img src=x onerror="document.title=1"> & <!channel>' in alan.inner_text()
            assert "(edited)" in alan.inner_text() and "Ended · lasted 42 min" in alan.inner_text()
            assert alan.get_by_role("link", name="Join").count() == 0, "an ended alert has no Join button"
            assert tab.locator("main img").count() == 0 and tab.title().startswith("confbot demo")
            assert "only visible to Ada Lovelace" in (tab.locator("section.reply").text_content() or "")

            news = live_alert(
                _card(9, "Office hours", "http://canvas.test/courses/1/conferences/9/join"), datetime.now(UTC)
            )
            _api(slack, "chat.postMessage", channel="UADA", **news)
            tab.get_by_text("Live now: Office hours").wait_for(timeout=10_000)

            tab.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_mrkdwn_is_rendered_as_text_never_as_markup() -> None:
    from bot.demo.render import mrkdwn_html
    from bot.demo.terminal import Ansi

    shown = mrkdwn_html(
        "*Bio* &lt;b&gt; &amp;amp; <javascript:alert(1)|click> <https://x.test/?a=1&amp;b=2|A &amp; B> "
        "<!channel> <@UADA> \x1b[2J",
        {"UADA": "Ada"},
    )
    assert '<span class="bold">Bio</span>' in shown
    assert "&lt;b&gt; &amp;amp;" in shown, "escaped entities are displayed as the text they stand for"
    assert "javascript" not in shown.split("click")[0], "only http(s) links become anchors"
    assert (
        '<a href="https://x.test/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">A &amp; B</a>'
        in shown
    )
    assert '<span class="mention">@channel</span>' in shown and "@Ada" in shown
    assert "\x1b" not in shown and "\x1b" not in Ansi(False).mrkdwn("x \x1b[2J *y*")
