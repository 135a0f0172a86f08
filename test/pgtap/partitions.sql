-- pgTAP: partition maintenance. Every function, every bad input of issue 5
-- with its SQLSTATE, ownership, legal hold, dry run and retention by bounds.
-- Runs inside a transaction that is rolled back; the clock is
-- clinical.maintenance_now.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
SELECT plan(94);
SET LOCAL timezone = 'UTC';
SET LOCAL clinical.maintenance_now = '2026-03-15 12:00+00';

-- objects
SELECT has_function('clinical', 'create_time_partitions',
       ARRAY['regclass', 'name', 'interval', 'integer', 'interval', 'text', 'name', 'timestamp with time zone', 'boolean'],
       'create_time_partitions() exists');
SELECT has_function('clinical', 'run_maintenance', ARRAY['regclass', 'boolean'], 'run_maintenance() exists');
SELECT has_function('clinical', 'run_maintenance_proc', ARRAY['regclass'], 'run_maintenance_proc() exists');
SELECT has_function('clinical', 'set_legal_hold', ARRAY['regclass', 'boolean', 'text'], 'set_legal_hold(set) exists');
SELECT has_function('clinical', 'set_legal_hold', ARRAY['regclass', 'regclass', 'boolean', 'text'], 'set_legal_hold(partition) exists');
SELECT has_function('clinical', 'partition_bounds', ARRAY['regclass'], 'partition_bounds() exists');
SELECT has_table('clinical', 'partition_config', 'partition_config exists');
SELECT has_table('clinical', 'partition_hold', 'partition_hold exists');
SELECT has_view('clinical', 'partition_status', 'partition_status exists');
SELECT ok((SELECT 'clinical.partition_config'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'clinical'),
          'partition_config is dumped by pg_dump');

-- registration
CREATE TABLE tap_log (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT is(clinical.create_time_partitions('tap_log', 'at', '1 month', 2, '3 months', 'drop', NULL, '2026-01-01'),
          5, 'create_time_partitions creates January through now + 2 months');
SELECT results_eq($$SELECT partition::text, lower_bound, upper_bound FROM clinical.partition_bounds('tap_log') WHERE NOT is_default$$,
       $$VALUES ('tap_log_p20260101', '2026-01-01 00:00:00+00', '2026-02-01 00:00:00+00'),
                ('tap_log_p20260201', '2026-02-01 00:00:00+00', '2026-03-01 00:00:00+00'),
                ('tap_log_p20260301', '2026-03-01 00:00:00+00', '2026-04-01 00:00:00+00'),
                ('tap_log_p20260401', '2026-04-01 00:00:00+00', '2026-05-01 00:00:00+00'),
                ('tap_log_p20260501', '2026-05-01 00:00:00+00', '2026-06-01 00:00:00+00')$$,
       'monthly partitions start on the first of the month and are named <parent>_pYYYYMMDD');
SELECT is((SELECT partition::text FROM clinical.partition_bounds('tap_log') WHERE is_default),
          'tap_log_default', 'a default partition is created');
SELECT is((SELECT row(partitions, oldest_partition, newest_partition, next_boundary)::text
             FROM clinical.partition_status WHERE parent = 'tap_log'::regclass),
          '(5,tap_log_p20260101,tap_log_p20260501,"2026-06-01 00:00:00+00")',
          'partition_status shows count, oldest, newest and next boundary');
SELECT is((SELECT count(*)::int FROM clinical.run_maintenance('tap_log')), 0,
          'run_maintenance has nothing to do right after registration');

-- dry run creates nothing
SET LOCAL clinical.maintenance_now = '2026-05-02 08:00+00';
INSERT INTO tap_log VALUES (1, '2026-06-15'), (2, '2099-01-01');
SELECT is((SELECT array_agg(action || ':' || partition ORDER BY action, partition)
             FROM clinical.run_maintenance('tap_log', true)),
          ARRAY['create:tap_log_p20260601', 'create:tap_log_p20260701', 'drop:tap_log_p20260101',
                'move:tap_log_p20260601', 'report:tap_log_default'],
          'dry run reports the actions it would take');
SELECT ok((SELECT bool_and(detail LIKE 'CREATE TABLE public.tap_log_p2026%ATTACH PARTITION%')
             FROM clinical.run_maintenance('tap_log', true) WHERE action = 'create'),
          'dry run shows the DDL');
SELECT is((SELECT count(*)::int FROM clinical.partition_bounds('tap_log')), 6, 'dry run creates and drops nothing');
SELECT is((SELECT tableoid::regclass::text FROM tap_log WHERE id = 1), 'tap_log_default', 'dry run moves no rows');

-- the real run
SELECT is((SELECT array_agg(action || ':' || partition ORDER BY action, partition)
             FROM clinical.run_maintenance('tap_log')),
          ARRAY['create:tap_log_p20260601', 'create:tap_log_p20260701', 'drop:tap_log_p20260101',
                'move:tap_log_p20260601', 'report:tap_log_default'],
          'run_maintenance creates, moves, drops and reports');
SELECT is((SELECT tableoid::regclass::text FROM tap_log WHERE id = 1), 'tap_log_p20260601',
          'rows in the new range were moved out of the default partition');
SELECT is((SELECT tableoid::regclass::text FROM tap_log WHERE id = 2), 'tap_log_default',
          'rows beyond the premake horizon stay in the default partition');
SELECT ok(to_regclass('tap_log_p20260101') IS NULL, 'the expired partition is dropped');
SELECT is((SELECT count(*)::int FROM tap_log), 2, 'no row is lost');
SELECT ok((SELECT last_run IS NOT NULL AND last_error IS NULL FROM clinical.partition_status
            WHERE parent = 'tap_log'::regclass), 'last run recorded, no error');

-- retention by bounds, not by name
CREATE TABLE tap_log_p19990101 (LIKE tap_log);
ALTER TABLE tap_log ATTACH PARTITION tap_log_p19990101 FOR VALUES FROM ('2026-08-01') TO ('2026-09-01');
CREATE TABLE tap_log_p20991201 (LIKE tap_log);
ALTER TABLE tap_log DETACH PARTITION tap_log_p20260201;
ALTER TABLE tap_log ATTACH PARTITION tap_log_p20991201 FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
SET LOCAL clinical.maintenance_now = '2026-06-02 00:00+00';
SELECT is((SELECT array_agg(action || ':' || partition ORDER BY action, partition)
             FROM clinical.run_maintenance('tap_log') WHERE action IN ('drop', 'create')),
          ARRAY['drop:tap_log_p20991201'],
          'retention follows the bounds: an old range with a future name is dropped, a recent range with an old name is kept');
SELECT ok(to_regclass('tap_log_p19990101') IS NOT NULL, 'the recent partition with an old name is still there');

-- legal hold
SET LOCAL clinical.maintenance_now = '2026-08-02 00:00+00';
SELECT lives_ok($$SELECT clinical.set_legal_hold('tap_log', 'tap_log_p20260301', true, 'subpoena 17')$$,
                'set_legal_hold(partition) places a hold');
SELECT is((SELECT detail FROM clinical.run_maintenance('tap_log') WHERE partition = 'tap_log_p20260301'),
          'legal hold on the partition: subpoena 17', 'a held partition is skipped and reported');
SELECT ok(to_regclass('tap_log_p20260301') IS NOT NULL, 'legal hold blocks the drop of that partition');
SELECT ok(to_regclass('tap_log_p20260401') IS NULL, 'partitions without a hold are dropped');
SELECT lives_ok($$SELECT clinical.set_legal_hold('tap_log', true, 'litigation ABC')$$,
                'set_legal_hold(set) places a hold on the set');
SELECT is((SELECT legal_hold_reason || ' ' || held_partitions::text FROM clinical.partition_status
            WHERE parent = 'tap_log'::regclass),
          'litigation ABC {tap_log_p20260301}', 'holds are visible in partition_status');
SET LOCAL clinical.maintenance_now = '2026-10-02 00:00+00';
SELECT is((SELECT count(*)::int FROM clinical.run_maintenance('tap_log') WHERE action = 'drop'), 0,
          'a set-wide legal hold blocks every drop');
SELECT ok(to_regclass('tap_log_p20260501') IS NOT NULL, 'the expired partition under the set hold is kept');
SELECT lives_ok($$SELECT clinical.set_legal_hold('tap_log', false, NULL)$$, 'the set hold is released');
SELECT is((SELECT array_agg(partition ORDER BY partition) FROM clinical.run_maintenance('tap_log') WHERE action = 'drop'),
          ARRAY['tap_log_p20260501', 'tap_log_p20260601'],
          'after release, expired partitions go; the partition hold still protects its partition');

-- the procedure, called inside a transaction block, works without committing
SET LOCAL clinical.maintenance_now = '2026-12-02 00:00+00';
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$CALL clinical.run_maintenance_proc('tap_log')$$, 'run_maintenance_proc runs inside a transaction block');
RESET client_min_messages;
SELECT ok(to_regclass('tap_log_p20270101') IS NOT NULL, 'run_maintenance_proc created the next partitions');

-- bad input: each an error, nothing created
CREATE TABLE tap_plain (at timestamptz);
CREATE TABLE tap_list (at timestamptz) PARTITION BY LIST (at);
CREATE TABLE tap_bad (at timestamptz, n int, d date) PARTITION BY RANGE (at);
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_plain', 'at', '1 month')$$, '42809', NULL, 'not a partitioned table');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_list', 'at', '1 month')$$, '42809', NULL, 'not range partitioned');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'nope', '1 month')$$, '42703', NULL, 'wrong column');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'n', '1 month')$$, '42804', NULL, 'wrong column type');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'd', '1 month')$$, '22023', NULL, 'a column that is not the partition key');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '0 days')$$, '22023', 'partition interval must not be zero', 'interval of zero');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '-1 month')$$, '22023', 'partition interval must be positive', 'negative interval');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month 3 days')$$, '22023', 'partition interval must not mix months and days', 'interval mixing months and days');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '6 hours')$$, '22023', NULL, 'interval of hours');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', 0)$$, '22023', 'premake must be between 1 and 1000', 'premake < 1');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', 4, '2 weeks')$$, '22023', 'retention must not be shorter than the partition interval', 'retention shorter than the interval');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', 4, '-2 years')$$, '22023', 'retention must be positive', 'negative retention');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', retention_mode => 'shred')$$, '22023', 'unknown retention mode "shred"', 'unknown retention mode');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', retention_mode => 'archive')$$, '22023', 'retention mode ''archive'' needs an archive_schema', 'archive mode without schema');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month', retention_mode => 'archive', archive_schema => 'no_such_schema')$$, '3F000', NULL, 'archive schema that does not exist');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', NULL, '1 month')$$, '22004', NULL, 'null control column');
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_log', 'at', '1 month')$$, '42710', NULL, 'a set registered twice');
CREATE TABLE tap_bad_p20261201 (x int);
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month')$$, '42P07', NULL, 'a partition name collision is an error');
CREATE TABLE tap_a_name_of_fifty_five_characters_to_overflow_namedata (at date) PARTITION BY RANGE (at);
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_a_name_of_fifty_five_characters_to_overflow_namedata', 'at', '1 month')$$,
                 '42622', NULL, 'a partition name longer than NAMEDATALEN is an error, not a truncation');
SELECT is((SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'tap_bad'::regclass)
          + (SELECT count(*)::int FROM clinical.partition_config WHERE parent = 'tap_bad'::regclass), 0,
          'failed registrations created and recorded nothing');
SELECT throws_ok($$SELECT * FROM clinical.run_maintenance('tap_bad')$$, '42704', NULL, 'run_maintenance of an unregistered table');
SELECT throws_ok($$SELECT clinical.set_legal_hold('tap_log', true, NULL)$$, '22023', 'a legal hold needs a reason', 'a hold without a reason');
SELECT throws_ok($$SELECT clinical.set_legal_hold('tap_log', 'tap_plain', true, 'x')$$, '22023', NULL, 'a partition hold on a table that is not a partition of the set');
SELECT throws_ok($$SELECT clinical.set_legal_hold('tap_bad', true, 'x')$$, '42704', NULL, 'a hold on an unregistered table');

-- a non-owner can neither register nor maintain
CREATE ROLE tap_part_stranger NOLOGIN;
GRANT USAGE ON SCHEMA clinical TO tap_part_stranger;
SET LOCAL ROLE tap_part_stranger;
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_bad', 'at', '1 month')$$, '42501', NULL, 'a non-owner cannot register');
SELECT throws_ok($$SELECT * FROM clinical.run_maintenance('tap_log')$$, '42501', NULL, 'a non-owner cannot maintain');
SELECT throws_ok($$SELECT clinical.set_legal_hold('tap_log', false, NULL)$$, '42501', NULL, 'a non-owner cannot release a hold');
SELECT is((SELECT count(*)::int FROM clinical.run_maintenance()), 0, 'run_maintenance() skips sets the caller does not own');
RESET ROLE;

-- DROP TABLE: a held partition cannot be dropped by hand; a dropped set is forgotten
SELECT throws_ok($$DROP TABLE tap_log_p20260301$$, '55006', NULL, 'a partition under legal hold cannot be dropped by hand');
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DROP TABLE tap_log_p20260301$$, '55006', NULL,
                 '... not under session_replication_role = replica either');
RESET session_replication_role;
CREATE TABLE tap_gone (at date NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_gone', 'at', '1 month', 1);
CREATE TEMP TABLE tap_sets AS SELECT count(*)::int AS n FROM clinical.partition_config;
DROP TABLE tap_gone;
SELECT is((SELECT count(*)::int FROM clinical.partition_config), (SELECT n - 1 FROM tap_sets),
          'dropping a partitioned table removes its configuration');

-- the audit log: minimum retention, and no retention while any hold applies
-- (the audit part registers the log at its first write; start from scratch here)
DELETE FROM clinical.partition_config WHERE parent = 'clinical.audit_log'::regclass;
SET LOCAL clinical.maintenance_now = '2026-03-15 00:00+00';
SELECT throws_ok($$SELECT clinical.create_time_partitions('clinical.audit_log', 'xact_time', '1 month', 4, '5 years')$$,
                 '22023', 'retention of clinical.audit_log must be at least 6 years', 'audit log retention below clinical.audit_min_retention');
SELECT lives_ok($$SELECT clinical.create_time_partitions('clinical.audit_log', 'xact_time', '1 month', 4, '7 years', 'detach', NULL, '2019-01-01', false)$$,
                'audit log registered with 7 years');
SELECT clinical.set_legal_hold('clinical.audit_log', 'clinical.audit_log_p20260101', true, 'regulator inquiry');
SELECT is((SELECT array_agg(action || ':' || detail) FROM clinical.run_maintenance('clinical.audit_log') WHERE action IN ('skip', 'detach', 'drop')),
          ARRAY['skip:legal hold: retention of the audit log is refused while any hold applies'],
          'audit log retention is refused while any hold applies');
SELECT clinical.set_legal_hold('clinical.audit_log', 'clinical.audit_log_p20260101', false, NULL);
SELECT is((SELECT array_agg(partition ORDER BY partition) FROM clinical.run_maintenance('clinical.audit_log') WHERE action = 'detach'),
          ARRAY['audit_log_p20190101', 'audit_log_p20190201'],
          'without holds the audit log keeps exactly 7 years');

-- rows in the default partition are not moved when the move would fire
-- DELETE triggers there (here a foreign key ON DELETE CASCADE)
SET LOCAL clinical.maintenance_now = '2026-05-02 08:00+00';
CREATE TABLE tap_fk (id int, at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_fk', 'at', '1 month', 1, start_at => '2026-05-01');
INSERT INTO tap_fk VALUES (1, '2026-08-10');
CREATE TABLE tap_fk_note (id int, at timestamptz, FOREIGN KEY (id, at) REFERENCES tap_fk ON DELETE CASCADE);
INSERT INTO tap_fk_note VALUES (1, '2026-08-10');
SET LOCAL clinical.maintenance_now = '2026-07-20 00:00+00';
CREATE TEMP TABLE tap_fk_run AS SELECT * FROM clinical.run_maintenance('tap_fk');
SELECT ok((SELECT bool_or(action = 'error' AND partition = 'tap_fk_p20260801' AND detail LIKE '%foreign-key trigger%')
             FROM tap_fk_run),
          'a partition whose rows wait in the default is not created when moving them would fire a foreign key');
SELECT ok((SELECT bool_or(action = 'create' AND partition = 'tap_fk_p20260701') FROM tap_fk_run),
          '... the partition with no rows to move is created');
SELECT is((SELECT count(*) FROM tap_fk_note), 1::bigint, '... and the referencing row was not cascaded away');

-- a timestamp partition bounded by infinity is the newest, and not an error
CREATE TABLE tap_inf (at timestamp NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_inf', 'at', '1 month', 1, start_at => '2026-07-01',
                                       default_partition => false);
CREATE TABLE tap_inf_rest PARTITION OF tap_inf FOR VALUES FROM ('2026-09-01') TO ('infinity');
SELECT is((SELECT count(*)::int FROM clinical.run_maintenance('tap_inf') WHERE action = 'error'), 0,
          'a partition up to infinity does not make maintenance fail');

-- a partition in another schema than its parent is addressed in its own
CREATE SCHEMA tap_other;
CREATE TABLE tap_sch (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_sch', 'at', '1 month', 1, '1 month', 'drop',
                                       start_at => '2026-06-01', default_partition => false);
CREATE TABLE tap_other.tap_sch_old PARTITION OF tap_sch FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
CREATE TABLE public.tap_sch_old (keep int);
SELECT ok((SELECT bool_or(action = 'drop' AND partition = 'tap_sch_old') FROM clinical.run_maintenance('tap_sch')),
          'retention drops an expired partition that lives in another schema');
SELECT ok(to_regclass('tap_other.tap_sch_old') IS NULL AND to_regclass('public.tap_sch_old') IS NOT NULL,
          '... that partition, not the table of the same name in the parent''s schema');

-- a partition set under a set-wide hold cannot be dropped as a whole
SELECT clinical.set_legal_hold('tap_sch', true, 'matter 42');
SELECT throws_ok($$DROP TABLE tap_sch$$, '55006', NULL, 'a partition set under a set-wide legal hold cannot be dropped');

-- partitions that maintenance premakes in an audited set with cache
-- invalidation get both TRUNCATE triggers (statement triggers are not cloned)
CREATE TABLE tap_obs (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_obs', 'at', '1 month', 1, start_at => '2026-05-01',
                                       default_partition => false);
SELECT clinical.enable_audit('tap_obs');
SELECT clinical.enable_cache_invalidation('tap_obs', 'obs:{id}');
SET LOCAL clinical.maintenance_now = '2027-06-02 08:00+00';
SELECT ok((SELECT count(*) FROM clinical.run_maintenance('tap_obs') WHERE action = 'create') > 0
          AND EXISTS (SELECT 1 FROM clinical.partition_bounds('tap_obs') WHERE lower_bound::timestamptz = '2027-07-01+00'),
          'maintenance premakes partitions of an audited set');
SELECT is((SELECT count(*)::int FROM clinical.partition_bounds('tap_obs') AS b
            WHERE b.lower_bound::timestamptz >= '2027-02-01+00'
              AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = b.partition
                      AND t.tgname IN ('clinical_audit_truncate', 'clinical_cache_invalidation_truncate')) = 2), 6,
          'each of the 6 partitions premade from February 2027 has the audit and invalidation TRUNCATE triggers');
SELECT is((SELECT count(*)::int FROM clinical.partition_bounds('tap_obs') AS b
            WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = b.partition
                                 AND t.tgname = 'clinical_audit_truncate' AND t.tgenabled = 'A')), 0,
          'every partition of the set has the TRUNCATE audit trigger, enabled ALWAYS');
RESET clinical.maintenance_now;

-- review fixes (2026-11-26): partition_config edited by hand
CREATE TABLE tap_nr (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('tap_nr', 'at', '1 month', 2, '13 months', 'drop', NULL, '2026-01-01');
SELECT throws_ok($$UPDATE clinical.partition_config SET retention = '-13 months' WHERE parent = 'tap_nr'::regclass$$,
                 '23514', NULL, 'partition_config refuses a negative retention');
SELECT throws_ok($$UPDATE clinical.partition_config SET premake = 1500 WHERE parent = 'tap_nr'::regclass$$,
                 '23514', NULL, 'partition_config refuses premake above 1000');
-- and maintenance checks again, whatever the table lets through
ALTER TABLE clinical.partition_config DROP CONSTRAINT partition_config_retention_check;
UPDATE clinical.partition_config SET retention = '1 month -40 days' WHERE parent = 'tap_nr'::regclass;
SELECT is((SELECT count(*)::int FROM clinical.run_maintenance('tap_nr') WHERE action = 'drop'), 0,
          'maintenance drops nothing under a retention that is not positive');
SELECT ok((SELECT last_error LIKE '%retention must be positive%' FROM clinical.partition_config WHERE parent = 'tap_nr'::regclass),
          '... and records why in last_error');
SELECT throws_ok($$SELECT * FROM clinical.run_maintenance(NULL, NULL)$$, '22004', NULL,
                 'run_maintenance() with dry_run NULL is an error, not a real run');

SELECT throws_ok($$SELECT clinical.set_legal_hold('tap_nr', true, '   ')$$, '22023', NULL,
                 'a legal hold needs a reason that is not blanks only');
CREATE TABLE tap_far (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT throws_like($$SELECT clinical.create_time_partitions('tap_far', 'at', '1 day', start_at => '4700-01-01 BC')$$,
                   '%would create%partitions', 'a start_at centuries back is refused before creating anything');

CREATE TABLE tap_dn (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE VIEW tap_dn_default AS SELECT 1 AS x;
SELECT throws_ok($$SELECT clinical.create_time_partitions('tap_dn', 'at', '1 month')$$, '42P07',
                 'relation "tap_dn_default" already exists',
                 'a default partition name taken by another relation is refused with the set''s own message');

SELECT throws_ok($$SET clinical.maintenance_now = 'infinity'$$, '22023', NULL,
                 'the maintenance clock cannot be infinity (a run would create partitions without end)');
SELECT throws_ok($$SET clinical.maintenance_now = '-infinity'$$, '22023', NULL, '... nor -infinity');

SELECT * FROM finish();
ROLLBACK;
