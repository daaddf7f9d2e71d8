"""Turns diff events into outbox rows: the dedup key and the payload the dispatcher renders later.

The payload holds everything needed to render, so a message can be (re)sent after a restart without Canvas.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.engine.diff import Event
from bot.slack.mrkdwn import safe_link_url


def dedup_key(team_id: str, destination: str, conference_id: int, started_at: datetime, event: str) -> str:
    return f"{team_id}:{destination}:{conference_id}:{int(started_at.timestamp())}:{event}"


def queued(
    key: str,
    *,
    team_id: str,
    destination: str,
    event: str,
    payload: dict[str, Any],
    now: datetime,
    conference_id: int | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """One outbox row, due now; every producer (alerts, digests, summaries, follow-ups) builds it here."""
    return {
        "dedup_key": key,
        "team_id": team_id,
        "destination": destination,
        "event": event,
        "conference_id": conference_id,
        "started_at": started_at,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def post_row(
    key: str,
    *,
    team_id: str,
    destination: str,
    message: Mapping[str, Any],
    now: datetime,
    thread_of: tuple[int, datetime] | None = None,
) -> dict[str, Any]:
    """A message rendered now and posted as is (event "post"); `thread_of` = (conference id, started_at)
    of the alert to reply under."""
    payload: dict[str, Any] = {"message": {"text": message["text"], "blocks": message["blocks"]}}
    conference_id, started_at = thread_of or (None, None)
    if thread_of:
        payload["thread_of"] = {"conference_id": conference_id, "started_at": thread_of[1].isoformat()}
    return queued(
        key,
        team_id=team_id,
        destination=destination,
        event="post",
        payload=payload,
        now=now,
        conference_id=conference_id,
        started_at=started_at,
    )


def join_url(
    canvas_root: str, context_type: str, context_id: int, conference_id: int, *, served: str | None = None
) -> str:
    """The link a person clicks to join: the one place every alert, list and digest gets it from.

    ``served`` is the conference's ``join_url`` as the server sent it. Canvas' API always sends null, but a
    server that fills it chooses its text freely, so it is used only when it is a safe http(s) link
    (:func:`safe_link_url`); otherwise, as when absent, the link is Canvas' own browser route
    ``{CANVAS_BASE_URL}/courses|groups/:id/conferences/:id/join``. ``context_type`` is compared without
    case ("Group" and "group" both mean a group).
    """
    safe = safe_link_url(served)
    if safe is not None:
        return safe
    segment = "groups" if context_type.lower() == "group" else "courses"
    return f"{canvas_root.rstrip('/')}/{segment}/{context_id}/conferences/{conference_id}/join"


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
    url = join_url(
        canvas_root,
        event.context_type,
        event.context_id,
        event.conference_id,
        served=conference.join_url if conference else None,
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
    return queued(
        dedup_key(team_id, destination, event.conference_id, event.started_at, event.kind),
        team_id=team_id,
        destination=destination,
        event=event.kind,
        payload=payload,
        now=now,
        conference_id=event.conference_id,
        started_at=event.started_at,
    )


def relink_row(
    team_id: str, slack_user_id: str, linked_at: datetime, reason: str, now: datetime
) -> dict[str, Any]:
    """One relink DM per link: the key includes when the link was made, so a new link can warn again."""
    return queued(
        f"{team_id}:{slack_user_id}:relink:{int(linked_at.timestamp())}",
        team_id=team_id,
        destination=slack_user_id,
        event="relink",
        payload={"reason": reason},
        now=now,
    )
