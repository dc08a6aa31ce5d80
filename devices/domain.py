"""Domain vocabulary shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final


class SiteKind(StrEnum):
    NURSING_HOME = "nursing_home"
    HOME_CARE_BED = "home_care_bed"  # 家庭养老床位: care extended into the person's own home


class DeviceKind(StrEnum):
    WRISTBAND = "wristband"
    BED_MAT = "bed_mat"
    SEAT_MAT = "seat_mat"  # chair or couch pressure mat: presence = someone seated
    FLUSH = "flush"  # toilet flush sensor: flush true = pulled (false = cistern refilled)
    APPLIANCE = "appliance"  # a smart plug: appliance true = switched on (false = off)
    PIR = "pir"
    DOOR = "door"
    SMOKE = "smoke"
    SOS_BUTTON = "sos_button"
    RADAR = "radar"
    ROOM_SENSOR = "room_sensor"


class RoomKind(StrEnum):
    BEDROOM = "bedroom"
    BATHROOM = "bathroom"
    LIVING = "living"
    KITCHEN = "kitchen"
    CORRIDOR = "corridor"
    ENTRANCE = "entrance"


class CareProfile(StrEnum):
    INDEPENDENT = "independent"
    FRAIL = "frail"
    DEMENTIA = "dementia"
    BED_BOUND = "bed_bound"


class Placement(StrEnum):
    """Where a wearable sits on the body: the fall detector judges its windows with a model
    made for that place (an unknown placement gets the most conservative model)."""

    WRIST = "wrist"
    WAIST = "waist"  # also a belt clip
    NECK = "neck"  # a pendant
    CHEST = "chest"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, text: str) -> Placement:
        """A placement from its name or a common alias (belt, pendant); ValueError otherwise."""
        name = text.strip().lower()
        return cls({"belt": "waist", "pendant": "neck", "": "unknown"}.get(name, name))


class Colour(StrEnum):
    """The 96345 three-colour case classification."""

    RED = "red"  # life safety: fall, SOS, smoke, no vital signs
    YELLOW = "yellow"  # attention soon: long inactivity, night bed exit, device offline
    GREEN = "green"  # service requests


# The zone a site is in unless it says otherwise (settings: ELDERCARE_SITE_TIMEZONE; each site
# row has its own): every time people read is shown in it.
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"

# Events that are never dropped, never wait behind telemetry and are raised even when their
# detector fails (ingest's lane, the alerts worker's first claim and fallback).
LIFE_SAFETY: frozenset[str] = frozenset({"sos", "fall", "smoke"})


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    FAMILY = "family"
    RESPONDER = "responder"  # a home-care provider: sees only the orders offered to them
    VISITOR = "visitor"  # a community worker or volunteer: only the residents assigned to them
    SAFETY_OFFICER = "safety_officer"  # a site's safety rounds and findings
    REPORT_READER = "report_reader"  # the bureau: figures without personal details
    OPERATOR = "operator"  # a 96345 centre operator: every site's orders, service orders


class OrderState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    EMERGENCY_HANDLED = "emergency_handled"
    FALSE_ALARM = "false_alarm"
    HANDLED_BY_PHONE = "handled_by_phone"


class OrderKind(StrEnum):
    ALERT = "alert"  # opened by a detector's alert (an incident)
    SERVICE = "service"  # created by a hotline operator


class ServiceCategory(StrEnum):
    """The home-service categories dispatched by the hotline (Tianning's ten)."""

    MEAL = "meal"
    CLEANING = "cleaning"
    BATHING = "bathing"
    ESCORT = "escort"
    SHOPPING = "shopping"
    LAUNDRY = "laundry"
    HAIRCUT = "haircut"
    REPAIR = "repair"
    MEDICAL_ESCORT = "medical_escort"
    COMPANIONSHIP = "companionship"


@dataclass(frozen=True, slots=True)
class SimClock:
    """A simulated world's time: ``speed`` times the wall clock's pace, ``sim_origin`` at wall
    time ``wall_origin`` (a scenario played compressed, or back-dated). The simulators play a
    run by it and hand it to the backend, whose time-driven detectors then judge by it
    (``devices.simclock``: what a backend accepts, where it keeps it, when it obeys it)."""

    sim_origin: datetime
    wall_origin: datetime
    speed: float = 1.0
    # the same origins in epoch seconds, for the simulators' per-message arithmetic
    start: float = field(init=False, repr=False, compare=False)
    wall0: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", self.sim_origin.timestamp())
        object.__setattr__(self, "wall0", self.wall_origin.timestamp())

    def at(self, wall: datetime) -> datetime:
        """The detectors' time at wall time ``wall``: simulated, but never ahead of the wall
        clock (ingest refuses readings from the future, so the simulated world cannot be
        there either)."""
        return min(wall, self.sim_origin + (wall - self.wall_origin) * self.speed)

    def sim_of(self, wall: float) -> float:
        """Simulated epoch seconds at wall epoch seconds ``wall``."""
        return self.start + (wall - self.wall0) * self.speed

    def wall_of(self, sim: float) -> float:
        """Wall epoch seconds at simulated epoch seconds ``sim``."""
        return self.wall0 + (sim - self.start) / self.speed
