"""Jittered exponential backoff with the clock passed in (no sleeping inside)."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 10.0
    attempts: int = 0

    def next_delay(self, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempts)]."""
        cap = min(self.maximum_s, self.initial_s * 2**self.attempts)
        self.attempts += 1
        return (rng or random).uniform(cap / 2, cap)

    def reset(self) -> None:
        self.attempts = 0
