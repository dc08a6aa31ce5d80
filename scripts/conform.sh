#!/usr/bin/env bash
# Play bundled scenarios (all, or those named) against the running main job, which must have
# been started without the demo simulator: ELDERCARE_DEMO_SIMULATOR=0 bash scripts/run.sh
# Exits non-zero if any scenario fails. Extra options go after "--", e.g. -- --speed 10
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
# shellcheck disable=SC1091
source .run/env
names=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  names+=("$1"); shift
done
[ ${#names[@]} -gt 0 ] || names=(smoke-sos-fall fire-alarm reconnect-flood quiet-day dementia-bad-night)
status=0
for name in "${names[@]}"; do
  echo "== $name"
  $PY -m simulators conform "$name" --api "http://127.0.0.1:${ELDERCARE_API_PORT:-8000}" \
    --devices .run/demo-devices.json --port "$ELDERCARE_MQTT_PORT" \
    --truth ".run/ground-truth-$name.jsonl" "${extra[@]}" || status=1
done
exit $status
