"""devices.loops: the one database-loop shape (issue 16 items 2 and 6): "unavailable" logged
once per outage and "back" once, wake-ups during a round never lost, stop ends a pause."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from devices.backoff import Backoff
from devices.loops import Outage, database_loop, pause

FAST = Backoff(initial_s=0.001, maximum_s=0.001)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "devices.loops"]


def test_an_outage_is_told_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    results = iter(
        [psycopg.OperationalError("down")] * 5
        + [0.0, 0.0]
        + [psycopg.OperationalError("down again")] * 3
        + [0.0]
    )
    rounds = 0

    async def one_round() -> float:
        nonlocal rounds
        rounds += 1
        r = next(results, None)
        if r is None:
            stop.set()
            return 0.0
        if isinstance(r, Exception):
            raise r
        return r

    with caplog.at_level(logging.WARNING, logger="devices.loops"):
        asyncio.run(database_loop("t", one_round, stop=stop, outage=Outage("t", backoff=FAST)))
    msgs = _messages(caplog)
    assert rounds == 12
    assert [m.split(":")[1].split("(")[0].strip() for m in msgs] == [
        "database unavailable",
        "database back after 0 s",
        "database unavailable",
        "database back after 0 s",
    ]
    states = [getattr(r, "state", None) for r in caplog.records if r.name == "devices.loops"]
    assert states == ["unavailable", "back", "unavailable", "back"]


def test_a_wake_during_a_round_is_not_lost_and_ends_the_next_pause() -> None:
    async def go() -> float:
        stop, wake = asyncio.Event(), asyncio.Event()
        rounds: list[float] = []

        async def one_round() -> float:
            rounds.append(asyncio.get_running_loop().time())
            if len(rounds) == 1:
                wake.set()  # a NOTIFY arrives while the round runs
            if len(rounds) == 2:
                stop.set()
            return 30.0  # a long pause: only the wake can end it early

        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(database_loop("t", one_round, stop=stop, wake=wake), timeout=5)
        return asyncio.get_running_loop().time() - t0

    # cleared before each round: the wake set during round 1 is cleared before round 2 only,
    # so the pause after round 1 ends at once and round 2 follows
    assert asyncio.run(go()) < 5


def test_stop_ends_a_pause_at_once_and_no_pause_means_yield_only() -> None:
    async def go() -> tuple[float, float]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, stop.set)
        t0 = loop.time()
        await pause(60.0, stop=stop, wake=None)
        stopped = loop.time() - t0
        t1 = loop.time()
        await pause(0.0, stop=asyncio.Event(), wake=None)
        return stopped, loop.time() - t1

    stopped, zero = asyncio.run(go())
    assert 0.04 <= stopped < 1.0
    assert zero < 0.05


def test_an_error_other_than_the_database_is_the_supervisors() -> None:
    async def one_round() -> float:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        asyncio.run(database_loop("t", one_round, stop=asyncio.Event()))
