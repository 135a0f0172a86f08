#!/usr/bin/env bash
# bench/aggregates.sh - clinical.describe() against plain SQL (avg, stddev,
# min, max, percentile_cont(ARRAY[0.25, 0.5, 0.75])) and count(x) on the
# same scan, over ROWS (default 10,000,000) rows: 40 sites, 3 arms, a
# systolic blood pressure in mmHg (float8 at 1 mmHg resolution, so the
# quantiles are exact), whole table and grouped by site, serial, with 2
# parallel workers forced, and at PostgreSQL's default planner settings (the
# plan it picks out of the box); medians of ROUNDS (default 3) interleaved
# rounds; and the memory of the grouped run from EXPLAIN ANALYZE.
. "$CLINICAL_SRC/bench/lib.sh"
ROWS=${ROWS:-10000000}
ROUNDS=${ROUNDS:-3}

bench_setup
q >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS b_vitals;
CREATE TABLE b_vitals AS
  SELECT i AS id, i % 40 AS site, i % 3 AS arm,
         round(120 + 15 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::float8 AS sbp
    FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE b_vitals;
SQL

SER="SET max_parallel_workers_per_gather = 0;"
PAR="SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
# PostgreSQL's own defaults (2 workers per gather, parallel_setup_cost 1000,
# parallel_tuple_cost 0.1): the plan the planner picks out of the box
DEF="RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;"
declare -A sql=(
  [count]="SELECT count(sbp) FROM b_vitals"
  [clinical]="SELECT clinical.describe(sbp) FROM b_vitals"
  [plain]="SELECT avg(sbp), stddev(sbp), min(sbp), max(sbp), percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY sbp) FROM b_vitals"
  [g_count]="SELECT site, count(sbp) FROM b_vitals GROUP BY site"
  [g_clinical]="SELECT site, clinical.describe(sbp) FROM b_vitals GROUP BY site"
  [g_plain]="SELECT site, avg(sbp), stddev(sbp), min(sbp), max(sbp), percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY sbp) FROM b_vitals GROUP BY site"
)
names=(count clinical plain g_count g_clinical g_plain)
declare -A t
for r in $(seq 1 "$ROUNDS"); do
  for mode in ser par def; do
    case $mode in ser) set_=$SER;; par) set_=$PAR;; def) set_=$DEF;; esac
    for n in "${names[@]}"; do
      ms=$(q -c "$set_ SELECT bench_ms(\$b\$${sql[$n]}\$b\$)" | tail -1)
      t[$mode.$n]+="$ms "
    done
  done
done
med() { echo ${t[$1]} | tr ' ' '\n' | median; }

printf '%s rows, sbp at 1 mmHg resolution; median ms of %s rounds\n' "$ROWS" "$ROUNDS"
echo "2 workers: max_parallel_workers_per_gather = 2, parallel_setup_cost = parallel_tuple_cost = 0;"
echo "plain SQL is compared at its best plan (percentile_cont does not run in parallel, and a"
echo "forced Gather can make it slower than serial): the faster of its serial and 2-worker medians"
printf '%-10s %-8s %12s %12s %12s %14s %14s\n' "query" "plan" "count(x)" "describe()" "plain SQL" "plain/describe" "describe/count"
for g in "" g_; do
  for mode in ser par; do
    c=$(med $mode.${g}count); d=$(med $mode.${g}clinical); p=$(med $mode.${g}plain)
    # plain SQL at its best plan: the 2-worker row takes the faster of both
    [ $mode = par ] && p=$(printf '%s\n%s\n' "$p" "$(med ser.${g}plain)" | sort -g | head -1)
    label="whole"; [ -n "$g" ] && label="by site"
    plan="serial"; [ $mode = par ] && plan="2 workers"
    awk -v l="$label" -v m="$plan" -v c="$c" -v d="$d" -v p="$p" \
      'BEGIN { printf "%-10s %-8s %12.0f %12.0f %12.0f %13.2fx %13.2fx\n", l, m, c, d, p, p / d, d / c }'
  done
done
for g in "" g_; do
  s=$(med ser.${g}clinical); p=$(med par.${g}clinical)
  label="whole table"; [ -n "$g" ] && label="by site"
  awk -v l="$label" -v s="$s" -v p="$p" 'BEGIN { printf "parallel speedup of describe(), %s: %.2fx (serial %.0f ms, 2 workers %.0f ms)\n", l, s / p, s, p }'
done
echo
echo "PostgreSQL's default planner settings (the plan the planner picks, workers it planned):"
printf '%-10s %12s %12s %12s %14s %14s\n' "query" "count(x)" "describe()" "plain SQL" "plain/describe" "describe/count"
for g in "" g_; do
  c=$(med def.${g}count); d=$(med def.${g}clinical); p=$(med def.${g}plain)
  label="whole"; [ -n "$g" ] && label="by site"
  awk -v l="$label" -v c="$c" -v d="$d" -v p="$p" \
    'BEGIN { printf "%-10s %12.0f %12.0f %12.0f %13.2fx %13.2fx\n", l, c, d, p, p / d, d / c }'
done
for n in "${names[@]}"; do
  w=$(q -c "$DEF EXPLAIN ${sql[$n]}" | grep -Eo 'Workers Planned: [0-9]+' | grep -Eo '[0-9]+$' | head -1)
  printf '  %-12s %s\n' "$n" "${w:-0} workers planned"
done
echo
for g in "" g_; do
  label="whole table"; [ -n "$g" ] && label="by site"
  printf 'plain SQL, %s: serial %.0f ms, 2 workers %.0f ms\n' "$label" "$(med ser.${g}plain)" "$(med par.${g}plain)"
done

echo
echo "memory of the grouped run (serial, EXPLAIN ANALYZE):"
for n in g_clinical g_plain; do
  mem=$(q -c "$SER EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${sql[$n]}" | grep -Eo '(Memory Usage|Memory|Peak Memory Usage): [0-9]+kB|Sort Method: [a-z ]+ +(Disk|Memory): [0-9]+kB' | sort -u | tr '\n' ';')
  printf '  %-12s %s\n' "$n" "$mem"
done
q -c "DROP TABLE b_vitals" >/dev/null
