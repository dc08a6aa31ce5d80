"""Run the project's own PostgreSQL (with TimescaleDB) and Mosquitto under a local directory.

The servers under devtools.local_services (the main job, the tests, the benchmarks). Each
service gets its own data directory, a free port on 127.0.0.1, and is stopped cleanly.
PostgreSQL refuses to run as root, so as root its processes run as the ``postgres`` system
user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devices.credentials import DYNSEC_FILE

if TYPE_CHECKING:
    from devices.tls import TlsFiles

log = logging.getLogger(__name__)

DB_USER = "eldercare"
DB_NAME = "eldercare"


def free_port(preferred: int | None = None) -> int:
    if preferred is not None and _port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the servers themselves do: a port whose old connections linger in TIME_WAIT is
        # free to listen on again (a restarted broker keeps its port).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, *, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def pg_bindir() -> Path:
    out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _as_service_user() -> list[str]:
    """Prefix for commands PostgreSQL will not run as root."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _chown_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _let_postgres_reach(path: Path) -> None:
    """As root, PostgreSQL runs as the postgres user, who must be able to pass through every
    directory above its data (a checkout in /root or in a ``mktemp -d`` directory is 0700):
    add search permission (x, not read) where it is missing, and say so."""
    if os.geteuid() != 0:
        return
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            log.warning(
                "gave others search permission on %s so PostgreSQL can reach %s", parent, path
            )


@dataclass(frozen=True, slots=True)
class LocalPostgres:
    data_dir: Path
    port: int
    password: str

    def url(self, database: str = DB_NAME) -> str:
        return f"postgresql://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                [
                    *_as_service_user(),
                    str(pg_bindir() / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                ],
                check=False,
                capture_output=True,
            )


def start_postgres(
    base: Path,
    *,
    port: int | None = None,
    password: str,
    fast: bool = False,
) -> LocalPostgres:
    """Create (once) and start a cluster in ``base/pg``; ``fast`` trades durability for speed
    (tests only)."""
    base.mkdir(parents=True, exist_ok=True)
    _let_postgres_reach(base)
    data = base / "pg"
    bindir = pg_bindir()
    if not (data / "PG_VERSION").exists():
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(mode=0o700)
        _chown_for_postgres(data)
        pwfile = base / "pg.pw"
        pwfile.write_text(password + "\n")
        _chown_for_postgres(pwfile)
        subprocess.run(
            [
                *_as_service_user(),
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{data}'",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "200",
            "shared_buffers": "256MB",
            "log_min_messages": "warning",
        }
        if fast:
            settings.update(
                {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
            )
        with (data / "postgresql.auto.conf").open("a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in settings.items())
    port = free_port(port)
    subprocess.run(
        [
            *_as_service_user(),
            str(bindir / "pg_ctl"),
            "start",
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(data / "server.log"),
            "-o",
            f"-p {port}",
        ],
        check=True,
        capture_output=True,
    )
    pg = LocalPostgres(data, port, password)
    _ensure_database(pg)
    return pg


def _ensure_database(pg: LocalPostgres) -> None:
    import psycopg

    with psycopg.connect(pg.url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {DB_NAME}")


@dataclass(frozen=True, slots=True)
class LocalBroker:
    conf_dir: Path
    port: int
    pid: int
    tls_port: int | None = None  # the devices' TLS listener, when started with one

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


# Debian's package, then the eclipse-mosquitto image's layout.
_DYNSEC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
DYNSEC_PLUGIN = next((p for p in _DYNSEC_CANDIDATES if Path(p).exists()), _DYNSEC_CANDIDATES[0])


def tls_listener(port: int, tls: TlsFiles, *, bind: str | None = "127.0.0.1") -> list[str]:
    """A TLS listener (MQTT over TLS 1.2+): devices sign in with their own credentials, as on
    the plain one; the server certificate is signed by ``tls.ca_cert``, which devices trust.
    No client certificates: accounts and ACLs stay the dynamic-security plugin's."""
    return [
        f"listener {port} {bind}" if bind else f"listener {port}",
        f"cafile {tls.ca_cert}",
        f"certfile {tls.server_cert}",
        f"keyfile {tls.server_key}",
        "tls_version tlsv1.2",
        "require_certificate false",
    ]


def broker_config(conf_dir: Path, port: int, *, tls: tuple[int, TlsFiles] | None = None) -> str:
    # Stock limits (20 in flight, 1,000 queued) silently drop QoS 1 messages under load
    # (shared/measurements.md): ingest acknowledges only after commit, so it needs a deep
    # in-flight window and the broker must hold what arrives while a worker is away.
    return "\n".join(
        [
            "per_listener_settings false",
            f"listener {port} 127.0.0.1",
            "allow_anonymous false",
            # Accounts and ACLs: the dynamic-security plugin (deny by default, client ids bound
            # to device accounts; see docs/deployment.md for why not the ACL file).
            f"plugin {DYNSEC_PLUGIN}",
            f"plugin_opt_config_file {conf_dir / DYNSEC_FILE}",
            "persistence true",
            f"persistence_location {conf_dir}/",
            "autosave_interval 30",
            "max_inflight_messages 0",
            "max_queued_messages 1000000",
            "max_queued_bytes 0",
            # ingest dead-letters SenML packs over 256 KiB as too_large; the broker disconnects
            # a sender of anything over 1 MiB
            "max_packet_size 1048576",
            # Nagle's algorithm holds a small packet (an SOS, its PUBACK, a command) until the
            # previous one is acknowledged: up to 40 ms per hop on Linux, worse in a burst.
            "set_tcp_nodelay true",
            f"log_dest file {conf_dir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            f"pid_file {conf_dir / 'mosquitto.pid'}",
            *(tls_listener(*tls) if tls else []),
            "",
        ]
    )


def start_mosquitto(
    conf_dir: Path,
    *,
    port: int | None = None,
    tls: TlsFiles | None = None,
    tls_port: int | None = None,
) -> LocalBroker:
    """Start Mosquitto with ``conf_dir/dynamic-security.json`` (which must exist); with
    ``tls``, also a TLS listener for devices on ``tls_port`` (or a free one)."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    if not (conf_dir / DYNSEC_FILE).exists():
        raise FileNotFoundError(conf_dir / DYNSEC_FILE)
    port = free_port(port)
    secure = free_port(tls_port) if tls else None
    conf = conf_dir / "mosquitto.conf"
    text = broker_config(conf_dir, port, tls=(secure, tls) if secure and tls else None)
    conf.write_text(text + ("user root\n" if os.geteuid() == 0 else ""))
    pid_file = conf_dir / "mosquitto.pid"
    pid_file.unlink(missing_ok=True)
    started = subprocess.run(
        ["mosquitto", "-c", str(conf), "-d"], capture_output=True, text=True, check=False
    )
    try:
        if started.returncode == 0:
            wait_for_port(port)
            if secure:
                wait_for_port(secure)
    except TimeoutError:
        started.returncode = 1
    if started.returncode != 0:
        log = conf_dir / "mosquitto.log"
        detail = log.read_text()[-2000:] if log.exists() else started.stderr
        raise RuntimeError(f"mosquitto did not start: {detail}")
    pid = int(pid_file.read_text().split()[0])
    return LocalBroker(conf_dir, port, pid, secure)
