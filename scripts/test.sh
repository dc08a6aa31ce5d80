#!/usr/bin/env bash
# The one test command: set up what is missing (services, TimescaleDB, Python env), run the
# checks, then the whole test suite against real PostgreSQL+TimescaleDB and Mosquitto that
# the tests start themselves. Extra arguments go to pytest (and then run in one process).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/check.sh
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ $# -gt 0 ]; then exec "${PYTEST[@]}" "$@"; fi
# Most tests wait on real processes, brokers and databases rather than the CPU: four workers
# (each with its own PostgreSQL and Mosquitto on free ports; one file per worker) take the
# suite from about 30 to about 12 minutes here. The runs of the whole main job that are judged
# on timing (marker "serial") then run apart from the rest, two at a time: they wait on their
# scenarios' clocks (the machine was 85-90 % idle with one running), and two at once finished
# in 3 min instead of 5 min 41 s with the same verdicts and durations within noise.
"${PYTEST[@]}" -n "${ELDERCARE_TEST_WORKERS:-4}" --dist loadfile -m "not serial"
exec "${PYTEST[@]}" -n "${ELDERCARE_SERIAL_WORKERS:-2}" --dist loadfile -m serial
