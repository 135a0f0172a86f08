#!/usr/bin/env bash
# Integration: partition maintenance while 4 pgbench clients insert without
# pause. Maintenance runs again and again with an advancing injected clock,
# so it creates partitions (moving rows out of the default partition while
# writers keep writing there) and drops expired ones. No insert may fail,
# none may wait much beyond the lock timeout, and no row may be lost.
# Leaves the cluster running as it found it.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

work="$CLINICAL_TMP/partitions_concurrency"
mkdir -p "$work"
q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null
# The worker maintains every set in its first pass after the extension
# appears, on the real clock: when this script runs first in a fresh
# cluster, let that pass end before the set (with its injected clock) exists.
worker_idle() { [ "$(q -c "SELECT state FROM clinical.worker_status()")" = idle ]; }
wait_until 30 worker_idle
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS conc_log;
CREATE TABLE conc_log (id bigserial, at timestamptz NOT NULL, v int NOT NULL) PARTITION BY RANGE (at);
CREATE INDEX ON conc_log (at);
SET timezone = 'UTC';
SET clinical.maintenance_now = '2026-03-15 00:00+00';
SELECT clinical.create_time_partitions('conc_log', 'at', '1 month', 2, '3 months', 'drop', NULL, '2025-10-01');
SQL
before=$(q -c "SELECT count(*) FROM clinical.partition_bounds('conc_log')")

# inserts from April to mid-October: at first mostly into the default partition
cat > "$work/insert.sql" <<'SQL'
INSERT INTO conc_log (at, v) VALUES (timestamptz '2026-04-01 00:00+00' + random() * interval '195 days', 1);
SQL

pgbench -n -c 4 -j 2 -T 12 -f "$work/insert.sql" -l --log-prefix="$work/lat" clinical_test \
  > "$work/pgbench.out" 2> "$work/pgbench.err" &
bench=$!

# maintenance with an advancing clock: 2026-03-15 .. 2026-07-01 in 5-day steps,
# then again at the last date; each run its own transaction
sleep 1
: > "$work/maint.out"
runs=0
for day in $(seq 0 5 108) 108 108 108; do
  now=$(date -u -d "2026-03-15 + $day days" +%F)
  q >> "$work/maint.out" 2>> "$work/maint.err" <<SQL
SET timezone = 'UTC';
SET clinical.maintenance_lock_timeout = '500ms';
SET clinical.maintenance_now = '$now 00:00+00';
SELECT action || '|' || coalesce(partition, '') || '|' || coalesce(detail, '') FROM clinical.run_maintenance('conc_log');
SQL
  runs=$((runs + 1))
  sleep 0.3
done
wait "$bench"
rc=$?

echo "# $runs maintenance runs; pgbench: $(grep -E 'number of transactions actually processed' "$work/pgbench.out")"
tap_is "pgbench exits cleanly (no client aborted)" "$rc" "0"
tap_is "no insert failed" "$(grep -c -E 'ERROR|aborted' "$work/pgbench.err")" "0"
[ -s "$work/pgbench.err" ] && sed 's/^/#   /' "$work/pgbench.err" | head -5
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")
tap_check "pgbench inserted rows" test "${processed:-0}" -gt 100
tap_is "row count is exact" "$(q -c "SELECT count(*) FROM conc_log")" "$processed"
tap_is "every row is in the partition of its range" \
  "$(q -c "SELECT count(*) FROM conc_log_default WHERE at < (SELECT max(upper_bound)::timestamptz FROM clinical.partition_bounds('conc_log'))")" "0"
tap_is "maintenance reported no errors" "$(grep -c '^error|' "$work/maint.out")" "0"
grep '^error|' "$work/maint.out" | head -3 | sed 's/^/#   /'
tap_is "maintenance sessions raised no error" "$(grep -c ERROR "$work/maint.err")" "0"
tap_check "maintenance created partitions while inserts ran" test "$(grep -c '^create|' "$work/maint.out")" -ge 3
tap_check "maintenance moved rows out of the default partition while inserts ran" test "$(grep -c '^move|' "$work/maint.out")" -ge 1
tap_check "maintenance dropped expired partitions while inserts ran" test "$(grep -c '^drop|' "$work/maint.out")" -ge 3
max_ms=$(cat "$work"/lat.* | awk 'BEGIN{m=0} {if ($3 > m) m = $3} END {printf "%d", m / 1000}')
echo "# slowest insert: ${max_ms} ms (lock timeout 500 ms, skipped steps: $(grep -c '^skip|' "$work/maint.out"))"
tap_check "no insert waited much longer than the lock timeout (< 2000 ms)" test "$max_ms" -lt 2000
tap_is "partition count: created minus dropped" \
  "$(q -c "SELECT count(*) FROM clinical.partition_bounds('conc_log')")" \
  "$((before + $(grep -c '^create|' "$work/maint.out") - $(grep -c '^drop|' "$work/maint.out")))"

q -c "SELECT clinical.set_legal_hold('conc_log', false, NULL); DELETE FROM clinical.partition_config WHERE parent = 'conc_log'::regclass; DROP TABLE conc_log" >/dev/null
tap_done
