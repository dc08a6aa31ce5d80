"""Pure pieces behind the pages: sign-in throttling, bucket choice, live scope, tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dashboard_api.live import may_see
from dashboard_api.throttle import ACCOUNT, ADDRESS, PAIR, WINDOW, keys, retry_after
from dashboard_api.timeline import pick_bucket
from devices.accounts import Principal
from devices.domain import Role

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_throttle_delays_progressively_and_forgets_after_the_window() -> None:
    assert [PAIR.wait_s(n) for n in (0, 4, 5, 6, 7)] == [0, 0, 1, 2, 4]
    assert PAIR.wait_s(40) == PAIR.cap_s
    assert ACCOUNT.wait_s(100) == 60  # the real user at another address waits a minute at most
    last = T0
    assert retry_after({PAIR: (4, last)}, T0) is None
    wait = retry_after({PAIR: (7, last), ACCOUNT: (7, last)}, T0 + timedelta(seconds=1))
    assert wait == 3
    assert retry_after({PAIR: (7, last)}, T0 + timedelta(seconds=4)) is None
    assert retry_after({PAIR: (40, last)}, T0 + WINDOW) is None  # forgotten


def test_throttle_keys_separate_pair_account_and_address() -> None:
    ks = keys("admin", "203.0.113.9")
    assert len(set(ks.values())) == 3
    assert keys("admin", "198.51.100.1")[ACCOUNT] == ks[ACCOUNT]
    assert keys("bob", "203.0.113.9")[ADDRESS] == ks[ADDRESS]


@given(st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=400)))
def test_buckets_keep_charts_small(span: timedelta) -> None:
    bucket = pick_bucket(span)
    assert span / bucket <= 8 * 24
    assert bucket <= timedelta(days=7)


def _p(role: Role, sites: set[str] = set(), residents: set[int] = set()) -> Principal:  # noqa: B006
    return Principal(1, "u", role, frozenset(sites), frozenset(residents))


def test_live_scope() -> None:
    assert may_see(_p(Role.ADMIN), "sunrise", None)
    assert may_see(_p(Role.STAFF, {"sunrise"}), "sunrise", 3)
    assert not may_see(_p(Role.STAFF, {"home-17"}), "sunrise", 3)
    assert may_see(_p(Role.FAMILY, residents={3}), "sunrise", 3)
    assert not may_see(_p(Role.FAMILY, residents={3}), "sunrise", 4)
    assert not may_see(_p(Role.FAMILY, residents={3}), "sunrise", None)
