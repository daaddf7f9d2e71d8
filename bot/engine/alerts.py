"""Turns diff events into outbox rows: the dedup key and the payload the dispatcher renders later.

The payload holds everything needed to render, so a message can be (re)sent after a restart without Canvas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.engine.diff import Event


def dedup_key(team_id: str, destination: str, conference_id: int, started_at: datetime, event: str) -> str:
    return f"{team_id}:{destination}:{conference_id}:{int(started_at.timestamp())}:{event}"


def join_url(canvas_root: str, context_type: str, context_id: int, conference_id: int) -> str:
    """Canvas API answers always carry join_url null; the browser route below is what users open."""
    segment = "groups" if context_type == "Group" else "courses"
    return f"{canvas_root}/{segment}/{context_id}/conferences/{conference_id}/join"


def outbox_row(
    event: Event,
    *,
    team_id: str,
    destination: str,
    context_name: str,
    canvas_root: str,
    now: datetime,
) -> dict[str, Any]:
    conference = event.conference
    url = (conference.join_url if conference else None) or join_url(
        canvas_root, event.context_type, event.context_id, event.conference_id
    )
    ended_at = event.ended_at or (now if event.kind == "ended" else None)
    payload: dict[str, Any] = {
        "conference_id": event.conference_id,
        "title": event.title,
        "context_name": context_name,
        "conference_type": conference.conference_type if conference else None,
        "started_at": event.started_at.isoformat(),
        "ended_at": ended_at.isoformat() if ended_at else None,
        "join_url": url,
    }
    return {
        "dedup_key": dedup_key(team_id, destination, event.conference_id, event.started_at, event.kind),
        "team_id": team_id,
        "destination": destination,
        "event": event.kind,
        "conference_id": event.conference_id,
        "started_at": event.started_at,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def relink_row(
    team_id: str, slack_user_id: str, linked_at: datetime, reason: str, now: datetime
) -> dict[str, Any]:
    """One relink DM per link: the key includes when the link was made, so a new link can warn again."""
    return {
        "dedup_key": f"{team_id}:{slack_user_id}:relink:{int(linked_at.timestamp())}",
        "team_id": team_id,
        "destination": slack_user_id,
        "event": "relink",
        "conference_id": None,
        "started_at": None,
        "payload": {"reason": reason},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
