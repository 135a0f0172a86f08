-- pg_regress suite of the foundation: install, version, settings and the
-- set_updated_at trigger. Deterministic output only.
CREATE EXTENSION clinical;

SELECT extension_version = (SELECT extversion FROM pg_extension WHERE extname = 'clinical') AS ext_matches,
       library_version = extension_version AS lib_matches
  FROM clinical.version();

-- every object of the extension is commented
SELECT pg_describe_object(classid, objid, objsubid) AS uncommented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'clinical')
   AND d.deptype = 'e'
   AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
 ORDER BY 1;

-- settings: the prefix is reserved, ranges are enforced
SET clinical.no_such_setting = 1;
ALTER SYSTEM SET clinical.redis_port = 0;
ALTER SYSTEM SET clinical.redis_port = 70000;
SELECT name, context FROM pg_settings
 WHERE name LIKE 'clinical.%' AND name <> 'clinical.redis_password'
 ORDER BY name;

-- set_updated_at: default column
CREATE TABLE patient (id int PRIMARY KEY, name text,
                      updated_at timestamptz DEFAULT '2000-01-01 00:00+00');
CREATE TRIGGER patient_updated_at BEFORE UPDATE ON patient
  FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO patient VALUES (1, 'a'), (2, 'b');
BEGIN;
UPDATE patient SET name = 'a2' WHERE id = 1;
SELECT id, name, updated_at = now() AS set_to_now,
       updated_at = '2000-01-01 00:00+00' AS untouched
  FROM patient ORDER BY id;
-- an explicit value is overridden, like now() in a trigger would
UPDATE patient SET updated_at = '1999-01-01' WHERE id = 2;
SELECT id, updated_at = now() AS set_to_now FROM patient ORDER BY id;
COMMIT;

-- a named column, on INSERT and UPDATE
CREATE TABLE visit (id int, modified_at timestamptz, note text);
CREATE TRIGGER visit_modified BEFORE INSERT OR UPDATE ON visit
  FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at('modified_at');
BEGIN;
INSERT INTO visit VALUES (1, NULL, 'x');
SELECT id, modified_at = now() AS set_to_now FROM visit;
COMMIT;

-- the cache follows schema changes: rename the column, the trigger notices
ALTER TABLE visit RENAME COLUMN modified_at TO changed_at;
UPDATE visit SET note = 'y';
ALTER TABLE visit RENAME COLUMN changed_at TO modified_at;
UPDATE visit SET note = 'z';
SELECT note FROM visit;

-- errors: missing column, wrong type, wrong trigger kind, too many arguments
CREATE TABLE no_col (id int);
CREATE TRIGGER t BEFORE UPDATE ON no_col FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO no_col VALUES (1);
UPDATE no_col SET id = 2;
SELECT id FROM no_col;
CREATE TABLE wrong_type (id int, updated_at timestamp);
CREATE TRIGGER t BEFORE UPDATE ON wrong_type FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO wrong_type VALUES (1, NULL);
UPDATE wrong_type SET id = 2;
CREATE TABLE after_trg (id int, updated_at timestamptz);
CREATE TRIGGER t AFTER UPDATE ON after_trg FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
INSERT INTO after_trg VALUES (1, NULL);
UPDATE after_trg SET id = 2;
CREATE TABLE two_args (id int, updated_at timestamptz);
CREATE TRIGGER t BEFORE UPDATE ON two_args FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at('a', 'b');
INSERT INTO two_args VALUES (1, NULL);
UPDATE two_args SET id = 2;
SELECT clinical.set_updated_at();

DROP TABLE patient, visit, no_col, wrong_type, after_trg, two_args;
DROP EXTENSION clinical;
