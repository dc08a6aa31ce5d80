"""Per-device token buckets: one device flooding is cut down without starving the others.

Pure: the caller passes ``now``. Each device may send ``rate`` messages a second on average,
with bursts up to ``burst``; a fresh message over the limit is not stored (it is acknowledged
and counted per device); the worker applies it after decoding, never to sos/fall/smoke. A
backlog (old readings sent after a reconnect) is paced instead (:class:`BacklogPacer`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class TokenBuckets:
    rate: float  # tokens added per second
    burst: float  # bucket size
    max_devices: int = 1_000_000  # forget idle buckets past this many (they refill anyway)
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (tokens, at)

    def allow(self, device_id: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, at = self._tokens.get(device_id, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.rate)
        allowed = tokens >= 1.0
        self._tokens[device_id] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._tokens) > self.max_devices:
            self._forget_full(now)
        return allowed

    def _forget_full(self, now: float) -> None:
        full = [
            k
            for k, (tokens, at) in self._tokens.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for k in full:
            del self._tokens[k]


class BacklogPacer(Generic[T]):
    """A device's backlog after a reconnect (readings older than ``late_after_s`` on arrival)
    is paced, not dropped: it passes while the device's backlog bucket has tokens, and beyond
    that is held here (not yet acknowledged: the broker keeps it until it is committed) and
    released at the bucket's rate, first in first out per device.

    Bounded: at most ``max_held`` messages are held per worker (each one occupies a slot of
    the connection's Receive Maximum); past that a backlog message is dropped and counted like
    a flood. Pure: the caller passes ``now``.
    """

    __slots__ = ("_count", "_held", "buckets", "max_held")

    def __init__(self, buckets: TokenBuckets, max_held: int) -> None:
        self.buckets = buckets
        self.max_held = max_held
        self._held: dict[str, deque[T]] = {}
        self._count = 0

    @property
    def held(self) -> int:
        return self._count

    def offer(self, device_id: str, item: T, now: float) -> bool | None:
        """True: store it now; None: held, :meth:`release` hands it back later; False: the
        pacer is full, drop it and count it."""
        queue = self._held.get(device_id)
        if queue is None and self.buckets.allow(device_id, now):
            return True  # nothing of this device waiting ahead of it, and a token left
        if self._count >= self.max_held:
            return False
        if queue is None:
            queue = self._held[device_id] = deque()
        queue.append(item)
        self._count += 1
        return None

    def release(self, now: float) -> list[T]:
        """Held items whose device has a token again, oldest first per device."""
        out: list[T] = []
        if not self._count:
            return out
        allow = self.buckets.allow
        for device_id in list(self._held):
            queue = self._held[device_id]
            while queue and allow(device_id, now):
                out.append(queue.popleft())
            if not queue:
                del self._held[device_id]
        self._count -= len(out)
        return out
