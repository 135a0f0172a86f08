/*-------------------------------------------------------------------------
 *
 * src/updated_at.c
 *	  clinical.set_updated_at(): a BEFORE INSERT OR UPDATE row trigger that
 *	  sets a timestamptz column (updated_at, or the name given as the
 *	  trigger's argument) to the transaction timestamp, as now() would.
 *	  The column's number is found once per trigger and relation and kept
 *	  in a cache that relcache invalidation clears, not looked up per row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "clinical.h"

typedef struct UpdatedAtEntry
{
	ClinicalTrigCacheEntry head;
	int			attnum;			/* column to set, 1-based */
} UpdatedAtEntry;

static ClinicalTrigCache *updat_cache = NULL;

/*
 * Find the column a trigger sets and check its type. Errors leave the
 * cache entry invalid, so the next row checks again.
 */
static int
updat_find_column(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	Trigger    *trigger = trigdata->tg_trigger;
	UpdatedAtEntry *entry;
	bool		valid;
	const char *colname;
	AttrNumber	attnum;
	Oid			atttype;

	if (updat_cache == NULL)
		updat_cache = clinical_trigcache_create("clinical set_updated_at cache",
												sizeof(UpdatedAtEntry));

	entry = (UpdatedAtEntry *) clinical_trigcache_lookup(updat_cache, trigger->tgoid,
														 RelationGetRelid(rel), &valid);
	if (valid)
		return entry->attnum;

	if (trigger->tgnargs > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("clinical.set_updated_at() takes at most one argument"),
				 errdetail("Trigger \"%s\" on \"%s\" passes %d arguments.",
						   trigger->tgname, RelationGetRelationName(rel), trigger->tgnargs),
				 errhint("Pass only the name of the timestamptz column to set.")));

	colname = trigger->tgnargs == 1 ? trigger->tgargs[0] : "updated_at";
	attnum = get_attnum(RelationGetRelid(rel), colname);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						colname, RelationGetRelationName(rel)),
				 errdetail("Trigger \"%s\" calls clinical.set_updated_at() for that column.",
						   trigger->tgname),
				 errhint("Add a timestamptz column \"%s\", or name the column to set as the trigger's argument: EXECUTE FUNCTION clinical.set_updated_at('column_name').",
						 colname)));

	if (TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
				 errmsg("column \"%s\" of relation \"%s\" is a generated column",
						colname, RelationGetRelationName(rel)),
				 errhint("A generated column is computed after BEFORE triggers, so the trigger's value would be lost; make it a plain timestamptz column.")));
	atttype = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
	if (atttype != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" is of type %s, not timestamptz",
						colname, RelationGetRelationName(rel), format_type_be(atttype)),
				 errhint("Change the column to timestamp with time zone, or name another column as the trigger's argument.")));

	entry->attnum = attnum;
	entry->head.valid = true;
	return attnum;
}

PG_FUNCTION_INFO_V1(clinical_set_updated_at);

/* clinical.set_updated_at() RETURNS trigger */
Datum
clinical_set_updated_at(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	int			attnum;
	Datum		value;
	bool		isnull = false;

	clinical_check_row_trigger(fcinfo, "clinical.set_updated_at",
							   true, CLINICAL_ON_INSERT | CLINICAL_ON_UPDATE);

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	attnum = updat_find_column(trigdata);
	value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	tuple = heap_modify_tuple_by_cols(tuple, RelationGetDescr(trigdata->tg_relation),
									  1, &attnum, &value, &isnull);
	return PointerGetDatum(tuple);
}
