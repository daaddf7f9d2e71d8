"""Finding a message we may already have posted: Slack message metadata carries the outbox dedup key."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

EVENT_TYPE = "confbot_message"
CLOCK_SLACK = timedelta(seconds=30)


def sent_marker(dedup_key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"dedup_key": dedup_key}}


def _marked(message: dict[str, Any], dedup_key: str) -> bool:
    metadata = message.get("metadata") or {}
    return bool(
        metadata.get("event_type") == EVENT_TYPE
        and (metadata.get("event_payload") or {}).get("dedup_key") == dedup_key
    )


async def find_posted(
    client: AsyncWebClient, destination: str, dedup_key: str, *, since: datetime, thread_ts: str | None
) -> tuple[str, str] | None:
    """(channel, ts) of our message with `dedup_key` posted after `since`, or None (also when we cannot
    look: then posting again is the lesser evil than never posting)."""
    try:
        channel = destination
        if destination.startswith(("U", "W")):
            channel = (await client.conversations_open(users=destination))["channel"]["id"]
        oldest = f"{(since - CLOCK_SLACK).timestamp():.6f}"
        if thread_ts:
            answer = await client.conversations_replies(
                channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=200
            )
        else:
            answer = await client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=200
            )
    except SlackApiError as error:
        log.warning(
            "cannot check whether a message reached Slack (%s); posting it", error.response.get("error")
        )
        return None
    for message in answer.get("messages") or []:
        if _marked(message, dedup_key):
            return channel, str(message["ts"])
    return None
