"""Check-ins by SMS (issue 17 item 3, migration 0027): a resident with no button or wristband
whose care plan allows it (``check_in_by_phone``) is texted "reply 1 if you are fine, 2 if you
need help" on their own mobile; the notify loop sends it (``alerts.notify.resident_messages``)
and the API stores what comes back (``POST /api/inbound/sms/{provider}/{token}``,
``check_in_replies``). The rules that read a reply are pure: :func:`check_in.read_reply`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from psycopg.types.json import Jsonb

from alerts.detection import check_in as C
from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.snapshot import ResidentSnapshot
from devices.domain import Colour
from devices.i18n import DEFAULT_LOCALE, duration, t
from devices.phones import mainland_digits
from devices.registry import Conn


def asked_how(device_id: str) -> str:
    if device_id == "SMS":
        return 'texted "reply 1 if you are fine"'
    return f'asked "press if you are fine" on {device_id}'


async def phone_of(conn: Conn, resident_id: int) -> str | None:
    """The resident's own mobile number, if their record has one a text can reach."""
    cur = await conn.execute("SELECT phone FROM residents WHERE resident_id = %s", (resident_id,))
    row = await cur.fetchone()
    return mainland_digits(str(row["phone"])) if row is not None else None


async def text_resident(
    conn: Conn,
    *,
    check_id: int,
    snapshot: ResidentSnapshot,
    phone: str,
    quiet_s: float,
    until: datetime,
    wall: datetime,
) -> None:
    """The check-in as a text to the resident's phone, sent by the notify loop
    (``alerts.notify.resident_messages``); its answer comes back through the SMS provider's
    reply callback (``POST /api/inbound/sms/...``)."""
    name = snapshot.resident_name
    # a carrier template in Chinese (the residents' language; the catalogue has it in English too)
    quiet = duration(quiet_s, DEFAULT_LOCALE)
    body = t("sms.check_in", DEFAULT_LOCALE, name=name, quiet=quiet)
    await conn.execute(
        "INSERT INTO resident_messages (check_id, resident_id, phone, kind, body, payload,"
        " created_at, not_after, next_attempt_at) VALUES (%s, %s, %s, 'check_in', %s, %s, %s,"
        " %s, %s)",
        (
            check_id,
            snapshot.resident_id,
            phone,
            body,
            Jsonb({"resident_name": name, "kind": "check_in", "quiet": quiet}),
            wall,
            until,
            wall,
        ),
    )


async def replies_to(conn: Conn, check_id: int) -> tuple[list[int], list[tuple[float, str]]]:
    """The replies matched to a check-in: (their ids, (received, text) each)."""
    cur = await conn.execute(
        "SELECT id, received_at, body FROM check_in_replies WHERE check_id = %s ORDER BY id",
        (check_id,),
    )
    rows = await cur.fetchall()
    return [int(r["id"]) for r in rows], [
        (r["received_at"].timestamp(), str(r["body"])) for r in rows
    ]


async def mark_read(conn: Conn, ids: list[int], *, outcome: str, wall: datetime) -> None:
    """These replies were read by their check-in's decision; any that came later are read by
    ``alerts.detection.sms_replies``."""
    if ids:
        await conn.execute(
            "UPDATE check_in_replies SET handled_at = %s, outcome = %s WHERE id = ANY(%s)",
            (wall, outcome[:200], ids),
        )


def asked_for_help(verdict: Verdict, check: C.PendingCheckIn, reply: C.Help) -> Verdict:
    """A reply to the SMS check-in that asks for a person: the alert at once, red."""
    at = datetime.fromtimestamp(reply.at, UTC)
    return replace(
        verdict,
        colour=Colour.RED,
        occurred_at=at,
        explanation=f"{verdict.explanation}; replied {reply.text[:60]!r} to the SMS check-in "
        f"at {at:%H:%M} UTC: asks for help",
        details={
            **verdict.details,
            "check_in": {
                "check_id": check.check_id,
                "device_id": "SMS",
                "asked_at": datetime.fromtimestamp(check.asked_at, UTC).isoformat(),
                "window_s": check.window_s,
                "outcome": "help",
                "reply": reply.text[:200],
            },
        },
    )
