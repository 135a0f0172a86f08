#!/usr/bin/env bash
# Integration: clinical.invalidation_max_age drops queued invalidations by
# the age of their commit, not of their transaction's start. With Redis
# down and max_age = 3 s: a key committed at once is dropped (counted in
# dropped, logged, never sent) once 3 s have passed and not before; a key
# queued by a transaction that ran for 5 s before committing is not dropped
# at its commit and is delivered when Redis is back.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

redis_down() { rcli SHUTDOWN SAVE >/dev/null 2>&1; wait_until 10 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" ; rm -f "$REDIS_DIR/redis.pid"; }
queued() { [ "$(q -c "SELECT count(*) FROM clinical.invalidation_queue WHERE key = '$1'")" = 1 ]; }
gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }

q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
ALTER SYSTEM SET clinical.invalidation_max_age = '3s';
SELECT pg_reload_conf();
SQL
echo -e "SET age:old cached\nSET age:long cached" | rcli >/dev/null
sleep 0.5
dropped0=$(q -c 'SELECT dropped FROM clinical.invalidation_stats()')
redis_down

# the long transaction takes its snapshot and queues its key now, commits in 5 s
q -c "BEGIN; SELECT clinical.invalidate('age:long'); SELECT pg_sleep(5); COMMIT;" >/dev/null &
long=$!
q -c "SELECT clinical.invalidate('age:old')" >/dev/null
t0=$(date +%s%N)
sleep 1.5
tap_check "a key committed 1.5 s ago is still queued (max_age 3 s)" queued age:old
tap_check "the key committed at once is dropped after max_age" wait_until 6 bash -c "! psql -X -A -t -q -c \"SELECT 1 FROM clinical.invalidation_queue WHERE key = 'age:old'\" | grep -q 1"
age=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "# dropped ${age} ms after its commit"
tap_check "it was not dropped before max_age" test "$age" -ge 3000
tap_check "dropped counts it" test "$(q -c 'SELECT dropped FROM clinical.invalidation_stats()')" -gt "$dropped0"
tap_check "the drop is logged" grep -q "dropped [0-9]* queued invalidations committed more than 3 s ago" "$PGLOG"

wait "$long"
tap_check "the 5 s transaction's key is queued after its commit, although its transaction began 5 s ago" queued age:long
redis_start
q -c "SELECT pg_reload_conf()" >/dev/null    # reconnect at once instead of waiting out the backoff
tap_check "the 5 s transaction's key is delivered" wait_until 20 gone age:long
tap_is "the dropped key was never sent" "$(rcli EXISTS age:old)" 1

q >/dev/null <<'SQL'
ALTER SYSTEM RESET clinical.invalidation_max_age;
SELECT pg_reload_conf();
SQL
rcli DEL age:old >/dev/null
tap_done
