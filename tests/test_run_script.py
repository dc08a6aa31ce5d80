"""The main job as a user starts it (scripts/run.sh): one component killed does not stop the
others, it comes back on its own, and Ctrl-C/TERM still stops everything (issue 18 finding 4:
any component that exited used to take the whole stack down, the care-station API included)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from devtools.servers import free_port
from tests.services import wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _pid(run: Path, name: str) -> int:
    return int((run / "pids" / f"{name}.pid").read_text())


def test_a_killed_component_comes_back_and_the_api_keeps_serving() -> None:
    tmp_path = Path(tempfile.mkdtemp(prefix="eldercare-runsh-"))
    tmp_path.chmod(0o755)  # as root, PostgreSQL runs as the postgres user inside it
    run = tmp_path / "run"
    api = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")},
        "ELDERCARE_RUN_DIR": str(run),
        "ELDERCARE_API_PORT": str(api),
        "ELDERCARE_METRICS_PORT": str(free_port()),
        "ELDERCARE_DEMO_SIMULATOR": "0",
    }
    log = (tmp_path / "run.log").open("wb")
    job = subprocess.Popen(
        ["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(
            lambda: (run / "ready").exists() or job.poll() is not None,
            timeout=240,
            what="the main job ready",
        )
        assert job.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert stat.S_IMODE((run / "env").stat().st_mode) == 0o600  # finding 12: secrets
        first = _pid(run, "ingest")
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not ((run / "pids" / "ingest.pid").exists() and _pid(run, "ingest") != first):
            assert _healthy(api), "the API stopped answering when ingest died"
            assert time.monotonic() < deadline, "ingest did not come back"
            time.sleep(0.2)
        second = _pid(run, "ingest")
        wait_until(lambda: _alive(second), what="the new ingest running")
        assert _healthy(api)
        assert "ingest" in (run / "logs" / "supervisor.log").read_text()
        components = [_pid(run, n) for n in ("ingest", "alerts", "api")]
        broker = int((run / "mosquitto" / "mosquitto.pid").read_text().split()[0])
    finally:
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=60)
        log.close()
    for pid in (*components, broker):
        _wait_gone(pid)
    shutil.rmtree(tmp_path, ignore_errors=True)


def _wait_gone(pid: int) -> None:
    wait_until(lambda: not _alive(pid), timeout=20, what=f"pid {pid} stopped")
