"""Per-channel pacing of the outbox: Slack's "about one message a second per channel, bursts allowed".

Slack documents chat.postMessage as allowing roughly one message a second to one channel, with
"generous burst behavior"; past that it answers 429 with Retry-After (which the dispatcher honours).
A strict one-a-second spacing cost real alerts: after an outage a student with four conferences live at
once got the fourth card four seconds late, after some of those sessions had already ended. A token
bucket keeps the sustained rate at one a second and lets a short burst through at once.

Pure: the caller passes the time (seconds on any monotonic scale).
"""

from __future__ import annotations

CHANNEL_RATE = 1.0  # messages a second to one channel, sustained
CHANNEL_BURST = 4.0  # messages one channel may take at once after a quiet spell
_FORGET_AFTER = 10_000  # destinations remembered before the full buckets are dropped
_ROUNDING = 1e-9  # a bucket this close to a whole message has it (float sums of rate * seconds)


def _check(rate: float, burst: float) -> None:
    if rate <= 0 or burst < 1:
        raise ValueError("a token bucket needs a positive rate and room for one message")


class TokenBucket:
    """`rate` a second sustained, up to `burst` at once after a quiet spell; `hold` obeys a Retry-After."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        _check(rate, burst)
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = float("-inf")  # full from the start

    def take(self, now: float) -> float:
        """0.0 when one may go now (and it is counted), else the seconds until one may."""
        if now < self._at:  # held (Retry-After) until then
            return self._at - now + max(0.0, 1 - self._tokens) / self.rate
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1 - _ROUNDING:
            return (1 - self._tokens) / self.rate
        self._tokens = max(0.0, self._tokens - 1)
        return 0.0

    def refund(self) -> None:
        """Give back the message last taken: Slack never saw it (a 502/503 from its edge, a connection
        that never opened, a send called off), so it used none of the channel's rate. Without this an
        outage drained every DM's burst, and the backlog trickled out at one a second after it."""
        self._tokens = min(self.burst, self._tokens + 1)

    def hold(self, until: float) -> None:
        """Nothing before `until`, then one: what a 429's Retry-After says."""
        self._tokens = 1.0
        self._at = max(self._at, until)

    def full(self, now: float) -> bool:
        return now >= self._at and self._tokens + (now - self._at) * self.rate >= self.burst


class ChannelPacing:
    """A token bucket per destination: `take` spends one message or says how long to wait for it."""

    def __init__(self, rate: float = CHANNEL_RATE, burst: float = CHANNEL_BURST) -> None:
        _check(rate, burst)
        self.rate = rate
        self.burst = burst
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def take(self, key: tuple[str, str], now: float) -> float:
        """0.0 when a message to `key` may go now (and it is counted), else the seconds until it may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _FORGET_AFTER:
                # A destination not heard from for a while is as good as new: drop the full buckets.
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full(now)}
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now)

    def refund(self, key: tuple[str, str]) -> None:
        """The message taken for `key` was never seen by Slack (TokenBucket.refund)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.refund()
