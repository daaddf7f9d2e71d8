"""Outbox payload (JSON) -> the renderer's ConferenceCard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.slack.blocks import ConferenceCard


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def card_from_payload(payload: dict[str, Any]) -> ConferenceCard:
    return ConferenceCard(
        conference_id=int(payload["conference_id"]),
        title=str(payload.get("title") or ""),
        context_name=str(payload.get("context_name") or ""),
        conference_type=payload.get("conference_type"),
        started_at=_when(payload.get("started_at")),
        ended_at=_when(payload.get("ended_at")),
        join_url=str(payload["join_url"]),
    )
