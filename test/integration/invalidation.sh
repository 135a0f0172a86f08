#!/usr/bin/env bash
# Integration: cache invalidation through a real redis-server. Commit sends
# each key (UNLINK and PUBLISH); rollback, savepoint rollback and an error
# send nothing; TRUNCATE clears the key space; PREPARE/COMMIT PREPARED is
# delivered and ROLLBACK PREPARED is not; keys with spaces and newlines stay
# one key; a big UPDATE keeps backend memory bounded and queue rows
# de-duplicated; Redis refusing AUTH or SELECT shows in the stats.
set -u
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

exists() { rcli EXISTS "$1"; }
gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }
all_gone() { local k; for k in "$@"; do gone "$k" || return 1; done; }
queue_empty() { [ "$(q -c "SELECT count(*) FROM clinical.invalidation_queue")" = 0 ]; }
stat() { q -c "SELECT $1 FROM clinical.invalidation_stats()"; }

q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS inv_patient;
CREATE TABLE inv_patient (patient_id int PRIMARY KEY, site_id int, name text);
INSERT INTO inv_patient SELECT i, i % 4, 'p' || i FROM generate_series(1, 20) i;
SELECT clinical.enable_cache_invalidation('inv_patient', 'patient:{patient_id}');
SELECT clinical.enable_cache_invalidation('inv_patient', 'site:{site_id}:patients', 'cache-events');
SQL
wait_until 10 bash -c "[ \"\$(psql -X -A -t -q -c 'SELECT worker_running FROM clinical.invalidation_stats()')\" = t ]"
tap_is "the invalidator worker runs" "$(stat worker_running)" "t"

# commit sends each key
for i in 1 2 3 4 5 6; do rcli SET "patient:$i" cached >/dev/null; done
rcli SET "site:1:patients" cached >/dev/null
q -c "UPDATE inv_patient SET name = name || '!' WHERE patient_id IN (1, 2, 3)" >/dev/null
tap_check "committed UPDATE: its keys are unlinked" wait_until 10 all_gone patient:1 patient:2 patient:3 site:1:patients

# an ordinary role (no rights on the queue) commits: its keys are delivered
q >/dev/null <<'SQL'
DROP ROLE IF EXISTS inv_app;
CREATE ROLE inv_app;
GRANT SELECT, UPDATE ON inv_patient TO inv_app;
SQL
rcli SET patient:8 cached >/dev/null
q -c "SET ROLE inv_app" -c "UPDATE inv_patient SET name = 'app' WHERE patient_id = 8" >/dev/null
tap_check "a non-superuser's committed UPDATE is delivered" wait_until 10 gone patient:8

# rollback, savepoint rollback, error after the trigger fired: nothing sent
q -c "BEGIN; UPDATE inv_patient SET name = 'x' WHERE patient_id = 4; ROLLBACK;" >/dev/null
q -c "BEGIN; SAVEPOINT a; UPDATE inv_patient SET name = 'y' WHERE patient_id = 5; ROLLBACK TO a; COMMIT;" >/dev/null
psql -X -q -c "BEGIN" -c "UPDATE inv_patient SET name = 'z' WHERE patient_id = 6" -c "SELECT 1/0" -c "COMMIT" >/dev/null 2>&1
# a committed marker after them: once it is gone the worker has seen the queue
rcli SET marker:1 x >/dev/null
q -c "SELECT clinical.invalidate('marker:1')" >/dev/null
tap_check "a committed marker after them is delivered" wait_until 10 gone marker:1
tap_is "rolled-back UPDATE sent nothing" "$(exists patient:4)" "1"
tap_is "savepoint rollback sent nothing" "$(exists patient:5)" "1"
tap_is "error after the trigger fired sent nothing" "$(exists patient:6)" "1"

# PUBLISH to the channel
rcli SUBSCRIBE cache-events > "$CLINICAL_TMP/sub.out" &
subpid=$!
sleep 0.5
q -c "UPDATE inv_patient SET name = 'pub' WHERE patient_id = 7" >/dev/null
wait_until 10 grep -q "site:3:patients" "$CLINICAL_TMP/sub.out"
kill $subpid 2>/dev/null; wait $subpid 2>/dev/null
tap_check "the key is PUBLISHed on the template's channel" grep -q "site:3:patients" "$CLINICAL_TMP/sub.out"

# keys with spaces, newlines and odd bytes stay one argument
rcli SET "key with space" v >/dev/null
printf v | rcli -x SET $'key\nwith\nnewlines' >/dev/null
tap_is "a key with newlines is in Redis" "$(exists $'key\nwith\nnewlines')" "1"
rcli SET "keyA" v >/dev/null
q -c "SELECT clinical.invalidate('key with space', E'key\\nwith\\nnewlines', '*')" >/dev/null
tap_check "a key with spaces is unlinked as one key" wait_until 10 gone "key with space"
tap_check "a key with newlines is unlinked as one key" wait_until 10 gone $'key\nwith\nnewlines'
tap_is "an unrelated key survives (a '*' key is not a pattern)" "$(exists keyA)" "1"

# TRUNCATE clears the template's key space
for i in 101 102 103; do rcli SET "patient:$i" cached >/dev/null; done
rcli SET "other:1" keep >/dev/null
q -c "TRUNCATE inv_patient" >/dev/null
tap_check "TRUNCATE unlinks the template's key space (SCAN + UNLINK)" wait_until 10 all_gone patient:101 patient:102 patient:103 patient:4
tap_is "keys outside the template's space survive TRUNCATE" "$(exists other:1)" "1"

# two-phase commit
q -c "INSERT INTO inv_patient VALUES (201, 1, 'a'), (202, 1, 'b')" >/dev/null
rcli SET patient:201 c >/dev/null; rcli SET patient:202 c >/dev/null
q -c "BEGIN; UPDATE inv_patient SET name = 'p' WHERE patient_id = 201; PREPARE TRANSACTION 'inv_t1';" >/dev/null
q -c "BEGIN; UPDATE inv_patient SET name = 'p' WHERE patient_id = 202; PREPARE TRANSACTION 'inv_t2';" >/dev/null
sleep 1.5
tap_is "a prepared transaction sends nothing before COMMIT PREPARED" "$(exists patient:201)" "1"
q -c "COMMIT PREPARED 'inv_t1'" >/dev/null
q -c "ROLLBACK PREPARED 'inv_t2'" >/dev/null
tap_check "COMMIT PREPARED is delivered" wait_until 10 gone patient:201
rcli SET marker:2 x >/dev/null; q -c "SELECT clinical.invalidate('marker:2')" >/dev/null
tap_check "a committed marker after them is delivered" wait_until 10 gone marker:2
tap_is "ROLLBACK PREPARED is not" "$(exists patient:202)" "1"

# one session's key set is emptied at each commit and kept for the next
# transaction: a key the last transaction sent is sent again by the next,
# after a set of 300 keys (rebuilt, not emptied) too, and a rolled-back
# transaction (its set destroyed) leaves nothing behind. Between the
# transactions the session waits for the key to go, notes it, and caches
# the key again.
rcli SET reuse:1 c >/dev/null; rcli SET reuse:2 c >/dev/null
rm -f "$CLINICAL_TMP/reuse"
# seen KEY TAG: a psql line that waits up to 10 s for KEY to go, appends
# TAG to the notes if it went, and sets KEY again
seen() {
  printf '%s\n' "\\! bash -c 'for i in \$(seq 100); do if [ \"\$(redis-cli -h 127.0.0.1 -p $REDIS_PORT EXISTS $1)\" = 0 ]; then printf \"$2 \" >> $CLINICAL_TMP/reuse; redis-cli -h 127.0.0.1 -p $REDIS_PORT SET $1 again >/dev/null; break; fi; sleep 0.1; done'"
}
q >/dev/null <<SQL
SELECT clinical.invalidate('reuse:1');
$(seen reuse:1 first)
SELECT clinical.invalidate('reuse:1');
$(seen reuse:1 again)
SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'reuse:big:' || i FROM generate_series(1, 300) i) || 'reuse:1'::text);
$(seen reuse:1 in-300)
SELECT clinical.invalidate('reuse:1');
$(seen reuse:1 after-300)
BEGIN; SELECT clinical.invalidate('reuse:2'); ROLLBACK;
SELECT clinical.invalidate('reuse:2');
$(seen reuse:2 after-rollback)
SQL
tap_is "one session sends a key again in each transaction: first, next, within 300 keys, after them, after a rollback" \
  "$(cat "$CLINICAL_TMP/reuse" 2>/dev/null)" "first again in-300 after-300 after-rollback "

# no wake-up is lost: with polling practically off (1 h), a commit arrives
# while the worker waits on Redis (paused for 500 ms, within the command
# timeout) for the previous key; nothing would wake the worker later
q -c "ALTER SYSTEM SET clinical.invalidation_poll_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
rcli SET wake:a cached >/dev/null
rcli SET wake:b cached >/dev/null
rcli CLIENT PAUSE 500 >/dev/null
q -c "SELECT clinical.invalidate('wake:a')" >/dev/null
sleep 0.2
q -c "SELECT clinical.invalidate('wake:b')" >/dev/null
tap_check "a commit while the worker waits on Redis is delivered after it, with polling off (no wake-up lost)" \
  wait_until 5 all_gone wake:a wake:b
q -c "ALTER SYSTEM RESET clinical.invalidation_poll_interval" -c "SELECT pg_reload_conf()" >/dev/null

# a long transaction (here a prepared one) holds back the queue's vacuum,
# so delivered rows stay in the heap as dead rows: each commit's delivery
# reads the blocks its rows went to, not the whole heap. Polling is off, so
# no whole pass comes between; the worker's block reads are counted in
# pg_statio (it reports them at most once a second: a key sent after a
# pause flushes them).
blocks() { q -c "SELECT heap_blks_hit + heap_blks_read FROM pg_statio_all_tables WHERE relid = 'clinical.invalidation_queue'::regclass"; }
sent_after_pause() { sleep 1.2; rcli SET "$1" c >/dev/null; q -c "SELECT clinical.invalidate('$1')" >/dev/null; wait_until 10 gone "$1"; }
q -c "BEGIN" -c "SELECT clinical.invalidate('hold:1')" -c "PREPARE TRANSACTION 'inv_hold'" >/dev/null
for b in 0 1 2 3 4 5 6; do
  q -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'dead:' || i FROM generate_series($b * 100000 + 1, ($b + 1) * 100000) i))" >/dev/null
done
tap_check "700,000 keys are delivered while a prepared transaction holds the horizon" wait_until 60 queue_empty
pages=$(q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192")
# more blocks than the hint bitmap has bits (4096): a bit stands for several
tap_check "the queue heap has grown past the 4096 blocks the hint bits stand for one each ($pages pages)" test "$pages" -gt 4096
q -c "ALTER SYSTEM SET clinical.invalidation_poll_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
sent_after_pause hintbase:1
b0=$(blocks)
for i in $(seq 1 40); do
  rcli SET "hint:$i" c >/dev/null
  q -c "SELECT clinical.invalidate('hint:$i')" >/dev/null
  wait_until 10 gone "hint:$i" || break
done
sent_after_pause hintbase:2
read_blocks=$(( $(blocks) - b0 ))
echo "# 40 commits, one key each, over a queue heap of $pages pages of dead rows: the worker read $read_blocks blocks"
tap_check "each of the 40 keys is delivered" gone hint:40
tap_check "their delivery read far fewer blocks than 40 whole heaps (< 10 x $pages)" test "$read_blocks" -lt $(( 10 * pages ))

# rows no writer names (COMMIT PREPARED) still go within the poll interval
# while other commits keep waking the worker for hinted rounds (each of
# which once started a whole poll interval's sleep, so that such rows could
# wait up to two: a review measured 1.8 s at a 1 s poll with a commit every
# 0.9 s). Four prepared transactions, then a committed filler that moves
# the heap's end on (the horizon is held), so that the ticking commits (one
# every 2.7 s, poll interval 3 s) never write to their rows' blocks; each
# is committed 150 ms after a tick, the second and fourth a tick later
# than the next one.
ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
sleep_until() { local left=$(( $1 - $(ms_now) )); [ "$left" -gt 0 ] && sleep "$((left / 1000)).$(printf %03d $((left % 1000)))"; return 0; }
for i in 1 2 3 4; do
  rcli SET "cp:$i" c >/dev/null
  q -c "BEGIN" -c "SELECT clinical.invalidate('cp:$i')" -c "PREPARE TRANSACTION 'inv_cp$i'" >/dev/null
done
q -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'filler:' || j || repeat('f', 100) FROM generate_series(1, 2000) j))" >/dev/null
q -c "ALTER SYSTEM SET clinical.invalidation_poll_interval = '3s'" -c "SELECT pg_reload_conf()" >/dev/null
tick0=$(( $(ms_now) + 500 ))
( k=0
  while [ ! -e "$CLINICAL_TMP/tick.stop" ]; do
    sleep_until $((tick0 + k * 2700)); k=$((k + 1))
    q -c "SELECT clinical.invalidate('tick')" >/dev/null
  done ) &
tickpid=$!
worst=0
for i in 1 2 3 4; do
  k=$(( ($(ms_now) - tick0) / 2700 + 1 + (i + 1) % 2 ))
  sleep_until $((tick0 + k * 2700 + 150))
  t0=$(ms_now)
  q -c "COMMIT PREPARED 'inv_cp$i'" >/dev/null
  wait_until 15 gone "cp:$i"
  ms=$(( $(ms_now) - t0 ))
  echo "# COMMIT PREPARED $i, 150 ms after tick $k: delivered after $ms ms"
  [ "$ms" -gt "$worst" ] && worst=$ms
done
touch "$CLINICAL_TMP/tick.stop"; wait $tickpid; rm -f "$CLINICAL_TMP/tick.stop"
tap_check "COMMIT PREPARED is delivered within the poll interval (3 s) while other commits wake the worker (worst of 4: $worst ms, under 3.8 s)" test "$worst" -lt 3800
q -c "ALTER SYSTEM RESET clinical.invalidation_poll_interval" -c "SELECT pg_reload_conf()" >/dev/null
q -c "ROLLBACK PREPARED 'inv_hold'" >/dev/null

# a key long enough to be stored out of line (TOAST) in the queue
longkey="long:$(head -c 6000 /dev/urandom | od -An -tx1 | tr -d ' \n')"
rcli SET "$longkey" cached >/dev/null
q -c "SELECT clinical.invalidate('$longkey')" >/dev/null
tap_check "a 12,000-byte key (stored out of line in the queue) is unlinked" wait_until 10 gone "$longkey"

# a big UPDATE: bounded memory, de-duplicated queue rows
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS inv_big;
CREATE TABLE inv_big (id int PRIMARY KEY, site_id int, v int);
INSERT INTO inv_big SELECT i, i % 40, 0 FROM generate_series(1, 200000) i;
SELECT clinical.enable_cache_invalidation('inv_big', 'big:{id}');
SELECT clinical.enable_cache_invalidation('inv_big', 'bigsite:{site_id}');
SQL
mem=$(q -c "BEGIN; UPDATE inv_big SET v = v + 1;
            SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE 'clinical invalidation keys' IN (name, ident);
            SELECT count(*) FROM clinical.invalidation_queue WHERE key LIKE 'bigsite:%';
            COMMIT;")
kb=$(( $(echo "$mem" | sed -n 1p) / 1024 ))
echo "# invalidation key set (its context and the hash table's) after a 200,000-row UPDATE: ${kb} kB"
tap_check "backend memory for the keys is measured and stays bounded (0 < kB < 16 MB)" test "$kb" -gt 0 -a "$kb" -lt 16384
tap_is "the 40 site keys are queued once each, not 200,000 times" "$(echo "$mem" | sed -n 2p)" "40"
mem=$(q -c "BEGIN; SAVEPOINT s; UPDATE inv_big SET v = v + 1;
            SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE 'clinical invalidation keys' IN (name, ident);
            RELEASE SAVEPOINT s; COMMIT;")
kb=$(( mem / 1024 ))
echo "# the same UPDATE inside a savepoint: ${kb} kB"
tap_check "inside a savepoint too (JDBC autosave, ON_ERROR_ROLLBACK) memory stays bounded (0 < kB < 16 MB)" test "$kb" -gt 0 -a "$kb" -lt 16384
tap_check "the queue drains" wait_until 60 queue_empty
# the queue has no index and autovacuum is off for it: the worker vacuums it
queue_small() {
  [ "$(q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192 <= 128 AND vacuum_count > 0
               FROM pg_stat_user_tables WHERE relid = 'clinical.invalidation_queue'::regclass")" = t ]
}
echo "# queue heap after the backlog: $(q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192") pages"
tap_check "the worker vacuums the queue: after the backlog its heap is cut back to at most 128 pages" wait_until 30 queue_small
echo "# queue heap then: $(q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192") pages"
tap_is "its TOAST table (long keys) is vacuumed with it (autovacuum is off for both)" \
  "$(q -c "SELECT s.vacuum_count > 0 FROM pg_class c JOIN pg_stat_all_tables s ON s.relid = c.reltoastrelid WHERE c.oid = 'clinical.invalidation_queue'::regclass")" "t"

# a backlog drained in two steps, then an idle queue: the heap is still cut
# back (the truncation due is retried without new dead rows)
q -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'step1:' || repeat('x', 100) || i FROM generate_series(1, 3000) i))" \
  -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'step2:' || repeat('x', 100) || i FROM generate_series(1, 3000) i))" >/dev/null
tap_check "a two-step backlog drains" wait_until 30 queue_empty
tap_check "and the idle queue's heap is cut back to at most 128 pages" wait_until 30 queue_small

# a batch also ends at 8 MB of keys: 60 keys of 200 kB go in two batches
# (5,000 such keys made a 1 GB pipeline Redis never took in time)
b0=$(stat batches)
q -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'big:' || i || ':' || repeat(md5(i::text), 6250) FROM generate_series(1, 60) i))" >/dev/null
tap_check "60 keys of 200 kB are delivered" wait_until 20 queue_empty
tap_check "in more than one batch (8 MB a batch)" test "$(( $(stat batches) - b0 ))" -ge 2

# a key Redis refuses (an ACL key pattern) while it takes the others: the
# others are delivered, the refused one is dropped with a WARNING
rcli ACL SETUSER inv_limited on '>limited-pass' '~k:*' '&*' +@all >/dev/null
q -c "ALTER SYSTEM SET clinical.redis_user = 'inv_limited'" -c "ALTER SYSTEM SET clinical.redis_password = 'limited-pass'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
for i in $(seq 1 20); do rcli SET "k:$i" cached >/dev/null; done
d0=$(stat dropped)
q -c "SELECT clinical.invalidate(VARIADIC ARRAY['other:1'] || ARRAY(SELECT 'k:' || i FROM generate_series(1, 20) i))" >/dev/null
kgone() { [ "$(rcli --scan --pattern 'k:*' | wc -l)" = 0 ]; }
tap_check "with one key outside the Redis user's key pattern, the other 20 are unlinked" wait_until 10 kgone
tap_check "the queue drains (the refused key is dropped, not retried until max_age)" wait_until 10 queue_empty
tap_is "the refused key is counted as dropped" "$(( $(stat dropped) - d0 ))" "1"
tap_check "and logged with Redis' reason" grep -q "dropped 1 invalidations whose keys or channel the Redis user may not access" "$PGLOG"
d1=$(stat dropped)
q -c "SELECT clinical.invalidate('other:2')" >/dev/null
tap_check "a refused key alone in its batch is dropped too (not retried until max_age)" wait_until 10 queue_empty
tap_is "and counted" "$(( $(stat dropped) - d1 ))" "1"
q -c "ALTER SYSTEM RESET clinical.redis_user" -c "ALTER SYSTEM RESET clinical.redis_password" -c "SELECT pg_reload_conf()" >/dev/null
rcli ACL DELUSER inv_limited >/dev/null

# Redis refusing AUTH: counted, the password is not in the error
rcli CONFIG SET requirepass right-pass >/dev/null
q -c "ALTER SYSTEM SET clinical.redis_password = 'wrong-pass-123'" -c "SELECT pg_reload_conf()" >/dev/null
errs0=$(stat errors)
q -c "SELECT clinical.invalidate('auth:test')" >/dev/null
tap_check "a wrong password is counted as an error" wait_until 10 bash -c "[ \$(psql -X -A -t -q -c 'SELECT errors FROM clinical.invalidation_stats()') -gt $errs0 ]"
le=$(stat last_error)
echo "# last_error: $le"
tap_check "the error says AUTH failed" grep -qi "auth" <<<"$le"
tap_check "the error does not contain the password" test "$(grep -c 'wrong-pass-123' <<<"$le")" = 0
q -c "ALTER SYSTEM SET clinical.redis_password = 'right-pass'" -c "SELECT pg_reload_conf()" >/dev/null
tap_check "with the right password the backlog is delivered" wait_until 15 queue_empty
rcli -a right-pass --no-auth-warning CONFIG SET requirepass "" >/dev/null
q -c "ALTER SYSTEM RESET clinical.redis_password" -c "SELECT pg_reload_conf()" >/dev/null

# a database number Redis does not have
q -c "ALTER SYSTEM SET clinical.redis_db = 99999" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT clinical.invalidate('db:test')" >/dev/null
tap_check "a wrong database number shows in last_error" wait_until 10 bash -c "psql -X -A -t -q -c 'SELECT last_error FROM clinical.invalidation_stats()' | grep -q SELECT"
q -c "ALTER SYSTEM RESET clinical.redis_db" -c "SELECT pg_reload_conf()" >/dev/null
tap_check "after the fix the queue drains" wait_until 15 queue_empty
tap_check "no key reached the server log with the password" test "$(grep -c 'wrong-pass-123\|right-pass' "$PGLOG")" = 0

# the worker's commits do not wait for the WAL flush (a lost one re-sends
# its batch: at least once): with fsync on, 40 one-key commits 25 ms apart
# cost about one WAL sync each, where each delivery's commit made it two.
# The worker reports its WAL counts at most once a second: a key sent after
# a pause flushes them, before and after.
# The WAL writer flushes asynchronous commits every wal_writer_delay: put
# off for the count (a slow loop would otherwise add a sync each 200 ms).
q -c "ALTER SYSTEM SET fsync = on" -c "ALTER SYSTEM SET wal_writer_delay = '10s'" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
q -c "CHECKPOINT" >/dev/null
syncs() { q -c "SELECT wal_sync FROM pg_stat_wal"; }
sent_after_pause sync:0
s0=$(syncs)
for i in $(seq 1 40); do echo "SELECT clinical.invalidate('sync:$i'); SELECT pg_sleep(0.025);"; done | q >/dev/null
sent_after_pause sync:41; sleep 0.3
s1=$(syncs)
echo "# WAL syncs for 41 one-key commits and their deliveries: $((s1 - s0))"
tap_check "41 one-key commits and their deliveries cost fewer than 60 WAL syncs ($((s1 - s0)))" test $((s1 - s0)) -lt 60
q -c "ALTER SYSTEM RESET fsync" -c "ALTER SYSTEM RESET wal_writer_delay" -c "SELECT pg_reload_conf()" >/dev/null

# commits in another database with the extension (its queue has no
# worker) neither wake the invalidator nor send it to read blocks of its
# own queue: polling off, 3 s of writes there, the worker's reads of its
# queue counted as above
q -c "ALTER SYSTEM SET clinical.invalidation_poll_interval = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
q -d postgres -c "CREATE DATABASE inv_other" >/dev/null
q -d inv_other >/dev/null <<'SQL'
CREATE EXTENSION clinical;
CREATE TABLE o (id int PRIMARY KEY, v int);
INSERT INTO o SELECT i, 0 FROM generate_series(1, 1000) i;
SELECT clinical.enable_cache_invalidation('o', 'other:{id}');
SQL
sent_after_pause otherbase:1
tap_check "the invalidator's queue has a block to read" test "$(q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192")" -ge 1
b0=$(blocks)
printf '%s\n' '\set id random(1, 1000)' 'UPDATE o SET v = v + 1 WHERE id = :id;' > "$CLINICAL_TMP/other.pgb"
n_other=$(pgbench -n -c 2 -j 2 -T 3 -f "$CLINICAL_TMP/other.pgb" inv_other 2>/dev/null | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
sent_after_pause otherbase:2
other_blocks=$(( $(blocks) - b0 ))
echo "# $n_other commits in another database; the invalidator read $other_blocks blocks of its own queue"
tap_check "another database's commits ($n_other) do not send the invalidator to its queue (< 100 blocks read: $other_blocks)" test "$other_blocks" -lt 100
tap_is "there, invalidation_stats() says no worker serves that database (running, pid, keys_sent)" \
  "$(q -d inv_other -c "SELECT worker_running, worker_pid IS NULL, keys_sent IS NULL FROM clinical.invalidation_stats()")" "f|t|t"
tap_check "and shows its keys waiting in its queue" test "$(q -d inv_other -c "SELECT queue_depth FROM clinical.invalidation_stats()")" -gt 0
q -d postgres -c "DROP DATABASE inv_other" >/dev/null
q -c "ALTER SYSTEM RESET clinical.invalidation_poll_interval" -c "SELECT pg_reload_conf()" >/dev/null

q -c "DROP TABLE inv_patient, inv_big" -c "DROP ROLE inv_app" >/dev/null

# DROP EXTENSION while writers commit: the worker does not fail on the
# queue that went away, and works again after CREATE EXTENSION
q >/dev/null <<'SQL'
CREATE TABLE inv_drop (id int PRIMARY KEY, v int);
INSERT INTO inv_drop SELECT i, 0 FROM generate_series(1, 1000) i;
SELECT clinical.enable_cache_invalidation('inv_drop', 'drop:{id}');
SQL
pid0=$(stat worker_pid)
printf '%s\n' '\set id random(1, 1000)' 'UPDATE inv_drop SET v = v + 1 WHERE id = :id;' > "$CLINICAL_TMP/drop.pgb"
pgbench -n -c 4 -j 2 -T 4 -f "$CLINICAL_TMP/drop.pgb" >/dev/null 2>&1 &
sleep 1.5
q -c "DROP EXTENSION clinical CASCADE" >/dev/null 2>&1
wait
q -c "CREATE EXTENSION clinical" -c "SELECT clinical.enable_cache_invalidation('inv_drop', 'drop:{id}')" >/dev/null
rcli SET drop:7 cached >/dev/null
q -c "UPDATE inv_drop SET v = v + 1 WHERE id = 7" >/dev/null
tap_check "after DROP and CREATE EXTENSION under load the worker delivers again" wait_until 10 gone drop:7
tap_is "the same worker process (it did not fail on the dropped queue)" "$(stat worker_pid)" "$pid0"
tap_is "no 'could not open relation' in the server log" "$(grep -c 'could not open relation' "$PGLOG")" "0"
q -c "DROP TABLE inv_drop" >/dev/null
tap_done
