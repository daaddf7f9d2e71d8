"""The pure heart of polling: previous live set + what Canvas says now -> started/ended events.

No I/O here, so every edge (restarts of a conference, zombies, flapping lists) is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from bot.domain.models import Conference, past_live_window

EventKind = Literal["started", "ended"]


@dataclass(frozen=True, slots=True)
class Seen:
    """What we remember about one conference's latest session after the previous poll.

    A conference can run many sessions (restarted the same day, reused weekly), but Canvas sets
    `started_at` once and never resets it. So a session's identity is `started_at` here, the *session*
    start: Canvas's started_at for the first session, and for a later one the moment evidence of it
    appeared (the previous session's Canvas `ended_at`, or when a Live Event or the session scan opened
    it). `canvas_started_at` keeps Canvas's value when it differs. `ended_at` set means the session
    ended with Canvas's word for it: the row stays (a tombstone) so that the conference showing up live
    again is told apart from a list that flapped: it is a new session.
    """

    conference_id: int
    started_at: datetime
    title: str
    context_type: str
    context_id: int
    missing_polls: int = 0
    canvas_started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def first_started_at(self) -> datetime:
        """Canvas's started_at: the conference's first start, whichever session this is."""
        return self.canvas_started_at or self.started_at

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def beyond_live_scope(self) -> bool:
        """A session Canvas's `state=live` cannot show (its first start was over a day before it): only
        Canvas's own `ended_at` ends it; nothing else is evidence."""
        return past_live_window(self.first_started_at, self.started_at)


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    conference_id: int
    started_at: datetime  # the session's start: its identity (see Seen)
    title: str
    context_type: str
    context_id: int
    conference: Conference | None = None  # the Canvas object when we have it (always for "started")
    ended_at: datetime | None = None  # exact end when Canvas told us; None means "noticed it ended now"

    @property
    def again(self) -> bool:
        """A later session of a conference that ran before (restarted, reused): "live again"."""
        started = self.conference.started_at if self.conference is not None else None
        return started is not None and started != self.started_at


@dataclass(slots=True)
class Diff:
    events: list[Event] = field(default_factory=list)
    keep: dict[int, Seen] = field(default_factory=dict)  # the new "previous" for the next poll

    def vanished_from(self, previous: Mapping[int, Seen]) -> set[int]:
        return set(previous) - set(self.keep)


def live_filter(conferences: Iterable[Conference], now: datetime) -> list[Conference]:
    """Canvas's live rule for listings that ignore `state=live` (course and group indexes)."""
    return [c for c in conferences if c.is_live(now)]


def seen_from(conference: Conference, session_start: datetime | None = None) -> Seen:
    """The first session of a live conference, or the later one that began at `session_start`."""
    if conference.started_at is None:
        raise ValueError("a conference that never started cannot be live")
    later = session_start is not None and session_start != conference.started_at
    return Seen(
        conference_id=conference.id,
        started_at=session_start if later and session_start else conference.started_at,
        title=conference.title,
        context_type=conference.context_type,
        context_id=conference.context_id,
        canvas_started_at=conference.started_at if later else None,
    )


def _event(kind: EventKind, seen: Seen, conference: Conference | None, ended_at: datetime | None) -> Event:
    return Event(
        kind=kind,
        conference_id=seen.conference_id,
        started_at=seen.started_at,
        title=seen.title,
        context_type=seen.context_type,
        context_id=seen.context_id,
        conference=conference,
        ended_at=ended_at,
    )


def _next_session_start(ended: Seen) -> datetime:
    """A restarted session's identity: when the previous one ended. Canvas's times have whole seconds,
    so a session that ended within the second it began is pushed one second on: keys never collide."""
    assert ended.ended_at is not None
    return max(ended.ended_at, ended.started_at + timedelta(seconds=1))


def vanished(previous: Mapping[int, Seen], live: Iterable[Conference]) -> list[Seen]:
    """Sessions we thought live that Canvas no longer lists as live: worth one lookup of their end time."""
    live_ids = {c.id for c in live}
    return [seen for cid, seen in previous.items() if cid not in live_ids and seen.is_open]


def diff(
    previous: Mapping[int, Seen],
    live_now: Iterable[Conference],
    now: datetime,
    *,
    resolved: Mapping[int, Conference] | None = None,
    opened: Mapping[int, datetime] | None = None,
    grace_polls: int = 2,
) -> Diff:
    """Compare the last sessions with Canvas's answer.

    - started: a live conference we did not know; one whose last session ended with Canvas's word for
      it (a restart: a new session, starting when that one ended); one whose started_at changed; or one
      in `opened`, a session Canvas's live scope cannot show (a Live Event or the session scan saw it
      open at that time) that its details in `resolved` confirm is running.
    - ended: Canvas reports ended_at (in `current` or in `resolved`, the looked-up details of vanished
      ones), the 24 h live window ran out, or it has been missing for `grace_polls` polls in a row with
      no details to say otherwise (a list that flaps for one poll never produces an ended/started pair;
      details of the same session with ended_at null keep it live for as long as they say so). A
      session beyond the live scope ends only on Canvas's ended_at: after a day it is let go silently.
    `live_now` is what Canvas calls live: the `state=live` answer as is (Canvas applied the rule with
    its own clock, so clock skew cannot hide a start), or a course listing filtered by `live_filter`.
    """
    resolved = resolved or {}
    result = Diff()
    live = {c.id: c for c in live_now if c.started_at is not None}
    for cid, opened_at in (opened or {}).items():
        details = resolved.get(cid)
        running = details is not None and details.started_at is not None and details.ended_at is None
        if cid in live or not running or details is None:
            continue
        live[cid] = details
        before = previous.get(cid)
        if before is not None and before.is_open:
            result.keep[cid] = replace(before, missing_polls=0, title=details.title)
        else:
            seen = seen_from(details, opened_at)
            result.events.append(_event("started", seen, details, None))
            result.keep[cid] = seen

    for cid, conference in live.items():
        if cid in result.keep:
            continue
        assert conference.started_at is not None
        before = previous.get(cid)
        if before is not None and before.first_started_at != conference.started_at:
            if before.is_open:
                result.events.append(_event("ended", before, None, None))
            before = None
        if before is None:
            seen = seen_from(conference)
        elif not before.is_open and before.ended_at is not None:
            seen = seen_from(conference, session_start=_next_session_start(before))  # restarted
        else:
            result.keep[cid] = replace(before, missing_polls=0, title=conference.title)
            continue
        result.events.append(_event("started", seen, conference, None))
        result.keep[cid] = seen

    for cid, before in previous.items():
        if cid in live:
            continue
        if not before.is_open:
            if before.ended_at is not None and not past_live_window(before.ended_at, now):
                result.keep[cid] = before  # a restart within Canvas's live scope is still possible
            continue
        details = resolved.get(cid)
        same_session = details is not None and details.started_at in (None, before.first_started_at)
        if details is not None and details.ended_at is not None:
            ended_at = details.ended_at if same_session else None
            result.events.append(_event("ended", before, details, ended_at))
            if ended_at is not None:
                result.keep[cid] = replace(before, ended_at=ended_at, missing_polls=0)
        elif before.beyond_live_scope:
            if not past_live_window(before.started_at, now):
                result.keep[cid] = replace(before, missing_polls=before.missing_polls + 1)
        elif past_live_window(before.started_at, now):
            result.events.append(_event("ended", before, details, None))
        elif same_session:
            # Canvas's own details say this session has not ended: the live list flapped. Trust the
            # details, however long the flap lasts (the 24 h window above still ends it).
            result.keep[cid] = replace(before, missing_polls=before.missing_polls + 1)
        elif before.missing_polls + 1 >= grace_polls:
            result.events.append(_event("ended", before, details, None))
        else:
            result.keep[cid] = replace(before, missing_polls=before.missing_polls + 1)
    return result
