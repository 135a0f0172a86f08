/*-------------------------------------------------------------------------
 *
 * src/audit.c
 *	  The audit trail: the C row trigger that writes who changed what, when,
 *	  from where and why into clinical.audit_log; the guard that keeps the
 *	  log append-only; the content hash of each change; seals that chain
 *	  the hashes of committed changes (keyed when a keyring is configured);
 *	  audit_verify, which recomputes both; and audit_redact, the one
 *	  sanctioned edit.
 *
 *	  Per trigger, the column list, options and output functions are kept
 *	  in a relcache-invalidated cache; each change row goes straight into
 *	  the month's partition (table_tuple_insert and index inserts through a
 *	  handle opened once per transaction), with no privilege check, so
 *	  audited users need no privilege on the log and cannot write to it
 *	  themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

#include "access/brin.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/datetime.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "clinical.h"

#define AUDIT_HASH_LEN	32
#define AUDIT_REDACTED	"[redacted]"

/* settings */
static char *audit_app_user = NULL;
static char *audit_change_reason = NULL;
static int	audit_seal_interval = 60;	/* seconds, 0 = off */

/* true only while audit_redact updates the log; the guard lets that through */
static bool audit_guard_bypass = false;

/*
 * The columns of clinical.audit_log that a change row fills and its
 * content hash covers, in hashing order. row_hash itself comes last and is
 * not hashed. The SQL definition in src/sql/20_audit.sql must agree.
 */
typedef enum AuditHashKind
{
	AH_INT64,
	AH_INT32,
	AH_OID,
	AH_VARLENA
} AuditHashKind;

typedef struct AuditLogColumn
{
	const char *name;
	Oid			type;
	AuditHashKind kind;
} AuditLogColumn;

enum
{
	AL_CHANGE_ID, AL_XACT_TIME, AL_CLOCK_TIME, AL_TXID, AL_TABLE_OID,
	AL_TABLE_NAME, AL_OPERATION, AL_PK, AL_OLD_ROW, AL_NEW_ROW,
	AL_CHANGED_COLUMNS, AL_SESSION_USER, AL_ROLE, AL_APP_USER, AL_REASON,
	AL_CLIENT_ADDR, AL_CLIENT_PORT, AL_APPLICATION, AL_BACKEND_PID,
	AL_ROW_HASH,
	AL_NCOLS
};

#define AL_NHASHED AL_ROW_HASH

static const AuditLogColumn audit_log_columns[AL_NCOLS] = {
	{"change_id", INT8OID, AH_INT64},
	{"xact_time", TIMESTAMPTZOID, AH_INT64},
	{"clock_time", TIMESTAMPTZOID, AH_INT64},
	{"txid", INT8OID, AH_INT64},
	{"table_oid", OIDOID, AH_OID},
	{"table_name", TEXTOID, AH_VARLENA},
	{"operation", TEXTOID, AH_VARLENA},
	{"pk", JSONBOID, AH_VARLENA},
	{"old_row", JSONBOID, AH_VARLENA},
	{"new_row", JSONBOID, AH_VARLENA},
	{"changed_columns", TEXTARRAYOID, AH_VARLENA},
	{"session_user_name", TEXTOID, AH_VARLENA},
	{"role_name", TEXTOID, AH_VARLENA},
	{"app_user", TEXTOID, AH_VARLENA},
	{"reason", TEXTOID, AH_VARLENA},
	{"client_addr", INETOID, AH_VARLENA},
	{"client_port", INT4OID, AH_INT32},
	{"application_name", TEXTOID, AH_VARLENA},
	{"backend_pid", INT4OID, AH_INT32},
	{"row_hash", BYTEAOID, AH_VARLENA},
};

/* How a column's value becomes a jsonb value. */
typedef enum AuditValueKind
{
	AV_STRING,					/* text-like: the bytes as a string */
	AV_INTEGER,					/* int2/int4/int8: a number */
	AV_FLOAT,					/* float4/float8: a number, or a string if not finite */
	AV_NUMERIC,					/* numeric: a number, or a string for NaN/inf */
	AV_BOOL,
	AV_JSONB,
	AV_JSON,
	AV_DATETIME,				/* ISO 8601, as to_jsonb writes it */
	AV_OTHER					/* the type's text output as a string */
} AuditValueKind;

typedef struct AuditColumn
{
	AttrNumber	attnum;			/* 1-based */
	char	   *name;
	int			namelen;
	Oid			basetype;
	AuditValueKind kind;
	bool		pseudonymize;
	bool		in_pk;
	FmgrInfo	out;			/* output function, for AV_OTHER and pseudonyms */
} AuditColumn;

typedef struct AuditEntry
{
	ClinicalTrigCacheEntry head;
	int			ncols;			/* audited (not excluded, not dropped) columns */
	AuditColumn *cols;
	int		   *key_order;		/* cols indexes in jsonb key order */
	bool		has_json;		/* a json/jsonb column is stored as such */
	int			npk;
	bool		require_reason;
	char	   *table_name;		/* schema-qualified, quoted */
} AuditEntry;

static ClinicalTrigCache *audit_cache = NULL;

/* the log, found once per backend */
static Oid	audit_log_owner = InvalidOid;
static Oid	audit_seq_oid = InvalidOid;

/* the partition of the log known to cover [lo, hi) of xact_time */
static Oid	audit_part_oid = InvalidOid;
static TimestampTz audit_part_lo = 0;
static TimestampTz audit_part_hi = 0;

/* per-backend connection facts, computed once */
static bool audit_client_done = false;
static Datum audit_client_addr = (Datum) 0;
static bool audit_client_addr_null = true;
static int	audit_client_port = 0;

/* user name cache: the last user looked up */
static Oid	audit_name_oid[2] = {InvalidOid, InvalidOid};
static char *audit_name_str[2] = {NULL, NULL};

void
audit_define_gucs(void)
{
	DefineCustomStringVariable("clinical.app_user",
							   "Application-level user recorded in the audit trail.",
							   "Set per transaction with clinical.set_context() or SET LOCAL.",
							   &audit_app_user, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("clinical.change_reason",
							   "Reason for the change recorded in the audit trail.",
							   "Set per transaction with clinical.set_context() or SET LOCAL.",
							   &audit_change_reason, "",
							   PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("clinical.audit_seal_interval",
							"Seconds between the background worker's audit seals (0 = off).",
							NULL,
							&audit_seal_interval, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/*-------------------------------------------------------------------------
 * Content hash
 *-------------------------------------------------------------------------
 */

/*
 * Feed one value into the hash in the canonical encoding: a presence byte,
 * then integers as 8 big-endian bytes, or a varlena's length (4 bytes,
 * big-endian) and its detoasted bytes. jsonb is hashed in its binary form,
 * which is the same for equal documents and stable across major versions
 * (pg_upgrade keeps it).
 */
static void
audit_hash_value(SHA256_CTX *ctx, AuditHashKind kind, Datum d, bool isnull)
{
	unsigned char buf[8];
	uint64		v;
	int			i;

	buf[0] = isnull ? 0 : 1;
	SHA256_Update(ctx, buf, 1);
	if (isnull)
		return;

	switch (kind)
	{
		case AH_INT64:
			v = (uint64) DatumGetInt64(d);
			break;
		case AH_INT32:
			v = (uint64) (int64) DatumGetInt32(d);
			break;
		case AH_OID:
			v = (uint64) DatumGetObjectId(d);
			break;
		case AH_VARLENA:
			{
				struct varlena *p = PG_DETOAST_DATUM_PACKED(d);
				uint32		len = VARSIZE_ANY_EXHDR(p);

				buf[0] = len >> 24;
				buf[1] = len >> 16;
				buf[2] = len >> 8;
				buf[3] = len;
				SHA256_Update(ctx, buf, 4);
				SHA256_Update(ctx, VARDATA_ANY(p), len);
				if ((Pointer) p != DatumGetPointer(d))
					pfree(p);
				return;
			}
		default:
			elog(ERROR, "unknown audit hash kind %d", (int) kind);
			return;
	}
	for (i = 7; i >= 0; i--)
	{
		buf[i] = v & 0xff;
		v >>= 8;
	}
	SHA256_Update(ctx, buf, 8);
}

/* The content hash of a change row given in audit_log_columns order. */
static void
audit_row_digest(const Datum *values, const bool *nulls, unsigned char *out)
{
	SHA256_CTX	ctx;
	int			i;

	SHA256_Init(&ctx);
	SHA256_Update(&ctx, "clinical.audit_log v1", 21);
	for (i = 0; i < AL_NHASHED; i++)
		audit_hash_value(&ctx, audit_log_columns[i].kind, values[i], nulls[i]);
	SHA256_Final(out, &ctx);
}

static bytea *
audit_bytea(const unsigned char *data, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

PG_FUNCTION_INFO_V1(clinical_audit_row_hash);

/*
 * clinical._audit_row_hash(clinical.audit_log) RETURNS bytea
 * Recomputes the content hash of a stored change row; audit_verify compares
 * it with the row's row_hash.
 */
Datum
clinical_audit_row_hash(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rec = PG_GETARG_HEAPTUPLEHEADER(0);
	TupleDesc	desc;
	HeapTupleData tuple;
	Datum		values[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	unsigned char digest[AUDIT_HASH_LEN];
	int			i;

	desc = lookup_rowtype_tupdesc(HeapTupleHeaderGetTypeId(rec),
								  HeapTupleHeaderGetTypMod(rec));
	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;

	for (i = 0; i < AL_NHASHED; i++)
	{
		int			attnum = 0;
		int			j;

		for (j = 0; j < desc->natts; j++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, j);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), audit_log_columns[i].name) == 0)
			{
				if (att->atttypid != audit_log_columns[i].type)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"%s\" has type %s, expected %s",
									audit_log_columns[i].name,
									format_type_be(att->atttypid),
									format_type_be(audit_log_columns[i].type)),
							 errhint("Pass a row of clinical.audit_log.")));
				attnum = j + 1;
				break;
			}
		}
		if (attnum == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("record has no column \"%s\"", audit_log_columns[i].name),
					 errhint("Pass a row of clinical.audit_log.")));
		values[i] = heap_getattr(&tuple, attnum, desc, &nulls[i]);
	}
	ReleaseTupleDesc(desc);

	audit_row_digest(values, nulls, digest);
	PG_RETURN_BYTEA_P(audit_bytea(digest, AUDIT_HASH_LEN));
}

/*-------------------------------------------------------------------------
 * Writer
 *-------------------------------------------------------------------------
 */

/* A role was renamed or dropped: look names up again. */
static void
audit_role_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	audit_name_oid[0] = audit_name_oid[1] = InvalidOid;
}

/* A role's name, from a two-entry cache (session user, current role). */
static const char *
audit_role_name(int slot, Oid roleid)
{
	static bool registered = false;

	if (!registered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, audit_role_callback, (Datum) 0);
		registered = true;
	}
	if (audit_name_oid[slot] != roleid || audit_name_str[slot] == NULL)
	{
		char	   *name = GetUserNameFromId(roleid, false);

		if (audit_name_str[slot])
			pfree(audit_name_str[slot]);
		audit_name_str[slot] = MemoryContextStrdup(TopMemoryContext, name);
		audit_name_oid[slot] = roleid;
	}
	return audit_name_str[slot];
}

/*
 * Client address and port of this backend (NULL for Unix sockets), from
 * inet_client_addr() and inet_client_port(), once per backend.
 */
static void
audit_client_info(void)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		addr;
	Datum		port;
	MemoryContext old;

	if (audit_client_done)
		return;
	audit_client_done = true;

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	old = MemoryContextSwitchTo(TopMemoryContext);
	addr = inet_client_addr(fcinfo);
	MemoryContextSwitchTo(old);
	if (fcinfo->isnull)
		return;
	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	port = inet_client_port(fcinfo);
	audit_client_addr = addr;
	audit_client_addr_null = false;
	audit_client_port = fcinfo->isnull ? 0 : DatumGetInt32(port);
}

static Datum
audit_text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL || s[0] == '\0');
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}

static Oid	audit_log_oid = InvalidOid;
static bool audit_callback_registered = false;
static bool audit_reset_pending = false;

/*
 * The log (or everything) changed, e.g. DROP and CREATE EXTENSION: forget
 * the plan, the OIDs and the known partition range; the next write looks
 * them up again.
 */
static void
audit_relcache_callback(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != audit_log_oid && relid != audit_seq_oid &&
		relid != audit_part_oid)
		return;
	/* look everything up again at the next write */
	audit_reset_pending = true;
	audit_part_lo = audit_part_hi = 0;
}

static void audit_xact_callback(XactEvent event, void *arg);
static void audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);

/* Find (once per backend, again after a reset) the log, its owner and sequence. */
static void
audit_lookup_log(void)
{
	Oid			nsp;
	HeapTuple	tp;

	if (audit_reset_pending)
	{
		audit_log_oid = audit_seq_oid = audit_part_oid = InvalidOid;
		audit_part_lo = audit_part_hi = 0;
		audit_reset_pending = false;
	}
	if (OidIsValid(audit_log_oid))
		return;

	if (!audit_callback_registered)
	{
		CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
		RegisterXactCallback(audit_xact_callback, NULL);
		RegisterSubXactCallback(audit_subxact_callback, NULL);
		audit_callback_registered = true;
	}
	nsp = get_namespace_oid("clinical", false);
	audit_log_oid = get_relname_relid("audit_log", nsp);
	audit_seq_oid = get_relname_relid("audit_log_change_id_seq", nsp);
	if (!OidIsValid(audit_log_oid) || !OidIsValid(audit_seq_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"clinical.audit_log\" or its sequence does not exist"),
				 errhint("Install the extension with CREATE EXTENSION clinical.")));
	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(audit_log_oid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for relation %u", audit_log_oid);
	audit_log_owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);
}

/*
 * The partition the current transaction writes to, opened once per
 * transaction under the top transaction's resource owner (so a rolled-back
 * subtransaction does not close it) and closed before commit. Rows go in
 * with table_tuple_insert and ExecInsertIndexTuples: no executor start-up,
 * no partition routing and no SPI per row. The partition has no triggers
 * on INSERT and no constraints but NOT NULL, which the writer satisfies.
 */
typedef struct AuditSink
{
	bool		open;
	SubTransactionId subid;		/* subtransaction that opened it */
	Oid			partoid;
	ClinicalRowWriter *w;
	int			map[AL_NCOLS];	/* partition attribute index of each column */
} AuditSink;

static AuditSink audit_sink;

static void
audit_sink_close(void)
{
	ResourceOwner save = CurrentResourceOwner;

	if (!audit_sink.open)
		return;
	CurrentResourceOwner = TopTransactionResourceOwner;
	clinical_rowwriter_close(audit_sink.w);
	CurrentResourceOwner = save;
	audit_sink.open = false;
}

static void
audit_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			audit_sink_close();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* resource owner clean-up has released the relations */
			audit_sink.open = false;
			break;
		default:
			break;
	}
}

/*
 * A rolled-back subtransaction that opened the sink may also have created
 * the partition: close the sink then, so no reference outlives it.
 */
static void
audit_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && audit_sink.open && audit_sink.subid >= mySubid)
		audit_sink_close();
}

static void
audit_sink_open(Oid partoid)
{
	ResourceOwner save = CurrentResourceOwner;
	MemoryContext old;
	int			i;

	if (audit_sink.open && audit_sink.partoid == partoid)
		return;
	audit_sink_close();

	old = MemoryContextSwitchTo(TopTransactionContext);
	CurrentResourceOwner = TopTransactionResourceOwner;
	audit_sink.w = clinical_rowwriter_open(partoid);
	CurrentResourceOwner = save;
	MemoryContextSwitchTo(old);

	for (i = 0; i < AL_NCOLS; i++)
		audit_sink.map[i] = clinical_rowwriter_attno(audit_sink.w, audit_log_columns[i].name,
													 audit_log_columns[i].type);
	audit_sink.partoid = partoid;
	audit_sink.subid = GetCurrentSubTransactionId();
	audit_sink.open = true;
}

/* Insert one change row through the sink. */
static void
audit_sink_insert(const Datum *values, const bool *nulls)
{
	ClinicalRowWriter *w = audit_sink.w;
	int			i;

	clinical_rowwriter_clear(w);
	for (i = 0; i < AL_NCOLS; i++)
	{
		w->values[audit_sink.map[i]] = values[i];
		w->nulls[audit_sink.map[i]] = nulls[i];
	}
	clinical_rowwriter_insert(w);
}

/*
 * Make sure a partition of the log covers ts. The answer is cached; on a
 * miss, clinical._audit_partition_for() finds or creates the partition
 * (as the log's owner) and returns its bounds.
 */
static void
audit_ensure_partition(TimestampTz ts)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	bool		isnull;
	int			rc;

	if (OidIsValid(audit_part_oid) && ts >= audit_part_lo && ts < audit_part_hi)
		return;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = TimestampTzGetDatum(ts);
	/* every name qualified: this runs as the log's owner */
	rc = SPI_execute_with_args("SELECT lo, hi, part::pg_catalog.oid FROM clinical._audit_partition_for($1)",
							   1, argtypes, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "clinical._audit_partition_for failed: %s",
			 SPI_result_code_string(rc));
	audit_part_lo = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1, &isnull));
	audit_part_hi = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2, &isnull));
	audit_part_oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull || !OidIsValid(audit_part_oid))
		elog(ERROR, "clinical._audit_partition_for returned no partition");
	SPI_finish();
}

/*
 * Write one change row. The caller fills table, operation and the row
 * columns (values/nulls at AL_PK .. AL_CHANGED_COLUMNS); this fills the
 * rest: id, times, transaction id, who and where, and the content hash.
 * Returns the change id.
 */
static int64
audit_write(Oid table_oid, const char *table_name, const char *operation,
			Datum *values, bool *nulls, bool outer_role)
{
	unsigned char digest[AUDIT_HASH_LEN];
	Oid			save_userid;
	int			save_sec;
	int64		change_id;

	audit_client_info();

	/* who and where, captured before switching to the log's owner */
	values[AL_SESSION_USER] = CStringGetTextDatum(audit_role_name(0, GetSessionUserId()));
	nulls[AL_SESSION_USER] = false;
	/* events come through SECURITY DEFINER functions: record who called them */
	values[AL_ROLE] = CStringGetTextDatum(audit_role_name(1, outer_role ? GetOuterUserId() : GetUserId()));
	nulls[AL_ROLE] = false;
	values[AL_APP_USER] = audit_text_or_null(audit_app_user, &nulls[AL_APP_USER]);
	values[AL_REASON] = audit_text_or_null(audit_change_reason, &nulls[AL_REASON]);
	values[AL_CLIENT_ADDR] = audit_client_addr;
	nulls[AL_CLIENT_ADDR] = audit_client_addr_null;
	values[AL_CLIENT_PORT] = Int32GetDatum(audit_client_port);
	nulls[AL_CLIENT_PORT] = audit_client_addr_null;
	values[AL_APPLICATION] = audit_text_or_null(application_name, &nulls[AL_APPLICATION]);
	values[AL_BACKEND_PID] = Int32GetDatum(MyProcPid);
	nulls[AL_BACKEND_PID] = false;

	values[AL_XACT_TIME] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	nulls[AL_XACT_TIME] = false;
	values[AL_CLOCK_TIME] = TimestampTzGetDatum(GetCurrentTimestamp());
	nulls[AL_CLOCK_TIME] = false;
	values[AL_TXID] = Int64GetDatum((int64) U64FromFullTransactionId(GetTopFullTransactionId()));
	nulls[AL_TXID] = false;
	values[AL_TABLE_OID] = ObjectIdGetDatum(table_oid);
	nulls[AL_TABLE_OID] = !OidIsValid(table_oid);
	values[AL_TABLE_NAME] = audit_text_or_null(table_name, &nulls[AL_TABLE_NAME]);
	values[AL_OPERATION] = CStringGetTextDatum(operation);
	nulls[AL_OPERATION] = false;

	audit_lookup_log();

	/* the log's owner finds (or creates) the partition and draws the id */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(audit_log_owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	audit_ensure_partition(DatumGetTimestampTz(values[AL_XACT_TIME]));
	change_id = nextval_internal(audit_seq_oid, false);
	SetUserIdAndSecContext(save_userid, save_sec);

	values[AL_CHANGE_ID] = Int64GetDatum(change_id);
	nulls[AL_CHANGE_ID] = false;
	audit_row_digest(values, nulls, digest);
	values[AL_ROW_HASH] = PointerGetDatum(audit_bytea(digest, AUDIT_HASH_LEN));
	nulls[AL_ROW_HASH] = false;

	audit_sink_open(audit_part_oid);
	audit_sink_insert(values, nulls);
	return change_id;
}

/*-------------------------------------------------------------------------
 * Row trigger
 *-------------------------------------------------------------------------
 */

/*
 * Could jsonb refuse this text that json accepted? json checks the syntax
 * only; jsonb also converts \u escapes (\u0000, surrogates, and in a
 * database not in UTF-8 any code point above 0x7f are errors) and numbers
 * (beyond numeric's range an error), and has size limits. Inside strings
 * only such escapes count, outside them only long digit runs and
 * exponents of four or more digits: ordinary json (UUIDs, hex ids, text
 * with "\u00e9") takes the direct path.
 */
static bool
audit_json_risky(const char *s)
{
	bool		in_string = false;
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);
	size_t		digits = 0;
	const char *p;

	for (p = s; *p; p++)
	{
		if (in_string)
		{
			if (*p == '"')
				in_string = false;
			else if (*p == '\\' && p[1] == 'u')
			{
				unsigned int v = 0;
				int			i;

				for (i = 2; i < 6 && isxdigit((unsigned char) p[i]); i++)
					v = v * 16 + (isdigit((unsigned char) p[i]) ? p[i] - '0' :
								  (tolower((unsigned char) p[i]) - 'a' + 10));
				if (i < 6 || v == 0 || (v >= 0xD800 && v <= 0xDFFF) || (!utf8 && v > 0x7F))
					return true;
				p += 5;
			}
			else if (*p == '\\' && p[1] != '\0')
				p++;
			continue;
		}
		if (*p == '"')
		{
			in_string = true;
			digits = 0;
			continue;
		}
		if (*p >= '0' && *p <= '9')
		{
			if (++digits > 1000)
				return true;
			continue;
		}
		if ((*p == 'e' || *p == 'E') && digits > 0)
		{
			const char *q = p + 1;
			int			edigits = 0;

			if (*q == '+' || *q == '-')
				q++;
			while (*q >= '0' && *q <= '9')
			{
				q++;
				edigits++;
			}
			if (edigits >= 4)
				return true;
		}
		digits = 0;
	}
	return (size_t) (p - s) > 16 * 1024 * 1024;
}

/*
 * The jsonb form of a json value's text, or false when jsonb refuses it
 * (a data exception or a size limit; other errors, a cancel say, are
 * raised). A value that could not fail is converted directly; the others
 * in a subtransaction, so that an error leaves nothing behind.
 */
static bool
audit_json_to_jsonb(const char *s, Jsonb **out)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	if (!audit_json_risky(s))
	{
		*out = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
		return true;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		*out = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			edata->sqlerrcode != ERRCODE_PROGRAM_LIMIT_EXCEEDED)
			ReThrowError(edata);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

static AuditValueKind
audit_value_kind(Oid basetype)
{
	switch (basetype)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
			return AV_STRING;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return AV_INTEGER;
		case FLOAT4OID:
		case FLOAT8OID:
			return AV_FLOAT;
		case NUMERICOID:
			return AV_NUMERIC;
		case BOOLOID:
			return AV_BOOL;
		case JSONBOID:
			return AV_JSONB;
		case JSONOID:
			return AV_JSON;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
		case TIMETZOID:
			return AV_DATETIME;
		default:
			return AV_OTHER;
	}
}

/*
 * qsort_arg comparator of column indexes (arg: the columns) in the order of
 * jsonb object keys: shorter names first, equal lengths bytewise.
 */
static int
audit_key_cmp(const void *a, const void *b, void *arg)
{
	const AuditColumn *cols = (const AuditColumn *) arg;
	const AuditColumn *ca = &cols[*(const int *) a];
	const AuditColumn *cb = &cols[*(const int *) b];

	if (ca->namelen != cb->namelen)
		return ca->namelen > cb->namelen ? 1 : -1;
	return memcmp(ca->name, cb->name, ca->namelen);
}

/*
 * Decode the trigger's arguments: "x:column" excludes a column,
 * "p:column" pseudonymises it, "r" requires a reason.
 */
static void
audit_fill_entry(AuditEntry *entry, Relation rel, Trigger *trigger)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(entry->head.cxt);
	Bitmapset  *pkattrs;
	bool	   *excluded = palloc0(sizeof(bool) * (desc->natts + 1));
	bool	   *pseudo = palloc0(sizeof(bool) * (desc->natts + 1));
	int			i;

	entry->require_reason = false;
	for (i = 0; i < trigger->tgnargs; i++)
	{
		const char *arg = trigger->tgargs[i];
		AttrNumber	attnum;

		if (strcmp(arg, "r") == 0)
		{
			entry->require_reason = true;
			continue;
		}
		if ((arg[0] != 'x' && arg[0] != 'p') || arg[1] != ':')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid argument \"%s\" of audit trigger \"%s\"",
							arg, trigger->tgname),
					 errhint("Attach audit triggers with clinical.enable_audit(), not CREATE TRIGGER.")));
		attnum = get_attnum(RelationGetRelid(rel), arg + 2);
		if (attnum <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" named in the audit options of \"%s\" does not exist",
							arg + 2, RelationGetRelationName(rel)),
					 errdetail("The column was renamed or dropped after clinical.enable_audit() was called."),
					 errhint("Call clinical.enable_audit() again with the current column names.")));
		if (arg[0] == 'x')
			excluded[attnum] = true;
		else
			pseudo[attnum] = true;
	}

	pkattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_PRIMARY_KEY);

	entry->cols = palloc0(sizeof(AuditColumn) * desc->natts);
	entry->ncols = 0;
	entry->npk = 0;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AuditColumn *c;
		Oid			outfn;
		bool		isvarlena;

		if (att->attisdropped || excluded[i + 1])
			continue;
		c = &entry->cols[entry->ncols++];
		c->attnum = i + 1;
		c->name = pstrdup(NameStr(att->attname));
		c->namelen = strlen(c->name);
		c->basetype = getBaseType(att->atttypid);
		c->kind = audit_value_kind(c->basetype);
		c->pseudonymize = pseudo[i + 1];
		c->in_pk = bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, pkattrs);
		if (c->in_pk)
			entry->npk++;
		getTypeOutputInfo(att->atttypid, &outfn, &isvarlena);
		fmgr_info_cxt(outfn, &c->out, entry->head.cxt);
	}

	entry->has_json = false;
	entry->key_order = palloc(sizeof(int) * Max(entry->ncols, 1));
	for (i = 0; i < entry->ncols; i++)
	{
		entry->key_order[i] = i;
		if ((entry->cols[i].kind == AV_JSONB || entry->cols[i].kind == AV_JSON) &&
			!entry->cols[i].pseudonymize)
			entry->has_json = true;
	}
	qsort_arg(entry->key_order, entry->ncols, sizeof(int), audit_key_cmp, entry->cols);

	entry->table_name = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	MemoryContextSwitchTo(old);
	entry->head.valid = true;
}

static void
audit_string_value(JsonbValue *v, const char *s, int len)
{
	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = len;
}

/*
 * One column's value as a jsonb value: a scalar, or for a json or jsonb
 * column stored as such a jbvBinary container.
 */
static void
audit_value(AuditColumn *c, Datum d, bool isnull, JsonbValue *vp)
{
	if (isnull)
	{
		vp->type = jbvNull;
		return;
	}

	if (c->pseudonymize)
	{
		char	   *s;
		char	   *p;

		if (c->kind == AV_STRING)
		{
			text	   *t = DatumGetTextPP(d);

			p = clinical_pseudonym_cstring(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 0);
		}
		else
		{
			s = OutputFunctionCall(&c->out, d);
			p = clinical_pseudonym_cstring(s, strlen(s), 0);
		}
		audit_string_value(vp, p, strlen(p));
		return;
	}

	switch (c->kind)
	{
		case AV_STRING:
			{
				if (c->basetype == NAMEOID)
				{
					char	   *s = NameStr(*DatumGetName(d));

					audit_string_value(vp, s, strlen(s));
				}
				else
				{
					text	   *t = DatumGetTextPP(d);

					audit_string_value(vp, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				}
				return;
			}
		case AV_INTEGER:
			vp->type = jbvNumeric;
#if PG_VERSION_NUM >= 140000
			vp->val.numeric = int64_to_numeric(c->basetype == INT2OID ? (int64) DatumGetInt16(d) :
											   c->basetype == INT4OID ? (int64) DatumGetInt32(d) :
											   DatumGetInt64(d));
#else
			if (c->basetype == INT2OID)
				vp->val.numeric = DatumGetNumeric(DirectFunctionCall1(int2_numeric, d));
			else if (c->basetype == INT4OID)
				vp->val.numeric = DatumGetNumeric(DirectFunctionCall1(int4_numeric, d));
			else
				vp->val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, d));
#endif
			break;
		case AV_FLOAT:
			{
				double		f = c->basetype == FLOAT4OID ?
					(double) DatumGetFloat4(d) : DatumGetFloat8(d);
				char		buf[32];

				if (isnan(f) || isinf(f))
				{
					char	   *s = OutputFunctionCall(&c->out, d);

					audit_string_value(vp, s, strlen(s));
					return;
				}
				/*
				 * Through the shortest text form that reads back exactly,
				 * whatever the session's extra_float_digits (with a low
				 * setting float8out would round 0.12 and 0.14 alike).
				 */
				if (c->basetype == FLOAT4OID)
					float_to_shortest_decimal_buf((float) f, buf);
				else
					double_to_shortest_decimal_buf(f, buf);
				vp->type = jbvNumeric;
				vp->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	CStringGetDatum(buf),
																	ObjectIdGetDatum(InvalidOid),
																	Int32GetDatum(-1)));
				break;
			}
		case AV_NUMERIC:
			{
				Numeric		num = DatumGetNumeric(d);

				if (numeric_is_nan(num) || numeric_is_inf(num))
				{
					char	   *s = OutputFunctionCall(&c->out, d);

					audit_string_value(vp, s, strlen(s));
					return;
				}
				vp->type = jbvNumeric;
				vp->val.numeric = num;
				break;
			}
		case AV_BOOL:
			vp->type = jbvBool;
			vp->val.boolean = DatumGetBool(d);
			break;
		case AV_JSONB:
			{
				Jsonb	   *jb = DatumGetJsonbP(d);

				vp->type = jbvBinary;
				vp->val.binary.data = &jb->root;
				vp->val.binary.len = VARSIZE(jb) - VARHDRSZ;
				break;
			}
		case AV_JSON:
			{
				char	   *s = OutputFunctionCall(&c->out, d);
				Jsonb	   *jb;

				if (!audit_json_to_jsonb(s, &jb))
				{
					/* json that jsonb cannot hold: kept as its text */
					audit_string_value(vp, s, strlen(s));
					return;
				}
				vp->type = jbvBinary;
				vp->val.binary.data = &jb->root;
				vp->val.binary.len = VARSIZE(jb) - VARHDRSZ;
				break;
			}
		case AV_DATETIME:
			{
				char		buf[MAXDATELEN + 1];

				JsonEncodeDateTime(buf, d, c->basetype, NULL);
				audit_string_value(vp, pstrdup(buf), strlen(buf));
				return;
			}
		default:
			{
				char	   *s = OutputFunctionCall(&c->out, d);

				audit_string_value(vp, s, strlen(s));
				return;
			}
	}
}

/* About the bytes a key and its value take in a jsonb object. */
static inline uint64
audit_pair_size(const JsonbPair *pair)
{
	const JsonbValue *v = &pair->value;
	uint64		size = pair->key.val.string.len + 16;

	if (v->type == jbvString)
		size += v->val.string.len;
	else if (v->type == jbvBinary)
		size += v->val.binary.len;
	else if (v->type == jbvNumeric)
		size += VARSIZE_ANY(v->val.numeric);
	return size;
}

/*
 * A jsonb value holds at most 256 MB (JENTRY_OFFLENMASK). A row too large
 * for its audit record gets an error that says so and what to do, not
 * jsonb's own.
 */
static void
audit_check_object_size(AuditEntry *entry, uint64 total)
{
	if (total > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the audit record of a row of %s would exceed jsonb's limit of %d bytes",
						entry->table_name, (int) JENTRY_OFFLENMASK),
				 errdetail("The row's audited values take about " UINT64_FORMAT " bytes.", total),
				 errhint("Leave the large column out of the audit trail: clinical.enable_audit(..., exclude_columns => '{column}').")));
}

/*
 * A jsonb object of the audited columns of a row: all of them, only the
 * primary key's (pk_only), or only those flagged in mask.
 */
static Datum
audit_row_object(AuditEntry *entry, const Datum *values, const bool *nulls,
				 bool pk_only, const bool *mask)
{
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(entry->ncols, 1));
	JsonbParseState *st = NULL;
	JsonbValue	obj;
	JsonbValue *res;
	uint64		size = 0;
	int			n = 0;
	int			i;

	/* the pairs in jsonb key order, worked out once per relation */
	for (i = 0; i < entry->ncols; i++)
	{
		int			k = entry->key_order[i];
		AuditColumn *c = &entry->cols[k];

		if (pk_only ? !c->in_pk : (mask != NULL && !mask[k]))
			continue;
		pairs[n].key.type = jbvString;
		pairs[n].key.val.string.val = c->name;
		pairs[n].key.val.string.len = c->namelen;
		audit_value(c, values[c->attnum - 1], nulls[c->attnum - 1], &pairs[n].value);
		pairs[n].order = n;
		size += audit_pair_size(&pairs[n]);
		n++;
	}

	audit_check_object_size(entry, size);

	/* scalars only: convert the object in one go, no per-row key sort */
	if (!entry->has_json)
	{
		obj.type = jbvObject;
		obj.val.object.nPairs = n;
		obj.val.object.pairs = pairs;
		return JsonbPGetDatum(JsonbValueToJsonb(&obj));
	}

	/* a json or jsonb column's container has to be pushed to be unpacked */
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < n; i++)
	{
		pushJsonbValue(&st, WJB_KEY, &pairs[i].key);
		pushJsonbValue(&st, WJB_VALUE, &pairs[i].value);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

static void
audit_require_reason(AuditEntry *entry, const char *op)
{
	/* a reason of blanks only says nothing: refused like an empty one */
	if (entry->require_reason &&
		(audit_change_reason == NULL ||
		 audit_change_reason[strspn(audit_change_reason, " \t\r\n")] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s on %s requires a reason for the change", op, entry->table_name),
				 errdetail("The table is audited with require_reason."),
				 errhint("Call clinical.set_context(app_user, reason) in the transaction first, or SET LOCAL clinical.change_reason.")));
}

PG_FUNCTION_INFO_V1(clinical_audit_trigger);

/*
 * clinical.audit_trigger() RETURNS trigger
 * AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW, and AFTER TRUNCATE FOR
 * EACH STATEMENT; attached by clinical.enable_audit().
 */
Datum
clinical_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	AuditEntry *entry;
	bool		valid;
	Datum		values[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	const char *op;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function clinical.audit_trigger must be called as a trigger"),
				 errhint("Use clinical.enable_audit(table) to audit a table.")));
	ev = trigdata->tg_event;
	if (!TRIGGER_FIRED_AFTER(ev) ||
		(TRIGGER_FIRED_BY_TRUNCATE(ev) ? TRIGGER_FIRED_FOR_ROW(ev) : !TRIGGER_FIRED_FOR_ROW(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function clinical.audit_trigger must be fired AFTER ... FOR EACH ROW, or AFTER TRUNCATE FOR EACH STATEMENT"),
				 errhint("Use clinical.enable_audit(table) to audit a table.")));

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);

	if (audit_cache == NULL)
		audit_cache = clinical_trigcache_create("clinical audit cache", sizeof(AuditEntry));
	entry = (AuditEntry *) clinical_trigcache_lookup(audit_cache, trigdata->tg_trigger->tgoid,
													 RelationGetRelid(rel), &valid);
	if (!valid)
	{
		/*
		 * A column list (UPDATE OF ...) or a WHEN clause would narrow what
		 * is audited while the trigger looks the same: refuse to run so.
		 */
		if (trigdata->tg_trigger->tgnattr > 0 || trigdata->tg_trigger->tgqual != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("audit trigger \"%s\" on \"%s\" has a column list or a WHEN clause",
							trigdata->tg_trigger->tgname, RelationGetRelationName(rel)),
					 errhint("Attach the audit trigger with clinical.enable_audit(); it audits every change of every column.")));
		audit_fill_entry(entry, rel, trigdata->tg_trigger);
	}

	memset(nulls, true, sizeof(nulls));

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		audit_require_reason(entry, "TRUNCATE");
		audit_write(RelationGetRelid(rel), entry->table_name, "TRUNCATE", values, nulls, false);
		return PointerGetDatum(NULL);
	}

	if (!TRIGGER_FIRED_BY_UPDATE(ev))
	{
		/* INSERT: the row is new_row; DELETE: the row is old_row */
		bool		is_insert = TRIGGER_FIRED_BY_INSERT(ev);
		int			col = is_insert ? AL_NEW_ROW : AL_OLD_ROW;
		Datum	   *v = palloc(sizeof(Datum) * desc->natts);
		bool	   *n = palloc(sizeof(bool) * desc->natts);

		op = is_insert ? "INSERT" : "DELETE";
		if (!is_insert)
			audit_require_reason(entry, op);
		heap_deform_tuple(trigdata->tg_trigtuple, desc, v, n);
		if (entry->npk > 0)
		{
			values[AL_PK] = audit_row_object(entry, v, n, true, NULL);
			nulls[AL_PK] = false;
		}
		values[col] = audit_row_object(entry, v, n, false, NULL);
		nulls[col] = false;
	}
	else
	{
		Datum	   *ov = palloc(sizeof(Datum) * desc->natts);
		bool	   *on = palloc(sizeof(bool) * desc->natts);
		Datum	   *nv = palloc(sizeof(Datum) * desc->natts);
		bool	   *nn = palloc(sizeof(bool) * desc->natts);
		bool	   *changed = palloc(sizeof(bool) * entry->ncols);
		Datum	   *names = palloc(sizeof(Datum) * entry->ncols);
		int			nchanged = 0;
		int			i;

		heap_deform_tuple(trigdata->tg_trigtuple, desc, ov, on);
		heap_deform_tuple(trigdata->tg_newtuple, desc, nv, nn);
		for (i = 0; i < entry->ncols; i++)
		{
			AuditColumn *c = &entry->cols[i];
			Form_pg_attribute att = TupleDescAttr(desc, c->attnum - 1);
			int			a = c->attnum - 1;

			if (on[a] != nn[a])
				changed[i] = true;
			else if (on[a])
				changed[i] = false;
			else
				changed[i] = !datum_image_eq(ov[a], nv[a], att->attbyval, att->attlen);
			if (changed[i])
				names[nchanged++] = CStringGetTextDatum(c->name);
		}
		/* an UPDATE that changes no audited column is not logged */
		if (nchanged == 0)
			return PointerGetDatum(NULL);

		audit_require_reason(entry, "UPDATE");
		op = "UPDATE";
		if (entry->npk > 0)
		{
			values[AL_PK] = audit_row_object(entry, ov, on, true, NULL);
			nulls[AL_PK] = false;
		}
		values[AL_OLD_ROW] = audit_row_object(entry, ov, on, false, changed);
		nulls[AL_OLD_ROW] = false;
		values[AL_NEW_ROW] = audit_row_object(entry, nv, nn, false, changed);
		nulls[AL_NEW_ROW] = false;
		values[AL_CHANGED_COLUMNS] = PointerGetDatum(construct_array(names, nchanged, TEXTOID,
																	 -1, false, TYPALIGN_INT));
		nulls[AL_CHANGED_COLUMNS] = false;
	}

	audit_write(RelationGetRelid(rel), entry->table_name, op, values, nulls, false);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(clinical_audit_event);

/*
 * clinical._audit_event(operation text, table_oid oid, table_name text,
 *                       detail jsonb) RETURNS bigint
 * Records an event that is not a row change (audit switched on or off, DDL
 * on an audited table, a redaction, partition retention) with the same
 * context and hash as a change. Not granted to PUBLIC.
 */
Datum
clinical_audit_event(PG_FUNCTION_ARGS)
{
	Datum		values[AL_NCOLS];
	bool		nulls[AL_NCOLS];
	char	   *op;
	char	   *name = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit event operation must not be null"),
				 errhint("Name the event, e.g. 'AUDIT_DISABLE'.")));
	op = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(2))
		name = text_to_cstring(PG_GETARG_TEXT_PP(2));

	memset(nulls, true, sizeof(nulls));
	if (!PG_ARGISNULL(3))
	{
		values[AL_NEW_ROW] = PG_GETARG_DATUM(3);
		nulls[AL_NEW_ROW] = false;
	}
	PG_RETURN_INT64(audit_write(PG_ARGISNULL(1) ? InvalidOid : PG_GETARG_OID(1),
								name, op, values, nulls, true));
}

/*
 * Record an audit event from C (partition retention): operation, the table
 * it concerns, and a jsonb detail (or NULL). Exported for partition.c.
 */
void
audit_record_event(const char *operation, Oid table_oid, const char *table_name,
				   Datum detail)
{
	Datum		values[AL_NCOLS];
	bool		nulls[AL_NCOLS];

	memset(nulls, true, sizeof(nulls));
	if (detail != (Datum) 0)
	{
		values[AL_NEW_ROW] = detail;
		nulls[AL_NEW_ROW] = false;
	}
	(void) audit_write(table_oid, table_name, operation, values, nulls, true);
}

PG_FUNCTION_INFO_V1(clinical_audit_guard);

/*
 * clinical._audit_guard() RETURNS trigger
 * BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE (statement) on the log
 * and its seals: refuses, for every role. Only audit_redact gets through.
 */
Datum
clinical_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function clinical._audit_guard must be called as a trigger")));

	if (audit_guard_bypass && TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s is append-only", trigdata->tg_trigger->tgnargs > 0 ?
					trigdata->tg_trigger->tgargs[0] :
					RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("%s of audit records is refused for every role, the owner included.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" :
					   TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? "DELETE" : "TRUNCATE"),
			 errhint("Old audit data is removed only by partition retention; use clinical.audit_redact() to redact a value.")));
	return PointerGetDatum(NULL);
}

/* true while clinical._audit_internal_ddl runs its ALTER TABLE */
static bool audit_internal_ddl = false;

/*
 * The audit trigger options (text[]) as a quoted CREATE TRIGGER argument
 * list, each checked.
 */
static char *
audit_options_args(ArrayType *options)
{
	Datum	   *items;
	bool	   *inulls;
	int			nitems;
	int			i;
	StringInfoData args;

	deconstruct_array(options, TEXTOID, -1, false, TYPALIGN_INT, &items, &inulls, &nitems);
	initStringInfo(&args);
	for (i = 0; i < nitems; i++)
	{
		const char *opt;

		if (inulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("audit trigger options must not be null"),
					 errhint("Call clinical.enable_audit().")));
		opt = TextDatumGetCString(items[i]);
		if (!(strcmp(opt, "r") == 0 ||
			  ((opt[0] == 'x' || opt[0] == 'p') && opt[1] == ':' && opt[2] != '\0')))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid audit trigger option \"%s\"", opt),
					 errhint("Call clinical.enable_audit().")));
		appendStringInfo(&args, "%s%s", i ? ", " : "", quote_literal_cstr(opt));
	}
	return args.data;
}

/*
 * The audited table's schema-qualified, quoted name; the caller must own it.
 */
static char *
audit_owned_qname(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;

	if (relname == NULL || nspname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("Call clinical.enable_audit() with an existing table.")));
#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
	if (!pg_class_ownercheck(relid, GetUserId()))
#endif
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", relname),
				 errhint("Ask the table's owner or a superuser to call clinical.enable_audit().")));
	return quote_qualified_identifier(nspname, relname);
}

/*
 * Row triggers are cloned to partitions, statement triggers are not: give
 * the tables of relid's partition tree (every level; relid itself only with
 * with_root) their own TRUNCATE trigger with these arguments, enabled
 * ALWAYS. Foreign partitions are left out: they cannot have TRUNCATE
 * triggers. Runs inside SPI with audit_internal_ddl set.
 */
static void
audit_truncate_on_tree(Oid relid, const char *args, bool with_root)
{
	Oid			ptypes[2] = {REGCLASSOID, BOOLOID};
	Datum		pargs[2] = {ObjectIdGetDatum(relid), BoolGetDatum(with_root)};
	uint64		nparts;
	uint64		j;
	char	  **parts;
	StringInfoData sql;

	if (SPI_execute_with_args("SELECT t.relid::pg_catalog.text FROM pg_catalog.pg_partition_tree($1) AS t "
							  "JOIN pg_catalog.pg_class AS c ON c.oid = t.relid "
							  "WHERE c.relkind IN ('r', 'p') AND ($2 OR t.relid <> $1)",
							  2, ptypes, pargs, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list the partitions of relation %u", relid);
	nparts = SPI_processed;
	parts = palloc(sizeof(char *) * (nparts + 1));
	for (j = 0; j < nparts; j++)
		parts[j] = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1);
	initStringInfo(&sql);
	for (j = 0; j < nparts; j++)
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE OR REPLACE TRIGGER clinical_audit_truncate AFTER TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION clinical.audit_trigger(%s)",
						 parts[j], args);
		SPI_execute(sql.data, false, 0);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s ENABLE ALWAYS TRIGGER clinical_audit_truncate",
						 parts[j]);
		SPI_execute(sql.data, false, 0);
	}
}

PG_FUNCTION_INFO_V1(clinical_audit_internal_ddl);

/*
 * clinical._audit_attach(target regclass, options text[]) RETURNS void
 * For enable_audit: (re)creates the two audit triggers with the given
 * options as arguments, enables them ALWAYS, and records one AUDIT_ENABLE
 * event with the options. The DDL event trigger is told to stay quiet about
 * these statements only; anyone else's change to an audit trigger is
 * recorded. The caller must own the table (the statements run as the
 * caller, so its privileges apply as well).
 */
Datum
clinical_audit_internal_ddl(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	ArrayType  *options = PG_GETARG_ARRAYTYPE_P(1);
	char	   *qrel;
	char	   *args;
	StringInfoData sql;
	Datum		detail;

	qrel = audit_owned_qname(relid);
	args = audit_options_args(options);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_internal_ddl = true;
	PG_TRY();
	{
		initStringInfo(&sql);
		appendStringInfo(&sql, "CREATE OR REPLACE TRIGGER clinical_audit AFTER INSERT OR UPDATE OR DELETE ON %s "
						 "FOR EACH ROW EXECUTE FUNCTION clinical.audit_trigger(%s)", qrel, args);
		SPI_execute(sql.data, false, 0);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "CREATE OR REPLACE TRIGGER clinical_audit_truncate AFTER TRUNCATE ON %s "
						 "FOR EACH STATEMENT EXECUTE FUNCTION clinical.audit_trigger(%s)", qrel, args);
		SPI_execute(sql.data, false, 0);
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s ENABLE ALWAYS TRIGGER clinical_audit, "
						 "ENABLE ALWAYS TRIGGER clinical_audit_truncate", qrel);
		SPI_execute(sql.data, false, 0);
		audit_truncate_on_tree(relid, args, false);
	}
	PG_FINALLY();
	{
		audit_internal_ddl = false;
	}
	PG_END_TRY();
	SPI_finish();

	detail = DirectFunctionCall1(jsonb_in, CStringGetDatum(
								 psprintf("{\"options\": %s}",
										  TextDatumGetCString(DirectFunctionCall1(array_to_json,
																				  PointerGetDatum(options))))));
	audit_record_event("AUDIT_ENABLE", relid, qrel, detail);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(clinical_audit_cover_partitions);

/*
 * clinical._audit_cover_partitions(added regclass, options text[]) RETURNS void
 * For the DDL event trigger, after a table was created as or attached as a
 * partition of an audited table: gives it and its own partitions the
 * TRUNCATE audit trigger with the audited ancestor's options, enabled
 * ALWAYS (replacing a trigger of that name it may have brought along).
 * Only the added tree is touched. Records nothing: audit of the table was
 * already switched on.
 */
Datum
clinical_audit_cover_partitions(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *args = audit_options_args(PG_GETARG_ARRAYTYPE_P(1));

	(void) audit_owned_qname(relid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	audit_internal_ddl = true;
	PG_TRY();
	{
		audit_truncate_on_tree(relid, args, true);
	}
	PG_FINALLY();
	{
		audit_internal_ddl = false;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(clinical_audit_in_internal_ddl);

/* clinical._audit_in_internal_ddl() RETURNS boolean */
Datum
clinical_audit_in_internal_ddl(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(audit_internal_ddl);
}

/*-------------------------------------------------------------------------
 * Seals
 *-------------------------------------------------------------------------
 */

/* Put a big-endian int64 into a buffer. */
static void
audit_put64(unsigned char *buf, int64 v)
{
	int			i;

	for (i = 7; i >= 0; i--)
	{
		buf[i] = (uint64) v & 0xff;
		v = (int64) ((uint64) v >> 8);
	}
}

/*
 * The MAC of a seal: HMAC-SHA256 under key_version of the previous seal's
 * MAC and this seal's fields, or plain SHA-256 when key_version is 0 (no
 * keyring configured).
 */
static void
audit_seal_mac(int key_version, const unsigned char *prev, int64 seal_id,
			   TimestampTz sealed_at, int64 xid_from, int64 xid_to,
			   int64 nrows, TimestampTz min_t, TimestampTz max_t,
			   const unsigned char *rows_digest, unsigned char *mac)
{
	unsigned char buf[16 + AUDIT_HASH_LEN + 7 * 8 + AUDIT_HASH_LEN];
	unsigned char *p = buf;

	memcpy(p, "clinical seal v1", 16);
	p += 16;
	if (prev)
		memcpy(p, prev, AUDIT_HASH_LEN);
	else
		memset(p, 0, AUDIT_HASH_LEN);
	p += AUDIT_HASH_LEN;
	audit_put64(p, seal_id);
	p += 8;
	audit_put64(p, sealed_at);
	p += 8;
	audit_put64(p, xid_from);
	p += 8;
	audit_put64(p, xid_to);
	p += 8;
	audit_put64(p, nrows);
	p += 8;
	audit_put64(p, min_t);
	p += 8;
	audit_put64(p, max_t);
	p += 8;
	memcpy(p, rows_digest, AUDIT_HASH_LEN);
	p += AUDIT_HASH_LEN;

	if (key_version > 0)
		clinical_hmac(key_version, buf, p - buf, mac);
	else
		SHA256(buf, p - buf, mac);
}

/* Add one sealed row to a seal's running digest. */
static void
audit_seal_add(SHA256_CTX *ctx, int64 change_id, bytea *row_hash)
{
	unsigned char buf[8];

	audit_put64(buf, change_id);
	SHA256_Update(ctx, buf, 8);
	SHA256_Update(ctx, VARDATA_ANY(row_hash), VARSIZE_ANY_EXHDR(row_hash));
}

static bytea *
audit_getbytea(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? NULL : DatumGetByteaPP(d);
}

static int64
audit_getint64(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0 : DatumGetInt64(d);
}

PG_FUNCTION_INFO_V1(clinical_audit_seal);

/*
 * Where each BRIN index of the log's partitions was last seen summarized up
 * to, by index OID (kept per backend: the worker seals again and again; a
 * table, not a few slots, since 7 years of monthly partitions carry over
 * 160 such indexes).
 */
typedef struct AuditSummaryHint
{
	Oid			indexoid;		/* hash key */
	BlockNumber next;			/* first range not known to be summarized */
	BlockNumber seen;			/* the heap's size at the last seal */
	BlockNumber partial;		/* size at which the last range was summarized */
} AuditSummaryHint;

static HTAB *audit_summary_hints = NULL;

static AuditSummaryHint *
audit_summary_hint(Oid indexoid)
{
	AuditSummaryHint *h;
	bool		found;

	if (audit_summary_hints == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(AuditSummaryHint);
		audit_summary_hints = hash_create("clinical audit BRIN summary hints", 256, &ctl,
										  HASH_ELEM | HASH_BLOBS);
	}
	h = hash_search(audit_summary_hints, &indexoid, HASH_ENTER, &found);
	if (!found)
		h->next = h->seen = h->partial = 0;
	return h;
}

/*
 * Summarize the complete page ranges of each partition's BRIN indexes (on
 * txid and change_id) that no VACUUM has summarized yet. A BRIN scan reads
 * every page of an unsummarized range, so without this the seal's scan by
 * txid read the whole tail written since the partition's last
 * (auto)vacuum at every seal, a cost that grew with the write rate and the
 * vacuum interval (measured: 8,672 pages read for 2,528 that held the
 * rows); lookups by change_id (audit_verify's redactions, users) likewise.
 * The partial last range stays unsummarized while the partition grows, so
 * writers' BRIN inserts there stay free. A partition that VACUUM, DDL or another sealer holds is
 * skipped (conditional lock): its rows are found all the same, by reading
 * more.
 */
static void
audit_summarize_ranges(void)
{
	List	   *parts;
	ListCell   *lc;

	audit_lookup_log();
	parts = find_inheritance_children(audit_log_oid, NoLock);
	foreach(lc, parts)
	{
		Oid			partoid = lfirst_oid(lc);
		Relation	heap;
		BlockNumber nblocks;
		List	   *indexes;
		ListCell   *ic;

		if (!ConditionalLockRelationOid(partoid, ShareUpdateExclusiveLock))
			continue;
		heap = try_relation_open(partoid, NoLock);
		if (heap == NULL)
		{
			UnlockRelationOid(partoid, ShareUpdateExclusiveLock);
			continue;
		}
		if (heap->rd_rel->relkind != RELKIND_RELATION ||
			!has_privs_of_role(GetUserId(), heap->rd_rel->relowner))
		{
			relation_close(heap, ShareUpdateExclusiveLock);
			continue;
		}
		nblocks = RelationGetNumberOfBlocks(heap);
		indexes = RelationGetIndexList(heap);
		foreach(ic, indexes)
		{
			Oid			indexoid = lfirst_oid(ic);
			Relation	index = index_open(indexoid, AccessShareLock);
			AuditSummaryHint *hint;
			BlockNumber ppr;
			BlockNumber blk;

			if (index->rd_rel->relam != BRIN_AM_OID || !index->rd_index->indisvalid)
			{
				index_close(index, AccessShareLock);
				continue;
			}
			ppr = BrinGetPagesPerRange(index);
			index_close(index, AccessShareLock);
			hint = audit_summary_hint(indexoid);
			if (hint->next > nblocks)
				hint->next = hint->partial = 0;
			/* complete ranges only */
			for (blk = hint->next; ppr > 0 && nblocks - blk >= ppr; blk += ppr)
			{
				DirectFunctionCall2(brin_summarize_range, ObjectIdGetDatum(indexoid),
									Int64GetDatum((int64) blk));
				CHECK_FOR_INTERRUPTS();
			}
			hint->next = blk;

			/*
			 * A partition that did not grow since the last seal (last
			 * month's, say) gets its partial last range summarized too, or
			 * every seal would read up to a range of it.
			 */
			if (blk < nblocks && nblocks == hint->seen && hint->partial != nblocks)
			{
				DirectFunctionCall2(brin_summarize_range, ObjectIdGetDatum(indexoid),
									Int64GetDatum((int64) blk));
				hint->partial = nblocks;
			}
			hint->seen = nblocks;
		}
		list_free(indexes);
		relation_close(heap, ShareUpdateExclusiveLock);
	}
	list_free(parts);
}

/*
 * clinical.audit_seal() RETURNS bigint
 * Seals every committed change row not yet sealed: the rows of all
 * transactions older than this snapshot's xmin and not older than the last
 * seal's horizon. Such transactions have all ended, so the set of rows is
 * final, whatever order their ids committed in. Returns the new seal's id,
 * or NULL when there was nothing to seal. Only other sealers wait.
 */
Datum
clinical_audit_seal(PG_FUNCTION_ARGS)
{
	int64		xid_from = 0;
	int64		xid_to;
	int64		seal_id;
	int64		nrows = 0;
	int64		first = 0;
	int64		last = 0;
	bool		have_prev = false;
	unsigned char prev[AUDIT_HASH_LEN];
	unsigned char rows_digest[AUDIT_HASH_LEN];
	unsigned char mac[AUDIT_HASH_LEN];
	SHA256_CTX	ctx;
	Portal		portal;
	SPIPlanPtr	plan;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Datum		args[2];
	bool		isnull;
	int			key_version = 0;
	TimestampTz sealed_at;
	TimestampTz min_t = 0;
	TimestampTz max_t = 0;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/*
	 * One sealer at a time; writers and readers are not blocked. Each query
	 * below runs with a fresh snapshot (read_only = false), so a sealer that
	 * waited for the lock sees the seal made meanwhile.
	 */
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("clinical.audit_seal() must run in a READ COMMITTED transaction"),
				 errhint("Call it in its own transaction, or SET TRANSACTION ISOLATION LEVEL READ COMMITTED.")));
	SPI_execute("LOCK TABLE clinical.audit_seal IN SHARE ROW EXCLUSIVE MODE", false, 0);
	audit_summarize_ranges();

	rc = SPI_execute("SELECT xid_to, seal_mac, key_version FROM clinical.audit_seal ORDER BY seal_id DESC LIMIT 1",
					 false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the last seal failed");
	if (SPI_processed == 1)
	{
		bytea	   *b;
		bool		unkeyed;

		xid_from = audit_getint64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		b = audit_getbytea(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		memcpy(prev, VARDATA_ANY(b), AUDIT_HASH_LEN);
		have_prev = true;

		/*
		 * An unkeyed seal after a keyed one is what a rewrite of the seals
		 * by someone without the key looks like, and audit_verify says so
		 * for good (the seals are append-only): a keyring that went
		 * missing must stop sealing, not raise that alarm.
		 */
		(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &unkeyed);
		if (!unkeyed && !clinical_keyring_configured())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the last seal is keyed but no keyring is configured"),
					 errdetail("An unkeyed seal after a keyed one would read as tampering in clinical.audit_verify()."),
					 errhint("Set clinical.keyring_file to the keyring the earlier seals were made with and reload.")));
	}

	/* a fresh snapshot: every transaction below its xmin has ended */
	rc = SPI_execute("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint",
					 false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the snapshot horizon failed");
	xid_to = audit_getint64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (xid_to <= xid_from)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}

	plan = SPI_prepare("SELECT change_id, row_hash, xact_time FROM clinical.audit_log "
					   "WHERE txid >= $1 AND txid < $2 ORDER BY change_id",
					   2, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	args[0] = Int64GetDatum(xid_from);
	args[1] = Int64GetDatum(xid_to);
	portal = SPI_cursor_open(NULL, plan, args, NULL, false);

	SHA256_Init(&ctx);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			int64		id = audit_getint64(tup, SPI_tuptable->tupdesc, 1, &isnull);
			bytea	   *h = audit_getbytea(tup, SPI_tuptable->tupdesc, 2, &isnull);
			TimestampTz t = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));

			if (nrows == 0 || t < min_t)
				min_t = t;
			if (nrows == 0 || t > max_t)
				max_t = t;
			if (nrows == 0)
				first = id;
			last = id;
			nrows++;
			audit_seal_add(&ctx, id, h);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	SHA256_Final(rows_digest, &ctx);

	if (nrows == 0)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}

	rc = SPI_execute("SELECT pg_catalog.nextval('clinical.audit_seal_seal_id_seq')", false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "drawing a seal id failed");
	seal_id = audit_getint64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	if (clinical_keyring_configured())
	{
		unsigned char probe[AUDIT_HASH_LEN];

		key_version = clinical_hmac(0, "", 0, probe);
	}
	sealed_at = GetCurrentTimestamp();
	audit_seal_mac(key_version, have_prev ? prev : NULL, seal_id, sealed_at,
				   xid_from, xid_to, nrows, min_t, max_t, rows_digest, mac);

	{
		Oid			types[13] = {INT8OID, TIMESTAMPTZOID, INT8OID, INT8OID, INT8OID,
		INT8OID, INT8OID, BYTEAOID, INT4OID, BYTEAOID, BYTEAOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
		Datum		vals[13];
		char		n[14] = "             ";

		vals[0] = Int64GetDatum(seal_id);
		vals[1] = TimestampTzGetDatum(sealed_at);
		vals[2] = Int64GetDatum(xid_from);
		vals[3] = Int64GetDatum(xid_to);
		vals[4] = Int64GetDatum(first);
		vals[5] = Int64GetDatum(last);
		vals[6] = Int64GetDatum(nrows);
		vals[7] = PointerGetDatum(audit_bytea(rows_digest, AUDIT_HASH_LEN));
		vals[8] = Int32GetDatum(key_version);
		if (key_version == 0)
			n[8] = 'n';
		vals[9] = PointerGetDatum(have_prev ? audit_bytea(prev, AUDIT_HASH_LEN) : NULL);
		if (!have_prev)
			n[9] = 'n';
		vals[10] = PointerGetDatum(audit_bytea(mac, AUDIT_HASH_LEN));
		vals[11] = TimestampTzGetDatum(min_t);
		vals[12] = TimestampTzGetDatum(max_t);
		rc = SPI_execute_with_args("INSERT INTO clinical.audit_seal (seal_id, sealed_at, xid_from, xid_to, "
								   "first_change_id, last_change_id, row_count, rows_digest, key_version, "
								   "prev_mac, seal_mac, min_xact_time, max_xact_time) "
								   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
								   13, types, vals, n, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "inserting the seal failed: %s", SPI_result_code_string(rc));
	}

	SPI_finish();
	PG_RETURN_INT64(seal_id);
}

/*-------------------------------------------------------------------------
 * Verify
 *-------------------------------------------------------------------------
 */

typedef struct AuditSeal
{
	int64		seal_id;
	int64		xid_from;
	int64		xid_to;
	int64		nrows;
	unsigned char rows_digest[AUDIT_HASH_LEN];
	TimestampTz min_t;			/* oldest xact_time of its rows */
	SHA256_CTX	ctx;			/* recomputed */
	int64		seen;
} AuditSeal;

typedef struct AuditRedaction
{
	int64		change_id;		/* hash key */
	char		hash_hex[2 * AUDIT_HASH_LEN + 1];
} AuditRedaction;

static void
audit_problem(Tuplestorestate *ts, TupleDesc desc, const char *kind,
			  int64 change_id, int64 seal_id, const char *detail)
{
	Datum		v[4];
	bool		n[4] = {false, change_id == 0, seal_id == 0, false};

	v[0] = CStringGetTextDatum(kind);
	v[1] = Int64GetDatum(change_id);
	v[2] = Int64GetDatum(seal_id);
	v[3] = CStringGetTextDatum(detail);
	tuplestore_putvalues(ts, desc, v, n);
}

static void
audit_hex(const unsigned char *b, int len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int			i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * len] = '\0';
}

/* The seal whose xid range holds txid, or NULL. */
static AuditSeal *
audit_find_seal(AuditSeal *seals, int nseals, int64 txid)
{
	int			lo = 0,
				hi = nseals - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (txid < seals[mid].xid_from)
			hi = mid - 1;
		else if (txid >= seals[mid].xid_to)
			lo = mid + 1;
		else
			return &seals[mid];
	}
	return NULL;
}

/*
 * The MAC of a redaction record: HMAC under key_version of the change id
 * and the redacted row's hash (hex), so that only a holder of the key can
 * make a redaction that verify accepts. Writes hex into out.
 */
static void
audit_redaction_mac(int key_version, int64 change_id, const char *hash_hex, char *out)
{
	unsigned char buf[16 + 8 + 2 * AUDIT_HASH_LEN];
	unsigned char mac[AUDIT_HASH_LEN];

	memcpy(buf, "clinical redact1", 16);
	audit_put64(buf + 16, change_id);
	memcpy(buf + 24, hash_hex, 2 * AUDIT_HASH_LEN);
	clinical_hmac(key_version, buf, sizeof(buf), mac);
	audit_hex(mac, AUDIT_HASH_LEN, out);
}

/* The cache setting of the change id sequence (1 unless someone altered it). */
static int64
audit_seq_cache(void)
{
	HeapTuple	tp;
	int64		cache = 1;

	audit_lookup_log();
	tp = SearchSysCache1(SEQRELID, ObjectIdGetDatum(audit_seq_oid));
	if (HeapTupleIsValid(tp))
	{
		cache = ((Form_pg_sequence) GETSTRUCT(tp))->seqcache;
		ReleaseSysCache(tp);
	}
	return cache;
}

PG_FUNCTION_INFO_V1(clinical_audit_verify);

/*
 * clinical.audit_verify(since timestamptz DEFAULT NULL)
 *		RETURNS TABLE(problem text, change_id bigint, seal_id bigint, detail text)
 * Recomputes every row's content hash, each seal's digest of its rows and
 * the chain of seal MACs; one row per problem, none when intact. With
 * since, only seals made since then (and their rows, and the unsealed rows
 * after them) are checked.
 */
Datum
clinical_audit_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Tuplestorestate *ts;
	TupleDesc	rdesc;
	MemoryContext oldcxt;
	AuditSeal  *seals = NULL;
	int			nseals = 0;
	HTAB	   *redactions;
	HASHCTL		hctl;
	int64		row_floor = 0;
	bool		have_prev = false;
	bool		seen_keyed = false;
	unsigned char prev_mac[AUDIT_HASH_LEN];
	int64		prev_xid_to = 0;
	Oid			argtypes[1] = {TIMESTAMPTZOID};
	Datum		args[1];
	bool		isnull;
	char		detail[256];
	Portal		portal;
	SPIPlanPtr	plan;
	uint64		i;
	int			rc;

#if PG_VERSION_NUM >= 150000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFuncCall(fcinfo, 0);
#endif
	ts = rsinfo->setResult;
	rdesc = rsinfo->setDesc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the seals in scope, and the one before them for the chain */
	args[0] = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	rc = SPI_execute_with_args("SELECT seal_id, sealed_at, xid_from, xid_to, row_count, rows_digest, "
							   "key_version, prev_mac, seal_mac, "
							   "$1 IS NULL OR sealed_at >= $1 AS in_scope, min_xact_time, max_xact_time "
							   "FROM clinical.audit_seal ORDER BY seal_id",
							   1, argtypes, args, PG_ARGISNULL(0) ? "n" : " ", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the seals failed");

	oldcxt = MemoryContextSwitchTo(CurTransactionContext);
	seals = palloc0(sizeof(AuditSeal) * (SPI_processed + 1));
	MemoryContextSwitchTo(oldcxt);

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int64		seal_id = audit_getint64(tup, d, 1, &isnull);
		TimestampTz sealed_at = DatumGetTimestampTz(SPI_getbinval(tup, d, 2, &isnull));
		int64		xid_from = audit_getint64(tup, d, 3, &isnull);
		int64		xid_to = audit_getint64(tup, d, 4, &isnull);
		int64		nrows = audit_getint64(tup, d, 5, &isnull);
		bytea	   *digest = audit_getbytea(tup, d, 6, &isnull);
		int			key_version;
		bytea	   *prev;
		bool		prev_null;
		bytea	   *mac = audit_getbytea(tup, d, 9, &isnull);
		bool		in_scope = DatumGetBool(SPI_getbinval(tup, d, 10, &isnull));
		TimestampTz min_t = DatumGetTimestampTz(SPI_getbinval(tup, d, 11, &isnull));
		TimestampTz max_t = DatumGetTimestampTz(SPI_getbinval(tup, d, 12, &isnull));
		unsigned char calc[AUDIT_HASH_LEN];
		bool		mac_ok = true;

		key_version = DatumGetInt32(SPI_getbinval(tup, d, 7, &isnull));
		if (isnull)
			key_version = 0;
		prev = audit_getbytea(tup, d, 8, &prev_null);
		/* only a positive version is keyed: anything else was not sealed by us */
		if (key_version < 0)
		{
			snprintf(detail, sizeof(detail), "the seal names key version %d, which no seal is made with",
					 key_version);
			audit_problem(ts, rdesc, "seal", 0, seal_id, detail);
			key_version = 0;
		}

		if (in_scope)
		{
			/* the chain: prev_mac is the previous seal's MAC */
			if (have_prev ? (prev_null || VARSIZE_ANY_EXHDR(prev) != AUDIT_HASH_LEN ||
							 memcmp(VARDATA_ANY(prev), prev_mac, AUDIT_HASH_LEN) != 0)
				: !prev_null)
				audit_problem(ts, rdesc, "seal", 0, seal_id,
							  have_prev ? "prev_mac does not match the previous seal's MAC (a seal was removed, inserted or changed)"
							  : "the first seal refers to a previous seal that does not exist");
			if (have_prev ? xid_from != prev_xid_to : xid_from != 0)
				audit_problem(ts, rdesc, "seal", 0, seal_id,
							  "the seal's transaction range does not start where the previous seal's ended");

			if (digest == NULL || VARSIZE_ANY_EXHDR(digest) != AUDIT_HASH_LEN ||
				mac == NULL || VARSIZE_ANY_EXHDR(mac) != AUDIT_HASH_LEN)
			{
				audit_problem(ts, rdesc, "seal", 0, seal_id, "the seal's digest or MAC is missing or malformed");
				mac_ok = false;
			}
			else if (key_version == 0 && seen_keyed)
			{
				audit_problem(ts, rdesc, "seal", 0, seal_id,
							  "the seal is not keyed although an earlier seal was (seals were rewritten without the key)");
				mac_ok = false;
			}
			else if (key_version > 0 && !clinical_keyring_configured())
			{
				snprintf(detail, sizeof(detail),
						 "the seal is keyed with key version %d but no keyring is configured; its MAC cannot be checked",
						 key_version);
				audit_problem(ts, rdesc, "seal", 0, seal_id, detail);
				mac_ok = false;
			}
			else if (key_version > 0 && !clinical_hmac_has_version(key_version))
			{
				snprintf(detail, sizeof(detail),
						 "key version %d is not in the keyring; the seal's MAC cannot be checked",
						 key_version);
				audit_problem(ts, rdesc, "seal", 0, seal_id, detail);
				mac_ok = false;
			}
			if (mac_ok)
			{
				audit_seal_mac(key_version, prev_null ? NULL : (unsigned char *) VARDATA_ANY(prev),
							   seal_id, sealed_at, xid_from, xid_to, nrows, min_t, max_t,
							   (unsigned char *) VARDATA_ANY(digest), calc);
				if (memcmp(calc, VARDATA_ANY(mac), AUDIT_HASH_LEN) != 0)
					audit_problem(ts, rdesc, "seal", 0, seal_id,
								  "the seal's MAC does not match its contents (the seal was changed)");
			}

			if (nseals == 0)
				row_floor = xid_from;
			seals[nseals].seal_id = seal_id;
			seals[nseals].xid_from = xid_from;
			seals[nseals].xid_to = xid_to;
			seals[nseals].nrows = nrows;
			seals[nseals].min_t = min_t;
			if (digest && VARSIZE_ANY_EXHDR(digest) == AUDIT_HASH_LEN)
				memcpy(seals[nseals].rows_digest, VARDATA_ANY(digest), AUDIT_HASH_LEN);
			SHA256_Init(&seals[nseals].ctx);
			nseals++;
		}
		if (key_version > 0)
			seen_keyed = true;
		if (mac && VARSIZE_ANY_EXHDR(mac) == AUDIT_HASH_LEN)
			memcpy(prev_mac, VARDATA_ANY(mac), AUDIT_HASH_LEN);
		else
			memset(prev_mac, 0, AUDIT_HASH_LEN);
		have_prev = true;
		prev_xid_to = xid_to;
	}
	if (nseals == 0)
		row_floor = prev_xid_to;
	SPI_freetuptable(SPI_tuptable);

	/* redactions: the hash each redacted row must now have */
	memset(&hctl, 0, sizeof(hctl));
	hctl.keysize = sizeof(int64);
	hctl.entrysize = sizeof(AuditRedaction);
	hctl.hcxt = CurrentMemoryContext;
	redactions = hash_create("clinical audit redactions", 64, &hctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/*
	 * Only redactions of rows in scope count, and a redaction is written
	 * after the row it redacts, so it has a larger change id than the
	 * smallest in scope: with a scope (since), look no further back, so
	 * that the change id index skips the older log. Not when someone gave
	 * the id sequence a cache: each session then draws from its own block
	 * of ids, and a later row can have the smaller id.
	 */
	argtypes[0] = INT8OID;
	args[0] = Int64GetDatum(0);
	if (row_floor > 0 && audit_seq_cache() <= 1)
	{
		args[0] = Int64GetDatum(row_floor);
		rc = SPI_execute_with_args("SELECT pg_catalog.min(change_id) FROM clinical.audit_log WHERE txid >= $1",
								   1, argtypes, args, NULL, true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "reading the first change in scope failed");
		args[0] = Int64GetDatum(audit_getint64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			args[0] = Int64GetDatum(PG_INT64_MAX);
		SPI_freetuptable(SPI_tuptable);
	}
	rc = SPI_execute_with_args("SELECT (new_row->>'change_id')::bigint, new_row->>'redacted_hash', "
							   "new_row->>'redacted_mac', (new_row->>'key_version')::int "
							   "FROM clinical.audit_log WHERE operation = 'REDACT' AND change_id >= $1 "
							   "ORDER BY change_id",
							   1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading redactions failed");
	for (i = 0; i < SPI_processed; i++)
	{
		int64		id = audit_getint64(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		char	   *h = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		AuditRedaction *r;

		char	   *m = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		bool		vnull;
		int			kv = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &vnull));

		if (isnull || h == NULL || strlen(h) != 2 * AUDIT_HASH_LEN)
			continue;

		/*
		 * With a keyring, a redaction counts only with a valid MAC: without
		 * the key, a forged REDACT record cannot cover an edited row.
		 */
		if (clinical_keyring_configured())
		{
			char		expect[2 * AUDIT_HASH_LEN + 1];

			if (m == NULL || vnull || kv <= 0 || !clinical_hmac_has_version(kv))
				continue;
			audit_redaction_mac(kv, id, h, expect);
			if (strcmp(expect, m) != 0)
				continue;
		}
		r = hash_search(redactions, &id, HASH_ENTER, NULL);
		strlcpy(r->hash_hex, h, sizeof(r->hash_hex));
	}
	SPI_freetuptable(SPI_tuptable);

	/*
	 * Rows whose transaction id no transaction ever had (negative, or not
	 * reached yet) were not written by the trigger, and no seal would ever
	 * cover them.
	 */
	if (SPI_execute("SELECT l.change_id, l.txid FROM clinical.audit_log AS l "
					"WHERE l.txid < 0 OR l.txid >= pg_catalog.pg_snapshot_xmax("
					"pg_catalog.pg_current_snapshot())::text::bigint ORDER BY l.change_id",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not look for rows with impossible transaction ids");
	for (i = 0; i < SPI_processed; i++)
	{
		int64		id = audit_getint64(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
		int64		txid = audit_getint64(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

		snprintf(detail, sizeof(detail),
				 "the row's transaction id %lld was never assigned: the audit trigger did not write it",
				 (long long) txid);
		audit_problem(ts, rdesc, "row", id, 0, detail);
	}

	/* every row from the first seal in scope on, in id order */
	argtypes[0] = INT8OID;
	plan = SPI_prepare("SELECT l.change_id, l.txid, l.row_hash, clinical._audit_row_hash(l) "
					   "FROM clinical.audit_log AS l WHERE l.txid >= $1 ORDER BY l.change_id",
					   1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	args[0] = Int64GetDatum(row_floor);
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			int64		id = audit_getint64(tup, d, 1, &isnull);
			int64		txid = audit_getint64(tup, d, 2, &isnull);
			bool		hnull;
			bytea	   *stored = audit_getbytea(tup, d, 3, &hnull);
			bytea	   *calc = audit_getbytea(tup, d, 4, &isnull);
			AuditSeal  *seal;

			if (hnull || VARSIZE_ANY_EXHDR(stored) != AUDIT_HASH_LEN)
			{
				audit_problem(ts, rdesc, "row", id, 0, "the row's content hash is missing or malformed");
				continue;
			}
			if (memcmp(VARDATA_ANY(stored), VARDATA_ANY(calc), AUDIT_HASH_LEN) != 0)
			{
				AuditRedaction *r = hash_search(redactions, &id, HASH_FIND, NULL);
				char		hex[2 * AUDIT_HASH_LEN + 1];

				audit_hex((unsigned char *) VARDATA_ANY(calc), AUDIT_HASH_LEN, hex);
				if (r == NULL || strcmp(r->hash_hex, hex) != 0)
					audit_problem(ts, rdesc, "row", id, 0,
								  r ? "the row was changed after its redaction"
								  : "the row's content does not match its hash (the row was changed)");
			}
			seal = audit_find_seal(seals, nseals, txid);
			if (seal)
			{
				audit_seal_add(&seal->ctx, id, stored);
				seal->seen++;
			}
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);

	/*
	 * Partition retention removes whole months of old rows: a seal with rows
	 * older than the oldest partition still attached cannot be checked row
	 * by row. That is expected when the removal is recorded in the trail as
	 * a retention event; otherwise it is a problem.
	 */
	rc = SPI_execute("SELECT (SELECT min(pg_catalog.replace(b.lower_bound, 'MINVALUE', '-infinity')::pg_catalog.timestamptz) "
					 "          FROM clinical.partition_bounds('clinical.audit_log') AS b "
					 "         WHERE NOT b.is_default), "
					 "       EXISTS (SELECT 1 FROM clinical.audit_log "
					 "                WHERE operation IN ('PARTITION_DROP', 'PARTITION_DETACH', 'PARTITION_ARCHIVE') "
					 "                  AND table_oid = 'clinical.audit_log'::pg_catalog.regclass)",
					 true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "reading the audit log's partitions failed");
	{
		bool		lo_null;
		TimestampTz kept_from = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
																  SPI_tuptable->tupdesc, 1, &lo_null));
		bool		retention = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 2, &isnull));

		for (i = 0; i < (uint64) nseals; i++)
		{
			if (lo_null || seals[i].min_t >= kept_from)
				continue;
			if (retention)
				seals[i].nrows = -1;	/* removed by retention: not checked */
			else
				audit_problem(ts, rdesc, "seal", 0, seals[i].seal_id,
							  "rows under this seal lie before the oldest partition of the log, and no partition retention was recorded (a partition was removed by hand)");
		}
	}

	for (i = 0; i < (uint64) nseals; i++)
	{
		unsigned char calc[AUDIT_HASH_LEN];

		SHA256_Final(calc, &seals[i].ctx);
		if (seals[i].nrows < 0)
			continue;
		if (seals[i].seen != seals[i].nrows)
		{
			snprintf(detail, sizeof(detail),
					 "the seal covers " INT64_FORMAT " rows but " INT64_FORMAT " are present (rows were deleted or inserted)",
					 seals[i].nrows, seals[i].seen);
			audit_problem(ts, rdesc, "seal", 0, seals[i].seal_id, detail);
		}
		else if (memcmp(calc, seals[i].rows_digest, AUDIT_HASH_LEN) != 0)
			audit_problem(ts, rdesc, "seal", 0, seals[i].seal_id,
						  "the rows under this seal are not the rows that were sealed (ids or hashes changed)");
	}

	SPI_finish();
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 * Redaction
 *-------------------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(clinical_audit_redact);

/*
 * clinical.audit_redact(change_id bigint, columns text[], justification text)
 *		RETURNS bigint
 * Replaces the named columns' values in a stored change by a tombstone and
 * records the redaction (who, when, why and the row's new content hash) as
 * an event of its own, whose id is returned. The row keeps its original
 * content hash, so seals stay valid; audit_verify checks the redacted row
 * against the hash its redaction recorded.
 */
Datum
clinical_audit_redact(PG_FUNCTION_ARGS)
{
	int64		change_id;
	ArrayType  *cols;
	char	   *why;
	Oid			types[3] = {INT8OID, TEXTARRAYOID, TEXTOID};
	Datum		vals[3];
	bool		isnull;
	char		hex[2 * AUDIT_HASH_LEN + 1];
	int64		table_oid = 0;
	char	   *table_name = NULL;
	bytea	   *newhash;
	int			rc;
	Datum		detail;
	Datum		ev_values[AL_NCOLS];
	bool		ev_nulls[AL_NCOLS];
	int64		event_id;
	MemoryContext callercxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("change_id, columns and justification must not be null"),
				 errhint("Name the change, the columns to redact and why.")));
	change_id = PG_GETARG_INT64(0);
	cols = PG_GETARG_ARRAYTYPE_P(1);
	why = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (ARR_NDIM(cols) != 1 || ArrayGetNItems(ARR_NDIM(cols), ARR_DIMS(cols)) == 0 ||
		array_contains_nulls(cols))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("columns must be a one-dimensional array naming at least one column, without nulls"),
				 errhint("Pass the names of the columns whose values are to be redacted, e.g. '{phone}'.")));
	if (strspn(why, " \t\r\n") == strlen(why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a redaction needs a justification"),
				 errhint("Say why the values are redacted, e.g. \"participant's phone number entered in the comments field\".")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	vals[0] = Int64GetDatum(change_id);
	vals[1] = PointerGetDatum(cols);
	rc = SPI_execute_with_args("SELECT table_oid::bigint, table_name, "
							   "(SELECT pg_catalog.array_agg(c) FROM pg_catalog.unnest($2) AS c "
							   "  WHERE NOT (coalesce(l.old_row ? c, false) OR coalesce(l.new_row ? c, false) "
							   "             OR coalesce(l.pk ? c, false))) "
							   "FROM clinical.audit_log AS l WHERE l.change_id = $1 AND l.operation IN ('INSERT', 'UPDATE', 'DELETE') "
							   "FOR UPDATE",
							   2, types, vals, NULL, false, 2);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "reading the change failed");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("no row change with id " INT64_FORMAT " in the audit log", change_id),
				 errhint("Pass the change_id of an INSERT, UPDATE or DELETE from clinical.audit_trail.")));
	table_oid = audit_getint64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	table_name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	{
		char	   *missing = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		if (missing != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("change " INT64_FORMAT " has no stored value for columns %s",
							change_id, missing),
					 errhint("Name only columns present in the change's pk, old_row or new_row.")));
	}

	/* the sanctioned edit: the guard lets it through */
	audit_guard_bypass = true;
	PG_TRY();
	{
		rc = SPI_execute_with_args("UPDATE clinical.audit_log AS l SET "
								   "old_row = CASE WHEN l.old_row IS NULL THEN NULL ELSE l.old_row || coalesce("
								   "  (SELECT pg_catalog.jsonb_object_agg(c, '" AUDIT_REDACTED "'::text) "
								   "     FROM pg_catalog.unnest($2) AS c WHERE l.old_row ? c), '{}') END, "
								   "new_row = CASE WHEN l.new_row IS NULL THEN NULL ELSE l.new_row || coalesce("
								   "  (SELECT pg_catalog.jsonb_object_agg(c, '" AUDIT_REDACTED "'::text) "
								   "     FROM pg_catalog.unnest($2) AS c WHERE l.new_row ? c), '{}') END, "
								   /* a key column's value is also in pk */
								   "pk = CASE WHEN l.pk IS NULL THEN NULL ELSE l.pk || coalesce("
								   "  (SELECT pg_catalog.jsonb_object_agg(c, '" AUDIT_REDACTED "'::text) "
								   "     FROM pg_catalog.unnest($2) AS c WHERE l.pk ? c), '{}') END "
								   "WHERE l.change_id = $1 AND l.operation IN ('INSERT', 'UPDATE', 'DELETE') "
								   "RETURNING clinical._audit_row_hash(l)",
								   2, types, vals, NULL, false, 0);
	}
	PG_FINALLY();
	{
		audit_guard_bypass = false;
	}
	PG_END_TRY();
	if (rc != SPI_OK_UPDATE_RETURNING || SPI_processed != 1)
		elog(ERROR, "redacting change " INT64_FORMAT " failed", change_id);
	newhash = audit_getbytea(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	audit_hex((unsigned char *) VARDATA_ANY(newhash), AUDIT_HASH_LEN, hex);

	vals[2] = CStringGetTextDatum(why);
	types[2] = TEXTOID;
	{
		Oid			t6[6] = {INT8OID, TEXTARRAYOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
		Datum		v6[6] = {vals[0], vals[1], vals[2], CStringGetTextDatum(hex), (Datum) 0, (Datum) 0};
		char		n6[7] = "    nn";

		if (clinical_keyring_configured())
		{
			char		mac[2 * AUDIT_HASH_LEN + 1];
			unsigned char probe[AUDIT_HASH_LEN];
			int			kv = clinical_hmac(0, "", 0, probe);

			audit_redaction_mac(kv, change_id, hex, mac);
			v6[4] = CStringGetTextDatum(mac);
			v6[5] = Int32GetDatum(kv);
			n6[4] = n6[5] = ' ';
		}
		rc = SPI_execute_with_args("SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
								   "'change_id', $1, 'columns', $2, 'justification', $3, "
								   "'redacted_hash', $4, 'redacted_mac', $5, 'key_version', $6))",
								   6, t6, v6, n6, true, 1);
	}
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "building the redaction record failed");
	detail = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	detail = SPI_datumTransfer(detail, false, -1);
	table_name = table_name ? MemoryContextStrdup(callercxt, table_name) : NULL;
	SPI_finish();

	memset(ev_nulls, true, sizeof(ev_nulls));
	ev_values[AL_NEW_ROW] = detail;
	ev_nulls[AL_NEW_ROW] = false;
	event_id = audit_write((Oid) table_oid, table_name, "REDACT", ev_values, ev_nulls, true);
	PG_RETURN_INT64(event_id);
}

/*-------------------------------------------------------------------------
 * Background worker task
 *-------------------------------------------------------------------------
 */

/*
 * The worker's sealing task: every clinical.audit_seal_interval seconds,
 * audit_seal() in its own transaction. Errors are logged and retried at
 * the next interval. Returns the milliseconds until it is due again.
 */
long
audit_worker_run(TimestampTz now)
{
	static TimestampTz last_run = 0;
	volatile long interval_ms;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (audit_seal_interval <= 0)
		return 0;
	interval_ms = (long) audit_seal_interval * 1000L;
	if (last_run != 0 && !TimestampDifferenceExceeds(last_run, now, (int) Min(interval_ms, INT_MAX)))
		return interval_ms - (long) ((now - last_run) / 1000);
	last_run = now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* audit_seal needs READ COMMITTED, whatever default_transaction_isolation says */
	XactIsoLevel = XACT_READ_COMMITTED;
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "clinical: audit seal");
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		SPI_execute("SELECT clinical.audit_seal()", false, 0);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return interval_ms;
}
