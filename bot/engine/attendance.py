"""The attendance report: when a session ends, each linked participant who teaches its course gets one DM
with "N of M invited attended", the names, and the CSV (queued as an "upload" outbox row).

The poller stores the session's snapshot when it sees Canvas's end (store/attendance.py); this runner
claims due snapshots like poll units, so one replica builds each report. For each linked participant with
reports on it asks Canvas, with their own token, whether they teach the course (a teacher or TA
enrollment), and names everyone from the course roster, read once per course and kept for ROSTER_TTL.
A report whose Canvas look-ups failed is tried again later (each DM's dedup key keeps the ones already
queued from being queued twice) and given up after MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.canvas.client import CanvasClient
from bot.canvas.errors import CanvasError, Forbidden, NotFound
from bot.domain.attendance import Snapshot, people
from bot.domain.models import Course
from bot.domain.outbox import UploadFile
from bot.engine import alerts
from bot.engine.credentials import Credentials, RelinkNeeded, StoredToken
from bot.engine.locales import Locales
from bot.messages.attendance import (
    AttendanceReport,
    attendance_csv,
    attendance_filename,
    attendance_message,
    attendance_title,
)
from bot.messages.i18n import DEFAULT_TRANSLATOR
from bot.store import attendance as store
from bot.store import repo
from bot.store.db import SessionFactory
from bot.store.models import utcnow

log = logging.getLogger(__name__)

ROSTER_TTL = timedelta(hours=12)
"""How long a course's names are reused: a student added this morning is named by the afternoon."""
LEASE = timedelta(minutes=2)  # one report's look-ups: a few Canvas requests per teacher
MAX_ATTEMPTS = 6
BATCH = 20


@dataclass(frozen=True, slots=True)
class _Reader:
    """A linked participant with reports on, detached from the database session."""

    team_id: str
    slack_user_id: str
    token: StoredToken


class AttendanceReporter:
    def __init__(
        self,
        sessions: SessionFactory,
        canvas: CanvasClient,
        credentials: Credentials,
        *,
        locales: Locales | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._canvas = canvas
        self._credentials = credentials
        self._locales = locales
        self._clock = clock
        self._on_enqueued = on_enqueued

    async def tick(self) -> int:
        """Report every due snapshot; returns how many DMs were queued."""
        now = self._clock()
        async with self._sessions.begin() as session:
            due = await store.claim_reports(session, now, limit=BATCH, lease=LEASE)
        queued = 0
        for snapshot, attempts in due:
            try:
                queued += await self._report(snapshot, attempts, now)
            except Exception:  # one report's surprise must not stop the others; it is due again after LEASE
                log.exception("attendance report of conference %s failed", snapshot.conference_id)
        if queued and self._on_enqueued:
            self._on_enqueued()
        return queued

    async def _report(self, snapshot: Snapshot, attempts: int, now: datetime) -> int:
        rows: list[dict[str, Any]] = []
        failed = False
        if snapshot.context_type == "Course":  # a group's conference has no teachers to report to
            teachers, failed = await self._teachers(snapshot)
            if teachers:
                names = await self._roster(snapshot.context_id, teachers[0][0].token, now)
                if names is None and attempts + 1 >= MAX_ATTEMPTS:
                    names = {}  # the last try: a report naming people by Canvas id beats none
                if names is None:
                    failed = True
                else:  # teachers whose look-up failed get theirs on a later try (dedup keys hold the rest)
                    rows = [
                        await self._row(snapshot, reader, course, names, now) for reader, course in teachers
                    ]
        async with self._sessions.begin() as session:
            await repo.enqueue(session, rows)
            if failed and attempts + 1 < MAX_ATTEMPTS:
                later = now + timedelta(minutes=2 ** min(attempts, 5))
                await store.report_later(session, snapshot, attempts + 1, later)
            else:
                await store.reported(session, snapshot, now)
        return len(rows)

    async def _teachers(self, snapshot: Snapshot) -> tuple[list[tuple[_Reader, Course]], bool]:
        """Linked participants with reports on who teach the course, and whether a look-up failed."""
        async with self._sessions() as session:
            linked = await store.linked_people(session, snapshot.participants)
            readers = [
                _Reader(u.team_id, u.slack_user_id, StoredToken.of(u)) for u in linked if u.attendance_enabled
            ]
        teachers: list[tuple[_Reader, Course]] = []
        failed = False
        for reader in readers:

            async def course(token: str) -> Course:
                return await self._canvas.course(token, snapshot.context_id)

            try:
                found = await self._credentials.call(reader.token, course)
            except (Forbidden, NotFound, RelinkNeeded):
                continue  # not in the course (any more), or a dead link: the poller reports that
            except CanvasError as error:
                log.info("attendance: course look-up failed (%s)", type(error).__name__)
                failed = True
                continue
            if found.taught:
                teachers.append((reader, found))
        return teachers, failed

    async def _roster(self, course_id: int, token: StoredToken, now: datetime) -> store.Names | None:
        """The course's names, cached for ROSTER_TTL; None when Canvas could not be read."""
        async with self._sessions() as session:
            cached = await store.roster(session, course_id, now - ROSTER_TTL)
        if cached is not None:
            return cached
        try:
            users = await self._credentials.call(token, lambda t: self._canvas.course_users(t, course_id))
        except (CanvasError, RelinkNeeded) as error:
            log.info("attendance: roster of course %s unreadable (%s)", course_id, type(error).__name__)
            return None
        names = {u.id: (u.name, u.sortable_name or u.name) for u in users}
        async with self._sessions.begin() as session:
            await store.save_roster(session, course_id, names, now)
        return names

    async def _row(
        self, snapshot: Snapshot, reader: _Reader, course: Course, names: store.Names, now: datetime
    ) -> dict[str, Any]:
        t = DEFAULT_TRANSLATOR
        if self._locales is not None:
            t = await self._locales.for_user(reader.team_id, reader.slack_user_id)
        report = AttendanceReport(
            conference_id=snapshot.conference_id,
            title=snapshot.title,
            course=course.name,
            started_at=snapshot.started_at,
            people=people(snapshot, names),
            again=snapshot.again,
        )
        file = UploadFile(
            filename=attendance_filename(report),
            title=attendance_title(report, t=t),
            content=attendance_csv(report, t=t),
            snippet_type="csv",
        )
        key = alerts.dedup_key(
            reader.team_id, reader.slack_user_id, snapshot.conference_id, snapshot.started_at, "attendance"
        )
        return alerts.upload_row(
            key,
            team_id=reader.team_id,
            destination=reader.slack_user_id,
            message=attendance_message(report, t=t),
            file=file,
            now=now,
            session=(snapshot.conference_id, snapshot.started_at),
        )
