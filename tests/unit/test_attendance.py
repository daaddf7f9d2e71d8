"""After the bell, pure parts: the snapshot a session's end carries, who counts as absent, the report's
rendering (escaped, truncated within Slack's limits for a 500-person course) and its CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.attendance import Person, Snapshot, people, snapshot_of
from bot.domain.diff import Event
from bot.domain.models import Conference
from bot.messages.attendance import (
    AttendanceReport,
    attendance_csv,
    attendance_filename,
    attendance_message,
    missed_recording,
    name_list,
)
from bot.messages.i18n import translator
from tests.blockkit import card, mrkdwn_texts
from tests.unit.test_block_kit_referee import HOSTILE, check_payload, recordings

STARTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ENDED = STARTED + timedelta(minutes=50)


def _conference(**fields: Any) -> Conference:
    base = {"id": 42, "title": "Lecture 3", "context_type": "Course", "context_id": 7}
    return Conference.model_validate(base | {"started_at": STARTED.isoformat()} | fields)


def _ended(conference: Conference, ended_at: datetime | None = ENDED, start: datetime = STARTED) -> Event:
    return Event("ended", 42, start, "Lecture 3", "Course", 7, conference, ended_at)


def test_an_end_canvas_reported_carries_who_came_and_who_did_not() -> None:
    conference = _conference(users=[1, 2, 3, 4, 5, 9], invitees=[4, 5], attendees=[1, 2, 3])
    snapshot = snapshot_of(_ended(conference))
    assert snapshot is not None
    assert (snapshot.invited, snapshot.attended, snapshot.absent) == ((4, 5, 1, 2, 3), (1, 2, 3), (4, 5))
    assert 9 in snapshot.participants, "the initiator is a participant (a teacher to report to)"
    assert not snapshot.again


def test_no_snapshot_without_canvas_lists_or_its_end() -> None:
    assert snapshot_of(_ended(_conference(users=[1, 2]))) is None, "older Canvas: attendance unknown"
    assert snapshot_of(_ended(_conference(invitees=[1]), ended_at=None)) is None, "an end noticed, not told"
    assert snapshot_of(Event("ended", 42, STARTED, "x", "Course", 7, None, ENDED)) is None
    started = Event("started", 42, STARTED, "x", "Course", 7, _conference(invitees=[1]), None)
    assert snapshot_of(started) is None


def test_a_later_session_of_a_reused_room_is_marked() -> None:
    later = _ended(_conference(invitees=[2], attendees=[1]), start=STARTED + timedelta(days=3))
    snapshot = snapshot_of(later)
    assert snapshot is not None and snapshot.again


def test_people_are_attendees_first_each_by_sortable_name() -> None:
    snapshot = Snapshot(42, STARTED, "Course", 7, "L", ENDED, (), (5, 4, 3, 2, 1), (3, 1))
    names = {1: ("Zoe Adams", "Adams, Zoe"), 3: ("Al Zed", "Zed, Al"), 4: ("Bo B", "B, Bo")}
    listed = people(snapshot, names)
    assert [(p.canvas_id, p.attended) for p in listed] == [
        (1, True),
        (3, True),
        (4, False),
        (2, False),
        (5, False),
    ]
    assert listed[2].name == "Bo B" and listed[3].name == ""


def _report(count: int, attended: int, *, name: str = "Student {i}", again: bool = False) -> AttendanceReport:
    crowd = [Person(i, name.format(i=i), i < attended, f"{i:04d}") for i in range(count)]
    return AttendanceReport(42, "Lecture 3", "Biology 101", STARTED, crowd, again=again)


def test_the_report_counts_and_names_everyone_invited() -> None:
    message = attendance_message(_report(5, 3))
    check_payload(dict(message), "message")  # type: ignore[arg-type]
    shown = "\n".join(mrkdwn_texts(message))
    assert "*3 of 5* invited attended" in shown and "Attended (3)" in shown and "Did not join (2)" in shown
    assert "Student 0, Student 1, Student 2" in shown and "Student 3, Student 4" in shown
    assert message["text"].startswith("3 of 5 invited attended Lecture 3 in Biology 101")


def test_a_500_person_course_is_truncated_with_and_n_more_and_fits() -> None:
    for locale in ("en", "es", "pt_BR"):
        message = attendance_message(
            _report(500, 320, name="Maximiliana Fernández-Oliveira {i}"), t=translator(locale)
        )
        check_payload(dict(message), "message")  # type: ignore[arg-type]
    english = attendance_message(_report(500, 320, name="Maximiliana Fernández-Oliveira {i}"))
    shown = "\n".join(mrkdwn_texts(english))
    assert "*320 of 500*" in shown and "more" in shown


def test_names_are_escaped_and_a_nameless_person_is_named_by_id() -> None:
    crowd = [Person(1, HOSTILE, True), Person(2, "", False)]
    message = attendance_message(AttendanceReport(42, HOSTILE, HOSTILE, STARTED, crowd, again=True))
    check_payload(dict(message), "message")  # type: ignore[arg-type]
    shown = "\n".join(mrkdwn_texts(message))
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "Canvas user 2" in shown and "any of its sessions" in shown


def test_name_list_says_how_many_it_left_out() -> None:
    t = translator("en")
    assert name_list(["Ada", "Bob"], t) == "Ada, Bob"
    assert name_list(["Ada", "Bob", "Cy"], t, room=8) == "Ada, Bob …and 1 more"
    assert name_list(["Adalberta"], t, room=3) == "…and 1 more"


def test_the_csv_has_a_row_per_invitee_and_defuses_formulas() -> None:
    crowd = [Person(1, '=HYPERLINK("x")', True, "=x"), Person(2, 'Bo "B", Jr', False, "B, Bo")]
    text = attendance_csv(AttendanceReport(42, "L", "C", STARTED, crowd))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["Canvas user id", "Name", "Sortable name", "Attended"],
        ["1", '\'=HYPERLINK("x")', "'=x", "yes"],
        ["2", 'Bo "B", Jr', "B, Bo", "no"],
    ]
    spanish = list(
        csv.reader(
            io.StringIO(attendance_csv(AttendanceReport(42, "L", "C", STARTED, crowd), t=translator("es")))
        )
    )
    assert spanish[1][3] != "yes" and spanish[0][0] != "Canvas user id"
    assert attendance_filename(_report(1, 1)) == "attendance-42-20260302-090000.csv"


def test_the_missed_dm_lists_the_recordings_and_how_to_stop_it() -> None:
    message = missed_recording(card(title=HOSTILE, recordings=recordings(80)), STARTED)
    check_payload(dict(message), "message")  # type: ignore[arg-type]
    shown = "\n".join(mrkdwn_texts(message))
    assert "You missed" in shown and "/conferences missed off" in shown and "<!channel>" not in shown
