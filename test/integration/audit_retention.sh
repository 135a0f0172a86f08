#!/usr/bin/env bash
# Integration: the audit log as a partition set. The first audited write
# registers clinical.audit_log with partition maintenance (monthly in UTC,
# premake 4, 7 years, detach); maintenance premakes its partitions with
# their indexes and TRUNCATE guard; a retention shorter than
# clinical.audit_min_retention is refused; rows older than seven years
# (imported from a legacy trail into a 2018 partition, hashed and sealed
# like any other) are detached by retention, which is recorded in the
# trail, and audit_verify stays clean; a legal hold blocks it; a partition
# dropped by hand is reported by audit_verify. Runs in its own database.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env
db=audit_retention
q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
q -d postgres -c "CREATE DATABASE $db" >/dev/null
qa() { q -d $db "$@"; }

qa >/dev/null <<'SQL'
CREATE EXTENSION clinical;
CREATE TABLE ret_visit (id int PRIMARY KEY, note text);
SELECT clinical.enable_audit('ret_visit');
INSERT INTO ret_visit SELECT g, 'v' || g FROM generate_series(1, 50) g;
SQL
tap_is "the first audited write registers the log as a partition set" \
  "$(qa -c "SELECT partition_interval || ' ' || premake || ' ' || retention || ' ' || retention_mode || ' ' || default_partition || ' ' || time_zone FROM clinical.partition_config WHERE parent = 'clinical.audit_log'::regclass")" \
  "1 mon 4 7 years detach false UTC"
qa -c "SELECT count(*) FROM clinical.run_maintenance('clinical.audit_log')" >/dev/null
tap_check "maintenance premakes the log's next months" \
  test "$(qa -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass")" -ge 5
tap_is "premade partitions get the BRIN indexes and the TRUNCATE guard" \
  "$(qa -c "SELECT bool_and((SELECT count(*) FROM pg_index x WHERE x.indrelid = i.inhrelid) = 2
                   AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = i.inhrelid AND t.tgname = 'audit_log_guard_truncate' AND t.tgenabled = 'A'))
             FROM pg_inherits i WHERE i.inhparent = 'clinical.audit_log'::regclass")" "t"
out=$(qa -c "UPDATE clinical.partition_config SET retention = '1 year' WHERE parent = 'clinical.audit_log'::regclass" -c "SELECT action || ': ' || detail FROM clinical.run_maintenance('clinical.audit_log') WHERE action IN ('error', 'skip')" 2>&1)
tap_check "a retention below clinical.audit_min_retention is refused" grep -q "shorter than clinical.audit_min_retention" <<<"$out"
qa -c "UPDATE clinical.partition_config SET retention = '7 years' WHERE parent = 'clinical.audit_log'::regclass" >/dev/null

# a legacy trail from 2018, imported with its content hashes, then sealed
qa >/dev/null <<'SQL'
SELECT clinical._audit_partition_for('2018-01-15 10:00+00');
INSERT INTO clinical.audit_log
SELECT (r).change_id, (r).xact_time, (r).clock_time, (r).txid, (r).table_oid, (r).table_name,
       (r).operation, (r).pk, (r).old_row, (r).new_row, (r).changed_columns, (r).session_user_name,
       (r).role_name, (r).app_user, (r).reason, (r).client_addr, (r).client_port,
       (r).application_name, (r).backend_pid, clinical._audit_row_hash(r)
  FROM (SELECT ROW(nextval('clinical.audit_log_change_id_seq'), '2018-01-15 10:00+00'::timestamptz,
                   '2018-01-15 10:00+00'::timestamptz, 3::bigint, 'ret_visit'::regclass::oid,
                   'public.ret_visit', 'INSERT', jsonb_build_object('id', 9000 + g), NULL::jsonb,
                   jsonb_build_object('id', 9000 + g, 'note', 'legacy'), NULL::text[], 'migration',
                   'migration', NULL::text, 'legacy import', NULL::inet, NULL::int, 'import', 1,
                   '\x'::bytea)::clinical.audit_log AS r
          FROM generate_series(1, 3) g) AS x;
SQL
qa -c "SELECT clinical.audit_seal()" >/dev/null
tap_is "sealed and intact before retention" "$(qa -c "SELECT count(*) FROM clinical.audit_verify()")" "0"
first=$(qa -c "SELECT min(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass")
tap_is "the oldest partition is the 2018 one" "$first" "clinical.audit_log_p20180101"

# a legal hold on the log blocks retention
qa -c "SELECT clinical.set_legal_hold('clinical.audit_log', true, 'FDA inspection 2033')" >/dev/null
qa -c "SELECT count(*) FROM clinical.run_maintenance('clinical.audit_log')" >/dev/null 2>&1
tap_is "under a legal hold, retention keeps the oldest month" \
  "$(qa -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass AND inhrelid = '$first'::regclass")" "1"
qa -c "SELECT clinical.set_legal_hold('clinical.audit_log', false, 'inspection closed')" >/dev/null

# the months older than 7 years are detached and recorded
qa -c "SELECT count(*) FROM clinical.run_maintenance('clinical.audit_log')" >/dev/null
tap_is "retention detaches the oldest month" \
  "$(qa -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass AND inhrelid = '$first'::regclass")" "0"
tap_is "the detach is recorded in the trail" \
  "$(qa -c "SELECT count(*) FROM clinical.audit_trail WHERE operation = 'PARTITION_DETACH' AND table_name = 'clinical.audit_log' AND new_row->>'partition' = '${first#clinical.}'")" "1"
qa -c "SELECT clinical.audit_seal()" >/dev/null
tap_is "audit_verify stays clean after retention" "$(qa -c "SELECT count(*) FROM clinical.audit_verify()")" "0"

# a partition dropped by hand (no retention of it) is reported
qa >/dev/null <<'SQL'
INSERT INTO ret_visit VALUES (1000, 'late');
SELECT clinical.audit_seal();
SQL
victim=$(qa -c "SELECT min(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'clinical.audit_log'::regclass")
got=$(qa -c "BEGIN" -c "DROP TABLE $victim" -c "SELECT problem || ': ' || detail FROM clinical.audit_verify()" -c "ROLLBACK" 2>&1)
tap_check "verify reports the rows of a partition dropped by hand" grep -q "^seal: " <<<"$got"
tap_is "the retention event names the upper bound it removed" \
  "$(qa -c "SELECT count(*) FROM clinical.audit_log WHERE operation = 'PARTITION_DETACH' AND (new_row->>'upper_bound')::timestamptz = '2018-02-01 00:00+00'")" "1"

q -d postgres -c "DROP DATABASE $db" >/dev/null
tap_done
