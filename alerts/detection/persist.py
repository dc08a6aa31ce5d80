"""The seam from detection to the 96345 queue: a verdict is stored as an alert, folded into
its incident, and (for a new incident) an order is opened through ``alerts.dispatch.orders``.
Every detector loop (the outbox worker, the timers, deferred and fall checks) raises alerts
here and nowhere else; a quarantined life-safety item is raised here by its fallback verdict.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.detection.detectors.base import Deferral, Verdict
from alerts.detection.events_json import event_to_json
from alerts.detection.fall_checks import ask_first, asks
from alerts.dispatch.orders import open_order
from alerts.dispatch.policy import EscalationPolicy
from devices.domain import LIFE_SAFETY, Colour
from devices.registry import Conn

log = logging.getLogger(__name__)


def log_raised(verdict: Verdict) -> None:
    """An alert that opened a new incident, with its ids as fields."""
    log.info(
        "alert %s (%s): %s",
        verdict.kind,
        verdict.colour,
        verdict.explanation,
        extra={
            "kind": verdict.kind,
            "colour": verdict.colour.value,
            "detector": verdict.detector,
            "site_id": verdict.site_id,
            "resident_id": verdict.resident_id,
            "device_key": verdict.device_key,
        },
    )


async def persist(conn: Conn, verdict: Verdict, *, now: datetime, policy: EscalationPolicy) -> bool:
    """Store the alert and fold it into its incident; True if it opened a new incident (and
    its order), False if it joined an open one or repeats an alert already stored.

    A repeat is the same input (idem key): not stored again. The same situation (fold key)
    within the verdict's fold window of an incident whose order is still open joins that
    incident. The advisory lock on the fold key makes two workers racing on one situation
    take turns (the second sees the first's committed incident), so they still open one
    incident and one order; the incident key is unique as a second line of defence.
    """
    # the lock in a statement of its own: the next one's snapshot must be taken after it
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (verdict.fold_key,))
    window = timedelta(seconds=verdict.fold_s)
    cur = await conn.execute(
        FOLD_SQL,
        {
            "idem": verdict.idem_key,
            "fold": verdict.fold_key,
            "since": verdict.occurred_at - window,
            "until": verdict.occurred_at + window,
        },
    )
    found = await cur.fetchone()
    assert found is not None
    if found["repeat"]:
        return False
    if found["incident_id"] is not None:
        incident_id = int(found["incident_id"])
        await conn.execute(
            "UPDATE incidents SET alert_count = alert_count + 1, last_at = greatest(last_at, %s),"
            " first_at = least(first_at, %s) WHERE incident_id = %s",
            (verdict.occurred_at, verdict.occurred_at, incident_id),
        )
        await _store_alert(conn, verdict, now=now, incident_id=incident_id)
        return False
    incident_id, alert_id = await _open_incident(conn, verdict, now=now)
    await open_order(
        conn,
        alert_id=alert_id,
        incident_id=incident_id,
        site_id=verdict.site_id,
        resident_id=verdict.resident_id,
        colour=verdict.colour,
        category=verdict.kind,
        event_at=verdict.occurred_at,
        now=now,
        policy=policy,
        hold=verdict.details.get("late") is True,  # flagged late: a person decides
    )
    return True


# Is this input stored already (idem key), and which open incident of the same situation
# (fold key) within the window does it join, in one round trip.
FOLD_SQL = """
SELECT EXISTS (SELECT 1 FROM alerts WHERE idem_key = %(idem)s) AS repeat,
       (SELECT i.incident_id FROM incidents i
        LEFT JOIN dispatch_orders o ON o.incident_id = i.incident_id
        WHERE i.fold_key = %(fold)s AND i.last_at >= %(since)s AND i.first_at <= %(until)s
          AND (o.state IS NULL OR o.state NOT IN ('resolved', 'cancelled'))
        ORDER BY i.last_at DESC LIMIT 1) AS incident_id
"""

ALERT_COLUMNS = (
    "idem_key, fold_key, site_id, resident_id, device_key, kind, colour, detector, occurred_at,"
    " raised_at, explanation, details"
)
ALERT_VALUES = (
    "%(idem)s, %(fold)s, %(site)s, %(resident)s, %(device)s, %(kind)s, %(colour)s, %(detector)s,"
    " %(at)s, %(now)s, %(explanation)s, %(details)s"
)

# A new incident and its first alert in one statement (the alert's foreign key is checked at
# the statement's end, when the incident is there).
OPEN_INCIDENT_SQL = f"""
WITH i AS (
    INSERT INTO incidents (incident_key, fold_key, site_id, resident_id, cause, colour,
                           first_at, last_at)
    VALUES (%(incident_key)s, %(fold)s, %(site)s, %(resident)s, %(kind)s, %(colour)s, %(at)s,
            %(at)s)
    RETURNING incident_id)
INSERT INTO alerts ({ALERT_COLUMNS}, incident_id)
SELECT {ALERT_VALUES}, i.incident_id FROM i
RETURNING alert_id, incident_id
"""


def _alert_params(verdict: Verdict, *, now: datetime) -> dict[str, object]:
    return {
        "idem": verdict.idem_key,
        "fold": verdict.fold_key,
        "site": verdict.site_id,
        "resident": verdict.resident_id,
        "device": verdict.device_key,
        "kind": verdict.kind,
        "colour": verdict.colour.value,
        "detector": verdict.detector,
        "at": verdict.occurred_at,
        "now": now,
        "explanation": verdict.explanation,
        "details": Jsonb(dict(verdict.details)),
    }


async def _open_incident(conn: Conn, verdict: Verdict, *, now: datetime) -> tuple[int, int]:
    """(incident, alert) of a verdict that opens a new incident."""
    params = _alert_params(verdict, now=now)
    params["incident_key"] = f"{verdict.fold_key}@{verdict.occurred_at.isoformat()}"
    cur = await conn.execute(OPEN_INCIDENT_SQL, params)
    row = await cur.fetchone()
    assert row is not None
    return int(row["incident_id"]), int(row["alert_id"])


async def _store_alert(conn: Conn, verdict: Verdict, *, now: datetime, incident_id: int) -> int:
    cur = await conn.execute(
        f"INSERT INTO alerts ({ALERT_COLUMNS}, incident_id) VALUES ({ALERT_VALUES},"
        " %(incident)s) RETURNING alert_id",
        _alert_params(verdict, now=now) | {"incident": incident_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["alert_id"])


async def defer(conn: Conn, deferral: Deferral, *, now: datetime) -> None:
    """Keep a check for later; the same event deferred twice (a redelivery) is one check."""
    await conn.execute(
        "INSERT INTO detector_checks (idem_key, detector, due_at, event, created_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idem_key) DO NOTHING",
        (
            deferral.key,
            deferral.detector,
            deferral.due_at,
            Jsonb(event_to_json(deferral.event)),
            now,
        ),
    )


async def store(conn: Conn, verdict: Verdict, *, now: datetime, policy: EscalationPolicy) -> bool:
    """A likely fall whose wearer is asked first opens a fall check (``alerts.detection.fall_checks``);
    any other verdict is persisted. True if it opened a new incident."""
    if asks(verdict) and await ask_first(conn, verdict, now=now):
        return False
    return await persist(conn, verdict, now=now, policy=policy)


def fallback_verdict(row: Mapping[str, Any], error: str, *, now: datetime) -> Verdict | None:
    """A life-safety event its detector could not judge is still raised, red, with the
    detector's own keys (a redelivery stays one alert): never lost to a bug."""
    name = str(row.get("name"))
    if row.get("kind") != "event" or name not in LIFE_SAFETY or row.get("value_bool") is False:
        return None
    at = row.get("time")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            at = now
    at = at if isinstance(at, datetime) and at.tzinfo is not None else now
    device_key = row.get("device_key")
    if not isinstance(device_key, int):
        return None
    resident = row.get("resident_id")
    source = row.get("site_id") if name == "smoke" else (resident or f"d{device_key}")
    return Verdict(
        detector="fallback",
        kind=name,
        colour=Colour.RED,
        occurred_at=at,
        site_id=str(row.get("site_id")),
        resident_id=int(resident) if isinstance(resident, int) else None,
        device_key=device_key,
        idem_key=f"{name}:{device_key}:{at.timestamp()}",
        fold_key=f"{name}:{source}",
        fold_s=120,
        explanation=f"{name.upper()} from {row.get('device_kind')} {row.get('device_id')} at "
        f"{at:%H:%M:%S} UTC (its detector failed: {error}); treat it as an emergency",
        details={"device_id": row.get("device_id"), "fallback": True, "error": error},
    )


async def raise_fallback(
    conn: Conn, verdict: Verdict | None, *, policy: EscalationPolicy, now: datetime, item: str
) -> bool | None:
    """Persist a fallback verdict in its own savepoint: True if it opened an incident, False
    if it folded into one, None if there was none or it failed too (logged; the item stays in
    the quarantine, shown as a technical alert)."""
    if verdict is None:
        return None
    try:
        async with conn.transaction():
            return await persist(conn, verdict, now=now, policy=policy)
    except psycopg.OperationalError:
        raise
    except Exception:
        log.exception("the fallback alert for %s failed too", item)
        return None
