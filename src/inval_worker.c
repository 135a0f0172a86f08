/*-------------------------------------------------------------------------
 *
 * src/inval_worker.c
 *	  Cache invalidation, the delivering side: the "clinical invalidator"
 *	  background worker. It runs in clinical.database on a primary, wakes
 *	  when a transaction that wrote invalidations commits (or every
 *	  clinical.invalidation_poll_interval), reads batches of queue rows,
 *	  de-duplicates them, pipelines UNLINK (and PUBLISH) to Redis
 *	  and deletes the rows only after Redis acknowledged every command:
 *	  at-least-once delivery, never before commit. On any Redis error it
 *	  reconnects with exponential backoff and jitter. It is a worker of its
 *	  own, so slow partition maintenance never delays invalidations.
 *
 *	  Also here: its settings and clinical._invalidation_counters().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <hiredis/hiredis.h>

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "clinical.h"

#define INVAL_WORKER_NAME "clinical invalidator"
#define INVAL_MAX_BACKOFF_MS 30000
#define INVAL_KEYS_PER_UNLINK 512

#if PG_VERSION_NUM < 140000
#define try_table_open(relid, lockmode) try_relation_open(relid, lockmode)
#endif
/*
 * A batch also ends at this many bytes of keys and channels: 5,000 keys of
 * 200 kB made a 1 GB pipeline that Redis never took within the command
 * timeout, and every retry read the same batch again.
 */
#define INVAL_BATCH_BYTES (8 * 1024 * 1024)

static int	inval_poll_interval = 1000;
static int	inval_redelete_ms = 0;
static int	inval_max_age = 3600;
static int	inval_batch_size = 5000;

/* the worker's own vacuum of the queue: see inval_vacuum_queue() */
#define INVAL_VACUUM_ROWS 2000
#define INVAL_VACUUM_MIN_MS 250
#define INVAL_VACUUM_IDLE_MS 10000
#define INVAL_VACUUM_TRUNCATE_PAGES 128
#define INVAL_VACUUM_TRUNCATE_MS 10000
#define INVAL_VACUUM_TRUNCATE_MAX_MS 300000

static uint64 inval_dead_rows = 0;	/* deleted since the last vacuum */
static TransactionId inval_dead_xid = InvalidTransactionId; /* the first of their deleters */
static TimestampTz inval_last_vacuum = 0;
static TimestampTz inval_last_truncate = 0;
static int	inval_truncate_ms = INVAL_VACUUM_TRUNCATE_MS;	/* grows while truncation fails */
static BlockNumber inval_truncate_pages = 0;	/* the heap's size at the last truncation, until judged */
static BlockNumber inval_queue_pages = 0;	/* the queue's size at the last delivery */
static bool inval_queue_drained = false;	/* the last batch was not full */
static bool inval_batch_full = false;	/* the last batch stopped at a limit */
static BlockNumber inval_scan_from = 0;	/* where the next batch starts reading */

void
inval_define_gucs(void)
{
	DefineCustomIntVariable("clinical.invalidation_poll_interval",
							"Time between whole reads of the invalidation queue by its worker, which also polls this often when nothing wakes it.",
							NULL, &inval_poll_interval, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("clinical.invalidation_redelete_ms",
							"Delay after which each delivered batch is deleted again; 0 turns the second delete off.",
							"Narrows the race in which a reader re-populates a cache entry from a snapshot older than the commit.",
							&inval_redelete_ms, 0, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("clinical.invalidation_max_age",
							"Queue entries older than this are dropped undelivered (set it to the longest cache TTL).",
							NULL, &inval_max_age, 3600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("clinical.invalidation_batch_size",
							"Queue rows the invalidation worker claims and pipelines at a time.",
							NULL, &inval_batch_size, 5000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}

void
inval_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "clinical");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "clinical_inval_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, INVAL_WORKER_NAME);
	snprintf(worker.bgw_type, BGW_MAXLEN, INVAL_WORKER_NAME);
	RegisterBackgroundWorker(&worker);
}

/* ---- statistics in shared memory ---- */

static void
inval_stat_error(const char *err)
{
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->inval_errors++;
	strlcpy(ClinicalShared->inval_last_error, err, sizeof(ClinicalShared->inval_last_error));
	SpinLockRelease(&ClinicalShared->mutex);
}

static void
inval_on_exit(int code, Datum arg)
{
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->inval_latch = NULL;
	ClinicalShared->inval_pid = 0;
	ClinicalShared->inval_dbid = InvalidOid;
	ClinicalShared->inval_connected = false;
	SpinLockRelease(&ClinicalShared->mutex);
	redis_disconnect();
}

/* ---- delivery ---- */

typedef struct InvalRow
{
	int16		op;
	char	   *key;
	char	   *channel;
} InvalRow;

/* keys of the last batches, for the optional second delete */
typedef struct InvalRedelete
{
	TimestampTz due;
	int			nkeys;
	char	  **keys;
	size_t	   *lens;
	struct InvalRedelete *next;
} InvalRedelete;

static InvalRedelete *inval_redeletes = NULL;
static InvalRedelete *inval_redeletes_tail = NULL;
static MemoryContext inval_redelete_cxt = NULL;

static int
inval_cmp_row(const void *a, const void *b)
{
	const InvalRow *x = a,
			   *y = b;
	int			c;

	if (x->op != y->op)
		return x->op - y->op;
	c = strcmp(x->key, y->key);
	if (c != 0)
		return c;
	if (x->channel == NULL || y->channel == NULL)
		return (x->channel != NULL) - (y->channel != NULL);
	return strcmp(x->channel, y->channel);
}

/* UNLINK keys in chunks: append commands, return how many. */
static int
inval_append_unlinks(char **keys, size_t *lens, int nkeys)
{
	const char **argv = palloc(sizeof(char *) * (INVAL_KEYS_PER_UNLINK + 1));
	size_t	   *argl = palloc(sizeof(size_t) * (INVAL_KEYS_PER_UNLINK + 1));
	int			ncmds = 0;
	int			i = 0;

	while (i < nkeys)
	{
		int			argc = 1;

		argv[0] = "UNLINK";
		argl[0] = 6;
		while (i < nkeys && argc <= INVAL_KEYS_PER_UNLINK)
		{
			argv[argc] = keys[i];
			argl[argc] = lens[i];
			argc++;
			i++;
		}
		redis_append(argc, argv, argl);
		ncmds++;
	}
	pfree(argv);
	pfree(argl);
	return ncmds;
}

static void
inval_append_publish(InvalRow *row)
{
	const char *argv[3] = {"PUBLISH", row->channel, row->key};
	size_t		argl[3] = {7, strlen(row->channel), strlen(row->key)};

	redis_append(3, argv, argl);
}

/* err = "Redis refused a command: <its error>" */
static void
inval_reply_error(redisReply *reply, char *err, size_t errlen)
{
	snprintf(err, errlen, "Redis refused a command: %.*s", (int) Min(reply->len, 200), reply->str);
}

/*
 * Does an error reply refuse the keys (or channel) of the command itself,
 * so that the same keys would be refused for ever, rather than refuse
 * writes for now (LOADING, READONLY, MISCONF, BUSY, OOM, MASTERDOWN,
 * NOAUTH, a command the Redis user may not run)? Only an ACL denial of
 * the keys or channels used: "NOPERM ... access one of the keys ...".
 */
static bool
inval_refuses_keys(redisReply *reply)
{
	return reply->type == REDIS_REPLY_ERROR && reply->len >= 6 &&
		strncmp(reply->str, "NOPERM", 6) == 0 &&
		(strstr(reply->str, "keys") != NULL || strstr(reply->str, "channels") != NULL);
}

/*
 * Commands of a batch that Redis refused for their keys (and for no other
 * reason): send those keys again, one a command (the first nunlink
 * commands were UNLINKs of INVAL_KEYS_PER_UNLINK keys each, then one
 * PUBLISH per pubrows entry), to tell the refused keys from the others in
 * the same UNLINK. Keys refused again for their own sake are dropped with
 * a WARNING and counted (errors, dropped; *ndropped): a key Redis will
 * never take must not hold back every other key until
 * clinical.invalidation_max_age. Any other error fails the batch (retried).
 */
static bool
inval_resend_refused(char **keys, size_t *lens, int nkeys, int nunlink, InvalRow *rows,
					 int *pubrows, int npub, bool *refused, int *ndropped,
					 char *err, size_t errlen)
{
	int			nsent = 0,
				i,
				k;
	bool		ok = true;
	redisReply **replies;

	*ndropped = 0;
	for (i = 0; i < nunlink; i++)
	{
		if (!refused[i])
			continue;
		for (k = i * INVAL_KEYS_PER_UNLINK; k < Min(nkeys, (i + 1) * INVAL_KEYS_PER_UNLINK); k++)
		{
			const char *argv[2] = {"UNLINK", keys[k]};
			size_t		argl[2] = {6, lens[k]};

			redis_append(2, argv, argl);
			nsent++;
		}
	}
	for (i = 0; i < npub; i++)
	{
		if (refused[nunlink + i])
		{
			inval_append_publish(&rows[pubrows[i]]);
			nsent++;
		}
	}
	replies = palloc0(sizeof(redisReply *) * nsent);
	if (!redis_exec(nsent, replies, err, errlen))
		return false;
	for (i = 0; i < nsent; i++)
	{
		if (replies[i]->type == REDIS_REPLY_ERROR)
		{
			if (inval_refuses_keys(replies[i]))
			{
				if ((*ndropped)++ == 0 && ok)
					inval_reply_error(replies[i], err, errlen);
			}
			else if (ok)
			{
				inval_reply_error(replies[i], err, errlen);
				ok = false;
			}
		}
		freeReplyObject(replies[i]);
	}
	if (!ok)
	{
		*ndropped = 0;
		return false;
	}
	if (*ndropped > 0)
	{
		ereport(WARNING,
				(errmsg("clinical invalidator dropped %d invalidations whose keys or channel the Redis user may not access", *ndropped),
				 errdetail("%s", err),
				 errhint("Check the Redis user's key and channel patterns (ACL).")));
		inval_stat_error(err);
		SpinLockAcquire(&ClinicalShared->mutex);
		ClinicalShared->inval_dropped += *ndropped;
		SpinLockRelease(&ClinicalShared->mutex);
	}
	return true;
}

/* SCAN MATCH pattern and UNLINK what it finds, COUNT 1000 a step. */
static bool
inval_clear_pattern(const char *pattern, char *err, size_t errlen)
{
	char		cursor[32] = "0";

	do
	{
		const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
		size_t		lens[6];
		redisReply *reply;
		int			i;

		for (i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		redis_append(6, argv, lens);
		if (!redis_exec(1, &reply, err, errlen))
			return false;
		if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
			reply->element[0]->type != REDIS_REPLY_STRING ||
			reply->element[1]->type != REDIS_REPLY_ARRAY)
		{
			snprintf(err, errlen, "unexpected reply to SCAN");
			freeReplyObject(reply);
			redis_disconnect();
			return false;
		}
		strlcpy(cursor, reply->element[0]->str, sizeof(cursor));
		if (reply->element[1]->elements > 0)
		{
			redisReply *keys = reply->element[1];
			char	  **k = palloc(sizeof(char *) * keys->elements);
			size_t	   *l = palloc(sizeof(size_t) * keys->elements);
			int			n;
			redisReply **r;
			int			j;
			bool		refused = false;

			for (i = 0; i < (int) keys->elements; i++)
			{
				k[i] = keys->element[i]->str;
				l[i] = keys->element[i]->len;
			}
			n = inval_append_unlinks(k, l, keys->elements);
			freeReplyObject(reply);
			r = palloc0(sizeof(redisReply *) * n);
			if (!redis_exec(n, r, err, errlen))
				return false;
			for (j = 0; j < n; j++)
			{
				if (r[j]->type == REDIS_REPLY_ERROR && !refused)
				{
					inval_reply_error(r[j], err, errlen);
					refused = true;
				}
				freeReplyObject(r[j]);
			}
			if (refused)
				return false;	/* the pattern stays queued */
		}
		else
			freeReplyObject(reply);
		CHECK_FOR_INTERRUPTS();
	} while (strcmp(cursor, "0") != 0);
	return true;
}

/* ---- which blocks to read: the writers' hints ---- */

static uint64 inval_hints[INVAL_HINT_WORDS];	/* blocks taken from the writers, not yet read */
static bool inval_read_whole = true;	/* the next batch reads the whole queue */
static TimestampTz inval_last_whole = 0;	/* start of the last whole pass that reached the end */
static TimestampTz inval_round_start = 0;

/*
 * Take the blocks writers published since the last round. Called before
 * the round's snapshot: a hint taken is for a row committed before it.
 */
static void
inval_take_hints(void)
{
	int			i;

	pg_memory_barrier();
	for (i = 0; i < INVAL_HINT_WORDS; i++)
		if (pg_atomic_read_u64(&ClinicalShared->inval_hint[i]) != 0)
			inval_hints[i] |= pg_atomic_exchange_u64(&ClinicalShared->inval_hint[i], 0);
	if (pg_atomic_read_u32(&ClinicalShared->inval_hint_all) != 0 &&
		pg_atomic_exchange_u32(&ClinicalShared->inval_hint_all, 0) != 0)
		inval_read_whole = true;
	inval_round_start = GetCurrentTimestamp();
}

static bool
inval_have_hints(void)
{
	int			i;

	for (i = 0; i < INVAL_HINT_WORDS; i++)
		if (inval_hints[i] != 0)
			return true;
	return false;
}

/*
 * Does the next batch read the whole queue? Yes when a writer asked for it,
 * while a backlog is read batch after batch, and once every poll interval:
 * rows no writer hinted at (a COMMIT PREPARED, rows from before a restart)
 * wait no longer than they did before hints.
 */
static bool
inval_whole_due(void)
{
	return inval_read_whole || !inval_queue_drained || inval_scan_from != 0 ||
		inval_round_start < inval_last_whole ||	/* the clock went back */
		TimestampDifferenceExceeds(inval_last_whole, inval_round_start, inval_poll_interval);
}

/*
 * How long the worker may sleep before the next whole pass is due: a
 * hinted round must not push it back by a poll interval (rows no writer
 * named would wait up to two). -1 when none is pending or it is overdue
 * (then the next wake-up, whatever brings it, makes the pass).
 */
static long
inval_until_whole(void)
{
	long		until;

	if (inval_read_whole || inval_last_whole == 0)
		return -1;
	until = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
											TimestampTzPlusMilliseconds(inval_last_whole, inval_poll_interval));
	return until > 0 ? until : -1;
}

/*
 * The next run of hinted blocks at or after *from, below nblocks: its
 * first block and length. False when there is none. Block b is hinted
 * when bit b % INVAL_HINT_BLOCKS is set.
 */
static bool
inval_next_hint_run(BlockNumber *from, BlockNumber *len, BlockNumber nblocks)
{
	BlockNumber b = *from;

#define HINTED(blk) ((inval_hints[(blk) % INVAL_HINT_BLOCKS / 64] >> ((blk) % 64)) & 1)
	while (b < nblocks && !HINTED(b))
		b = (inval_hints[b % INVAL_HINT_BLOCKS / 64] >> (b % 64)) == 0 ? (b / 64 + 1) * 64 : b + 1;
	if (b >= nblocks)
		return false;
	*from = b;
	while (b < nblocks && HINTED(b))
		b++;
	*len = b - *from;
#undef HINTED
	return true;
}

/*
 * A batch was delivered (or found nothing). A hinted batch that did not
 * fill read every hinted block; a whole pass from block 0 that did not
 * fill read every row committed before its snapshot, hinted or not.
 */
static void
inval_scan_done(bool whole, BlockNumber start)
{
	if (inval_batch_full)
		return;
	if (whole)
	{
		if (start != 0)
			return;
		inval_read_whole = false;
		inval_last_whole = inval_round_start;
	}
	memset(inval_hints, 0, sizeof(inval_hints));
}

/*
 * Claim, send and delete one batch. Returns the number of queue rows
 * delivered, or -1 on a Redis error (err set; the rows stay queued).
 */
static int
inval_deliver_batch(char *err, size_t errlen)
{
	int			nrows = 0,
				maxrows,
				i,
				nuniq = 0,
				ncmds = 0,
				nkeys = 0,
				npub = 0,
				npat = 0;
	InvalRow   *rows;
	char	  **keys;
	size_t	   *lens;
	ItemPointerData *tids;
	Relation	queue;
	Oid			queue_relid,
				owner;
	BlockNumber start,
				next_from;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	a_op,
				a_key,
				a_channel;
	redisReply **replies;
	bool		ok = true;
	Size		nbytes = 0;
	int			nunlink,
				nrefused = 0,
				ndropped = 0;
	int		   *pubrows;
	bool	   *refused;
	bool		whole,
				more = true;
	BlockNumber run_from,
				run_len;

	/*
	 * The worker is the queue's only consumer (its own expiry aside; a
	 * user's DELETE or UPDATE by hand is tolerated below), so rows need no
	 * lock: a row lock would cost a WAL record a row. The queue has no
	 * index (writers would all insert into its rightmost leaf): a batch is
	 * the next rows of a sequential scan, in no particular order, read here
	 * without SQL. Full batches follow each other at once, each starting in
	 * the block where the one before stopped (starting each at block 0
	 * read again every page the batches before had emptied: quadratic in a
	 * backlog); a batch that reaches the end of the heap sends the next one
	 * back to block 0 at once, for rows written meanwhile into space a
	 * vacuum freed there. Between such whole scans (see inval_whole_due), a
	 * batch reads only the blocks writers said their committed rows went
	 * to (inval_hint).
	 */
	whole = inval_whole_due();
	if (!whole && !inval_have_hints())
	{
		/* woken, but every committed row it was told of went already */
		inval_batch_full = false;
		return 0;
	}
	clinical_inval_queue(&queue_relid, &owner);
	/* a DROP EXTENSION that committed while we waited for the lock: nothing to do */
	queue = try_table_open(queue_relid, RowExclusiveLock);
	inval_batch_full = false;
	if (queue == NULL)
		return 0;
	inval_queue_pages = RelationGetNumberOfBlocks(queue);
	if (queue->rd_rel->relam != HEAP_TABLE_AM_OID)
	{
		/* block ranges are a heap's: any other access method is read whole */
		inval_scan_from = 0;
		whole = true;
	}
	if (inval_scan_from >= inval_queue_pages)
		inval_scan_from = 0;
	start = inval_scan_from;
	a_op = clinical_attno(queue, "op", INT2OID) + 1;
	a_key = clinical_attno(queue, "key", TEXTOID) + 1;
	a_channel = clinical_attno(queue, "channel", TEXTOID) + 1;
	maxrows = Min(inval_batch_size, 1024);
	rows = palloc(sizeof(InvalRow) * maxrows);
	tids = palloc(sizeof(ItemPointerData) * maxrows);
	slot = table_slot_create(queue, NULL);
	/* no synchronized scan: the batch starts where it is told */
	scan = table_beginscan_strat(queue, GetActiveSnapshot(), 0, NULL, true, false);
	run_from = start;
	run_len = inval_queue_pages - start;
	if (!whole)
	{
		run_from = 0;
		more = inval_next_hint_run(&run_from, &run_len, inval_queue_pages);
	}
	while (more)
	{
		if (!whole || start > 0)
			heap_setscanlimits(scan, run_from, run_len);
		while (nrows < inval_batch_size && nbytes < INVAL_BATCH_BYTES &&
			   table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			bool		isnull;
			Datum		d;

			if (nrows == maxrows)
			{
				maxrows = Min(inval_batch_size, maxrows * 2);
				rows = repalloc(rows, sizeof(InvalRow) * maxrows);
				tids = repalloc(tids, sizeof(ItemPointerData) * maxrows);
			}
			/* live committed rows: only this worker deletes them, so the ctids stay theirs */
			tids[nrows] = slot->tts_tid;
			rows[nrows].op = DatumGetInt16(slot_getattr(slot, a_op, &isnull));
			rows[nrows].key = TextDatumGetCString(slot_getattr(slot, a_key, &isnull));
			d = slot_getattr(slot, a_channel, &isnull);
			rows[nrows].channel = isnull ? NULL : TextDatumGetCString(d);
			nbytes += strlen(rows[nrows].key) + (rows[nrows].channel ? strlen(rows[nrows].channel) : 0);
			nrows++;
		}
		if (whole || nrows >= inval_batch_size || nbytes >= INVAL_BATCH_BYTES)
			break;
		run_from += run_len;
		more = inval_next_hint_run(&run_from, &run_len, inval_queue_pages);
		if (more)
			table_rescan(scan, NULL);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	inval_batch_full = (nrows >= inval_batch_size || nbytes >= INVAL_BATCH_BYTES);
	/* the next batch: on from here, or back to block 0 (at once) */
	next_from = inval_batch_full && whole ? ItemPointerGetBlockNumber(&tids[nrows - 1]) : 0;
	if (whole && start > 0 && !inval_batch_full)
		inval_batch_full = true;
	if (nrows == 0)
	{
		inval_scan_done(whole, start);
		inval_scan_from = next_from;
		table_close(queue, NoLock);
		return 0;
	}

	/* de-duplicate: the same key from many transactions goes once */
	qsort(rows, nrows, sizeof(InvalRow), inval_cmp_row);
	keys = palloc(sizeof(char *) * nrows);
	lens = palloc(sizeof(size_t) * nrows);
	for (i = 0; i < nrows; i++)
	{
		if (i > 0 && inval_cmp_row(&rows[i - 1], &rows[i]) == 0)
			continue;
		rows[nuniq++] = rows[i];
	}
	for (i = 0; i < nuniq; i++)
	{
		if (rows[i].op != 0)
			continue;
		/* a key queued with and without a channel is unlinked once */
		if (nkeys > 0 && strcmp(keys[nkeys - 1], rows[i].key) == 0)
			continue;
		keys[nkeys] = rows[i].key;
		lens[nkeys] = strlen(rows[i].key);
		nkeys++;
	}
	nunlink = inval_append_unlinks(keys, lens, nkeys);
	ncmds += nunlink;
	pubrows = palloc(sizeof(int) * Max(nuniq, 1));
	for (i = 0; i < nuniq; i++)
	{
		if (rows[i].op == 0 && rows[i].channel != NULL)
		{
			inval_append_publish(&rows[i]);
			pubrows[npub++] = i;
			ncmds++;
		}
	}

	replies = palloc0(sizeof(redisReply *) * Max(ncmds, 1));
	if (ncmds > 0 && !redis_exec(ncmds, replies, err, errlen))
	{
		table_close(queue, NoLock);
		return -1;
	}
	refused = palloc0(sizeof(bool) * Max(ncmds, 1));
	for (i = 0; i < ncmds; i++)
	{
		if (replies[i]->type == REDIS_REPLY_ERROR)
		{
			/* a refusal for its keys is looked into below; any other fails the batch */
			if (inval_refuses_keys(replies[i]))
				refused[i] = true;
			else if (ok)
			{
				inval_reply_error(replies[i], err, errlen);
				ok = false;
			}
			nrefused++;
		}
		freeReplyObject(replies[i]);
	}
	if (ok && nrefused > 0)
		ok = inval_resend_refused(keys, lens, nkeys, nunlink, rows, pubrows, npub, refused,
								  &ndropped, err, errlen);
	if (!ok)
	{
		redis_disconnect();
		table_close(queue, NoLock);
		return -1;
	}

	for (i = 0; i < nuniq; i++)
	{
		if (rows[i].op == 1)
		{
			if (!inval_clear_pattern(rows[i].key, err, errlen))
			{
				table_close(queue, NoLock);
				return -1;
			}
			npat++;
		}
	}

	/*
	 * Every command was acknowledged: now the rows may go, by ctid in the
	 * heap, which costs the same whatever the size of the queue. A row
	 * someone else deleted meanwhile (by hand) is gone already.
	 */
	for (i = 0; i < nrows; i++)
	{
		TM_FailureData tmfd;
		TM_Result	res;

		res = heap_delete(queue, &tids[i], GetCurrentCommandId(true), InvalidSnapshot,
						  true, &tmfd, false);
		/* updated by hand: the new version is read (and sent) again */
		if (res != TM_Ok && res != TM_Deleted && res != TM_Updated && res != TM_SelfModified)
			elog(ERROR, "could not delete a delivered invalidation: result %d", (int) res);
	}
	table_close(queue, NoLock);

	/* remember the keys for the second delete */
	if (inval_redelete_ms > 0 && nkeys > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(inval_redelete_cxt);
		InvalRedelete *r = palloc(sizeof(InvalRedelete));

		r->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), inval_redelete_ms);
		r->nkeys = nkeys;
		r->keys = palloc(sizeof(char *) * nkeys);
		r->lens = palloc(sizeof(size_t) * nkeys);
		for (i = 0; i < nkeys; i++)
		{
			r->keys[i] = pstrdup(keys[i]);
			r->lens[i] = lens[i];
		}
		r->next = NULL;
		if (inval_redeletes_tail)
			inval_redeletes_tail->next = r;
		else
			inval_redeletes = r;
		inval_redeletes_tail = r;
		MemoryContextSwitchTo(old);
	}

	inval_scan_done(whole, start);
	inval_scan_from = next_from;
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->inval_keys += nkeys - ndropped;
	ClinicalShared->inval_publishes += npub;
	ClinicalShared->inval_patterns += npat;
	ClinicalShared->inval_batches++;
	ClinicalShared->inval_last_success = GetCurrentTimestamp();
	SpinLockRelease(&ClinicalShared->mutex);
	return nrows;
}

/* Send the second deletes that are due. False on a Redis error. */
static bool
inval_redelete_due(char *err, size_t errlen)
{
	TimestampTz now = GetCurrentTimestamp();

	while (inval_redeletes && inval_redeletes->due <= now)
	{
		InvalRedelete *r = inval_redeletes;
		int			n;

		if (!redis_is_connected())
			return false;
		n = inval_append_unlinks(r->keys, r->lens, r->nkeys);
		if (!redis_exec(n, NULL, err, errlen))
			return false;
		inval_redeletes = r->next;
		if (inval_redeletes == NULL)
		{
			inval_redeletes_tail = NULL;
			MemoryContextReset(inval_redelete_cxt);
		}
	}
	return true;
}

/* shortest time between the starts of two rounds, in milliseconds */
#define INVAL_MIN_ROUND_MS 3

/*
 * Expiry by commit age. enqueued_at is when the writing transaction
 * started, and a transaction that ran for longer than max_age (or was
 * prepared long before COMMIT PREPARED) commits rows that already look
 * old: judging them by it would drop fresh invalidations. A row is instead
 * known to have committed before time T when its xmin precedes the xmin of
 * a snapshot taken at T (every transaction still running at T, a prepared
 * one too, has an xid at or above that xmin). The worker samples its
 * snapshot's xmin every max(1 s, max_age / 100) and drops the rows whose
 * xmin precedes the newest sample taken at least max_age ago: a row goes
 * between max_age and about 1.01 x max_age after its commit, never sooner.
 * The delete scans the queue, hence the spacing of the samples.
 */
#define INVAL_SAMPLES 128

typedef struct InvalSample
{
	TimestampTz at;
	FullTransactionId xmin;
} InvalSample;

static InvalSample inval_samples[INVAL_SAMPLES];
static int	inval_nsamples = 0;
static TimestampTz inval_last_expire = 0;

/* The full form of an xid not in the future of next. */
static FullTransactionId
inval_full_xid(FullTransactionId next, TransactionId xid)
{
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

/* Is a sample (and an expiry pass) due? */
static bool
inval_expire_due(void)
{
	return TimestampDifferenceExceeds(inval_last_expire, GetCurrentTimestamp(),
									  Max(1000, inval_max_age * 10));
}

/*
 * Take a sample and delete the rows it proves older than max_age. Runs in
 * a transaction of its own, so that a failed delivery
 * does not undo it. Returns the number of rows deleted.
 */
static uint64
inval_expire(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz horizon = now - (TimestampTz) inval_max_age * USECS_PER_SEC;
	FullTransactionId next = ReadNextFullTransactionId();
	Snapshot	snap = GetActiveSnapshot();
	static bool warned = false;
	int			use = -1;
	int			i;
	TransactionId limit;
	Oid			relid,
				owner;
	Relation	queue;
	TableScanDesc scan;
	HeapTuple	tup;
	uint64		n = 0;

	inval_last_expire = now;

	/* this pass's sample */
	if (inval_nsamples == INVAL_SAMPLES)
	{
		memmove(&inval_samples[0], &inval_samples[1], sizeof(InvalSample) * (INVAL_SAMPLES - 1));
		inval_nsamples--;
	}
	inval_samples[inval_nsamples].at = now;
	inval_samples[inval_nsamples].xmin = inval_full_xid(next, snap->xmin);
	inval_nsamples++;

	/* the newest sample at least max_age old; older ones are not needed */
	for (i = 0; i < inval_nsamples; i++)
		if (inval_samples[i].at <= horizon)
			use = i;
	if (use < 0)
		return 0;
	if (use > 0)
	{
		memmove(&inval_samples[0], &inval_samples[use], sizeof(InvalSample) * (inval_nsamples - use));
		inval_nsamples -= use;
	}

	/* 32-bit xid ages compare reliably only well within 2^31 */
	if (U64FromFullTransactionId(next) - U64FromFullTransactionId(inval_samples[0].xmin) > ((uint64) 1 << 30))
	{
		if (!warned)
			ereport(WARNING,
					(errmsg("clinical invalidator cannot expire queued invalidations: more than 2^30 transaction ids were used within clinical.invalidation_max_age"),
					 errhint("Lower clinical.invalidation_max_age.")));
		warned = true;
		return 0;
	}
	warned = false;

	/*
	 * Delete the rows written by transactions older than the sample, in a
	 * heap scan (as delivered rows are deleted: no SQL, so no publication's
	 * replica identity check, which a column list could make fail).
	 */
	limit = XidFromFullTransactionId(inval_samples[0].xmin);
	clinical_inval_queue(&relid, &owner);
	queue = try_table_open(relid, RowExclusiveLock);
	if (queue == NULL)
		return 0;
	scan = table_beginscan(queue, GetActiveSnapshot(), 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TM_FailureData tmfd;
		TransactionId xmin = HeapTupleHeaderGetRawXmin(tup->t_data);

		/* the raw xmin: a frozen row (a vacuum may freeze a fresh one) keeps it */
		if (!TransactionIdIsNormal(xmin) || !TransactionIdPrecedes(xmin, limit))
			continue;
		if (heap_delete(queue, &tup->t_self, GetCurrentCommandId(true), InvalidSnapshot,
						true, &tmfd, false) == TM_Ok)
			n++;
	}
	table_endscan(scan);
	table_close(queue, NoLock);
	return n;
}

/*
 * Is the extension installed? The cached queue lookup answers without a
 * catalog scan while no invalidation of the queue arrived (see
 * clinical_inval_queue_known()). In a transaction.
 */
static bool
inval_installed(void)
{
	return clinical_inval_queue_known() || clinical_extension_exists();
}

/*
 * Vacuum the queue. Every delivered row leaves a dead tuple, and the queue
 * has no index: until a vacuum makes the space reusable, writers extend the
 * heap and every round's scan reads the dead rows of all the traffic since.
 * Autovacuum visits a database once per autovacuum_naptime (a minute), far
 * too seldom for a queue that takes tens of thousands of rows a second, so
 * the worker vacuums it itself (autovacuum is off for the queue; its
 * anti-wraparound runs still happen) once it has deleted
 * INVAL_VACUUM_ROWS rows, at most every INVAL_VACUUM_MIN_MS (and, when
 * fewer rows came, INVAL_VACUUM_IDLE_MS after the last vacuum), and only
 * when the xmin horizon has passed the first of those deletes (while a
 * long transaction holds it back a vacuum would free nothing). A small
 * table: a fraction of a millisecond. SKIP_LOCKED: a vacuum or DDL of
 * someone else's on the queue makes the worker skip its own, not wait.
 * Its TOAST table (long keys) is vacuumed too: autovacuum_enabled = false
 * holds for it as well.
 * Called outside a transaction; the vacuum runs in transactions of its own.
 *
 * Truncating empty pages at the heap's end takes an ACCESS EXCLUSIVE lock
 * that writers would queue behind, and scans all of shared_buffers, so the
 * queue does not (vacuum_truncate = false) except after a backlog: when
 * the heap is above INVAL_VACUUM_TRUNCATE_PAGES and the queue was drained,
 * at most every INVAL_VACUUM_TRUNCATE_MS (doubling up to
 * INVAL_VACUUM_TRUNCATE_MAX_MS while truncations do not shrink it). Otherwise every round would read
 * the empty pages the backlog left.
 *
 * Returns true when it vacuumed (the vacuum may have reset the latch).
 */
static bool
inval_vacuum_queue(void)
{
	MemoryContext cxt;
	MemoryContext old;
	VacuumStmt *stmt;
	List	   *options = NIL;
	Oid			relid,
				owner;
	TimestampTz now = GetCurrentTimestamp();
	TransactionId horizon;
	bool		truncate;

	/*
	 * A truncation that did not shrink the heap (rows at its end, writers
	 * always holding their lock) waits longer next time. Judged once a
	 * delivery has looked at the heap again (it sets drained).
	 */
	if (inval_truncate_pages != 0 && inval_queue_drained)
	{
		inval_truncate_ms = inval_queue_pages < inval_truncate_pages ? INVAL_VACUUM_TRUNCATE_MS :
			Min(inval_truncate_ms * 2, INVAL_VACUUM_TRUNCATE_MAX_MS);
		inval_truncate_pages = 0;
	}
	truncate = (inval_queue_pages > INVAL_VACUUM_TRUNCATE_PAGES && inval_queue_drained &&
				TimestampDifferenceExceeds(inval_last_truncate, now, inval_truncate_ms));

	/*
	 * A truncation still due runs even without new dead rows: a backlog
	 * drained in steps can leave the heap large after the last vacuum
	 * that had rows to remove (its truncation came too early, with rows
	 * still at the end), and an idle queue would keep it.
	 */
	if (!truncate &&
		(inval_dead_rows == 0 ||
		 !TimestampDifferenceExceeds(inval_last_vacuum, now,
									 inval_dead_rows >= INVAL_VACUUM_ROWS ? INVAL_VACUUM_MIN_MS : INVAL_VACUUM_IDLE_MS)))
		return false;
#if PG_VERSION_NUM >= 140000
	horizon = GetOldestNonRemovableTransactionId(NULL);
#else
	horizon = GetOldestXmin(NULL, PROCARRAY_FLAGS_VACUUM);
#endif
	if (TransactionIdIsValid(inval_dead_xid) && !TransactionIdPrecedes(inval_dead_xid, horizon))
		return false;

	pgstat_report_activity(STATE_RUNNING, "clinical: vacuuming the invalidation queue");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!inval_installed())
	{
		CommitTransactionCommand();
		inval_dead_rows = 0;
		inval_dead_xid = InvalidTransactionId;
		return false;
	}
	clinical_inval_queue(&relid, &owner);

	/* the statement must outlive the transactions the vacuum commits */
	cxt = AllocSetContextCreate(TopMemoryContext, "clinical queue vacuum", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	options = lappend(options, makeDefElem("skip_locked", (Node *) makeString("true"), -1));
#if PG_VERSION_NUM >= 160000
	options = lappend(options, makeDefElem("skip_database_stats", (Node *) makeString("true"), -1));
#endif
	if (truncate)
	{
		options = lappend(options, makeDefElem("truncate", (Node *) makeString("true"), -1));
		inval_last_truncate = now;
		/* judged by the next delivery's view of the heap */
		inval_truncate_pages = inval_queue_pages;
		inval_queue_drained = false;
	}
	stmt = makeNode(VacuumStmt);
	stmt->options = options;
	stmt->rels = list_make1(makeVacuumRelation(makeRangeVar("clinical", "invalidation_queue", -1),
											   relid, NIL));
	stmt->is_vacuumcmd = true;
	PortalContext = cxt;
	MemoryContextSwitchTo(old);
	ExecVacuum(make_parsestate(NULL), stmt, true);
	CommitTransactionCommand();
	PortalContext = NULL;
	MemoryContextDelete(cxt);

	inval_dead_rows = 0;
	inval_dead_xid = InvalidTransactionId;
	inval_last_vacuum = GetCurrentTimestamp();
	pgstat_report_activity(STATE_IDLE, NULL);
	return true;
}

/* Count rows this transaction deleted, for inval_vacuum_queue(). */
static void
inval_count_dead(uint64 n)
{
	inval_dead_rows += n;
	if (!TransactionIdIsValid(inval_dead_xid))
		inval_dead_xid = GetTopTransactionIdIfAny();
}

/*
 * One round in a transaction: expire old entries, deliver batches while
 * there are full ones. Returns false on a Redis error.
 */
static bool
inval_round(bool connected, char *err, size_t errlen)
{
	bool		ok = true;
	bool		installed;
	MemoryContext oldcxt = CurrentMemoryContext;

	inval_take_hints();
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	installed = inval_installed();
	if (installed && inval_expire_due())
	{
		uint64		dropped;

		pgstat_report_activity(STATE_RUNNING, "clinical: expiring invalidations");
		dropped = inval_expire();
		if (dropped > 0)
			inval_count_dead(dropped);
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (dropped > 0)
		{
			ereport(WARNING,
					(errmsg("clinical invalidator dropped %llu queued invalidations committed more than %d s ago",
							(unsigned long long) dropped, inval_max_age),
					 errhint("Redis was unreachable for longer than clinical.invalidation_max_age; the cache entries have expired by their TTL.")));
			SpinLockAcquire(&ClinicalShared->mutex);
			ClinicalShared->inval_dropped += dropped;
			SpinLockRelease(&ClinicalShared->mutex);
		}
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	if (installed)
	{
		pgstat_report_activity(STATE_RUNNING, "clinical: delivering invalidations");
		if (connected)
		{
			int			n;

			/* one batch a transaction: its deletes commit as soon as Redis acknowledged */
			n = inval_deliver_batch(err, errlen);
			if (n < 0)
			{
				ok = false;
				inval_read_whole = true;	/* its rows stay, hinted or not */
			}
			else
			{
				if (n > 0)
					inval_count_dead(n);
				inval_queue_drained = !inval_batch_full;
				if (!inval_queue_drained)
					SetLatch(MyLatch);	/* more is waiting */
			}
		}
	}
	PopActiveSnapshot();
	if (ok)
		CommitTransactionCommand();
	else
		AbortCurrentTransaction();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

void
clinical_inval_worker_main(Datum main_arg)
{
	char		err[256];
	int			backoff = 0;
	TimestampTz next_connect = 0;
	bool		ever_connected = false;
	TimestampTz last_round = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(clinical_database, NULL, 0);
	pgstat_report_appname(INVAL_WORKER_NAME);

	/* its queries are small and run often: compiling them never pays */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/* its vacuum of the queue is short and deliveries wait for it */
	SetConfigOption("vacuum_cost_delay", "0", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Its commits only record that rows were delivered: a crash that loses
	 * one sends those keys again (at least once, as promised), so they need
	 * not wait for the WAL flush, and the writers' commits do not share the
	 * flush with a worker commit each round.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	inval_redelete_cxt = AllocSetContextCreate(TopMemoryContext, "clinical redelete",
											   ALLOCSET_DEFAULT_SIZES);
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->inval_latch = MyLatch;
	ClinicalShared->inval_pid = MyProcPid;
	ClinicalShared->inval_dbid = MyDatabaseId;
	ClinicalShared->inval_started = GetCurrentTimestamp();
	SpinLockRelease(&ClinicalShared->mutex);
	on_shmem_exit(inval_on_exit, (Datum) 0);

	for (;;)
	{
		long		naptime = inval_poll_interval;
		bool		ok = true;

		CHECK_FOR_INTERRUPTS();

		/*
		 * Under a steady stream of commits every commit sets the latch: let
		 * a round start at most every INVAL_MIN_ROUND_MS, so that one round
		 * takes the keys of many commits instead of one round a commit.
		 */
		if (last_round != 0)
		{
			long		since = (long) ((GetCurrentTimestamp() - last_round) / 1000);

			if (since >= 0 && since < INVAL_MIN_ROUND_MS)
			{
				(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 INVAL_MIN_ROUND_MS - since, PG_WAIT_EXTENSION);
				CHECK_FOR_INTERRUPTS();
			}
		}
		last_round = GetCurrentTimestamp();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* connection settings may have changed: try them at once */
			redis_disconnect();
			next_connect = 0;
		}

		if (!redis_is_connected() && GetCurrentTimestamp() >= next_connect)
		{
			if (redis_connect(err, sizeof(err)))
			{
				inval_read_whole = true;	/* what waited is read whole */
				SpinLockAcquire(&ClinicalShared->mutex);
				if (ever_connected)
					ClinicalShared->inval_reconnects++;
				ClinicalShared->inval_connected = true;
				SpinLockRelease(&ClinicalShared->mutex);
				ever_connected = true;
			}
			else
				ok = false;
		}

		if (ok)
			ok = inval_round(redis_is_connected(), err, sizeof(err));
		else
			(void) inval_round(false, err, sizeof(err));	/* still expire old entries */
		if (ok && redis_is_connected())
			ok = inval_redelete_due(err, sizeof(err));
		if (inval_vacuum_queue())
			SetLatch(MyLatch);	/* the vacuum may have eaten a wake-up */

		if (!ok)
		{
			/* exponential backoff with jitter, up to 30 s */
			backoff = backoff == 0 ? 100 : Min(backoff * 2, INVAL_MAX_BACKOFF_MS);
#if PG_VERSION_NUM >= 150000
			naptime = backoff / 2 + (long) (pg_prng_double(&pg_global_prng_state) * backoff / 2);
#else
			naptime = backoff / 2 + random() % (backoff / 2 + 1);
#endif
			next_connect = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), naptime);
			/*
			 * Wake at least every poll interval while waiting it out: the
			 * expiry of old entries (clinical.invalidation_max_age) runs in
			 * every round, connected or not, and must not wait for a 30 s
			 * backoff.
			 */
			naptime = Min(naptime, inval_poll_interval);
			redis_disconnect();
			inval_stat_error(err);
			SpinLockAcquire(&ClinicalShared->mutex);
			ClinicalShared->inval_connected = false;
			ClinicalShared->inval_backoff_ms = backoff;
			SpinLockRelease(&ClinicalShared->mutex);
		}
		else if (!redis_is_connected())
		{
			/*
			 * Woken (by a commit, a reload) while waiting out the backoff:
			 * keep it, and sleep no longer than until the next attempt.
			 */
			long		until = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_connect);

			naptime = Max(1, Min(naptime, until));
		}
		else if (backoff != 0)
		{
			backoff = 0;
			SpinLockAcquire(&ClinicalShared->mutex);
			ClinicalShared->inval_backoff_ms = 0;
			SpinLockRelease(&ClinicalShared->mutex);
		}
		if (inval_redeletes)
		{
			long		due = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), inval_redeletes->due);

			naptime = Max(1, Min(naptime, due));
		}
		if (ok && redis_is_connected())
		{
			long		until = inval_until_whole();

			if (until > 0)
				naptime = Min(naptime, until);
		}

		/*
		 * A worker flushes its own statistics (pg_stat_user_tables shows
		 * the queue's traffic from them). Rate-limited inside (at most
		 * once a second).
		 */
		(void) pgstat_report_stat(false);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 naptime, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

PG_FUNCTION_INFO_V1(clinical_invalidation_counters);

/*
 * clinical._invalidation_counters() RETURNS record: the invalidator's
 * counters from shared memory. Not running and NULLs when the library is
 * not preloaded, and in a database the running invalidator does not serve
 * (its figures are another database's).
 */
Datum
clinical_invalidation_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[13];
	bool		nulls[13];
	ClinicalSharedState s;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(nulls, 0, sizeof(nulls));
	if (ClinicalShared != NULL)
	{
		SpinLockAcquire(&ClinicalShared->mutex);
		memcpy(&s, ClinicalShared, sizeof(s));
		SpinLockRelease(&ClinicalShared->mutex);
	}
	if (ClinicalShared == NULL || (s.inval_pid != 0 && s.inval_dbid != MyDatabaseId))
	{
		memset(nulls, true, sizeof(nulls));
		values[0] = BoolGetDatum(false);
		nulls[0] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
	}

	values[0] = BoolGetDatum(s.inval_pid != 0);
	values[1] = Int32GetDatum(s.inval_pid);
	nulls[1] = (s.inval_pid == 0);
	values[2] = BoolGetDatum(s.inval_connected);
	values[3] = Int64GetDatum(s.inval_keys);
	values[4] = Int64GetDatum(s.inval_publishes);
	values[5] = Int64GetDatum(s.inval_patterns);
	values[6] = Int64GetDatum(s.inval_batches);
	values[7] = Int64GetDatum(s.inval_errors);
	values[8] = Int64GetDatum(s.inval_reconnects);
	values[9] = Int64GetDatum(s.inval_dropped);
	values[10] = Int32GetDatum(s.inval_backoff_ms);
	values[11] = TimestampTzGetDatum(s.inval_last_success);
	nulls[11] = (s.inval_last_success == 0);
	values[12] = CStringGetTextDatum(s.inval_last_error);
	nulls[12] = (s.inval_last_error[0] == '\0');
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
