"""Course ids typed into /conferences: strict ASCII digits below 2**63, refused with a reason otherwise."""

from __future__ import annotations

import pytest

from bot.domain.models import Course
from bot.slack.commands import CANVAS_ID_LIMIT, CourseList, Help, Mute, Subscribe, canvas_id, parse
from bot.slack.course_lookup import Found, NotFound, find_course


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1234", 1234),
        ("007", 7),
        (str(CANVAS_ID_LIMIT - 1), CANVAS_ID_LIMIT - 1),
        (str(CANVAS_ID_LIMIT), None),
        ("9" * 19, None),
        ("9" * 5000, None),
        ("²", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits: int() takes them, Canvas does not
        ("+5", None),
        ("-5", None),
        ("1_000", None),
        (" 12", None),
        ("", None),
        ("12a", None),
    ],
)
def test_canvas_id_is_strict(text: str, expected: int | None) -> None:
    assert canvas_id(text) == expected


@pytest.mark.parametrize("verb", ["course", "subscribe", "mute", "unmute", "unsubscribe"])
@pytest.mark.parametrize("argument", ["²", "9" * 5000, str(CANVAS_ID_LIMIT), "\u0661\u0662"])
def test_digit_arguments_that_are_no_canvas_id_get_help(verb: str, argument: str) -> None:
    command = parse(f"{verb} {argument}")
    assert isinstance(command, Help)
    assert command.reason is not None and "not a Canvas course id" in command.reason.english()
    assert len(command.reason.english()) < 300  # the 5,000 digits are not echoed back


def test_valid_ids_and_names_still_parse() -> None:
    assert parse(f"course {CANVAS_ID_LIMIT - 1}") == CourseList(str(CANVAS_ID_LIMIT - 1))
    assert parse("subscribe Biology 101") == Subscribe("Biology 101")
    assert parse("mute x²") == Mute("x²")


def test_find_course_never_crashes_on_digit_like_text() -> None:
    courses = [Course(id=12, name="Maths ²", course_code="M2")]
    assert find_course("12", courses) == Found(courses[0])
    assert find_course("²", courses) == Found(courses[0])  # a name, not an id
    assert isinstance(find_course("³", courses), NotFound)
    assert isinstance(find_course("9" * 5000, courses), NotFound)
    assert isinstance(find_course(str(2**64), courses), NotFound)
