"""A token bucket per API key on MonitoringService calls (``[api] rate_per_key``, ``burst_per_key``).

Each key's bucket holds up to ``burst`` tokens and refills at ``rate`` tokens per second; a call takes one.
A call that finds less than one token is refused with RESOURCE_EXHAUSTED (reason ``RATE_LIMITED``) and a
RetryInfo of the whole seconds until a token is back, which the edge answers as 429 with ``Retry-After``.

Memory is bounded: a bucket idle long enough to be full again (``burst / rate`` seconds) is the same as no
bucket, so it is dropped; and at most ``max_keys`` buckets are kept (the least recently used goes first).
The buckets are per server process: with N workers a key gets up to N times the rate.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from collections.abc import Callable

from server.config import ApiSettings
from server.errors import ResourceExhausted

MAX_KEYS = 100_000


@dataclasses.dataclass
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last computed (the clock's seconds)


class KeyRateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limiter needs rate > 0 and burst ≥ 1 (0 turns it off: use None)")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._full_after_s = burst / rate
        # Least recently used first: idle buckets are found at the front.
        self._buckets: collections.OrderedDict[str, _Bucket] = collections.OrderedDict()

    @classmethod
    def of(cls, settings: ApiSettings) -> KeyRateLimiter | None:
        """The limiter the settings ask for, or None when either setting is 0 (off)."""
        if settings.rate_per_key <= 0 or settings.burst_per_key <= 0:
            return None
        return cls(settings.rate_per_key, settings.burst_per_key)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key_id: str) -> None:
        """One call of ``key_id``: takes a token, or raises ResourceExhausted saying when one is back."""
        now = self._clock()
        self._drop_idle(now)
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets.move_to_end(key_id)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait_s = (1.0 - bucket.tokens) / self.rate
        raise ResourceExhausted(
            f"too many calls with this API key: at most {self.rate:g} per second (bursts of {self.burst});"
            f" retry in {math.ceil(wait_s)} s",
            reason="RATE_LIMITED",
            retry_after_s=max(1, math.ceil(wait_s)),
            metadata={"rate_per_key": f"{self.rate:g}", "burst_per_key": str(self.burst)},
        )

    def _drop_idle(self, now: float) -> None:
        while self._buckets:
            key_id, oldest = next(iter(self._buckets.items()))
            if now - oldest.at < self._full_after_s:
                return
            del self._buckets[key_id]
