-- pg_regress suite of the analytics aggregates.
CREATE EXTENSION clinical;

-- PHUSE CAMIS SAS-vs-R example: hand-computed quartiles per method
CREATE TABLE camis (x float8);
INSERT INTO camis VALUES (10), (20), (30), (40), (150), (160), (170), (180), (190), (200);
SELECT m, clinical.quantiles(clinical.summarize(x), ARRAY[0.25, 0.5, 0.75], m) AS q1_median_q3
  FROM camis, unnest(ARRAY['r7', 'r6', 'r2', 'sas5']) m GROUP BY m ORDER BY m;
-- r7 is percentile_cont
SELECT clinical.quantiles(clinical.summarize(x), ARRAY[0, 0.1, 0.25, 0.5, 0.9, 1])
       = ARRAY[percentile_cont(0) WITHIN GROUP (ORDER BY x), percentile_cont(0.1) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.25) WITHIN GROUP (ORDER BY x), percentile_cont(0.5) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.9) WITHIN GROUP (ORDER BY x), percentile_cont(1) WITHIN GROUP (ORDER BY x)] AS r7_is_percentile_cont
  FROM camis;
SELECT (clinical.describe(x)).* FROM camis;
SELECT (clinical.describe(x, 'sas5')).* FROM camis;

-- NULLs are missing; NaN and infinities are counted apart and poison nothing
CREATE TABLE odd (x float8);
INSERT INTO odd VALUES (1), (2), (NULL), ('NaN'), ('Infinity'), ('-Infinity'), (3), (NULL);
SELECT clinical.n(s), clinical.nmiss(s), (clinical.nonfinite(s)).*, clinical.mean(s), clinical.sd(s),
       clinical.min(s), clinical.max(s), clinical.quantile(s, 0.5), clinical.is_exact(s)
  FROM (SELECT clinical.summarize(x) s FROM odd) t;

-- empty groups: n = 0, NULL statistics
SELECT clinical.n(s), clinical.nmiss(s), clinical.mean(s), clinical.quantile(s, 0.5)
  FROM (SELECT clinical.summarize(x) s FROM odd WHERE false) t;
SELECT (clinical.describe(x)).* FROM odd WHERE x IS NULL;

-- text round trip
SELECT clinical.summarize(x)::text FROM camis;
SELECT clinical.summarize(x)::text::clinical.summary::text = clinical.summarize(x)::text AS text_round_trip FROM camis;

-- bad input
SELECT clinical.quantile(clinical.summarize(x), 1.5) FROM camis;
SELECT clinical.quantile(clinical.summarize(x), 0.5, 'r9') FROM camis;
SELECT clinical.quantiles(clinical.summarize(x), ARRAY[0.5, NULL]) FROM camis;
SELECT 'exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=3 sxx=0.5 min=1 max=2 {1:1,2:2}'::clinical.summary;
SELECT 'exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=3 sxx=0.5 min=1 max=2 {2:1,1:1}'::clinical.summary;
SELECT 'exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=3 sxx=0.5 min=1 max=2 {1:1,2:1'::clinical.summary;
SELECT 'sketch n=1 nmiss=0 nan=0 posinf=0 neginf=0 sx=3 sxx=0 min=3 max=3 {3:1}'::clinical.summary;
SELECT 'nonsense'::clinical.summary;

-- visit logic against window functions
CREATE TABLE vitals (subject int, at timestamptz, sbp float8, first_dose timestamptz);
INSERT INTO vitals VALUES
  (1, '2026-01-01 08:00+00', 120, '2026-01-03 00:00+00'),
  (1, '2026-01-02 08:00+00', NULL, '2026-01-03 00:00+00'),
  (1, '2026-01-02 08:00+00', 118, '2026-01-03 00:00+00'),
  (1, '2026-01-02 08:00+00', 119, '2026-01-03 00:00+00'),
  (1, '2026-01-05 08:00+00', 130, '2026-01-03 00:00+00'),
  (2, '2026-01-04 08:00+00', 140, '2026-01-03 00:00+00'),
  (3, '2026-01-01 08:00+00', 'NaN', '2026-01-03 00:00+00'),
  (3, '2025-12-31 08:00+00', 101, '2026-01-03 00:00+00');
SELECT subject, clinical.baseline(sbp, at, first_dose),
       clinical.locf(sbp, at, '2026-01-06 00:00+00')
  FROM vitals GROUP BY subject ORDER BY subject;
SELECT subject, (clinical.range_counts(sbp, 110, 125)).* FROM vitals GROUP BY subject ORDER BY subject;
SELECT (clinical.range_counts(sbp, NULL, 125)).* FROM vitals;

DROP TABLE camis, odd, vitals;
DROP EXTENSION clinical;
