#!/usr/bin/env bash
# Integration: analytics aggregates under forced parallel plans give the
# same results as serial plans (exact and sketch modes); summaries survive
# binary COPY; random and mutated bytes fed to the text and binary input
# functions give errors, never a crash; groups that became sketches keep
# small tables.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS par_m;
CREATE TABLE par_m AS
  SELECT i % 40 AS site, (random() * 200)::int::float8 AS sbp, 3.5 + random() * 2 AS k
    FROM generate_series(1, 300000) i;
ANALYZE par_m;
SQL

PAR="SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET force_parallel_mode = on;"
SER="SET max_parallel_workers_per_gather = 0;"
# what must be identical: n, nmiss, min, max, exactness and the quantiles;
# mean and sd (the last two fields) to 1e-12 relative: floating-point sums
# depend on the order of merges, and rounded text would differ whenever a
# value lies at a rounding boundary
Q="SELECT clinical.n(s), clinical.nmiss(s), clinical.min(s), clinical.max(s), clinical.is_exact(s),
          clinical.quantiles(s, ARRAY[0, 0.01, 0.25, 0.5, 0.75, 0.99, 1]),
          clinical.quantiles(s, ARRAY[0.25, 0.5, 0.75], 'sas5'),
          clinical.mean(s), clinical.sd(s)"
# tap_stats_same DESCRIPTION GOT EXPECTED: lines of '|' fields, equal but for
# the last two, which must agree to 1e-12 relative; an empty EXPECTED fails
tap_stats_same() {
  local why
  if [ -z "$3" ]; then tap_not_ok "$1"; echo "#   nothing to compare: the expected side is empty"; return; fi
  why=$(awk -F'|' -v got="$2" 'BEGIN { n = split(got, g, "\n") }
    { if (NR > n) { bad = 1; print "more lines expected than got"; exit }
      m = split(g[NR], f, "|")
      if (m != NF) { bad = 1; print "line " NR ": field counts differ"; exit }
      for (i = 1; i <= NF - 2; i++) if (f[i] != $i) { bad = 1; print "line " NR " field " i ": " f[i] " vs " $i; exit }
      for (i = NF - 1; i <= NF; i++) { d = f[i] - $i; if (d < 0) d = -d; a = $i < 0 ? -$i : $i
        if (d > 1e-12 * a) { bad = 1; print "line " NR " field " i ": " f[i] " vs " $i; exit } } }
    END { if (!bad && NR < n) print "fewer lines expected than got" }' <<<"$3")
  if [ -z "$why" ]; then tap_ok "$1"; else tap_not_ok "$1"; echo "#   $why"; fi
}

plan=$(q -c "$PAR EXPLAIN (COSTS OFF) SELECT clinical.summarize(sbp) FROM par_m")
tap_check "forced plan is parallel (Partial Aggregate under Gather)" grep -q "Partial Aggregate" <<<"$plan"
plan=$(q -c "$PAR EXPLAIN (COSTS OFF) SELECT site, clinical.summarize(sbp) FROM par_m GROUP BY site")
tap_check "grouped plan is parallel too" grep -q "Partial" <<<"$plan"

for col in sbp k; do
  for limit in 65536 500; do
    ser=$(q -c "SET clinical.summary_exact_limit = $limit; $SER $Q FROM (SELECT clinical.summarize($col) s FROM par_m) t")
    par=$(q -c "SET clinical.summary_exact_limit = $limit; $PAR $Q FROM (SELECT clinical.summarize($col) s FROM par_m) t")
    mode=$(cut -d'|' -f5 <<<"$ser")
    tap_stats_same "whole table, $col, exact limit $limit (is_exact=$mode): parallel equals serial" "$par" "$ser"
    ser=$(q -c "SET clinical.summary_exact_limit = $limit; $SER ${Q/SELECT/SELECT site,} FROM (SELECT site, clinical.summarize($col) s FROM par_m GROUP BY site) t ORDER BY site")
    par=$(q -c "SET clinical.summary_exact_limit = $limit; $PAR ${Q/SELECT/SELECT site,} FROM (SELECT site, clinical.summarize($col) s FROM par_m GROUP BY site) t ORDER BY site")
    tap_stats_same "grouped by site, $col, exact limit $limit: parallel equals serial" "$par" "$ser"
  done
done
# while a group is exact its sum and sum of squares come from its sorted
# values, not from the order rows and partial states arrived in: mean and sd
# are identical too, to the last bit (printed with extra_float_digits = 3)
EX="SELECT clinical.is_exact(s), clinical.mean(s)::text || ' ' || clinical.sd(s)::text"
ser=$(q -c "SET extra_float_digits = 3; $SER $EX FROM (SELECT site, clinical.summarize(sbp) s FROM par_m GROUP BY site) t ORDER BY site")
par=$(q -c "SET extra_float_digits = 3; $PAR $EX FROM (SELECT site, clinical.summarize(sbp) s FROM par_m GROUP BY site) t ORDER BY site")
tap_is "exact groups: $(grep -c '^t|' <<<"$ser") of 40" "$(grep -c '^t|' <<<"$ser")" 40
tap_same "exact groups: mean and sd of the parallel plan are bit for bit the serial ones" "$par" "$ser"
ser=$(q -c "SET extra_float_digits = 3; $SER $EX FROM (SELECT clinical.summarize(sbp) s FROM par_m) t")
par=$(q -c "SET extra_float_digits = 3; $PAR $EX FROM (SELECT clinical.summarize(sbp) s FROM par_m) t")
tap_same "exact whole table: mean and sd bit for bit ($ser)" "$par" "$ser"
ser=$(q -c "$SER SELECT (clinical.describe(sbp, 'r6')).* FROM par_m")
par=$(q -c "$PAR SELECT (clinical.describe(sbp, 'r6')).* FROM par_m")
tap_same "describe(x, 'r6') parallel equals serial (method survives serialisation)" \
  "$(cut -d'|' -f1,2,5- <<<"$par")" "$(cut -d'|' -f1,2,5- <<<"$ser")"
b=$(q -c "$PAR SELECT s.subject, clinical.baseline(v, t, r) FROM (SELECT i % 1000 AS subject, i AS v,
          timestamptz '2026-01-01' + (i % 17) * interval '1 h' AS t, timestamptz '2026-01-01 08:00' AS r
          FROM generate_series(1, 100000) i) s GROUP BY 1 ORDER BY 1")
bs=$(q -c "$SER SELECT s.subject, clinical.baseline(v, t, r) FROM (SELECT i % 1000 AS subject, i AS v,
          timestamptz '2026-01-01' + (i % 17) * interval '1 h' AS t, timestamptz '2026-01-01 08:00' AS r
          FROM generate_series(1, 100000) i) s GROUP BY 1 ORDER BY 1")
tap_same "baseline parallel equals serial ($(grep -c . <<<"$bs") subjects)" "$b" "$bs"

# partial states that found nothing: most workers see no row at or before
# the reference (only the first 100 rows qualify), or no row at all
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS par_b;
CREATE TABLE par_b AS
  SELECT i AS v, CASE WHEN i <= 100 THEN timestamptz '2026-01-01' ELSE timestamptz '2027-01-01' END AS t
    FROM generate_series(1, 300000) i;
ANALYZE par_b;
SQL
BQ="SELECT clinical.baseline(v, t, timestamptz '2026-06-01'), clinical.locf(v, t, timestamptz '2026-06-01') FROM par_b"
tap_check "the baseline plan is parallel" grep -q "Partial Aggregate" <<<"$(q -c "$PAR EXPLAIN (COSTS OFF) $BQ")"
want=$(q -c "$SER $BQ")
same=0
for i in $(seq 1 10); do
  [ "$(q -c "$PAR $BQ" 2>&1)" = "$want" ] && same=$((same + 1))
done
tap_is "baseline and locf with partials that found nothing: 10 of 10 parallel runs equal serial ($want)" "$same" 10
tap_is "summarize over no matching row in parallel: n = 0" \
  "$(q -c "$PAR SELECT clinical.n(clinical.summarize(v)) FROM par_b WHERE v * 1 < -1")" 0

# binary round trip through COPY
q -c "DROP TABLE IF EXISTS par_s; CREATE TABLE par_s AS SELECT site, clinical.summarize(k) AS s FROM par_m GROUP BY site" >/dev/null
q -c "COPY par_s TO '$CLINICAL_TMP/summaries.bin' WITH (FORMAT binary)"
q -c "CREATE TABLE par_s2 (LIKE par_s); COPY par_s2 FROM '$CLINICAL_TMP/summaries.bin' WITH (FORMAT binary)" >/dev/null
tap_is "summaries round-trip through binary COPY" \
  "$(q -c "SELECT count(*) FROM par_s JOIN par_s2 USING (site) WHERE par_s.s::text = par_s2.s::text")" "40"
tap_is "and through text" \
  "$(q -c "SELECT count(*) FROM par_s WHERE s::text::clinical.summary::text = s::text")" "40"

# fuzz: mutated text, random binary payloads. The seeds are an exact
# summary and a sketch (past the exact limit), small enough to be mutated
# many times; they reach perl through files (a summary of many distinct
# values is longer than one command-line argument may be).
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS par_seed, par_fuzz_text, par_fuzz;
CREATE TABLE par_seed (kind text, s clinical.summary);
INSERT INTO par_seed SELECT 'exact', clinical.summarize(x % 97 + x / 1000.0) FROM generate_series(1, 300) x;
SET clinical.summary_exact_limit = 50;
INSERT INTO par_seed SELECT 'sketch', clinical.summarize(x * 1.5) FROM generate_series(1, 300) x;
CREATE TABLE par_fuzz_text (s clinical.summary);
CREATE TABLE par_fuzz (s clinical.summary);
SQL
tap_is "the fuzz seeds are one exact summary and one sketch" \
  "$(q -c "SELECT string_agg(kind || ':' || clinical.is_exact(s), ' ' ORDER BY kind) FROM par_seed")" "exact:true sketch:false"
q -c "SELECT s::text FROM par_seed ORDER BY kind" > "$CLINICAL_TMP/seeds.txt"
q -c "SELECT encode(clinical.summary_send(s), 'hex') FROM par_seed ORDER BY kind" > "$CLINICAL_TMP/seeds.hex"
perl -e '
  srand(7); open my $in, "<", $ARGV[0] or die; chomp(my @g = <$in>); close $in;
  for my $i (0..301) {
    my $s = $g[$i % 2];
    if ($i >= 2) {               # 0 and 1: the seeds themselves
      for (1..1 + int(rand(4))) {
        my $p = int(rand(length $s));
        my @c = ("0".."9", ",", ":", "{", "}", " ", "-", "e", "x", "=", "9999999999999999999");
        substr($s, $p, int(rand(3))) = $c[int(rand(@c))];
      }
    }
    $s =~ s/\x27/\x27\x27/g;
    print "DO \$\$ BEGIN INSERT INTO par_fuzz_text VALUES (\x27$s\x27); EXCEPTION WHEN others THEN NULL; END \$\$;\n";
  }' "$CLINICAL_TMP/seeds.txt" > "$CLINICAL_TMP/fuzz_text.sql"
tap_check "302 text inputs were written (the 2 seeds and 300 mutations)" \
  test "$(grep -c '^DO ' "$CLINICAL_TMP/fuzz_text.sql")" = 302
# after a fuzz run into TABLE of N inputs through KIND: the server is up,
# both seeds were accepted, and every accepted value is a valid summary
fuzz_checks() {
  local table=$1 n=$2 kind=$3 accepted
  tap_is "$n $kind inputs: the server is still up" "$(q -c 'SELECT 1')" "1"
  tap_is "both seeds are accepted through $kind input" \
    "$(q -c "SELECT count(*) FROM par_seed p WHERE EXISTS (SELECT 1 FROM $table f WHERE f.s::text = p.s::text)")" "2"
  accepted=$(q -c "SELECT count(*) FROM $table")
  tap_is "every accepted $kind value ($accepted of $n) is a valid summary" \
    "$(q -c "SELECT count(*) FROM $table WHERE s::text::clinical.summary::text = s::text")" "$accepted"
}
q -f "$CLINICAL_TMP/fuzz_text.sql" >/dev/null 2>&1
fuzz_checks par_fuzz_text 302 text
perl -e '
  srand(11); open my $in, "<", $ARGV[0] or die; chomp(my @h = <$in>); close $in;
  my @g = map { pack("H*", $_) } @h; my $dir = $ARGV[1];
  for my $i (0..201) {
    my $p = $g[$i % 2];
    if ($i < 2) { }                # the seeds themselves
    elsif ($i % 2) { $p = join "", map { chr(int(rand(256))) } 1..int(rand(200)); }
    else { for (1..1 + int(rand(6))) { substr($p, int(rand(length $p)), 1) = chr(int(rand(256))); }
           $p = substr($p, 0, int(rand(length($p) + 1))) if $i % 6 == 0; }
    open my $f, ">", "$dir/fuzz_$i.bin" or die;
    binmode $f;
    print $f "PGCOPY\n\xff\r\n\0", pack("N", 0), pack("N", 0), pack("n", 1), pack("N", length $p), $p, pack("n", 0xffff);
    close $f;
  }' "$CLINICAL_TMP/seeds.hex" "$CLINICAL_TMP"
tap_check "202 binary COPY files were written (the 2 seeds and 200 random or mutated)" \
  test "$(ls "$CLINICAL_TMP"/fuzz_*.bin | wc -l)" = 202
for i in $(seq 0 201); do echo "COPY par_fuzz FROM '$CLINICAL_TMP/fuzz_$i.bin' WITH (FORMAT binary);"; done > "$CLINICAL_TMP/fuzz_bin.sql"
psql -X -q -f "$CLINICAL_TMP/fuzz_bin.sql" >/dev/null 2>&1
fuzz_checks par_fuzz 202 binary
tap_check "no server crash was logged" test "$(grep -c 'terminated by signal' "$PGLOG")" = 0

# a group that switches to the sketch keeps a table sized for its buckets,
# not the exact table's 4 MB: 8 sketch groups in a hash aggregate
q >/dev/null <<'SQL'
CREATE TABLE par_sk AS SELECT i % 8 AS g, (i::bigint * 7919 % 1000003)::float8 / 7 AS x
  FROM generate_series(1, 600000) i;
ANALYZE par_sk;
SQL
sk=$(q -c "SELECT count(*) FILTER (WHERE NOT clinical.is_exact(s)) FROM (SELECT clinical.summarize(x) AS s FROM par_sk GROUP BY g) q")
tap_is "each of the 8 groups (75,000 distinct values) is a sketch" "$sk" "8"
mem=$(q -c "SET max_parallel_workers_per_gather = 0" -c "SET enable_sort = off" -c "SET work_mem = '1GB'" \
        -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT g, clinical.summarize(x) FROM par_sk GROUP BY g" \
      | grep -Eo 'Memory Usage: [0-9]+kB' | grep -Eo '[0-9]+' | head -1)
echo "# hash aggregate of 8 sketch groups: ${mem} kB"
tap_check "the hash aggregate of 8 sketch groups stays under 8 MB (it held 4 MB a group before)" test "${mem:-999999}" -lt 8192
q -c "DROP TABLE par_sk" >/dev/null

q -c "DROP TABLE par_m, par_s, par_s2, par_seed, par_fuzz_text, par_fuzz" >/dev/null
tap_done
