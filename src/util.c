/*-------------------------------------------------------------------------
 *
 * src/util.c
 *	  Helpers shared by the parts of the clinical extension: checks every C
 *	  trigger makes about how it was fired, a test for whether the
 *	  extension is installed in the current database, and a per-trigger
 *	  metadata cache that survives across statements and is invalidated by
 *	  relcache callbacks, so triggers never look up catalogs per row; and a
 *	  row writer that inserts into a table without the executor or SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "tcop/deparse_utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/catcache.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "clinical.h"

struct ClinicalTrigCache
{
	HTAB	   *hash;
	struct ClinicalTrigCache *next;
};

static ClinicalTrigCache *util_caches = NULL;
static bool util_callback_registered = false;

/*
 * True when the extension is installed in the database we are connected to.
 * The background worker uses it to stay idle after DROP EXTENSION.
 */
bool
clinical_extension_exists(void)
{
	return OidIsValid(get_extension_oid("clinical", true));
}

/*
 * Refuse to run a trigger function outside the kind of trigger it was
 * written for. events is a mask of CLINICAL_ON_INSERT/UPDATE/DELETE.
 */
void
clinical_check_row_trigger(FunctionCallInfo fcinfo, const char *funcname,
						   bool before, int events)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	int			op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be called as a trigger", funcname),
				 errhint("Attach it with CREATE TRIGGER ... EXECUTE FUNCTION %s().", funcname)));

	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		(before && !TRIGGER_FIRED_BEFORE(trigdata->tg_event)) ||
		(!before && !TRIGGER_FIRED_AFTER(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s must be fired %s ... FOR EACH ROW", funcname,
						before ? "BEFORE" : "AFTER"),
				 errhint("Recreate trigger \"%s\" as a %s row-level trigger.",
						 trigdata->tg_trigger->tgname, before ? "BEFORE" : "AFTER")));

	op = trigdata->tg_event & TRIGGER_EVENT_OPMASK;
	if ((op == TRIGGER_EVENT_INSERT && !(events & CLINICAL_ON_INSERT)) ||
		(op == TRIGGER_EVENT_UPDATE && !(events & CLINICAL_ON_UPDATE)) ||
		(op == TRIGGER_EVENT_DELETE && !(events & CLINICAL_ON_DELETE)) ||
		op == TRIGGER_EVENT_TRUNCATE)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function %s was fired for an operation it does not handle",
						funcname),
				 errhint("Check the event list of trigger \"%s\".",
						 trigdata->tg_trigger->tgname)));
}

/*
 * Relcache invalidation: mark every cached entry of the relation (or of all
 * relations, for relid = InvalidOid) stale. Entries are refilled lazily.
 */
static void
util_relcache_callback(Datum arg, Oid relid)
{
	ClinicalTrigCache *cache;

	for (cache = util_caches; cache != NULL; cache = cache->next)
	{
		HASH_SEQ_STATUS status;
		ClinicalTrigCacheEntry *entry;

		hash_seq_init(&status, cache->hash);
		while ((entry = hash_seq_search(&status)) != NULL)
		{
			if (relid == InvalidOid || entry->relid == relid)
				entry->valid = false;
		}
	}
}

/*
 * Create a trigger metadata cache whose entries are entrysize bytes and
 * start with a ClinicalTrigCacheEntry. Call once per backend and part.
 */
ClinicalTrigCache *
clinical_trigcache_create(const char *name, Size entrysize)
{
	ClinicalTrigCache *cache;
	HASHCTL		ctl;

	Assert(entrysize >= sizeof(ClinicalTrigCacheEntry));

	if (!CacheMemoryContext)
		CreateCacheMemoryContext();

	cache = MemoryContextAllocZero(CacheMemoryContext, sizeof(ClinicalTrigCache));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = entrysize;
	ctl.hcxt = CacheMemoryContext;
	cache->hash = hash_create(name, 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	cache->next = util_caches;
	util_caches = cache;
	if (!util_callback_registered)
	{
		CacheRegisterRelcacheCallback(util_relcache_callback, (Datum) 0);
		util_callback_registered = true;
	}
	return cache;
}

/*
 * Find the entry of a trigger. *valid says whether its contents can be used;
 * when false, the entry's memory context has been emptied and the caller
 * fills the entry (allocating in entry->cxt) and then sets entry->valid.
 */
ClinicalTrigCacheEntry *
clinical_trigcache_lookup(ClinicalTrigCache *cache, Oid tgoid, Oid relid,
						  bool *valid)
{
	ClinicalTrigCacheEntry *entry;
	bool		found;

	entry = hash_search(cache->hash, &tgoid, HASH_ENTER, &found);
	if (!found)
	{
		/* usable even if creating the context fails (out of memory) */
		entry->cxt = NULL;
		entry->valid = false;
	}
	if (entry->cxt == NULL)
		entry->cxt = AllocSetContextCreate(CacheMemoryContext,
										   "clinical trigger cache entry",
										   ALLOCSET_SMALL_SIZES);
	if (found && entry->valid && entry->relid == relid)
	{
		*valid = true;
		return entry;
	}
	MemoryContextReset(entry->cxt);
	entry->relid = relid;
	entry->valid = false;
	*valid = false;
	return entry;
}

/*
 * A writer of rows straight into one table: heap insert plus index
 * inserts, with no executor start-up, partition routing, SPI, privilege
 * check, INSERT trigger or CHECK constraint. For the extension's own tables
 * (the audit log's partitions, the invalidation queue), whose rows the C
 * code builds itself. Memory comes from the current context, relation
 * references from the current resource owner.
 */
ClinicalRowWriter *
clinical_rowwriter_open(Oid relid)
{
	ClinicalRowWriter *w = palloc0(sizeof(ClinicalRowWriter));
	TupleDesc	desc;

	w->rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(w->rel);
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->slot = MakeSingleTupleTableSlot(desc, &TTSOpsHeapTuple);
	w->natts = desc->natts;
	w->values = palloc0(sizeof(Datum) * desc->natts);
	w->nulls = palloc(sizeof(bool) * desc->natts);
	return w;
}

/* The 0-based attribute index of a column of the given type; errors if none. */
int
clinical_attno(Relation rel, const char *name, Oid type)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && att->atttypid == type &&
			strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	elog(ERROR, "relation \"%s\" has no column \"%s\" of type %s",
		 RelationGetRelationName(rel), name, format_type_be(type));
	return -1;					/* keep compiler quiet */
}

int
clinical_rowwriter_attno(ClinicalRowWriter *w, const char *name, Oid type)
{
	return clinical_attno(w->rel, name, type);
}

/* Set every column to NULL before filling a row. */
void
clinical_rowwriter_clear(ClinicalRowWriter *w)
{
	memset(w->nulls, true, sizeof(bool) * w->natts);
}

/* Insert the row in w->values / w->nulls. */
void
clinical_rowwriter_insert(ClinicalRowWriter *w)
{
	HeapTuple	tup = heap_form_tuple(RelationGetDescr(w->rel), w->values, w->nulls);

	ExecStoreHeapTuple(tup, w->slot, false);
	table_tuple_insert(w->rel, w->slot, GetCurrentCommandId(true), 0, NULL);
	if (w->rri->ri_NumIndices > 0)
	{
#if PG_VERSION_NUM >= 160000
		ExecInsertIndexTuples(w->rri, w->slot, w->estate, false, false, NULL, NIL, false);
#elif PG_VERSION_NUM >= 140000
		ExecInsertIndexTuples(w->rri, w->slot, w->estate, false, false, NULL, NIL);
#else
		w->estate->es_result_relation_info = w->rri;
		ExecInsertIndexTuples(w->slot, w->estate, false, NULL, NIL);
#endif
		ResetPerTupleExprContext(w->estate);
	}
	ExecClearTuple(w->slot);
	heap_freetuple(tup);
}

/* Close the writer (under the resource owner that opened it). */
void
clinical_rowwriter_close(ClinicalRowWriter *w)
{
	ExecCloseIndices(w->rri);
	ExecDropSingleTupleTableSlot(w->slot);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	pfree(w->values);
	pfree(w->nulls);
	pfree(w);
}

/*
 * The table named by the first ATTACH PARTITION (detach false) or DETACH
 * PARTITION (detach true) subcommand of a collected ALTER TABLE, as the
 * command named it; NULL when there is none.
 */
static RangeVar *
ddl_partition_subcmd_name(CollectedCommand *cmd, bool detach)
{
	ListCell   *lc;

	if (cmd->type != SCT_AlterTable)
		return NULL;
	foreach(lc, cmd->d.alterTable.subcmds)
	{
		CollectedATSubcmd *sub = (CollectedATSubcmd *) lfirst(lc);
		AlterTableCmd *at = (AlterTableCmd *) sub->parsetree;
		bool		match;

		if (at == NULL || !IsA(at, AlterTableCmd) || at->def == NULL || !IsA(at->def, PartitionCmd))
			continue;
		if (detach)
			match = at->subtype == AT_DetachPartition
#if PG_VERSION_NUM >= 140000
				|| at->subtype == AT_DetachPartitionFinalize
#endif
				;
		else
			match = at->subtype == AT_AttachPartition;
		if (match)
			return ((PartitionCmd *) at->def)->name;
	}
	return NULL;
}

PG_FUNCTION_INFO_V1(clinical_ddl_added_partition);

/*
 * clinical._ddl_added_partition(pg_ddl_command) RETURNS regclass
 * For the ddl_command_end event triggers that give new partitions the
 * statement triggers PostgreSQL does not clone: the table a collected
 * CREATE TABLE ... PARTITION OF created, or the one an ALTER TABLE ...
 * ATTACH PARTITION attached; NULL for any other command. Other ALTER TABLE
 * commands (ENABLE ALWAYS TRIGGER among them, which pg_dump output runs
 * between re-creating a table's triggers and its partitions') must not
 * make triggers appear on their own.
 */
Datum
clinical_ddl_added_partition(PG_FUNCTION_ARGS)
{
	CollectedCommand *cmd = (CollectedCommand *) PG_GETARG_POINTER(0);
	RangeVar   *rv;
	List	   *children;
	ListCell   *lc;

	if (cmd->type == SCT_Simple && cmd->parsetree != NULL && IsA(cmd->parsetree, CreateStmt))
	{
		if (((CreateStmt *) cmd->parsetree)->partbound == NULL ||
			cmd->d.simple.address.classId != RelationRelationId)
			PG_RETURN_NULL();
		PG_RETURN_OID(cmd->d.simple.address.objectId);
	}
	rv = ddl_partition_subcmd_name(cmd, false);
	if (rv == NULL)
		PG_RETURN_NULL();

	/*
	 * The attached table, found among the table's partitions by the name
	 * the command gave: looking the name up would use the event trigger
	 * function's search_path, not the caller's.
	 */
	children = find_inheritance_children(cmd->d.alterTable.objectId, NoLock);
	foreach(lc, children)
	{
		Oid			child = lfirst_oid(lc);
		char	   *relname = get_rel_name(child);

		if (relname != NULL && strcmp(relname, rv->relname) == 0 &&
			(rv->schemaname == NULL ||
			 strcmp(get_namespace_name(get_rel_namespace(child)), rv->schemaname) == 0))
			PG_RETURN_OID(child);
	}
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(clinical_ddl_detached_name);

/*
 * clinical._ddl_detached_name(pg_ddl_command) RETURNS text[]
 * For the same event triggers: {schema, name} of the table a collected
 * ALTER TABLE ... DETACH PARTITION detached, as the command named it
 * (schema NULL when it gave none), so that the statement triggers its
 * parent's configuration gave it can go with the parent's row triggers,
 * which PostgreSQL drops; NULL for any other command. The name, because
 * PostgreSQL 15 records no object address for the subcommand.
 */
Datum
clinical_ddl_detached_name(PG_FUNCTION_ARGS)
{
	RangeVar   *rv = ddl_partition_subcmd_name((CollectedCommand *) PG_GETARG_POINTER(0), true);
	Datum		items[2];
	bool		nulls[2] = {false, false};
	int			dims[1] = {2};
	int			lbs[1] = {1};

	if (rv == NULL)
		PG_RETURN_NULL();
	nulls[0] = (rv->schemaname == NULL);
	items[0] = nulls[0] ? (Datum) 0 : CStringGetTextDatum(rv->schemaname);
	items[1] = CStringGetTextDatum(rv->relname);
	PG_RETURN_ARRAYTYPE_P(construct_md_array(items, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(clinical_trigger_args);

/*
 * clinical._trigger_args(tgargs bytea) RETURNS text[]
 * Splits pg_trigger.tgargs (NUL-terminated strings) into its arguments,
 * for the views that list the extension's triggers and their options.
 */
Datum
clinical_trigger_args(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(b);
	int			len = VARSIZE_ANY_EXHDR(b);
	Datum	   *items = palloc(sizeof(Datum) * (len + 1));
	int			n = 0;
	int			start = 0;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (p[i] == '\0')
		{
			items[n++] = PointerGetDatum(cstring_to_text_with_len(p + start, i - start));
			start = i + 1;
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}
