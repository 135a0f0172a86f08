/*-------------------------------------------------------------------------
 *
 * clinical.h
 *	  Declarations shared between the parts of the clinical extension:
 *	  settings (GUC variables), the background worker's shared state and
 *	  the small helpers in util.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CLINICAL_H
#define CLINICAL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/rel.h"

#ifndef CLINICAL_VERSION
#define CLINICAL_VERSION "unknown"
#endif

#define CLINICAL_WORKER_NAME "clinical worker"

/* settings defined in clinical.c */
extern char *clinical_database;
extern int	clinical_maintenance_interval;	/* seconds, 0 = off */
extern char *clinical_redis_host;
extern int	clinical_redis_port;
extern int	clinical_redis_db;
extern char *clinical_redis_user;
extern char *clinical_redis_password;
extern int	clinical_redis_connect_timeout; /* milliseconds */
extern int	clinical_redis_command_timeout; /* milliseconds */

/* true when the library was loaded through shared_preload_libraries */
extern bool clinical_preloaded;

/*
 * State of the background worker, in shared memory. Exists only when the
 * library is preloaded; ClinicalShared is NULL otherwise.
 */
typedef struct ClinicalSharedState
{
	slock_t		mutex;
	pid_t		worker_pid;		/* 0 when not running */
	Oid			worker_dboid;
	TimestampTz worker_started;
	TimestampTz worker_last_activity;
	char		worker_state[64];	/* short text, e.g. "idle" */

	/* cache invalidation: the invalidator worker and its counters */
	Latch	   *inval_latch;	/* the invalidator's latch, NULL when not running */
	pid_t		inval_pid;
	Oid			inval_dbid;		/* its database (clinical.database) */
	TimestampTz inval_started;
	int64		inval_keys;		/* keys acknowledged by Redis (UNLINK) */
	int64		inval_publishes;
	int64		inval_patterns;	/* TRUNCATE key spaces cleared */
	int64		inval_batches;
	int64		inval_errors;
	int64		inval_reconnects;
	int64		inval_dropped;	/* queue entries dropped by max_age */
	int			inval_backoff_ms;
	bool		inval_connected;
	TimestampTz inval_last_success;
	char		inval_last_error[256];

	/*
	 * Where committed queue rows are: bit b stands for the queue blocks b,
	 * b + INVAL_HINT_BLOCKS, b + 2 * INVAL_HINT_BLOCKS, ... (one block each
	 * while the heap is smaller). A writer sets its blocks' bits after its
	 * commit; the invalidator takes (and clears) them and reads those
	 * blocks instead of the whole queue. inval_hint_all asks for a whole
	 * scan (rows in many blocks, or written through the row writer). Only
	 * hints: the invalidator still reads the whole queue every poll
	 * interval.
	 */
#define INVAL_HINT_WORDS	64
#define INVAL_HINT_BLOCKS	(INVAL_HINT_WORDS * 64)
	pg_atomic_uint64 inval_hint[INVAL_HINT_WORDS];
	pg_atomic_uint32 inval_hint_all;
} ClinicalSharedState;

extern ClinicalSharedState *ClinicalShared;

/* clinical.c */
extern Size clinical_shmem_size(void);

/* worker.c */
extern void clinical_worker_register(void);
extern PGDLLEXPORT void clinical_worker_main(Datum main_arg);

/* events a row trigger function handles, for clinical_check_row_trigger */
#define CLINICAL_ON_INSERT	0x01
#define CLINICAL_ON_UPDATE	0x02
#define CLINICAL_ON_DELETE	0x04

/* pseudonym.c */
extern void pseud_define_gucs(void);
extern char *clinical_pseudonym_cstring(const char *data, size_t len, int key_version);
extern bool clinical_keyring_configured(void);
extern int	clinical_hmac(int key_version, const void *data, size_t len,
						  unsigned char *mac);
extern bool clinical_hmac_has_version(int key_version);

/* audit.c */
extern void audit_define_gucs(void);
extern long audit_worker_run(TimestampTz now);
extern void audit_record_event(const char *operation, Oid table_oid,
							   const char *table_name, Datum detail);

/* redis.c */
struct redisReply;
extern bool redis_connect(char *err, size_t errlen);
extern void redis_disconnect(void);
extern bool redis_is_connected(void);
extern void redis_append(int argc, const char **argv, const size_t *lens);
extern bool redis_exec(int nreplies, struct redisReply **replies, char *err, size_t errlen);

/* inval_worker.c */
extern void inval_define_gucs(void);
extern void inval_worker_register(void);
/* clinical.invalidation_queue, its sequence and its owner (cached; invalidate.c) */
extern void clinical_inval_queue(Oid *relid, Oid *owner);
extern bool clinical_inval_queue_known(void);
extern PGDLLEXPORT void clinical_inval_worker_main(Datum main_arg);

/* partition.c */
extern void part_define_gucs(void);
extern long part_worker_run(TimestampTz now);
extern void part_record_retention(Oid parent, const char *partition, const char *action,
								  const char *upper_bound);

/* summary.c */
extern void summ_define_gucs(void);

/* util.c */
extern bool clinical_extension_exists(void);
extern void clinical_check_row_trigger(FunctionCallInfo fcinfo,
									   const char *funcname,
									   bool before, int events);

/*
 * A per-trigger cache of part-specific metadata, kept across statements
 * and thrown away when the relation changes (relcache invalidation).
 * Parts keep their own entry type whose first member is this header.
 */
typedef struct ClinicalTrigCacheEntry
{
	Oid			tgoid;			/* hash key: the trigger's OID */
	Oid			relid;
	bool		valid;			/* false: caller must (re)fill the entry */
	MemoryContext cxt;			/* the entry's own memory, reset on refill */
} ClinicalTrigCacheEntry;

typedef struct ClinicalTrigCache ClinicalTrigCache;

extern ClinicalTrigCache *clinical_trigcache_create(const char *name,
													Size entrysize);
extern ClinicalTrigCacheEntry *clinical_trigcache_lookup(ClinicalTrigCache *cache,
														 Oid tgoid, Oid relid,
														 bool *valid);

/* A writer of rows straight into one table (util.c). */
typedef struct ClinicalRowWriter
{
	Relation	rel;
	struct EState *estate;
	struct ResultRelInfo *rri;
	struct TupleTableSlot *slot;
	int			natts;
	Datum	   *values;			/* the row to insert, in attribute order */
	bool	   *nulls;
} ClinicalRowWriter;

extern ClinicalRowWriter *clinical_rowwriter_open(Oid relid);
extern int	clinical_attno(Relation rel, const char *name, Oid type);
extern int	clinical_rowwriter_attno(ClinicalRowWriter *w, const char *name, Oid type);
extern void clinical_rowwriter_clear(ClinicalRowWriter *w);
extern void clinical_rowwriter_insert(ClinicalRowWriter *w);
extern void clinical_rowwriter_close(ClinicalRowWriter *w);

#endif							/* CLINICAL_H */
