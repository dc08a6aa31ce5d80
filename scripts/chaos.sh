#!/usr/bin/env bash
# The chaos run (docs/simulators.md, "Chaos conformance"): a fresh main job (scripts/run.sh in
# its own run directory, without the demo simulator), then a living population with incidents
# throughout, hostile devices, and kill -9 of ingest, of an alerts worker and of the API, a
# broker and a database restart at random moments. Prints the scorecard; exits 1 on failure.
#   scripts/chaos.sh                  the full run (simulators/scenarios/chaos/chaos.toml, ~12 min)
#   scripts/chaos.sh chaos-short      the test suite's short one (~1 min)
#   scripts/chaos.sh NAME -- --log-level INFO    extra options for `simulators chaos`
# Logs of the main job and the ground truth go to .run/chaos-logs/<name>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
name=chaos; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    *) name="$1"; shift ;;
  esac
done
bash scripts/setup.sh >/dev/null
free_port() { $PY -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }

RUN="${ELDERCARE_CHAOS_DIR:-.run/chaos}"
logs=".run/chaos-logs/$(basename "$name" .toml)"
rm -rf "$RUN" "$logs"; mkdir -p "$logs"
api=$(free_port); metrics=$(free_port)
main=""
stop_main() {
  if [ -n "$main" ]; then kill -TERM "$main" 2>/dev/null || true; wait "$main" 2>/dev/null || true; fi
  main=""
  cp -r "$RUN/logs/." "$logs/" 2>/dev/null || true
}
trap stop_main EXIT INT TERM
ELDERCARE_RUN_DIR=$RUN ELDERCARE_DEMO_SIMULATOR=0 ELDERCARE_API_PORT=$api \
  ELDERCARE_METRICS_PORT=$metrics bash scripts/run.sh >"$logs/main.log" 2>&1 &
main=$!
for _ in $(seq 600); do
  [ -f "$RUN/ready" ] && break
  kill -0 "$main" 2>/dev/null || break
  sleep 0.5
done
if [ ! -f "$RUN/ready" ]; then
  echo "the main job did not come up; see $logs/main.log"; tail -20 "$logs/main.log"
  exit 1
fi
status=0
(
  # shellcheck disable=SC1091
  source "$RUN/env"
  $PY -m simulators chaos "$name" --run-dir "$RUN" --api "http://127.0.0.1:$api" \
    --devices "$RUN/demo-devices.json" --port "$ELDERCARE_MQTT_PORT" \
    --metrics "http://127.0.0.1:$metrics/metrics" --truth "$logs/ground-truth.jsonl" "${extra[@]}"
) || status=$?
exit $status
