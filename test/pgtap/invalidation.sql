-- pgTAP: cache invalidation (src/sql/50_invalidation.sql). Runs in the
-- worker's database of the test cluster, inside a transaction that is
-- rolled back, so nothing reaches Redis: keys are collected in memory and
-- written to clinical.invalidation_queue only at pre-commit, or early once
-- a transaction holds 10,000 unwritten keys. pg_temp.spill() forces that
-- early write, which makes the queued rows visible to this transaction.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
SELECT plan(127);

-- 10,000 new keys: the transaction writes every unwritten key to the queue
CREATE FUNCTION pg_temp.spill(tag text) RETURNS integer LANGUAGE sql AS $$
  SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'filler:' || tag || ':' || i FROM generate_series(1, 10000) i))
$$;
-- queued rows other than the fillers, as 'op key [channel]' in key order
CREATE FUNCTION pg_temp.queued(pattern text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(op || ' ' || key || coalesce(' ' || channel, '') ORDER BY key, channel), '{}')
    FROM clinical.invalidation_queue WHERE key LIKE pattern
$$;

-- ---- objects, columns, comments ----
SELECT has_function('clinical', 'enable_cache_invalidation', ARRAY['regclass', 'text', 'text'],
                    'clinical.enable_cache_invalidation(regclass, text, text) exists');
SELECT has_function('clinical', 'disable_cache_invalidation', ARRAY['regclass', 'text'],
                    'clinical.disable_cache_invalidation(regclass, text) exists');
SELECT has_function('clinical', 'invalidate', ARRAY['text[]'], 'clinical.invalidate(VARIADIC text[]) exists');
SELECT has_function('clinical', 'invalidation_stats', ARRAY[]::text[], 'clinical.invalidation_stats() exists');
SELECT has_function('clinical', 'cache_invalidation_trigger', ARRAY[]::text[],
                    'clinical.cache_invalidation_trigger() exists');
SELECT is((SELECT string_agg(p.oid::regprocedure || ' -> ' || pg_get_function_result(p.oid), '; ' ORDER BY p.proname)
             FROM pg_proc p
            WHERE p.pronamespace = 'clinical'::regnamespace
              AND p.proname IN ('enable_cache_invalidation', 'disable_cache_invalidation', 'invalidate', 'cache_invalidation_trigger')),
          'clinical.cache_invalidation_trigger() -> trigger; '
          'clinical.disable_cache_invalidation(regclass,text) -> integer; '
          'clinical.enable_cache_invalidation(regclass,text,text) -> void; '
          'clinical.invalidate(text[]) -> integer',
          'the functions return trigger, integer, void and integer');
SELECT is((SELECT provariadic::regtype FROM pg_proc WHERE oid = 'clinical.invalidate(text[])'::regprocedure),
          'text'::regtype, 'invalidate() is VARIADIC text');
SELECT is(pg_get_function_arguments('clinical.enable_cache_invalidation(regclass,text,text)'::regprocedure),
          'target regclass, key_template text, channel text DEFAULT NULL::text',
          'enable_cache_invalidation: channel defaults to NULL');
SELECT is(pg_get_function_arguments('clinical.disable_cache_invalidation(regclass,text)'::regprocedure),
          'target regclass, key_template text DEFAULT NULL::text',
          'disable_cache_invalidation: key_template defaults to NULL (all templates)');
SELECT is(pg_get_function_arguments('clinical.invalidation_stats()'::regprocedure),
          'OUT worker_running boolean, OUT worker_pid integer, OUT redis_connected boolean, '
          'OUT queue_depth bigint, OUT oldest_pending_age interval, OUT keys_sent bigint, '
          'OUT publishes bigint, OUT patterns_cleared bigint, OUT batches bigint, OUT errors bigint, '
          'OUT reconnects bigint, OUT dropped bigint, OUT current_backoff interval, '
          'OUT last_success timestamp with time zone, OUT last_error text',
          'invalidation_stats() returns its fifteen columns');

SELECT has_table('clinical', 'cache_invalidation_config', 'table clinical.cache_invalidation_config exists');
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END,
                             ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'clinical.cache_invalidation_config'::regclass AND attnum > 0 AND NOT attisdropped),
          'target regclass not null, key_template text not null, channel text',
          'cache_invalidation_config has target, key_template, channel');
SELECT col_is_pk('clinical', 'cache_invalidation_config', ARRAY['target', 'key_template'],
                 'cache_invalidation_config: one row per table and template');
SELECT ok((SELECT 'clinical.cache_invalidation_config'::regclass = ANY (extconfig)
             FROM pg_extension WHERE extname = 'clinical'),
          'cache_invalidation_config is dumped by pg_dump (pg_extension_config_dump)');
SELECT has_table('clinical', 'invalidation_queue', 'table clinical.invalidation_queue exists');
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END,
                             ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'clinical.invalidation_queue'::regclass AND attnum > 0 AND NOT attisdropped),
          'op smallint not null, key text not null, channel text, enqueued_at timestamp with time zone not null',
          'invalidation_queue has op, key, channel, enqueued_at');
SELECT is((SELECT array_to_string(reloptions, ',') || ' indexes: ' || relhasindex || ' replica identity: ' || relreplident::text
             FROM pg_class WHERE oid = 'clinical.invalidation_queue'::regclass),
          'autovacuum_enabled=false,vacuum_truncate=false indexes: false replica identity: f',
          'invalidation_queue has no index, the worker (not autovacuum) vacuums it, and its deletes replicate (REPLICA IDENTITY FULL)');
SELECT is((SELECT relpersistence::text FROM pg_class WHERE oid = 'clinical.invalidation_queue'::regclass),
          'p', 'invalidation_queue is a logged table (it survives a crash)');
SELECT throws_ok($$INSERT INTO clinical.invalidation_queue (op, key) VALUES (2, 'x')$$, '23514', NULL,
                 'invalidation_queue.op is 0 (key) or 1 (pattern)');
SELECT has_view('clinical', 'cache_invalidations', 'view clinical.cache_invalidations exists');
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
             FROM pg_attribute WHERE attrelid = 'clinical.cache_invalidations'::regclass AND attnum > 0),
          'target regclass, key_template text, channel text, truncate_pattern text, enabled boolean',
          'cache_invalidations has target, key_template, channel, truncate_pattern, enabled');

-- every object of the part carries a COMMENT
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'clinical'::regnamespace
                   AND p.proname ~ '(invalidat|key_template|truncate_pattern)'
                   AND obj_description(p.oid, 'pg_proc') IS NULL ORDER BY 1),
          '{}'::text[], 'every function of the part has a COMMENT');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'clinical'::regnamespace
              AND p.proname ~ '(invalidat|key_template|truncate_pattern)'),
          12::bigint, 'the comment check above saw the part''s twelve functions');
SELECT is((SELECT evtevent || ' ' || evtfoid::regproc || ' ' || (obj_description(oid, 'pg_event_trigger') IS NOT NULL)
             FROM pg_event_trigger WHERE evtname = 'clinical_cache_invalidation_sql_drop'),
          'sql_drop clinical._cache_invalidation_sql_drop true',
          'an sql_drop event trigger (with a COMMENT) forgets the configuration of dropped tables');
SELECT is((SELECT evtevent || ' ' || evtfoid::regproc || ' ' || array_to_string(evttags, ',') || ' '
                 || (obj_description(oid, 'pg_event_trigger') IS NOT NULL)
             FROM pg_event_trigger WHERE evtname = 'clinical_cache_invalidation_ddl'),
          'ddl_command_end clinical._cache_invalidation_on_ddl CREATE TABLE,ALTER TABLE true',
          'a ddl_command_end event trigger (with a COMMENT) covers partitions added later');
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'clinical'::regnamespace
                   AND c.relname IN ('cache_invalidation_config', 'invalidation_queue', 'cache_invalidations')
                   AND obj_description(c.oid, 'pg_class') IS NOT NULL ORDER BY 1),
          ARRAY['clinical.cache_invalidation_config', 'clinical.cache_invalidations',
                'clinical.invalidation_queue'],
          'the tables and the view have a COMMENT');

-- settings the part uses: default and how they change
SELECT is((SELECT string_agg(name || '=' || boot_val || coalesce(unit, '') || '/' || context, ', ' ORDER BY name)
             FROM pg_settings
            WHERE name IN ('clinical.invalidation_poll_interval', 'clinical.invalidation_redelete_ms',
                           'clinical.invalidation_max_age', 'clinical.invalidation_batch_size',
                           'clinical.redis_host', 'clinical.redis_port', 'clinical.redis_db',
                           'clinical.redis_user', 'clinical.redis_connect_timeout',
                           'clinical.redis_command_timeout')),
          'clinical.invalidation_batch_size=5000/sighup, clinical.invalidation_max_age=3600s/sighup, '
          'clinical.invalidation_poll_interval=1000ms/sighup, clinical.invalidation_redelete_ms=0ms/sighup, '
          'clinical.redis_command_timeout=1000ms/sighup, clinical.redis_connect_timeout=1000ms/sighup, '
          'clinical.redis_db=0/sighup, clinical.redis_host=127.0.0.1/sighup, clinical.redis_port=6379/sighup, '
          'clinical.redis_user=/sighup',
          'the invalidation settings: defaults, units, reload context');
SELECT throws_ok($$SET clinical.invalidation_poll_interval = 10$$, '55P02',
                 'parameter "clinical.invalidation_poll_interval" cannot be changed now',
                 'the invalidation settings are changed by reload, not SET');

-- ---- enable_cache_invalidation ----
CREATE TABLE tap_patient (patient_id int PRIMARY KEY, site_id int, name text);
INSERT INTO tap_patient VALUES (1, 10, 'a'), (2, 10, 'b'), (3, 11, 'c'), (4, NULL, 'd');
SELECT lives_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'patient:{patient_id}')$$,
                'enable_cache_invalidation() with a template');
SELECT lives_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'site:{site_id}:patients', 'tap-events')$$,
                'enable_cache_invalidation() with a second template and a channel');
SELECT is(ARRAY(SELECT key_template || '|' || coalesce(channel, '-') || '|' || truncate_pattern || '|' || enabled
                  FROM clinical.cache_invalidations WHERE target = 'tap_patient'::regclass ORDER BY key_template),
          ARRAY['patient:{patient_id}|-|patient:*|true', 'site:{site_id}:patients|tap-events|site:*:patients|true'],
          'cache_invalidations lists both templates with channel, TRUNCATE pattern and enabled');
SELECT is(ARRAY(SELECT tgname || ' ' || tgtype || ' ' || tgnargs FROM pg_trigger
                 WHERE tgrelid = 'tap_patient'::regclass ORDER BY tgname),
          ARRAY['clinical_cache_invalidation 29 4', 'clinical_cache_invalidation_truncate 32 4'],
          'an AFTER INSERT/UPDATE/DELETE row trigger and an AFTER TRUNCATE trigger carry both templates');
SELECT lives_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'site:{site_id}:patients', 'tap-other')$$,
                'enable_cache_invalidation() again for the same template');
SELECT is(ARRAY(SELECT coalesce(channel, '-') FROM clinical.cache_invalidations
                 WHERE target = 'tap_patient'::regclass ORDER BY key_template),
          ARRAY['-', 'tap-other'], 'enabling a template again changes its channel, adds no row');
SELECT is(clinical._check_key_template('tap_patient', 'a*b?[c]\:{patient_id}'), 'a\*b\?\[c\]\\:*',
          'the TRUNCATE pattern escapes Redis glob characters of the literal text');

-- bad input: a clear error, nothing changed
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'patient:{nope}')$$,
                 '42703', 'column "nope" of relation "tap_patient" does not exist',
                 'a template naming a missing column');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', '')$$,
                 '22023', 'invalid key template ""', 'an empty template');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'patient:{patient_id')$$,
                 '22023', 'invalid key template "patient:{patient_id"', 'a "{" that is not closed');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'patient:patient_id}')$$,
                 '22023', 'invalid key template "patient:patient_id}"', 'a "}" with no "{"');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'patient:{}')$$,
                 '22023', 'invalid key template "patient:{}"', '"{}" naming no column');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'p:{{patient_id}}')$$,
                 '22023', 'invalid key template "p:{{patient_id}}"', 'nested braces');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', 'p:{patient_id}', '')$$,
                 '22023', 'channel must not be empty', 'an empty channel');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient', NULL)$$,
                 '22023', 'target and key_template are required', 'a NULL template');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_no_such_table', 'x:{id}')$$,
                 '42P01', 'relation "tap_no_such_table" does not exist', 'a table that does not exist');
CREATE VIEW tap_patient_v AS SELECT * FROM tap_patient;
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_patient_v', 'patient:{patient_id}')$$,
                 '42809', '"public.tap_patient_v" is not a table', 'a view is not a table');
SELECT is((SELECT count(*) FROM clinical.cache_invalidation_config), 2::bigint,
          'the refused configurations left the two templates as they were');

-- ---- the trigger: what reaches the queue ----
INSERT INTO tap_patient VALUES (5, 12, 'e'), (6, NULL, 'f');
UPDATE tap_patient SET patient_id = 7, site_id = 13 WHERE patient_id = 1;
UPDATE tap_patient SET name = 'b2' WHERE patient_id = 2;
DELETE FROM tap_patient WHERE patient_id = 3;
SELECT is(ARRAY(SELECT count(*) FROM clinical.invalidation_queue), ARRAY[0::bigint],
          'before 10,000 keys nothing is written to the queue');
SAVEPOINT sp1;
UPDATE tap_patient SET name = 'rolled back' WHERE patient_id = 4;
DO $$ BEGIN PERFORM clinical.invalidate('tap:savepoint'); END $$;
ROLLBACK TO SAVEPOINT sp1;
SELECT is(pg_temp.spill('a'), 10000, 'invalidate() returns the number of keys queued');
SELECT cmp_ok((SELECT count(*) FROM clinical.invalidation_queue WHERE key LIKE 'filler:a:%'), '>=', 9990::bigint,
              '10,000 new keys are written to the queue before commit');
SELECT is(pg_temp.queued('patient:%'), ARRAY['0 patient:1', '0 patient:2', '0 patient:3', '0 patient:5', '0 patient:6', '0 patient:7'],
          'INSERT, UPDATE and DELETE queue each row''s key once; an UPDATE that moves a row queues old and new key');
SELECT is(pg_temp.queued('site:%'),
          ARRAY['0 site:10:patients tap-other', '0 site:11:patients tap-other', '0 site:12:patients tap-other', '0 site:13:patients tap-other'],
          'the channel goes with the key; a row whose column is NULL renders no key');
SELECT is(pg_temp.queued('tap:%'), '{}'::text[], 'keys of a rolled-back savepoint are not queued');

-- written keys are remembered: a key queued once in a transaction is not queued again
UPDATE tap_patient SET name = 'again' WHERE patient_id = 2;
DO $$ BEGIN PERFORM pg_temp.spill('b'); END $$;
SELECT is((SELECT count(*) FROM clinical.invalidation_queue WHERE key = 'patient:2'), 1::bigint,
          'a key is queued once per transaction however often it changes');

-- a savepoint that wrote keys and rolls back: its rows go, the keys are written again later
UPDATE tap_patient SET name = 'sp' WHERE patient_id = 4;
SAVEPOINT sp2;
DO $$ BEGIN PERFORM pg_temp.spill('c'); END $$;
SELECT is(pg_temp.queued('patient:4'), ARRAY['0 patient:4'], 'a key of the transaction is written by a savepoint''s early write');
ROLLBACK TO SAVEPOINT sp2;
SELECT is(pg_temp.queued('patient:4'), '{}'::text[], 'the rolled-back savepoint takes its queue rows with it');
DO $$ BEGIN PERFORM pg_temp.spill('d'); END $$;
SELECT is(pg_temp.queued('patient:4'), ARRAY['0 patient:4'], 'the next write queues the key of the outer transaction again');

-- nested savepoints: keys of a released savepoint go when its parent rolls
-- back and stay when a later sibling does; an outer key added again in a
-- rolled-back savepoint stays; an outer key whose row a released savepoint
-- wrote is written again when the savepoint's parent rolls back
SAVEPOINT n1;
SAVEPOINT n2;
DO $$ BEGIN PERFORM clinical.invalidate('nest:inner'); END $$;
RELEASE SAVEPOINT n2;
ROLLBACK TO SAVEPOINT n1;
RELEASE SAVEPOINT n1;
SAVEPOINT n3;
DO $$ BEGIN PERFORM clinical.invalidate('nest:released'); END $$;
RELEASE SAVEPOINT n3;
DO $$ BEGIN PERFORM clinical.invalidate('nest:outer', 'nest:outer2'); END $$;
SAVEPOINT n4;
DO $$ BEGIN PERFORM clinical.invalidate('nest:outer', 'nest:sibling'); END $$;
ROLLBACK TO SAVEPOINT n4;
SAVEPOINT n5;
SAVEPOINT n6;
DO $$ BEGIN PERFORM clinical.invalidate('nest:n6'); PERFORM pg_temp.spill('f'); END $$;
RELEASE SAVEPOINT n6;
ROLLBACK TO SAVEPOINT n5;
DO $$ BEGIN PERFORM pg_temp.spill('g'); END $$;
SELECT is(pg_temp.queued('nest:%'), ARRAY['0 nest:outer', '0 nest:outer2', '0 nest:released'],
          'nested savepoints: released keys go with a rolled-back parent, outer keys stay and are written again');

-- invalidate(): keys as they are, NULLs skipped
SELECT is(clinical.invalidate('tap:a b', NULL, E'tap:new\nline', 'tap:*'), 3, 'invalidate() skips NULL keys and counts the rest');
SELECT is(clinical.invalidate(VARIADIC NULL::text[]), NULL, 'invalidate(VARIADIC NULL) is NULL (STRICT)');
DO $$ BEGIN PERFORM pg_temp.spill('e'); END $$;
SELECT is(pg_temp.queued('tap:%'), ARRAY[E'0 tap:*', E'0 tap:a b', E'0 tap:new\nline'],
          'invalidate() queues keys with spaces, newlines and glob characters verbatim as keys (op 0)');
SELECT throws_ok($$SELECT clinical.invalidate('')$$, '22023', 'cache key must not be empty', 'an empty key');
SELECT throws_ok($$SELECT clinical.invalidate(VARIADIC ARRAY[['a', 'b'], ['c', 'd']])$$, '2202E',
                 'keys must be a one-dimensional array', 'a two-dimensional key array');

-- TRUNCATE: each template's key space as a pattern (op 1)
TRUNCATE tap_patient;
DO $$ BEGIN PERFORM pg_temp.spill('f'); END $$;
SELECT is(ARRAY(SELECT op || ' ' || key FROM clinical.invalidation_queue WHERE op = 1 ORDER BY key),
          ARRAY['1 patient:*', '1 site:*:patients'], 'TRUNCATE queues each template''s SCAN pattern');

-- the trigger refuses to be used other than as enable_cache_invalidation() attaches it
CREATE TABLE tap_other (id int);
CREATE TRIGGER tap_before BEFORE INSERT ON tap_other FOR EACH ROW
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('o:{id}', '');
SELECT throws_ok($$INSERT INTO tap_other VALUES (1)$$, '39P01',
                 'function clinical.cache_invalidation_trigger must be fired AFTER', 'fired BEFORE');
DROP TRIGGER tap_before ON tap_other;
CREATE TRIGGER tap_stmt AFTER INSERT ON tap_other FOR EACH STATEMENT
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('o:{id}', '');
SELECT throws_ok($$INSERT INTO tap_other VALUES (1)$$, '39P01',
                 'function clinical.cache_invalidation_trigger must be fired FOR EACH ROW or for TRUNCATE',
                 'fired FOR EACH STATEMENT on INSERT');
DROP TRIGGER tap_stmt ON tap_other;
CREATE TRIGGER tap_odd AFTER INSERT ON tap_other FOR EACH ROW
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('o:{id}');
SELECT throws_ok($$INSERT INTO tap_other VALUES (1)$$, '22023',
                 'trigger "tap_odd" on "tap_other" has malformed arguments for clinical.cache_invalidation_trigger()',
                 'trigger arguments that are not (template, channel) pairs');
DROP TRIGGER tap_odd ON tap_other;
CREATE TRIGGER tap_badcol AFTER INSERT ON tap_other FOR EACH ROW
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('o:{nope}', '');
SELECT throws_ok($$INSERT INTO tap_other VALUES (1)$$, '42703',
                 'column "nope" of relation "tap_other" does not exist', 'a hand-made trigger with a bad template');
DROP TRIGGER tap_badcol ON tap_other;

-- partitioned tables: the triggers reach the partitions
CREATE TABLE tap_visit (visit_id int, site_id int) PARTITION BY RANGE (visit_id);
CREATE TABLE tap_visit_1 PARTITION OF tap_visit FOR VALUES FROM (0) TO (1000);
SELECT lives_ok($$SELECT clinical.enable_cache_invalidation('tap_visit', 'visit:{visit_id}')$$,
                'enable_cache_invalidation() on a partitioned table');
INSERT INTO tap_visit VALUES (42, 1);
DO $$ BEGIN PERFORM pg_temp.spill('g'); END $$;
SELECT is(pg_temp.queued('visit:%'), ARRAY['0 visit:42'], 'a row written into a partition is invalidated');
SELECT ok(EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'tap_visit_1'::regclass
                   AND tgname = 'clinical_cache_invalidation_truncate'),
          'the TRUNCATE trigger is on the partition too (statement triggers are not cloned)');
TRUNCATE tap_visit_1;
DO $$ BEGIN PERFORM pg_temp.spill('h'); END $$;
SELECT is(pg_temp.queued('visit:%'), ARRAY['1 visit:*', '0 visit:42'],
          'a TRUNCATE of one partition clears the template''s key space');
-- partitions added later get the TRUNCATE trigger from the DDL event
-- trigger: created in the table, attached to it, and a level further down
CREATE TABLE tap_ward (ward_id int, site_id int) PARTITION BY RANGE (ward_id);
SELECT clinical.enable_cache_invalidation('tap_ward', 'ward:{ward_id}', 'wards');
CREATE TABLE tap_ward_1 PARTITION OF tap_ward FOR VALUES FROM (0) TO (1000);
CREATE TABLE tap_ward_2 (ward_id int, site_id int);
ALTER TABLE tap_ward ATTACH PARTITION tap_ward_2 FOR VALUES FROM (1000) TO (2000);
CREATE TABLE tap_ward_3 PARTITION OF tap_ward FOR VALUES FROM (2000) TO (3000) PARTITION BY LIST (site_id);
CREATE TABLE tap_ward_3a PARTITION OF tap_ward_3 FOR VALUES IN (1);
SELECT is((SELECT array_agg(c.relname || ' ' || array_to_string(clinical._trigger_args(t.tgargs), ',')
                            ORDER BY c.relname)
             FROM pg_class c JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'clinical_cache_invalidation_truncate'
            WHERE c.relname LIKE 'tap\_ward%'),
          '{"tap_ward ward:{ward_id},wards","tap_ward_1 ward:{ward_id},wards","tap_ward_2 ward:{ward_id},wards","tap_ward_3 ward:{ward_id},wards","tap_ward_3a ward:{ward_id},wards"}',
          'partitions created, attached or nested later get the TRUNCATE trigger with the table''s templates');
TRUNCATE tap_ward_3a;
DO $$ BEGIN PERFORM pg_temp.spill('w'); END $$;
SELECT is(pg_temp.queued('ward:%'), ARRAY['1 ward:* wards'], 'a TRUNCATE of a partition added later clears the key space');
-- only CREATE TABLE ... PARTITION OF and ATTACH PARTITION add them, and
-- only to the table they add: other ALTER TABLE commands do not (pg_dump
-- output re-creates the triggers one by one), nor other partitions
DROP TRIGGER clinical_cache_invalidation_truncate ON tap_ward_1;
ALTER TABLE tap_ward ENABLE TRIGGER clinical_cache_invalidation_truncate;
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'tap_ward_1'::regclass
                       AND tgname = 'clinical_cache_invalidation_truncate'),
          'an ALTER TABLE other than ATTACH PARTITION adds no TRUNCATE trigger to the partitions');
-- an attached table that brings a stale trigger of that name gets the table's
CREATE TABLE tap_ward_5 (ward_id int, site_id int);
CREATE TRIGGER clinical_cache_invalidation_truncate AFTER TRUNCATE ON tap_ward_5
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('old:{ward_id}', '');
ALTER TABLE tap_ward ATTACH PARTITION tap_ward_5 FOR VALUES FROM (5000) TO (6000);
SELECT is((SELECT array_agg(c.relname || ' ' || array_to_string(clinical._trigger_args(t.tgargs), ',') ORDER BY c.relname)
             FROM pg_class c JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = 'clinical_cache_invalidation_truncate'
            WHERE c.relname IN ('tap_ward_1', 'tap_ward_5')),
          '{"tap_ward_5 ward:{ward_id},wards"}',
          'ATTACH PARTITION gives the attached table the table''s TRUNCATE trigger (replacing a stale one) and touches no other partition');
-- a foreign partition cannot have TRUNCATE triggers: it is left out, and
-- does not make later partition DDL fail
CREATE EXTENSION IF NOT EXISTS file_fdw;
CREATE SERVER tap_files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE tap_ward_f PARTITION OF tap_ward FOR VALUES FROM (7000) TO (8000)
  SERVER tap_files OPTIONS (filename '/dev/null');
SELECT lives_ok($$CREATE TABLE tap_ward_6 PARTITION OF tap_ward FOR VALUES FROM (6000) TO (7000)$$,
                'a partition is added next to a foreign partition');
SELECT lives_ok($$SELECT clinical.enable_cache_invalidation('tap_ward', 'ward2:{ward_id}')$$,
                'enable_cache_invalidation() on a table with a foreign partition');
SELECT clinical.disable_cache_invalidation('tap_ward');
CREATE TABLE tap_ward_4 PARTITION OF tap_ward FOR VALUES FROM (3000) TO (4000);
SELECT is((SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            WHERE c.relname LIKE 'tap\_ward%' AND t.tgname LIKE 'clinical\_cache\_invalidation%'), 0,
          'after disable_cache_invalidation() no partition keeps or gets an invalidation trigger');

-- a trigger attached by hand, not through enable_cache_invalidation(), does
-- not fire: it could clear all of Redis ("{x}" makes the pattern "*")
CREATE TABLE tap_rogue (x int);
CREATE TRIGGER tap_rogue AFTER TRUNCATE ON tap_rogue
  EXECUTE FUNCTION clinical.cache_invalidation_trigger('{x}', '');
SELECT throws_ok($$TRUNCATE tap_rogue$$, '42P17', NULL,
                 'a hand-made trigger whose templates are not configured is refused');
DO $$ BEGIN PERFORM pg_temp.spill('rogue'); END $$;
SELECT is(pg_temp.queued('*'), '{}', '... and queued no "*" pattern');
DROP TABLE tap_rogue;

-- a partition is configured through its partitioned table
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_visit_1', 'v1:{visit_id}')$$, '42809', NULL,
                 'enable_cache_invalidation() on a partition is refused');
-- invalidate() in a read-only transaction fails at once, not at COMMIT
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT clinical.invalidate('ro:1')$$, '25006', NULL,
                 'invalidate() in a read-only transaction is refused at the call');
ROLLBACK TO SAVEPOINT ro;

-- key columns must render the same text in every session
CREATE TABLE tap_dated (id int, visit_date date);
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_dated', 'visit:{visit_date}')$$, '42804', NULL,
                 'a date column (its text follows DateStyle) cannot go into a key');

-- a column a template names is renamed: writes fail until the template is changed
CREATE TABLE tap_ren (id int);
DO $$ BEGIN PERFORM clinical.enable_cache_invalidation('tap_ren', 'ren:{id}'); END $$;
ALTER TABLE tap_ren RENAME COLUMN id TO rid;
SELECT throws_ok($$INSERT INTO tap_ren VALUES (1)$$, '42703', 'column "id" of relation "tap_ren" does not exist',
                 'after a rename of the column a template names, writes fail with a clear error');
SELECT is((SELECT coalesce(truncate_pattern, 'NULL') || ' ' || enabled FROM clinical.cache_invalidations
            WHERE target = 'tap_ren'::regclass), 'NULL true',
          'cache_invalidations shows a NULL pattern for a template that no longer fits its table');

-- ---- disable_cache_invalidation ----
SELECT is(clinical.disable_cache_invalidation('tap_patient', 'patient:{patient_id}'), 1,
          'disable_cache_invalidation() of one template returns 1');
SELECT is(ARRAY(SELECT tgnargs FROM pg_trigger WHERE tgrelid = 'tap_patient'::regclass ORDER BY tgname),
          ARRAY[2::int2, 2::int2], 'the triggers are rebuilt with the remaining template');
SELECT is(clinical.disable_cache_invalidation('tap_patient', 'patient:{patient_id}'), 0,
          'disabling a template that is not there returns 0 (with a notice)');
SELECT is(clinical.disable_cache_invalidation('tap_patient'), 1, 'disable_cache_invalidation(target) removes every template');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'tap_patient'::regclass), 0::bigint,
          'no template left: the triggers are dropped');
SELECT is((SELECT count(*) FROM clinical.cache_invalidations WHERE target = 'tap_patient'::regclass), 0::bigint,
          'no template left: the table is not listed');

-- a table dropped with invalidation enabled does not break the view
DO $$ BEGIN PERFORM clinical.enable_cache_invalidation('tap_other', 'o:{id}'); END $$;
DROP TABLE tap_other;
SELECT lives_ok($$SELECT count(*) FROM clinical.cache_invalidations$$,
                'cache_invalidations still works after an enabled table was dropped');
SELECT is((SELECT count(*) FROM clinical.cache_invalidation_config c
            WHERE NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = c.target)), 0::bigint,
          'dropping a table removes its invalidation configuration');

-- ---- invalidation_stats ----
DO $$ BEGIN PERFORM pg_temp.spill('qd0'); END $$;
CREATE TEMP TABLE tap_depth AS SELECT queue_depth AS d0 FROM clinical.invalidation_stats();
DO $$ BEGIN PERFORM pg_temp.spill('qd1'); END $$;
SELECT is((SELECT queue_depth - d0 FROM clinical.invalidation_stats(), tap_depth), 10000::bigint,
          'invalidation_stats(): queue_depth grows by the 10,000 keys written');
SELECT ok((SELECT oldest_pending_age >= interval '0' FROM clinical.invalidation_stats()),
          'invalidation_stats(): oldest_pending_age of a non-empty queue');
SELECT is((SELECT worker_pid FROM clinical.invalidation_stats()),
          (SELECT pid FROM pg_stat_activity WHERE backend_type = 'clinical invalidator'),
          'invalidation_stats(): worker_pid is the "clinical invalidator" background worker');
SELECT ok((SELECT worker_running AND current_backoff >= interval '0' AND keys_sent >= 0 AND errors >= 0
             FROM clinical.invalidation_stats()),
          'invalidation_stats(): the worker runs; counters are present');

-- ---- privileges: an application role ----
CREATE ROLE tap_inval_app NOLOGIN;
GRANT USAGE ON SCHEMA clinical TO tap_inval_app;
CREATE TABLE tap_app_patient (patient_id int PRIMARY KEY);
GRANT SELECT, INSERT, UPDATE, DELETE ON tap_app_patient TO tap_inval_app;
DO $$ BEGIN PERFORM clinical.enable_cache_invalidation('tap_app_patient', 'app:{patient_id}'); END $$;
GRANT CREATE ON SCHEMA public TO tap_inval_app;
SET LOCAL ROLE tap_inval_app;
CREATE TABLE tap_app_own (id int);
CREATE TABLE tap_app_part (id int) PARTITION BY RANGE (id);
CREATE TABLE tap_app_part_1 PARTITION OF tap_app_part FOR VALUES FROM (0) TO (100);
RESET ROLE;
DO $$ BEGIN PERFORM clinical.enable_cache_invalidation('tap_app_own', 'own:{id}'); END $$;
DO $$ BEGIN PERFORM clinical.enable_cache_invalidation('tap_app_part', 'apppart:{id}'); END $$;
SET LOCAL ROLE tap_inval_app;
SELECT lives_ok($$DROP TABLE tap_app_own$$, 'an application role drops its own table that has invalidation enabled');
SELECT lives_ok($$INSERT INTO tap_app_patient VALUES (1), (2)$$, 'an application role writes to a table with invalidation');
SELECT lives_ok($$SELECT clinical.invalidate('app:manual')$$, 'an application role calls invalidate()');
SELECT lives_ok($$SELECT pg_temp.spill('app')$$, 'an application role''s keys are written to the queue it cannot read');
SELECT throws_ok($$SELECT * FROM clinical.invalidation_queue$$, '42501',
                 'permission denied for table invalidation_queue', 'an application role cannot read the queue');
SELECT throws_ok($$DELETE FROM clinical.invalidation_queue$$, '42501',
                 'permission denied for table invalidation_queue', 'an application role cannot delete queue rows');
SELECT throws_ok($$INSERT INTO clinical.invalidation_queue (op, key) VALUES (1, '*')$$, '42501',
                 'permission denied for table invalidation_queue', 'an application role cannot queue a pattern');
SELECT throws_ok($$SELECT clinical.enable_cache_invalidation('tap_app_patient', 'x:{patient_id}')$$, '42501',
                 'permission denied for table cache_invalidation_config', 'an application role cannot change the configuration');
SELECT throws_ok($$SELECT clinical.disable_cache_invalidation('tap_app_patient')$$, '42501',
                 'permission denied for table cache_invalidation_config', 'an application role cannot disable invalidation');
SELECT throws_ok($$SHOW clinical.redis_password$$, '42501',
                 'must be superuser or have privileges of pg_read_all_settings to examine "clinical.redis_password"',
                 'an application role cannot read the Redis password');
SELECT throws_ok($$SHOW clinical.redis_user$$, '42501',
                 'must be superuser or have privileges of pg_read_all_settings to examine "clinical.redis_user"',
                 'an application role cannot read the Redis user');
SELECT is((SELECT count(*) FROM pg_settings WHERE name = 'clinical.redis_password'), 0::bigint,
          'pg_settings does not list the Redis password to an application role');
SELECT throws_ok($$SET clinical.redis_host = 'evil.example'$$, '55P02',
                 'parameter "clinical.redis_host" cannot be changed now', 'nobody redirects the invalidations in a session');
SELECT lives_ok($$CREATE TABLE tap_app_part_2 PARTITION OF tap_app_part FOR VALUES FROM (100) TO (200)$$,
                'an application role adds a partition to a partitioned table with invalidation');
SELECT lives_ok($$INSERT INTO tap_app_part VALUES (150)$$, 'and writes to it');
SELECT lives_ok($$SELECT pg_temp.spill('app2')$$, 'and its keys are written to the queue');
RESET ROLE;
SELECT is(pg_temp.queued('apppart:%'), ARRAY['0 apppart:150'], 'the new partition has the invalidation trigger');
SELECT is((SELECT count(*) FROM clinical.cache_invalidation_config WHERE key_template = 'own:{id}'), 0::bigint,
          'the configuration of the table the application role dropped is gone');
SELECT is(pg_temp.queued('app:%'), ARRAY['0 app:1', '0 app:2', '0 app:manual'],
          'the application role''s keys are in the queue');
SELECT is(current_setting('clinical.redis_password'), '',
          'with no password set, SHOW clinical.redis_password is empty even for a superuser');

-- review fixes (2026-11-26)
CREATE TABLE public.tap_rt (id int, "Mixed Col" int);
SELECT clinical.enable_cache_invalidation('public.tap_rt', 'mixed:{Mixed Col}');
ALTER TABLE public.tap_rt ALTER COLUMN "Mixed Col" TYPE float8;
SELECT is((SELECT truncate_pattern FROM clinical.cache_invalidations WHERE target = 'public.tap_rt'::regclass), NULL,
          'cache_invalidations shows a NULL pattern for a template whose column was retyped, and stays readable');
CREATE TABLE public.tap_dp (id int, at int) PARTITION BY RANGE (at);
CREATE TABLE public.tap_dp_1 PARTITION OF public.tap_dp FOR VALUES FROM (0) TO (10);
CREATE TABLE public.tap_dp_2 PARTITION OF public.tap_dp FOR VALUES FROM (10) TO (20);
SELECT clinical.enable_cache_invalidation('public.tap_dp', 'dp:{id}');
SELECT throws_ok($$SELECT clinical.disable_cache_invalidation('public.tap_dp_1')$$, '42809', NULL,
                 'disable_cache_invalidation() on a partition points to its partitioned table');
SELECT throws_ok($$SELECT clinical.disable_cache_invalidation(NULL)$$, '22004', NULL,
                 'disable_cache_invalidation(NULL) is an error');
ALTER TABLE public.tap_dp DETACH PARTITION public.tap_dp_2;
SELECT lives_ok($$TRUNCATE public.tap_dp_2$$, 'a partition detached from a table with cache invalidation can be truncated');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_dp_2'::regclass
             AND tgname LIKE 'clinical_cache_invalidation%'), 0, '... it keeps no invalidation trigger');
CREATE TABLE public.tap_ek (id int, name text);
SELECT clinical.enable_cache_invalidation('public.tap_ek', '{name}');
INSERT INTO public.tap_ek VALUES (1, ''), (2, 'n2');
DO $$ BEGIN PERFORM pg_temp.spill('ek'); END $$;
SELECT is(ARRAY(SELECT key FROM clinical.invalidation_queue WHERE key NOT LIKE 'filler:%' AND key IN ('', 'n2')),
          ARRAY['n2'], 'an empty rendered key is not queued');

ALTER TRIGGER clinical_cache_invalidation ON public.tap_ek RENAME TO other_name;
SELECT is((SELECT enabled FROM clinical.cache_invalidations WHERE target = 'public.tap_ek'::regclass), true,
          'cache_invalidations sees a renamed row trigger as enabled');
SELECT clinical.disable_cache_invalidation('public.tap_ek');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'public.tap_ek'::regclass
             AND tgfoid = 'clinical.cache_invalidation_trigger()'::regprocedure), 0,
          'disable_cache_invalidation() removes the renamed trigger too (it would fail every write)');

-- the queue has no index; one added by hand is kept up to date (the rows go
-- through the row writer then)
CREATE INDEX inv_queue_key ON clinical.invalidation_queue (key);
DO $$ BEGIN PERFORM clinical.invalidate('indexed:q1'); PERFORM pg_temp.spill('indexed'); END $$;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*)::int FROM clinical.invalidation_queue WHERE key = 'indexed:q1'), 1,
          'a queue row is found through an index someone added to the queue');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX clinical.inv_queue_key;

-- without a key, only REPLICA IDENTITY FULL lets a FOR ALL TABLES
-- publication take deletes from the queue (the expiry's, by hand)
SET LOCAL client_min_messages = error;  -- wal_level is not logical here
CREATE PUBLICATION inv_pub_all FOR ALL TABLES;
RESET client_min_messages;
SELECT lives_ok($$DELETE FROM clinical.invalidation_queue WHERE key = 'no such key'$$,
                'with a FOR ALL TABLES publication queue rows can still be deleted (expiry, by hand)');
DROP PUBLICATION inv_pub_all;

SELECT * FROM finish();
ROLLBACK;
