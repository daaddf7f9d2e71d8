"""App Home tab (pure): live now for the user, the linked account, and alert settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.quiet_hours import QuietHours
from bot.messages.blocks import (
    ACTION_OPEN_TOKEN_MODAL,
    MAX_SURFACE_BLOCKS,
    ConferenceCard,
    actions_block,
    button_element,
    context_block,
    fit_blocks,
    header_block,
    link_button,
    list_entry,
    section_block,
)
from bot.messages.mrkdwn import escape

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
    reminder_minutes: int = 0  # before a scheduled start; 0: off


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
    head: list[dict[str, Any]] = [header_block("Canvas conferences")]
    if state.canvas_name is None:
        connect = link_button("Connect Canvas", "connect_canvas", link_url) if link_url else None
        head += [
            section_block(
                "You have not linked Canvas yet. Link it to get a DM when your conferences go live."
            ),
            *actions_block(
                connect or button_element("Link with a token", ACTION_OPEN_TOKEN_MODAL, primary=True)
            ),
        ]
        return {"type": "home", "blocks": head}
    account = f"Linked as *{escape(state.canvas_name)}*"
    if state.needs_relink:
        account = f"⚠️ The link to *{escape(state.canvas_name)}* stopped working. Relink it."
    head.append(section_block(account))
    if state.needs_relink:
        head += actions_block(button_element("Relink with a token", ACTION_OPEN_TOKEN_MODAL, primary=True))

    settings = _settings_blocks(state)
    head.append(header_block("Live now"))
    if state.live_error:
        live: list[dict[str, Any]] = [section_block(escape(state.live_error))]
    elif not state.live:
        live = [section_block("No conferences are live right now.")]
    else:
        live = [list_entry(card, now) for card in state.live]
    fitted = fit_blocks(head, live, MAX_SURFACE_BLOCKS - len(settings))
    return {"type": "home", "blocks": [*fitted, *settings]}


def _settings_blocks(state: HomeState) -> list[dict[str, Any]]:
    toggle = button_element(
        "Turn alerts off" if state.alerts_on else "Turn alerts on",
        ACTION_TOGGLE_ALERTS,
        value="off" if state.alerts_on else "on",
        primary=not state.alerts_on,
    )
    blocks = [
        {"type": "divider"},
        header_block("Alert settings"),
        section_block(f"DM alerts are *{'on' if state.alerts_on else 'off'}*.", accessory=toggle),
    ]
    for course_id, name in state.muted[:20]:
        blocks.append(
            section_block(
                f"🔕 Muted: *{escape(name)}*",
                accessory=button_element("Unmute", ACTION_UNMUTE, value=str(course_id)),
            )
        )
    if not state.muted:
        blocks.append(context_block("No muted courses. Mute one with `/conferences mute &lt;course&gt;`."))
    blocks.append(
        section_block(
            f"Reminders: *{state.reminder_minutes} min* before a scheduled start. "
            "Change with `/conferences remind &lt;minutes&gt;|off`."
            if state.reminder_minutes
            else "Reminders: *off*. Turn them on with `/conferences remind 10`."
        )
    )
    quiet = (
        f"Quiet hours: *{escape(state.quiet.describe())}*. Alerts are held, then sent as one summary."
        if state.quiet
        else "Quiet hours: *off*. Pick a start and an end (your Slack time zone)."
    )
    blocks.append(section_block(quiet))
    blocks += actions_block(
        _timepicker(ACTION_QUIET_START, state.quiet_start, "Start"),
        _timepicker(ACTION_QUIET_END, state.quiet_end, "End"),
        button_element("No quiet hours", ACTION_QUIET_CLEAR)
        if state.quiet_start or state.quiet_end
        else None,
    )
    return blocks
