# test/lib.sh - shared shell helpers for the test harness, the integration
# scripts, the demo and the benchmarks: a throwaway PostgreSQL cluster and
# redis-server on loopback inside one temp dir, and TAP-style reporting.
#
# Source it; it expects CLINICAL_TMP (a directory the current user owns).
# Everything it starts lives under that directory and is stopped by
# clinical_stop_all.

PGBIN=${PGBIN:-$(pg_config --bindir)}
export PATH="$PGBIN:$PATH"

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
      echo "$p"; return 0
    fi
  done
}

# Set up (once) and export the cluster's environment.
clinical_env() {
  : "${CLINICAL_TMP:?CLINICAL_TMP is not set}"
  export PGDATA="$CLINICAL_TMP/data"
  export PGHOST="$CLINICAL_TMP/sock"
  export PGUSER=${PGUSER:-$(id -un)}
  export PGDATABASE=${PGDATABASE:-clinical_test}
  export PGLOG="$CLINICAL_TMP/postgres.log"
  export CLINICAL_KEYRING="$CLINICAL_TMP/keyring"
  export REDIS_DIR="$CLINICAL_TMP/redis"
  if [ -f "$CLINICAL_TMP/ports" ]; then
    . "$CLINICAL_TMP/ports"
  else
    PGPORT=$(free_port)
    REDIS_PORT=$(free_port)
    while [ "$REDIS_PORT" = "$PGPORT" ]; do REDIS_PORT=$(free_port); done
    printf 'PGPORT=%s\nREDIS_PORT=%s\n' "$PGPORT" "$REDIS_PORT" > "$CLINICAL_TMP/ports"
  fi
  export PGPORT REDIS_PORT
}

# initdb a cluster configured for the tests: loopback only, the library
# preloaded, the worker in clinical_test, Redis on REDIS_PORT.
pg_init() {
  clinical_env
  mkdir -p "$PGHOST"
  initdb -D "$PGDATA" -A trust -U "$PGUSER" -E UTF8 --locale=C --no-sync >"$CLINICAL_TMP/initdb.log" 2>&1 \
    || { cat "$CLINICAL_TMP/initdb.log" >&2; return 1; }
  # the test keyring: versions 1 and 2 are bytes 0x00..0x1f and 0x20..0x3f,
  # version 3 is the 131-byte key of RFC 4231 test cases 6 and 7
  {
    echo "# clinical test keyring - test keys only"
    echo "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    echo "2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    printf '3:'; printf 'aa%.0s' $(seq 1 131); echo
  } > "$CLINICAL_KEYRING"
  chmod 600 "$CLINICAL_KEYRING"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGHOST'
shared_preload_libraries = 'clinical'
clinical.database = 'clinical_test'
clinical.redis_host = '127.0.0.1'
clinical.redis_port = $REDIS_PORT
clinical.keyring_file = '$CLINICAL_KEYRING'
max_prepared_transactions = 10
fsync = off
log_line_prefix = '%m [%p] %b '
timezone = 'UTC'
${CLINICAL_PG_CONF:-}
CONF
}

pg_start() {
  clinical_env
  pg_ctl -D "$PGDATA" -l "$PGLOG" -w -t 60 start >/dev/null
}

pg_stop() {
  clinical_env
  pg_ctl -D "$PGDATA" -m "${1:-fast}" -w -t 60 stop >/dev/null 2>&1
}

redis_start() {
  clinical_env
  mkdir -p "$REDIS_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log" ${CLINICAL_REDIS_ARGS:-} >/dev/null
  local i
  for i in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start" >&2
  return 1
}

redis_stop() {
  clinical_env
  if [ -f "$REDIS_DIR/redis.pid" ]; then
    local pid; pid=$(cat "$REDIS_DIR/redis.pid")
    kill "$pid" 2>/dev/null
    local i
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$REDIS_DIR/redis.pid"
  fi
  return 0
}

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

# Stop everything this temp dir started, whatever state it is in.
clinical_stop_all() {
  [ -n "${CLINICAL_TMP:-}" ] || return 0
  clinical_env
  [ -f "$PGDATA/postmaster.pid" ] && pg_ctl -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1
  redis_stop
  return 0
}

# psql returning bare values, stopping on the first error.
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }

# Wait until a command succeeds, up to $1 seconds (fractions allowed).
wait_until() {
  local limit=$1; shift
  local end=$(( $(date +%s%N) + $(awk -v l="$limit" 'BEGIN { printf "%.0f", l * 1e9 }') ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s%N)" -ge "$end" ] && return 1
    sleep 0.1
  done
}

# TAP-style results for integration scripts: ok / not ok lines that the
# harness counts. tap_check DESCRIPTION COMMAND... runs COMMAND.
TAP_N=0
TAP_FAILED=0
tap_ok()     { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
tap_not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
tap_check() {
  local desc=$1; shift
  if "$@"; then tap_ok "$desc"; else tap_not_ok "$desc"; fi
}
# tap_is DESCRIPTION GOT EXPECTED
tap_is() {
  if [ "$2" = "$3" ]; then tap_ok "$1"; else tap_not_ok "$1"; echo "#   got: '$2'"; echo "#   expected: '$3'"; fi
}
# tap_same DESCRIPTION GOT EXPECTED: like tap_is, for two computed results;
# an empty EXPECTED fails (a query that errored on both sides is no match)
tap_same() {
  if [ -z "$3" ]; then tap_not_ok "$1"; echo "#   nothing to compare: the expected side is empty"; return; fi
  if [ "$2" = "$3" ]; then tap_ok "$1"; else tap_not_ok "$1"; echo "#   got: '${2:0:300}'"; echo "#   expected: '${3:0:300}'"; fi
}
# tap_skip REASON: a check that cannot run here; counted as skipped, not passed
tap_skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $*"; }
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

# Wait (up to 30 s) until the clinical worker runs in clinical_test. After
# the database is first created the postmaster restarts the worker within
# its 5 s restart interval.
wait_for_worker() {
  _worker_up() { [ "$(q -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'clinical worker' AND datname = 'clinical_test'")" = 1 ]; }
  wait_until "${1:-30}" _worker_up
}
