/*-------------------------------------------------------------------------
 *
 * src/summary.c
 *	  Descriptive statistics for clinical measurements: the mergeable
 *	  clinical.summary type, the parallel-safe aggregates summarize(),
 *	  describe() and rollup(), and the accessors (n, nmiss, mean, sd, min,
 *	  max, quantile, quantiles, is_exact).
 *
 *	  A summary keeps counts (values, NULLs, NaN, +/-Infinity), the sum and
 *	  the sum of squared deviations (so mean and SD match avg() and
 *	  stddev_samp()), exact min and max, and the distinct finite values with
 *	  their counts, which gives exact quantiles. While the values are exact
 *	  the sums and extremes are computed from them when the state is
 *	  flattened (a compensated sum, then the squared deviations: nothing per
 *	  row, and the same result for every plan); a sketch keeps the
 *	  Youngs-Cramer sums PostgreSQL's float8 aggregates use, row by row. Past
 *	  clinical.summary_exact_limit distinct values it keeps log buckets
 *	  instead (each value replaced by its bucket's representative, relative
 *	  error at most SUMM_ALPHA); bucketing is a pure function of the value,
 *	  so the result does not depend on the order of merges: serial and
 *	  parallel plans give the same summary.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "clinical.h"

#define SUMM_VERSION	1
#define SUMM_EXACT		0
#define SUMM_SKETCH		1
#define SUMM_ALPHA		0.01	/* relative error bound of sketch mode */

static int	summ_exact_limit = 65536;

/* Quantile definitions (Hyndman & Fan 1996); R7 is the default. */
typedef enum SummMethod
{
	SUMM_R7 = 0,
	SUMM_R6,
	SUMM_R2						/* = SAS PCTLDEF=5 */
} SummMethod;

static SummMethod summ_parse_method(text *t);
static void summ_method_null(void);

void
summ_define_gucs(void)
{
	DefineCustomIntVariable("clinical.summary_exact_limit",
							"Distinct values a summary keeps exactly before it switches to log buckets.",
							"Quantiles are exact up to this many distinct finite values per group; past it they are within 1% relative error.",
							&summ_exact_limit,
							65536, 16, 16 * 1024 * 1024,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
}

/*
 * Aggregate state: counts, sums and a hash table of value -> count, keyed
 * by the value's bits (exact mode) or its bucket representative (sketch).
 */
typedef struct SummEntry
{
	uint64		key;			/* float8 bits; slot is empty when count = 0 */
	int64		count;
} SummEntry;

typedef struct SummState
{
	int			mode;
	int			method;			/* describe(x, method): quantile method */
	int			limit;			/* exact limit in force for this state */
	int64		n;				/* finite values */
	int64		nmiss;
	int64		nnan;
	int64		nposinf;
	int64		nneginf;
	float8		sx;				/* sums and extremes: kept row by row in */
	float8		sxx;			/* sketch mode only; an exact state has */
	float8		min;			/* them computed from its values by */
	float8		max;			/* summ_exact_moments() */
	int64		ndistinct;		/* used slots */
	int64		capacity;		/* power of 2 */
	SummEntry  *slots;
	bool		method_set;		/* describe(x, method): method read from a row */
	int			method_len;
	char		method_text[8]; /* ... and its name, to compare later rows' */
} SummState;

/* The on-disk form of clinical.summary; entries sorted by value. */
typedef struct SummaryData
{
	int32		vl_len_;
	uint8		version;
	uint8		mode;
	uint16		method;			/* quantile method of a describe() state */
	int32		pad2;
	int64		n;
	int64		nmiss;
	int64		nnan;
	int64		nposinf;
	int64		nneginf;
	float8		sx;
	float8		sxx;
	float8		min;
	float8		max;
	int64		nentries;
	struct
	{
		float8		value;
		int64		count;
	}			entries[FLEXIBLE_ARRAY_MEMBER];
} SummaryData;

#define SUMM_HDRSZ offsetof(SummaryData, entries)
#define SUMM_ENTRYSZ (sizeof(float8) + sizeof(int64))
#define DatumGetSummaryP(d) ((SummaryData *) PG_DETOAST_DATUM(d))

static inline uint64
summ_bits(float8 v)
{
	uint64		b;

	if (v == 0.0)
		v = 0.0;				/* -0 and +0 are one value */
	memcpy(&b, &v, sizeof(b));
	return b;
}

static inline float8
summ_value(uint64 b)
{
	float8		v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

/*
 * murmur3's 64-bit finalizer, both rounds: with one round, small integers
 * (their float8 bits differ only in a few high mantissa bits) crowded into
 * a few slots: 160 blood pressures probed 4.3 slots on average, now 1.25.
 */
static inline uint64
summ_hash(uint64 k)
{
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/*
 * The representative of x's log bucket: with gamma = (1+a)/(1-a) and
 * i = ceil(log_gamma |x|), 2 gamma^i / (gamma + 1), within a of x.
 */
static float8
summ_bucket(float8 x)
{
	static float8 lg = 0.0;
	float8		gamma = (1.0 + SUMM_ALPHA) / (1.0 - SUMM_ALPHA);
	float8		ax = fabs(x);
	float8		i;
	float8		rep;

	if (x == 0.0)
		return 0.0;
	if (lg == 0.0)
		lg = log(gamma);
	i = ceil(log(ax) / lg);
	rep = 2.0 * exp(i * lg) / (gamma + 1.0);
	if (!isfinite(rep) || rep == 0.0)
		rep = ax;				/* beyond the bucket range: keep the value */
	return x < 0 ? -rep : rep;
}

static SummState *
summ_state_new(MemoryContext cxt)
{
	SummState  *st = MemoryContextAllocZero(cxt, sizeof(SummState));

	st->mode = SUMM_EXACT;
	st->limit = summ_exact_limit;
	st->min = get_float8_infinity();
	st->max = -get_float8_infinity();
	st->capacity = 64;
	st->slots = MemoryContextAllocZero(cxt, sizeof(SummEntry) * st->capacity);
	return st;
}

static void summ_add_key(SummState *st, uint64 key, int64 count);

static void
summ_grow(SummState *st)
{
	SummEntry  *old = st->slots;
	int64		oldcap = st->capacity;
	int64		i;

	st->capacity *= 2;
	st->slots = MemoryContextAllocExtended(GetMemoryChunkContext(old),
										   sizeof(SummEntry) * st->capacity,
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->ndistinct = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].count != 0)
			summ_add_key(st, old[i].key, old[i].count);
	pfree(old);
}

/* Add x to the compensated sum (s, c): Neumaier's variant of Kahan's. */
static inline void
summ_sum_add(float8 *s, float8 *c, float8 x)
{
	float8		t = *s + x;

	if (fabs(*s) >= fabs(x))
		*c += (*s - t) + x;
	else
		*c += (x - t) + *s;
	*s = t;
}

/*
 * Sum, sum of squared deviations and extremes of n values given as k
 * (value bits, count) entries (empty slots, count 0, are skipped). The sum
 * is compensated, products included (value x count and its rounding error,
 * by fma), so it is as exact as a float8 can hold, whatever the order and
 * the signs: one pass per distinct value, not per row. The squared
 * deviations come from the corrected two-pass formula, which removes what
 * rounding left in the mean. Overflow is an error, as in avg(): the inputs
 * are finite, so any non-finite result is one.
 */
static void
summ_moments(const SummEntry *e, int64 k, int64 n, float8 *sx, float8 *sxx,
			 float8 *min, float8 *max)
{
	float8		lo = get_float8_infinity(),
				hi = -get_float8_infinity(),
				sum = 0.0,
				corr = 0.0,
				mean,
				ss = 0.0,
				comp = 0.0;
	int64		i;

	for (i = 0; i < k; i++)
	{
		float8		v = summ_value(e[i].key),
					c = (float8) e[i].count,
					p;

		if (e[i].count == 0)
			continue;
		if (v < lo)
			lo = v;
		if (v > hi)
			hi = v;
		p = v * c;
		summ_sum_add(&sum, &corr, p);
		summ_sum_add(&sum, &corr, fma(v, c, -p));
	}
	*min = lo;
	*max = hi;
	if (n == 0)
	{
		*sx = *sxx = 0.0;
		return;
	}
	sum += corr;
	if (!isfinite(sum))
		float_overflow_error();
	mean = sum / (float8) n;
	for (i = 0; i < k; i++)
	{
		float8		d;

		if (e[i].count == 0)
			continue;
		d = summ_value(e[i].key) - mean;
		ss += d * d * (float8) e[i].count;
		comp += d * (float8) e[i].count;
	}
	ss -= comp * comp / (float8) n;
	if (!isfinite(ss))
		float_overflow_error();
	*sx = sum;
	*sxx = ss < 0.0 ? 0.0 : ss;
}

/* Give an exact state the sums and extremes of its values. */
static void
summ_exact_moments(SummState *st)
{
	Assert(st->mode == SUMM_EXACT);
	summ_moments(st->slots, st->capacity, st->n, &st->sx, &st->sxx,
				 &st->min, &st->max);
}

/*
 * Switch an exact state to buckets: rekey every value by its bucket, into
 * a table sized for the buckets (far fewer than the distinct values: a
 * group kept the exact table's megabytes otherwise). The sums and extremes
 * come from the exact values first; from here on they are kept row by row.
 */
static void
summ_to_sketch(SummState *st)
{
	SummEntry  *old = st->slots;
	int64		oldcap = st->capacity;
	int64		i;

	summ_exact_moments(st);
	st->mode = SUMM_SKETCH;
	st->capacity = 64;
	st->slots = MemoryContextAllocExtended(GetMemoryChunkContext(old),
										   sizeof(SummEntry) * st->capacity,
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st->ndistinct = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].count != 0)
			summ_add_key(st, summ_bits(summ_bucket(summ_value(old[i].key))), old[i].count);
	pfree(old);
}

/*
 * The most values a summary counts: 2^53, so that every order-statistic
 * position is exact in a float8 (quantile positions are computed in
 * float8, and beyond 2^53 they would round to a neighbour or overflow).
 */
#define SUMM_MAX_N	((int64) 1 << 53)

static void
summ_count_overflow(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("clinical.summary count out of range"),
			 errhint("A summary counts at most 2^53 (9007199254740992) values.")));
}

/* Add count to the slot of key (already bucketed in sketch mode). */
static void
summ_add_key(SummState *st, uint64 key, int64 count)
{
	uint64		mask = st->capacity - 1;
	uint64		h = summ_hash(key) & mask;

	for (;;)
	{
		SummEntry  *e = &st->slots[h];

		if (e->count == 0)
		{
			e->key = key;
			e->count = count;
			st->ndistinct++;
			if (st->ndistinct * 2 > st->capacity)
				summ_grow(st);
			return;
		}
		if (e->key == key)
		{
			if (pg_add_s64_overflow(e->count, count, &e->count))
				summ_count_overflow();
			return;
		}
		h = (h + 1) & mask;
	}
}

/* Add a finite value (count times) to the distinct-value table. */
static inline void
summ_add_value(SummState *st, float8 v, int64 count)
{
	if (st->mode == SUMM_SKETCH)
		v = summ_bucket(v);
	summ_add_key(st, summ_bits(v), count);
	if (st->mode == SUMM_EXACT && st->ndistinct > st->limit)
		summ_to_sketch(st);
}

/* One input value. */
static inline void
summ_accum(SummState *st, float8 x)
{
	float8		tmp;

	if (isnan(x))
	{
		st->nnan++;
		return;
	}
	if (isinf(x))
	{
		if (x > 0)
			st->nposinf++;
		else
			st->nneginf++;
		return;
	}

	/* -0 counts as 0 (one value, one min and max whatever the row order) */
	if (x == 0.0)
		x = 0.0;

	st->n++;
	if (st->mode == SUMM_EXACT)
	{
		/*
		 * Sums and extremes come from the values when needed. A value seen
		 * before in its home slot is the common case: one compare and an
		 * increment (a count cannot overflow where n does not).
		 */
		uint64		key = summ_bits(x);
		SummEntry  *e = &st->slots[summ_hash(key) & (st->capacity - 1)];

		if (likely(e->key == key && e->count != 0))
			e->count++;
		else
			summ_add_value(st, x, 1);
		return;
	}

	/* Youngs-Cramer, as float8_accum does it, overflow an error as there */
	st->sx += x;
	if (st->n > 1)
	{
		tmp = x * st->n - st->sx;
		st->sxx += tmp * tmp / (st->n * (st->n - 1.0));
	}
	if (isinf(st->sx) || isinf(st->sxx))
		float_overflow_error();
	if (x < st->min)
		st->min = x;
	if (x > st->max)
		st->max = x;
	summ_add_value(st, x, 1);
}

/*
 * Merge b into a (the combine step). Two exact states merge their values
 * alone: the sums come from the union. Otherwise a sketch is involved, and
 * the sums are combined with the formula of float8_combine (an exact side's
 * computed from its values first).
 */
static void
summ_merge(SummState *a, const SummState *b)
{
	bool		both_exact = (a->mode == SUMM_EXACT && b->mode == SUMM_EXACT);
	float8		bsx = b->sx,
				bsxx = b->sxx,
				bmin = b->min,
				bmax = b->max;
	int64		i;

	if (!both_exact)
	{
		if (b->mode == SUMM_EXACT)
			summ_moments(b->slots, b->capacity, b->n, &bsx, &bsxx, &bmin, &bmax);
		if (a->mode == SUMM_EXACT)
			summ_to_sketch(a);	/* computes a's sums, before n changes */
		if (b->n > 0)
		{
			if (a->n == 0)
			{
				a->sx = bsx;
				a->sxx = bsxx;
			}
			else
			{
				float8		n1 = a->n,
							n2 = b->n,
							tmp = a->sx / n1 - bsx / n2;

				a->sxx = a->sxx + bsxx + n1 * n2 * tmp * tmp / (n1 + n2);
				a->sx = a->sx + bsx;
				if (isinf(a->sx) || isinf(a->sxx))
					float_overflow_error();
			}
			if (bmin < a->min)
				a->min = bmin;
			if (bmax > a->max)
				a->max = bmax;
		}
	}
	if (pg_add_s64_overflow(a->n, b->n, &a->n) ||
		pg_add_s64_overflow(a->nmiss, b->nmiss, &a->nmiss) ||
		pg_add_s64_overflow(a->nnan, b->nnan, &a->nnan) ||
		pg_add_s64_overflow(a->nposinf, b->nposinf, &a->nposinf) ||
		pg_add_s64_overflow(a->nneginf, b->nneginf, &a->nneginf) ||
		a->n > SUMM_MAX_N)
		summ_count_overflow();

	for (i = 0; i < b->capacity; i++)
	{
		if (b->slots[i].count == 0)
			continue;
		if (b->mode == SUMM_EXACT && a->mode == SUMM_SKETCH)
			summ_add_key(a, summ_bits(summ_bucket(summ_value(b->slots[i].key))), b->slots[i].count);
		else
			summ_add_key(a, b->slots[i].key, b->slots[i].count);
	}

	/*
	 * Exact states switch once the union is in: a switch half-way would
	 * compute sums from part of the values. The union may hold up to twice
	 * the limit's values for that moment (twice the table for a limit that
	 * is not a power of two).
	 */
	if (a->mode == SUMM_EXACT && a->ndistinct > a->limit)
		summ_to_sketch(a);
}

static int
summ_cmp_entry(const void *a, const void *b)
{
	float8		x = summ_value(((const SummEntry *) a)->key);
	float8		y = summ_value(((const SummEntry *) b)->key);

	return x < y ? -1 : (x > y ? 1 : 0);
}

/* Flatten a state into the sorted clinical.summary form. */
static SummaryData *
summ_serialize(const SummState *st)
{
	Size		size = SUMM_HDRSZ + SUMM_ENTRYSZ * st->ndistinct;
	SummaryData *s = palloc0(size);
	SummEntry  *tmp = palloc(sizeof(SummEntry) * Max(st->ndistinct, 1));
	int64		i,
				k = 0;

	SET_VARSIZE(s, size);
	s->version = SUMM_VERSION;
	s->mode = st->mode;
	s->method = st->method;
	s->n = st->n;
	s->nmiss = st->nmiss;
	s->nnan = st->nnan;
	s->nposinf = st->nposinf;
	s->nneginf = st->nneginf;
	s->sx = st->sx;
	s->sxx = st->sxx;
	s->min = st->min;
	s->max = st->max;
	s->nentries = st->ndistinct;
	for (i = 0; i < st->capacity; i++)
		if (st->slots[i].count != 0)
			tmp[k++] = st->slots[i];
	qsort(tmp, k, sizeof(SummEntry), summ_cmp_entry);
	/* an exact state's sums, in value order: the same for every plan */
	if (st->mode == SUMM_EXACT)
		summ_moments(tmp, k, st->n, &s->sx, &s->sxx, &s->min, &s->max);
	if (st->n == 0)
		s->min = s->max = 0.0;
	for (i = 0; i < k; i++)
	{
		s->entries[i].value = summ_value(tmp[i].key);
		s->entries[i].count = tmp[i].count;
	}
	pfree(tmp);
	return s;
}

#define summ_corrupt(...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), \
			 errmsg("invalid clinical.summary value"), \
			 errdetail(__VA_ARGS__), \
			 errhint("A summary can only be made by clinical.summarize() or read back from its own output.")))

/*
 * Check every invariant of a summary, so that no accessor can read past its
 * end or compute from inconsistent counts.
 */
static void
summ_validate(const SummaryData *s, Size size)
{
	int64		i,
				total = 0;

	if (size < SUMM_HDRSZ)
		summ_corrupt("It is %zu bytes, shorter than its header.", size);
	if (s->version != SUMM_VERSION)
		summ_corrupt("Format version %d is not %d.", s->version, SUMM_VERSION);
	if (s->mode != SUMM_EXACT && s->mode != SUMM_SKETCH)
		summ_corrupt("Mode %d is unknown.", s->mode);
	if (s->method > SUMM_R2)
		summ_corrupt("Quantile method %d is unknown.", s->method);
	if (s->n < 0 || s->nmiss < 0 || s->nnan < 0 || s->nposinf < 0 || s->nneginf < 0 ||
		s->n > SUMM_MAX_N || s->nentries < 0 || s->nentries > s->n)
		summ_corrupt("A count is negative or out of range.");
	if ((Size) s->nentries > (MaxAllocHugeSize - SUMM_HDRSZ) / SUMM_ENTRYSZ ||
		size != SUMM_HDRSZ + SUMM_ENTRYSZ * (Size) s->nentries)
		summ_corrupt("Its length does not match its %lld entries.", (long long) s->nentries);
	if (s->n > 0 && (s->nentries == 0 || !isfinite(s->min) || !isfinite(s->max) ||
					 s->min > s->max || !isfinite(s->sx) || !isfinite(s->sxx) || s->sxx < 0))
		summ_corrupt("Its sums or extremes are not valid.");
	if (s->n == 0 && (s->sx != 0.0 || s->sxx != 0.0))
		summ_corrupt("It counts no values but its sums are not zero.");
	if (s->n > 0)
	{
		/*
		 * The mean lies within [min, max] and the sum of squared deviations
		 * is at most n (max - min)^2 / 4 (Popoviciu), give or take rounding.
		 */
		float8		n = (float8) s->n;
		float8		scale = Max(Max(fabs(s->min), fabs(s->max)), 1.0);
		float8		mean = s->sx / n;
		float8		spread = s->max - s->min;

		/*
		 * The rounding of a running sum grows with n (constant data rounds
		 * the same way every time): the tolerance is a few n ulp, at
		 * least 1e-9.
		 */
		float8		tol = Max(1e-9, 8.0 * n * DBL_EPSILON);

		if (mean < s->min - tol * scale || mean > s->max + tol * scale)
			summ_corrupt("Its mean lies outside its minimum and maximum.");
		if (s->sxx > n * (spread * spread / 4.0) * (1.0 + tol) + tol * n * scale * scale)
			summ_corrupt("Its sum of squared deviations is larger than its minimum and maximum allow.");
	}
	for (i = 0; i < s->nentries; i++)
	{
		float8		v = s->entries[i].value;

		if (!isfinite(v) || s->entries[i].count <= 0)
			summ_corrupt("Entry %lld is not a finite value with a positive count.", (long long) i + 1);
		if (i > 0 && !(v > s->entries[i - 1].value))
			summ_corrupt("Entries are not in strictly increasing order.");
		if (s->mode == SUMM_SKETCH && summ_bucket(v) != v)
			summ_corrupt("Entry %lld is not a bucket of the sketch.", (long long) i + 1);
		if (s->entries[i].count > s->n - total)
			summ_corrupt("Entry counts add up to more than n.");
		total += s->entries[i].count;
	}
	if (total != s->n)
		summ_corrupt("Entry counts add up to %lld, not n = %lld.", (long long) total, (long long) s->n);
	if (s->n > 0 && s->mode == SUMM_EXACT &&
		(s->entries[0].value != s->min || s->entries[s->nentries - 1].value != s->max))
		summ_corrupt("Its extremes do not match its values.");
}

/*
 * An exact summary's sum and sum of squared deviations are derived from
 * its values: text and binary input recompute them (after validation), so
 * that a summary typed by hand reports the mean and SD a rollup of it
 * does. The entries have the layout of SummEntry (float8 bits, count).
 */
StaticAssertDecl(sizeof(SummEntry) == SUMM_ENTRYSZ && offsetof(SummEntry, count) == sizeof(float8),
				 "summary entries and table slots share a layout");

static void
summ_input_sums(SummaryData *s)
{
	float8		min,
				max;

	if (s->mode == SUMM_EXACT && s->n > 0)
		summ_moments((const SummEntry *) s->entries, s->nentries, s->n,
					 &s->sx, &s->sxx, &min, &max);
}

/* Rebuild a state from a (validated) summary. */
static SummState *
summ_deserialize(const SummaryData *s, MemoryContext cxt)
{
	SummState  *st = summ_state_new(cxt);
	int64		i;

	st->mode = s->mode;
	st->method = s->method;
	st->n = s->n;
	st->nmiss = s->nmiss;
	st->nnan = s->nnan;
	st->nposinf = s->nposinf;
	st->nneginf = s->nneginf;
	st->sx = s->sx;
	st->sxx = s->sxx;
	if (s->n > 0)
	{
		st->min = s->min;
		st->max = s->max;
	}
	while (st->capacity < 2 * s->nentries + 2)
		st->capacity *= 2;
	pfree(st->slots);
	st->slots = MemoryContextAllocExtended(cxt, sizeof(SummEntry) * st->capacity,
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (i = 0; i < s->nentries; i++)
		summ_add_key(st, summ_bits(s->entries[i].value), s->entries[i].count);
	if (st->mode == SUMM_EXACT && st->ndistinct > st->limit)
		summ_to_sketch(st);
	return st;
}

static MemoryContext
summ_aggcontext(FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", name);
	return cxt;
}

static void
summ_method_mismatch(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("describe() takes one quantile method for all rows of a group"),
			 errhint("Pass the method as a constant.")));
}

PG_FUNCTION_INFO_V1(clinical_summ_accum);

/* clinical._summ_accum(internal, float8 [, text]) RETURNS internal */
Datum
clinical_summ_accum(PG_FUNCTION_ARGS)
{
	SummState  *st;

	/*
	 * The context is checked with the first row: a state (type internal)
	 * comes from nothing but an aggregate's earlier call.
	 */
	if (PG_ARGISNULL(0))
		st = summ_state_new(summ_aggcontext(fcinfo, "clinical._summ_accum"));
	else
		st = (SummState *) PG_GETARG_POINTER(0);

	/*
	 * describe(x, method): one method for the whole group, read with the
	 * first row; every later row must name the same (a compare of a few
	 * bytes).
	 */
	if (PG_NARGS() > 2)
	{
		text	   *mt;
		int			len;

		if (PG_ARGISNULL(2))
			summ_method_null();
		mt = PG_GETARG_TEXT_PP(2);
		len = VARSIZE_ANY_EXHDR(mt);
		if (!st->method_set)
		{
			st->method = summ_parse_method(mt);		/* known names are short */
			memcpy(st->method_text, VARDATA_ANY(mt), len);
			st->method_len = len;
			st->method_set = true;
		}
		else if (len != st->method_len ||
				 memcmp(VARDATA_ANY(mt), st->method_text, len) != 0)
			summ_method_mismatch();
	}

	if (PG_ARGISNULL(1))
		st->nmiss++;
	else
		summ_accum(st, PG_GETARG_FLOAT8(1));
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(clinical_summ_combine);

/* clinical._summ_combine(internal, internal) RETURNS internal */
Datum
clinical_summ_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = summ_aggcontext(fcinfo, "clinical._summ_combine");
	SummState  *a = PG_ARGISNULL(0) ? NULL : (SummState *) PG_GETARG_POINTER(0);
	SummState  *b = PG_ARGISNULL(1) ? NULL : (SummState *) PG_GETARG_POINTER(1);

	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();	/* a NULL pointer is not a NULL state */
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = summ_state_new(cxt);
		a->method = b->method;
	}
	else if (a->method != b->method)
		summ_method_mismatch();	/* partial states of one describe() group */
	summ_merge(a, b);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(clinical_summ_serialize);

/* clinical._summ_serialize(internal) RETURNS bytea */
Datum
clinical_summ_serialize(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(summ_serialize((SummState *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(clinical_summ_deserialize);

/* clinical._summ_deserialize(bytea, internal) RETURNS internal */
Datum
clinical_summ_deserialize(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));

	(void) summ_aggcontext(fcinfo, "clinical._summ_deserialize");
	summ_validate(s, VARSIZE(s));
	/* in the per-call context: the combine copies what it keeps */
	PG_RETURN_POINTER(summ_deserialize(s, CurrentMemoryContext));
}

PG_FUNCTION_INFO_V1(clinical_summ_final);

/* clinical._summ_final(internal) RETURNS clinical.summary */
Datum
clinical_summ_final(PG_FUNCTION_ARGS)
{
	SummState  *st;

	if (PG_ARGISNULL(0))
	{
		/* no rows at all: an empty summary, n = 0 */
		st = summ_state_new(CurrentMemoryContext);
		PG_RETURN_POINTER(summ_serialize(st));
	}
	st = (SummState *) PG_GETARG_POINTER(0);
	PG_RETURN_POINTER(summ_serialize(st));
}

PG_FUNCTION_INFO_V1(clinical_summ_rollup_accum);

/* clinical._summ_rollup_accum(internal, clinical.summary) RETURNS internal */
Datum
clinical_summ_rollup_accum(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = summ_aggcontext(fcinfo, "clinical._summ_rollup_accum");
	SummState  *st = PG_ARGISNULL(0) ? summ_state_new(cxt) : (SummState *) PG_GETARG_POINTER(0);
	SummaryData *s;
	SummState  *b;
	MemoryContext old;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	s = DatumGetSummaryP(PG_GETARG_DATUM(1));
	old = MemoryContextSwitchTo(cxt);
	b = summ_deserialize(s, CurrentMemoryContext);
	summ_merge(st, b);
	pfree(b->slots);
	pfree(b);
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(st);
}

/* ---- the type's I/O ---- */

PG_FUNCTION_INFO_V1(clinical_summary_out);

/*
 * clinical.summary_out(clinical.summary) RETURNS cstring
 * e.g. exact n=3 nmiss=1 nan=0 posinf=0 neginf=0 sx=6 sxx=2 min=1 max=3 {1:1,2:1,3:1}
 */
Datum
clinical_summary_out(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));
	StringInfoData buf;
	int64		i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s n=%lld nmiss=%lld nan=%lld posinf=%lld neginf=%lld sx=%.17g sxx=%.17g min=%.17g max=%.17g {",
					 s->mode == SUMM_EXACT ? "exact" : "sketch",
					 (long long) s->n, (long long) s->nmiss, (long long) s->nnan,
					 (long long) s->nposinf, (long long) s->nneginf,
					 s->sx, s->sxx, s->min, s->max);
	for (i = 0; i < s->nentries; i++)
		appendStringInfo(&buf, "%s%.17g:%lld", i ? "," : "",
						 s->entries[i].value, (long long) s->entries[i].count);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_CSTRING(buf.data);
}

static const char *
summ_expect(const char *p, const char *word, const char *input)
{
	size_t		len = strlen(word);

	while (*p == ' ')
		p++;
	if (strncmp(p, word, len) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
				 errdetail("Expected \"%s\".", word)));
	return p + len;
}

static int64
summ_read_int(const char **pp, const char *input)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(*pp, &end, 10);
	if (end == *pp || errno != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
				 errdetail("Expected an integer.")));
	*pp = end;
	return (int64) v;
}

static float8
summ_read_float(const char **pp, const char *input)
{
	char	   *end;
	float8		v;

	errno = 0;
	v = strtod(*pp, &end);
	if (end == *pp || (errno != 0 && errno != ERANGE))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
				 errdetail("Expected a number.")));
	*pp = end;
	return v;
}

PG_FUNCTION_INFO_V1(clinical_summary_in);

/* clinical.summary_in(cstring) RETURNS clinical.summary */
Datum
clinical_summary_in(PG_FUNCTION_ARGS)
{
	const char *input = PG_GETARG_CSTRING(0);
	const char *p = input;
	SummaryData hdr;
	SummaryData *s;
	StringInfoData entries;
	int64		n = 0;

	memset(&hdr, 0, sizeof(hdr));
	while (*p == ' ')
		p++;
	if (strncmp(p, "exact", 5) == 0)
	{
		hdr.mode = SUMM_EXACT;
		p += 5;
	}
	else if (strncmp(p, "sketch", 6) == 0)
	{
		hdr.mode = SUMM_SKETCH;
		p += 6;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
				 errdetail("A summary starts with \"exact\" or \"sketch\".")));
	p = summ_expect(p, "n=", input);
	hdr.n = summ_read_int(&p, input);
	p = summ_expect(p, "nmiss=", input);
	hdr.nmiss = summ_read_int(&p, input);
	p = summ_expect(p, "nan=", input);
	hdr.nnan = summ_read_int(&p, input);
	p = summ_expect(p, "posinf=", input);
	hdr.nposinf = summ_read_int(&p, input);
	p = summ_expect(p, "neginf=", input);
	hdr.nneginf = summ_read_int(&p, input);
	p = summ_expect(p, "sx=", input);
	hdr.sx = summ_read_float(&p, input);
	p = summ_expect(p, "sxx=", input);
	hdr.sxx = summ_read_float(&p, input);
	p = summ_expect(p, "min=", input);
	hdr.min = summ_read_float(&p, input);
	p = summ_expect(p, "max=", input);
	hdr.max = summ_read_float(&p, input);
	p = summ_expect(p, "{", input);

	initStringInfo(&entries);
	while (*p != '}')
	{
		float8		v;
		int64		c;

		if (n > 0)
			p = summ_expect(p, ",", input);
		v = summ_read_float(&p, input);
		p = summ_expect(p, ":", input);
		c = summ_read_int(&p, input);
		appendBinaryStringInfo(&entries, (char *) &v, sizeof(v));
		appendBinaryStringInfo(&entries, (char *) &c, sizeof(c));
		n++;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
					 errdetail("The list of values is not closed by \"}\".")));
	}
	p++;
	while (*p == ' ')
		p++;
	if (*p != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type clinical.summary: \"%s\"", input),
				 errdetail("Unexpected text after \"}\".")));

	s = palloc0(SUMM_HDRSZ + entries.len);
	memcpy(s, &hdr, SUMM_HDRSZ);
	SET_VARSIZE(s, SUMM_HDRSZ + entries.len);
	s->version = SUMM_VERSION;
	s->nentries = n;
	memcpy(s->entries, entries.data, entries.len);
	summ_validate(s, VARSIZE(s));
	summ_input_sums(s);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(clinical_summary_send);

/* clinical.summary_send(clinical.summary) RETURNS bytea */
Datum
clinical_summary_send(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));
	StringInfoData buf;
	int64		i;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, s->version);
	pq_sendbyte(&buf, s->mode);
	pq_sendint64(&buf, s->n);
	pq_sendint64(&buf, s->nmiss);
	pq_sendint64(&buf, s->nnan);
	pq_sendint64(&buf, s->nposinf);
	pq_sendint64(&buf, s->nneginf);
	pq_sendfloat8(&buf, s->sx);
	pq_sendfloat8(&buf, s->sxx);
	pq_sendfloat8(&buf, s->min);
	pq_sendfloat8(&buf, s->max);
	pq_sendint64(&buf, s->nentries);
	for (i = 0; i < s->nentries; i++)
	{
		pq_sendfloat8(&buf, s->entries[i].value);
		pq_sendint64(&buf, s->entries[i].count);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(clinical_summary_recv);

/* clinical.summary_recv(internal) RETURNS clinical.summary */
Datum
clinical_summary_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	SummaryData hdr;
	SummaryData *s;
	int64		i;
	int			remaining;

	memset(&hdr, 0, sizeof(hdr));
	if (buf->len - buf->cursor < 2 + 8 * 10)
		summ_corrupt("The binary value is %d bytes, shorter than a summary header.",
					 buf->len - buf->cursor);
	hdr.version = pq_getmsgbyte(buf);
	hdr.mode = pq_getmsgbyte(buf);
	hdr.n = pq_getmsgint64(buf);
	hdr.nmiss = pq_getmsgint64(buf);
	hdr.nnan = pq_getmsgint64(buf);
	hdr.nposinf = pq_getmsgint64(buf);
	hdr.nneginf = pq_getmsgint64(buf);
	hdr.sx = pq_getmsgfloat8(buf);
	hdr.sxx = pq_getmsgfloat8(buf);
	hdr.min = pq_getmsgfloat8(buf);
	hdr.max = pq_getmsgfloat8(buf);
	hdr.nentries = pq_getmsgint64(buf);
	remaining = buf->len - buf->cursor;
	if (hdr.nentries < 0 || hdr.nentries > remaining / 16 || remaining != hdr.nentries * 16)
		summ_corrupt("The binary value holds %d bytes for %lld entries.", remaining,
					 (long long) hdr.nentries);

	s = palloc0(SUMM_HDRSZ + SUMM_ENTRYSZ * hdr.nentries);
	memcpy(s, &hdr, SUMM_HDRSZ);
	SET_VARSIZE(s, SUMM_HDRSZ + SUMM_ENTRYSZ * hdr.nentries);
	for (i = 0; i < hdr.nentries; i++)
	{
		s->entries[i].value = pq_getmsgfloat8(buf);
		s->entries[i].count = pq_getmsgint64(buf);
	}
	summ_validate(s, VARSIZE(s));
	summ_input_sums(s);
	PG_RETURN_POINTER(s);
}

/* ---- accessors ---- */

PG_FUNCTION_INFO_V1(clinical_summary_n);
/* clinical.n(clinical.summary) RETURNS bigint: finite values */
Datum
clinical_summary_n(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(DatumGetSummaryP(PG_GETARG_DATUM(0))->n);
}

PG_FUNCTION_INFO_V1(clinical_summary_nmiss);
/* clinical.nmiss(clinical.summary) RETURNS bigint: NULLs */
Datum
clinical_summary_nmiss(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(DatumGetSummaryP(PG_GETARG_DATUM(0))->nmiss);
}

PG_FUNCTION_INFO_V1(clinical_summary_nonfinite);
/* clinical.nonfinite(clinical.summary, OUT nan bigint, OUT posinf bigint, OUT neginf bigint) */
Datum
clinical_summary_nonfinite(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(s->nnan);
	values[1] = Int64GetDatum(s->nposinf);
	values[2] = Int64GetDatum(s->nneginf);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

PG_FUNCTION_INFO_V1(clinical_summary_mean);
/* clinical.mean(clinical.summary) RETURNS float8, as avg() */
Datum
clinical_summary_mean(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));

	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->sx / s->n);
}

PG_FUNCTION_INFO_V1(clinical_summary_sd);
/* clinical.sd(clinical.summary) RETURNS float8, as stddev_samp() */
Datum
clinical_summary_sd(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));

	if (s->n <= 1)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(sqrt(s->sxx / (s->n - 1.0)));
}

PG_FUNCTION_INFO_V1(clinical_summary_min);
/* clinical.min(clinical.summary) RETURNS float8 */
Datum
clinical_summary_min(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));

	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->min);
}

PG_FUNCTION_INFO_V1(clinical_summary_max);
/* clinical.max(clinical.summary) RETURNS float8 */
Datum
clinical_summary_max(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));

	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->max);
}

PG_FUNCTION_INFO_V1(clinical_summary_is_exact);
/* clinical.is_exact(clinical.summary) RETURNS boolean */
Datum
clinical_summary_is_exact(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(DatumGetSummaryP(PG_GETARG_DATUM(0))->mode == SUMM_EXACT);
}


static void
summ_method_null(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
			 errmsg("quantile method must not be null"),
			 errhint("Use one of r7, r6, r2, sas5, or leave the argument out for r7.")));
}

static SummMethod
summ_parse_method(text *t)
{
	char	   *m = text_to_cstring(t);

	if (strcmp(m, "r7") == 0)
		return SUMM_R7;
	if (strcmp(m, "r6") == 0)
		return SUMM_R6;
	if (strcmp(m, "r2") == 0 || strcmp(m, "sas5") == 0)
		return SUMM_R2;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown quantile method \"%s\"", m),
			 errhint("Use r7 (as percentile_cont), r6, r2 or sas5 (SAS PCTLDEF=5, the same as r2).")));
	return SUMM_R7;				/* keep compiler quiet */
}

/*
 * The k-th smallest value (1-based), walking the sorted entries from a
 * cursor (*pos, *below): forward for increasing k, from the start for a k
 * behind it (the lower neighbour of an interpolation just made).
 */
static float8
summ_order_stat(const SummaryData *s, int64 k, int64 *pos, int64 *below)
{
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	if (k <= *below)
		*pos = *below = 0;		/* behind the cursor: walk again from the start */
	while (*below + s->entries[*pos].count < k)
	{
		*below += s->entries[*pos].count;
		(*pos)++;
	}
	return s->entries[*pos].value;
}

static void
summ_check_q(float8 q)
{
	if (isnan(q) || q < 0.0 || q > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("quantile %g is not between 0 and 1", q),
				 errhint("Pass a probability, e.g. 0.5 for the median.")));
}

/*
 * Quantile q of a non-empty summary. Cursor arguments let a sorted array of
 * q values share one pass over the entries (callers reset them per q when
 * the q values are not increasing).
 */
static float8 summ_quantile_raw(const SummaryData *s, float8 q, SummMethod method,
								int64 *pos, int64 *below);

/* A quantile, kept within the exact min and max (sketch buckets may lie outside). */
static float8
summ_quantile(const SummaryData *s, float8 q, SummMethod method, int64 *pos, int64 *below)
{
	float8		v = summ_quantile_raw(s, q, method, pos, below);

	return v < s->min ? s->min : (v > s->max ? s->max : v);
}

static float8
summ_quantile_raw(const SummaryData *s, float8 q, SummMethod method, int64 *pos, int64 *below)
{
	float8		n = (float8) s->n;
	float8		h,
				lo,
				hi;
	int64		j;

	switch (method)
	{
		case SUMM_R7:
			h = (n - 1.0) * q + 1.0;
			j = (int64) floor(h);
			lo = summ_order_stat(s, j, pos, below);
			if (h == (float8) j)
				return lo;
			hi = summ_order_stat(s, j + 1, pos, below);
			return lo + (h - j) * (hi - lo);
		case SUMM_R6:
			h = (n + 1.0) * q;
			if (h <= 1.0)
				return summ_order_stat(s, 1, pos, below);
			if (h >= n)
				return summ_order_stat(s, s->n, pos, below);
			j = (int64) floor(h);
			lo = summ_order_stat(s, j, pos, below);
			if (h == (float8) j)
				return lo;
			hi = summ_order_stat(s, j + 1, pos, below);
			return lo + (h - j) * (hi - lo);
		case SUMM_R2:
			{
				/* np = j + g: g > 0 gives x(j+1), g = 0 the mean of x(j), x(j+1) */
				float8		np = n * q;
				float8		r = rint(np);

				/*
				 * Whole up to the rounding of n * q itself (q = 0.3 is not
				 * exactly 0.3): a few units in the last place, not a
				 * tolerance that grows with n and would take n q =
				 * 99999.99999 for a whole number.
				 */
				if (fabs(np - r) <= 4.0 * DBL_EPSILON * Max(1.0, np))
				{
					j = (int64) r;
					if (j <= 0)
						return summ_order_stat(s, 1, pos, below);
					if (j >= s->n)
						return summ_order_stat(s, s->n, pos, below);
					lo = summ_order_stat(s, j, pos, below);
					hi = summ_order_stat(s, j + 1, pos, below);
					return (lo + hi) / 2.0;
				}
				return summ_order_stat(s, (int64) floor(np) + 1, pos, below);
			}
	}
	return 0.0;					/* keep compiler quiet */
}

PG_FUNCTION_INFO_V1(clinical_summary_quantile);

/* clinical.quantile(clinical.summary, q float8, method text DEFAULT 'r7') RETURNS float8 */
Datum
clinical_summary_quantile(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));
	float8		q = PG_GETARG_FLOAT8(1);
	SummMethod	method = summ_parse_method(PG_GETARG_TEXT_PP(2));
	int64		pos = 0,
				below = 0;

	summ_check_q(q);
	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(summ_quantile(s, q, method, &pos, &below));
}

PG_FUNCTION_INFO_V1(clinical_summary_quantiles);

/* clinical.quantiles(clinical.summary, q float8[], method text DEFAULT 'r7') RETURNS float8[] */
Datum
clinical_summary_quantiles(PG_FUNCTION_ARGS)
{
	SummaryData *s = DatumGetSummaryP(PG_GETARG_DATUM(0));
	ArrayType  *qa = PG_GETARG_ARRAYTYPE_P(1);
	SummMethod	method = summ_parse_method(PG_GETARG_TEXT_PP(2));
	Datum	   *qs;
	bool	   *qnulls;
	int			nq,
				i;
	Datum	   *out;
	bool	   *outnulls;
	int64		pos = 0,
				below = 0;
	float8		prev = -1.0;
	int			dims[1];
	int			lbs[1] = {1};

	if (ARR_NDIM(qa) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("quantiles must be a one-dimensional array")));
	deconstruct_array(qa, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &qs, &qnulls, &nq);
	out = palloc(sizeof(Datum) * Max(nq, 1));
	outnulls = palloc(sizeof(bool) * Max(nq, 1));
	for (i = 0; i < nq; i++)
	{
		float8		q;

		if (qnulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("quantiles must not contain NULL")));
		q = DatumGetFloat8(qs[i]);
		summ_check_q(q);
		outnulls[i] = (s->n == 0);
		if (s->n == 0)
			continue;
		if (q < prev)
			pos = below = 0;
		prev = q;
		out[i] = Float8GetDatum(summ_quantile(s, q, method, &pos, &below));
	}
	dims[0] = nq;
	if (nq == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT8OID));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(out, outnulls, 1, dims, lbs, FLOAT8OID, 8,
											 FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * describe(x, method) over no rows: the transition function, which checks
 * the method, never ran. A constant method (the usual case) is checked
 * here, so that bad input fails alike whether or not rows came; one that
 * is computed (a column, a parameter) cannot be known without a row. Nor
 * can a constant in a window (no Aggref) or in a parallel plan's final
 * step (its Aggref has only the partial results as argument).
 */
static void
summ_check_const_method(FunctionCallInfo fcinfo)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	TargetEntry *te;
	Const	   *c;

	if (aggref == NULL || list_length(aggref->args) < 2)
		return;
	te = lsecond_node(TargetEntry, aggref->args);
	if (te->resjunk || !IsA(te->expr, Const) || exprType((Node *) te->expr) != TEXTOID)
		return;
	c = (Const *) te->expr;
	if (c->constisnull)
		summ_method_null();
	(void) summ_parse_method(DatumGetTextPP(c->constvalue));
}

PG_FUNCTION_INFO_V1(clinical_describe_final);

/*
 * clinical._describe_final(internal) RETURNS clinical.descriptive
 * (n, nmiss, mean, sd, min, q1, median, q3, max)
 */
Datum
clinical_describe_final(PG_FUNCTION_ARGS)
{
	SummaryData *s;
	SummMethod	method = SUMM_R7;
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9];
	int64		pos = 0,
				below = 0;
	int			i;

	if (PG_ARGISNULL(0))
	{
		if (PG_NARGS() > 1)
			summ_check_const_method(fcinfo);
		s = summ_serialize(summ_state_new(CurrentMemoryContext));
	}
	else
	{
		s = summ_serialize((SummState *) PG_GETARG_POINTER(0));
		method = (SummMethod) s->method;
	}

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(s->n);
	values[1] = Int64GetDatum(s->nmiss);
	if (s->n == 0)
	{
		for (i = 2; i < 9; i++)
			nulls[i] = true;
	}
	else
	{
		values[2] = Float8GetDatum(s->sx / s->n);
		if (s->n > 1)
			values[3] = Float8GetDatum(sqrt(s->sxx / (s->n - 1.0)));
		else
			nulls[3] = true;
		values[4] = Float8GetDatum(s->min);
		values[5] = Float8GetDatum(summ_quantile(s, 0.25, method, &pos, &below));
		values[6] = Float8GetDatum(summ_quantile(s, 0.5, method, &pos, &below));
		values[7] = Float8GetDatum(summ_quantile(s, 0.75, method, &pos, &below));
		values[8] = Float8GetDatum(s->max);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
