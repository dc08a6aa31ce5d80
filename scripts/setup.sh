#!/usr/bin/env bash
# Idempotent setup for a Debian/Ubuntu machine (run as root, or with sudo available).
# Installs what is missing: Mosquitto, PostgreSQL server + dev headers, TimescaleDB
# (packaged if the distribution has it, else built from Debian's own source package),
# Chromium (for the browser test) and the project's Python virtual environment in .venv/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { printf '[setup] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq; apt_updated=1; fi
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# 1. Services: Mosquitto and PostgreSQL (server + headers for building extensions), and
#    Debian's Chromium for the browser test (Playwright drives it; no browser downloads).
#    fonts-wqy-microhei: a small CJK font, so the monthly report (dashboard_api/report) prints Chinese.
apt_install mosquitto mosquitto-clients postgresql postgresql-contrib chromium fonts-dejavu-core fonts-wqy-microhei
if [ -z "$PG_MAJOR" ]; then
  PG_MAJOR="$(ls /usr/lib/postgresql | sort -n | tail -1)"
fi
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PKGLIBDIR="$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$PG_MAJOR/lib")"

# 2. TimescaleDB for that PostgreSQL.
have_timescaledb() { ls "$PKGLIBDIR"/timescaledb*.so >/dev/null 2>&1; }
if ! have_timescaledb; then
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq; apt_updated=1; fi
  for cand in "postgresql-$PG_MAJOR-timescaledb" "timescaledb-2-postgresql-$PG_MAJOR"; do
    if apt-cache show "$cand" >/dev/null 2>&1; then
      log "installing packaged $cand"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$cand" >/dev/null && break
    fi
  done
fi
if ! have_timescaledb; then
  log "no packaged TimescaleDB for PostgreSQL $PG_MAJOR: building Debian's source package (trixie)"
  apt_install "postgresql-server-dev-$PG_MAJOR" dpkg-dev cmake gcc make libssl-dev libkrb5-dev
  SRC_LIST=/etc/apt/sources.list.d/eldercare-trixie-src.list
  if [ ! -f "$SRC_LIST" ]; then
    echo "deb-src http://deb.debian.org/debian trixie main" | $SUDO tee "$SRC_LIST" >/dev/null
    $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  fi
  BUILD="$ROOT/.build/timescaledb"
  rm -rf "$BUILD"; mkdir -p "$BUILD"
  (cd "$BUILD" && apt-get source -qq --download-only timescaledb/trixie >/dev/null 2>&1 \
     || apt-get source -qq --download-only timescaledb >/dev/null)
  (cd "$BUILD" && dpkg-source -x --no-check ./*.dsc src >/dev/null)
  cd "$BUILD/src"
  ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
    -DLINTER=OFF -DAPACHE_ONLY=ON -DPG_CONFIG="$PG_BIN/pg_config" >/dev/null
  make -C build -j"$(nproc)" >/dev/null
  $SUDO make -C build install >/dev/null
  cd "$ROOT"
  have_timescaledb || { log "TimescaleDB build did not install into $PKGLIBDIR"; exit 1; }
  log "TimescaleDB built and installed"
fi

# 3. Python environment.
PY="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  log "creating .venv"
  "$PY" -m venv "$ROOT/.venv"
fi
# Exactly the locked versions, every file checked against its hash (requirements/*.txt, made
# by pip-compile from pyproject.toml: see the README), the build backend among them, then the
# project itself, editable, without resolving or downloading anything again.
STAMP="$ROOT/.venv/.installed-$(cat "$ROOT/pyproject.toml" "$ROOT"/requirements/*.txt | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  log "installing Python dependencies from requirements/dev.txt"
  "$ROOT/.venv/bin/pip" install -q --require-hashes --no-deps \
    -r "$ROOT/requirements/build.txt" -r "$ROOT/requirements/dev.txt"
  "$ROOT/.venv/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT"
  rm -f "$ROOT"/.venv/.installed-*; touch "$STAMP"
fi
# 4. axe-core for the browser tests' accessibility audit (tests/a11y.py), from the npm
#    registry at a pinned version, its tarball checked against the registry's sha512; kept in
#    .build/ (never committed, never from a CDN). axe-core is MPL-2.0.
AXE_VERSION=4.14.1
AXE_SHA512="FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
AXE_DIR="$ROOT/.build/axe-core-$AXE_VERSION"
if [ ! -f "$AXE_DIR/package/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  log "fetching axe-core $AXE_VERSION from the npm registry"
  rm -rf "$AXE_DIR"; mkdir -p "$AXE_DIR"
  (cd "$AXE_DIR" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null)
  got="$("$ROOT/.venv/bin/python" -c 'import base64, hashlib, sys
print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
    "$AXE_DIR/axe-core-$AXE_VERSION.tgz")"
  if [ "$got" != "$AXE_SHA512" ]; then
    log "axe-core $AXE_VERSION: sha512 $got is not the pinned one"; rm -rf "$AXE_DIR"; exit 1
  fi
  tar -xzf "$AXE_DIR/axe-core-$AXE_VERSION.tgz" -C "$AXE_DIR" package/axe.min.js package/LICENSE package/package.json
fi
log "ready (PostgreSQL $PG_MAJOR at $PG_BIN, TimescaleDB in $PKGLIBDIR)"
