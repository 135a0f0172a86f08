-- src/sql/50_invalidation.sql
-- Cache invalidation: key templates per table, the trigger, the durable
-- queue the invalidator worker delivers to Redis, and its statistics.

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

CREATE TABLE @extschema@.cache_invalidation_config (
    target regclass NOT NULL,
    key_template text NOT NULL,
    channel text,
    PRIMARY KEY (target, key_template)
);
COMMENT ON TABLE @extschema@.cache_invalidation_config IS
'Key templates whose Redis keys are invalidated after commit when rows of the table change (kept by pg_dump)';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cache_invalidation_config', '');

CREATE TABLE @extschema@.invalidation_queue (
    op smallint NOT NULL DEFAULT 0 CHECK (op IN (0, 1)),
    key text NOT NULL,
    channel text,
    enqueued_at timestamptz NOT NULL DEFAULT now()
) USING heap;   -- the worker deletes delivered rows by ctid in the heap
-- No key and no index: every committing writer inserts here, and a btree
-- on a growing identity made all of them insert into its rightmost leaf.
-- The worker reads it by sequential scan and keeps the heap small by
-- vacuuming it. Without a key, logical replication (a FOR ALL TABLES
-- publication) needs the whole row to replicate the worker's deletes.
COMMENT ON TABLE @extschema@.invalidation_queue IS
'Committed invalidations waiting for the invalidator worker: op 0 = UNLINK key (and PUBLISH to channel), op 1 = SCAN MATCH key as a pattern and UNLINK (TRUNCATE)';
REVOKE ALL ON @extschema@.invalidation_queue FROM PUBLIC;
-- every row is inserted once and deleted once, by the worker, which also
-- vacuums the queue (often: autovacuum would come once a minute)
-- and truncates its tail only after a backlog (the lock would stall writers)
ALTER TABLE @extschema@.invalidation_queue
  SET (autovacuum_enabled = false, vacuum_truncate = false);
ALTER TABLE @extschema@.invalidation_queue REPLICA IDENTITY FULL;

CREATE FUNCTION @extschema@.cache_invalidation_trigger()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_cache_invalidation_trigger';
COMMENT ON FUNCTION @extschema@.cache_invalidation_trigger() IS
'AFTER ROW (INSERT, UPDATE, DELETE) and AFTER TRUNCATE trigger collecting the cache keys of changed rows; attach it with clinical.enable_cache_invalidation()';

CREATE FUNCTION @extschema@._check_key_template(target regclass, key_template text)
RETURNS text
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'clinical_check_key_template';
COMMENT ON FUNCTION @extschema@._check_key_template(regclass, text) IS
'Validate a key template against a table; returns the SCAN pattern its TRUNCATE clears (internal)';

-- The trigger's arguments: the table's (template, channel) pairs as a
-- quoted argument list, NULL when the table has none.
CREATE FUNCTION @extschema@._cache_invalidation_args(target regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(quote_literal(c.key_template) || ', ' || quote_literal(coalesce(c.channel, '')), ', '
                      ORDER BY c.key_template)
      FROM @extschema@.cache_invalidation_config c WHERE c.target = $1
$$;
COMMENT ON FUNCTION @extschema@._cache_invalidation_args(regclass) IS
'The invalidation triggers'' arguments for a table: its (template, channel) pairs from clinical.cache_invalidation_config, quoted (internal)';

CREATE FUNCTION @extschema@._attach_cache_invalidation(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text := @extschema@._cache_invalidation_args($1);
    part regclass;
    trg record;
BEGIN
    -- the row trigger, also under a name it was given by hand
    FOR trg IN SELECT t.tgname FROM pg_trigger AS t
                WHERE t.tgrelid = $1 AND t.tgparentid = 0 AND (t.tgtype & 1) = 1
                  AND t.tgfoid = '@extschema@.cache_invalidation_trigger()'::regprocedure LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, $1);
    END LOOP;
    -- statement triggers are not cloned to partitions: the TRUNCATE trigger
    -- goes on the table and on each of its partitions (a TRUNCATE of one
    -- partition clears the key space too)
    FOR part IN SELECT $1 UNION ALL
                SELECT t.relid FROM pg_partition_tree($1) AS t JOIN pg_class AS c ON c.oid = t.relid
                 WHERE t.relid <> $1 AND c.relkind IN ('r', 'p')   -- no TRUNCATE triggers on foreign tables
    LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = part AND tgname = 'clinical_cache_invalidation_truncate') THEN
            EXECUTE format('DROP TRIGGER clinical_cache_invalidation_truncate ON %s', part);
        END IF;
        IF args IS NOT NULL THEN
            EXECUTE format('CREATE TRIGGER clinical_cache_invalidation_truncate AFTER TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.cache_invalidation_trigger(%s)', part, args);
        END IF;
    END LOOP;
    IF args IS NOT NULL THEN
        EXECUTE format('CREATE TRIGGER clinical_cache_invalidation AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.cache_invalidation_trigger(%s)', $1, args);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@._attach_cache_invalidation(regclass) IS
'(Re)create the invalidation triggers of a table from clinical.cache_invalidation_config (internal)';

CREATE FUNCTION @extschema@.enable_cache_invalidation(
    target regclass,
    key_template text,
    channel text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL OR key_template IS NULL THEN
        RAISE EXCEPTION 'target and key_template are required'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the table and a template such as ''patient:{patient_id}''.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = target AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '"%" is not a table', target
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Cache invalidation triggers go on ordinary or partitioned tables.';
    END IF;
    IF (SELECT relispartition FROM pg_class WHERE oid = target) THEN
        RAISE EXCEPTION '"%" is a partition', target
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Enable cache invalidation on the partitioned table; its partitions get the triggers.';
    END IF;
    IF channel = '' THEN
        RAISE EXCEPTION 'channel must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL for no PUBLISH, or a channel name.';
    END IF;
    PERFORM @extschema@._check_key_template(target, key_template);
    INSERT INTO @extschema@.cache_invalidation_config AS c (target, key_template, channel)
    VALUES (target, key_template, channel)
    ON CONFLICT ON CONSTRAINT cache_invalidation_config_pkey DO UPDATE SET channel = excluded.channel;
    PERFORM @extschema@._attach_cache_invalidation(target);
END
$$;
COMMENT ON FUNCTION @extschema@.enable_cache_invalidation(regclass, text, text) IS
'Invalidate Redis keys rendered from key_template (columns in braces) after each committed change of the table; optionally PUBLISH each key to channel; several templates per table';

CREATE FUNCTION @extschema@.disable_cache_invalidation(target regclass, key_template text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF $1 IS NULL THEN
        RAISE EXCEPTION 'target must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the table whose cache invalidation is to stop.';
    END IF;
    IF (SELECT relispartition FROM pg_class WHERE oid = $1)
       AND NOT EXISTS (SELECT 1 FROM @extschema@.cache_invalidation_config c WHERE c.target = $1) THEN
        RAISE EXCEPTION '"%" is a partition', $1
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Cache invalidation of a partition comes from its partitioned table: disable it there, or detach the partition.';
    END IF;
    DELETE FROM @extschema@.cache_invalidation_config c
     WHERE c.target = $1 AND ($2 IS NULL OR c.key_template = $2);
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE NOTICE 'cache invalidation is not enabled on % for that template', $1;
    END IF;
    PERFORM @extschema@._attach_cache_invalidation($1);
    RETURN n;
END
$$;
COMMENT ON FUNCTION @extschema@.disable_cache_invalidation(regclass, text) IS
'Stop invalidating a table''s keys (one template, or all when key_template is NULL); returns the number of templates removed';

-- A dropped table's triggers go with it; its configuration rows go here.
-- SECURITY DEFINER: the role dropping its own table cannot write the
-- configuration table. Does nothing while DROP EXTENSION removes the table.
CREATE FUNCTION @extschema@._cache_invalidation_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('@extschema@.cache_invalidation_config') IS NULL THEN
        RETURN;
    END IF;
    DELETE FROM @extschema@.cache_invalidation_config c
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND d.objid = c.target::pg_catalog.oid;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._cache_invalidation_sql_drop() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@._cache_invalidation_sql_drop() IS
'Event trigger function: removes the cache invalidation configuration of dropped tables (internal)';
CREATE EVENT TRIGGER clinical_cache_invalidation_sql_drop ON sql_drop
    EXECUTE FUNCTION @extschema@._cache_invalidation_sql_drop();
COMMENT ON EVENT TRIGGER clinical_cache_invalidation_sql_drop IS
'Removes rows of clinical.cache_invalidation_config whose table was dropped';

-- Statement triggers are not cloned: a table created as or attached as a
-- partition of a table with cache invalidation (at any level) gets the
-- TRUNCATE trigger, it and its own partitions, with the templates the
-- configuration holds for the nearest such ancestor. Nothing else in the
-- tree is touched.
CREATE FUNCTION @extschema@._cache_invalidation_on_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cmd record;
    added regclass;
    detached text[];
    args text;
    part regclass;
BEGIN
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
                WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.objsubid = 0 LOOP
        -- a detached table loses the parent's row trigger (PostgreSQL drops
        -- the clone); its TRUNCATE trigger, and its partitions', go too
        -- unless a table of the detached tree is configured itself
        detached := @extschema@._ddl_detached_name(cmd.command);
        IF detached IS NOT NULL THEN
            FOR part IN SELECT * FROM @extschema@._ddl_detached_tables(detached) LOOP
                CONTINUE WHEN EXISTS (
                    SELECT 1 FROM pg_catalog.pg_partition_ancestors(part) AS a
                      JOIN @extschema@.cache_invalidation_config AS c ON c.target = a.relid);
                CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS t
                                           WHERE t.tgrelid = part AND t.tgname = 'clinical_cache_invalidation_truncate'
                                             AND t.tgfoid = '@extschema@.cache_invalidation_trigger()'::regprocedure);
                EXECUTE pg_catalog.format('DROP TRIGGER clinical_cache_invalidation_truncate ON %s', part);
            END LOOP;
            CONTINUE;
        END IF;
        added := @extschema@._ddl_added_partition(cmd.command);
        CONTINUE WHEN added IS NULL;
        SELECT @extschema@._cache_invalidation_args(a.relid) INTO args
          FROM pg_catalog.pg_partition_ancestors(added) WITH ORDINALITY AS a(relid, n)
         WHERE a.relid <> added
           AND EXISTS (SELECT 1 FROM @extschema@.cache_invalidation_config AS c WHERE c.target = a.relid)
         ORDER BY a.n LIMIT 1;
        CONTINUE WHEN args IS NULL;
        FOR part IN SELECT t.relid FROM pg_catalog.pg_partition_tree(added) AS t
                      JOIN pg_catalog.pg_class AS r ON r.oid = t.relid
                     WHERE r.relkind IN ('r', 'p') LOOP
            EXECUTE pg_catalog.format('CREATE OR REPLACE TRIGGER clinical_cache_invalidation_truncate AFTER TRUNCATE ON %s '
                                      'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.cache_invalidation_trigger(%s)',
                                      part, args);
        END LOOP;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._cache_invalidation_on_ddl() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@._cache_invalidation_on_ddl() IS
'Event trigger function: gives a table created or attached as a partition of a table with cache invalidation, and its own partitions, the TRUNCATE trigger (internal)';
CREATE EVENT TRIGGER clinical_cache_invalidation_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@._cache_invalidation_on_ddl();
COMMENT ON EVENT TRIGGER clinical_cache_invalidation_ddl IS
'Adds the cache invalidation TRUNCATE trigger to tables created or attached as partitions of a table with cache invalidation';
ALTER EVENT TRIGGER clinical_cache_invalidation_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER clinical_cache_invalidation_sql_drop ENABLE ALWAYS;

-- The view's pattern column: NULL when a template no longer fits its table
-- (a column it names was dropped or renamed), so one such template does not
-- make the whole view fail.
CREATE FUNCTION @extschema@._truncate_pattern(target regclass, key_template text)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN @extschema@._check_key_template(target, key_template);
EXCEPTION
    -- a column dropped or renamed, or retyped to a type keys cannot hold
    WHEN undefined_column OR invalid_parameter_value OR datatype_mismatch THEN
        RETURN NULL;
END
$$;
COMMENT ON FUNCTION @extschema@._truncate_pattern(regclass, text) IS
'SCAN pattern a TRUNCATE of the table clears for a key template, NULL when the template no longer fits the table (internal)';

CREATE VIEW @extschema@.cache_invalidations AS
SELECT c.target, c.key_template, c.channel,
       @extschema@._truncate_pattern(c.target, c.key_template) AS truncate_pattern,
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                WHERE t.tgrelid = c.target AND (t.tgtype & 1) = 1
                  AND t.tgfoid = '@extschema@.cache_invalidation_trigger()'::regprocedure
                  AND t.tgenabled <> 'D') AS enabled
  FROM @extschema@.cache_invalidation_config c;
COMMENT ON VIEW @extschema@.cache_invalidations IS
'Tables and key templates whose cache keys are invalidated, with the pattern TRUNCATE clears (NULL when the template no longer fits the table)';

CREATE FUNCTION @extschema@.invalidate(VARIADIC keys text[])
RETURNS integer
LANGUAGE c STRICT
AS 'MODULE_PATHNAME', 'clinical_invalidate';
COMMENT ON FUNCTION @extschema@.invalidate(text[]) IS
'Invalidate these Redis keys after the current transaction commits (nothing on rollback); returns how many were queued';

CREATE FUNCTION @extschema@._invalidation_counters(
    OUT running boolean, OUT pid integer, OUT connected boolean,
    OUT keys_sent bigint, OUT publishes bigint, OUT patterns_cleared bigint,
    OUT batches bigint, OUT errors bigint, OUT reconnects bigint, OUT dropped bigint,
    OUT backoff_ms integer, OUT last_success timestamptz, OUT last_error text)
RETURNS record
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_invalidation_counters';
COMMENT ON FUNCTION @extschema@._invalidation_counters() IS
'Counters of the invalidator worker from shared memory (internal; see clinical.invalidation_stats())';

CREATE FUNCTION @extschema@.invalidation_stats(
    OUT worker_running boolean, OUT worker_pid integer, OUT redis_connected boolean,
    OUT queue_depth bigint, OUT oldest_pending_age interval,
    OUT keys_sent bigint, OUT publishes bigint, OUT patterns_cleared bigint,
    OUT batches bigint, OUT errors bigint, OUT reconnects bigint, OUT dropped bigint,
    OUT current_backoff interval, OUT last_success timestamptz, OUT last_error text)
RETURNS record
LANGUAGE sql VOLATILE
AS $$
    SELECT c.running, c.pid, c.connected,
           (SELECT count(*) FROM @extschema@.invalidation_queue),
           (SELECT now() - min(enqueued_at) FROM @extschema@.invalidation_queue),
           c.keys_sent, c.publishes, c.patterns_cleared, c.batches, c.errors, c.reconnects, c.dropped,
           make_interval(secs => c.backoff_ms / 1000.0), c.last_success, c.last_error
      FROM @extschema@._invalidation_counters() c
$$;
COMMENT ON FUNCTION @extschema@.invalidation_stats() IS
'Cache invalidation state: worker, Redis connection, queue depth and oldest pending age, keys sent, publishes, batches, errors, reconnects, dropped entries, current backoff, last success and last error';
