"""devices.backoff: full jitter, property-tested (issue 16: it drew from [cap/2, cap])."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.backoff import Backoff

initials = st.floats(0.001, 5.0)
maxima = st.floats(5.0, 600.0)


@given(initials, maxima, st.integers(0, 2000), st.integers(0, 2**32))
def test_each_delay_lies_in_zero_to_the_doubling_cap(
    initial: float, maximum: float, attempts: int, seed: int
) -> None:
    b = Backoff(initial_s=initial, maximum_s=maximum, attempts=attempts)
    cap = min(maximum, initial * 2.0 ** min(attempts, 64))
    assert b.cap() == pytest.approx(cap)
    delay = b.next_delay(random.Random(seed))
    assert 0.0 <= delay <= cap
    assert b.attempts == attempts + 1


@given(initials, maxima, st.integers(1, 40))
def test_the_cap_doubles_until_the_maximum_and_reset_starts_over(
    initial: float, maximum: float, n: int
) -> None:
    b = Backoff(initial_s=initial, maximum_s=maximum)
    caps = []
    for _ in range(n):
        caps.append(b.cap())
        b.next_delay(random.Random(0))
    assert caps[0] == initial
    for a, c in itertools.pairwise(caps):
        assert c == pytest.approx(min(maximum, 2 * a))
    b.reset()
    assert b.cap() == initial


@given(st.integers(0, 2**32))
def test_delays_fill_the_whole_window_not_its_upper_half(seed: int) -> None:
    """Full jitter: about half the draws fall below cap/2 (the old formula had none)."""
    rng = random.Random(seed)
    draws = [Backoff(initial_s=1.0, maximum_s=1.0).next_delay(rng) for _ in range(400)]
    below = sum(d < 0.5 for d in draws)
    assert 120 < below < 280  # binomial(400, 0.5): 10 sigma each side
    assert 0.35 < statistics.fmean(draws) < 0.65
    assert min(draws) < 0.05


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_nonsense_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=initial, maximum_s=maximum)
