"""The demo page as a control room, driven by clicking in headless Chromium against `confbot demo`.

Every step waits on what a user would see (Playwright's expect with a timeout), never on a sleep.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from bot.sandbox.server import free_port
from tests.browser import CHROMIUM, CHROMIUM_ARGS, artifact_path, needs_chromium
from tests.support import OutputLines

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, needs_chromium]

STEP_MS = 20_000  # the bot polls every 2 s; an alert or an edit lands within one or two polls
# Hostile on purpose: the title must come back as text, in the table and in every card.
TITLE = 'Seminar <b>bold</b> & "quotes"'
JOIN_HREF = re.compile(r"^http://127\.0\.0\.1:\d+/courses/\d+/conferences/\d+/join$")


@dataclass
class RunningDemo:
    url: str
    output: OutputLines


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """`confbot demo --port P` after its scripted scenario, serving the page until SIGINT (one per
    module: the tests below act on different conferences and conversations)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", str(port)],
        cwd=tmp_path_factory.mktemp("demo"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = OutputLines(process)
        output.wait_for("press Ctrl-C to stop", timeout=60)
        yield RunningDemo(f"http://127.0.0.1:{port}/", output)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Browser, demo: RunningDemo) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(demo.url)
    yield page
    page.close()


def test_start_end_restart_and_a_slash_command_by_clicking(tab: Page) -> None:
    from playwright.sync_api import expect

    shot = artifact_path("demo-control-room.png")
    status = tab.locator("#status")
    ada = tab.locator("section.group.dm", has_text="DM · Ada Lovelace (UADA)")
    card = ada.locator("article.message", has_text=TITLE).first

    # start -> the alert card appears with its Join link
    tab.get_by_label("New conference").fill(TITLE)
    tab.get_by_role("button", name="Start now").click()
    expect(status).to_have_class("ok", timeout=STEP_MS)
    row = tab.locator("tr[data-conference]", has_text=TITLE)
    expect(row).to_have_attribute("data-status", "live", timeout=STEP_MS)
    expect(card).to_contain_text(f"Live now: {TITLE}", timeout=STEP_MS)
    expect(card.get_by_role("link", name="Join")).to_have_attribute("href", JOIN_HREF)

    # end -> it turns "ended" (the same card, edited)
    row.get_by_role("button", name="End").click()
    expect(card).to_contain_text(f"Ended: {TITLE}", timeout=STEP_MS)
    expect(card).to_contain_text("(edited)")
    expect(card.get_by_role("link", name="Join")).to_have_count(0)

    # restart (Canvas keeps started_at, clears ended_at) is a new session: a "Live again" alert with a
    # Join link, while the first card stays ended
    row.get_by_role("button", name="Restart").click()
    again = ada.locator("article.message", has_text=f"Live again: {TITLE}")
    expect(again.get_by_role("link", name="Join")).to_have_attribute("href", JOIN_HREF, timeout=STEP_MS)
    expect(card).to_contain_text(f"Ended: {TITLE}")
    expect(row).to_have_attribute("data-status", "live")

    # a slash command typed in the box -> its ephemeral reply
    slash = tab.locator("form#slash")
    slash.get_by_label("who types it").select_option(label="Alan Turing (student)")
    slash.get_by_label("slash command text").fill("live")
    slash.get_by_role("button", name="Send").click()
    reply = tab.locator("section.reply", has_text="/conferences live · only visible to Alan Turing")
    expect(reply).to_contain_text(TITLE, timeout=STEP_MS)
    expect(reply).to_contain_text("Only visible to you")
    expect(reply.get_by_role("link", name="Join")).to_have_attribute("href", JOIN_HREF)

    # the title was text everywhere: no element came from it
    assert tab.locator("#feed b, .conferences b").count() == 0

    tab.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_recording_channel_digest_app_home_and_schedule_by_clicking(tab: Page) -> None:
    from playwright.sync_api import expect

    shot = artifact_path("demo-control-room-more.png")
    status = tab.locator("#status")

    # a recording on the scripted (ended) conference -> the bot replies in each alert's thread
    lecture = tab.locator("tr[data-conference]", has_text="Lecture 5: Cells & <Membranes>")
    lecture.get_by_role("button", name="Add recording").click()
    ada = tab.locator("section.group.dm", has_text="DM · Ada Lovelace (UADA)")
    thread = ada.locator("article.message", has_text="Ended: Lecture 5").locator(".thread")
    expect(thread.get_by_role("link", name="Lecture recording")).to_be_visible(timeout=STEP_MS)

    # the teacher subscribes the channel, then a digest is posted in it at once
    tab.get_by_role("button", name="Subscribe to Biology 101").click()
    subscribed = tab.locator("section.reply", has_text="only visible to Grace Hopper · in #biology-101")
    expect(subscribed).to_contain_text("This channel now gets an alert", timeout=STEP_MS)
    tab.get_by_role("button", name="Post a digest now").click()
    channel = tab.locator("section.group.channel", has_text="#biology-101")
    expect(channel).to_contain_text("Daily conference digest", timeout=STEP_MS)
    expect(channel).to_contain_text("Biology 101")

    # Ada opens the app's Home tab
    tab.get_by_label("whose App Home").select_option(label="Ada Lovelace")
    tab.get_by_role("button", name="Open App Home").click()
    home = tab.locator("section.home", has_text="App Home · Ada Lovelace")
    expect(home).to_contain_text("Linked as Ada Lovelace", timeout=STEP_MS)

    # a conference scheduled in 2 minutes is listed as scheduled, not live
    tab.get_by_label("New conference").fill("Review session")
    tab.get_by_role("button", name="Schedule in 2 min").click()
    expect(status).to_contain_text("Scheduled for", timeout=STEP_MS)
    scheduled = tab.locator("tr[data-conference]", has_text="Review session")
    expect(scheduled).to_have_attribute("data-status", "scheduled", timeout=STEP_MS)

    tab.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
