"""Devices supply their own safety findings (机构安全巡检): a smoke detector whose monthly
self-test failed or did not happen, a call button silent for weeks, a low battery.

Run by the alerts worker's periodic loop (``alerts/detection/periodic.py``), beside device health: it
already reads every device's status on a timer, and a finding is the slow-time counterpart
of a technical alert (weeks, not minutes) that goes to the site's safety rounds instead of the
dispatch queue. The judgement is pure; inserts are idempotent (one open finding per device
and kind), so a repeated cycle or two workers add nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.types.json import Jsonb

from alerts.care.messages import finding_record
from devices.db import AsyncPool
from devices.registry import Conn
from devices.simclock import Instant, Work

log = logging.getLogger(__name__)

SELFTEST_EVERY = timedelta(days=31)  # monthly, with a grace of a day or so
SELFTEST_GRACE = timedelta(days=4)
BUTTON_SILENT = timedelta(days=21)
LOW_BATTERY = 20.0
FIX_WITHIN = timedelta(days=7)

ITEM = {  # the checklist item each kind belongs to
    "selftest_failed": "smoke_detectors",
    "selftest_missed": "smoke_detectors",
    "button_silent": "call_buttons",
    "low_battery": "devices",
}


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    device_key: int
    device_id: str
    kind: str
    site_id: str
    registered_at: datetime
    last_seen_at: datetime | None
    battery: float | None
    last_selftest_at: datetime | None
    last_selftest_ok: bool | None


@dataclass(frozen=True, slots=True)
class DeviceFinding:
    """``params`` fill the catalogue message ``safety.finding.<kind>`` (stored with it)."""

    device_key: int
    site_id: str
    kind: str
    params: Mapping[str, str]

    @property
    def description(self) -> str:
        return finding_record(self.kind, self.params)


def judge(d: DeviceFacts, *, now: datetime) -> list[DeviceFinding]:
    out: list[str] = []
    if d.kind == "smoke":
        if d.last_selftest_ok is False:
            out.append("selftest_failed")
        elif (d.last_selftest_at or d.registered_at) < now - SELFTEST_EVERY - SELFTEST_GRACE:
            out.append("selftest_missed")
    if d.kind == "sos_button" and (d.last_seen_at or d.registered_at) < now - BUTTON_SILENT:
        out.append("button_silent")
    found = [DeviceFinding(d.device_key, d.site_id, k, {"device": d.device_id}) for k in out]
    if d.battery is not None and d.battery < LOW_BATTERY:
        found.append(
            DeviceFinding(
                d.device_key,
                d.site_id,
                "low_battery",
                {"device": d.device_id, "battery": f"{d.battery:.0f}"},
            )
        )
    return found


FACTS_SQL = """
SELECT d.device_key, d.device_id, d.kind, d.site_id, d.registered_at, st.last_seen_at,
       st.battery, t.time AS last_selftest_at, t.value_bool AS last_selftest_ok
FROM devices d
LEFT JOIN device_status st ON st.device_key = d.device_key
LEFT JOIN LATERAL (SELECT e.time, e.value_bool FROM events e WHERE e.device_key = d.device_key
    AND e.name = 'selftest' AND e.time <= %(now)s ORDER BY e.time DESC LIMIT 1) t ON true
WHERE d.retired_at IS NULL AND d.registered_at <= %(now)s
"""


async def device_findings_cycle(conn: Conn, *, now: datetime) -> int:
    """Open a finding for each problem not already open; returns how many were opened."""
    cur = await conn.execute(FACTS_SQL, {"now": now})
    opened = 0
    for row in await cur.fetchall():
        for f in judge(DeviceFacts(**row), now=now):
            ins = await conn.execute(
                "INSERT INTO safety_findings (idem_key, site_id, source, device_key, item_key, "
                "kind, description, params, deadline, opened_at) VALUES (%s, %s, 'device', %s, %s, "
                "%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    f"device:{f.device_key}:{f.kind}:{now.date().isoformat()}",
                    f.site_id,
                    f.device_key,
                    ITEM[f.kind],
                    f.kind,
                    f.description,
                    Jsonb(dict(f.params)),
                    now + FIX_WITHIN,
                    now,
                ),
            )
            opened += ins.rowcount
    return opened


def findings_round(pool: AsyncPool) -> Work:
    """Device-supplied safety findings (self-tests, silent buttons, batteries) at detector
    time, for ``clocked_loop``; a loop of its own, so it never costs an alert."""

    async def one_round(at: Instant) -> None:
        async with pool.connection() as conn, conn.transaction():
            if await device_findings_cycle(conn, now=at.detect):
                log.info("new device safety findings")

    return one_round
