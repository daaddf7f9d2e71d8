"""bench.scale's arithmetic: the projection for 1M users every 30 s, and the waits after a SIGKILL."""

from __future__ import annotations

import pytest

from bench.common import poll_starts
from bench.scale import after_kill, project


def test_the_projection_divides_the_needed_rate_by_one_replicas_and_multiplies_cpu_per_poll() -> None:
    p = project(
        users=1_000_000,
        interval=30,
        per_replica_rate=3_500,
        bot_cpu_ms=0.2,
        pg_cpu_ms=0.05,
        rows_per_poll=0.04,
    )
    assert p.polls_per_second == pytest.approx(33_333.33, rel=1e-6)
    assert p.replicas == 10, "33,333 / 3,500 = 9.52, rounded up"
    assert p.bot_cores == pytest.approx(6.667, rel=1e-3)
    assert p.pg_cores == pytest.approx(1.667, rel=1e-3)
    assert p.rows_per_second == pytest.approx(1_333.3, rel=1e-3)
    assert any("ceil(33,333 / 3,500" in line for line in p.arithmetic())


def test_an_exact_multiple_needs_no_extra_replica_and_unknown_pg_figures_stay_unknown() -> None:
    p = project(users=90_000, interval=30, per_replica_rate=1_000, bot_cpu_ms=0.3)
    assert p.replicas == 3
    assert p.pg_cores is None and p.rows_per_second is None
    assert len(p.arithmetic()) == 3


def test_after_a_kill_each_user_waits_until_its_first_poll_after_it() -> None:
    times = {"a": [0.0, 30.0, 60.0], "b": [10.0, 50.0], "c": [5.0]}
    waits, gaps, unpolled = after_kill(times, kill=40.0, end=70.0)
    assert sorted(waits) == [10.0, 20.0]
    assert sorted(gaps) == [30.0, 40.0]
    assert unpolled == 1, "c was not polled again before the end"


def test_requests_close_together_are_one_poll() -> None:
    assert poll_starts([0.0, 0.2, 0.5, 30.0, 30.1, 61.0]) == [0.0, 30.0, 61.0]
