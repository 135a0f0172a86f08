-- src/sql/20_audit.sql
-- Audit trail: the append-only, monthly-partitioned change log, its seals,
-- the C trigger that writes it, the event triggers that record audit being
-- switched off and DDL on audited tables, verification and redaction.

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

-- clinical.audit_log: one row per audited change or audit event. The
-- column list must agree with audit_log_columns in src/audit.c, which
-- hashes the columns in this order (row_hash itself excluded).
CREATE SEQUENCE @extschema@.audit_log_change_id_seq AS bigint;

CREATE TABLE @extschema@.audit_log (
    change_id         bigint      NOT NULL,
    xact_time         timestamptz NOT NULL,
    clock_time        timestamptz NOT NULL,
    txid              bigint      NOT NULL,
    table_oid         oid,
    table_name        text,
    operation         text        NOT NULL,
    pk                jsonb,
    old_row           jsonb,
    new_row           jsonb,
    changed_columns   text[],
    session_user_name text        NOT NULL,
    role_name         text        NOT NULL,
    app_user          text,
    reason            text,
    client_addr       inet,
    client_port       integer,
    application_name  text,
    backend_pid       integer     NOT NULL,
    row_hash          bytea       NOT NULL
) PARTITION BY RANGE (xact_time);

ALTER SEQUENCE @extschema@.audit_log_change_id_seq OWNED BY @extschema@.audit_log.change_id;

-- Indexes are made per partition by _audit_prepare_partition(), not on
-- the parent: the parent comes from CREATE EXTENSION, and partitioned
-- indexes on it would collide with the partitions' own indexes when
-- pg_dump output is restored.

COMMENT ON TABLE @extschema@.audit_log IS
'Append-only audit log, one row per audited change or audit event, partitioned by month on xact_time; query it through clinical.audit_trail';
COMMENT ON SEQUENCE @extschema@.audit_log_change_id_seq IS
'Change ids of clinical.audit_log';

REVOKE ALL ON @extschema@.audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.audit_log_change_id_seq FROM PUBLIC;

CREATE SEQUENCE @extschema@.audit_seal_seal_id_seq AS bigint;

CREATE TABLE @extschema@.audit_seal (
    seal_id          bigint      PRIMARY KEY,
    sealed_at        timestamptz NOT NULL,
    xid_from         bigint      NOT NULL,
    xid_to           bigint      NOT NULL,
    first_change_id  bigint      NOT NULL,
    last_change_id   bigint      NOT NULL,
    row_count        bigint      NOT NULL,
    min_xact_time    timestamptz NOT NULL,
    max_xact_time    timestamptz NOT NULL,
    rows_digest      bytea       NOT NULL,
    key_version      integer CHECK (key_version > 0),  -- NULL: not keyed
    prev_mac         bytea,
    seal_mac         bytea       NOT NULL
);

ALTER SEQUENCE @extschema@.audit_seal_seal_id_seq OWNED BY @extschema@.audit_seal.seal_id;

COMMENT ON TABLE @extschema@.audit_seal IS
'Chain of seals over the audit log: each covers the change rows of the transactions in [xid_from, xid_to), whose xact_time lies in [min_xact_time, max_xact_time], hashes them in id order (rows_digest) and chains to the previous seal (seal_mac = HMAC under the keyring''s key_version, or SHA-256 without a keyring)';
COMMENT ON SEQUENCE @extschema@.audit_seal_seal_id_seq IS
'Seal ids of clinical.audit_seal';

REVOKE ALL ON @extschema@.audit_seal FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.audit_seal_seal_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_seal', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_seal_seal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.audit_log_change_id_seq', '');

-- C functions

CREATE FUNCTION @extschema@.audit_trigger()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_audit_trigger';

COMMENT ON FUNCTION @extschema@.audit_trigger() IS
'AFTER row trigger (INSERT, UPDATE, DELETE) and AFTER TRUNCATE statement trigger that writes clinical.audit_log; attach it with clinical.enable_audit()';

CREATE FUNCTION @extschema@._audit_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_audit_guard';

COMMENT ON FUNCTION @extschema@._audit_guard() IS
'Internal: refuses UPDATE, DELETE and TRUNCATE of the audit log and its seals, for every role';

CREATE FUNCTION @extschema@._audit_row_hash(@extschema@.audit_log)
RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_audit_row_hash';

COMMENT ON FUNCTION @extschema@._audit_row_hash(@extschema@.audit_log) IS
'SHA-256 content hash of an audit log row in the canonical encoding (all columns but row_hash, in table order); audit_verify compares it with row_hash';

CREATE FUNCTION @extschema@._audit_event(operation text, table_oid oid, table_name text, detail jsonb)
RETURNS bigint
LANGUAGE c
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_event';

COMMENT ON FUNCTION @extschema@._audit_event(text, oid, text, jsonb) IS
'Internal: records an audit event that is not a row change (audit switched on or off, DDL, redaction, partition retention) with the session''s context and a content hash; returns its change_id';

REVOKE ALL ON FUNCTION @extschema@._audit_event(text, oid, text, jsonb) FROM PUBLIC;

CREATE FUNCTION @extschema@.audit_seal()
RETURNS bigint
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_seal';

COMMENT ON FUNCTION @extschema@.audit_seal() IS
'Seals every committed, not yet sealed audit log row into the hash chain of clinical.audit_seal; returns the new seal''s id, or NULL when there was nothing to seal. The background worker runs it every clinical.audit_seal_interval';

REVOKE ALL ON FUNCTION @extschema@.audit_seal() FROM PUBLIC;

CREATE FUNCTION @extschema@.audit_verify(
    since timestamptz DEFAULT NULL,
    OUT problem text,
    OUT change_id bigint,
    OUT seal_id bigint,
    OUT detail text)
RETURNS SETOF record
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_verify';

COMMENT ON FUNCTION @extschema@.audit_verify(timestamptz) IS
'Recomputes the content hash of every audit log row and the digest and MAC of every seal (made since the given time, or all); returns one row per problem (the row or seal at fault and what is wrong), no rows when the trail is intact';

REVOKE ALL ON FUNCTION @extschema@.audit_verify(timestamptz) FROM PUBLIC;

CREATE FUNCTION @extschema@.audit_redact(change_id bigint, columns text[], justification text)
RETURNS bigint
LANGUAGE c VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_redact';

COMMENT ON FUNCTION @extschema@.audit_redact(bigint, text[], text) IS
'Replaces the named columns'' values in one stored change by a tombstone and records who, when and why as a REDACT event (returned id); seals stay valid and audit_verify checks the redacted row. Superuser only unless granted';

REVOKE ALL ON FUNCTION @extschema@.audit_redact(bigint, text[], text) FROM PUBLIC;

CREATE FUNCTION @extschema@._audit_attach(target regclass, options text[])
RETURNS void
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_internal_ddl';

COMMENT ON FUNCTION @extschema@._audit_attach(regclass, text[]) IS
'Internal, for clinical.enable_audit: (re)creates the audit triggers of a table the caller owns with the given options, enables them ALWAYS and records one AUDIT_ENABLE event';

CREATE FUNCTION @extschema@._audit_cover_partitions(added regclass, options text[])
RETURNS void
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'clinical_audit_cover_partitions';

COMMENT ON FUNCTION @extschema@._audit_cover_partitions(regclass, text[]) IS
'Internal, for the DDL event trigger: gives a table just created or attached as a partition of an audited table, and its own partitions, the TRUNCATE audit trigger with the given options, enabled ALWAYS (statement triggers are not cloned to new partitions)';

REVOKE ALL ON FUNCTION @extschema@._audit_cover_partitions(regclass, text[]) FROM PUBLIC;

CREATE FUNCTION @extschema@._audit_in_internal_ddl()
RETURNS boolean
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'clinical_audit_in_internal_ddl';

COMMENT ON FUNCTION @extschema@._audit_in_internal_ddl() IS
'Internal: true while clinical._audit_attach creates and enables audit triggers';

-- the guard: UPDATE, DELETE and TRUNCATE of the log and the seals are refused

CREATE TRIGGER audit_log_guard
    BEFORE UPDATE OR DELETE ON @extschema@.audit_log
    FOR EACH ROW EXECUTE FUNCTION @extschema@._audit_guard('clinical.audit_log');
CREATE TRIGGER audit_log_guard_truncate
    BEFORE TRUNCATE ON @extschema@.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_guard('clinical.audit_log');
ALTER TABLE @extschema@.audit_log ENABLE ALWAYS TRIGGER audit_log_guard;
ALTER TABLE @extschema@.audit_log ENABLE ALWAYS TRIGGER audit_log_guard_truncate;

CREATE TRIGGER audit_seal_guard
    BEFORE UPDATE OR DELETE ON @extschema@.audit_seal
    FOR EACH ROW EXECUTE FUNCTION @extschema@._audit_guard('clinical.audit_seal');
CREATE TRIGGER audit_seal_guard_truncate
    BEFORE TRUNCATE ON @extschema@.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_guard('clinical.audit_seal');
ALTER TABLE @extschema@.audit_seal ENABLE ALWAYS TRIGGER audit_seal_guard;
ALTER TABLE @extschema@.audit_seal ENABLE ALWAYS TRIGGER audit_seal_guard_truncate;

-- partitions of the log

-- Prepares a new partition of the log: its indexes (BRIN on change_id and
-- txid, which grow with insertion order and cost little to keep) and the
-- TRUNCATE guard, since statement triggers are not inherited.
CREATE FUNCTION @extschema@._audit_prepare_partition(part regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel text := (SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid = part);
BEGIN
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s USING brin (change_id)', rel || '_change_id', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s USING brin (txid)', rel || '_txid', part);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                    WHERE tgrelid = part AND tgname = 'audit_log_guard_truncate') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER audit_log_guard_truncate BEFORE TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@._audit_guard(''clinical.audit_log'')', part);
        EXECUTE pg_catalog.format(
            'ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_log_guard_truncate', part);
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._audit_prepare_partition(regclass) IS
'Internal: creates the indexes and the TRUNCATE guard of a new audit log partition';

REVOKE ALL ON FUNCTION @extschema@._audit_prepare_partition(regclass) FROM PUBLIC;

-- The partition of the log whose range holds ts, created (a calendar
-- month in UTC) when there is none. Called by the audit writer, as the
-- log's owner, when its cached range does not hold the transaction time.
CREATE FUNCTION @extschema@._audit_partition_for(ts timestamptz, OUT lo timestamptz, OUT hi timestamptz, OUT part regclass)
RETURNS record
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD' SET timezone = 'UTC' SET default_tablespace = ''
SET default_table_access_method = 'heap'
AS $$
DECLARE
    name text;
BEGIN
    -- look without a lock first: writers must not queue behind each other
    FOR attempt IN 1..2 LOOP
        SELECT b.lo, b.hi, b.partition INTO lo, hi, part
          FROM (SELECT p.partition,
                       replace(replace(p.lower_bound, 'MINVALUE', '-infinity'), 'MAXVALUE', 'infinity')::timestamptz AS lo,
                       replace(replace(p.upper_bound, 'MINVALUE', '-infinity'), 'MAXVALUE', 'infinity')::timestamptz AS hi
                  FROM @extschema@.partition_bounds('@extschema@.audit_log') AS p
                 WHERE NOT p.is_default) AS b
         WHERE ts >= b.lo AND ts < b.hi;
        IF FOUND THEN
            RETURN;
        END IF;
        IF attempt = 1 THEN
            -- creating: one creator at a time, then look again
            PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('clinical.audit_log partitions'));
        END IF;
    END LOOP;
    lo := pg_catalog.date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi := (pg_catalog.date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name := 'audit_log_p' || pg_catalog.to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD');
    EXECUTE pg_catalog.format('CREATE TABLE @extschema@.%I PARTITION OF @extschema@.audit_log FOR VALUES FROM (%L) TO (%L)',
                              name, lo, hi);
    part := pg_catalog.format('@extschema@.%I', name)::regclass;
    PERFORM @extschema@._audit_prepare_partition(part);
    -- the log is a partition set of the maintenance part: monthly in UTC,
    -- premake 4, retention 7 years by detaching, no default partition.
    -- Registered here, at the first write, not by the install script, so
    -- that pg_dump keeps the row like any other (and a lengthened
    -- retention survives a restore).
    IF pg_catalog.to_regclass('@extschema@.partition_config') IS NOT NULL THEN
        EXECUTE 'INSERT INTO @extschema@.partition_config
                     (parent, control_column, partition_interval, premake, retention,
                      retention_mode, default_partition, time_zone)
                 VALUES (''@extschema@.audit_log'', ''xact_time'', interval ''1 month'', 4,
                         interval ''7 years'', ''detach'', false, ''UTC'')
                 ON CONFLICT (parent) DO NOTHING';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._audit_partition_for(timestamptz) IS
'Internal: the audit log partition that holds the given time and its bounds, creating that month''s partition (UTC) when none does';

REVOKE ALL ON FUNCTION @extschema@._audit_partition_for(timestamptz) FROM PUBLIC;

-- the public view

CREATE VIEW @extschema@.audit_trail AS
SELECT l.change_id,
       l.xact_time,
       l.clock_time,
       l.txid,
       l.table_oid,
       l.table_name,
       l.operation,
       l.pk,
       l.old_row,
       l.new_row,
       l.changed_columns,
       l.session_user_name,
       l.role_name,
       l.app_user,
       l.reason,
       l.client_addr,
       l.client_port,
       l.application_name,
       l.backend_pid,
       pg_catalog.encode(l.row_hash, 'hex') AS content_hash,
       -- seals end in increasing xid_to: the last seal's, through the primary
       -- key (max(xid_to) read every seal ever made)
       l.txid < coalesce((SELECT s.xid_to FROM @extschema@.audit_seal AS s
                           ORDER BY s.seal_id DESC LIMIT 1), 0) AS sealed
  FROM @extschema@.audit_log AS l;

COMMENT ON VIEW @extschema@.audit_trail IS
'One row per audited change or audit event: who (session user, role, app_user), what (table, operation, primary key, old and new values, changed columns), when (transaction and clock time, transaction id), where (client address and port, application, backend pid), why (reason), its content hash and whether a seal covers it';

REVOKE ALL ON @extschema@.audit_trail FROM PUBLIC;

CREATE VIEW @extschema@.audited_tables AS
SELECT t.tgrelid::regclass AS table_name,
       ARRAY(SELECT pg_catalog.substr(a, 3) FROM pg_catalog.unnest(@extschema@._trigger_args(t.tgargs)) AS a
              WHERE a LIKE 'x:%')::text[] AS exclude_columns,
       ARRAY(SELECT pg_catalog.substr(a, 3) FROM pg_catalog.unnest(@extschema@._trigger_args(t.tgargs)) AS a
              WHERE a LIKE 'p:%')::text[] AS pseudonymize_columns,
       'r' = ANY (@extschema@._trigger_args(t.tgargs)) AS require_reason,
       t.tgenabled = 'A' AS enabled_always,
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS u
                WHERE u.tgrelid = t.tgrelid AND u.tgname = 'clinical_audit_truncate'
                  AND u.tgenabled = 'A') AS truncate_audited
  FROM pg_catalog.pg_trigger AS t
 WHERE t.tgfoid = '@extschema@.audit_trigger()'::regprocedure
   -- the row trigger, by whatever name (a rename is recorded, not hidden)
   AND (t.tgtype & 1) = 1
   AND t.tgparentid = 0;

COMMENT ON VIEW @extschema@.audited_tables IS
'Tables audited by clinical.enable_audit(), with their options and whether the audit triggers are enabled ALWAYS';

-- who and why

CREATE FUNCTION @extschema@.set_context(app_user text, reason text DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('clinical.app_user', coalesce($1, ''), true),
           pg_catalog.set_config('clinical.change_reason', coalesce($2, ''), true);
$$;

COMMENT ON FUNCTION @extschema@.set_context(text, text) IS
'Sets, for the rest of the transaction, the application user and the reason recorded with each audited change (SET LOCAL clinical.app_user and clinical.change_reason)';

-- switching audit on and off

CREATE FUNCTION @extschema@._audit_check_keyring()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.pseudonym('clinical.enable_audit keyring check');
END
$$;

COMMENT ON FUNCTION @extschema@._audit_check_keyring() IS
'Internal: raises the pseudonymisation part''s error when no usable keyring is configured, for enable_audit with pseudonymize_columns';

CREATE FUNCTION @extschema@.enable_audit(
    target regclass,
    exclude_columns text[] DEFAULT '{}',
    pseudonymize_columns text[] DEFAULT '{}',
    require_reason boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel record;
    col text;
    trg record;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null'
              USING ERRCODE = 'null_value_not_allowed',
                    HINT = 'Pass the table to audit, e.g. clinical.enable_audit(''public.patients'').';
    END IF;
    SELECT c.relkind, c.relowner, n.nspname, c.relname INTO rel
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = target;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', target
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'Only ordinary and partitioned tables can be audited.';
    END IF;
    IF rel.nspname = '@extschema@' THEN
        RAISE EXCEPTION 'the clinical extension''s own table "%" cannot be audited', target
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'The audit log is append-only and sealed; it does not need an audit trigger.';
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', target
              USING ERRCODE = 'insufficient_privilege',
                    HINT = 'Ask the table''s owner or a superuser to call clinical.enable_audit().';
    END IF;
    IF exclude_columns IS NULL OR pseudonymize_columns IS NULL OR require_reason IS NULL THEN
        RAISE EXCEPTION 'options must not be null'
              USING ERRCODE = 'null_value_not_allowed',
                    HINT = 'Pass ''{}'' for no columns and false for no reason requirement.';
    END IF;
    FOREACH col IN ARRAY exclude_columns || pseudonymize_columns LOOP
        IF col IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                       WHERE attrelid = target AND attname = col
                                         AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, target
                  USING ERRCODE = 'undefined_column',
                        HINT = 'Name existing columns in exclude_columns and pseudonymize_columns.';
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(exclude_columns) <> (SELECT count(DISTINCT c) FROM pg_catalog.unnest(exclude_columns) AS c)
       OR pg_catalog.cardinality(pseudonymize_columns) <> (SELECT count(DISTINCT c) FROM pg_catalog.unnest(pseudonymize_columns) AS c) THEN
        RAISE EXCEPTION 'a column is named more than once'
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Name each column once in exclude_columns and in pseudonymize_columns.';
    END IF;
    IF exclude_columns && pseudonymize_columns THEN
        RAISE EXCEPTION 'a column cannot be both excluded and pseudonymised'
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = pg_catalog.format('Columns in both lists: %s.',
                             (SELECT pg_catalog.string_agg(c, ', ') FROM pg_catalog.unnest(exclude_columns) AS c
                               WHERE c = ANY (pseudonymize_columns))),
                    HINT = 'Exclude a column to store nothing of it, or pseudonymise it to store its keyed hash.';
    END IF;
    IF pg_catalog.cardinality(pseudonymize_columns) > 0 THEN
        -- fails here, clearly, when no keyring is configured
        PERFORM @extschema@._audit_check_keyring();
    END IF;
    -- a partition is audited through its audited parent; a row audit
    -- trigger under another name would log every change twice
    SELECT t.tgname, t.tgparentid INTO trg
      FROM pg_catalog.pg_trigger AS t
     WHERE t.tgrelid = target AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure
       AND (t.tgtype & 1) = 1 AND (t.tgparentid <> 0 OR t.tgname <> 'clinical_audit')
     ORDER BY t.tgparentid DESC LIMIT 1;
    IF FOUND AND trg.tgparentid <> 0 THEN
        RAISE EXCEPTION 'table "%" is audited through its partitioned parent "%"', target,
                        (SELECT p.tgrelid::regclass FROM pg_catalog.pg_trigger AS p WHERE p.oid = trg.tgparentid)
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'Call clinical.enable_audit() on the audited ancestor: its options apply to every partition.';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'table "%" already has an audit trigger named "%"', target, trg.tgname
              USING ERRCODE = 'duplicate_object',
                    DETAIL = 'A second audit trigger would log every change twice.',
                    HINT = pg_catalog.format('Rename it back (ALTER TRIGGER %I ON %s RENAME TO clinical_audit) or call clinical.disable_audit() first.',
                                             trg.tgname, target);
    END IF;

    PERFORM @extschema@._audit_attach(target,
        ARRAY(SELECT 'x:' || c FROM pg_catalog.unnest(exclude_columns) AS c)
        || ARRAY(SELECT 'p:' || c FROM pg_catalog.unnest(pseudonymize_columns) AS c)
        || CASE WHEN require_reason THEN ARRAY['r'] ELSE '{}'::text[] END);
END
$$;

COMMENT ON FUNCTION @extschema@.enable_audit(regclass, text[], text[], boolean) IS
'Audits a table: attaches the C audit triggers (row INSERT/UPDATE/DELETE, statement TRUNCATE), enabled ALWAYS; excluded columns are never stored, pseudonymised ones are stored as their keyed hash, require_reason makes UPDATE/DELETE/TRUNCATE without clinical.change_reason fail. Idempotent; a second call changes the options';

CREATE FUNCTION @extschema@.disable_audit(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part regclass;
    trg record;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null'
              USING ERRCODE = 'null_value_not_allowed',
                    HINT = 'Pass the audited table.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                WHERE tgrelid = target AND tgparentid <> 0 AND (tgtype & 1) = 1
                  AND tgfoid = '@extschema@.audit_trigger()'::regprocedure) THEN
        RAISE EXCEPTION 'table "%" is audited through its partitioned parent', target
              USING ERRCODE = 'wrong_object_type',
                    HINT = 'Call clinical.disable_audit() on the audited ancestor, or detach the partition.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                    WHERE tgrelid = target AND (tgtype & 1) = 1
                      AND tgfoid = '@extschema@.audit_trigger()'::regprocedure) THEN
        RAISE EXCEPTION 'table "%" is not audited', target
              USING ERRCODE = 'undefined_object',
                    HINT = 'clinical.audited_tables lists the audited tables.';
    END IF;
    -- a row audit trigger renamed by hand goes too, under the name it was
    -- given by enable_audit, so that its removal is recorded (AUDIT_DISABLE)
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS t
                WHERE t.tgrelid = target AND t.tgname = 'clinical_audit'
                  AND t.tgfoid <> '@extschema@.audit_trigger()'::regprocedure) THEN
        RAISE EXCEPTION 'table "%" has a trigger named clinical_audit that is not an audit trigger', target
              USING ERRCODE = 'duplicate_object',
                    HINT = 'Rename or drop that trigger (its replacement was recorded as AUDIT_TRIGGER_REPLACED), then call clinical.disable_audit() again.';
    END IF;
    FOR trg IN SELECT t.tgname FROM pg_catalog.pg_trigger AS t
                WHERE t.tgrelid = target AND (t.tgtype & 1) = 1 AND t.tgname <> 'clinical_audit'
                  AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS clinical_audit ON %s', target);
        EXECUTE pg_catalog.format('ALTER TRIGGER %I ON %s RENAME TO clinical_audit', trg.tgname, target);
    END LOOP;
    EXECUTE pg_catalog.format('DROP TRIGGER clinical_audit ON %s', target);
    EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS clinical_audit_truncate ON %s', target);
    -- the partitions' own TRUNCATE triggers
    FOR part IN SELECT t.relid FROM pg_catalog.pg_partition_tree(target) AS t WHERE t.relid <> target LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS clinical_audit_truncate ON %s', part);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.disable_audit(regclass) IS
'Stops auditing a table (drops its audit triggers); the event trigger records this as an AUDIT_DISABLE event in the audit log';

-- event triggers: audit cannot be switched off unnoticed

CREATE FUNCTION @extschema@._audit_on_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cmd record;
    trg record;
    anc record;
    added regclass;
    relid oid;
    relname text;
BEGIN
    FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        -- a table created as or attached as a partition of an audited
        -- table: row triggers are cloned to it, the TRUNCATE trigger (with
        -- the audited ancestor's options) must be added to it and to its
        -- own partitions; nothing else in the tree is touched
        added := NULL;
        IF cmd.classid = 'pg_catalog.pg_class'::regclass AND cmd.objsubid = 0
           AND cmd.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
           AND NOT @extschema@._audit_in_internal_ddl() THEN
            added := @extschema@._ddl_added_partition(cmd.command);
        END IF;
        -- a detached table loses the parent's row audit trigger (PostgreSQL
        -- drops the clone, and the ALTER TABLE of the audited parent is
        -- recorded below); its TRUNCATE audit trigger, and its partitions',
        -- go too unless a table of the detached tree is audited itself
        IF cmd.classid = 'pg_catalog.pg_class'::regclass AND cmd.objsubid = 0
           AND cmd.command_tag = 'ALTER TABLE' THEN
            FOR relid IN SELECT * FROM @extschema@._ddl_detached_tables(@extschema@._ddl_detached_name(cmd.command)) LOOP
                CONTINUE WHEN EXISTS (
                    SELECT 1 FROM pg_catalog.pg_partition_ancestors(relid) AS a
                      JOIN pg_catalog.pg_trigger AS t ON t.tgrelid = a.relid
                     WHERE t.tgfoid = '@extschema@.audit_trigger()'::regprocedure
                       AND (t.tgtype & 1) = 1 AND t.tgparentid = 0);
                CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS t
                                           WHERE t.tgrelid = relid AND t.tgname = 'clinical_audit_truncate'
                                             AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure);
                EXECUTE pg_catalog.format('DROP TRIGGER clinical_audit_truncate ON %s', relid::regclass);
            END LOOP;
        END IF;
        IF added IS NOT NULL THEN
            SELECT a.relid, t.tgargs INTO anc
              FROM pg_catalog.pg_partition_ancestors(added) WITH ORDINALITY AS a(relid, n)
              JOIN pg_catalog.pg_trigger AS t
                ON t.tgrelid = a.relid AND t.tgname = 'clinical_audit_truncate'
               AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure
             WHERE a.relid <> added
             ORDER BY a.n LIMIT 1;
            IF FOUND THEN
                PERFORM @extschema@._audit_cover_partitions(added, @extschema@._trigger_args(anc.tgargs));
            END IF;
        END IF;
        IF cmd.classid = 'pg_catalog.pg_trigger'::regclass THEN
            -- enable_audit's own statements are recorded by _audit_attach
            IF @extschema@._audit_in_internal_ddl() THEN
                CONTINUE;
            END IF;
            SELECT t.tgrelid, t.tgname, t.tgargs, t.tgfoid, t.tgenabled, t.tgtype,
                   t.tgqual IS NOT NULL AS has_when INTO trg
              FROM pg_catalog.pg_trigger AS t WHERE t.oid = cmd.objid;
            IF NOT FOUND THEN
                CONTINUE;
            END IF;
            relname := trg.tgrelid::regclass::text;
            -- a guard of the log or the seals re-created (CREATE OR REPLACE
            -- TRIGGER) in another shape: other events, a WHEN clause, not
            -- enabled ALWAYS, or another function
            IF trg.tgname LIKE '%guard%'
               AND (trg.tgrelid IN ('@extschema@.audit_log'::regclass, '@extschema@.audit_seal'::regclass)
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(trg.tgrelid) AS a
                                WHERE a.relid = '@extschema@.audit_log'::regclass))
               AND (trg.tgfoid <> '@extschema@._audit_guard()'::regprocedure OR trg.has_when
                    OR trg.tgtype NOT IN (27, 34)
                    -- a new partition's guard is enabled ALWAYS by the next statement
                    OR (trg.tgenabled <> 'A'
                        AND trg.tgrelid IN ('@extschema@.audit_log'::regclass,
                                            '@extschema@.audit_seal'::regclass))) THEN
                PERFORM @extschema@._audit_event('LOG_GUARD_DISABLED', trg.tgrelid, relname,
                    pg_catalog.jsonb_build_object('trigger', trg.tgname,
                                                  'function', trg.tgfoid::regprocedure::text,
                                                  'events', trg.tgtype, 'when_clause', trg.has_when,
                                                  'enabled', trg.tgenabled::text,
                                                  'command', pg_catalog.current_query()));
                CONTINUE;
            END IF;
            IF trg.tgfoid = '@extschema@.audit_trigger()'::regprocedure THEN
                IF cmd.command_tag = 'ALTER TRIGGER' THEN
                    PERFORM @extschema@._audit_event('AUDIT_TRIGGER_RENAMED', trg.tgrelid, relname,
                        pg_catalog.jsonb_build_object('trigger', trg.tgname,
                                                      'command', pg_catalog.current_query()));
                ELSIF trg.tgname <> 'clinical_audit_truncate' THEN
                    -- by hand, or pg_dump output being restored
                    PERFORM @extschema@._audit_event('AUDIT_ENABLE', trg.tgrelid, relname,
                        pg_catalog.jsonb_build_object('options', @extschema@._trigger_args(trg.tgargs),
                                                      'trigger', trg.tgname, 'events', trg.tgtype,
                                                      'when_clause', trg.has_when,
                                                      'command', pg_catalog.current_query()));
                END IF;
                IF trg.tgenabled <> 'A' THEN
                    PERFORM @extschema@._audit_event('AUDIT_TRIGGER_DISABLED', trg.tgrelid, relname,
                        pg_catalog.jsonb_build_object('trigger', trg.tgname, 'enabled', trg.tgenabled::text));
                END IF;
            ELSIF trg.tgname LIKE 'clinical\_audit%' THEN
                -- an audit trigger replaced by another function
                PERFORM @extschema@._audit_event('AUDIT_TRIGGER_REPLACED', trg.tgrelid, relname,
                    pg_catalog.jsonb_build_object('trigger', trg.tgname,
                                                  'function', trg.tgfoid::regprocedure::text,
                                                  'command', pg_catalog.current_query()));
            END IF;
        ELSIF cmd.classid = 'pg_catalog.pg_class'::regclass AND cmd.command_tag = 'ALTER TABLE'
              AND cmd.objsubid = 0 THEN
            relid := cmd.objid;
            IF relid IN ('@extschema@.audit_log'::regclass, '@extschema@.audit_seal'::regclass)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(relid) AS a
                           WHERE a.relid = '@extschema@.audit_log'::regclass) THEN
                IF relid = '@extschema@.audit_log'::regclass
                   AND pg_catalog.current_query() ~* '\mDETACH\M' THEN
                    PERFORM @extschema@._audit_event('LOG_PARTITION_DETACH', relid, 'clinical.audit_log',
                        pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
                END IF;
                FOR trg IN SELECT t.tgname, t.tgenabled FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = relid
                              AND t.tgfoid = '@extschema@._audit_guard()'::regprocedure
                              AND t.tgenabled <> 'A' LOOP
                    PERFORM @extschema@._audit_event('LOG_GUARD_DISABLED', relid, relid::regclass::text,
                        pg_catalog.jsonb_build_object('trigger', trg.tgname,
                                                      'command', pg_catalog.current_query()));
                END LOOP;
                CONTINUE;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = relid
                              AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure) THEN
                CONTINUE;
            END IF;
            IF @extschema@._audit_in_internal_ddl() THEN
                CONTINUE;
            END IF;
            relname := relid::regclass::text;
            PERFORM @extschema@._audit_event('ALTER TABLE', relid, relname,
                pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
            FOR trg IN SELECT t.tgname, t.tgenabled FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = relid
                          AND t.tgfoid = '@extschema@.audit_trigger()'::regprocedure
                          AND t.tgenabled <> 'A' LOOP
                PERFORM @extschema@._audit_event('AUDIT_TRIGGER_DISABLED', relid, relname,
                    pg_catalog.jsonb_build_object('trigger', trg.tgname,
                        'enabled', CASE trg.tgenabled WHEN 'D' THEN 'disabled'
                                                      WHEN 'O' THEN 'origin and local only'
                                                      WHEN 'R' THEN 'replica only' END));
            END LOOP;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@._audit_on_ddl() IS
'Internal event trigger function: records audit switched on, ALTER TABLE of an audited table, audit triggers no longer enabled ALWAYS, and partitions detached from the audit log; gives partitions created in or attached to an audited table their TRUNCATE audit trigger';

CREATE FUNCTION @extschema@._audit_on_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
    tbl text;
    dropped_tables text[];
BEGIN
    -- DROP EXTENSION, or the log itself going: nothing left to write to
    IF pg_catalog.to_regclass('@extschema@.audit_log') IS NULL OR EXISTS (
           SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
            WHERE d.object_type IN ('table', 'extension')
              AND d.object_identity IN ('@extschema@.audit_log', 'clinical')) THEN
        RETURN;
    END IF;
    SELECT pg_catalog.array_agg(d.object_identity) INTO dropped_tables
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.object_type = 'table';
    FOR obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF obj.object_type = 'trigger' AND obj.object_identity LIKE 'clinical\_audit on %' THEN
            tbl := pg_catalog.substr(obj.object_identity, pg_catalog.length('clinical_audit on ') + 1);
            IF tbl = ANY (coalesce(dropped_tables, '{}')) THEN
                PERFORM @extschema@._audit_event('DROP TABLE', NULL, tbl,
                    pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
            ELSE
                PERFORM @extschema@._audit_event('AUDIT_DISABLE', pg_catalog.to_regclass(tbl), tbl,
                    pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
            END IF;
        ELSIF obj.object_type = 'trigger' AND obj.object_identity LIKE 'clinical\_audit\_truncate on %' THEN
            tbl := pg_catalog.substr(obj.object_identity, pg_catalog.length('clinical_audit_truncate on ') + 1);
            IF NOT tbl = ANY (coalesce(dropped_tables, '{}')) THEN
                PERFORM @extschema@._audit_event('AUDIT_TRUNCATE_DISABLE', pg_catalog.to_regclass(tbl), tbl,
                    pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
            END IF;
        ELSIF obj.object_type = 'trigger' AND (obj.object_identity LIKE 'audit\_log\_guard%'
                                               OR obj.object_identity LIKE 'audit\_seal\_guard%') THEN
            PERFORM @extschema@._audit_event('LOG_GUARD_DROPPED', NULL, obj.object_identity,
                pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
        ELSIF obj.object_type = 'table' AND obj.schema_name = '@extschema@'
              AND obj.object_name LIKE 'audit\_log\_%' THEN
            PERFORM @extschema@._audit_event('LOG_PARTITION_DROP', NULL, obj.object_identity,
                pg_catalog.jsonb_build_object('command', pg_catalog.current_query()));
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@._audit_on_drop() IS
'Internal event trigger function: records dropped audit triggers (audit switched off), dropped audited tables and dropped partitions of the audit log';

CREATE EVENT TRIGGER clinical_audit_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION @extschema@._audit_on_ddl();

CREATE EVENT TRIGGER clinical_audit_drop ON sql_drop
    EXECUTE FUNCTION @extschema@._audit_on_drop();

-- like the audit triggers, they fire under session_replication_role = replica
ALTER EVENT TRIGGER clinical_audit_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER clinical_audit_drop ENABLE ALWAYS;

COMMENT ON EVENT TRIGGER clinical_audit_ddl IS
'Records in the audit log: audit switched on, ALTER TABLE of audited tables, audit triggers disabled, audit log partitions detached; adds the TRUNCATE audit trigger to new partitions of audited tables';
COMMENT ON EVENT TRIGGER clinical_audit_drop IS
'Records in the audit log: audit triggers dropped (audit switched off), audited tables dropped, audit log partitions dropped';
