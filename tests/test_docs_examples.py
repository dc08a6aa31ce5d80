"""Every example in docs/device-protocol.md, sent with mosquitto_pub as written, is stored once."""

from __future__ import annotations

import os
import re
import subprocess
import time

from devices.registry import DeviceRef
from ingest.decode import Decoded, Limits, RawMessage, decode
from tests.services import ROOT, Services, device, query, running, seed, wait_until, worker_env

BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def examples() -> list[str]:
    return BLOCK.findall((ROOT / "docs" / "device-protocol.md").read_text())


def _user(cmd: str) -> str:
    m = re.search(r"-u (\S+)", cmd)
    assert m, cmd
    return m.group(1)


def _rows(cmd: str) -> int:
    """Rows the example should produce, by the project's own decoder."""
    topic = re.search(r"-t (\S+)", cmd)
    payload = re.search(r"-m '([^']*)'", cmd)
    assert topic, cmd
    assert payload, cmd
    site, dev = topic.group(1).split("/")[2:4]
    refs = {dev: DeviceRef(1, dev, site, "any", False)}
    out = decode(RawMessage(topic.group(1), payload.group(1).encode(), time.time()), refs, Limits())
    assert isinstance(out, Decoded), out
    return len(out.telemetry) + len(out.events) + len(out.windows)


def test_docs_have_examples_of_every_kind() -> None:
    text = " ".join(examples())
    for name in ("sos", "fall", "hr", "acc_x", "presence", "motion", "door", "smoke", "online"):
        assert f'"{name}"' in text, name


def test_every_example_is_stored_exactly_once(services: Services, database_url: str) -> None:
    pop = seed(services, database_url)
    cmds = examples()
    with running("ingest", worker_env(services, database_url)):
        # a first example, resent until stored, proves the worker is subscribed
        def send(cmd: str) -> None:
            env = {
                **os.environ,
                "MQTT_HOST": "127.0.0.1",
                "MQTT_PORT": str(services.broker.port),
                "DEVICE_PASSWORD": device(pop, _user(cmd)).password,
            }
            subprocess.run(["bash", "-c", cmd], env=env, check=True, timeout=30)

        def stored() -> int:
            return sum(
                r["n"]
                for r in query(
                    database_url,
                    "SELECT (SELECT count(*) FROM telemetry) + "
                    "(SELECT count(*) FROM events) + (SELECT count(*) FROM acc_windows) AS n",
                )
            )

        wait_until(lambda: (send(cmds[0]), stored() > 0)[1], what="first example stored")
        for cmd in cmds:
            send(cmd)
        for cmd in cmds:  # and everything again: redelivered or resent, stored once
            send(cmd)
        status_cmds = [c for c in cmds if "/status" in c]
        expected = sum(_rows(c) for c in cmds if "/status" not in c)
        wait_until(lambda: stored() == expected, what=f"{expected} stored rows")
        if status_cmds:
            wait_until(
                lambda: bool(
                    query(database_url, "SELECT 1 FROM device_status WHERE fw IS NOT NULL")
                ),
                what="status stored",
            )
    assert not query(database_url, "SELECT reason, detail FROM dead_letters")
    dupes = query(
        database_url,
        "SELECT device_key, metric, time, count(*) FROM telemetry "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1",
    )
    assert dupes == []
