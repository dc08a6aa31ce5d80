"""Pure pieces behind the pages: sign-in throttling, bucket choice, live scope, tickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from dashboard_api.live import Hub, may_see
from dashboard_api.throttle import LoginThrottle
from dashboard_api.timeline import pick_bucket
from devices.accounts import Principal
from devices.domain import Role

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_throttle_refuses_after_five_failures_until_the_window_passes() -> None:
    t = LoginThrottle(max_failures=5, window=timedelta(minutes=15))
    for i in range(4):
        t.failed("admin", T0 + timedelta(seconds=i))
    assert t.retry_after("admin", T0 + timedelta(seconds=5)) is None
    t.failed("admin", T0 + timedelta(seconds=5))
    wait = t.retry_after("admin", T0 + timedelta(seconds=6))
    assert wait is not None
    assert 890 <= wait <= 900
    assert t.retry_after("someone-else", T0) is None
    assert t.retry_after("admin", T0 + timedelta(minutes=15, seconds=1)) is None
    t.succeeded("admin")
    assert t.retry_after("admin", T0 + timedelta(seconds=7)) is None


def test_throttle_memory_is_bounded() -> None:
    t = LoginThrottle(max_tracked=3)
    for name in "abcdef":
        t.failed(name, T0)
    assert len(t._failures) == 3


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


def test_live_tickets_are_single_use_and_expire() -> None:
    hub = Hub("postgresql://unused")
    ticket, expires = hub.issue_ticket("tok", T0)
    assert expires == T0 + timedelta(seconds=30)
    assert hub.redeem(ticket, T0 + timedelta(seconds=1)) == "tok"
    assert hub.redeem(ticket, T0 + timedelta(seconds=2)) is None
    late, _ = hub.issue_ticket("tok", T0)
    assert hub.redeem(late, T0 + timedelta(seconds=31)) is None
    assert hub.redeem("forged", T0) is None
