"""Poll concurrency from Little's law (issue 14): slots = units / interval x hold time x headroom, between a
floor and POLL_CONCURRENCY, cut by AIMD when Canvas throttles a noticeable share of answers."""

from __future__ import annotations

import pytest

from bot.domain.concurrency import (
    FOLD_SECONDS,
    ConcurrencyControl,
    HoldTime,
    ThrottleCap,
    littles_law_limit,
)


def test_the_limit_is_rate_times_hold_time_times_headroom_rounded_up() -> None:
    # 100k users every 30 s at 100 ms: 3,333/s x 0.1 s = 333.3 busy on average; x 1.5 -> 500.
    assert (
        littles_law_limit(target_rate=100_000 / 30, hold_seconds=0.1, headroom=1.5, floor=4, ceiling=10_000)
        == 500
    )
    assert littles_law_limit(target_rate=10, hold_seconds=0.11, headroom=1.0, floor=1, ceiling=100) == 2


def test_the_floor_holds_for_a_small_deployment_and_the_ceiling_caps_a_large_one() -> None:
    assert littles_law_limit(target_rate=0.5, hold_seconds=0.1, headroom=2, floor=4, ceiling=200) == 4
    assert littles_law_limit(target_rate=0, hold_seconds=0.1, headroom=2, floor=4, ceiling=200) == 4
    assert littles_law_limit(target_rate=10_000, hold_seconds=1, headroom=2, floor=4, ceiling=200) == 200
    assert littles_law_limit(target_rate=10_000, hold_seconds=1, headroom=2, floor=4, ceiling=2) == 2


def test_hold_time_takes_the_first_sample_then_moves_by_windows_not_by_samples() -> None:
    hold = HoldTime(tau=10.0)
    hold.observe(0.1, now=0.0)
    assert hold.value == pytest.approx(0.1)
    for _ in range(1000):  # a thousand slow polls within one window change nothing yet
        hold.observe(1.0, now=0.1)
    assert hold.value == pytest.approx(0.1)
    hold.fold(now=FOLD_SECONDS)
    assert 0.1 < hold.value < 0.2, "half a second of slow answers moves a 10 s average a little"
    for step in range(1, 200):
        hold.observe(1.0, now=FOLD_SECONDS * (step + 1))
    assert hold.value == pytest.approx(1.0, abs=0.01), "a minute later the average is the new latency"


def test_the_limit_is_the_ceiling_until_demand_and_latency_are_measured() -> None:
    control = ConcurrencyControl(ceiling=200, interval=30)
    assert control.limit(now=0) == 200
    control.held(0.1, now=0)
    assert control.limit(now=0) == 200, "units not counted yet"
    control.demand(3_000, interval=30)  # 100 a second x 0.1 s x 2
    assert control.limit(now=0) == 20


def test_a_throttled_share_halves_the_limit_once_per_cooldown_then_it_grows_back() -> None:
    control = ConcurrencyControl(ceiling=200, headroom=2.0, interval=10)
    control.demand(10_000, interval=10)
    control.held(0.05, now=0)  # 1,000/s x 0.05 x 2 = 100
    assert control.limit(now=0) == 100
    now = 0.0
    for _ in range(10):  # a burst of throttles within one cooldown
        now += 0.1
        control.answered(throttled=True, now=now)
    # Halved once for the whole burst (not ten times), at 0.1 s; 0.9 s later 1.8 slots came back.
    assert control.limit(now) == 51
    now += 1.0
    control.answered(throttled=True, now=now)
    assert control.limit(now) == 26, "still throttled a second later: (51.8 + 2) / 2"
    now += 5.0
    assert control.limit(now) == 36, "two slots a second come back"
    now += 100.0
    assert control.limit(now) == 100, "recovered: Little's law again, the cap lifted"
    assert control.throttle.cap is None


def test_one_hot_token_among_many_answers_does_not_shrink_the_limit() -> None:
    cap = ThrottleCap(share=0.01, cooldown=1.0)
    for i in range(1_000):
        cap.answer(throttled=i == 500, now=i / 1_000, current_limit=100, floor=4)
    cap.answer(throttled=False, now=1.0, current_limit=100, floor=4)
    assert cap.cap is None, "1 throttle in 1,001 answers is below 1%"


def test_throttles_never_cut_below_the_floor() -> None:
    control = ConcurrencyControl(ceiling=200, floor=4, interval=10)
    control.demand(1_000, interval=10)
    control.held(0.05, now=0)  # 100/s x 0.05 x 2 = 10
    for second in range(1, 20):
        control.answered(throttled=True, now=float(second))
    assert control.limit(now=19.0) == 4


def test_polls_waiting_for_a_slot_are_demand_so_a_backlog_drains_at_the_ceiling() -> None:
    control = ConcurrencyControl(ceiling=200, headroom=2.0, interval=30)
    control.demand(3_000, interval=30)  # 100 a second
    control.held(0.1, now=0)
    assert control.limit(now=0) == 20
    assert control.limit(now=0, waiting=50) == 30, "a tick's due polls: (100 + 50/s) x 0.1 s x 2"
    assert control.limit(now=0, waiting=3_000) == 200, "every unit overdue (a restart): the ceiling"
