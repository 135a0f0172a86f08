/*-------------------------------------------------------------------------
 *
 * src/partition.c
 *	  Partition maintenance: time-range partition sets registered in
 *	  clinical.partition_config, a planner that compares each set's actual
 *	  partitions (read from the catalogs' partition bounds, never from their
 *	  names) with what "now" asks for, and an executor that creates future
 *	  partitions and applies retention under a short lock timeout.
 *
 *	  Every DDL step runs in its own subtransaction under
 *	  clinical.maintenance_lock_timeout and is retried with backoff when the
 *	  lock is not granted; a step that still cannot get its lock is skipped
 *	  and reported, and a failing step or set never stops the others. New
 *	  partitions are created as plain tables and then attached (SHARE UPDATE
 *	  EXCLUSIVE on the parent, so writers keep going, unless a default
 *	  partition exists: then writers wait while the rows of the new range
 *	  are moved out of the default in batches and the table is attached).
 *	  DDL runs as the owner of the partitioned table, so partitions belong
 *	  to it whoever runs maintenance (a DBA, cron or the background worker).
 *
 *	  Entry points: the SQL functions below, and part_worker_run() for the
 *	  background worker's schedule.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "pgtime.h"

#include "clinical.h"

#if PG_VERSION_NUM >= 160000
#define part_ownercheck(relid, roleid) object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define part_ownercheck(relid, roleid) pg_class_ownercheck((relid), (roleid))
#endif

#define PART_MAX_PREMAKE	1000
#define PART_MAX_CREATE		10000
#define PART_MAX_BACKOFF_MS 2000

/* settings */
static int	part_lock_timeout = 1000;	/* ms */
static int	part_lock_retries = 3;
static int	part_batch_size = 10000;
static char *part_now_setting = NULL;
static char *part_audit_min_retention = NULL;

/* A set as registered in clinical.partition_config. */
typedef struct PartSet
{
	Oid			parent;
	char	   *control_column;
	Interval	interval;
	int			premake;
	bool		has_retention;
	Interval	retention;
	char	   *mode;			/* drop, detach or archive */
	char	   *archive_schema; /* NULL unless archive */
	bool		default_partition;
	bool		hold;
	char	   *hold_reason;
	char	   *time_zone;
} PartSet;

/* One partition of a set, from its catalog bound. */
typedef struct PartChild
{
	Oid			relid;
	char	   *name;
	bool		is_default;
	bool		lo_inf;			/* MINVALUE */
	bool		hi_inf;			/* MAXVALUE */
	int64		lo;				/* in microseconds (dates: midnight) */
	int64		hi;
	char	   *lo_text;
	char	   *hi_text;
} PartChild;

/* What a set's partitions look like, with the column it is keyed on. */
typedef struct PartLayout
{
	Oid			parent;
	char	   *nspname;
	char	   *relname;
	Oid			owner;
	Oid			typid;			/* DATE, TIMESTAMP or TIMESTAMPTZ */
	char	   *column;
	bool		months;			/* step in months, else in days */
	int			step;
	int			nchildren;
	PartChild  *children;		/* sorted by lo, default last */
	PartChild  *def;			/* the default partition or NULL */
} PartLayout;

/* A reported action, kept until the set's work is final. */
typedef struct PartAction
{
	Oid			parent;
	char	   *action;
	char	   *partition;
	char	   *detail;
} PartAction;

/* One maintenance run over one or more sets. */
typedef struct PartRun
{
	bool		dry_run;
	bool		notice;			/* also report actions as NOTICEs */
	TimestampTz now;
	Tuplestorestate *tupstore;	/* run_maintenance()'s result, or NULL */
	TupleDesc	tupdesc;
	ResourceOwner tuple_owner;	/* owner of the tuplestore's temp files */
	/* per set */
	List	   *actions;
	char	   *last_error;
	bool		lock_failed;	/* a step of this set timed out on its lock */
} PartRun;

/* The kinds of DDL step. */
typedef enum PartStepKind
{
	PART_STEP_CREATE,
	PART_STEP_DROP,
	PART_STEP_DETACH,
	PART_STEP_ARCHIVE
} PartStepKind;

static const char *const part_step_names[] = {"create", "drop", "detach", "archive"};

/* ---------------------------------------------------------------------
 * Settings
 * ---------------------------------------------------------------------
 */

static bool
part_check_now_setting(char **newval, void **extra, GucSource source)
{
	volatile TimestampTz ts = 0;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;

	PG_TRY();
	{
		ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(*newval),
													 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		GUC_check_errdetail("\"%s\" is not a timestamp with time zone.", *newval);
		return false;
	}
	PG_END_TRY();
	/* "infinity" as the clock would have maintenance create partitions without end */
	if (TIMESTAMP_NOT_FINITE(ts))
	{
		GUC_check_errdetail("The maintenance clock must be a finite timestamp.");
		return false;
	}
	return true;
}

static bool
part_check_interval_setting(char **newval, void **extra, GucSource source)
{
	Interval   *iv;

	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("An interval is required, such as '6 years'.");
		return false;
	}
	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(*newval),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		GUC_check_errdetail("\"%s\" is not an interval.", *newval);
		return false;
	}
	PG_END_TRY();
	if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
		(iv->month == 0 && iv->day == 0 && iv->time == 0))
	{
		GUC_check_errdetail("Each of its months, days and time must be positive or zero, and not all of them zero.");
		return false;
	}
	return true;
}

/*
 * Settings of partition maintenance. Called from _PG_init.
 */
void
part_define_gucs(void)
{
	DefineCustomIntVariable("clinical.maintenance_lock_timeout",
							"Lock timeout of each DDL step of partition maintenance.",
							"A step whose lock is not granted in time is retried with "
							"backoff, then skipped and reported.",
							&part_lock_timeout,
							1000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.maintenance_lock_retries",
							"How often partition maintenance retries a step whose lock timed out.",
							NULL,
							&part_lock_retries,
							3, 0, 100,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.maintenance_batch_size",
							"Rows moved per statement from a default partition into a new partition.",
							NULL,
							&part_batch_size,
							10000, 1, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("clinical.maintenance_now",
							   "The time partition maintenance takes as now; empty means the clock.",
							   "For tests and rehearsals.",
							   &part_now_setting,
							   "",
							   PGC_SUSET,
							   0,
							   part_check_now_setting, NULL, NULL);

	DefineCustomStringVariable("clinical.audit_min_retention",
							   "Shortest retention allowed for the partitions of clinical.audit_log.",
							   "HIPAA 164.316(b)(2) asks for 6 years.",
							   &part_audit_min_retention,
							   "6 years",
							   PGC_SUSET,
							   0,
							   part_check_interval_setting, NULL, NULL);
}

/* The time maintenance works with: clinical.maintenance_now, or the clock. */
static TimestampTz
part_now(void)
{
	if (part_now_setting != NULL && part_now_setting[0] != '\0')
		return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													   CStringGetDatum(part_now_setting),
													   ObjectIdGetDatum(InvalidOid),
													   Int32GetDatum(-1)));
	return GetCurrentTimestamp();
}

/* ---------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------
 */

static int64
part_floordiv(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static bool
part_is_audit_log(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));

	return rel && nsp && strcmp(rel, "audit_log") == 0 && strcmp(nsp, "clinical") == 0;
}

static Interval *
part_audit_min(void)
{
	return DatumGetIntervalP(DirectFunctionCall3(interval_in,
												 CStringGetDatum(part_audit_min_retention),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
}

static int
part_interval_cmp(Interval *a, Interval *b)
{
	return DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(a),
											 IntervalPGetDatum(b)));
}

/* The role that owns the extension's tables; config writes run as it. */
static Oid
part_config_owner(void)
{
	Oid			nsp = get_namespace_oid("clinical", false);
	Oid			relid = get_relname_relid("partition_config", nsp);
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "clinical.partition_config does not exist");
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* Run SPI statements as another role until part_unbecome. */
typedef struct PartUser
{
	Oid			userid;
	int			sec_context;
	int			guc_level;
} PartUser;

static void
part_become(Oid role, PartUser *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec_context);
	/*
	 * A restricted operation, as REFRESH MATERIALIZED VIEW and VACUUM run
	 * a table owner's code: the owner's triggers and defaults cannot queue
	 * deferred triggers (which would fire at commit as the caller) nor
	 * leave settings changed behind.
	 */
	SetUserIdAndSecContext(role, save->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->guc_level = NewGUCNestLevel();
}

static void
part_unbecome(PartUser *save)
{
	AtEOXact_GUC(false, save->guc_level);
	SetUserIdAndSecContext(save->userid, save->sec_context);
}

/* Run a statement with parameters as the config owner; returns SPI result. */
static int
part_config_exec(const char *sql, int nargs, Oid *types, Datum *values,
				 const char *nulls, bool read_only)
{
	PartUser	save;
	int			rc;

	part_become(part_config_owner(), &save);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	part_unbecome(&save);
	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
	return rc;
}

/*
 * Settings every maintenance step relies on, in a GUC nest level the caller
 * pops with AtEOXact_GUC(true, level): a safe search_path, ISO dates, the
 * set's time zone (so month boundaries do not depend on the session), and
 * the maintenance lock timeout.
 */
static int
part_push_settings(const char *time_zone)
{
	int			level = NewGUCNestLevel();
	char		buf[32];

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	if (time_zone != NULL)
		(void) set_config_option("timezone", time_zone, PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	snprintf(buf, sizeof(buf), "%dms", part_lock_timeout);
	(void) set_config_option("lock_timeout", buf, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	return level;
}

/*
 * Connect to SPI with a search_path that no caller can redirect (the
 * statements below name everything, but casts and operators still resolve
 * through it). Returns the GUC nest level for part_spi_end.
 */
static int
part_spi_begin(int options)
{
	int			level;

	if (SPI_connect_ext(options) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	return level;
}

static void
part_spi_end(int level)
{
	AtEOXact_GUC(true, level);
	SPI_finish();
}

/* ---------------------------------------------------------------------
 * Time arithmetic: a set's partitions are numbered k = ..., -1, 0, 1, ...
 * from an anchor (1970-01 for months; 1970-01-01, or Monday 1970-01-05 for
 * whole weeks, for days), so daily, weekly, monthly, quarterly and yearly
 * sets start on the first day of their day, week, month, quarter or year.
 * ---------------------------------------------------------------------
 */

static int
part_day_anchor(int step)
{
	return step % 7 == 0 ? date2j(1970, 1, 5) : date2j(1970, 1, 1);
}

static int64
part_index_of_tm(PartLayout *lay, struct pg_tm *tm)
{
	if (lay->months)
		return part_floordiv((int64) tm->tm_year * 12 + tm->tm_mon - 1 - 1970 * 12, lay->step);
	return part_floordiv((int64) date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) -
						 part_day_anchor(lay->step), lay->step);
}

static void
part_tm_of_index(PartLayout *lay, int64 k, struct pg_tm *tm)
{
	memset(tm, 0, sizeof(*tm));
	if (lay->months)
	{
		int64		total = (int64) 1970 * 12 + k * lay->step;
		int64		year = part_floordiv(total, 12);

		tm->tm_year = (int) year;
		tm->tm_mon = (int) (total - year * 12) + 1;
		tm->tm_mday = 1;
	}
	else
		j2date((int) (part_day_anchor(lay->step) + k * lay->step),
			   &tm->tm_year, &tm->tm_mon, &tm->tm_mday);
}

/* A wall-clock midnight as a value of the column's type, in microseconds. */
static int64
part_value_of_tm(PartLayout *lay, struct pg_tm *tm)
{
	Timestamp	ts;

	if (lay->typid == DATEOID)
		return ((int64) date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) - POSTGRES_EPOCH_JDATE) *
			USECS_PER_DAY;
	if (lay->typid == TIMESTAMPTZOID)
	{
		int			tz = DetermineTimeZoneOffset(tm, session_timezone);

		if (tm2timestamp(tm, 0, &tz, &ts) != 0)
			ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							errmsg("partition bound out of range")));
		return ts;
	}
	if (tm2timestamp(tm, 0, NULL, &ts) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("partition bound out of range")));
	return ts;
}

static Datum
part_datum_of_value(Oid typid, int64 v)
{
	if (typid == DATEOID)
		return DateADTGetDatum((DateADT) (v / USECS_PER_DAY));
	return Int64GetDatum(v);
}

static char *
part_text_of_value(Oid typid, int64 v)
{
	Oid			out;
	bool		isvarlena;

	getTypeOutputInfo(typid, &out, &isvarlena);
	return OidOutputFunctionCall(out, part_datum_of_value(typid, v));
}

/* Local wall-clock time of a timestamptz, in the current time zone. */
static void
part_local_tm(TimestampTz t, struct pg_tm *tm)
{
	int			tz;
	fsec_t		fsec;

	if (timestamp2tm(t, &tz, tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("timestamp out of range")));
}

/* "now" as a value of the column's type (timestamp and date: local time). */
static int64
part_now_value(PartLayout *lay, TimestampTz now)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	Timestamp	ts;

	if (lay->typid == TIMESTAMPTZOID)
		return now;
	if (timestamp2tm(now, &tz, &tm, &fsec, NULL, NULL) != 0 ||
		tm2timestamp(&tm, fsec, NULL, &ts) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("timestamp out of range")));
	return ts;
}

/* The retention cutoff: partitions ending at or before it are expired. */
static int64
part_cutoff(PartLayout *lay, TimestampTz now, Interval *retention)
{
	int64		nowv = part_now_value(lay, now);

	if (lay->typid == TIMESTAMPTZOID)
		return DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													   TimestampTzGetDatum(nowv),
													   IntervalPGetDatum(retention)));
	return DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
												 TimestampGetDatum(nowv),
												 IntervalPGetDatum(retention)));
}

/*
 * Validate a partition interval: a positive whole number of months, or of
 * days (weeks are 7 days), never both.
 */
static void
part_check_interval(Interval *iv, bool *months, int *step)
{
	if (iv->month < 0 || iv->day < 0 || iv->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition interval must be positive")));
	if (iv->month == 0 && iv->day == 0 && iv->time == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition interval must not be zero")));
	if (iv->time != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition interval must be a whole number of days, weeks or months"),
				 errhint("Use for example '1 day', '1 week', '1 month', '3 months' or '1 year'.")));
	if (iv->month != 0 && iv->day != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition interval must not mix months and days"),
				 errhint("Use a number of months (or years) or a number of days (or weeks).")));
	*months = iv->month != 0;
	*step = *months ? iv->month : iv->day;
}

/* ---------------------------------------------------------------------
 * Reading a set's partitions from the catalogs
 * ---------------------------------------------------------------------
 */

static int64
part_const_value(Node *node, Oid typid, bool *inf)
{
	Const	   *c = castNode(Const, node);

	*inf = false;
	if (c->constisnull)
		elog(ERROR, "null partition bound");
	if (typid == DATEOID)
	{
		DateADT		d = DatumGetDateADT(c->constvalue);

		if (DATE_NOT_FINITE(d))
		{
			*inf = true;
			return DATE_IS_NOBEGIN(d) ? PG_INT64_MIN : PG_INT64_MAX;
		}
		return (int64) d * USECS_PER_DAY;
	}
	/* timestamp and timestamptz: -infinity and infinity are the int64 extremes */
	if (TIMESTAMP_NOT_FINITE(DatumGetTimestamp(c->constvalue)))
		*inf = true;
	return DatumGetInt64(c->constvalue);
}

/*
 * A partition's qualified, quoted name, in its own schema (a partition may
 * live in another schema than its parent).
 */
static char *
part_rel_qname(Oid relid)
{
	char	   *rel = get_rel_name(relid);
	char	   *nsp = rel ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	return nsp ? quote_qualified_identifier(nsp, rel) : NULL;
}

static char *
part_child_qname(const PartChild *c)
{
	char	   *q = part_rel_qname(c->relid);

	if (q == NULL)
		elog(ERROR, "cache lookup failed for relation %u", c->relid);
	return q;
}

/* One bound of a range partition: its value, whether infinite, its text. */
static void
part_range_datum(PartitionRangeDatum *d, Oid typid, Oid outfn, int64 *value,
				 bool *inf, char **text)
{
	if (d->kind == PARTITION_RANGE_DATUM_MINVALUE || d->kind == PARTITION_RANGE_DATUM_MAXVALUE)
	{
		bool		min = d->kind == PARTITION_RANGE_DATUM_MINVALUE;

		*inf = true;
		*value = min ? PG_INT64_MIN : PG_INT64_MAX;
		*text = min ? "MINVALUE" : "MAXVALUE";
		return;
	}
	*value = part_const_value(d->value, typid, inf);
	*text = OidOutputFunctionCall(outfn, castNode(Const, d->value)->constvalue);
}

static int
part_child_cmp(const void *a, const void *b)
{
	const PartChild *x = a;
	const PartChild *y = b;

	if (x->is_default != y->is_default)
		return x->is_default ? 1 : -1;
	if (x->lo_inf != y->lo_inf)
		return x->lo_inf ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

/*
 * Load a partitioned table's key column and partitions, with their bounds
 * from pg_class.relpartbound. No locks are taken: the DDL steps take
 * theirs, under the lock timeout.
 */
static void
part_load_layout(Oid parent, PartLayout *lay)
{
	HeapTuple	tuple;
	Form_pg_class classform;
	Form_pg_partitioned_table pt;
	List	   *kids;
	ListCell   *lc;
	int			n = 0;
	Oid			out;
	bool		isvarlena;

	memset(lay, 0, sizeof(*lay));
	lay->parent = parent;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(parent));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("partitioned table with OID %u does not exist", parent),
				 errhint("Delete its row from clinical.partition_config.")));
	classform = (Form_pg_class) GETSTRUCT(tuple);
	lay->relname = pstrdup(NameStr(classform->relname));
	lay->nspname = get_namespace_name(classform->relnamespace);
	lay->owner = classform->relowner;
	if (classform->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a partitioned table", lay->relname),
				 errhint("Create it with PARTITION BY RANGE (column).")));
	ReleaseSysCache(tuple);

	tuple = SearchSysCache1(PARTRELID, ObjectIdGetDatum(parent));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for partition key of %u", parent);
	pt = (Form_pg_partitioned_table) GETSTRUCT(tuple);
	if (pt->partstrat != PARTITION_STRATEGY_RANGE || pt->partnatts != 1 ||
		pt->partattrs.values[0] == 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not range partitioned on one column", lay->relname),
				 errhint("Partition it with PARTITION BY RANGE (column).")));
	lay->column = get_attname(parent, pt->partattrs.values[0], false);
	lay->typid = get_atttype(parent, pt->partattrs.values[0]);
	ReleaseSysCache(tuple);

	getTypeOutputInfo(lay->typid, &out, &isvarlena);

	kids = find_inheritance_children(parent, NoLock);
	lay->children = palloc0(sizeof(PartChild) * (list_length(kids) + 1));
	foreach(lc, kids)
	{
		Oid			kid = lfirst_oid(lc);
		PartChild  *c = &lay->children[n];
		Datum		d;
		bool		isnull;
		PartitionBoundSpec *spec;

		tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(kid));
		if (!HeapTupleIsValid(tuple))
			continue;			/* dropped concurrently */
		c->relid = kid;
		c->name = pstrdup(NameStr(((Form_pg_class) GETSTRUCT(tuple))->relname));
		d = SysCacheGetAttr(RELOID, tuple, Anum_pg_class_relpartbound, &isnull);
		if (isnull)
		{
			ReleaseSysCache(tuple);
			continue;
		}
		spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));
		ReleaseSysCache(tuple);
		if (spec->is_default)
			c->is_default = true;
		else
		{
			part_range_datum(linitial_node(PartitionRangeDatum, spec->lowerdatums),
							 lay->typid, out, &c->lo, &c->lo_inf, &c->lo_text);
			part_range_datum(linitial_node(PartitionRangeDatum, spec->upperdatums),
							 lay->typid, out, &c->hi, &c->hi_inf, &c->hi_text);
		}
		n++;
	}
	lay->nchildren = n;
	qsort(lay->children, n, sizeof(PartChild), part_child_cmp);
	if (n > 0 && lay->children[n - 1].is_default)
		lay->def = &lay->children[n - 1];
}

/* Does [lo, hi) overlap an existing partition? */
static bool
part_overlaps(PartLayout *lay, int64 lo, int64 hi)
{
	int			i;

	for (i = 0; i < lay->nchildren; i++)
	{
		PartChild  *c = &lay->children[i];

		if (c->is_default)
			continue;
		if (c->lo < hi && lo < c->hi)
			return true;
	}
	return false;
}

/* The newest partition (largest upper bound), or NULL. */
static PartChild *
part_newest(PartLayout *lay)
{
	PartChild  *best = NULL;
	int			i;

	for (i = 0; i < lay->nchildren; i++)
	{
		PartChild  *c = &lay->children[i];

		if (c->is_default || c->hi_inf)
			continue;
		if (best == NULL || c->hi > best->hi)
			best = c;
	}
	return best;
}

/* The partition number whose range starts at or contains a value. */
static int64
part_index_of_value(PartLayout *lay, int64 v)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (lay->typid == DATEOID)
	{
		j2date((int) (part_floordiv(v, USECS_PER_DAY) + POSTGRES_EPOCH_JDATE),
			   &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	}
	else if (timestamp2tm(v, lay->typid == TIMESTAMPTZOID ? &tz : NULL, &tm, &fsec,
						  NULL, NULL) != 0)
		ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
						errmsg("timestamp out of range")));
	return part_index_of_tm(lay, &tm);
}

/* ---------------------------------------------------------------------
 * The audit hook
 * ---------------------------------------------------------------------
 */

/*
 * Every retention action (drop, detach, archive) that was carried out goes
 * through here: it is recorded in the audit trail (operation
 * PARTITION_DROP, PARTITION_DETACH or PARTITION_ARCHIVE on the parent) and
 * in the server log.
 */
void
part_record_retention(Oid parent, const char *partition, const char *action,
					  const char *upper_bound)
{
	char	   *qparent = quote_qualified_identifier(get_namespace_name(get_rel_namespace(parent)),
													 get_rel_name(parent));
	char	   *op = psprintf("PARTITION_%s", action);
	char	   *p;
	JsonbParseState *st = NULL;
	JsonbValue	k,
				v;
	JsonbValue *res;

	for (p = op; *p; p++)
		*p = pg_toupper((unsigned char) *p);

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	k.type = jbvString;
	k.val.string.val = "partition";
	k.val.string.len = strlen("partition");
	pushJsonbValue(&st, WJB_KEY, &k);
	v.type = jbvString;
	v.val.string.val = (char *) partition;
	v.val.string.len = strlen(partition);
	pushJsonbValue(&st, WJB_VALUE, &v);
	k.val.string.val = "action";
	k.val.string.len = strlen("action");
	pushJsonbValue(&st, WJB_KEY, &k);
	v.val.string.val = (char *) action;
	v.val.string.len = strlen(action);
	pushJsonbValue(&st, WJB_VALUE, &v);
	if (upper_bound)
	{
		/* audit_verify() reads it: rows below it left by recorded retention */
		k.val.string.val = "upper_bound";
		k.val.string.len = strlen("upper_bound");
		pushJsonbValue(&st, WJB_KEY, &k);
		v.val.string.val = (char *) upper_bound;
		v.val.string.len = strlen(upper_bound);
		pushJsonbValue(&st, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);

	/* the retention of every set is part of the audit trail */
	audit_record_event(op, parent, qparent, JsonbPGetDatum(JsonbValueToJsonb(res)));
	ereport(LOG,
			(errmsg("clinical: partition maintenance: %s partition \"%s\" of \"%s\"",
					action, partition, qparent)));
}

/* ---------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------
 */

static void
part_action(PartRun *run, Oid parent, const char *action, const char *partition,
			const char *detail)
{
	PartAction *a = palloc(sizeof(PartAction));

	a->parent = parent;
	a->action = pstrdup(action);
	a->partition = partition ? pstrdup(partition) : NULL;
	a->detail = detail ? pstrdup(detail) : NULL;
	run->actions = lappend(run->actions, a);
	/* the set's last error is the first thing that went wrong in this run */
	if (run->last_error == NULL &&
		(strcmp(action, "error") == 0 ||
		 (strcmp(action, "skip") == 0 && strncmp(detail, "legal hold", 10) != 0)))
		run->last_error = psprintf("%s%s%s: %s", action, partition ? " " : "",
								   partition ? partition : "", detail);
}

/* Hand the actions of a set over to the caller: result rows, NOTICEs. */
static void
part_flush_actions(PartRun *run)
{
	ListCell   *lc;

	foreach(lc, run->actions)
	{
		PartAction *a = lfirst(lc);

		if (run->tupstore)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};
			ResourceOwner save = CurrentResourceOwner;

			values[0] = ObjectIdGetDatum(a->parent);
			values[1] = CStringGetTextDatum(a->action);
			if (a->partition)
				values[2] = CStringGetTextDatum(a->partition);
			else
				nulls[2] = true;
			if (a->detail)
				values[3] = CStringGetTextDatum(a->detail);
			else
				nulls[3] = true;
			CurrentResourceOwner = run->tuple_owner;
			tuplestore_putvalues(run->tupstore, run->tupdesc, values, nulls);
			CurrentResourceOwner = save;
		}
		if (run->notice)
			ereport(NOTICE,
					(errmsg("clinical: %s: %s %s%s%s", get_rel_name(a->parent), a->action,
							a->partition ? a->partition : "",
							a->detail ? ": " : "", a->detail ? a->detail : "")));
	}
	run->actions = NIL;
}

/* ---------------------------------------------------------------------
 * DDL steps
 * ---------------------------------------------------------------------
 */

typedef struct PartStep
{
	PartStepKind kind;
	char	   *name;			/* partition name (unqualified) */
	char	   *qname;			/* schema-qualified, quoted */
	int64		lo;				/* create: the new range */
	int64		hi;
	List	   *ddl;			/* statements, in order */
	char	   *move_sql;		/* create: moves one batch from the default */
	char	   *lock_sql;		/* create: locks parent and default */
	char	   *count_sql;		/* create: counts rows in range in the default */
	char	   *move_blocker;	/* create: why rows may not be moved, or NULL */
	Oid			relid;			/* retention: the partition, by OID */
	char	   *archive_schema; /* archive: where the partition goes */
} PartStep;

/*
 * Why rows may not be moved out of the default partition, or NULL. A move
 * is a DELETE there, which would fire the default's row DELETE triggers:
 * the action triggers of foreign keys that reference the table (ON DELETE
 * CASCADE would delete the referencing rows), audit and other triggers
 * (recording deletions that are not). Maintenance does not do that.
 */
static char *
part_move_blocker(const PartChild *def)
{
	Relation	rel = table_open(def->relid, AccessShareLock);
	TriggerDesc *td = rel->trigdesc;
	char	   *why = NULL;
	int			i;

	for (i = 0; td != NULL && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (t->tgenabled != TRIGGER_DISABLED &&
			TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_DELETE(t->tgtype))
		{
			why = psprintf("moving them would fire %s trigger \"%s\" on the default partition %s for each row",
						   t->tgisinternal ? "the foreign-key" : "the row DELETE", t->tgname,
						   part_child_qname(def));
			break;
		}
	}
	table_close(rel, AccessShareLock);
	return why;
}

static char *
part_ddl_text(PartStep *step)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, step->ddl)
	{
		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	return buf.data;
}

/* Comma-separated quoted names of the parent's stored columns. */
static char *
part_column_list(Oid parent)
{
	Relation	rel = relation_open(parent, NoLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(NameStr(att->attname)));
	}
	relation_close(rel, NoLock);
	return buf.data;
}

/*
 * Plan the creation of the partition for [lo, hi): its name (an error if
 * too long), and the statements that create it as a plain table, move the
 * rows of its range out of the default partition and attach it.
 */
static PartStep *
part_plan_create(PartLayout *lay, int64 k)
{
	PartStep   *step = palloc0(sizeof(PartStep));
	struct pg_tm tm;
	char	   *qparent = quote_qualified_identifier(lay->nspname, lay->relname);
	char	   *lo_text,
			   *hi_text;

	part_tm_of_index(lay, k, &tm);
	step->kind = PART_STEP_CREATE;
	step->lo = part_value_of_tm(lay, &tm);
	step->name = psprintf("%s_p%04d%02d%02d", lay->relname, tm.tm_year, tm.tm_mon, tm.tm_mday);
	part_tm_of_index(lay, k + 1, &tm);
	step->hi = part_value_of_tm(lay, &tm);
	if (strlen(step->name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("partition name \"%s\" is longer than %d bytes", step->name, NAMEDATALEN - 1),
				 errdetail("Partitions are named <parent>_pYYYYMMDD and names are never truncated."),
				 errhint("Rename \"%s\" to a shorter name.", lay->relname)));
	step->qname = quote_qualified_identifier(lay->nspname, step->name);
	lo_text = part_text_of_value(lay->typid, step->lo);
	hi_text = part_text_of_value(lay->typid, step->hi);

	step->ddl = list_make1(psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
									"INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS "
									"INCLUDING COMPRESSION INCLUDING STATISTICS)",
									step->qname, qparent));
	if (lay->def)
	{
		char	   *qdef = part_child_qname(lay->def);
		const char *qcol = quote_identifier(lay->column);
		char	   *cols = part_column_list(lay->parent);
		char	   *typname = format_type_be(lay->typid);

		/*
		 * With a default partition, writers that planned their INSERT before
		 * the ATTACH commits would route rows of the new range into the
		 * default and fail its new partition constraint: keep writers out
		 * (under the lock timeout) until the step's transaction ends.
		 */
		step->lock_sql = psprintf("LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE; "
								  "LOCK TABLE %s IN EXCLUSIVE MODE", qparent, qdef);
		step->count_sql = psprintf("SELECT count(*) FROM ONLY %s WHERE %s >= %s::%s AND %s < %s::%s",
								   qdef, qcol, quote_literal_cstr(lo_text), typname,
								   qcol, quote_literal_cstr(hi_text), typname);
		step->move_blocker = part_move_blocker(lay->def);
		step->move_sql = psprintf("WITH moved AS (DELETE FROM ONLY %s WHERE ctid = ANY (ARRAY("
								  "SELECT ctid FROM ONLY %s WHERE %s >= %s::%s AND %s < %s::%s LIMIT %d)) "
								  "RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM moved",
								  qdef, qdef, qcol, quote_literal_cstr(lo_text), typname,
								  qcol, quote_literal_cstr(hi_text), typname, part_batch_size,
								  cols, step->qname, cols, cols);
	}
	step->ddl = lappend(step->ddl,
						psprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
								 qparent, step->qname, quote_literal_cstr(lo_text),
								 quote_literal_cstr(hi_text)));
	return step;
}

static PartStep *
part_plan_retention(PartLayout *lay, PartSet *set, PartChild *c)
{
	PartStep   *step = palloc0(sizeof(PartStep));
	char	   *qparent = quote_qualified_identifier(lay->nspname, lay->relname);

	step->name = c->name;
	step->qname = part_child_qname(c);
	step->relid = c->relid;
	step->lo = c->lo;
	step->hi = c->hi;
	if (strcmp(set->mode, "drop") == 0)
	{
		step->kind = PART_STEP_DROP;
		step->ddl = list_make1(psprintf("DROP TABLE %s", step->qname));
	}
	else
	{
		step->kind = strcmp(set->mode, "archive") == 0 ? PART_STEP_ARCHIVE : PART_STEP_DETACH;
		step->ddl = list_make1(psprintf("ALTER TABLE %s DETACH PARTITION %s", qparent, step->qname));
		step->archive_schema = set->archive_schema;
		if (step->kind == PART_STEP_ARCHIVE)
			step->ddl = lappend(step->ddl, psprintf("ALTER TABLE %s SET SCHEMA %s", step->qname,
													quote_identifier(set->archive_schema)));
	}
	return step;
}

/*
 * Carry out a step as the parent's owner. Returns the rows moved out of
 * the default partition (create steps).
 */
static int64
part_exec_step(PartLayout *lay, PartStep *step)
{
	PartUser	save;
	volatile int64 moved = 0;
	ListCell   *lc;

	/*
	 * A retention step names its partition as it was when the run began:
	 * hold it (a lock that writers do not wait for, but that a rename
	 * does) and check that the name still means it, so the DDL cannot act
	 * on another table that took the name.
	 */
	if (OidIsValid(step->relid))
	{
		char	   *now;

		LockRelationOid(step->relid, AccessShareLock);
		now = part_rel_qname(step->relid);
		if (now == NULL || strcmp(now, step->qname) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("partition %s was renamed, moved or dropped during maintenance", step->qname),
					 errhint("Run maintenance again.")));
	}
	part_become(lay->owner, &save);
	foreach(lc, step->ddl)
	{
		char	   *sql = lfirst(lc);

		if (step->kind == PART_STEP_CREATE && lnext(step->ddl, lc) == NULL && step->move_sql)
		{
			/* before the ATTACH: empty the new range out of the default */
			bool		isnull;
			int64		n;

			if (SPI_execute(step->lock_sql, false, 0) < 0)
				elog(ERROR, "could not lock the default partition");
			if (SPI_execute(step->count_sql, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not count rows in the default partition");
			n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (n > 0 && step->move_blocker)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("%lld %s of the new partition's range %s in the default partition: %s",
								(long long) n, n == 1 ? "row" : "rows", n == 1 ? "is" : "are",
								step->move_blocker),
						 errhint("Move those rows into a table of their own by hand, attach it, and run maintenance again.")));
			if (n > 0)
			{
				for (;;)
				{
					if (SPI_execute(step->move_sql, false, 0) != SPI_OK_INSERT)
						elog(ERROR, "could not move rows out of the default partition");
					if (SPI_processed == 0)
						break;
					moved += SPI_processed;
					CHECK_FOR_INTERRUPTS();
				}
			}
		}
		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "could not run \"%s\"", sql);
	}
	part_unbecome(&save);

	/* a new partition of the audit log gets its indexes and TRUNCATE guard */
	if (step->kind == PART_STEP_CREATE && part_is_audit_log(lay->parent))
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1];

		args[0] = CStringGetTextDatum(step->qname);
		if (SPI_execute_with_args("SELECT clinical._audit_prepare_partition($1::regclass)",
								  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not prepare audit log partition %s", step->qname);
	}
	return moved;
}

/* Sleep for a retry, waking for interrupts. */
static void
part_backoff(int attempt)
{
	long		ms = Min((long) 50 << Min(attempt, 10), (long) PART_MAX_BACKOFF_MS);

	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms,
					 PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Run fn(arg) in an internal subtransaction. Returns NULL when it committed,
 * or the error that rolled it back. A cancel (pg_cancel_backend,
 * statement_timeout) is thrown on: it stops the whole run, not one step.
 */
static ErrorData *
part_in_subxact(void (*fn) (void *), void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (edata != NULL && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	return edata;
}

typedef struct PartStepCall
{
	PartLayout *lay;
	PartStep   *step;
	int64		moved;
} PartStepCall;

static void
part_step_call(void *arg)
{
	PartStepCall *c = arg;

	c->moved = part_exec_step(c->lay, c->step);
}

/*
 * Run a step in subtransactions: retry on lock timeout with backoff, and
 * report what happened. Returns true when the step was carried out.
 */
static bool
part_run_step(PartRun *run, PartLayout *lay, PartStep *step)
{
	const char *what = part_step_names[step->kind];
	int			attempt;
	PartStepCall call = {lay, step, 0};
	int64		moved;

	if (run->dry_run)
	{
		part_action(run, lay->parent, what, step->name, part_ddl_text(step));
		if (step->kind == PART_STEP_CREATE && step->count_sql)
		{
			bool		isnull;
			int64		n;

			if (SPI_execute(step->count_sql, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "could not count rows in the default partition");
			n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (n > 0)
				part_action(run, lay->parent, "move", step->name,
							psprintf("%lld %s, in batches of %d: %s", (long long) n,
									 n == 1 ? "row" : "rows",
									 part_batch_size, step->move_sql));
		}
		return true;
	}

	if (run->lock_failed)
	{
		part_action(run, lay->parent, "skip", step->name,
					psprintf("%s not tried: an earlier step of this set could not get its lock",
							 what));
		return false;
	}

	for (attempt = 0;; attempt++)
	{
		ErrorData  *edata = part_in_subxact(part_step_call, &call);

		if (edata == NULL)
			break;
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		{
			if (attempt < part_lock_retries)
			{
				part_backoff(attempt);
				continue;
			}
			run->lock_failed = true;
			part_action(run, lay->parent, "skip", step->name,
						psprintf("%s: lock not granted within %d ms after %d attempts: %s",
								 what, part_lock_timeout, attempt + 1, edata->message));
			return false;
		}
		part_action(run, lay->parent, "error", step->name,
					psprintf("%s: %s", what, edata->message));
		return false;
	}
	moved = call.moved;

	if (step->kind == PART_STEP_CREATE)
	{
		part_action(run, lay->parent, what, step->name,
					psprintf("FOR VALUES FROM ('%s') TO ('%s')",
							 part_text_of_value(lay->typid, step->lo),
							 part_text_of_value(lay->typid, step->hi)));
		if (moved > 0)
			part_action(run, lay->parent, "move", step->name,
						psprintf("%lld %s moved from the default partition", (long long) moved,
								 moved == 1 ? "row" : "rows"));
	}
	else
	{
		char	   *range = psprintf("FOR VALUES FROM ('%s') TO ('%s')",
									 part_text_of_value(lay->typid, step->lo),
									 part_text_of_value(lay->typid, step->hi));

		part_action(run, lay->parent, what, step->name,
					step->kind == PART_STEP_ARCHIVE ?
					psprintf("%s, moved to schema %s", range,
							 quote_identifier(step->archive_schema)) : range);
		part_record_retention(lay->parent, step->name, what,
							  part_text_of_value(lay->typid, step->hi));
	}
	return true;
}

/* ---------------------------------------------------------------------
 * Sets
 * ---------------------------------------------------------------------
 */

/* first key of a set's maintenance lock (pg_advisory_xact_lock(key, parent)) */
#define PART_LOCK_KEY 0x636c6e	/* "cln" */

#define PART_CONFIG_COLUMNS \
	"parent::oid, control_column::text, partition_interval, premake, retention, " \
	"retention_mode, archive_schema::text, default_partition, legal_hold, " \
	"legal_hold_reason, time_zone"

static char *
part_spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* Read registered sets (all, or one parent) into the current context. */
static List *
part_load_sets(Oid parent)
{
	List	   *sets = NIL;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	uint64		i;

	if (OidIsValid(parent))
	{
		values[0] = ObjectIdGetDatum(parent);
		part_config_exec("SELECT " PART_CONFIG_COLUMNS " FROM clinical.partition_config "
						 "WHERE parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
						 1, types, values, NULL, true);
	}
	else
		part_config_exec("SELECT " PART_CONFIG_COLUMNS " FROM clinical.partition_config "
						 "ORDER BY parent::oid", 0, NULL, NULL, NULL, true);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		PartSet    *s = palloc0(sizeof(PartSet));
		bool		isnull;
		Datum		d;

		s->parent = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		s->control_column = part_spi_text(tup, desc, 2);
		s->interval = *DatumGetIntervalP(SPI_getbinval(tup, desc, 3, &isnull));
		s->premake = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		d = SPI_getbinval(tup, desc, 5, &isnull);
		s->has_retention = !isnull;
		if (!isnull)
			s->retention = *DatumGetIntervalP(d);
		s->mode = part_spi_text(tup, desc, 6);
		s->archive_schema = part_spi_text(tup, desc, 7);
		s->default_partition = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		s->hold = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
		s->hold_reason = part_spi_text(tup, desc, 10);
		s->time_zone = part_spi_text(tup, desc, 11);
		sets = lappend(sets, s);
	}
	return sets;
}

/*
 * The set-wide hold as committed now. Read after the set's maintenance lock
 * (which set_legal_hold also takes) with a new snapshot, so that a hold set
 * while a run was busy with other sets is seen.
 */
static void
part_refresh_hold(PartSet *set)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(set->parent)};
	bool		isnull;

	part_config_exec("SELECT legal_hold, legal_hold_reason FROM clinical.partition_config "
					 "WHERE parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
					 1, types, values, NULL, false);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is no longer a registered partition set", get_rel_name(set->parent))));
	set->hold = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	set->hold_reason = part_spi_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
}

/* A legal hold on one partition, from clinical.partition_hold. */
typedef struct PartHold
{
	Oid			relid;
	char	   *reason;
} PartHold;

static List *
part_load_holds(Oid parent)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(parent)};
	List	   *holds = NIL;
	uint64		i;

	/* not read-only: a new snapshot, so a hold committed since the run began counts */
	part_config_exec("SELECT partition::oid, reason FROM clinical.partition_hold "
					 "WHERE parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
					 1, types, values, NULL, false);
	for (i = 0; i < SPI_processed; i++)
	{
		PartHold   *h = palloc(sizeof(PartHold));
		bool		isnull;

		h->relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												  1, &isnull));
		h->reason = part_spi_text(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		holds = lappend(holds, h);
	}
	return holds;
}

static PartHold *
part_find_hold(List *holds, Oid relid)
{
	ListCell   *lc;

	foreach(lc, holds)
	{
		PartHold   *h = lfirst(lc);

		if (h->relid == relid)
			return h;
	}
	return NULL;
}

/*
 * Partition numbers to create: up to the one holding now + premake, from the
 * one holding now, or from just after the newest partition if the set fell
 * behind (so a gap left while maintenance was off is filled).
 */
static void
part_create_range(PartLayout *lay, PartSet *set, TimestampTz now, int64 *from, int64 *to)
{
	struct pg_tm tm;
	int64		know;
	PartChild  *newest = part_newest(lay);

	part_local_tm(now, &tm);
	know = part_index_of_tm(lay, &tm);
	*to = know + set->premake;
	*from = know;
	if (newest != NULL)
	{
		int64		knew = part_index_of_value(lay, newest->hi);

		if (knew < *from)
			*from = knew;
	}
}

/*
 * premake and retention as create_time_partitions() accepts them; checked
 * again by every run, since partition_config can be changed by UPDATE (a
 * negative retention would put the cut-off in the future and remove every
 * partition).
 */
static void
part_check_premake(int premake)
{
	if (premake < 1 || premake > PART_MAX_PREMAKE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("premake must be between 1 and %d", PART_MAX_PREMAKE)));
}

static void
part_check_retention(Interval *retention)
{
	Interval	zero;

	memset(&zero, 0, sizeof(zero));
	if (part_interval_cmp(retention, &zero) <= 0 ||
		retention->month < 0 || retention->day < 0 || retention->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be positive"),
				 errdetail("Each of its months, days and time must be positive or zero, and not all of them zero."),
				 errhint("Give retention as a positive interval, e.g. '7 years' or '90 days'.")));
}

/*
 * Maintain one set: create what premake asks for, apply retention, report
 * rows left in the default partition. Every DDL step in its own
 * subtransaction; the actions are collected in run->actions.
 */
static void
part_maintain_set(PartRun *run, PartSet *set)
{
	PartLayout	lay;
	int64		from,
				to,
				k;
	int			i;
	int			created = 0;

	part_load_layout(set->parent, &lay);
	part_check_interval(&set->interval, &lay.months, &lay.step);
	part_check_premake(set->premake);
	if (set->has_retention)
		part_check_retention(&set->retention);
	if (strcmp(lay.column, set->control_column) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is no longer partitioned on column \"%s\"", lay.relname,
						set->control_column)));

	/* one maintenance run per set at a time */
	if (!DatumGetBool(DirectFunctionCall2(pg_try_advisory_xact_lock_int4,
										  Int32GetDatum(PART_LOCK_KEY),
										  Int32GetDatum((int32) set->parent))))
	{
		part_action(run, set->parent, "skip", NULL,
					"another maintenance run is working on this set");
		return;
	}
	part_refresh_hold(set);

	/* creation */
	part_create_range(&lay, set, run->now, &from, &to);
	if (to - from >= PART_MAX_CREATE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("maintenance would create " INT64_FORMAT " partitions at once", to - from + 1),
				 errdetail("One run creates at most %d partitions per set.", PART_MAX_CREATE),
				 errhint("Check clinical.maintenance_now and the set's premake; create older partitions with clinical.create_time_partitions().")));
	for (k = from; k <= to; k++)
	{
		struct pg_tm tm;
		int64		lo,
					hi;
		PartStep   *step;
		Oid			existing;

		part_tm_of_index(&lay, k, &tm);
		lo = part_value_of_tm(&lay, &tm);
		part_tm_of_index(&lay, k + 1, &tm);
		hi = part_value_of_tm(&lay, &tm);
		if (part_overlaps(&lay, lo, hi))
			continue;
		step = part_plan_create(&lay, k);
		existing = get_relname_relid(step->name, get_namespace_oid(lay.nspname, false));
		if (OidIsValid(existing))
		{
			part_action(run, set->parent, "error", step->name,
						psprintf("create: relation \"%s\" already exists and is not the partition for [%s, %s)",
								 step->name, part_text_of_value(lay.typid, lo),
								 part_text_of_value(lay.typid, hi)));
			continue;
		}
		if (part_run_step(run, &lay, step))
			created++;
	}

	/* retention */
	if (set->has_retention)
	{
		int64		cutoff = part_cutoff(&lay, run->now, &set->retention);
		List	   *holds = part_load_holds(set->parent);
		bool		audit = part_is_audit_log(set->parent);
		bool		refuse = false;

		if (audit && (set->hold || holds != NIL))
		{
			refuse = true;
			part_action(run, set->parent, "skip", NULL,
						"legal hold: retention of the audit log is refused while any hold applies");
		}
		else if (audit && part_interval_cmp(&set->retention, part_audit_min()) < 0)
		{
			refuse = true;
			part_action(run, set->parent, "error", NULL,
						psprintf("retention of the audit log is shorter than clinical.audit_min_retention (%s)",
								 part_audit_min_retention));
		}
		for (i = 0; !refuse && i < lay.nchildren; i++)
		{
			PartChild  *c = &lay.children[i];
			PartHold   *h;

			if (c->is_default || c->hi_inf || c->hi > cutoff)
				continue;
			if (set->hold)
			{
				part_action(run, set->parent, "skip", c->name,
							psprintf("legal hold on the set: %s", set->hold_reason ? set->hold_reason : ""));
				continue;
			}
			if ((h = part_find_hold(holds, c->relid)) != NULL)
			{
				part_action(run, set->parent, "skip", c->name,
							psprintf("legal hold on the partition: %s", h->reason));
				continue;
			}
			(void) part_run_step(run, &lay, part_plan_retention(&lay, set, c));
		}
	}

	/* rows the new partitions could not take */
	if (lay.def && !run->lock_failed)
	{
		const char *qcol = quote_identifier(lay.column);
		char	   *sql = psprintf("SELECT count(*), min(%s)::text, max(%s)::text FROM ONLY %s",
								   qcol, qcol,
								   part_child_qname(lay.def));
		PartUser	save;
		bool		isnull;
		int64		n;

		part_become(lay.owner, &save);
		if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not count the rows of the default partition");
		part_unbecome(&save);
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (n > 0)
			part_action(run, set->parent, "report", lay.def->name,
						psprintf("%lld %s in the default partition outside the partitions' ranges (%s to %s)",
								 (long long) n, n == 1 ? "row" : "rows",
								 part_spi_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
								 part_spi_text(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3)));
	}
}

/*
 * Maintain one set inside a subtransaction, so that an unexpected error
 * costs that set only, then record its last run and error. The actions of
 * a set that failed as a whole are replaced by one error action.
 */
typedef struct PartSetCall
{
	PartRun    *run;
	PartSet    *set;
} PartSetCall;

static void
part_set_call(void *arg)
{
	PartSetCall *c = arg;
	int			level = part_push_settings(c->set->time_zone);

	part_maintain_set(c->run, c->set);
	AtEOXact_GUC(true, level);
}

static void
part_maintain_set_safely(PartRun *run, PartSet *set)
{
	PartSetCall call = {run, set};
	ErrorData  *edata;

	run->actions = NIL;
	run->last_error = NULL;
	run->lock_failed = false;

	edata = part_in_subxact(part_set_call, &call);
	if (edata != NULL)
	{
		run->actions = NIL;
		part_action(run, set->parent, "error", NULL, edata->message);
	}

	if (!run->dry_run)
	{
		Oid			types[3] = {OIDOID, TIMESTAMPTZOID, TEXTOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};

		values[0] = ObjectIdGetDatum(set->parent);
		values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
		if (run->last_error)
			values[2] = CStringGetTextDatum(run->last_error);
		else
			nulls[2] = 'n';
		part_config_exec("UPDATE clinical.partition_config SET last_run = $2, last_error = $3 "
						 "WHERE parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
						 3, types, values, nulls, false);
	}
	part_flush_actions(run);
}

/* Refuse a role that does not own the partitioned table. */
static void
part_require_owner(Oid parent)
{
	if (!part_ownercheck(parent, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(parent)),
				 errhint("Partition sets are registered and maintained by the owner of the partitioned table.")));
}

/* The sets a run covers: one (owner only), or all the caller owns. */
static List *
part_sets_for(Oid parent)
{
	List	   *sets = part_load_sets(parent);
	List	   *mine = NIL;
	ListCell   *lc;

	if (OidIsValid(parent))
	{
		if (sets == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("\"%s\" is not a registered partition set", get_rel_name(parent)),
					 errhint("Register it with clinical.create_time_partitions().")));
		part_require_owner(parent);
		return sets;
	}
	foreach(lc, sets)
	{
		PartSet    *s = lfirst(lc);

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(s->parent)) ||
			part_ownercheck(s->parent, GetUserId()))
			mine = lappend(mine, s);
	}
	return mine;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(clinical_create_time_partitions);

/*
 * clinical.create_time_partitions(parent regclass, control_column name,
 *		partition_interval interval, premake int, retention interval,
 *		retention_mode text, archive_schema name, start_at timestamptz,
 *		default_partition boolean) RETURNS integer
 */
Datum
clinical_create_time_partitions(PG_FUNCTION_ARGS)
{
	Oid			parent;
	char	   *column;
	Interval   *interval;
	int			premake;
	Interval   *retention = NULL;
	char	   *mode;
	char	   *archive_schema = NULL;
	TimestampTz start_at;
	bool		default_partition;
	PartLayout	lay;
	AttrNumber	attnum;
	Oid			atttype;
	int64		from,
				to,
				k;
	int			created = 0;
	int			level;
	char	   *tzname;
	Oid			nsp;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		PG_ARGISNULL(5) || PG_ARGISNULL(8))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parent, control_column, partition_interval, premake, retention_mode "
						"and default_partition must not be null")));
	parent = PG_GETARG_OID(0);
	column = NameStr(*PG_GETARG_NAME(1));
	interval = PG_GETARG_INTERVAL_P(2);
	premake = PG_GETARG_INT32(3);
	if (!PG_ARGISNULL(4))
		retention = PG_GETARG_INTERVAL_P(4);
	mode = text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (!PG_ARGISNULL(6))
		archive_schema = pstrdup(NameStr(*PG_GETARG_NAME(6)));
	start_at = PG_ARGISNULL(7) ? part_now() : PG_GETARG_TIMESTAMPTZ(7);
	default_partition = PG_GETARG_BOOL(8);

	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(parent)))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", parent)));
	if (get_rel_relkind(parent) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a partitioned table", get_rel_name(parent)),
				 errhint("Create it with PARTITION BY RANGE (%s).", quote_identifier(column))));
	part_require_owner(parent);

	tzname = pstrdup(pg_get_timezone_name(session_timezone));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = part_push_settings(tzname);

	part_load_layout(parent, &lay);
	attnum = get_attnum(parent, column);
	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", column, lay.relname)));
	atttype = get_atttype(parent, attnum);
	if (atttype != TIMESTAMPTZOID && atttype != TIMESTAMPOID && atttype != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" is of type %s, not timestamptz, timestamp or date",
						column, format_type_be(atttype))));
	if (strcmp(lay.column, column) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is partitioned on column \"%s\", not \"%s\"", lay.relname,
						lay.column, column)));

	part_check_interval(interval, &lay.months, &lay.step);
	part_check_premake(premake);
	if (strcmp(mode, "drop") != 0 && strcmp(mode, "detach") != 0 && strcmp(mode, "archive") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown retention mode \"%s\"", mode),
				 errhint("Use 'drop', 'detach' or 'archive'.")));
	if (retention != NULL)
	{
		part_check_retention(retention);
		if (part_interval_cmp(retention, interval) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention must not be shorter than the partition interval")));
		if (part_is_audit_log(parent) && part_interval_cmp(retention, part_audit_min()) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention of clinical.audit_log must be at least %s",
							part_audit_min_retention),
					 errdetail("clinical.audit_min_retention is %s.", part_audit_min_retention),
					 errhint("Audit records are kept at least as long as the law asks.")));
	}
	if (strcmp(mode, "archive") == 0)
	{
		if (archive_schema == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention mode 'archive' needs an archive_schema")));
		(void) get_namespace_oid(archive_schema, false);
	}
	else if (archive_schema != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive_schema is only used with retention mode 'archive'")));

	if (part_load_sets(parent) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("\"%s\" is already a registered partition set", lay.relname),
				 errhint("Change it with UPDATE clinical.partition_config.")));

	/* record it */
	{
		Oid			types[9] = {OIDOID, NAMEOID, INTERVALOID, INT4OID, INTERVALOID, TEXTOID,
		NAMEOID, BOOLOID, TEXTOID};
		Datum		values[9];
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = ObjectIdGetDatum(parent);
		values[1] = PG_GETARG_DATUM(1);
		values[2] = IntervalPGetDatum(interval);
		values[3] = Int32GetDatum(premake);
		if (retention)
			values[4] = IntervalPGetDatum(retention);
		else
			nulls[4] = 'n';
		values[5] = CStringGetTextDatum(mode);
		if (archive_schema)
			values[6] = PG_GETARG_DATUM(6);
		else
			nulls[6] = 'n';
		values[7] = BoolGetDatum(default_partition);
		values[8] = CStringGetTextDatum(tzname);
		part_config_exec("INSERT INTO clinical.partition_config (parent, control_column, "
						 "partition_interval, premake, retention, retention_mode, archive_schema, "
						 "default_partition, time_zone) VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7, $8, $9)",
						 9, types, values, nulls, false);
	}

	/* the default partition */
	if (default_partition && lay.def == NULL)
	{
		char	   *name = psprintf("%s_default", lay.relname);
		PartUser	save;

		if (strlen(name) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("default partition name \"%s\" is longer than %d bytes", name,
							NAMEDATALEN - 1),
					 errhint("Rename \"%s\" to a shorter name.", lay.relname)));
		if (OidIsValid(get_relname_relid(name, get_namespace_oid(lay.nspname, false))))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("relation \"%s\" already exists", name),
					 errdetail("It is the name of the default partition of \"%s\".", lay.relname),
					 errhint("Rename or drop the existing relation, or register the set with default_partition => false.")));
		part_become(lay.owner, &save);
		SPI_execute(psprintf("CREATE TABLE %s PARTITION OF %s DEFAULT",
							 quote_qualified_identifier(lay.nspname, name),
							 quote_qualified_identifier(lay.nspname, lay.relname)),
					false, 0);
		part_unbecome(&save);
		CommandCounterIncrement();
		part_load_layout(parent, &lay);
		part_check_interval(interval, &lay.months, &lay.step);
	}

	/* the partitions: start_at through now + premake */
	{
		struct pg_tm tm;

		part_local_tm(start_at, &tm);
		from = part_index_of_tm(&lay, &tm);
		part_local_tm(part_now(), &tm);
		to = part_index_of_tm(&lay, &tm) + premake;
		if (to < from)
			to = from;
		/* a start_at centuries back is a typo, not 100,000 tables */
		if (to - from >= PART_MAX_CREATE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("start_at %s would create " INT64_FORMAT " partitions",
							timestamptz_to_str(start_at), to - from + 1),
					 errdetail("One call creates at most %d partitions.", PART_MAX_CREATE),
					 errhint("Start later, or use a longer partition interval.")));
	}
	nsp = get_namespace_oid(lay.nspname, false);
	for (k = from; k <= to; k++)
	{
		PartStep   *step = part_plan_create(&lay, k);

		if (part_overlaps(&lay, step->lo, step->hi))
			continue;
		if (OidIsValid(get_relname_relid(step->name, nsp)))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("relation \"%s\" already exists", step->name),
					 errdetail("It is the name of the partition for [%s, %s).",
							   part_text_of_value(lay.typid, step->lo),
							   part_text_of_value(lay.typid, step->hi)),
					 errhint("Rename or drop the existing relation; partition names are never truncated or changed.")));
		(void) part_exec_step(&lay, step);
		created++;
	}

	part_spi_end(level);
	PG_RETURN_INT32(created);
}

PG_FUNCTION_INFO_V1(clinical_run_maintenance);

/*
 * clinical.run_maintenance(parent regclass, dry_run boolean)
 *		RETURNS TABLE(parent regclass, action text, partition text, detail text)
 */
Datum
clinical_run_maintenance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			parent = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	PartRun		run;
	List	   *sets;
	ListCell   *lc;
	int			level;

	/* a NULL safety switch is not "go ahead" */
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dry_run must not be null"),
				 errhint("Pass true to see what a run would do, false to do it.")));
	InitMaterializedSRF(fcinfo, 0);
	memset(&run, 0, sizeof(run));
	run.dry_run = PG_GETARG_BOOL(1);
	run.now = part_now();
	run.tupstore = rsinfo->setResult;
	run.tupdesc = rsinfo->setDesc;
	run.tuple_owner = CurrentResourceOwner;

	level = part_spi_begin(0);
	sets = part_sets_for(parent);
	foreach(lc, sets)
		part_maintain_set_safely(&run, lfirst(lc));
	part_spi_end(level);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(clinical_run_maintenance_proc);

/*
 * PROCEDURE clinical.run_maintenance_proc(parent regclass)
 *
 * Maintenance for schedulers: commits after each set, so the locks a set's
 * DDL took are released before the next set starts. Called inside a
 * transaction block it cannot commit and works like run_maintenance().
 */
Datum
clinical_run_maintenance_proc(PG_FUNCTION_ARGS)
{
	Oid			parent = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	bool		nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	MemoryContext cxt;
	MemoryContext oldcxt;
	List	   *sets;
	ListCell   *lc;
	PartRun		run;
	int			level;

	cxt = AllocSetContextCreate(PortalContext, "clinical maintenance", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);

	memset(&run, 0, sizeof(run));
	run.now = part_now();
	run.notice = true;

	if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	level = part_push_settings(NULL);
	sets = part_sets_for(parent);
	AtEOXact_GUC(true, level);
	MemoryContextSwitchTo(cxt);
	foreach(lc, sets)
	{
		level = part_push_settings(NULL);
		part_maintain_set_safely(&run, lfirst(lc));
		AtEOXact_GUC(true, level);
		MemoryContextSwitchTo(cxt);
		if (nonatomic)
		{
			SPI_commit();
			MemoryContextSwitchTo(cxt);
		}
	}
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(cxt);
	PG_RETURN_VOID();
}

/* Common part of both set_legal_hold variants. */
static void
part_set_hold(Oid parent, Oid partition, bool hold, const char *reason)
{
	int			level;

	if (hold && (reason == NULL || reason[strspn(reason, " \t\r\n")] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a legal hold needs a reason"),
				 errhint("Name the matter, e.g. the case or request the hold is for.")));
	part_require_owner(parent);
	/* the set's maintenance lock: a run busy with this set finishes first */
	(void) DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(PART_LOCK_KEY),
							   Int32GetDatum((int32) parent));
	level = part_spi_begin(0);
	if (part_load_sets(parent) == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is not a registered partition set", get_rel_name(parent)),
				 errhint("Register it with clinical.create_time_partitions().")));

	if (!OidIsValid(partition))
	{
		Oid			types[3] = {OIDOID, BOOLOID, TEXTOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};

		values[0] = ObjectIdGetDatum(parent);
		values[1] = BoolGetDatum(hold);
		if (hold)
			values[2] = CStringGetTextDatum(reason);
		else
			nulls[2] = 'n';
		part_config_exec("UPDATE clinical.partition_config SET legal_hold = $2, "
						 "legal_hold_reason = $3, "
						 "legal_hold_since = CASE WHEN $2 THEN pg_catalog.now() END "
						 "WHERE parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
						 3, types, values, nulls, false);
	}
	else
	{
		Oid			types[4] = {OIDOID, OIDOID, TEXTOID, NAMEOID};
		Datum		values[4];
		bool		found = false;
		List	   *kids = find_inheritance_children(parent, NoLock);

		found = list_member_oid(kids, partition);
		if (!found && hold)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not a partition of \"%s\"", get_rel_name(partition),
							get_rel_name(parent))));
		values[0] = ObjectIdGetDatum(parent);
		values[1] = ObjectIdGetDatum(partition);
		values[2] = CStringGetTextDatum(hold ? reason : "");
		values[3] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
		if (hold)
			part_config_exec("INSERT INTO clinical.partition_hold (partition, parent, reason, held_by) "
							 "VALUES ($2::pg_catalog.regclass, $1::pg_catalog.regclass, $3, $4) "
							 "ON CONFLICT (partition) DO UPDATE SET reason = EXCLUDED.reason, "
							 "held_by = EXCLUDED.held_by, held_at = pg_catalog.now()",
							 4, types, values, NULL, false);
		else
			part_config_exec("DELETE FROM clinical.partition_hold "
							 "WHERE partition OPERATOR(pg_catalog.=) $2::pg_catalog.regclass "
							 "AND parent OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							 2, types, values, NULL, false);
	}
	part_spi_end(level);
	ereport(LOG,
			(errmsg("clinical: legal hold %s on %s%s%s%s%s", hold ? "placed" : "released",
					get_rel_name(parent), OidIsValid(partition) ? " partition " : "",
					OidIsValid(partition) ? get_rel_name(partition) : "",
					reason ? ": " : "", reason ? reason : "")));
}

PG_FUNCTION_INFO_V1(clinical_set_legal_hold);

/* clinical.set_legal_hold(parent regclass, hold boolean, reason text) RETURNS void */
Datum
clinical_set_legal_hold(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parent and hold must not be null")));
	part_set_hold(PG_GETARG_OID(0), InvalidOid, PG_GETARG_BOOL(1),
				  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(clinical_set_partition_legal_hold);

/*
 * clinical.set_legal_hold(parent regclass, partition regclass, hold boolean,
 *		reason text) RETURNS void
 */
Datum
clinical_set_partition_legal_hold(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("parent, partition and hold must not be null")));
	part_set_hold(PG_GETARG_OID(0), PG_GETARG_OID(1), PG_GETARG_BOOL(2),
				  PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(clinical_partition_bounds);

/*
 * clinical.partition_bounds(parent regclass) RETURNS TABLE(partition regclass,
 *		is_default boolean, lower_bound text, upper_bound text)
 * The partitions of a partitioned table in bound order, default last.
 */
Datum
clinical_partition_bounds(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PartLayout	lay;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (!SearchSysCacheExists1(RELOID, PG_GETARG_DATUM(0)))
		return (Datum) 0;		/* dropped: no partitions */
	if (get_rel_relkind(PG_GETARG_OID(0)) != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a partitioned table", get_rel_name(PG_GETARG_OID(0)))));
	part_load_layout(PG_GETARG_OID(0), &lay);
	for (i = 0; i < lay.nchildren; i++)
	{
		PartChild  *c = &lay.children[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = ObjectIdGetDatum(c->relid);
		values[1] = BoolGetDatum(c->is_default);
		if (c->is_default)
			nulls[2] = nulls[3] = true;
		else
		{
			values[2] = CStringGetTextDatum(c->lo_text);
			values[3] = CStringGetTextDatum(c->hi_text);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------------
 * Background worker
 * ---------------------------------------------------------------------
 */

static TimestampTz part_worker_last_run = 0;
static MemoryContext part_worker_cxt = NULL;

/* Copy a set into the worker's own memory (it outlives the transaction). */
static PartSet *
part_copy_set(PartSet *from)
{
	PartSet    *s = palloc(sizeof(PartSet));

	memcpy(s, from, sizeof(PartSet));
	s->control_column = pstrdup(from->control_column);
	s->mode = pstrdup(from->mode);
	s->archive_schema = from->archive_schema ? pstrdup(from->archive_schema) : NULL;
	s->hold_reason = from->hold_reason ? pstrdup(from->hold_reason) : NULL;
	s->time_zone = from->time_zone ? pstrdup(from->time_zone) : NULL;
	return s;
}

/*
 * One scheduled run: read the sets, then maintain each in its own
 * transaction, so that its locks are released before the next set.
 */
static void
part_worker_maintain(void)
{
	List	   *sets = NIL;
	ListCell   *lc;
	PartRun		run;
	int			level;
	bool		installed;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "clinical: partition maintenance");
	/* an older install script may lack the table */
	installed = OidIsValid(get_namespace_oid("clinical", true)) &&
		OidIsValid(get_relname_relid("partition_config", get_namespace_oid("clinical", true)));
	if (installed)
	{
		level = part_spi_begin(0);
		memset(&run, 0, sizeof(run));
		run.now = part_now();
		foreach(lc, part_load_sets(InvalidOid))
		{
			MemoryContext old = MemoryContextSwitchTo(part_worker_cxt);

			sets = lappend(sets, part_copy_set(lfirst(lc)));
			MemoryContextSwitchTo(old);
		}
		part_spi_end(level);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, sets)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		level = part_spi_begin(0);
		part_maintain_set_safely(&run, lfirst(lc));
		part_spi_end(level);
		PopActiveSnapshot();
		CommitTransactionCommand();
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * The worker's task: every clinical.maintenance_interval (and as soon as
 * the worker starts) maintain every registered set. An error is logged and
 * waits for the next run rather than ending the worker. Returns the
 * milliseconds until the next run is due.
 */
long
part_worker_run(TimestampTz now)
{
	long		interval_ms;

	if (clinical_maintenance_interval <= 0)
		return 0;
	interval_ms = (long) clinical_maintenance_interval * 1000L;
	if (part_worker_last_run != 0 &&
		!TimestampDifferenceExceeds(part_worker_last_run, now, (int) Min(interval_ms, INT_MAX)))
	{
		long		elapsed = (long) ((now - part_worker_last_run) / 1000);

		return Max(interval_ms - elapsed, 1);
	}
	part_worker_last_run = now;

	if (part_worker_cxt == NULL)
		part_worker_cxt = AllocSetContextCreate(TopMemoryContext,
												"clinical partition maintenance",
												ALLOCSET_DEFAULT_SIZES);
	PG_TRY();
	{
		part_worker_maintain();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(TopMemoryContext);
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
	}
	PG_END_TRY();
	MemoryContextReset(part_worker_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return (long) clinical_maintenance_interval * 1000L;
}
