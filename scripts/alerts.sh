#!/usr/bin/env bash
# Sign in as the demo admin and print the newest alerts (for the running main job).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT="${ELDERCARE_API_PORT:-8000}"
PW=$(.venv/bin/python -c "import json;print([u['password'] for u in json.load(open('.run/demo-devices.json'))['users'] if u['username']=='admin'][0])")
TOKEN=$(curl -sf -X POST "http://127.0.0.1:$PORT/api/auth/token" -d "username=admin&password=$PW" \
  | .venv/bin/python -c "import sys,json;print(json.load(sys.stdin)['access_token'])")
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/alerts?limit=${1:-10}" \
  | .venv/bin/python -m json.tool
