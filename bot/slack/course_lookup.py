"""Find the course a user meant ("1234", "Biology 101", "bio") among their Canvas courses. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.models import Course
from bot.messages.i18n import Text
from bot.slack.commands import canvas_id


@dataclass(frozen=True, slots=True)
class Found:
    course: Course


@dataclass(frozen=True, slots=True)
class NotFound:
    reason: Text  # translated in the reply (a raw name inside it is escaped there with the whole text)


def find_course(query: str, courses: Sequence[Course]) -> Found | NotFound:
    """By id, exact name or course code, then a unique case-insensitive substring of the name."""
    wanted = query.strip()
    wanted_id = canvas_id(wanted)
    if wanted_id is not None:
        by_id = [c for c in courses if c.id == wanted_id]
        return (
            Found(by_id[0])
            if by_id
            else NotFound(Text("You are not enrolled in a course with id %(id)s.", id=wanted))
        )
    folded = wanted.casefold()
    exact = [c for c in courses if folded in (c.name.casefold(), (c.course_code or "").casefold())]
    if len(exact) == 1:
        return Found(exact[0])
    partial = exact or [c for c in courses if folded in c.name.casefold()]
    if len(partial) == 1:
        return Found(partial[0])
    if not partial:
        return NotFound(Text("None of your courses is called “%(query)s”.", query=wanted))
    names = ", ".join(f"{c.name} ({c.id})" for c in partial[:10])
    return NotFound(
        Text(
            "“%(query)s” matches several courses: %(courses)s. Use the course id.",
            query=wanted,
            courses=names,
        )
    )
