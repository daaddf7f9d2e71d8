"""Reading Canvas Live Events: only a web-conference `asset_accessed` at level "participate" is a join."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.live_events import ConferenceJoined, conference_joined, local_id

SHARD = 2107 * 10**13


def join_event(**overrides: Any) -> dict[str, Any]:
    """A conference join as Canvas emits it (doc/api/data_services asset_accessed, ids as strings)."""
    event: dict[str, Any] = {
        "metadata": {
            "root_account_uuid": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
            "root_account_id": str(SHARD + 1),
            "user_id": str(SHARD + 42),
            "context_type": "Course",
            "context_id": str(SHARD + 7),
            "context_role": "StudentEnrollment",
            "request_id": "1dd9dc6f-2fb0-4c19-a6c5-7ee1bf3ed295",
            "producer": "canvas",
            "event_name": "asset_accessed",
            "event_time": "2019-11-01T00:09:07.150Z",
        },
        "body": {
            "asset_name": "Office hours",
            "asset_type": "web_conference",
            "asset_id": str(SHARD + 1001),
            "asset_subtype": None,
            "category": "conferences",
            "role": "StudentEnrollment",
            "level": "participate",
        },
    }
    for path, value in overrides.items():
        part, key = path.split("__")
        if value is _DROP:
            del event[part][key]
        else:
            event[part][key] = value
    return event


_DROP = object()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1001, 1001),
        ("1001", 1001),
        (SHARD + 1001, 1001),
        (str(SHARD + 1001), 1001),
        (str(2**63 - 1), (2**63 - 1) % 10**13),
        ("007", 7),
    ],
)
def test_local_id_drops_the_shard_of_a_global_id(value: int | str, expected: int) -> None:
    assert local_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -5,
        "0",
        "-5",
        "+5",
        " 12",
        "1_000",
        "12a",
        "",
        "\u0661\u0662",
        "²",
        str(2**63),
        "9" * 5000,
        True,
        SHARD,
        str(SHARD),
    ],
)
def test_local_id_refuses_what_names_nothing(value: Any) -> None:
    with pytest.raises(ValueError):
        local_id(value)


def test_a_join_with_global_ids_reads_as_local_ids_in_utc() -> None:
    assert conference_joined(join_event()) == ConferenceJoined(
        conference_id=1001,
        user_id=42,
        context_type="Course",
        context_id=7,
        event_time=datetime(2019, 11, 1, 0, 9, 7, 150000, tzinfo=UTC),
    )


def test_a_join_with_local_ids_and_an_offset_time() -> None:
    joined = conference_joined(
        join_event(
            body__asset_id="1001",
            metadata__user_id=42,
            metadata__context_type="Group",
            metadata__context_id="144",
            metadata__event_time="2019-11-01T02:09:07+02:00",
        )
    )
    assert joined == ConferenceJoined(1001, 42, "Group", 144, datetime(2019, 11, 1, 0, 9, 7, tzinfo=UTC))


def test_signed_claims_beside_the_envelope_change_nothing() -> None:
    claims = {**join_event(), "iat": 1_700_000_000, "exp": 1_700_000_300}
    joined = conference_joined(claims)
    assert joined is not None and joined.conference_id == 1001


def test_a_join_without_user_or_context_still_names_its_conference() -> None:
    joined = conference_joined(
        join_event(metadata__user_id=_DROP, metadata__context_type=None, metadata__context_id="x")
    )
    assert joined is not None
    assert (joined.conference_id, joined.user_id, joined.context_type, joined.context_id) == (
        1001,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"metadata__event_name": "logged_in"},
        {"metadata__event_name": _DROP},
        {"body__asset_type": "course"},  # the conferences list page, not a join
        {"body__asset_type": "group"},
        {"body__level": None},  # viewing, not participating
        {"body__level": "submit"},
        {"body__asset_id": _DROP},
        {"body__asset_id": "abc"},
        {"body__asset_id": None},
        {"body__asset_id": str(SHARD)},
        {"metadata__event_time": _DROP},
        {"metadata__event_time": "yesterday"},
        {"metadata__event_time": "2019-11-01T00:09:07"},  # no zone: not what Canvas sends
        {"metadata__event_time": 1572566947},
    ],
)
def test_anything_else_is_not_a_join(overrides: dict[str, Any]) -> None:
    assert conference_joined(join_event(**overrides)) is None


@pytest.mark.parametrize(
    "event",
    [{}, {"metadata": None, "body": {}}, {"metadata": {}, "body": []}, {"metadata": "x", "body": "y"}],
)
def test_a_malformed_envelope_is_not_a_join(event: dict[str, Any]) -> None:
    assert conference_joined(event) is None


def test_reading_does_not_change_the_event() -> None:
    event = join_event()
    before = copy.deepcopy(event)
    conference_joined(event)
    assert event == before
