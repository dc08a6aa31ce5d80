from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.services import Services, clear_retained, fresh_database, start_services

# The tests' webhook sinks listen on 127.0.0.1, which a family's webhook may not reach unless an
# administrator allow-lists it (tests/test_api_hostile.py shows the refusal with no allow-list).
os.environ.setdefault("ELDERCARE_WEBHOOK_ALLOW_HOSTS", '["127.0.0.1"]')

# Runs of the whole main job judged on timing (event -> offer p99 under faults, restart
# times): scripts/test.sh runs them after the parallel part, two at a time (they mostly wait
# on their scenarios' clocks), so the other tests' load does not decide their figures.
SERIAL_MODULES = frozenset(
    {
        "test_chaos",
        "test_conformance",
        "test_production_shape",
        "test_run_script",
        "test_two_workers",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    s = start_services()
    try:
        yield s
    finally:
        s.broker.stop()
        s.pg.stop()
        shutil.rmtree(s.base, ignore_errors=True)  # the cluster and broker files of this session


@pytest.fixture
def database_url(services: Services) -> Iterator[str]:
    with fresh_database(services) as url:
        yield url
    clear_retained(services)
