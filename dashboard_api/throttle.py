"""Sign-in throttling with a progressive delay, never a lockout of the real user.

Three counters of wrong passwords, each with its own allowance and cap:
- the pair (account, client address): the guesser at one address, fast growth, long cap;
- the account, from any address: distributed guessing, short cap, so the real user at
  another address waits at most a minute;
- the client address, over any account: one password tried across many usernames.
After its allowance each counter asks for ``base * 2**(n - allowance)`` seconds since its last
failure (capped). A counter is forgotten ``window`` after its last failure; a correct password
clears the pair and the account, not the address. The policy is pure (the clock is passed
in); the counters live in PostgreSQL so every API process sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.registry import Conn


@dataclass(frozen=True, slots=True)
class Rule:
    prefix: str
    allowance: int
    cap_s: float
    base_s: float = 1.0

    def wait_s(self, failures: int) -> float:
        if failures < self.allowance:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** (failures - self.allowance))


PAIR = Rule("pair", allowance=5, cap_s=900.0)
ACCOUNT = Rule("account", allowance=10, cap_s=60.0)
ADDRESS = Rule("address", allowance=20, cap_s=900.0)
WINDOW = timedelta(minutes=30)


def keys(username: str, address: str) -> dict[Rule, str]:
    return {
        PAIR: f"pair:{username}\x1f{address}",
        ACCOUNT: f"account:{username}",
        ADDRESS: f"address:{address}",
    }


def retry_after(counters: dict[Rule, tuple[int, datetime]], now: datetime) -> float | None:
    """Seconds until the next attempt may be judged, or None if it may be judged now."""
    waits = [
        (last + timedelta(seconds=rule.wait_s(n)) - now).total_seconds()
        for rule, (n, last) in counters.items()
        if now - last < WINDOW
    ]
    longest = max(waits, default=0.0)
    return longest if longest > 0 else None


async def check(conn: Conn, *, username: str, address: str, now: datetime) -> float | None:
    ks = keys(username, address)
    cur = await conn.execute(
        "SELECT key, failures, last_failed_at FROM login_failures WHERE key = ANY(%s)",
        (list(ks.values()),),
    )
    found = {r["key"]: (r["failures"], r["last_failed_at"]) for r in await cur.fetchall()}
    return retry_after({rule: found[k] for rule, k in ks.items() if k in found}, now)


async def failed(conn: Conn, *, username: str, address: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO login_failures (key, failures, last_failed_at) "
        "SELECT k, 1, %(now)s FROM unnest(%(keys)s::text[]) k "
        "ON CONFLICT (key) DO UPDATE SET last_failed_at = EXCLUDED.last_failed_at, "
        "failures = CASE WHEN login_failures.last_failed_at < %(now)s - %(window)s THEN 1 "
        "ELSE login_failures.failures + 1 END",
        {"now": now, "keys": list(keys(username, address).values()), "window": WINDOW},
    )
    await conn.execute("DELETE FROM login_failures WHERE last_failed_at < %s", (now - WINDOW,))


async def succeeded(conn: Conn, *, username: str, address: str) -> None:
    ks = keys(username, address)
    await conn.execute("DELETE FROM login_failures WHERE key = ANY(%s)", ([ks[PAIR], ks[ACCOUNT]],))
