from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.services import Services, clear_retained, fresh_database, start_services


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
