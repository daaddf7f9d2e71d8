"""Drain the outbox into Slack: post alerts, edit them when conferences end, DM relink prompts.

Each message is committed as sent right after Slack accepts it; a 429 waits for Retry-After, other
failures back off and give up after MAX_ATTEMPTS with the reason kept on the row, except a live
conference's alert in an outage (5xx, network): it is retried with back-off capped at a minute for as
long as its conference is live, and given up, never posted stale, once it has ended. Every failure of a
delivery is classified and recorded on its row (nothing escapes a delivery to be re-leased uncounted):
Slack's answers by their error code, network failures (aiohttp, timeouts, OS errors) as retryable, an
event this version cannot deliver as failed for good, and anything else logged and retried.

Cards and relink prompts are rendered here, at send time, in the language of whoever reads them
(``Locales``: the user's Slack locale for a DM, the channel's language for a channel post), so a card edited
to "ended" is in the same language as its alert unless the reader changed theirs meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.outbox import (
    CARD_EVENTS,
    ENDED_BEFORE_SENT,
    AlertPayload,
    OutboxEvent,
    OutboxStatus,
    PostPayload,
    RelinkPayload,
    UnreadablePayload,
    UploadPayload,
)
from bot.domain.pacing import ChannelPacing
from bot.engine import uploads
from bot.engine.delivery import HistoryBudget, LookupUnavailable, find_posted, sent_marker
from bot.engine.locales import Locales
from bot.messages import blocks
from bot.messages.cards import card_from_payload
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.ops.metrics import Metrics
from bot.slackweb.clients import TeamClients
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)


def retry_wait(event: str, attempts: int, *, transient: bool) -> float | None:
    """Seconds before attempt number `attempts + 1`, or None to give up.

    A conference's card (its "started" alert, and the "ended"/"reopened" edits of it) that failed for a
    transient reason (Slack or the network down) has no attempt limit: an alert stays worth sending while
    the conference is live, which the dispatcher checks before each attempt, and an edit left undone
    would leave a card saying "live" for good. Everything else (and a card Slack refused with an error
    code) gets MAX_ATTEMPTS.
    """
    if event in CARD_EVENTS and transient:
        return min(2.0 ** min(attempts, 16), LIVE_ALERT_BACKOFF_CAP)
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(2.0**attempts, BACKOFF_CAP)


MAX_ATTEMPTS = 8
TRANSIENT_REASONS = ("http 5", "network: ")  # last_error prefixes of rows backing off from an outage
NOT_PROCESSED = frozenset({502, 503})
"""Statuses of an edge that did not hand the request to Slack's servers: nothing was posted, so the retry
needs no history look-up (scarce: SLACK_HISTORY_READS_PER_MINUTE)."""
BACKOFF_CAP = 300.0
LIVE_ALERT_BACKOFF_CAP = 60.0  # an outage's end is noticed within a minute
LIVE_ALERT_MAX_AGE = timedelta(hours=12)  # no "is live" card for a session that started this long ago
LEASE = timedelta(seconds=60)  # > the Slack calls one message may need (look-up + post), 15 s each
PERMANENT_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "user_not_found",
    "cannot_dm_bot",
    "message_not_found",
    "invalid_blocks",
    "msg_too_long",
}


class Paced(Exception):
    """This destination has used its messages for now (ChannelPacing): try the row again after `wait`."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"paced for {wait:.2f}s")
        self.wait = wait


_NOTHING_POSTED = frozenset({OutboxStatus.FAILED, OutboxStatus.HELD, OutboxStatus.SUMMARIZED})
"""Statuses of a "started" row that left no card in Slack for an edit to change."""


class Dispatcher:
    def __init__(
        self,
        sessions: SessionFactory,
        slack: TeamClients,
        *,
        concurrency: int = 8,
        batch_size: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
        history: HistoryBudget | None = None,
        pacing: ChannelPacing | None = None,
        relink_url: Callable[[str, str], Awaitable[str | None]] | None = None,
        locales: Locales | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._slack = slack
        self._relink_url = relink_url
        self._semaphore = asyncio.Semaphore(concurrency)
        # Claim no more than can be sent at once: a claimed row waiting behind others could outlive its
        # lease and be claimed (and sent) a second time by another replica.
        self._batch_size = batch_size or concurrency
        self._clock = clock
        self._metrics = metrics
        self._pacing = pacing or ChannelPacing()
        self._history = history or HistoryBudget()
        self._searched: dict[str, str] = {}  # where each unfinished look-up resumes (find_posted)
        self._outage_seen = False  # a 5xx or network failure since the last delivery that went through

    async def tick(self) -> int:
        sent = 0
        while True:
            async with self._sessions.begin() as session:
                claimed = await repo.claim_outbox(session, self._clock(), limit=self._batch_size, lease=LEASE)
            if not claimed:
                return sent
            results = await asyncio.gather(*(self._deliver(message) for message in claimed))
            sent += sum(results)
            if any(results) and self._outage_seen:
                await self._after_outage()
            if len(claimed) < self._batch_size:
                return sent

    async def _after_outage(self) -> None:
        """Slack answers again: rows backing off from the outage (up to LIVE_ALERT_BACKOFF_CAP) are due now,
        so a live conference's alert does not wait out the rest of its back-off after Slack recovered."""
        self._outage_seen = False
        async with self._sessions.begin() as session:
            woken = await repo.wake_backed_off(session, self._clock(), TRANSIENT_REASONS)
        if woken:
            log.info("Slack answers again: %d delayed outbox messages are due now", woken)

    def _take_slot(self, message: OutboxMessage) -> None:
        """Spend one of this destination's messages (Slack: ~1 a second per channel, short bursts
        allowed: ChannelPacing), or raise Paced with the wait. Called right before the post or edit, not
        on claiming the row: a row that turns out to need no Slack call (a stale alert, an edit of an
        alert that never went out) must not hold up the destination's real messages behind it."""
        wait = self._pacing.take((message.team_id, message.destination), self._clock().timestamp())
        if wait:
            raise Paced(wait)

    def _give_back_slot(self, message: OutboxMessage) -> None:
        """Slack never saw this attempt: it used none of the destination's rate."""
        self._pacing.refund((message.team_id, message.destination))

    async def _deliver(self, message: OutboxMessage) -> bool:
        event = OutboxEvent.known(message.event)
        if event is None:  # written by a newer version, or corrupted: no retry can deliver it
            log.error("outbox %s has an event this version cannot deliver: %r", message.id, message.event)
            await self._finish(message, status=OutboxStatus.FAILED, error=f"unknown event {message.event!r}")
            return False
        handler = self._handlers()[event]
        async with self._semaphore:
            try:
                client = await self._slack.for_outbox(message.team_id)
                if client is None:
                    await self._finish(
                        message, status=OutboxStatus.FAILED, error="no Slack installation for this team"
                    )
                    return False
                return await handler(client, message)
            except UnreadablePayload as error:  # corrupt, or an incompatible writer: no retry can read it
                log.error("outbox %s (%s) cannot be delivered: %s", message.id, message.event, error)
                await self._finish(message, status=OutboxStatus.FAILED, error=str(error))
            except Paced as paced:
                await self._retry(message, "paced", paced.wait, count_attempt=False)
            except LookupUnavailable as error:  # whether an interrupted send arrived: look again later
                await self._retry(
                    message, error.reason, error.retry_after, count_attempt=error.counts, transient=True
                )
            except SlackApiError as error:
                await self._failed(message, error)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                # ServerDisconnectedError and other aiohttp errors are not OSErrors.
                if isinstance(error, aiohttp.ClientConnectorError):  # never connected: nothing was sent
                    self._give_back_slot(message)
                    await self._update(message, {"sending_since": None})
                self._outage_seen = True
                await self._retry(message, f"network: {type(error).__name__}", None, transient=True)
            except Exception as error:  # a bug or bad data: count it, keep the row's history, go on
                log.exception("outbox %s (%s) failed", message.id, message.event)
                await self._retry(message, f"error: {type(error).__name__}: {error}", None)
            return False

    def _handlers(self) -> dict[OutboxEvent, Callable[[AsyncWebClient, OutboxMessage], Awaitable[bool]]]:
        """One per event. Each reads its row's payload into the event's model before it renders
        (UnreadablePayload when it does not fit: the row fails for good with that reason)."""
        return {
            OutboxEvent.STARTED: self._post_alert,
            OutboxEvent.ENDED: self._edit_card,
            OutboxEvent.REOPENED: self._edit_card,
            OutboxEvent.RELINK: self._post_relink,
            OutboxEvent.POST: self._post_prerendered,
            OutboxEvent.UPLOAD: self._upload,
        }

    async def _reader(self, message: OutboxMessage) -> Translator:
        """The language of the row's destination (English without a Locales, as in narrow tests)."""
        if self._locales is None:
            return DEFAULT_TRANSLATOR
        return await self._locales.for_destination(message.team_id, message.destination)

    async def _post_alert(self, client: AsyncWebClient, message: OutboxMessage) -> bool:
        card = card_from_payload(AlertPayload.from_stored(message.payload))
        t = await self._reader(message)
        return await self._post(
            client,
            message,
            dict(blocks.live_alert(card, self._clock(), t=t)),
            stale=self._no_longer_live,
        )

    async def _no_longer_live(self, message: OutboxMessage) -> str | None:
        """Why a "started" alert must not be posted any more, or None while its session is live.

        The session ended when its card has more "ended" edits than "reopened" ones at this destination
        (the poller queues an end when Canvas says it ended, a reopening when the same session is live
        again; same index as the edits' look-up of their alert).
        """
        if message.conference_id is None or message.started_at is None:
            return None
        if self._clock() - message.started_at > LIVE_ALERT_MAX_AGE:
            return "conference too old to alert"
        async with self._sessions() as session:
            history = await repo.session_history(
                session, message.team_id, message.destination, message.conference_id, message.started_at
            )
        if history.ended > history.reopened:
            return ENDED_BEFORE_SENT
        return None

    async def _edit_card(self, client: AsyncWebClient, message: OutboxMessage) -> bool:
        """An "ended" or "reopened" edit: the card is drawn as the newest edit of its session says.

        Edits can reach Slack out of order (one waits out a 503 while a later one goes through), so each
        draws the session's latest state rather than its own: whichever lands last, the card is right.
        """
        async with self._sessions() as session:
            original = await repo.original_alert(session, message)
            latest = await repo.latest_card_edit(session, message) or message
        if original is None or original.status in _NOTHING_POSTED:
            await self._finish(message, status=OutboxStatus.SENT, error="no alert to edit")
            return False
        if (
            original.status == OutboxStatus.PENDING
            or original.slack_ts is None
            or original.slack_channel is None
        ):
            # Try again when the alert is next tried (not every second: that churn starves newer rows).
            wait = max(1.0, (original.next_attempt_at - self._clock()).total_seconds())
            await self._retry(message, "waiting for the start alert", wait, count_attempt=False)
            return False
        card = AlertPayload.from_stored(original.payload)
        t = await self._reader(message)
        if latest.event == OutboxEvent.REOPENED:
            rendered = blocks.live_alert(card_from_payload(card), self._clock(), t=t)
        else:
            ended_at = AlertPayload.from_stored(latest.payload).ended_at
            rendered = blocks.ended_alert(
                card_from_payload(card.model_copy(update={"ended_at": ended_at})), self._clock(), t=t
            )
        self._take_slot(message)
        await client.chat_update(channel=original.slack_channel, ts=original.slack_ts, **rendered)
        await self._finish(
            message, status=OutboxStatus.SENT, channel=original.slack_channel, ts=original.slack_ts
        )
        return True

    async def _post_prerendered(self, client: AsyncWebClient, message: OutboxMessage) -> bool:
        """A message rendered when it was queued (digests, summaries): PostPayload's text and blocks.

        With a `thread_of` it replies in the thread of that conference's alert to the same destination
        (recording-ready follow-ups).
        """
        payload = PostPayload.from_stored(message.payload)
        rendered: dict[str, Any] = {"text": payload.message.text, "blocks": payload.message.blocks}
        thread_of = payload.thread_of
        if thread_of:
            async with self._sessions() as session:
                original = await repo.alert_for(
                    session,
                    message.team_id,
                    message.destination,
                    thread_of.conference_id,
                    thread_of.started_at,
                )
            if original is None or original.status == OutboxStatus.FAILED:
                await self._finish(message, status=OutboxStatus.FAILED, error="no alert to reply to")
                return False
            if original.slack_ts is None:
                await self._retry(message, "waiting for the alert", 1.0, count_attempt=False)
                return False
            rendered["thread_ts"] = original.slack_ts
        return await self._post(client, message, rendered)

    async def _upload(self, client: AsyncWebClient, message: OutboxMessage) -> bool:
        """Share the row's file with its message, once (see uploads.py: an interrupted attempt is looked
        for by the file's name in the conversation before the file is uploaded again)."""
        payload = UploadPayload.from_stored(message.payload)
        channel = await uploads.conversation(client, message.destination)
        if message.sending_since is not None:
            found = await find_posted(
                client,
                channel,
                message.dedup_key,
                since=message.sending_since,
                thread_ts=None,
                budget=self._history,
                now=self._clock(),
                searched=self._searched,
                matches=uploads.shares(payload.file.filename),
                window=uploads.UPLOAD_WINDOW,
            )
            if found is not None:
                log.info("outbox %s had been shared before an interruption; not uploading again", message.id)
                await self._finish(message, status=OutboxStatus.SENT, channel=found[0], ts=found[1])
                return True
        self._take_slot(message)
        now = self._clock()
        async with self._sessions.begin() as session:
            if not await repo.mark_sending(session, message.id, now, hold_until=now + uploads.UPLOAD_HOLD):
                self._give_back_slot(message)
                return False
        await uploads.share(client, channel, payload)
        await self._finish(message, status=OutboxStatus.SENT, channel=channel)
        return True

    async def _post_relink(self, client: AsyncWebClient, message: OutboxMessage) -> bool:
        reason = RelinkPayload.from_stored(message.payload).reason
        url = await self._relink_url(message.team_id, message.destination) if self._relink_url else None
        t = await self._reader(message)
        return await self._post(client, message, dict(blocks.relink_prompt(url, reason, t=t)))

    async def _post(
        self,
        client: AsyncWebClient,
        message: OutboxMessage,
        rendered: dict[str, Any],
        *,
        stale: Callable[[OutboxMessage], Awaitable[str | None]] | None = None,
    ) -> bool:
        """Post once, even if this process dies between Slack accepting the message and our commit.

        The row is marked `sending_since` before the call and the message carries its dedup key as
        Slack message metadata; a row found already marked (the previous attempt's outcome is unknown)
        first looks in the conversation for that key and records the message it finds instead of
        posting again. `stale` says why a message not yet posted must not be any more (failed with
        that reason); a message found posted is recorded all the same, so an edit can follow it.
        """
        if message.sending_since is not None:
            found = await find_posted(
                client,
                message.destination,
                message.dedup_key,
                since=message.sending_since,
                thread_ts=rendered.get("thread_ts"),
                budget=self._history,
                now=self._clock(),
                searched=self._searched,
            )
            if found is not None:
                log.info("outbox %s had reached Slack before an interruption; not posting again", message.id)
                await self._finish(message, status=OutboxStatus.SENT, channel=found[0], ts=found[1])
                return True
        reason = await stale(message) if stale is not None else None
        if reason is not None:
            log.info("outbox %s not posted: %s", message.id, reason)
            await self._finish(message, status=OutboxStatus.FAILED, error=reason)
            return False
        self._take_slot(message)
        async with self._sessions.begin() as session:
            if not await repo.mark_sending(session, message.id, self._clock()):
                log.info("outbox %s not posted: no longer pending (its conference ended)", message.id)
                self._give_back_slot(message)
                return False
        response = await client.chat_postMessage(
            channel=message.destination,
            unfurl_links=False,
            metadata=sent_marker(message.dedup_key),
            **rendered,
        )
        await self._finish(message, status=OutboxStatus.SENT, channel=response["channel"], ts=response["ts"])
        return True

    async def _failed(self, message: OutboxMessage, error: SlackApiError) -> None:
        status = error.response.status_code
        code = str(error.response.get("error", "")) if isinstance(error.response.data, dict) else ""
        if self._metrics:
            self._metrics.slack_errors.labels(error=code or f"http_{status}").inc()
        if status in NOT_PROCESSED:
            self._give_back_slot(message)
        if status == 429 or status in NOT_PROCESSED or (status == 200 and code):
            # Slack answered and did not post: the next attempt needs no history look-up (scarce).
            await self._update(message, {"sending_since": None})
        if status == 429:
            retry_after = float(error.response.headers.get("Retry-After", 1) or 1)
            await self._retry(message, "ratelimited", retry_after, count_attempt=False)
        elif code in PERMANENT_ERRORS:
            log.warning("Slack refused outbox %s for good: %s", message.id, code)
            await self._finish(message, status=OutboxStatus.FAILED, error=code)
        else:
            self._outage_seen = self._outage_seen or status >= 500
            await self._retry(message, code or f"http {status}", None, transient=status >= 500)

    async def _retry(
        self,
        message: OutboxMessage,
        reason: str,
        delay: float | None,
        *,
        count_attempt: bool = True,
        transient: bool = False,
    ) -> None:
        """Schedule the next attempt after `delay` (None: back-off by attempts) or give up
        (retry_wait). `transient`: Slack or the network is down, nothing is wrong with the message."""
        attempts = message.attempts + (1 if count_attempt else 0)
        backoff = retry_wait(message.event, attempts, transient=transient) if count_attempt else 0.0
        if backoff is None:
            await self._finish(message, status=OutboxStatus.FAILED, error=reason)
            return
        wait = delay if delay is not None else backoff
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": reason[:255],
            "next_attempt_at": self._clock() + timedelta(seconds=wait),
            "leased_until": None,
        }
        await self._update(message, values, only_pending=True)

    async def _finish(
        self,
        message: OutboxMessage,
        *,
        status: OutboxStatus,
        channel: str | None = None,
        ts: str | None = None,
        error: str | None = None,
    ) -> None:
        now = self._clock()
        self._searched.pop(message.dedup_key, None)  # a look-up left half done needs no resuming now
        values: dict[str, Any] = {
            "status": status.value,
            "sent_at": now,
            "last_error": error and error[:255],
            "leased_until": None,
        }
        if channel:
            values |= {"slack_channel": channel, "slack_ts": ts}
        await self._update(message, values)
        if status is OutboxStatus.SENT and channel and self._metrics:
            self._metrics.alerts.labels(event=message.event).inc()
            if message.event == "started" and message.started_at is not None:
                self._metrics.alert_latency.observe((now - message.started_at).total_seconds())

    async def _update(
        self, message: OutboxMessage, values: dict[str, Any], *, only_pending: bool = False
    ) -> None:
        """`only_pending`: leave a row that is no longer pending as it is (the poller cancelled it
        meanwhile: its reason, not this attempt's, is what it ended with)."""
        async with self._sessions.begin() as session:
            await repo.update_outbox(session, message.id, values, only_pending=only_pending)
