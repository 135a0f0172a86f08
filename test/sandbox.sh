# test/sandbox.sh - sourced by test/run.sh, test/demo.sh and bench/run.sh:
# makes a temp dir owned by the user the servers run as (postgres when we
# are root, since PostgreSQL refuses to run as root), copies the test
# inputs there, and stops everything and removes the dir on exit.
#
# Defines: CLINICAL_TMP, CLINICAL_SRC (the copy), as_server_user CMD...

CLINICAL_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLINICAL_TMP=$(mktemp -d /tmp/clinical.XXXXXX)
chmod 755 "$CLINICAL_TMP"
CLINICAL_SRC="$CLINICAL_TMP/src"
mkdir -p "$CLINICAL_SRC"
cp -r "$CLINICAL_REPO/sql" "$CLINICAL_REPO/expected" "$CLINICAL_REPO/test" "$CLINICAL_SRC/"
[ -d "$CLINICAL_REPO/bench" ] && cp -r "$CLINICAL_REPO/bench" "$CLINICAL_SRC/"
cp "$CLINICAL_REPO/clinical.control" "$CLINICAL_REPO/META.json" "$CLINICAL_SRC/"
cp -r "$CLINICAL_REPO/src/sql" "$CLINICAL_SRC/sqlparts"
[ -d "$CLINICAL_REPO/src/sql/upgrade" ] && mkdir -p "$CLINICAL_SRC/upgrade" && cp -r "$CLINICAL_REPO/src/sql/upgrade/." "$CLINICAL_SRC/upgrade/"
export CLINICAL_TMP CLINICAL_SRC

# settings passed through to the scripts (test selection, benchmark sizes)
CLINICAL_PASS_ENV=()
for v in ONLY ROUNDS ROWS SCALE SECS PGBENCH_SECONDS; do
  [ -n "${!v:-}" ] && CLINICAL_PASS_ENV+=("$v=${!v}")
done

if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$CLINICAL_TMP"
  as_server_user() { runuser -u postgres -- env CLINICAL_TMP="$CLINICAL_TMP" CLINICAL_SRC="$CLINICAL_SRC" "${CLINICAL_PASS_ENV[@]}" PGUSER=postgres "$@"; }
else
  as_server_user() { env CLINICAL_TMP="$CLINICAL_TMP" CLINICAL_SRC="$CLINICAL_SRC" "${CLINICAL_PASS_ENV[@]}" "$@"; }
fi

sandbox_cleanup() {
  as_server_user bash -c ". '$CLINICAL_SRC/test/lib.sh'; clinical_stop_all" >/dev/null 2>&1 || true
  # anything still running from the temp dir (a server an aborted script left)
  pkill -9 -f -- "$CLINICAL_TMP/" >/dev/null 2>&1 || true
  if [ -n "${CLINICAL_KEEP:-}" ]; then
    echo "clinical: kept $CLINICAL_TMP"
  else
    rm -rf "$CLINICAL_TMP"
  fi
}
trap sandbox_cleanup EXIT
trap 'exit 130' INT TERM
