#!/usr/bin/env bash
# The main job: set up, start the project's own PostgreSQL+TimescaleDB and Mosquitto, migrate,
# seed a demo population, then run ingest, the alerts worker, the API and the simulator.
# Each component is restarted if it stops; Ctrl-C stops everything (add --keep-services to
# leave the databases running).
# ELDERCARE_RUN_DIR (default .run) holds the services' data, logs and env; a new directory is
# a fresh database. ELDERCARE_API_PORT (8000) and ELDERCARE_METRICS_PORT (9101) move the ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEEP=0; [ "${1:-}" = "--keep-services" ] && KEEP=1
bash scripts/setup.sh
PY=.venv/bin/python
RUN="${ELDERCARE_RUN_DIR:-.run}"
mkdir -p "$RUN/logs"
rm -f "$RUN/ready"
$PY -m devtools services up --run-dir "$RUN"
# shellcheck disable=SC1091
source "$RUN/env"
export ELDERCARE_API_PORT="${ELDERCARE_API_PORT:-8000}"
METRICS_PORT="${ELDERCARE_METRICS_PORT:-9101}"
$PY -m devices migrate
$PY -m devtools seed --out "$RUN/demo-devices.json"
$PY -m devices broker-sync --conf-dir "$RUN/mosquitto" --reload --secrets "$RUN/demo-devices.json"

pids=()  # the supervisors; each component's own pid is in $RUN/pids/<name>.pid
mkdir -p "$RUN/pids"
rm -f "$RUN/stopping" "$RUN"/pids/*.pid
cleanup() {
  # a second Ctrl-C (or a TERM forwarded twice) must not cut the clean-up short
  trap '' INT TERM; trap - EXIT
  touch "$RUN/stopping"
  rm -f "$RUN/ready"
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$RUN"/pids/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$RUN"/pids/*.pid
  [ $KEEP -eq 1 ] || $PY -m devtools services down --run-dir "$RUN"
}
trap cleanup INT TERM EXIT
# supervise NAME CMD...: run CMD, and when it exits (a crash, kill -9, a bad day) log it and
# start it again after a delay that doubles up to 30 s and resets once it has run for a
# minute; the other components keep serving meanwhile. Only clean-up stops it.
supervise() {
  local name=$1; shift
  local delay=1 started rc child
  trap 'exit 0' INT TERM
  while [ ! -f "$RUN/stopping" ]; do
    started=$(date +%s)
    "$@" >>"$RUN/logs/$name.log" 2>&1 &
    child=$!
    echo "$child" >"$RUN/pids/$name.pid"
    rc=0; wait "$child" || rc=$?
    [ -f "$RUN/stopping" ] && break
    [ $(( $(date +%s) - started )) -lt 60 ] || delay=1
    echo "$(date -u +%FT%TZ) $name (pid $child) exited with status $rc; restarting in ${delay} s" \
      | tee -a "$RUN/logs/supervisor.log" >&2
    sleep "$delay"
    delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
  done
}
start() { local name=$1; shift; supervise "$name" "$@" & pids+=($!); }
start ingest $PY -m ingest run --metrics-port "$METRICS_PORT"
# each process signs in to the broker with its own account: alerts publishes device commands
# as `backend` (the env file's ELDERCARE_MQTT_USERNAME/PASSWORD are ingest's). Two alerts
# workers share the work (claims with SKIP LOCKED, run tokens): either may die at any moment
# and the other carries on while it restarts (ELDERCARE_ALERTS_WORKERS=1: one).
for ((i = 1; i <= ${ELDERCARE_ALERTS_WORKERS:-2}; i++)); do
  start "alerts$([ "$i" = 1 ] || echo "-$i")" env ELDERCARE_MQTT_USERNAME=backend \
    ELDERCARE_MQTT_PASSWORD="$ELDERCARE_BROKER_BACKEND_PASSWORD" $PY -m alerts run
done
# the life-safety lanes in processes of their own, beside the main workers' (docs/ingest.md):
# no telemetry batch or detector cycle shares their event loops
start ingest-lane $PY -m ingest lane
start alerts-lane $PY -m alerts lane
start api $PY -m dashboard_api serve
# the monthly report (issue 15): its own small process (the alerts worker may not import the
# dashboard layer); it writes last month's report once (report_runs), then checks hourly
start report $PY -m dashboard_api.report --schedule --out "$RUN/reports"
sleep 2  # let ingest subscribe before the devices start talking
# ELDERCARE_DEMO_SIMULATOR=0 leaves the devices to a conformance run (scripts/conform.sh).
[ "${ELDERCARE_DEMO_SIMULATOR:-1}" = 0 ] || start simulator $PY -m simulators demo --devices "$RUN/demo-devices.json"

cat <<TXT

Eldercare backend is running (logs in $RUN/logs/):
  Web pages            http://127.0.0.1:$ELDERCARE_API_PORT/login   (care station /station, 96345 centre /console, family /family, visits /visits, safety /safety)
  monthly reports      $RUN/reports/YYYY-MM/
  API + OpenAPI docs   http://127.0.0.1:$ELDERCARE_API_PORT/docs
  ingest metrics       http://127.0.0.1:$METRICS_PORT/metrics
  MQTT broker          127.0.0.1:$ELDERCARE_MQTT_PORT  (device passwords in $RUN/demo-devices.json)
  demo logins          $($PY -c "import json;print(', '.join(u['username']+' / '+u['password'] for u in json.load(open('$RUN/demo-devices.json'))['users']))")
Watch the alerts:  ./scripts/alerts.sh   (signs in as staff and lists the latest alerts)
Press Ctrl-C to stop.
TXT
if [ "${ELDERCARE_DEMO_SIMULATOR:-1}" = 0 ]; then
  echo "No simulator: the devices are left to a conformance run (scripts/conform.sh --attach)."
else
  echo "The simulator sends an SOS at +20 s and a fall at +40 s."
fi
# for scripts/conform.sh: the API answers and every component is up
for _ in $(seq 100); do
  $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$ELDERCARE_API_PORT/healthz', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
touch "$RUN/ready"
# the demo's care programme: a month of visits and a safety round through the API (issue 15)
[ "${ELDERCARE_DEMO_SIMULATOR:-1}" = 0 ] || $PY -m simulators care-month \
  --api "http://127.0.0.1:$ELDERCARE_API_PORT" --logins "$RUN/demo-devices.json" \
  >>"$RUN/logs/care-month.log" 2>&1 &
# Until Ctrl-C/TERM: a component that stops is restarted by its supervisor (see above).
wait "${pids[@]}" || true
