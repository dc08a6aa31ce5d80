"""The life-safety lane, backlog pacing and device-cache reload, through the real broker,
worker and database (issue 18 item 3, issue 16 item 3).

- An SOS published while the telemetry path cannot commit is stored and offered to a
  responder; a non-life-safety event taken by the lane is stored exactly once.
- A backlog after a reconnect is stored in full, paced; a fresh flood is dropped and counted.
- A retired or moved device is refused from its next message on, without restarting ingest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.dispatch_latency import add_responders
from bench.stack import provision
from devtools.seed import DemoPopulation
from simulators.load import device_ids
from tests.services import (
    LOAD_USER,
    ROOT,
    Services,
    device,
    query,
    running,
    seed,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.integration

STATUS_LOCK = "SELECT pg_advisory_lock(hashtextextended('ingest:device_status', 0))"


def _publish_all(s: Services, messages: Sequence[tuple[str, object]]) -> None:
    """Publish every (topic, SenML pack) at QoS 1 as fast as the broker takes them, over the
    load publisher's account (it may speak for any device), and wait for every PUBACK."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"lg-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(*LOAD_USER)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", s.broker.port)
    client.loop_start()
    try:
        infos = [client.publish(t, json.dumps(p), qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_both_paths(s: Services, url: str, site: str, dev: str) -> None:
    """Probe until a telemetry reading and an event are stored: both connections subscribed."""
    base = f"eldercare/v1/{site}/{dev}"

    def probe() -> bool:
        at = time.time()
        _publish_all(
            s,
            [
                (f"{base}/telemetry", [{"bn": f"{dev}:", "bt": at, "n": "probe", "v": 1}]),
                (f"{base}/event", [{"bn": f"{dev}:", "bt": at, "n": "probe_ev", "vb": True}]),
            ],
        )
        time.sleep(0.2)
        return bool(
            query(url, "SELECT 1 FROM telemetry WHERE metric = 'probe'")
            and query(url, "SELECT 1 FROM events WHERE name = 'probe_ev'")
        )

    wait_until(probe, timeout=30, what="both ingest paths subscribed")


def _count(url: str, sql: str, params: tuple[object, ...] = ()) -> int:
    return int(query(url, sql, params)[0]["n"])


def test_an_sos_is_stored_and_offered_while_the_telemetry_path_cannot_commit(
    services: Services, database_url: str
) -> None:
    pop: DemoPopulation = seed(services, database_url)
    add_responders(database_url)
    wb, btn, door = (device(pop, d) for d in ("wb-0042", "btn-0042", "door-0042"))
    env = worker_env(services, database_url)
    env["ELDERCARE_INGEST_LAST_SEEN_RESOLUTION_S"] = "0"  # every batch writes device_status
    with running("ingest", env), running("alerts", env):
        _wait_both_paths(services, database_url, wb.site_id, wb.device_id)
        with psycopg.connect(database_url, autocommit=True) as blocker:
            # Every telemetry batch waits for this lock before it can commit: the telemetry
            # path is stuck, as behind a saturated database.
            blocker.execute(STATUS_LOCK)
            t0 = time.time()
            vitals = [
                (
                    f"eldercare/v1/{wb.site_id}/{wb.device_id}/telemetry",
                    [{"bn": f"{wb.device_id}:", "bt": t0 - i / 100, "n": "hr", "v": 70}],
                )
                for i in range(200)
            ]
            _publish_all(services, vitals)
            wait_until(
                lambda: bool(
                    query(
                        database_url,
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'eldercare-ingest'"
                        " AND wait_event_type = 'Lock'",
                    )
                ),
                what="a telemetry batch waiting for the lock",
            )
            # the rows of a first batch may be in (they commit before device_status); from
            # here the telemetry path makes no progress
            hr = "SELECT count(*) AS n FROM telemetry WHERE metric = 'hr'"
            stuck = _count(database_url, hr)
            assert stuck < 200
            pressed = time.time()
            sos = [{"bn": f"{btn.device_id}:", "bt": pressed, "n": "sos", "vb": True}]
            _publish_all(services, [(f"eldercare/v1/{btn.site_id}/{btn.device_id}/event", sos)])
            wait_until(
                lambda: bool(
                    query(
                        database_url, "SELECT 1 FROM dispatch_orders WHERE offered_at IS NOT NULL"
                    )
                ),
                timeout=30,
                what="the SOS offered to a responder",
            )
            # A door event (not life-safety) taken by the lane, sent twice (a device resend).
            opened = [{"bn": f"{door.device_id}:", "bt": pressed, "n": "door", "vs": "open"}]
            door_topic = f"eldercare/v1/{door.site_id}/{door.device_id}/event"
            _publish_all(services, [(door_topic, opened)])
            wait_until(
                lambda: (
                    _count(database_url, "SELECT count(*) AS n FROM events WHERE name = 'door'")
                    == 1
                ),
                what="the door event stored by the lane",
            )
            _publish_all(services, [(door_topic, opened)])
            # Still stuck: no more of the readings published before the SOS is committed.
            assert _count(database_url, hr) == stuck
            blocker.execute("SELECT pg_advisory_unlock_all()")
        wait_until(
            lambda: (
                _count(database_url, "SELECT count(*) AS n FROM telemetry WHERE metric = 'hr'")
                == 200
            ),
            what="the telemetry committed once unblocked",
        )
        wait_until(
            lambda: _count(database_url, "SELECT count(*) AS n FROM stream_outbox") == 0,
            what="outbox drained",
        )
    sos_rows = query(database_url, "SELECT time FROM events WHERE name = 'sos'")
    assert len(sos_rows) == 1
    assert abs(sos_rows[0]["time"].timestamp() - pressed) < 0.001
    assert _count(database_url, "SELECT count(*) AS n FROM events WHERE name = 'door'") == 1
    orders = query(database_url, "SELECT colour, category, offered_at FROM dispatch_orders")
    assert [(o["colour"], o["category"]) for o in orders] == [("red", "sos")]


def test_a_backlog_is_stored_paced_and_a_fresh_flood_is_dropped(
    services: Services, database_url: str
) -> None:
    provision(database_url, devices=3, sites=1)
    (site, back), (_, flood), (_, probe) = device_ids(3, 1)
    env = worker_env(services, database_url)
    env.update(
        {
            "ELDERCARE_INGEST_DEVICE_RATE": "50",
            "ELDERCARE_INGEST_DEVICE_BURST": "50",
            "ELDERCARE_INGEST_BACKLOG_RATE": "100",
            "ELDERCARE_INGEST_BACKLOG_MAX": "1000",
        }
    )
    with running("ingest", env):
        _wait_both_paths(services, database_url, site, probe)
        now = time.time()
        msgs: list[tuple[str, object]] = []
        for i in range(500):
            # an hour-old backlog, one reading a second; a flood of fresh readings
            msgs.append(
                (f"eldercare/v1/{site}/{back}/telemetry",
                 [{"bn": f"{back}:", "bt": now - 3600 + i, "n": "hr", "v": 70}])
            )  # fmt: skip
            msgs.append(
                (f"eldercare/v1/{site}/{flood}/telemetry",
                 [{"bn": f"{flood}:", "bt": now - i / 1000, "n": "hr", "v": 70}])
            )  # fmt: skip
        _publish_all(services, msgs)
        per_device = "SELECT count(*) AS n FROM telemetry t JOIN devices d USING (device_key) WHERE d.device_id = %s"  # fmt: skip
        wait_until(
            lambda: _count(database_url, per_device, (back,)) == 500,
            timeout=60,
            what="the whole backlog stored",
        )

        def dropped(dev: str) -> int:
            rows = query(
                database_url,
                "SELECT dropped_messages FROM device_status s JOIN devices d USING (device_key)"
                " WHERE d.device_id = %s",
                (dev,),
            )
            return int(rows[0]["dropped_messages"]) if rows else 0

        wait_until(
            lambda: _count(database_url, per_device, (flood,)) + dropped(flood) == 500,
            what="every flooded message stored or counted",
        )
    assert dropped(back) == 0
    assert 0 < _count(database_url, per_device, (flood,)) < 500
    assert dropped(flood) > 0
    # Paced: 50 at once (the burst), the other 450 released at 100/s, so the backlog's
    # commits span several seconds (more on a slow machine, never less).
    span = query(
        database_url,
        "SELECT extract(epoch FROM max(received_at) - min(received_at)) AS s FROM telemetry t"
        " JOIN devices d USING (device_key) WHERE d.device_id = %s",
        (back,),
    )[0]["s"]
    assert float(span) >= 3.0
    stored_times = query(database_url, "SELECT count(DISTINCT time) AS n FROM telemetry t JOIN devices d USING (device_key) WHERE d.device_id = %s", (back,))  # fmt: skip
    assert stored_times[0]["n"] == 500  # each reading once


def _retire(s: Services, url: str, device_id: str) -> None:
    """Retire through the CLI, as an operator would (``python -m devices retire``)."""
    env = worker_env(s, url)
    env["ELDERCARE_BROKER_ADMIN_PASSWORD"] = s.admin_password
    done = subprocess.run(
        [sys.executable, "-m", "devices", "retire", "--device-id", device_id],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"device {device_id} of site" in done.stdout
    assert "retired" in done.stdout


def test_a_retired_or_moved_device_is_refused_at_once_without_restarting_ingest(
    services: Services, database_url: str
) -> None:
    provision(database_url, devices=3, sites=1)
    (site, dev), (_, mover), (_, probe) = device_ids(3, 1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sites (site_id, name, kind) VALUES ('ld-new', 'n', 'nursing_home')"
        )

    def reading(site_id: str, device_id: str, at: float) -> tuple[str, object]:
        topic = f"eldercare/v1/{site_id}/{device_id}/telemetry"
        return topic, [{"bn": f"{device_id}:", "bt": at, "n": "hr", "v": 70}]

    def dead(reason: str) -> int:
        return _count(database_url, "SELECT count(*) AS n FROM dead_letters WHERE reason = %s", (reason,))  # fmt: skip

    stored = "SELECT count(*) AS n FROM telemetry t JOIN devices d USING (device_key) WHERE d.device_id = %s AND metric = 'hr'"  # fmt: skip
    with running("ingest", worker_env(services, database_url)) as proc:
        _wait_both_paths(services, database_url, site, probe)
        _publish_all(services, [reading(site, dev, time.time()), reading(site, mover, time.time())])
        wait_until(
            lambda: (
                _count(database_url, stored, (dev,)) == _count(database_url, stored, (mover,)) == 1
            ),
            what="both devices accepted",
        )
        _retire(services, database_url, dev)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE devices SET site_id = 'ld-new' WHERE device_id = %s", (mover,))
        # The very next message of each is refused (no probe loop: the first one counts).
        _publish_all(services, [reading(site, dev, time.time()), reading(site, mover, time.time())])
        wait_until(
            lambda: dead("device_retired") == 1 and dead("site_mismatch") == 1,
            what="the retired and the moved device refused",
        )
        _publish_all(services, [reading("ld-new", mover, time.time())])
        wait_until(
            lambda: _count(database_url, stored, (mover,)) == 2, what="accepted at its new site"
        )
        assert proc.poll() is None  # the same process all along
    assert _count(database_url, stored, (dev,)) == 1
    # Retiring again is refused, not silently repeated.
    again = subprocess.run(
        [sys.executable, "-m", "devices", "retire", "--device-id", dev],
        env=worker_env(services, database_url), cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "was retired" in again.stderr  # already: nothing to do twice
