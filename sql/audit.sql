-- pg_regress suite of the audit trail: what the log holds for each kind of
-- change (deterministic columns only: no times, ids of transactions, pids
-- or hashes), the append-only guard, seals, verify and redaction.
CREATE EXTENSION IF NOT EXISTS clinical;

CREATE TABLE patients (
    id         integer PRIMARY KEY,
    mrn        text NOT NULL,
    name       text,
    dob        date,
    weight_kg  numeric,
    height_cm  double precision,
    smoker     boolean,
    site       varchar(8),
    notes      jsonb,
    visit_at   timestamptz,
    updated_at timestamptz
);

SELECT clinical.enable_audit('patients', exclude_columns => '{updated_at}',
                             pseudonymize_columns => '{mrn}');
SELECT table_name, exclude_columns, pseudonymize_columns, require_reason,
       enabled_always, truncate_audited
  FROM clinical.audited_tables;
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'patients'::regclass ORDER BY tgname;

SET timezone = 'UTC';
INSERT INTO patients VALUES
  (1, 'MRN-001', 'Ann Smith', '1980-01-02', 70.5, 170, false, 'BOS', '{"allergy": ["peanut"]}', '2026-01-05 10:00+00', now()),
  (2, 'MRN-002', 'Bob Jones', NULL, 'NaN', 'Infinity', NULL, 'NYC', NULL, NULL, now());

BEGIN;
SELECT clinical.set_context('dr.lee', 'correct misspelt name');
UPDATE patients SET name = 'Anne Smith', updated_at = now() WHERE id = 1;
COMMIT;

-- only the excluded column changes: nothing is logged
UPDATE patients SET updated_at = now();
-- no change at all: nothing is logged
UPDATE patients SET site = site;

BEGIN;
SET LOCAL clinical.app_user = 'cra.kim';
SET LOCAL clinical.change_reason = 'withdrawn consent';
DELETE FROM patients WHERE id = 2;
COMMIT;

SELECT change_id, table_name, operation, pk, old_row, new_row, changed_columns,
       app_user, reason, session_user_name = session_user AS who,
       role_name = current_user AS role, backend_pid = pg_backend_pid() AS pid,
       length(content_hash) AS hash_len, xact_time <= clock_time AS times
  FROM clinical.audit_trail
 WHERE operation IN ('INSERT', 'UPDATE', 'DELETE')
 ORDER BY change_id;

-- the pseudonym stored is the keyed hash of the identifier, not the identifier
SELECT new_row->>'mrn' = clinical.pseudonym('MRN-001') AS mrn_pseudonymised,
       position('MRN-001' in new_row::text) = 0 AS mrn_not_stored
  FROM clinical.audit_trail WHERE operation = 'INSERT' AND pk = '{"id": 1}';

-- the transaction's two clocks
SELECT count(DISTINCT xact_time) AS one_xact_time, count(DISTINCT txid) AS one_txid
  FROM clinical.audit_trail WHERE operation = 'INSERT';

-- TRUNCATE is audited as one statement-level row
TRUNCATE patients;
SELECT operation, pk, old_row, new_row FROM clinical.audit_trail
 WHERE operation = 'TRUNCATE';

-- the log is append-only, for its owner too
UPDATE clinical.audit_log SET reason = 'edited';
DELETE FROM clinical.audit_log;
TRUNCATE clinical.audit_log;

-- seal, then verify: intact
SELECT clinical.audit_seal() IS NOT NULL AS sealed;
SELECT clinical.audit_seal() IS NULL AS nothing_left_to_seal;
SELECT count(*) = 0 AS all_sealed FROM clinical.audit_trail WHERE NOT sealed;
SELECT row_count = (SELECT count(*) FROM clinical.audit_log) AS seal_covers_all,
       prev_mac IS NULL AS first_seal, key_version
  FROM clinical.audit_seal;
SELECT * FROM clinical.audit_verify();
UPDATE clinical.audit_seal SET row_count = 0;
DELETE FROM clinical.audit_seal;
TRUNCATE clinical.audit_seal;

-- redaction: the value is replaced, the event records it, verify stays clean
SELECT clinical.audit_redact(
         (SELECT change_id FROM clinical.audit_trail WHERE operation = 'UPDATE'),
         '{name}', 'participant name typed into the wrong study') IS NOT NULL AS redacted;
SELECT old_row, new_row FROM clinical.audit_trail WHERE operation = 'UPDATE';
SELECT new_row->'columns' AS columns, new_row->>'justification' AS justification,
       length(new_row->>'redacted_hash') AS hash_len
  FROM clinical.audit_trail WHERE operation = 'REDACT';
SELECT * FROM clinical.audit_verify();
SELECT clinical.audit_seal() IS NOT NULL AS redaction_sealed;
SELECT * FROM clinical.audit_verify();

-- switching audit off leaves a trace
ALTER TABLE patients DISABLE TRIGGER clinical_audit;
SELECT clinical.disable_audit('patients');
SELECT operation, table_name, new_row - 'command' AS detail
  FROM clinical.audit_trail
 WHERE operation IN ('AUDIT_ENABLE', 'ALTER TABLE', 'AUDIT_TRIGGER_DISABLED', 'AUDIT_DISABLE')
 ORDER BY change_id;
SELECT count(*) AS audited FROM clinical.audited_tables;

DROP TABLE patients;
DROP EXTENSION clinical;
