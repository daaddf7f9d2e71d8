"""Pacing of Slack messages and history reads: a sustained rate with a short burst, pure (no clock)."""

from __future__ import annotations

import pytest

from bot.domain.pacing import ChannelPacing, TokenBucket
from bot.engine.delivery import HistoryBudget

DM = ("T1", "UADA")


def test_a_channel_takes_a_burst_at_once_then_one_a_second() -> None:
    pacing = ChannelPacing(rate=1.0, burst=4)
    assert [pacing.take(DM, 100.0) for _ in range(4)] == [0.0] * 4, "four live alerts go out together"
    assert pacing.take(DM, 100.0) == pytest.approx(1.0), "the fifth waits a second"
    assert pacing.take(DM, 100.5) == pytest.approx(0.5)
    assert pacing.take(DM, 101.0) == 0.0
    assert pacing.take(DM, 101.0) == pytest.approx(1.0), "sustained: one a second"


def test_channels_are_paced_apart() -> None:
    pacing = ChannelPacing(rate=1.0, burst=1)
    assert pacing.take(DM, 0.0) == 0.0
    assert pacing.take(("T1", "UBOB"), 0.0) == 0.0
    assert pacing.take(("T2", "UADA"), 0.0) == 0.0, "the same user id in another workspace is another DM"
    assert pacing.take(DM, 0.0) == pytest.approx(1.0)


def test_a_quiet_channel_refills_to_its_burst_and_no_further() -> None:
    pacing = ChannelPacing(rate=1.0, burst=2)
    pacing.take(DM, 0.0)
    pacing.take(DM, 0.0)
    assert [pacing.take(DM, 3600.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_a_retry_after_holds_the_bucket_then_allows_one() -> None:
    bucket = TokenBucket(rate=1.0, burst=5)
    bucket.hold(30.0)
    assert bucket.take(10.0) == pytest.approx(20.0)
    assert bucket.take(30.0) == 0.0
    assert bucket.take(30.0) == pytest.approx(1.0), "after a 429, one, then the sustained rate"


def test_a_bucket_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="room for one"):
        TokenBucket(rate=1.0, burst=0.5)
    with pytest.raises(ValueError, match="positive rate"):
        ChannelPacing(rate=0.0)


def test_history_reads_have_no_burst_at_one_a_minute_and_some_at_tier_three() -> None:
    distributed = HistoryBudget.for_rate(1)
    assert distributed.take(0.0) == 0.0
    assert distributed.take(0.0) == pytest.approx(60.0)
    internal = HistoryBudget.for_rate(50)
    assert [internal.take(0.0) for _ in range(5)] == [0.0] * 5
    assert internal.take(0.0) == pytest.approx(1.2), "then 50 a minute"


def test_a_message_slack_never_saw_is_given_back() -> None:
    pacing = ChannelPacing(rate=1.0, burst=2)
    assert pacing.take(DM, 0.0) == 0.0
    pacing.refund(DM)  # a 503 from Slack's edge: nothing was posted
    assert [pacing.take(DM, 0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    pacing.refund(("T9", "UNKNOWN"))  # nothing taken there: nothing to give back, no error
    for _ in range(5):
        pacing.refund(DM)
    assert [pacing.take(DM, 0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)], "never past the burst"
