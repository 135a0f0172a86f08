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
