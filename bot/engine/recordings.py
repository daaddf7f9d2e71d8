"""Recording-ready follow-ups: after a conference ends, look for its recordings now and then and reply
in the alert's thread once they appear (Canvas only tells the host, by email)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError
from bot.domain.models import Conference, Recording
from bot.engine import alerts
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.locales import Locales
from bot.engine.missed import Absentee, SessionKey, absentees
from bot.messages import blocks
from bot.messages.attendance import missed_recording
from bot.messages.blocks import RecordingLink
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.messages.mrkdwn import safe_link_url
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import LinkedUser, RecordingWatch, utcnow

log = logging.getLogger(__name__)

WATCH_FOR = timedelta(hours=24)


def watch_row(
    *,
    team_id: str,
    destination: str,
    event_conference_id: int,
    started_at: datetime,
    context_type: str,
    context_id: int,
    linked_user_id: int,
    now: datetime,
    first_check: timedelta,
) -> dict[str, Any]:
    return {
        "team_id": team_id,
        "destination": destination,
        "conference_id": event_conference_id,
        "started_at": started_at,
        "context_type": context_type,
        "context_id": context_id,
        "linked_user_id": linked_user_id,
        "next_check_at": now + first_check,
        "expires_at": now + WATCH_FOR,
    }


def playable_url(recording: Recording) -> str | None:
    """Where to watch a recording: its playback URL, else the first format URL, that may be a link.

    Canvas (or a BigBlueButton server behind it) fills these; one that is not a safe http(s) URL
    (``javascript:``, a disguised mention...) is skipped for the next, and with none the recording is
    shown by its title alone.
    """
    candidates = [recording.playback_url, *(fmt.url for fmt in recording.playback_formats)]
    return next((safe for url in candidates if (safe := safe_link_url(url)) is not None), None)


def recording_links(conference: Conference) -> tuple[RecordingLink, ...]:
    """The recordings Canvas has a playback address for (published ones), each with a safe URL or ""."""
    return tuple(
        RecordingLink(recording.title or "", playable_url(recording) or "", recording.duration_minutes)
        for recording in conference.recordings
        if recording.best_url
    )


class RecordingWatcher:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        *,
        check_every: timedelta,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
        locales: Locales | None = None,
    ) -> None:
        self._sessions = sessions
        self._locales = locales
        self._canvas = canvas
        self._credentials = credentials
        self._check_every = check_every
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        now = self._clock()
        async with self._sessions.begin() as session:
            await session.execute(delete(RecordingWatch).where(RecordingWatch.expires_at <= now))
            rows = (
                await session.execute(
                    select(RecordingWatch, LinkedUser)
                    .join(LinkedUser, LinkedUser.id == RecordingWatch.linked_user_id)
                    .where(RecordingWatch.next_check_at <= now, LinkedUser.needs_relink.is_(False))
                    .limit(200)
                    .with_for_update(skip_locked=True, of=RecordingWatch)
                )
            ).all()
            for watch, _ in rows:
                watch.next_check_at = now + self._check_every
            jobs = [(watch, StoredToken.of(owner)) for watch, owner in rows]
        if not jobs:
            return 0
        by_listing: dict[tuple[int, str, int], list[RecordingWatch]] = defaultdict(list)
        tokens: dict[int, StoredToken] = {}
        for watch, token in jobs:
            by_listing[(watch.linked_user_id, watch.context_type, watch.context_id)].append(watch)
            tokens[watch.linked_user_id] = token
        ready: list[tuple[RecordingWatch, Conference]] = []
        for (owner_id, context_type, context_id), watches in by_listing.items():
            listing = await self._listing(tokens[owner_id], context_type, context_id)
            found = {c.id: c for c in listing}
            ready += [
                (w, found[w.conference_id])
                for w in watches
                if w.conference_id in found and recording_links(found[w.conference_id])
            ]
        if ready:
            await self._announce(ready, now)
        return len(ready)

    async def _listing(self, stored: StoredToken, context_type: str, context_id: int) -> list[Conference]:
        """The context's conferences with the owner's token (refreshed before expiry and on a 401)."""

        async def conferences(token: str) -> list[Conference]:
            if context_type == "Group":
                return await self._canvas.group_conferences(token, context_id)
            return await self._canvas.course_conferences(token, context_id)

        try:
            return await self._credentials.call(stored, conferences)
        except (CanvasError, RelinkNeeded) as error:
            # A dead grant is the poller's to report (one relink DM); here it only means "no listing",
            # and must not abort the tick for every other watch.
            log.info("recording check of %s %s failed (%s)", context_type, context_id, type(error).__name__)
            return []

    async def _readers(
        self, ready: list[tuple[RecordingWatch, Conference]], missed: dict[SessionKey, list[Absentee]]
    ) -> dict[tuple[str, str], Translator]:
        """Each reply's language, its thread's reader's (a DM's user, a channel's setting), and each
        absentee's, looked up before the transaction so no Slack call runs while the watches are locked."""
        if self._locales is None:
            return {}
        wanted = {(watch.team_id, watch.destination) for watch, _ in ready}
        wanted |= {(a.team_id, a.slack_user_id) for people in missed.values() for a in people}
        return {key: await self._locales.for_destination(*key) for key in wanted}

    async def _announce(self, ready: list[tuple[RecordingWatch, Conference]], now: datetime) -> None:
        """A reply in each alert's thread; and a DM to each invitee who missed the session, whose own
        thread reply (if they had an alert) it replaces: one message about the recording, not two."""
        missed = await absentees(self._sessions, [(w.conference_id, w.started_at) for w, _ in ready])
        readers = await self._readers(ready, missed)
        rows: list[dict[str, Any]] = []
        async with self._sessions.begin() as session:
            for watch, conference in ready:
                alert = await repo.alert_for(
                    session, watch.team_id, watch.destination, watch.conference_id, watch.started_at
                )
                context_name = str(alert.payload.get("context_name", "")) if alert else ""
                card = blocks.ConferenceCard(
                    conference_id=conference.id,
                    title=conference.title,
                    context_name=context_name,
                    conference_type=conference.conference_type,
                    started_at=watch.started_at,
                    ended_at=conference.ended_at,
                    join_url="",
                    recordings=recording_links(conference),
                )
                people = missed.get((watch.conference_id, watch.started_at), [])
                rows += [self._missed_row(watch, card, a, readers, now) for a in people]
                if Absentee(watch.team_id, watch.destination) in people:
                    await session.execute(delete(RecordingWatch).where(RecordingWatch.id == watch.id))
                    continue
                rows.append(
                    alerts.post_row(
                        alerts.dedup_key(
                            watch.team_id,
                            watch.destination,
                            watch.conference_id,
                            watch.started_at,
                            "recording_ready",
                        ),
                        team_id=watch.team_id,
                        destination=watch.destination,
                        message=blocks.recording_ready(
                            card, t=readers.get((watch.team_id, watch.destination), DEFAULT_TRANSLATOR)
                        ),
                        now=now,
                        thread_of=(watch.conference_id, watch.started_at),
                    )
                )
                await session.execute(delete(RecordingWatch).where(RecordingWatch.id == watch.id))
            await repo.enqueue(session, list({row["dedup_key"]: row for row in rows}.values()))
        if self._on_enqueued:
            self._on_enqueued()

    @staticmethod
    def _missed_row(
        watch: RecordingWatch,
        card: blocks.ConferenceCard,
        absentee: Absentee,
        readers: dict[tuple[str, str], Translator],
        now: datetime,
    ) -> dict[str, Any]:
        """One DM per absentee and session (its dedup key), whichever watch of the session saw it first."""
        reader = readers.get((absentee.team_id, absentee.slack_user_id), DEFAULT_TRANSLATOR)
        return alerts.post_row(
            alerts.dedup_key(
                absentee.team_id, absentee.slack_user_id, watch.conference_id, watch.started_at, "missed"
            ),
            team_id=absentee.team_id,
            destination=absentee.slack_user_id,
            message=missed_recording(card, watch.started_at, t=reader),
            now=now,
        )
