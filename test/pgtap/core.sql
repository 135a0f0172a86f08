-- pgTAP: the foundation (version, worker status, settings, set_updated_at).
-- Runs in the worker's database of the test cluster, inside a transaction
-- that is rolled back.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
SELECT plan(22);

SELECT has_function('clinical', 'version', 'clinical.version() exists');
SELECT has_function('clinical', 'library_version', 'clinical.library_version() exists');
SELECT has_function('clinical', 'worker_status', 'clinical.worker_status() exists');
SELECT has_function('clinical', 'set_updated_at', 'clinical.set_updated_at() exists');

SELECT is((SELECT extension_version FROM clinical.version()),
          (SELECT extversion FROM pg_extension WHERE extname = 'clinical'),
          'version() reports the installed extension version');
SELECT is(clinical.library_version(), (SELECT extversion FROM pg_extension WHERE extname = 'clinical'),
          'the library and the install script agree on the version');

-- the test cluster preloads the library and runs the worker in this database
SELECT ok((SELECT preloaded FROM clinical.worker_status()), 'worker_status: library is preloaded');
SELECT ok((SELECT running FROM clinical.worker_status()), 'worker_status: worker is running');
SELECT is((SELECT database FROM clinical.worker_status()), current_database()::name,
          'worker_status: worker is in clinical.database');
SELECT is((SELECT pid FROM clinical.worker_status()),
          (SELECT pid FROM pg_stat_activity WHERE application_name = 'clinical worker'),
          'worker_status: pid is the worker''s, whose application_name is "clinical worker"');
SELECT is((SELECT backend_type FROM pg_stat_activity WHERE application_name = 'clinical worker'),
          'clinical worker', 'pg_stat_activity shows the worker''s backend type');
SELECT ok((SELECT last_activity >= started FROM clinical.worker_status()),
          'worker_status: last activity is not before the start');

-- settings
SELECT throws_ok($$SET clinical.databse = 'x'$$, '42602', NULL,
                 'a misspelt clinical.* setting is an error');
SELECT throws_ok($$SET clinical.redis_port = 1$$, '55P02', NULL,
                 'clinical.redis_port is changed by reload, not SET');

-- the Redis password is not readable by ordinary roles
CREATE ROLE clinical_tap_user NOLOGIN;
SET LOCAL ROLE clinical_tap_user;
SELECT throws_ok($$SHOW clinical.redis_password$$, '42501', NULL,
                 'a non-superuser cannot SHOW clinical.redis_password');
SELECT throws_ok($$SELECT current_setting('clinical.redis_password')$$, '42501', NULL,
                 'a non-superuser cannot read clinical.redis_password with current_setting');
SELECT is((SELECT count(*) FROM pg_settings WHERE name = 'clinical.redis_password'), 0::bigint,
          'pg_settings hides clinical.redis_password from a non-superuser');
RESET ROLE;
SELECT throws_ok($$ALTER ROLE clinical_tap_user SET clinical.redis_password = 'x'$$, '55P02', NULL,
                 'the password cannot be stored per role (pg_db_role_setting)');

-- set_updated_at
CREATE TABLE tap_patient (id int, updated_at timestamptz);
CREATE TRIGGER tap_patient_upd BEFORE UPDATE ON tap_patient
  FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO tap_patient VALUES (1, '2001-01-01');
UPDATE tap_patient SET id = 2;
SELECT is((SELECT updated_at FROM tap_patient), now(), 'set_updated_at sets updated_at to now()');
CREATE TABLE tap_wrong (id int, updated_at date);
CREATE TRIGGER tap_wrong_upd BEFORE UPDATE ON tap_wrong
  FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO tap_wrong VALUES (1, NULL);
SELECT throws_ok($$UPDATE tap_wrong SET id = 2$$, '42804', NULL,
                 'set_updated_at rejects a column that is not timestamptz');
SELECT throws_ok($$UPDATE tap_patient SET id = 3 WHERE clinical.set_updated_at() IS NULL$$, '39P01', NULL,
                 'set_updated_at cannot be called as a plain function');

-- a generated column cannot be set by a BEFORE trigger: refused clearly
CREATE TABLE tap_gen (id int, n int, updated_at timestamptz GENERATED ALWAYS AS ('2026-01-01'::timestamptz) STORED);
CREATE TRIGGER tap_gen_upd BEFORE UPDATE ON tap_gen FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO tap_gen (id, n) VALUES (1, 1);
SELECT throws_ok($$UPDATE tap_gen SET n = 2$$, '42611', NULL, 'set_updated_at() on a generated column is an error');

SELECT * FROM finish();
ROLLBACK;
