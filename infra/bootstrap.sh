#!/usr/bin/env bash
# Installs everything TinyTrail needs on a fresh Debian machine, idempotently:
# Debian packages (PostgreSQL, Redis, Java, Maven, Node.js, Chromium for the browser
# tests), the Kafka jars (via infra/services.sh install), the Python package with its
# test extra, the dashboard (npm ci when its lockfile changed, a build when a source is
# newer than the build) and the browser tests' npm packages (with terser, which builds
# the tracker: collector/tracker/build.js). Skips whatever is already there.
#
#   infra/bootstrap.sh [--no-browser]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAMP_DIR=${TINYTRAIL_LOCAL_DIR:-$ROOT/.local}
mkdir -p "$STAMP_DIR"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

case "${1:-}" in -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
browser=1; [ "${1:-}" = "--no-browser" ] && browser=0

need=()
command -v chromium >/dev/null 2>&1 || [ $browser = 0 ] || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
"$ROOT/infra/services.sh" install

PY=${PYTHON:-python3}
if [ ! -f "$STAMP_DIR/.pip-stamp" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP_DIR/.pip-stamp" ] ||
   ! "$PY" -c "import tinytrail, faust, tornado, psycopg" 2>/dev/null; then
  log "installing the Python package and its test extra"
  "$PY" -m pip install -q --disable-pip-version-check -e "$ROOT[test]" 2>&1 | grep -v '^WARNING: Running pip as' || true
  "$PY" -c "import tinytrail, faust, tornado, psycopg" || { log "pip install failed"; exit 1; }
  touch "$STAMP_DIR/.pip-stamp"
fi

# The dashboard (dashboard/ -> api/dashboard_dist/, git-ignored): packages keyed on the
# lockfile (npm ci leaves node_modules/.package-lock.json behind), then a build whenever
# a source, the build script or the lockfile is newer than the built index.html.
dash=$ROOT/dashboard
if [ ! -f "$dash/node_modules/.package-lock.json" ] ||
   [ "$dash/package-lock.json" -nt "$dash/node_modules/.package-lock.json" ]; then
  log "installing the dashboard's npm packages (npm ci)"
  (cd "$dash" && npm ci --no-audit --no-fund --silent)
fi
built=$ROOT/api/dashboard_dist/index.html
if [ ! -f "$built" ] ||
   [ -n "$(find "$dash/src" "$dash/build.mjs" "$dash/package-lock.json" -newer "$built" -print -quit)" ]; then
  log "building the dashboard"
  (cd "$dash" && npm run build --silent)
fi

# Keyed on the committed lockfile: a checkout whose node_modules predates it (a package
# added since) gets the exact versions again. npm writes node_modules/.package-lock.json.
BROWSER="$ROOT/tests/browser"
if [ $browser = 1 ] && [ -f "$BROWSER/package-lock.json" ] &&
   { [ ! -f "$BROWSER/node_modules/.package-lock.json" ] ||
     [ "$BROWSER/package-lock.json" -nt "$BROWSER/node_modules/.package-lock.json" ]; }; then
  log "installing the browser test's npm packages (npm ci, from the lockfile)"
  (cd "$BROWSER" && npm ci --no-audit --no-fund --silent)
fi
log "ok"
