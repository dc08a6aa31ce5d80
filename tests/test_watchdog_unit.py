"""The dead-man's switch's pure rules and the loop supervisor, with time passed in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from alerts.detection.persist import fallback_verdict
from alerts.watchdog.conditions import (
    Beat,
    Bounds,
    Flood,
    Quarantined,
    QueueAges,
    Snapshot,
    conditions,
    render,
)
from devices.domain import Colour
from devices.supervise import Supervisor

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
BOUNDS = Bounds(watched=frozenset({"alerts", "ingest"}))


def beat(
    process: str,
    *,
    age_s: float,
    worker: str = "",
    host: str = "h1",
    started_s: float = 3600,
    stopped: bool = False,
    loops: dict[str, dict[str, object]] | None = None,
) -> Beat:
    return Beat(
        worker_id=worker or f"{process}@{host}",
        process=process,
        hostname=host,
        started_at=NOW - timedelta(seconds=started_s),
        beat_at=NOW - timedelta(seconds=age_s),
        stopped_at=NOW - timedelta(seconds=age_s) if stopped else None,
        loops=loops or {},
    )


def keys(snap: Snapshot) -> dict[str, str]:
    return {c.key: c.colour for c in conditions(snap, BOUNDS, now=NOW)}


def test_all_well_is_silent() -> None:
    snap = Snapshot(
        beats=[beat("alerts", age_s=3), beat("ingest", age_s=4)],
        queues=QueueAges(stream_outbox_s=2, escalation_overdue_s=1),
    )
    assert keys(snap) == {}


def test_a_dead_alerts_worker_is_red_even_with_nobody_left() -> None:
    snap = Snapshot(beats=[beat("alerts", age_s=45), beat("ingest", age_s=2)])
    found = conditions(snap, BOUNDS, now=NOW)
    assert [(c.key, c.colour) for c in found] == [("process_down:alerts", "red")]
    assert found[0].details["silent_s"] == 45
    assert "alerts" in found[0].subject
    assert "进程" in found[0].subject


def test_a_process_never_seen_is_down_too() -> None:
    assert keys(Snapshot(beats=[beat("alerts", age_s=1)])) == {"process_down:ingest": "red"}


def test_a_clean_stop_of_the_only_worker_is_still_red() -> None:
    """An operator stopping the last alerts worker stops detection: the centre must know."""
    snap = Snapshot(beats=[beat("alerts", age_s=100, stopped=True), beat("ingest", age_s=1)])
    assert keys(snap) == {"process_down:alerts": "red"}


def test_one_of_two_workers_dead_is_yellow_and_a_restart_replaces_it() -> None:
    dead = beat("alerts", age_s=60, worker="alerts-a", host="h1")
    other = beat("alerts", age_s=2, worker="alerts-b", host="h2")
    ingest = beat("ingest", age_s=1)
    assert keys(Snapshot(beats=[dead, other, ingest])) == {"worker_down:alerts-a": "yellow"}
    restarted = beat("alerts", age_s=1, worker="alerts-a2", host="h1", started_s=30)
    assert keys(Snapshot(beats=[dead, other, ingest, restarted])) == {}


def test_a_loop_down_inside_a_live_worker_is_red_and_flapping_is_yellow() -> None:
    err_at = (NOW - timedelta(minutes=1)).timestamp()
    loops = {
        "detect": {
            "running": False,
            "restarts": 1,
            "last_error": "KeyError: x",
            "last_error_at": err_at,
        },
        "notify": {"running": True, "restarts": 4, "last_error": "boom", "last_error_at": err_at},
        "ticks": {
            "running": True,
            "restarts": 9,
            "last_error": "old",
            "last_error_at": (NOW - timedelta(hours=2)).timestamp(),
        },
    }
    snap = Snapshot(beats=[beat("alerts", age_s=1, loops=loops), beat("ingest", age_s=1)])
    assert keys(snap) == {
        "loop_down:alerts@h1:detect": "red",
        "loop_flapping:alerts@h1:notify": "yellow",
    }


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        (QueueAges(stream_outbox_s=61), {"lag:stream_outbox": "red"}),
        (QueueAges(stream_outbox_s=59), {}),
        (QueueAges(escalation_overdue_s=300), {"lag:escalation": "red"}),
        (QueueAges(notify_overdue_s=601), {"lag:notify": "yellow"}),
        (QueueAges(texts_overdue_s=301), {"lag:resident_messages": "yellow"}),
        (QueueAges(texts_overdue_s=299), {}),
    ],
)
def test_queue_lag_beyond_its_bound(queues: QueueAges, expected: dict[str, str]) -> None:
    live = [beat("alerts", age_s=1), beat("ingest", age_s=1)]
    assert keys(Snapshot(beats=live, queues=queues)) == expected


def test_floods_in_the_window_and_quarantine() -> None:
    live = [beat("alerts", age_s=1), beat("ingest", age_s=1)]
    snap = Snapshot(
        beats=live,
        floods=[
            Flood("wb-1", "home-17", 900, NOW - timedelta(seconds=30)),
            Flood("wb-2", "home-17", 5, NOW - timedelta(minutes=30)),
        ],
        quarantined=[Quarantined("stream_outbox", 2, NOW)],
    )
    found = {c.key: c for c in conditions(snap, BOUNDS, now=NOW)}
    assert set(found) == {"flood:wb-1", "quarantine:stream_outbox"}
    assert found["flood:wb-1"].details["site_id"] == "home-17"
    assert found["flood:wb-1"].details["dropped"] == 900


def test_fallback_raises_life_safety_red_with_the_detectors_keys() -> None:
    row = {
        "kind": "event",
        "name": "sos",
        "value_bool": True,
        "time": NOW,
        "device_key": 7,
        "resident_id": 3,
        "site_id": "home-17",
        "device_kind": "button",
        "device_id": "b-1",
    }
    v = fallback_verdict(row, "KeyError: boom", now=NOW)
    assert v is not None
    assert (v.kind, v.colour, v.idem_key, v.fold_key) == (
        "sos",
        Colour.RED,
        f"sos:7:{NOW.timestamp()}",
        "sos:3",
    )
    assert v.details["fallback"] is True
    assert fallback_verdict({**row, "name": "heart_rate"}, "x", now=NOW) is None
    assert fallback_verdict({**row, "value_bool": False}, "x", now=NOW) is None
    smoke = fallback_verdict({**row, "name": "smoke", "time": NOW.isoformat()}, "x", now=NOW)
    assert smoke is not None
    assert smoke.fold_key == "smoke:home-17"


def test_supervisor_restarts_a_failing_loop_and_keeps_the_others() -> None:
    async def scenario() -> tuple[int, int, dict[str, object]]:
        stop = asyncio.Event()
        sup = Supervisor(stop=stop, backoff_initial_s=0.001, backoff_max_s=0.002)
        runs = {"bad": 0, "good": 0}

        async def bad() -> None:
            runs["bad"] += 1
            if runs["bad"] >= 4:
                stop.set()
            raise RuntimeError(f"failure {runs['bad']}")

        async def good() -> None:
            runs["good"] += 1
            await stop.wait()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(sup.run("bad", bad))
            tg.create_task(sup.run("good", good))
        return runs["bad"], runs["good"], sup.loops["bad"].as_json()

    bad, good, health = asyncio.run(scenario())
    assert bad == 4
    assert good == 1  # never restarted: the other loop's failures did not touch it
    assert health["restarts"] == 4
    assert health["last_error"] == "RuntimeError: failure 4"


def test_a_loop_that_returns_unasked_is_restarted() -> None:
    async def scenario() -> int:
        stop = asyncio.Event()
        sup = Supervisor(stop=stop, backoff_initial_s=0.001, backoff_max_s=0.002)
        calls = 0

        async def quits() -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                stop.set()

        await sup.run("quits", quits)
        return sup.loops["quits"].restarts

    assert asyncio.run(scenario()) == 2


def test_every_condition_speaks_both_languages_from_the_catalogue() -> None:
    """Issue 14: technical alerts are catalogue messages, rendered in the reader's language
    from what is stored (the subject the channels send is zh-CN / en)."""
    failing = {"running": False, "restarts": 2, "last_error": "boom", "last_error_at": None}
    snap = Snapshot(
        beats=[
            beat("alerts", age_s=2, worker="a1", loops={"notify": failing}),
            beat("alerts", age_s=90, worker="a2", started_s=7200),
        ],
        queues=QueueAges(stream_outbox_s=999, escalation_overdue_s=999, notify_overdue_s=9999),
        floods=[Flood("wb-1", "home-1", 500, NOW)],
        quarantined=[Quarantined("stream_outbox", 3, NOW)],
    )
    found = conditions(snap, BOUNDS, now=NOW)
    kinds = {c.kind for c in found}
    assert {"process_down", "worker_down", "loop_down", "queue_lag", "device_flood"} <= kinds
    assert "quarantine" in kinds
    for c in found:
        stored = {**c.details, "message": c.message}
        zh, en = render(c.message, stored, "zh-CN"), render(c.message, stored, "en")
        assert zh is not None
        assert en is not None
        assert c.subject == f"{zh} / {en}"
        assert "{" not in c.subject
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), zh
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in en), en
    assert render(None, {}, "en") is None  # a row from before the catalogue: its subject
    assert render("technical.quarantine", {}, "en") is None  # details missing: its subject
