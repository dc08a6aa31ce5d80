"""Build every current resident's :class:`ResidentSnapshot` in two set-based queries.

1. Residents with their site, room, care plan and cached routine.
2. The devices serving them (assigned to them now, or in their room and not assigned to
   someone else), each with its status and its activity events: the last few (bounded by
   ``lookback``) plus the recent ones, through one LATERAL index scan per device.

The state (in bed, away, in the bathroom since) is then derived by the same pure rules the
routine is fitted with (:func:`alerts.detection.routine.current_state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from alerts.detection.detectors.snapshot import DeviceSnapshot, ResidentSnapshot
from alerts.detection.routine import (
    AWAY_MARK,
    MOVEMENT,
    SEATS,
    Activity,
    Routine,
    SiteDefaults,
    current_state,
    default_routine,
)
from devices.registry import Conn
from devices.settings import Settings
from devices.wire import CHECK_IN_ANSWER

# check_in_ok: the resident's "I'm fine" to a check-in (alerts/detection/check_in.py);
# away: "the resident is out", evidence of leaving (not a sign of life)
ACTIVITY_NAMES = [
    AWAY_MARK,
    "motion",
    "presence",
    "door",
    "sos",
    "fall",
    "flush",
    "appliance",
    CHECK_IN_ANSWER,
]
BOOL_NAMES = ("presence", "flush", "appliance", AWAY_MARK)
EXIT_ROOM_KINDS = ("entrance",)
# Each device's last few events are kept however old, so a door passage can be told apart
# as leaving or coming home (the departure's open/close before the arrival's).
PER_DEVICE_LAST = 6

RESIDENTS_SQL = """
SELECT r.resident_id, r.full_name, r.site_id, s.kind AS site_kind, s.timezone, r.room_id,
       rm.name AS room_name, r.care_profile, r.care_plan, rr.routine
FROM residents r
JOIN sites s ON s.site_id = r.site_id
LEFT JOIN rooms rm ON rm.room_id = r.room_id
LEFT JOIN resident_routines rr ON rr.resident_id = r.resident_id
WHERE r.discharged_at IS NULL AND r.admitted_at <= %(now)s
ORDER BY r.resident_id
"""

# The devices serving each current resident. A door is an exit when it is at the entrance
# or is the door of the resident's own room (a nursing-home room, a one-room home).
SERVING_CTE = """
WITH pairs AS (
    SELECT a.resident_id, a.device_key, true AS personal
    FROM device_assignments a WHERE a.during @> %(now)s
    UNION ALL
    SELECT r.resident_id, d.device_key, false
    FROM residents r JOIN devices d ON d.site_id = r.site_id
        AND (d.room_id = r.room_id OR (d.room_id IS NULL AND EXISTS (
             SELECT 1 FROM sites s WHERE s.site_id = r.site_id AND s.kind = 'home_care_bed')))
    WHERE r.discharged_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM device_assignments a WHERE a.device_key = d.device_key
        AND a.during @> %(now)s)
), serving AS (
    SELECT DISTINCT ON (p.resident_id, p.device_key) p.resident_id, p.device_key, p.personal,
           d.device_id, d.kind, rm.kind AS room_kind,
           (d.kind = 'door' AND (rm.kind = ANY(%(exit_kinds)s) OR d.room_id = r.room_id)) AS exit
    FROM pairs p
    JOIN devices d ON d.device_key = p.device_key AND d.retired_at IS NULL
    JOIN residents r ON r.resident_id = p.resident_id
    LEFT JOIN rooms rm ON rm.room_id = d.room_id
    ORDER BY p.resident_id, p.device_key, p.personal DESC
)
"""

DEVICES_SQL = (
    SERVING_CTE
    + """
SELECT s.*, st.online, st.battery, st.last_seen_at, e.time, e.name, e.value_bool, e.value_num
FROM serving s
LEFT JOIN device_status st ON st.device_key = s.device_key
LEFT JOIN LATERAL (
    (SELECT time, name, value_bool, NULL::float8 AS value_num FROM events e
     WHERE e.device_key = s.device_key AND e.name = ANY(%(names)s)
       AND e.time <= %(now)s AND e.time > %(lookback)s
     ORDER BY e.time DESC LIMIT %(per_device)s)
    UNION
    (SELECT time, name, value_bool, NULL::float8 FROM events e
     WHERE e.device_key = s.device_key AND e.name = ANY(%(names)s)
       AND e.time <= %(now)s AND e.time > %(recent)s
     ORDER BY e.time DESC LIMIT %(recent_max)s)
    UNION
    -- a wristband's per-minute movement (activity / steps above 0) in the recent window
    (SELECT time, metric, NULL::boolean, value FROM telemetry t
     WHERE s.kind = 'wristband' AND t.device_key = s.device_key
       AND t.metric = ANY(%(movement)s) AND t.value > 0
       AND t.time <= %(now)s AND t.time > %(recent)s
     ORDER BY t.time DESC LIMIT %(per_device)s)
) e ON true
ORDER BY s.resident_id, s.device_key, e.time
"""
)

# The same two queries for one resident (a page asking what the watch promises them).
ONE_RESIDENT_SQL = RESIDENTS_SQL.replace(
    "ORDER BY r.resident_id", "AND r.resident_id = %(rid)s\nORDER BY r.resident_id"
)
ONE_DEVICES_SQL = DEVICES_SQL.replace(
    ") e ON true\nORDER BY", ") e ON true\nWHERE s.resident_id = %(rid)s\nORDER BY"
)


def activity_of(row: Mapping[str, object]) -> Activity:
    time = row["time"]
    assert isinstance(time, datetime)
    value: bool | float | None = None
    if row["name"] in BOOL_NAMES and isinstance(row["value_bool"], bool):
        value = row["value_bool"]
    elif row["name"] in MOVEMENT and isinstance(row.get("value_num"), int | float):
        value = float(str(row["value_num"]))
    return Activity(
        t=time.timestamp(),
        room_kind=row["room_kind"] if isinstance(row["room_kind"], str) else None,
        device_kind=str(row["kind"]),
        name=str(row["name"]),
        value=value,
        exit=bool(row["exit"]),
    )


def _at(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def build_snapshot(
    *,
    resident: Mapping[str, object],
    activities: Sequence[Activity],
    routine: Routine,
    now: datetime,
    devices: tuple[DeviceSnapshot, ...] = (),
) -> ResidentSnapshot:
    """A snapshot from a resident row and their recent activity (pure; used by the replay)."""
    state = current_state(activities)
    last = state.last
    plan = resident.get("care_plan")
    return ResidentSnapshot(
        resident_id=int(str(resident["resident_id"])),
        resident_name=str(resident["full_name"]),
        site_id=str(resident["site_id"]),
        site_kind=str(resident.get("site_kind", "")),
        timezone=str(resident.get("timezone") or "UTC"),
        room_id=int(str(resident["room_id"])) if resident.get("room_id") is not None else None,
        room_name=str(resident["room_name"]) if resident.get("room_name") else None,
        care_profile=str(resident.get("care_profile", "independent")),
        care_plan=plan if isinstance(plan, dict) else {},
        routine=routine,
        taken_at=now,
        last_activity_at=_at(last.t) if last else None,
        last_activity_name=last.name if last else None,
        last_activity_device_kind=last.device_kind if last else None,
        last_activity_room_kind=last.room_kind if last else None,
        in_bed=state.in_bed,
        bed_changed_at=_at(state.bed_changed_at),
        away=state.away_since is not None,
        away_since=_at(state.away_since),
        in_bathroom_since=_at(state.bathroom_since),
        rest_state=state.state,
        seated_since=_at(state.seated_since),
        has_bed_mat=state.has_bed_mat or any(d.kind == "bed_mat" for d in devices),
        has_seat_sensor=state.has_seat_sensor or any(d.kind in SEATS for d in devices),
        devices=devices,
    )


def site_defaults(settings: Settings) -> SiteDefaults:
    """The site's inactivity caps and margin (``ELDERCARE_INACTIVITY_*``), for residents whose
    care plan states none: the tick loop's, and the API's when it tells what the watch
    promises."""
    return SiteDefaults(
        active_max_s=settings.inactivity_default_day_max_s,
        seated_max_s=settings.inactivity_default_seated_max_s,
        bathroom_max_s=settings.inactivity_default_bathroom_max_s,
        margin_s=settings.inactivity_margin_s,
    )


async def load_snapshots(
    conn: Conn,
    *,
    now: datetime,
    defaults: SiteDefaults,
    lookback: timedelta = timedelta(days=30),
    recent: timedelta = timedelta(hours=6),
    recent_max: int = 200,
    resident_id: int | None = None,
) -> list[ResidentSnapshot]:
    """Every current resident's snapshot at ``now``, or only ``resident_id``'s."""
    one = resident_id is not None
    cur = await conn.execute(
        ONE_RESIDENT_SQL if one else RESIDENTS_SQL, {"now": now, "rid": resident_id}
    )
    residents = await cur.fetchall()
    cur = await conn.execute(
        ONE_DEVICES_SQL if one else DEVICES_SQL,
        {
            "rid": resident_id,
            "now": now,
            "names": ACTIVITY_NAMES,
            "exit_kinds": list(EXIT_ROOM_KINDS),
            "lookback": now - lookback,
            "recent": now - recent,
            "recent_max": recent_max,
            "per_device": PER_DEVICE_LAST,
            "movement": list(MOVEMENT),
        },
    )
    activities: dict[int, list[Activity]] = {}
    devices: dict[int, dict[int, DeviceSnapshot]] = {}
    for row in await cur.fetchall():
        rid, key = int(row["resident_id"]), int(row["device_key"])
        if row["time"] is not None:
            activities.setdefault(rid, []).append(activity_of(row))
        previous = devices.setdefault(rid, {}).get(key)
        devices[rid][key] = DeviceSnapshot(
            device_key=key,
            device_id=row["device_id"],
            kind=row["kind"],
            room_kind=row["room_kind"],
            personal=bool(row["personal"]),
            last_event_at=row["time"] or (previous.last_event_at if previous else None),
            online=row["online"],
            battery=row["battery"],
            last_seen_at=row["last_seen_at"],
        )
    fallback = default_routine(defaults)
    return [
        build_snapshot(
            resident=r,
            activities=activities.get(int(r["resident_id"]), []),
            routine=Routine.from_json(r["routine"], defaults) if r["routine"] else fallback,
            now=now,
            devices=tuple(devices.get(int(r["resident_id"]), {}).values()),
        )
        for r in residents
    ]
