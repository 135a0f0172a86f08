-- pg_regress suite of ID pseudonymisation. The test cluster's keyring holds
-- versions 1 (bytes 0x00..0x1f), 2 (0x20..0x3f) and 3 (131 bytes 0xaa,
-- the key of RFC 4231 test cases 6 and 7); 3 is current (the highest).
CREATE EXTENSION clinical;

SELECT version, is_current, key_bytes, length(fingerprint) AS fp_len
  FROM clinical.keyring_status() ORDER BY version;

-- RFC 4231 known answers (the cases whose key is at least 32 bytes)
SELECT encode(clinical.pseudonym_bytea(
         convert_to('Test Using Larger Than Block-Size Key - Hash Key First', 'UTF8'), 3), 'hex')
       = '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54' AS rfc4231_case6;
SELECT encode(clinical.pseudonym_bytea(
         convert_to('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.', 'UTF8'), 3), 'hex')
       = '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2' AS rfc4231_case7;

-- the text form: version prefix + unpadded base64url of the MAC
SELECT clinical.pseudonym('MRN0001', 1) AS v1,
       clinical.pseudonym('MRN0001', 2) AS v2,
       clinical.pseudonym('MRN0001') AS current;
SELECT clinical.pseudonym('MRN0001', 1)
       = 'v1:' || rtrim(translate(encode(clinical.pseudonym_bytea('MRN0001'::bytea, 1), 'base64'), '+/', '-_'), '=')
       AS text_form_matches_bytea;
SELECT clinical.pseudonym('MRN0001', 1) = clinical.pseudonym('MRN0001', 1) AS deterministic,
       clinical.pseudonym('MRN0001', 1) <> clinical.pseudonym('MRN0002', 1) AS distinct_values;

-- normalisation is explicit; the default is none
SELECT clinical.pseudonym('  mrn-0001 ', 1) = clinical.pseudonym('MRN-0001', 1) AS none_differs_not,
       clinical.pseudonym('  mrn-0001 ', 1, normalization => 'trim_upper') = clinical.pseudonym('MRN-0001', 1) AS trim_upper,
       clinical.pseudonym('mrn 0001', 1, normalization => 'alnum_upper') = clinical.pseudonym('MRN0001', 1) AS alnum_upper,
       clinical.pseudonym(' x ', 1, normalization => 'trim') = clinical.pseudonym('x', 1) AS trim,
       clinical.pseudonym('Ab', 1, normalization => 'lower') = clinical.pseudonym('ab', 1) AS lower;

-- NULL in, NULL out
SELECT clinical.pseudonym(NULL) IS NULL AS null_text, clinical.pseudonym_bytea(NULL) IS NULL AS null_bytea;

-- rotation without plaintext: an onion
SELECT clinical.repseudonym(clinical.pseudonym('MRN0001', 1), 2)
       = clinical.pseudonym('MRN0001', key_version => 1, to_version => 2) AS onion_lookup,
       clinical.repseudonym(clinical.pseudonym('MRN0001', 2), 2) = clinical.pseudonym('MRN0001', 2) AS same_version_unchanged,
       clinical.pseudonym_version(clinical.pseudonym('MRN0001', 2)) AS version_of,
       clinical.pseudonym_version('MRN0001') IS NULL AS plaintext_has_no_version;

-- bad input
SELECT clinical.pseudonym('x', 9);
SELECT clinical.pseudonym('x', 0);
SELECT clinical.pseudonym('x', 1, normalization => 'soundex');
SELECT clinical.repseudonym('not a pseudonym', 2);

-- the trigger
CREATE TABLE patient (id int PRIMARY KEY, mrn text, nhs varchar(64), site text, note text);
SELECT clinical.enable_pseudonymization('patient', ARRAY['mrn', 'nhs'], key_version => 1, normalization => 'trim_upper');
SELECT * FROM clinical.pseudonymized_columns;
INSERT INTO patient VALUES (1, ' mrn0001', 'nhs-1', 'S1', 'n'), (2, NULL, 'nhs-2', 'S1', 'n');
SELECT id, mrn = clinical.pseudonym('MRN0001', 1) AS mrn_ok, nhs = clinical.pseudonym('NHS-1', 1) AS nhs_ok,
       mrn IS NULL AS mrn_null, site FROM patient ORDER BY id;
-- an UPDATE of another column leaves the pseudonyms alone
UPDATE patient SET note = 'm' WHERE id = 1;
SELECT mrn = clinical.pseudonym('MRN0001', 1) AS unchanged FROM patient WHERE id = 1;
-- a value already in pseudonym form for a known key is stored as it is
INSERT INTO patient VALUES (3, clinical.pseudonym('MRN0003', 2), NULL, 'S2', NULL);
SELECT mrn = clinical.pseudonym('MRN0003', 2) AS kept FROM patient WHERE id = 3;
-- a new plaintext in an UPDATE is pseudonymised
UPDATE patient SET mrn = 'mrn0009' WHERE id = 2;
SELECT mrn = clinical.pseudonym('MRN0009', 1) AS updated FROM patient WHERE id = 2;
-- lookup by pseudonym
SELECT id FROM patient WHERE mrn = clinical.pseudonym('MRN0001', 1);

-- rotation of the stored column to key version 2
SELECT clinical.repseudonymize('patient', 'mrn', 2, batch_size => 2);
SELECT id, mrn = clinical.pseudonym('MRN0001', key_version => 1, to_version => 2) AS rotated_1,
       clinical.pseudonym_version(mrn) AS version FROM patient ORDER BY id;

-- configuration errors change nothing
SELECT clinical.enable_pseudonymization('patient', ARRAY['nope']);
SELECT clinical.enable_pseudonymization('patient', ARRAY['id']);
SELECT clinical.enable_pseudonymization('patient', ARRAY['mrn'], key_version => 42);
SELECT clinical.enable_pseudonymization('patient', ARRAY['mrn'], normalization => 'nope');
CREATE TABLE short_col (code varchar(20));
SELECT clinical.enable_pseudonymization('short_col', ARRAY['code']);
SELECT clinical.enable_pseudonymization('no_such_table', ARRAY['mrn']);
SELECT target, columns, key_version, normalization FROM clinical.pseudonymized_columns;

SELECT clinical.disable_pseudonymization('patient');
SELECT clinical.disable_pseudonymization('patient');
SELECT count(*) FROM clinical.pseudonymized_columns;

DROP TABLE patient, short_col;
DROP EXTENSION clinical;
