"""Issue 14's pure parts: which bucket a unit is in, a replica's fair share, what a heartbeat takes or
hands back, and the in-memory schedule (fixed rate, jitter downwards only, takeovers spread)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from bot.domain.buckets import (
    JITTER,
    Schedule,
    bucket_of,
    fair_share,
    first_polls,
    jittered,
    next_due,
    plan_leases,
)

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)


def test_a_units_bucket_is_stable_in_range_and_depends_on_its_kind() -> None:
    assert bucket_of("user", 12345) == bucket_of("user", 12345)
    assert all(0 <= bucket_of("user", n, 256) < 256 for n in range(1, 5000))
    assert [bucket_of("user", n) for n in range(1, 50)] != [
        bucket_of("subscription", n) for n in range(1, 50)
    ]
    assert (2**31 - 1) * 2654435761 + 0xFFFF < 2**63, "the SQL bigint product of the largest id fits"


def test_sequential_ids_spread_evenly_over_the_buckets() -> None:
    counts = Counter(bucket_of("user", n, 256) for n in range(1, 25601))
    assert len(counts) == 256
    assert max(counts.values()) <= 2 * min(counts.values())


def test_fair_shares_cover_every_bucket() -> None:
    assert fair_share(256, 1) == 256
    assert fair_share(256, 2) == 128
    assert fair_share(256, 3) * 3 >= 256
    assert fair_share(256, 0) == 256


def test_a_replica_takes_up_to_its_share_and_hands_back_its_surplus() -> None:
    assert plan_leases(held=[], available=range(10), share=4).take == (0, 1, 2, 3)
    assert plan_leases(held=[0, 1], available=[1, 2, 3, 4], share=4).take == (2, 3)
    full = plan_leases(held=range(8), available=[9], share=8)
    assert full.take == () and full.release == ()
    shrinking = plan_leases(held=range(8), available=[], share=5)
    assert shrinking.release == (5, 6, 7) and shrinking.take == ()


def test_next_due_keeps_its_rhythm_and_a_late_unit_starts_afresh() -> None:
    assert next_due(NOW, NOW + timedelta(seconds=3), INTERVAL) == NOW + INTERVAL
    late = NOW + timedelta(minutes=5)
    assert next_due(NOW, late, INTERVAL) == late + INTERVAL


def test_jitter_only_shortens_a_period() -> None:
    rng = random.Random(7)
    periods = [jittered(INTERVAL, rng) for _ in range(1000)]
    assert all(INTERVAL * (1 - JITTER) <= p <= INTERVAL for p in periods)


def test_a_taken_over_bucket_spreads_its_first_polls_until_its_deadline() -> None:
    until = NOW + INTERVAL
    due = first_polls(range(100), NOW, until, random.Random(1))
    assert set(due) == set(range(100))
    assert all(NOW <= moment < until for moment in due.values())
    assert len(set(due.values())) == 100, "evenly spread, not a burst"
    assert set(first_polls([1, 2], NOW, NOW - INTERVAL).values()) == {NOW}, "overdue: all at once"


def test_the_schedule_pops_due_units_in_order_and_honours_requests_and_removals() -> None:
    schedule = Schedule()
    for unit, seconds in [(1, 10), (2, 5), (3, 20), (4, 1)]:
        schedule.put(unit, NOW + timedelta(seconds=seconds))
    schedule.remove(4)
    schedule.put(3, NOW + timedelta(seconds=2))  # rescheduled earlier: the old entry is stale
    assert schedule.pop_due(NOW + timedelta(seconds=9), 10) == [
        (3, NOW + timedelta(seconds=2)),
        (2, NOW + timedelta(seconds=5)),
    ]
    assert len(schedule) == 1 and 1 in schedule
    schedule.request(1, NOW)
    assert schedule.due_at(1) == NOW
    schedule.request(1, NOW + timedelta(seconds=1))
    assert schedule.due_at(1) == NOW, "a request never makes a unit later"
    assert schedule.pop_due(NOW, 1) == [(1, NOW)]
    assert schedule.pop_due(NOW + timedelta(days=1), 10) == []


def test_the_schedules_lag_is_its_most_overdue_unit_and_a_back_off_is_not_lag() -> None:
    schedule = Schedule()
    assert schedule.lag(NOW) == timedelta(0)
    schedule.put(1, NOW + timedelta(minutes=20))  # backing off
    assert schedule.lag(NOW) == timedelta(0)
    schedule.put(2, NOW - timedelta(seconds=30))
    assert schedule.lag(NOW) == timedelta(seconds=30)
    schedule.remove(2)
    assert schedule.lag(NOW) == timedelta(0)


def test_many_reschedules_do_not_grow_the_heap_without_bound() -> None:
    schedule = Schedule()
    for round_ in range(200):
        for unit in range(10):
            schedule.put(unit, NOW + timedelta(seconds=round_))
    assert len(schedule) == 10
    assert len(schedule._heap) <= 2 * 10 + 64 + 1
