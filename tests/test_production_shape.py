"""A production-shaped run (issue 16 item 5). No container engine exists here, so the compose
file's configuration is exercised without one: every app service of docker-compose.yml is
started with its own command and the environment alone (the compose file's variable names
and values, with local hosts, ports and paths and generated secrets), in the order its
``depends_on`` gives (what the one-shots write for the broker is then owned by the broker's
user, as compose's ``user: "1883:1883"`` leaves it); PostgreSQL is made the way the ``timescaledb`` service makes it
(superuser ``POSTGRES_USER`` with ``POSTGRES_PASSWORD``), Mosquitto runs
``deploy/mosquitto/mosquitto.conf`` with its TLS listener, and ingest, both alerts workers and
the API sign in to the database as their own least-privilege roles. A short conformance
scenario is then played by devices over TLS, and the ``help_coming`` command sent when a carer
accepts the SOS reaches the resident's device over the TLS listener. What still differs from
a real container deployment: docs/deployment.md."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from psycopg.rows import dict_row

from devtools.seed import DemoPopulation, seed_demo
from devtools.servers import DYNSEC_PLUGIN, LocalPostgres, free_port, start_postgres
from tests.services import ROOT, query, wait_until

pytestmark = pytest.mark.integration

COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SCENARIO = ROOT / "simulators" / "scenarios" / "smoke-sos-fall.toml"
# The image's own environment (Dockerfile ENV); nothing else of ours reaches a process.
IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
# The broker's uid in compose (eclipse-mosquitto's `mosquitto`); here Debian's user of that name.
BROKER_UID = "1883:1883"


def _variables() -> dict[str, str]:
    """A value for every compose-level variable: a generated secret for each required one
    (``${VAR:?}``), the default for the others (``${VAR:-default}``)."""
    values = {v: secrets.token_hex(16) for v in re.findall(r"\$\{(\w+):\?\}", COMPOSE_TEXT)}
    values |= dict(re.findall(r"\$\{(\w+):-([^}]*)\}", COMPOSE_TEXT))
    return values


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)(?::\?|:-[^}]*)?\}", lambda m: variables[m.group(1)], text)


def _order() -> list[str]:
    """The services in an order that satisfies every ``depends_on`` (profiles left out)."""
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for dep in SERVICES[name].get("depends_on") or {}:
            visit(dep)
        done.append(name)

    for name, svc in SERVICES.items():
        if not svc.get("profiles"):
            visit(name)
    return done


@dataclass
class Stack:
    base: Path
    variables: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[IO[bytes]] = field(default_factory=list)
    pg: LocalPostgres | None = None

    def path(self, container_path: str) -> str:
        """A container path of a volume (``/mosquitto/config``) -> its local directory."""
        return str(self.base / "volumes" / container_path.strip("/").replace("/", "_"))

    def local(self, value: str) -> str:
        """A compose value with the compose network's hosts and the containers' paths made
        local; secrets and every other value stay as the compose file has them."""
        value = _expand(value, self.variables)
        value = value.replace("@timescaledb:5432/", f"@127.0.0.1:{self.ports['pg']}/")
        return re.sub(r"/mosquitto/(config|certs|data)", lambda m: self.path(m.group(0)), value)

    def command(self, name: str, replica: int = 0) -> list[str]:
        svc = SERVICES[name]
        cmd = [self.local(str(c)) for c in [*(svc.get("entrypoint") or []), *svc["command"]]]
        assert cmd[:2] == ["python", "-m"], cmd
        for flag in ("--metrics-port", "--port"):  # the container's port -> a free local one
            if flag in cmd:
                i = cmd.index(flag) + 1
                cmd[i] = str(self.ports.setdefault(f"{name}{replica}{flag}", free_port()))
        return [sys.executable, *cmd[1:]]

    def env(self, name: str, replica: int = 0) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.base / "home"), **IMAGE_ENV}
        for key, value in (SERVICES[name].get("environment") or {}).items():
            env[key] = self.local(str(value))
        if env.get("ELDERCARE_MQTT_HOST") == "mosquitto":
            env["ELDERCARE_MQTT_HOST"] = "127.0.0.1"
            assert env["ELDERCARE_MQTT_PORT"] == "1883"  # the internal plain listener
            env["ELDERCARE_MQTT_PORT"] = str(self.ports["mqtt"])
        if "ELDERCARE_ALERTS_PROBE_PORT" in env:  # one per container there, one per process here
            env["ELDERCARE_ALERTS_PROBE_PORT"] = str(
                self.ports.setdefault(f"{name}{replica}-probe", free_port())
            )
        leftover = {k: v for k, v in env.items() if re.search(r"\$\{|timescaledb|mosquitto:", v)}
        assert not leftover, leftover
        return env

    def hand_to_broker_user(self, name: str) -> None:
        """``user: "1883:1883"`` (the broker's uid): the one-shot ran as this test's user (the
        interpreter may sit where the broker's user cannot reach), so its volumes are handed
        to the local broker user afterwards, as if it had written them."""
        if SERVICES[name].get("user") is None or os.geteuid() != 0:
            return
        assert SERVICES[name]["user"] == BROKER_UID
        pw = pwd.getpwnam("mosquitto")
        for volume in SERVICES[name].get("volumes") or []:
            top = Path(self.path(volume.split(":")[1]))
            for path in [top, *top.rglob("*")]:
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def run_once(self, name: str) -> str:
        out = subprocess.run(
            self.command(name),
            env=self.env(name),
            cwd=self.base / "app",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, f"{name}: {out.stdout[-2000:]} {out.stderr[-3000:]}"
        self.hand_to_broker_user(name)
        return out.stdout

    def start(self, name: str, replica: int = 0) -> None:
        key = f"{name}-{replica + 1}"
        self.spawn(key, self.command(name, replica), env=self.env(name, replica))

    def spawn(self, key: str, cmd: list[str], *, env: dict[str, str]) -> None:
        log = (self.base / "logs" / f"{key}.log").open("wb")
        self.logs.append(log)
        self.procs[key] = subprocess.Popen(
            cmd,
            env=env,
            cwd=self.base / "app",
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def log(self, key: str) -> str:
        return (self.base / "logs" / f"{key}.log").read_text(errors="replace")


def _broker_config(stack: Stack) -> str:
    """deploy/mosquitto/mosquitto.conf with the local ports (on loopback), the distribution's
    plugin path and the volumes' directories."""
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("\nlistener 1883\n", f"\nlistener {stack.ports['mqtt']} 127.0.0.1\n")
    text = text.replace("\nlistener 8883\n", f"\nlistener {stack.ports['mqtts']} 127.0.0.1\n")
    text = text.replace("/usr/lib/mosquitto_dynamic_security.so", DYNSEC_PLUGIN)
    assert text.count(f" {stack.ports['mqtt']} ") == 1
    assert text.count(f" {stack.ports['mqtts']} ") == 1
    return stack.local(text)


def _seed(url: str) -> DemoPopulation:
    """The registry as provisioning would have left it: the demo sites, residents, devices
    and logins (their plaintext passwords are what the devices and the carer know)."""

    async def go() -> DemoPopulation:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            population = await seed_demo(conn, now=datetime.now(UTC))
            await conn.commit()
            return population

    return asyncio.run(go())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback
            return bool(r.status == 200)
    except OSError:
        return False


def _published_over_tls(stack: Stack, ca: str, pop: DemoPopulation) -> bool:
    """A device's reading over the TLS listener, until ingest has stored one."""
    dev = next(d for d in pop.devices if d.device_id == "wb-0042")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev.device_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(dev.device_id, dev.password)
    client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.connect("localhost", stack.ports["mqtts"])
    client.loop_start()
    try:
        pack = [{"bn": "wb-0042:", "n": "probe", "v": 1.0, "bt": time.time()}]
        topic = f"eldercare/v1/{dev.site_id}/{dev.device_id}/telemetry"
        client.publish(topic, json.dumps(pack), qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
    owner = stack.local(SERVICES["migrate"]["environment"]["ELDERCARE_DATABASE_URL"])
    return bool(query(owner, "SELECT 1 FROM telemetry WHERE metric = 'probe' LIMIT 1"))


@pytest.fixture
def stack() -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="eldercare-prod-"))
    base.chmod(0o755)  # PostgreSQL's and the broker's own users work below it as root
    s = Stack(base, _variables(), {"pg": 0, "mqtt": free_port(), "mqtts": free_port()})
    for d in ("app", "home", "logs"):
        (base / d).mkdir()
    for volume in ("/mosquitto/config", "/mosquitto/certs", "/mosquitto/data"):
        Path(s.path(volume)).mkdir(parents=True)
        if os.geteuid() == 0:  # the image creates them owned by the broker's uid
            pw = pwd.getpwnam("mosquitto")
            os.chown(s.path(volume), pw.pw_uid, pw.pw_gid)
    try:
        yield s
    finally:
        for proc in s.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in s.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in s.logs:
            log.close()
        if s.pg is not None:
            s.pg.stop()
        if os.environ.get("SHOW_WORKER_LOG"):
            for key in s.procs:
                print(f"--- {key}\n{s.log(key)[-3000:]}")
        shutil.rmtree(base, ignore_errors=True)


def test_the_compose_stack_runs_a_scenario_and_help_reaches_the_device_over_tls(
    stack: Stack,
) -> None:
    started = time.monotonic()
    order = _order()
    assert order.index("migrate") < order.index("broker-sync") < order.index("mosquitto")
    assert order.index("mosquitto") < order.index("ingest")
    for svc in SERVICES.values():  # the image does not ship the dev tooling
        assert "devtools" not in json.dumps(svc.get("command") or [])
    db = SERVICES["timescaledb"]["environment"]
    assert (db["POSTGRES_USER"], db["POSTGRES_DB"]) == ("eldercare", "eldercare")
    stack.pg = start_postgres(stack.base, password=stack.local(db["POSTGRES_PASSWORD"]), fast=True)
    stack.ports["pg"] = stack.pg.port
    pop: DemoPopulation | None = None
    for name in order:
        svc = SERVICES[name]
        if name == "timescaledb":
            continue
        if name == "mosquitto":
            conf = Path(stack.path("/mosquitto/etc"))
            conf.mkdir()
            (conf / "mosquitto.conf").write_text(_broker_config(stack))
            stack.spawn(
                "mosquitto-1",
                ["mosquitto", "-c", str(conf / "mosquitto.conf")],
                env={"PATH": os.environ["PATH"]},
            )
            for port in (stack.ports["mqtt"], stack.ports["mqtts"]):
                wait_until(lambda p=port: _listening(p), what=f"the broker on {port}")
        elif svc.get("restart") == "no":
            out = stack.run_once(name)
            if name == "migrate":
                assert "database roles that may sign in" in out, out
                # the registry as provisioning left it, before the broker's files are written
                pop = _seed(stack.local(svc["environment"]["ELDERCARE_DATABASE_URL"]))
        else:
            for replica in range((svc.get("deploy") or {}).get("replicas", 1)):
                stack.start(name, replica)
    assert pop is not None
    assert sorted(stack.procs) == [
        "alerts-1", "alerts-2", "alerts-lane-1", "api-1", "ingest-1", "ingest-lane-1",
        "mosquitto-1",
    ]  # fmt: skip
    ca = stack.path("/mosquitto/certs") + "/ca.crt"
    api = f"http://127.0.0.1:{stack.ports['api0--port']}"
    wait_until(lambda: _ready(api + "/readyz"), timeout=60, what="the API ready")
    for replica in range(2):
        probe = stack.ports[f"alerts{replica}-probe"]
        wait_until(lambda p=probe: _ready(f"http://127.0.0.1:{p}/readyz"), timeout=60,
                   what=f"alerts worker {replica + 1} ready")  # fmt: skip
    wait_until(lambda: _published_over_tls(stack, ca, pop), timeout=30, what="ingest over TLS")

    creds = stack.base / "devices.json"
    creds.write_text(json.dumps(pop.as_json()))
    conform = subprocess.run(
        [
            sys.executable, "-m", "simulators", "conform", str(SCENARIO), "--api", api,
            "--user", "admin", "--devices", str(creds), "--host", "localhost",
            "--port", str(stack.ports["mqtts"]), "--tls-ca", ca,
            "--truth", str(stack.base / "truth.jsonl"), "--log-level", "INFO",
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(stack.base / "home"), **IMAGE_ENV},
        cwd=stack.base / "app",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    out = conform.stdout + conform.stderr
    assert conform.returncode == 0, out[-4000:]
    assert "result: PASS: 3/3 incidents ok, 0 missed, 0 false alarms" in out
    assert "order 1 accepted" in out
    # the resident's own devices heard that help is coming, on their TLS connections
    told = set(re.findall(r"(\S+) \(Zheng Hui\): command help_coming", out))
    assert told, out[-4000:]
    assert told <= {d.device_id for d in pop.devices if d.kind in ("sos_button", "wristband")}
    owner = stack.local(SERVICES["migrate"]["environment"]["ELDERCARE_DATABASE_URL"])
    sent = query(
        owner,
        "SELECT d.device_id FROM device_commands c JOIN devices d USING (device_key) "
        "WHERE convert_from(c.payload, 'UTF8')::jsonb->>'type' = 'help_coming' "
        "AND c.sent_at IS NOT NULL",
    )
    assert told <= {r["device_id"] for r in sent}

    for key, proc in stack.procs.items():  # nobody fell over on the way
        assert proc.poll() is None, f"{key} exited: {stack.log(key)[-3000:]}"
        assert "permission denied" not in stack.log(key).lower(), stack.log(key)[-3000:]
    _assert_least_privilege(stack)
    assert time.monotonic() - started < 150


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _assert_least_privilege(stack: Stack) -> None:
    """Each process's own role (compose's URL for it) is refused what it does not need."""
    url = {n: stack.local(SERVICES[n]["environment"]["ELDERCARE_DATABASE_URL"]) for n in SERVICES
           if "ELDERCARE_DATABASE_URL" in (SERVICES[n].get("environment") or {})}  # fmt: skip
    denied = {
        "ingest": ("SELECT password_hash FROM users", "SELECT mqtt_password_hash FROM devices",
                   "DELETE FROM dispatch_orders", "DROP TABLE telemetry"),
        "alerts": ("SELECT * FROM api_tokens", "INSERT INTO telemetry (time, device_key, metric,"
                   " value) VALUES (now(), 1, 'x', 1)", "UPDATE users SET locale = 'en'"),
        "api": ("INSERT INTO events (time, device_key, name) VALUES (now(), 1, 'sos')",
                "SELECT * FROM dead_letters", "DELETE FROM detector_checks"),
    }  # fmt: skip
    for name, statements in denied.items():
        assert re.match(rf"postgresql://eldercare_{name}:", url[name]), url[name]
        with psycopg.connect(url[name], autocommit=True) as conn:
            for statement in statements:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
