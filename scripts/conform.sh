#!/usr/bin/env bash
# Play bundled scenarios (all, or those named), each against a fresh main job: scripts/run.sh in
# its own run directory (.run/conform: a new database and broker for every scenario), without
# the demo simulator and allowed to take the run's simulated clock. Exits non-zero if any
# scenario fails; scorecards go to stdout, each main job's logs to .run/conform-logs/<name>/.
#   scripts/conform.sh [NAME ...] [-- extra options for `simulators conform`, e.g. --speed 10]
#   scripts/conform.sh --attach [NAME ...]   play against the main job already running from .run
#     (one database for all; start it with ELDERCARE_DEMO_SIMULATOR=0 ELDERCARE_SIM_CLOCK_ALLOWED=1)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
ATTACH=0; names=(); extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --attach) ATTACH=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) names+=("$1"); shift ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(smoke-sos-fall fire-alarm reconnect-flood quiet-day dementia-bad-night)
bash scripts/setup.sh >/dev/null

free_port() { $PY -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }

play() {  # play NAME RUN_DIR API_PORT TRUTH_FILE
  local name=$1 run=$2 api=$3 truth=$4
  (
    # shellcheck disable=SC1091
    source "$run/env"
    $PY -m simulators conform "$name" --api "http://127.0.0.1:$api" \
      --devices "$run/demo-devices.json" --port "$ELDERCARE_MQTT_PORT" \
      --truth "$truth" "${extra[@]}"
  )
}

status=0
if [ $ATTACH = 1 ]; then
  for name in "${names[@]}"; do
    echo "== $name"
    play "$name" .run "${ELDERCARE_API_PORT:-8000}" ".run/ground-truth-$name.jsonl" || status=1
  done
  exit $status
fi

RUN="${ELDERCARE_CONFORM_DIR:-.run/conform}"  # one per concurrent conform.sh
main=""
stop_main() {
  if [ -n "$main" ]; then kill -TERM "$main" 2>/dev/null || true; wait "$main" 2>/dev/null || true; fi
  main=""
}
trap stop_main EXIT INT TERM
for name in "${names[@]}"; do
  echo "== $name"
  rm -rf "$RUN"
  logs=".run/conform-logs/$name"; rm -rf "$logs"; mkdir -p "$logs"
  api=$(free_port)
  ELDERCARE_RUN_DIR=$RUN ELDERCARE_DEMO_SIMULATOR=0 ELDERCARE_SIM_CLOCK_ALLOWED=1 \
    ELDERCARE_API_PORT=$api ELDERCARE_METRICS_PORT=$(free_port) \
    bash scripts/run.sh >"$logs/main.log" 2>&1 &
  main=$!
  for _ in $(seq 600); do
    [ -f "$RUN/ready" ] && break
    kill -0 "$main" 2>/dev/null || break
    sleep 0.5
  done
  if [ ! -f "$RUN/ready" ]; then
    echo "the main job did not come up; see $logs/main.log"; tail -20 "$logs/main.log"
    stop_main; status=1; continue
  fi
  play "$name" "$RUN" "$api" "$logs/ground-truth.jsonl" || status=1
  stop_main
  cp -r "$RUN/logs/." "$logs/" 2>/dev/null || true
done
exit $status
