"""The conformance run end to end: real broker, database, ingest, alerts worker and API; the
scenario is played over MQTT and scored through the public HTTP API only."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.seed import DemoPopulation
from simulators import devices as packs
from simulators.clock import epoch_clock
from simulators.fleet import DeviceCreds
from simulators.player import Player
from simulators.session import Broker
from simulators.timeline import Msg, Op
from tests.services import ROOT, Services, device, query, running, seed, wait_until, worker_env
from tests.test_ingest_integration import wait_for_ingest

SCENARIO = ROOT / "simulators" / "scenarios" / "smoke-sos-fall.toml"
COMPRESSED = ROOT / "tests" / "scenarios" / "compressed-morning.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/openapi.json", timeout=2):  # noqa: S310
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def api_server(env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="api-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard_api", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), timeout=30, what="API up")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _conform(
    services: Services, pop: DemoPopulation, url: str, tmp: Path, scenario: Path = SCENARIO
) -> tuple[int, str]:
    creds = tmp / "devices.json"
    creds.write_text(json.dumps(pop.as_json()))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators",
            "conform",
            str(scenario),
            "--api",
            url,
            "--user",
            "admin",
            "--devices",
            str(creds),
            "--port",
            str(services.broker.port),
            "--truth",
            str(tmp / "truth.jsonl"),
        ],
        cwd=ROOT,
        env={**worker_env(services, "postgresql://unused"), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(result.stdout, result.stderr[-3000:])
    return result.returncode, result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("disabled", ["", "smoke"])
def test_conformance_run_scores_the_backend(
    services: Services, database_url: str, tmp_path: Path, disabled: str
) -> None:
    pop = seed(services, database_url)
    env = worker_env(services, database_url) | {"ELDERCARE_DISABLED_DETECTORS": disabled}
    with running("ingest", env), running("alerts", env), api_server(env) as url:
        wait_for_ingest(services, database_url, pop)
        code, out = _conform(services, pop, url, tmp_path)
    truth = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert [t["what"] for t in truth] == ["sos", "fall", "smoke"]
    assert all(t["wall_at"] > 0 and t["deadline_wall"] > t["wall_at"] for t in truth)
    if not disabled:
        assert code == 0, out
        assert "result: PASS: 3/3 incidents ok, 0 missed, 0 false alarms" in out
        assert "order 1 accepted" in out
    else:
        assert code == 1, out
        missed = [line for line in out.splitlines() if "MISSED" in line]
        assert len(missed) == 1, out
        assert "#3 smoke" in missed[0]
        assert "(home-17, smoke-0042)" in missed[0]
        assert "result: FAIL" in out


@pytest.mark.integration
def test_a_compressed_run_is_judged_at_its_simulated_clock(
    services: Services, database_url: str, tmp_path: Path
) -> None:
    """Three simulated hours in a minute: the routine's spells are not silences, and the
    injected one is caught when it has lasted 2 h 20 min of simulated time."""
    pop = seed(services, database_url)
    env = worker_env(services, database_url) | {
        "ELDERCARE_SIM_CLOCK_ALLOWED": "1",
        "ELDERCARE_DISABLED_DETECTORS": "",
    }
    with running("ingest", env), running("alerts", env), api_server(env) as url:
        wait_for_ingest(services, database_url, pop)
        code, out = _conform(services, pop, url, tmp_path, COMPRESSED)
    assert code == 0, out
    assert "PASS #1 inactivity" in out
    assert "result: PASS: 1/1 incidents ok, 0 missed, 0 false alarms" in out
    alert = query(database_url, "SELECT occurred_at, raised_at FROM alerts")
    assert len(alert) == 1, alert
    (truth,) = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text().splitlines()]
    # raised when 2 h 20 min of simulated silence had passed (a backend judging at its wall
    # clock raises it as soon as the last movement, hours old by then, is seen)
    raised = alert[0]["raised_at"].timestamp()
    assert truth["wall_at"] - 5 <= raised <= truth["wall_at"] + 30
    assert query(database_url, "SELECT 1 FROM simulated_clock") == []  # cleared at the end


@pytest.mark.integration
def test_a_dropped_device_fires_its_last_will_and_bursts_its_backlog_on_reconnect(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    d = device(pop, "pir-0042")
    creds = DeviceCreds(d.site_id, d.device_id, d.kind, d.password, d.resident, d.room)
    status_sql = (
        "SELECT s.online FROM device_status s JOIN devices USING (device_key) WHERE device_id = %s"
    )

    def online() -> bool | None:
        rows = query(database_url, status_sql, ("pir-0042",))
        return bool(rows[0]["online"]) if rows else None

    with running("ingest", worker_env(services, database_url)):
        wait_for_ingest(services, database_url, pop)
        player = Player(
            {"pir-0042": creds},
            broker=Broker("127.0.0.1", services.broker.port),
            on_truth=lambda t: None,
        )

        async def go() -> None:
            await player.connect(["pir-0042"], None)
            clock = epoch_clock(time.time(), time.time())
            t = clock.start
            motion = [
                Msg(
                    t + 1.0 + i * 0.1,
                    "pir-0042",
                    pack=packs.make_pack(
                        "pir-0042", t + 1.0 + i * 0.1, [{"n": "motion", "vb": True}]
                    ),
                )
                for i in range(5)
            ]
            await player.play([Msg(t + 0.5, "pir-0042", op=Op.DROP), *motion], clock)

        asyncio.run(go())
        wait_until(lambda: online() is False, what="the Last Will stored as offline")
        assert player.stats.buffered == 5
        assert not query(database_url, "SELECT 1 FROM events WHERE name = 'motion'")
        asyncio.run(player.connect(["pir-0042"], None))
        wait_until(
            lambda: len(query(database_url, "SELECT 1 FROM events WHERE name = 'motion'")) == 5,
            what="the backlog sent in a burst on reconnect",
        )
        assert online() is True
        player.close()
