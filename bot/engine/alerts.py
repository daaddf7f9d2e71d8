"""Turns diff events into outbox rows: the dedup key and the payload the dispatcher renders later.

The payload holds everything needed to render, so a message can be (re)sent after a restart without Canvas.
Every row is built here from its payload model (bot/domain/outbox.py), the contract rows keep between
replicas and versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.diff import Event
from bot.domain.outbox import (
    CARD_EVENTS,
    AlertPayload,
    OutboxEvent,
    OutboxStatus,
    PostPayload,
    RelinkPayload,
    RenderedMessage,
    StoredPayload,
    ThreadOf,
    UploadFile,
    UploadPayload,
)
from bot.messages.mrkdwn import safe_link_url


def dedup_key(team_id: str, destination: str, conference_id: int, started_at: datetime, event: str) -> str:
    return f"{team_id}:{destination}:{conference_id}:{int(started_at.timestamp())}:{event}"


def queued(
    key: str,
    *,
    team_id: str,
    destination: str,
    event: OutboxEvent,
    payload: StoredPayload,
    now: datetime,
    conference_id: int | None = None,
    started_at: datetime | None = None,
    status: OutboxStatus = OutboxStatus.PENDING,
) -> dict[str, Any]:
    """One outbox row, due now; every producer (alerts, digests, summaries, follow-ups) builds it here.

    Enums are stored as their plain string values (what the column holds and every version reads)."""
    return {
        "dedup_key": key,
        "team_id": team_id,
        "destination": destination,
        "event": event.value,
        "conference_id": conference_id,
        "started_at": started_at,
        "payload": payload.to_stored(),
        "status": status.value,
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
    conference_id, started_at = thread_of or (None, None)
    payload = PostPayload(
        message=RenderedMessage(text=message["text"], blocks=message["blocks"]),
        thread_of=ThreadOf(conference_id=thread_of[0], started_at=thread_of[1]) if thread_of else None,
    )
    return queued(
        key,
        team_id=team_id,
        destination=destination,
        event=OutboxEvent.POST,
        payload=payload,
        now=now,
        conference_id=conference_id,
        started_at=started_at,
    )


def upload_row(
    key: str,
    *,
    team_id: str,
    destination: str,
    message: Mapping[str, Any],
    file: UploadFile,
    now: datetime,
    session: tuple[int, datetime],
) -> dict[str, Any]:
    """A file shared with a message rendered now (event "upload"), about one conference session."""
    payload = UploadPayload(
        message=RenderedMessage(text=message["text"], blocks=message["blocks"]), file=file
    )
    return queued(
        key,
        team_id=team_id,
        destination=destination,
        event=OutboxEvent.UPLOAD,
        payload=payload,
        now=now,
        conference_id=session[0],
        started_at=session[1],
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
    edit: OutboxEvent | None = None,
    occurrence: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """The row for one diff event: by default the event as it is ("started" posts the card, "ended" edits it).

    `edit` is what the row does to the card when that differs from the event (a start of a session whose
    card shows "ended" is a "reopened" edit) and `occurrence` numbers a repeated edit of one card, so a
    card can go ended -> live -> ended again with each edit queued once (dedup keys `ended`,
    `reopened:1`, `ended:2`; None keeps the unnumbered key of a first edit). `quiet`: the user is in quiet
    hours, so a start is held for the summary (quiet_summaries.py); edits are never held, the
    dispatcher or the summary reads them.
    """
    row_event = edit or OutboxEvent(event.kind)
    if row_event not in CARD_EVENTS:
        raise ValueError(f"a diff event becomes a card row, not {row_event!r}")
    conference = event.conference
    url = join_url(
        canvas_root,
        event.context_type,
        event.context_id,
        event.conference_id,
        served=conference.join_url if conference else None,
    )
    payload = AlertPayload(
        conference_id=event.conference_id,
        title=event.title,
        context_name=context_name,
        conference_type=conference.conference_type if conference else None,
        # A later session's start shown is when it was seen (a restart's key is the previous end).
        started_at=now if event.again and event.kind == "started" and edit is None else event.started_at,
        ended_at=event.ended_at or (now if event.kind == "ended" else None),
        join_url=url,
        again=event.again,
    )
    key_event = row_event.value if occurrence is None else f"{row_event.value}:{occurrence}"
    held = quiet and row_event is OutboxEvent.STARTED
    return queued(
        dedup_key(team_id, destination, event.conference_id, event.started_at, key_event),
        team_id=team_id,
        destination=destination,
        event=row_event,
        payload=payload,
        now=now,
        conference_id=event.conference_id,
        started_at=event.started_at,
        status=OutboxStatus.HELD if held else OutboxStatus.PENDING,
    )


def relink_row(
    team_id: str, slack_user_id: str, linked_at: datetime, reason: str, now: datetime
) -> dict[str, Any]:
    """One relink DM per link: the key includes when the link was made, so a new link can warn again."""
    return queued(
        f"{team_id}:{slack_user_id}:relink:{int(linked_at.timestamp())}",
        team_id=team_id,
        destination=slack_user_id,
        event=OutboxEvent.RELINK,
        payload=RelinkPayload(reason=reason),
        now=now,
    )
