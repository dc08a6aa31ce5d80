from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.services import Services, clear_retained, fresh_database, start_services

# The tests' webhook sinks listen on 127.0.0.1, which a family's webhook may not reach unless an
# administrator allow-lists it (tests/test_api_hostile.py shows the refusal with no allow-list).
os.environ.setdefault("ELDERCARE_WEBHOOK_ALLOW_HOSTS", '["127.0.0.1"]')


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
