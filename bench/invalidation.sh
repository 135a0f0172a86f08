#!/usr/bin/env bash
# bench/invalidation.sh - cache invalidation against Redis' own ceiling:
#  (a) throughput: KEYS (default 1,000,000) distinct keys queued in 10
#      transactions; time from the first commit until the queue is empty
#      (every key acknowledged by Redis), against redis-benchmark -P 128
#      UNLINK on the same server as the ceiling, and the one-DEL-per-call
#      pattern (redis-benchmark -P 1 DEL, one client);
#  (b) latency: pgbench, 4 clients updating patients, while a probe commits
#      inserts of probe rows and a keyevent subscriber timestamps the
#      UNLINK ("del" event) of each probe key: commit-to-UNLINK p50 / p99;
#  (c) writer cost: the same pgbench workload with invalidation on and off,
#      CYCLES (default 3) times in the order off, floor, on, on, floor, off;
#      the floor is the same trigger on a template whose column is always
#      NULL: it fires for every row and has nothing to send (the cost of an
#      AFTER ROW trigger as such). The worker's and redis-server's CPU time
#      per transaction is read from /proc. Once with fsync off (CPU-bound),
#      once with fsync on (PostgreSQL's default).
. "$CLINICAL_SRC/bench/lib.sh"
KEYS=${ROWS:-1000000}
SECS=${SECS:-15}

bench_setup
q >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS clinical;
DELETE FROM clinical.invalidation_queue;
SQL
rcli FLUSHALL >/dev/null

# (a) throughput
per=$((KEYS / 10))
t0=$(date +%s%N)
for b in $(seq 0 9); do
  q -c "SELECT clinical.invalidate(VARIADIC ARRAY(SELECT 'bench:' || i FROM generate_series($((b * per + 1)), $(((b + 1) * per))) i))" >/dev/null
done
t1=$(date +%s%N)
until [ "$(q -c "SELECT count(*) = 0 FROM clinical.invalidation_queue")" = t ]; do sleep 0.05; done
t2=$(date +%s%N)
ours=$(awk -v n="$KEYS" -v a="$t0" -v b="$t2" 'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
enq=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
tot=$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
ceil=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -P 128 -c 4 -n "$KEYS" -r "$KEYS" UNLINK "bench:__rand_int__" 2>/dev/null \
       | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
single=$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -q -P 1 -c 1 -n 50000 -r 1000000 DEL "bench:__rand_int__" 2>/dev/null \
       | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
printf '(a) throughput, %s distinct keys (queued in %s s, all acknowledged after %s s)\n' "$KEYS" "$enq" "$tot"
printf '%-52s %14s %10s\n' "path" "keys/s" "vs ceiling"
awk -v o="$ours" -v c="$ceil" -v s="$single" 'BEGIN {
  printf "%-52s %14.0f %9.2fx\n", "clinical: commit -> queue -> worker -> UNLINK", o, o / c;
  printf "%-52s %14.0f %9.2fx\n", "redis-benchmark -P 128 -c 4 UNLINK (ceiling)", c, 1;
  printf "%-52s %14.0f %9.2fx\n", "one DEL per call (redis-benchmark -P 1 -c 1)", s, s / c }'

# (a) left a million dead queue rows behind: the worker vacuums the queue
# itself (and cuts the heap back after such a backlog), so (b) and (c)
# start from whatever it left, as they would in production.
q -c "SELECT pg_relation_size('clinical.invalidation_queue') / 8192" | sed 's/^/# queue heap after (a): /; s/$/ pages/'

# the pgbench workload
q >/dev/null <<'SQL'
DROP TABLE IF EXISTS b_patient;
CREATE TABLE b_patient (patient_id int PRIMARY KEY, site_id int, name text, updated_at timestamptz, no_key int);
INSERT INTO b_patient SELECT i, i % 40, 'p' || i, now() FROM generate_series(1, 100000) i;
VACUUM ANALYZE b_patient;
SQL
cat > "$CLINICAL_TMP/upd.sql" <<'PGB'
\set id random(1, 100000)
UPDATE b_patient SET name = 'n' || :id, updated_at = now() WHERE patient_id = :id;
PGB
tps() { pgbench -n -c 4 -j 2 -T "$SECS" -f "$CLINICAL_TMP/upd.sql" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

# (c) writer cost, in ABBA order (off, on, on, off) so that the table's
# growing bloat weighs on both sides alike, CYCLES times (default 3): the
# TPS of one run on this 2-core machine varies by +-10% from run to run,
# on and off alike, so one cycle cannot tell 85% from 95%. Twice: with
# fsync off as the test cluster runs (every commit is CPU work only, so
# every extra microsecond shows), then with fsync on, PostgreSQL's default
# and the writers' setting in production (a commit waits for its WAL
# flush). fsync is a reload setting; a CHECKPOINT starts each set clean.
CYCLES=${CYCLES:-3}
on_inv() { q -c "SELECT clinical.enable_cache_invalidation('b_patient', 'patient:{patient_id}')" >/dev/null; }
floor_inv() { q -c "SELECT clinical.enable_cache_invalidation('b_patient', 'none:{no_key}')" >/dev/null; }
off_inv() { q -c "SELECT clinical.disable_cache_invalidation('b_patient')" >/dev/null; }
# CPU time (clock ticks) of a process, and of the worker and redis-server
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wpid=$(q -c "SELECT worker_pid FROM clinical.invalidation_stats()")
rpid=$(rcli INFO server | tr -d '\r' | sed -n 's/^process_id://p')
hz=$(getconf CLK_TCK)
# writer_cost FSYNC: the cycles with fsync on or off; the report goes to
# $CLINICAL_TMP/writer_FSYNC.txt, printed after (b)
writer_cost() {
  local fs=$1 cycle a b c d e f w0 r0 k0 w1 r1 k1
  local runs_off="" runs_on="" runs_floor="" on_n=0 on_w=0 on_r=0
  q -c "ALTER SYSTEM SET fsync = $fs" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  q -c "CHECKPOINT" >/dev/null
  for cycle in $(seq 1 "$CYCLES"); do
    a=$(tps); floor_inv; b=$(tps); off_inv; on_inv
    w0=$(ticks "$wpid"); r0=$(ticks "$rpid"); k0=$(q -c "SELECT keys_sent FROM clinical.invalidation_stats()")
    c=$(tps); d=$(tps)
    w1=$(ticks "$wpid"); r1=$(ticks "$rpid"); k1=$(q -c "SELECT keys_sent FROM clinical.invalidation_stats()")
    on_n=$((on_n + k1 - k0)); on_w=$((on_w + w1 - w0)); on_r=$((on_r + r1 - r0))
    off_inv; floor_inv; e=$(tps); off_inv; f=$(tps)
    runs_off="$runs_off $a $f"; runs_floor="$runs_floor $b $e"; runs_on="$runs_on $c $d"
  done
  {
    printf '\n(c) writer cost, fsync = %s: pgbench UPDATE, 4 clients, %s s each, %s cycles of off, floor, on, on, floor, off\n' "$fs" "$SECS" "$CYCLES"
    awk -v off="$runs_off" -v on="$runs_on" -v fl="$runs_floor" 'BEGIN {
      n = split(off, f, " "); split(on, o, " "); split(fl, l, " ");
      for (i = 1; i <= n; i++) { so += f[i]; sn += o[i]; sl += l[i] }
      printf "%-34s %8.0f tps (runs", "invalidation off", so / n; for (i = 1; i <= n; i++) printf " %.0f", f[i]; print ")";
      printf "%-34s %8.0f tps (runs", "floor: trigger, nothing to send", sl / n; for (i = 1; i <= n; i++) printf " %.0f", l[i]; print ")";
      printf "%-34s %8.0f tps (runs", "invalidation on", sn / n; for (i = 1; i <= n; i++) printf " %.0f", o[i]; print ")";
      printf "%-34s", "on / off by cycle"; for (i = 1; i <= n; i += 2) printf " %.1f%%", 100 * (o[i] + o[i + 1]) / (f[i] + f[i + 1]); print "";
      printf "%-34s", "floor / off by cycle"; for (i = 1; i <= n; i += 2) printf " %.1f%%", 100 * (l[i] + l[i + 1]) / (f[i] + f[i + 1]); print "";
      printf "%-34s %7.1f%%\n", "floor / off", 100 * sl / so;
      printf "%-34s %7.1f%%\n", "on / off", 100 * sn / so }'
    awk -v n="$on_n" -v w="$on_w" -v r="$on_r" -v hz="$hz" 'BEGIN {
      if (n > 0) printf "%-34s worker %.2f us, redis-server %.2f us (CPU time per key sent, %d keys)\n", "delivery while on", w / hz * 1e6 / n, r / hz * 1e6 / n, n }'
  } > "$CLINICAL_TMP/writer_$fs.txt"
  q -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" >/dev/null
}
writer_cost off
writer_cost on
on_inv

# (b) latency under the same load. Redis reports an UNLINK as a "del"
# keyevent (there is no "unlink" event); the subscriber timestamps each one
# in microseconds since the epoch, as "usec key". The event's payload is
# the key: patient:2000xx for the probe rows (the pgbench rows' keys are
# not in Redis, so their UNLINKs raise no event).
rcli CONFIG SET notify-keyspace-events Eg >/dev/null
( stdbuf -oL redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --csv SUBSCRIBE __keyevent@0__:del | while IFS= read -r line; do
    case "$line" in *'"patient:2'*) echo "${EPOCHREALTIME/./} $line";; esac
  done ) > "$CLINICAL_TMP/events.txt" &
subpid=$!
sleep 0.5
pgbench -n -c 4 -j 2 -T "$SECS" -f "$CLINICAL_TMP/upd.sql" >/dev/null 2>&1 &
pgbpid=$!
sleep 1
exec 3> >(psql -X -q -A -t > "$CLINICAL_TMP/probe.out" 2>&1)
for i in $(seq 1 200); do
  rcli SET "patient:$((200000 + i))" x >/dev/null
  # the probe row's commit time: read by the server just before COMMIT, so
  # the latency counts the commit itself and no client round trip after it
  echo "BEGIN; INSERT INTO b_patient VALUES ($((200000 + i)), 0, 'probe', now()); SELECT 'C', $((200000 + i)), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint; COMMIT;" >&3
  sleep 0.05
done
exec 3>&-
wait $pgbpid
sleep 1
pkill -P $subpid 2>/dev/null; kill $subpid 2>/dev/null  # children first: once the subshell is gone they have another parent
# join "id commit_usec" with "id unlink_usec" on the probe id (the template
# renders patient:{patient_id}); the first unlink of a key counts
awk -F'|' '$1 == "C" { print $2, $3 }' "$CLINICAL_TMP/probe.out" | LC_ALL=C sort -k1,1 > "$CLINICAL_TMP/commits.txt"
sed -n 's/^\([0-9]*\) .*"patient:\(2[0-9]*\)".*/\2 \1/p' "$CLINICAL_TMP/events.txt" \
  | sort -k2,2n | awk '!seen[$1]++' | LC_ALL=C sort -k1,1 > "$CLINICAL_TMP/unlinks.txt"
lat=$(LC_ALL=C join "$CLINICAL_TMP/commits.txt" "$CLINICAL_TMP/unlinks.txt" | awk '{ printf "%.3f\n", ($3 - $2) / 1000 }' | sort -g)
echo "# probes committed: $(wc -l < "$CLINICAL_TMP/commits.txt"), unlink events seen: $(wc -l < "$CLINICAL_TMP/unlinks.txt")"
n=$(echo "$lat" | grep -c .)
p50=$(echo "$lat" | awk -v n="$n" 'NR == int(n * 0.5 + 0.5) { print }')
p99=$(echo "$lat" | awk -v n="$n" 'NR == int(n * 0.99 + 0.5) { print }')
mx=$(echo "$lat" | tail -1)
printf '\n(b) commit-to-UNLINK latency under pgbench (4 clients): %s probes, p50 %s ms, p99 %s ms, max %s ms\n' "$n" "$p50" "$p99" "$mx"

cat "$CLINICAL_TMP/writer_off.txt" "$CLINICAL_TMP/writer_on.txt"
q -c "SELECT clinical.disable_cache_invalidation('b_patient')" >/dev/null
q -c "DROP TABLE b_patient" >/dev/null
