/*-------------------------------------------------------------------------
 *
 * src/invalidate.c
 *	  Cache invalidation, the writing side: key templates, the AFTER ROW
 *	  and TRUNCATE trigger that renders a changed row's cache keys,
 *	  clinical.invalidate(), and the per-transaction key set that is
 *	  written once to the logged queue table at pre-commit (or prepare),
 *	  so keys exist exactly when their transaction commits. After commit
 *	  the backend wakes the invalidation worker (inval_worker.c).
 *
 *	  Keys added inside a subtransaction that rolls back are dropped with
 *	  it. A transaction that collects more than INVAL_SPILL keys writes
 *	  them to the queue early (in its current subtransaction, so they roll
 *	  back with it), which bounds backend memory on huge UPDATEs.
 *
 *	  Ordinary roles have no rights on the queue; their rows are inserted
 *	  as the queue's owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "clinical.h"

#define INVAL_OP_KEY		0	/* UNLINK the key (and PUBLISH it) */
#define INVAL_OP_PATTERN	1	/* SCAN MATCH the pattern and UNLINK */
#define INVAL_SPILL			10000	/* unwritten keys that trigger an early write */
#define INVAL_KEEP			50000	/* written keys remembered for de-duplication */

/* ---- key templates ---- */

typedef struct InvalPart
{
	char	   *text;			/* literal text, or NULL for a column */
	int			attnum;
	FmgrInfo	out;			/* the column's output function */
} InvalPart;

typedef struct InvalTemplate
{
	char	   *channel;		/* NULL: no PUBLISH */
	char	   *pattern;		/* SCAN MATCH pattern for TRUNCATE */
	int			nparts;
	InvalPart  *parts;
} InvalTemplate;

static void
inval_template_error(const char *tmpl, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid key template \"%s\"", tmpl),
			 errdetail("%s", detail),
			 errhint("Name columns in braces, e.g. 'patient:{patient_id}'.")));
}

/* Append s to a glob pattern, escaping Redis' glob characters. */
static void
inval_glob_escape(StringInfo buf, const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		if (strchr("*?[]\\", s[i]))
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, s[i]);
	}
}

/*
 * Parse a template against a relation's columns, in cxt. Errors name the
 * template and the missing column.
 */
/*
 * Types whose text form does not depend on session settings, so every
 * session renders the same key for the same row (domains over them too).
 */
static bool
inval_key_type_ok(Oid typid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case NUMERICOID:
		case OIDOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case CHAROID:
		case UUIDOID:
		case BOOLOID:
			return true;
		default:
			return false;
	}
}

static InvalTemplate *
inval_parse_template(const char *tmpl, const char *channel, TupleDesc tupdesc,
					 const char *relname, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	InvalTemplate *t = palloc0(sizeof(InvalTemplate));
	StringInfoData pat;
	const char *p = tmpl;
	int			maxparts = 2 * strlen(tmpl) + 1;

	if (tmpl[0] == '\0')
		inval_template_error(tmpl, "The template is empty.");
	t->parts = palloc0(sizeof(InvalPart) * maxparts);
	t->channel = (channel && channel[0]) ? pstrdup(channel) : NULL;
	initStringInfo(&pat);

	while (*p)
	{
		const char *open = strchr(p, '{');
		const char *close = strchr(p, '}');
		InvalPart  *part;

		if (close && (!open || close < open))
			inval_template_error(tmpl, "A \"}\" has no matching \"{\".");
		if (open != p)
		{
			int			len = open ? (int) (open - p) : (int) strlen(p);

			part = &t->parts[t->nparts++];
			part->text = pnstrdup(p, len);
			inval_glob_escape(&pat, p, len);
			p += len;
			continue;
		}
		/* a column reference */
		close = strchr(open + 1, '}');
		if (close == NULL)
			inval_template_error(tmpl, "A \"{\" is not closed by \"}\".");
		if (memchr(open + 1, '{', close - open - 1))
			inval_template_error(tmpl, "Braces cannot be nested.");
		{
			char	   *col = pnstrdup(open + 1, close - open - 1);
			int			attnum = SPI_fnumber(tupdesc, col);
			Oid			typoutput;
			bool		isvarlena;

			if (col[0] == '\0')
				inval_template_error(tmpl, "\"{}\" names no column.");
			if (attnum <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist", col, relname),
						 errdetail("The key template \"%s\" names it.", tmpl),
						 errhint("Name columns of the table in braces.")));
			if (!inval_key_type_ok(TupleDescAttr(tupdesc, attnum - 1)->atttypid))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of relation \"%s\" is of type %s, which cannot go into a cache key",
								col, relname, format_type_be(TupleDescAttr(tupdesc, attnum - 1)->atttypid)),
						 errdetail("The text of a %s value depends on session settings (DateStyle, TimeZone, extra_float_digits and others), so sessions would render different keys for the same row.",
								   format_type_be(TupleDescAttr(tupdesc, attnum - 1)->atttypid)),
						 errhint("Use integer, numeric, text, varchar, char, uuid or boolean columns; add a generated text column for other values.")));
			part = &t->parts[t->nparts++];
			part->attnum = attnum;
			getTypeOutputInfo(TupleDescAttr(tupdesc, attnum - 1)->atttypid, &typoutput, &isvarlena);
			fmgr_info_cxt(typoutput, &part->out, cxt);
			appendStringInfoChar(&pat, '*');
		}
		p = close + 1;
	}
	t->pattern = pat.data;
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * Render a row's key; false when a column it names is NULL (no key).
 */
static bool
inval_render(const InvalTemplate *t, HeapTuple tuple, TupleDesc tupdesc, StringInfo buf)
{
	int			i;

	resetStringInfo(buf);
	for (i = 0; i < t->nparts; i++)
	{
		const InvalPart *part = &t->parts[i];
		bool		isnull;
		Datum		d;

		if (part->text)
		{
			appendStringInfoString(buf, part->text);
			continue;
		}
		d = heap_getattr(tuple, part->attnum, tupdesc, &isnull);
		if (isnull)
			return false;
		appendStringInfoString(buf, OutputFunctionCall((FmgrInfo *) &part->out, d));
	}
	return true;
}

/* ---- the per-transaction key set ---- */

typedef struct InvalItem
{
	struct InvalItem *next;		/* same hash */
	SubTransactionId subid;		/* subtransaction that added it (see below) */
	SubTransactionId written;	/* subtransaction that wrote it to the queue, or 0 */
	int32		hits;			/* times the key was added */
	int16		op;
	char	   *channel;
	char	   *key;
} InvalItem;

typedef struct InvalBucket
{
	uint64		hash;			/* key of the HTAB */
	InvalItem  *items;
} InvalBucket;

/*
 * The set lives from one transaction to the next: a commit empties it
 * (creating a hash table and two memory contexts for every transaction
 * cost more than the one or two keys most put in it). A set that grew past
 * INVAL_REUSE keys, and a set an abort leaves keys in, is destroyed
 * instead.
 */
#define INVAL_REUSE			256
static MemoryContext inval_set_cxt = NULL;	/* child of TopMemoryContext */
static MemoryContext inval_cxt = NULL;	/* the items, reset at transaction end */
static HTAB *inval_set = NULL;
static int	inval_nitems = 0;	/* keys in the set */
static int	inval_peak = 0;		/* most keys the set held this transaction */
static int	inval_nunwritten = 0;	/* of which not yet in the queue */

/*
 * Subtransaction ids grow within a transaction and subtransactions nest,
 * so the keys added (or written) since a subtransaction S began are
 * exactly those whose subid (written) is S or above. A subtransaction's
 * commit therefore changes nothing (its keys belong to its parent from
 * then on, as their ids say), and its rollback takes the keys at or above
 * S. Rewriting each key's ids at every savepoint end made a loop of
 * EXCEPTION blocks quadratic. The largest ids in use let a rollback of a
 * subtransaction that added and wrote nothing return at once.
 */
static SubTransactionId inval_max_subid = InvalidSubTransactionId;
static SubTransactionId inval_max_written = InvalidSubTransactionId;
static bool inval_wrote = false;	/* this transaction wrote queue rows */

/*
 * The queue blocks this transaction's rows went to, published to the
 * invalidator after commit (see inval_hint in clinical.h). A transaction
 * that wrote to more blocks than this asks for a whole scan.
 */
#define INVAL_MAX_HINTS		8
static BlockNumber inval_hints[INVAL_MAX_HINTS];
static int	inval_nhints = 0;
static bool inval_hint_all = false;
static bool inval_callbacks = false;

static uint64
inval_hash(int16 op, const char *channel, const char *key)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, strlen(key), op);

	if (channel)
		h ^= hash_bytes_extended((const unsigned char *) channel, strlen(channel), 0x9e37) * 31;
	return h;
}

static void inval_flush(void);

/*
 * clinical.invalidation_queue and its owner, looked
 * up at the first write of a session and kept until a relcache
 * invalidation of the queue (ALTER, DROP EXTENSION, ownership change) or of
 * every relation says they may have changed.
 */
static Oid	inval_queue_relid = InvalidOid;
static Oid	inval_queue_relowner = InvalidOid;
static bool inval_queue_callback = false;

static bool inval_queue_valid = false;
static uint64 inval_queue_invals = 0;	/* relcache invalidations seen */

/* the queue's column numbers (0-based), for the writer's direct insert */
static bool inval_queue_atts_valid = false;
static int	inval_att_op,
			inval_att_key,
			inval_att_channel,
			inval_att_at;

static void
inval_queue_relcache_callback(Datum arg, Oid relid)
{
	inval_queue_invals++;
	if (!OidIsValid(relid) || relid == inval_queue_relid)
		inval_queue_valid = inval_queue_atts_valid = false;
}

/*
 * Is the queue known to exist? True when the cached lookup still holds: no
 * relcache invalidation of the queue (as DROP EXTENSION sends, read at the
 * start of each transaction) came since. Spares the invalidator a catalog
 * scan for the extension in every round.
 */
bool
clinical_inval_queue_known(void)
{
	return inval_queue_valid;
}

/*
 * The queue's relid and owner. The queue is not readable or
 * writable by ordinary roles, so the rows of any writer are inserted as
 * its owner.
 */
void
clinical_inval_queue(Oid *relid, Oid *ownerp)
{
	/*
	 * Any relcache invalidation that arrives during the lookups (they may
	 * read the catalogs) makes the loop look again.
	 */
	while (!inval_queue_valid)
	{
		uint64		invals;
		Oid			nsp;
		Oid			rel;
		Oid			owner;
		HeapTuple	tup;

		if (!inval_queue_callback)
		{
			CacheRegisterRelcacheCallback(inval_queue_relcache_callback, (Datum) 0);
			inval_queue_callback = true;
		}
		invals = inval_queue_invals;
		nsp = get_namespace_oid("clinical", true);
		rel = OidIsValid(nsp) ? get_relname_relid("invalidation_queue", nsp) : InvalidOid;
		if (!OidIsValid(rel))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"clinical.invalidation_queue\" does not exist"),
					 errhint("Install the extension with CREATE EXTENSION clinical.")));
		tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", rel);
		owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
		if (invals != inval_queue_invals)
			continue;
		inval_queue_relowner = owner;
		inval_queue_relid = rel;
		inval_queue_valid = true;
	}
	*relid = inval_queue_relid;
	*ownerp = inval_queue_relowner;
}

/*
 * Bound the memory of a huge transaction: forget the written keys that were
 * seen once (a row's own key), keep the repeated ones (a site's key) so
 * they are not queued again. Only keys both added and written in the
 * current (sub)transaction or the ones it released: a rollback of it takes
 * the key and its queue row together, while a key from an outer level
 * whose row a rollback takes back must stay to be written again. Also
 * inside savepoints (JDBC autosave, psql ON_ERROR_ROLLBACK, PL/pgSQL
 * EXCEPTION blocks).
 */
static void
inval_trim(void)
{
	HASH_SEQ_STATUS status;
	InvalBucket *b;
	SubTransactionId cur = GetCurrentSubTransactionId();	/* and the ids above it */

	hash_seq_init(&status, inval_set);
	while ((b = hash_seq_search(&status)) != NULL)
	{
		InvalItem **link = &b->items;

		while (*link)
		{
			InvalItem  *it = *link;

			if (it->written >= cur && it->subid >= cur && it->hits < 2)
			{
				*link = it->next;
				if (it->channel)
					pfree(it->channel);
				pfree(it->key);
				pfree(it);
				inval_nitems--;
				continue;
			}
			link = &it->next;
		}
		if (b->items == NULL)
			hash_search(inval_set, &b->hash, HASH_REMOVE, NULL);
	}
}

/* Add a key (or pattern) to the transaction's set, once. */
static void
inval_add(int16 op, const char *channel, const char *key)
{
	uint64		h = inval_hash(op, channel, key);
	InvalBucket *b;
	InvalItem  *it;
	bool		found;

	if (inval_set_cxt == NULL)
	{
		/* both or neither: an error between the two leaves neither set */
		MemoryContext setcxt = AllocSetContextCreate(TopMemoryContext, "clinical invalidation keys",
													 ALLOCSET_SMALL_SIZES);

		inval_cxt = AllocSetContextCreate(setcxt, "clinical invalidation key texts",
										  ALLOCSET_SMALL_SIZES);
		inval_set_cxt = setcxt;
	}
	if (inval_set == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(InvalBucket);
		ctl.hcxt = inval_set_cxt;
		/* most transactions queue a key or two: start small, it grows */
		inval_set = hash_create("clinical invalidation keys", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		inval_nitems = 0;
		inval_nunwritten = 0;
	}

	b = hash_search(inval_set, &h, HASH_ENTER, &found);
	if (!found)
		b->items = NULL;
	for (it = b->items; it; it = it->next)
		if (it->op == op && strcmp(it->key, key) == 0 &&
			((it->channel == NULL && channel == NULL) ||
			 (it->channel && channel && strcmp(it->channel, channel) == 0)))
		{
			if (it->hits < PG_INT32_MAX)
				it->hits++;
			return;
		}

	it = MemoryContextAlloc(inval_cxt, sizeof(InvalItem));
	it->subid = GetCurrentSubTransactionId();
	it->written = InvalidSubTransactionId;
	if (it->subid > inval_max_subid)
		inval_max_subid = it->subid;
	it->hits = 1;
	it->op = op;
	it->channel = channel ? MemoryContextStrdup(inval_cxt, channel) : NULL;
	it->key = MemoryContextStrdup(inval_cxt, key);
	it->next = b->items;
	b->items = it;
	if (++inval_nitems > inval_peak)
		inval_peak = inval_nitems;
	if (++inval_nunwritten >= INVAL_SPILL)
		inval_flush();
}

static void
inval_forget(bool commit)
{
	if (inval_set != NULL)
	{
		long		left = hash_get_num_entries(inval_set);

		if (inval_peak > INVAL_REUSE || (!commit && left > 0))
		{
			hash_destroy(inval_set);
			inval_set = NULL;
		}
		else if (left > 0)
		{
			HASH_SEQ_STATUS status;
			InvalBucket *b;

			/* removing the entry just returned is allowed during a scan */
			hash_seq_init(&status, inval_set);
			while ((b = hash_seq_search(&status)) != NULL)
				hash_search(inval_set, &b->hash, HASH_REMOVE, NULL);
		}
		/* else empty: a transaction that added no key, or lost them all */
	}
	if (inval_cxt != NULL)
		MemoryContextReset(inval_cxt);
	inval_peak = 0;
	inval_nitems = 0;
	inval_nunwritten = 0;
	inval_max_subid = inval_max_written = InvalidSubTransactionId;
}

/* Remember that a row of this transaction went to block blk. */
static void
inval_note_block(BlockNumber blk)
{
	int			i;

	if (inval_hint_all)
		return;
	for (i = inval_nhints - 1; i >= 0; i--)
		if (inval_hints[i] == blk)
			return;
	if (inval_nhints == INVAL_MAX_HINTS)
		inval_hint_all = true;
	else
		inval_hints[inval_nhints++] = blk;
}

/*
 * After a commit that wrote queue rows: tell the invalidator where they
 * are and wake it. After the commit, so that a hint it takes is for rows
 * its next snapshot sees. Otherwise (wrote = false) only forget the blocks.
 * Only in the invalidator's database: another database's queue is not its
 * own (its block numbers would name other blocks), and nothing delivers
 * it. The database is read without the lock: a worker that starts after
 * the read reads the whole queue first, with a snapshot that sees this
 * commit.
 */
static void
inval_publish_hints(bool wrote)
{
	int			i;

	if (wrote && ClinicalShared != NULL && ClinicalShared->inval_dbid == MyDatabaseId)
	{
		if (inval_hint_all)
			pg_atomic_fetch_or_u32(&ClinicalShared->inval_hint_all, 1);
		else
			for (i = 0; i < inval_nhints; i++)
			{
				BlockNumber bit = inval_hints[i] % INVAL_HINT_BLOCKS;

				pg_atomic_fetch_or_u64(&ClinicalShared->inval_hint[bit / 64],
									   UINT64CONST(1) << (bit % 64));
			}
		SpinLockAcquire(&ClinicalShared->mutex);
		if (ClinicalShared->inval_latch)
			SetLatch(ClinicalShared->inval_latch);
		SpinLockRelease(&ClinicalShared->mutex);
	}
	inval_nhints = 0;
	inval_hint_all = false;
}

/*
 * Write n queue rows straight into clinical.invalidation_queue: heap
 * inserts, no executor or SPI per commit. enqueued_at is the transaction's
 * now(), as the column default would give; op is 0 or 1 as the CHECK
 * constraint says. The queue is a heap without an index; should someone
 * have added one or changed its access method, the rows go through the
 * row writer, which maintains indexes and takes any table AM.
 */
static void
inval_insert_direct(Oid relid, Datum *keys, Datum *channels, bool *chnulls,
					Datum *ops, int n)
{
	Relation	rel;
	ClinicalRowWriter *w = NULL;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			a_op,
				a_key,
				a_channel,
				a_at;
	int			i;

	rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (rel->rd_rel->relhasindex || rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		w = clinical_rowwriter_open(relid);

	/*
	 * Looked up once, after the open took the queue's relcache
	 * invalidations (an ALTER TABLE of the queue clears them).
	 */
	if (!inval_queue_atts_valid || relid != inval_queue_relid)
	{
		inval_att_op = clinical_attno(rel, "op", INT2OID);
		inval_att_key = clinical_attno(rel, "key", TEXTOID);
		inval_att_channel = clinical_attno(rel, "channel", TEXTOID);
		inval_att_at = clinical_attno(rel, "enqueued_at", TIMESTAMPTZOID);
		inval_queue_atts_valid = (relid == inval_queue_relid);
	}
	a_op = inval_att_op;
	a_key = inval_att_key;
	a_channel = inval_att_channel;
	a_at = inval_att_at;
	values = w ? w->values : palloc(sizeof(Datum) * desc->natts);
	nulls = w ? w->nulls : palloc(sizeof(bool) * desc->natts);

	for (i = 0; i < n; i++)
	{
		memset(nulls, true, sizeof(bool) * desc->natts);
		values[a_op] = ops[i];
		nulls[a_op] = false;
		values[a_key] = keys[i];
		nulls[a_key] = false;
		values[a_channel] = channels[i];
		nulls[a_channel] = chnulls[i];
		values[a_at] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		nulls[a_at] = false;
		if (w)
			clinical_rowwriter_insert(w);
		else
		{
			HeapTuple	tup = heap_form_tuple(desc, values, nulls);

			heap_insert(rel, tup, GetCurrentCommandId(true), 0, NULL);
			inval_note_block(ItemPointerGetBlockNumber(&tup->t_self));
			heap_freetuple(tup);
		}
	}
	if (w)
	{
		clinical_rowwriter_close(w);
		inval_hint_all = true;
	}
	table_close(rel, NoLock);
}

static void
inval_flush(void)
{
	HASH_SEQ_STATUS status;
	InvalBucket *b;
	Datum	   *keys,
			   *channels,
			   *ops;
	bool	   *chnulls;
	int			n = 0;
	bool		pushed;
	Oid			save_userid;
	int			save_sec_context;
	Oid			relid,
				owner;

	if (inval_set == NULL || inval_nunwritten == 0)
		return;
	clinical_inval_queue(&relid, &owner);

	keys = palloc(sizeof(Datum) * inval_nunwritten);
	channels = palloc(sizeof(Datum) * inval_nunwritten);
	chnulls = palloc(sizeof(bool) * inval_nunwritten);
	ops = palloc(sizeof(Datum) * inval_nunwritten);
	hash_seq_init(&status, inval_set);
	while ((b = hash_seq_search(&status)) != NULL)
	{
		InvalItem  *it;

		for (it = b->items; it; it = it->next)
		{
			if (it->written != InvalidSubTransactionId)
				continue;
			it->written = GetCurrentSubTransactionId();
			if (it->written > inval_max_written)
				inval_max_written = it->written;
			keys[n] = CStringGetTextDatum(it->key);
			chnulls[n] = (it->channel == NULL);
			channels[n] = it->channel ? CStringGetTextDatum(it->channel) : (Datum) 0;
			ops[n] = Int16GetDatum(it->op);
			n++;
		}
	}
	/* at pre-commit no snapshot is active any more */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());
	/*
	 * Write as the queue's owner (ordinary roles have no rights on it), in
	 * a restricted operation; no SQL runs, so the writer's search_path
	 * plays no part. An error restores the user at (sub)transaction abort.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	inval_insert_direct(relid, keys, channels, chnulls, ops, n);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (pushed)
		PopActiveSnapshot();

	inval_wrote = true;
	inval_nunwritten = 0;
	if (inval_nitems >= INVAL_KEEP)
		inval_trim();
}

static void
inval_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			inval_flush();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			inval_publish_hints(inval_wrote);
			inval_wrote = false;
			inval_forget(true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's rows appear at COMMIT PREPARED; the worker polls */
			inval_publish_hints(false);
			inval_wrote = false;
			inval_forget(false);
			break;
	}
}

/*
 * Keys of a rolled-back subtransaction go with it, and keys whose queue rows
 * it wrote are written again; a committed one's stay as they are (see
 * inval_max_subid).
 */
static void
inval_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS status;
	InvalBucket *b;

	if (inval_set == NULL || event != SUBXACT_EVENT_ABORT_SUB ||
		(mySubid > inval_max_subid && mySubid > inval_max_written))
		return;
	hash_seq_init(&status, inval_set);
	while ((b = hash_seq_search(&status)) != NULL)
	{
		InvalItem **link = &b->items;

		while (*link)
		{
			InvalItem  *it = *link;

			if (it->subid >= mySubid)
			{
				/* added in the rolled-back subtransaction: gone (its rows too) */
				*link = it->next;
				inval_nitems--;
				if (it->written == InvalidSubTransactionId)
					inval_nunwritten--;
				continue;
			}
			if (it->written >= mySubid)
			{
				/* its queue row was rolled back: write it again */
				it->written = InvalidSubTransactionId;
				inval_nunwritten++;
			}
			link = &it->next;
		}
		if (b->items == NULL)
			hash_search(inval_set, &b->hash, HASH_REMOVE, NULL);
	}
	/* nothing at or above mySubid is left */
	inval_max_subid = Min(inval_max_subid, mySubid - 1);
	inval_max_written = Min(inval_max_written, mySubid - 1);
}

static void
inval_register_callbacks(void)
{
	if (inval_callbacks)
		return;
	RegisterXactCallback(inval_xact_callback, NULL);
	RegisterSubXactCallback(inval_subxact_callback, NULL);
	inval_callbacks = true;
}

/* ---- the trigger ---- */

typedef struct InvalTrigEntry
{
	ClinicalTrigCacheEntry head;
	int			ntemplates;
	InvalTemplate **templates;
} InvalTrigEntry;

static ClinicalTrigCache *inval_cache = NULL;

/* Templates of a trigger: its arguments are (template, channel) pairs. */
/* Do the config rows of table target carry exactly the trigger's pairs? */
static bool
inval_config_matches(Relation cfg, Oid target, Trigger *trigger)
{
	AttrNumber	a_target = get_attnum(RelationGetRelid(cfg), "target");
	AttrNumber	a_tmpl = get_attnum(RelationGetRelid(cfg), "key_template");
	AttrNumber	a_chan = get_attnum(RelationGetRelid(cfg), "channel");
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	TupleTableSlot *slot = table_slot_create(cfg, NULL);
	TableScanDesc scan = table_beginscan(cfg, snap, 0, NULL);
	int			npairs = trigger->tgnargs / 2;
	int			nrows = 0;
	int			nmatched = 0;

	if (a_target <= 0 || a_tmpl <= 0 || a_chan <= 0)
		elog(ERROR, "clinical.cache_invalidation_config lacks its columns");
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		char	   *tmpl;
		char	   *chan;
		int			i;

		if (DatumGetObjectId(slot_getattr(slot, a_target, &isnull)) != target || isnull)
			continue;
		nrows++;
		tmpl = TextDatumGetCString(slot_getattr(slot, a_tmpl, &isnull));
		chan = "";
		{
			Datum		d = slot_getattr(slot, a_chan, &isnull);

			if (!isnull)
				chan = TextDatumGetCString(d);
		}
		for (i = 0; i < npairs; i++)
			if (strcmp(trigger->tgargs[2 * i], tmpl) == 0 &&
				strcmp(trigger->tgargs[2 * i + 1], chan) == 0)
			{
				nmatched++;
				break;
			}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return nrows == npairs && nmatched == npairs;
}

/*
 * The trigger's (template, channel) pairs must be those that
 * clinical.enable_cache_invalidation() recorded for its table or, on a
 * partition, for one of its ancestors. A trigger attached by hand could
 * otherwise make any writer queue patterns (a TRUNCATE of a template "{x}"
 * clears the whole Redis database) or PUBLISH to any channel. Checked once
 * per trigger (then cached with it); the configuration is read in C, as no
 * writer needs rights on it.
 */
static void
inval_check_configured(Relation rel, Trigger *trigger)
{
	Oid			nsp = get_namespace_oid("clinical", false);
	Oid			cfgid = get_relname_relid("cache_invalidation_config", nsp);
	List	   *candidates = list_make1_oid(RelationGetRelid(rel));
	Relation	cfg;
	ListCell   *lc;
	bool		ok = false;

	if (!OidIsValid(cfgid))
		elog(ERROR, "relation \"clinical.cache_invalidation_config\" does not exist");
	if (rel->rd_rel->relispartition)
		candidates = list_concat(candidates, get_partition_ancestors(RelationGetRelid(rel)));
	cfg = table_open(cfgid, AccessShareLock);
	foreach(lc, candidates)
		if ((ok = inval_config_matches(cfg, lfirst_oid(lc), trigger)))
			break;
	table_close(cfg, AccessShareLock);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("trigger \"%s\" on \"%s\" does not match the cache invalidation configuration",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Attach the trigger with clinical.enable_cache_invalidation(), which records its templates in clinical.cache_invalidation_config.")));
}

static InvalTrigEntry *
inval_trigger_entry(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	Trigger    *trigger = trigdata->tg_trigger;
	InvalTrigEntry *entry;
	bool		valid;
	int			i;

	if (inval_cache == NULL)
		inval_cache = clinical_trigcache_create("clinical invalidation cache",
												sizeof(InvalTrigEntry));
	entry = (InvalTrigEntry *) clinical_trigcache_lookup(inval_cache, trigger->tgoid,
														 RelationGetRelid(rel), &valid);
	if (valid)
		return entry;

	if (trigger->tgnargs < 2 || trigger->tgnargs % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("trigger \"%s\" on \"%s\" has malformed arguments for clinical.cache_invalidation_trigger()",
						trigger->tgname, RelationGetRelationName(rel)),
				 errhint("Attach the trigger with clinical.enable_cache_invalidation().")));
	entry->ntemplates = trigger->tgnargs / 2;
	entry->templates = MemoryContextAlloc(entry->head.cxt, sizeof(InvalTemplate *) * entry->ntemplates);
	for (i = 0; i < entry->ntemplates; i++)
		entry->templates[i] = inval_parse_template(trigger->tgargs[2 * i], trigger->tgargs[2 * i + 1],
												   RelationGetDescr(rel),
												   RelationGetRelationName(rel), entry->head.cxt);
	inval_check_configured(rel, trigger);
	entry->head.valid = true;
	return entry;
}

PG_FUNCTION_INFO_V1(clinical_cache_invalidation_trigger);

/* clinical.cache_invalidation_trigger() RETURNS trigger */
Datum
clinical_cache_invalidation_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	InvalTrigEntry *entry;
	StringInfoData oldkey,
				newkey;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function clinical.cache_invalidation_trigger must be fired AFTER"),
				 errhint("Attach it with clinical.enable_cache_invalidation().")));

	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) && !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function clinical.cache_invalidation_trigger must be fired FOR EACH ROW or for TRUNCATE"),
				 errhint("Attach it with clinical.enable_cache_invalidation().")));

	inval_register_callbacks();
	entry = inval_trigger_entry(trigdata);

	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		for (i = 0; i < entry->ntemplates; i++)
			inval_add(INVAL_OP_PATTERN, entry->templates[i]->channel, entry->templates[i]->pattern);
		return PointerGetDatum(NULL);
	}

	tupdesc = RelationGetDescr(trigdata->tg_relation);
	initStringInfo(&oldkey);
	initStringInfo(&newkey);
	for (i = 0; i < entry->ntemplates; i++)
	{
		InvalTemplate *t = entry->templates[i];
		bool		have_old = false,
					have_new = false;

		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		{
			have_old = inval_render(t, trigdata->tg_trigtuple, tupdesc, &oldkey);
			have_new = inval_render(t, trigdata->tg_newtuple, tupdesc, &newkey);
		}
		else
			have_new = inval_render(t, trigdata->tg_trigtuple, tupdesc, &newkey);
		/* an empty key (a template "{col}" over an empty value) names no cache entry */
		have_old = have_old && oldkey.len > 0;
		have_new = have_new && newkey.len > 0;

		if (have_new)
			inval_add(INVAL_OP_KEY, t->channel, newkey.data);
		if (have_old && (!have_new || strcmp(oldkey.data, newkey.data) != 0))
			inval_add(INVAL_OP_KEY, t->channel, oldkey.data);
	}
	pfree(oldkey.data);
	pfree(newkey.data);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(clinical_invalidate);

/* clinical.invalidate(VARIADIC keys text[]) RETURNS integer */
Datum
clinical_invalidate(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i,
				added = 0;

	/* the keys are written to a table at commit: say so now, not at COMMIT */
	PreventCommandIfReadOnly("clinical.invalidate()");
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("keys must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	inval_register_callbacks();
	for (i = 0; i < n; i++)
	{
		char	   *key;

		if (nulls[i])
			continue;
		key = TextDatumGetCString(elems[i]);
		if (key[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cache key must not be empty")));
		inval_add(INVAL_OP_KEY, NULL, key);
		added++;
	}
	PG_RETURN_INT32(added);
}

PG_FUNCTION_INFO_V1(clinical_check_key_template);

/*
 * clinical._check_key_template(target regclass, template text) RETURNS text
 * Validates a template against the table; returns its TRUNCATE pattern, or
 * NULL when the table no longer exists (so the view never fails).
 */
Datum
clinical_check_key_template(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *tmpl = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Relation	rel = try_relation_open(relid, AccessShareLock);
	InvalTemplate *t;

	if (rel == NULL)
		PG_RETURN_NULL();

	t = inval_parse_template(tmpl, NULL, RelationGetDescr(rel), RelationGetRelationName(rel),
							 CurrentMemoryContext);
	relation_close(rel, AccessShareLock);
	PG_RETURN_TEXT_P(cstring_to_text(t->pattern));
}
