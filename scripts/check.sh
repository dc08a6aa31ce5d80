#!/usr/bin/env bash
# The one check command: lint, format, types, import layers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
V=.venv/bin
$V/ruff check .
$V/ruff format --check .
$V/mypy
$V/lint-imports
