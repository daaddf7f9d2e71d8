"""After the bell (pure): the attendance report a course's teachers get when a session ends, its CSV, and
the "you missed it" DM with the recording for invitees who never joined.

Names come from Canvas and are escaped like every Canvas string. The message names as many people as
fit in Slack's limits and says how many more there are; the CSV always lists everyone. In the CSV a name
that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is prefixed with an apostrophe, the usual guard against CSV injection.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.attendance import Person
from bot.messages.blocks import (
    Block,
    ConferenceCard,
    Message,
    context_block,
    fit_blocks,
    header_block,
    recording_sections,
    section_block,
)
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.messages.mrkdwn import escape, slack_length, truncate

NAMES_ROOM = 1000
"""What the names of one list may take (Slack allows MAX_SECTION_TEXT a section): slack_sdk sends
files.completeUploadExternal's arguments, these blocks included, in the URL's query string, which must stay
a few kilobytes; the CSV names everyone anyway."""
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class AttendanceReport:
    """One session's attendance as its teachers see it; strings are raw Canvas text."""

    conference_id: int
    title: str
    course: str
    started_at: datetime
    people: Sequence[Person]  # everyone invited, attendees first (domain.attendance.people)
    again: bool = False  # a later session of the room: Canvas counts joins to any of its sessions


def _name(person: Person, t: Translator) -> str:
    return person.name.strip() or t._("Canvas user %(id)s", id=person.canvas_id)


def name_list(names: Sequence[str], t: Translator, room: int = NAMES_ROOM) -> str:
    """Escaped names joined by commas, as many as fit in `room`, then "…and N more"."""
    shown: list[str] = []
    used = 0
    for index, name in enumerate(names):
        escaped = truncate(escape(name), 200)
        cost = slack_length(escaped) + (2 if shown else 0)
        if used + cost > room:
            rest = t._("…and %(count)d more", count=len(names) - index)
            return ", ".join(shown) + (" " if shown else "") + rest
        shown.append(escaped)
        used += cost
    return ", ".join(shown)


def attendance_message(report: AttendanceReport, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """The DM: "N of M invited attended", who came and who did not (the CSV goes with it)."""
    came = [_name(p, t) for p in report.people if p.attended]
    missed = [_name(p, t) for p in report.people if not p.attended]
    title = report.title.strip() or t._("Untitled conference")
    course = report.course.strip() or t._("Unknown course")
    count = t._(
        "*%(attended)d of %(invited)d* invited attended", attended=len(came), invited=len(report.people)
    )
    when = t._("Started %(date)s", date=t.date_time(report.started_at))
    blocks: list[Block] = [
        header_block(t._("Attendance: %(title)s", title=title)),
        section_block(f"*{truncate(escape(course), 500)}* · {when}\n{count}"),
    ]
    if came:
        heading = t._("*Attended (%(count)d)*", count=len(came))
        blocks.append(section_block(f"{heading}\n{name_list(came, t)}"))
    if missed:
        heading = t._("*Did not join (%(count)d)*", count=len(missed))
        blocks.append(section_block(f"{heading}\n{name_list(missed, t)}"))
    notes = [t._("The CSV file lists everyone invited.")]
    if report.again:
        notes.append(
            t._("Canvas keeps one attendance list per room: it counts anyone who joined any of its sessions.")
        )
    blocks.append(context_block(*notes))
    text = t._(
        "%(attended)d of %(invited)d invited attended %(title)s in %(course)s",
        attended=len(came),
        invited=len(report.people),
        title=escape(title),
        course=escape(course),
    )
    return {"text": truncate(text, 1000), "blocks": blocks}


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def attendance_csv(report: AttendanceReport, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    """Everyone invited, one row each: Canvas id, name, sortable name, attended (yes/no in the reader's
    language). RFC 4180 quoting, CRLF line ends, as spreadsheets expect."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([t._("Canvas user id"), t._("Name"), t._("Sortable name"), t._("Attended")])
    for person in report.people:
        writer.writerow(
            [
                person.canvas_id,
                _cell(person.name),
                _cell(person.sort_name),
                t._("yes") if person.attended else t._("no"),
            ]
        )
    return out.getvalue()


def attendance_filename(report: AttendanceReport) -> str:
    """Unique per session (the conference and its start): the interrupted-upload look-up finds a share by
    this name in the DM, so it must never repeat for a different report there."""
    return f"attendance-{report.conference_id}-{report.started_at.strftime('%Y%m%d-%H%M%S')}.csv"


def attendance_title(report: AttendanceReport, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    title = report.title.strip() or t._("Untitled conference")
    return truncate(t._("Attendance: %(title)s", title=title), 250)


def missed_recording(
    card: ConferenceCard, started_at: datetime, *, t: Translator = DEFAULT_TRANSLATOR
) -> Message:
    """The DM to an invitee who never joined: the session they missed and its recordings."""
    title = card.title.strip() or t._("Untitled conference")
    course = card.context_name.strip() or t._("Unknown course")
    intro = t._(
        "🎞️ You missed *%(title)s* · %(course)s (%(date)s). The recording is ready:",
        title=truncate(escape(title), 1000),
        course=truncate(escape(course), 500),
        date=t.date_time(started_at),
    )
    text = t._(
        "You missed %(title)s in %(course)s: the recording is ready",
        title=escape(title),
        course=escape(course),
    )
    head = [section_block(intro)]
    foot = context_block(t._("Stop these with `/conferences missed off`."))
    body = recording_sections(card, t=t)
    return {"text": truncate(text, 1000), "blocks": [*fit_blocks(head, body, 49, t=t), foot]}
