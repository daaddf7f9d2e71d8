"""The outbox contract: rows written by earlier versions read the same, rows written now read the same in
earlier versions (identical JSON), and what cannot be read says why (pure: no database, no Slack)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.diff import Event, EventKind
from bot.domain.models import Conference
from bot.domain.outbox import (
    AlertPayload,
    OutboxEvent,
    OutboxStatus,
    PostPayload,
    RelinkPayload,
    UnreadablePayload,
    UploadPayload,
)
from bot.engine import alerts
from bot.messages.cards import card_from_payload

STARTED = datetime(2026, 3, 2, 9, 30, 15, tzinfo=UTC)
NOW = STARTED + timedelta(minutes=40)
ROOT = "https://canvas.example.edu"

# Payloads exactly as the code before the typed outbox wrote them (dict literals, datetime.isoformat()).
OLD_STARTED = {
    "conference_id": 42,
    "title": "Lecture 3",
    "context_name": "Biology 101",
    "conference_type": "BigBlueButton",
    "started_at": "2026-03-02T09:30:15+00:00",
    "ended_at": None,
    "join_url": "https://canvas.example.edu/courses/7/conferences/42/join",
}
OLD_ENDED = OLD_STARTED | {"ended_at": "2026-03-02T10:10:15+00:00"}
OLD_POST = {
    "message": {"text": "Digest", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}
}
OLD_REPLY = OLD_POST | {"thread_of": {"conference_id": 42, "started_at": "2026-03-02T09:30:15+00:00"}}
OLD_RELINK = {"reason": "token revoked"}


def _event(kind: EventKind = "started", *, ended_at: datetime | None = None) -> Event:
    conference = Conference.model_validate(
        {
            "id": 42,
            "title": "Lecture 3",
            "conference_type": "BigBlueButton",
            "started_at": STARTED.isoformat(),
            "context_type": "Course",
            "context_id": 7,
        }
    )
    return Event(kind, 42, STARTED, "Lecture 3", "Course", 7, conference, ended_at)


def _row(event: Event, **options: Any) -> dict[str, Any]:
    return alerts.outbox_row(
        event,
        team_id="T1",
        destination="U1",
        context_name="Biology 101",
        canvas_root=ROOT,
        now=NOW,
        **options,
    )


def test_enum_values_are_the_strings_already_stored() -> None:
    """No migration: the columns keep holding exactly these strings."""
    assert [e.value for e in OutboxEvent] == ["started", "ended", "reopened", "relink", "post", "upload"]
    assert [s.value for s in OutboxStatus] == ["pending", "sent", "failed", "held", "summarized"]
    assert OutboxEvent.STARTED == "started" and OutboxStatus.HELD == "held"


@pytest.mark.parametrize(
    ("model", "stored"),
    [
        (AlertPayload, OLD_STARTED),
        (AlertPayload, OLD_ENDED),
        (PostPayload, OLD_POST),
        (PostPayload, OLD_REPLY),
        (RelinkPayload, OLD_RELINK),
    ],
)
def test_rows_of_the_previous_version_parse_and_store_back_identically(
    model: type[AlertPayload | PostPayload | RelinkPayload], stored: dict[str, Any]
) -> None:
    assert model.from_stored(stored).to_stored() == stored


def test_builders_write_what_the_previous_version_wrote() -> None:
    """So a replica still on the previous version reads rows this one queues."""
    assert _row(_event())["payload"] == OLD_STARTED
    assert _row(_event("ended", ended_at=STARTED + timedelta(minutes=40)))["payload"] == OLD_ENDED
    assert alerts.relink_row("T1", "U1", STARTED, "token revoked", NOW)["payload"] == OLD_RELINK
    message = OLD_POST["message"]
    assert (
        alerts.post_row("k", team_id="T1", destination="C1", message=message, now=NOW)["payload"] == OLD_POST
    )
    reply = alerts.post_row(
        "k", team_id="T1", destination="U1", message=message, now=NOW, thread_of=(42, STARTED)
    )
    assert reply["payload"] == OLD_REPLY
    assert (reply["event"], reply["conference_id"], reply["started_at"]) == ("post", 42, STARTED)


def test_a_row_stores_its_event_and_status_as_plain_strings() -> None:
    row = _row(_event())
    assert type(row["event"]) is str and row["event"] == "started"
    assert type(row["status"]) is str and row["status"] == "pending"


def test_rows_without_optional_keys_parse_with_defaults() -> None:
    """A post written before replies existed has no thread_of; an alert may lack the optional fields."""
    assert PostPayload.from_stored(OLD_POST).thread_of is None
    bare = AlertPayload.from_stored({"conference_id": 42, "join_url": "https://x.test/j", "title": None})
    card = card_from_payload(bare)
    assert (card.title, card.context_name, card.conference_type, card.started_at, card.ended_at) == (
        "",
        "",
        None,
        None,
        None,
    )
    assert RelinkPayload.from_stored({}).reason == ""


def test_keys_a_newer_version_adds_are_ignored() -> None:
    payload = AlertPayload.from_stored(OLD_STARTED | {"recording_count": 2, "host": {"name": "Ada"}})
    assert payload.to_stored() == OLD_STARTED


def test_a_card_parsed_from_a_row_has_aware_datetimes() -> None:
    card = card_from_payload(AlertPayload.from_stored(OLD_ENDED))
    assert card.started_at == STARTED
    assert card.ended_at == STARTED + timedelta(minutes=40)
    assert (card.conference_id, card.title, card.join_url) == (42, "Lecture 3", OLD_STARTED["join_url"])


def test_an_unknown_event_is_recognised_as_unknown() -> None:
    assert OutboxEvent.known("post") is OutboxEvent.POST
    assert OutboxEvent.known("hologram") is None
    assert OutboxEvent.known("") is None


@pytest.mark.parametrize(
    ("model", "stored", "reason"),
    [
        (
            AlertPayload,
            {},
            "unreadable AlertPayload: conference_id: Field required; join_url: Field required",
        ),
        (
            AlertPayload,
            OLD_STARTED | {"started_at": "yesterday"},
            "started_at: Input should be a valid datetime",
        ),
        (
            AlertPayload,
            OLD_STARTED | {"conference_id": "forty-two"},
            "conference_id: Input should be a valid",
        ),
        (PostPayload, {"message": "hello"}, "unreadable PostPayload: message: Input should be"),
        (
            PostPayload,
            OLD_POST | {"thread_of": {"conference_id": 42}},
            "thread_of.started_at: Field required",
        ),
        (RelinkPayload, None, "unreadable RelinkPayload: payload: Input should be a valid dictionary"),
    ],
)
def test_a_payload_that_does_not_fit_its_model_says_what_is_wrong(
    model: type[AlertPayload | PostPayload | RelinkPayload], stored: object, reason: str
) -> None:
    with pytest.raises(UnreadablePayload) as raised:
        model.from_stored(stored)
    assert reason in str(raised.value)


def test_numbered_edits_keep_their_dedup_keys() -> None:
    """ended -> live -> ended: each edit is its own row, keyed as the poller always keyed them."""
    base = "T1:U1:42:1772443815"
    assert _row(_event())["dedup_key"] == f"{base}:started"
    assert _row(_event("ended"))["dedup_key"] == f"{base}:ended"
    reopened = _row(_event(), edit=OutboxEvent.REOPENED, occurrence=1)
    assert (reopened["event"], reopened["dedup_key"]) == ("reopened", f"{base}:reopened:1")
    assert reopened["payload"]["ended_at"] is None, "a reopened card is live"
    again = _row(_event("ended"), edit=OutboxEvent.ENDED, occurrence=2)
    assert (again["event"], again["dedup_key"]) == ("ended", f"{base}:ended:2")
    assert again["payload"]["ended_at"] == NOW.isoformat()


def test_only_a_start_is_held_in_quiet_hours() -> None:
    assert _row(_event(), quiet=True)["status"] == "held"
    assert _row(_event("ended"), quiet=True)["status"] == "pending"
    assert _row(_event(), edit=OutboxEvent.REOPENED, occurrence=1, quiet=True)["status"] == "pending"


def test_a_diff_event_never_becomes_a_non_card_row() -> None:
    with pytest.raises(ValueError, match="card row"):
        _row(_event(), edit=OutboxEvent.POST)


UPLOAD = {
    "version": 1,
    "message": {
        "text": "3 of 5 attended",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
    },
    "file": {"filename": "attendance.csv", "title": "Attendance", "content": "a,b\n", "snippet_type": "csv"},
}


def test_an_upload_row_stores_the_file_whole_and_reads_back_identically() -> None:
    payload = UploadPayload.from_stored(UPLOAD)
    assert payload.file.content == "a,b\n" and payload.to_stored() == UPLOAD
    assert UploadPayload.from_stored(UPLOAD | {"checksum": "x"}).to_stored() == UPLOAD, "newer keys ignored"


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        (UPLOAD | {"version": 2}, "version: Input should be 1"),
        ({k: v for k, v in UPLOAD.items() if k != "file"}, "file: Field required"),
        (UPLOAD | {"file": {**UPLOAD["file"], "filename": ""}}, "file.filename: String should have at least"),
        (
            UPLOAD | {"file": {**UPLOAD["file"], "content": "x" * 1_000_001}},
            "file.content: String should have",
        ),
    ],
)
def test_an_upload_this_version_cannot_send_says_why(stored: dict[str, Any], reason: str) -> None:
    with pytest.raises(UnreadablePayload) as raised:
        UploadPayload.from_stored(stored)
    assert reason in str(raised.value)
