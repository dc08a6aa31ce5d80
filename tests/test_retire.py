"""Retiring a device from the CLI (``python -m devices retire``) and the admin API: the
registry retires it, its assignment ends, the running broker forgets it (it can no longer sign
in), and only an administrator may do it (issue 16 item 3)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from dashboard_api.app import create_app
from devices.settings import Settings
from devtools.seed import DemoDevice, DemoPopulation
from tests.services import ROOT, Services, can_connect, query, seed, wait_until
from tests.test_api import _login

pytestmark = pytest.mark.integration


def _personal(pop: DemoPopulation) -> DemoDevice:
    return next(d for d in pop.devices if d.resident is not None)


def _state(url: str, device_id: str) -> dict[str, object]:
    [row] = query(
        url,
        "SELECT d.retired_at IS NOT NULL AS retired, d.mqtt_password_hash IS NULL AS no_hash, "
        "(SELECT count(*) FROM device_assignments a WHERE a.device_key = d.device_key "
        " AND upper_inf(a.during)) AS open_assignments FROM devices d WHERE device_id = %s",
        (device_id,),
    )
    return dict(row)


RETIRED = {"retired": True, "no_hash": True, "open_assignments": 0}


def test_an_admin_retires_a_device_through_the_api_and_the_broker_lets_it_go(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    dev = _personal(pop)
    assert can_connect(services, dev.device_id, dev.password)
    assert _state(database_url, dev.device_id)["open_assignments"] == 1
    settings = Settings(
        database_url=database_url,
        mqtt_port=services.broker.port,
        broker_admin_password=services.admin_password,
    )
    path = f"/api/admin/devices/{dev.device_id}/retire"
    with TestClient(create_app(settings)) as client:
        assert client.post(path).status_code == 401
        for who in ("staff-sunrise", "staff-homes", "family-home17"):
            r = client.post(path, headers=_login(client, pop, who))
            assert r.status_code == 403, (who, r.text)
        assert _state(database_url, dev.device_id)["retired"] is False
        admin = _login(client, pop, "admin")
        r = client.post(path, headers=admin)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["device_id"], body["site_id"]) == (dev.device_id, dev.site_id)
        assert body["removed_from_broker"] is True, body
        assert _state(database_url, dev.device_id) == RETIRED
        wait_until(
            lambda: not can_connect(services, dev.device_id, dev.password),
            what="the broker refusing the retired device",
        )
        again = client.post(path, headers=admin)
        assert again.status_code == 409
        assert "设备已停用" in again.json()["detail"]
        unknown = client.post("/api/admin/devices/no-such-device/retire", headers=admin)
        assert unknown.status_code == 404
        assert client.post("/api/admin/devices/bad%20id/retire", headers=admin).status_code == 422


def test_without_the_broker_admin_password_the_api_says_the_broker_still_knows_it(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    dev = _personal(pop)
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        r = client.post(
            f"/api/admin/devices/{dev.device_id}/retire", headers=_login(client, pop, "admin")
        )
    assert r.status_code == 200, r.text
    assert r.json()["removed_from_broker"] is False
    assert "broker-sync --reload" in r.json()["broker_note"]
    assert _state(database_url, dev.device_id) == RETIRED


def _cli(services: Services, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env |= {
        "ELDERCARE_DATABASE_URL": url,
        "ELDERCARE_MQTT_PORT": str(services.broker.port),
        "ELDERCARE_BROKER_ADMIN_PASSWORD": services.admin_password,
    }
    return subprocess.run(
        [sys.executable, "-m", "devices", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_retires_a_device_and_refuses_unknown_or_retired_ones(
    services: Services, database_url: str
) -> None:
    pop = seed(services, database_url)
    dev = _personal(pop)
    done = _cli(services, database_url, "retire", "--device-id", dev.device_id)
    assert done.returncode == 0, done.stderr
    assert f"device {dev.device_id} of site {dev.site_id} retired" in done.stdout
    assert "removed from the running broker" in done.stdout
    assert _state(database_url, dev.device_id) == RETIRED
    assert not can_connect(services, dev.device_id, dev.password)
    again = _cli(services, database_url, "retire", "--device-id", dev.device_id)
    assert again.returncode == 1
    assert "was retired at" in again.stderr
    unknown = _cli(services, database_url, "retire", "--device-id", "nope-1")
    assert unknown.returncode == 1
    assert "no device 'nope-1'" in unknown.stderr
