"""Tell the centre's duty staff about technical alerts through the notification channels,
directly from the watcher that found them: the alerts worker's notification loop may be
the very thing that died. A raise is sent once, and its recovery once."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alerts.notify.channels import Channel, DeliveryFailed, Outgoing
from alerts.notify.policy import ChannelKind
from devices.registry import Conn

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10

DUE_SQL = """
SELECT id, key, kind, colour, subject, details, raised_at, cleared_at,
       notified_at IS NULL AS raising
FROM technical_alerts
WHERE notify_attempts < %(max)s AND raised_at > %(now)s - interval '1 day'
  AND (notified_at IS NULL
       OR (cleared_at IS NOT NULL AND clear_notified_at IS NULL))
ORDER BY id LIMIT 20
FOR UPDATE SKIP LOCKED
"""


@dataclass(frozen=True, slots=True)
class Target:
    kind: ChannelKind
    address: str


async def send_all(
    channels: Mapping[ChannelKind, Channel],
    targets: Sequence[Target],
    row: Mapping[str, Any],
    *,
    secret: str,
    now: datetime,
) -> tuple[bool, str]:
    raising = bool(row["raising"])
    prefix = "【系统故障】" if raising else "【已恢复】"
    suffix = "" if raising else " / recovered"
    receipts: list[str] = []
    ok = False
    for t in targets:
        channel = channels.get(t.kind)
        if channel is None:
            receipts.append(f"{t.kind}: not enabled")
            continue
        subject, text = f"{prefix}{row['kind']}{suffix}", f"{prefix}{row['subject']}{suffix}"
        out = Outgoing(
            delivery_id=int(row["id"]),
            address=t.address,
            subject=subject,
            text=text,
            payload={
                "subject": subject,
                "text": text,
                "type": "technical",
                "key": row["key"],
                "colour": row["colour"],
                "state": "raised" if raising else "cleared",
                "details": row["details"],
            },
            secret=secret,
            timestamp=int(now.timestamp()),
        )
        try:
            receipts.append(f"{t.kind}: {await channel.send(out)}")
            ok = True
        except DeliveryFailed as exc:
            receipts.append(f"{t.kind}: failed: {exc.receipt}")
        except Exception as exc:  # a channel bug must not stop the watchdog
            log.exception("technical alert %s: channel %s raised", row["id"], t.kind)
            receipts.append(f"{t.kind}: internal error {type(exc).__name__}")
    return ok, "; ".join(receipts)[:1000]


async def deliver_due(
    conn: Conn,
    *,
    channels: Mapping[ChannelKind, Channel],
    targets: Sequence[Target],
    secret: str,
    now: datetime,
) -> int:
    """Send what is due (inside a transaction: the rows stay locked while they are sent, so
    two watchers never send the same one). Returns how many were sent."""
    if not targets:
        return 0
    cur = await conn.execute(DUE_SQL, {"now": now, "max": MAX_ATTEMPTS})
    sent = 0
    for row in await cur.fetchall():
        ok, receipt = await send_all(channels, targets, row, secret=secret, now=now)
        column = "notified_at" if row["raising"] else "clear_notified_at"
        if ok:
            sent += 1
            await conn.execute(
                f"UPDATE technical_alerts SET {column} = %s, notify_receipt = %s, "
                "notify_attempts = 0 WHERE id = %s",
                (now, receipt, row["id"]),
            )
        else:
            await conn.execute(
                "UPDATE technical_alerts SET notify_receipt = %s, "
                "notify_attempts = notify_attempts + 1 WHERE id = %s",
                (receipt, row["id"]),
            )
    return sent
