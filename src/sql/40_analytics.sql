-- src/sql/40_analytics.sql
-- Analytics aggregates: descriptive statistics with exact quantiles
-- (clinical.summary, summarize, describe, rollup and the accessors) and
-- visit logic (baseline, locf, range_counts). All parallel safe.

\echo Use "CREATE EXTENSION clinical" to load this file. \quit

CREATE TYPE @extschema@.summary;

CREATE FUNCTION @extschema@.summary_in(cstring) RETURNS @extschema@.summary
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_in';
CREATE FUNCTION @extschema@.summary_out(@extschema@.summary) RETURNS cstring
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_out';
CREATE FUNCTION @extschema@.summary_recv(internal) RETURNS @extschema@.summary
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_recv';
CREATE FUNCTION @extschema@.summary_send(@extschema@.summary) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_send';

CREATE TYPE @extschema@.summary (
    INPUT = @extschema@.summary_in,
    OUTPUT = @extschema@.summary_out,
    RECEIVE = @extschema@.summary_recv,
    SEND = @extschema@.summary_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);

COMMENT ON TYPE @extschema@.summary IS
'Mergeable descriptive-statistics state: counts, Youngs-Cramer sums, min, max and the distinct values with counts (exact quantiles), or log buckets past clinical.summary_exact_limit';
COMMENT ON FUNCTION @extschema@.summary_in(cstring) IS 'Text input of clinical.summary (validated)';
COMMENT ON FUNCTION @extschema@.summary_out(@extschema@.summary) IS 'Text output of clinical.summary';
COMMENT ON FUNCTION @extschema@.summary_recv(internal) IS 'Binary input of clinical.summary (validated)';
COMMENT ON FUNCTION @extschema@.summary_send(@extschema@.summary) IS 'Binary output of clinical.summary';

CREATE TYPE @extschema@.descriptive AS (
    n bigint, nmiss bigint, mean float8, sd float8,
    min float8, q1 float8, median float8, q3 float8, max float8);
COMMENT ON TYPE @extschema@.descriptive IS
'The descriptive-statistics row of a clinical study report: n, missing, mean, SD, min, Q1, median, Q3, max';

CREATE TYPE @extschema@.range_count AS (below bigint, within bigint, above bigint, missing bigint);
COMMENT ON TYPE @extschema@.range_count IS
'Counts of values below, within (inclusive) and above their reference range, and missing values';

-- support functions of the aggregates
CREATE FUNCTION @extschema@._summ_accum(internal, float8) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_accum';
CREATE FUNCTION @extschema@._summ_accum(internal, float8, text) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_accum';
CREATE FUNCTION @extschema@._summ_combine(internal, internal) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_combine';
CREATE FUNCTION @extschema@._summ_serialize(internal) RETURNS bytea
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_serialize';
CREATE FUNCTION @extschema@._summ_deserialize(bytea, internal) RETURNS internal
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_deserialize';
CREATE FUNCTION @extschema@._summ_final(internal) RETURNS @extschema@.summary
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_final';
CREATE FUNCTION @extschema@._summ_rollup_accum(internal, @extschema@.summary) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summ_rollup_accum';
CREATE FUNCTION @extschema@._describe_final(internal) RETURNS @extschema@.descriptive
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_describe_final';
CREATE FUNCTION @extschema@._describe_final(internal, float8, text) RETURNS @extschema@.descriptive
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_describe_final';

COMMENT ON FUNCTION @extschema@._summ_accum(internal, float8) IS 'Transition function of clinical.summarize and clinical.describe (internal)';
COMMENT ON FUNCTION @extschema@._summ_accum(internal, float8, text) IS 'Transition function of clinical.describe(x, method) (internal)';
COMMENT ON FUNCTION @extschema@._summ_combine(internal, internal) IS 'Combine function of the summary aggregates (internal)';
COMMENT ON FUNCTION @extschema@._summ_serialize(internal) IS 'Serialize function of the summary aggregates (internal)';
COMMENT ON FUNCTION @extschema@._summ_deserialize(bytea, internal) IS 'Deserialize function of the summary aggregates (internal)';
COMMENT ON FUNCTION @extschema@._summ_final(internal) IS 'Final function of clinical.summarize and clinical.rollup (internal)';
COMMENT ON FUNCTION @extschema@._summ_rollup_accum(internal, @extschema@.summary) IS 'Transition function of clinical.rollup (internal)';
COMMENT ON FUNCTION @extschema@._describe_final(internal) IS 'Final function of clinical.describe (internal)';
COMMENT ON FUNCTION @extschema@._describe_final(internal, float8, text) IS 'Final function of clinical.describe(x, method) (internal)';

-- SSPACE: a state is ~150 bytes plus 32 bytes a distinct value (hash slots
-- at most half full); 1,000 distinct values is a typical vital sign per group.
CREATE AGGREGATE @extschema@.summarize(float8) (
    SFUNC = @extschema@._summ_accum, STYPE = internal, SSPACE = 32768,
    FINALFUNC = @extschema@._summ_final,
    COMBINEFUNC = @extschema@._summ_combine,
    SERIALFUNC = @extschema@._summ_serialize, DESERIALFUNC = @extschema@._summ_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.summarize(float8) IS
'Summary of a measurement (clinical.summary): NULLs counted as missing, NaN and infinities counted apart; read it with n, nmiss, mean, sd, min, max, quantile, quantiles';

CREATE AGGREGATE @extschema@.describe(float8) (
    SFUNC = @extschema@._summ_accum, STYPE = internal, SSPACE = 32768,
    FINALFUNC = @extschema@._describe_final,
    COMBINEFUNC = @extschema@._summ_combine,
    SERIALFUNC = @extschema@._summ_serialize, DESERIALFUNC = @extschema@._summ_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.describe(float8) IS
'Descriptive statistics in one call: n, nmiss, mean, sd, min, q1, median, q3, max (quantiles by R type 7)';

CREATE AGGREGATE @extschema@.describe(float8, text) (
    SFUNC = @extschema@._summ_accum, STYPE = internal, SSPACE = 32768,
    FINALFUNC = @extschema@._describe_final, FINALFUNC_EXTRA,
    COMBINEFUNC = @extschema@._summ_combine,
    SERIALFUNC = @extschema@._summ_serialize, DESERIALFUNC = @extschema@._summ_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.describe(float8, text) IS
'Descriptive statistics with quartiles by the named method (r7, r6, r2, sas5)';

CREATE AGGREGATE @extschema@.rollup(@extschema@.summary) (
    SFUNC = @extschema@._summ_rollup_accum, STYPE = internal, SSPACE = 32768,
    FINALFUNC = @extschema@._summ_final,
    COMBINEFUNC = @extschema@._summ_combine,
    SERIALFUNC = @extschema@._summ_serialize, DESERIALFUNC = @extschema@._summ_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.rollup(@extschema@.summary) IS
'Merge stored summaries (site to country to study): the summary of all their values';

-- accessors
CREATE FUNCTION @extschema@.n(@extschema@.summary) RETURNS bigint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_n';
COMMENT ON FUNCTION @extschema@.n(@extschema@.summary) IS 'Number of finite values';
CREATE FUNCTION @extschema@.nmiss(@extschema@.summary) RETURNS bigint
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_nmiss';
COMMENT ON FUNCTION @extschema@.nmiss(@extschema@.summary) IS 'Number of NULL values';
CREATE FUNCTION @extschema@.nonfinite(@extschema@.summary, OUT nan bigint, OUT posinf bigint, OUT neginf bigint)
RETURNS record
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_nonfinite';
COMMENT ON FUNCTION @extschema@.nonfinite(@extschema@.summary) IS 'Numbers of NaN, +Infinity and -Infinity values (kept out of every statistic)';
CREATE FUNCTION @extschema@.mean(@extschema@.summary) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_mean';
COMMENT ON FUNCTION @extschema@.mean(@extschema@.summary) IS 'Mean of the finite values, as avg()';
CREATE FUNCTION @extschema@.sd(@extschema@.summary) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_sd';
COMMENT ON FUNCTION @extschema@.sd(@extschema@.summary) IS 'Sample standard deviation of the finite values, as stddev_samp()';
CREATE FUNCTION @extschema@.min(@extschema@.summary) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_min';
COMMENT ON FUNCTION @extschema@.min(@extschema@.summary) IS 'Smallest finite value (exact in both modes)';
CREATE FUNCTION @extschema@.max(@extschema@.summary) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_max';
COMMENT ON FUNCTION @extschema@.max(@extschema@.summary) IS 'Largest finite value (exact in both modes)';
CREATE FUNCTION @extschema@.is_exact(@extschema@.summary) RETURNS boolean
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_is_exact';
COMMENT ON FUNCTION @extschema@.is_exact(@extschema@.summary) IS 'True while quantiles are exact; false once the summary keeps log buckets (1% relative error)';
CREATE FUNCTION @extschema@.quantile(s @extschema@.summary, q float8, method text DEFAULT 'r7') RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_quantile';
COMMENT ON FUNCTION @extschema@.quantile(@extschema@.summary, float8, text) IS
'Quantile q in [0,1] by Hyndman & Fan method r7 (= percentile_cont), r6, r2 or sas5 (= r2, SAS PCTLDEF=5)';
CREATE FUNCTION @extschema@.quantiles(s @extschema@.summary, q float8[], method text DEFAULT 'r7') RETURNS float8[]
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_summary_quantiles';
COMMENT ON FUNCTION @extschema@.quantiles(@extschema@.summary, float8[], text) IS
'Several quantiles at once, in the order given';

-- visit logic
CREATE FUNCTION @extschema@._visit_last_accum(internal, float8, timestamptz, timestamptz) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_visit_last_accum';
CREATE FUNCTION @extschema@._visit_last_combine(internal, internal) RETURNS internal
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_visit_last_combine';
CREATE FUNCTION @extschema@._visit_last_serialize(internal) RETURNS bytea
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_visit_last_serialize';
CREATE FUNCTION @extschema@._visit_last_deserialize(bytea, internal) RETURNS internal
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_visit_last_deserialize';
CREATE FUNCTION @extschema@._visit_last_final(internal) RETURNS float8
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_visit_last_final';
COMMENT ON FUNCTION @extschema@._visit_last_accum(internal, float8, timestamptz, timestamptz) IS 'Transition function of clinical.baseline and clinical.locf (internal)';
COMMENT ON FUNCTION @extschema@._visit_last_combine(internal, internal) IS 'Combine function of clinical.baseline and clinical.locf (internal)';
COMMENT ON FUNCTION @extschema@._visit_last_serialize(internal) IS 'Serialize function of clinical.baseline and clinical.locf (internal)';
COMMENT ON FUNCTION @extschema@._visit_last_deserialize(bytea, internal) IS 'Deserialize function of clinical.baseline and clinical.locf (internal)';
COMMENT ON FUNCTION @extschema@._visit_last_final(internal) IS 'Final function of clinical.baseline and clinical.locf (internal)';

CREATE AGGREGATE @extschema@.baseline(value float8, measured_at timestamptz, reference timestamptz) (
    SFUNC = @extschema@._visit_last_accum, STYPE = internal, SSPACE = 24,
    FINALFUNC = @extschema@._visit_last_final,
    COMBINEFUNC = @extschema@._visit_last_combine,
    SERIALFUNC = @extschema@._visit_last_serialize, DESERIALFUNC = @extschema@._visit_last_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.baseline(float8, timestamptz, timestamptz) IS
'Baseline: the last non-missing value measured at or before the reference time (e.g. first dose); ties at the same time go to the larger value';

CREATE AGGREGATE @extschema@.locf(value float8, measured_at timestamptz, as_of timestamptz) (
    SFUNC = @extschema@._visit_last_accum, STYPE = internal, SSPACE = 24,
    FINALFUNC = @extschema@._visit_last_final,
    COMBINEFUNC = @extschema@._visit_last_combine,
    SERIALFUNC = @extschema@._visit_last_serialize, DESERIALFUNC = @extschema@._visit_last_deserialize,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.locf(float8, timestamptz, timestamptz) IS
'Last observation carried forward: the last non-missing value measured at or before as_of; ties at the same time go to the larger value';

CREATE FUNCTION @extschema@._range_accum(bigint[], float8, float8, float8) RETURNS bigint[]
LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_range_accum';
CREATE FUNCTION @extschema@._range_combine(bigint[], bigint[]) RETURNS bigint[]
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_range_combine';
CREATE FUNCTION @extschema@._range_final(bigint[]) RETURNS @extschema@.range_count
LANGUAGE c STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'clinical_range_final';
COMMENT ON FUNCTION @extschema@._range_accum(bigint[], float8, float8, float8) IS 'Transition function of clinical.range_counts (internal)';
COMMENT ON FUNCTION @extschema@._range_combine(bigint[], bigint[]) IS 'Combine function of clinical.range_counts (internal)';
COMMENT ON FUNCTION @extschema@._range_final(bigint[]) IS 'Final function of clinical.range_counts (internal)';

CREATE AGGREGATE @extschema@.range_counts(value float8, low float8, high float8) (
    SFUNC = @extschema@._range_accum, STYPE = bigint[], INITCOND = '{0,0,0,0}',
    FINALFUNC = @extschema@._range_final,
    COMBINEFUNC = @extschema@._range_combine,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.range_counts(float8, float8, float8) IS
'Counts below low, within [low, high], above high, and missing (NULL or NaN), with per-row limits; a NULL limit is open';
