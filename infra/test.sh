#!/usr/bin/env bash
# The whole test suite on real services: installs what is missing, starts
# PostgreSQL, Redis and Kafka if they are not running (and stops them again at
# the end if it started them), then runs pytest with any extra arguments.
#
#   infra/test.sh [pytest args...]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
case "${1:-}" in -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

infra/bootstrap.sh || exit 1
started=0
if ! infra/services.sh status >/dev/null 2>&1; then
  infra/services.sh start || { infra/services.sh stop; exit 1; }
  started=1
fi
cleanup() { [ $started = 1 ] && infra/services.sh stop; }
trap cleanup EXIT INT TERM

eval "$(infra/services.sh env | sed 's/TINYTRAIL_/TINYTRAIL_TEST_/')"
python3 -m pytest "$@"
rc=$?
if [ $rc = 5 ]; then echo "[test] pytest collected no tests: failing" >&2; rc=1; fi
exit $rc
