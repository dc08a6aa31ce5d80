#!/usr/bin/env bash
# Re-lock the Python dependencies after a change to pyproject.toml (see the README):
# requirements/main.txt (runtime, the Docker image), requirements/dev.txt (runtime + dev
# extras, scripts/setup.sh; the runtime pins are its constraints, so both agree) and
# requirements/build.txt (the build backend). Every file is pinned with its hashes.
# tests/test_lock.py fails while pyproject.toml and the lock files disagree.
# --upgrade moves every pin to the newest allowed version; without it pins stay where they are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PC=(.venv/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras
    --no-emit-index-url --no-emit-find-links "$@")
"${PC[@]}" -o requirements/main.txt pyproject.toml
"${PC[@]}" --extra dev -c requirements/main.txt -o requirements/dev.txt pyproject.toml
"${PC[@]}" --all-build-deps --only-build-deps -o requirements/build.txt pyproject.toml
