# test/demo/lib.sh - helpers for the narrated demo sections.
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

# A section heading.
section() { printf '\n== %s\n' "$*"; }
# A line of narration.
say() { printf '%s\n' "$*" | fold -s -w 78; }
# Show a SQL statement, then its result as an aligned table.
show() {
  printf '\n  sql> %s\n' "$1"
  psql -X -q -v ON_ERROR_STOP=1 -P footer=off -c "$1" 2>&1 | sed 's/^/  /'
}
# Run SQL quietly (setup steps).
run() { psql -X -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
