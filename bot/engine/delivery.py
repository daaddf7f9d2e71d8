"""Finding a message we may already have posted: Slack message metadata carries the outbox dedup key.

History reads are scarce (Slack: ~1 a minute for distributed apps), so they are spaced per process
and a read we cannot make now is retried later, never replaced by a blind second post."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

EVENT_TYPE = "confbot_message"
CLOCK_SLACK = timedelta(seconds=30)
HISTORY_PAGE = 15  # what Slack returns at most to a rate-limited app in one read
HISTORY_SPACING_SECONDS = 60.0  # ~1 read a minute: Slack's limit for distributed non-Marketplace apps


def sent_marker(dedup_key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"dedup_key": dedup_key}}


def _marked(message: dict[str, Any], dedup_key: str) -> bool:
    metadata = message.get("metadata") or {}
    return bool(
        metadata.get("event_type") == EVENT_TYPE
        and (metadata.get("event_payload") or {}).get("dedup_key") == dedup_key
    )


class LookupUnavailable(Exception):
    """We could not look whether the message reached Slack (rate limited, Slack or the network down, or
    this process's history budget spent): look again after `retry_after` seconds rather than post
    blindly (a duplicate) or give up (a lost alert)."""

    def __init__(self, reason: str, retry_after: float, *, counts: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.counts = counts  # a failure (counts as an attempt) or just waiting for a turn


class HistoryBudget:
    """Spacing between this process's conversations.history/replies reads.

    Slack allows distributed non-Marketplace apps about one history read a minute (15 messages). The
    look-up after an interrupted send is the only reader, so it takes turns: a look-up finding the
    budget spent is told when the next turn is, and its row waits for it.
    """

    def __init__(self, spacing: float = HISTORY_SPACING_SECONDS) -> None:
        self.spacing = spacing
        self._next_free = 0.0

    def take(self, now: float) -> float:
        """0 when a read may go now (the turn is taken), else seconds until the next free turn."""
        if now < self._next_free:
            return self._next_free - now
        self._next_free = now + self.spacing
        return 0.0

    def back_off(self, now: float, seconds: float) -> None:
        """Slack said 429: no read before Retry-After."""
        self._next_free = max(self._next_free, now + seconds)


async def find_posted(
    client: AsyncWebClient,
    destination: str,
    dedup_key: str,
    *,
    since: datetime,
    thread_ts: str | None,
    budget: HistoryBudget,
    now: datetime,
) -> tuple[str, str] | None:
    """(channel, ts) of our message with `dedup_key` posted after `since`, or None when it is not there.

    Reads one page of at most HISTORY_PAGE messages (the newest since `since`; an interrupted send is
    recent). Raises LookupUnavailable when we cannot look now (budget spent, 429, 5xx, network): the
    caller looks again later. When Slack answers that we may never look here (an error code such as
    missing_scope or not_in_channel) it returns None: posting again is then the lesser evil than never
    posting.
    """
    wait = budget.take(now.timestamp())
    if wait:
        raise LookupUnavailable("waiting for a history read turn", wait, counts=False)
    try:
        channel = destination
        if destination.startswith(("U", "W")):
            channel = (await client.conversations_open(users=destination))["channel"]["id"]
        oldest = f"{(since - CLOCK_SLACK).timestamp():.6f}"
        if thread_ts:
            answer = await client.conversations_replies(
                channel=channel, ts=thread_ts, oldest=oldest, include_all_metadata=True, limit=HISTORY_PAGE
            )
        else:
            answer = await client.conversations_history(
                channel=channel, oldest=oldest, include_all_metadata=True, limit=HISTORY_PAGE
            )
    except SlackApiError as error:
        status = error.response.status_code
        if status == 429:
            retry_after = float(error.response.headers.get("Retry-After", 60) or 60)
            budget.back_off(now.timestamp(), retry_after)
            raise LookupUnavailable("history ratelimited", retry_after, counts=False) from error
        if status >= 500:
            raise LookupUnavailable(f"history http {status}", budget.spacing, counts=True) from error
        log.warning(
            "cannot check whether a message reached Slack (%s); posting it", error.response.get("error")
        )
        return None
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        raise LookupUnavailable(
            f"history network: {type(error).__name__}", budget.spacing, counts=True
        ) from error
    for message in answer.get("messages") or []:
        if _marked(message, dedup_key):
            return channel, str(message["ts"])
    return None
