-- pgTAP: ID pseudonymisation. The test cluster's keyring holds versions 1,
-- 2 (32-byte keys 0x00..0x1f, 0x20..0x3f) and 3 (131 bytes 0xaa).
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SELECT plan(52);

SELECT has_function('clinical', 'pseudonym', ARRAY['text', 'integer', 'text', 'integer']);
SELECT has_function('clinical', 'pseudonym_bytea', ARRAY['bytea', 'integer']);
SELECT has_function('clinical', 'repseudonym', ARRAY['text', 'integer']);
SELECT has_function('clinical', 'repseudonymize', ARRAY['regclass', 'name', 'integer', 'integer']);
SELECT has_function('clinical', 'enable_pseudonymization', ARRAY['regclass', 'text[]', 'integer', 'text']);
SELECT has_function('clinical', 'disable_pseudonymization', ARRAY['regclass']);
SELECT has_view('clinical', 'pseudonymized_columns', 'view clinical.pseudonymized_columns exists');
SELECT is((SELECT provolatile::text || proparallel::text FROM pg_proc
            WHERE oid = 'clinical.pseudonym(text,integer,text,integer)'::regprocedure),
          'ss', 'pseudonym() is STABLE and PARALLEL SAFE');

-- equality with pgcrypto's hmac on 10,000 random values
CREATE TEMP TABLE vals AS
  SELECT md5(random()::text) || repeat(chr(65 + (random() * 25)::int), (random() * 40)::int) AS v
    FROM generate_series(1, 10000);
SELECT is((SELECT count(*) FROM vals
            WHERE clinical.pseudonym_bytea(convert_to(v, 'UTF8'), 1)
                  = hmac(convert_to(v, 'UTF8'), decode('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'), 'sha256')),
          10000::bigint, 'pseudonym_bytea equals pgcrypto hmac(sha256) on 10,000 random values (key 1)');
SELECT is((SELECT count(*) FROM vals
            WHERE clinical.pseudonym_bytea(convert_to(v, 'UTF8'), 3)
                  = hmac(convert_to(v, 'UTF8'), decode(repeat('aa', 131), 'hex'), 'sha256')),
          10000::bigint, 'pseudonym_bytea equals pgcrypto hmac(sha256) with a key longer than a block (key 3)');
SELECT is((SELECT count(*) FROM generate_series(0, 200) AS n
            WHERE clinical.pseudonym_bytea(convert_to(repeat('x', n), 'UTF8'), 1)
                  = hmac(convert_to(repeat('x', n), 'UTF8'), decode('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'), 'sha256')),
          201::bigint, 'pseudonym_bytea equals pgcrypto hmac(sha256) at every length 0..200 (one final block up to 55 bytes, the general path beyond)');
SELECT is((SELECT count(*) FROM vals
            WHERE clinical.pseudonym(v, 2) = 'v2:' || rtrim(translate(encode(
                  hmac(convert_to(v, 'UTF8'), decode('202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f', 'hex'), 'sha256'),
                  'base64'), '+/', '-_'), '=')),
          10000::bigint, 'pseudonym() is "v2:" + unpadded base64url of the HMAC');

-- the current key follows clinical.key_version, else the highest version
SELECT is((SELECT version FROM clinical.keyring_status() WHERE is_current), 3, 'the highest version is current by default');
SET LOCAL clinical.key_version = 1;
SELECT is(clinical.pseudonym('MRN1'), clinical.pseudonym('MRN1', 1), 'clinical.key_version selects the current key');
SELECT is((SELECT version FROM clinical.keyring_status() WHERE is_current), 1, 'keyring_status() shows the chosen current key');
RESET clinical.key_version;

-- keyring_status shows no key material
SELECT is((SELECT count(*) FROM clinical.keyring_status()
            WHERE fingerprint ~ '^[0-9a-f]{16}$' AND position(fingerprint IN repeat('aa', 131)) = 0
              AND position(fingerprint IN '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f') = 0),
          3::bigint, 'fingerprints are 16 hex digits that are not part of any key');

-- ordinary roles: no oracle, no settings
CREATE ROLE pseud_tap_user NOLOGIN;
SET LOCAL ROLE pseud_tap_user;
SELECT throws_ok($$SELECT clinical.pseudonym('x')$$, '42501', NULL, 'PUBLIC cannot compute pseudonyms');
SELECT throws_ok($$SELECT * FROM clinical.keyring_status()$$, '42501', NULL, 'PUBLIC cannot call keyring_status()');
SELECT throws_ok($$SET clinical.key_version = 1$$, '42501', NULL, 'a non-superuser cannot set clinical.key_version');
SELECT throws_ok($$SET clinical.keyring_file = '/tmp/x'$$, '55P02', NULL, 'nobody can SET clinical.keyring_file in a session');
SELECT throws_ok($$SHOW clinical.keyring_file$$, '42501', NULL, 'a non-superuser cannot read clinical.keyring_file');
RESET ROLE;

-- the trigger pseudonymises plaintext, leaves known pseudonyms alone
CREATE TABLE tap_subject (id int, mrn varchar(80), other text);
SELECT lives_ok($$SELECT clinical.enable_pseudonymization('tap_subject', ARRAY['mrn'], 2)$$,
                'enable_pseudonymization() on a varchar(80) column');
INSERT INTO tap_subject SELECT i, 'MRN' || i, 'x' FROM generate_series(1, 100) i;
SELECT is((SELECT count(*) FROM tap_subject WHERE mrn = clinical.pseudonym('MRN' || id, 2)), 100::bigint,
          'a multi-row INSERT stores 100 pseudonyms');
UPDATE tap_subject SET mrn = clinical.pseudonym('NEW', 1) WHERE id = 1;
SELECT is((SELECT mrn::text FROM tap_subject WHERE id = 1), clinical.pseudonym('NEW', 1),
          'a pseudonym of another known key version is kept');
-- enabling again reconfigures
SELECT lives_ok($$SELECT clinical.enable_pseudonymization('tap_subject', ARRAY['mrn'], 1, 'upper')$$,
                'enable_pseudonymization() again, with other options');
SELECT is((SELECT key_version || '/' || normalization FROM clinical.pseudonymized_columns WHERE target = 'tap_subject'::regclass),
          '1/upper', 'calling enable_pseudonymization() again changes the options');

-- a value that only looks like a pseudonym (leading zero in the version, or
-- a last character no 32-byte MAC ends in) is plaintext: hashed, not kept
SELECT is(clinical.pseudonym_version('v02:' || substr(clinical.pseudonym('X', 2), 4)), NULL,
          'a version with a leading zero is not a pseudonym');
SELECT is(clinical.pseudonym_version(substr(clinical.pseudonym('X', 2), 1, 45) || 'B'), NULL,
          'a last character that 32 bytes cannot end in is not a pseudonym');
INSERT INTO tap_subject VALUES (200, 'v02:' || substr(clinical.pseudonym('X', 2), 4), 'x'),
                               (201, substr(clinical.pseudonym('X', 2), 1, 45) || 'B', 'x');
SELECT is((SELECT count(*) FROM tap_subject WHERE id IN (200, 201) AND mrn LIKE 'v1:%'
             AND mrn = clinical.pseudonym(upper(CASE id WHEN 200 THEN 'v02:' || substr(clinical.pseudonym('X', 2), 4)
                                                   ELSE substr(clinical.pseudonym('X', 2), 1, 45) || 'B' END), 1)),
          2::bigint, 'the trigger hashes look-alike values like any plaintext');

-- repseudonymize(): NULL arguments change nothing
SELECT throws_ok($$SELECT clinical.repseudonymize('tap_subject', 'mrn', NULL)$$, '22004', NULL,
                 'repseudonymize() with a NULL key version is an error');
SELECT is((SELECT count(*) FROM tap_subject WHERE mrn IS NULL), 0::bigint,
          '... and rewrote nothing (no pseudonym became NULL)');

-- repseudonymize() on a partitioned table: a ctid names a row in one
-- partition only; rows of another partition at the same ctids are left alone
CREATE TABLE tap_part (id int, mrn text) PARTITION BY RANGE (id);
CREATE TABLE tap_part_a PARTITION OF tap_part FOR VALUES FROM (0) TO (100);
CREATE TABLE tap_part_b PARTITION OF tap_part FOR VALUES FROM (100) TO (200);
INSERT INTO tap_part SELECT i, 'MRN' || i FROM generate_series(101, 105) i;  -- before the trigger: plaintext
SELECT clinical.enable_pseudonymization('tap_part', ARRAY['mrn'], 1);
INSERT INTO tap_part SELECT i, 'MRN' || i FROM generate_series(1, 5) i;
SELECT is(clinical.repseudonymize('tap_part', 'mrn', 2), 5::bigint,
          'repseudonymize() on a partitioned table rotates the pseudonyms of each partition');
SELECT is((SELECT count(*) FROM tap_part_a WHERE mrn = clinical.repseudonym(clinical.pseudonym('MRN' || id, 1), 2))
          + (SELECT count(*) FROM tap_part_b WHERE mrn = 'MRN' || id), 10::bigint,
          '... to key 2, and leaves the rows of the other partition at the same ctids alone');

-- repseudonymize() walks the table in block ranges: many batches, rows
-- whose new versions move to blocks not walked yet are rotated once only,
-- plaintext and values already under the target key are left alone
CREATE TABLE tap_walk (id int, mrn text, pad text);
INSERT INTO tap_walk SELECT i, clinical.pseudonym('MRN' || i, 1), repeat('p', 100) FROM generate_series(1, 4000) i;
INSERT INTO tap_walk SELECT i, clinical.pseudonym('MRN' || i, 2), NULL FROM generate_series(4001, 4100) i;
INSERT INTO tap_walk SELECT i, 'plain' || i, NULL FROM generate_series(4101, 4150) i;
ANALYZE tap_walk;
SELECT is(clinical.repseudonymize('tap_walk', 'mrn', 2, batch_size => 300), 4000::bigint,
          'repseudonymize() in block ranges of about 300 rows rewrites each row under another key');
SELECT is((SELECT count(*) FROM tap_walk WHERE id <= 4000
              AND mrn = clinical.pseudonym('MRN' || id, key_version => 1, to_version => 2)), 4000::bigint,
          '... exactly once (the onion of one rotation, also for rows moved ahead of the walk)');
SELECT is((SELECT count(*) FROM tap_walk WHERE (id BETWEEN 4001 AND 4100 AND mrn = clinical.pseudonym('MRN' || id, 2))
                                             OR (id > 4100 AND mrn = 'plain' || id)), 150::bigint,
          '... and leaves values under the target key and plaintext alone');

-- an inheritance tree is rotated table by table (UPDATE ONLY each)
CREATE TABLE tap_ih (id int, mrn text);
CREATE TABLE tap_ih_c () INHERITS (tap_ih);
INSERT INTO tap_ih SELECT i, clinical.pseudonym('MRN' || i, 1) FROM generate_series(1, 5) i;
INSERT INTO tap_ih_c SELECT i, clinical.pseudonym('MRN' || i, 1) FROM generate_series(6, 3000) i;
SELECT is(clinical.repseudonymize('tap_ih', 'mrn', 2, batch_size => 100), 3000::bigint,
          'repseudonymize() on an inheritance parent rotates its children''s rows too');
SELECT is((SELECT count(*) FROM tap_ih WHERE mrn = clinical.pseudonym('MRN' || id, key_version => 1, to_version => 2)),
          3000::bigint, '... each once');

-- rows written behind the walk (here by a trigger, as another session
-- could) are picked up by a last pass
CREATE TABLE tap_behind (id int, mrn text);
INSERT INTO tap_behind SELECT i, clinical.pseudonym('MRN' || i, 1) FROM generate_series(1, 2000) i;
CREATE FUNCTION pg_temp.tap_behind_ins() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF OLD.id = 2000 THEN
    INSERT INTO public.tap_behind SELECT i, clinical.pseudonym('MRN' || i, 1) FROM generate_series(5001, 5050) i;
  END IF;
  RETURN NEW;
END $f$;
CREATE TRIGGER tap_behind BEFORE UPDATE ON tap_behind FOR EACH ROW EXECUTE FUNCTION pg_temp.tap_behind_ins();
SELECT is(clinical.repseudonymize('tap_behind', 'mrn', 2), 2050::bigint,
          'repseudonymize() also rotates rows written behind its walk');
SELECT is((SELECT count(*) FROM tap_behind WHERE mrn = clinical.pseudonym('MRN' || id, key_version => 1, to_version => 2)),
          2050::bigint, '... each once');

-- review fixes (2026-11-26)
SET LOCAL clinical.key_version = 7;
SELECT is((SELECT count(*)::int FROM clinical.keyring_status() WHERE NOT is_current), 3,
          'keyring_status() lists the keys, none current, when clinical.key_version names a missing key');
RESET clinical.key_version;
SELECT throws_ok($$SELECT clinical.repseudonym(clinical.pseudonym('x', 1), 0)$$, '22023', NULL,
                 'repseudonym() refuses key version 0 like the other functions');
CREATE TABLE public.tap_pv (id int, mrn text, "Mixed Case" text, "méd" text, "a\b" text, site int) PARTITION BY LIST (site);
CREATE TABLE public.tap_pv_1 PARTITION OF public.tap_pv FOR VALUES IN (1);
SELECT clinical.enable_pseudonymization('public.tap_pv', ARRAY['mrn', 'Mixed Case', 'méd', 'a\b']);
SELECT is((SELECT array_agg(columns::text) FROM clinical.pseudonymized_columns WHERE target::text LIKE 'tap_pv%'),
          ARRAY['{mrn,"Mixed Case",méd,"a\\b"}'], 'pseudonymized_columns shows column names as they are, the parent once');
SELECT is((SELECT string_agg(tgenabled::text, '') FROM pg_trigger WHERE tgname = 'clinical_pseudonymize'
             AND tgrelid IN ('public.tap_pv'::regclass, 'public.tap_pv_1'::regclass)), 'AA',
          'the pseudonymisation trigger is enabled ALWAYS, on the partitions too');
SET LOCAL session_replication_role = replica;
INSERT INTO public.tap_pv (id, mrn, site) VALUES (1, 'PLAINTEXT', 1);
RESET session_replication_role;
SELECT is((SELECT mrn FROM public.tap_pv WHERE id = 1), clinical.pseudonym('PLAINTEXT'),
          'under session_replication_role = replica the value is still pseudonymised');
SELECT throws_ok($$SELECT clinical.disable_pseudonymization('public.tap_pv_1')$$, '42809', NULL,
                 'disable_pseudonymization() on a partition points to its parent');
SELECT throws_ok($$SELECT clinical.enable_pseudonymization('public.tap_pv_1', '{mrn}')$$, '42809', NULL,
                 'enable_pseudonymization() on a partition with its parent''s trigger points to the parent');
SELECT throws_ok($$SELECT clinical.disable_pseudonymization(NULL)$$, '22004', NULL,
                 'disable_pseudonymization(NULL) is an error');
CREATE VIEW public.tap_pv_view AS SELECT * FROM public.tap_pv;
SELECT throws_ok($$SELECT clinical.repseudonymize('public.tap_pv_view', 'mrn', 2)$$, '42809', NULL,
                 'repseudonymize() on a view says it is not a table');
-- managing pseudonymisation needs no EXECUTE on the pseudonym oracle
CREATE ROLE pseud_tap_owner NOLOGIN;
CREATE TABLE public.tap_po (id int, mrn text);
ALTER TABLE public.tap_po OWNER TO pseud_tap_owner;
GRANT USAGE ON SCHEMA clinical TO pseud_tap_owner;
GRANT EXECUTE ON FUNCTION clinical.enable_pseudonymization(regclass, text[], integer, text),
                          clinical._pseudonym_check(integer, text) TO pseud_tap_owner;
SET LOCAL ROLE pseud_tap_owner;
SELECT lives_ok($$SELECT clinical.enable_pseudonymization('public.tap_po', '{mrn}')$$,
                'a table owner granted enable_pseudonymization() alone can use it');
SELECT throws_ok($$SELECT clinical.enable_pseudonymization('public.tap_pv', '{mrn}')$$, '42501',
                 'must be owner of table public.tap_pv', '... on a table it does not own it is refused up front');
RESET ROLE;

SET LOCAL ROLE pseud_tap_user;
SELECT throws_like($$SELECT clinical._pseudonym_check(1, NULL)$$, '%permission denied%',
                   'the keyring check is not open to PUBLIC (it would list the key versions)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
