#!/usr/bin/env bash
# bench/partitions.sh - partition maintenance against pg_partman 4.7: 20
# monthly sets of 96 partitions each (7.5 years back, premake 4, retention
# 7.5 years, drop), one row at now() in each set, the same configuration in
# both. Times, inside the server:
#   1. a no-op run_maintenance() over all 20 sets (nothing due);
#   2. a run that has one partition to create and one expired partition to
#      drop in every set (the state is rebuilt, untimed, before each round).
# Both on the real clock (pg_partman has no injected one). Rounds are
# interleaved; medians of ROUNDS (default 5).
. "$CLINICAL_SRC/bench/lib.sh"
ROUNDS=${ROUNDS:-5}
SETS=20

bench_setup
q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
CREATE SCHEMA IF NOT EXISTS partman;
CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;
SQL

# 96 partitions: from 91 months back through now + 4 months; retention of
# 90 months expires exactly the oldest one
start=$(q -c "SELECT to_char(date_trunc('month', now()) - interval '91 months', 'YYYY-MM-DD')")
echo "setting up $SETS sets x 96 monthly partitions in each engine (from $start) ..."
for i in $(seq -w 1 $SETS); do
  q >/dev/null <<SQL
CREATE TABLE pm_$i (id bigint, at timestamptz NOT NULL, payload text) PARTITION BY RANGE (at);
CREATE TABLE cl_$i (id bigint, at timestamptz NOT NULL, payload text) PARTITION BY RANGE (at);
CREATE INDEX ON pm_$i (at);
CREATE INDEX ON cl_$i (at);
SELECT partman.create_parent('public.pm_$i', 'at', 'native', '1 month', p_premake => 4, p_start_partition => '$start');
UPDATE partman.part_config SET retention = '90 months', retention_keep_table = false WHERE parent_table = 'public.pm_$i';
SELECT clinical.create_time_partitions('cl_$i', 'at', '1 month', 4, '90 months', 'drop', NULL, '$start');
INSERT INTO pm_$i VALUES (1, now(), 'x');
INSERT INTO cl_$i VALUES (1, now(), 'x');
SQL
done
echo "partitions per set: pg_partman $(q -c "SELECT count(*) FROM clinical.partition_bounds('pm_01') WHERE NOT is_default"), clinical $(q -c "SELECT count(*) FROM clinical.partition_bounds('cl_01') WHERE NOT is_default")"

PM_RUN="SELECT partman.run_maintenance()"
CL_RUN="SELECT count(*) FROM clinical.run_maintenance()"

# bring both to the steady state (the oldest partition expires on the first run)
q -c "$PM_RUN" >/dev/null
q -c "$CL_RUN" >/dev/null
q -c "VACUUM ANALYZE" >/dev/null

# rebuild the due work in every set: drop the newest partition, put the
# expired oldest one back (partman-style and clinical-style names)
make_due() {   # make_due pm|cl
  q >/dev/null <<SQL
DO \$\$
DECLARE
  i int;
  p regclass;
  newest regclass;
  lo timestamptz := date_trunc('month', now()) - interval '91 months';
BEGIN
  FOR i IN 1..$SETS LOOP
    p := format('$1_%s', lpad(i::text, 2, '0'))::regclass;
    SELECT b.partition INTO newest FROM clinical.partition_bounds(p) b WHERE NOT b.is_default
     ORDER BY b.lower_bound::timestamptz DESC LIMIT 1;
    EXECUTE format('DROP TABLE %s', newest);
    EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   CASE WHEN '$1' = 'pm' THEN p::text || '_p' || to_char(lo, 'YYYY_MM')
                        ELSE p::text || '_p' || to_char(lo, 'YYYYMMDD') END,
                   p, lo, lo + interval '1 month');
  END LOOP;
END \$\$;
SQL
}
count_parts() { q -c "SELECT sum((SELECT count(*) FROM clinical.partition_bounds(format('$1_%s', lpad(i::text, 2, '0'))::regclass)))::int FROM generate_series(1, $SETS) i"; }

declare -A times
for r in $(seq 1 "$ROUNDS"); do
  times[pm_noop]+="$(q -c "SELECT round(bench_ms('$PM_RUN')::numeric, 3)") "
  times[cl_noop]+="$(q -c "SELECT round(bench_ms('$CL_RUN')::numeric, 3)") "
done
parts_before_pm=$(count_parts pm); parts_before_cl=$(count_parts cl)
for r in $(seq 1 "$ROUNDS"); do
  make_due pm; make_due cl
  times[pm_work]+="$(q -c "SELECT round(bench_ms('$PM_RUN')::numeric, 3)") "
  times[cl_work]+="$(q -c "SELECT round(bench_ms('$CL_RUN')::numeric, 3)") "
done
# after each working run both engines are back where they started
# (a run that did not do its work would make its time meaningless: fail)
bad=0
[ "$(count_parts pm)" = "$parts_before_pm" ] || { echo "pg_partman did not restore the partition count ($(count_parts pm) vs $parts_before_pm)" >&2; bad=1; }
[ "$(count_parts cl)" = "$parts_before_cl" ] || { echo "clinical did not restore the partition count ($(count_parts cl) vs $parts_before_cl)" >&2; bad=1; }
same=$(q -c "SELECT bool_and((SELECT array_agg(lower_bound ORDER BY lower_bound::timestamptz) FROM clinical.partition_bounds(format('pm_%s', lpad(i::text, 2, '0'))::regclass))
                     IS NOT DISTINCT FROM
                     (SELECT array_agg(lower_bound ORDER BY lower_bound::timestamptz) FROM clinical.partition_bounds(format('cl_%s', lpad(i::text, 2, '0'))::regclass)))
               FROM generate_series(1, $SETS) i")
echo "same partition bounds in both engines after the runs: $same"
[ "$same" = t ] || bad=1

printf '%-52s %12s %12s %8s\n' "run_maintenance(), $SETS sets x 96 monthly partitions" "pg_partman" "clinical" "ratio"
for w in noop work; do
  pm=$(echo ${times[pm_$w]} | tr ' ' '\n' | median)
  cl=$(echo ${times[cl_$w]} | tr ' ' '\n' | median)
  label="no-op (nothing due), median ms"
  [ "$w" = work ] && label="create 1 + drop 1 per set, median ms"
  printf '%-52s %12.1f %12.1f %7.1fx\n' "$label" "$pm" "$cl" "$(awk -v a="$pm" -v b="$cl" 'BEGIN{print a/b}')"
done
exit $bad
