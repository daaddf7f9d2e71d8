"""Finding a message we may already have posted: Slack message metadata carries the outbox dedup key.

History reads are scarce (Slack: ~1 a minute for distributed apps), so they are spaced per process
and a read we cannot make now is retried later, never replaced by a blind second post."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.pacing import TokenBucket
from bot.slackweb.clients import TIMEOUT_SECONDS as SLACK_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

EVENT_TYPE = "confbot_message"
CLOCK_SLACK = timedelta(seconds=30)
HISTORY_PAGE = 15  # what Slack returns at most to a rate-limited app in one read
POST_WINDOW = timedelta(seconds=SLACK_TIMEOUT_SECONDS)  # how long after `sending_since` a post can land
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
    """This process's conversations.history/replies reads: `per_minute` sustained, `burst` at once.

    Slack allows distributed non-Marketplace apps about one history read a minute (15 messages), no
    burst; internal apps keep Tier 3 (about 50 a minute, occasional bursts). The look-up after an
    interrupted send is the only reader, so it takes turns: a look-up finding the budget spent is told
    when the next turn is, and its row waits for it.
    """

    def __init__(self, per_minute: float = 60 / HISTORY_SPACING_SECONDS, burst: float = 1.0) -> None:
        self.spacing = 60 / per_minute  # seconds a read costs, sustained
        self._bucket = TokenBucket(per_minute / 60, burst)

    @classmethod
    def for_rate(cls, per_minute: float) -> HistoryBudget:
        """Slack's tiers allow bursts at the higher rates; at one a minute there is none."""
        return cls(per_minute, burst=max(1.0, per_minute // 10))

    def take(self, now: float) -> float:
        """0 when a read may go now (the turn is taken), else seconds until the next free turn."""
        return self._bucket.take(now)

    def back_off(self, now: float, seconds: float) -> None:
        """Slack said 429: no read before Retry-After."""
        self._bucket.hold(now + seconds)


async def find_posted(
    client: AsyncWebClient,
    destination: str,
    dedup_key: str,
    *,
    since: datetime,
    thread_ts: str | None,
    budget: HistoryBudget,
    now: datetime,
    searched: dict[str, str] | None = None,
    matches: Callable[[dict[str, Any]], bool] | None = None,
    window: timedelta = POST_WINDOW,
) -> tuple[str, str] | None:
    """(channel, ts) of our message with `dedup_key` posted after `since`, or None when it is not there.

    Our post, if it happened, lies between `since` and the longest a post can take after it (each side
    widened by CLOCK_SLACK): only that window is read, newest first, HISTORY_PAGE messages a page, older
    pages until the window is exhausted. A page is one history read: after an outage a DM can hold more
    than a page of fresh alerts, and stopping at the first page re-posted the one on the next (a
    duplicate). Where a search must wait for a turn it resumes, not restarts: `searched` keeps, per dedup
    key, the `latest` bound its next page starts at. Raises LookupUnavailable when we cannot look now
    (budget spent, 429, 5xx, network): the caller looks again later. When Slack answers that we may never
    look here (an error code such as missing_scope or not_in_channel) it returns None: posting again is
    then the lesser evil than never posting. `matches` recognises our message where metadata cannot be
    attached (a file share: by its file name), and `window` is how long after `since` it can land.
    """
    is_ours = matches or (lambda message: _marked(message, dedup_key))
    searched = searched if searched is not None else {}
    try:
        channel = destination
        oldest = f"{(since - CLOCK_SLACK).timestamp():.6f}"
        latest = searched.get(dedup_key) or f"{(since + window + CLOCK_SLACK).timestamp():.6f}"
        while True:
            wait = budget.take(now.timestamp())
            if wait:
                searched[dedup_key] = latest
                raise LookupUnavailable("waiting for a history read turn", wait, counts=False)
            if channel.startswith(("U", "W")):
                channel = (await client.conversations_open(users=destination))["channel"]["id"]
            page: dict[str, Any] = {"oldest": oldest, "latest": latest, "limit": HISTORY_PAGE}
            if thread_ts:
                answer = await client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, **page
                )
            else:
                answer = await client.conversations_history(
                    channel=channel, include_all_metadata=True, **page
                )
            messages = answer.get("messages") or []
            for message in messages:
                if is_ours(message):
                    searched.pop(dedup_key, None)
                    return channel, str(message["ts"])
            if not (answer.get("has_more") and messages):
                searched.pop(dedup_key, None)
                return None
            # `latest` is exclusive: the next page is what lies before this page's oldest message.
            latest = str(min((message["ts"] for message in messages), key=float))
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
