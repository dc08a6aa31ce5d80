"""Pure decisions of the escalation state machine: which step next, who is next; the
policy document; the time-to-help arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.dispatch.policy import (
    Action,
    Assignment,
    Candidate,
    PolicyError,
    Step,
    decide,
    default_policy,
    parse_policy,
    pick,
    to_builtins,
)
from alerts.dispatch.timetohelp import GroupBy, OrderTimes, percentile, summarise
from devices.domain import Colour

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CHAIN = (
    Step(Action.OFFER, 20),
    Step(Action.ESCALATE, 30, level=2),
    Step(Action.RENOTIFY, 15, repeat=True),
)


def test_decide_walks_the_chain_then_repeats_the_last_step() -> None:
    first = decide(CHAIN, step_index=0, now=T0)
    assert first is not None
    assert (first.step.action, first.index, first.next_index) == (Action.OFFER, 0, 1)
    assert first.next_due == T0 + timedelta(seconds=20)
    second = decide(CHAIN, step_index=1, now=T0)
    assert second is not None
    assert second.step.level == 2
    for index in (2, 3, 17):
        again = decide(CHAIN, step_index=index, now=T0)
        assert again is not None
        assert (again.step.action, again.index) == (Action.RENOTIFY, 2)
        assert again.next_due == T0 + timedelta(seconds=15)


def test_decide_stops_after_a_chain_without_repeat() -> None:
    chain = (Step(Action.OFFER, 20), Step(Action.ESCALATE, 30, level=2))
    last = decide(chain, step_index=1, now=T0)
    assert last is not None
    assert last.next_due is None
    assert decide(chain, step_index=2, now=T0) is None


def _c(rid: int, **kw: object) -> Candidate:
    base: dict[str, object] = {
        "responder_id": rid,
        "level": 1,
        "last_offer_at": None,
        "load": 0,
        "offers_here": 0,
    }
    return Candidate(**(base | kw))  # type: ignore[arg-type]


def test_round_robin_takes_the_longest_idle_and_never_repeats_before_everyone_was_asked() -> None:
    a = _c(1, last_offer_at=T0)
    b = _c(2, last_offer_at=T0 - timedelta(minutes=5))
    c = _c(3, last_offer_at=None)
    assert pick([a, b, c], rule=Assignment.ROUND_ROBIN, level=1, site=None) == c
    c_asked = _c(3, offers_here=1)
    assert pick([a, b, c_asked], rule=Assignment.ROUND_ROBIN, level=1, site=None) == b


def test_least_loaded_and_nearest() -> None:
    busy, free = _c(1, load=2), _c(2, load=0, last_offer_at=T0)
    assert pick([busy, free], rule=Assignment.LEAST_LOADED, level=1, site=None) == free
    site = (30.70, 121.02)
    near = _c(1, lat=30.71, lon=121.02, load=3)
    far = _c(2, lat=30.90, lon=121.30)
    unknown = _c(3)
    assert pick([far, unknown, near], rule=Assignment.NEAREST, level=1, site=site) == near


def test_pick_climbs_levels_only_when_nobody_is_on_duty_below() -> None:
    front, sup, centre = _c(1), _c(2, level=2), _c(3, level=3)
    assert pick([centre, sup, front], rule=Assignment.ROUND_ROBIN, level=1, site=None) == front
    assert pick([centre, sup], rule=Assignment.ROUND_ROBIN, level=1, site=None) == sup
    assert pick([centre, front], rule=Assignment.ROUND_ROBIN, level=2, site=None) == centre
    assert pick([front], rule=Assignment.ROUND_ROBIN, level=2, site=None) is None


def test_default_red_chain_reaches_the_centre_well_within_five_minutes() -> None:
    policy = default_policy(red_s=60, yellow_s=300, green_s=1800)
    red = policy.for_colour(Colour.RED)
    elapsed, index, levels = 0, 0, []
    while index < len(red.steps) - 1:
        step = red.steps[index]
        levels.append(step.level)
        elapsed += step.wait_s
        index += 1
    assert max(levels) == 3
    assert elapsed <= 60  # re-offered, supervisor and centre before the deadline
    assert red.steps[-1].repeat  # then re-notified until someone accepts


def test_policy_round_trips_and_rejects_bad_documents() -> None:
    policy = default_policy(red_s=60, yellow_s=300, green_s=1800)
    assert parse_policy(to_builtins(policy)) == policy
    bad = to_builtins(policy)
    bad["assignment"] = "whoever"
    with pytest.raises(PolicyError):
        parse_policy(bad)
    with pytest.raises(PolicyError):
        parse_policy(
            {
                "assignment": "nearest",
                "chains": {
                    "red": {
                        "accept_within_s": 60,
                        "steps": [
                            {"action": "renotify", "wait_s": 10, "repeat": True},
                            {"action": "offer", "wait_s": 10},
                        ],
                    }
                },
            }
        )
    with pytest.raises(PolicyError):
        parse_policy({"assignment": "nearest", "chains": {"red": {"accept_within_s": 60}}})


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200), st.integers(1, 100))
def test_percentile_is_a_value_with_at_least_q_percent_at_or_below(
    values: list[float], q: int
) -> None:
    p = percentile(values, q)
    assert p in values
    assert sum(1 for v in values if v <= p) >= q / 100 * len(values)
    assert sum(1 for v in values if v < p) < q / 100 * len(values)


def test_figures_from_a_known_scenario() -> None:
    def order(i: int, accept_s: float | None, **kw: object) -> OrderTimes:
        base: dict[str, object] = {
            "order_id": i,
            "site_id": "s",
            "community": "c",
            "provider": "p",
            "category": "sos",
            "outcome": None,
            "event_at": T0,
            "raised_at": T0 + timedelta(seconds=1),
            "opened_at": T0 + timedelta(seconds=1),
            "offered_at": T0 + timedelta(seconds=2),
            "accepted_at": None if accept_s is None else T0 + timedelta(seconds=accept_s),
        }
        return OrderTimes(**(base | kw))  # type: ignore[arg-type]

    orders = [
        order(1, 30, resolved_at=T0 + timedelta(minutes=20), outcome="false_alarm"),
        order(2, 90, resolved_at=T0 + timedelta(minutes=20), outcome="emergency_handled"),
        order(3, 400, category="fall"),
        order(4, None),  # never accepted: counts against the shares
        order(5, None, cancelled_at=T0 + timedelta(seconds=10)),  # cancelled: not counted
    ]
    [f] = summarise(orders, by=GroupBy.SITE)
    assert (f.orders, f.accepted, f.resolved) == (5, 3, 2)
    assert f.percentiles["accept"] == {"p50": 90, "p90": 400, "p99": 400}
    assert f.accepted_within_60s == 1 / 4
    assert f.accepted_within_300s == 2 / 4
    assert f.false_alarm_rate == 1 / 2
    assert f.top_cases == [("sos", 4), ("fall", 1)]
    assert f.score == round(100 * (0.5 * 0.25 + 0.3 * 0.5 + 0.2 * 2 / 3), 1)
