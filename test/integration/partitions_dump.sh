#!/usr/bin/env bash
# Integration: pg_dump keeps the partition configuration and the legal
# holds (pg_extension_config_dump), and after pg_restore into a new database
# maintenance carries on from them: same sets, same holds, same partitions.
# Leaves the cluster running as it found it.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

work="$CLINICAL_TMP/partitions_dump"
mkdir -p "$work"
q -d postgres -c "DROP DATABASE IF EXISTS dump_src" -c "DROP DATABASE IF EXISTS dump_dst" -c "CREATE DATABASE dump_src" >/dev/null 2>&1
q -d dump_src >/dev/null <<'SQL'
SET timezone = 'UTC';
SET clinical.maintenance_now = '2026-03-15 00:00+00';
CREATE EXTENSION clinical;
CREATE SCHEMA "Trial Data";
CREATE TABLE "Trial Data"."Vitals Log" (id bigint, "Taken At" timestamptz NOT NULL) PARTITION BY RANGE ("Taken At");
SELECT clinical.create_time_partitions('"Trial Data"."Vitals Log"', 'Taken At', '1 month', 2, '3 months', 'drop', NULL, '2026-01-01');
CREATE TABLE api_log (at date NOT NULL) PARTITION BY RANGE (at);
SELECT clinical.create_time_partitions('api_log', 'at', '1 week', 2, default_partition => false);
SELECT clinical.set_legal_hold('"Trial Data"."Vitals Log"', '"Trial Data"."Vitals Log_p20260101"', true, 'subpoena 9');
SELECT clinical.set_legal_hold('api_log', true, 'audit 2026');
INSERT INTO "Trial Data"."Vitals Log" VALUES (1, '2026-02-10'), (2, '2026-09-01');
SQL
status() { q -d "$1" -c "SELECT parent::text, partition_interval, premake, retention, retention_mode, partitions, oldest_partition, newest_partition, next_boundary, legal_hold, legal_hold_reason, held_partitions FROM clinical.partition_status ORDER BY 1"; }
before=$(status dump_src)
tap_is "quoted schema and table names: partitions made in the table's schema" \
  "$(q -d dump_src -c "SELECT string_agg(partition::text, ' ' ORDER BY lower_bound) FROM clinical.partition_bounds('\"Trial Data\".\"Vitals Log\"') WHERE NOT is_default")" \
  '"Trial Data"."Vitals Log_p20260101" "Trial Data"."Vitals Log_p20260201" "Trial Data"."Vitals Log_p20260301" "Trial Data"."Vitals Log_p20260401" "Trial Data"."Vitals Log_p20260501"'

pg_dump -Fc -d dump_src -f "$work/dump" 2> "$work/dump.err"
tap_is "pg_dump succeeds" "$?" "0"
q -d postgres -c "CREATE DATABASE dump_dst" >/dev/null
pg_restore -d dump_dst "$work/dump" 2> "$work/restore.err"
rc=$?
sed 's/^/#   /' "$work/restore.err" | head -5
tap_is "pg_restore succeeds" "$rc" "0"
tap_same "partition_status is the same after restore (sets, holds, partitions)" "$(status dump_dst)" "$before"
tap_is "the restored configuration keeps the set's time zone" \
  "$(q -d dump_dst -c "SELECT string_agg(time_zone, ',') FROM clinical.partition_config")" "UTC,UTC"

# maintenance carries on in the restored database, holds included
out=$(q -d dump_dst <<'SQL'
SET clinical.maintenance_now = '2026-05-02 00:00+00';
SELECT action || '|' || partition FROM clinical.run_maintenance('"Trial Data"."Vitals Log"') ORDER BY 1;
SQL
)
tap_is "after restore maintenance creates, and the restored hold protects its partition" "$(tr '\n' ' ' <<<"$out")" \
  'create|Vitals Log_p20260601 create|Vitals Log_p20260701 report|Vitals Log_default skip|Vitals Log_p20260101 '
tap_is "rows are where they were" "$(q -d dump_dst -c "SELECT string_agg(tableoid::regclass::text, ' ' ORDER BY id) FROM \"Trial Data\".\"Vitals Log\"")" \
  '"Trial Data"."Vitals Log_p20260201" "Trial Data"."Vitals Log_default"'

q -d postgres -c "DROP DATABASE dump_src" -c "DROP DATABASE dump_dst" >/dev/null
tap_done
