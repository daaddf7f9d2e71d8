"""Messages about conferences that have not started yet: the reminder before a scheduled start and the
nudge to a course's teachers when it is late. Canvas strings are escaped; only http(s) links are buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.messages.blocks import (
    ACTION_JOIN,
    Message,
    actions_block,
    header_block,
    link_button,
    section_block,
    slack_date,
)
from bot.messages.mrkdwn import escape, truncate

ACTION_START = "start_conference"
_TITLE_LIMIT = 120


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A scheduled conference as a reminder or nudge shows it; strings are raw Canvas text."""

    conference_id: int
    title: str
    context_name: str
    start_at: datetime
    join_url: str


def _title(upcoming: Upcoming) -> str:
    return truncate(upcoming.title.strip() or "Untitled conference", _TITLE_LIMIT)


def reminder(upcoming: Upcoming, minutes: int, now: datetime) -> Message:
    """A DM `minutes` before the scheduled start, with the Join link ready."""
    title = _title(upcoming)
    starts = slack_date(upcoming.start_at, now)
    text = f"{escape(title)} in {escape(upcoming.context_name)} starts in {minutes} min ({starts})"
    button = link_button("Join", ACTION_JOIN, upcoming.join_url, value=str(upcoming.conference_id))
    blocks = [
        header_block(f"⏰ Starts in {minutes} min: {title}"),
        section_block(f"*{escape(upcoming.context_name)}* · scheduled for {starts}"),
        *actions_block(button),
    ]
    return {"text": text, "blocks": blocks}


def host_nudge(upcoming: Upcoming, invited: int, now: datetime) -> Message:
    """To a course's teachers when a scheduled conference has not started a few minutes after its time."""
    title = _title(upcoming)
    starts = slack_date(upcoming.start_at, now)
    people = "1 person is" if invited == 1 else f"{invited} people are"
    where = f"{escape(title)} in {escape(upcoming.context_name)}"
    text = f"{where} was due at {starts}: {people} invited; it hasn't started"
    course = escape(upcoming.context_name)
    button = link_button("Start", ACTION_START, upcoming.join_url, value=str(upcoming.conference_id))
    blocks = [
        header_block(f"Not started yet: {title}"),
        section_block(f"*{course}* · due at {starts}\n{people} invited; not started."),
        *actions_block(button),
    ]
    return {"text": text, "blocks": blocks}
