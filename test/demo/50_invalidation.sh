# Demo: cache invalidation through the demo's redis-server.
. "$CLINICAL_SRC/test/demo/lib.sh"

# Show a redis-cli command and its reply.
redis_show() {
  printf '\n  redis> %s\n' "$*"
  rcli "$@" 2>&1 | sed 's/^/  /'
  echo
}
# The cache keys, sorted (KEYS is fine on a demo server, not in production).
cache_keys() {
  printf '\n  redis> KEYS *\n'
  rcli KEYS '*' | LC_ALL=C sort | sed 's/^/  /'
  echo
}
# Show a query with one column a line (psql -x).
show_x() {
  printf '\n  sql> %s\n' "$1"
  psql -X -q -x -v ON_ERROR_STOP=1 -P footer=off -c "$1" 2>&1 | sed 's/^/  /'
}
queue_empty() { [ "$(q -c "SELECT count(*) FROM clinical.invalidation_queue")" = 0 ]; }
gone() { [ "$(rcli EXISTS "$1")" = 0 ]; }
cache_patients() {
  local id
  for id in "$@"; do rcli SET "patient:$id" "{\"patient_id\": $id}" EX 300 >/dev/null; done
  rcli SET site:10:patients '[1, 2]' EX 300 >/dev/null
  rcli SET site:11:patients '[3]' EX 300 >/dev/null
}

section "Cache invalidation: Redis keys deleted after commit, whatever writes the row"
say "Services cache patients in Redis under patient:<id> and the patient list of a site under site:<id>:patients. Key templates name the columns in braces; the trigger renders each changed row's keys, and the 'clinical invalidator' background worker UNLINKs them once the transaction has committed."
run "CREATE TABLE demo_patient (patient_id int PRIMARY KEY, site_id int NOT NULL, name text)"
run "INSERT INTO demo_patient VALUES (1, 10, 'alpha'), (2, 10, 'bravo'), (3, 11, 'charlie')"
for stmt in "SELECT clinical.enable_cache_invalidation('demo_patient', 'patient:{patient_id}')" \
            "SELECT clinical.enable_cache_invalidation('demo_patient', 'site:{site_id}:patients', channel => 'cache-events')"; do
  printf '\n  sql> %s\n' "$stmt"
  run "$stmt"
done
show "SELECT target, key_template, channel, truncate_pattern, enabled FROM clinical.cache_invalidations"

say "The services have cached three patients and two site lists (5-minute TTL):"
cache_patients 1 2 3
cache_keys
show "UPDATE demo_patient SET name = 'alpha-2' WHERE patient_id = 1"
wait_until 10 gone patient:1
say "Right after the commit, patient:1 and its site's list are gone; the other entries stay:"
cache_keys

say "A rolled-back transaction invalidates nothing: the cache still matches the database."
show "BEGIN; UPDATE demo_patient SET name = 'never' WHERE patient_id = 2; ROLLBACK"
rcli SET marker:demo x >/dev/null
q -c "SELECT clinical.invalidate('marker:demo')" >/dev/null
wait_until 10 gone marker:demo
redis_show EXISTS patient:2

say "Application code can invalidate keys of its own in the same transactional way:"
show "SELECT clinical.invalidate('patient:2', 'patient:3')"
wait_until 10 gone patient:3
cache_keys

section "Redis down: the invalidations wait in the queue"
cache_patients 1 2 3
say "Redis stops (saving its data, so the cached entries come back with it). Writers go on at full speed; their keys wait in clinical.invalidation_queue, a logged table, so a crash loses none of them either."
rcli SHUTDOWN SAVE >/dev/null 2>&1
wait_until 10 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping"
rm -f "$REDIS_DIR/redis.pid"
show "UPDATE demo_patient SET name = name || '-3' WHERE patient_id IN (2, 3)"
sleep 1
show "SELECT redis_connected, queue_depth, errors, current_backoff, last_error FROM clinical.invalidation_stats()"
show "SELECT op, key, channel FROM clinical.invalidation_queue ORDER BY key"
say "Redis is started again with the stale entries; the worker reconnects (exponential backoff, at most 30 s) and drains the backlog."
redis_start
cache_keys
wait_until 40 queue_empty
wait_until 10 gone patient:3
say "After the reconnect:"
cache_keys

section "Statistics"
show_x "SELECT * FROM clinical.invalidation_stats()"
run "DROP TABLE demo_patient"
