"""A resident's care plan: what to watch for and the ranges that are normal for this person.

Stored as JSON on the resident (``residents.care_plan``); anything left out takes the default of
the resident's care profile, so a plan of ``{}`` is always valid. Parsed once where it leaves
the database; detectors only see the typed, frozen :class:`CarePlan`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import time

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from devices.domain import CareProfile

log = logging.getLogger(__name__)

# "Did you fall?" (alerts/detection/fall/check.py): seconds the wearer has to answer "I'm OK" on the
# wristband before a likely fall pages; at most 45 so impact to order stays under 60 s.
DEFAULT_FALL_CHECK_S = 30
MAX_FALL_CHECK_S = 45
# "Press if you are fine" (alerts/detection/check_in.py): seconds a quiet resident has to
# answer on their button or wristband before the inactivity alert is raised; never past the
# care plan's cap for the state. 0 asks nothing (the dementia default).
DEFAULT_CHECK_IN_S = 10 * 60
MAX_CHECK_IN_S = 30 * 60


class Range(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")
        return self

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


class InactivityPlan(BaseModel):
    """Caps on how long a quiet spell may last before an inactivity alert, by where the
    resident rests (minutes; None = the site default). The learned normal never exceeds them.
    ``max_quiet_min`` caps every state at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    active_max_min: float | None = Field(default=None, gt=0, le=24 * 60)
    seated_max_min: float | None = Field(default=None, gt=0, le=24 * 60)
    bed_max_min: float | None = Field(default=None, gt=0, le=24 * 60)
    bathroom_max_min: float | None = Field(default=None, gt=0, le=24 * 60)
    max_quiet_min: float | None = Field(default=None, gt=0, le=24 * 60)

    def caps_s(self) -> dict[str, float]:
        out = {
            state: float(v) * 60
            for state, v in (
                ("active", self.active_max_min),
                ("seated", self.seated_max_min),
                ("bed", self.bed_max_min),
                ("bathroom", self.bathroom_max_min),
            )
            if v is not None
        }
        return out

    def merged_caps_s(self, site: Mapping[str, float]) -> dict[str, float]:
        """The site's caps overridden by the plan's, all under ``max_quiet_min``."""
        caps = {**site, **self.caps_s()}
        if self.max_quiet_min is not None:
            caps = {k: min(v, self.max_quiet_min * 60) for k, v in caps.items()}
        return caps


class CarePlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Night hours in the site's local time (the window may wrap past midnight).
    night_start: time = time(22, 0)
    night_end: time = time(6, 0)
    # Dementia care: a door opened at night is a wandering alert.
    wandering_watch: bool = False
    # Out of bed at night and not back within ``bed_exit_return_s`` is an alert.
    bed_exit_watch: bool = False
    bed_exit_return_s: int = Field(default=20 * 60, ge=60, le=6 * 3600)
    # Vital-sign ranges normal for this person; a reading outside for ``vitals_sustained_s``
    # opens an alert, which clears only once readings are back inside by ``vitals_margin``.
    hr: Range = Range(low=45, high=120)
    spo2: Range = Range(low=90, high=100)
    rr: Range = Range(low=8, high=26)
    vitals_sustained_s: int = Field(default=120, ge=0, le=3600)
    vitals_margin: float = Field(default=0.05, ge=0, le=0.5)
    # A likely (not certain) fall from the wearable asks the wearer first and pages if they
    # do not cancel within this many seconds; 0 skips the question and pages at once.
    fall_check_s: int = Field(default=DEFAULT_FALL_CHECK_S, ge=0, le=MAX_FALL_CHECK_S)
    # A quiet spell past the learned normal but not yet the cap first asks the resident
    # "press if you are fine" and alerts if unanswered within this many seconds; 0 alerts.
    check_in_s: int = Field(default=DEFAULT_CHECK_IN_S, ge=0, le=MAX_CHECK_IN_S)
    # With no button or wristband to answer on, the check-in may go by SMS to the resident's
    # own phone ("reply 1 if you are fine"): only with their consent, recorded here.
    check_in_by_phone: bool = False
    # Inactivity caps by resting place; the night is the sleep window above.
    inactivity: InactivityPlan = InactivityPlan()
    # Tick detectors to leave out for this resident, by name (e.g. "inactivity").
    disabled_detectors: tuple[str, ...] = ()

    def vital_range(self, metric: str) -> Range | None:
        ranges: Mapping[str, Range] = {"hr": self.hr, "spo2": self.spo2, "rr": self.rr}
        return ranges.get(metric)

    def is_night(self, local: time) -> bool:
        start, end = self.night_start, self.night_end
        if start <= end:
            return start <= local < end
        return local >= start or local < end


PROFILE_DEFAULTS: Mapping[CareProfile, Mapping[str, object]] = {
    CareProfile.INDEPENDENT: {},
    CareProfile.FRAIL: {"bed_exit_watch": True},
    # a resident with dementia cannot be relied on to answer "did you fall?" or "press if you are
    # fine": page at once
    CareProfile.DEMENTIA: {
        "wandering_watch": True,
        "bed_exit_watch": True,
        "fall_check_s": 0,
        "check_in_s": 0,
    },
    CareProfile.BED_BOUND: {"bed_exit_watch": True, "bed_exit_return_s": 5 * 60},
}


class CarePlanError(ValueError):
    """A stored care plan that does not validate (named field and why)."""


def care_plan_for(profile: CareProfile, stored: Mapping[str, object] | None) -> CarePlan:
    """The plan in force: the profile's defaults, overridden by what the plan states."""
    merged = {**PROFILE_DEFAULTS[profile], **(stored or {})}
    try:
        return CarePlan.model_validate(merged)
    except ValidationError as exc:
        raise CarePlanError(f"invalid care plan: {exc}") from exc


def plans_from(raw: object) -> tuple[CarePlan, ...]:
    """Care plans as stored; one that does not validate falls back to its profile's defaults
    (the API refuses such plans on write, so this is only ever old or hand-edited data)."""
    plans: list[CarePlan] = []
    for item in raw if isinstance(raw, list) else []:
        profile = CareProfile(item["profile"])
        try:
            plans.append(care_plan_for(profile, item.get("plan")))
        except CarePlanError as exc:
            log.warning("care plan ignored, using %s defaults: %s", profile.value, exc)
            plans.append(care_plan_for(profile, None))
    return tuple(plans)
