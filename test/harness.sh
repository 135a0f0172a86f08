#!/usr/bin/env bash
# test/harness.sh - runs as the server user inside CLINICAL_TMP (see
# test/run.sh): starts the cluster and redis-server, runs the three kinds
# of tests, prints a summary line and exits non-zero if anything failed.
set -uo pipefail
. "$CLINICAL_SRC/test/lib.sh"
cd "$CLINICAL_SRC"

# ONLY=regex limits the run to the suites, pgTAP files and integration
# scripts whose names match (for development; make test runs everything).
ONLY=${ONLY:-}
pick() { if [ -z "$ONLY" ]; then cat; else grep -E -- "$ONLY" || true; fi; }

passed=0
failed=0
skipped=0
declare -a failures=()

count_tap() {   # count_tap FILE-OF-OUTPUT -> prints "passed failed skipped"
  local p f s
  p=$(grep -E '^[[:space:]]*ok [0-9]+' "$1" | grep -cvE '# (SKIP|skip)')
  f=$(grep -cE '^[[:space:]]*not ok [0-9]+' "$1")
  s=$(grep -E '^[[:space:]]*ok [0-9]+' "$1" | grep -cE '# (SKIP|skip)')
  echo "$p $f $s"
}

pg_init || { echo "0 passed, 1 failed"; exit 1; }
pg_start || { cat "$PGLOG"; echo "0 passed, 1 failed"; exit 1; }
redis_start || { echo "0 passed, 1 failed"; exit 1; }
q -d postgres -c "CREATE DATABASE clinical_test" >/dev/null
q -c "CREATE EXTENSION pgtap" >/dev/null
# the worker started before clinical_test existed; the postmaster restarts it
wait_for_worker || echo "warning: the clinical worker did not start" >&2

echo "== pg_regress"
regress_suites=$(ls sql/*.sql 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.sql$//' | pick)
if [ -n "$regress_suites" ]; then
  mkdir -p "$CLINICAL_TMP/regress"
  "$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress" \
    --inputdir="$CLINICAL_SRC" --outputdir="$CLINICAL_TMP/regress" \
    --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" \
    --dbname=contrib_regression $regress_suites > "$CLINICAL_TMP/regress.out" 2>&1
  rc=$?
  cat "$CLINICAL_TMP/regress.out"
  # PG 15 prints "test name ... ok"; PG 16+ prints TAP ("ok 1 - name").
  p=$(grep -cE '(\.\.\. ok|^ok [0-9]+ )' "$CLINICAL_TMP/regress.out")
  f=$(grep -cE '(\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ )' "$CLINICAL_TMP/regress.out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then
    failures+=("pg_regress")
    [ -f "$CLINICAL_TMP/regress/regression.diffs" ] && head -c 20000 "$CLINICAL_TMP/regress/regression.diffs"
  fi
fi

echo "== pgTAP"
tapfiles=$(ls test/pgtap/*.sql 2>/dev/null | pick)
if [ -n "$tapfiles" ]; then
  pg_prove -v -d clinical_test $tapfiles > "$CLINICAL_TMP/pgtap.out" 2>&1
  rc=$?
  cat "$CLINICAL_TMP/pgtap.out"
  read -r p f s < <(count_tap "$CLINICAL_TMP/pgtap.out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$f" -gt 0 ] && failures+=("pgTAP")
fi

echo "== integration"
for script in $(ls test/integration/*.sh 2>/dev/null | pick); do
  name=$(basename "$script" .sh)
  echo "-- $name"
  # each script leaves the cluster and redis-server running, as it found them
  timeout 900 bash "$script" > "$CLINICAL_TMP/int-$name.out" 2>&1
  rc=$?
  sed 's/^/   /' "$CLINICAL_TMP/int-$name.out"
  read -r p f s < <(count_tap "$CLINICAL_TMP/int-$name.out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "   not ok - $name exited with $rc"; fi
  # a script must end with its plan (tap_done): one that stopped early, or
  # ran no check at all, fails even when it exited 0
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$CLINICAL_TMP/int-$name.out" | tail -1)
  if [ -z "$plan" ] || [ "$plan" -eq 0 ] || [ "$plan" -ne $((p + f + s)) ]; then
    [ "$f" -eq 0 ] && f=1
    echo "   not ok - $name: plan '${plan:-none}' does not match the $((p + f + s)) checks it reported"
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$f" -gt 0 ] && failures+=("$name")
  # make sure the next script finds the servers up
  [ -f "$PGDATA/postmaster.pid" ] || pg_start
  rcli ping >/dev/null 2>&1 || redis_start
done

if [ "$failed" -gt 0 ]; then
  echo "== failed: ${failures[*]}"
  echo "== last lines of the server log:"
  tail -n 40 "$PGLOG"
fi
[ "$skipped" -gt 0 ] && echo "$skipped skipped (see the '# SKIP' lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
