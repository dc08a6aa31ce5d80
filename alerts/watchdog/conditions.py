"""Pure: what is wrong right now, from heartbeats, queue ages, floods and the quarantine.

``now`` comes in; nothing here reads a clock or a database. Each condition has a stable key,
so every watcher computing the same snapshot raises the same technical alert, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devices.i18n import LOCALES, Locale, has, t

# A worker whose last beat is older than this is kept in view no longer (a restarted
# process gets a new id; the old row only says when it died).
FORGET_AFTER = timedelta(days=1)
# a loop that failed this many times within the window is flagged even while it runs again
FLAPPING_RESTARTS = 3
FLAPPING_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Beat:
    worker_id: str
    process: str
    hostname: str
    started_at: datetime
    beat_at: datetime
    stopped_at: datetime | None
    loops: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class QueueAges:
    """Seconds the oldest waiting item of each queue has waited (None: the queue is empty)."""

    stream_outbox_s: float | None = None
    escalation_overdue_s: float | None = None
    notify_overdue_s: float | None = None
    texts_overdue_s: float | None = None  # check-in texts to residents (resident_messages)


@dataclass(frozen=True, slots=True)
class Flood:
    device_id: str
    site_id: str
    dropped: int
    dropped_at: datetime


@dataclass(frozen=True, slots=True)
class Quarantined:
    queue: str
    count: int
    latest_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    beats: Sequence[Beat] = ()
    queues: QueueAges = QueueAges()
    floods: Sequence[Flood] = ()
    quarantined: Sequence[Quarantined] = ()


@dataclass(frozen=True, slots=True)
class Bounds:
    heartbeat_stale_s: float = 30.0
    stream_outbox_lag_s: float = 60.0
    escalation_lag_s: float = 60.0
    notify_lag_s: float = 600.0
    # a check-in text late by this much leaves the resident little of their window to answer
    texts_lag_s: float = 300.0
    flood_window_s: float = 120.0
    # processes that must always have a live worker
    watched: frozenset[str] = frozenset({"alerts", "ingest"})


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    kind: str
    colour: str  # "red": the alarm path is broken; "yellow": degraded, look soon
    message: str  # catalogue key (devices/i18n), rendered with ``details``
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """zh-CN first, then en: what the channels send and the table keeps."""
        return " / ".join(self.text(lang) for lang in LOCALES)

    def text(self, locale: Locale) -> str:
        return t(self.message, locale, **self.details)


def render(message: str | None, details: Mapping[str, Any], locale: Locale) -> str | None:
    """A stored technical alert in one language (None for a row without a catalogue key)."""
    if not message or not has(message):
        return None
    try:
        return t(message, locale, **details)
    except KeyError:
        return None


def _age(now: datetime, at: datetime) -> int:
    return int((now - at).total_seconds())


def _workers(snap: Snapshot, bounds: Bounds, now: datetime) -> list[Condition]:
    stale = timedelta(seconds=bounds.heartbeat_stale_s)
    beats = [b for b in snap.beats if now - b.beat_at <= FORGET_AFTER]
    out: list[Condition] = []
    live = [b for b in beats if b.stopped_at is None and now - b.beat_at <= stale]
    for process in sorted(bounds.watched | {b.process for b in beats}):
        mine = [b for b in beats if b.process == process]
        alive = [b for b in live if b.process == process]
        if not alive and (process in bounds.watched or mine):
            last = max((b.beat_at for b in mine), default=None)
            silent = None if last is None else _age(now, last)
            out.append(
                Condition(
                    key=f"process_down:{process}",
                    kind="process_down",
                    colour="red",
                    message="technical.process_down" + ("_silent" if silent is not None else ""),
                    details={
                        "process": process,
                        "last_beat_at": last and last.isoformat(),
                        "silent_s": silent,
                    },
                ),
            )
            continue
        for b in mine:
            dead = b.stopped_at is None and now - b.beat_at > stale
            # a worker restarted on the same host (a new id) replaces the one that died
            replaced = any(o.hostname == b.hostname and o.started_at >= b.beat_at for o in mine)
            if dead and not replaced:
                out.append(
                    Condition(
                        key=f"worker_down:{b.worker_id}",
                        kind="worker_down",
                        colour="yellow",
                        message="technical.worker_down",
                        details={
                            "process": process,
                            "worker_id": b.worker_id,
                            "last_beat_at": b.beat_at.isoformat(),
                            "silent_s": _age(now, b.beat_at),
                        },
                    )
                )
    for b in live:
        out.extend(_loops(b, now))
    return out


def _loops(b: Beat, now: datetime) -> list[Condition]:
    out: list[Condition] = []
    for name, health in sorted(b.loops.items()):
        restarts = int(health.get("restarts") or 0)
        error = health.get("last_error")
        err_at = health.get("last_error_at")
        recent = isinstance(err_at, int | float) and (
            now - datetime.fromtimestamp(float(err_at), tz=now.tzinfo) <= FLAPPING_WINDOW
        )
        details = {
            "process": b.process,
            "worker_id": b.worker_id,
            "loop": name,
            "restarts": restarts,
            "error": error,
        }
        if not health.get("running", False):
            out.append(
                Condition(
                    key=f"loop_down:{b.worker_id}:{name}",
                    kind="loop_down",
                    colour="red",
                    message="technical.loop_down",
                    details=details,
                )
            )
        elif recent and restarts >= FLAPPING_RESTARTS:
            out.append(
                Condition(
                    key=f"loop_flapping:{b.worker_id}:{name}",
                    kind="loop_flapping",
                    colour="yellow",
                    message="technical.loop_flapping",
                    details=details,
                )
            )
    return out


_QUEUES = (  # queue, snapshot field, bound, colour (the message: technical.queue_lag.<queue>)
    ("stream_outbox", "stream_outbox_s", "stream_outbox_lag_s", "red"),
    ("escalation", "escalation_overdue_s", "escalation_lag_s", "red"),
    ("notify", "notify_overdue_s", "notify_lag_s", "yellow"),
    ("resident_messages", "texts_overdue_s", "texts_lag_s", "yellow"),
)


def _queues(snap: Snapshot, bounds: Bounds) -> list[Condition]:
    out: list[Condition] = []
    for queue, field_name, bound_name, colour in _QUEUES:
        age = getattr(snap.queues, field_name)
        bound = float(getattr(bounds, bound_name))
        if age is not None and age > bound:
            out.append(
                Condition(
                    key=f"lag:{queue}",
                    kind="queue_lag",
                    colour=colour,
                    message=f"technical.queue_lag.{queue}",
                    details={"queue": queue, "age_s": int(age), "bound_s": int(bound)},
                )
            )
    return out


def _floods(snap: Snapshot, bounds: Bounds, now: datetime) -> list[Condition]:
    window = timedelta(seconds=bounds.flood_window_s)
    return [
        Condition(
            key=f"flood:{f.device_id}",
            kind="device_flood",
            colour="yellow",
            message="technical.device_flood",
            details={
                "device_id": f.device_id,
                "site_id": f.site_id,
                "dropped": f.dropped,
                "dropped_at": f.dropped_at.isoformat(),
            },
        )
        for f in snap.floods
        if now - f.dropped_at <= window
    ]


def _quarantine(snap: Snapshot) -> list[Condition]:
    return [
        Condition(
            key=f"quarantine:{q.queue}",
            kind="quarantine",
            colour="yellow",
            message="technical.quarantine",
            details={"queue": q.queue, "count": q.count, "latest_at": q.latest_at.isoformat()},
        )
        for q in snap.quarantined
        if q.count > 0
    ]


def conditions(snap: Snapshot, bounds: Bounds, *, now: datetime) -> list[Condition]:
    """Everything wrong at ``now``, one condition per key."""
    found = (
        _workers(snap, bounds, now)
        + _queues(snap, bounds)
        + _floods(snap, bounds, now)
        + _quarantine(snap)
    )
    return list({c.key: c for c in found}.values())
