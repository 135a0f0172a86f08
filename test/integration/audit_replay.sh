#!/usr/bin/env bash
# Integration: concurrent writers plus sealing lose nothing. Four pgbench
# clients run a random INSERT / UPDATE (ON CONFLICT) / DELETE workload on an
# audited table while another session seals every 200 ms; afterwards,
# replaying the audit log from an empty table in change-id order reproduces
# the final table exactly, and audit_verify finds the trail intact.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS ar_item;
CREATE TABLE ar_item (id int PRIMARY KEY, val int NOT NULL, n int NOT NULL DEFAULT 0, note text);
SELECT clinical.enable_audit('ar_item');
SQL

cat > "$CLINICAL_TMP/ar_upsert.sql" <<'SQL'
\set k random(1, 300)
\set v random(1, 1000000)
INSERT INTO ar_item (id, val, note) VALUES (:k, :v, 'c' || :client_id)
  ON CONFLICT (id) DO UPDATE SET val = EXCLUDED.val, n = ar_item.n + 1, note = EXCLUDED.note;
SQL
cat > "$CLINICAL_TMP/ar_delete.sql" <<'SQL'
\set k random(1, 300)
DELETE FROM ar_item WHERE id = :k;
SQL
cat > "$CLINICAL_TMP/ar_multi.sql" <<'SQL'
\set k random(1, 300)
\set v random(1, 1000000)
BEGIN;
UPDATE ar_item SET val = :v WHERE id = :k;
UPDATE ar_item SET n = n + 10 WHERE id = :k + 1;
SAVEPOINT s;
DELETE FROM ar_item WHERE id = :k + 2;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SQL

( end=$((SECONDS + 12)); while [ $SECONDS -lt $end ]; do q -c "SELECT clinical.audit_seal()" >/dev/null; sleep 0.2; done ) &
sealer=$!
pgbench -n -c 4 -j 2 -T 10 -f "$CLINICAL_TMP/ar_upsert.sql@6" -f "$CLINICAL_TMP/ar_delete.sql@2" \
  -f "$CLINICAL_TMP/ar_multi.sql@2" clinical_test > "$CLINICAL_TMP/ar_pgbench.out" 2>&1
rc=$?
wait "$sealer"
tap_is "pgbench workload ran without errors" "$rc" "0"
grep -E "number of (transactions actually processed|failed)" "$CLINICAL_TMP/ar_pgbench.out" | sed 's/^/# /'

q -c "SELECT clinical.audit_seal()" >/dev/null
changes=$(q -c "SELECT count(*) FROM clinical.audit_log WHERE table_oid = 'ar_item'::regclass AND operation IN ('INSERT','UPDATE','DELETE')")
tap_check "the workload was audited ($changes changes)" test "$changes" -gt 1000
tap_is "every change is sealed" \
  "$(q -c "SELECT count(*) FROM clinical.audit_trail WHERE table_oid = 'ar_item'::regclass AND NOT sealed")" "0"
tap_check "several seals were made while writers ran" test "$(q -c "SELECT count(*) FROM clinical.audit_seal")" -gt 5
tap_is "audit_verify: intact" "$(q -c "SELECT count(*) FROM clinical.audit_verify()")" "0"

# replay: INSERT sets the row, UPDATE merges the changed columns, DELETE removes
diff=$(q <<'SQL'
CREATE TEMP TABLE ar_replay (pk jsonb PRIMARY KEY, doc jsonb NOT NULL);
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT operation, pk, new_row FROM clinical.audit_log
              WHERE table_oid = 'ar_item'::regclass AND operation IN ('INSERT', 'UPDATE', 'DELETE')
              ORDER BY change_id LOOP
        IF c.operation = 'INSERT' THEN
            INSERT INTO ar_replay VALUES (c.pk, c.new_row);
        ELSIF c.operation = 'UPDATE' THEN
            UPDATE ar_replay SET doc = doc || c.new_row WHERE pk = c.pk;
            IF NOT FOUND THEN RAISE EXCEPTION 'UPDATE of a row the replay does not have: %', c.pk; END IF;
        ELSE
            DELETE FROM ar_replay WHERE pk = c.pk;
            IF NOT FOUND THEN RAISE EXCEPTION 'DELETE of a row the replay does not have: %', c.pk; END IF;
        END IF;
    END LOOP;
END $$;
SELECT count(*) FROM (
    (SELECT doc FROM ar_replay EXCEPT ALL SELECT to_jsonb(t) FROM ar_item t)
    UNION ALL
    (SELECT to_jsonb(t) FROM ar_item t EXCEPT ALL SELECT doc FROM ar_replay)) AS d;
SQL
)
tap_is "replaying the audit log from empty reproduces the table" "$diff" "0"
tap_check "the final table is not empty" test "$(q -c "SELECT count(*) FROM ar_item")" -gt 0

q -c "ALTER SYSTEM RESET clinical.audit_seal_interval" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT clinical.disable_audit('ar_item')" -c "DROP TABLE ar_item" >/dev/null
tap_done
