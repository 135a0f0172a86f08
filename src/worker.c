/*-------------------------------------------------------------------------
 *
 * src/worker.c
 *	  The clinical background worker: registration, main loop and the
 *	  SQL-visible status function. The worker connects to clinical.database,
 *	  idles on its latch, reloads its configuration on SIGHUP and exits on
 *	  SIGTERM. It is started only after recovery has finished, so it does
 *	  nothing on a standby. While the extension is not installed in its
 *	  database (or after DROP EXTENSION) it stays idle and says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "clinical.h"

/* How long the worker sleeps when it has nothing scheduled. */
#define WORKER_NAPTIME_MS 10000L

/*
 * Register the worker with the postmaster. Called from _PG_init while
 * shared_preload_libraries is processed.
 */
void
clinical_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "clinical");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "clinical_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, CLINICAL_WORKER_NAME);
	snprintf(worker.bgw_type, BGW_MAXLEN, CLINICAL_WORKER_NAME);
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&worker);
}

/* Publish the worker's state for clinical.worker_status(). */
static void
worker_set_state(const char *state)
{
	TimestampTz now = GetCurrentTimestamp();	/* a system call: not under the spinlock */

	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->worker_last_activity = now;
	strlcpy(ClinicalShared->worker_state, state, sizeof(ClinicalShared->worker_state));
	SpinLockRelease(&ClinicalShared->mutex);
}

static void
worker_on_exit(int code, Datum arg)
{
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->worker_pid = 0;
	strlcpy(ClinicalShared->worker_state, "stopped", sizeof(ClinicalShared->worker_state));
	SpinLockRelease(&ClinicalShared->mutex);
}

/*
 * The worker's work, one entry per part. A task is run in the worker's
 * database, outside any transaction (it starts its own), only while the
 * extension is installed there. It returns how many milliseconds may pass
 * before it wants to run again; the worker also wakes on its latch.
 */
typedef long (*WorkerTaskFn) (TimestampTz now);

typedef struct WorkerTask
{
	const char *name;
	WorkerTaskFn run;
} WorkerTask;

static const WorkerTask worker_tasks[] = {
	{"partition maintenance", part_worker_run},
	{"audit seal", audit_worker_run},
	{NULL, NULL}
};

/*
 * One round of work: check that the extension is installed, then run each
 * task. Returns the time to sleep before the next round.
 */
static long
worker_tick(void)
{
	bool		installed;
	long		naptime = WORKER_NAPTIME_MS;
	const WorkerTask *task;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "clinical: checking extension");

	installed = clinical_extension_exists();

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	if (!installed)
	{
		worker_set_state("idle: extension not installed");
		return naptime;
	}

	for (task = worker_tasks; task->name != NULL; task++)
	{
		long		next;

		worker_set_state(task->name);
		next = task->run(GetCurrentTimestamp());
		if (next > 0 && next < naptime)
			naptime = next;
		CHECK_FOR_INTERRUPTS();
	}
	worker_set_state("idle");
	return naptime;
}

/*
 * Main entry point of the background worker.
 */
void
clinical_worker_main(Datum main_arg)
{
	long		naptime;
	TimestampTz started;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(clinical_database, NULL, 0);
	pgstat_report_appname(CLINICAL_WORKER_NAME);

	started = GetCurrentTimestamp();
	SpinLockAcquire(&ClinicalShared->mutex);
	ClinicalShared->worker_pid = MyProcPid;
	ClinicalShared->worker_dboid = MyDatabaseId;
	ClinicalShared->worker_started = started;
	ClinicalShared->worker_last_activity = ClinicalShared->worker_started;
	strlcpy(ClinicalShared->worker_state, "starting", sizeof(ClinicalShared->worker_state));
	SpinLockRelease(&ClinicalShared->mutex);
	on_shmem_exit(worker_on_exit, (Datum) 0);

	ereport(LOG,
			(errmsg("clinical worker started in database \"%s\"", clinical_database)));

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		naptime = worker_tick();

		/* a worker flushes its own statistics (autovacuum reads them) */
		(void) pgstat_report_stat(false);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 naptime,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

PG_FUNCTION_INFO_V1(clinical_worker_status);

/*
 * clinical.worker_status() RETURNS TABLE(preloaded bool, running bool,
 *		pid int, database name, started timestamptz, last_activity timestamptz,
 *		state text)
 */
Datum
clinical_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7];
	pid_t		pid = 0;
	Oid			dboid = InvalidOid;
	TimestampTz started = 0,
				last = 0;
	char		state[64];
	char	   *dbname = NULL;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memset(nulls, 0, sizeof(nulls));

	if (ClinicalShared == NULL)
	{
		values[0] = BoolGetDatum(false);
		values[1] = BoolGetDatum(false);
		nulls[2] = nulls[3] = nulls[4] = nulls[5] = true;
		values[6] = CStringGetTextDatum("not preloaded: add 'clinical' to "
										"shared_preload_libraries in postgresql.conf "
										"(or ALTER SYSTEM SET shared_preload_libraries = "
										"'clinical') and restart the server");
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	SpinLockAcquire(&ClinicalShared->mutex);
	pid = ClinicalShared->worker_pid;
	dboid = ClinicalShared->worker_dboid;
	started = ClinicalShared->worker_started;
	last = ClinicalShared->worker_last_activity;
	strlcpy(state, ClinicalShared->worker_state, sizeof(state));
	SpinLockRelease(&ClinicalShared->mutex);

	values[0] = BoolGetDatum(true);
	values[1] = BoolGetDatum(pid != 0);
	if (pid != 0)
		values[2] = Int32GetDatum((int32) pid);
	else
		nulls[2] = true;

	if (OidIsValid(dboid))
		dbname = get_database_name(dboid);
	if (dbname == NULL)
		dbname = clinical_database;
	values[3] = CStringGetDatum(dbname);
	values[3] = DirectFunctionCall1(namein, values[3]);

	if (started != 0)
		values[4] = TimestampTzGetDatum(started);
	else
		nulls[4] = true;
	if (last != 0)
		values[5] = TimestampTzGetDatum(last);
	else
		nulls[5] = true;

	if (pid == 0 && state[0] == '\0')
		strlcpy(state, "not started yet (check the server log)", sizeof(state));
	values[6] = CStringGetTextDatum(state);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
