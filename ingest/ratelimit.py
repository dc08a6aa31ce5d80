"""Per-device token buckets: one device flooding is cut down without starving the others.

Pure: the caller passes ``now``. Each device may send ``rate`` messages a second on average,
with bursts up to ``burst``; a message over the limit is not stored (it is acknowledged and
counted per device); the worker applies it after decoding, never to sos/fall/smoke.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
