#!/usr/bin/env bash
# Integration: a long transaction holding a lock on a partitioned table.
# Maintenance must not hang behind it: each DDL step waits at most
# clinical.maintenance_lock_timeout per attempt, is retried with backoff,
# then skipped and reported; other sets are still maintained, and the
# skipped work is done by the next run once the lock is gone.
# Leaves the cluster running as it found it.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

work="$CLINICAL_TMP/partitions_locks"
mkdir -p "$work"
q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS lock_a, lock_b;
SET timezone = 'UTC';
SET clinical.maintenance_now = '2026-03-15 00:00+00';
CREATE TABLE lock_a (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE lock_b (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('lock_a', 'at', '1 month', 1, '2 months', 'drop', NULL, '2026-01-01');
SELECT clinical.create_time_partitions('lock_b', 'at', '1 month', 1, '2 months', 'drop', NULL, '2026-01-01');
SQL

# a reporting query that keeps lock_a open (ACCESS SHARE on it and its partitions)
psql -X -q -d clinical_test -c "BEGIN; SELECT count(*) FROM lock_a; SELECT pg_sleep(30); COMMIT" >/dev/null 2>&1 &
holder=$!
holding() { [ "$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'lock_a' AND l.granted AND l.pid <> pg_backend_pid()")" -ge 1 ]; }
wait_until 10 holding

# a writer that must not queue behind maintenance for longer than the lock timeout
t0=$(date +%s%N)
q > "$work/run.out" 2> "$work/run.err" <<'SQL'
SET timezone = 'UTC';
SET clinical.maintenance_lock_timeout = '200ms';
SET clinical.maintenance_lock_retries = 2;
SET clinical.maintenance_now = '2026-05-02 00:00+00';
SELECT parent || '|' || action || '|' || coalesce(partition, '') || '|' || coalesce(detail, '')
  FROM clinical.run_maintenance();
SQL
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
sed 's/^/#   /' "$work/run.out"
echo "# run_maintenance took ${ms} ms with a 200 ms lock timeout and 2 retries"
tap_is "run_maintenance succeeds while the table is locked" "$rc" "0"
tap_check "run_maintenance returns promptly (< 3 s), not after the 30 s transaction" test "$ms" -lt 3000
tap_check "the locked set's step is skipped with the reason" grep -q '^lock_a|skip|lock_a_p20260501|create: lock not granted within 200 ms after 3 attempts' "$work/run.out"
tap_check "the rest of the locked set is skipped, not waited for" grep -q '^lock_a|skip|lock_a_p20260101|drop not tried' "$work/run.out"
tap_check "the other set is maintained: partition created" grep -q '^lock_b|create|lock_b_p20260601|' "$work/run.out"
tap_check "the other set is maintained: expired partition dropped" grep -q '^lock_b|drop|lock_b_p20260101|' "$work/run.out"
tap_check "partition_status records the skip as the last error" \
  grep -q 'lock not granted' <<<"$(q -c "SELECT last_error FROM clinical.partition_status WHERE parent = 'lock_a'::regclass")"
tap_is "the other set has no error" "$(q -c "SELECT last_error IS NULL FROM clinical.partition_status WHERE parent = 'lock_b'::regclass")" "t"

# the procedure as a scheduler would call it: also prompt, with a NOTICE per skip
t0=$(date +%s%N)
psql -X -d clinical_test -v ON_ERROR_STOP=1 > "$work/proc.out" 2>&1 <<'SQL'
SET clinical.maintenance_lock_timeout = '200ms';
SET clinical.maintenance_lock_retries = 1;
SET clinical.maintenance_now = '2026-05-02 00:00+00';
CALL clinical.run_maintenance_proc();
SQL
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# run_maintenance_proc took ${ms} ms"
tap_is "run_maintenance_proc succeeds while the table is locked" "$rc" "0"
tap_check "run_maintenance_proc reports the skip as a NOTICE" grep -q 'NOTICE:  clinical: lock_a: skip lock_a_p20260501' "$work/proc.out"
tap_check "run_maintenance_proc returns promptly (< 3 s)" test "$ms" -lt 3000

# once the lock is gone, the next run does the skipped work
kill "$holder" 2>/dev/null
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$holder" 2>/dev/null
q > "$work/run2.out" <<'SQL'
SET clinical.maintenance_now = '2026-05-02 00:00+00';
SELECT action || '|' || partition FROM clinical.run_maintenance('lock_a') ORDER BY 1;
SQL
tap_is "after the lock is released the next run catches up" "$(tr '\n' ' ' < "$work/run2.out")" \
  "create|lock_a_p20260501 create|lock_a_p20260601 drop|lock_a_p20260101 drop|lock_a_p20260201 "
tap_is "and records no error" "$(q -c "SELECT last_error IS NULL FROM clinical.partition_status WHERE parent = 'lock_a'::regclass")" "t"

q -c "DELETE FROM clinical.partition_config WHERE parent IN ('lock_a'::regclass, 'lock_b'::regclass); DROP TABLE lock_a, lock_b" >/dev/null
tap_done
