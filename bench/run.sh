#!/usr/bin/env bash
# bench/run.sh - `make bench [BENCH=name]`: install what is missing
# (the peers too), build, install, start a throwaway cluster and
# redis-server, and run every benchmark (bench/*.sh but this file and
# lib.sh) or the one named. Each prints this project and its peer side by
# side, from one run, as a ratio.
set -uo pipefail
cd "$(dirname "$0")/.."

exec 9>/tmp/clinical-install.lock
flock 9

bash test/install.sh postgresql-15-partman postgresql-15-pgaudit || exit 1

. test/sandbox.sh
as_server_user bash -c '
  set -uo pipefail
  . "$CLINICAL_SRC/test/lib.sh"
  CLINICAL_PG_CONF="shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
max_parallel_workers_per_gather = 2
work_mem = 64MB
clinical.maintenance_interval = 0" pg_init && pg_start && redis_start || exit 1
  q -d postgres -c "CREATE DATABASE clinical_test" >/dev/null
  wait_for_worker
  echo "clinical benchmarks: PostgreSQL $(pg_config --version | cut -d" " -f2), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
  rc=0
  for b in "$CLINICAL_SRC"/bench/*.sh; do
    name=$(basename "$b" .sh)
    case "$name" in run|lib) continue ;; esac
    [ -n "${1:-}" ] && [ "$1" != "$name" ] && continue
    echo
    echo "== bench/$name"
    bash "$b" || { echo "bench/$name failed" >&2; rc=1; }
  done
  exit $rc
' bench "${1:-}"
