"""A token bucket, used by the local endpoint's quota."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """TokenBucket refills at rate tokens a second up to capacity.

    A full bucket allows a burst of capacity calls; after that calls are
    spaced 1/rate apart, which is how AWS's per-second quotas behave.
    """

    def __init__(
        self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def try_take(self) -> bool:
        """Take a token if one is there now."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
