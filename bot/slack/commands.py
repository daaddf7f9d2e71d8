"""Parsing of the ``/conferences`` slash-command text into typed commands.

Parsing is total: every input yields a :data:`Command`, and anything that is not understood becomes
:class:`Help` carrying a specific reason, so the handler never has to guess what went wrong. Reasons are
:class:`~bot.messages.i18n.Text`: parsing does not know the reader, the reply renders them in their language.
Subcommands themselves are the same words in every language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from functools import cache
from typing import TypeAlias
from zoneinfo import available_timezones

from bot.domain.zones import zone
from bot.messages.i18n import SUPPORTED, Text
from bot.messages.mrkdwn import unescape


@dataclass(frozen=True, slots=True)
class Live:
    """Conferences live right now (also what an empty command means)."""


@dataclass(frozen=True, slots=True)
class All:
    """Every conference the user can see, with its status."""


@dataclass(frozen=True, slots=True)
class CourseList:
    course: str


@dataclass(frozen=True, slots=True)
class Link:
    pass


@dataclass(frozen=True, slots=True)
class Unlink:
    pass


@dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    course: str
    remind: int | None = None  # `... remind N|off`: the channel's reminder lead (0: off); None: unchanged


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    course: str


@dataclass(frozen=True, slots=True)
class Subscriptions:
    pass


@dataclass(frozen=True, slots=True)
class DigestDaily:
    at: time
    zone: str | None = None  # IANA name; None means the channel creator's Slack time zone


@dataclass(frozen=True, slots=True)
class DigestWeekly:
    weekday: int  # 0 = Monday, as datetime.weekday()
    at: time
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class DigestOff:
    pass


@dataclass(frozen=True, slots=True)
class Mute:
    course: str


@dataclass(frozen=True, slots=True)
class Unmute:
    course: str


@dataclass(frozen=True, slots=True)
class Alerts:
    on: bool


@dataclass(frozen=True, slots=True)
class Language:
    """A channel's language for its alerts and digests; None shows the current one."""

    code: str | None = None


@dataclass(frozen=True, slots=True)
class Remind:
    """Reminders before scheduled starts: `minutes` ahead, 0 for none."""

    minutes: int


@dataclass(frozen=True, slots=True)
class Agenda:
    """The daily agenda DM at `at` (local, the user's Slack time zone); None turns it off."""

    at: time | None


@dataclass(frozen=True, slots=True)
class Attendance:
    """The attendance report after each session of a course the user teaches."""

    on: bool


@dataclass(frozen=True, slots=True)
class Missed:
    """The recording by DM after a session the user was invited to and never joined."""

    on: bool


@dataclass(frozen=True, slots=True)
class Help:
    reason: Text | None = None


Command: TypeAlias = (
    Live
    | All
    | CourseList
    | Link
    | Unlink
    | Status
    | Subscribe
    | Unsubscribe
    | Subscriptions
    | DigestDaily
    | DigestWeekly
    | DigestOff
    | Mute
    | Unmute
    | Alerts
    | Language
    | Remind
    | Agenda
    | Attendance
    | Missed
    | Help
)

WEEKDAYS: dict[str, int] = {
    **{name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": 1,
    "thur": 3,
    "thurs": 3,
}

_TIME_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})")
CANVAS_ID_LIMIT = 2**63
"""Canvas ids are 64-bit signed integers (and so are our id columns): a larger number names nothing."""
_CANVAS_ID_RE = re.compile(r"[0-9]{1,19}")
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}  # straight and curly
_ECHO_LIMIT = 40
LANGUAGE_CODES: dict[str, str] = {"en": "en", "es": "es", "pt": "pt_BR", "pt-br": "pt_BR", "pt_br": "pt_BR"}
"""What `/conferences language` accepts (case-insensitive) -> the supported locale it selects."""


class _Malformed(Exception):
    """Raised inside the parser; becomes ``Help(reason)`` at the boundary."""

    def __init__(self, reason: Text) -> None:
        super().__init__(reason.msgid)
        self.reason = reason


def _shown(text: str) -> str:
    """User text quoted back in a reason: shortened, and without backticks that would end the code span."""
    text = text.replace("`", "'")
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 1] + "…"


def _no_args(verb: str, rest: str) -> None:
    if rest:
        raise _Malformed(Text("`%(verb)s` takes no arguments (got `%(got)s`).", verb=verb, got=_shown(rest)))


def canvas_id(text: str) -> int | None:
    """`text` as a Canvas id, or None: ASCII digits only, below 2**63.

    Not `str.isdigit()` + `int()`: isdigit() is True for "²", which int() refuses, and int() takes
    Arabic-Indic digits, "+5", "1_000" and padding that Canvas would not; past 4,300 digits it raises, and
    anything of 2**63 or more cannot be a Canvas id or be stored.
    """
    if not _CANVAS_ID_RE.fullmatch(text):
        return None
    value = int(text)
    return value if value < CANVAS_ID_LIMIT else None


def _course(verb: str, rest: str) -> str:
    """Course argument exactly as typed (names may contain spaces); matching quotes are removed.

    Something made only of digits must be a valid Canvas id: "²" or a 5,000-digit number is refused here
    with a clear reason, so what follows can take a digits-only course for an id safely.
    """
    if len(rest) >= 2 and _QUOTES.get(rest[0]) == rest[-1]:
        rest = rest[1:-1].strip()
    if not rest:
        raise _Malformed(
            Text("`%(verb)s` needs a course, e.g. `/conferences %(verb)s 1234` or a course name.", verb=verb)
        )
    if rest.isdigit() and canvas_id(rest) is None:
        raise _Malformed(
            Text(
                "`%(got)s` is not a Canvas course id: use the number in the course's Canvas address "
                "(plain digits, e.g. `/conferences %(verb)s 1234`) or the course name.",
                got=_shown(rest),
                verb=verb,
            )
        )
    return rest


def parse_time(text: str) -> time:
    """Parse a 24-hour ``HH:MM``; "9:00" and "09:00" are accepted, "9am" and "25:00" are not."""
    match = _TIME_RE.fullmatch(text)
    if match is None:
        raise _Malformed(
            Text("`%(got)s` is not a time: use 24-hour HH:MM, e.g. 09:00 or 17:30.", got=_shown(text))
        )
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise _Malformed(
            Text(
                "`%(got)s` is not a valid time (hours 00 to 23, minutes 00 to 59): use 24-hour HH:MM, "
                "e.g. 09:00 or 17:30.",
                got=_shown(text),
            )
        )
    return time(hour, minute)


@cache
def _zones_by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def parse_zone(text: str) -> str:
    """An IANA zone name as the tz database spells it ("europe/paris" -> "Europe/Paris").

    Case is forgiven because people type zone names by hand; anything zoneinfo cannot load is refused here,
    so a stored digest can always compute its next run.
    """
    name = _zones_by_folded_name().get(text.casefold(), text)
    if zone(name) is None:
        raise _Malformed(
            Text(
                "`%(got)s` is not a time zone: use an IANA name such as Europe/Paris or America/New_York.",
                got=_shown(text),
            )
        )
    return name


def _optional_zone(params: list[str], needed: int, complaint: Text) -> str | None:
    """Digest arguments are positional with an optional trailing zone; a second time is not a zone."""
    if len(params) == needed:
        return None
    if len(params) != needed + 1 or _TIME_RE.fullmatch(params[-1]):
        raise _Malformed(complaint)
    return parse_zone(params[-1])


def _digest(rest: str) -> Command:
    usage = "`digest daily HH:MM [ZONE]`, `digest weekly DAY HH:MM [ZONE]` or `digest off`"
    args = rest.split()
    if not args:
        raise _Malformed(Text("`digest` needs a schedule: %(usage)s.", usage=usage))
    mode, params = args[0].lower(), args[1:]
    if mode == "off":
        if params:
            raise _Malformed(Text("`digest off` takes nothing after it. Use %(usage)s.", usage=usage))
        return DigestOff()
    if mode == "daily":
        complaint = Text(
            "`digest daily` needs exactly one time and optionally a time zone, "
            "e.g. `digest daily 08:30` or `digest daily 08:30 Europe/Paris` "
            "(use 24-hour HH:MM, e.g. 09:00 or 17:30)."
        )
        if not params:
            raise _Malformed(complaint)
        at = parse_time(params[0])
        return DigestDaily(at=at, zone=_optional_zone(params, 1, complaint))
    if mode == "weekly":
        complaint = Text(
            "`digest weekly` needs a day and a time and optionally a time zone, "
            "e.g. `digest weekly mon 08:30` or `digest weekly mon 08:30 Europe/Paris` "
            "(use 24-hour HH:MM, e.g. 09:00 or 17:30)."
        )
        if len(params) < 2:
            raise _Malformed(complaint)
        weekday = WEEKDAYS.get(params[0].lower())
        if weekday is None:
            raise _Malformed(
                Text(
                    "`%(got)s` is not a day of the week: use mon, tue, wed, thu, fri, sat or sun.",
                    got=_shown(params[0]),
                )
            )
        at = parse_time(params[1])
        return DigestWeekly(weekday=weekday, at=at, zone=_optional_zone(params, 2, complaint))
    raise _Malformed(
        Text("`%(got)s` is not a digest schedule: use %(usage)s.", got=_shown(mode), usage=usage)
    )


def _alerts(rest: str) -> Command:
    value = rest.lower()
    if value in ("on", "off"):
        return Alerts(on=value == "on")
    if not value:
        raise _Malformed(Text("`alerts` needs `on` or `off`."))
    raise _Malformed(Text("`alerts` takes `on` or `off`, not `%(got)s`.", got=_shown(rest)))


def _switch(verb: str, factory: Callable[[bool], Command]) -> Callable[[str], Command]:
    """A setting turned `on` or `off`, nothing else."""

    def handler(rest: str) -> Command:
        value = rest.lower()
        if value in ("on", "off"):
            return factory(value == "on")
        if not value:
            raise _Malformed(Text("`%(verb)s` needs `on` or `off`.", verb=verb))
        raise _Malformed(Text("`%(verb)s` takes `on` or `off`, not `%(got)s`.", verb=verb, got=_shown(rest)))

    return handler


def _language(rest: str) -> Command:
    """`language` alone shows the channel's language; `language es` sets it (en, es, pt-BR)."""
    if not rest:
        return Language(None)
    code = LANGUAGE_CODES.get(rest.strip().lower())
    if code is None or code not in SUPPORTED:
        raise _Malformed(
            Text("`%(got)s` is not a language I speak: use `en`, `es` or `pt-BR`.", got=_shown(rest))
        )
    return Language(code)


MAX_REMIND_MINUTES = 24 * 60


def _remind(rest: str) -> Command:
    """`remind 15` asks for a DM 15 minutes before each scheduled start, `remind off` for none. Reasons
    are plain text (escaped when shown) but name no `<minutes>` placeholder: a catalog's msgids hold no
    raw angle brackets, which mrkdwn would take for markup."""
    value = rest.lower()
    if value == "off":
        return Remind(minutes=0)
    if not value:
        raise _Malformed(
            Text(
                "`remind` needs a number of minutes from 1 to %(max)d, or `off`: e.g. `remind 10`.",
                max=MAX_REMIND_MINUTES,
            )
        )
    minutes = int(value) if value.isascii() and value.isdigit() and len(value) <= 4 else None
    if minutes is None or not 1 <= minutes <= MAX_REMIND_MINUTES:
        raise _Malformed(
            Text(
                "`%(got)s` is not a reminder lead: use a number of minutes from 1 to %(max)d "
                "(e.g. `remind 10`) or `remind off`.",
                got=_shown(rest),
                max=MAX_REMIND_MINUTES,
            )
        )
    return Remind(minutes=minutes)


def _agenda(rest: str) -> Command:
    """`agenda 07:30` asks for a morning DM with the day's conferences, `agenda off` stops it."""
    value = rest.lower()
    if value == "off":
        return Agenda(at=None)
    if not value:
        raise _Malformed(Text("`agenda` needs a time or `off`: `agenda 07:30` or `agenda off`."))
    return Agenda(at=parse_time(value))


_REMIND_SUFFIX = re.compile(r"^(?P<course>.*?)\s+remind(?:\s+(?P<lead>\S+))?$", re.IGNORECASE)


def _subscribe(rest: str) -> Command:
    """`subscribe <course>`, optionally ending in `remind <minutes>|off` for the channel's reminders."""
    found = _REMIND_SUFFIX.match(rest)
    if found is None:
        return Subscribe(_course("subscribe", rest))
    lead = _remind(found.group("lead") or "")
    assert isinstance(lead, Remind)
    return Subscribe(_course("subscribe", found.group("course")), remind=lead.minutes)


def _simple(verb: str, factory: Callable[[], Command]) -> Callable[[str], Command]:
    def handler(rest: str) -> Command:
        _no_args(verb, rest)
        return factory()

    return handler


def _with_course(verb: str, factory: Callable[[str], Command]) -> Callable[[str], Command]:
    def handler(rest: str) -> Command:
        return factory(_course(verb, rest))

    return handler


_VERBS: dict[str, Callable[[str], Command]] = {
    "live": _simple("live", Live),
    "all": _simple("all", All),
    "course": _with_course("course", CourseList),
    "link": _simple("link", Link),
    "unlink": _simple("unlink", Unlink),
    "status": _simple("status", Status),
    "subscribe": lambda rest: _subscribe(rest),
    "unsubscribe": _with_course("unsubscribe", Unsubscribe),
    "subscriptions": _simple("subscriptions", Subscriptions),
    "digest": _digest,
    "mute": _with_course("mute", Mute),
    "unmute": _with_course("unmute", Unmute),
    "alerts": _alerts,
    "language": _language,
    "remind": _remind,
    "agenda": _agenda,
    "attendance": _switch("attendance", Attendance),
    "missed": _switch("missed", Missed),
    "help": lambda _rest: Help(reason=None),
}


def parse(text: str) -> Command:
    """Turn the text after ``/conferences`` into a command.

    Slack delivers slash-command text with ``&``, ``<`` and ``>`` entity-encoded; it is decoded here so a
    course named "Art & Design" is matched as typed (renderers escape it again on the way out).
    """
    stripped = unescape(text).strip()
    if not stripped:
        return Live()
    verb, *remainder = stripped.split(maxsplit=1)
    rest = remainder[0] if remainder else ""
    handler = _VERBS.get(verb.lower())
    if handler is None:
        return Help(reason=Text("I didn't understand `%(got)s`. Here is what I can do:", got=_shown(verb)))
    try:
        return handler(rest.strip())
    except _Malformed as exc:
        return Help(reason=exc.reason)
