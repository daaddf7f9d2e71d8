"""bench.slow_users's arithmetic: a stalled healthy user must show as a long period, never hide."""

from __future__ import annotations

import math

from bench.common import poll_starts
from bench.slow_users import alert_latencies, alert_split, periods, tracebacks, user_gaps


def test_requests_close_together_are_one_poll() -> None:
    # a poll's page and course-name look-up 30 ms apart, then the next poll 10 s later
    assert poll_starts([100.03, 100.0, 110.0, 110.5]) == [100.0, 110.0]


def test_gap_straddling_the_window_start_counts_and_the_open_end_is_reported() -> None:
    closed, open_end, polled = user_gaps([95.0, 105.0, 115.0], window=(100.0, 130.0))
    assert closed == [10.0, 10.0]
    assert open_end == 15.0
    assert polled == 2


def test_a_user_stalled_through_the_window_counts_as_a_missed_period() -> None:
    times = {"steady": [90.0, 100.0, 110.0, 120.0, 130.0], "stalled": [95.0]}
    found = periods(times, ["steady", "stalled"], window=(100.0, 130.0), target=12.0)
    assert sorted(found.gaps) == [10.0, 10.0, 10.0, 10.0, 35.0]
    assert found.unpolled == 1
    assert found.longest_without_poll == 35.0


def test_an_open_end_within_the_target_is_not_a_period() -> None:
    found = periods({"a": [100.0, 110.0, 125.0]}, ["a"], window=(100.0, 130.0), target=12.0)
    assert found.gaps == [10.0, 15.0]


def test_alert_latency_matches_each_conference_by_its_join_link_once() -> None:
    calls: list[dict[str, object]] = [
        {"at": 112.0, "args": {"text": "live: <https://c/courses/1/conferences/7/join|Join>"}},
        {"at": 140.0, "args": {"text": "again <https://c/courses/1/conferences/7/join|Join>"}},
        {"at": 105.0, "args": {"text": "<https://c/courses/2/conferences/70/join|Join>"}},
    ]
    found = alert_latencies({7: 100.0, 70: 101.0, 8: 100.0}, calls)
    assert found == {7: 12.0, 70: 4.0}
    assert math.isinf(found.get(8, math.inf))


def test_each_traceback_in_the_bot_log_is_named_by_its_exception_line() -> None:
    log = "\n".join(
        [
            "WARNING poll tick failed",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "    raise TimeoutError()",
            "TimeoutError: slow",
            "INFO fine",
        ]
    )
    assert tracebacks(log) == ["TimeoutError: slow"]


def test_alert_latency_splits_into_waiting_for_the_poll_the_write_and_the_dispatch() -> None:

    split = alert_split(
        starts={7: 100.0, 8: 100.0},
        latencies={7: 6.0, 8: 3.0},
        token_of={7: "a", 8: "b"},
        times_by_token={"a": [95.0, 104.0, 104.02], "b": [99.0]},  # b: no request after its start
        enqueued={7: 104.5, 8: 102.0},
    )
    assert split.wait_for_poll == [4.0]
    assert split.poll_to_outbox == [0.5]
    assert split.outbox_to_slack == [1.5]
