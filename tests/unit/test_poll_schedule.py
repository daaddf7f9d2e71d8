"""When a polled unit is due next: counted from when it was due, so a late claim does not stretch the
periods after it (issue 9: a busy process made healthy users' poll period p99 interval + 3.5 s)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bot.engine.poller import next_due

DUE = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=10)


def test_a_unit_claimed_late_keeps_its_rhythm() -> None:
    claimed = DUE + timedelta(seconds=3)
    assert next_due(DUE, claimed, INTERVAL) == DUE + INTERVAL, "10 s after it was due, not after the claim"


def test_a_period_is_the_interval_plus_the_change_in_lag_not_plus_the_lag() -> None:
    lags = [3.0, 0.5, 2.0, 3.5, 1.0]  # how late each claim came
    due, polls = DUE, []
    for lag in lags:
        polls.append(due + timedelta(seconds=lag))
        due = next_due(due, polls[-1], INTERVAL)
    periods = [(b - a).total_seconds() for a, b in itertools.pairwise(polls)]
    assert periods == [10 + later - earlier for earlier, later in itertools.pairwise(lags)]


def test_a_unit_claimed_more_than_an_interval_late_starts_afresh_from_now() -> None:
    back_from_downtime = DUE + timedelta(minutes=5)
    assert next_due(DUE, back_from_downtime, INTERVAL) == back_from_downtime + INTERVAL, "no catch-up burst"
