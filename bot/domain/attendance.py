"""Who came to a session: the attendance snapshot taken when it ends, and who it reports to. Pure.

Canvas keeps one participation row per person and conference: "invitee" until their first join, then
"attendee" for good, and "initiator" for whoever created it (in `users`, in neither list). So:

* the lists must be read when the session ends: a later join (the next session of a reused room) moves
  people between them, and a recording that appears an hour later would be judged against the wrong list;
* for the first session of a room the attendees are exactly who came; for a later session of a reused
  room they are everyone who came to *any* session so far (`again` says so, and the report says it too);
* an invitee at the end of a session never joined the room at all: that is who "missed it", exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.diff import Event

SNAPSHOT_KEPT = timedelta(days=2)
"""How long a snapshot is kept: longer than a recording is watched for (recordings.WATCH_FOR, a day)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One session's participation, as Canvas listed it when the session ended."""

    conference_id: int
    started_at: datetime  # the session's start: its identity (domain.diff.Seen)
    context_type: str
    context_id: int
    title: str
    ended_at: datetime
    participants: tuple[int, ...]  # Canvas `users`: everyone on the conference, the initiator too
    invited: tuple[int, ...]  # invitees and attendees: the "M" of "N of M invited attended"
    attended: tuple[int, ...]
    again: bool = False  # a later session of the room: Canvas's attendees accumulate across sessions

    @property
    def absent(self) -> tuple[int, ...]:
        """Invited and never joined (Canvas's invitees at the end): who gets the recording by DM."""
        came = set(self.attended)
        return tuple(user_id for user_id in self.invited if user_id not in came)


def snapshot_of(event: Event) -> Snapshot | None:
    """The snapshot an "ended" event carries, or None when it cannot tell who came.

    Only an end Canvas itself reported (the event has the conference's details and its `ended_at`) has
    lists worth keeping; an end noticed by the conference vanishing, or a Canvas that does not send
    `invitees`/`attendees` (older versions), has none.
    """
    conference = event.conference
    if event.kind != "ended" or conference is None or event.ended_at is None:
        return None
    if conference.invitees is None and conference.attendees is None:
        return None
    attended = tuple(dict.fromkeys(conference.attendees or ()))
    invited = tuple(dict.fromkeys([*(conference.invitees or ()), *attended]))
    return Snapshot(
        conference_id=event.conference_id,
        started_at=event.started_at,
        context_type=event.context_type,
        context_id=event.context_id,
        title=event.title,
        ended_at=event.ended_at,
        participants=tuple(dict.fromkeys([*conference.users, *invited])),
        invited=invited,
        attended=attended,
        again=event.again,
    )


def snapshots_of(events: Iterable[Event]) -> list[Snapshot]:
    return [snapshot for event in events if (snapshot := snapshot_of(event)) is not None]


@dataclass(frozen=True, slots=True)
class Person:
    """One invitee in a report: their Canvas id, name ("" when the roster does not know them), and
    whether they joined."""

    canvas_id: int
    name: str
    attended: bool
    sort_name: str = ""


def people(snapshot: Snapshot, names: Mapping[int, tuple[str, str]]) -> list[Person]:
    """Everyone invited, attendees first, each group in Canvas's name order (sortable name, then id),
    people the roster does not name last.

    `names` maps a Canvas id to (name, sortable name), from the course roster."""
    came = set(snapshot.attended)
    listed = [
        Person(user_id, names.get(user_id, ("", ""))[0], user_id in came, names.get(user_id, ("", ""))[1])
        for user_id in snapshot.invited
    ]
    return sorted(
        listed, key=lambda p: (not p.attended, not p.name, (p.sort_name or p.name).casefold(), p.canvas_id)
    )
