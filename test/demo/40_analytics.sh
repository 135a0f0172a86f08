# Demo: analytics aggregates on a small generated trial.
. "$CLINICAL_SRC/test/demo/lib.sh"

run "CREATE TABLE demo_vitals AS
  SELECT s AS subject, CASE WHEN s % 2 = 0 THEN 'active' ELSE 'placebo' END AS arm,
         v AS visit, timestamptz '2026-03-01' + (v * 7 + s % 3) * interval '1 day' AS measured_at,
         timestamptz '2026-03-08' AS first_dose,
         CASE WHEN (s * 7 + v) % 23 = 0 THEN NULL
              ELSE round(138 - CASE WHEN s % 2 = 0 THEN 2.5 * v ELSE 0.5 * v END + ((s * 37 + v * 11) % 21) - 10)::float8 END AS sbp
    FROM generate_series(1, 60) s, generate_series(0, 4) v"

section "Descriptive statistics: the table of every clinical study report"
say "clinical.describe() gives n, missing, mean, SD, min, quartiles, median and max in one parallel-safe pass; quantiles are exact."
show "SELECT arm, visit, (d).n, (d).nmiss, round((d).mean::numeric, 1) AS mean, round((d).sd::numeric, 2) AS sd,
        (d).min, (d).q1, (d).median, (d).q3, (d).max
   FROM (SELECT arm, visit, clinical.describe(sbp) AS d FROM demo_vitals GROUP BY arm, visit) t
  ORDER BY arm, visit"
say "SAS's default quartiles (PCTLDEF=5) differ from R's type 7 (= percentile_cont); both are one argument away. The PHUSE CAMIS example:"
show "SELECT m AS method, clinical.quantiles(clinical.summarize(x), ARRAY[0.25, 0.5, 0.75], m) AS q1_median_q3
   FROM (VALUES (10), (20), (30), (40), (150), (160), (170), (180), (190), (200)) v(x),
        unnest(ARRAY['r7', 'r6', 'sas5']) m
  GROUP BY m ORDER BY m"

section "Change from baseline"
say "baseline() is the last non-missing value at or before first dose; locf() carries the last observation forward to a visit."
show "SELECT arm, count(*) AS subjects,
        round(avg(week4 - base)::numeric, 2) AS mean_change_week4
   FROM (SELECT subject, arm, clinical.baseline(sbp, measured_at, first_dose) AS base,
                clinical.locf(sbp, measured_at, timestamptz '2026-03-29' + interval '2 days') AS week4
           FROM demo_vitals GROUP BY subject, arm) s
  GROUP BY arm ORDER BY arm"

section "Reference ranges"
show "SELECT arm, (clinical.range_counts(sbp, 90, 140)).* FROM demo_vitals WHERE visit = 4 GROUP BY arm ORDER BY arm"
run "DROP TABLE demo_vitals"
