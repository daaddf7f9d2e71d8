"""The outbox's durable contract: which events a row can carry, its statuses, and one payload model per kind.

Rows outlive the process that wrote them: another replica, or the next version, delivers them. So the
values here are the strings stored since the first version (no migration: an enum member *is* its
string), payloads are written exactly as before (:meth:`StoredPayload.to_stored`), and reading tolerates
what older and newer writers do: keys an older version did not write take their defaults, keys a newer
version adds are ignored. A row this version cannot read raises :class:`UnreadablePayload`, which the
dispatcher records as the row's reason for failing for good (no retry could make it readable).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError


class OutboxEvent(StrEnum):
    """What a row does. Stored in ``outbox.event``; a newer version may store one this enum lacks."""

    STARTED = "started"  # post a conference's "is live" card
    ENDED = "ended"  # edit that card to "ended"
    REOPENED = "reopened"  # edit an ended card back to live (the same session came back)
    RELINK = "relink"  # DM a user whose Canvas link stopped working
    POST = "post"  # post a message rendered when it was queued (digest, quiet summary, recording)
    UPLOAD = "upload"  # share a file with a message rendered when it was queued (attendance report)

    @classmethod
    def known(cls, stored: str) -> OutboxEvent | None:
        """The member for a stored value, or None for one this version does not know."""
        try:
            return cls(stored)
        except ValueError:
            return None


CARD_EDITS = frozenset({OutboxEvent.ENDED, OutboxEvent.REOPENED})
"""Events that edit a posted "started" card rather than post a message."""
CARD_EVENTS = frozenset({OutboxEvent.STARTED}) | CARD_EDITS
"""Events of a conference card (payload AlertPayload): its alert and the edits of it."""


class OutboxStatus(StrEnum):
    """Where a row is in its life. Stored in ``outbox.status``."""

    PENDING = "pending"  # due at next_attempt_at (the dispatcher claims these)
    SENT = "sent"  # Slack has it (or there was nothing left to do)
    FAILED = "failed"  # given up, with the reason in last_error
    HELD = "held"  # a start during the user's quiet hours, waiting for the summary
    SUMMARIZED = "summarized"  # a held start that went out in a quiet-hours summary


ENDED_BEFORE_SENT = "conference ended before the alert could be sent"
"""last_error of an alert given up because its session ended first: the poller's cancellation and the
dispatcher's stale check write the same reason."""


class UnreadablePayload(ValueError):
    """A stored payload that does not match its event's model: corrupt, or from an incompatible writer."""


def _iso(value: datetime) -> str:
    return value.isoformat()


IsoDatetime = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]
"""A datetime stored as ``datetime.isoformat()`` gives it (``+00:00``, not pydantic's ``Z``), so rows
read the same by every version."""


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


TextOrEmpty = Annotated[str, BeforeValidator(_none_as_empty)]
"""Text a writer may have stored as null (an untitled conference): read as ""."""


class StoredPayload(BaseModel):
    """A payload as stored in ``outbox.payload`` (JSON). Immutable; unknown keys are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_stored(cls, stored: object) -> Self:
        """Parse a stored payload, or raise UnreadablePayload saying what is wrong with it."""
        try:
            return cls.model_validate(stored)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}"
                for problem in error.errors(include_url=False)
            )
            raise UnreadablePayload(f"unreadable {cls.__name__}: {problems}") from None

    def to_stored(self) -> dict[str, Any]:
        """The JSON object stored in the row."""
        return self.model_dump(mode="json")


class AlertPayload(StoredPayload):
    """A conference card: everything needed to draw it without Canvas (rows "started", "ended",
    "reopened"). `ended_at` is set on an "ended" row; the card's start row keeps it null."""

    conference_id: int
    title: TextOrEmpty = ""
    context_name: TextOrEmpty = ""
    conference_type: str | None = None
    started_at: IsoDatetime | None = None
    ended_at: IsoDatetime | None = None
    join_url: str
    again: bool = False  # a later session of a conference that ran before: "live again"

    def to_stored(self) -> dict[str, Any]:
        """Without `again` for a first session, as rows have always been written."""
        return self.model_dump(mode="json", exclude=None if self.again else {"again"})


class RelinkPayload(StoredPayload):
    """A relink prompt: why the user's Canvas link stopped working (shown to them, escaped)."""

    reason: TextOrEmpty = ""


class RenderedMessage(StoredPayload):
    """A Slack message as rendered when it was queued (``chat.postMessage`` text and blocks)."""

    text: str
    blocks: list[dict[str, Any]]


class ThreadOf(StoredPayload):
    """The conference session whose alert (to the same destination) a message replies under."""

    conference_id: int
    started_at: IsoDatetime


class PostPayload(StoredPayload):
    """A prerendered message (row "post"); `thread_of` makes it a reply in that session's alert thread."""

    message: RenderedMessage
    thread_of: ThreadOf | None = None

    def to_stored(self) -> dict[str, Any]:
        """Without `thread_of` when it is not a reply, as rows have always been written."""
        return self.model_dump(mode="json", exclude={"thread_of"} if self.thread_of is None else None)


MAX_UPLOAD_BYTES = 1_000_000
"""The most a queued file may hold (a 10,000-person course's CSV is about 400 kB): rows stay small."""


class UploadFile(StoredPayload):
    """The file itself, stored whole so any replica can send it without Canvas: a text file (CSV)."""

    filename: str = Field(min_length=1, max_length=255)
    title: str = Field(max_length=255)
    content: str = Field(max_length=MAX_UPLOAD_BYTES)
    snippet_type: str | None = None  # Slack's file type hint ("csv"); None lets Slack guess


class UploadPayload(StoredPayload):
    """A file shared into a conversation with a message (row "upload": files.getUploadURLExternal, the
    bytes, files.completeUploadExternal with `blocks`). `version` is the shape's version: a row written
    by a newer, incompatible writer is refused as unreadable (failed with the reason), never guessed at."""

    version: Literal[1] = 1
    message: RenderedMessage
    file: UploadFile
