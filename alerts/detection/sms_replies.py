"""Texts from residents' phones that no check-in read (migration 0029): one sent with no
check-in open on that number ("救命" on its own, "2" a day later), or one that came after its
check-in was decided. The check loop reads each once, in the order they came:

* a text that asks for help (:func:`check_in.read_reply`: "2", "救", "帮", "摔", "help", ...)
  from the number of a resident is a **red alert at once**, kind ``sos`` (the resident asked
  for a person, as with the button), for every resident with that number, with the text in
  its explanation;
* any other text (or one from a number no resident has) raises nothing: it is recorded,
  with what it said and whose number it was, and logged. One that came after a check-in to
  that number raised the inactivity alert ("1" at 10:17, the alert at 10:15) is also **noted
  on that alert** while its order is open (``details.late_replies``), so the operator and the carers on its order see that
  the resident answered late: whether to stand down is theirs to decide, after a call.

A reply that cannot be read is quarantined with its error and marked read (no crash loop);
the quarantine is a technical alert for the admins.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alerts.detection import check_in as C
from alerts.detection.detectors.base import Verdict
from alerts.detection.persist import persist
from alerts.dispatch.orders import DISPATCH_CHANNEL
from alerts.dispatch.policy import EscalationPolicy
from alerts.work_queue import Queue, claimed, each, quarantine
from devices.db import AsyncPool
from devices.domain import Colour
from devices.phones import mainland_digits
from devices.registry import Conn

log = logging.getLogger(__name__)

REPLIES = Queue("check_in_replies", key="id", what="SMS reply", field="reply_id")
FOLD_S = 120  # as the SOS button's presses: texts within two minutes are one situation

# Unread: matched to no check-in, or to one decided before the reply came.
CLAIM_UNREAD = """
SELECT r.id, r.phone, r.body, r.received_at, r.check_id
FROM check_in_replies r LEFT JOIN detector_checks c ON c.check_id = r.check_id
WHERE r.handled_at IS NULL AND (r.check_id IS NULL OR c.done_at IS NOT NULL)
ORDER BY r.id LIMIT %(limit)s
FOR UPDATE OF r SKIP LOCKED
"""

# A late answer noted on the alert an unanswered check-in raised: the reply's own check-in
# (it came while that was open, and was read after the decision), or else, for a reply that
# came after it (``check_id`` NULL: ``dashboard_api.inbound`` matches open check-ins only),
# the last decided check-in texted to that number. Only while the alert's order is open (the
# check's idem key is ``check_in:<the alert's idem key>``, ``check_ins._idem``); the last
# LATE_KEEP texts are kept, so a flood from one number cannot grow the alert without bound.
LATE_KEEP = 5
NOTE_LATE_SQL = f"""
WITH c AS (
    SELECT idem_key FROM detector_checks
    WHERE detector = 'check_in' AND done_at IS NOT NULL
      AND (check_id = %(check_id)s
           OR (%(check_id)s::bigint IS NULL AND event ->> 'phone' = %(phone)s))
    ORDER BY done_at DESC LIMIT 1
), noted AS (
UPDATE alerts a SET details = jsonb_set(a.details, '{{late_replies}}', jsonb_path_query_array(
    COALESCE(a.details->'late_replies', '[]'::jsonb) || jsonb_build_array(jsonb_build_object(
        'at', %(at)s::timestamptz, 'text', %(text)s::text, 'reading', %(reading)s::text,
        'reply_id', %(reply_id)s::bigint)),
    '$[last - {LATE_KEEP - 1} to last]'))
FROM c
WHERE a.idem_key = substr(c.idem_key, length('check_in:') + 1)
  AND EXISTS (SELECT 1 FROM dispatch_orders o WHERE o.alert_id = a.alert_id
              AND o.state NOT IN ('resolved', 'cancelled'))
RETURNING a.alert_id
)
-- the order's pages hear of it at commit, as of any change of the order (``<id>:<state>`` on
-- the dispatch channel: the console, the station and the wall reload it)
SELECT n.alert_id, (SELECT count(pg_notify(%(channel)s, o.order_id || ':' || o.state))
                    FROM dispatch_orders o WHERE o.alert_id = n.alert_id
                      AND o.state NOT IN ('resolved', 'cancelled')) AS announced
FROM noted n
"""

# Residents whose record has this mobile number (compared as mainland digits).
RESIDENTS_SQL = """
SELECT resident_id, site_id, full_name, phone FROM residents
WHERE discharged_at IS NULL AND phone <> ''
  AND right(regexp_replace(phone, '[^0-9]', '', 'g'), 11) = %s
ORDER BY resident_id
"""


def asks_for_help(
    reply_id: int, text: str, at: datetime, resident: Mapping[str, Any], *, late_to: int | None
) -> Verdict:
    """The red alert for a text from a resident's phone that asks for a person."""
    rid = int(resident["resident_id"])
    after = (
        f"after check-in {late_to} was decided" if late_to is not None else "with no check-in open"
    )
    return Verdict(
        detector="sms_reply",
        kind="sos",
        colour=Colour.RED,
        occurred_at=at,
        site_id=str(resident["site_id"]),
        resident_id=rid,
        idem_key=f"sms_reply:{reply_id}:{rid}",
        fold_key=f"sos:{rid}",
        fold_s=FOLD_S,
        explanation=f"{resident['full_name']} texted {text[:60]!r} at {at:%H:%M} UTC ({after}): "
        "asks for help; call them back and go",
        details={"via": "sms", "reply_id": reply_id, "reply": text[:200], "check_id": late_to},
    )


async def _read(
    conn: Conn, row: Mapping[str, Any], *, policy: EscalationPolicy, wall: datetime
) -> str:
    text, at, late_to = str(row["body"]), row["received_at"], row["check_id"]
    digits = mainland_digits(str(row["phone"]))
    residents = (
        [] if digits is None else await (await conn.execute(RESIDENTS_SQL, (digits,))).fetchall()
    )
    reading = C.read_reply(text)
    whose = ", ".join(f"resident {r['resident_id']}" for r in residents) or "no resident's number"
    if reading != "help" or not residents:
        noted = await _note_late(conn, row, reading=reading)
        log.info(
            "SMS reply %s read (%s, %s): nothing to raise",
            row["id"],
            reading,
            whose,
            extra={"reply_id": row["id"], "alert_id": noted},
        )
        return (
            f"{reading}, {whose}"
            + (f", after check-in {late_to}" if late_to else "")
            + (f", noted on alert {noted}" if noted is not None else "")
        )
    for resident in residents:
        verdict = asks_for_help(int(row["id"]), text, at, resident, late_to=late_to)
        if await persist(conn, verdict, now=wall, policy=policy):
            log.warning("alert sos (red): %s", verdict.explanation, extra={"reply_id": row["id"]})
    return f"raised: asks for help, {whose}"


async def _note_late(conn: Conn, row: Mapping[str, Any], *, reading: str) -> int | None:
    """Note a late answer on the alert its check-in raised (``NOTE_LATE_SQL``); that alert's
    id, or None."""
    cur = await conn.execute(
        NOTE_LATE_SQL,
        {
            "at": row["received_at"],
            "text": str(row["body"])[:200],
            "reading": reading,
            "reply_id": row["id"],
            "check_id": row["check_id"],
            "phone": row["phone"],
            "channel": DISPATCH_CHANNEL,
        },
    )
    noted = await cur.fetchone()
    return None if noted is None else int(noted["alert_id"])


async def run_replies(
    pool: AsyncPool, *, policy: EscalationPolicy, limit: int, wall: datetime
) -> int:
    """Read every unread reply (up to ``limit``); how many were read."""
    async with pool.connection() as conn, claimed(conn, CLAIM_UNREAD, {"limit": limit}) as rows:

        async def work(row: Mapping[str, Any]) -> str:
            return await _read(conn, row, policy=policy, wall=wall)

        async def failed(row: Mapping[str, Any], exc: Exception) -> str:
            error, _ = await quarantine(conn, REPLIES, row, exc, now=wall)
            return f"quarantined: {error}"

        async def mark(row: Mapping[str, Any], outcome: str) -> None:
            await conn.execute(
                "UPDATE check_in_replies SET handled_at = %s, outcome = %s WHERE id = %s",
                (wall, outcome[:200], row["id"]),
            )

        outcomes = await each(conn, rows, work, failed=failed, then=mark)
    return len(outcomes)
