"""A month of the care programme played through the public API (issue 15): each visitor
records the visits of their plan on days of the last four weeks (most, not all: the rate
shows who was missed), with the odd concern and follow-up; each safety officer walks a round
of each of their sites every week of the last four weeks, entered with the time it was walked
(``done_at``): an item now and then fails and opens a finding on that day, and most findings
are closed some days later (``closed_at``), so the month shows findings opened and closed.
A site with a round in the last four weeks is left be (a main job started again)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from simulators.api import Api

CHECKS = ("eating_ok", "mobility_ok", "mood_ok", "home_safety_ok", "devices_ok")


class _Entry(msgspec.Struct):
    resident_id: int
    visits_per_month: int
    last_visit: datetime | None = None


class _Me(msgspec.Struct):
    role: str
    site_ids: list[str]


class _Item(msgspec.Struct):
    item_key: str


class _Round(msgspec.Struct):
    finding_ids: list[int]


class _Walked(msgspec.Struct):
    done_at: datetime


WEEKS = 4
CLOSED_SHARE = 0.7  # of a round's findings, closed 1-6 days later (when that is past)


@dataclass(frozen=True, slots=True)
class CareMonth:
    visits: int
    follow_ups: int
    rounds: int
    findings: int
    closed: int


def play_care_month(
    base_url: str,
    logins: Mapping[str, str],
    *,
    now: datetime,
    rng: random.Random,
    visited_share: float = 0.85,
) -> CareMonth:
    """``logins``: username -> password of visitors and safety officers to play."""
    visits = follow_ups = rounds = findings = closes = 0
    for username, password in sorted(logins.items()):
        api = Api(base_url)
        api.login(username, password)
        me = msgspec.json.decode(api._call("GET", "/api/me"), type=_Me)
        if me.role == "visitor":
            plan = msgspec.json.decode(api._call("GET", "/api/care/plan"), type=list[_Entry])
            for e in plan:
                # once: a resident with visits already (a main job started again) is left be
                if e.last_visit is not None or rng.random() > visited_share:
                    continue
                days = sorted(rng.uniform(0.5, 27.5) for _ in range(e.visits_per_month))
                for d in days:
                    follow = rng.random() < 0.1
                    body: dict[str, object] = {
                        "visited_at": (now - timedelta(days=d)).isoformat(),
                        **{k: rng.random() > 0.1 for k in CHECKS},
                        "notes": "simulated visit",
                        "follow_up": follow,
                    }
                    if follow:
                        body["follow_up_category"] = rng.choice(["meal", "cleaning", "repair"])
                        follow_ups += 1
                    api._call("POST", f"/api/care/residents/{e.resident_id}/visits", json=body)
                    visits += 1
        elif me.role == "safety_officer":
            for site in me.site_ids:
                walked, found, closed = _walk_rounds(api, site, now=now, rng=rng)
                rounds, findings, closes = rounds + walked, findings + found, closes + closed
    return CareMonth(visits, follow_ups, rounds, findings, closes)


def _walk_rounds(api: Api, site: str, *, now: datetime, rng: random.Random) -> tuple[int, int, int]:
    """One round a week through the last four weeks: (rounds, findings, findings closed)."""
    past = msgspec.json.decode(
        api._call("GET", f"/api/safety/sites/{site}/rounds"), type=list[_Walked]
    )
    if any(r.done_at > now - timedelta(weeks=WEEKS) for r in past):
        return 0, 0, 0
    items = msgspec.json.decode(
        api._call("GET", f"/api/safety/sites/{site}/checklist"), type=list[_Item]
    )
    rounds = findings = closed = 0
    for week in range(WEEKS, 0, -1):
        # every seven days or so (a day either way), the last about two days ago
        done_at = now - timedelta(days=7 * week - 5 + rng.uniform(-1.0, 1.0))
        results = [
            {"item_key": i.item_key, "ok": rng.random() > 0.15, "note": "simulated"} for i in items
        ]
        out = api._call(
            "POST",
            f"/api/safety/sites/{site}/rounds",
            json={"results": results, "done_at": done_at.isoformat()},
        )
        rounds += 1
        for finding_id in msgspec.json.decode(out, type=_Round).finding_ids:
            findings += 1
            fixed_at = done_at + timedelta(days=rng.uniform(1.0, 6.0))
            if fixed_at < now and rng.random() < CLOSED_SHARE:
                api._call(
                    "POST",
                    f"/api/safety/findings/{finding_id}/close",
                    json={"note": "simulated fix", "closed_at": fixed_at.isoformat()},
                )
                closed += 1
    return rounds, findings, closed
