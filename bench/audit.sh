#!/usr/bin/env bash
# bench/audit.sh - the audit trigger against its peers on the seeds-style
# workload: a 10-column patients table of 100,000 rows and a vitals
# table. One UPDATE of every patient and one INSERT of 100,000 vitals, each
# with no audit (the floor), clinical.enable_audit (C), the usual PL/pgSQL
# AFTER ROW trigger inserting to_jsonb(OLD)/to_jsonb(NEW) into a jsonb log,
# and a statement-level PL/pgSQL trigger with transition tables. Rounds are
# interleaved; medians; ratios to no audit. Then pgbench, 4 clients, a write
# transaction touching both tables: TPS with audit as a share of without.
# A floor under any audit that writes a row per change is timed alongside:
# writing the very audit rows clinical wrote, copied by INSERT ... SELECT
# (no trigger, nothing computed), added to the statement itself; for the
# UPDATE, to the statement with clinical's trigger firing for every row but
# writing nothing (the updated column excluded: an UPDATE that changes only
# excluded columns is not logged), since any row trigger must fire and
# compare the row versions.
. "$CLINICAL_SRC/bench/lib.sh"
ROWS=${ROWS:-100000}
ROUNDS=${ROUNDS:-5}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
VARIANTS="none clinical plpgsql stmt after"

bench_setup
q >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS clinical;
DROP TABLE IF EXISTS peer_log, peer_log_stmt, b_rows_src, b_rows_dst CASCADE;
-- the audit rows of clinical's last statement, and where they are copied to
CREATE TABLE b_rows_src (LIKE clinical.audit_log);
CREATE TABLE b_rows_dst (LIKE clinical.audit_log);
CREATE TABLE peer_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
                       txid bigint NOT NULL DEFAULT txid_current(), table_name text NOT NULL,
                       op text NOT NULL, who text NOT NULL DEFAULT session_user,
                       old_row jsonb, new_row jsonb);
-- each peer writes its own log, emptied before each of its statements
CREATE TABLE peer_log_stmt (LIKE peer_log INCLUDING ALL);
CREATE OR REPLACE FUNCTION public.peer_audit_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO peer_log (table_name, op, old_row, new_row)
  VALUES (TG_TABLE_NAME, TG_OP,
          CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
          CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END \$\$;
CREATE OR REPLACE FUNCTION public.peer_audit_ins() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO peer_log_stmt (table_name, op, new_row) SELECT TG_TABLE_NAME, TG_OP, to_jsonb(n) FROM new_rows n;
  RETURN NULL;
END \$\$;
CREATE OR REPLACE FUNCTION public.peer_audit_upd() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
  INSERT INTO peer_log_stmt (table_name, op, old_row, new_row)
  SELECT TG_TABLE_NAME, TG_OP, to_jsonb(o), to_jsonb(n)
    FROM old_rows o JOIN new_rows n USING (id);
  RETURN NULL;
END \$\$;
SQL

for v in $VARIANTS; do
  q >/dev/null <<SQL
DROP TABLE IF EXISTS patients_$v, vitals_$v;
CREATE TABLE patients_$v (id int PRIMARY KEY, site int NOT NULL, arm text, mrn text, name text,
                          sex text, born date, weight numeric, height numeric, enrolled_at timestamptz);
INSERT INTO patients_$v SELECT i, i % 40, 'arm' || i % 3, 'MRN' || i, 'name ' || i, 'F', '1970-01-01',
                   70.5, 170, '2026-01-01' FROM generate_series(1, $ROWS) i;
CREATE TABLE vitals_$v (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, patient_id int NOT NULL,
                        measured_at timestamptz NOT NULL, systolic int, diastolic int, pulse int,
                        temp_c numeric);
VACUUM ANALYZE patients_$v, vitals_$v;
SQL
done
q >/dev/null <<SQL
SELECT clinical.enable_audit('patients_clinical');
SELECT clinical.enable_audit('vitals_clinical');
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON patients_plpgsql FOR EACH ROW EXECUTE FUNCTION peer_audit_row();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vitals_plpgsql FOR EACH ROW EXECUTE FUNCTION peer_audit_row();
CREATE TRIGGER audit_u AFTER UPDATE ON patients_stmt REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION peer_audit_upd();
CREATE TRIGGER audit_i AFTER INSERT ON vitals_stmt REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION peer_audit_ins();
SELECT clinical.enable_audit('patients_after', exclude_columns => ARRAY['weight']);
SQL

# The worker's sealing (clinical.audit_seal_interval, default 60 s) would
# run at random moments inside other variants' timings: switch it off here
# and time clinical.audit_seal() of each round's rows on its own instead.
q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 0" -c "SELECT pg_reload_conf()" >/dev/null
q -c "SELECT clinical.audit_seal()" >/dev/null
declare -A upd ins
seal=""
# copy_rows SINCE: time writing clinical's audit rows with change_id > SINCE
# again, by INSERT ... SELECT into a plain table (no trigger, no index)
copy_rows() {
  q -c "TRUNCATE b_rows_src, b_rows_dst" -c "INSERT INTO b_rows_src SELECT * FROM clinical.audit_log WHERE change_id > $1" >/dev/null
  q -c "SELECT round(bench_ms('INSERT INTO b_rows_dst SELECT * FROM b_rows_src')::numeric, 3)"
}
last_change() { q -c "SELECT coalesce(max(change_id), 0) FROM clinical.audit_log"; }
for r in $(seq 1 "$ROUNDS"); do
  for v in $VARIANTS; do
    # the peers' logs start empty for each statement; clinical.audit_log,
    # append-only, keeps growing
    q -c "TRUNCATE peer_log, peer_log_stmt" >/dev/null
    [ $v = clinical ] && since=$(last_change)
    ms=$(q -c "SELECT round(bench_ms('UPDATE patients_$v SET weight = weight + 0.5')::numeric, 3)")
    upd[$v]+="$ms "
    [ $v = clinical ] && upd[copy]+="$(copy_rows "$since") "
    [ $v = after ] && continue		# (an UPDATE floor only)
    q -c "TRUNCATE peer_log, peer_log_stmt" >/dev/null
    [ $v = clinical ] && since=$(last_change)
    ms=$(q -c "SELECT round(bench_ms('INSERT INTO vitals_$v (patient_id, measured_at, systolic, diastolic, pulse, temp_c)
                 SELECT 1 + i % $ROWS, ''2026-11-01''::timestamptz + i * interval ''1 second'', 120, 80, 70, 36.6
                   FROM generate_series(1, $ROWS) i')::numeric, 3)")
    ins[$v]+="$ms "
    [ $v = clinical ] && ins[copy]+="$(copy_rows "$since") "
    q -c "VACUUM patients_$v" -c "TRUNCATE vitals_$v" >/dev/null 2>&1
  done
  seal+="$(q -c "SELECT round(bench_ms('SELECT clinical.audit_seal()')::numeric, 3)") "
done

label() {
  case $1 in none) echo "no audit";; clinical) echo "clinical.enable_audit (C)";;
             plpgsql) echo "PL/pgSQL row trigger, to_jsonb";; stmt) echo "PL/pgSQL statement, transition";;
             after) echo "clinical, updated column excluded";; esac
}
for what in upd ins; do
  if [ $what = upd ]; then title="UPDATE of $ROWS patients"; else title="INSERT of $ROWS vitals"; fi
  declare -n arr=$what
  floor=$(echo ${arr[none]} | tr ' ' '\n' | median)
  printf '%-36s %12s %10s\n' "$title" "median ms" "vs none"
  for v in $VARIANTS; do
    [ $v = after ] && [ $what = ins ] && continue
    m=$(echo ${arr[$v]} | tr ' ' '\n' | median)
    printf '%-36s %12.1f %9.2fx\n' "$(label $v)" "$m" "$(awk -v a="$m" -v b="$floor" 'BEGIN{print a/b}')"
  done
  c=$(echo ${arr[copy]} | tr ' ' '\n' | median)
  if [ $what = upd ]; then a=$(echo ${arr[after]} | tr ' ' '\n' | median); f2="floor: trigger firing + rows"
  else a=$floor; f2="floor: statement + rows"; fi
  printf '%-36s %12.1f %9.2fx\n' "clinical's rows, INSERT..SELECT" "$c" "$(awk -v a="$c" -v b="$floor" 'BEGIN{print a/b}')"
  printf '%-36s %12.1f %9.2fx\n' "$f2" "$(awk -v a="$a" -v c="$c" 'BEGIN{print a + c}')" \
    "$(awk -v f="$floor" -v a="$a" -v c="$c" 'BEGIN{print (a + c) / f}')"
  echo
done

printf 'clinical.audit_seal() of one round'"'"'s %s audit rows (not in the times above; the worker\n' "$((2 * ROWS))"
printf 'runs it every clinical.audit_seal_interval): median %.1f ms\n\n' "$(echo $seal | tr ' ' '\n' | median)"

# pgbench: 4 clients, a write transaction touching both tables
for v in none clinical plpgsql; do
  cat > "$CLINICAL_TMP/bench_audit_$v.sql" <<SQL
\set p random(1, $ROWS)
BEGIN;
UPDATE patients_$v SET weight = weight + 0.1 WHERE id = :p;
INSERT INTO vitals_$v (patient_id, measured_at, systolic, diastolic, pulse, temp_c)
  VALUES (:p, now(), 120, 80, 70, 36.6);
COMMIT;
SQL
done
# under pgbench the worker seals every second, so that sealing the audited
# run's rows costs that run (not a neighbour's, as a 60 s interval could)
q -c "SELECT clinical.audit_seal()" >/dev/null
q -c "ALTER SYSTEM SET clinical.audit_seal_interval = 1" -c "SELECT pg_reload_conf()" >/dev/null
declare -A tps
for r in 1 2 3; do
  for v in none clinical plpgsql; do
    t=$(pgbench -n -c 4 -j 2 -T "$PGBENCH_SECONDS" -f "$CLINICAL_TMP/bench_audit_$v.sql" clinical_test 2>/dev/null \
        | awk '/^tps/ {print $3; exit}')
    tps[$v]+="$t "
  done
done
base=$(echo ${tps[none]} | tr ' ' '\n' | median)
printf '%-36s %12s %10s\n' "pgbench 4 clients, ${PGBENCH_SECONDS}s x 3" "median TPS" "vs none"
for v in none clinical plpgsql; do
  m=$(echo ${tps[$v]} | tr ' ' '\n' | median)
  printf '%-36s %12.0f %9.0f%%\n' "$(label $v)" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN{print 100*a/b}')"
done

q -c "ALTER SYSTEM RESET clinical.audit_seal_interval" -c "SELECT pg_reload_conf()" >/dev/null
for v in $VARIANTS; do q -c "DROP TABLE patients_$v, vitals_$v" >/dev/null 2>&1; done
q -c "DROP TABLE peer_log, peer_log_stmt, b_rows_src, b_rows_dst" >/dev/null
