"""App Home tab (pure): live now for the user, the linked account, and alert settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.quiet_hours import QuietHours
from bot.slack.blocks import (
    ACTION_OPEN_TOKEN_MODAL,
    MAX_SURFACE_BLOCKS,
    ConferenceCard,
    _actions,
    _button,
    _context,
    _fit_blocks,
    _header,
    _list_entry,
    _section,
    _url_button,
)
from bot.slack.mrkdwn import escape

ACTION_TOGGLE_ALERTS = "home_toggle_alerts"
ACTION_UNMUTE = "home_unmute_course"
ACTION_QUIET_START = "home_quiet_start"
ACTION_QUIET_END = "home_quiet_end"
ACTION_QUIET_CLEAR = "home_quiet_clear"


@dataclass(frozen=True, slots=True)
class HomeState:
    canvas_name: str | None  # None: not linked
    needs_relink: bool
    alerts_on: bool
    muted: Sequence[tuple[int, str]]  # (course id, name)
    quiet: QuietHours | None
    quiet_start: str | None
    quiet_end: str | None
    live: Sequence[ConferenceCard]
    live_error: str | None = None


def _timepicker(action_id: str, initial: str | None, placeholder: str) -> dict[str, Any]:
    picker: dict[str, Any] = {
        "type": "timepicker",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": placeholder},
    }
    if initial:
        picker["initial_time"] = initial
    return picker


def home_view(state: HomeState, now: datetime, link_url: str | None) -> dict[str, Any]:
    head: list[dict[str, Any]] = [_header("Canvas conferences")]
    if state.canvas_name is None:
        connect = _url_button("Connect Canvas", "connect_canvas", link_url) if link_url else None
        head += [
            _section("You have not linked Canvas yet. Link it to get a DM when your conferences go live."),
            *_actions(connect or _button("Link with a token", ACTION_OPEN_TOKEN_MODAL, primary=True)),
        ]
        return {"type": "home", "blocks": head}
    account = f"Linked as *{escape(state.canvas_name)}*"
    if state.needs_relink:
        account = f"⚠️ The link to *{escape(state.canvas_name)}* stopped working. Relink it."
    head.append(_section(account))
    if state.needs_relink:
        head += _actions(_button("Relink with a token", ACTION_OPEN_TOKEN_MODAL, primary=True))

    settings = _settings_blocks(state)
    head.append(_header("Live now"))
    if state.live_error:
        live: list[dict[str, Any]] = [_section(escape(state.live_error))]
    elif not state.live:
        live = [_section("No conferences are live right now.")]
    else:
        live = [_list_entry(card, now) for card in state.live]
    fitted = _fit_blocks(head, live, MAX_SURFACE_BLOCKS - len(settings))
    return {"type": "home", "blocks": [*fitted, *settings]}


def _settings_blocks(state: HomeState) -> list[dict[str, Any]]:
    toggle = _button(
        "Turn alerts off" if state.alerts_on else "Turn alerts on",
        ACTION_TOGGLE_ALERTS,
        value="off" if state.alerts_on else "on",
        primary=not state.alerts_on,
    )
    blocks = [
        {"type": "divider"},
        _header("Alert settings"),
        _section(f"DM alerts are *{'on' if state.alerts_on else 'off'}*.", accessory=toggle),
    ]
    for course_id, name in state.muted[:20]:
        blocks.append(
            _section(
                f"🔕 Muted: *{escape(name)}*",
                accessory=_button("Unmute", ACTION_UNMUTE, value=str(course_id)),
            )
        )
    if not state.muted:
        blocks.append(_context("No muted courses. Mute one with `/conferences mute &lt;course&gt;`."))
    quiet = (
        f"Quiet hours: *{escape(state.quiet.describe())}*. Alerts are held, then sent as one summary."
        if state.quiet
        else "Quiet hours: *off*. Pick a start and an end (your Slack time zone)."
    )
    blocks.append(_section(quiet))
    blocks += _actions(
        _timepicker(ACTION_QUIET_START, state.quiet_start, "Start"),
        _timepicker(ACTION_QUIET_END, state.quiet_end, "End"),
        _button("No quiet hours", ACTION_QUIET_CLEAR) if state.quiet_start or state.quiet_end else None,
    )
    return blocks
