# bench/lib.sh - helpers for the benchmarks: timing a statement inside the
# server (so client round trips do not count), medians over interleaved
# rounds, and a side-by-side table.
. "$CLINICAL_SRC/test/lib.sh"
clinical_env

# Install the timing helper in the current database.
bench_setup() {
  q >/dev/null <<'SQL'
CREATE OR REPLACE FUNCTION public.bench_ms(stmt text) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
  t0 := clock_timestamp();
  EXECUTE stmt;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SQL
}

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
