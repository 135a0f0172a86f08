#!/usr/bin/env bash
# test/demo.sh - `make demo`: install what is missing, build, install, start a
# throwaway cluster and redis-server, and walk through what the extension
# does, one section per part (test/demo/*.sh, in file-name order).
set -uo pipefail
cd "$(dirname "$0")/.."

exec 9>/tmp/clinical-install.lock
flock 9

bash test/install.sh || exit 1

. test/sandbox.sh
as_server_user bash -c '
  set -uo pipefail
  . "$CLINICAL_SRC/test/lib.sh"
  pg_init && pg_start && redis_start || exit 1
  q -d postgres -c "CREATE DATABASE clinical_test" >/dev/null
  wait_for_worker
  echo "A throwaway PostgreSQL $(pg_config --version | cut -d" " -f2) on port $PGPORT and redis-server on port $REDIS_PORT, both on 127.0.0.1, in $CLINICAL_TMP."
  rc=0
  for section in "$CLINICAL_SRC"/test/demo/[0-9]*.sh; do
    bash "$section" || { echo "demo section $(basename "$section") failed" >&2; rc=1; }
  done
  echo
  echo "Demo finished; the cluster and redis-server are stopped and removed."
  exit $rc
'
