-- pgTAP: the audit trail's API, every option and every error. Runs in one
-- transaction that is rolled back.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
SELECT plan(109);

-- objects
SELECT has_table('clinical', 'audit_log', 'table clinical.audit_log exists');
SELECT has_table('clinical', 'audit_seal', 'table clinical.audit_seal exists');
SELECT has_view('clinical', 'audit_trail', 'view clinical.audit_trail exists');
SELECT has_view('clinical', 'audited_tables', 'view clinical.audited_tables exists');
SELECT has_function('clinical', 'enable_audit', ARRAY['regclass', 'text[]', 'text[]', 'boolean']);
SELECT has_function('clinical', 'disable_audit', ARRAY['regclass']);
SELECT has_function('clinical', 'set_context', ARRAY['text', 'text']);
SELECT has_function('clinical', 'audit_seal', '{}'::text[]);
SELECT has_function('clinical', 'audit_verify', ARRAY['timestamp with time zone']);
SELECT has_function('clinical', 'audit_redact', ARRAY['bigint', 'text[]', 'text']);
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'clinical' AND p.prosecdef
              AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)),
          0, 'every SECURITY DEFINER function pins search_path');
SELECT is((SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'clinical' AND c.relname ~ '^audit_(log|seal|trail)$|^audited_tables$'
              AND obj_description(c.oid, 'pg_class') IS NULL),
          0, 'the audit tables and views have comments');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'clinical' AND p.proname ~ 'audit|set_context'
              AND obj_description(p.oid, 'pg_proc') IS NULL),
          0, 'the audit functions have comments');
SELECT is((SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'clinical.audit_log'::regclass),
          'r', 'audit_log is range partitioned');

-- a table to audit, owned by an ordinary role
CREATE ROLE audit_tap_owner;
CREATE ROLE audit_tap_other;
GRANT USAGE ON SCHEMA clinical TO audit_tap_owner, audit_tap_other;
CREATE TABLE public.tap_visits (id int PRIMARY KEY, subject text, value numeric, secret text, note text);
ALTER TABLE public.tap_visits OWNER TO audit_tap_owner;
CREATE VIEW public.tap_view AS SELECT 1 AS x;

-- bad input: each a clear error, nothing created
SELECT throws_ok($$SELECT clinical.enable_audit(NULL)$$, '22004', 'target must not be null', 'enable_audit: NULL target');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_view')$$, '42809', '"public.tap_view" is not a table', 'enable_audit: a view');
SELECT throws_ok($$SELECT clinical.enable_audit('clinical.audit_seal')$$, '22023', NULL, 'enable_audit: the extension''s own table');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_visits', '{nope}')$$, '42703',
                 'column "nope" of relation "public.tap_visits" does not exist', 'enable_audit: unknown excluded column');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_visits', '{}', '{nope}')$$, '42703', NULL,
                 'enable_audit: unknown pseudonymised column');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_visits', '{secret}', '{secret}')$$, '22023',
                 'a column cannot be both excluded and pseudonymised', 'enable_audit: a column in both lists');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_visits', NULL)$$, '22004', NULL, 'enable_audit: NULL option');
SET LOCAL ROLE audit_tap_other;
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_visits')$$, '42501', 'must be owner of table public.tap_visits',
                 'enable_audit: not the owner');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_visits'::regclass), 0,
          'failed calls created no trigger');
SELECT throws_ok($$SELECT clinical.disable_audit('public.tap_visits')$$, '42704', 'table "public.tap_visits" is not audited',
                 'disable_audit: a table that is not audited');

-- enable as the owner
SET LOCAL ROLE audit_tap_owner;
SELECT lives_ok($$SELECT clinical.enable_audit('public.tap_visits', '{note}', '{subject}')$$, 'enable_audit as the owner');
RESET ROLE;
SELECT is((SELECT array_agg(tgname::text || ':' || tgenabled::text ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'public.tap_visits'::regclass),
          '{clinical_audit:A,clinical_audit_truncate:A}', 'row and TRUNCATE triggers, enabled ALWAYS');
SELECT results_eq($$SELECT exclude_columns, pseudonymize_columns, require_reason FROM clinical.audited_tables
                    WHERE table_name = 'public.tap_visits'::regclass$$,
                  $$VALUES ('{note}'::text[], '{subject}'::text[], false)$$, 'audited_tables shows the options');

-- idempotent; a second call changes the options
SET LOCAL ROLE audit_tap_owner;
SELECT lives_ok($$SELECT clinical.enable_audit('public.tap_visits', '{}', '{subject,secret}', true)$$, 'enable_audit again');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_visits'::regclass), 2,
          'still one pair of triggers');
SELECT results_eq($$SELECT exclude_columns, pseudonymize_columns, require_reason FROM clinical.audited_tables
                    WHERE table_name = 'public.tap_visits'::regclass$$,
                  $$VALUES ('{}'::text[], '{subject,secret}'::text[], true)$$, 'the options changed');
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
              AND operation = 'AUDIT_ENABLE'), 2, 'each enable_audit is recorded');

-- writes by a role with no privilege on the log are audited
GRANT ALL ON public.tap_visits TO audit_tap_other;
SET LOCAL ROLE audit_tap_other;
SELECT lives_ok($$INSERT INTO public.tap_visits VALUES (1, 'S-001', 5.5, 'hush', 'n1'), (2, 'S-002', 6, NULL, 'n2')$$,
                'INSERT without a reason is allowed');
SELECT throws_ok($$SELECT * FROM clinical.audit_log$$, '42501', NULL, 'other roles cannot read the log');
SELECT throws_ok($$INSERT INTO clinical.audit_log (change_id) VALUES (1)$$, '42501', NULL,
                 'other roles cannot write the log');
SELECT throws_ok($$SELECT clinical._audit_event('FORGED', NULL, NULL, NULL)$$, '42501', NULL,
                 'other roles cannot record events');
SELECT throws_ok($$SELECT clinical.audit_seal()$$, '42501', NULL, 'audit_seal is not granted to PUBLIC');
SELECT throws_ok($$SELECT clinical.audit_redact(1, '{x}', 'why')$$, '42501', NULL, 'audit_redact is superuser only');

-- require_reason
SELECT throws_ok($$UPDATE public.tap_visits SET value = 7 WHERE id = 1$$, '55000',
                 'UPDATE on public.tap_visits requires a reason for the change', 'UPDATE without a reason fails');
SELECT throws_ok($$DELETE FROM public.tap_visits WHERE id = 2$$, '55000', NULL, 'DELETE without a reason fails');
SELECT lives_ok($$SELECT clinical.set_context('u.one', 'query resolved')$$, 'set_context');
SELECT is(current_setting('clinical.change_reason'), 'query resolved', 'set_context sets clinical.change_reason');
SELECT lives_ok($$UPDATE public.tap_visits SET value = 7 WHERE id = 1$$, 'UPDATE with a reason');
SELECT lives_ok($$UPDATE public.tap_visits SET value = 7 WHERE id = 1$$, 'an UPDATE that changes nothing');
RESET ROLE;

SELECT results_eq($$SELECT operation, pk, old_row, new_row, changed_columns, app_user, reason,
                            session_user_name = session_user::text, role_name
                     FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
                      AND operation = 'UPDATE'$$,
                  $$VALUES ('UPDATE'::text, '{"id": 1}'::jsonb, '{"value": 5.5}'::jsonb, '{"value": 7}'::jsonb,
                            '{value}'::text[], 'u.one'::text, 'query resolved'::text, true,
                            'audit_tap_other'::text)$$,
                  'one UPDATE row: changed columns only, who and why');
SELECT results_eq($$SELECT new_row->>'subject', new_row->>'secret', new_row->>'note'
                     FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
                      AND operation = 'INSERT' AND pk = '{"id": 1}'$$,
                  $$VALUES (clinical.pseudonym('S-001'), clinical.pseudonym('hush'), 'n1'::text)$$,
                  'pseudonymised columns hold the keyed hash; others their value');
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
              AND operation = 'INSERT'), 2, 'a multi-row INSERT is audited row by row');
SELECT ok((SELECT bool_and(clinical._audit_row_hash(l) = l.row_hash) FROM clinical.audit_log AS l
            WHERE table_oid = 'public.tap_visits'::regclass), 'stored hashes match the recomputed ones');

-- the log is partitioned by month: the changes above went into this
-- month's partition (UTC), which the first of them created
SELECT ok(to_regclass('clinical.audit_log_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYYMMDD'))
          = ANY (ARRAY(SELECT i.inhrelid::regclass FROM pg_inherits i WHERE i.inhparent = 'clinical.audit_log'::regclass)),
          'this month''s partition (UTC) audit_log_pYYYYMM01 is a partition of audit_log');
SELECT is((SELECT count(*)::int FROM ONLY clinical.audit_log), 0, 'the parent holds no row of its own');
SELECT ok((SELECT count(*) FROM clinical.audit_log) > 0
          AND (SELECT bool_and(tableoid::regclass::text ~ '^clinical\.audit_log_p\d{8}$') FROM clinical.audit_log),
          'every change row is in a monthly partition');

-- the options are read from the trigger: excluded columns never stored
SET LOCAL ROLE audit_tap_owner;
SELECT lives_ok($$SELECT clinical.enable_audit('public.tap_visits', '{secret,note}')$$, 'exclude two columns');
INSERT INTO public.tap_visits VALUES (3, 'S-003', 1, 'hidden', 'hidden too');
RESET ROLE;
SELECT is((SELECT new_row FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass AND pk = '{"id": 3}'),
          '{"id": 3, "value": 1, "subject": "S-003"}'::jsonb, 'excluded columns are not stored');

-- session_replication_role = replica does not switch audit off
SET LOCAL session_replication_role = replica;
INSERT INTO public.tap_visits VALUES (4, 'S-004', 2, NULL, NULL);
RESET session_replication_role;
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass AND pk = '{"id": 4}'),
          1, 'a change under session_replication_role = replica is audited');
-- and the event triggers fire in that mode too: switching audit off there
-- is recorded
CREATE TABLE public.tap_replica (id int PRIMARY KEY);
SELECT clinical.enable_audit('public.tap_replica');
SET LOCAL session_replication_role = replica;
DROP TRIGGER clinical_audit ON public.tap_replica;
RESET session_replication_role;
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE table_name = 'public.tap_replica' AND operation = 'AUDIT_DISABLE'),
          1, 'dropping an audit trigger under session_replication_role = replica is recorded');
SELECT is((SELECT array_agg(evtname::text || ' ' || evtenabled::text ORDER BY evtname) FROM pg_event_trigger
            WHERE evtname LIKE 'clinical\_%'),
          '{"clinical_audit_ddl A","clinical_audit_drop A","clinical_cache_invalidation_ddl A","clinical_cache_invalidation_sql_drop A","clinical_partition_drop A"}',
          'every event trigger of the extension is enabled ALWAYS');

-- a renamed role is recorded by its new name (the name cache follows renames)
ALTER ROLE audit_tap_other RENAME TO audit_tap_renamed;
SET LOCAL ROLE audit_tap_renamed;
INSERT INTO public.tap_visits VALUES (6, 'S-006', 1, NULL, NULL);
RESET ROLE;
SELECT is((SELECT role_name FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
              AND pk = '{"id": 6}'), 'audit_tap_renamed', 'a renamed role is recorded by its new name');
ALTER ROLE audit_tap_renamed RENAME TO audit_tap_other;

-- redaction errors
SELECT throws_ok($$SELECT clinical.audit_redact(NULL, '{x}', 'why')$$, '22004', NULL, 'audit_redact: NULL id');
SELECT throws_ok($$SELECT clinical.audit_redact(1, '{}', 'why')$$, '22023', NULL, 'audit_redact: no columns');
SELECT throws_ok($$SELECT clinical.audit_redact(1, '{x}', '  ')$$, '22023', 'a redaction needs a justification',
                 'audit_redact: no justification');
SELECT throws_ok($$SELECT clinical.audit_redact(-1, '{x}', 'why')$$, 'P0002', NULL, 'audit_redact: unknown change');
SELECT throws_ok(format($$SELECT clinical.audit_redact(%s, '{nope}', 'why')$$,
                        (SELECT change_id FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
                            AND pk = '{"id": 3}')),
                 '42703', NULL, 'audit_redact: a column the change does not hold');

-- disable
SET LOCAL ROLE audit_tap_owner;
SELECT lives_ok($$SELECT clinical.disable_audit('public.tap_visits')$$, 'disable_audit as the owner');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_visits'::regclass), 0, 'triggers gone');
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE table_oid = 'public.tap_visits'::regclass
              AND operation = 'AUDIT_DISABLE'), 1, 'disable_audit is recorded');

-- dropping an audited table leaves a trace
CREATE TABLE public.tap_dropped (id int PRIMARY KEY);
SELECT clinical.enable_audit('public.tap_dropped');
DROP TABLE public.tap_dropped;
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE operation = 'DROP TABLE'
              AND table_name = 'public.tap_dropped'), 1, 'DROP TABLE of an audited table is recorded');

-- switching audit off by other routes is recorded too
CREATE TABLE public.tap_sly (id int PRIMARY KEY, x float8);
SELECT clinical.enable_audit('public.tap_sly');
ALTER TRIGGER clinical_audit ON public.tap_sly RENAME TO quiet;
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE operation = 'AUDIT_TRIGGER_RENAMED'
              AND table_oid = 'public.tap_sly'::regclass), 1, 'renaming an audit trigger is recorded');
DROP TRIGGER clinical_audit_truncate ON public.tap_sly;
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE operation = 'AUDIT_TRUNCATE_DISABLE'
              AND table_name = 'public.tap_sly'), 1, 'dropping the TRUNCATE audit trigger is recorded');
CREATE FUNCTION pg_temp.tap_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER clinical_audit AFTER INSERT ON public.tap_sly FOR EACH ROW EXECUTE FUNCTION pg_temp.tap_noop();
SELECT is((SELECT count(*)::int FROM clinical.audit_log WHERE operation = 'AUDIT_TRIGGER_REPLACED'
              AND table_oid = 'public.tap_sly'::regclass), 1, 'an audit trigger name on another function is recorded');
SELECT throws_ok($$SELECT clinical._audit_attach(987654::oid::regclass, '{}')$$, '42P01', NULL,
                 '_audit_attach of a missing relation is an error, not a crash');
SET LOCAL ROLE audit_tap_other;
SELECT throws_ok($$SELECT clinical._audit_attach('public.tap_sly', '{}')$$, '42501', NULL,
                 '_audit_attach needs the table''s owner');
RESET ROLE;

-- floats keep their full precision, as to_jsonb writes them
DROP TRIGGER quiet ON public.tap_sly;
DROP TRIGGER clinical_audit ON public.tap_sly;
SELECT clinical.enable_audit('public.tap_sly');
INSERT INTO public.tap_sly VALUES (1, 0.1::float8 + 0.2::float8);
SELECT is((SELECT new_row->'x' FROM clinical.audit_log WHERE table_oid = 'public.tap_sly'::regclass
              AND operation = 'INSERT'), to_jsonb(0.1::float8 + 0.2::float8), 'float8 values are stored exactly');

-- row objects are laid out in jsonb key order once per table (shorter keys
-- first, then bytewise): the same jsonb as the server builds, and lookups work
CREATE TABLE public.tap_keys ("b" int PRIMARY KEY, "a" int, "ab" text, "é" int, "Z" bool, "aa" numeric, "B" text);
SELECT clinical.enable_audit('public.tap_keys');
INSERT INTO public.tap_keys VALUES (1, 2, 'x', 3, true, 4.5, NULL);
SELECT is((SELECT new_row::text FROM clinical.audit_log WHERE table_name = 'public.tap_keys' AND operation = 'INSERT'),
          jsonb_build_object('b', 1, 'a', 2, 'ab', 'x', 'é', 3, 'Z', true, 'aa', 4.5, 'B', NULL)::text,
          'a row object is the jsonb the server builds, keys in jsonb order');
SELECT is((SELECT array[new_row->>'a', new_row->>'b', new_row->>'B', new_row->>'Z', new_row->>'aa', new_row->>'ab', new_row->>'é',
                        pk->>'b']
             FROM clinical.audit_log WHERE table_name = 'public.tap_keys' AND operation = 'INSERT'),
          array['2', '1', NULL, 'true', '4.5', 'x', '3', '1'], 'every key of a row object is found by ->>');
UPDATE public.tap_keys SET "é" = 30, "a" = 20;
SELECT is((SELECT old_row::text || ' ' || new_row::text FROM clinical.audit_log
            WHERE table_name = 'public.tap_keys' AND operation = 'UPDATE'),
          '{"a": 2, "é": 3} {"a": 20, "é": 30}', 'an UPDATE stores only the changed columns, in key order');

-- a partitioned table: row triggers are cloned, each partition gets its TRUNCATE trigger
CREATE TABLE public.tap_part (id int, site int) PARTITION BY LIST (site);
CREATE TABLE public.tap_part_1 PARTITION OF public.tap_part FOR VALUES IN (1);
SELECT clinical.enable_audit('public.tap_part');
INSERT INTO public.tap_part VALUES (1, 1);
TRUNCATE public.tap_part_1;
SELECT is((SELECT array_agg(operation ORDER BY change_id) FROM clinical.audit_log
            WHERE table_oid = 'public.tap_part_1'::regclass AND operation IN ('INSERT', 'TRUNCATE')),
          '{INSERT,TRUNCATE}', 'a partition''s INSERT and its own TRUNCATE are audited');
-- partitions added later get the TRUNCATE trigger from the DDL event trigger:
-- created in the table, attached to it, and a level further down
SELECT clinical.enable_audit('public.tap_part', exclude_columns => '{id}');
CREATE TABLE public.tap_part_2 PARTITION OF public.tap_part FOR VALUES IN (2);
CREATE TABLE public.tap_part_3 (id int, site int);
ALTER TABLE public.tap_part ATTACH PARTITION public.tap_part_3 FOR VALUES IN (3);
CREATE TABLE public.tap_part_4 PARTITION OF public.tap_part FOR VALUES IN (4) PARTITION BY RANGE (id);
CREATE TABLE public.tap_part_4a PARTITION OF public.tap_part_4 FOR VALUES FROM (0) TO (10);
SELECT is((SELECT array_agg(c.relname || ' ' || t.tgenabled::text || ' ' || array_to_string(clinical._trigger_args(t.tgargs), ',')
                            ORDER BY c.relname)
             FROM pg_class c JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'clinical_audit_truncate'
            WHERE c.relname LIKE 'tap\_part\__%'),
          '{"tap_part_1 A x:id","tap_part_2 A x:id","tap_part_3 A x:id","tap_part_4 A x:id","tap_part_4a A x:id"}',
          'partitions created, attached or nested later get the TRUNCATE trigger with the table''s options, enabled ALWAYS');
INSERT INTO public.tap_part VALUES (5, 4);
TRUNCATE public.tap_part_3;
TRUNCATE public.tap_part_4a;
SELECT is((SELECT array_agg(table_name || ' ' || operation ORDER BY change_id) FROM clinical.audit_log
            WHERE table_name IN ('public.tap_part_3', 'public.tap_part_4a')),
          '{"public.tap_part_4a INSERT","public.tap_part_3 TRUNCATE","public.tap_part_4a TRUNCATE"}',
          'a TRUNCATE of a partition added later is audited');
SELECT is((SELECT count(*)::int FROM clinical.audit_log
            WHERE table_name LIKE 'public.tap\_part\__%' AND operation NOT IN ('INSERT', 'TRUNCATE')), 0,
          'adding the TRUNCATE triggers to new partitions records no event of its own');
-- a foreign partition cannot have a TRUNCATE trigger: it is left out, and
-- does not make auditing or later partition DDL fail
CREATE EXTENSION IF NOT EXISTS file_fdw;
CREATE SERVER tap_audit_files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE public.tap_part_f PARTITION OF public.tap_part FOR VALUES IN (9)
  SERVER tap_audit_files OPTIONS (filename '/dev/null');
SELECT lives_ok($$CREATE TABLE public.tap_part_7 PARTITION OF public.tap_part FOR VALUES IN (7)$$,
                'a partition is added next to a foreign partition of an audited table');
SELECT lives_ok($$SELECT clinical.enable_audit('public.tap_part', exclude_columns => '{id}')$$,
                'enable_audit() on a table with a foreign partition');
-- an attached table that brings its own TRUNCATE trigger of that name, not
-- enabled ALWAYS and without the table's options, gets the table's
CREATE TABLE public.tap_part_8 (id int, site int);
CREATE TRIGGER clinical_audit_truncate AFTER TRUNCATE ON public.tap_part_8
  EXECUTE FUNCTION clinical.audit_trigger();
ALTER TABLE public.tap_part_8 DISABLE TRIGGER clinical_audit_truncate;
ALTER TABLE public.tap_part ATTACH PARTITION public.tap_part_8 FOR VALUES IN (8);
SELECT is((SELECT t.tgenabled::text || ' ' || array_to_string(clinical._trigger_args(t.tgargs), ',')
             FROM pg_trigger t WHERE t.tgrelid = 'public.tap_part_8'::regclass AND t.tgname = 'clinical_audit_truncate'),
          'A x:id', 'an attached table''s own stale TRUNCATE trigger is replaced by the table''s, enabled ALWAYS');
SELECT clinical.disable_audit('public.tap_part');
SELECT is((SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relname LIKE 'tap\_part%' AND NOT t.tgisinternal
              AND t.tgname LIKE 'clinical_audit%'), 0, 'disable_audit removes the partitions'' triggers too');
CREATE TABLE public.tap_part_5 PARTITION OF public.tap_part FOR VALUES IN (5);
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_part_5'::regclass
              AND tgname LIKE 'clinical_audit%'), 0, 'a partition added after disable_audit gets no audit trigger');

-- floats are recorded exactly whatever the session's extra_float_digits
CREATE TABLE public.tap_dose (id int PRIMARY KEY, dose float8);
SELECT clinical.enable_audit('public.tap_dose');
INSERT INTO public.tap_dose VALUES (1, 0.12);
SET LOCAL extra_float_digits = -15;
UPDATE public.tap_dose SET dose = 0.14;
RESET extra_float_digits;
SELECT is((SELECT old_row::text || ' ' || new_row::text FROM clinical.audit_log
            WHERE table_name = 'public.tap_dose' AND operation = 'UPDATE'),
          '{"dose": 0.12} {"dose": 0.14}', 'a float change is recorded exactly with extra_float_digits = -15');

-- an audit trigger narrowed by a column list does not run
CREATE OR REPLACE TRIGGER clinical_audit AFTER INSERT OR UPDATE OF id OR DELETE ON public.tap_dose
  FOR EACH ROW EXECUTE FUNCTION clinical.audit_trigger();
SELECT throws_ok($$UPDATE public.tap_dose SET id = 2$$, '42P17', NULL,
                 'an audit trigger with a column list (UPDATE OF ...) refuses to run');
SELECT clinical.enable_audit('public.tap_dose');
SELECT lives_ok($$UPDATE public.tap_dose SET id = 2$$, 'enable_audit() again restores the full trigger: the refused UPDATE runs');
SELECT is((SELECT new_row::text FROM clinical.audit_log WHERE table_name = 'public.tap_dose' AND operation = 'UPDATE'
            ORDER BY change_id DESC LIMIT 1), '{"id": 2}', '... and is audited');

-- seals name only positive key versions
SELECT throws_ok($$INSERT INTO clinical.audit_seal VALUES (-1, now(), 0, 0, 0, 0, 0, now(), now(), '\x00', 0, NULL, '\x00')$$,
                 '23514', NULL, 'audit_seal.key_version 0 violates its CHECK (positive or NULL)');

-- a row with a transaction id no transaction had is reported
INSERT INTO clinical.audit_log (change_id, xact_time, clock_time, txid, operation, session_user_name, role_name,
                                backend_pid, row_hash)
VALUES (nextval('clinical.audit_log_change_id_seq'), now(), now(), -5, 'INSERT', 'x', 'x', 1, '\x00');
SELECT ok(EXISTS (SELECT 1 FROM clinical.audit_verify() WHERE detail LIKE '%transaction id -5 was never assigned%'),
          'audit_verify() reports a row with a negative transaction id');

-- review fixes (2026-11-26)
-- a redaction reaches a key column's value in pk, also where pk alone holds it
CREATE TABLE public.tap_subj (mrn text PRIMARY KEY, phone text);
SELECT clinical.enable_audit('public.tap_subj');
INSERT INTO public.tap_subj VALUES ('JOHN-DOE-1970', '555');
UPDATE public.tap_subj SET phone = '556';
SELECT clinical.audit_redact((SELECT change_id FROM clinical.audit_log WHERE table_name = 'public.tap_subj' AND operation = 'INSERT'),
                             '{mrn}', 'participant name typed into mrn');
SELECT lives_ok($$SELECT clinical.audit_redact((SELECT change_id FROM clinical.audit_log
                                                 WHERE table_name = 'public.tap_subj' AND operation = 'UPDATE'),
                                                '{mrn}', 'participant name typed into mrn')$$,
                'audit_redact() takes a key column that only pk holds (an UPDATE that did not change it)');
SELECT is((SELECT count(*)::int FROM clinical.audit_trail WHERE table_name = 'public.tap_subj'
             AND (pk::text || coalesce(old_row::text, '') || coalesce(new_row::text, '')) LIKE '%JOHN-DOE%'),
          0, 'after the redactions no stored pk, old_row or new_row holds the redacted value');
SELECT is((SELECT count(*)::int FROM clinical.audit_verify() WHERE change_id IN
             (SELECT change_id FROM clinical.audit_log WHERE table_name = 'public.tap_subj')),
          0, 'audit_verify() accepts the redacted pk');
SELECT throws_ok($$SELECT clinical.audit_redact(1, '{{phone},{mrn}}', 'x')$$, '22023', NULL,
                 'audit_redact() refuses a two-dimensional column list');

-- json that jsonb cannot hold is kept as its text, never refused
CREATE TABLE public.tap_js (id int PRIMARY KEY, doc json);
SELECT clinical.enable_audit('public.tap_js');
SELECT lives_ok($$INSERT INTO public.tap_js VALUES (1, '{"k": "\u0000"}'), (2, '{"n": 1e1000000}'), (3, '{"a": [1, 2e3]}')$$,
                'an audited table takes json values jsonb refuses (\u0000, a number beyond numeric)');
SELECT is((SELECT array_agg(jsonb_typeof(new_row->'doc') ORDER BY (pk->>'id')::int) FROM clinical.audit_log
            WHERE table_name = 'public.tap_js' AND operation = 'INSERT'),
          '{string,string,object}'::text[], '... stored as their text; json jsonb can hold stays an object');
SELECT is((SELECT new_row->>'doc' FROM clinical.audit_log WHERE table_name = 'public.tap_js' AND pk->>'id' = '1'),
          '{"k": "\u0000"}', '... the text as written');
SELECT lives_ok($$DELETE FROM public.tap_js$$, 'such rows can be deleted with audit on');

-- a row too large for jsonb gets an error that names the way out
CREATE TABLE public.tap_big (id int PRIMARY KEY, t text);
SELECT clinical.enable_audit('public.tap_big');
SELECT throws_like($$INSERT INTO public.tap_big VALUES (1, repeat('y', 270 * 1024 * 1024))$$,
                   '%would exceed jsonb''s limit%', 'a row whose audit record would pass 256 MB fails with 54000 and says why');

-- a reason of blanks is no reason
CREATE TABLE public.tap_rr (id int PRIMARY KEY, v int);
SELECT clinical.enable_audit('public.tap_rr', require_reason => true);
INSERT INTO public.tap_rr VALUES (1, 1);
SET LOCAL clinical.change_reason = '   ';
SELECT throws_ok($$UPDATE public.tap_rr SET v = 2$$, '55000', NULL, 'require_reason refuses a reason of blanks only');
RESET clinical.change_reason;

-- a renamed audit trigger stays visible and is not doubled
ALTER TRIGGER clinical_audit ON public.tap_rr RENAME TO audit_old;
SELECT is((SELECT count(*)::int FROM clinical.audited_tables WHERE table_name = 'public.tap_rr'::regclass),
          1, 'audited_tables lists a table whose audit trigger was renamed');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_rr')$$, '42710', NULL,
                 'enable_audit() refuses to add a second audit trigger next to a renamed one');
SELECT clinical.disable_audit('public.tap_rr');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_rr'::regclass
             AND tgfoid = 'clinical.audit_trigger()'::regprocedure), 0,
          'disable_audit() removes the renamed trigger too');
SELECT ok(EXISTS (SELECT 1 FROM clinical.audit_log WHERE table_name = 'public.tap_rr' AND operation = 'AUDIT_DISABLE'),
          '... and its removal is recorded as AUDIT_DISABLE');

-- partitions follow their audited parent; a detached one keeps no audit trigger
CREATE TABLE public.tap_pp (id int, site int) PARTITION BY LIST (site);
CREATE TABLE public.tap_pp_1 PARTITION OF public.tap_pp FOR VALUES IN (1);
CREATE TABLE public.tap_pp_2 PARTITION OF public.tap_pp FOR VALUES IN (2);
SELECT clinical.enable_audit('public.tap_pp');
SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_pp_1')$$, '42809', NULL,
                 'enable_audit() on a partition of an audited table says it is audited through its parent');
SELECT throws_ok($$SELECT clinical.disable_audit('public.tap_pp_1')$$, '42809', NULL,
                 'disable_audit() on such a partition says the same');
ALTER TABLE public.tap_pp DETACH PARTITION public.tap_pp_2;
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_pp_2'::regclass
             AND tgfoid = 'clinical.audit_trigger()'::regprocedure), 0,
          'a detached partition keeps neither the row nor the TRUNCATE audit trigger');

SELECT throws_ok($$SELECT clinical.enable_audit('public.tap_pp', exclude_columns => '{site,site}')$$, '22023', NULL,
                 'enable_audit() refuses a column named twice in one list');

INSERT INTO public.tap_js VALUES (4, '{"id": "3e4a9b", "t": "caf\u00e9", "n": 1.5e3}');
SELECT is((SELECT jsonb_typeof(new_row->'doc') FROM clinical.audit_log
            WHERE table_name = 'public.tap_js' AND pk->>'id' = '4'), 'object',
          'json with exponents, escapes and hex ids jsonb can hold is stored as an object');
CREATE TABLE public.tap_fx (id int PRIMARY KEY);
SELECT clinical.enable_audit('public.tap_fx');
ALTER TRIGGER clinical_audit ON public.tap_fx RENAME TO fx_old;
CREATE FUNCTION public.tap_noop() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN NULL; END $f$;
CREATE TRIGGER clinical_audit AFTER INSERT ON public.tap_fx FOR EACH ROW EXECUTE FUNCTION public.tap_noop();
SELECT throws_ok($$SELECT clinical.disable_audit('public.tap_fx')$$, '42710', NULL,
                 'disable_audit() does not drop a trigger named clinical_audit that is not an audit trigger');

SELECT * FROM finish();
ROLLBACK;
