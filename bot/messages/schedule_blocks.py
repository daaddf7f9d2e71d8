"""Messages about conferences that have not started yet: the reminder before a scheduled start and the
nudge to a course's teachers when it is late. Canvas strings are escaped; only http(s) links are buttons.

Both go to one linked person, so they are rendered (when queued) in that person's language and time zone:
the caller passes their :class:`~bot.messages.i18n.Translator` (English when omitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.messages.blocks import (
    ACTION_JOIN,
    MAX_FALLBACK_TEXT,
    UNTITLED,
    Block,
    Message,
    actions_block,
    header_block,
    link_button,
    section_block,
    slack_date,
)
from bot.messages.i18n import DEFAULT_TRANSLATOR, Translator
from bot.messages.mrkdwn import escape, truncate

ACTION_START = "start_conference"
_TITLE_LIMIT = 120
_COURSE_LIMIT = 1000
"""A course name's share of a section (escaped): an absurd Canvas name must not take the message past
Slack's 3,000 characters, whatever the translation around it adds."""


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A scheduled conference as a reminder or nudge shows it; strings are raw Canvas text."""

    conference_id: int
    title: str
    context_name: str
    start_at: datetime
    join_url: str


def _title(upcoming: Upcoming, t: Translator) -> str:
    return truncate(upcoming.title.strip() or t._(UNTITLED), _TITLE_LIMIT)


def _course(upcoming: Upcoming) -> str:
    return truncate(escape(upcoming.context_name), _COURSE_LIMIT)


def _message(text: str, blocks: list[Block]) -> Message:
    return {"text": truncate(text, MAX_FALLBACK_TEXT), "blocks": blocks}


def reminder(
    upcoming: Upcoming, minutes: int, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR
) -> Message:
    """A DM `minutes` before the scheduled start, with the Join link ready."""
    title = _title(upcoming, t)
    starts = slack_date(upcoming.start_at, now, t=t)
    course = _course(upcoming)
    text = t._(
        "%(title)s in %(course)s starts in %(minutes)d min (%(date)s)",
        title=escape(title),
        course=course,
        minutes=minutes,
        date=starts,
    )
    button = link_button(t._("Join"), ACTION_JOIN, upcoming.join_url, value=str(upcoming.conference_id))
    blocks = [
        header_block(t._("⏰ Starts in %(minutes)d min: %(title)s", minutes=minutes, title=title)),
        section_block(t._("*%(course)s* · scheduled for %(date)s", course=course, date=starts)),
        *actions_block(button),
    ]
    return _message(text, blocks)


def host_nudge(
    upcoming: Upcoming, invited: int, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR
) -> Message:
    """To a course's teachers when a scheduled conference has not started a few minutes after its time."""
    title = _title(upcoming, t)
    starts = slack_date(upcoming.start_at, now, t=t)
    course = _course(upcoming)
    # Whole sentences per plural form: "1 person is" / "2 people are" agree differently in every language.
    text = t.ngettext(
        "%(title)s in %(course)s was due at %(date)s: %(count)d person is invited; it hasn't started",
        "%(title)s in %(course)s was due at %(date)s: %(count)d people are invited; it hasn't started",
        invited,
        title=escape(title),
        course=course,
        date=starts,
    )
    waiting = t.ngettext(
        "%(count)d person is invited; not started.", "%(count)d people are invited; not started.", invited
    )
    due = t._("*%(course)s* · due at %(date)s", course=course, date=starts)
    button = link_button(
        t.pgettext("button", "Start"), ACTION_START, upcoming.join_url, value=str(upcoming.conference_id)
    )
    blocks = [
        header_block(t._("Not started yet: %(title)s", title=title)),
        section_block(f"{due}\n{waiting}"),
        *actions_block(button),
    ]
    return _message(text, blocks)
