-- pg_regress suite of cache invalidation: configuration and what reaches
-- the queue (delivery to Redis is tested by test/integration/invalidation*.sh).
-- This database has no invalidator worker, so queued rows stay put.
CREATE EXTENSION clinical;

CREATE TABLE patient (patient_id int PRIMARY KEY, site_id int, name text);
SELECT clinical.enable_cache_invalidation('patient', 'patient:{patient_id}') IS NULL AS done;
SELECT clinical.enable_cache_invalidation('patient', 'site:{site_id}:patients', channel => 'cache-events') IS NULL AS done;
SELECT target, key_template, channel, truncate_pattern, enabled FROM clinical.cache_invalidations ORDER BY key_template;

-- a committed INSERT queues the rendered keys, once per transaction
BEGIN;
INSERT INTO patient VALUES (1, 10, 'a'), (2, 10, 'b');
UPDATE patient SET name = 'a2' WHERE patient_id = 1;
COMMIT;
SELECT op, key, channel FROM clinical.invalidation_queue ORDER BY key, channel;
DELETE FROM clinical.invalidation_queue;

-- an UPDATE that moves a row invalidates the old and the new key
UPDATE patient SET patient_id = 3, site_id = 11 WHERE patient_id = 2;
SELECT op, key, channel FROM clinical.invalidation_queue ORDER BY key, channel;
DELETE FROM clinical.invalidation_queue;

-- rollback, savepoint rollback and an error after the trigger fired queue nothing
BEGIN;
UPDATE patient SET name = 'x' WHERE patient_id = 1;
ROLLBACK;
BEGIN;
SAVEPOINT s1;
UPDATE patient SET name = 'y' WHERE patient_id = 1;
ROLLBACK TO s1;
SELECT clinical.invalidate('manual:kept');
SAVEPOINT s2;
SELECT clinical.invalidate('manual:dropped');
ROLLBACK TO s2;
COMMIT;
BEGIN;
UPDATE patient SET name = 'z' WHERE patient_id = 1;
SELECT 1 / 0;
COMMIT;
SELECT op, key, channel FROM clinical.invalidation_queue ORDER BY key;
DELETE FROM clinical.invalidation_queue;

-- keys with spaces and newlines stay one key; a NULL column renders no key
INSERT INTO patient VALUES (7, NULL, 'n');
SELECT clinical.invalidate(E'a key\nwith newline', 'with space');
SELECT op, replace(key, E'\n', '\n') AS key, channel FROM clinical.invalidation_queue ORDER BY key;
DELETE FROM clinical.invalidation_queue;

-- TRUNCATE queues each template's key space as a pattern
TRUNCATE patient;
SELECT op, key, channel FROM clinical.invalidation_queue ORDER BY key;
DELETE FROM clinical.invalidation_queue;

-- bad configuration changes nothing
SELECT clinical.enable_cache_invalidation('patient', 'patient:{nope}');
SELECT clinical.enable_cache_invalidation('patient', '');
SELECT clinical.enable_cache_invalidation('patient', 'patient:{patient_id');
SELECT clinical.enable_cache_invalidation('patient', 'patient:patient_id}');
SELECT clinical.enable_cache_invalidation('patient', 'patient:{}');
SELECT clinical.enable_cache_invalidation('patient', 'p:{patient_id}', channel => '');
SELECT clinical.enable_cache_invalidation('no_such_table', 'x:{id}');
SELECT clinical.invalidate('');
SELECT count(*) FROM clinical.cache_invalidation_config;

SELECT clinical.disable_cache_invalidation('patient', 'patient:{patient_id}');
SELECT key_template FROM clinical.cache_invalidations;
SELECT clinical.disable_cache_invalidation('patient');
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'patient'::regclass;
DROP TABLE patient;
DROP EXTENSION clinical;
