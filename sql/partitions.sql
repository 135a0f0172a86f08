-- pg_regress suite of partition maintenance. Deterministic: the clock is
-- clinical.maintenance_now, and the session time zone is UTC.
CREATE EXTENSION clinical;
SET timezone = 'UTC';
SET clinical.maintenance_now = '2026-03-15 12:00+00';
-- Retention below is recorded in the audit trail, whose partitions follow
-- the real clock: give the log its partition for today now, and take the
-- log out of this suite's sets, so the output does not depend on the date.
SELECT count(*) FROM clinical._audit_partition_for(now());
DELETE FROM clinical.partition_config WHERE parent = 'clinical.audit_log'::regclass;

-- a monthly set: from January through now + 2 months, and a default partition
CREATE TABLE api_log (id bigint, at timestamptz NOT NULL, body text) PARTITION BY RANGE (at);
CREATE INDEX ON api_log (at);
SELECT clinical.create_time_partitions('api_log', 'at', '1 month', premake => 2,
       retention => '3 months', retention_mode => 'drop', start_at => '2026-01-10');
SELECT partition, is_default, lower_bound, upper_bound FROM clinical.partition_bounds('api_log');
SELECT parent, control_column, partition_interval, premake, retention, retention_mode,
       partitions, oldest_partition, newest_partition, next_boundary, legal_hold,
       held_partitions, last_run, last_error
  FROM clinical.partition_status;
SELECT control_column, time_zone, default_partition FROM clinical.partition_config;

-- nothing to do yet
SELECT * FROM clinical.run_maintenance();

-- rows beyond the partitions go to the default partition
INSERT INTO api_log VALUES (1, '2026-02-10'), (2, '2026-06-10'), (3, '2026-06-20'), (4, '2031-01-01');
SELECT tableoid::regclass, id FROM api_log ORDER BY id;

-- two months later: a dry run shows the DDL and does nothing
SET clinical.maintenance_now = '2026-05-02 08:00+00';
SELECT last_run AS last_run_before FROM clinical.partition_config \gset
SELECT action, partition, detail FROM clinical.run_maintenance('api_log', dry_run => true);
SELECT count(*) AS partitions_after_dry_run FROM clinical.partition_bounds('api_log');
SELECT last_run = :'last_run_before' AS dry_run_leaves_last_run FROM clinical.partition_config;

-- the real run: creates June and July, moves June's rows out of the default,
-- drops January (ended 2026-02-01 <= 2026-02-02), keeps February
SELECT action, partition, detail FROM clinical.run_maintenance('api_log');
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('api_log');
SELECT tableoid::regclass, id FROM api_log ORDER BY id;
SELECT last_run IS NOT NULL AS has_last_run, last_error FROM clinical.partition_status;

-- retention is decided by bounds, not names: a partition named like an old
-- one but holding a recent range is kept
CREATE TABLE api_log_p19990101 (LIKE api_log);
ALTER TABLE api_log ATTACH PARTITION api_log_p19990101
  FOR VALUES FROM ('2026-09-01') TO ('2026-10-01');
SET clinical.maintenance_now = '2026-06-02 00:00+00';
SELECT action, partition, detail FROM clinical.run_maintenance('api_log');

-- legal hold on one partition, then on the set
SET clinical.maintenance_now = '2026-08-02 00:00+00';
SELECT clinical.set_legal_hold('api_log', 'api_log_p20260301', true, 'subpoena 2026-17');
SELECT action, partition, detail FROM clinical.run_maintenance('api_log', true) WHERE action IN ('drop', 'skip');
SELECT clinical.set_legal_hold('api_log', true, 'litigation hold, trial ABC-123');
SELECT action, partition, detail FROM clinical.run_maintenance('api_log', true) WHERE action IN ('drop', 'skip');
SELECT legal_hold, legal_hold_reason, held_partitions FROM clinical.partition_status;
SELECT action, partition, detail FROM clinical.run_maintenance('api_log');
SELECT partition FROM clinical.partition_bounds('api_log') WHERE upper_bound <= '2026-05-01';
SELECT clinical.set_legal_hold('api_log', false, NULL);
SELECT clinical.set_legal_hold('api_log', 'api_log_p20260301', false, NULL);
SELECT legal_hold, legal_hold_reason, held_partitions FROM clinical.partition_status;

-- the procedure for schedulers reports as NOTICEs and commits after each set
CALL clinical.run_maintenance_proc();
SELECT partition FROM clinical.partition_bounds('api_log') WHERE upper_bound <= '2026-05-01';

-- detach and archive modes; a date column, quarterly
CREATE SCHEMA archive;
CREATE TABLE visits (d date NOT NULL, n int) PARTITION BY RANGE (d);
SELECT clinical.create_time_partitions('visits', 'd', '3 months', 1, '6 months', 'archive',
       'archive', '2025-07-01', false);
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('visits');
SET clinical.maintenance_now = '2026-04-01 00:00+00';
SELECT action, partition, detail FROM clinical.run_maintenance('visits');
SELECT n.nspname, c.relname, c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname LIKE 'visits_p%' ORDER BY 2;

-- weekly (Monday), daily and yearly sets on timestamp columns
CREATE TABLE wk (at timestamp NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('wk', 'at', '1 week', 2, default_partition => false);
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('wk');
CREATE TABLE dy (at timestamp NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('dy', 'at', '1 day', 2, '3 days', 'detach');
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('dy');
CREATE TABLE yr (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('yr', 'at', '1 year', 1, default_partition => false);
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('yr');

-- a set's boundaries use the time zone it was registered in
SET timezone = 'America/New_York';
CREATE TABLE ny (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('ny', 'at', '1 month', 1, default_partition => false);
SET timezone = 'UTC';
SELECT partition, lower_bound, upper_bound FROM clinical.partition_bounds('ny');
SELECT count(*) FROM clinical.run_maintenance('ny');

-- names: collisions and overlong names are errors, nothing is truncated
CREATE TABLE clash (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE clash_p20260401 (x int);
SELECT clinical.create_time_partitions('clash', 'at', '1 month', 1);
SELECT count(*) AS clash_partitions FROM clinical.partition_bounds('clash');
SELECT count(*) AS clash_registered FROM clinical.partition_config WHERE parent = 'clash'::regclass;
CREATE TABLE a_table_name_that_is_exactly_fifty_five_characters_long (at date)
  PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('a_table_name_that_is_exactly_fifty_five_characters_long', 'at', '1 month');

-- bad input
CREATE TABLE plain (at timestamptz);
SELECT clinical.create_time_partitions('plain', 'at', '1 month');
CREATE TABLE listed (at timestamptz) PARTITION BY LIST (at);
SELECT clinical.create_time_partitions('listed', 'at', '1 month');
CREATE TABLE bad (at timestamptz, n int) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('bad', 'nope', '1 month');
SELECT clinical.create_time_partitions('bad', 'n', '1 month');
SELECT clinical.create_time_partitions('bad', 'at', '0 days');
SELECT clinical.create_time_partitions('bad', 'at', '-1 month');
SELECT clinical.create_time_partitions('bad', 'at', '1 month 1 day');
SELECT clinical.create_time_partitions('bad', 'at', '12 hours');
SELECT clinical.create_time_partitions('bad', 'at', '1 month', 0);
SELECT clinical.create_time_partitions('bad', 'at', '1 month', retention => '1 week');
SELECT clinical.create_time_partitions('bad', 'at', '1 month', retention_mode => 'shred');
SELECT clinical.create_time_partitions('bad', 'at', '1 month', retention_mode => 'archive');
SELECT clinical.create_time_partitions('api_log', 'at', '1 month');
SELECT count(*) AS bad_partitions FROM pg_inherits WHERE inhparent = 'bad'::regclass;
SELECT * FROM clinical.run_maintenance('bad');
SELECT clinical.set_legal_hold('api_log', true, '');

-- the configuration is kept by pg_dump
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS t(oid) JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'clinical' AND c.relname LIKE 'partition%' ORDER BY 1;

RESET clinical.maintenance_now;
DROP TABLE api_log, visits, wk, dy, yr, ny, clash, clash_p20260401,
  a_table_name_that_is_exactly_fifty_five_characters_long, plain, listed, bad;
DROP SCHEMA archive CASCADE;
DROP EXTENSION clinical;
