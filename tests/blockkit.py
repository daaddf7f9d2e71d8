"""Reading Block Kit payloads in tests: what Slack shows as mrkdwn, and which buttons a message has."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a payload, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def mrkdwn_texts(message: Any) -> list[str]:
    """Every string Slack parses as mrkdwn: a message's top-level text (notifications; views have none)
    and every mrkdwn object."""
    found = [n["text"] for n in walk(message.get("blocks")) if n.get("type") == "mrkdwn"]
    return [message["text"], *found] if "text" in message else found


def buttons(message: Any) -> list[dict[str, Any]]:
    return [n for n in walk(message.get("blocks")) if n.get("type") == "button"]


def button_urls(message: Any) -> list[str]:
    return [b["url"] for b in buttons(message) if b.get("url")]
