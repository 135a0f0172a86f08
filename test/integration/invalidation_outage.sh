#!/usr/bin/env bash
# Integration: no invalidation is lost when Redis or PostgreSQL goes down.
# Redis stopped during writes then started: every committed key is
# delivered, none from rolled-back transactions. kill -9 of a backend and
# of the postmaster before delivery: delivered after the restart. Commits
# during an outage do not reset the reconnect backoff. A Redis
# that accepts the connection and never answers (CLIENT PAUSE) does not
# hold up a fast shutdown beyond 2 s.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }
all_gone() { local k; for k in "$@"; do gone "$k" || return 1; done; }
none_gone() { local k; for k in "$@"; do gone "$k" && return 1; done; return 0; }
range() { local p=$1 a=$2 b=$3; seq "$a" "$b" | sed "s/^/$p/"; }
# stop Redis keeping its data (the keys we check survive the restart)
redis_down() { rcli SHUTDOWN SAVE >/dev/null 2>&1; wait_until 10 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" ; rm -f "$REDIS_DIR/redis.pid"; }
preset() { local k; for k in "$@"; do echo "SET $k cached"; done | rcli >/dev/null; }
pg_up() { q -d postgres -c "SELECT 1" >/dev/null 2>&1; }

q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS out_patient;
CREATE TABLE out_patient (patient_id int PRIMARY KEY, name text);
INSERT INTO out_patient SELECT i, 'p' FROM generate_series(1, 400) i;
SELECT clinical.enable_cache_invalidation('out_patient', 'op:{patient_id}');
SQL

# 1. Redis down during a write load
committed=$(range op: 1 100); rolled=$(range op: 101 150)
preset $committed $rolled
# the counters are the cluster's since start: earlier scripts raised them too
errors0=$(q -c 'SELECT errors FROM clinical.invalidation_stats()')
reconnects0=$(q -c 'SELECT reconnects FROM clinical.invalidation_stats()')
redis_down
for i in $(seq 1 100); do echo "UPDATE out_patient SET name = 'c' WHERE patient_id = $i;"; done | q >/dev/null
for i in $(seq 101 150); do echo "BEGIN; UPDATE out_patient SET name = 'r' WHERE patient_id = $i; ROLLBACK;"; done | q >/dev/null
sleep 1.5
tap_check "writers are not blocked while Redis is down (100 commits done)" test "$(q -c "SELECT count(*) FROM out_patient WHERE name = 'c'")" = 100
tap_check "the worker counts errors while Redis is down" test "$(q -c 'SELECT errors FROM clinical.invalidation_stats()')" -gt "$errors0"
tap_check "the committed keys wait in the queue" test "$(q -c 'SELECT queue_depth FROM clinical.invalidation_stats()')" -ge 100
redis_start
tap_check "after Redis is back every committed key is invalidated" wait_until 40 all_gone $committed
tap_check "no key of a rolled-back transaction was sent" none_gone $rolled
tap_check "the worker reconnected" test "$(q -c 'SELECT reconnects FROM clinical.invalidation_stats()')" -gt "$reconnects0"

# 1b. the backoff keeps growing while writers commit (each commit wakes the
# worker): over 3 s of commits every 50 ms it tries at most a few times
redis_down
errs0=$(q -c 'SELECT errors FROM clinical.invalidation_stats()')
end=$(( $(date +%s) + 3 ))
while [ "$(date +%s)" -lt "$end" ]; do
  q -c "UPDATE out_patient SET name = 'b' WHERE patient_id = 1" >/dev/null
  sleep 0.05
done
errs=$(( $(q -c 'SELECT errors FROM clinical.invalidation_stats()') - errs0 ))
backoff=$(q -c "SELECT extract(epoch FROM current_backoff) * 1000 FROM clinical.invalidation_stats()")
echo "# 3 s of commits with Redis down: $errs connection attempts, current backoff ${backoff} ms"
tap_check "commits do not reset the backoff: at most 8 attempts in 3 s" test "$errs" -le 8
tap_check "the backoff has grown to at least 400 ms" test "${backoff%.*}" -ge 400
redis_start
tap_check "after Redis is back the queue drains" wait_until 40 bash -c "[ \"\$(psql -X -A -t -q -c 'SELECT queue_depth FROM clinical.invalidation_stats()')\" = 0 ]"
tap_is "a healthy worker has no backoff" "$(q -c 'SELECT current_backoff FROM clinical.invalidation_stats()')" "00:00:00"

# 2. kill -9 of a backend before delivery (the postmaster restarts everything)
keys=$(range op: 201 210); preset $keys
redis_down
for i in $(seq 201 210); do echo "UPDATE out_patient SET name = 'k' WHERE patient_id = $i;"; done | q >/dev/null
psql -X -q -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
sleep 0.5
victim=$(q -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND pid <> pg_backend_pid()")
crashes0=$(grep -c 'terminated by signal 9' "$PGLOG")
tap_check "a backend to kill is found and killed with SIGKILL" kill -9 "$victim"
wait 2>/dev/null
wait_until 30 pg_up
tap_check "after kill -9 of a backend the cluster is back" pg_up
tap_check "the postmaster saw the backend die of SIGKILL and restarted" \
  test "$(grep -c 'terminated by signal 9' "$PGLOG")" -gt "$crashes0"
redis_start
tap_check "committed keys are delivered after the crash restart" wait_until 40 all_gone $keys

# 3. kill -9 of the postmaster before delivery
keys=$(range op: 301 310); preset $keys
redis_down
for i in $(seq 301 310); do echo "UPDATE out_patient SET name = 'm' WHERE patient_id = $i;"; done | q >/dev/null
pmpid=$(head -1 "$PGDATA/postmaster.pid")
children=$(pgrep -P "$pmpid" | tr '\n' ' ')
kill -9 "$pmpid"
# the children notice the postmaster's death and exit; then it can start again
children_gone() { local c; for c in $pmpid $children; do kill -0 "$c" 2>/dev/null && return 1; done; return 0; }
wait_until 30 children_gone
pg_ctl -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null 2>&1
tap_check "after kill -9 of the postmaster the cluster starts again" wait_until 30 pg_up
redis_start
tap_check "committed keys are delivered after the postmaster crash" wait_until 40 all_gone $keys

# 4. Redis accepts the connection and never answers: fast shutdown within 2 s
wait_until 20 bash -c "[ \"\$(psql -X -A -t -q -c 'SELECT redis_connected FROM clinical.invalidation_stats()')\" = t ]"
tap_check "the invalidator is connected before the pause" \
  test "$(q -c 'SELECT redis_connected FROM clinical.invalidation_stats()')" = t
rcli CLIENT PAUSE 30000 ALL >/dev/null
q -c "SELECT clinical.invalidate('paused:key')" >/dev/null
sleep 0.5
t0=$(date +%s%N)
pg_ctl -D "$PGDATA" -m fast -w -t 30 stop >/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# fast shutdown with Redis paused took ${ms} ms"
tap_check "pg_ctl stop -m fast finishes within 2 s while Redis never answers" test "$ms" -lt 2000
rcli CLIENT UNPAUSE >/dev/null 2>&1
pg_start
tap_check "the paused key is delivered after the restart" wait_until 30 bash -c "[ \"\$(psql -X -A -t -q -c 'SELECT count(*) FROM clinical.invalidation_queue')\" = 0 ]"

q -c "DROP TABLE out_patient" >/dev/null
tap_done
