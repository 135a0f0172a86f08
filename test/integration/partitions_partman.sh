#!/usr/bin/env bash
# Integration: the same configuration in pg_partman 4.7 and in clinical
# gives the same partition bounds, after registration and after a
# maintenance run with retention (12 months, drop). Daily, weekly, monthly,
# quarterly and yearly sets on timestamptz, a weekly set on timestamp and a
# monthly set on date, all from 2024-01-01 with premake 4. Both run on the
# real clock (pg_partman has no injected one) and each set holds a row at
# now(), which is what pg_partman's default mode premakes from.
# Leaves the cluster running as it found it.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

if [ ! -f "$(pg_config --sharedir)/extension/pg_partman.control" ]; then
  tap_not_ok "pg_partman is installed (Debian package postgresql-15-partman)"
  tap_done; exit 1
fi

q -d postgres -c "DROP DATABASE IF EXISTS partman_cmp" -c "CREATE DATABASE partman_cmp" >/dev/null
pq() { q -d partman_cmp "$@"; }
pq >/dev/null <<'SQL'
CREATE EXTENSION clinical;
CREATE SCHEMA partman;
CREATE EXTENSION pg_partman SCHEMA partman;
SQL

setup() {   # setup NAME INTERVAL TYPE
  pq >/dev/null <<SQL
SET timezone = 'UTC';
CREATE TABLE pm_$1 (id int, at $3 NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE cl_$1 (id int, at $3 NOT NULL) PARTITION BY RANGE (at);
SELECT partman.create_parent('public.pm_$1', 'at', 'native', '$2', p_premake => 4, p_start_partition => '2024-01-01');
UPDATE partman.part_config SET retention = '12 months', retention_keep_table = false WHERE parent_table = 'public.pm_$1';
SELECT clinical.create_time_partitions('cl_$1', 'at', '$2', 4, '12 months', 'drop', NULL, '2024-01-01');
INSERT INTO pm_$1 VALUES (1, now());
INSERT INTO cl_$1 VALUES (1, now());
SQL
}
setup d "1 day" timestamptz
setup w "1 week" timestamptz
setup m "1 month" timestamptz
setup q "3 months" timestamptz
setup y "1 year" timestamptz
setup tw "1 week" timestamp
setup dm "1 month" date

bounds() { pq -c "SELECT string_agg(lower_bound || '..' || upper_bound, ';') FROM clinical.partition_bounds('$1') WHERE NOT is_default"; }
nparts() { pq -c "SELECT count(*) FROM clinical.partition_bounds('$1') WHERE NOT is_default"; }
compare() {   # compare STAGE
  local n
  for n in d w m q y tw dm; do
    local a b
    a=$(bounds "pm_$n"); b=$(bounds "cl_$n")
    local count; count=$(nparts "cl_$n")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
      tap_ok "$1: set $n has the same $count partition bounds as pg_partman"
    else
      tap_not_ok "$1: set $n has the same partition bounds as pg_partman"
      diff <(tr ';' '\n' <<<"$a") <(tr ';' '\n' <<<"$b") | head -5 | sed 's/^/#   /'
    fi
  done
}
compare "after registration"

pq -c "CALL partman.run_maintenance_proc()" >/dev/null
pq -c "SET timezone = 'UTC'; SELECT count(*) FROM clinical.run_maintenance()" >/dev/null
tap_check "retention removed partitions (monthly set has fewer than 20)" test "$(nparts cl_m)" -lt 20
compare "after maintenance with retention"
tap_is "both keep a default partition" "$(pq -c "SELECT count(*) FROM pg_class WHERE relname IN ('pm_m_default', 'cl_m_default')")" "2"
tap_is "clinical maintenance recorded no error" "$(pq -c "SELECT count(*) FROM clinical.partition_status WHERE last_error IS NOT NULL")" "0"

q -d postgres -c "DROP DATABASE partman_cmp" >/dev/null
tap_done
