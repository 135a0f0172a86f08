#!/usr/bin/env bash
# bench/updated_at.sh - clinical.set_updated_at() against its peers:
# contrib's moddatetime (C) and the usual PL/pgSQL trigger, on one UPDATE of
# all 100,000 rows of an 11-column table, with no trigger as the floor.
# Rounds are interleaved; medians of 5 rounds; ratios to the floor.
. "$CLINICAL_SRC/bench/lib.sh"
ROWS=${ROWS:-100000}
ROUNDS=${ROUNDS:-5}

bench_setup
q >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS clinical;
CREATE EXTENSION IF NOT EXISTS moddatetime;
CREATE OR REPLACE FUNCTION public.plpgsql_updated_at() RETURNS trigger LANGUAGE plpgsql AS
\$\$ BEGIN NEW.updated_at := now(); RETURN NEW; END \$\$;
DROP TABLE IF EXISTS b_none, b_clinical, b_moddatetime, b_plpgsql;
CREATE TABLE b_none (id int PRIMARY KEY, site int, arm text, mrn text, name text, sex text,
                     born date, weight float8, height float8, notes text,
                     updated_at timestamptz DEFAULT now());
INSERT INTO b_none SELECT i, i % 40, 'arm' || i % 3, 'MRN' || i, 'name ' || i, 'F', '1970-01-01',
                   70, 170, 'none' FROM generate_series(1, $ROWS) i;
CREATE TABLE b_clinical (LIKE b_none INCLUDING ALL);    INSERT INTO b_clinical SELECT * FROM b_none;
CREATE TABLE b_moddatetime (LIKE b_none INCLUDING ALL); INSERT INTO b_moddatetime SELECT * FROM b_none;
CREATE TABLE b_plpgsql (LIKE b_none INCLUDING ALL);     INSERT INTO b_plpgsql SELECT * FROM b_none;
CREATE TRIGGER t BEFORE UPDATE ON b_clinical FOR EACH ROW EXECUTE FUNCTION clinical.set_updated_at();
CREATE TRIGGER t BEFORE UPDATE ON b_moddatetime FOR EACH ROW EXECUTE FUNCTION moddatetime(updated_at);
CREATE TRIGGER t BEFORE UPDATE ON b_plpgsql FOR EACH ROW EXECUTE FUNCTION public.plpgsql_updated_at();
VACUUM ANALYZE b_none, b_clinical, b_moddatetime, b_plpgsql;
SQL

declare -A times
for r in $(seq 1 "$ROUNDS"); do
  for t in none clinical moddatetime plpgsql; do
    ms=$(q -c "SELECT round(bench_ms('UPDATE b_$t SET weight = weight + 1')::numeric, 3)")
    times[$t]+="$ms "
    q -c "VACUUM b_$t" >/dev/null
  done
done

floor=$(echo ${times[none]} | tr ' ' '\n' | median)
ours=$(echo ${times[clinical]} | tr ' ' '\n' | median)
printf '%-34s %12s %10s %14s\n' "UPDATE of $ROWS rows, trigger" "median ms" "vs none" "this / clinical"
for t in none clinical moddatetime plpgsql; do
  m=$(echo ${times[$t]} | tr ' ' '\n' | median)
  label=$t
  case $t in clinical) label="clinical.set_updated_at (C)";; moddatetime) label="contrib moddatetime (C)";; plpgsql) label="PL/pgSQL NEW.updated_at := now()";; none) label="no trigger";; esac
  printf '%-34s %12.1f %9.2fx %13.2fx\n' "$label" "$m" "$(awk -v a="$m" -v b="$floor" 'BEGIN{print a/b}')" \
    "$(awk -v a="$m" -v b="$ours" 'BEGIN{print a/b}')"
done
q -c "DROP TABLE b_none, b_clinical, b_moddatetime, b_plpgsql" >/dev/null
