""" "You missed it": when a session's recordings appear, each linked invitee who never joined gets them by
DM (once per session, unless they said `/conferences missed off`); those who came get nothing new.

Who never joined is read from the session's attendance snapshot, taken when it ended (store/attendance.py),
never from Canvas now: by the time a recording appears, the next session of a reused room may have turned
some of them into attendees. Without a snapshot (Canvas reported no lists, or no end) nobody is told.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.store import attendance as store
from bot.store.db import SessionFactory

SessionKey = tuple[int, datetime]  # (conference id, session start)


@dataclass(frozen=True, slots=True)
class Absentee:
    """A linked invitee who never joined, with missed-recording DMs on (a DM in their workspace)."""

    team_id: str
    slack_user_id: str


async def absentees(sessions: SessionFactory, keys: Iterable[SessionKey]) -> dict[SessionKey, list[Absentee]]:
    """Per session, who missed it and wants its recording."""
    found: dict[SessionKey, list[Absentee]] = {}
    async with sessions() as session:
        for key in set(keys):
            snapshot = await store.snapshot_for(session, *key)
            if snapshot is None or not snapshot.absent:
                continue
            linked = await store.linked_people(session, snapshot.absent)
            found[key] = [Absentee(u.team_id, u.slack_user_id) for u in linked if u.missed_enabled]
    return found
