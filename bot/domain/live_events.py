"""Canvas Live Events, read: which deliveries say "someone joined a web conference just now".

Canvas has no conference-specific Live Event. Joining one (`ConferencesController#join`) logs an asset
access with level "participate", which Live Events emits as `asset_accessed` with
`body.asset_type == "web_conference"` and `body.asset_id` the conference. That is the only push signal a
conference gives: the first join of a new session, and every join of a reused long-running room, whose
`started_at` never changes and which a poll therefore cannot tell apart from "still running".

Everything else Live Events carries (page views, grades, the same event with another level) is noise to
confbot, so anything that is not exactly that shape reads as None rather than as an error: Canvas adds
fields and event types over time, and a receiver that refused them would only make Canvas retry.

Canvas sends ids as strings, and often as global ids (`shard * 10**13 + local id`) while its REST API
answers local ids; `local_id` maps one to the other. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GLOBAL_ID_SHARD_FACTOR = 10**13
"""Canvas global id = shard id * 10**13 + local id (doc/api/data_services, "Event Data Identifiers")."""

ID_LIMIT = 2**63
"""Canvas ids, global ones included, are PostgreSQL bigints: anything from here up names nothing."""

_MAX_ID_DIGITS = 19
"""The digits of the largest bigint: a longer string is refused before int() spends time on it."""


@dataclass(frozen=True, slots=True)
class ConferenceJoined:
    """Someone joined a web conference: the ids are local (as the REST API names them), time in UTC."""

    conference_id: int
    user_id: int | None
    context_type: str | None
    context_id: int | None
    event_time: datetime


def local_id(value: int | str) -> int:
    """The local id of a Canvas id given either way: global ids lose their shard, local ones stay.

    Raises ValueError for anything that is not a positive id (a bool, a sign, a non-digit, zero after
    removing the shard): an id that names nothing must not be guessed into one that names something.
    """
    if isinstance(value, bool):
        raise ValueError("an id is not a boolean")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()) or len(value) > _MAX_ID_DIGITS:
            raise ValueError("an id is ASCII digits")
        value = int(value)
    if not isinstance(value, int) or not 0 < value < ID_LIMIT:
        raise ValueError("an id is a positive integer below 2**63")
    local = value % GLOBAL_ID_SHARD_FACTOR
    if local == 0:
        raise ValueError("a global id with no local part")
    return local


def conference_joined(event: Mapping[str, Any]) -> ConferenceJoined | None:
    """The join an event reports, or None when it is not a web-conference `asset_accessed` at level
    "participate", or is one too malformed to act on (no conference id, no readable event time).

    `event` is the Live Events envelope `{"metadata": {...}, "body": {...}}`: the JSON body of an
    unsigned delivery, or the claims of a signed one (which may carry `iat`/`exp` beside them).
    """
    metadata, body = event.get("metadata"), event.get("body")
    if not isinstance(metadata, Mapping) or not isinstance(body, Mapping):
        return None
    if metadata.get("event_name") != "asset_accessed":
        return None
    if body.get("asset_type") != "web_conference" or body.get("level") != "participate":
        return None
    conference_id = _optional_id(body.get("asset_id"))
    event_time = _utc_time(metadata.get("event_time"))
    if conference_id is None or event_time is None:
        return None
    context_type = metadata.get("context_type")
    return ConferenceJoined(
        conference_id=conference_id,
        user_id=_optional_id(metadata.get("user_id")),
        context_type=context_type if isinstance(context_type, str) and context_type else None,
        context_id=_optional_id(metadata.get("context_id")),
        event_time=event_time,
    )


def _optional_id(value: object) -> int | None:
    """A local id, or None for a missing or malformed one (an event without a user is still a join)."""
    if not isinstance(value, int | str):
        return None
    try:
        return local_id(value)
    except ValueError:
        return None


def _utc_time(value: object) -> datetime | None:
    """Canvas's `event_time` (ISO 8601, millisecond precision, `Z`) as an aware UTC datetime.

    A time without a zone is refused rather than assumed: Canvas always sends `Z`, so a naive one means
    the event did not come from Canvas as documented.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)
