"""Issue 18 finding 9: throttling that slows guessing without locking out the real user,
shared by API processes (PostgreSQL), with password hashing off the event loop."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from fastapi.testclient import TestClient

from dashboard_api.app import create_app
from dashboard_api.deps import now as now_dep
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.live_server import serve
from tests.services import Services, seed


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def _client(url: str, clock: Clock, address: str = "testclient") -> TestClient:
    app = create_app(Settings(database_url=url))
    app.dependency_overrides[now_dep] = clock
    return TestClient(app, client=(address, 50000))


@pytest.fixture
def pop(services: Services, database_url: str) -> DemoPopulation:
    return seed(services, database_url)


def _try(c: TestClient, user: str, pw: str) -> int:
    return c.post("/api/auth/token", data={"username": user, "password": pw}).status_code


def _password(pop: DemoPopulation, user: str) -> str:
    return next(u for u in pop.users if u.username == user).password


def test_wrong_passwords_delay_but_never_lock_out_the_real_user(
    pop: DemoPopulation, database_url: str
) -> None:
    clock = Clock()
    with _client(database_url, clock, "203.0.113.66") as attacker:
        assert [_try(attacker, "staff-homes", "guess") for _ in range(5)] == [401] * 5
        r = attacker.post("/api/auth/token", data={"username": "staff-homes", "password": "x"})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        # the guesser's delays double: 8 wrong passwords cost it 1 + 2 + 4 s
        for wait in (1, 2, 4):
            clock.advance(wait)
            assert _try(attacker, "staff-homes", "guess") == 401
        assert _try(attacker, "staff-homes", _password(pop, "staff-homes")) == 429
    with _client(database_url, clock, "198.51.100.7") as nurse:
        # the real user, at her own address, signs in at once
        assert _try(nurse, "staff-homes", _password(pop, "staff-homes")) == 200


def test_one_password_across_many_accounts_is_throttled(
    pop: DemoPopulation, database_url: str
) -> None:
    clock = Clock()
    with _client(database_url, clock, "203.0.113.99") as sprayer:
        codes = [_try(sprayer, f"user-{i}", "Password1") for i in range(60)]
        assert codes[:20] == [401] * 20
        assert codes.count(429) >= 35
    with _client(database_url, clock, "198.51.100.8") as other:
        assert _try(other, "admin", _password(pop, "admin")) == 200


def test_throttling_is_shared_by_two_api_processes(pop: DemoPopulation, database_url: str) -> None:
    clock = Clock()
    with (
        _client(database_url, clock, "203.0.113.5") as one,
        _client(database_url, clock, "203.0.113.5") as two,
    ):
        for c in (one, two, one, two, one):
            assert _try(c, "admin", "wrong") == 401
        assert _try(two, "admin", "wrong") == 429


def test_sign_ins_do_not_stall_the_event_loop(pop: DemoPopulation, database_url: str) -> None:
    """16 parallel sign-ins (argon2 each) while /healthz is asked: it keeps answering fast."""
    with serve(database_url) as base:

        async def go() -> list[float]:
            async with httpx2.AsyncClient(base_url=base, timeout=30) as c:
                right = _password(pop, "admin")
                logins = [
                    asyncio.create_task(
                        c.post("/api/auth/token", data={"username": "admin", "password": right})
                    )
                    for _ in range(16)
                ]
                health: list[float] = []
                while not all(t.done() for t in logins):
                    t0 = time.perf_counter()
                    await c.get("/healthz")
                    health.append(time.perf_counter() - t0)
                await asyncio.gather(*logins)
                return health

        health = asyncio.run(go())
    health.sort()
    assert health
    assert health[len(health) // 2] < 0.5, health
