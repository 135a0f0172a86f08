# Demo: the audit trail - a change with a reason, the rows it leaves, a seal
# and a clean verify, then a tampered row and the verify that catches it.
. "$CLINICAL_SRC/test/demo/lib.sh"

section "Audit trail: who changed what, when, from where and why"
run "CREATE TABLE demo_enrolled (id int PRIMARY KEY, mrn text, name text, site text, weight_kg numeric, updated_at timestamptz DEFAULT now())"
say "Audit the table: updated_at is noise (excluded), the MRN is stored only as its keyed hash, and changes need a reason."
show "SELECT clinical.enable_audit('demo_enrolled', exclude_columns => '{updated_at}', pseudonymize_columns => '{mrn}', require_reason => true)"
show "INSERT INTO demo_enrolled (id, mrn, name, site, weight_kg) VALUES (1, 'MRN-000101', 'Ann Smith', 'LON', 70.5), (2, 'MRN-000102', 'Bob Jones', 'PAR', 82)"

say "An UPDATE without a reason is refused:"
show "UPDATE demo_enrolled SET weight_kg = 71 WHERE id = 1"
say "With clinical.set_context(app_user, reason) in the transaction it goes through:"
printf "\n  sql> BEGIN; SELECT clinical.set_context('dr.lee', 'scale recalibrated, weight re-measured'); UPDATE demo_enrolled SET weight_kg = 71 WHERE id = 1; COMMIT;\n"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
BEGIN;
SELECT clinical.set_context('dr.lee', 'scale recalibrated, weight re-measured');
UPDATE demo_enrolled SET weight_kg = 71, updated_at = now() WHERE id = 1;
COMMIT;
SQL

say "The trail: one row per change; for UPDATE only the changed columns; the MRN as a pseudonym."
show "SELECT change_id, operation, pk, old_row, new_row, app_user, reason, session_user_name FROM clinical.audit_trail WHERE table_name = 'public.demo_enrolled' AND operation IN ('INSERT','UPDATE') ORDER BY change_id"
show "SELECT change_id, to_char(xact_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS xact_time_utc, txid, application_name, left(content_hash, 16) || '...' AS content_hash, sealed FROM clinical.audit_trail WHERE table_name = 'public.demo_enrolled' AND operation = 'UPDATE'"

say "The log is append-only, for its owner too:"
show "DELETE FROM clinical.audit_log"

say "A seal chains the content hashes of every committed row (the worker does this every clinical.audit_seal_interval); verify recomputes everything. No rows means intact."
show "SELECT clinical.audit_seal() AS seal_id"
show "SELECT seal_id, row_count, key_version, left(encode(seal_mac, 'hex'), 16) || '...' AS seal_mac FROM clinical.audit_seal ORDER BY seal_id DESC LIMIT 1"
show "SELECT * FROM clinical.audit_verify()"

say "Now a superuser switches the guard off and quietly edits the sealed UPDATE (in a transaction the demo rolls back):"
printf "\n  sql> ALTER TABLE clinical.audit_log DISABLE TRIGGER audit_log_guard;\n  sql> UPDATE clinical.audit_log SET new_row = '{\"weight_kg\": 70.5}' WHERE operation = 'UPDATE' AND table_name = 'public.demo_enrolled';\n  sql> SELECT * FROM clinical.audit_verify();\n"
psql -X -q -v ON_ERROR_STOP=1 -P footer=off <<'SQL' 2>&1 | sed 's/^/  /'
BEGIN;
ALTER TABLE clinical.audit_log DISABLE TRIGGER audit_log_guard;
UPDATE clinical.audit_log SET new_row = '{"weight_kg": 70.5}' WHERE operation = 'UPDATE' AND table_name = 'public.demo_enrolled';
\pset footer off
SELECT * FROM clinical.audit_verify();
SELECT change_id, operation, new_row - 'command' AS detail FROM clinical.audit_trail WHERE operation = 'LOG_GUARD_DISABLED';
ROLLBACK;
SQL
say "verify names the row whose content no longer matches its hash, and switching the guard off was itself recorded."

say "Redaction is the one sanctioned edit: the value becomes a tombstone, the redaction is an audit event, and verify stays clean."
show "SELECT clinical.audit_redact((SELECT change_id FROM clinical.audit_trail WHERE table_name = 'public.demo_enrolled' AND pk = '{\"id\": 2}'), '{name}', 'name entered under the wrong participant')"
show "SELECT change_id, operation, new_row FROM clinical.audit_trail WHERE table_name = 'public.demo_enrolled' AND (pk = '{\"id\": 2}' OR operation = 'REDACT') ORDER BY change_id"
show "SELECT * FROM clinical.audit_verify()"
