"""The daily agenda DM: today's scheduled conferences, each with its Join button, in the reader's
language and time zone. Canvas strings are escaped; only http(s) links become buttons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.messages.blocks import (
    ACTION_JOIN,
    Block,
    Message,
    fit_blocks,
    header_block,
    link_button,
    section_block,
)
from bot.messages.i18n import Translator
from bot.messages.mrkdwn import escape, truncate
from bot.messages.schedule_blocks import Upcoming

_TITLE_LIMIT = 150


def agenda(items: Sequence[Upcoming], day: datetime, t: Translator) -> Message:
    """Today's conferences (`day` is any moment of the reader's local day), or that there are none."""
    heading = t._("📅 Your conferences today, %(day)s", day=t.date_label(day))
    if not items:
        text = t._("No conferences are scheduled for you today.")
        return {"text": text, "blocks": [header_block(heading), section_block(text)]}
    lines: list[Block] = []
    for item in items:
        title = truncate(item.title.strip() or t._("Untitled conference"), _TITLE_LIMIT)
        line = t._(
            "*%(time)s* · %(title)s · %(course)s",
            time=t.clock(item.start_at),
            title=escape(title),
            course=escape(item.context_name),
        )
        join = link_button(t._("Join"), ACTION_JOIN, item.join_url, value=str(item.conference_id))
        lines.append(section_block(line, accessory=join))
    text = t.ngettext(
        "%(count)d conference today", "%(count)d conferences today", len(items), count=len(items)
    )
    return {"text": text, "blocks": fit_blocks([header_block(heading)], lines, t=t)}
