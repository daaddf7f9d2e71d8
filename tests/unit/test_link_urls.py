"""URLs from Canvas are attacker text: what a Slack user would be pinged by, or click, if they were trusted.

A server-filled ``join_url`` and a recording's ``playback_url`` / ``playback_formats[].url`` end up in mrkdwn
links and button urls. Every hostile one below must render with no mention, no non-http(s) link, and fall
back to Canvas' join path (join links) or to the title alone (recordings).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.demo.render import message_html, mrkdwn_html
from bot.domain.diff import Event
from bot.domain.models import Conference
from bot.domain.outbox import AlertPayload
from bot.engine import alerts
from bot.engine.digests import summarize_course
from bot.engine.recordings import recording_links
from bot.messages.blocks import ConferenceCard, live_alert, live_list, recording_ready
from bot.messages.cards import card_from_payload
from bot.messages.digest_blocks import CourseDigest, DigestContent, DigestRecording, digest_message
from bot.messages.mrkdwn import bare_link, link, safe_link_url
from bot.sandbox.slack_blocks import validate_blocks
from tests.blockkit import button_urls, buttons, mrkdwn_texts

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
ROOT = "https://canvas.test"
CANVAS_JOIN = f"{ROOT}/courses/3/conferences/7/join"

HOSTILE = [
    "!channel",
    "<!channel>",
    "<!here>",
    "@U0001",
    "<@U0001>",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://x|<!here>",
    "https://canvas.test@evil.example/",
    "https://ok.example/a b",
    "https://ok.example/\u202egnp.exe",
    "https://ok.example/\x00",
    "/courses/3/conferences/7/join",
    "//evil.example/x",
    "ftp://files.example/r.mp4",
    "https:///nohost",
    "https://ok.example/" + "a" * 3000,
    "",
    "   ",
]
# Linkable once escaped: the dangerous characters sit outside the host and are percent-encoded.
ESCAPABLE = {
    "https://ok.example/a>b": "https://ok.example/a%3Eb",
    "https://ok.example/a|b": "https://ok.example/a%7Cb",
    "https://ok.example/p?x=<!channel>&y=1": "https://ok.example/p?x=%3C!channel%3E&y=1",
}

_MARKUP = re.compile(r"<([^<>]*)>")


def assert_safe(message: Any) -> None:
    """No mention, no non-http(s) link: in every mrkdwn text and every button url."""
    for text in mrkdwn_texts(message):
        assert "<!" not in text.replace("<!date^", ""), text
        assert "<@" not in text and "<#" not in text, text
        for markup in _MARKUP.findall(text):
            if markup.startswith("!date^"):
                continue
            target = markup.split("|", 1)[0].replace("&amp;", "&")
            assert safe_link_url(target) == target, f"unsafe link target {target!r} in {text!r}"
    for url in button_urls(message):
        assert safe_link_url(url) == url and len(url) <= 3000, url
    assert validate_blocks(message["blocks"]) == []


# --- the two functions --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", HOSTILE)
def test_hostile_urls_are_not_links(url: str) -> None:
    assert safe_link_url(url) is None
    assert link(url, "Join") == "Join"
    assert bare_link(url) == ""


@pytest.mark.parametrize(("url", "safe"), ESCAPABLE.items())
def test_markup_characters_outside_the_host_are_percent_encoded(url: str, safe: str) -> None:
    assert safe_link_url(url) == safe
    assert link(url, "<!here>") == f"<{safe.replace('&', '&amp;')}|&lt;!here&gt;>"


@pytest.mark.parametrize(
    "url",
    [
        "https://canvas.test/courses/3/conferences/7/join",
        "http://localhost:8080/x?a=1&b=2#frag",
        "HTTPS://Zoom.Example/j/1",
        "https://bücher.example/aufnahme",
        "http://[::1]:9000/r",
        " https://ok.example/trimmed\n",
    ],
)
def test_ordinary_web_urls_stay_links(url: str) -> None:
    assert safe_link_url(url) == url.strip()


def test_length_limit_is_on_the_url_sent() -> None:
    url = "https://ok.example/" + "a" * (3000 - len("https://ok.example/"))
    assert safe_link_url(url) == url
    assert safe_link_url(url + "a") is None
    assert safe_link_url("https://ok.example/abc", max_length=10) is None


# --- join links -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("served", [*HOSTILE, None])
def test_join_url_falls_back_to_the_canvas_join_path(served: str | None) -> None:
    assert alerts.join_url(ROOT, "Course", 3, 7, served=served) == CANVAS_JOIN


def test_join_url_uses_a_safe_served_link_and_one_group_rule() -> None:
    assert (
        alerts.join_url(ROOT, "Course", 3, 7, served="https://zoom.example/j/1") == "https://zoom.example/j/1"
    )
    for spelling in ("Group", "group", "GROUP"):
        assert alerts.join_url(ROOT + "/", spelling, 12, 7) == f"{ROOT}/groups/12/conferences/7/join"


def _live_conference(join_url: str | None) -> Conference:
    return Conference.model_validate(
        {
            "id": 7,
            "title": "<!channel> Lecture",
            "context_type": "Course",
            "context_id": 3,
            "started_at": (NOW - timedelta(minutes=5)).isoformat(),
            "join_url": join_url,
        }
    )


@pytest.mark.parametrize("served", HOSTILE)
def test_alert_for_hostile_join_url_links_to_canvas(served: str) -> None:
    conference = _live_conference(served)
    event = Event("started", 7, NOW - timedelta(minutes=5), conference.title, "Course", 3, conference)
    row = alerts.outbox_row(
        event, team_id="T1", destination="U1", context_name="Bio", canvas_root=ROOT, now=NOW
    )
    message = live_alert(card_from_payload(AlertPayload.from_stored(row["payload"])), NOW)
    assert_safe(message)
    assert button_urls(message) == [CANVAS_JOIN]
    assert f"<{CANVAS_JOIN}>" in message["text"]


@pytest.mark.parametrize("join_url", HOSTILE)
def test_card_already_holding_a_hostile_url_renders_without_a_link(join_url: str) -> None:
    """An alert queued before this rule still renders safely: no button, no link, no mention."""
    card = ConferenceCard(7, "Lecture", "Bio", None, NOW - timedelta(minutes=5), None, join_url)
    for message in (live_alert(card, NOW), live_list([card], NOW)):
        assert_safe(message)
        assert buttons(message) == []


@pytest.mark.parametrize("served", HOSTILE)
def test_digest_live_line_links_to_canvas(served: str) -> None:
    course = summarize_course("Bio", [_live_conference(served)], NOW - timedelta(days=1), NOW, ROOT)
    content = DigestContent("daily", NOW, NOW - timedelta(days=1), False, (course,))
    message = digest_message(content, NOW)
    assert_safe(message)
    assert f"<{CANVAS_JOIN}|" in str(message["blocks"])


# --- recordings -----------------------------------------------------------------------------------------


def _ended_with_recording(playback_url: str | None, format_urls: list[str | None]) -> Conference:
    return Conference.model_validate(
        {
            "id": 7,
            "title": "Lecture",
            "context_type": "Course",
            "context_id": 3,
            "started_at": (NOW - timedelta(hours=2)).isoformat(),
            "ended_at": (NOW - timedelta(hours=1)).isoformat(),
            "recordings": [
                {
                    "recording_id": "r1",
                    "title": "Lecture <!here> recording",
                    "duration_minutes": 42,
                    "playback_url": playback_url,
                    "playback_formats": [{"type": "presentation", "url": u} for u in format_urls],
                    "created_at": (NOW - timedelta(minutes=30)).isoformat(),
                }
            ],
        }
    )


def _recording_message(conference: Conference) -> Any:
    card = ConferenceCard(
        7,
        conference.title,
        "Bio",
        None,
        conference.started_at,
        conference.ended_at,
        "",
        recording_links(conference),
    )
    return recording_ready(card)


@pytest.mark.parametrize("url", HOSTILE)
def test_recording_with_only_hostile_urls_shows_its_title_alone(url: str) -> None:
    conference = _ended_with_recording(url, [url])
    links = recording_links(conference)
    if url.strip():  # Canvas gave an address: the recording is ready, shown without a link.
        assert [r.url for r in links] == [""]
    message = _recording_message(conference)
    assert_safe(message)
    if links:
        assert "Lecture &lt;!here&gt; recording" in str(message["blocks"])


@pytest.mark.parametrize("url", HOSTILE)
def test_recording_hostile_playback_url_falls_through_to_a_safe_format_url(url: str) -> None:
    conference = _ended_with_recording(url, [url, "https://bbb.example/playback/r1"])
    assert [r.url for r in recording_links(conference)] == ["https://bbb.example/playback/r1"]
    message = _recording_message(conference)
    assert_safe(message)
    assert "<https://bbb.example/playback/r1|Lecture &lt;!here&gt; recording>" in str(message["blocks"])


@pytest.mark.parametrize("url", HOSTILE)
def test_digest_recording_with_hostile_urls_is_not_a_link(url: str) -> None:
    conference = _ended_with_recording(url, [url])
    course = summarize_course("Bio", [conference], NOW - timedelta(days=1), NOW, ROOT)
    assert course.recordings and all(r.url is None for r in course.recordings)
    direct = CourseDigest("Bio", recordings=(DigestRecording("Rec", "Lecture", url, 42),))
    for digest in (course, direct):
        message = digest_message(DigestContent("daily", NOW, NOW - timedelta(days=1), False, (digest,)), NOW)
        assert_safe(message)
        assert "no playback link yet" in str(message["blocks"])


# --- the demo page and the sandbox validator ------------------------------------------------------------


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "https://a.example@evil.example"])
def test_demo_page_never_makes_an_href_of_an_unsafe_url(url: str) -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "Join"}, "url": url}
    message = {"text": f"<{url}|click>", "blocks": [{"type": "actions", "elements": [button]}]}
    shown = mrkdwn_html(message["text"]) + message_html(message)
    assert "href" not in shown and "click" in shown and "Join" in shown


def test_demo_page_links_a_safe_url_html_escaped() -> None:
    shown = mrkdwn_html('<https://ok.example/?a=1&amp;b="x"|click>')
    assert 'href="https://ok.example/?a=1&amp;b=&#34;x&#34;"' in shown


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "/courses/1/join", "https://ok.example/" + "a" * 2990]
)
def test_sandbox_refuses_a_button_url_slack_would_refuse(url: str) -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "Join"}, "action_id": "a", "url": url}
    errors = validate_blocks([{"type": "actions", "elements": [button]}])
    assert errors and all("/elements/0/url" in error for error in errors)


def test_sandbox_accepts_an_http_button_url() -> None:
    button = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Join"},
        "action_id": "a",
        "url": CANVAS_JOIN,
    }
    assert validate_blocks([{"type": "actions", "elements": [button]}]) == []
