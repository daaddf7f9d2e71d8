"""Languages: gettext catalogs (managed with Babel) and locale-aware dates, handed to renderers explicitly.

A :class:`Translator` is a plain immutable value: one language and one time zone. Every renderer takes it
as an argument, so which language a message is in is decided by whoever knows the reader (the dispatcher
for a DM at send time, a command handler for the person who ran it, the channel's setting for a channel
post) and never by a global "current language" that one concurrent request could change under another.

Catalogs live in ``bot/locale/<lang>/LC_MESSAGES/confbot.po`` with their compiled ``.mo`` next to them
(both committed; ``tools/i18n_catalogs.py`` regenerates them, a test checks they agree). English is the
source language: its catalog is empty and msgids are shown as written.

Placeholders are ``%(name)s`` (Python format, as gettext tools and translators expect). Values put into a
mrkdwn template are escaped by the caller exactly as before: a template is our text, its values are not.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Final

from babel.dates import format_datetime, get_day_names
from babel.support import NullTranslations, Translations

from bot.domain.zones import zone as load_zone

DOMAIN: Final = "confbot"
LOCALE_DIR: Final = Path(__file__).resolve().parent.parent / "locale"
ENGLISH: Final = "en"
SUPPORTED: Final = ("en", "es", "pt_BR")
"""Languages with a complete catalog. ``en`` is the source language (msgids are English)."""

LANGUAGE_NAMES: Final = {"en": "English", "es": "Español", "pt_BR": "Português (Brasil)"}
"""Each language by its own name: what `/conferences language` lists (not translated on purpose)."""

EXTRACT_KEYWORDS: Final = {
    "_": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "N_": None,
    "Text": None,
}
"""Functions whose string arguments are msgids, for Babel's extractor (``tools/i18n_catalogs.py`` and the
catalog test use this one list): ``t._(msgid)``, ``t.ngettext(singular, plural, n)``,
``t.pgettext(context, msgid)`` for an English word that means two things, ``N_(msgid)`` for a constant
translated later, and ``Text(msgid, **params)`` for a message built where no reader is known."""


def N_(msgid: str) -> str:
    """Mark a constant for extraction; it is translated where it is shown (``t._(CONSTANT)``)."""
    return msgid


class Text:
    """A message decided before its reader is known (a parse error, a stored reason): the msgid and its
    values, translated later with :meth:`Translator.text`. Plain data: compares by value."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, /, **params: object) -> None:
        self.msgid = msgid
        self.params: Mapping[str, object] = params

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.msgid, dict(self.params)) == (
            other.msgid,
            dict(other.params),
        )

    def __hash__(self) -> int:
        return hash(self.msgid)

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, **{dict(self.params)!r})"

    def english(self) -> str:
        """The message in English (logs, and callers that have no reader)."""
        return translator(ENGLISH).text(self)


def supported_locale(code: str | None) -> str:
    """The supported language nearest to a Slack or HTTP locale: ``es-ES``/``es-LA``/``es`` -> ``es``,
    ``pt-BR``/``pt-PT``/``pt`` -> ``pt_BR``; anything else, or nothing, is English.

    Slack spells locales ``es-ES``, ``es-LA``, ``pt-BR``, ``en-US``; Babel ``pt_BR``. Only the language part
    decides, since each language has one catalog.
    """
    if not code:
        return ENGLISH
    language = code.strip().replace("-", "_").partition("_")[0].lower()
    if language == "es":
        return "es"
    if language == "pt":
        return "pt_BR"
    return ENGLISH


def accept_language(header: str | None) -> str:
    """The supported language a browser prefers most (``Accept-Language``), English when none fits."""
    if not header:
        return ENGLISH
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        language = tag.strip().replace("-", "_").partition("_")[0].lower()
        if weight > 0 and language in ("en", "es", "pt"):
            ranked.append((-weight, index, supported_locale(tag)))
    return min(ranked)[2] if ranked else ENGLISH


@cache
def _catalog(locale: str) -> NullTranslations:
    """The compiled catalog of a supported language (read once per process; immutable afterwards)."""
    if locale == ENGLISH:
        return NullTranslations()
    translations = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
    if not isinstance(translations, Translations):  # Babel returns NullTranslations when the .mo is missing
        raise FileNotFoundError(f"no compiled catalog for {locale} in {LOCALE_DIR}")
    return translations


class Translator:
    """One reader's language and time zone. Immutable; cheap to build (catalogs are shared)."""

    __slots__ = ("_catalog", "locale", "zone")

    def __init__(self, locale: str, zone: str | None = None) -> None:
        self.locale = supported_locale(locale)
        self.zone = zone if load_zone(zone) is not None else None
        self._catalog: gettext.NullTranslations = _catalog(self.locale)

    def __repr__(self) -> str:
        return f"Translator({self.locale!r}, {self.zone!r})"

    def _(self, msgid: str, /, **params: object) -> str:
        """The translation of ``msgid`` with ``%(name)s`` placeholders filled from ``params``."""
        text = self._catalog.gettext(msgid)
        return text % params if params else text

    def ngettext(self, singular: str, plural: str, count: int, /, **params: object) -> str:
        """The plural form for ``count`` (available to the template as ``%(count)d``)."""
        return self._catalog.ngettext(singular, plural, count) % {"count": count, **params}

    def pgettext(self, context: str, msgid: str, /, **params: object) -> str:
        """``msgid`` in a ``context``: one English word that other languages say two ways ("Start" is the
        quiet-hours field, a noun, and a button, a verb), so each use is its own catalog entry."""
        text = self._catalog.pgettext(context, msgid)
        return text % params if params else text

    def text(self, message: Text | str) -> str:
        """A deferred :class:`Text` translated now. A plain string is looked up as a msgid without
        placeholders (a constant marked with :func:`N_`, a reason stored in English); one the catalog
        does not know, such as Canvas's own words, is returned as it is."""
        if isinstance(message, str):
            return self._catalog.gettext(message)
        return self._(message.msgid, **message.params)

    def with_zone(self, zone: str | None) -> Translator:
        return Translator(self.locale, zone)

    # --- dates and times --------------------------------------------------------------------------------

    def local(self, moment: datetime, zone: str | None = None) -> datetime:
        """``moment`` in ``zone`` (or the reader's), UTC when neither is known; naive means UTC."""
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        tz = load_zone(zone) or load_zone(self.zone)
        return aware.astimezone(tz or UTC)

    def _pattern(self, local: datetime, pattern: str) -> str:
        """Babel-formatted ``local`` plus the zone's own abbreviation (``EST``, ``CET``, ``-03``): CLDR
        has short zone names for few locales, tzdata's are understood everywhere."""
        shown = format_datetime(local, pattern, tzinfo=local.tzinfo, locale=self.locale)
        return f"{shown} {local.tzname() or 'UTC'}"

    def clock(self, moment: datetime, zone: str | None = None) -> str:
        """A time of day with its zone, e.g. ``13:48 UTC``."""
        # TRANSLATORS: a Babel/CLDR time pattern (https://babel.pocoo.org/en/latest/dates.html). Keep it
        # a pattern: HH hours, mm minutes, a AM/PM.
        return self._pattern(self.local(moment, zone), self._("HH:mm"))

    def date_time(self, moment: datetime, zone: str | None = None) -> str:
        """A date and time with its zone, e.g. ``2025-03-03 13:48 UTC``."""
        # TRANSLATORS: a Babel/CLDR date-time pattern; y year, MM month number, MMM month name, d day.
        return self._pattern(self.local(moment, zone), self._("y-MM-dd HH:mm"))

    def weekday(self, index: int) -> str:
        """The name of a weekday (0 = Monday, as ``datetime.weekday()``) in the reader's language."""
        return str(get_day_names("wide", locale=self.locale)[index])

    def date_label(self, moment: datetime, zone: str | None = None) -> str:
        """A day with its weekday, e.g. ``Monday 7 December`` (the daily agenda's heading)."""
        # TRANSLATORS: a Babel/CLDR pattern; EEEE weekday, d day, MMMM month.
        return self._pattern(self.local(moment, zone), self._("EEEE d MMMM"))

    def day_label(self, moment: datetime, zone: str | None = None) -> str:
        """A date with its weekday and time, e.g. ``Tue 12 Mar 2024, 08:00 EDT`` (digest confirmations)."""
        # TRANSLATORS: a Babel/CLDR pattern; EEE short weekday, d day, MMM short month, y year.
        return self._pattern(self.local(moment, zone), self._("EEE d MMM y, HH:mm"))


@cache
def translator(locale: str | None, zone: str | None = None) -> Translator:
    """The (shared, immutable) translator for a Slack locale and time zone."""
    return Translator(supported_locale(locale), zone)


DEFAULT_TRANSLATOR: Final = translator(ENGLISH)
"""English in UTC: what a reader whose language is unknown gets."""
