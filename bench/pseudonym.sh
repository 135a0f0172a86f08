#!/usr/bin/env bash
# bench/pseudonym.sh - keyed pseudonyms against their peers, one run:
#  (a) hash ROWS (default 1,000,000) distinct short identifiers ('MRN' || i)
#      in one query: clinical.pseudonym (text form), clinical.pseudonym_bytea,
#      pgcrypto hmac(..., 'sha256') with the key passed in, the built-in
#      sha256() (unkeyed), and the same query with no hashing (the floor);
#  (b) a 100,000-row INSERT with no trigger, with the pseudonymisation
#      trigger, and with its usual peer: a PL/pgSQL BEFORE trigger setting
#      the column to base64url(pgcrypto hmac(...)) with the key in its body;
#      and, as the floor of any C trigger that rewrites a row, with
#      clinical.set_updated_at() (a BEFORE trigger setting one timestamptz
#      column: the trigger call and the rewritten tuple, no hashing);
#  (c) a key rotation of ROT_ROWS (default 1,000,000) stored pseudonyms:
#      clinical.repseudonymize() in its default batches of 10,000 rows,
#      against the same rewrite as one UPDATE (the floor: no batches).
# (a) also prints what 5x pgcrypto leaves per call over the floor, next to
# one HMAC in a bare C loop (bench/hmac_loop.c).
# Rounds are interleaved; medians of ROUNDS (default 5).
. "$CLINICAL_SRC/bench/lib.sh"
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-5}
KEYHEX=$(printf '%s' 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f)

bench_setup
q >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS clinical;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
SQL

declare -A stmt=(
  [floor]="SELECT count('MRN' || i) FROM generate_series(1, $ROWS) i"
  [clinical_text]="SELECT count(clinical.pseudonym('MRN' || i, 1)) FROM generate_series(1, $ROWS) i"
  [clinical_bytea]="SELECT count(clinical.pseudonym_bytea(('MRN' || i)::bytea, 1)) FROM generate_series(1, $ROWS) i"
  [pgcrypto_hmac]="SELECT count(hmac(('MRN' || i)::bytea, decode('$KEYHEX', 'hex'), 'sha256')) FROM generate_series(1, $ROWS) i"
  [sha256]="SELECT count(sha256(('MRN' || i)::bytea)) FROM generate_series(1, $ROWS) i"
)
order=(floor clinical_text clinical_bytea pgcrypto_hmac sha256)
declare -A times
for r in $(seq 1 "$ROUNDS"); do
  for t in "${order[@]}"; do
    times[$t]+="$(q -c "SELECT bench_ms(\$b\$${stmt[$t]}\$b\$)") "
  done
done
med() { echo ${times[$1]} | tr ' ' '\n' | median; }
floor=$(med floor); hmac=$(med pgcrypto_hmac)
printf '(a) %s distinct identifiers in one query\n' "$ROWS"
printf '%-42s %10s %12s %14s %12s\n' "function" "median ms" "rows/s" "vs pgcrypto" "vs floor"
for t in "${order[@]}"; do
  m=$(med "$t")
  case $t in
    floor) label="no hashing (floor)";;
    clinical_text) label="clinical.pseudonym(text) -> 'v1:...'";;
    clinical_bytea) label="clinical.pseudonym_bytea(bytea)";;
    pgcrypto_hmac) label="pgcrypto hmac(bytea, key, 'sha256')";;
    sha256) label="built-in sha256(bytea), unkeyed";;
  esac
  awk -v l="$label" -v m="$m" -v h="$hmac" -v f="$floor" -v n="$ROWS" \
    'BEGIN { printf "%-42s %10.1f %12.0f %13.2fx %11.2fx\n", l, m, n / (m / 1000), h / m, m / f }'
done
# What 5x pgcrypto leaves per call, against one HMAC-SHA256 of the same
# identifiers in a bare C loop (OpenSSL, the key's inner and outer states
# precomputed, as clinical.pseudonym does; no PostgreSQL around it)
cc -O2 -o "$CLINICAL_TMP/hmac_loop" "$CLINICAL_SRC/bench/hmac_loop.c" -lcrypto
bare=$("$CLINICAL_TMP/hmac_loop" | cut -d' ' -f1)
ours=$(med clinical_text)
awk -v h="$hmac" -v f="$floor" -v o="$ours" -v b="$bare" -v n="$ROWS" 'BEGIN {
  printf "per call over the floor: clinical.pseudonym %.0f ns; 5x pgcrypto allows %.0f ns; one HMAC in a bare C loop takes %.0f ns\n",
    (o - f) * 1e6 / n, (h / 5 - f) * 1e6 / n, b }'

# (b) the trigger on a 100,000-row INSERT
q >/dev/null <<SQL
DROP TABLE IF EXISTS b_plain, b_pseud, b_peer, b_upd;
CREATE TABLE b_plain (id int, mrn text, site int, name text, born date, updated_at timestamptz DEFAULT now());
CREATE TABLE b_pseud (LIKE b_plain INCLUDING DEFAULTS);
CREATE TABLE b_peer (LIKE b_plain INCLUDING DEFAULTS);
CREATE TABLE b_upd (LIKE b_plain INCLUDING DEFAULTS);
SELECT clinical.enable_pseudonymization('b_pseud', ARRAY['mrn'], 1);
CREATE TRIGGER b_upd BEFORE INSERT OR UPDATE ON b_upd FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
CREATE OR REPLACE FUNCTION public.b_peer_pseudonym() RETURNS trigger LANGUAGE plpgsql AS \$f\$
BEGIN
  NEW.mrn := 'v1:' || rtrim(translate(encode(hmac(convert_to(NEW.mrn, 'UTF8'), decode('$KEYHEX', 'hex'), 'sha256'),
                                             'base64'), '+/', '-_'), '=');
  RETURN NEW;
END \$f\$;
CREATE TRIGGER b_peer BEFORE INSERT OR UPDATE ON b_peer FOR EACH ROW EXECUTE FUNCTION public.b_peer_pseudonym();
SQL
declare -A ins
for r in $(seq 1 "$ROUNDS"); do
  for t in plain upd pseud peer; do
    q -c "TRUNCATE b_$t" >/dev/null
    ins[$t]+="$(q -c "SELECT bench_ms(\$b\$INSERT INTO b_$t (id, mrn, site, name, born) SELECT i, 'MRN' || i, i % 40, 'name ' || i, '1970-01-01' FROM generate_series(1, 100000) i\$b\$)") "
  done
done
p=$(echo ${ins[plain]} | tr ' ' '\n' | median); s=$(echo ${ins[pseud]} | tr ' ' '\n' | median)
e=$(echo ${ins[peer]} | tr ' ' '\n' | median); u=$(echo ${ins[upd]} | tr ' ' '\n' | median)
printf '\n(b) INSERT of 100,000 rows\n'
printf '%-46s %10s %10s %12s\n' "table" "median ms" "vs plain" "peer / this"
awk -v p="$p" -v s="$s" -v e="$e" -v u="$u" 'BEGIN {
  printf "%-46s %10.1f %9.2fx\n", "no trigger", p, 1;
  printf "%-46s %10.1f %9.2fx\n", "C trigger floor: clinical.set_updated_at()", u, u / p;
  printf "%-46s %10.1f %9.2fx %11.2fx\n", "clinical pseudonymisation trigger (1 col)", s, s / p, e / s;
  printf "%-46s %10.1f %9.2fx %11.2fx\n", "PL/pgSQL trigger, pgcrypto hmac (peer)", e, e / p, 1 }'
q -c "DROP TABLE b_plain, b_pseud, b_peer, b_upd" >/dev/null
q -c "DROP FUNCTION public.b_peer_pseudonym()" >/dev/null

# (c) rotation: each round rotates both tables to the next key version
ROT_ROWS=${ROT_ROWS:-1000000}
q >/dev/null <<SQL
DROP TABLE IF EXISTS b_rot, b_rot_floor;
CREATE TABLE b_rot (id int, mrn text);
INSERT INTO b_rot SELECT i, clinical.pseudonym('MRN' || i, 1) FROM generate_series(1, $ROT_ROWS) i;
CREATE TABLE b_rot_floor AS SELECT * FROM b_rot;
VACUUM ANALYZE b_rot, b_rot_floor;
SQL
declare -A rot
for r in $(seq 1 "$ROUNDS"); do
  to=$(( r % 3 + 1 ))
  rot[batched]+="$(q -c "SET client_min_messages = warning" -c "SELECT bench_ms(\$b\$SELECT clinical.repseudonymize('b_rot', 'mrn', $to)\$b\$)" | tail -1) "
  rot[floor]+="$(q -c "SELECT bench_ms(\$b\$UPDATE b_rot_floor SET mrn = clinical.repseudonym(mrn, $to)
                   WHERE clinical.pseudonym_version(mrn) IS NOT NULL AND mrn NOT LIKE 'v$to:%'\$b\$)") "
  q -c "VACUUM b_rot, b_rot_floor" >/dev/null
done
same=$(q -c "SELECT count(*) FROM b_rot JOIN b_rot_floor USING (id) WHERE b_rot.mrn = b_rot_floor.mrn")
[ "$same" = "$ROT_ROWS" ] || { echo "rotation: the two tables differ ($same of $ROT_ROWS rows equal)" >&2; exit 1; }
b=$(echo ${rot[batched]} | tr ' ' '\n' | median); f=$(echo ${rot[floor]} | tr ' ' '\n' | median)
printf '\n(c) key rotation of %s stored pseudonyms\n' "$ROT_ROWS"
printf '%-46s %10s %10s\n' "statement" "median ms" "vs floor"
awk -v b="$b" -v f="$f" 'BEGIN {
  printf "%-46s %10.1f %9.2fx\n", "one UPDATE, no batches (floor)", f, 1;
  printf "%-46s %10.1f %9.2fx\n", "clinical.repseudonymize(), batches of 10,000", b, b / f }'
q -c "DROP TABLE b_rot, b_rot_floor" >/dev/null
