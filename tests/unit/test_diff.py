"""The pure diff: what counts as a start or an end, without servers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.diff import Seen, diff, live_filter, seen_from, vanished
from bot.domain.models import Conference

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def conf(cid: int = 1001, *, started: timedelta | None = timedelta(minutes=5), **extra: Any) -> Conference:
    return Conference.model_validate(
        {
            "id": cid,
            "title": f"Conference {cid}",
            "context_type": "Course",
            "context_id": 7,
            "started_at": (NOW - started).isoformat() if started is not None else None,
            **extra,
        }
    )


def kinds(result: Any) -> list[tuple[str, int]]:
    return [(e.kind, e.conference_id) for e in result.events]


def test_new_live_conference_starts_once() -> None:
    first = diff({}, [conf()], NOW)
    assert kinds(first) == [("started", 1001)]
    again = diff(first.keep, [conf()], NOW + timedelta(minutes=1))
    assert kinds(again) == []


def test_a_conference_live_before_linking_is_news() -> None:
    assert kinds(diff({}, [conf(started=timedelta(hours=5))], NOW)) == [("started", 1001)]


def test_new_started_at_is_a_new_session_ending_the_old_one() -> None:
    before = {1001: seen_from(conf(started=timedelta(hours=2)))}
    result = diff(before, [conf(started=timedelta(minutes=1))], NOW)
    assert kinds(result) == [("ended", 1001), ("started", 1001)]
    assert result.keep[1001].started_at == NOW - timedelta(minutes=1)


def test_vanished_with_known_end_ends_at_canvas_time() -> None:
    before = {1001: seen_from(conf())}
    ended = conf(ended_at=(NOW - timedelta(minutes=1)).isoformat())
    result = diff(before, [], NOW, resolved={1001: ended})
    assert kinds(result) == [("ended", 1001)]
    assert result.events[0].ended_at == NOW - timedelta(minutes=1)
    assert not result.keep[1001].is_open, "the ended session is remembered, so a restart is a new one"
    assert vanished(result.keep, []) == [], "an ended session is never looked up again"


def test_one_missing_poll_is_not_an_end() -> None:
    before = {1001: seen_from(conf())}
    flap = diff(before, [], NOW)
    assert kinds(flap) == [] and flap.keep[1001].missing_polls == 1
    back = diff(flap.keep, [conf()], NOW + timedelta(minutes=1))
    assert kinds(back) == [], "a list that flaps for one poll must not re-alert"
    gone = diff(flap.keep, [], NOW + timedelta(minutes=1))
    assert kinds(gone) == [("ended", 1001)] and gone.events[0].ended_at is None


def test_zombie_past_24_hours_ends() -> None:
    before = {1001: Seen(1001, NOW - timedelta(hours=25), "Old", "Course", 7)}
    assert kinds(diff(before, [], NOW)) == [("ended", 1001)]


def test_live_filter_applies_canvas_rule_to_course_listings() -> None:
    listing = [
        conf(1, started=timedelta(hours=23, minutes=59)),
        conf(2, started=timedelta(hours=24, minutes=1)),
        conf(3, started=None),
        conf(4, ended_at=(NOW - timedelta(seconds=1)).isoformat()),
        conf(5, ended_at=(NOW + timedelta(hours=1)).isoformat()),
    ]
    assert [c.id for c in live_filter(listing, NOW)] == [1, 5]


def test_vanished_lists_only_missing_ones() -> None:
    before = {1: seen_from(conf(1)), 2: seen_from(conf(2))}
    assert [s.conference_id for s in vanished(before, [conf(1)])] == [2]


def test_details_that_say_not_ended_outweigh_a_long_flap() -> None:
    """Fails before the fix: two missed polls ended it although Canvas's details said ended_at null."""
    seen = {1001: seen_from(conf())}
    details = {1001: conf()}
    for minute in range(1, 6):
        result = diff(seen, [], NOW + timedelta(minutes=minute), resolved=details)
        assert kinds(result) == [], f"poll {minute} of the flap"
        seen = result.keep
    assert seen[1001].missing_polls == 5
    assert kinds(diff(seen, [conf()], NOW + timedelta(minutes=6))) == [], "back in the list: no new alert"


def test_details_of_another_session_do_not_keep_the_old_one_live() -> None:
    seen = {1001: seen_from(conf(started=timedelta(hours=3)))}
    newer = {1001: conf(started=timedelta(minutes=1))}
    first = diff(seen, [], NOW, resolved=newer)
    assert kinds(first) == []
    assert kinds(diff(first.keep, [], NOW, resolved=newer)) == [("ended", 1001)]


def _ended_at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def test_a_same_day_restart_is_a_new_session_keyed_by_the_previous_end() -> None:
    """Canvas keeps started_at on a restart and only clears ended_at: the dedup key must not be
    started_at alone, or the second session of the day is never alerted."""
    first = diff({}, [conf(started=timedelta(hours=2))], NOW - timedelta(hours=1))
    ended = diff(
        first.keep, [], NOW, resolved={1001: conf(started=timedelta(hours=2), ended_at=_ended_at(5))}
    )
    assert kinds(ended) == [("ended", 1001)]

    again = diff(ended.keep, [conf(started=timedelta(hours=2))], NOW + timedelta(minutes=10))
    assert kinds(again) == [("started", 1001)]
    session = again.events[0]
    assert session.started_at == NOW - timedelta(minutes=5) and session.again
    assert again.keep[1001].first_started_at == NOW - timedelta(hours=2)
    steady = diff(again.keep, [conf(started=timedelta(hours=2))], NOW + timedelta(minutes=11))
    assert kinds(steady) == [], "one alert per session, however many polls see it"

    over = diff(
        steady.keep,
        [],
        NOW + timedelta(minutes=30),
        resolved={1001: conf(started=timedelta(hours=2), ended_at=_ended_at(-29))},
    )
    assert [(e.kind, e.started_at) for e in over.events] == [("ended", NOW - timedelta(minutes=5))]


def test_a_flap_after_an_end_without_evidence_is_the_same_session() -> None:
    before = {1001: replace(seen_from(conf()), missing_polls=1)}
    gone = diff(before, [], NOW)  # grace polls ran out: no word from Canvas
    assert kinds(gone) == [("ended", 1001)] and 1001 not in gone.keep
    back = diff(gone.keep, [conf()], NOW + timedelta(minutes=1))
    assert [(e.kind, e.again) for e in back.events] == [("started", False)], "same session: a reopen"


def test_a_session_beyond_the_live_scope_opens_from_a_hint_and_ends_only_on_canvas_word() -> None:
    week_old = conf(started=timedelta(days=7))
    opened_at = NOW - timedelta(seconds=2)
    not_running = diff(
        {},
        [],
        NOW,
        opened={1001: opened_at},
        resolved={1001: conf(started=timedelta(days=7), ended_at=_ended_at(60))},
    )
    assert kinds(not_running) == [], "a hint is not evidence when Canvas says the room is closed"

    opened = diff({}, [], NOW, opened={1001: opened_at}, resolved={1001: week_old})
    assert [(e.kind, e.started_at, e.again) for e in opened.events] == [("started", opened_at, True)]
    assert opened.keep[1001].beyond_live_scope
    twice = diff(
        opened.keep, [], NOW + timedelta(seconds=5), opened={1001: opened_at}, resolved={1001: week_old}
    )
    assert kinds(twice) == []

    for later in (timedelta(minutes=5), timedelta(hours=3)):  # missing from state=live: no fake end
        quiet = diff(opened.keep, [], NOW + later)
        assert kinds(quiet) == [] and 1001 in quiet.keep
    let_go = diff(opened.keep, [], NOW + timedelta(hours=25))
    assert kinds(let_go) == [] and 1001 not in let_go.keep, "after a day it is let go without an end"
    closed = diff(
        opened.keep,
        [],
        NOW + timedelta(hours=1),
        resolved={1001: conf(started=timedelta(days=7), ended_at=_ended_at(-59))},
    )
    assert [(e.kind, e.ended_at) for e in closed.events] == [("ended", NOW + timedelta(minutes=59))]


def test_a_restart_within_the_second_of_the_start_still_gets_its_own_session() -> None:
    """Canvas renders whole seconds: started and ended in one second must not give the restart the first
    session's key (its alert would be taken for a duplicate)."""
    start = conf(started=timedelta(0))
    first = diff({}, [start], NOW)
    ended = diff(first.keep, [], NOW, resolved={1001: conf(started=timedelta(0), ended_at=NOW.isoformat())})
    again = diff(ended.keep, [start], NOW)
    assert [e.started_at for e in again.events] == [NOW + timedelta(seconds=1)]
