#!/usr/bin/env bash
# Integration: the audit trail across sessions. Rollback and savepoint
# rollback leave no audit rows; COPY and multi-row INSERT are audited row by
# row; a session with session_replication_role = replica is audited; rows
# that commit out of id order are sealed by a later seal; audit_verify finds
# an UPDATE, a DELETE and an INSERT made to the sealed log by a superuser
# who switched the guard off; a redaction keeps verify clean while a plain
# edit does not; the worker seals on schedule; audit_seal refuses
# REPEATABLE READ; the log survives pg_dump and restore with verify clean;
# a seal leaves the log's txid BRIN index summarized but for its last range;
# audit_verify(since) is scoped, finds redactions in scope (also when the id
# sequence has a cache) and edits in scope.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS au_patient;
CREATE TABLE au_patient (id int PRIMARY KEY, name text, site text, weight numeric);
SELECT clinical.enable_audit('au_patient');
SQL
rows() { q -c "SELECT count(*) FROM clinical.audit_log WHERE table_oid = 'au_patient'::regclass AND operation IN ('INSERT','UPDATE','DELETE','TRUNCATE') $1"; }
verify_count() { q -c "SELECT count(*) FROM clinical.audit_verify()"; }

# rollback and savepoint rollback: no audit rows
q -c "BEGIN; INSERT INTO au_patient VALUES (10100, 'rolled back', 'X', 1); ROLLBACK;" >/dev/null
q -c "BEGIN; SAVEPOINT s; INSERT INTO au_patient VALUES (10101, 'savepoint', 'X', 1); ROLLBACK TO s; INSERT INTO au_patient VALUES (10102, 'kept', 'X', 1); COMMIT;" >/dev/null
tap_is "rollback leaves no audit row" "$(rows "AND pk = '{\"id\": 10100}'")" "0"
tap_is "savepoint rollback leaves no audit row" "$(rows "AND pk = '{\"id\": 10101}'")" "0"
tap_is "the change kept after the savepoint is audited" "$(rows "AND pk = '{\"id\": 10102}'")" "1"

# COPY and multi-row INSERT: one audit row per row
seq 1 500 | awk '{ printf "%d\tname %d\tS%d\t%d.5\n", $1, $1, $1 % 7, $1 }' \
  | q -c "COPY au_patient FROM STDIN" >/dev/null
tap_is "COPY of 500 rows writes 500 audit rows" "$(rows "AND operation = 'INSERT' AND (pk->>'id')::int BETWEEN 1 AND 500")" "500"
q -c "INSERT INTO au_patient SELECT g, 'multi', 'M', g FROM generate_series(1001, 1100) g" >/dev/null
tap_is "multi-row INSERT of 100 rows writes 100 audit rows" "$(rows "AND operation = 'INSERT' AND (pk->>'id')::int BETWEEN 1001 AND 1100")" "100"
tap_is "COPY rows hold their values" \
  "$(q -c "SELECT new_row FROM clinical.audit_log WHERE table_oid = 'au_patient'::regclass AND pk = '{\"id\": 7}' AND operation = 'INSERT'")" \
  '{"id": 7, "name": "name 7", "site": "S0", "weight": 7.5}'

# session_replication_role = replica is audited (the triggers fire ALWAYS)
q -c "SET session_replication_role = replica; UPDATE au_patient SET site = 'R' WHERE id = 3;" >/dev/null
tap_is "an UPDATE under session_replication_role = replica is audited" \
  "$(rows "AND operation = 'UPDATE' AND pk = '{\"id\": 3}'")" "1"

# out-of-order commit: A draws the smaller change id but commits after B
q -c "SELECT clinical.audit_seal()" >/dev/null
fifo=$CLINICAL_TMP/audit_fifo; rm -f "$fifo"; mkfifo "$fifo"
psql -X -q -v ON_ERROR_STOP=1 < "$fifo" > "$CLINICAL_TMP/audit_a.out" 2>&1 &
apid=$!
exec 7>"$fifo"
echo "BEGIN; UPDATE au_patient SET name = 'A first' WHERE id = 10;" >&7
wait_until 10 bash -c "[ \"\$(psql -X -A -t -q -c \"SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%A first%'\")\" = 1 ]"
q -c "UPDATE au_patient SET name = 'B second' WHERE id = 11" >/dev/null
a_id=$(q -c "SELECT max(change_id) FROM clinical.audit_log WHERE pk = '{\"id\": 10}' AND table_oid = 'au_patient'::regclass")
b_id=$(q -c "SELECT change_id FROM clinical.audit_log WHERE pk = '{\"id\": 11}' AND operation = 'UPDATE' AND table_oid = 'au_patient'::regclass")
q -c "SELECT clinical.audit_seal()" >/dev/null
sealed_b=$(q -c "SELECT sealed FROM clinical.audit_trail WHERE change_id = $b_id")
tap_is "B committed after A began: not sealed while A is open" "$sealed_b" "f"
echo "COMMIT;" >&7
exec 7>&-
wait "$apid"
a_id=$(q -c "SELECT change_id FROM clinical.audit_log WHERE pk = '{\"id\": 10}' AND operation = 'UPDATE' AND table_oid = 'au_patient'::regclass")
tap_check "A's change id is smaller than B's" test "$a_id" -lt "$b_id"
q -c "SELECT clinical.audit_seal()" >/dev/null
tap_is "a later seal covers both" "$(q -c "SELECT count(*) FROM clinical.audit_trail WHERE change_id IN ($a_id, $b_id) AND sealed")" "2"
tap_is "audit_verify: intact after sealing" "$(verify_count)" "0"

# REPEATABLE READ is refused
out=$(q -c "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT clinical.audit_seal(); COMMIT;" 2>&1)
tap_check "audit_seal refuses REPEATABLE READ" grep -q "must run in a READ COMMITTED transaction" <<<"$out"

# tampering after sealing, by a superuser who switches the guard off: each
# kind is found, then rolled back so the next starts from an intact log
tamper() {   # tamper SQL -> the problems audit_verify reports, one per line
  q <<SQL
BEGIN;
ALTER TABLE clinical.audit_log DISABLE TRIGGER audit_log_guard;
$1;
SELECT problem || ':' || coalesce(change_id::text, '') || ':' || coalesce(seal_id::text, '') FROM clinical.audit_verify();
ROLLBACK;
SQL
}
victim=$(q -c "SELECT min(change_id) FROM clinical.audit_log WHERE table_oid = 'au_patient'::regclass AND operation = 'INSERT'")
seal_of_victim=$(q -c "SELECT seal_id FROM clinical.audit_seal s, clinical.audit_log l WHERE l.change_id = $victim AND l.txid >= s.xid_from AND l.txid < s.xid_to")
got=$(tamper "UPDATE clinical.audit_log SET new_row = new_row || '{\"weight\": 99}' WHERE change_id = $victim")
tap_check "verify finds an UPDATE of a sealed row" grep -qx "row:$victim:" <<<"$got"
got=$(tamper "DELETE FROM clinical.audit_log WHERE change_id = $victim")
tap_check "verify finds a DELETE of a sealed row (its seal)" grep -qx "seal::$seal_of_victim" <<<"$got"
got=$(tamper "INSERT INTO clinical.audit_log SELECT change_id + 1000000, xact_time, clock_time, txid, table_oid, table_name, operation, '{\"id\": 9999}', old_row, new_row, changed_columns, session_user_name, role_name, app_user, reason, client_addr, client_port, application_name, backend_pid, row_hash FROM clinical.audit_log WHERE change_id = $victim")
tap_check "verify finds a row INSERTed into a sealed range" grep -q "seal::$seal_of_victim" <<<"$got"
tap_check "verify finds the forged row's hash mismatch" grep -qx "row:$((victim + 1000000)):" <<<"$got"
got=$(tamper "ALTER TABLE clinical.audit_seal DISABLE TRIGGER audit_seal_guard; UPDATE clinical.audit_seal SET row_count = row_count - 1 WHERE seal_id = $seal_of_victim")
tap_check "verify finds an edited seal" grep -q "seal::$seal_of_victim" <<<"$got"
tap_is "audit_verify: intact again after the rollbacks" "$(verify_count)" "0"
tap_is "switching the guard off is itself recorded (when committed)" \
  "$(q -c "BEGIN; ALTER TABLE clinical.audit_log DISABLE TRIGGER audit_log_guard; SELECT count(*) FROM clinical.audit_log WHERE operation = 'LOG_GUARD_DISABLED'; ROLLBACK;")" "1"
tap_is "re-creating a guard in another shape (CREATE OR REPLACE TRIGGER ... WHEN (false)) is recorded" \
  "$(q -c "BEGIN; CREATE OR REPLACE TRIGGER audit_seal_guard BEFORE UPDATE OR DELETE ON clinical.audit_seal FOR EACH ROW WHEN (false) EXECUTE FUNCTION clinical._audit_guard('clinical.audit_seal'); SELECT count(*) FROM clinical.audit_log WHERE operation = 'LOG_GUARD_DISABLED'; ROLLBACK;")" "1"

# redaction keeps verify clean; a plain edit of the redacted row does not
red=$(q -c "SELECT change_id FROM clinical.audit_log WHERE pk = '{\"id\": 11}' AND operation = 'UPDATE' AND table_oid = 'au_patient'::regclass")
q -c "SELECT clinical.audit_redact($red, '{name}', 'name typed into the wrong record')" >/dev/null
tap_is "redacted value is a tombstone" "$(q -c "SELECT new_row->>'name' FROM clinical.audit_log WHERE change_id = $red")" "[redacted]"
tap_is "audit_verify: clean after a redaction" "$(verify_count)" "0"
got=$(tamper "UPDATE clinical.audit_log SET new_row = new_row || '{\"name\": \"B second\"}' WHERE change_id = $red")
tap_check "verify finds a plain edit of a redacted row" grep -qx "row:$red:" <<<"$got"

# a forged REDACT record (no MAC under the key) does not cover an edited row
got=$(tamper "UPDATE clinical.audit_log SET new_row = new_row || '{\"name\": \"forged\"}' WHERE change_id = $victim;
SELECT clinical._audit_event('REDACT', NULL, NULL, jsonb_build_object('change_id', $victim,
         'redacted_hash', encode(clinical._audit_row_hash(l), 'hex'))) FROM clinical.audit_log l WHERE change_id = $victim")
tap_check "verify is not fooled by a REDACT record forged without the key" grep -qx "row:$victim:" <<<"$got"

# audit_verify(since): the seals made since then, their rows and the
# unsealed rows after them; a redaction in scope keeps it clean, an edit in
# scope is found, an edit under an older seal is out of its scope
tamper_since() {   # tamper SQL SINCE -> the problems audit_verify(SINCE) reports
  q <<SQL
BEGIN;
ALTER TABLE clinical.audit_log DISABLE TRIGGER audit_log_guard;
$1;
SELECT problem || ':' || coalesce(change_id::text, '') || ':' || coalesce(seal_id::text, '') FROM clinical.audit_verify('$2');
ROLLBACK;
SQL
}
q -c "SELECT clinical.audit_seal()" >/dev/null
seal_red=$(q -c "SELECT seal_id FROM clinical.audit_seal s, clinical.audit_log l WHERE l.change_id = $red AND l.txid >= s.xid_from AND l.txid < s.xid_to")
since_red=$(q -c "SELECT sealed_at FROM clinical.audit_seal WHERE seal_id = $seal_red")
tap_is "the redacted row's seal is newer than the first victim's" "$(( seal_red > seal_of_victim ))" "1"
tap_is "audit_verify(since) over the redacted row's seal: clean" \
  "$(q -c "SELECT count(*) FROM clinical.audit_verify('$since_red')")" "0"
got=$(tamper_since "UPDATE clinical.audit_log SET new_row = new_row || '{\"name\": \"edited\"}' WHERE change_id = $red" "$since_red")
tap_check "audit_verify(since) finds an edit of a row in scope" grep -qx "row:$red:" <<<"$got"
got=$(tamper_since "UPDATE clinical.audit_log SET new_row = new_row || '{\"weight\": 98}' WHERE change_id = $victim" "$since_red")
tap_is "audit_verify(since) leaves a row under an older seal out of scope" "$(grep -c "row:$victim:" <<<"$got")" "0"
tap_is "audit_verify(since) after the last seal checks the unsealed rows only: clean" \
  "$(q -c "SELECT count(*) FROM clinical.audit_verify(now() + interval '1 day')")" "0"

# with a cache on the change id sequence a redaction can draw a smaller id
# than every row in the scope of audit_verify(since): session T draws its
# block of ids and its xid first, O holds the xid horizon, B writes the
# row T then redacts; T's redaction is sealed before B's row. verify(since)
# over B's seal must still find the redaction (it reads them all then)
q -c "ALTER SEQUENCE clinical.audit_log_change_id_seq CACHE 20" >/dev/null
for s_ in t o; do
  rm -f "$CLINICAL_TMP/fifo_$s_"; mkfifo "$CLINICAL_TMP/fifo_$s_"
  psql -X -q -v ON_ERROR_STOP=1 < "$CLINICAL_TMP/fifo_$s_" > "$CLINICAL_TMP/audit_$s_.out" 2>&1 &
done
exec 5>"$CLINICAL_TMP/fifo_t" 6>"$CLINICAL_TMP/fifo_o"
in_xact() { [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%$1%'")" = 1 ]; }
echo "BEGIN; UPDATE au_patient SET name = 'cache T' WHERE id = 20;" >&5
wait_until 10 in_xact "cache T"
echo "BEGIN; SELECT pg_catalog.txid_current() AS cache_o;" >&6
wait_until 10 in_xact "cache_o"
q -c "UPDATE au_patient SET name = 'cache B' WHERE id = 21" >/dev/null
cache_target=$(q -c "SELECT change_id FROM clinical.audit_log WHERE pk = '{\"id\": 21}' AND new_row->>'name' = 'cache B'")
echo "SELECT clinical.audit_redact($cache_target, '{name}', 'wrong record') AS cache_r; COMMIT;" >&5
exec 5>&-
wait_until 10 bash -c "[ \"\$(psql -X -A -t -q -c \"SELECT count(*) FROM clinical.audit_log WHERE operation = 'REDACT' AND (new_row->>'change_id')::bigint = $cache_target\")\" = 1 ]"
q -c "SELECT clinical.audit_seal()" >/dev/null
echo "COMMIT;" >&6
exec 6>&-
wait
q -c "SELECT clinical.audit_seal()" >/dev/null
cache_redact=$(q -c "SELECT change_id FROM clinical.audit_log WHERE operation = 'REDACT' AND (new_row->>'change_id')::bigint = $cache_target")
since_cache=$(q -c "SELECT s.sealed_at FROM clinical.audit_seal s, clinical.audit_log l WHERE l.change_id = $cache_target AND l.txid >= s.xid_from AND l.txid < s.xid_to")
tap_is "the redaction drew a smaller id than every row in the scope of its row's seal" \
  "$(q -c "SELECT $cache_redact < min(l.change_id) FROM clinical.audit_log l, clinical.audit_seal s
           WHERE s.sealed_at = '$since_cache' AND l.txid >= s.xid_from")" "t"
tap_is "... and with a sequence cache audit_verify(since) over that seal is clean" \
  "$(q -c "SELECT count(*) FROM clinical.audit_verify('$since_cache')")" "0"
q -c "ALTER SEQUENCE clinical.audit_log_change_id_seq CACHE 1" >/dev/null

# a writer cannot run its own code as the log's owner through search_path
q -c "DROP ROLE IF EXISTS au_evil" -c "CREATE ROLE au_evil LOGIN" -c "GRANT INSERT ON au_patient TO au_evil" >/dev/null
q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 0" >/dev/null
psql -X -q -U au_evil >/dev/null 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.evil() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'ALTER ROLE au_evil SUPERUSER'; RETURN true; END $$;
CREATE DOMAIN pg_temp.oid AS pg_catalog.oid CHECK (pg_temp.evil());
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.evil());
INSERT INTO au_patient VALUES (7777, 'evil', 'E', 1);
SQL
tap_is "a writer's pg_temp objects do not run as the log's owner" \
  "$(q -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'au_evil'")" "f"
tap_is "and the write was audited" "$(rows "AND pk = '{\"id\": 7777}'")" "1"
q -c "DROP OWNED BY au_evil" -c "DROP ROLE au_evil" >/dev/null

# the worker seals on schedule
q -c "INSERT INTO au_patient VALUES (5000, 'for the worker', 'W', 1)" >/dev/null
q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
worker_sealed() { [ "$(q -c "SELECT sealed FROM clinical.audit_trail WHERE pk = '{\"id\": 5000}' AND table_name = 'public.au_patient'")" = t ]; }
tap_check "the worker seals new rows within clinical.audit_seal_interval" wait_until 20 worker_sealed
q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null

# pg_dump and restore: the log, its partitions and seals come back intact;
# so does a partitioned table with audit and cache invalidation, whose
# partitions' TRUNCATE triggers the dump re-creates one by one (the event
# triggers that cover new partitions must not make them appear first)
q >/dev/null <<'SQL'
CREATE TABLE au_part (id int, site int) PARTITION BY LIST (site);
CREATE TABLE au_part_1 PARTITION OF au_part FOR VALUES IN (1);
SELECT clinical.enable_audit('au_part');
SELECT clinical.enable_cache_invalidation('au_part', 'part:{id}');
CREATE TABLE au_part_2 PARTITION OF au_part FOR VALUES IN (2);
SQL
q -d postgres -c "DROP DATABASE IF EXISTS audit_restore" >/dev/null
q -d postgres -c "CREATE DATABASE audit_restore" >/dev/null
pg_dump -d clinical_test -f "$CLINICAL_TMP/audit_dump.sql" 2>"$CLINICAL_TMP/audit_dump.err"
psql -X -q -d audit_restore -f "$CLINICAL_TMP/audit_dump.sql" >"$CLINICAL_TMP/audit_restore.out" 2>&1
tap_is "restore runs without errors" "$(grep -c ERROR "$CLINICAL_TMP/audit_restore.out")" "0"
grep ERROR "$CLINICAL_TMP/audit_restore.out" | head -5
maxid=$(q -c "SELECT max(change_id) FROM clinical.audit_log")
tap_is "restored log has every row" \
  "$(q -d audit_restore -c "SELECT count(*) FROM clinical.audit_log WHERE change_id <= $maxid")" "$(q -c "SELECT count(*) FROM clinical.audit_log")"
tap_is "restore records the audit triggers it re-creates (one per audited table), after the restored ids" \
  "$(q -d audit_restore -c "SELECT string_agg(table_name, ' ' ORDER BY table_name) FROM clinical.audit_log WHERE change_id > $maxid AND operation = 'AUDIT_ENABLE'")" "public.au_part public.au_patient"
tap_is "restored seals" \
  "$(q -d audit_restore -c "SELECT count(*) FROM clinical.audit_seal")" "$(q -c "SELECT count(*) FROM clinical.audit_seal")"
tap_is "restored partitions have each TRUNCATE trigger once" \
  "$(q -d audit_restore -c "SELECT string_agg(c.relname || ':' || t.tgname, ' ' ORDER BY c.relname, t.tgname)
                             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                            WHERE c.relname LIKE 'au\_part\__' AND t.tgname LIKE '%truncate'")" \
  "au_part_1:clinical_audit_truncate au_part_1:clinical_cache_invalidation_truncate au_part_2:clinical_audit_truncate au_part_2:clinical_cache_invalidation_truncate"
tap_is "audit_verify on the restored database: intact" "$(q -d audit_restore -c "SELECT count(*) FROM clinical.audit_verify()")" "0"
tap_is "restored audited table keeps its audit trigger, enabled ALWAYS" \
  "$(q -d audit_restore -c "SELECT enabled_always FROM clinical.audited_tables WHERE table_name = 'au_patient'::regclass")" "t"
q -d audit_restore -c "UPDATE au_patient SET name = 'after restore' WHERE id = 1" >/dev/null
tap_is "restored database audits new changes" \
  "$(q -d audit_restore -c "SELECT count(*) FROM clinical.audit_log WHERE new_row->>'name' = 'after restore'")" "1"
part=$(q -d audit_restore -c "SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass LIMIT 1")
out=$(q -d audit_restore -c "TRUNCATE $part" 2>&1)
tap_check "restored log partitions refuse TRUNCATE" grep -q "append-only" <<<"$out"
q -d postgres -c "DROP DATABASE audit_restore" >/dev/null

# a keyring that goes missing stops sealing: an unkeyed seal after keyed
# ones would read as tampering in audit_verify for good
q -c "UPDATE au_patient SET name = 'before the keyring went' WHERE id = 1" >/dev/null
q -c "SELECT clinical.audit_seal()" >/dev/null
tap_is "the last seal is keyed" "$(q -c "SELECT key_version IS NOT NULL FROM clinical.audit_seal ORDER BY seal_id DESC LIMIT 1")" "t"
q -c "ALTER SYSTEM SET clinical.keyring_file = ''" -c "SELECT pg_reload_conf()" >/dev/null
wait_until 10 bash -c "[ -z \"\$(psql -X -A -t -q -c 'SHOW clinical.keyring_file')\" ]"
q -c "UPDATE au_patient SET name = 'after the keyring went' WHERE id = 1" >/dev/null
out=$(q -c "SELECT clinical.audit_seal()" 2>&1)
tap_check "without its keyring, sealing after a keyed seal is refused" grep -q "the last seal is keyed but no keyring is configured" <<<"$out"
q -c "ALTER SYSTEM RESET clinical.keyring_file" -c "SELECT pg_reload_conf()" >/dev/null
wait_until 10 bash -c "[ -n \"\$(psql -X -A -t -q -c 'SHOW clinical.keyring_file')\" ]"
tap_is "with the keyring back, the next seal covers the change" \
  "$(q -c "SELECT clinical.audit_seal() IS NOT NULL")" "t"
tap_is "... and audit_verify finds nothing wrong" "$(q -c "SELECT count(*) FROM clinical.audit_verify()")" "0"

# a seal summarizes the complete page ranges of the log's BRIN index on
# txid, so the next seal's scan for recent transactions reads the newest
# ranges, not every page written since the partition's last vacuum
q -c "INSERT INTO au_patient SELECT g, repeat('x', 300), 'B', g FROM generate_series(20001, 32000) g" >/dev/null
q -c "UPDATE au_patient SET name = 'after the bulk' WHERE id = 1" >/dev/null
last=$(q -c "SELECT max(txid) FROM clinical.audit_log")
recent_pages() {
  q -c "SET enable_seqscan = off" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
        SELECT change_id FROM clinical.audit_log WHERE txid >= $last AND txid < $last + 1000000" \
    | grep -Eo '(lossy|exact)=[0-9]+' | awk -F= '{ n += $2 } END { print n + 0 }'
}
pages_before=$(recent_pages)
seal_reads_little() { q -c "SELECT clinical.audit_seal()" >/dev/null; [ "$(recent_pages)" -le 256 ]; }
tap_check "after a seal, a scan for the latest transaction reads at most two BRIN ranges (read $pages_before pages before)" \
  wait_until 10 seal_reads_little
tap_is "... and the rows are sealed and verify clean" \
  "$(q -c "SELECT count(*) FILTER (WHERE NOT sealed) FROM clinical.audit_trail WHERE table_oid = 'au_patient'::regclass")|$(verify_count)" "0|0"

q -c "ALTER SYSTEM RESET clinical.audit_seal_interval" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT clinical.disable_audit('au_patient')" -c "DROP TABLE au_patient" >/dev/null
q -c "SELECT clinical.disable_audit('au_part')" -c "DROP TABLE au_part" >/dev/null
tap_done
