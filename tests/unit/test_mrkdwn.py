"""Escaping and truncation: what a Slack user would see (or be pinged by) if these were wrong."""

from __future__ import annotations

import pytest

from bot.messages.mrkdwn import (
    ELLIPSIS,
    bare_link,
    escape,
    link,
    plain_text,
    safe_link_url,
    slack_length,
    truncate,
    unescape,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here> please", "&lt;!here&gt; please"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<#C123|general>", "&lt;#C123|general&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("<!channel> & <b>", "&lt;!channel&gt; &amp; &lt;b&gt;"),
        ("Art & Design", "Art &amp; Design"),
        # A title that literally contains "&amp;" must display as "&amp;", so it is escaped once more.
        ("&amp;", "&amp;amp;"),
        ("&lt;", "&amp;lt;"),
        ("*bold* _it_ `code` ~s~ \"q\" 'a'", "*bold* _it_ `code` ~s~ \"q\" 'a'"),
        ("", ""),
        (None, ""),
    ],
)
def test_escape(raw: str | None, escaped: str) -> None:
    assert escape(raw) == escaped


def test_escaped_text_contains_no_markup_characters() -> None:
    out = escape("<<>>&&<!everyone>")
    assert "<" not in out and ">" not in out
    assert unescape(out) == "<<>>&&<!everyone>"


def test_unescape_decodes_amp_last() -> None:
    # A user typing "&lt;" literally arrives as "&amp;lt;" and must come back as "&lt;", not "<".
    assert unescape("&amp;lt;") == "&lt;"
    assert unescape("Art &amp; Design &lt;1&gt;") == "Art & Design <1>"


def test_link_escapes_label() -> None:
    assert link("https://canvas.test/c/1", "<!channel> & co") == (
        "<https://canvas.test/c/1|&lt;!channel&gt; &amp; co>"
    )


@pytest.mark.parametrize("url", ["https://x.test/a|b", "https://x.test/a>b<!channel>", "https://x.test/<a>"])
def test_link_url_cannot_break_out_of_markup(url: str) -> None:
    out = link(url, "Join")
    assert out.startswith("<") and out.endswith("|Join>")
    inner = out[1 : -len("|Join>")]
    assert "|" not in inner and ">" not in inner and "<" not in inner


def test_link_url_keeps_query_and_trims_surrounding_whitespace() -> None:
    assert safe_link_url(" https://x.test/p?a=1&b=2\n") == "https://x.test/p?a=1&b=2"
    assert link(" https://x.test/p?a=1&b=2\n", "x") == "<https://x.test/p?a=1&amp;b=2|x>"
    assert bare_link("https://x.test/a|b") == "<https://x.test/a%7Cb>"


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("hello", 5) == "hello"
    assert truncate("", 5) == ""


def test_truncate_cuts_with_ellipsis_within_limit() -> None:
    out = truncate("abcdefghij", 5)
    assert out == "abcd" + ELLIPSIS
    assert len(out) == 5


def test_truncate_zero_limit() -> None:
    assert truncate("abc", 0) == ""


@pytest.mark.parametrize("limit", range(2, 30))
def test_truncate_never_splits_an_entity(limit: int) -> None:
    text = escape("a&b<c>d&e&f<g>h&i&&&j" * 2)
    out = truncate(text, limit)
    assert slack_length(out) <= limit
    body = out.removesuffix(ELLIPSIS)
    # Every "&" left must start a complete entity.
    for index, ch in enumerate(body):
        if ch == "&":
            assert body.startswith(("&amp;", "&lt;", "&gt;"), index), body


def test_truncate_never_leaves_an_open_link() -> None:
    text = "see " + link("https://canvas.test/" + "x" * 100, "recording") + " now"
    out = truncate(text, 60)
    assert out == "see" + ELLIPSIS


def test_truncate_counts_astral_emoji_conservatively() -> None:
    out = truncate("🎉" * 10, 7)
    assert slack_length(out) <= 7
    assert out == "🎉🎉🎉" + ELLIPSIS


def test_truncate_does_not_split_zwj_emoji() -> None:
    family = "👨\u200d👩\u200d👧"
    out = truncate("ab" + family + "cdef", 5)
    assert "\u200d" not in out
    assert out == "ab" + ELLIPSIS


def test_plain_text_is_raw_but_truncated() -> None:
    assert plain_text("<!channel> & <b>", 150) == "<!channel> & <b>"
    out = plain_text("x" * 200, 150)
    assert len(out) == 150 and out.endswith(ELLIPSIS)


def test_plain_text_never_empty() -> None:
    assert plain_text("", 10) == " "
    assert plain_text(None, 10) == " "
    assert plain_text("   ", 10) == " "
