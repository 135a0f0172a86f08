#!/usr/bin/env bash
# Integration: clinical.invalidation_max_age drops queued invalidations by
# the age of their commit, not of their transaction's start, with
# max_age = 3 s:
#  A. Redis down: a key committed at once is dropped (counted in dropped,
#     logged, never sent) once 3 s have passed since its commit, not before.
#  B. Redis down: a transaction that holds its xid from its start, queues a
#     key and commits 5 s later: while it runs, a key committed after it
#     began is kept (expiry cannot tell when that one committed: it waits);
#     at its commit its own key is not dropped, although the transaction,
#     its xid and its enqueued_at are 5 s old; both are delivered when
#     Redis is back.
#  C. Redis up but refusing UNLINK (ACL): deliveries fail and are rolled
#     back; the expiry, in a transaction of its own, drops the key and
#     counts it once.
#  All with a publication of the queue whose column list does not cover
#  its replica identity (an SQL DELETE would fail): the worker's expiry
#  goes on in the same process.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

redis_down() { rcli SHUTDOWN SAVE >/dev/null 2>&1; wait_until 10 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" ; rm -f "$REDIS_DIR/redis.pid"; }
queued() { [ "$(q -c "SELECT count(*) FROM clinical.invalidation_queue WHERE key = '$1'")" = 1 ]; }
not_queued() { ! queued "$1"; }
gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }
dropped() { q -c 'SELECT dropped FROM clinical.invalidation_stats()'; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
ALTER SYSTEM SET clinical.invalidation_max_age = '3s';
SELECT pg_reload_conf();
SQL
q -c "SET client_min_messages = error" -c "CREATE PUBLICATION inv_pub_cols FOR TABLE clinical.invalidation_queue (op, key)" >/dev/null
pid0=$(q -c "SELECT worker_pid FROM clinical.invalidation_stats()")
printf 'SET %s cached\n' age:old age:long age:held age:nop age:frozen | rcli >/dev/null
sleep 0.5

# A. dropped 3 s after its commit, not before
dropped0=$(dropped)
redis_down
t0=$(date +%s%N)
q -c "SELECT clinical.invalidate('age:old')" >/dev/null
sleep 1.5
tap_check "A: a key committed 1.5 s ago is still queued (max_age 3 s)" queued age:old
tap_check "A: the key is dropped after max_age" wait_until 8 not_queued age:old
age=$(ms_since "$t0")
echo "# dropped within ${age} ms of the statement that committed it"
tap_check "A: it was not dropped before max_age" test "$age" -ge 3000
tap_check "A: dropped counts it" test "$(dropped)" -gt "$dropped0"
tap_check "A: the drop is logged" grep -q "dropped [0-9]* queued invalidations committed more than 3 s ago" "$PGLOG"

# B. a long transaction: nothing committed after it began is dropped while
# it runs; its own key is not dropped at its commit
q -c "BEGIN; SELECT txid_current(); SELECT clinical.invalidate('age:long'); SELECT pg_sleep(6); COMMIT;" >/dev/null &
long=$!
sleep 0.5
q -c "SELECT clinical.invalidate('age:held')" >/dev/null
sleep 4.5
tap_check "B: 4.5 s after its commit a key is kept while an older transaction runs" queued age:held
wait "$long"
tap_check "B: the long transaction's key is queued at its commit, although it began 6 s ago" queued age:long
redis_start
q -c "SELECT pg_reload_conf()" >/dev/null    # reconnect at once instead of waiting out the backoff
tap_check "B: the long transaction's key is delivered" wait_until 20 gone age:long
tap_check "B: the key kept behind it is delivered" wait_until 20 gone age:held
tap_is "A: the dropped key was never sent" "$(rcli EXISTS age:old)" 1

# C. Redis refuses UNLINK: the failed deliveries roll back, the expiry stays
rcli ACL SETUSER default -unlink >/dev/null
# a fresh row that a vacuum froze keeps its age (the expiry reads the raw xmin)
q -c "SELECT clinical.invalidate('age:frozen')" -c "VACUUM (FREEZE) clinical.invalidation_queue" >/dev/null
sleep 1.5
tap_check "C: a fresh queue row frozen by VACUUM FREEZE is not dropped before max_age" queued age:frozen
tap_check "C: and is dropped after it" wait_until 15 not_queued age:frozen
dropped1=$(dropped)
t0=$(date +%s%N)
q -c "SELECT clinical.invalidate('age:nop')" >/dev/null
tap_check "C: with UNLINK refused the key is still dropped after max_age" wait_until 15 not_queued age:nop
echo "# dropped within $(ms_since "$t0") ms of the statement that committed it (the backoff grows meanwhile)"
tap_is "C: dropped counts it once (not again for each rolled-back delivery)" "$(( $(dropped) - dropped1 ))" 1
tap_check "C: the refusal is the last error" grep -qi "refused\|NOPERM" <<<"$(q -c 'SELECT last_error FROM clinical.invalidation_stats()')"
rcli ACL SETUSER default +@all >/dev/null
tap_is "C: the dropped key was never sent" "$(rcli EXISTS age:nop)" 1

q >/dev/null <<'SQL'
ALTER SYSTEM RESET clinical.invalidation_max_age;
SELECT pg_reload_conf();
SQL
rcli DEL age:old age:nop age:frozen >/dev/null
tap_check "after the reset the queue drains" wait_until 20 bash -c "[ \"\$(psql -X -A -t -q -c 'SELECT queue_depth FROM clinical.invalidation_stats()')\" = 0 ]"
tap_is "with a column-list publication of the queue, the expiry ran in the same worker process" \
  "$(q -c "SELECT worker_pid FROM clinical.invalidation_stats()")" "$pid0"
q -c "DROP PUBLICATION inv_pub_cols" >/dev/null
tap_done
