"""Sign-in throttling: after too many wrong passwords for one username within a window,
refuse further attempts (429) until the window has passed. Pure; the clock is passed in.

Per API process and in memory: enough to make online password guessing slow; a restart
forgets it (argon2's cost still applies to every attempt)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(slots=True)
class LoginThrottle:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    max_tracked: int = 100_000
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def retry_after(self, username: str, now: datetime) -> float | None:
        """Seconds until this username may try again, or None if it may try now."""
        if username not in self._failures:
            return None
        recent = self._recent(username, now)
        if len(recent) < self.max_failures:
            return None
        return max(1.0, (recent[0] + self.window - now).total_seconds())

    def failed(self, username: str, now: datetime) -> None:
        if username not in self._failures and len(self._failures) >= self.max_tracked:
            self._failures.pop(next(iter(self._failures)))  # forget the oldest username
        self._recent(username, now).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)

    def _recent(self, username: str, now: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(username, deque(maxlen=self.max_failures))
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        return recent
