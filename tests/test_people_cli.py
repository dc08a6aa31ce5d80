"""Setting up a real site from the CLI (``python -m devices site|resident|user``), against the
real database: the accounts it makes sign in through the API and see what their role allows, a
family only its own relative; what it refuses, it refuses with a reason and exit code 1."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from alerts.dispatch.escalation import offer_opened
from alerts.dispatch.orders import open_order
from alerts.dispatch.policy import policy_from_settings
from dashboard_api.app import create_app
from devices.__main__ import app
from devices.domain import Colour
from devices.registry import Conn
from devices.settings import Settings
from tests.dispatch_world import arun
from tests.services import ROOT, query

pytestmark = pytest.mark.integration
POLICY = policy_from_settings(Settings())


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", database_url)
    return CliRunner()


def _ok(cli: CliRunner, *args: str, stdin: str | None = None) -> str:
    r = cli.invoke(app, list(args), input=stdin)
    assert r.exit_code == 0, (args, r.output)
    return r.output


def _refused(cli: CliRunner, *args: str, stdin: str | None = None) -> str:
    r = cli.invoke(app, list(args), input=stdin)
    assert r.exit_code == 1, (args, r.output)
    return r.output


def _resident(cli: CliRunner, site: str, name: str) -> int:
    out = _ok(cli, "resident", "add", "--site", site, "--name", name)
    m = re.search(r"resident (\d+) admitted", out)
    assert m is not None, out
    return int(m[1])


def _sign_in(client: TestClient, username: str, password: str) -> dict[str, str] | None:
    r = client.post("/api/auth/token", data={"username": username, "password": password})
    if r.status_code != 200:
        return None
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_site_its_residents_and_their_family_set_up_from_the_cli(
    cli: CliRunner, database_url: str
) -> None:
    _ok(cli, "site", "add", "--site-id", "jade", "--name", "翠苑养老院", "--kind", "nursing_home")
    assert "already exists" in _refused(
        cli, "site", "add", "--site-id", "jade", "--name", "again", "--kind", "nursing_home"
    )
    assert "not an IANA time zone" in _refused(cli, "site", "add", "--site-id", "x", "--name", "x",
                                               "--kind", "nursing_home", "--timezone", "Mars/Base")  # fmt: skip
    ids = []
    for name in ("王秀英", "李建国"):
        out = _ok(cli, "resident", "add", "--site", "jade", "--name", name, "--birth-year", "1938")
        ids.append(int(re.search(r"resident (\d+) admitted", out)[1]))  # type: ignore[index]
    assert "no such site" in _refused(cli, "resident", "add", "--site", "nowhere", "--name", "x")
    assert "not a year of birth" in _refused(
        cli, "resident", "add", "--site", "jade", "--name", "x", "--birth-year", "1850"
    )

    out = _ok(cli, "user", "add", "--username", "wang-son", "--role", "family",
              "--resident", str(ids[0]))  # fmt: skip
    password = re.search(r"password (\S+) \(shown once\)", out)[1]  # type: ignore[index]
    _ok(cli, "user", "add", "--username", "jade-nurse", "--role", "staff", "--site", "jade",
        "--password-stdin", stdin="a long nurse password\n")  # fmt: skip
    [stored] = query(database_url, "SELECT password_hash FROM users WHERE username = 'wang-son'")
    assert password not in stored["password_hash"]
    assert stored["password_hash"].startswith("$argon2")

    # what it refuses
    assert "needs at least one --site" in _refused(
        cli, "user", "add", "--username", "x", "--role", "staff"
    )
    assert "needs at least one --resident" in _refused(
        cli, "user", "add", "--username", "x", "--role", "family"
    )
    assert "family accounts only" in _refused(
        cli, "user", "add", "--username", "x", "--role", "staff", "--site", "jade",
        "--resident", str(ids[0]),
    )  # fmt: skip
    assert "no such site or resident" in _refused(
        cli, "user", "add", "--username", "x", "--role", "family", "--resident", "999999"
    )
    assert "at least 12 characters" in _refused(
        cli, "user", "add", "--username", "x", "--role", "admin", "--password-stdin",
        stdin="short\n",
    )  # fmt: skip
    assert "roster entry" in _refused(cli, "user", "add", "--username", "x", "--role", "responder")
    assert "already exists" in _refused(
        cli, "user", "add", "--username", "wang-son", "--role", "admin"
    )
    assert not query(database_url, "SELECT 1 FROM users WHERE username = 'x'")

    with TestClient(create_app(Settings(database_url=database_url))) as client:
        son = _sign_in(client, "wang-son", password)
        nurse = _sign_in(client, "jade-nurse", "a long nurse password")
        assert son is not None
        assert nurse is not None
        seen = {r["resident_id"] for r in client.get("/api/residents", headers=son).json()}
        assert seen == {ids[0]}  # a family sees only its own relative
        assert client.get(f"/api/residents/{ids[1]}", headers=son).status_code in (403, 404)
        seen = {r["resident_id"] for r in client.get("/api/residents", headers=nurse).json()}
        assert seen == set(ids)

        out = _ok(cli, "user", "disable", "--username", "wang-son")
        assert "1 sessions ended" in out
        assert client.get("/api/residents", headers=son).status_code == 401
        assert _sign_in(client, "wang-son", password) is None
        assert "no enabled account" in _refused(cli, "user", "disable", "--username", "wang-son")


def test_the_commands_are_the_real_entry_point() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "devices", "user", "add", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "--password-stdin" in r.stdout


def test_a_roster_from_the_cli_is_offered_the_sites_red_order(
    cli: CliRunner, database_url: str
) -> None:
    _ok(cli, "site", "add", "--site-id", "jade", "--name", "翠苑", "--kind", "nursing_home")
    _ok(cli, "user", "add", "--username", "carer-li", "--role", "staff", "--site", "jade")
    out = _ok(cli, "responder", "add", "--name", "李护工", "--kind", "staff", "--level", "1",
              "--site", "jade", "--username", "carer-li")  # fmt: skip
    carer = int(re.search(r"responder (\d+)", out)[1])  # type: ignore[index]
    out = _ok(cli, "responder", "add", "--name", "Pinghu provider", "--kind", "provider",
              "--level", "1", "--community", "pinghu", "--new-account", "provider-1")  # fmt: skip
    assert re.search(r"account provider-1, password \S+ \(shown once\)", out)
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=8)).isoformat()
    _ok(cli, "responder", "shift", "--responder-id", str(carer), "--start", start, "--end", end)

    assert "overlapping" in _refused(cli, "responder", "shift", "--responder-id", str(carer),
                                     "--start", now.isoformat(), "--end", end)  # fmt: skip
    assert "UTC offset" in _refused(cli, "responder", "shift", "--responder-id", str(carer),
                                    "--start", "2026-12-05T08:00", "--end", end)  # fmt: skip
    assert "covers a --site or a --community" in _refused(
        cli, "responder", "add", "--name", "x", "--kind", "staff", "--level", "1"
    )
    assert "no such site" in _refused(
        cli, "responder", "add", "--name", "x", "--kind", "staff", "--level", "1", "--site", "nope"
    )
    assert "responder add --new-account" in _refused(
        cli, "user", "add", "--username", "x", "--role", "responder"
    )

    async def open_and_offer(c: Conn) -> None:
        await open_order(c, alert_id=None, site_id="jade", resident_id=None, colour=Colour.RED,
                         category="sos", event_at=now, now=now, policy=POLICY)  # fmt: skip
        await offer_opened(c, now)

    arun(database_url, open_and_offer)
    offers = query(database_url, "SELECT responder_id FROM order_offers")
    assert [o["responder_id"] for o in offers] == [carer]  # on shift, covering the site


def test_a_visitor_from_the_cli_sees_only_the_residents_staff_assign_to_it(
    cli: CliRunner, database_url: str
) -> None:
    _ok(cli, "site", "add", "--site-id", "home-9", "--name", "王家", "--kind", "home_care_bed",
        "--community", "pinghu-west")  # fmt: skip
    ids = [_resident(cli, "home-9", name) for name in ("王秀英", "王大明")]
    _ok(cli, "user", "add", "--username", "staff-9", "--role", "staff", "--site", "home-9",
        "--password-stdin", stdin="a long staff password\n")  # fmt: skip
    out = _ok(cli, "visitor", "add", "--username", "visitor-west", "--kind", "community_worker",
              "--community", "pinghu-west")  # fmt: skip
    m = re.search(r"id (\d+)\) created, password (\S+) \(shown once\)", out)
    assert m is not None, out
    visitor_id, password = int(m[1]), m[2]
    assert "--kind is one of" in _refused(cli, "visitor", "add", "--username", "v2", "--kind",
                                          "neighbour", "--community", "pinghu-west")  # fmt: skip
    assert "visitor add" in _refused(cli, "user", "add", "--username", "v3", "--role", "visitor")

    with TestClient(create_app(Settings(database_url=database_url))) as client:
        staff = _sign_in(client, "staff-9", "a long staff password")
        visitor = _sign_in(client, "visitor-west", password)
        assert staff is not None
        assert visitor is not None
        for rid in ids:
            r = client.put(f"/api/care/residents/{rid}/flags", headers=staff,
                           json={"flags": ["living_alone"], "visits_per_month": 1})  # fmt: skip
            assert r.status_code == 204, r.text
        r = client.put(f"/api/care/residents/{ids[0]}/visitor", headers=staff,
                       json={"visitor_user_id": visitor_id})  # fmt: skip
        assert r.status_code == 204, r.text
        plan = client.get("/api/care/plan", headers=visitor)
        assert plan.status_code == 200, plan.text
        assert [e["resident_id"] for e in plan.json()] == [ids[0]]
