"""Block Kit rendering for every message and view the bot sends.

Pure functions from plain dataclasses to plain dicts, so the layout (and Slack's hard limits) can be tested
without a Slack server. Rules kept everywhere here:

* the top-level ``text`` is always set, because notifications and screen readers show only that;
* every Canvas-origin string placed in mrkdwn goes through :func:`escape` (titles like ``<!channel>``);
* plain_text fields (headers, buttons) stay raw, Slack never parses them;
* Slack's limits are enforced by construction, so a huge course never turns into ``invalid_blocks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict

from bot.domain.models import past_live_window
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

UNTITLED = "Untitled conference"
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


def fit_blocks(head: list[Block], items: Sequence[Block], limit: int = MAX_MESSAGE_BLOCKS) -> list[Block]:
    """``head`` plus as many ``items`` as fit under ``limit``, ending with "…and N more" when cut."""
    room = limit - len(head)
    if len(items) <= room:
        return [*head, *items]
    shown = max(room - 1, 0)
    return [*head, *items[:shown], context_block(f"…and {len(items) - shown} more")]


# --- time and labels ------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """Canvas timestamps are UTC; a naive datetime is taken to be UTC rather than local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_duration(delta: timedelta) -> str:
    """Human duration: "42 min", "1 h 5 min", "2 h"; under a minute is "less than a minute"."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes == 0:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} min"
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"


def format_ago(moment: datetime, now: datetime) -> str:
    """ "N min ago" relative to ``now`` ("just now" under a minute; clock skew never goes negative)."""
    delta = _utc(now) - _utc(moment)
    if delta < timedelta(minutes=1):
        return "just now"
    return f"{format_duration(delta)} ago"


def slack_date(moment: datetime, now: datetime) -> str:
    """``<!date^…>`` markup: Slack renders it in each reader's own time zone; the fallback is UTC."""
    moment = _utc(moment)
    if abs(_utc(now) - moment) < timedelta(hours=20):
        token, fallback = "{time}", moment.strftime("%H:%M UTC")
    else:
        token, fallback = "{date_short_pretty} {time}", moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{token}|{fallback}>"


def type_label(conference_type: str | None) -> str:
    """Friendly name of a conference provider; unknown providers are shown as Canvas names them."""
    if not conference_type or not conference_type.strip():
        return "Conference"
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


def _title(card: ConferenceCard) -> str:
    return card.title.strip() or UNTITLED


def _course_md(card: ConferenceCard, limit: int = _LIST_CONTEXT_LIMIT) -> str:
    return truncate(escape(card.context_name.strip() or "Unknown course"), limit)


def _title_md(card: ConferenceCard, limit: int = _LIST_TITLE_LIMIT) -> str:
    return truncate(escape(_title(card)), limit)


def _started_phrase(card: ConferenceCard, now: datetime) -> str:
    if card.started_at is None:
        return "live now"
    return f"started {slack_date(card.started_at, now)} ({format_ago(card.started_at, now)})"


def _ended_phrase(card: ConferenceCard, now: datetime) -> str:
    """ "Ended · lasted 42 min"; without a start time Canvas gives no duration, so just "Ended"."""
    if card.started_at is None:
        return "Ended"
    end = card.ended_at if card.ended_at is not None else now
    return f"Ended · lasted {format_duration(_utc(end) - _utc(card.started_at))}"


def _join_button(card: ConferenceCard) -> Block | None:
    return link_button("Join", ACTION_JOIN, card.join_url, value=str(card.conference_id))


# --- conference alerts ----------------------------------------------------------------------------------


def live_alert(card: ConferenceCard, now: datetime) -> Message:
    """The DM or channel post sent when a conference goes live."""
    title = _title(card)
    body = f"*{_course_md(card, 1000)}* · {escape(type_label(card.conference_type))}\n"
    started = _started_phrase(card, now)
    body += started[:1].upper() + started[1:]
    again = " again" if card.again else ""
    text = f"{escape(title)} is live{again} in {escape(card.context_name)}"
    join = bare_link(card.join_url)
    if join:
        text += f" — join: {join}"
    blocks = [
        header_block(f"🔴 Live {'again' if card.again else 'now'}: {title}"),
        section_block(body),
        *actions_block(_join_button(card)),
    ]
    return _message(text, blocks)


def ended_alert(card: ConferenceCard, now: datetime) -> Message:
    """Replacement for a live alert (``chat.update``) once the conference is over: no Join button."""
    title = _title(card)
    ended = _ended_phrase(card, now)
    body = f"*{_course_md(card, 1000)}* · {escape(type_label(card.conference_type))}\n{ended}"
    text = f"{escape(title)} in {escape(card.context_name)} has ended"
    if card.started_at is not None:
        text += f" ({ended.removeprefix('Ended · ')})"
    return _message(text, [header_block(f"Ended: {title}"), section_block(body)])


MAX_RECORDING_TITLE = 200  # a recording's title in its line; the link keeps the rest of the room


def _recording_line(index: int, recording: RecordingLink) -> str:
    label = truncate(recording.title.strip(), MAX_RECORDING_TITLE) or f"Recording {index}"
    shown = fitting_link(recording.url, label, MAX_SECTION_TEXT // 2)
    if recording.duration_minutes is not None:
        shown += f" · {format_duration(timedelta(minutes=recording.duration_minutes))}"
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


def recording_ready(card: ConferenceCard) -> Message:
    """Thread reply under the alert, listing the recordings with their durations."""
    title = _title(card)
    count = len(card.recordings)
    noun = "recording" if count == 1 else "recordings"
    intro = f"🎞️ *{_title_md(card, 1000)}* · {_course_md(card, 1000)}"
    if count == 0:
        head = [section_block(f"{intro}\nNo recordings are available yet.")]
        return _message(f"No recordings of {escape(title)} yet", head)
    head = [section_block(f"{intro}\n{count} {noun} ready:")]
    lines = [_recording_line(i, r) for i, r in enumerate(card.recordings, start=1)]
    body = [section_block(chunk) for chunk in _chunk_lines(lines)]
    text = f"{count} {noun} ready for {escape(title)} in {escape(card.context_name)}"
    return _message(text, fit_blocks(head, body))


# --- lists for /conferences -----------------------------------------------------------------------------


def list_entry(card: ConferenceCard, now: datetime) -> Block:
    status = conference_status(card, now)
    details = [_course_md(card), escape(type_label(card.conference_type))]
    accessory: Block | None
    if status == "live":
        details.append(f"🔴 {_started_phrase(card, now)}")
        accessory = _join_button(card)
    elif status == "not_started":
        details.append("not started")
        accessory = link_button(
            "Open", ACTION_OPEN, card.join_url, value=str(card.conference_id), primary=False
        )
    else:
        details.append(_ended_phrase(card, now).replace("Ended", "ended", 1))
        accessory = None
    return section_block(f"*{_title_md(card)}*\n" + " · ".join(details), accessory)


def _list_text(heading: str, cards: Sequence[ConferenceCard]) -> str:
    titles = ", ".join(escape(_title(c)) for c in cards[:10])
    more = f" and {len(cards) - 10} more" if len(cards) > 10 else ""
    return f"{heading} ({len(cards)}): {titles}{more}"


def live_list(
    cards: Sequence[ConferenceCard],
    now: datetime,
    *,
    heading: str = "Live now",
    empty_text: str = "No conferences are live right now.",
) -> Message:
    """Ephemeral reply to ``/conferences``: one section per conference, each with a Join button.

    Any number of cards fits: as many as Slack's 50-block limit allows, then "…and N more".
    """
    head = [header_block(heading)]
    if not cards:
        return _message(empty_text, [*head, section_block(empty_text)])
    entries = [list_entry(card, now) for card in cards]
    return _message(_list_text(heading, cards), fit_blocks(head, entries))


def all_list(
    cards: Sequence[ConferenceCard],
    now: datetime,
    *,
    heading: str = "Your conferences",
    empty_text: str = "You have no conferences in Canvas.",
) -> Message:
    """Every conference with its status; live ones first, then not started, then ended."""
    order: dict[Status, int] = {"live": 0, "not_started": 1, "ended": 2}
    ordered = sorted(cards, key=lambda c: order[conference_status(c, now)])
    return live_list(ordered, now, heading=heading, empty_text=empty_text)


# --- help, linking, status ------------------------------------------------------------------------------

COMMAND_HELP: tuple[tuple[str, str], ...] = (
    ("live", "conferences live right now (same as no argument)"),
    ("all", "all your conferences: live, not started and ended"),
    ("course <id>", "conferences of one course"),
    ("link", "connect your Canvas account"),
    ("unlink", "disconnect your Canvas account and forget its token"),
    ("status", "your link, last check and alert settings"),
    ("subscribe <course>", "post this course's live conferences in this channel (teachers/TAs)"),
    ("unsubscribe <course>", "stop posting a course in this channel"),
    ("subscriptions", "courses this channel is subscribed to"),
    ("digest daily HH:MM [ZONE]", "a daily summary at that time (24-hour clock, channel creator's zone)"),
    ("digest weekly DAY HH:MM [ZONE]", "a weekly summary, e.g. `digest weekly mon 08:30 Europe/Paris`"),
    ("digest off", "stop summaries"),
    ("mute <course>", "no alerts for one course"),
    ("unmute <course>", "alerts for that course again"),
    ("alerts on|off", "turn all your live alerts on or off"),
    ("remind <minutes>|off", "a DM that many minutes before a scheduled conference starts"),
    ("help", "this message"),
)


def help_message(reason: str | None = None, *, command: str = "/conferences") -> Message:
    """Every subcommand with one line each; ``reason`` (why help is shown) comes first, escaped."""
    # Usages such as "course <id>" must be escaped too, or Slack parses "<id>" as a link.
    lines = [
        f"`{escape(f'{command} {usage}')}` — {escape(description)}" for usage, description in COMMAND_HELP
    ]
    blocks: list[Block] = []
    if reason:
        blocks.append(section_block(escape(reason)))
    blocks.append(section_block("*What I can do*\n" + "\n".join(lines)))
    text = escape(reason) if reason else f"How to use {command}"
    return _message(text, blocks)


def link_instructions(link_url: str | None) -> Message:
    """How to connect Canvas: an OAuth button when the developer key is configured, otherwise a token."""
    intro = "Connect your Canvas account so I can tell you when one of your conferences goes live."
    if link_url:
        button = link_button("Connect Canvas", ACTION_CONNECT, link_url)
        if button is not None:
            return _message(intro, [section_block(intro), *actions_block(button)])
    body = (
        f"{intro}\nClick *Link with a token* and paste a Canvas access token "
        "(in Canvas: *Account &gt; Settings &gt; New access token*)."
    )
    return _message(
        intro,
        [section_block(body), *actions_block(button_element("Link with a token", ACTION_OPEN_TOKEN_MODAL))],
    )


def token_modal(callback_id: str = TOKEN_MODAL_CALLBACK_ID, *, settings_url: str | None = None) -> Block:
    """Modal view asking for a Canvas personal access token.

    Slack has no password input type: the token is visible while it is typed. It is therefore never put
    back into any view (no ``initial_value``), message or log; the submission handler stores it encrypted.
    """
    where = "*Account &gt; Settings*"
    if settings_url:
        where = link(settings_url, "Account > Settings")
    steps = (
        f"In Canvas, open {where}, scroll to *Approved Integrations* and click *+ New access token*. "
        "Give it a purpose such as “Slack alerts”, generate it, copy it and paste it below."
    )
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _pt("Link Canvas", MAX_MODAL_TITLE),
        "submit": _pt("Link", MAX_MODAL_TITLE),
        "close": _pt("Cancel", MAX_MODAL_TITLE),
        "blocks": [
            section_block(steps),
            {
                "type": "input",
                "block_id": TOKEN_BLOCK_ID,
                "label": _pt("Canvas access token", 2000),
                "hint": _pt(
                    "Slack shows what you type; the token is stored encrypted and never shown again.", 2000
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": TOKEN_ACTION_ID,
                    "placeholder": _pt("Paste your token here", 150),
                },
            },
        ],
    }


def relink_prompt(link_url: str | None, reason: str) -> Message:
    """DM sent once when the stored Canvas credentials stop working (revoked, expired...)."""
    text = f"Your Canvas link stopped working ({escape(reason)}). Relink to keep getting alerts."
    button = link_button("Relink", ACTION_RELINK, link_url) if link_url else None
    if button is None:
        button = button_element("Relink", ACTION_OPEN_TOKEN_MODAL, primary=True)
    return _message(text, [section_block(f"⚠️ {text}"), *actions_block(button)])


def status_message(
    canvas_name: str | None,
    last_poll: datetime | None,
    alerts_on: bool,
    needs_relink: bool,
    now: datetime,
) -> Message:
    """Answer to ``/conferences status``."""
    if canvas_name is None:
        linked = "not linked — use `/conferences link`"
    elif needs_relink:
        linked = f"⚠️ link to {escape(canvas_name)} stopped working — use `/conferences link` to relink"
    else:
        linked = f"linked as {escape(canvas_name)}"
    checked = "not yet"
    if last_poll is not None:
        checked = f"{slack_date(last_poll, now)} ({format_ago(last_poll, now)})"
    alerts = "on" if alerts_on else "off — use `/conferences alerts on`"
    rows = [("Canvas", linked), ("Last checked", checked), ("Alerts", alerts)]
    text = " · ".join(f"{label}: {value}" for label, value in rows)
    return _message(text, [section_block("\n".join(f"*{label}:* {value}" for label, value in rows))])


def simple(text: str) -> Message:
    """A one-section message. ``text`` is mrkdwn written by us: escape any Canvas strings inside it."""
    return _message(text, [section_block(text or " ")])
