"""The demo page's HTML: Jinja2 templates (shipped in the package, autoescape always on) over `cards`.

Python decides what each piece of a message means (bot/demo/cards.py, bot/demo/spans.py); the templates
only lay it out, and autoescape turns every Canvas string into text. Markup reaches the page only from the
templates themselves, so a title like ``<script>`` or ``<!channel>`` is displayed, never interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bot.demo.cards import JSON, Card, card, conversations
from bot.demo.controls import Reply
from bot.demo.spans import parse_mrkdwn


@cache
def templates() -> Environment:
    """One environment per process; templates are read from the installed package (wheel or checkout)."""
    return Environment(
        loader=PackageLoader("bot.demo", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


@dataclass(frozen=True)
class ShownReply:
    title: str
    card: Card


@dataclass(frozen=True)
class ShownHome:
    title: str
    card: Card


def _macro(name: str) -> Any:
    return getattr(templates().get_template("_blockkit.html").module, name)


def mrkdwn_html(text: str, names: Mapping[str, str] | None = None) -> Markup:
    """mrkdwn as safe HTML (the page's own rendering of one text; a macro's output is already escaped)."""
    shown: Markup = _macro("spans")(parse_mrkdwn(text, names))
    return shown


def message_html(message: JSON, names: Mapping[str, str] | None = None) -> Markup:
    """One message as the page's card."""
    shown: Markup = _macro("message")(card(message, names or {}))
    return shown


def feed_view(
    messages: Sequence[JSON],
    replies: Sequence[Reply],
    names: Mapping[str, str],
    *,
    homes: Sequence[JSON] = (),
    channel_names: Mapping[str, str] | None = None,
    error: str = "",
) -> dict[str, Any]:
    """What `_feed.html` shows: conversations (DMs, then channels), slash-command replies newest first,
    then App Homes."""
    shown_replies = [
        ShownReply(
            f"{reply.command} · only visible to {names.get(reply.to, reply.to)} · in {reply.where}",
            card({**reply.post, "ts": reply.post.get("at")}, names),
        )
        for reply in reversed(replies)
    ]
    shown_homes = [
        ShownHome(names.get(str(home.get("user_id")), str(home.get("user_id"))), card(home["view"], names))
        for home in homes
        if isinstance(home.get("view"), dict)
    ]
    return {
        "conversations": conversations(messages, names, channel_names),
        "replies": shown_replies,
        "homes": shown_homes,
        "error": error,
    }


def feed_html(messages: Sequence[JSON], replies: Sequence[Reply], names: Mapping[str, str]) -> str:
    """The feed fragment for messages and replies alone (no App Homes, channels shown by id)."""
    return render("_feed.html", **feed_view(messages, replies, names))


def render(name: str, **context: Any) -> str:
    return templates().get_template(name).render(**context)
