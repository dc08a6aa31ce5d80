"""Schema-driven fuzzing (schemathesis) of every documented operation against a live server
with a signed-in admin over the seeded demo: no request may produce a server error, and
every answer must match its documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from dashboard_api.app import create_app
from devices.settings import Settings
from tests.http import HTTP
from tests.live_server import serve
from tests.services import Services, fresh_database, seed
from tests.test_api import _raise_sos

EXCLUDED = {"/api/live", "/api/auth/logout"}  # an endless stream; revoking the fuzzer's token
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
OPERATIONS = {
    op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations()) if op.path not in EXCLUDED
}


@pytest.fixture(scope="module")
def live_api(services: Services) -> Iterator[tuple[str, str]]:
    with fresh_database(services) as url:
        pop = seed(services, url)
        for device in ("btn-0042", "wb-s01"):
            _raise_sos(url, device)
        with serve(url) as base:
            admin = next(u for u in pop.users if u.username == "admin")
            r = HTTP.post(
                f"{base}/api/auth/token", data={"username": "admin", "password": admin.password}
            )
            yield base, str(r.json()["access_token"])


def test_the_fuzzer_sees_the_api() -> None:
    assert len(OPERATIONS) >= 15


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_errors(label: str, live_api: tuple[str, str]) -> None:
    base, token = live_api

    @given(data=st.data())
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(data: st.DataObject) -> None:
        op = OPERATIONS[label]
        case = data.draw(
            st.one_of(
                op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)
            )
        )
        case.call_and_validate(
            base_url=base,
            headers={"Authorization": f"Bearer {token}"},
            checks=[not_a_server_error, response_schema_conformance],
            timeout=10,
        )

    run()
