-- src/sql/30_partitions.sql
-- Partition maintenance: time-range partition sets with premake, retention,
-- legal hold and lock-safe DDL (src/partition.c). The configuration tables
-- are kept by pg_dump; everyone may read them, only the functions below
-- write them, for the owner of the partitioned table.

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

CREATE TABLE @extschema@.partition_config (
    parent              regclass PRIMARY KEY,
    control_column      name NOT NULL,
    partition_interval  interval NOT NULL,
    premake             integer NOT NULL CHECK (premake BETWEEN 1 AND 1000),
    retention           interval CHECK (retention > interval '0'),
    retention_mode      text NOT NULL DEFAULT 'detach'
                        CHECK (retention_mode IN ('drop', 'detach', 'archive')),
    archive_schema      name,
    default_partition   boolean NOT NULL DEFAULT true,
    time_zone           text NOT NULL,
    legal_hold          boolean NOT NULL DEFAULT false,
    legal_hold_reason   text,
    legal_hold_since    timestamptz,
    registered_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_run            timestamptz,
    last_error          text,
    CHECK (retention_mode <> 'archive' OR archive_schema IS NOT NULL),
    CHECK (NOT legal_hold OR legal_hold_reason IS NOT NULL)
);

COMMENT ON TABLE @extschema@.partition_config IS
'Registered time partition sets: one row per partitioned table, with its interval, premake, retention, time zone for boundaries, set-wide legal hold, and the last maintenance run and error';

CREATE TABLE @extschema@.partition_hold (
    partition   regclass PRIMARY KEY,
    parent      regclass NOT NULL
                REFERENCES @extschema@.partition_config (parent) ON DELETE CASCADE,
    reason      text NOT NULL,
    held_by     name NOT NULL DEFAULT CURRENT_USER,
    held_at     timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX partition_hold_parent ON @extschema@.partition_hold (parent);

COMMENT ON TABLE @extschema@.partition_hold IS
'Legal holds on single partitions: a held partition is never detached, archived or dropped by maintenance';

SELECT pg_catalog.pg_extension_config_dump('@extschema@.partition_config', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.partition_hold', '');

REVOKE ALL ON @extschema@.partition_config, @extschema@.partition_hold FROM PUBLIC;
GRANT SELECT ON @extschema@.partition_config, @extschema@.partition_hold TO PUBLIC;

CREATE FUNCTION @extschema@.create_time_partitions(
    parent regclass,
    control_column name,
    partition_interval interval,
    premake integer DEFAULT 4,
    retention interval DEFAULT NULL,
    retention_mode text DEFAULT 'detach',
    archive_schema name DEFAULT NULL,
    start_at timestamptz DEFAULT NULL,
    default_partition boolean DEFAULT true)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_create_time_partitions';

COMMENT ON FUNCTION @extschema@.create_time_partitions(regclass, name, interval, integer, interval, text, name, timestamptz, boolean) IS
'Register a range-partitioned table as a time partition set and create its partitions (<parent>_pYYYYMMDD) from start_at (or now) through now + premake intervals, plus a default partition; returns the number of partitions created. Owner of the table only';

CREATE FUNCTION @extschema@.run_maintenance(
    parent regclass DEFAULT NULL,
    dry_run boolean DEFAULT false)
RETURNS TABLE (parent regclass, action text, partition text, detail text)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_run_maintenance';

COMMENT ON FUNCTION @extschema@.run_maintenance(regclass, boolean) IS
'Maintain one partition set, or every set the caller owns: create partitions up to now + premake, apply retention except under legal hold, each DDL step under clinical.maintenance_lock_timeout; returns every action (with dry_run, the DDL it would run, running none)';

CREATE PROCEDURE @extschema@.run_maintenance_proc(parent regclass DEFAULT NULL)
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_run_maintenance_proc';

COMMENT ON PROCEDURE @extschema@.run_maintenance_proc(regclass) IS
'Partition maintenance for schedulers (pg_cron, cron + psql): like run_maintenance() but commits after each set and reports actions as NOTICEs';

CREATE FUNCTION @extschema@.set_legal_hold(parent regclass, hold boolean, reason text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_set_legal_hold';

COMMENT ON FUNCTION @extschema@.set_legal_hold(regclass, boolean, text) IS
'Place (hold = true, with a reason) or release a legal hold on a whole partition set: no partition of it is detached, archived or dropped while held';

CREATE FUNCTION @extschema@.set_legal_hold(parent regclass, partition regclass, hold boolean, reason text)
RETURNS void
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_set_partition_legal_hold';

COMMENT ON FUNCTION @extschema@.set_legal_hold(regclass, regclass, boolean, text) IS
'Place (hold = true, with a reason) or release a legal hold on one partition of a set';

CREATE FUNCTION @extschema@.partition_bounds(parent regclass)
RETURNS TABLE (partition regclass, is_default boolean, lower_bound text, upper_bound text)
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'clinical_partition_bounds';

COMMENT ON FUNCTION @extschema@.partition_bounds(regclass) IS
'The partitions of a range-partitioned table with their actual bounds from the catalog, in bound order, the default partition last';

CREATE VIEW @extschema@.partition_status AS
SELECT c.parent,
       c.control_column,
       c.partition_interval,
       c.premake,
       c.retention,
       c.retention_mode,
       c.archive_schema,
       b.partitions,
       b.oldest_partition,
       b.newest_partition,
       b.next_boundary,
       (SELECT CASE WHEN d.reltuples < 0 THEN NULL ELSE d.reltuples::bigint END
          FROM pg_catalog.pg_class AS d
         WHERE d.oid = b.default_partition) AS default_rows_estimate,
       c.legal_hold,
       c.legal_hold_reason,
       (SELECT pg_catalog.array_agg(h.partition::text ORDER BY h.partition::text)
          FROM @extschema@.partition_hold AS h
         WHERE h.parent = c.parent) AS held_partitions,
       c.last_run,
       c.last_error
  FROM @extschema@.partition_config AS c
  LEFT JOIN LATERAL (
       SELECT pg_catalog.count(*) FILTER (WHERE NOT pb.is_default) AS partitions,
              (pg_catalog.array_agg(pb.partition::text ORDER BY pb.n)
                 FILTER (WHERE NOT pb.is_default))[1] AS oldest_partition,
              (pg_catalog.array_agg(pb.partition::text ORDER BY pb.n DESC)
                 FILTER (WHERE NOT pb.is_default))[1] AS newest_partition,
              (pg_catalog.array_agg(pb.upper_bound ORDER BY pb.n DESC)
                 FILTER (WHERE NOT pb.is_default))[1] AS next_boundary,
              pg_catalog.max(pb.partition::oid) FILTER (WHERE pb.is_default) AS default_partition
         FROM @extschema@.partition_bounds(c.parent) WITH ORDINALITY AS pb(partition, is_default, lower_bound, upper_bound, n)
        WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class AS p WHERE p.oid = c.parent)
  ) AS b ON true;

COMMENT ON VIEW @extschema@.partition_status IS
'One row per partition set: interval, premake, retention, number of partitions, oldest and newest partition, next boundary, rows in the default partition (estimate), legal holds, last maintenance run and error';

GRANT SELECT ON @extschema@.partition_status TO PUBLIC;

-- Housekeeping on DROP: a held partition (or a table holding one) cannot be
-- dropped by anyone, and a dropped partition set leaves no configuration.
CREATE FUNCTION @extschema@.partition_drop_guard()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    held text;
BEGIN
    -- during DROP EXTENSION the tables themselves are gone
    IF pg_catalog.to_regclass('@extschema@.partition_hold') IS NULL THEN
        RETURN;
    END IF;
    -- a held partition, or a partition set (the parent) under a set-wide hold
    SELECT pg_catalog.string_agg(d.object_identity, ', ') INTO held
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND (EXISTS (SELECT 1 FROM @extschema@.partition_hold AS h
                     WHERE h.partition OPERATOR(pg_catalog.=) d.objid)
            OR EXISTS (SELECT 1 FROM @extschema@.partition_config AS c
                        WHERE c.parent OPERATOR(pg_catalog.=) d.objid AND c.legal_hold));
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'partition % is under legal hold', held
              USING ERRCODE = '55006',
                    HINT = 'Release the hold with clinical.set_legal_hold() first.';
    END IF;
    DELETE FROM @extschema@.partition_config AS c
     USING pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid OPERATOR(pg_catalog.=) 0
       AND c.parent OPERATOR(pg_catalog.=) d.objid;
END
$$;

COMMENT ON FUNCTION @extschema@.partition_drop_guard() IS
'sql_drop event trigger function: refuses to drop a partition under legal hold, and forgets the configuration of a dropped partition set';

REVOKE ALL ON FUNCTION @extschema@.partition_drop_guard() FROM PUBLIC;

CREATE EVENT TRIGGER clinical_partition_drop ON sql_drop
    EXECUTE FUNCTION @extschema@.partition_drop_guard();

COMMENT ON EVENT TRIGGER clinical_partition_drop IS
'Keeps legal holds and partition_config consistent with DROP TABLE';
-- a legal hold holds under session_replication_role = replica too
ALTER EVENT TRIGGER clinical_partition_drop ENABLE ALWAYS;
