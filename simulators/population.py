"""Residents, their care profiles, the devices each profile has, and their vital signs.

A resident is built from the device credentials file (which names each device's resident and
room) and a care profile. The profile decides which of the provisioned devices the resident
actually uses (:data:`PROFILE_DEVICES`); vital signs follow a daily rhythm, lower asleep.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from devices.domain import CareProfile, DeviceKind
from simulators.clock import UTC_OFFSET_H
from simulators.fleet import DeviceCreds

# Which devices a resident of each profile has (of those provisioned for them or their room).
PROFILE_DEVICES: Final[dict[CareProfile, frozenset[DeviceKind]]] = {
    CareProfile.INDEPENDENT: frozenset(
        {DeviceKind.SOS_BUTTON, DeviceKind.PIR, DeviceKind.DOOR, DeviceKind.SMOKE}
    ),
    CareProfile.FRAIL: frozenset(
        {
            DeviceKind.WRISTBAND,
            DeviceKind.BED_MAT,
            DeviceKind.SEAT_MAT,
            DeviceKind.SOS_BUTTON,
            DeviceKind.PIR,
            DeviceKind.DOOR,
            DeviceKind.SMOKE,
        }
    ),
    CareProfile.DEMENTIA: frozenset(
        {DeviceKind.WRISTBAND, DeviceKind.BED_MAT, DeviceKind.PIR, DeviceKind.DOOR}
    ),
    CareProfile.BED_BOUND: frozenset(
        {DeviceKind.BED_MAT, DeviceKind.SOS_BUTTON, DeviceKind.PIR, DeviceKind.RADAR}
    ),
}
# The demo seed (devtools/seed.py) gives sunrise residents these profiles in turn.
SEED_PROFILE_ORDER: Final = (
    CareProfile.INDEPENDENT,
    CareProfile.FRAIL,
    CareProfile.DEMENTIA,
    CareProfile.BED_BOUND,
)


# Share of residents who answer "did you fall?" on their wristband (the rest cannot: asleep,
# confused, hard of hearing); residents with dementia never do. Which ones is fixed by name.
FALL_CHECK_ANSWER_SHARE: Final = 0.7


def answers_fall_check(
    name: str, profile: CareProfile, share: float = FALL_CHECK_ANSWER_SHARE
) -> bool:
    """Whether this resident presses "I'm OK" when the wristband asks (stable per name)."""
    if profile is CareProfile.DEMENTIA:
        return False
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


@dataclass(frozen=True, slots=True)
class VitalsBaseline:
    hr: float  # beat/min, awake, at the daily mean
    rr: float  # breaths/min
    spo2: float  # %


BASELINES: Final[dict[CareProfile, VitalsBaseline]] = {
    CareProfile.INDEPENDENT: VitalsBaseline(72.0, 15.0, 97.5),
    CareProfile.FRAIL: VitalsBaseline(76.0, 17.0, 96.5),
    CareProfile.DEMENTIA: VitalsBaseline(74.0, 16.0, 96.5),
    CareProfile.BED_BOUND: VitalsBaseline(80.0, 18.0, 95.5),
}


@dataclass(frozen=True, slots=True)
class Vitals:
    hr: int
    rr: float
    spo2: int


def vitals(
    profile: CareProfile,
    *,
    now: float,
    asleep: bool,
    rng: random.Random,
    deterioration: float = 0.0,
) -> Vitals:
    """Vital signs with a daily rhythm (lowest near 04:00, highest near 16:00 local time).

    ``deterioration`` 0..1 moves them towards sepsis-like values: fast heart and breathing,
    falling oxygen saturation.
    """
    base = BASELINES[profile]
    hour = (now / 3600.0 + UTC_OFFSET_H) % 24.0
    rhythm = math.cos(2 * math.pi * (hour - 16.0) / 24.0)
    sleep_drop = 8.0 if asleep else 0.0
    hr = base.hr + 6.0 * rhythm - sleep_drop + 55.0 * deterioration + rng.gauss(0.0, 2.0)
    rr = base.rr + 1.0 * rhythm - (2.0 if asleep else 0.0) + 14.0 * deterioration
    spo2 = base.spo2 - 12.0 * deterioration + rng.gauss(0.0, 0.5)
    return Vitals(
        hr=round(min(190.0, max(35.0, hr))),
        rr=round(max(6.0, rr + rng.gauss(0.0, 0.6)), 1),
        spo2=round(min(100.0, max(70.0, spo2))),
    )


@dataclass(slots=True)
class Resident:
    name: str
    site_id: str
    room: str | None
    profile: CareProfile
    devices: dict[DeviceKind, DeviceCreds] = field(default_factory=dict)
    answers_fall_check: bool = True  # presses "I'm OK" when the wristband asks

    @property
    def wears_band(self) -> bool:
        return DeviceKind.WRISTBAND in self.devices

    def device(self, kind: DeviceKind) -> DeviceCreds | None:
        return self.devices.get(kind)


def seed_profiles(creds: Iterable[DeviceCreds]) -> dict[str, CareProfile]:
    """The profiles the demo seed gives: sunrise residents in turn, home-care beds frail."""
    out: dict[str, CareProfile] = {}
    sunrise = 0
    for d in creds:
        if d.resident is None or d.resident in out:
            continue
        if d.site_id == "sunrise":
            out[d.resident] = SEED_PROFILE_ORDER[sunrise % len(SEED_PROFILE_ORDER)]
            sunrise += 1
        else:
            out[d.resident] = CareProfile.FRAIL
    return out


def build_population(
    creds: Sequence[DeviceCreds],
    *,
    profiles: Mapping[str, CareProfile] | None = None,
    only: Iterable[str] | None = None,
    answer_share: float = FALL_CHECK_ANSWER_SHARE,
) -> list[Resident]:
    """Residents named in the credentials file, each with the devices their profile has.

    Personal devices (wristband, bed mat) belong to the resident named on them; shared room
    devices (PIR, door, SOS button, radar) go to the residents of that room; a site's smoke
    detector without a room goes to every resident of the site whose profile has one.
    ``answer_share`` of them (never one with dementia) answer "did you fall?" checks.
    """
    chosen = seed_profiles(creds) | dict(profiles or {})
    wanted = set(only) if only is not None else None
    residents: dict[str, Resident] = {}
    for d in creds:
        if d.resident and d.resident not in residents and (wanted is None or d.resident in wanted):
            profile = chosen.get(d.resident, CareProfile.FRAIL)
            answers = answers_fall_check(d.resident, profile, answer_share)
            residents[d.resident] = Resident(
                d.resident, d.site_id, d.room, profile, answers_fall_check=answers
            )
    personal = {DeviceKind.WRISTBAND, DeviceKind.BED_MAT}
    for r in residents.values():
        kinds = PROFILE_DEVICES[r.profile]
        for d in creds:
            if d.site_id != r.site_id or d.kind not in kinds or d.kind in r.devices:
                continue
            if d.kind in personal and d.resident != r.name:
                continue
            if d.room is not None and d.room != r.room:
                continue
            r.devices[d.kind] = d
    return list(residents.values())
