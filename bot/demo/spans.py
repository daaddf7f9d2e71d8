"""Slack mrkdwn parsed into spans and styled runs: the one parser behind the demo page and the terminal.

Everything the demo shows comes from Canvas titles and course names an attacker may choose. So mrkdwn is
parsed into plain data first (text, links, mentions; each text cut into runs carrying their styles) and
Slack's three entities are decoded; the page's templates then escape every run (Jinja2 autoescape) and the
terminal strips control characters. Nothing here produces markup, so nothing here can inject any.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# An href gets the bot's own link rule: a message shown in the page is attacker-shaped, and a
# `javascript:` or `data:` href would run in it.
from bot.messages.mrkdwn import safe_link_url

_MARKUP = re.compile(r"<([^<>]*)>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_DATE_TOKENS = {
    "{date_num}": "%Y-%m-%d",
    "{date}": "%B %d, %Y",
    "{date_short}": "%b %d, %Y",
    "{date_long}": "%A, %B %d, %Y",
    "{date_pretty}": "%B %d, %Y",
    "{date_short_pretty}": "%b %d",
    "{date_long_pretty}": "%A, %B %d",
    "{time}": "%H:%M",
    "{time_secs}": "%H:%M:%S",
}
# Slack's rules: markers hug non-space text and do not touch a word character outside. `code` comes first
# and nothing is styled inside it, as in Slack.
_STYLE_RULES = (
    ("code", re.compile(r"`([^`\n]+)`")),
    ("bold", re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")),
    ("italic", re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")),
    ("strike", re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")),
)


@dataclass(frozen=True, slots=True)
class Run:
    """Text shown with the same styles (a subset of code, bold, italic, strike); control chars removed."""

    text: str
    styles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of parsed mrkdwn: plain text (formatting markers still inside), a link, or a mention."""

    kind: str  # "text" | "link" | "mention"
    text: str  # decoded: what a reader sees
    url: str = ""

    @property
    def href(self) -> str | None:
        """Where a link may point in a browser: only an absolute http(s) URL, else it is shown as text."""
        return safe_link_url(self.url) if self.kind == "link" else None

    @property
    def runs(self) -> list[Run]:
        return styled_runs(self.text) if self.kind == "text" else [Run(clean(self.text))]


def slack_unescape(text: str) -> str:
    """Decode the only three entities Slack knows; ``&amp;`` last so ``&amp;lt;`` stays ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean(text: str) -> str:
    """Drop control and bidi-override characters: Canvas text must not move a terminal's cursor."""
    return _CONTROL.sub("", text.replace("\t", " "))


def styled_runs(text: str) -> list[Run]:
    """`text` cut into runs by Slack's `code`, *bold*, _italic_ and ~strike~ markers (markers dropped)."""
    runs = [Run(clean(text))]
    for style, pattern in _STYLE_RULES:
        split: list[Run] = []
        for run in runs:
            if "code" in run.styles:
                split.append(run)
                continue
            position = 0
            for match in pattern.finditer(run.text):
                if match.start() > position:
                    split.append(Run(run.text[position : match.start()], run.styles))
                split.append(Run(match.group(1), (*run.styles, style)))
                position = match.end()
            if position < len(run.text):
                split.append(Run(run.text[position:], run.styles))
        runs = split
    return [run for run in runs if run.text]


def _slack_date(body: str) -> str:
    """``!date^ts^format|fallback`` shown in this machine's local time, as Slack shows the reader's."""
    head, _, fallback = body.partition("|")
    parts = head.split("^")
    try:
        moment = datetime.fromtimestamp(int(parts[1])).astimezone()
        fmt = parts[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return fallback
    for token, pattern in _DATE_TOKENS.items():
        fmt = fmt.replace(token, moment.strftime(pattern))
    return fallback if "{" in fmt else fmt


def _markup_span(body: str, names: Mapping[str, str]) -> Span:
    target, _, label = body.partition("|")
    if target.startswith("!date^"):
        return Span("text", slack_unescape(_slack_date(body)))
    if target.startswith("!"):
        shown = label or "@" + target[1:].split("^", 1)[0]
        return Span("mention", slack_unescape(shown))
    if target.startswith("@"):
        return Span("mention", "@" + names.get(target[1:], label or target[1:]))
    if target.startswith("#"):
        return Span("mention", "#" + slack_unescape(label or target[1:]))
    url = slack_unescape(target)
    return Span("link", slack_unescape(label) if label else url, url)


def parse_mrkdwn(text: str, names: Mapping[str, str] | None = None) -> list[Span]:
    """Split mrkdwn into text, links and mentions; a bare ``<`` cannot occur in valid mrkdwn."""
    spans: list[Span] = []
    position = 0
    for match in _MARKUP.finditer(text):
        if match.start() > position:
            spans.append(Span("text", slack_unescape(text[position : match.start()])))
        spans.append(_markup_span(match.group(1), names or {}))
        position = match.end()
    if position < len(text):
        spans.append(Span("text", slack_unescape(text[position:])))
    return spans


def text_spans(obj: Any, names: Mapping[str, str]) -> list[Span]:
    """A Block Kit text object as spans: mrkdwn parsed, plain_text kept verbatim (still cleaned)."""
    if not isinstance(obj, dict):
        return []
    text = str(obj.get("text") or "")
    return parse_mrkdwn(text, names) if obj.get("type") == "mrkdwn" else [Span("plain", text)]


def clock(ts: Any) -> str:
    """A Slack ``ts`` (epoch seconds as a string) as local HH:MM:SS."""
    try:
        return datetime.fromtimestamp(float(ts)).astimezone().strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""
