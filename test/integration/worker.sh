#!/usr/bin/env bash
# Integration: the background worker. It runs in clinical.database, is
# restarted after kill -9, stays idle after DROP EXTENSION, stops within
# 5 s on a fast shutdown, and without preloading worker_status() says how
# to fix that. Leaves the cluster running as it found it.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

status() { q -c "SELECT $1 FROM clinical.worker_status()"; }
worker_pid() { q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'clinical worker'"; }

q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null

pid1=$(worker_pid)
tap_check "worker runs" test -n "$pid1"
tap_is "worker_status() pid matches pg_stat_activity" "$(status pid)" "$pid1"
tap_is "worker application_name" "$(q -c "SELECT application_name FROM pg_stat_activity WHERE pid = $pid1")" "clinical worker"

# a reload wakes the worker (its SIGHUP handler sets the latch); it re-reads its state
q -c "SELECT pg_reload_conf()" >/dev/null
state_is() { [ "$(status state)" = "$1" ]; }
tap_check "worker idles with the extension installed" wait_until 15 state_is "idle"

# DROP EXTENSION while the worker runs: the worker stays, idle
q -c "DROP EXTENSION clinical" >/dev/null
# worker_status() is gone with the extension; read the state through a fresh install elsewhere
q -d postgres -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null
q -c "SELECT pg_reload_conf()" >/dev/null
dropped_idle() { [ "$(q -d postgres -c "SELECT state FROM clinical.worker_status()")" = "idle: extension not installed" ]; }
tap_check "after DROP EXTENSION the worker stays idle" wait_until 15 dropped_idle
tap_is "after DROP EXTENSION the worker is the same process" "$(worker_pid)" "$pid1"
q -d postgres -c "DROP EXTENSION clinical" >/dev/null
q -c "CREATE EXTENSION clinical" >/dev/null

# kill -9: the postmaster restarts the cluster and the worker
kill -9 "$pid1"
new_worker() { p=$(worker_pid); [ -n "$p" ] && [ "$p" != "$pid1" ]; }
tap_check "worker is restarted after kill -9" wait_until 60 new_worker
pid2=$(worker_pid)
tap_is "restarted worker is reported by worker_status()" "$(status running)" "t"

# fast shutdown within 5 s
t0=$(date +%s%N)
pg_ctl -D "$PGDATA" -m fast -w -t 30 stop >/dev/null
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
echo "# fast shutdown took ${ms} ms"
tap_check "pg_ctl stop -m fast finishes within 5 s" test "$ms" -lt 5000
gone() { ! kill -0 "$1" 2>/dev/null; }
tap_check "worker process is gone after shutdown" gone "$pid2"

# without preloading: the extension works, worker_status() explains
pg_ctl -D "$PGDATA" -l "$PGLOG" -w -t 60 -o "-c shared_preload_libraries=''" start >/dev/null
tap_is "not preloaded: worker_status().preloaded is false" "$(status preloaded)" "f"
tap_check "not preloaded: worker_status() says how to fix it" grep -q 'shared_preload_libraries' <<<"$(status state)"
tap_check "not preloaded: CREATE EXTENSION works" q -d postgres -c "CREATE EXTENSION clinical"
default=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$CLINICAL_SRC/clinical.control")
tap_is "not preloaded: clinical.version() answers with the control file's version" \
  "$(q -d postgres -c "SELECT extension_version || ' ' || library_version FROM clinical.version()")" "$default $default"
q -d postgres -c "DROP EXTENSION clinical" >/dev/null
pg_stop fast
pg_start
has_worker() { [ -n "$(worker_pid)" ]; }
wait_until 30 has_worker

tap_done
