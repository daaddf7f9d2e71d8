"""App Home tab (pure): live now for the user, the linked account, and alert settings, in the user's
language (``t``: the caller looks up the viewer's Slack locale)."""

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
from bot.messages.i18n import DEFAULT_TRANSLATOR, Text, Translator
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
    live_error: Text | str | None = None
    reminder_minutes: int = 0  # before a scheduled start; 0: off
    agenda_at: str | None = None  # the daily agenda's local time; None: off
    attendance_on: bool = True  # the attendance report after sessions of courses they teach
    missed_on: bool = True  # the recording by DM after a session they missed


def _timepicker(action_id: str, initial: str | None, placeholder: str) -> dict[str, Any]:
    picker: dict[str, Any] = {
        "type": "timepicker",
        "action_id": action_id,
        "placeholder": {"type": "plain_text", "text": placeholder},
    }
    if initial:
        picker["initial_time"] = initial
    return picker


def quiet_hours_label(quiet: QuietHours, t: Translator) -> str:
    """ "22:00 to 07:00 (Europe/Paris)", in the reader's words."""
    return t._(
        "%(start)s to %(end)s (%(zone)s)",
        start=quiet.start.strftime("%H:%M"),
        end=quiet.end.strftime("%H:%M"),
        zone=quiet.zone,
    )


def home_view(
    state: HomeState, now: datetime, link_url: str | None, *, t: Translator = DEFAULT_TRANSLATOR
) -> dict[str, Any]:
    head: list[dict[str, Any]] = [header_block(t._("Canvas conferences"))]
    if state.canvas_name is None:
        connect = link_button(t._("Connect Canvas"), "connect_canvas", link_url) if link_url else None
        head += [
            section_block(
                t._("You have not linked Canvas yet. Link it to get a DM when your conferences go live.")
            ),
            *actions_block(
                connect or button_element(t._("Link with a token"), ACTION_OPEN_TOKEN_MODAL, primary=True)
            ),
        ]
        return {"type": "home", "blocks": head}
    name = escape(state.canvas_name)
    account = t._("Linked as *%(name)s*", name=name)
    if state.needs_relink:
        account = t._("⚠️ The link to *%(name)s* stopped working. Relink it.", name=name)
    head.append(section_block(account))
    if state.needs_relink:
        head += actions_block(
            button_element(t._("Relink with a token"), ACTION_OPEN_TOKEN_MODAL, primary=True)
        )

    settings = _settings_blocks(state, t)
    head.append(header_block(t._("Live now")))
    if state.live_error:
        live: list[dict[str, Any]] = [section_block(escape(t.text(state.live_error)))]
    elif not state.live:
        live = [section_block(t._("No conferences are live right now."))]
    else:
        live = [list_entry(card, now, t=t) for card in state.live]
    fitted = fit_blocks(head, live, MAX_SURFACE_BLOCKS - len(settings), t=t)
    return {"type": "home", "blocks": [*fitted, *settings]}


def _settings_blocks(state: HomeState, t: Translator) -> list[dict[str, Any]]:
    toggle = button_element(
        t._("Turn alerts off") if state.alerts_on else t._("Turn alerts on"),
        ACTION_TOGGLE_ALERTS,
        value="off" if state.alerts_on else "on",
        primary=not state.alerts_on,
    )
    blocks = [
        {"type": "divider"},
        header_block(t._("Alert settings")),
        section_block(
            t._("DM alerts are *on*.") if state.alerts_on else t._("DM alerts are *off*."), accessory=toggle
        ),
    ]
    for course_id, name in state.muted[:20]:
        blocks.append(
            section_block(
                t._("🔕 Muted: *%(course)s*", course=escape(name)),
                accessory=button_element(t._("Unmute"), ACTION_UNMUTE, value=str(course_id)),
            )
        )
    if not state.muted:
        blocks.append(
            context_block(t._("No muted courses. Mute one with `/conferences mute &lt;course&gt;`."))
        )
    blocks.append(
        section_block(
            t._(
                "Reminders: *%(minutes)d min* before a scheduled start. "
                "Change with `/conferences remind &lt;minutes&gt;|off`.",
                minutes=state.reminder_minutes,
            )
            if state.reminder_minutes
            else t._("Reminders: *off*. Turn them on with `/conferences remind 10`.")
        )
    )
    blocks.append(
        section_block(
            t._(
                "Daily agenda: *%(time)s*. Change with `/conferences agenda HH:MM|off`.",
                time=state.agenda_at,
            )
            if state.agenda_at
            else t._("Daily agenda: *off*. Each morning's conferences by DM: `/conferences agenda 07:30`.")
        )
    )
    blocks.append(
        section_block(
            "\n".join(
                [
                    t._("Attendance reports: *on*. `/conferences attendance off` stops them.")
                    if state.attendance_on
                    else t._("Attendance reports: *off*. `/conferences attendance on` turns them on."),
                    t._("Recordings of sessions you missed: *on*. `/conferences missed off` stops them.")
                    if state.missed_on
                    else t._(
                        "Recordings of sessions you missed: *off*. `/conferences missed on` turns them on."
                    ),
                ]
            )
        )
    )
    quiet = (
        t._(
            "Quiet hours: *%(hours)s*. Alerts are held, then sent as one summary.",
            hours=escape(quiet_hours_label(state.quiet, t)),
        )
        if state.quiet
        else t._("Quiet hours: *off*. Pick a start and an end (your Slack time zone).")
    )
    blocks.append(section_block(quiet))
    blocks += actions_block(
        _timepicker(ACTION_QUIET_START, state.quiet_start, t._("Start")),
        _timepicker(ACTION_QUIET_END, state.quiet_end, t._("End")),
        button_element(t._("No quiet hours"), ACTION_QUIET_CLEAR)
        if state.quiet_start or state.quiet_end
        else None,
    )
    return blocks
