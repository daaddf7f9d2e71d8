"""Block Kit for a channel digest: what is live now, what was held, and new recordings, per course.

Pure rendering from plain dataclasses. A digest covers a whole period of possibly busy courses, so every
list is capped ("…and N more") and the message as a whole is cut by course, keeping it inside Slack's
50 blocks and 3000 characters per section however much happened. Canvas strings are mrkdwn-escaped. A
digest goes to a channel, so its language is the channel's (``t``, chosen when the digest is queued).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.messages.blocks import (
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    Block,
    Message,
    format_ago,
    format_duration,
    slack_date,
)
from bot.messages.i18n import DEFAULT_TRANSLATOR, N_, Text, Translator
from bot.messages.mrkdwn import escape, fitting_link, link, plain_text, safe_link_url, slack_length, truncate

# Per course and per kind of entry; the rest is counted in an "…and N more" line.
MAX_ITEMS_PER_LIST = 10
_TITLE_LIMIT = 200
_COURSE_LIMIT = 300
# A link longer than this would not leave its line room inside one 3000-character section.
_URL_LIMIT = MAX_SECTION_TEXT // 2
UNTITLED = N_("Untitled conference")


@dataclass(frozen=True, slots=True)
class DigestConference:
    """One conference as the digest shows it; ``title`` is raw Canvas text."""

    conference_id: int
    title: str
    started_at: datetime | None
    ended_at: datetime | None
    join_url: str


@dataclass(frozen=True, slots=True)
class DigestRecording:
    title: str
    conference_title: str
    url: str | None
    duration_minutes: int | None


@dataclass(frozen=True, slots=True)
class CourseDigest:
    """One course's part of the digest; ``problem`` says why Canvas could not be read for it (a message
    translated when the digest is rendered)."""

    course_name: str
    live: tuple[DigestConference, ...] = ()
    held: tuple[DigestConference, ...] = ()
    recordings: tuple[DigestRecording, ...] = ()
    problem: Text | str | None = None
    coming: tuple[DigestConference, ...] = ()  # scheduled within the next period, not started (start_at)

    @property
    def quiet(self) -> bool:
        return self.problem is None and not (self.live or self.held or self.recordings or self.coming)


@dataclass(frozen=True, slots=True)
class DigestContent:
    frequency: Literal["daily", "weekly"]
    slot: datetime  # the scheduled time this digest is for (UTC)
    since: datetime  # start of the period covered (UTC)
    late: bool
    courses: tuple[CourseDigest, ...]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _title_md(title: str, t: Translator) -> str:
    return truncate(escape(title.strip() or t._(UNTITLED)), _TITLE_LIMIT)


def _live_line(conference: DigestConference, now: datetime, t: Translator) -> str:
    title = conference.title.strip() or t._(UNTITLED)
    shown = link(conference.join_url, truncate(title, _TITLE_LIMIT), max_url_length=_URL_LIMIT)
    if conference.started_at is None:
        return f"• {shown}"
    return t._("• %(title)s · started %(ago)s", title=shown, ago=format_ago(conference.started_at, now, t=t))


def _held_line(conference: DigestConference, t: Translator) -> str:
    line = f"• {_title_md(conference.title, t)}"
    if conference.started_at is None:
        return line
    if conference.ended_at is None:
        started = t.date_time(_utc(conference.started_at))
        return line + t._(" · started %(date)s, no end time from Canvas", date=started)
    lasted = _utc(conference.ended_at) - _utc(conference.started_at)
    return line + t._(" · lasted %(duration)s", duration=format_duration(lasted, t=t))


def _coming_line(conference: DigestConference, now: datetime, t: Translator) -> str:
    """A scheduled conference: its title (linked to join) and when it starts; `started_at` holds the
    scheduled start here."""
    title = conference.title.strip() or t._(UNTITLED)
    shown = link(conference.join_url, truncate(title, _TITLE_LIMIT), max_url_length=_URL_LIMIT)
    if conference.started_at is None:
        return f"• {shown}"
    return t._("• %(title)s · %(date)s", title=shown, date=slack_date(conference.started_at, now, t=t))


def _recording_line(recording: DigestRecording, t: Translator) -> str:
    label = recording.title.strip() or recording.conference_title.strip() or t._("Recording")
    if safe_link_url(recording.url):
        shown = fitting_link(recording.url, truncate(label, _TITLE_LIMIT), _URL_LIMIT)
    else:
        shown = t._("%(title)s (no playback link yet)", title=truncate(escape(label), _TITLE_LIMIT))
    if recording.duration_minutes is not None:
        shown += f" · {format_duration(timedelta(minutes=recording.duration_minutes), t=t)}"
    return f"• {shown}"


def _capped(heading: str, lines: Sequence[str], more: Callable[[int], str]) -> list[str]:
    """``more(n)`` says "…and n more" for this kind of entry, in the reader's language."""
    if not lines:
        return []
    shown = list(lines[:MAX_ITEMS_PER_LIST])
    if len(lines) > MAX_ITEMS_PER_LIST:
        shown.append(more(len(lines) - MAX_ITEMS_PER_LIST))
    return [heading, *shown]


def _chunks(lines: Sequence[str]) -> list[str]:
    """Pack lines into section texts of at most 3000 characters (a single long line is truncated)."""
    chunks: list[str] = []
    for raw in lines:
        line = truncate(raw, MAX_SECTION_TEXT)
        if chunks and slack_length(chunks[-1]) + 1 + slack_length(line) <= MAX_SECTION_TEXT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_SECTION_TEXT)}]}


def course_blocks(course: CourseDigest, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> list[Block]:
    """The sections of one course: its name, then live, held and recordings, each capped."""
    name = course.course_name.strip() or t._("Unknown course")
    lines = [f"*{truncate(escape(name), _COURSE_LIMIT)}*"]
    if course.problem is not None:
        lines.append(f"⚠️ {escape(t.text(course.problem))}")
    lines += _capped(
        t._("🔴 *Live now*"),
        [_live_line(c, now, t) for c in course.live],
        lambda n: t._("…and %(count)d more live", count=n),
    )
    lines += _capped(
        t._("✅ *Held*"),
        [_held_line(c, t) for c in course.held],
        lambda n: t._("…and %(count)d more held", count=n),
    )
    lines += _capped(
        t._("📅 *Coming up*"),
        [_coming_line(c, now, t) for c in course.coming],
        lambda n: t._("…and %(count)d more coming up", count=n),
    )
    lines += _capped(
        t._("🎞️ *Recordings*"),
        [_recording_line(r, t) for r in course.recordings],
        lambda n: t._("…and %(count)d more recordings", count=n),
    )
    return [_section(chunk) for chunk in _chunks(lines)]


def _heading(content: DigestContent, t: Translator) -> str:
    if content.frequency == "weekly":
        return t._("Weekly conference digest (late)") if content.late else t._("Weekly conference digest")
    return t._("Daily conference digest (late)") if content.late else t._("Daily conference digest")


def _summary(content: DigestContent, t: Translator) -> str:
    live = sum(len(c.live) for c in content.courses)
    held = sum(len(c.held) for c in content.courses)
    recordings = sum(len(c.recordings) for c in content.courses)
    return t._(
        "%(live)d live now · %(held)d held · %(recordings)d new recordings",
        live=live,
        held=held,
        recordings=recordings,
    )


def digest_message(content: DigestContent, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """The whole digest post. Busy courses come first; quiet ones are named in one closing line."""
    heading = _heading(content, t)
    intro = t._(
        "Since %(date)s · %(summary)s", date=slack_date(content.since, now, t=t), summary=_summary(content, t)
    )
    if content.late:
        intro += t._(" · scheduled for %(date)s, posted late", date=slack_date(content.slot, now, t=t))
    head: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": plain_text(heading, MAX_HEADER_TEXT)}},
        _context(intro),
    ]
    active = [c for c in content.courses if not c.quiet]
    quiet = [c for c in content.courses if c.quiet]
    tail: list[Block] = []
    if quiet:
        names = ", ".join(escape(c.course_name.strip() or t._("Unknown course")) for c in quiet)
        tail.append(_context(t._("No conferences in: %(courses)s", courses=names)))
    if not content.courses:
        tail.append(
            _section(t._("This channel follows no courses. Use `/conferences subscribe &lt;course&gt;`."))
        )
    elif not active:
        tail.append(_section(t._("No conferences since the last digest.")))
    body = _fit_courses(active, now, MAX_MESSAGE_BLOCKS - len(head) - len(tail), t)
    text = t._("%(heading)s: %(summary)s", heading=heading, summary=_summary(content, t))
    return {"text": truncate(text, MAX_FALLBACK_TEXT), "blocks": [*head, *body, *tail]}


def _fit_courses(courses: Sequence[CourseDigest], now: datetime, room: int, t: Translator) -> list[Block]:
    """Whole courses while they fit, keeping one block for "…and N more courses" when some do not."""
    blocks: list[Block] = []
    for index, course in enumerate(courses):
        rendered = [{"type": "divider"}, *course_blocks(course, now, t=t)]
        left = len(courses) - index - 1
        reserve = 1 if left else 0
        if len(blocks) + len(rendered) + reserve > room:
            missing = len(courses) - index
            more = t.ngettext("…and %(count)d more course", "…and %(count)d more courses", missing)
            return [*blocks, _context(more)]
        blocks += rendered
    return blocks
