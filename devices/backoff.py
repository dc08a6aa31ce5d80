"""Exponential backoff with full jitter, the clock passed in (no sleeping inside).

"Full jitter" (Brooker, AWS Architecture Blog, 2015): the n-th delay is uniform in
``[0, min(maximum, initial * 2**n)]``. Reconnecting clients spread out over the whole window
instead of arriving together at its upper half, which is what a broker or database coming
back after an outage needs. Kept by hand rather than taken from tenacity or stamina: the loops
that use it decide themselves when to sleep (``asyncio.wait_for(stop.wait(), delay)`` so a
stop ends the wait) and when a connection counts as healthy again (:meth:`Backoff.reset`),
which neither library's decorator models without restructuring each loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 10.0
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.maximum_s:
            raise ValueError("backoff needs 0 < initial_s <= maximum_s")

    def cap(self) -> float:
        """The upper bound of the next delay: ``min(maximum, initial * 2**attempts)``."""
        # 2**attempts overflows a float after ~1000 failures; the cap is reached long before
        if self.attempts >= 64:
            return self.maximum_s
        return min(self.maximum_s, self.initial_s * 2.0**self.attempts)

    def next_delay(self, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, cap], then the cap doubles (up to ``maximum_s``)."""
        cap = self.cap()
        self.attempts += 1
        return (rng or random).uniform(0.0, cap)

    def reset(self) -> None:
        self.attempts = 0
