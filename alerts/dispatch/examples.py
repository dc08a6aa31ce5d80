"""What a carer's "false alarm" teaches (issue 13 item 5): when an order is resolved as a false
alarm, every alert it handled that a versioned model judged from a device's accelerometer
(its details name a ``model_id``) keeps the device's raw samples around the alert's moment
(one example for alerts of one device within ``AFTER_S`` of each other) as a labelled example (``fall_examples``), in the resolution's own transaction, so the label
and its window cannot be separated or lost, and before retention drops the ``acc_windows``.

Plain SQL over the tables the two rooms share: the queue does not import detection.
``python -m alerts.evaluate.training.train --with-carer-examples`` reads them back.
"""

from __future__ import annotations

from datetime import datetime

from devices.registry import Conn

# Seconds kept either side of the alert's moment (the impact): every 6-s window that judged
# it (2-4 s after it) and the seconds before (pre-impact activity) with room to spare.
BEFORE_S = 10.0
AFTER_S = 10.0

KEEP_SQL = """
WITH judged AS (
    SELECT a.alert_id, a.site_id, a.resident_id, a.device_key, a.occurred_at, a.details,
           lag(a.occurred_at) OVER (PARTITION BY a.device_key
                                    ORDER BY a.occurred_at, a.alert_id) AS previous_at
    FROM dispatch_orders o
    JOIN alerts a ON a.incident_id = o.incident_id OR a.alert_id = o.alert_id
    WHERE o.order_id = %(order_id)s AND a.details ? 'model_id' AND a.device_key IS NOT NULL
)
INSERT INTO fall_examples (alert_id, order_id, label, site_id, resident_id, device_key,
    placement, model_placement, model_id, impact_at, t, acc_x, acc_y, acc_z, labelled_by,
    labelled_by_user, labelled_at)
SELECT a.alert_id, %(order_id)s, 'false_alarm', a.site_id, a.resident_id, a.device_key,
       coalesce(a.details->>'placement', d.placement),
       coalesce(a.details->>'model_placement', d.placement),
       a.details->>'model_id', a.occurred_at,
       coalesce(s.t, '{}'), coalesce(s.x, '{}'), coalesce(s.y, '{}'), coalesce(s.z, '{}'),
       %(actor)s, %(user_id)s, %(now)s
FROM judged a
JOIN devices d ON d.device_key = a.device_key
CROSS JOIN LATERAL (
    SELECT array_agg(extract(epoch FROM w.time - a.occurred_at)::float8 + p.dt
                     ORDER BY w.time, p.n) AS t,
           array_agg(p.x ORDER BY w.time, p.n) AS x,
           array_agg(p.y ORDER BY w.time, p.n) AS y,
           array_agg(p.z ORDER BY w.time, p.n) AS z
    FROM acc_windows w
    CROSS JOIN LATERAL unnest(w.t_offset, w.acc_x, w.acc_y, w.acc_z)
        WITH ORDINALITY AS p(dt, x, y, z, n)
    WHERE w.device_key = a.device_key
      AND w.time >= a.occurred_at - make_interval(secs => %(before)s)
      AND w.time <= a.occurred_at + make_interval(secs => %(after)s)
) s
-- two alerts of one device within a window of each other (two windows of one impact) are
-- one example: the first one's samples already hold the second
WHERE a.previous_at IS NULL OR a.occurred_at - a.previous_at > make_interval(secs => %(after)s)
ON CONFLICT (alert_id) DO NOTHING
"""


async def keep_false_alarm(
    conn: Conn, *, order_id: int, actor: str, user_id: int | None, now: datetime
) -> int:
    """Keep the windows of the order's model-judged alerts as false-alarm examples labelled
    by ``actor``; returns how many were kept (0 for an order no model raised)."""
    cur = await conn.execute(
        KEEP_SQL,
        {
            "order_id": order_id,
            "actor": actor,
            "user_id": user_id,
            "now": now,
            "before": BEFORE_S,
            "after": AFTER_S,
        },
    )
    return cur.rowcount
