"""Issue 18: the API refuses what it should (findings 6, 7 and 10)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.notify.channels import DeliveryFailed, Outgoing, WebhookChannel
from alerts.notify.egress import Refused, is_public, resolve_public
from dashboard_api.app import create_app
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.notify_servers import http_sink
from tests.services import Services, query, seed
from tests.test_api import _login

World = tuple[TestClient, DemoPopulation, str]


@pytest.fixture
def world(services: Services, database_url: str) -> Iterator[World]:
    pop = seed(services, database_url)
    settings = Settings(database_url=database_url, webhook_allow_hosts=frozenset())
    with TestClient(create_app(settings)) as client:
        yield client, pop, database_url


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 - an address to refuse, not to bind
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_only_global_addresses_are_public(ip: str, public: bool) -> None:
    assert is_public(ip) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost:8000/api/admin",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "ftp://example.cn/x",
        "http://user:pw@example.cn/x",
    ],
)
def test_internal_webhooks_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        asyncio.run(resolve_public(url, frozenset()))


def test_an_allow_listed_host_passes_unpinned() -> None:
    target = asyncio.run(resolve_public("http://127.0.0.1:9/x", frozenset({"127.0.0.1"})))
    assert target.url == "http://127.0.0.1:9/x"
    assert not target.pinned


def test_a_family_cannot_save_a_webhook_to_an_internal_address(world: World) -> None:
    client, pop, _url = world
    family = _login(client, pop, "family-home17")
    for address in ("http://127.0.0.1:5432/", "http://localhost:8000/api/orders"):
        r = client.put(
            "/api/notifications/preferences",
            headers=family,
            json={"channels": [{"kind": "webhook", "address": address}]},
        )
        assert r.status_code == 422, r.text
        assert "public addresses only" in r.text


def _outgoing(address: str) -> Outgoing:
    return Outgoing(
        delivery_id=1,
        address=address,
        subject="s",
        text="t",
        payload={"kind": "sos"},
        secret="k",
        timestamp=1,
    )


def test_delivery_to_an_internal_address_is_refused_and_reaches_nothing() -> None:
    """Saved before the rules, or a name that now resolves inside: refused at send time."""

    async def go(url: str) -> str:
        async with httpx2.AsyncClient() as client:
            with pytest.raises(DeliveryFailed) as failed:
                await WebhookChannel(client).send(_outgoing(url))
            return failed.value.receipt

    with http_sink() as sink:
        receipt = asyncio.run(go(sink.url))
        assert receipt.startswith("refused:")
        assert sink.received == []


def test_the_other_sides_answer_is_never_shown_back() -> None:
    async def go(url: str) -> tuple[str, str]:
        async with httpx2.AsyncClient() as client:
            hook = WebhookChannel(client, allow_hosts=frozenset({"127.0.0.1"}))
            ok = await hook.send(_outgoing(url))
            return ok, url

    with http_sink(answer={"internal": "db password hunter2"}) as sink:
        ok, _ = asyncio.run(go(sink.url))
        assert ok == "HTTP 200"
    with http_sink(status=500, answer={"internal": "stack trace"}) as sink:

        async def fail() -> str:
            async with httpx2.AsyncClient() as client:
                hook = WebhookChannel(client, allow_hosts=frozenset({"127.0.0.1"}))
                with pytest.raises(DeliveryFailed) as failed:
                    await hook.send(_outgoing(sink.url))
                return failed.value.receipt

        assert asyncio.run(fail()) == "HTTP 500"


@pytest.mark.parametrize("text", ["note\x00with nul", "bell\x07", "esc\x1b[31m", "c1\x85"])
def test_control_characters_in_order_texts_are_422(world: World, text: str) -> None:
    client, pop, _url = world
    staff = _login(client, pop, "staff-homes")
    r = client.post(
        "/api/orders",
        headers=staff,
        json={"site_id": "home-17", "category": "meal", "note": text},
    )
    assert r.status_code == 422, r.text
    [order] = client.get("/api/orders", headers=staff).json()[:1] or [None]
    if order is not None:
        r = client.post(
            f"/api/orders/{order['order_id']}/cancel", headers=staff, json={"reason": text}
        )
        assert r.status_code == 422, r.text


def test_line_breaks_in_a_note_are_kept(world: World) -> None:
    client, pop, _url = world
    staff = _login(client, pop, "staff-homes")
    r = client.post(
        "/api/orders",
        headers=staff,
        json={"site_id": "home-17", "category": "meal", "note": "午饭\n少盐\t谢谢"},
    )
    assert r.status_code in (200, 201), r.text
    r = client.post(
        f"/api/orders/{r.json()['order_id']}/cancel", headers=staff, json={"reason": "a\x00b"}
    )
    assert r.status_code == 422, r.text


def test_absurd_stored_readings_do_not_break_the_timeline(world: World) -> None:
    """Finding 7: one heart rate of -1e308 in the database made the timeline 500 for every
    role (numeric overflow in the average); readings outside physical bounds are left out."""
    client, pop, url = world
    [row] = query(
        url,
        "SELECT a.device_key, a.resident_id FROM device_assignments a JOIN devices d "
        "USING (device_key) WHERE d.kind = 'wristband' AND upper_inf(a.during) "
        "ORDER BY d.device_id LIMIT 1",
    )
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        for i, v in enumerate((-1e308, 1e308, 72.0, 1e300)):
            conn.execute(
                "INSERT INTO telemetry (device_key, metric, time, value) VALUES (%s, 'hr', %s, %s)",
                (row["device_key"], now - timedelta(minutes=5 + i), v),
            )
    admin = _login(client, pop, "admin")
    r = client.get(f"/api/residents/{row['resident_id']}/timeline", headers=admin)
    assert r.status_code == 200, r.text
    hr = [p for p in r.json()["points"] if p.get("hr_avg") is not None]
    assert hr, r.json()
    assert all(30 <= p["hr_avg"] <= 250 for p in hr)
    assert (
        client.get(f"/api/residents/{row['resident_id']}/status", headers=admin).status_code == 200
    )
