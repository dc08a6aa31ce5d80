#!/usr/bin/env bash
# The one test command: set up what is missing (services, TimescaleDB, Python env), run the
# checks, then the whole test suite against real PostgreSQL+TimescaleDB and Mosquitto that
# the tests start themselves. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/check.sh
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
