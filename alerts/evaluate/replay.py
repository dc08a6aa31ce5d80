"""Replay a recorded home through the live inactivity detector, tick by tick.

The replayer keeps what the live snapshot query keeps (each device's last few events plus the
events of the last ``recent_s``), builds the same :class:`ResidentSnapshot` with
:func:`alerts.detection.snapshots.build_snapshot`, and runs the same detector code with an explicit
``now``. Verdicts are debounced by idem key exactly as :func:`alerts.detection.persist.persist` does.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from alerts.detection.detectors.base import Verdict
from alerts.detection.detectors.snapshot import ResidentSnapshot, TickDetector
from alerts.detection.routine import Activity, Routine
from alerts.detection.snapshots import PER_DEVICE_LAST, build_snapshot
from devices.wire import CHECK_IN_ANSWER

RESIDENT: dict[str, object] = {
    "resident_id": 1,
    "full_name": "resident",
    "site_id": "replay",
    "site_kind": "home_care_bed",
    "timezone": "UTC",  # the logs' epochs are local time written as UTC
    "room_id": None,
    "room_name": None,
    "care_profile": "independent",
    "care_plan": {},
}


@dataclass(frozen=True, slots=True)
class Alarm:
    at: float  # tick time (epoch s)
    verdict: Verdict


class Replayer:
    def __init__(
        self,
        events: Sequence[Activity],
        routine: Routine,
        detector: TickDetector,
        *,
        start: float,
        recent_s: float = 6 * 3600,
        timezone: str = "UTC",
    ) -> None:
        self.resident = {**RESIDENT, "timezone": timezone}
        self.events = events
        self.times = [a.t for a in events]
        self.routine = routine
        self.detector = detector
        self.recent_s = recent_s
        self.last: dict[tuple[str, str], deque[Activity]] = {}
        self.recent: deque[Activity] = deque()
        self.seen: set[str] = set()
        self.last_snapshot: ResidentSnapshot | None = None
        # Context: everything up to ``start``, each device's last event kept.
        self.i = 0
        self._advance(start)

    def _advance(self, t: float) -> None:
        j = bisect.bisect_right(self.times, t, lo=self.i)
        for a in self.events[self.i : j]:
            kept = self.last.setdefault((a.device_kind, a.name), deque(maxlen=PER_DEVICE_LAST))
            kept.append(a)
            self.recent.append(a)
        self.i = j
        while self.recent and self.recent[0].t <= t - self.recent_s:
            self.recent.popleft()

    def snapshot(self, t: float) -> ResidentSnapshot:
        self._advance(t)
        # one of each, in a fixed order before the sort by time: simultaneous events keep it
        # (a set's order follows hash(None), which Python 3.11 takes from None's address: the
        # same command gave other figures from run to run, session 14)
        kept = [a for per_device in self.last.values() for a in per_device]
        activities = sorted(dict.fromkeys([*kept, *self.recent]), key=lambda a: a.t)
        now = datetime.fromtimestamp(t, UTC)
        return build_snapshot(
            resident=self.resident, activities=activities, routine=self.routine, now=now
        )

    def answer(self, t: float) -> None:
        """The resident answers a check-in at ``t`` (a ``check_in_ok`` from their wristband):
        a sign of life, as the live snapshot reads it. ``t`` is the current tick."""
        a = Activity(t=t, room_kind=None, device_kind="wristband", name=CHECK_IN_ANSWER)
        self._advance(t)
        self.last.setdefault((a.device_kind, a.name), deque(maxlen=PER_DEVICE_LAST)).append(a)
        self.recent.append(a)

    def tick(self, t: float) -> Verdict | None:
        snapshot = self.snapshot(t)
        self.last_snapshot = snapshot
        verdict = self.detector.evaluate(snapshot, now=snapshot.taken_at)
        if verdict is None or verdict.idem_key in self.seen:
            return None
        self.seen.add(verdict.idem_key)
        return verdict

    def first_alarm(self, start: float, end: float, tick_s: float) -> Alarm | None:
        """The first alarm on the ``tick_s`` grid within [start, end), or None."""
        t = math.ceil(start / tick_s) * tick_s
        while t < end:
            verdict = self.tick(t)
            if verdict is not None:
                return Alarm(t, verdict)
            t += tick_s
        return None

    def run(
        self,
        start: float,
        end: float,
        tick_s: float,
        asks: Callable[[float, ResidentSnapshot, Verdict], bool] | None = None,
    ) -> list[Alarm]:
        """Ticks on the absolute ``tick_s`` grid within [start, end). ``asks(t, snapshot,
        verdict)`` True: a check-in was asked (and answered through :meth:`answer`) instead
        of the alarm."""
        alarms: list[Alarm] = []
        t = math.ceil(start / tick_s) * tick_s
        while t < end:
            verdict = self.tick(t)
            snap = self.last_snapshot
            if verdict is not None and snap is not None and not (asks and asks(t, snap, verdict)):
                alarms.append(Alarm(t, verdict))
            t += tick_s
        return alarms
