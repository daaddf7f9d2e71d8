"""The pure heart of polling: previous live set + what Canvas says now -> started/ended events.

No I/O here, so every edge (restarts of a conference, zombies, flapping lists) is unit-tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from bot.domain.models import Conference, past_live_window

EventKind = Literal["started", "ended"]


@dataclass(frozen=True, slots=True)
class Seen:
    """What we remembered about a live conference after the previous poll."""

    conference_id: int
    started_at: datetime
    title: str
    context_type: str
    context_id: int
    missing_polls: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    conference_id: int
    started_at: datetime
    title: str
    context_type: str
    context_id: int
    conference: Conference | None = None  # the Canvas object when we have it (always for "started")
    ended_at: datetime | None = None  # exact end when Canvas told us; None means "noticed it ended now"


@dataclass(slots=True)
class Diff:
    events: list[Event] = field(default_factory=list)
    keep: dict[int, Seen] = field(default_factory=dict)  # the new "previous" for the next poll

    def vanished_from(self, previous: Mapping[int, Seen]) -> set[int]:
        return set(previous) - set(self.keep)


def live_filter(conferences: Iterable[Conference], now: datetime) -> list[Conference]:
    """Canvas's live rule for listings that ignore `state=live` (course and group indexes)."""
    return [c for c in conferences if c.is_live(now)]


def seen_from(conference: Conference) -> Seen:
    if conference.started_at is None:
        raise ValueError("a conference that never started cannot be live")
    return Seen(
        conference_id=conference.id,
        started_at=conference.started_at,
        title=conference.title,
        context_type=conference.context_type,
        context_id=conference.context_id,
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


def vanished(previous: Mapping[int, Seen], live: Iterable[Conference]) -> list[Seen]:
    """Conferences we thought live that Canvas no longer lists as live: worth one lookup of their end time."""
    live_ids = {c.id for c in live}
    return [seen for cid, seen in previous.items() if cid not in live_ids]


def diff(
    previous: Mapping[int, Seen],
    live_now: Iterable[Conference],
    now: datetime,
    *,
    resolved: Mapping[int, Conference] | None = None,
    grace_polls: int = 2,
) -> Diff:
    """Compare the last live set with Canvas's answer.

    - started: a live conference we did not know, or one whose started_at changed (a new session of a
      long-running room; the old session ends first).
    - ended: Canvas reports ended_at (in `current` or in `resolved`, the looked-up details of vanished
      ones), the 24 h live window ran out, or it has been missing for `grace_polls` polls in a row with
      no details to say otherwise (a list that flaps for one poll never produces an ended/started pair;
      details of the same session with ended_at null keep it live for as long as they say so).
    `live_now` is what Canvas calls live: the `state=live` answer as is (Canvas applied the rule with
    its own clock, so clock skew cannot hide a start), or a course listing filtered by `live_filter`.
    """
    resolved = resolved or {}
    result = Diff()
    live = {c.id: c for c in live_now if c.started_at is not None}

    for cid, conference in live.items():
        seen = seen_from(conference)
        before = previous.get(cid)
        if before is not None and before.started_at != seen.started_at:
            result.events.append(_event("ended", before, None, None))
            before = None
        if before is None:
            result.events.append(_event("started", seen, conference, None))
        result.keep[cid] = seen

    for cid, before in previous.items():
        if cid in live:
            continue
        details = resolved.get(cid)
        same_session = details is not None and details.started_at in (None, before.started_at)
        if details is not None and details.ended_at is not None:
            result.events.append(_event("ended", before, details, details.ended_at if same_session else None))
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
