"""Every endpoint x every role, from the app's own route list: a new endpoint without an
entry in RULES fails here. Objects of three residents are tried: X (home-17, the family's
relative), Y (home-18: same staff, another family) and Z (sunrise: another site). The 96345
centre's operator sees every site's orders and figures, enters service orders anywhere, looks
residents up on the console, and is refused everything else (health, family, care, admin)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from psycopg.rows import dict_row

from dashboard_api.app import create_app
from devices.accounts import create_user, hash_password
from devices.domain import Role
from devices.settings import Settings
from devtools.seed import DemoPopulation
from tests.http import HTTP
from tests.live_server import serve
from tests.services import Services, fresh_database, query, seed
from tests.test_api import _raise_sos

ROLES = (
    "anon",
    "admin",
    "staff_a",
    "staff_b",
    "family_x",
    "visitor_xy",
    "officer_z",
    "reader",
    "operator",
)
USERS = {
    "admin": "admin",
    "staff_a": "staff-homes",
    "staff_b": "staff-sunrise",
    "family_x": "family-home17",
    "visitor_xy": "visitor-west",  # a community worker assigned to X and Y (issue 15)
    "officer_z": "safety-sunrise",  # the safety officer of Z's site
    "reader": "reader",  # the bureau's report reader: figures, no personal details
    "operator": "operator-96345",  # the 96345 centre (issue 14 item 4)
}
CARE_ONLY = ("family_x", "visitor_xy", "officer_z", "reader", "operator")  # no care-staff rights
SITES = {"admin": None, "staff_a": {"home-17", "home-18", "home-19"}, "staff_b": {"sunrise"}}
# what a list answer may hold for the other roles
LIST_SCOPE: dict[str, set[str]] = {
    "family_x": {"home-17"},
    "visitor_xy": {"home-17", "home-18"},
    "officer_z": {"sunrise"},
    "reader": set(),
    "operator": set(),  # nothing by default; every site only where CENTRE_WIDE says so
}
# answers in which the operator may see every site (the order board and the figures)
CENTRE_WIDE = {"/api/orders", "/api/console/orders", "/api/console/residents"}
TARGETS = {"X": "home-17", "Y": "home-18", "Z": "sunrise"}
OK = "ok"  # passed authorization: 2xx, or a 409 from the order's state


def public(role: str, target: str | None) -> int | str:
    return OK


def signed_in(role: str, target: str | None) -> int | str:
    return 401 if role == "anon" else OK


def staff(role: str, target: str | None) -> int | str:
    return 401 if role == "anon" else 403 if role in CARE_ONLY else OK


def scoped(role: str, target: str | None) -> int | str:
    """Any signed-in user, but only objects in their scope; others look missing."""
    if role == "anon":
        return 401
    assert target is not None
    if role == "family_x":
        return OK if target == "X" else 404
    if role not in SITES:  # resident-scoped roles without family links see no one
        return 404
    sites = SITES[role]
    return OK if sites is None or TARGETS[target] in sites else 404


def staff_scoped(role: str, target: str | None) -> int | str:
    return 403 if role in CARE_ONLY else scoped(role, target)


def family_only(role: str, target: str | None) -> int | str:
    """A family member's own settings: nobody else has any."""
    return {"anon": 401, "family_x": OK}.get(role, 403)


def family_scoped(role: str, target: str | None) -> int | str:
    """A family member, about their own relative; staff have nothing to mark read."""
    if role in ("anon", "family_x"):
        return scoped(role, target)
    return 403


def staff_for_home17(role: str, target: str | None) -> int | str:
    """A service order for home-17 (BODIES): staff of other sites may not open one there; the
    centre's operator may anywhere."""
    if role == "operator":
        return OK
    if role in CARE_ONLY:
        return 403
    return {"anon": 401, "staff_b": 404}.get(role, OK)


def order_read(role: str, target: str | None) -> int | str:
    """Reading an order and its trail: its staff, and the centre's operator for every site."""
    return OK if role == "operator" else staff_scoped(role, target)


def hotline(role: str, target: str | None) -> int | str:
    """The order list and the time-to-help figures: care staff and the centre's operator."""
    return OK if role == "operator" else staff(role, target)


def centre(role: str, target: str | None) -> int | str:
    """The centre console's own reads (the board, the resident look-up): operators, admins."""
    return {"anon": 401, "admin": OK, "operator": OK}.get(role, 403)


def admin_only(role: str, target: str | None) -> int | str:
    """Administration (the simulated clock answers 409 on a backend that does not allow it)."""
    return {"anon": 401, "admin": OK}.get(role, 403)


def admin_missing(role: str, target: str | None) -> int | str:
    """Administration of an object that does not exist (a quarantined item): 404 for admins."""
    return {"anon": 401, "admin": 404}.get(role, 403)


def not_enabled(role: str, target: str | None) -> int | str:
    """Prometheus metrics: off without ELDERCARE_METRICS_TOKEN, whoever asks."""
    return 404


def care(role: str, target: str | None) -> int | str:
    """The visit plan: care staff and visitors (each sees their own part of it)."""
    return {"anon": 401, "family_x": 403, "officer_z": 403, "reader": 403, "operator": 403}.get(
        role, OK
    )


def care_scoped(role: str, target: str | None) -> int | str:
    """One priority resident: staff of their site, or the visitor assigned to them."""
    if role == "visitor_xy":
        return OK if target in ("X", "Y") else 404
    return staff_scoped(role, target)


def safety_role(role: str, target: str | None) -> int | str:
    """Safety findings: care staff and safety officers (each their sites)."""
    refused = ("family_x", "visitor_xy", "reader", "operator")
    return {"anon": 401, **dict.fromkeys(refused, 403)}.get(role, OK)


def safety_site(role: str, target: str | None) -> int | str:
    """One site's rounds: its staff and its safety officer."""
    if role == "officer_z":
        return OK if target == "Z" else 404
    return staff_scoped(role, target)


def report_reader(role: str, target: str | None) -> int | str:
    """The bureau's figures (no personal details): report readers and admins."""
    return {"anon": 401, "admin": OK, "reader": OK}.get(role, 403)


Rule = Callable[[str, str | None], int | str]
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): public,
    ("GET", "/healthz"): public,
    ("GET", "/login"): public,
    ("GET", "/station"): public,  # static shells; every byte of data comes from the API
    ("GET", "/family"): public,
    ("GET", "/console"): public,
    ("GET", "/api/console/orders"): centre,
    ("GET", "/api/console/residents"): centre,
    ("GET", "/wall-tv"): public,
    ("GET", "/docs"): public,  # Swagger UI, served locally
    ("GET", "/i18n/zh-CN.json"): public,  # the message catalogue: the sign-in page needs it
    ("GET", "/i18n/en.json"): public,
    ("PUT", "/api/me/locale"): signed_in,
    ("GET", "/api/wall"): staff,
    ("POST", "/api/auth/token"): signed_in,  # anonymous = wrong password
    ("POST", "/api/auth/logout"): signed_in,
    ("GET", "/api/me"): signed_in,
    ("GET", "/api/sites"): signed_in,
    ("GET", "/api/residents"): signed_in,
    ("GET", "/api/residents/{resident_id}"): scoped,
    ("GET", "/api/residents/{resident_id}/timeline"): scoped,
    ("GET", "/api/residents/{resident_id}/status"): scoped,
    ("GET", "/api/residents/{resident_id}/watch"): scoped,
    ("GET", "/api/devices"): staff,
    ("GET", "/api/device-health"): staff,
    ("GET", "/api/alerts"): signed_in,
    ("GET", "/api/alerts/{alert_id}"): scoped,
    ("GET", "/api/orders"): hotline,
    ("POST", "/api/orders"): staff_for_home17,
    ("GET", "/api/orders/{order_id}"): order_read,
    ("GET", "/api/orders/{order_id}/trail"): order_read,
    ("POST", "/api/orders/{order_id}/accept"): staff_scoped,
    ("POST", "/api/orders/{order_id}/en-route"): staff_scoped,
    ("POST", "/api/orders/{order_id}/on-site"): staff_scoped,
    ("POST", "/api/orders/{order_id}/resolve"): staff_scoped,
    ("POST", "/api/orders/{order_id}/cancel"): staff_scoped,
    ("GET", "/api/figures/time-to-help"): hotline,
    ("GET", "/api/notifications/preferences"): family_only,
    ("PUT", "/api/notifications/preferences"): family_only,
    ("GET", "/api/notifications/users/{user_id}/preferences"): scoped,
    ("GET", "/api/notifications/deliveries"): signed_in,
    ("POST", "/api/notifications/alerts/{alert_id}/read"): family_scoped,
    ("GET", "/api/stats/today"): staff,
    ("POST", "/api/live/ticket"): signed_in,
    ("GET", "/api/live"): signed_in,
    ("GET", "/api/admin/sim-clock"): admin_only,
    ("PUT", "/api/admin/sim-clock"): admin_only,
    ("DELETE", "/api/admin/sim-clock"): admin_only,
    ("GET", "/readyz"): public,
    ("GET", "/metrics"): not_enabled,
    # SMS providers' reply callbacks: off without ELDERCARE_INBOUND_SMS_TOKEN, whoever asks
    ("POST", "/api/inbound/sms/aliyun"): not_enabled,
    ("POST", "/api/inbound/sms/tencent"): not_enabled,
    ("POST", "/api/inbound/sms/gateway"): not_enabled,
    ("GET", "/api/technical-alerts"): staff,
    ("GET", "/api/admin/quarantine"): admin_only,
    ("POST", "/api/admin/quarantine/{item_id}/resolve"): admin_missing,
    ("POST", "/api/admin/devices/{device_id}/retire"): admin_missing,  # never a real device here
    ("GET", "/visits"): public,
    ("GET", "/api/care/plan"): care,
    ("GET", "/api/care/overdue"): care,
    ("GET", "/api/care/visit-rate"): care,
    ("PUT", "/api/care/residents/{resident_id}/flags"): staff_scoped,
    ("PUT", "/api/care/residents/{resident_id}/visitor"): staff_scoped,  # 409: not a visitor
    ("POST", "/api/care/residents/{resident_id}/visits"): care_scoped,
    ("GET", "/api/care/residents/{resident_id}/visits"): care_scoped,
    ("GET", "/safety"): public,
    ("GET", "/api/reports/monthly"): report_reader,
    ("GET", "/api/safety/sites/{site_id}/checklist"): safety_site,
    ("POST", "/api/safety/sites/{site_id}/checklist"): safety_site,
    ("POST", "/api/safety/sites/{site_id}/rounds"): safety_site,  # 409: not on the checklist
    ("GET", "/api/safety/sites/{site_id}/rounds"): safety_site,
    ("GET", "/api/safety/findings"): safety_role,
    ("PATCH", "/api/safety/findings/{finding_id}"): safety_site,  # 409 once closed
    ("POST", "/api/safety/findings/{finding_id}/close"): safety_site,
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PUT", "/api/admin/sim-clock"): {"sim_origin": "2026-11-23T00:00:00+00:00", "speed": 10},
    ("POST", "/api/orders/{order_id}/resolve"): {"outcome": "false_alarm"},
    ("POST", "/api/orders/{order_id}/cancel"): {"reason": "resident called: all well"},
    ("POST", "/api/orders"): {"site_id": "home-17", "category": "meal"},
    ("PUT", "/api/notifications/preferences"): {"colours": ["red"]},
    ("POST", "/api/admin/quarantine/{item_id}/resolve"): {"note": "checked"},
    ("PUT", "/api/care/residents/{resident_id}/flags"): {"flags": ["living_alone"]},
    ("POST", "/api/safety/sites/{site_id}/checklist"): {"item_key": "garden_gate", "label": "x"},
    ("POST", "/api/safety/sites/{site_id}/rounds"): {
        "results": [{"item_key": "fire_exits", "ok": False, "note": "blocked"}]
    },
    ("PATCH", "/api/safety/findings/{finding_id}"): {"owner": "facilities"},
    ("POST", "/api/safety/findings/{finding_id}/close"): {"note": "cleared"},
    ("PUT", "/api/care/residents/{resident_id}/visitor"): {"visitor_user_id": 1},
    ("POST", "/api/care/residents/{resident_id}/visits"): {
        k: True for k in ("eating_ok", "mobility_ok", "mood_ok", "home_safety_ok", "devices_ok")
    },
    ("PUT", "/api/me/locale"): {"locale": None},
}

# a query string where a route needs one (a name that several sites' residents share a part of)
QUERIES = {("GET", "/api/console/residents"): "?q=an"}


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers flattened."""
    found: set[tuple[str, str]] = set()
    for r in create_app(Settings()).routes:
        contexts = r.effective_route_contexts() if hasattr(r, "effective_route_contexts") else [r]
        for c in contexts:
            if isinstance(c, APIRoute) or isinstance(getattr(c, "original_route", None), APIRoute):
                found.update((m, c.path) for m in c.methods if m != "HEAD")
    return sorted(found)


def test_every_route_has_a_rule() -> None:
    assert set(app_routes()) == set(RULES), "add the new endpoint to RULES"


@dataclass
class World:
    base: str
    pop: DemoPopulation
    tokens: dict[str, str]
    ids: dict[str, dict[str, Any]]  # target -> {resident_id, alert_id, order_id, site_id, ...}

    def login(self, role: str) -> str:
        user = next(u for u in self.pop.users if u.username == USERS[role])
        r = HTTP.post(
            f"{self.base}/api/auth/token",
            data={"username": user.username, "password": user.password},
        )
        assert r.status_code == 200
        return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def world(services: Services) -> Iterator[World]:
    with fresh_database(services) as url:
        pop = seed(services, url)
        ids: dict[str, dict[str, Any]] = {}
        for target, device in (("X", "btn-0042"), ("Y", "btn-0043"), ("Z", "wb-s01")):
            _raise_sos(url, device)
            row = query(
                url,
                "SELECT o.order_id, o.alert_id, o.resident_id FROM dispatch_orders o "
                "JOIN devices d ON d.site_id = o.site_id WHERE d.device_id = %s",
                (device,),
            )[0]
            # no such quarantined item, no such device (the matrix retires nothing real)
            ids[target] = dict(row) | {"item_id": 999_999, "device_id": "no-such-device"}
        ids["X"]["user_id"] = query(
            url, "SELECT user_id FROM users WHERE username = 'family-home17'"
        )[0]["user_id"]
        for target, site in TARGETS.items():  # a site and a safety finding per target
            ids[target]["site_id"] = site
            ids[target]["finding_id"] = query(
                url,
                "INSERT INTO safety_findings (idem_key, site_id, source, item_key, kind, "
                "description, deadline, opened_at) VALUES (%s, %s, 'round', 'fire_exits', "
                "'blocked', 'matrix', now() + interval '7 days', now()) RETURNING finding_id",
                (f"matrix:{target}", site),
            )[0]["finding_id"]
        for target in ("Y", "Z"):  # a family member for each other resident
            ids[target]["user_id"] = _family_user(
                url, f"family-{target}", ids[target]["resident_id"]
            )
        with serve(url) as base:
            w = World(base, pop, {}, ids)
            w.tokens = {role: w.login(role) for role in USERS}
            yield w


def _family_user(url: str, username: str, resident_id: int) -> int:
    async def go() -> int:
        async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
            user_id = await create_user(
                conn,
                username=username,
                password_hash=hash_password("family-pw-not-used"),
                role=Role.FAMILY,
                resident_ids=(resident_id,),
            )
            await conn.commit()
            return user_id

    return asyncio.run(go())


def _status(w: World, role: str, method: str, path: str, target: str | None) -> int:
    url = w.base + path.format(**(w.ids[target] if target else {}))
    token = w.login(role) if path == "/api/auth/logout" and role != "anon" else w.tokens.get(role)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path == "/api/auth/token":
        user = next((u for u in w.pop.users if u.username == USERS.get(role)), None)
        form = {"username": "admin", "password": user.password if user else "guess"}
        form["username"] = user.username if user else "admin"
        return HTTP.post(url, data=form).status_code
    if path == "/api/live":
        return asyncio.run(_stream_status(url, headers))
    url += QUERIES.get((method, path), "")
    r = HTTP.request(method, url, headers=headers, json=BODIES.get((method, path)), timeout=10)
    if r.status_code == 200 and r.headers.get("content-type", "").startswith("application/json"):
        _check_list_scope(role, path, r.json())
    return r.status_code


async def _stream_status(url: str, headers: dict[str, str]) -> int:
    async with httpx.AsyncClient(timeout=5) as c, c.stream("GET", url, headers=headers) as r:
        return r.status_code


def _check_list_scope(role: str, path: str, body: Any) -> None:
    """Nothing in a list answer lies outside the caller's sites."""
    if not isinstance(body, list):
        return
    allowed = LIST_SCOPE.get(role, SITES.get(role))
    if role == "operator" and path in CENTRE_WIDE:
        allowed = None
    seen = {item["site_id"] for item in body if isinstance(item, dict) and "site_id" in item}
    assert allowed is None or seen <= allowed, (role, seen)


@pytest.mark.parametrize(("method", "path"), app_routes())
@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(world: World, method: str, path: str, role: str) -> None:
    rule = RULES[(method, path)]
    targets: list[str | None] = list(TARGETS) if "{" in path else [None]
    for target in targets:
        expected = rule(role, target)
        got = _status(world, role, method, path, target)
        if expected == OK:
            assert got < 400 or got == 409, (method, path, role, target, got)
        else:
            assert got == expected, (method, path, role, target, got)


def test_the_operator_sees_every_site_but_only_the_look_up_fields(world: World) -> None:
    """Not vacuous: the board and the order list hold orders of both kinds of site, and the
    look-up answers id, name, site, community, address and phone, nothing about health."""
    headers = {"Authorization": f"Bearer {world.tokens['operator']}"}
    for path in ("/api/orders", "/api/console/orders"):
        r = HTTP.get(world.base + path, headers=headers)
        assert r.status_code == 200
        assert {o["site_id"] for o in r.json()} >= set(TARGETS.values()), path
    r = HTTP.get(world.base + "/api/console/residents?q=an", headers=headers)
    assert r.status_code == 200
    found = r.json()
    assert {m["site_id"] for m in found} >= {"sunrise", "home-18"}
    assert all(
        set(m)
        == {"resident_id", "full_name", "site_id", "site_name", "community", "address", "phone"}
        for m in found
    )
    staff = {"Authorization": f"Bearer {world.tokens['staff_a']}"}
    assert HTTP.get(world.base + "/api/orders", headers=staff).json()  # staff: their sites
    assert {o["site_id"] for o in HTTP.get(world.base + "/api/orders", headers=staff).json()} <= (
        SITES["staff_a"] or set()
    )
