"""Languages: the catalogs are complete and sound, and every message kind renders in every language.

Three promises, each a test that fails on the first broken translation:

* every msgid in the source is in each catalog, translated (not empty, not fuzzy), with the same
  placeholders and the same Slack mrkdwn markers as the English, and the committed ``.mo`` is the
  compilation of the committed ``.po``;
* every message kind, modal and view, rendered in each language from ordinary, hostile and huge Canvas data,
  passes the Block Kit referee (``check_payload``: Slack's limits, which longer translations hit first, and
  the escaping promise) and looks up no string its catalog lacks;
* Slack locales map to the nearest language, and dates are Babel's for the locale in the reader's zone.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.domain.attendance import Person
from bot.domain.quiet_hours import QuietHours
from bot.engine.canvas_link import _not_configured_page, _page
from bot.engine.digests import _NOT_ALLOWED
from bot.messages import attendance, blocks, digest_blocks, home
from bot.messages.digest_blocks import CourseDigest, DigestRecording
from bot.messages.i18n import (
    SUPPORTED,
    Text,
    Translator,
    accept_language,
    supported_locale,
    translator,
)
from bot.messages.schedule_blocks import Upcoming, host_nudge, reminder
from bot.slack import commands
from tests.blockkit import JOIN, NOW, card, mrkdwn_texts, walk
from tests.unit.test_block_kit_referee import (
    HOSTILE,
    JAVASCRIPT,
    LONG_EMOJI,
    LONG_TITLE,
    MUTED_MANY,
    OAUTH,
    busy_course,
    check_payload,
    digest,
    digest_conference,
    home_state,
    hostile_card,
    hundred_cards,
    recordings,
)
from tools import i18n_catalogs

TRANSLATED = i18n_catalogs.TRANSLATED
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
# What Slack's mrkdwn reacts to: bold, code spans, entities; and the bot's own quoting.
MARKERS = ("*", "`", "&lt;", "&gt;", "&amp;", "\n")


def catalog(locale: str) -> Catalog:
    with i18n_catalogs.po_path(locale).open("rb") as source:
        return read_po(source, locale=locale, domain="confbot")


Key = tuple[str | None, str]
"""A catalog entry: its context (``pgettext``; None for most) and its msgid (the singular of a plural)."""


def key(message: Message) -> Key:
    return message.context, message.id if isinstance(message.id, str) else message.id[0]


def source_ids() -> set[Key]:
    return {key(m) for m in i18n_catalogs.extracted() if m.id}


# --- the catalogs ---------------------------------------------------------------------------------------


def test_english_is_the_source_and_two_languages_are_translated() -> None:
    assert SUPPORTED == ("en", "es", "pt_BR")
    assert TRANSLATED == ("es", "pt_BR")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_msgid_in_the_source_is_translated(locale: str) -> None:
    wanted = source_ids()
    assert len(wanted) > 150, "extraction found too little: are the keywords right?"
    entries = {key(m): m for m in catalog(locale) if m.id}
    missing = sorted(wanted - entries.keys(), key=str)
    assert not missing, f"{locale}: not in the catalog (run tools/i18n_catalogs.py, translate): {missing}"
    stale = sorted(entries.keys() - wanted, key=str)
    assert not stale, f"{locale}: in the catalog but no longer in the source: {stale}"
    for msgid, entry in entries.items():
        assert not entry.fuzzy, f"{locale}: fuzzy translation of {msgid!r}"
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert forms and all(form.strip() for form in forms), f"{locale}: untranslated {msgid!r}"


def _pairs(entry: Message) -> Iterator[tuple[str, str]]:
    """(source, translation) pairs to compare: each plural form against the plural msgid."""
    if isinstance(entry.id, tuple):
        for index, form in enumerate(entry.string):
            yield entry.id[0 if index == 0 else 1], form
    else:
        assert isinstance(entry.string, str)
        yield entry.id, entry.string


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_and_mrkdwn_markers_survive_translation(locale: str) -> None:
    for entry in catalog(locale):
        if not entry.id:
            continue
        for source, translated in _pairs(entry):
            assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(translated)), (
                f"{locale}: placeholders differ in {translated!r} for {source!r}"
            )
            # Nothing else may look like a format directive: a stray % breaks rendering.
            dummy = {name: 1 for name in PLACEHOLDER.findall(source)}
            _ = translated % dummy if dummy else translated  # raises on a broken directive
            for marker in MARKERS:
                assert source.count(marker) == translated.count(marker), (
                    f"{locale}: {marker!r} count differs in {translated!r} for {source!r}"
                )
            assert ("<" in translated) == ("<" in source) and (">" in translated) == (">" in source), (
                f"{locale}: a raw angle bracket is Slack markup: {translated!r}"
            )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_committed_mo_is_the_compiled_po(locale: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalog(locale), use_fuzzy=False)
    committed = i18n_catalogs.po_path(locale).with_suffix(".mo").read_bytes()
    assert committed == compiled.getvalue(), (
        f"{locale}: stale .mo, run `python tools/i18n_catalogs.py compile`"
    )


def test_the_template_lists_what_the_source_says() -> None:
    with i18n_catalogs.TEMPLATE.open("rb") as source:
        template = {key(m) for m in read_po(source) if m.id}
    assert template == source_ids(), "stale bot/locale/confbot.pot: run `python tools/i18n_catalogs.py`"


# --- locales and dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slack", "expected"),
    [
        ("es-ES", "es"),
        ("es-LA", "es"),
        ("es", "es"),
        ("pt-BR", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("fr-FR", "en"),
        ("ja-JP", "en"),
        ("", "en"),
        (None, "en"),
        ("garbage-", "en"),
    ],
)
def test_slack_locales_map_to_the_nearest_supported_language(slack: str | None, expected: str) -> None:
    assert supported_locale(slack) == expected


def test_a_browser_gets_its_preferred_supported_language() -> None:
    assert accept_language("fr-FR,fr;q=0.9,pt-BR;q=0.8,en;q=0.5") == "pt_BR"
    assert accept_language("es-MX") == "es"
    assert accept_language("de, fr") == "en"
    assert accept_language(None) == "en"
    assert accept_language("es;q=0, en") == "en"


def test_dates_are_babels_for_the_locale_in_the_readers_zone() -> None:
    moment = datetime(2024, 3, 12, 12, 0, tzinfo=UTC)
    assert translator("en-US").clock(moment) == "12:00 UTC"
    assert translator("en-US").date_time(moment) == "2024-03-12 12:00 UTC"
    assert translator("en", "America/New_York").day_label(moment) == "Tue 12 Mar 2024, 08:00 EDT"
    assert translator("es-ES", "Europe/Madrid").day_label(moment) == "mar 12 de mar de 2024, 13:00 CET"
    assert translator("pt-BR", "America/Sao_Paulo").date_time(moment) == "12 de mar. de 2024, 09:00 -03"
    assert translator("pt-BR").weekday(0) == "segunda-feira" and translator("es").weekday(6) == "domingo"


def test_a_translator_is_a_value_not_a_global() -> None:
    spanish, english = translator("es-ES"), translator("en-US")
    assert spanish._("Live now") == "En vivo ahora"
    assert english._("Live now") == "Live now"  # unaffected by the Spanish one built before it
    assert Text("`%(got)s` x", got="a") == Text("`%(got)s` x", got="a")


# --- every message kind in every language ---------------------------------------------------------------


class Strict(Translator):
    """A translator that records every msgid its catalog lacks (English needs none: msgids are English)."""

    __slots__ = ("missing",)

    def __init__(self, locale: str, zone: str | None = None) -> None:
        super().__init__(locale, zone)
        self.missing: list[str] = []

    def _check(self, msgid: str, plural: str | None = None) -> None:
        if self.locale == "en":
            return
        table: dict[Any, str] = getattr(self._catalog, "_catalog", {})
        if ((msgid, 0) if plural else msgid) not in table:
            self.missing.append(msgid)

    def _(self, msgid: str, /, **params: object) -> str:
        self._check(msgid)
        return super()._(msgid, **params)

    def ngettext(self, singular: str, plural: str, count: int, /, **params: object) -> str:
        self._check(singular, plural)
        return super().ngettext(singular, plural, count, **params)

    def pgettext(self, context: str, msgid: str, /, **params: object) -> str:
        self._check(f"{context}\x04{msgid}")  # how gettext keys an entry with a context
        return super().pgettext(context, msgid, **params)

    def text(self, message: Text | str) -> str:
        if isinstance(message, Text):
            self._check(message.msgid)
        return super().text(message)


QUIET = QuietHours.parse("22:00", "07:00", "Europe/Paris")


def _report(size: int, came: int, name: str = "Maximiliana Fernández-Oliveira {i}", **options: Any) -> Any:
    crowd = [Person(i, name.format(i=i), i < came) for i in range(size)]
    return attendance.AttendanceReport(7, "Week 3 lecture", "Biology 101", NOW, crowd, **options)


Render = Callable[[Translator], Any]


def upcoming(**overrides: Any) -> Upcoming:
    """Biology 101's seminar, scheduled 10 minutes after NOW, with `overrides`."""
    values: dict[str, Any] = {
        "conference_id": 9,
        "title": "Week 4 seminar",
        "context_name": "Biology 101",
        "start_at": NOW + timedelta(minutes=10),
        "join_url": JOIN,
    }
    values.update(overrides)
    return Upcoming(**values)


HOSTILE_UPCOMING = {"title": f"{HOSTILE} seminar", "context_name": f"{HOSTILE} course"}
HUGE_UPCOMING = {"title": LONG_EMOJI, "context_name": LONG_TITLE, "join_url": JAVASCRIPT}

KINDS: dict[str, tuple[Render, str]] = {
    "alert_started": (lambda t: blocks.live_alert(card(), NOW, t=t), "message"),
    "alert_started_no_start_time": (lambda t: blocks.live_alert(card(started_at=None), NOW, t=t), "message"),
    "alert_started_hostile": (lambda t: blocks.live_alert(hostile_card(), NOW, t=t), "message"),
    "alert_started_huge": (
        lambda t: blocks.live_alert(card(title=LONG_EMOJI, context_name=LONG_TITLE), NOW, t=t),
        "message",
    ),
    "alert_started_untitled": (
        lambda t: blocks.live_alert(card(title="", conference_type=None), NOW, t=t),
        "message",
    ),
    "alert_live_again": (lambda t: blocks.live_alert(card(again=True), NOW, t=t), "message"),
    "alert_live_again_no_join": (
        lambda t: blocks.live_alert(card(again=True, join_url=JAVASCRIPT), NOW, t=t),
        "message",
    ),
    "alert_live_again_hostile_huge": (
        lambda t: blocks.live_alert(
            card(again=True, title=f"{HOSTILE} {LONG_EMOJI}", context_name=f"{HOSTILE} {LONG_TITLE}"),
            NOW,
            t=t,
        ),
        "message",
    ),
    "alert_ended": (lambda t: blocks.ended_alert(card(ended_at=NOW), NOW, t=t), "message"),
    "alert_ended_no_start": (
        lambda t: blocks.ended_alert(card(started_at=None, ended_at=NOW), NOW, t=t),
        "message",
    ),
    "alert_ended_long_ago": (
        lambda t: blocks.ended_alert(card(started_at=NOW - timedelta(days=3), ended_at=NOW), NOW, t=t),
        "message",
    ),
    "relink": (lambda t: blocks.relink_prompt(OAUTH, "token rejected", t=t), "message"),
    "relink_canvas_words": (lambda t: blocks.relink_prompt(None, f"Canvas said {HOSTILE}", t=t), "message"),
    "recordings_none": (lambda t: blocks.recording_ready(card(), t=t), "message"),
    "recordings_one": (lambda t: blocks.recording_ready(card(recordings=recordings(1)), t=t), "message"),
    "recordings_many_untitled": (
        lambda t: blocks.recording_ready(card(recordings=recordings(80, title="")), t=t),
        "message",
    ),
    "attendance_report": (lambda t: attendance.attendance_message(_report(5, 3), t=t), "message"),
    "attendance_report_500": (lambda t: attendance.attendance_message(_report(500, 320), t=t), "message"),
    "attendance_report_hostile_later_session": (
        lambda t: attendance.attendance_message(_report(40, 10, f"{HOSTILE} {{i}}", again=True), t=t),
        "message",
    ),
    "missed_recording": (
        lambda t: attendance.missed_recording(card(recordings=recordings(2)), NOW, t=t),
        "message",
    ),
    "missed_recording_many_hostile": (
        lambda t: attendance.missed_recording(
            card(title=HOSTILE, recordings=recordings(80, title="")), NOW, t=t
        ),
        "message",
    ),
    "quiet_summary": (
        lambda t: blocks.quiet_summary([card(), card(conference_id=2, ended_at=NOW)], NOW, t=t),
        "message",
    ),
    "quiet_summary_100": (lambda t: blocks.quiet_summary(hundred_cards(), NOW, t=t), "message"),
    "reminder": (lambda t: reminder(upcoming(), 10, NOW, t=t), "message"),
    "reminder_one_minute_untitled": (
        lambda t: reminder(upcoming(title="", start_at=NOW + timedelta(minutes=1)), 1, NOW, t=t),
        "message",
    ),
    "reminder_hostile": (lambda t: reminder(upcoming(**HOSTILE_UPCOMING), 10, NOW, t=t), "message"),
    "reminder_huge_a_day_ahead": (
        lambda t: reminder(upcoming(**HUGE_UPCOMING, start_at=NOW + timedelta(days=1)), 1440, NOW, t=t),
        "message",
    ),
    "host_nudge_one_invited": (
        lambda t: host_nudge(upcoming(start_at=NOW - timedelta(minutes=5)), 1, NOW, t=t),
        "message",
    ),
    "host_nudge_many_invited": (
        lambda t: host_nudge(upcoming(start_at=NOW - timedelta(minutes=5)), 240, NOW, t=t),
        "message",
    ),
    "host_nudge_hostile_huge": (
        lambda t: host_nudge(upcoming(**{**HUGE_UPCOMING, "title": HOSTILE}), 0, NOW, t=t),
        "message",
    ),
    "slash_live": (lambda t: blocks.live_list([card()], NOW, t=t), "message"),
    "slash_live_empty": (lambda t: blocks.live_list([], NOW, t=t), "message"),
    "slash_all_100": (lambda t: blocks.all_list(hundred_cards(), NOW, t=t), "message"),
    "slash_all_empty": (lambda t: blocks.all_list([], NOW, t=t), "message"),
    "slash_help": (lambda t: blocks.help_message(t=t), "message"),
    "slash_link_oauth": (lambda t: blocks.link_instructions(OAUTH, t=t), "message"),
    "slash_link_token": (lambda t: blocks.link_instructions(None, t=t), "message"),
    "slash_status_unlinked": (lambda t: blocks.status_message(None, None, False, False, NOW, t=t), "message"),
    "slash_status_linked": (
        lambda t: blocks.status_message(HOSTILE, NOW - timedelta(minutes=3), True, False, NOW, t=t),
        "message",
    ),
    "slash_status_relink_old_check": (
        lambda t: blocks.status_message("Ada", NOW - timedelta(days=2), False, True, NOW, t=t),
        "message",
    ),
    "linked_confirmation": (lambda t: blocks.linked_confirmation("Ada &amp; Co", t=t), "message"),
    "token_modal": (lambda t: blocks.token_modal(t=t), "modal"),
    "token_modal_settings_link": (
        lambda t: blocks.token_modal(settings_url="https://canvas.test/profile/settings", t=t),
        "modal",
    ),
    "home_unlinked": (
        lambda t: home.home_view(home_state(canvas_name=None, live=()), NOW, None, t=t),
        "home",
    ),
    "home_unlinked_oauth": (
        lambda t: home.home_view(home_state(canvas_name=None, live=()), NOW, OAUTH, t=t),
        "home",
    ),
    "home_linked": (lambda t: home.home_view(home_state(), NOW, OAUTH, t=t), "home"),
    "home_reminders_on": (
        lambda t: home.home_view(home_state(reminder_minutes=15), NOW, OAUTH, t=t),
        "home",
    ),
    "home_nothing_live": (
        lambda t: home.home_view(home_state(live=(), alerts_on=False), NOW, None, t=t),
        "home",
    ),
    "home_everything": (
        lambda t: home.home_view(
            home_state(
                canvas_name=LONG_TITLE,
                muted=MUTED_MANY,
                quiet=QUIET,
                quiet_start="22:00",
                quiet_end="07:00",
                live=hundred_cards(),
            ),
            NOW,
            JAVASCRIPT,
            t=t,
        ),
        "home",
    ),
    "home_relink": (
        lambda t: home.home_view(home_state(needs_relink=True, live=()), NOW, OAUTH, t=t),
        "home",
    ),
    "home_live_error": (
        lambda t: home.home_view(
            home_state(live=(), live_error=Text("Canvas is not answering right now.")), NOW, None, t=t
        ),
        "home",
    ),
    "home_quiet_half_set": (
        lambda t: home.home_view(home_state(quiet_start="22:00"), NOW, None, t=t),
        "home",
    ),
    "digest_daily": (
        lambda t: digest_blocks.digest_message(
            digest(
                (
                    CourseDigest(
                        "Biology 101",
                        live=(digest_conference(1),),
                        held=(digest_conference(2), digest_conference(3)),
                        recordings=(
                            DigestRecording("Part 1", "Lecture 2", JOIN, 42),
                            DigestRecording("", "Lecture 3", None, None),
                        ),
                    ),
                    CourseDigest("Chemistry"),
                    CourseDigest("Physics", problem="Canvas no longer knows this course."),
                    CourseDigest("Music", problem=_NOT_ALLOWED),
                )
            ),
            NOW,
            t=t,
        ),
        "message",
    ),
    "digest_weekly_late_busy": (
        lambda t: digest_blocks.digest_message(
            digest(tuple(busy_course(i, f"{HOSTILE} {i}") for i in range(30)), late=True, weekly=True),
            NOW,
            t=t,
        ),
        "message",
    ),
    "digest_no_courses": (lambda t: digest_blocks.digest_message(digest(()), NOW, t=t), "message"),
    "digest_all_quiet": (
        lambda t: digest_blocks.digest_message(digest((CourseDigest("A"), CourseDigest(""))), NOW, t=t),
        "message",
    ),
}

HELP_INPUTS = (
    "frobnicate",
    "live now",
    "course",
    "course ²",
    "digest",
    "digest off now",
    "digest daily",
    "digest daily 9am",
    "digest daily 25:00",
    "digest daily 08:00 Mars/Olympus",
    "digest weekly",
    "digest weekly someday 08:00",
    "digest hourly",
    "alerts",
    "alerts maybe",
    "language fr",
    "remind",
    "remind 0",
    "remind 1441",
    "remind ten",
    "remind ²",
    "attendance",
    "attendance maybe",
    "missed yes",
)


def _check_in(locale: str, render: Render, surface: str) -> tuple[Any, Strict]:
    t = Strict(locale, "America/Bogota")
    payload = render(t)
    check_payload(dict(payload), surface)  # type: ignore[arg-type]
    assert not t.missing, f"{locale}: rendered strings the catalog lacks: {t.missing}"
    return payload, t


@pytest.mark.parametrize("locale", SUPPORTED)
@pytest.mark.parametrize("kind", KINDS)
def test_every_message_kind_renders_within_slacks_limits_in_every_language(locale: str, kind: str) -> None:
    render, surface = KINDS[kind]
    _check_in(locale, render, surface)


@pytest.mark.parametrize("locale", SUPPORTED)
@pytest.mark.parametrize("typed", HELP_INPUTS)
def test_every_slash_error_renders_translated(locale: str, typed: str) -> None:
    parsed = commands.parse(typed)
    assert isinstance(parsed, commands.Help) and parsed.reason is not None
    payload, _ = _check_in(locale, lambda t: blocks.help_message(parsed.reason, t=t), "message")
    if locale != "en":
        assert payload["text"] != parsed.reason.english(), "the reason must be translated"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_catalog_message_fits_a_reply_with_long_values(locale: str) -> None:
    """The replies built in handlers (`simple(t._(...))`): each msgid with long values still fits."""
    t = translator(locale)
    for entry in catalog(locale):
        if not entry.id or isinstance(entry.id, tuple):
            continue
        values = {name: "x" * 200 for name in PLACEHOLDER.findall(entry.id)}
        values.update({name: 7 for name in re.findall(r"%\((\w+)\)d", entry.id)})
        text = t.pgettext(entry.context, entry.id, **values) if entry.context else t._(entry.id, **values)
        assert text != entry.id or entry.id == entry.string
        if text.strip():
            check_payload(dict(blocks.simple(text)), "message")


ENGLISH_WORDS = re.compile(r"\b(the|and|your|you|is|are|now|Join|Ended|ended|live|with|this|not|yet|ago)\b")


def _visible_words(payload: Any) -> str:
    """Text a reader sees, minus code spans (commands are typed in English), links and dates."""
    texts = [
        *mrkdwn_texts(payload),
        *(n["text"] for n in walk(payload.get("blocks")) if n.get("type") == "plain_text"),
    ]
    joined = "\n".join(texts)
    return re.sub(r"`[^`]*`|<[^>]*>", " ", joined)


@pytest.mark.parametrize("locale", TRANSLATED)
@pytest.mark.parametrize(
    "kind",
    [
        "alert_started",
        "alert_live_again",
        "alert_ended",
        "reminder",
        "host_nudge_many_invited",
        "relink",
        "recordings_one",
        "attendance_report",
        "missed_recording",
        "quiet_summary",
        "slash_help",
        "slash_status_linked",
        "home_linked",
        "home_reminders_on",
        "home_everything",
        "token_modal",
        "digest_daily",
        "slash_link_token",
    ],
)
def test_no_english_is_left_in_a_translated_message(locale: str, kind: str) -> None:
    render, surface = KINDS[kind]
    payload, _ = _check_in(locale, render, surface)
    canvas_words = {
        "Week",
        "lecture",
        "Biology",
        "Lecture",
        "Part",
        "Ada",
        "Lovelace",
        "Chemistry",
        "Physics",
        "Music",
        "seminar",
    }
    left = [w for w in ENGLISH_WORDS.findall(_visible_words(payload)) if w not in canvas_words]
    assert not left, f"{locale} {kind}: English left: {left}"


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_oauth_result_page_is_in_the_readers_language(locale: str) -> None:
    t = Strict(locale)
    page = _page(
        t,
        t._("Canvas linked"),
        t._("Linked as %(name)s. You can close this tab and go back to Slack.", name="<b>Ada</b>"),
    )
    body = bytes(page.body).decode()
    assert f"lang='{locale.replace('_', '-')}'" in body
    assert "&lt;b&gt;Ada&lt;/b&gt;" in body and "<b>Ada" not in body
    assert not t.missing
    assert ("Canvas vinculado" in body) == (locale != "en")


@pytest.mark.parametrize("locale", SUPPORTED)
def test_the_not_configured_page_is_in_the_readers_language(locale: str) -> None:
    """A key without a scope Canvas needs: the person linking learns it is not their fault, in their
    language (the browser's when Canvas sent no state, the Slack user's after it)."""
    t = Strict(locale)
    body = bytes(_not_configured_page(t).body).decode()
    assert not t.missing
    assert "/conferences link" in body
    assert ("operator has been told" in body) == (locale == "en")
