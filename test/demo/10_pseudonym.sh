# Demo: ID pseudonymisation with a server-side keyring.
. "$CLINICAL_SRC/test/demo/lib.sh"

section "Pseudonymisation: a keyring the database users cannot read"
KR="$CLINICAL_TMP/demo-keyring"
{ echo "1:$(openssl rand -hex 32)"; } > "$KR"; chmod 600 "$KR"
say "A fresh key from 'openssl rand -hex 32' goes into $KR (mode 600, owned by the server's user); clinical.keyring_file points at it."
run "ALTER SYSTEM SET clinical.keyring_file = '$KR'"
run "SELECT pg_reload_conf()"
sleep 0.5
show "SELECT * FROM clinical.keyring_status()"

say "The trigger replaces MRNs by pseudonyms as rows are written; the plaintext is never stored."
run "CREATE TABLE demo_subject (subject_id int PRIMARY KEY, mrn text NOT NULL, site text)"
printf "\n  sql> SELECT clinical.enable_pseudonymization('demo_subject', ARRAY['mrn'], normalization => 'trim_upper')\n"
run "SELECT clinical.enable_pseudonymization('demo_subject', ARRAY['mrn'], normalization => 'trim_upper')"
show "INSERT INTO demo_subject VALUES (1, 'mrn-000101', 'LON'), (2, ' MRN-000102 ', 'PAR'), (3, 'MRN-000103', 'BER')"
show "SELECT subject_id, mrn, site FROM demo_subject ORDER BY subject_id"

say "A lookup computes the pseudonym once and compares it with the stored (indexable) column."
run "CREATE INDEX ON demo_subject (mrn)"
show "SELECT subject_id, site FROM demo_subject WHERE mrn = clinical.pseudonym('mrn-000102', normalization => 'trim_upper')"

section "Key rotation without plaintext"
{ cat "$KR"; echo "2:$(openssl rand -hex 32)"; } > "$KR.new"; chmod 600 "$KR.new"; mv "$KR.new" "$KR"
say "Key 2 is added to the file (written anew and renamed); the server picks it up at the next statement. Stored v1 pseudonyms are wrapped under key 2."
show "SELECT version, is_current, fingerprint FROM clinical.keyring_status()"
show "SELECT clinical.repseudonymize('demo_subject', 'mrn', 2)"
show "SELECT subject_id, mrn FROM demo_subject ORDER BY subject_id"
say "Old lookups still work through the same onion: pseudonym(value, key_version => 1, to_version => 2)."
show "SELECT subject_id FROM demo_subject WHERE mrn = clinical.pseudonym('MRN-000101', key_version => 1, to_version => 2)"
run "DROP TABLE demo_subject"
run "ALTER SYSTEM RESET clinical.keyring_file"
run "SELECT pg_reload_conf()"
