-- pgTAP: analytics aggregates against plain SQL on the same random data.
\set ON_ERROR_STOP 1
\set QUIET 1
\pset format unaligned
\pset tuples_only true
BEGIN;
CREATE EXTENSION IF NOT EXISTS clinical;
SELECT plan(50);

SELECT setseed(0.42);
CREATE TEMP TABLE m AS
  SELECT i, (i % 7) AS site, (i % 3) AS arm,
         CASE WHEN i % 50 = 0 THEN NULL ELSE round((120 + 15 * (random() + random() + random() - 1.5))::numeric, 0)::float8 END AS sbp,
         CASE WHEN i % 40 = 0 THEN NULL ELSE 3.5 + random() * 2.2 END AS potassium
    FROM generate_series(1, 20000) i;

-- per group, every statistic against its plain-SQL counterpart
CREATE TEMP TABLE cmp AS
  SELECT site, clinical.summarize(sbp) AS s, clinical.summarize(potassium) AS k,
         count(sbp) AS n, count(*) - count(sbp) AS nmiss, avg(sbp) AS avg, stddev_samp(sbp) AS sd,
         min(sbp) AS mn, max(sbp) AS mx,
         percentile_cont(ARRAY[0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]) WITHIN GROUP (ORDER BY sbp) AS pc,
         avg(potassium) AS kavg, stddev_samp(potassium) AS ksd,
         percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY potassium) AS kpc
    FROM m GROUP BY site;

SELECT is((SELECT count(*) FROM cmp WHERE clinical.n(s) = n), 7::bigint, 'n equals count(x) in every group');
SELECT is((SELECT count(*) FROM cmp WHERE clinical.nmiss(s) = nmiss), 7::bigint, 'nmiss counts the NULLs');
SELECT is((SELECT count(*) FROM cmp WHERE abs(clinical.mean(s) - avg) <= 1e-12 * abs(avg)
                                      AND abs(clinical.mean(k) - kavg) <= 1e-12 * abs(kavg)), 7::bigint,
          'mean equals avg() within 1e-12 relative');
SELECT is((SELECT count(*) FROM cmp WHERE abs(clinical.sd(s) - sd) <= 1e-12 * sd
                                      AND abs(clinical.sd(k) - ksd) <= 1e-12 * ksd), 7::bigint,
          'sd equals stddev_samp() within 1e-12 relative');
SELECT is((SELECT count(*) FROM cmp WHERE clinical.min(s) = mn AND clinical.max(s) = mx), 7::bigint,
          'min and max are exact');
SELECT is((SELECT count(*) FROM cmp, LATERAL unnest(clinical.quantiles(s, ARRAY[0, 0.1, 0.25, 0.5, 0.75, 0.9, 1]), pc) AS u(a, b)
            WHERE abs(a - b) <= 1e-12 * abs(b)), 49::bigint,
          'r7 quantiles equal percentile_cont (integer-valued, many ties)');
SELECT is((SELECT count(*) FROM cmp, LATERAL unnest(clinical.quantiles(k, ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]), kpc) AS u(a, b)
            WHERE abs(a - b) <= 1e-12 * abs(b)), 35::bigint,
          'r7 quantiles equal percentile_cont (continuous values, all distinct)');
SELECT ok((SELECT bool_and(clinical.is_exact(s) AND clinical.is_exact(k)) FROM cmp), 'below the limit summaries are exact');
SELECT is((SELECT (clinical.describe(sbp)).median FROM m WHERE site = 3),
          (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY sbp) FROM m WHERE site = 3),
          'describe().median equals percentile_cont(0.5)');

-- rollup of per-site summaries equals the study-wide summary
SELECT is((SELECT clinical.quantiles(clinical.rollup(s), ARRAY[0.1, 0.25, 0.5, 0.75, 0.9]) FROM cmp),
          (SELECT clinical.quantiles(clinical.summarize(sbp), ARRAY[0.1, 0.25, 0.5, 0.75, 0.9]) FROM m),
          'rollup of site summaries gives the study-wide quantiles');
SELECT is((SELECT clinical.n(clinical.rollup(s)) || '/' || clinical.nmiss(clinical.rollup(s)) FROM cmp),
          (SELECT count(sbp) || '/' || (count(*) - count(sbp)) FROM m),
          'rollup adds n and nmiss');
SELECT ok((SELECT abs(clinical.sd(clinical.rollup(s)) - (SELECT stddev_samp(sbp) FROM m)) <= 1e-12 * (SELECT stddev_samp(sbp) FROM m) FROM cmp),
          'rollup sd equals stddev_samp over all rows within 1e-12');

-- past the exact limit: log buckets within 1% relative error
SET LOCAL clinical.summary_exact_limit = 100;
SELECT ok(NOT (SELECT clinical.is_exact(clinical.summarize(potassium)) FROM m), 'past the limit is_exact is false');
SELECT is((SELECT count(*) FROM (SELECT clinical.quantiles(clinical.summarize(potassium), ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) q,
                                        percentile_cont(ARRAY[0.05, 0.25, 0.5, 0.75, 0.95]) WITHIN GROUP (ORDER BY potassium) p
                                   FROM m) t, LATERAL unnest(q, p) u(a, b)
            WHERE abs(a - b) <= 0.01 * abs(b)), 5::bigint, 'sketch quantiles are within 1% of percentile_cont');
SELECT is((SELECT clinical.min(clinical.summarize(potassium)) = min(potassium) AND clinical.max(clinical.summarize(potassium)) = max(potassium) FROM m),
          true, 'sketch keeps min and max exact');
SELECT ok((SELECT abs(clinical.mean(clinical.summarize(potassium)) - avg(potassium)) <= 1e-12 * avg(potassium) FROM m),
          'sketch keeps the mean exact');
RESET clinical.summary_exact_limit;

-- baseline and LOCF equal their window-function formulations
CREATE TEMP TABLE v AS
  SELECT s AS subject, timestamptz '2026-01-01' + (random() * 20)::int * interval '1 day' AS at,
         CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 100)::numeric)::float8 END AS val,
         timestamptz '2026-01-10' AS ref
    FROM generate_series(1, 300) s, generate_series(1, 12);
SELECT is((SELECT count(*) FROM (
             SELECT subject, clinical.baseline(val, at, ref) AS b FROM v GROUP BY subject) a
           FULL JOIN (
             SELECT DISTINCT ON (subject) subject, val AS b
               FROM v WHERE val IS NOT NULL AND at <= ref
              ORDER BY subject, at DESC, val DESC) w USING (subject)
            WHERE a.b IS NOT DISTINCT FROM w.b), 300::bigint,
          'baseline equals the last non-missing value at or before the reference (window formulation)');
SELECT is((SELECT count(*) FROM (
             SELECT subject, clinical.locf(val, at, '2026-01-15') AS l FROM v GROUP BY subject) a
           JOIN (
             SELECT subject, (array_agg(val ORDER BY at DESC, val DESC) FILTER (WHERE val IS NOT NULL AND at <= '2026-01-15'))[1] AS l
               FROM v GROUP BY subject) w USING (subject)
            WHERE a.l IS NOT DISTINCT FROM w.l), 300::bigint,
          'locf equals last_value over the ordered non-missing values');
SELECT is((SELECT row(r.below, r.within, r.above, r.missing)::text FROM (SELECT (clinical.range_counts(val, 20, 80)).* AS r FROM v) r),
          (SELECT row(count(*) FILTER (WHERE val < 20), count(*) FILTER (WHERE val BETWEEN 20 AND 80),
                      count(*) FILTER (WHERE val > 80), count(*) FILTER (WHERE val IS NULL))::text FROM v),
          'range_counts equals FILTER counts');
SELECT is((SELECT count(*) FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
            WHERE p.pronamespace = 'clinical'::regnamespace AND p.proparallel = 's' AND a.aggcombinefn <> 0), 7::bigint,
          'all seven aggregates are parallel safe with a combine function');

-- an interpolated quantile followed by one with the same lower order
-- statistic (the walk over the entries must step back)
SELECT is((SELECT ARRAY[d.q1, d.median, d.q3]
             FROM (SELECT (clinical.describe(x)).* FROM (VALUES (10::float8), (20)) v(x)) d),
          ARRAY[12.5, 15, 17.5]::float8[], 'describe() of {10, 20}: quartiles 12.5, 15, 17.5');
SELECT is((SELECT clinical.quantiles(clinical.summarize(x), ARRAY[0.4, 0.45, 0.1, 0.9, 0.9]) FROM generate_series(1, 4) x),
          (SELECT percentile_cont(ARRAY[0.4, 0.45, 0.1, 0.9, 0.9]) WITHIN GROUP (ORDER BY x) FROM generate_series(1, 4) x),
          'quantiles() equal percentile_cont for close, repeated and decreasing q');
SELECT is((SELECT clinical.quantiles(clinical.summarize(x), ARRAY[0.5, 0.5], 'r2') FROM generate_series(1, 4) x),
          ARRAY[2.5, 2.5]::float8[], 'r2: the same q twice gives the same quantile');

-- overflow is an error (as in avg()), not an infinite mean or a negative count
SELECT throws_ok($$SELECT clinical.describe(x) FROM (VALUES (1e308::float8), (1e308)) v(x)$$, '22003', NULL,
                 'describe() of values whose sum overflows is an error');
SELECT throws_ok($$SELECT clinical.rollup(s) FROM (VALUES
                     ('exact n=9007199254740992 nmiss=0 nan=0 posinf=0 neginf=0 sx=9007199254740992 sxx=0 min=1 max=1 {1:9007199254740992}'::clinical.summary),
                     ('exact n=1 nmiss=0 nan=0 posinf=0 neginf=0 sx=1 sxx=0 min=1 max=1 {1:1}'::clinical.summary)) v(s)$$,
                 '22003', NULL, 'rollup() past the 2^53 values a summary counts is an error');

-- sums of an exact group come from its values (2026-11-27): large
-- magnitudes of both signs overflow as an error, never a NaN mean, also when
-- the group turns into a sketch after them
SELECT throws_ok($$SELECT clinical.describe(x) FROM (VALUES (1e308::float8), (1e308), (-1e308), (-1e308)) v(x)$$,
                 '22003', NULL, 'describe() of +-1e308 twice each is an overflow error, not a NaN mean');
SELECT throws_ok($$SELECT clinical.sd(clinical.summarize(x)) FROM (SELECT 1e308::float8 AS x UNION ALL SELECT 1e308
                     UNION ALL SELECT -1e308 UNION ALL SELECT -1e308 UNION ALL SELECT generate_series(5, 40)) v,
                     LATERAL (SELECT set_config('clinical.summary_exact_limit', '16', true)) c$$,
                 '22003', NULL, 'the same values ahead of a switch to the sketch: an overflow error too');
-- a large mean over a small spread: float8's own running sums lose digits
-- here (stddev_samp(x) is off by more than half); the summary's sd matches
-- stddev_samp of the exact offsets from 1e9
CREATE TEMP TABLE big_mean AS SELECT 1e9::float8 + (i % 1000)::float8 * 1e-6::float8 AS x FROM generate_series(1, 100000) i;
SELECT ok((SELECT abs(clinical.sd(s) - t) <= 1e-12 * t
             FROM (SELECT clinical.summarize(x) s, stddev_samp(x - 1e9::float8) t FROM big_mean) q),
          'sd of 1e9 plus small offsets equals stddev_samp of the offsets within 1e-12');
SELECT is((SELECT clinical.mean(clinical.summarize(x)) FROM big_mean),
          (SELECT 1e9::float8 + avg(x - 1e9::float8) FROM big_mean), 'and its mean is 1e9 plus the mean of the offsets (avg(x) is not)');
SELECT is((SELECT clinical.mean(clinical.summarize(x)) FROM (VALUES (1::float8), (1e17), (-1e17), (1)) v(x)), 0.5::float8,
          'the sum is compensated: 1, 1e17, -1e17, 1 has mean 0.5 (a running sum loses the ones)');
-- a typed exact summary's sums are recomputed from its values on input, so
-- the summary and a rollup of it agree
SELECT is((SELECT clinical.mean(s) || ' ' || clinical.sd(s) || ' ' || clinical.mean(clinical.rollup(s) OVER ()) || ' ' || clinical.sd(clinical.rollup(s) OVER ())
             FROM (VALUES ('exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=2 sxx=0 min=1 max=3 {1:1,3:1}'::clinical.summary)) v(s)),
          '2 1.4142135623730951 2 1.4142135623730951', 'a typed exact summary reports the mean and sd of its values, as its rollup does');
SELECT is('exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=2 sxx=0 min=1 max=3 {1:1,3:1}'::clinical.summary::text,
          'exact n=2 nmiss=0 nan=0 posinf=0 neginf=0 sx=4 sxx=2 min=1 max=3 {1:1,3:1}', 'its text shows the recomputed sums');

-- review fixes (2026-11-26)
SET LOCAL clinical.summary_exact_limit = 1000000;
SELECT is((SELECT ARRAY[clinical.quantile(s, 0.99999, 'sas5'), clinical.quantile(s, 0.99999, 'r2')]
             FROM (SELECT clinical.summarize(x) AS s FROM generate_series(1, 100001) x) q),
          ARRAY[100000, 100000]::float8[], 'sas5 and r2 take n q = 99999.99999 as fractional at n = 100001 (x(j+1))');
RESET clinical.summary_exact_limit;
SELECT is(clinical.quantile('exact n=10 nmiss=0 nan=0 posinf=0 neginf=0 sx=55 sxx=82.5 min=1 max=10 {1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1,10:1}'::clinical.summary,
                            0.3, 'sas5'), 3.5::float8, 'sas5 still averages when n q is whole up to rounding (10 x 0.3)');
SELECT throws_ok($$SELECT 'exact n=1 nmiss=0 nan=0 posinf=0 neginf=0 sx=1e300 sxx=0 min=5 max=5 {5:1}'::clinical.summary$$,
                 '22P03', NULL, 'summary input refuses a mean outside [min, max]');
SELECT throws_ok($$SELECT 'exact n=1 nmiss=0 nan=0 posinf=0 neginf=0 sx=5 sxx=inf min=5 max=5 {5:1}'::clinical.summary$$,
                 '22P03', NULL, 'summary input refuses an infinite sum of squares');
SELECT throws_ok($$SELECT 'exact n=0 nmiss=0 nan=0 posinf=0 neginf=0 sx=nan sxx=-1 min=0 max=0 {}'::clinical.summary$$,
                 '22P03', NULL, 'summary input refuses sums on an empty summary');
SELECT throws_ok($$SELECT 'exact n=9223372036854775807 nmiss=0 nan=0 posinf=0 neginf=0 sx=0 sxx=0 min=1 max=2 {1:1,2:9223372036854775806}'::clinical.summary$$,
                 '22P03', NULL, 'summary input refuses more than 2^53 values');
SELECT is((SELECT clinical.min(clinical.summarize(x))::text || clinical.min(clinical.summarize(y))::text
             FROM (VALUES ('-0'::float8, '0'::float8), ('0', '-0')) v(x, y)), '00',
          'min() of -0 and 0 is 0 in either order');
SELECT is((SELECT clinical.baseline(v, t, '2026-01-02')::text || clinical.baseline(w, t, '2026-01-02')::text
             FROM (VALUES ('-0'::float8, '0'::float8, '2026-01-01'::timestamptz), ('0', '-0', '2026-01-01')) x(v, w, t)),
          '00', 'baseline() of tied -0 and 0 is 0 in either order');
SELECT throws_ok($$SELECT clinical.range_counts(7, 'NaN', 10)$$, '22023', NULL, 'range_counts() refuses a NaN limit');
SELECT throws_ok($$SELECT clinical.range_counts(7, 10, 5)$$, '22023', NULL, 'range_counts() refuses low above high');

SELECT throws_ok($$SELECT clinical.describe(x, NULL) FROM (VALUES (1.0::float8)) v(x)$$, '22004', NULL,
                 'describe() with a NULL method is an error, not r7');
SELECT throws_ok($$SELECT clinical.describe(x, m) FROM (VALUES (1.0::float8, 'r7'), (2.0, 'sas5')) v(x, m)$$, '22023', NULL,
                 'describe() with a different method in a later row of the group is an error');
-- over no rows the transition function never sees the method: a constant
-- one is checked by the final function
SELECT throws_ok($$SELECT clinical.describe(x, 'bogus') FROM (VALUES (1.0::float8)) v(x) WHERE false$$, '22023', NULL,
                 'describe() over no rows refuses an unknown method too');
SELECT throws_ok($$SELECT clinical.describe(x, NULL) FROM (VALUES (1.0::float8)) v(x) WHERE false$$, '22004', NULL,
                 'describe() over no rows refuses a NULL method too');
SELECT is((SELECT (clinical.describe(x, 'sas5')).n FROM (VALUES (1.0::float8)) v(x) WHERE false), 0::bigint,
          'describe() over no rows with a known method gives n = 0');
CREATE TEMP TABLE no_rows (x float8, m text);
SELECT is((SELECT (clinical.describe(x, m)).n FROM no_rows), 0::bigint,
          'a method read from a column cannot be checked without a row: n = 0');

SELECT is(clinical.mean('exact n=100000000 nmiss=0 nan=0 posinf=0 neginf=0 sx=3730000006.2 sxx=0 min=37.3 max=37.3 {37.3:100000000}'::clinical.summary)::numeric(10,4),
          37.3000::numeric(10,4), 'summary input allows the rounding a running sum of 1e8 values carries');
SELECT throws_ok($$SELECT clinical.describe(x, m || '') FROM (VALUES (1.0::float8, 'r7'), (2.0, 'sas5')) v(x, m)$$, '22023', NULL,
                 'describe() notices a method computed per row that changes');

SELECT * FROM finish();
ROLLBACK;
