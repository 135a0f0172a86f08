-- src/sql/00_core.sql
-- Foundation of the clinical extension: version, worker status and the
-- set_updated_at trigger. The install script is this file followed by the
-- other parts' files under src/sql/, in file-name order.

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

CREATE FUNCTION @extschema@.library_version()
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_library_version';

COMMENT ON FUNCTION @extschema@.library_version() IS
'Version of the loaded clinical shared library';

CREATE FUNCTION @extschema@.version(
    OUT extension_version text,
    OUT library_version text)
RETURNS record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT e.extversion::text, @extschema@.library_version()
      FROM pg_catalog.pg_extension AS e
     WHERE e.extname = 'clinical'
$$;

COMMENT ON FUNCTION @extschema@.version() IS
'Installed version of the clinical extension and version of its loaded library; they differ until ALTER EXTENSION clinical UPDATE';

CREATE FUNCTION @extschema@.worker_status(
    OUT preloaded boolean,
    OUT running boolean,
    OUT pid integer,
    OUT database name,
    OUT started timestamptz,
    OUT last_activity timestamptz,
    OUT state text)
RETURNS record
LANGUAGE c VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_worker_status';

COMMENT ON FUNCTION @extschema@.worker_status() IS
'Whether the clinical library is preloaded and its background worker runs: pid, database, start time, last activity and state';

CREATE FUNCTION @extschema@.set_updated_at()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_set_updated_at';

COMMENT ON FUNCTION @extschema@.set_updated_at() IS
'BEFORE INSERT OR UPDATE row trigger: sets a timestamptz column (updated_at, or the column named as trigger argument) to the transaction timestamp';

CREATE FUNCTION @extschema@._ddl_added_partition(pg_ddl_command)
RETURNS regclass
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'clinical_ddl_added_partition';

COMMENT ON FUNCTION @extschema@._ddl_added_partition(pg_ddl_command) IS
'Internal, for the DDL event triggers: the table a collected command created as a partition (CREATE TABLE ... PARTITION OF) or attached as one (ALTER TABLE ... ATTACH PARTITION), else NULL';

CREATE FUNCTION @extschema@._ddl_detached_name(pg_ddl_command)
RETURNS text[]
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'clinical_ddl_detached_name';

COMMENT ON FUNCTION @extschema@._ddl_detached_name(pg_ddl_command) IS
'Internal, for the DDL event triggers: {schema, name} of the table a collected ALTER TABLE ... DETACH PARTITION detached, as the command named it (schema NULL when not given), else NULL';

-- The tables of the trees a DETACH PARTITION left on their own: tables of
-- the detached name ({schema, name} from _ddl_detached_name; in the named
-- schema, or any) that are no partition,
-- and their partitions. A same-named table elsewhere can be among them;
-- the callers only remove triggers no configuration backs.
CREATE FUNCTION @extschema@._ddl_detached_tables(detached_name text[])
RETURNS SETOF regclass
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.relid
      FROM pg_class AS c
      JOIN pg_namespace AS n ON n.oid = c.relnamespace AND ($1[1] IS NULL OR n.nspname = $1[1])
     -- pg_partition_tree() of a plain table is empty: the table itself too
     CROSS JOIN LATERAL (SELECT c.oid::regclass AS relid
                         UNION SELECT p.relid FROM pg_partition_tree(c.oid) AS p) AS t
      JOIN pg_class AS r ON r.oid = t.relid
     WHERE c.relname = $1[2] AND NOT c.relispartition AND r.relkind IN ('r', 'p')
$$;

COMMENT ON FUNCTION @extschema@._ddl_detached_tables(text[]) IS
'Internal, for the DDL event triggers: the tables (and their partitions) an ALTER TABLE ... DETACH PARTITION may have left with statement triggers of their former parent';

CREATE FUNCTION @extschema@._trigger_args(bytea)
RETURNS text[]
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_trigger_args';

COMMENT ON FUNCTION @extschema@._trigger_args(bytea) IS
'Internal: splits pg_trigger.tgargs into a text array, for the views that list the extension''s triggers and their options';
