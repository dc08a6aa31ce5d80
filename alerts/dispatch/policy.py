"""Escalation policy and the two pure decisions of the escalation state machine.

A site's policy (JSON, see docs/dispatch.md) names an assignment rule and, per colour, an
accept deadline and a chain of steps. When an order opens, the chain of its colour is copied
onto it (:meth:`EscalationPolicy.for_colour`), so later edits of the site's policy do not
change orders already running.

* :func:`decide` -- which step comes next, given the order's step index and ``now``.
* :func:`pick` -- who is next, given the on-duty candidates and the site's rule.

Both take data and ``now`` and return a decision; the database work is in
``alerts.dispatch.escalation``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec

from devices.domain import Colour
from devices.settings import Settings


class Assignment(StrEnum):
    ROUND_ROBIN = "round_robin"  # the responder offered anything longest ago goes next
    LEAST_LOADED = "least_loaded"  # fewest orders in hand (accepted, en route, on site)
    NEAREST = "nearest"  # shortest distance to the site (responders without a position last)


class Action(StrEnum):
    OFFER = "offer"  # offer to the next responder at ``level`` (or the next level up if none)
    ESCALATE = "escalate"  # offer to a supervisor (level 2) or the centre (level 3)
    RENOTIFY = "renotify"  # notify again everyone holding an offer; nobody yet: offer


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Action
    wait_s: int  # how long to wait for an accept before the next step
    level: int = 1
    repeat: bool = False  # only on the last step: repeat it until the order is accepted

    def __post_init__(self) -> None:
        if not 1 <= self.wait_s <= 7 * 24 * 3600:
            raise ValueError(f"wait_s {self.wait_s} outside 1 s .. 7 days")
        if not 1 <= self.level <= 3:
            raise ValueError(f"level {self.level} outside 1..3")


class Chain(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    accept_within_s: int
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a chain needs at least one step")
        if any(s.repeat for s in self.steps[:-1]):
            raise ValueError("only the last step may repeat")


class EscalationPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    assignment: Assignment
    chains: dict[Colour, Chain]

    def for_colour(self, colour: Colour) -> OrderPolicy:
        chain = self.chains[colour]
        return OrderPolicy(colour, self.assignment, chain.accept_within_s, chain.steps)


class OrderPolicy(msgspec.Struct, frozen=True):
    """The copy kept on one order."""

    colour: Colour
    assignment: Assignment
    accept_within_s: int
    steps: tuple[Step, ...]


class PolicyError(ValueError):
    """A policy document that does not parse or breaks a rule."""


def parse_policy(raw: object) -> EscalationPolicy:
    try:
        return msgspec.convert(raw, EscalationPolicy)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PolicyError(str(exc)) from exc


def order_policy(raw: object) -> OrderPolicy:
    return msgspec.convert(raw, OrderPolicy)


def to_builtins(obj: msgspec.Struct) -> dict[str, object]:
    out: dict[str, object] = msgspec.to_builtins(obj)
    return out


def default_policy(*, red_s: int, yellow_s: int, green_s: int) -> EscalationPolicy:
    """Red: offered at once, re-offered, then supervisor and centre, then re-notified every
    15 s until accepted -- the whole chain runs inside the accept deadline, so a red order is
    in front of a supervisor long before the five minutes are up."""
    red_wait = max(red_s // 4, 5)
    return EscalationPolicy(
        Assignment.ROUND_ROBIN,
        {
            Colour.RED: Chain(
                red_s,
                (
                    Step(Action.OFFER, red_wait),
                    Step(Action.OFFER, red_wait),
                    Step(Action.ESCALATE, red_wait, level=2),
                    Step(Action.ESCALATE, red_wait, level=3),
                    Step(Action.RENOTIFY, 15, repeat=True),
                ),
            ),
            Colour.YELLOW: Chain(
                yellow_s,
                (
                    Step(Action.OFFER, yellow_s // 2),
                    Step(Action.OFFER, yellow_s // 2),
                    Step(Action.ESCALATE, yellow_s, level=2),
                    Step(Action.RENOTIFY, yellow_s, repeat=True),
                ),
            ),
            Colour.GREEN: Chain(
                green_s,
                (
                    Step(Action.OFFER, green_s // 2),
                    Step(Action.OFFER, green_s // 2),
                    Step(Action.ESCALATE, green_s, level=2),
                ),
            ),
        },
    )


def policy_from_settings(settings: Settings) -> EscalationPolicy:
    """The policy of sites without their own (``escalation_policies``)."""
    return default_policy(
        red_s=settings.accept_within_red_s,
        yellow_s=settings.accept_within_yellow_s,
        green_s=settings.accept_within_green_s,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    index: int  # the index of the step to perform now
    next_index: int
    next_due: datetime | None  # None: nothing follows, the order waits for a person


def decide(steps: Sequence[Step], *, step_index: int, now: datetime) -> Decision | None:
    """The step due at ``step_index``; None once the chain is exhausted (no repeat)."""
    if step_index < len(steps):
        index = step_index
    elif steps and steps[-1].repeat:
        index = len(steps) - 1
    else:
        return None
    step = steps[index]
    follows = index + 1 < len(steps) or step.repeat
    return Decision(
        step,
        index,
        index + 1,
        now + timedelta(seconds=step.wait_s) if follows else None,
    )


@dataclass(frozen=True, slots=True)
class Candidate:
    """An on-duty responder who covers the order's site."""

    responder_id: int
    level: int
    last_offer_at: datetime | None  # their latest offer, any order
    load: int  # orders in hand
    offers_here: int  # times this order was already offered to them
    lat: float | None = None
    lon: float | None = None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def pick(
    candidates: Sequence[Candidate],
    *,
    rule: Assignment,
    level: int,
    site: tuple[float, float] | None,
) -> Candidate | None:
    """Who is next: the lowest level at or above ``level`` with anyone on duty; within it,
    people not yet offered this order before people already offered it (nobody is skipped,
    nobody is asked twice while someone else has not been asked), then the site's rule, then
    the responder id (so the choice is deterministic)."""
    eligible = [c for c in candidates if c.level >= level]
    if not eligible:
        return None
    lowest = min(c.level for c in eligible)
    pool = [c for c in eligible if c.level == lowest]

    def last(c: Candidate) -> float:
        return c.last_offer_at.timestamp() if c.last_offer_at else -math.inf

    def far(c: Candidate) -> float:
        if site is None or c.lat is None or c.lon is None:
            return math.inf
        return distance_km(site, (c.lat, c.lon))

    keys = {
        Assignment.ROUND_ROBIN: lambda c: (c.offers_here, last(c), c.responder_id),
        Assignment.LEAST_LOADED: lambda c: (c.offers_here, c.load, last(c), c.responder_id),
        Assignment.NEAREST: lambda c: (c.offers_here, far(c), c.load, c.responder_id),
    }
    return min(pool, key=keys[rule])
