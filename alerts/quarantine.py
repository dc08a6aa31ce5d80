"""The quarantine: an item a loop could not process (an outbox row, an order, a check) is
kept here with its error, visible to administrators, and the loop moves on; no crash loop,
no silent loss. A life-safety item is still raised, by a fallback path, before it is kept."""

from __future__ import annotations

import json
from datetime import datetime

from psycopg.types.json import Jsonb

from devices.registry import Conn


def _dumps(obj: object) -> str:
    """Rows hold datetimes, decimals, bytes: kept as text rather than refused; a NUL (which
    jsonb refuses) becomes U+FFFD."""
    return json.dumps(obj, default=str).replace("\\u0000", "\\ufffd")


def describe(exc: BaseException) -> str:
    """An error as the quarantine and the logs keep it: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:500]


async def quarantine_item(
    conn: Conn,
    *,
    queue: str,
    item_key: str,
    payload: dict[str, object],
    error: BaseException | str,
    process: str,
    now: datetime,
) -> int:
    """Keep an item a loop could not process, with its error; the same open item again
    counts one more attempt. Returns the attempts so far."""
    text = error if isinstance(error, str) else describe(error)
    text = text.replace("\x00", "\ufffd")
    cur = await conn.execute(
        "INSERT INTO quarantine (queue, item_key, payload, error, process, quarantined_at, "
        "last_error_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (queue, item_key) WHERE resolved_at IS NULL DO UPDATE SET "
        "attempts = quarantine.attempts + 1, error = excluded.error, "
        "last_error_at = excluded.last_error_at RETURNING attempts",
        (queue, item_key, Jsonb(payload, dumps=_dumps), text[:2000], process, now, now),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["attempts"])
