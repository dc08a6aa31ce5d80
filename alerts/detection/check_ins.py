"""Inactivity check-ins in the database: asking ("press if you are fine", from the tick loop)
and deciding the open ones (from the check loop). Rules: :mod:`alerts.detection.check_in`.

A check-in is a ``detector_checks`` row (detector ``check_in``, migration 0024): ``idem_key``
``check_in:<the inactivity alert's idem key>`` (one question per quiet spell), ``due_at`` when
an unanswered check-in raises the alert, ``verdict`` that alert, ``resident_id`` and
``device_key`` the resident and the device asked. It is written with its ``check_in`` command
in one transaction, so the timer runs from the database whether or not the device ever
receives the command, and survives a restart of the worker. A row that cannot be judged is
quarantined and its alert raised (asking is only worth it while the answer can be read).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from alerts.detection import check_in as C
from alerts.detection.check_queue import CHECK_INS, decide_checks
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.inactivity import InactivityDetector, care_plan_of, human
from alerts.detection.detectors.snapshot import ResidentSnapshot
from alerts.detection.events_json import verdict_from_json, verdict_to_json
from alerts.detection.persist import persist, raise_fallback
from alerts.detection.phone_check_ins import (
    asked_for_help,
    asked_how,
    mark_read,
    phone_of,
    replies_to,
    text_resident,
)
from alerts.detection.routine import MOVEMENT, Activity
from alerts.detection.snapshots import ACTIVITY_NAMES, BOOL_NAMES, EXIT_ROOM_KINDS, SERVING_CTE
from alerts.dispatch.orders import queue_device_command
from alerts.dispatch.policy import EscalationPolicy
from alerts.work_queue import quarantine
from devices.db import AsyncPool
from devices.domain import Colour
from devices.registry import Conn
from devices.wire import CheckIn

log = logging.getLogger(__name__)

DETECTOR = "check_in"

ASKED_SINCE = """
SELECT count(*) AS n FROM detector_checks
WHERE detector = 'check_in' AND resident_id = %(rid)s AND created_at > %(since)s
"""

INSERT = """
INSERT INTO detector_checks (idem_key, detector, due_at, event, created_at, resident_id,
                             device_key, verdict)
VALUES (%(idem)s, 'check_in', %(due)s, %(event)s, %(now)s, %(rid)s, %(key)s, %(verdict)s)
ON CONFLICT (idem_key) DO NOTHING RETURNING check_id
"""

CLAIM_OPEN = """
SELECT check_id, due_at, created_at, event, verdict, device_key, resident_id
FROM detector_checks WHERE detector = 'check_in' AND done_at IS NULL
ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""

# What the resident's devices (the same ones the snapshot reads) said since the question.
SIGNS_SQL = (
    SERVING_CTE
    + """
SELECT e.time, e.name, e.device_key, s.kind, s.room_kind, s.exit, e.value_bool, e.value_text,
       NULL::float8 AS value_num
FROM serving s JOIN events e ON e.device_key = s.device_key
WHERE s.resident_id = %(rid)s AND e.name = ANY(%(names)s)
  AND e.time >= %(since)s AND e.time <= %(until)s
UNION ALL
SELECT t.time, t.metric, t.device_key, s.kind, s.room_kind, s.exit, NULL, NULL, t.value
FROM serving s JOIN telemetry t ON t.device_key = s.device_key
WHERE s.resident_id = %(rid)s AND s.kind = 'wristband' AND t.metric = ANY(%(movement)s)
  AND t.value > 0 AND t.time >= %(since)s AND t.time <= %(until)s
ORDER BY 1
"""
)


def _idem(verdict: Verdict) -> str:
    return f"check_in:{verdict.idem_key}"


async def ask_first(
    conn: Conn, verdict: Verdict, snapshot: ResidentSnapshot, *, now: datetime, wall: datetime
) -> bool:
    """For an inactivity alert from the moment its resident may be asked (``check_in.ask_at``):
    True if nothing is raised now (a check-in is open for its spell, new or asked before and
    not yet decided; or nobody can be asked and the threshold is still ahead); False: raise."""
    if verdict.kind != "inactivity" or verdict.resident_id is None:
        return False
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (verdict.fold_key,))
    cur = await conn.execute("SELECT 1 FROM alerts WHERE idem_key = %s", (verdict.idem_key,))
    if await cur.fetchone() is not None:
        return False  # already raised (the repeat is not stored again)
    cur = await conn.execute(
        "SELECT done_at FROM detector_checks WHERE idem_key = %s", (_idem(verdict),)
    )
    row = await cur.fetchone()
    if row is not None:
        return row["done_at"] is None  # decided: its alert (if any) is stored under the same key
    device = C.answering_device(snapshot.devices, site_kind=snapshot.site_kind)
    phone = None
    if device is None and care_plan_of(snapshot).check_in_by_phone:
        phone = await phone_of(conn, verdict.resident_id)
    deadline = InactivityDetector().deadline(snapshot)
    if deadline is None:
        return False
    cur = await conn.execute(
        ASKED_SINCE,
        {"rid": verdict.resident_id, "since": now - timedelta(seconds=C.BUDGET_S)},
    )
    counted = await cur.fetchone()
    asked = 0 if counted is None else int(counted["n"])
    window_s = care_plan_of(snapshot).check_in_s
    due = C.due_at(
        deadline,
        now=now.timestamp(),
        window_s=window_s,
        asked_recently=asked,
        can_answer=device is not None or phone is not None,
    )
    if due is None or (device is None and phone is None):
        # nobody to ask: the alert comes at the threshold (the last tick not after it)
        return now.timestamp() < C.raise_from(deadline)
    due_at = datetime.fromtimestamp(due, UTC)
    quiet = snapshot.last_activity_at or now
    asked_on = device.device_id if device is not None else "SMS"
    pending = replace(
        verdict,
        details={
            **verdict.details,
            "check_in": {"device_id": asked_on, "asked_at": now.isoformat()},
        },
    )
    cur = await conn.execute(
        INSERT,
        {
            "idem": _idem(verdict),
            "due": due_at,
            "event": Jsonb(
                {
                    "site_id": snapshot.site_id,
                    "device_id": asked_on,
                    "quiet_since": quiet.isoformat(),
                    "window_s": round(due - now.timestamp()),
                    **({"phone": phone, "via": "sms"} if phone is not None else {}),
                }
            ),
            "now": now,
            "rid": verdict.resident_id,
            "key": device.device_key if device is not None else None,
            "verdict": Jsonb(verdict_to_json(pending)),
        },
    )
    created = await cur.fetchone()
    if created is None:
        return True  # a concurrent tick asked first
    if device is not None:
        command = CheckIn(
            check_id=str(created["check_id"]),
            window_s=round(due - now.timestamp()),
            quiet_since_ts=round(quiet.timestamp(), 3),
            until_ts=round(due, 3),
        )
        await queue_device_command(conn, device_key=device.device_key, cmd=command, now=wall)
    elif phone is not None:
        await text_resident(
            conn,
            check_id=int(created["check_id"]),
            snapshot=snapshot,
            phone=phone,
            quiet_s=(now - quiet).total_seconds(),
            until=wall + timedelta(seconds=due - now.timestamp()),
            wall=wall,
        )
    log.info(
        "check-in %s asked on %s for resident %s (quiet %s)",
        created["check_id"],
        asked_on,
        verdict.resident_id,
        human((now - quiet).total_seconds()),
    )
    return True


def pending_from(row: Mapping[str, Any]) -> C.PendingCheckIn:
    event = row["event"]
    return C.PendingCheckIn(
        check_id=int(row["check_id"]),
        device_key=int(row["device_key"]) if row["device_key"] is not None else None,
        asked_at=row["created_at"].timestamp(),
        due_at=row["due_at"].timestamp(),
        window_s=int(event["window_s"]),
    )


async def _signs(
    conn: Conn, resident_id: int, *, since: datetime, until: datetime
) -> list[tuple[Activity, int, str | None]]:
    cur = await conn.execute(
        SIGNS_SQL,
        {
            "now": until,
            "exit_kinds": list(EXIT_ROOM_KINDS),
            "rid": resident_id,
            "names": [*ACTIVITY_NAMES, C.ANSWER],
            "movement": list(MOVEMENT),
            "since": since,
            "until": until,
        },
    )
    out: list[tuple[Activity, int, str | None]] = []
    for r in await cur.fetchall():
        value: bool | float | None = None
        if r["name"] in BOOL_NAMES and isinstance(r["value_bool"], bool):
            value = r["value_bool"]
        elif r["name"] in MOVEMENT and r["value_num"] is not None:
            value = float(r["value_num"])
        activity = Activity(
            t=r["time"].timestamp(),
            room_kind=r["room_kind"],
            device_kind=str(r["kind"]),
            name=str(r["name"]),
            value=value,
            exit=bool(r["exit"]),
        )
        out.append((activity, int(r["device_key"]), r["value_text"]))
    return out


def unanswered(verdict: Verdict, check: C.PendingCheckIn, *, device_id: str) -> Verdict:
    asked = datetime.fromtimestamp(check.asked_at, UTC)
    return replace(
        verdict,
        occurred_at=datetime.fromtimestamp(check.due_at, UTC),
        explanation=f"{verdict.explanation}; {asked_how(device_id)} at "
        f"{asked:%H:%M} UTC: no answer within {human(check.window_s)}",
        details={
            **verdict.details,
            "check_in": {
                "check_id": check.check_id,
                "device_id": device_id,
                "asked_at": asked.isoformat(),
                "window_s": check.window_s,
                "outcome": "no_answer",
            },
        },
    )


async def _decide(
    conn: Conn, row: Mapping[str, Any], *, policy: EscalationPolicy, now: datetime, wall: datetime
) -> str | None:
    check = pending_from(row)
    verdict = verdict_from_json(row["verdict"])
    signs = await _signs(
        conn, int(row["resident_id"]), since=row["created_at"], until=max(now, row["created_at"])
    )
    read, replies = await replies_to(conn, check.check_id)
    result = C.judge(check, signs, now=now.timestamp(), replies=replies)
    if result is None:
        return None
    await mark_read(conn, read, outcome=f"read by check-in {check.check_id}", wall=wall)
    if isinstance(result, C.Help):
        helped = asked_for_help(verdict, check, result)
        if await persist(conn, helped, now=wall, policy=policy):
            log.info("alert %s (%s): %s", helped.kind, helped.colour, helped.explanation)
        return f"raised: replied {result.text[:60]!r}"
    if isinstance(result, C.Answer):
        at = datetime.fromtimestamp(result.at, UTC)
        log.info("check-in %s: %s at %s", check.check_id, result.how, at.isoformat())
        return f"answered: {result.how} at {at.isoformat()}"
    raised = unanswered(verdict, check, device_id=str(row["event"].get("device_id", "")))
    if await persist(conn, raised, now=wall, policy=policy):
        log.info("alert %s (%s): %s", raised.kind, raised.colour, raised.explanation)
        return "raised: no answer"
    return "folded into an earlier alert"


async def _fallback(conn: Conn, row: Mapping[str, Any], error: str) -> Verdict | None:
    """The alert a check-in that cannot be judged raises: its own, or (unreadable) a plain
    inactivity alert for its resident."""
    try:
        return verdict_from_json(row["verdict"])
    except Exception:
        log.exception("check-in %s: its alert could not be read", row.get("check_id"))
    rid = row.get("resident_id")
    if not isinstance(rid, int):
        return None
    cur = await conn.execute(
        "SELECT site_id, full_name FROM residents WHERE resident_id = %s", (rid,)
    )
    r = await cur.fetchone()
    if r is None:
        return None
    return Verdict(
        detector="fallback",
        kind="inactivity",
        colour=Colour.YELLOW,
        occurred_at=row["due_at"] if isinstance(row.get("due_at"), datetime) else datetime.now(UTC),
        site_id=str(r["site_id"]),
        resident_id=rid,
        idem_key=f"inactivity:check_in:{row.get('check_id')}",
        fold_key=f"inactivity:{rid}",
        fold_s=60,
        explanation=f"{r['full_name']}: quiet past their normal; the check-in could not be "
        f"judged ({error}): check on them",
        details={"fallback": True, "error": error},
    )


async def _quarantine(
    conn: Conn, row: Mapping[str, Any], exc: Exception, *, policy: EscalationPolicy, wall: datetime
) -> str:
    error, _ = await quarantine(conn, CHECK_INS, row, exc, now=wall)
    verdict = await _fallback(conn, row, error)
    raised = await raise_fallback(
        conn, verdict, policy=policy, now=wall, item=f"check-in {row.get('check_id')}"
    )
    return f"raised: check-in failed ({error})" if raised else f"quarantined: {error}"


async def run_check_ins(
    pool: AsyncPool, *, policy: EscalationPolicy, limit: int, now: datetime, wall: datetime
) -> tuple[int, int]:
    """Every open check-in, due or not: answered (the button, or any sign of life) records
    it; past its due time unanswered raises its alert. (decided, raised). Judged at ``now``,
    raised at ``wall``."""
    return await decide_checks(
        pool,
        claim_sql=CLAIM_OPEN,
        params={"limit": limit},
        decide=_decide,
        quarantine=_quarantine,
        policy=policy,
        now=now,
        wall=wall,
    )
