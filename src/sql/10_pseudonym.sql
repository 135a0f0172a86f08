-- src/sql/10_pseudonym.sql
-- ID pseudonymisation: keyed HMAC-SHA256 of identifiers under versioned
-- keys from the server-side keyring file (clinical.keyring_file).

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

CREATE FUNCTION @extschema@.pseudonym(
    value text,
    key_version integer DEFAULT NULL,
    normalization text DEFAULT NULL,
    to_version integer DEFAULT NULL)
RETURNS text
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_pseudonym';

COMMENT ON FUNCTION @extschema@.pseudonym(text, integer, text, integer) IS
'Keyed pseudonym of a value: "v<version>:" + base64url(HMAC-SHA256(key, normalized value)); NULL for NULL; key_version NULL = current key; normalization one of none, trim, upper, lower, trim_upper, trim_lower, alnum_upper; to_version wraps the result once under that key (the value a rotated column holds)';

CREATE FUNCTION @extschema@.pseudonym_bytea(
    value bytea,
    key_version integer DEFAULT NULL)
RETURNS bytea
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_pseudonym_bytea';

COMMENT ON FUNCTION @extschema@.pseudonym_bytea(bytea, integer) IS
'Raw 32-byte HMAC-SHA256 of a value under a keyring key (NULL = current key)';

CREATE FUNCTION @extschema@.repseudonym(pseudonym text, to_version integer)
RETURNS text
LANGUAGE c STABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_repseudonym';

COMMENT ON FUNCTION @extschema@.repseudonym(text, integer) IS
'One key-rotation step without plaintext: "vA:x" becomes "v<to_version>:" + base64url(HMAC(key to_version, "vA:x"))';

CREATE FUNCTION @extschema@.pseudonym_version(value text)
RETURNS integer
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'clinical_pseudonym_version';

COMMENT ON FUNCTION @extschema@.pseudonym_version(text) IS
'Key version of a value in pseudonym form ("v<version>:" + 43 base64url characters), NULL for anything else';

CREATE FUNCTION @extschema@.keyring_status(
    OUT version integer,
    OUT is_current boolean,
    OUT key_bytes integer,
    OUT fingerprint text)
RETURNS SETOF record
LANGUAGE c STABLE STRICT
AS 'MODULE_PATHNAME', 'clinical_keyring_status';

COMMENT ON FUNCTION @extschema@.keyring_status() IS
'Key versions in the keyring, which one is current, key lengths and a short fingerprint (never the key)';

-- Computing pseudonyms is an oracle for the keyed hash: only roles granted
-- EXECUTE may do it (the trigger needs no grant).
REVOKE ALL ON FUNCTION @extschema@.pseudonym(text, integer, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.pseudonym_bytea(bytea, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.repseudonym(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.keyring_status() FROM PUBLIC;

CREATE FUNCTION @extschema@.pseudonymize_trigger()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'clinical_pseudonymize_trigger';

COMMENT ON FUNCTION @extschema@.pseudonymize_trigger() IS
'BEFORE INSERT OR UPDATE row trigger replacing plaintext in the named text/varchar columns by pseudonyms; attach it with clinical.enable_pseudonymization()';

-- A partition carries its parent's trigger (a clone): it is configured
-- through the parent only.
CREATE FUNCTION @extschema@._pseudonym_not_inherited(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parent regclass;
BEGIN
    SELECT p.tgrelid::regclass INTO parent
      FROM pg_trigger AS t JOIN pg_trigger AS p ON p.oid = t.tgparentid
     WHERE t.tgrelid = target AND t.tgname = 'clinical_pseudonymize' AND t.tgparentid <> 0;
    IF FOUND THEN
        RAISE EXCEPTION 'pseudonymisation of "%" comes from its partitioned parent "%"', target, parent
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Configure it on the parent table; its partitions follow.';
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@._pseudonym_not_inherited(regclass) IS
'Internal: refuses to configure pseudonymisation on a partition whose trigger is a clone of its parent''s';

-- Checks, with the extension owner's rights, that the keyring loads, that
-- the key version exists and that the normalisation is known: the managing
-- functions need this without EXECUTE on pseudonym() (an oracle for the
-- keyed hash). It computes nothing a caller can see.
CREATE FUNCTION @extschema@._pseudonym_check(key_version integer, normalization text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.pseudonym('', key_version, normalization);
END
$$;

COMMENT ON FUNCTION @extschema@._pseudonym_check(integer, text) IS
'Internal: raises the keyring''s error when it cannot be loaded, the key version is unknown or the normalisation is unknown; for enable_pseudonymization and repseudonymize';

CREATE FUNCTION @extschema@.enable_pseudonymization(
    target regclass,
    columns text[],
    key_version integer DEFAULT NULL,
    normalization text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text;
    att record;
    args text;
BEGIN
    IF target IS NULL OR columns IS NULL OR cardinality(columns) = 0 THEN
        RAISE EXCEPTION 'target and columns are required'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the table and at least one text or varchar column.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = target AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '"%" is not a table', target
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pseudonymisation triggers go on ordinary or partitioned tables.';
    END IF;
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = target), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', target
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Ask the table''s owner or a superuser to call clinical.enable_pseudonymization().';
    END IF;
    PERFORM @extschema@._pseudonym_not_inherited(target);
    FOREACH col IN ARRAY columns LOOP
        SELECT a.atttypid, a.atttypmod INTO att
          FROM pg_attribute a
         WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, target
                USING ERRCODE = 'undefined_column',
                      HINT = 'Name existing text or varchar columns.';
        END IF;
        IF att.atttypid NOT IN ('text'::regtype, 'varchar'::regtype) THEN
            RAISE EXCEPTION 'column "%" of relation "%" is of type %, not text or varchar',
                            col, target, format_type(att.atttypid, att.atttypmod)
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Only text and varchar columns can hold pseudonyms.';
        END IF;
        IF att.atttypid = 'varchar'::regtype AND att.atttypmod > 0 AND att.atttypmod - 4 < 56 THEN
            RAISE EXCEPTION 'column "%" of relation "%" is too short for pseudonyms', col, target
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = format('It is %s; pseudonyms take up to 56 characters.', format_type(att.atttypid, att.atttypmod)),
                      HINT = 'Make the column varchar(56) or longer, or text.';
        END IF;
    END LOOP;
    IF cardinality(columns) <> (SELECT count(DISTINCT c) FROM unnest(columns) c) THEN
        RAISE EXCEPTION 'columns are named more than once'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name each column once.';
    END IF;
    IF key_version IS NOT NULL AND key_version <= 0 THEN
        RAISE EXCEPTION 'key version must be a positive integer'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a version listed by clinical.keyring_status(), or NULL for the current key.';
    END IF;
    -- checks the keyring is loadable, the key version exists and the normalisation is known
    PERFORM @extschema@._pseudonym_check(key_version, normalization);

    SELECT string_agg(quote_literal(a), ', ')
      INTO args
      FROM unnest(ARRAY[coalesce(key_version::text, ''), coalesce(normalization, '')] || columns) a;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = target AND tgname = 'clinical_pseudonymize') THEN
        EXECUTE format('DROP TRIGGER clinical_pseudonymize ON %s', target);
    END IF;
    EXECUTE format('CREATE TRIGGER clinical_pseudonymize BEFORE INSERT OR UPDATE OF %s ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION @extschema@.pseudonymize_trigger(%s)',
                   (SELECT string_agg(quote_ident(c), ', ') FROM unnest(columns) c), target, args);
    -- like the audit triggers: no plaintext is stored under
    -- session_replication_role = replica (logical replication's apply) either
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER clinical_pseudonymize', target);
END
$$;

COMMENT ON FUNCTION @extschema@.enable_pseudonymization(regclass, text[], integer, text) IS
'Attach (or reconfigure) the trigger that replaces plaintext in these text/varchar columns by pseudonyms on INSERT and UPDATE';

CREATE FUNCTION @extschema@.disable_pseudonymization(target regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'target must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the table whose pseudonymisation trigger is to go.';
    END IF;
    PERFORM @extschema@._pseudonym_not_inherited(target);
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                    WHERE tgrelid = target AND tgname = 'clinical_pseudonymize') THEN
        RAISE NOTICE 'pseudonymisation is not enabled on %', target;
        RETURN false;
    END IF;
    EXECUTE format('DROP TRIGGER clinical_pseudonymize ON %s', target);
    RETURN true;
END
$$;

COMMENT ON FUNCTION @extschema@.disable_pseudonymization(regclass) IS
'Remove the pseudonymisation trigger from a table; stored pseudonyms stay as they are';

CREATE VIEW @extschema@.pseudonymized_columns AS
SELECT t.tgrelid::regclass AS target,
       a.args[3:] AS columns,
       nullif(a.args[1], '')::integer AS key_version,
       coalesce(nullif(a.args[2], ''), 'none') AS normalization,
       t.tgenabled <> 'D' AS enabled
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL (SELECT @extschema@._trigger_args(t.tgargs) AS args) a
 WHERE t.tgfoid = '@extschema@.pseudonymize_trigger()'::regprocedure
   -- partitions carry clones of their parent's trigger: listed once, by the parent
   AND t.tgparentid = 0;

COMMENT ON VIEW @extschema@.pseudonymized_columns IS
'Tables whose columns are pseudonymised by trigger, with the key version (NULL = current) and normalisation';

CREATE FUNCTION @extschema@.repseudonymize(
    target regclass,
    "column" name,
    to_version integer,
    batch_size integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    total bigint := 0;
    n bigint;
    pattern text;
    parts regclass[];
    part regclass;
    nblocks bigint;
    step bigint;
    lo bigint;
    rotate text;    -- the rewrite of the column, and which rows need it
    stale text;
BEGIN
    IF target IS NULL OR "column" IS NULL OR to_version IS NULL THEN
        RAISE EXCEPTION 'target, column and to_version must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Name the table, the column and the key version to rotate to.';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the number of rows to rewrite per statement, e.g. 10000.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = target AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '"%" is not a table', target
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pseudonyms are rewritten in ordinary or partitioned tables.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = target AND attname = "column" AND attnum > 0 AND NOT attisdropped
                      AND atttypid IN ('text'::regtype, 'varchar'::regtype)) THEN
        RAISE EXCEPTION 'relation "%" has no text or varchar column "%"', target, "column"
            USING ERRCODE = 'undefined_column',
                  HINT = 'Name the column that holds the pseudonyms.';
    END IF;
    -- the key must exist before anything is rewritten
    PERFORM @extschema@._pseudonym_check(to_version, NULL);
    pattern := format('v%s:%%', to_version);
    rotate := format('%1$I = @extschema@.repseudonym(%1$I, $1)', "column");
    stale := format('@extschema@.pseudonym_version(%1$I) IS NOT NULL AND %1$I NOT LIKE $2', "column");
    -- a ctid names a row within one table: rewrite a partitioned table
    -- partition by partition and an inheritance tree table by table, each
    -- with UPDATE ONLY
    parts := ARRAY(WITH RECURSIVE tree(relid) AS (
                       SELECT target::oid
                       UNION
                       SELECT i.inhrelid FROM pg_inherits AS i JOIN tree AS t ON i.inhparent = t.relid)
                   SELECT t.relid::regclass FROM tree AS t JOIN pg_class AS c ON c.oid = t.relid
                    WHERE c.relkind = 'r' ORDER BY t.relid);
    -- Each batch is a range of about batch_size rows' worth of blocks (a
    -- TID range scan): picking each batch with LIMIT from the start of the
    -- table read again every row the batches before had rewritten, which
    -- made a rotation quadratic in the table's size. Row versions that the
    -- rewrite moves past the blocks counted at the start are rotated ones.
    FOREACH part IN ARRAY parts LOOP
        SELECT pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint,
               greatest(1, pg_catalog.ceil(batch_size /
                   CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 50 END))
          INTO nblocks, step
          FROM pg_class AS c WHERE c.oid = part;
        lo := 0;
        WHILE lo < nblocks LOOP
            EXECUTE format('UPDATE ONLY %s SET %s WHERE ctid >= $3 AND ctid < $4 AND %s',
                           part, rotate, stale)
              USING to_version, pattern, pg_catalog.format('(%s,0)', lo)::tid,
                    pg_catalog.format('(%s,0)', least(lo + step, 4294967295))::tid;
            GET DIAGNOSTICS n = ROW_COUNT;
            lo := lo + step;
            CONTINUE WHEN n = 0;
            total := total + n;
            RAISE NOTICE 'repseudonymize %.%: % rows rewritten to key version %', target, "column", total, to_version;
        END LOOP;
        -- rows that other sessions wrote or moved meanwhile (into blocks
        -- already walked, or past the end): picked until none is left
        LOOP
            EXECUTE format('UPDATE ONLY %1$s SET %2$s
                             WHERE ctid = ANY (ARRAY(SELECT ctid FROM ONLY %1$s WHERE %3$s LIMIT $3))',
                           part, rotate, stale)
              USING to_version, pattern, batch_size;
            GET DIAGNOSTICS n = ROW_COUNT;
            EXIT WHEN n = 0;
            total := total + n;
            RAISE NOTICE 'repseudonymize %.%: % rows rewritten to key version %', target, "column", total, to_version;
        END LOOP;
    END LOOP;
    RETURN total;
END
$$;

COMMENT ON FUNCTION @extschema@.repseudonymize(regclass, name, integer, integer) IS
'Rotate the pseudonyms stored in a column to another key version without plaintext (each "vA:x" becomes HMAC(key to_version, "vA:x")), in batches with progress notices; returns the number of rows rewritten';

REVOKE ALL ON FUNCTION @extschema@.enable_pseudonymization(regclass, text[], integer, text) FROM PUBLIC;
-- it would tell anyone which key versions exist and where the keyring is:
-- granted along with enable_pseudonymization() and repseudonymize()
REVOKE ALL ON FUNCTION @extschema@._pseudonym_check(integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.disable_pseudonymization(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.repseudonymize(regclass, name, integer, integer) FROM PUBLIC;
