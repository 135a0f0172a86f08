/*-------------------------------------------------------------------------
 *
 * src/visit.c
 *	  Visit logic for clinical measurements, as parallel-safe aggregates:
 *	  baseline() and locf(), the last non-missing value at or before a
 *	  reference time (first dose, or a visit's date), and range_counts(),
 *	  counts below, within and above per-row reference limits.
 *
 *	  "Missing" is NULL or NaN. Among values measured at the same time the
 *	  largest wins, so the result never depends on row order.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "clinical.h"

typedef struct VisitLast
{
	bool		found;
	TimestampTz at;
	float8		value;
} VisitLast;

/* Does (at, value) beat the current choice? Later wins; ties: larger value. */
static inline bool
visit_better(const VisitLast *st, TimestampTz at, float8 value)
{
	return !st->found || at > st->at || (at == st->at && value > st->value);
}

static MemoryContext
visit_aggcontext(FunctionCallInfo fcinfo)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "visit aggregate function called in non-aggregate context");
	return cxt;
}

PG_FUNCTION_INFO_V1(clinical_visit_last_accum);

/*
 * clinical._visit_last_accum(internal, value float8, measured_at timestamptz,
 *                            reference timestamptz) RETURNS internal
 * Shared by baseline() and locf().
 */
Datum
clinical_visit_last_accum(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = visit_aggcontext(fcinfo);
	VisitLast  *st = PG_ARGISNULL(0) ? MemoryContextAllocZero(cxt, sizeof(VisitLast))
		: (VisitLast *) PG_GETARG_POINTER(0);
	float8		value;
	TimestampTz at,
				ref;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_POINTER(st);
	value = PG_GETARG_FLOAT8(1);
	at = PG_GETARG_TIMESTAMPTZ(2);
	ref = PG_GETARG_TIMESTAMPTZ(3);
	if (isnan(value) || at > ref)
		PG_RETURN_POINTER(st);
	/* -0 and 0 tie as equal values: one of them, whatever the row order */
	if (value == 0.0)
		value = 0.0;
	if (visit_better(st, at, value))
	{
		st->found = true;
		st->at = at;
		st->value = value;
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(clinical_visit_last_combine);

/* clinical._visit_last_combine(internal, internal) RETURNS internal */
Datum
clinical_visit_last_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = visit_aggcontext(fcinfo);
	VisitLast  *a = PG_ARGISNULL(0) ? NULL : (VisitLast *) PG_GETARG_POINTER(0);
	VisitLast  *b = PG_ARGISNULL(1) ? NULL : (VisitLast *) PG_GETARG_POINTER(1);

	/* a state, even an empty one: a NULL pointer is not a NULL state */
	if (a == NULL)
		a = MemoryContextAllocZero(cxt, sizeof(VisitLast));
	if (b == NULL || !b->found)
		PG_RETURN_POINTER(a);
	if (visit_better(a, b->at, b->value))
		*a = *b;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(clinical_visit_last_serialize);

/* clinical._visit_last_serialize(internal) RETURNS bytea */
Datum
clinical_visit_last_serialize(PG_FUNCTION_ARGS)
{
	VisitLast  *st = (VisitLast *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, st->found ? 1 : 0);
	pq_sendint64(&buf, st->at);
	pq_sendfloat8(&buf, st->value);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(clinical_visit_last_deserialize);

/* clinical._visit_last_deserialize(bytea, internal) RETURNS internal */
Datum
clinical_visit_last_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	VisitLast  *st;
	StringInfoData buf;

	(void) visit_aggcontext(fcinfo);
	/* in the per-call context: the combine copies what it keeps */
	st = palloc0(sizeof(VisitLast));

	if (VARSIZE_ANY_EXHDR(b) != 17)
		elog(ERROR, "invalid serialized visit state of %d bytes", (int) VARSIZE_ANY_EXHDR(b));
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	st->found = pq_getmsgbyte(&buf) != 0;
	st->at = pq_getmsgint64(&buf);
	st->value = pq_getmsgfloat8(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(clinical_visit_last_final);

/* clinical._visit_last_final(internal) RETURNS float8 */
Datum
clinical_visit_last_final(PG_FUNCTION_ARGS)
{
	VisitLast  *st = PG_ARGISNULL(0) ? NULL : (VisitLast *) PG_GETARG_POINTER(0);

	if (st == NULL || !st->found)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(st->value);
}

PG_FUNCTION_INFO_V1(clinical_range_accum);

/*
 * clinical._range_accum(bigint[], value float8, low float8, high float8)
 *		RETURNS bigint[]
 * The state is {below, within, above, missing}; a NULL limit is open.
 */
Datum
clinical_range_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state;
	int64	   *c;
	float8		v;

	(void) visit_aggcontext(fcinfo);
	state = PG_GETARG_ARRAYTYPE_P(0);	/* initcond, copied into the agg context */
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] != 4 || ARR_HASNULL(state))
		elog(ERROR, "invalid range_counts state");
	c = (int64 *) ARR_DATA_PTR(state);

	/* a NaN limit is not "open" (that is NULL), and low > high is no range */
	if ((!PG_ARGISNULL(2) && isnan(PG_GETARG_FLOAT8(2))) ||
		(!PG_ARGISNULL(3) && isnan(PG_GETARG_FLOAT8(3))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reference range limits must not be NaN"),
				 errhint("Pass NULL for an open limit.")));
	if (!PG_ARGISNULL(2) && !PG_ARGISNULL(3) && PG_GETARG_FLOAT8(2) > PG_GETARG_FLOAT8(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reference range low limit %g is above its high limit %g",
						PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3)),
				 errhint("Check the reference range table: low must not exceed high.")));

	if (PG_ARGISNULL(1) || isnan(PG_GETARG_FLOAT8(1)))
		c[3]++;
	else
	{
		v = PG_GETARG_FLOAT8(1);
		if (!PG_ARGISNULL(2) && v < PG_GETARG_FLOAT8(2))
			c[0]++;
		else if (!PG_ARGISNULL(3) && v > PG_GETARG_FLOAT8(3))
			c[2]++;
		else
			c[1]++;
	}
	PG_RETURN_ARRAYTYPE_P(state);
}

PG_FUNCTION_INFO_V1(clinical_range_final);

/* clinical._range_final(bigint[]) RETURNS clinical.range_count */
Datum
clinical_range_final(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int64	   *c = (int64 *) ARR_DATA_PTR(state);
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (i = 0; i < 4; i++)
		values[i] = Int64GetDatum(c[i]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

PG_FUNCTION_INFO_V1(clinical_range_combine);

/* clinical._range_combine(bigint[], bigint[]) RETURNS bigint[] */
Datum
clinical_range_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P_COPY(0);
	ArrayType  *b = PG_GETARG_ARRAYTYPE_P(1);
	int64	   *ca = (int64 *) ARR_DATA_PTR(a);
	int64	   *cb = (int64 *) ARR_DATA_PTR(b);
	int			i;

	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != 4 || ARR_NDIM(b) != 1 || ARR_DIMS(b)[0] != 4)
		elog(ERROR, "invalid range_counts state");
	for (i = 0; i < 4; i++)
		ca[i] += cb[i];
	PG_RETURN_ARRAYTYPE_P(a);
}
