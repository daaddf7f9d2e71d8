"""Reading Block Kit payloads in tests: what Slack shows as mrkdwn, and which buttons a message has."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.messages.blocks import ConferenceCard

NOW = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)
JOIN = "https://canvas.test/courses/1/conferences/7/join"


def card(**overrides: Any) -> ConferenceCard:
    """A conference live for 12 minutes at NOW (Biology 101's week 3 lecture), with `overrides`."""
    values: dict[str, Any] = {
        "conference_id": 7,
        "title": "Week 3 lecture",
        "context_name": "Biology 101",
        "conference_type": "BigBlueButton",
        "started_at": NOW - timedelta(minutes=12),
        "ended_at": None,
        "join_url": JOIN,
    }
    values.update(overrides)
    return ConferenceCard(**values)


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
