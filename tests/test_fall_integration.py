"""End to end: a real SisFall fall, streamed as 1-s SenML accelerometer windows at 50 Hz by a
demo wristband through the real broker, becomes a red fall alert and a dispatch order; a real
activity of daily living streamed the same way does not."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest

from alerts.detection.fall import features as F
from alerts.evaluate.training import sisfall
from simulators import devices as packs
from tests.services import Services, device, publish, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import wait_for_ingest

FALL = ("F05", "SA12", 3)  # fall forward while jogging caused by a trip
ADL = ("D08", "SA12", 2)  # quickly sit in a half height chair, wait, and up quickly


@pytest.fixture(scope="module")
def recordings() -> dict[tuple[str, str, int], np.ndarray]:
    if not sisfall.DEFAULT_ARCHIVE.exists():
        pytest.skip(f"SisFall archive not found at {sisfall.DEFAULT_ARCHIVE} (shared data)")
    found = sisfall.read_some(sisfall.DEFAULT_ARCHIVE, {FALL, ADL})
    return {k: F.resample(r.samples, sisfall.RATE_HZ) for k, r in found.items()}


def stream(
    s: Services, device_id: str, password: str, site: str, x50: np.ndarray, t0: float
) -> int:
    """Publish the recording as 1-s windows of 50 samples, as a wristband does."""
    per = int(F.RATE_HZ)
    count = len(x50) // per
    for i in range(count):
        chunk = [tuple(float(v) for v in row) for row in x50[i * per : (i + 1) * per]]
        pack = packs.acc_window_pack(device_id=device_id, now=t0 + i + 1.0, samples=chunk)
        rc = publish(
            s,
            username=device_id,
            password=password,
            topic=f"eldercare/v1/{site}/{device_id}/telemetry",
            payload=packs.encode(pack),
        )
        assert rc == 0
    return count


def test_a_real_fall_streamed_over_mqtt_opens_a_red_order(
    services: Services, database_url: str, recordings: dict[tuple[str, str, int], np.ndarray]
) -> None:
    pop = seed(services, database_url)
    env = worker_env(services, database_url)
    faller, walker = device(pop, "wb-0042"), device(pop, "wb-0043")
    # SisFall was recorded at the waist: these two are worn on a belt (the demo's wristbands
    # are at the wrist, where the wrist model judges them and a waist trace is no wrist fall).
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE devices SET placement = 'waist' WHERE device_id = ANY(%s)",
            ([faller.device_id, walker.device_id],),
        )
    with running("ingest", env), running("alerts", env):
        wait_for_ingest(services, database_url, pop)
        t0 = float(int(time.time()) - 120)
        n_fall = stream(
            services, faller.device_id, faller.password, faller.site_id, recordings[FALL], t0
        )
        n_adl = stream(
            services, walker.device_id, walker.password, walker.site_id, recordings[ADL], t0
        )
        wait_until(
            lambda: bool(
                query(database_url, "SELECT 1 FROM dispatch_orders WHERE category = 'fall'")
            ),
            timeout=60,
            what="a fall dispatch order",
        )
        wait_until(
            lambda: (
                len(query(database_url, "SELECT 1 FROM acc_windows")) == n_fall + n_adl
                and not query(database_url, "SELECT 1 FROM stream_outbox")
            ),
            timeout=60,
            what="every window stored and judged",
        )
    alerts = query(
        database_url,
        "SELECT a.kind, a.colour, a.detector, a.occurred_at, a.explanation, d.device_id,"
        " r.full_name, o.colour AS order_colour, o.state FROM alerts a"
        " JOIN devices d USING (device_key) LEFT JOIN residents r USING (resident_id)"
        " JOIN dispatch_orders o USING (alert_id)",
    )
    assert len(alerts) == 1, alerts  # the ADL raised nothing; the fall's windows fold into one
    alert = alerts[0]
    assert (alert["kind"], alert["colour"], alert["detector"]) == ("fall", "red", "acc_fall")
    assert (alert["order_colour"], alert["state"]) == ("red", "queued")
    assert alert["device_id"] == "wb-0042"
    assert alert["full_name"] == faller.resident
    impact = t0 + float(np.argmax(np.linalg.norm(recordings[FALL], axis=1))) / F.RATE_HZ
    # The alert is timed at the impact its window judged: the hardest one, or (a trip while
    # jogging) the first blow a moment before it, with the hardest in its aftermath.
    assert -1.5 <= alert["occurred_at"].timestamp() - impact <= 0.3
    assert "confidence" in alert["explanation"]
    assert "no model of its own" not in alert["explanation"]  # judged by the waist model
