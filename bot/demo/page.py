"""The demo's view of Slack: Block Kit messages rendered for a browser page and for a terminal.

Everything shown comes from the sandbox Slack (`GET /_sandbox/messages`), i.e. from Canvas titles and
course names an attacker may choose. Slack mrkdwn is therefore parsed into spans first, Slack's three
entities are decoded, and only then is every piece HTML-escaped (or stripped of control characters for a
terminal): a title like ``<script>`` or ``<!channel>`` is displayed as text, never interpreted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

# An href gets the bot's own link rule: a message shown here is attacker-shaped, and a `javascript:` or
# `data:` href would run in this page.
from bot.messages.mrkdwn import safe_link_url

JSON = dict[str, Any]

# --- mrkdwn -> spans -------------------------------------------------------------------------------------

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


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of parsed mrkdwn: plain text (formatting markers still inside), a link, or a mention."""

    kind: str  # "text" | "link" | "mention"
    text: str  # decoded: what a reader sees
    url: str = ""


def slack_unescape(text: str) -> str:
    """Decode the only three entities Slack knows; ``&amp;`` last so ``&amp;lt;`` stays ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean(text: str) -> str:
    """Drop control and bidi-override characters: Canvas text must not move a terminal's cursor."""
    return _CONTROL.sub("", text.replace("\t", " "))


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


def _styles(open_close: Callable[[str, str], str]) -> Callable[[str], str]:
    """Apply `code`, *bold*, _italic_ and ~strike~ (Slack's rules: markers hug non-space text)."""
    rules = [
        ("code", re.compile(r"`([^`\n]+)`")),
        ("bold", re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")),
        ("italic", re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")),
        ("strike", re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")),
    ]

    def wrapper(style: str) -> Callable[[re.Match[str]], str]:
        return lambda match: open_close(style, match.group(1))

    def apply(text: str) -> str:
        for style, pattern in rules:
            text = pattern.sub(wrapper(style), text)
        return text

    return apply


# --- HTML ------------------------------------------------------------------------------------------------

_HTML_TAGS = {"code": "code", "bold": "strong", "italic": "em", "strike": "del"}
_html_styles = _styles(lambda style, inner: f"<{_HTML_TAGS[style]}>{inner}</{_HTML_TAGS[style]}>")


def _e(text: str) -> str:
    return html.escape(clean(text), quote=True)


def mrkdwn_html(text: str, names: Mapping[str, str] | None = None) -> str:
    """mrkdwn -> safe HTML: escape first, then wrap escaped text in our own tags only."""
    out: list[str] = []
    for span in parse_mrkdwn(text, names):
        href = safe_link_url(span.url) if span.kind == "link" else None
        if href is not None:
            out.append(f'<a href="{_e(href)}" target="_blank" rel="noopener noreferrer">{_e(span.text)}</a>')
        elif span.kind == "mention":
            out.append(f'<span class="mention">{_e(span.text)}</span>')
        else:
            out.append(_html_styles(_e(span.text)))
    return "".join(out).replace("\n", "<br>")


def _text_html(obj: Any, names: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    return mrkdwn_html(text, names) if obj.get("type") == "mrkdwn" else _e(text).replace("\n", "<br>")


def _element_html(element: Any, names: Mapping[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind == "button":
        label = _e(str((element.get("text") or {}).get("text") or ""))
        style = " primary" if element.get("style") == "primary" else ""
        href = safe_link_url(str(element.get("url") or ""))
        if href is not None:
            return f'<a class="button{style}" href="{_e(href)}" target="_blank" rel="noopener">{label}</a>'
        return f'<span class="button{style}">{label}</span>'
    if kind in ("mrkdwn", "plain_text"):
        return f"<span>{_text_html(element, names)}</span>"
    if kind == "image":
        return f'<span class="image">[{_e(str(element.get("alt_text") or "image"))}]</span>'
    return f'<span class="unknown">[{_e(str(kind))}]</span>'


def _block_html(block: Any, names: Mapping[str, str]) -> str:
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "header":
        return f'<div class="header">{_text_html(block.get("text"), names)}</div>'
    if kind == "section":
        parts = [f'<div class="text">{_text_html(block.get("text"), names)}</div>']
        fields = block.get("fields") or []
        if fields:
            cells = "".join(f"<div>{_text_html(f, names)}</div>" for f in fields)
            parts.append(f'<div class="fields">{cells}</div>')
        if block.get("accessory"):
            parts.append(f'<div class="accessory">{_element_html(block["accessory"], names)}</div>')
        return f'<div class="section">{"".join(parts)}</div>'
    if kind == "context":
        items = "".join(_element_html(e, names) for e in block.get("elements") or [])
        return f'<div class="context">{items}</div>'
    if kind == "actions":
        items = "".join(_element_html(e, names) for e in block.get("elements") or [])
        return f'<div class="actions">{items}</div>'
    if kind == "divider":
        return "<hr>"
    return f'<div class="unknown">[{_e(str(kind))} block]</div>'


def message_html(message: JSON, names: Mapping[str, str] | None = None) -> str:
    """One message as a card; the top-level text stands in when there are no blocks, as in Slack."""
    names = names or {}
    blocks = message.get("blocks") or []
    body = (
        "".join(_block_html(b, names) for b in blocks)
        if blocks
        else _text_html({"type": "mrkdwn", "text": message.get("text") or ""}, names)
    )
    edited = ' <span class="edited">(edited)</span>' if message.get("edits") else ""
    when = _e(clock(message.get("ts")))
    meta = f"confbot · {when}" if when else "confbot"
    return f'<article class="message"><div class="meta">{meta}{edited}</div>{body}</article>'


def clock(ts: Any) -> str:
    """A Slack ``ts`` (epoch seconds as a string) as local HH:MM:SS."""
    try:
        return datetime.fromtimestamp(float(ts)).astimezone().strftime("%H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def recipient(message: JSON, names: Mapping[str, str]) -> str:
    """Who sees a message: the DM's user, or the channel."""
    user = message.get("user")
    if user:
        return f"DM · {names.get(user, user)} ({user})" if user in names else f"DM · {user}"
    return f"#{message.get('channel')}"


@dataclass
class Reply:
    """A slash-command reply posted to a response_url (ephemeral: only `to` sees it)."""

    to: str
    command: str
    post: JSON


def feed_html(messages: Sequence[JSON], replies: Sequence[Reply], names: Mapping[str, str]) -> str:
    """Messages grouped by recipient (DMs first, oldest first), then slash-command replies."""
    groups: dict[str, list[JSON]] = {}
    for message in sorted(messages, key=lambda m: (not m.get("user"), float(m.get("ts") or 0))):
        groups.setdefault(recipient(message, names), []).append(message)
    parts = []
    for title, items in groups.items():
        cards = "".join(message_html(m, names) for m in items)
        parts.append(f'<section class="group"><h2>{_e(title)}</h2>{cards}</section>')
    for reply in replies:
        who = names.get(reply.to, reply.to)
        title = f"{reply.command} · only visible to {who}"
        card = message_html({**reply.post, "ts": reply.post.get("at")}, names)
        parts.append(f'<section class="group reply"><h2>{_e(title)}</h2>{card}</section>')
    if not parts:
        return '<p class="empty">No messages yet. Waiting for the bot…</p>'
    return "".join(parts)


# --- the page ---------------------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f4f6;
color:#1d1c1d}
header.top{background:#3f0e40;color:#fff;padding:12px 24px}
header.top h1{font-size:18px;margin:0}
header.top p{margin:2px 0 0;opacity:.8;font-size:13px}
main{max-width:760px;margin:0 auto;padding:16px 24px}
.group{margin:0 0 20px}
.group h2{font-size:13px;text-transform:uppercase;letter-spacing:.04em;color:#616061;margin:0 0 6px}
.message{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin:0 0 8px}
.reply .message{border-style:dashed}
.meta{font-size:12px;color:#616061;margin-bottom:4px}
.edited{color:#868686;font-style:italic}
.header{font-size:18px;font-weight:700;margin:4px 0 6px}
.section{display:flex;gap:12px;justify-content:space-between;align-items:flex-start;margin:4px 0}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px}
.context{font-size:12px;color:#616061;display:flex;gap:8px;margin:4px 0}
.actions{display:flex;gap:8px;margin:8px 0 2px}
.button{display:inline-block;border:1px solid #ccc;border-radius:4px;padding:3px 12px;font-weight:700;
color:#1d1c1d;text-decoration:none;background:#fff;white-space:nowrap}
.button.primary{background:#007a5a;border-color:#007a5a;color:#fff}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 2px}
a{color:#1264a3}
code{background:#f2f2f2;border:1px solid #ddd;border-radius:3px;padding:0 3px;color:#c01343}
.empty{color:#616061}
"""

_JS = """
const feed = document.getElementById("feed");
let last = feed.innerHTML;
async function refresh() {
  try {
    const response = await fetch("/feed", {cache: "no-store"});
    if (response.ok) {
      const html = await response.text();
      if (html !== last) { feed.innerHTML = html; last = html; }
    }
  } catch (error) { /* the demo is shutting down; keep the last view */ }
  setTimeout(refresh, 1000);
}
setTimeout(refresh, 1000);
"""

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_html(feed: str, subtitle: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<title>confbot demo · sandbox Slack</title><link rel="stylesheet" href="/page.css">'
        '<noscript><meta http-equiv="refresh" content="3"></noscript></head><body>'
        '<header class="top"><h1>confbot demo · sandbox Slack</h1>'
        f"<p>{_e(subtitle)}</p></header>"
        f'<main id="feed">{feed}</main><script src="/page.js"></script></body></html>'
    )


def create_page_app(
    slack_url: str,
    *,
    names: Mapping[str, str] | None = None,
    replies: Sequence[Reply] | None = None,
) -> Starlette:
    """The live page: `/` (full page), `/feed` (HTML fragment the page polls), `/messages.json` (raw).

    `names` maps Slack user ids to display names; `replies` may grow while the app runs.
    """
    shown_names: Mapping[str, str] = names if names is not None else {}
    shown_replies: Sequence[Reply] = replies if replies is not None else []
    subtitle = "Messages the bot sent, as the sandbox Slack received them; refreshes live."

    async def messages() -> list[JSON]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{slack_url}/_sandbox/messages")
            response.raise_for_status()
            return list(response.json()["messages"])

    def secured(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def feed_fragment() -> str:
        try:
            return feed_html(await messages(), shown_replies, shown_names)
        except httpx.HTTPError:
            return '<p class="empty">The sandbox Slack is not answering.</p>'

    async def index(_request: Request) -> Response:
        return secured(HTMLResponse(page_html(await feed_fragment(), subtitle)))

    async def feed(_request: Request) -> Response:
        return secured(HTMLResponse(await feed_fragment()))

    async def raw(_request: Request) -> Response:
        return secured(JSONResponse({"messages": await messages()}))

    async def css(_request: Request) -> Response:
        return secured(PlainTextResponse(_CSS, media_type="text/css"))

    async def js(_request: Request) -> Response:
        return secured(PlainTextResponse(_JS, media_type="text/javascript"))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/feed", feed),
            Route("/messages.json", raw),
            Route("/page.css", css),
            Route("/page.js", js),
        ]
    )


# --- terminal ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ansi:
    """Terminal styling; `Ansi(False)` gives plain text (pipes, CI logs, tests)."""

    enabled: bool

    def __call__(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.enabled and text else text

    def mrkdwn(self, text: str, names: Mapping[str, str] | None = None) -> str:
        codes = {"code": "36", "bold": "1", "italic": "3", "strike": "9"}
        styles = _styles(lambda style, inner: self(codes[style], inner))
        out: list[str] = []
        for span in parse_mrkdwn(text, names):
            shown = clean(span.text)
            if span.kind == "link":
                url = clean(span.url)
                out.append(self("4;34", shown) if shown == url else f"{self('4', shown)} ({self('34', url)})")
            elif span.kind == "mention":
                out.append(self("34", shown))
            else:
                out.append(styles(shown))
        return "".join(out)


def _text_term(obj: Any, ansi: Ansi, names: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return ""
    text = str(obj.get("text") or "")
    return ansi.mrkdwn(text, names) if obj.get("type") == "mrkdwn" else clean(text)


def _element_term(element: Any, ansi: Ansi, names: Mapping[str, str]) -> str:
    if not isinstance(element, dict):
        return ""
    if element.get("type") == "button":
        label = clean(str((element.get("text") or {}).get("text") or ""))
        url = clean(str(element.get("url") or ""))
        button = ansi("1;42;97" if element.get("style") == "primary" else "1;7", f"[{label}]")
        return f"{button} {ansi('4;34', url)}" if url else button
    if element.get("type") == "image":
        return f"[{clean(str(element.get('alt_text') or 'image'))}]"
    return _text_term(element, ansi, names)


def _block_term(block: Any, ansi: Ansi, names: Mapping[str, str]) -> list[str]:
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind == "header":
        return [ansi("1;97", _text_term(block.get("text"), ansi, names))]
    if kind == "section":
        lines = _text_term(block.get("text"), ansi, names).splitlines()
        lines += [_text_term(field, ansi, names) for field in block.get("fields") or []]
        if block.get("accessory"):
            lines.append(_element_term(block["accessory"], ansi, names))
        return lines
    if kind == "context":
        return [ansi("2", "  ·  ".join(_element_term(e, ansi, names) for e in block.get("elements") or []))]
    if kind == "actions":
        return ["  ".join(_element_term(e, ansi, names) for e in block.get("elements") or [])]
    if kind == "divider":
        return [ansi("2", "─" * 40)]
    return [ansi("2", f"[{clean(str(kind))} block]")]


def message_lines(
    message: JSON, heading: str, ansi: Ansi, names: Mapping[str, str] | None = None
) -> list[str]:
    """A message for the terminal: a rule with who/when, then one bar-prefixed line per visual line."""
    names = names or {}
    blocks = message.get("blocks") or []
    body: list[str] = []
    for block in blocks:
        body.extend(_block_term(block, ansi, names))
    if not blocks:
        body = ansi.mrkdwn(str(message.get("text") or ""), names).splitlines()
    label = f"── {clean(heading)} · {clock(message.get('ts'))} "
    edited = "(edited) " if message.get("edits") else ""
    rule = ansi("35", label) + ansi("1;33", edited) + ansi("35", "─" * max(4, 64 - len(label + edited)))
    bar = ansi("35", "│")
    return [rule, *(f"{bar} {line}" for line in body)]
