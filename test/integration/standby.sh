#!/usr/bin/env bash
# Integration: on a standby (in recovery) the clinical worker does not run;
# after promotion it starts. Uses a streaming standby of the test cluster
# made with pg_basebackup, on its own port, removed at the end.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

SDATA="$CLINICAL_TMP/standby"
SPORT=$(free_port)
while [ "$SPORT" = "$PGPORT" ] || [ "$SPORT" = "$REDIS_PORT" ]; do SPORT=$(free_port); done

pg_basebackup -D "$SDATA" -R -X stream -c fast >/dev/null 2>&1
tap_check "pg_basebackup made a standby" test -f "$SDATA/standby.signal"
cat >> "$SDATA/postgresql.conf" <<CONF
port = $SPORT
CONF
pg_ctl -D "$SDATA" -l "$CLINICAL_TMP/standby.log" -w -t 60 start >/dev/null
sq() { psql -X -A -t -q -p "$SPORT" -d "${2:-clinical_test}" -c "$1"; }

tap_is "standby is in recovery" "$(sq 'SELECT pg_is_in_recovery()')" "t"
sleep 2
tap_is "no clinical worker runs on the standby" \
  "$(sq "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'clinical worker'")" "0"

pg_ctl -D "$SDATA" -w promote >/dev/null
standby_worker() { [ "$(sq "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'clinical worker'")" = 1 ]; }
tap_check "after promotion the worker starts" wait_until 30 standby_worker

pg_ctl -D "$SDATA" -m immediate -w stop >/dev/null 2>&1
rm -rf "$SDATA"
tap_done
