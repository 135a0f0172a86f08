/*-------------------------------------------------------------------------
 *
 * src/redis.c
 *	  The Redis connection of the invalidation worker, on hiredis. The
 *	  socket is non-blocking and every wait goes through WaitLatchOrSocket
 *	  with a deadline (clinical.redis_connect_timeout for connecting,
 *	  clinical.redis_command_timeout for a pipeline), so SIGTERM and a
 *	  fast shutdown are served at once even when Redis accepts a connection
 *	  and never answers. Commands are sent in argv form only, so keys with
 *	  spaces, newlines or any bytes stay one argument. The password is never
 *	  put into a message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include <hiredis/hiredis.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "clinical.h"

static redisContext *redis_ctx = NULL;

/*
 * The connection's wait event set (latch, postmaster death, socket): made
 * once a connection, not once a wait (an epoll instance each time).
 */
static WaitEventSet *redis_wes = NULL;
static int	redis_wes_pos = -1;		/* the socket's event */
static int	redis_wes_events = 0;	/* what it waits for now */

bool
redis_is_connected(void)
{
	return redis_ctx != NULL;
}

void
redis_disconnect(void)
{
	if (redis_wes)
		FreeWaitEventSet(redis_wes);
	redis_wes = NULL;
	if (redis_ctx)
		redisFree(redis_ctx);
	redis_ctx = NULL;
}

/*
 * Wait for the socket (events WL_SOCKET_READABLE/WRITEABLE) until the
 * deadline; interrupts (SIGTERM) are served while waiting. False on timeout.
 * A wake-up that arrives meanwhile (a commit) is handed back to the latch
 * on return, so the worker's next sleep does not swallow it.
 */
static bool
redis_wait(int events, TimestampTz deadline)
{
	bool		woken = false;
	bool		ready = false;

	if (redis_wes == NULL)
	{
#if PG_VERSION_NUM >= 170000
		redis_wes = CreateWaitEventSet(NULL, 3);
#else
		redis_wes = CreateWaitEventSet(TopMemoryContext, 3);
#endif
		AddWaitEventToSet(redis_wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(redis_wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		redis_wes_pos = AddWaitEventToSet(redis_wes, events, redis_ctx->fd, NULL, NULL);
		redis_wes_events = events;
	}
	else if (events != redis_wes_events)
	{
		ModifyWaitEvent(redis_wes, redis_wes_pos, events, NULL);
		redis_wes_events = events;
	}

	for (;;)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		WaitEvent	ev;

		if (ms <= 0)
			break;
		if (WaitEventSetWait(redis_wes, ms, &ev, 1, PG_WAIT_EXTENSION) == 0)
			continue;			/* timeout: the deadline is checked above */
		if (ev.events & WL_LATCH_SET)
		{
			/* a wake-up from a committing backend, or a signal */
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			woken = true;
		}
		if (ev.events & events)
		{
			ready = true;
			break;
		}
	}
	if (woken)
		SetLatch(MyLatch);
	return ready;
}

static void
redis_set_error(char *err, size_t errlen, const char *what)
{
	if (redis_ctx && redis_ctx->err)
		snprintf(err, errlen, "%s: %s", what, redis_ctx->errstr);
	else
		snprintf(err, errlen, "%s", what);
}

/*
 * Send everything appended so far and read nreplies replies; replies[] gets
 * them (caller frees with freeReplyObject) or is NULL to discard. Any
 * error or timeout disconnects; false with err set.
 */
bool
redis_exec(int nreplies, redisReply **replies, char *err, size_t errlen)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   clinical_redis_command_timeout);
	int			done = 0;
	int			i;

	while (!done)
	{
		if (redisBufferWrite(redis_ctx, &done) == REDIS_ERR)
		{
			redis_set_error(err, errlen, "could not send to Redis");
			redis_disconnect();
			return false;
		}
		if (!done && !redis_wait(WL_SOCKET_WRITEABLE, deadline))
		{
			snprintf(err, errlen, "Redis did not accept commands within %d ms",
					 clinical_redis_command_timeout);
			redis_disconnect();
			return false;
		}
	}

	for (i = 0; i < nreplies; i++)
	{
		void	   *reply = NULL;

		for (;;)
		{
			if (redisGetReplyFromReader(redis_ctx, &reply) == REDIS_ERR)
			{
				redis_set_error(err, errlen, "invalid reply from Redis");
				goto fail;
			}
			if (reply != NULL)
				break;
			if (!redis_wait(WL_SOCKET_READABLE, deadline))
			{
				snprintf(err, errlen, "Redis did not answer within %d ms",
						 clinical_redis_command_timeout);
				goto fail;
			}
			if (redisBufferRead(redis_ctx) == REDIS_ERR)
			{
				redis_set_error(err, errlen, "lost the connection to Redis");
				goto fail;
			}
		}
		if (replies)
			replies[i] = (redisReply *) reply;
		else
			freeReplyObject(reply);
	}
	return true;

fail:
	/* the replies read so far go too: the caller gets none */
	redis_disconnect();
	while (replies && --i >= 0)
	{
		freeReplyObject(replies[i]);
		replies[i] = NULL;
	}
	return false;
}

void
redis_append(int argc, const char **argv, const size_t *lens)
{
	redisAppendCommandArgv(redis_ctx, argc, argv, lens);
}

/* One command, one reply that must not be an error; for AUTH and SELECT. */
static bool
redis_simple(int argc, const char **argv, const char *what, char *err, size_t errlen)
{
	redisReply *reply;
	size_t		lens[4];
	int			i;

	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	redis_append(argc, argv, lens);
	if (!redis_exec(1, &reply, err, errlen))
		return false;
	if (reply->type == REDIS_REPLY_ERROR)
	{
		/* Redis' own error text names no secret */
		snprintf(err, errlen, "%s failed: %.*s", what, (int) Min(reply->len, 200), reply->str);
		freeReplyObject(reply);
		redis_disconnect();
		return false;
	}
	freeReplyObject(reply);
	return true;
}

/*
 * Connect (non-blocking, within clinical.redis_connect_timeout), AUTH when a
 * password is set, SELECT the database. False with err set on failure.
 */
bool
redis_connect(char *err, size_t errlen)
{
	TimestampTz deadline;
	int			soerr = 0;
	socklen_t	solen = sizeof(soerr);

	redis_disconnect();
	redis_ctx = redisConnectNonBlock(clinical_redis_host, clinical_redis_port);
	if (redis_ctx == NULL)
	{
		snprintf(err, errlen, "could not allocate a Redis context");
		return false;
	}
	if (redis_ctx->err)
	{
		snprintf(err, errlen, "could not connect to Redis at %s:%d: %s",
				 clinical_redis_host, clinical_redis_port, redis_ctx->errstr);
		redis_disconnect();
		return false;
	}

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), clinical_redis_connect_timeout);
	if (!redis_wait(WL_SOCKET_WRITEABLE, deadline))
	{
		snprintf(err, errlen, "could not connect to Redis at %s:%d within %d ms",
				 clinical_redis_host, clinical_redis_port, clinical_redis_connect_timeout);
		redis_disconnect();
		return false;
	}
	if (getsockopt(redis_ctx->fd, SOL_SOCKET, SO_ERROR, &soerr, &solen) != 0 || soerr != 0)
	{
		snprintf(err, errlen, "could not connect to Redis at %s:%d: %s",
				 clinical_redis_host, clinical_redis_port, strerror(soerr));
		redis_disconnect();
		return false;
	}
	redis_ctx->flags |= REDIS_CONNECTED;

	if (clinical_redis_password && clinical_redis_password[0])
	{
		const char *argv[3];
		int			argc = 0;

		argv[argc++] = "AUTH";
		if (clinical_redis_user && clinical_redis_user[0])
			argv[argc++] = clinical_redis_user;
		argv[argc++] = clinical_redis_password;
		if (!redis_simple(argc, argv, "Redis AUTH", err, errlen))
			return false;
	}
	if (clinical_redis_db != 0)
	{
		char		db[16];
		const char *argv[2] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", clinical_redis_db);
		if (!redis_simple(2, argv, "Redis SELECT", err, errlen))
			return false;
	}
	return true;
}
