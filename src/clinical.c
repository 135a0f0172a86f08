/*-------------------------------------------------------------------------
 *
 * src/clinical.c
 *	  Entry point of the clinical extension. _PG_init defines the clinical.*
 *	  settings and reserves the prefix; when the library is loaded through
 *	  shared_preload_libraries it also requests the shared memory of the
 *	  background worker and registers the worker. Nothing else lives here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "clinical.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

char	   *clinical_database = NULL;
int			clinical_maintenance_interval = 3600;
char	   *clinical_redis_host = NULL;
int			clinical_redis_port = 6379;
int			clinical_redis_db = 0;
char	   *clinical_redis_user = NULL;
char	   *clinical_redis_password = NULL;
int			clinical_redis_connect_timeout = 1000;
int			clinical_redis_command_timeout = 1000;

bool		clinical_preloaded = false;
ClinicalSharedState *ClinicalShared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static emit_log_hook_type prev_emit_log_hook = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/*
 * The password is never shown, not even to superusers: SHOW and pg_settings
 * say only whether one is set.
 */
static const char *
clinical_show_secret(void)
{
	if (clinical_redis_password == NULL || clinical_redis_password[0] == '\0')
		return "";
	return "********";
}

/*
 * Keep the Redis password out of the server log. The postmaster logs
 * 'parameter "x" changed to "value"' on reload, and statement logging may
 * log an ALTER SYSTEM that sets it: any message that names the setting
 * loses everything after the name, and so does the statement logged with it.
 */
static char *
clinical_strcasestr(const char *hay, const char *needle)
{
	size_t		n = strlen(needle);

	for (; *hay; hay++)
		if (pg_strncasecmp(hay, needle, n) == 0)
			return (char *) hay;
	return NULL;
}

/*
 * Keep the Redis password out of messages: a message that names the
 * setting as PostgreSQL quotes it ("clinical.redis_password") and goes on
 * to a quoted value (a reload's "changed to", an invalid value) loses
 * everything after the name; the statement of a message is not logged
 * when it names the setting (ALTER SYSTEM SET ... = 'secret'). Other
 * messages - the reason a SET was refused, a user's own text, a column
 * that happens to be called redis_password - are left as they are.
 */
/* clinical.database names a database: not empty */
static bool
clinical_check_database(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
	{
		GUC_check_errdetail("Name the database the worker is to work in.");
		return false;
	}
	return true;
}

static void
clinical_emit_log(ErrorData *edata)
{
	static const char quoted_name[] = "\"clinical.redis_password\"";
	static const char setting_name[] = "clinical.redis_password";
	char	   *at;

	/* GUC names are case-insensitive: so is the match */
	if (edata->message && (at = clinical_strcasestr(edata->message, quoted_name)) != NULL &&
		strchr(at + strlen(quoted_name), '"') != NULL)
	{
		size_t		keep = (at - edata->message) + strlen(quoted_name);

		edata->message = psprintf("%.*s [value hidden]", (int) keep, edata->message);
	}
	if (debug_query_string && clinical_strcasestr(debug_query_string, setting_name) != NULL)
		edata->hide_stmt = true;

	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

Size
clinical_shmem_size(void)
{
	return MAXALIGN(sizeof(ClinicalSharedState));
}

#if PG_VERSION_NUM >= 150000
static void
clinical_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(clinical_shmem_size());
}
#endif

/* Create or attach to the worker's shared state. */
static void
clinical_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ClinicalShared = ShmemInitStruct("clinical", clinical_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(ClinicalShared, 0, clinical_shmem_size());
		SpinLockInit(&ClinicalShared->mutex);
		for (i = 0; i < INVAL_HINT_WORDS; i++)
			pg_atomic_init_u64(&ClinicalShared->inval_hint[i], 0);
		pg_atomic_init_u32(&ClinicalShared->inval_hint_all, 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

static void
clinical_define_gucs(void)
{
	DefineCustomStringVariable("clinical.database",
							   "Database the clinical background worker connects to.",
							   "The worker does its work (maintenance, sealing, invalidation) "
							   "only in this database.",
							   &clinical_database,
							   "postgres",
	/* PGC_POSTMASTER settings can only be created while preloading */
							   process_shared_preload_libraries_in_progress ?
							   PGC_POSTMASTER : PGC_SIGHUP,
							   0,
							   clinical_check_database, NULL, NULL);

	DefineCustomIntVariable("clinical.maintenance_interval",
							"Time between partition maintenance runs of the background worker.",
							"0 turns scheduled maintenance off.",
							&clinical_maintenance_interval,
							3600, 0, INT_MAX / 1000,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("clinical.redis_host",
							   "Host name or address of the Redis server for cache invalidation.",
							   NULL,
							   &clinical_redis_host,
							   "127.0.0.1",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.redis_port",
							"TCP port of the Redis server for cache invalidation.",
							NULL,
							&clinical_redis_port,
							6379, 1, 65535,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.redis_db",
							"Redis logical database number (SELECT) for cache invalidation.",
							NULL,
							&clinical_redis_db,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("clinical.redis_user",
							   "Redis ACL user name for AUTH; empty uses the default user.",
							   NULL,
							   &clinical_redis_user,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	/*
	 * PGC_SIGHUP keeps it out of ALTER DATABASE/ROLE SET (and so out of
	 * pg_db_role_setting); superuser-only and hidden keep it out of SHOW ALL
	 * and pg_settings for other roles; the show hook masks it for everyone.
	 */
	DefineCustomStringVariable("clinical.redis_password",
							   "Password for Redis AUTH.",
							   NULL,
							   &clinical_redis_password,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, clinical_show_secret);

	DefineCustomIntVariable("clinical.redis_connect_timeout",
							"Time allowed for connecting to Redis.",
							NULL,
							&clinical_redis_connect_timeout,
							1000, 1, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("clinical.redis_command_timeout",
							"Time allowed for Redis to answer a command batch.",
							NULL,
							&clinical_redis_command_timeout,
							1000, 1, 60000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * Module load. Settings always; shared memory and the background worker
 * only when preloaded, since both must exist before the postmaster forks.
 */
void
_PG_init(void)
{
	clinical_define_gucs();
	pseud_define_gucs();
	audit_define_gucs();
	summ_define_gucs();
	inval_define_gucs();
	part_define_gucs();

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = clinical_emit_log;

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("clinical");
#else
	EmitWarningsOnPlaceholders("clinical");
#endif

	if (!process_shared_preload_libraries_in_progress)
		return;

	clinical_preloaded = true;

#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = clinical_shmem_request;
#else
	RequestAddinShmemSpace(clinical_shmem_size());
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = clinical_shmem_startup;

	clinical_worker_register();
	inval_worker_register();
}
