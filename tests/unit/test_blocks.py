"""Block Kit rendering: Slack's limits, escaping of Canvas strings, and the text users actually read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.messages import blocks
from bot.messages.blocks import (
    Message,
    RecordingLink,
    all_list,
    conference_status,
    ended_alert,
    format_ago,
    format_duration,
    help_message,
    link_instructions,
    live_alert,
    live_list,
    recording_ready,
    relink_prompt,
    simple,
    status_message,
    token_modal,
)
from bot.messages.mrkdwn import slack_length
from tests.blockkit import JOIN, NOW, card

EVIL = "<!channel> & <b>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;b&gt;"


# --- a checker for Slack's documented limits ----------------------------------------------------------


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def assert_valid(message: Message | dict[str, Any], max_blocks: int = 50) -> None:
    if "text" in message:
        assert message["text"].strip(), "top-level text is what notifications show"
    assert 0 < len(message["blocks"]) <= max_blocks
    block_ids = [b["block_id"] for b in message["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    for block in message["blocks"]:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < slack_length(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert 0 < slack_length(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
        if block["type"] == "actions":
            assert block["elements"]
    for node in _walk(message["blocks"]):
        if node.get("type") == "button":
            assert 0 < slack_length(node["text"]["text"]) <= 75
            assert node["text"]["type"] == "plain_text"
            assert "action_id" in node
            if "url" in node:
                assert len(node["url"]) <= 3000
        if node.get("type") == "mrkdwn":
            _assert_no_stray_markup(node["text"])


def _assert_no_stray_markup(text: str) -> None:
    """Only markup we create may appear in mrkdwn: dates, links; never mentions or broadcasts."""
    for span in re.findall(r"<[^>]*>", text):
        assert span.startswith(("<!date^", "<http")), f"unexpected markup {span!r} in {text!r}"


def mrkdwn_texts(message: Message | dict[str, Any]) -> list[str]:
    return [n["text"] for n in _walk(message["blocks"]) if n.get("type") == "mrkdwn"]


def plain_texts(message: Message | dict[str, Any]) -> list[str]:
    return [n["text"] for n in _walk(message["blocks"]) if n.get("type") == "plain_text"]


def buttons(message: Message | dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _walk(message["blocks"]) if n.get("type") == "button"]


# --- durations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=30), "less than a minute"),
        (timedelta(minutes=1), "1 min"),
        (timedelta(minutes=42, seconds=59), "42 min"),
        (timedelta(minutes=60), "1 h"),
        (timedelta(minutes=65), "1 h 5 min"),
        (timedelta(hours=26, minutes=3), "26 h 3 min"),
        (timedelta(minutes=-5), "less than a minute"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


def test_format_ago() -> None:
    assert format_ago(NOW - timedelta(seconds=20), NOW) == "just now"
    assert format_ago(NOW - timedelta(minutes=12), NOW) == "12 min ago"
    assert format_ago(NOW - timedelta(minutes=75), NOW) == "1 h 15 min ago"
    assert format_ago(NOW + timedelta(minutes=2), NOW) == "just now"  # clock skew


def test_naive_datetimes_are_utc() -> None:
    naive_start = (NOW - timedelta(minutes=5)).replace(tzinfo=None)
    assert format_ago(naive_start, NOW) == "5 min ago"


# --- live alert ----------------------------------------------------------------------------------------


def test_live_alert_shows_course_type_start_and_join_button() -> None:
    msg = live_alert(card(), NOW)
    assert_valid(msg)
    assert msg["blocks"][0]["type"] == "header"
    assert msg["blocks"][0]["text"]["text"] == "🔴 Live now: Week 3 lecture"
    body = "\n".join(mrkdwn_texts(msg))
    assert "*Biology 101*" in body
    assert "BigBlueButton" in body
    assert "12 min ago" in body
    epoch = int((NOW - timedelta(minutes=12)).timestamp())
    assert f"<!date^{epoch}^{{time}}|13:48 UTC>" in body
    [join] = buttons(msg)
    assert join["url"] == JOIN
    assert join["action_id"] == "join_conference"
    assert join["style"] == "primary"
    assert join["text"]["text"] == "Join"


def test_live_alert_notification_text() -> None:
    msg = live_alert(card(), NOW)
    assert msg["text"] == f"Week 3 lecture is live in Biology 101 — join: <{JOIN}>"


def test_live_alert_escapes_canvas_strings_in_mrkdwn_but_not_in_plain_text() -> None:
    msg = live_alert(card(title=EVIL, context_name=EVIL), NOW)
    assert_valid(msg)
    assert msg["blocks"][0]["text"]["text"] == f"🔴 Live now: {EVIL}"
    assert EVIL_ESCAPED in "\n".join(mrkdwn_texts(msg))
    assert msg["text"].startswith(f"{EVIL_ESCAPED} is live in {EVIL_ESCAPED}")
    assert "<!channel>" not in msg["text"]


def test_live_alert_header_truncated_to_150() -> None:
    msg = live_alert(card(title="T" * 400), NOW)
    assert_valid(msg)
    header = msg["blocks"][0]["text"]["text"]
    assert slack_length(header) == 150  # "🔴" counts as two UTF-16 units, to be safe
    assert header.startswith("🔴 Live now: TTT") and header.endswith("…")


def test_live_alert_type_label_defaults_to_conference() -> None:
    body = "\n".join(mrkdwn_texts(live_alert(card(conference_type=None), NOW)))
    assert "Conference" in body


def test_live_alert_without_start_time_does_not_crash() -> None:
    # LTI conferences (Zoom, Teams) may never report started_at.
    msg = live_alert(card(started_at=None), NOW)
    assert_valid(msg)
    assert "ago" not in "\n".join(mrkdwn_texts(msg))


def test_live_alert_drops_unusable_join_url() -> None:
    for url in ("", "/courses/1/conferences/7/join", "https://x.test/" + "a" * 3000):
        msg = live_alert(card(join_url=url), NOW)
        assert_valid(msg)
        assert buttons(msg) == []


def test_empty_title_gets_a_placeholder() -> None:
    msg = live_alert(card(title="  "), NOW)
    assert_valid(msg)
    assert "Untitled conference" in msg["blocks"][0]["text"]["text"]


# --- ended alert ---------------------------------------------------------------------------------------


def test_ended_alert_has_duration_and_no_join_button() -> None:
    started = NOW - timedelta(minutes=50)
    msg = ended_alert(card(started_at=started, ended_at=started + timedelta(minutes=42)), NOW)
    assert_valid(msg)
    assert msg["blocks"][0]["text"]["text"] == "Ended: Week 3 lecture"
    assert "Ended · lasted 42 min" in "\n".join(mrkdwn_texts(msg))
    assert buttons(msg) == []
    assert "lasted 42 min" in msg["text"]


def test_ended_alert_long_duration() -> None:
    started = NOW - timedelta(hours=2)
    msg = ended_alert(card(started_at=started, ended_at=started + timedelta(minutes=65)), NOW)
    assert "lasted 1 h 5 min" in "\n".join(mrkdwn_texts(msg))


def test_ended_alert_unknown_start_says_ended() -> None:
    msg = ended_alert(card(started_at=None, ended_at=NOW), NOW)
    assert_valid(msg)
    body = "\n".join(mrkdwn_texts(msg))
    assert "Ended" in body and "lasted" not in body


def test_ended_alert_without_end_time_counts_until_now() -> None:
    msg = ended_alert(card(started_at=NOW - timedelta(minutes=30), ended_at=None), NOW)
    assert "lasted 30 min" in "\n".join(mrkdwn_texts(msg))


def test_ended_alert_escapes() -> None:
    msg = ended_alert(card(title=EVIL, context_name=EVIL, ended_at=NOW), NOW)
    assert_valid(msg)
    assert msg["blocks"][0]["text"]["text"] == f"Ended: {EVIL}"
    assert EVIL_ESCAPED in "\n".join(mrkdwn_texts(msg))
    assert "<!channel>" not in msg["text"]


# --- recordings ----------------------------------------------------------------------------------------


def test_recording_ready_lists_links_with_durations() -> None:
    recs = (
        RecordingLink("Lecture", "https://bbb.test/p/1?a=1&b=2", 65),
        RecordingLink(EVIL, "https://bbb.test/p/2", None),
        RecordingLink("", "https://bbb.test/p/3", 5),
    )
    msg = recording_ready(card(recordings=recs, ended_at=NOW))
    assert_valid(msg)
    body = "\n".join(mrkdwn_texts(msg))
    assert "<https://bbb.test/p/1?a=1&amp;b=2|Lecture> · 1 h 5 min" in body
    assert f"<https://bbb.test/p/2|{EVIL_ESCAPED}>" in body
    assert "|Recording 3> · 5 min" in body
    assert "3 recordings" in msg["text"]


def test_recording_ready_many_recordings_stay_within_limits() -> None:
    recs = tuple(RecordingLink(f"Part {i} " + "x" * 200, f"https://bbb.test/p/{i}", i) for i in range(1000))
    msg = recording_ready(card(recordings=recs))
    assert_valid(msg)
    assert re.search(r"…and \d+ more", "\n".join(mrkdwn_texts(msg)))


def test_recording_ready_without_recordings() -> None:
    msg = recording_ready(card())
    assert_valid(msg)
    assert "No recordings" in msg["text"]


# --- lists ---------------------------------------------------------------------------------------------


def test_live_list_one_section_per_conference_with_join() -> None:
    cards = [card(conference_id=i, title=f"Conf {i}", join_url=f"{JOIN}{i}") for i in range(3)]
    msg = live_list(cards, NOW)
    assert_valid(msg)
    sections = [b for b in msg["blocks"] if b["type"] == "section"]
    assert len(sections) == 3
    assert [s["accessory"]["url"] for s in sections] == [f"{JOIN}{i}" for i in range(3)]
    assert all(s["accessory"]["action_id"] == "join_conference" for s in sections)
    assert "Conf 0" in msg["text"]


def test_live_list_empty() -> None:
    msg = live_list([], NOW)
    assert_valid(msg)
    assert msg["text"] == "No conferences are live right now."
    assert buttons(msg) == []


@pytest.mark.parametrize("count", [48, 49, 50, 51, 200])
def test_live_list_any_number_of_cards_fits(count: int) -> None:
    cards = [
        card(conference_id=i, title=f"{EVIL} " * 500, context_name="C" * 5000, join_url=f"{JOIN}?i={i}")
        for i in range(count)
    ]
    msg = live_list(cards, NOW)
    assert_valid(msg)
    shown = [b for b in msg["blocks"] if b["type"] == "section"]
    context = [b for b in msg["blocks"] if b["type"] == "context"]
    if count <= 49:
        assert len(shown) == count and not context
    else:
        assert len(msg["blocks"]) == 50
        assert context[-1]["elements"][0]["text"] == f"…and {count - len(shown)} more"
    assert slack_length(msg["text"]) <= 1000


def test_all_list_shows_status_and_orders_live_first() -> None:
    cards = [
        card(
            conference_id=1,
            title="Old",
            started_at=NOW - timedelta(hours=3),
            ended_at=NOW - timedelta(hours=2),
        ),
        card(conference_id=2, title="Later", started_at=None),
        card(conference_id=3, title="Now"),
        card(conference_id=4, title="Zombie", started_at=NOW - timedelta(hours=30)),
    ]
    msg = all_list(cards, NOW)
    assert_valid(msg)
    sections = [b for b in msg["blocks"] if b["type"] == "section"]
    titles = [s["text"]["text"].split("\n")[0] for s in sections]
    assert titles == ["*Now*", "*Later*", "*Old*", "*Zombie*"]
    texts = [s["text"]["text"] for s in sections]
    assert "🔴 started" in texts[0]
    assert "not started" in texts[1]
    assert "ended · lasted 1 h" in texts[2]
    assert "ended" in texts[3]
    assert sections[0]["accessory"]["action_id"] == "join_conference"
    assert sections[1]["accessory"]["action_id"] == "open_conference"
    assert "accessory" not in sections[2] and "accessory" not in sections[3]


def test_conference_status_follows_canvas_rules() -> None:
    assert conference_status(card(), NOW) == "live"
    assert conference_status(card(started_at=None), NOW) == "not_started"
    assert conference_status(card(ended_at=NOW - timedelta(minutes=1)), NOW) == "ended"
    assert conference_status(card(ended_at=NOW + timedelta(minutes=30)), NOW) == "live"
    assert conference_status(card(started_at=NOW - timedelta(hours=25)), NOW) == "ended"


# --- help, linking, status -----------------------------------------------------------------------------


def test_help_lists_every_subcommand() -> None:
    msg = help_message()
    assert_valid(msg)
    body = "\n".join(mrkdwn_texts(msg))
    for usage in (
        "live",
        "all",
        "course &lt;id&gt;",
        "link",
        "unlink",
        "status",
        "subscribe &lt;course&gt;",
        "unsubscribe &lt;course&gt;",
        "subscriptions",
        "digest daily HH:MM [ZONE]",
        "digest weekly DAY HH:MM [ZONE]",
        "digest off",
        "mute &lt;course&gt;",
        "unmute &lt;course&gt;",
        "alerts on|off",
        "help",
    ):
        assert f"`/conferences {usage}` — " in body


def test_help_shows_reason_first_and_escaped() -> None:
    msg = help_message("I didn't understand `<!channel>`")
    assert_valid(msg)
    first = msg["blocks"][0]["text"]["text"]
    assert first == "I didn't understand `&lt;!channel&gt;`"
    assert msg["text"] == first


def test_link_instructions_with_oauth_url() -> None:
    msg = link_instructions("https://bot.test/canvas/oauth/start?s=abc")
    assert_valid(msg)
    [button] = buttons(msg)
    assert button["text"]["text"] == "Connect Canvas"
    assert button["url"] == "https://bot.test/canvas/oauth/start?s=abc"


def test_link_instructions_without_oauth_offers_token_modal() -> None:
    msg = link_instructions(None)
    assert_valid(msg)
    [button] = buttons(msg)
    assert button["action_id"] == "open_token_modal"
    assert "url" not in button
    assert "Link with a token" in "\n".join(mrkdwn_texts(msg))


def test_token_modal() -> None:
    view = token_modal()
    assert view["type"] == "modal"
    assert view["callback_id"] == "link_token_modal"
    assert_valid(view, max_blocks=100)
    for key in ("title", "submit", "close"):
        assert len(view[key]["text"]) <= 24
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert field["block_id"] == "token_block"
    assert field["element"]["type"] == "plain_text_input"
    assert field["element"]["action_id"] == "token"
    assert "initial_value" not in field["element"]
    body = "\n".join(mrkdwn_texts(view))
    assert "Account &gt; Settings" in body and "New access token" in body
    assert token_modal("other")["callback_id"] == "other"


def test_relink_prompt_with_url_and_without() -> None:
    msg = relink_prompt("https://bot.test/canvas/oauth/start", "Invalid access token.")
    assert_valid(msg)
    assert msg["text"].startswith("Your Canvas link stopped working (Invalid access token.)")
    [button] = buttons(msg)
    assert button["text"]["text"] == "Relink" and button["url"] == "https://bot.test/canvas/oauth/start"

    msg = relink_prompt(None, "<revoked>")
    assert_valid(msg)
    assert "(&lt;revoked&gt;)" in msg["text"]
    [button] = buttons(msg)
    assert button["action_id"] == "open_token_modal"


def test_status_message_linked() -> None:
    msg = status_message("Ann <Teacher>", NOW - timedelta(minutes=3), True, False, NOW)
    assert_valid(msg)
    body = "\n".join(mrkdwn_texts(msg))
    assert "linked as Ann &lt;Teacher&gt;" in body
    assert "3 min ago" in body
    assert "*Alerts:* on" in body


def test_status_message_unlinked_and_relink() -> None:
    body = "\n".join(mrkdwn_texts(status_message(None, None, False, False, NOW)))
    assert "not linked" in body and "not yet" in body and "off" in body
    body = "\n".join(mrkdwn_texts(status_message("Ann", NOW, True, True, NOW)))
    assert "stopped working" in body


def test_simple() -> None:
    msg = simple("Subscribed *#general* to Biology.")
    assert_valid(msg)
    assert msg["text"] == "Subscribed *#general* to Biology."
    assert msg["blocks"][0]["text"]["text"] == "Subscribed *#general* to Biology."


def test_action_ids_are_stable() -> None:
    # App handlers are registered against these strings; renaming one silently breaks a button.
    assert blocks.ACTION_JOIN == "join_conference"
    assert blocks.ACTION_OPEN_TOKEN_MODAL == "open_token_modal"
    assert blocks.TOKEN_BLOCK_ID == "token_block"
    assert blocks.TOKEN_ACTION_ID == "token"
