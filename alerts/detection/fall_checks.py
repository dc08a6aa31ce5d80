"""Fall checks in the database: opening one ("did you fall?" sent to the wearable) and reading
the open ones for the check loop (``alerts.detection.checks.run_fall_checks``).

A fall check is a deferred check (``detector_checks``, detector ``fall_check``): its ``due_at``
is when an unanswered check pages, its ``verdict`` the alert it raises. It is written with its
``fall_check`` command in one transaction, so the timer runs from the database whether or not
the device ever receives the command, and survives a restart of the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
from psycopg.types.json import Jsonb

from alerts.detection.detectors.base import StreamEvent, Verdict
from alerts.detection.events_json import event_to_json, verdict_from_json, verdict_to_json
from alerts.detection.fall import check as C
from alerts.dispatch.orders import COMMANDS_CHANNEL
from devices.careplan import DEFAULT_FALL_CHECK_S
from devices.registry import Conn
from devices.wire import TOPIC_ROOT, FallCheck, encode_command

log = logging.getLogger(__name__)

DETECTOR = "fall_check"

# An open alert of the same situation (the fall's fold key, its order not closed): a likely
# fall then joins it instead of asking the wearer.
OPEN_INCIDENT = """
SELECT 1 FROM incidents i LEFT JOIN dispatch_orders o ON o.incident_id = i.incident_id
WHERE i.fold_key = %(fold)s AND i.last_at >= %(since)s AND i.first_at <= %(until)s
  AND (o.state IS NULL OR o.state NOT IN ('resolved', 'cancelled'))
LIMIT 1
"""

OPEN_CHECK = """
SELECT check_id FROM detector_checks
WHERE detector = 'fall_check' AND done_at IS NULL AND verdict->>'fold_key' = %(fold)s
LIMIT 1
"""

CHECKS_SINCE = """
SELECT count(*) AS n FROM detector_checks
WHERE detector = 'fall_check' AND resident_id = %(rid)s AND created_at > %(since)s
"""

INSERT = """
INSERT INTO detector_checks (idem_key, detector, due_at, event, created_at, resident_id,
                             device_key, verdict)
VALUES (%(idem)s, 'fall_check', %(due)s, %(event)s, %(now)s, %(rid)s, %(key)s, %(verdict)s)
ON CONFLICT (idem_key) DO NOTHING RETURNING check_id
"""

COMMAND = """
INSERT INTO device_commands (device_key, topic, payload, created_at)
SELECT d.device_key, %(root)s || '/' || d.site_id || '/' || d.device_id || '/cmd', %(payload)s,
       %(now)s
FROM devices d WHERE d.device_key = %(key)s AND d.retired_at IS NULL
"""

CLAIM_OPEN = """
SELECT check_id, due_at, event, verdict, device_key FROM detector_checks
WHERE detector = 'fall_check' AND done_at IS NULL
ORDER BY due_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""

ACC_SINCE = """
SELECT extract(epoch FROM time)::float8 AS t0, t_offset, acc_x, acc_y, acc_z FROM acc_windows
WHERE device_key = %(key)s AND time >= %(since)s AND time <= %(until)s ORDER BY time
"""


def asks(verdict: Verdict) -> bool:
    """A likely fall whose wearer is to be asked first (``AccFallDetector`` marks it)."""
    return verdict.kind == "fall" and verdict.details.get("check") is True


def _window(verdict: Verdict) -> int:
    raw = verdict.details.get("check_window_s")
    return int(raw) if isinstance(raw, int) else DEFAULT_FALL_CHECK_S


def check_event(verdict: Verdict) -> StreamEvent:
    """The stream event the check context is gathered for (the device and its resident)."""
    assert verdict.device_key is not None
    return StreamEvent(
        kind="acc",
        name=DETECTOR,
        time=verdict.occurred_at,
        device_key=verdict.device_key,
        device_id=str(verdict.details.get("device_id", "")),
        device_kind="wristband",
        site_id=verdict.site_id,
        resident_id=verdict.resident_id,
    )


async def checks_since(conn: Conn, resident_id: int | None, since: datetime) -> int:
    if resident_id is None:
        return 0
    cur = await conn.execute(CHECKS_SINCE, {"rid": resident_id, "since": since})
    row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def paged_already(conn: Conn, verdict: Verdict) -> bool:
    """Whether an alert of the same situation is open (a later, certain window paged)."""
    window = timedelta(seconds=verdict.fold_s)
    cur = await conn.execute(
        OPEN_INCIDENT,
        {
            "fold": verdict.fold_key,
            "since": verdict.occurred_at - window,
            "until": verdict.occurred_at + window,
        },
    )
    return await cur.fetchone() is not None


async def ask_first(conn: Conn, verdict: Verdict, *, now: datetime) -> bool:
    """Open a fall check for a likely fall and queue its ``fall_check`` command; True if the
    check is open (new, or one already open for this situation), False if the fall should
    be persisted now (it joins an alert already open for the same situation)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (verdict.fold_key,))
    if await paged_already(conn, verdict):
        return False  # already paged: this impact joins that alert
    cur = await conn.execute(OPEN_CHECK, {"fold": verdict.fold_key})
    if await cur.fetchone() is not None:
        return True  # one question at a time: the open check covers this impact too
    window_s = _window(verdict)
    due = C.due_at(verdict.occurred_at, window_s)
    asked = await checks_since(conn, verdict.resident_id, now - timedelta(days=1)) + 1
    if asked > 1:  # the aim is about one question a day: more says the detector cries wolf
        log.warning(
            "resident %s asked 'did you fall?' %d times in 24 h", verdict.resident_id, asked
        )
    pending = replace(verdict, details={**verdict.details, "checks_24h": asked})
    cur = await conn.execute(
        INSERT,
        {
            "idem": verdict.idem_key,
            "due": due,
            "event": Jsonb(event_to_json(check_event(verdict))),
            "now": now,
            "rid": verdict.resident_id,
            "key": verdict.device_key,
            "verdict": Jsonb(verdict_to_json(pending)),
        },
    )
    row = await cur.fetchone()
    if row is None:
        return True  # the same impact again (a redelivery): one check
    command = FallCheck(
        check_id=str(row["check_id"]),
        window_s=window_s,
        impact_ts=round(verdict.occurred_at.timestamp(), 3),
        until_ts=round(due.timestamp(), 3),
    )
    cur = await conn.execute(
        COMMAND,
        {
            "root": TOPIC_ROOT,
            "payload": encode_command(command),
            "now": now,
            "key": verdict.device_key,
        },
    )
    if cur.rowcount:
        await conn.execute("SELECT pg_notify(%s, '')", (COMMANDS_CHANNEL,))
    return True


def pending_from(row: dict[str, object]) -> C.PendingCheck:
    verdict = verdict_from_json(row["verdict"])  # type: ignore[arg-type]
    return C.PendingCheck(
        check_id=int(row["check_id"]),  # type: ignore[call-overload]
        verdict=verdict,
        device_key=int(row["device_key"]),  # type: ignore[call-overload]
        due_at=row["due_at"],  # type: ignore[arg-type]
        window_s=_window(verdict),
    )


async def still_at(conn: Conn, check: C.PendingCheck, *, now: datetime) -> datetime | None:
    """When the wearer had lain still long enough after the impact (from the device's acc
    windows), or None."""
    impact = check.verdict.occurred_at
    if (now - impact).total_seconds() < C.SETTLE_S + C.STILL_S:
        return None
    cur = await conn.execute(
        ACC_SINCE,
        {
            "key": check.device_key,
            "since": impact + timedelta(seconds=C.SETTLE_S - 1),
            "until": now,
        },
    )
    rows: Sequence[dict[str, object]] = await cur.fetchall()
    times: list[float] = []
    xyz: list[tuple[float, float, float]] = []
    for p in rows:
        t0 = float(p["t0"])  # type: ignore[arg-type]
        for dt, x, y, z in zip(p["t_offset"], p["acc_x"], p["acc_y"], p["acc_z"], strict=True):  # type: ignore[call-overload]
            times.append(t0 + float(dt))
            xyz.append((float(x), float(y), float(z)))
    if len(times) < 2:
        return None
    at = C.still_since(np.array(times), np.array(xyz), impact=impact.timestamp())
    return None if at is None else datetime.fromtimestamp(at, impact.tzinfo)
