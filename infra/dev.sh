#!/usr/bin/env bash
# Runs TinyTrail locally from a fresh machine: installs what is missing, starts
# PostgreSQL, Redis and Kafka, applies migrations, then runs collector, worker,
# API and the local router on http://localhost:8000 until Ctrl-C, after which
# it stops everything it started.
#
#   infra/dev.sh
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

infra/bootstrap.sh --no-browser || exit 1
started=0
if ! infra/services.sh status >/dev/null 2>&1; then
  infra/services.sh start || { infra/services.sh stop; exit 1; }
  started=1
fi
cleanup() { [ $started = 1 ] && infra/services.sh stop; }
trap cleanup EXIT
trap : INT  # Ctrl-C goes to `tinytrail run`, which stops its children; then we clean up

eval "$(infra/services.sh env)"
# A local server secret, generated once and kept out of git.
secret_file=${TINYTRAIL_LOCAL_DIR:-$ROOT/.local}/secret_key
[ -s "$secret_file" ] || python3 -c "import secrets; print(secrets.token_urlsafe(48))" >"$secret_file"
export TINYTRAIL_SECRET_KEY=${TINYTRAIL_SECRET_KEY:-$(cat "$secret_file")}

# Everything another terminal needs to talk to this local install (create-admin, aggregate).
envfile=${TINYTRAIL_LOCAL_DIR:-$ROOT/.local}/env.sh
{ infra/services.sh env; echo "export TINYTRAIL_SECRET_KEY='$TINYTRAIL_SECRET_KEY'"; } >"$envfile"
chmod 600 "$envfile"
echo "[dev] in another terminal: source $envfile && tinytrail create-admin --account-name 'My company'"

python3 -m cli migrate || exit 1
python3 -m cli run
