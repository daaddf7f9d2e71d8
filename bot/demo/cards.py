"""Block Kit JSON turned into plain data the page's templates render: cards, blocks, elements, spans.

The templates only lay these out; every decision about what a piece means (which URL may become a link,
which text is mrkdwn, what a thread reply belongs to) is made here, in typed Python, from JSON that an
attacker may have shaped through a Canvas title. Unknown or malformed blocks become a visible
placeholder instead of an error, as Slack's own clients do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.demo.spans import Span, clean, clock, parse_mrkdwn, text_spans
from bot.messages.mrkdwn import safe_link_url

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Element:
    """A button, a text or image inside context/actions/accessory, a time picker, or an unknown kind."""

    kind: str  # "button" | "text" | "image" | "timepicker" | "unknown"
    label: str = ""
    spans: tuple[Span, ...] = ()
    href: str | None = None
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Block:
    kind: str  # "header" | "section" | "context" | "actions" | "divider" | "image" | "unknown"
    spans: tuple[Span, ...] = ()
    fields: tuple[tuple[Span, ...], ...] = ()
    accessory: Element | None = None
    elements: tuple[Element, ...] = ()
    label: str = ""


@dataclass(slots=True)
class Card:
    """One Slack message as a reader sees it; `replies` are the messages in its thread."""

    when: str
    edited: bool
    blocks: list[Block]
    fallback: tuple[Span, ...]
    ts: str = ""
    replies: list[Card] = field(default_factory=list)


@dataclass(slots=True)
class Conversation:
    """Where messages are shown: a DM, a channel, an ephemeral reply, or a user's App Home."""

    kind: str  # "dm" | "channel" | "ephemeral" | "home"
    title: str
    cards: list[Card]
    key: str = ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _label(obj: Any) -> str:
    return clean(str(obj.get("text") or "")) if isinstance(obj, dict) else ""


def element(raw: Any, names: Mapping[str, str]) -> Element:
    if not isinstance(raw, dict):
        return Element("unknown", label="?")
    kind = raw.get("type")
    if kind == "button":
        return Element(
            "button",
            label=_label(raw.get("text")),
            href=safe_link_url(str(raw.get("url") or "")),
            primary=raw.get("style") == "primary",
        )
    if kind in ("mrkdwn", "plain_text"):
        return Element("text", spans=tuple(text_spans(raw, names)))
    if kind == "image":
        return Element("image", label=clean(str(raw.get("alt_text") or "image")))
    if kind == "timepicker":
        shown = raw.get("initial_time") or _label(raw.get("placeholder"))
        return Element("timepicker", label=clean(str(shown)))
    return Element("unknown", label=clean(str(kind)))


def block(raw: Any, names: Mapping[str, str]) -> Block:
    if not isinstance(raw, dict):
        return Block("unknown", label="?")
    kind = raw.get("type")
    items = _list(raw.get("elements"))
    if kind == "header":
        return Block("header", spans=tuple(text_spans(raw.get("text"), names)))
    if kind == "section":
        fields = _list(raw.get("fields"))
        accessory = raw.get("accessory")
        return Block(
            "section",
            spans=tuple(text_spans(raw.get("text"), names)),
            fields=tuple(tuple(text_spans(f, names)) for f in fields),
            accessory=element(accessory, names) if accessory else None,
        )
    if kind in ("context", "actions"):
        return Block(str(kind), elements=tuple(element(e, names) for e in items))
    if kind == "divider":
        return Block("divider")
    if kind == "image":
        return Block("image", label=clean(str(raw.get("alt_text") or "image")))
    return Block("unknown", label=clean(str(kind)))


def card(message: JSON, names: Mapping[str, str], ts_key: str = "ts") -> Card:
    """A message as a card; its top-level text stands in when it has no blocks, as in Slack."""
    raw_blocks = _list(message.get("blocks"))
    return Card(
        when=clock(message.get(ts_key)),
        edited=bool(message.get("edits")),
        blocks=[block(b, names) for b in raw_blocks],
        fallback=() if raw_blocks else tuple(parse_mrkdwn(str(message.get("text") or ""), names)),
        ts=str(message.get("ts") or ""),
    )


def recipient(message: JSON, names: Mapping[str, str], channel_names: Mapping[str, str]) -> tuple[str, str]:
    """(kind, title) of where a message is shown: the DM's user, or the channel by name."""
    user = message.get("user")
    if user:
        return "dm", (f"DM · {names[user]} ({user})" if user in names else f"DM · {user}")
    channel = str(message.get("channel"))
    return "channel", f"#{channel_names.get(channel, channel)}"


def conversations(
    messages: Sequence[JSON], names: Mapping[str, str], channel_names: Mapping[str, str] | None = None
) -> list[Conversation]:
    """Messages grouped by conversation (DMs first, oldest first); thread replies under their parent."""
    channel_names = channel_names or {}
    groups: dict[str, Conversation] = {}
    parents: dict[tuple[str, str], Card] = {}
    ordered = sorted(messages, key=lambda m: (not m.get("user"), float(m.get("ts") or 0)))
    for message in ordered:
        shown = card(message, names)
        thread = (str(message.get("channel")), str(message.get("thread_ts") or ""))
        parent = parents.get(thread)
        if parent is not None and thread[1] != shown.ts:
            parent.replies.append(shown)
            continue
        parents[(str(message.get("channel")), shown.ts)] = shown
        kind, title = recipient(message, names, channel_names)
        groups.setdefault(title, Conversation(kind, title, [], key=str(message.get("channel")))).cards.append(
            shown
        )
    return list(groups.values())
