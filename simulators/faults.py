"""Faults of a chaos run, done to the main job from outside as an operator (or the kernel)
would: ``kill -9`` of a component, a broker or database restart.

Components are found in ``/proc`` by their command line (``python -m ingest run``, ``-m alerts
run``, ``-m dashboard_api serve``, the lanes' ``-m ingest lane`` and ``-m alerts lane``) and by ``ELDERCARE_RUN_DIR`` in their environment, so that
another main job on the machine is left alone. Restarts use the services' own commands: the
broker's ``mosquitto -c <run>/mosquitto/mosquitto.conf -d`` (same port, same persistence
file) and ``pg_ctl restart`` on ``<run>/pg``. Nothing here restarts a killed component: that
is the main job's supervisor's work, and the run measures how long it takes.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simulators.chaos_plan import FaultWhat

COMPONENTS: Final[dict[FaultWhat, tuple[str, ...]]] = {
    FaultWhat.KILL_INGEST: ("-m", "ingest", "run"),
    FaultWhat.KILL_ALERTS: ("-m", "alerts", "run"),
    FaultWhat.KILL_INGEST_LANE: ("-m", "ingest", "lane"),
    FaultWhat.KILL_ALERTS_LANE: ("-m", "alerts", "lane"),
    FaultWhat.KILL_API: ("-m", "dashboard_api", "serve"),
}


class FaultError(RuntimeError):
    pass


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def _run_dir_of(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in raw.split(b"\0"):
        if item.startswith(b"ELDERCARE_RUN_DIR="):
            return os.path.realpath(item.split(b"=", 1)[1].decode("utf-8", "replace"))
    return None


def _contains(args: list[str], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(tuple(args[i : i + n]) == needle for i in range(len(args) - n + 1))


def find_pids(run_dir: Path, what: FaultWhat) -> list[int]:
    """The processes of one component of the main job running from ``run_dir``."""
    needle = COMPONENTS[what]
    want = os.path.realpath(run_dir)
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        args = _cmdline(pid)
        python = bool(args) and "python" in Path(args[0]).name
        if python and _contains(args, needle) and _run_dir_of(pid) == want:
            pids.append(pid)
    # a process whose parent is one of them (a server's worker) is part of it: kill the top
    return sorted(p for p in pids if _ppid(p) not in pids)


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310
            return int(resp.status) < 500
    except (OSError, ValueError, http.client.HTTPException):
        return False


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass(slots=True)
class Done:
    """One fault as done: when, to what, and when the component was seen back."""

    what: FaultWhat
    at: float  # wall clock
    target: str  # "pid 1234 (of 1234, 1240)", "broker pid 77 on :18830"
    back_at: float | None = None
    back_as: str = ""
    error: str | None = None

    @property
    def down_s(self) -> float | None:
        return None if self.back_at is None else self.back_at - self.at


class Operator:
    """Does the faults to the main job of one run directory."""

    def __init__(
        self,
        run_dir: Path,
        *,
        rng: random.Random,
        restart_within_s: float,
        answers: dict[FaultWhat, str] | None = None,
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.rng = rng
        self.restart_within_s = restart_within_s
        # a URL that answers once the component serves again (the API's /healthz, ingest's
        # /metrics): "back" is then answering, not only a new process
        self.answers = answers or {}

    def census(self) -> dict[FaultWhat, list[int]]:
        return {w: find_pids(self.run_dir, w) for w in COMPONENTS}

    def do(self, what: FaultWhat) -> Done:
        """Blocking: do the fault and wait (up to ``restart_within_s``) until it is back."""
        try:
            if what in COMPONENTS:
                return self._kill(what)
            if what is FaultWhat.RESTART_BROKER:
                return self._restart_broker()
            return self._restart_database()
        except (OSError, subprocess.SubprocessError, FaultError, ValueError) as exc:
            return Done(what, time.time(), "-", error=str(exc))

    def _kill(self, what: FaultWhat) -> Done:
        pids = find_pids(self.run_dir, what)
        if not pids:
            raise FaultError(f"no {' '.join(COMPONENTS[what][1:])} process of {self.run_dir}")
        victim = self.rng.choice(pids)
        done = Done(what, time.time(), f"pid {victim} (of {', '.join(map(str, pids))})")
        os.kill(victim, signal.SIGKILL)
        deadline = done.at + self.restart_within_s
        while time.time() < deadline:
            now = [p for p in find_pids(self.run_dir, what) if p != victim]
            url = self.answers.get(what)
            if len(now) >= len(pids) and (url is None or _answers(url)):
                done.back_at = time.time()
                done.back_as = f"pid {max(set(now) - set(pids) or now)}"
                done.back_as += f", answering {url}" if url else ""
                break
            time.sleep(0.2)
        return done

    def _broker(self) -> tuple[Path, int, int]:
        conf_dir = self.run_dir / "mosquitto"
        state = json.loads((self.run_dir / "services.json").read_text())
        pid = int((conf_dir / "mosquitto.pid").read_text().split()[0])
        return conf_dir, int(state["mqtt_port"]), pid

    def _restart_broker(self) -> Done:
        conf_dir, port, pid = self._broker()
        done = Done(FaultWhat.RESTART_BROKER, time.time(), f"broker pid {pid} on :{port}")
        os.kill(pid, signal.SIGTERM)
        stop_by = time.time() + 10
        while _alive(pid) and time.time() < stop_by:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
        if not _port_open(port):  # nobody (a supervisor) brought it back already: we do
            # (if a supervisor wins the race, ours fails to bind: the port check decides)
            subprocess.run(
                ["mosquitto", "-c", str(conf_dir / "mosquitto.conf"), "-d"],
                check=False,
                capture_output=True,
                timeout=30,
            )
        deadline = done.at + self.restart_within_s
        while time.time() < deadline and not _port_open(port):
            time.sleep(0.05)
        if _port_open(port):
            new = int((conf_dir / "mosquitto.pid").read_text().split()[0])
            done.back_at, done.back_as = time.time(), f"pid {new}"
            # the main job's own "services down" stops the broker by the pid it recorded
            state_path = self.run_dir / "services.json"
            state = json.loads(state_path.read_text())
            state["mqtt_pid"] = new
            state_path.write_text(json.dumps(state))
        return done

    def _restart_database(self) -> Done:
        data = self.run_dir / "pg"
        pid = int((data / "postmaster.pid").read_text().split()[0])
        done = Done(FaultWhat.RESTART_DATABASE, time.time(), f"postmaster pid {pid}")
        out = subprocess.run(
            [
                *_as_postgres(),
                f"{_pg_bindir()}/pg_ctl",
                "restart",
                "-D",
                str(data),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(self.restart_within_s)),
                "-l",
                str(data / "server.log"),
            ],
            capture_output=True,
            text=True,
            timeout=self.restart_within_s + 10,
            check=False,
        )
        if out.returncode != 0:
            raise FaultError(f"pg_ctl restart: {out.stderr.strip()[-300:]}")
        new = int((data / "postmaster.pid").read_text().split()[0])
        done.back_at, done.back_as = time.time(), f"pid {new}"
        return done


def _pg_bindir() -> str:
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True)
    return out.stdout.strip()
