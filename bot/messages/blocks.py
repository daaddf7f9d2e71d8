"""Block Kit rendering for every message and view the bot sends.

Pure functions from plain dataclasses to plain dicts, so the layout (and Slack's hard limits) can be tested
without a Slack server. Rules kept everywhere here:

* the top-level ``text`` is always set, because notifications and screen readers show only that;
* every Canvas-origin string placed in mrkdwn goes through :func:`escape` (titles like ``<!channel>``);
* plain_text fields (headers, buttons) stay raw, Slack never parses them;
* Slack's limits are enforced by construction, so a huge course never turns into ``invalid_blocks``;
* every word shown goes through the reader's :class:`~bot.messages.i18n.Translator` (``t``), passed in by the
  caller that knows the reader (English when omitted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict

from bot.domain.models import past_live_window
from bot.messages.i18n import DEFAULT_TRANSLATOR, N_, Text, Translator
from bot.messages.mrkdwn import (
    MAX_LINK_URL,
    bare_link,
    escape,
    fitting_link,
    link,
    plain_text,
    safe_link_url,
    slack_length,
    truncate,
)

Block = dict[str, Any]


class Message(TypedDict):
    """Keyword arguments for ``chat.postMessage`` / ``chat.update`` / ``respond``."""

    text: str
    blocks: list[Block]


# Slack limits (https://api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_SURFACE_BLOCKS = 100  # App Home and modals
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_URL = MAX_LINK_URL
MAX_CONTEXT_ELEMENTS = 10
MAX_MODAL_TITLE = 24
# Not a Slack limit: keeps notification text short enough to read in a banner.
MAX_FALLBACK_TEXT = 1000
# Per-card caps in lists, so one absurd title cannot crowd out the course name or the other cards.
_LIST_TITLE_LIMIT = 300
_LIST_CONTEXT_LIMIT = 200

# Stable action ids: handlers in the app are registered against these.
ACTION_JOIN = "join_conference"
ACTION_OPEN = "open_conference"
ACTION_CONNECT = "connect_canvas"
ACTION_RELINK = "relink_canvas"
ACTION_OPEN_TOKEN_MODAL = "open_token_modal"
TOKEN_MODAL_CALLBACK_ID = "link_token_modal"
TOKEN_BLOCK_ID = "token_block"
TOKEN_ACTION_ID = "token"

UNTITLED = N_("Untitled conference")
_TYPE_LABELS = {
    "BigBlueButton": "BigBlueButton",
    "AdobeConnect": "Adobe Connect",
    "Wimba": "Wimba",
}

Status = Literal["live", "ended", "not_started"]


@dataclass(frozen=True, slots=True)
class RecordingLink:
    title: str
    url: str
    duration_minutes: int | None


@dataclass(frozen=True, slots=True)
class ConferenceCard:
    """What a message needs to know about one conference; strings are raw Canvas text."""

    conference_id: int
    title: str
    context_name: str
    conference_type: str | None
    started_at: datetime | None
    ended_at: datetime | None
    join_url: str
    recordings: tuple[RecordingLink, ...] = ()
    again: bool = False  # a later session (restarted, reused): "live again"


# --- small builders -------------------------------------------------------------------------------------


def _pt(text: str | None, limit: int) -> Block:
    return {"type": "plain_text", "text": plain_text(text, limit), "emoji": True}


def _md(text: str, limit: int = MAX_SECTION_TEXT) -> Block:
    return {"type": "mrkdwn", "text": truncate(text, limit)}


def header_block(text: str) -> Block:
    return {"type": "header", "text": _pt(text, MAX_HEADER_TEXT)}


def section_block(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": _md(text)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context_block(*texts: str) -> Block:
    return {"type": "context", "elements": [_md(t) for t in texts[:MAX_CONTEXT_ELEMENTS]]}


def actions_block(*elements: Block | None) -> list[Block]:
    """An actions block, or nothing when every element was dropped (Slack rejects an empty one)."""
    kept = [e for e in elements if e is not None]
    return [{"type": "actions", "elements": kept}] if kept else []


def button_element(
    text: str,
    action_id: str,
    *,
    url: str | None = None,
    value: str | None = None,
    primary: bool = False,
) -> Block:
    button: Block = {"type": "button", "text": _pt(text, MAX_BUTTON_TEXT), "action_id": action_id}
    if url is not None:
        button["url"] = url
    if value is not None:
        button["value"] = value
    if primary:
        button["style"] = "primary"
    return button


def link_button(
    text: str, action_id: str, url: str, *, value: str | None = None, primary: bool = True
) -> Block | None:
    """A link button, or None when the URL may not be a link (see :func:`safe_link_url`: not absolute
    http(s), a mention or script in disguise, or over Slack's 3000 characters)."""
    safe = safe_link_url(url, max_length=MAX_BUTTON_URL)
    if safe is None:
        return None
    return button_element(text, action_id, url=safe, value=value, primary=primary)


def _message(text: str, blocks: list[Block]) -> Message:
    return {"text": truncate(text, MAX_FALLBACK_TEXT) or " ", "blocks": blocks}


def fit_blocks(
    head: list[Block],
    items: Sequence[Block],
    limit: int = MAX_MESSAGE_BLOCKS,
    *,
    t: Translator = DEFAULT_TRANSLATOR,
) -> list[Block]:
    """``head`` plus as many ``items`` as fit under ``limit``, ending with "…and N more" when cut."""
    room = limit - len(head)
    if len(items) <= room:
        return [*head, *items]
    shown = max(room - 1, 0)
    return [*head, *items[:shown], context_block(t._("…and %(count)d more", count=len(items) - shown))]


# --- time and labels ------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """Canvas timestamps are UTC; a naive datetime is taken to be UTC rather than local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_duration(delta: timedelta, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    """Human duration: "42 min", "1 h 5 min", "2 h"; under a minute is "less than a minute"."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes == 0:
        return t._("less than a minute")
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return t._("%(minutes)d min", minutes=minutes)
    if minutes == 0:
        return t._("%(hours)d h", hours=hours)
    return t._("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)


def format_ago(moment: datetime, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    """ "N min ago" relative to ``now`` ("just now" under a minute; clock skew never goes negative)."""
    delta = _utc(now) - _utc(moment)
    if delta < timedelta(minutes=1):
        return t._("just now")
    return t._("%(duration)s ago", duration=format_duration(delta, t=t))


def slack_date(moment: datetime, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    """``<!date^…>`` markup: Slack renders it in each reader's own time zone and language; the fallback
    (shown where Slack cannot, e.g. some notifications) is formatted by Babel for the reader's locale in
    their time zone (UTC when unknown)."""
    moment = _utc(moment)
    if abs(_utc(now) - moment) < timedelta(hours=20):
        token, fallback = "{time}", t.clock(moment)
    else:
        token, fallback = "{date_short_pretty} {time}", t.date_time(moment)
    # A "|" or ">" in the fallback would end the token early; no pattern of ours makes one, but be sure.
    fallback = fallback.replace("|", "/").replace(">", "").replace("<", "")
    return f"<!date^{int(moment.timestamp())}^{token}|{fallback}>"


def type_label(conference_type: str | None, *, t: Translator = DEFAULT_TRANSLATOR) -> str:
    """Friendly name of a conference provider; unknown providers are shown as Canvas names them."""
    if not conference_type or not conference_type.strip():
        return t._("Conference")
    return _TYPE_LABELS.get(conference_type, conference_type.strip())


def conference_status(card: ConferenceCard, now: datetime) -> Status:
    """Status as Canvas itself decides it (see CANVAS_AND_SLACK_FACTS: live window of 24 h)."""
    if card.started_at is None:
        return "not_started"
    now = _utc(now)
    if card.ended_at is not None and _utc(card.ended_at) <= now:
        return "ended"
    if past_live_window(_utc(card.started_at), now):
        return "ended"
    return "live"


def _title(card: ConferenceCard, t: Translator) -> str:
    return card.title.strip() or t._(UNTITLED)


def _course_md(card: ConferenceCard, t: Translator, limit: int = _LIST_CONTEXT_LIMIT) -> str:
    return truncate(escape(card.context_name.strip() or t._("Unknown course")), limit)


def _title_md(card: ConferenceCard, t: Translator, limit: int = _LIST_TITLE_LIMIT) -> str:
    return truncate(escape(_title(card, t)), limit)


def _started_phrase(card: ConferenceCard, now: datetime, t: Translator, *, sentence: bool = False) -> str:
    """ "started 13:48 (12 min ago)"; ``sentence``: the capitalised form that opens a line. Two msgids
    rather than upper-casing the first letter, which is not how every language writes a sentence."""
    if card.started_at is None:
        return t._("Live now") if sentence else t._("live now")
    date, ago = slack_date(card.started_at, now, t=t), format_ago(card.started_at, now, t=t)
    if sentence:
        return t._("Started %(date)s (%(ago)s)", date=date, ago=ago)
    return t._("started %(date)s (%(ago)s)", date=date, ago=ago)


def _lasted(card: ConferenceCard, now: datetime, t: Translator) -> str | None:
    """How long the session lasted, or None: without a start time Canvas gives no duration."""
    if card.started_at is None:
        return None
    end = card.ended_at if card.ended_at is not None else now
    return format_duration(_utc(end) - _utc(card.started_at), t=t)


def _join_button(card: ConferenceCard, t: Translator) -> Block | None:
    return link_button(t._("Join"), ACTION_JOIN, card.join_url, value=str(card.conference_id))


# --- conference alerts ----------------------------------------------------------------------------------


def live_alert(card: ConferenceCard, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """The DM or channel post sent when a conference goes live."""
    title = _title(card, t)
    body = f"*{_course_md(card, t, 1000)}* · {escape(type_label(card.conference_type, t=t))}\n"
    body += _started_phrase(card, now, t, sentence=True)
    course = escape(card.context_name)
    join = bare_link(card.join_url)
    # Whole sentences per case (not "again" spliced in): word order differs between languages.
    if card.again and join:
        text = t._(
            "%(title)s is live again in %(course)s — join: %(link)s",
            title=escape(title),
            course=course,
            link=join,
        )
    elif card.again:
        text = t._("%(title)s is live again in %(course)s", title=escape(title), course=course)
    elif join:
        text = t._(
            "%(title)s is live in %(course)s — join: %(link)s", title=escape(title), course=course, link=join
        )
    else:
        text = t._("%(title)s is live in %(course)s", title=escape(title), course=course)
    if card.again:
        header = t._("🔴 Live again: %(title)s", title=title)
    else:
        header = t._("🔴 Live now: %(title)s", title=title)
    blocks = [
        header_block(header),
        section_block(body),
        *actions_block(_join_button(card, t)),
    ]
    return _message(text, blocks)


def ended_alert(card: ConferenceCard, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """Replacement for a live alert (``chat.update``) once the conference is over: no Join button."""
    title = _title(card, t)
    lasted = _lasted(card, now, t)
    ended = t._("Ended · lasted %(duration)s", duration=lasted) if lasted else t._("Ended")
    body = f"*{_course_md(card, t, 1000)}* · {escape(type_label(card.conference_type, t=t))}\n{ended}"
    names = {"title": escape(title), "course": escape(card.context_name)}
    if lasted:
        text = t._("%(title)s in %(course)s has ended (lasted %(duration)s)", duration=lasted, **names)
    else:
        text = t._("%(title)s in %(course)s has ended", **names)
    return _message(text, [header_block(t._("Ended: %(title)s", title=title)), section_block(body)])


MAX_RECORDING_TITLE = 200  # a recording's title in its line; the link keeps the rest of the room


def _recording_line(index: int, recording: RecordingLink, t: Translator) -> str:
    label = truncate(recording.title.strip(), MAX_RECORDING_TITLE) or t._(
        "Recording %(number)d", number=index
    )
    shown = fitting_link(recording.url, label, MAX_SECTION_TEXT // 2)
    if recording.duration_minutes is not None:
        shown += f" · {format_duration(timedelta(minutes=recording.duration_minutes), t=t)}"
    return truncate(f"• {shown}", MAX_SECTION_TEXT)


def _chunk_lines(lines: Iterable[str], limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into as few section texts as possible, each within ``limit``."""
    chunks: list[str] = []
    for line in lines:
        if chunks and slack_length(chunks[-1]) + 1 + slack_length(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def recording_sections(card: ConferenceCard, *, t: Translator = DEFAULT_TRANSLATOR) -> list[Block]:
    """One line per recording (its safe link and duration), in as few sections as fit."""
    lines = [_recording_line(i, r, t) for i, r in enumerate(card.recordings, start=1)]
    return [section_block(chunk) for chunk in _chunk_lines(lines)]


def recording_ready(card: ConferenceCard, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """Thread reply under the alert, listing the recordings with their durations."""
    title = _title(card, t)
    count = len(card.recordings)
    intro = f"🎞️ *{_title_md(card, t, 1000)}* · {_course_md(card, t, 1000)}"
    if count == 0:
        none_yet = t._("No recordings are available yet.")
        head = [section_block(f"{intro}\n{none_yet}")]
        return _message(t._("No recordings of %(title)s yet", title=escape(title)), head)
    ready = t.ngettext("%(count)d recording ready:", "%(count)d recordings ready:", count)
    head = [section_block(f"{intro}\n{ready}")]
    body = recording_sections(card, t=t)
    text = t.ngettext(
        "%(count)d recording ready for %(title)s in %(course)s",
        "%(count)d recordings ready for %(title)s in %(course)s",
        count,
        title=escape(title),
        course=escape(card.context_name),
    )
    return _message(text, fit_blocks(head, body, t=t))


# --- lists for /conferences -----------------------------------------------------------------------------


def list_entry(card: ConferenceCard, now: datetime, *, t: Translator = DEFAULT_TRANSLATOR) -> Block:
    status = conference_status(card, now)
    details = [_course_md(card, t), escape(type_label(card.conference_type, t=t))]
    accessory: Block | None
    if status == "live":
        details.append(f"🔴 {_started_phrase(card, now, t)}")
        accessory = _join_button(card, t)
    elif status == "not_started":
        details.append(t._("not started"))
        accessory = link_button(
            t._("Open"), ACTION_OPEN, card.join_url, value=str(card.conference_id), primary=False
        )
    else:
        lasted = _lasted(card, now, t)
        details.append(t._("ended · lasted %(duration)s", duration=lasted) if lasted else t._("ended"))
        accessory = None
    return section_block(f"*{_title_md(card, t)}*\n" + " · ".join(details), accessory)


def _list_text(heading: str, cards: Sequence[ConferenceCard], t: Translator) -> str:
    titles = ", ".join(escape(_title(c, t)) for c in cards[:10])
    if len(cards) > 10:
        titles += t._(" and %(count)d more", count=len(cards) - 10)
    return t._("%(heading)s (%(count)d): %(titles)s", heading=heading, count=len(cards), titles=titles)


def live_list(
    cards: Sequence[ConferenceCard],
    now: datetime,
    *,
    heading: str | None = None,
    empty_text: str | None = None,
    t: Translator = DEFAULT_TRANSLATOR,
) -> Message:
    """Ephemeral reply to ``/conferences``: one section per conference, each with a Join button.

    Any number of cards fits: as many as Slack's 50-block limit allows, then "…and N more". ``heading``
    and ``empty_text`` are already in the reader's language ("Live now" and its empty text by default).
    """
    heading = heading if heading is not None else t._("Live now")
    empty_text = empty_text if empty_text is not None else t._("No conferences are live right now.")
    head = [header_block(heading)]
    if not cards:
        return _message(empty_text, [*head, section_block(empty_text)])
    entries = [list_entry(card, now, t=t) for card in cards]
    return _message(_list_text(heading, cards, t), fit_blocks(head, entries, t=t))


def all_list(
    cards: Sequence[ConferenceCard],
    now: datetime,
    *,
    heading: str | None = None,
    empty_text: str | None = None,
    t: Translator = DEFAULT_TRANSLATOR,
) -> Message:
    """Every conference with its status; live ones first, then not started, then ended."""
    order: dict[Status, int] = {"live": 0, "not_started": 1, "ended": 2}
    ordered = sorted(cards, key=lambda c: order[conference_status(c, now)])
    return live_list(
        ordered,
        now,
        heading=heading if heading is not None else t._("Your conferences"),
        empty_text=empty_text if empty_text is not None else t._("You have no conferences in Canvas."),
        t=t,
    )


def quiet_summary(
    cards: Sequence[ConferenceCard], now: datetime, *, t: Translator = DEFAULT_TRANSLATOR
) -> Message:
    """The one DM that replaces the alerts held during a user's quiet hours."""
    return live_list(cards, now, heading=t._("While you were in quiet hours"), t=t)


# --- help, linking, status ------------------------------------------------------------------------------

COMMAND_HELP: tuple[tuple[str, str], ...] = (
    ("live", N_("conferences live right now (same as no argument)")),
    ("all", N_("all your conferences: live, not started and ended")),
    ("course <id>", N_("conferences of one course")),
    ("link", N_("connect your Canvas account")),
    ("unlink", N_("disconnect your Canvas account and forget its token")),
    ("status", N_("your link, last check and alert settings")),
    ("subscribe <course>", N_("post this course's live conferences in this channel (teachers/TAs)")),
    ("unsubscribe <course>", N_("stop posting a course in this channel")),
    ("subscriptions", N_("courses this channel is subscribed to")),
    ("digest daily HH:MM [ZONE]", N_("a daily summary at that time (24-hour clock, channel creator's zone)")),
    ("digest weekly DAY HH:MM [ZONE]", N_("a weekly summary, e.g. `digest weekly mon 08:30 Europe/Paris`")),
    ("digest off", N_("stop summaries")),
    ("mute <course>", N_("no alerts for one course")),
    ("unmute <course>", N_("alerts for that course again")),
    ("alerts on|off", N_("turn all your live alerts on or off")),
    ("language <code>", N_("this channel's language for alerts and digests: en, es or pt-BR")),
    ("remind <minutes>|off", N_("a DM that many minutes before a scheduled conference starts")),
    ("agenda HH:MM|off", N_("a DM each morning at that time with the day's scheduled conferences")),
    ("attendance on|off", N_("who attended, with a CSV, after each session of a course you teach")),
    ("missed on|off", N_("the recording by DM when you missed a session you were invited to")),
    ("help", N_("this message")),
)
"""Subcommands (typed as shown, in every language) and what each does (translated)."""


def help_message(
    reason: Text | str | None = None, *, command: str = "/conferences", t: Translator = DEFAULT_TRANSLATOR
) -> Message:
    """Every subcommand with one line each; ``reason`` (why help is shown) comes first, escaped."""
    # Usages such as "course <id>" must be escaped too, or Slack parses "<id>" as a link.
    lines = [
        f"`{escape(f'{command} {usage}')}` — {escape(t._(description))}"
        for usage, description in COMMAND_HELP
    ]
    shown = escape(t.text(reason)) if reason else ""
    blocks: list[Block] = []
    if shown:
        blocks.append(section_block(shown))
    blocks.append(section_block(t._("*What I can do*") + "\n" + "\n".join(lines)))
    text = shown or t._("How to use %(command)s", command=command)
    return _message(text, blocks)


def link_instructions(link_url: str | None, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """How to connect Canvas: an OAuth button when the developer key is configured, otherwise a token."""
    intro = t._("Connect your Canvas account so I can tell you when one of your conferences goes live.")
    if link_url:
        button = link_button(t._("Connect Canvas"), ACTION_CONNECT, link_url)
        if button is not None:
            return _message(intro, [section_block(intro), *actions_block(button)])
    body = (
        intro
        + "\n"
        + t._(
            "Click *Link with a token* and paste a Canvas access token "
            "(in Canvas: *Account &gt; Settings &gt; New access token*)."
        )
    )
    return _message(
        intro,
        [
            section_block(body),
            *actions_block(button_element(t._("Link with a token"), ACTION_OPEN_TOKEN_MODAL)),
        ],
    )


def token_modal(
    callback_id: str = TOKEN_MODAL_CALLBACK_ID,
    *,
    settings_url: str | None = None,
    t: Translator = DEFAULT_TRANSLATOR,
) -> Block:
    """Modal view asking for a Canvas personal access token.

    Slack has no password input type: the token is visible while it is typed. It is therefore never put
    back into any view (no ``initial_value``), message or log; the submission handler stores it encrypted.
    """
    where = t._("*Account &gt; Settings*")
    if settings_url:
        where = link(settings_url, t._("Account > Settings"))
    steps = t._(
        "In Canvas, open %(where)s, scroll to *Approved Integrations* and click *+ New access token*. "
        "Give it a purpose such as “Slack alerts”, generate it, copy it and paste it below.",
        where=where,
    )
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _pt(t._("Link Canvas"), MAX_MODAL_TITLE),
        "submit": _pt(t._("Link"), MAX_MODAL_TITLE),
        "close": _pt(t._("Cancel"), MAX_MODAL_TITLE),
        "blocks": [
            section_block(steps),
            {
                "type": "input",
                "block_id": TOKEN_BLOCK_ID,
                "label": _pt(t._("Canvas access token"), 2000),
                "hint": _pt(
                    t._("Slack shows what you type; the token is stored encrypted and never shown again."),
                    2000,
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": TOKEN_ACTION_ID,
                    "placeholder": _pt(t._("Paste your token here"), 150),
                },
            },
        ],
    }


RELINK_REASONS = (
    N_("token rejected"),
    N_("Canvas rejected the token"),
    N_("Canvas rejected the access token"),
)
"""Reasons the bot itself stores for a dead link: shown translated. Any other (Canvas's own words) is
shown as Canvas gave it."""


def relink_prompt(link_url: str | None, reason: Text | str, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """DM sent once when the stored Canvas credentials stop working (revoked, expired...)."""
    shown = t.text(reason)
    text = t._(
        "Your Canvas link stopped working (%(reason)s). Relink to keep getting alerts.", reason=escape(shown)
    )
    button = link_button(t._("Relink"), ACTION_RELINK, link_url) if link_url else None
    if button is None:
        button = button_element(t._("Relink"), ACTION_OPEN_TOKEN_MODAL, primary=True)
    return _message(text, [section_block(f"⚠️ {text}"), *actions_block(button)])


def status_message(
    canvas_name: str | None,
    last_poll: datetime | None,
    alerts_on: bool,
    needs_relink: bool,
    now: datetime,
    *,
    checked_within: timedelta | None = None,
    t: Translator = DEFAULT_TRANSLATOR,
) -> Message:
    """Answer to ``/conferences status``. `checked_within`: the poll interval, when polling is known to go
    on (`domain.buckets.recently_checked`: a live replica leases the user's bucket, no error recorded);
    the stored success is then older than the last check, so the reader is told the interval instead."""
    if canvas_name is None:
        linked = t._("not linked — use `/conferences link`")
    elif needs_relink:
        linked = t._(
            "⚠️ link to %(name)s stopped working — use `/conferences link` to relink", name=escape(canvas_name)
        )
    else:
        linked = t._("linked as %(name)s", name=escape(canvas_name))
    checked = t._("not yet")
    if checked_within is not None:
        period = format_duration(max(checked_within, timedelta(minutes=1)), t=t)
        checked = t._("within the last %(period)s", period=period)
    elif last_poll is not None:
        checked = f"{slack_date(last_poll, now, t=t)} ({format_ago(last_poll, now, t=t)})"
    alerts = t._("on") if alerts_on else t._("off — use `/conferences alerts on`")
    rows = [(t._("Canvas"), linked), (t._("Last checked"), checked), (t._("Alerts"), alerts)]
    text = " · ".join(t._("%(label)s: %(value)s", label=label, value=value) for label, value in rows)
    return _message(
        text,
        [
            section_block(
                "\n".join(t._("*%(label)s:* %(value)s", label=label, value=value) for label, value in rows)
            )
        ],
    )


def simple(text: str) -> Message:
    """A one-section message. ``text`` is mrkdwn written by us (already in the reader's language): escape
    any Canvas strings inside it."""
    return _message(text, [section_block(text or " ")])


def linked_confirmation(canvas_name_md: str, *, t: Translator = DEFAULT_TRANSLATOR) -> Message:
    """The DM after a successful link (token modal or OAuth). ``canvas_name_md`` is already escaped."""
    return simple(
        t._(
            "Linked to Canvas as *%(name)s*. I will tell you when your conferences go live.",
            name=canvas_name_md,
        )
    )
