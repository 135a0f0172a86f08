#!/usr/bin/env bash
# Integration: the background worker maintains partition sets on schedule.
# With clinical.maintenance_interval set small (ALTER SYSTEM + reload) it
# creates the partitions the injected clock asks for, as the table's owner;
# with a long interval it waits for its schedule, and it runs maintenance
# as soon as it starts. Leaves the cluster and settings as it found them.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

q -c "CREATE EXTENSION IF NOT EXISTS clinical" >/dev/null
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS wk_log;
DROP ROLE IF EXISTS wk_owner;
CREATE ROLE wk_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO wk_owner;
CREATE TABLE wk_log (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
ALTER TABLE wk_log OWNER TO wk_owner;
SET timezone = 'UTC';
SET clinical.maintenance_now = '2026-03-15 00:00+00';
SELECT clinical.create_time_partitions('wk_log', 'at', '1 month', 1, '3 months', 'drop', NULL, '2026-01-01');
SQL
exists() { [ "$(q -c "SELECT to_regclass('$1') IS NOT NULL")" = t ]; }
gone() { [ "$(q -c "SELECT to_regclass('$1') IS NULL")" = t ]; }
tap_check "registration made the partitions through April" exists wk_log_p20260401

# a short interval: the worker catches up with the injected clock
q -c "ALTER SYSTEM SET clinical.maintenance_now = '2026-06-15 00:00+00'" \
  -c "ALTER SYSTEM SET clinical.maintenance_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
tap_check "the worker creates the partitions now + premake asks for" wait_until 20 exists wk_log_p20260701
tap_check "the worker applies retention (January and February dropped)" wait_until 10 gone wk_log_p20260201
tap_is "partitions made by the worker belong to the table's owner" \
  "$(q -c "SELECT relowner::regrole FROM pg_class WHERE oid = 'wk_log_p20260701'::regclass")" "wk_owner"
tap_is "partition_status shows the worker's run without error" \
  "$(q -c "SELECT last_run > now() - interval '1 minute' AND last_error IS NULL FROM clinical.partition_status WHERE parent = 'wk_log'::regclass")" "t"

# and keeps doing so every interval
q -c "ALTER SYSTEM SET clinical.maintenance_now = '2026-08-15 00:00+00'" -c "SELECT pg_reload_conf()" >/dev/null
tap_check "on the next scheduled run the worker creates the following partitions" wait_until 20 exists wk_log_p20260901

# a long interval: a reload alone does not run maintenance ...
q -c "ALTER SYSTEM SET clinical.maintenance_interval = 3600" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2
q -c "ALTER SYSTEM SET clinical.maintenance_now = '2026-10-15 00:00+00'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 3
tap_check "with a 1 h interval the worker waits for its schedule" gone wk_log_p20261101

# ... but a worker start does
pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'clinical worker'")
q -c "SELECT pg_terminate_backend($pid)" >/dev/null
tap_check "a restarted worker runs maintenance at once" wait_until 30 exists wk_log_p20261101

# interval 0 turns scheduled maintenance off
q -c "ALTER SYSTEM SET clinical.maintenance_interval = 0" -c "ALTER SYSTEM SET clinical.maintenance_now = '2026-12-15 00:00+00'" -c "SELECT pg_reload_conf()" >/dev/null
pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'clinical worker'")
q -c "SELECT pg_terminate_backend($pid)" >/dev/null
new_worker() { p=$(q -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'clinical worker'"); [ -n "$p" ] && [ "$p" != "$pid" ]; }
tap_check "the worker restarts with maintenance_interval = 0" wait_until 30 new_worker
sleep 2
tap_check "with maintenance_interval = 0 the worker does no maintenance" gone wk_log_p20270101

q -c "ALTER SYSTEM RESET clinical.maintenance_now" -c "ALTER SYSTEM RESET clinical.maintenance_interval" -c "SELECT pg_reload_conf()" >/dev/null
q -c "DELETE FROM clinical.partition_config WHERE parent = 'wk_log'::regclass" -c "DROP TABLE wk_log" \
  -c "REVOKE CREATE ON SCHEMA public FROM wk_owner" -c "DROP ROLE wk_owner" >/dev/null
tap_done
