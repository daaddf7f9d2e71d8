"""Outbox alert payload -> the renderer's ConferenceCard."""

from __future__ import annotations

from bot.domain.outbox import AlertPayload
from bot.messages.blocks import ConferenceCard


def card_from_payload(payload: AlertPayload) -> ConferenceCard:
    return ConferenceCard(
        conference_id=payload.conference_id,
        title=payload.title,
        context_name=payload.context_name,
        conference_type=payload.conference_type,
        started_at=payload.started_at,
        ended_at=payload.ended_at,
        join_url=payload.join_url,
        again=payload.again,
    )
