/*-------------------------------------------------------------------------
 *
 * src/util.c
 *	  Helpers shared by the parts of the clinical extension: checks every C
 *	  trigger makes about how it was fired, a test for whether the
 *	  extension is installed in the current database, and a per-trigger
 *	  metadata cache that survives across statements and is invalidated by
 *	  relcache callbacks, so triggers never look up catalogs per row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "utils/catcache.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
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
		entry->cxt = AllocSetContextCreate(CacheMemoryContext,
										   "clinical trigger cache entry",
										   ALLOCSET_SMALL_SIZES);
		entry->valid = false;
	}
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
