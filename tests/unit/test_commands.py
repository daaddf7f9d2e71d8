"""`/conferences` parsing: good inputs map to commands, bad ones to Help with a reason a user can act on."""

from __future__ import annotations

from datetime import time

import pytest

from bot.slack import commands
from bot.slack.commands import (
    Alerts,
    All,
    Command,
    CourseList,
    DigestDaily,
    DigestOff,
    DigestWeekly,
    Help,
    Language,
    Link,
    Live,
    Mute,
    Status,
    Subscribe,
    Subscriptions,
    Unlink,
    Unmute,
    Unsubscribe,
    parse,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Live()),
        ("   ", Live()),
        ("live", Live()),
        ("LIVE", Live()),
        ("  Live  ", Live()),
        ("all", All()),
        ("course 1234", CourseList("1234")),
        ("course   Intro to Biology ", CourseList("Intro to Biology")),
        ("link", Link()),
        ("unlink", Unlink()),
        ("status", Status()),
        ("Subscribe 42", Subscribe("42")),
        ("subscribe Art  &amp; Design", Subscribe("Art  & Design")),
        ('subscribe "Biology 101"', Subscribe("Biology 101")),
        ("subscribe \u201cBiology 101\u201d", Subscribe("Biology 101")),
        ("unsubscribe BIO 101", Unsubscribe("BIO 101")),
        ("subscriptions", Subscriptions()),
        ("digest daily 9:00", DigestDaily(time(9, 0))),
        ("digest daily 09:05", DigestDaily(time(9, 5))),
        ("DIGEST Daily 23:59", DigestDaily(time(23, 59))),
        ("digest daily 0:00", DigestDaily(time(0, 0))),
        ("digest weekly mon 9:00", DigestWeekly(0, time(9, 0))),
        ("digest weekly Monday 09:00", DigestWeekly(0, time(9, 0))),
        ("digest weekly SUN 18:30", DigestWeekly(6, time(18, 30))),
        ("digest weekly thurs 7:15", DigestWeekly(3, time(7, 15))),
        ("digest  weekly   friday   17:00", DigestWeekly(4, time(17, 0))),
        ("digest off", DigestOff()),
        ("digest daily 08:00 Europe/Paris", DigestDaily(time(8, 0), "Europe/Paris")),
        ("digest daily 08:00 europe/paris", DigestDaily(time(8, 0), "Europe/Paris")),
        ("digest daily 7:45 UTC", DigestDaily(time(7, 45), "UTC")),
        ("digest weekly fri 17:00 America/New_York", DigestWeekly(4, time(17, 0), "America/New_York")),
        ("digest weekly mon 9:00 asia/KOLKATA", DigestWeekly(0, time(9, 0), "Asia/Kolkata")),
        ("mute Chemistry", Mute("Chemistry")),
        ("unmute 77", Unmute("77")),
        ("alerts on", Alerts(on=True)),
        ("Alerts OFF", Alerts(on=False)),
        ("help", Help(None)),
        ("HELP me", Help(None)),
        ("\tlive\n", Live()),
        ("course\t99", CourseList("99")),
    ],
)
def test_good_inputs(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "reason_contains"),
    [
        ("foo", "`foo`"),
        ("lve", "`lve`"),
        ("course", "needs a course"),
        ("subscribe", "needs a course"),
        ("subscribe   ", "needs a course"),
        ('subscribe ""', "needs a course"),
        ("unsubscribe", "needs a course"),
        ("mute", "needs a course"),
        ("unmute", "needs a course"),
        ("live now", "takes no arguments"),
        ("status please", "takes no arguments"),
        ("digest", "needs a schedule"),
        ("digest sometimes", "`sometimes` is not a digest schedule"),
        ("digest daily", "exactly one time"),
        ("digest daily 9:00 10:00", "exactly one time"),
        ("digest daily 25:00", "`25:00` is not a valid time"),
        ("digest daily 12:60", "`12:60` is not a valid time"),
        ("digest daily 9am", "24-hour HH:MM"),
        ("digest daily 9", "24-hour HH:MM"),
        ("digest daily 9:5", "24-hour HH:MM"),
        ("digest weekly funday 9:00", "`funday` is not a day of the week"),
        ("digest weekly mon", "a day and a time"),
        ("digest weekly 9:00 mon", "is not a day of the week"),
        ("digest weekly mon 24:00", "not a valid time"),
        ("digest off now", "takes nothing after it"),
        ("digest daily 08:00 Mars/Olympus", "`Mars/Olympus` is not a time zone"),
        ("digest daily 08:00 ../../etc/passwd", "is not a time zone"),
        ("digest daily 08:00 Europe/Paris extra", "exactly one time"),
        ("digest daily Europe/Paris", "24-hour HH:MM"),
        ("digest weekly mon 9:00 Nowhere/Town", "`Nowhere/Town` is not a time zone"),
        ("digest weekly mon 9:00 10:00", "a day and a time"),
        ("digest weekly mon Europe/Paris", "24-hour HH:MM"),
        ("alerts", "`on` or `off`"),
        ("alerts maybe", "not `maybe`"),
    ],
)
def test_bad_inputs_give_specific_help(text: str, reason_contains: str) -> None:
    result = parse(text)
    assert isinstance(result, Help)
    assert result.reason is not None
    assert reason_contains in result.reason.english()


def test_time_reason_says_24_hour_format() -> None:
    result = parse("digest daily 9am")
    assert isinstance(result, Help) and result.reason is not None
    reason = result.reason.english()
    assert "HH:MM" in reason and "24-hour" in reason


def test_unknown_verb_echo_is_short_and_cannot_break_code_span() -> None:
    result = parse("`" + "x" * 500)
    assert isinstance(result, Help) and result.reason is not None
    reason = result.reason.english()
    assert len(reason) < 120
    assert reason.count("`") == 2


def test_slack_entity_encoded_input_is_decoded_once() -> None:
    # Slack sends "<", ">" and "&" as entities; a user typing "&lt;" literally arrives as "&amp;lt;".
    assert parse("mute A &lt;B&gt;") == Mute("A <B>")
    assert parse("mute &amp;lt;") == Mute("&lt;")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("language", Language(None)),
        ("language es", Language("es")),
        ("language ES", Language("es")),
        ("language pt-BR", Language("pt_BR")),
        ("language pt", Language("pt_BR")),
        ("language en", Language("en")),
    ],
)
def test_language_sets_or_shows_the_channel_language(text: str, expected: Language) -> None:
    assert parse(text) == expected


def test_unknown_language_is_refused_with_the_choices() -> None:
    result = parse("language fr")
    assert isinstance(result, Help) and result.reason is not None
    assert "`fr`" in result.reason.english() and "pt-BR" in result.reason.english()


def test_attendance_and_missed_are_switches() -> None:
    assert commands.parse("attendance off") == commands.Attendance(on=False)
    assert commands.parse("ATTENDANCE on") == commands.Attendance(on=True)
    assert commands.parse("missed off") == commands.Missed(on=False)
    for typed in ("attendance", "missed maybe"):
        parsed = commands.parse(typed)
        assert isinstance(parsed, commands.Help) and parsed.reason is not None
        assert "`on` or `off`" in parsed.reason.english()
