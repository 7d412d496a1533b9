/*
 * ctx.c - request contexts (pgb_ctx), their sessions (pgb_session),
 * atomic blocks, and read-your-writes bookkeeping.
 *
 * A session is lazy: it takes a pooled connection at its first statement
 * and sends BEGIN with that statement in one round trip.  Its state is
 * read back from libpq (PQtransactionStatus) after every exchange, so a
 * BEGIN or COMMIT sent by the application through the raw connection is
 * followed too.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

struct pgb_session {
	pgb_db		*db;		/* borrowed; outlives the session */
	pgb_ctx		*ctx;		/* owner; NULL: owned by the caller */
	struct pgbi_pconn *conn;	/* checked out, or NULL */
	int		 autocommit;	/* no implicit BEGIN */
	int		 track_lsn;	/* PGB_SESSION_TRACK_LSN */
	int		 tx_wrote;	/* a statement's tag showed a write */
	char		 commit_lsn[PGB_LSN_MAX];
	struct pgbi_serr err;		/* read by pgb_session_error */
	/*
	 * A savepoint session (tests): runs on outer's connection, inside
	 * its transaction; BEGIN, COMMIT and ROLLBACK become the savepoint
	 * statements of sp.  outer is borrowed and outlives it.
	 */
	pgb_session	*outer;
	int		 sp_open;	/* its savepoint is open */
	struct pgbi_sp	 sp;
	TAILQ_ENTRY(pgb_session) entry;	/* in ctx->sessions */
};

struct pgb_ctx {
	pgb_ctx		*prev;		/* current before this one; borrowed */
	int		 ended;
	TAILQ_HEAD(, pgb_session) sessions;	/* owned */
	pgb_before_commit_fn before_commit;
	void		*before_commit_arg;
	struct pgbi_ctx_lsn lsn;	/* highest commit LSN seen or given */
	int		 track_lsn;	/* pgb_ctx_set_track_lsn */
	char		 error[PGBI_CTX_ERROR_MAX];
	char		 first_error[PGBI_FIRST_MAX];	/* of any session */
};

static _Thread_local pgb_ctx *ctx_current;

static int	 session_acquire(pgb_session *s);
static void	 session_release(pgb_session *s, int discard);
static int	 session_in_tx(const pgb_session *s);
static PGresult	*session_run(pgb_session *s, const char *sql, int params,
		     int nparams, const Oid *types, const char *const *values,
		     const int *lengths, const int *formats, int result_format);
static PGresult	*session_begin_and_run(PGconn *pg, const char *sql,
		     int params, int nparams, const Oid *types,
		     const char *const *values, const int *lengths,
		     const int *formats, int result_format);

/* Sets ctx's error, and its first error while that is empty. */
#define ctx_seterr(ctx, ...)						\
	pgbi_ctx_seterr((ctx)->error, (ctx)->first_error, __VA_ARGS__)

/* --- context ------------------------------------------------------------ */

pgb_ctx *
pgb_ctx_begin(int flags)
{
	pgb_ctx	*ctx;

	if (ctx_current != NULL && !(flags & PGB_CTX_FORCE))
		return (NULL);
	ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL)
		return (NULL);
	TAILQ_INIT(&ctx->sessions);
	ctx->prev = ctx_current;
	ctx_current = ctx;
	return (ctx);
}

pgb_ctx *
pgb_ctx_current(void)
{
	return (ctx_current);
}

int
pgb_ctx_is_current(void)
{
	return (ctx_current != NULL);
}

void
pgb_ctx_set_before_commit(pgb_ctx *ctx, pgb_before_commit_fn fn, void *arg)
{
	ctx->before_commit = fn;
	ctx->before_commit_arg = arg;
}

const char *
pgb_ctx_error(const pgb_ctx *ctx)
{
	return (ctx != NULL ? ctx->error : "no context (one is current"
	    " already, or out of memory)");
}

int
pgb_ctx_end(pgb_ctx *ctx, int status)
{
	struct pgbi_serr why;		/* the session's error stays as is */
	pgb_session	*s;
	int		 rc = 0;

	if (ctx == NULL || ctx->ended)
		return (0);
	ctx->error[0] = '\0';
	why.first = NULL;
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (!session_in_tx(s)) {
			pgb_session_close(s);
			continue;
		}
		switch (pgbi_end_step(status, PQtransactionStatus(s->conn->pg) ==
		    PQTRANS_INERROR, ctx->before_commit != NULL)) {
		case PGBI_END_ROLLBACK:
			pgb_session_rollback(s);
			break;
		case PGBI_END_FAILED_TX:
			/* Before the rollback, which may drop s->conn. */
			pgbi_serr_end_failed(&why, s->db, s->conn);
			ctx_seterr(ctx, "%s", why.text);
			(void)pgb_session_rollback(s);
			rc = -1;
			break;
		case PGBI_END_ASK:
			if (ctx->before_commit(ctx, s,
			    ctx->before_commit_arg) != 0) {
				pgb_session_rollback(s);
				pgbi_serr_refused(&why, s->db);
				ctx_seterr(ctx, "%s", why.text);
				rc = -1;
				break;
			}
			/* FALLTHROUGH */
		case PGBI_END_COMMIT:
			if (pgb_session_commit(s) == -1) {
				ctx_seterr(ctx, "%s", s->err.text);
				rc = -1;
			}
			break;
		}
		pgb_session_close(s);
	}
	ctx->ended = 1;
	if (ctx_current == ctx)
		ctx_current = ctx->prev;
	return (rc);
}

void
pgb_ctx_free(pgb_ctx *ctx)
{
	pgb_session	*s;

	if (ctx == NULL)
		return;
	if (!ctx->ended)
		(void)pgb_ctx_end(ctx, 500);
	while ((s = TAILQ_FIRST(&ctx->sessions)) != NULL) {
		TAILQ_REMOVE(&ctx->sessions, s, entry);
		free(s);
	}
	free(ctx);
}

/*
 * Runs step (commit or rollback) on every session of ctx; -1 when one
 * failed, with the last failure's message on ctx.
 */
static int
ctx_each(pgb_ctx *ctx, int (*step)(pgb_session *))
{
	pgb_session	*s;
	int		 rc = 0;

	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (step(s) == -1) {
			ctx_seterr(ctx, "%s", s->err.text);
			rc = -1;
		}
	}
	return (rc);
}

int
pgb_ctx_commit_all(pgb_ctx *ctx)
{
	return (ctx_each(ctx, pgb_session_commit));
}

int
pgb_ctx_rollback_all(pgb_ctx *ctx)
{
	return (ctx_each(ctx, pgb_session_rollback));
}

void
pgb_ctx_close_all(pgb_ctx *ctx)
{
	pgb_session	*s;

	TAILQ_FOREACH(s, &ctx->sessions, entry)
		pgb_session_close(s);
}

int
pgb_ctx_lsn(const pgb_ctx *ctx, char buf[PGB_LSN_MAX])
{
	return (pgbi_ctx_lsn_get(&ctx->lsn, buf));
}

void
pgb_ctx_set_track_lsn(pgb_ctx *ctx, int on)
{
	ctx->track_lsn = on != 0;
}

int
pgb_ctx_set_lsn(pgb_ctx *ctx, const char *lsn)
{
	return (pgbi_ctx_lsn_set(&ctx->lsn, lsn, ctx->error,
	    sizeof ctx->error));
}

/* --- sessions ----------------------------------------------------------- */

pgb_session *
pgb_ctx_session(pgb_ctx *ctx, pgb_db *db)
{
	pgb_session	*s;

	if (ctx == NULL)
		ctx = ctx_current;
	if (ctx == NULL || ctx->ended || db == NULL)
		return (NULL);
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (s->db == db)
			return (s);
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return (NULL);
	s->db = db;
	s->ctx = ctx;
	s->err.first = ctx->first_error;
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	return (s);
}

pgb_session *
pgb_session_new(pgb_db *db, int flags)
{
	pgb_session	*s;

	if (db == NULL)
		return (NULL);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return (NULL);
	s->db = db;
	s->autocommit = (flags & PGB_SESSION_AUTOCOMMIT) != 0;
	s->track_lsn = (flags & PGB_SESSION_TRACK_LSN) != 0;
	return (s);
}

void
pgb_session_free(pgb_session *s)
{
	if (s == NULL || s->ctx != NULL)
		return;
	pgb_session_close(s);
	free(s);
}

/* --- test utilities: savepoint sessions, get/put/pop ---------------------- */

pgb_session *
pgb_session_new_savepoint(pgb_session *outer)
{
	pgb_session	*s;

	if (outer == NULL || outer->autocommit)
		return (NULL);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return (NULL);
	s->db = outer->db;
	s->outer = outer;
	pgbi_sp_init(&s->sp, s);
	return (s);
}

pgb_session *
pgb_ctx_get_session(pgb_ctx *ctx, pgb_db *db)
{
	pgb_session	*s;

	if (ctx == NULL)
		ctx = ctx_current;
	if (ctx == NULL || db == NULL)
		return (NULL);
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (s->db == db)
			return (s);
	}
	return (NULL);
}

pgb_session *
pgb_ctx_pop_session(pgb_ctx *ctx, pgb_db *db)
{
	pgb_session	*s;

	if (ctx == NULL)
		ctx = ctx_current;
	if ((s = pgb_ctx_get_session(ctx, db)) == NULL)
		return (NULL);
	TAILQ_REMOVE(&ctx->sessions, s, entry);
	s->ctx = NULL;
	return (s);
}

int
pgb_ctx_put_session(pgb_ctx *ctx, pgb_session *s)
{
	pgb_session	*old;

	if (ctx == NULL)
		ctx = ctx_current;
	if (ctx == NULL || s == NULL)
		return (-1);
	if (ctx->ended || s->ctx != NULL) {
		ctx_seterr(ctx, "%s: cannot put a session in %s",
		    pgbi_db_label(s->db), ctx->ended ? "an ended context" :
		    "a context: it belongs to one already");
		return (-1);
	}
	if ((old = pgb_ctx_pop_session(ctx, s->db)) != NULL)
		pgb_session_free(old);
	s->ctx = ctx;
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	return (0);
}

pgb_session *
pgb_ctx_put_savepoint_session(pgb_ctx *ctx, pgb_session *outer)
{
	pgb_session	*s;

	if ((s = pgb_session_new_savepoint(outer)) == NULL)
		return (NULL);
	if (pgb_ctx_put_session(ctx, s) == -1) {
		pgb_session_free(s);
		return (NULL);
	}
	return (s);
}

static int
session_in_tx(const pgb_session *s)
{
	if (s->outer != NULL)
		return (s->conn != NULL && s->sp_open &&
		    pgbi_in_tx(s->conn->pg));
	return (s->conn != NULL && pgbi_in_tx(s->conn->pg));
}

/*
 * A savepoint session takes outer's connection, with outer's
 * transaction begun.  -1 with the error set.
 */
static int
sp_acquire(pgb_session *s)
{
	if (pgb_session_conn(s->outer) == NULL) {
		pgbi_serr_set(&s->err, pgb_session_errcode(s->outer), "%s:"
		    " savepoint session: %s", pgbi_db_label(s->db),
		    pgb_session_error(s->outer));
		return (-1);
	}
	s->conn = s->outer->conn;
	return (0);
}

/* Runs one savepoint statement (sp.begin, .release or .rollback). */
static int
sp_exec(pgb_session *s, const char *sql)
{
	PGresult	*res;
	int		 rc = 0;

	res = PQexec(s->conn->pg, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgbi_serr_pg(&s->err, s->db, s->conn, res, sql);
		rc = -1;
	}
	PQclear(res);
	s->sp_open = sql == s->sp.begin && rc == 0;
	return (rc);
}

struct pgbi_pconn *
pgbi_session_outer_conn(pgb_session *s, int may_block)
{
	if (s->autocommit) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: an autocommit"
		    " session has no transaction to hold savepoints",
		    pgbi_db_label(s->db));
		return (NULL);
	}
	if (!may_block && (!session_in_tx(s) ||
	    PQstatus(s->conn->pg) != CONNECTION_OK)) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: the outer session"
		    " has no transaction open", pgbi_db_label(s->db));
		return (NULL);
	}
	if (pgb_session_conn(s) == NULL)
		return (NULL);
	return (s->conn);
}

/* Takes a connection when the session has none.  -1 with the error set. */
static int
session_acquire(pgb_session *s)
{
	char		 lsn[PGB_LSN_MAX];
	const char	*min_lsn = NULL;

	if (s->conn != NULL)
		return (0);
	if (s->ctx != NULL && s->ctx->ended) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: the session's"
		    " context has ended", pgbi_db_label(s->db));
		return (-1);
	}
	if (s->outer != NULL)
		return (sp_acquire(s));
	if (pgbi_ctx_lsn_min(s->ctx != NULL ? &s->ctx->lsn : NULL, s->db, lsn))
		min_lsn = lsn;
	if (pgbi_db_checkout(s->db, min_lsn, &s->conn, &s->err.code,
	    s->err.text, sizeof s->err.text) == -1) {
		s->err.sqlstate[0] = '\0';
		pgbi_serr_note(&s->err);
		return (-1);
	}
	return (0);
}

/* Gives the connection back (closed when discard or in a transaction). */
static void
session_release(pgb_session *s, int discard)
{
	if (s->conn == NULL)
		return;
	if (s->outer == NULL)	/* a savepoint session's is outer's */
		pgbi_db_checkin(s->db, s->conn, discard);
	s->conn = NULL;
}

/*
 * Sends BEGIN and sql in one round trip; returns the result of sql (or
 * of BEGIN when BEGIN failed), NULL when the connection failed.
 */
static PGresult *
session_begin_and_run(PGconn *pg, const char *sql, int params, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format)
{
	PGresult	*res, *last = NULL, *begin_err = NULL;
	char		*multi;
	int		 query, synced = 0;

	if (!params) {
		/* A simple-query string runs BEGIN then sql, in order. */
		if ((multi = pgbi_begin_sql(sql)) == NULL)
			return (NULL);
		res = PQexec(pg, multi);
		free(multi);
		return (res);
	}
	if (!PQenterPipelineMode(pg))
		return (NULL);
	if (!pgbi_begin_pipeline(pg, sql, nparams, types, values, lengths,
	    formats, result_format)) {
		(void)PQexitPipelineMode(pg);
		return (NULL);
	}
	/* Results: BEGIN's, NULL, sql's, NULL, then the sync. */
	for (query = 0; query < 2 && !synced;) {
		res = PQgetResult(pg);
		if (res == NULL) {
			if (PQstatus(pg) != CONNECTION_OK)
				break;
			query++;
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			synced = 1;
		} else if (query == 0) {
			if (PQresultStatus(res) != PGRES_COMMAND_OK &&
			    begin_err == NULL)
				begin_err = res;
			else
				PQclear(res);
		} else {
			PQclear(last);
			last = res;
		}
	}
	while (!synced && PQstatus(pg) == CONNECTION_OK &&
	    (res = PQgetResult(pg)) != NULL) {
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			synced = 1;
		PQclear(res);
	}
	if (!PQexitPipelineMode(pg) || PQstatus(pg) != CONNECTION_OK) {
		PQclear(begin_err);
		PQclear(last);
		return (NULL);
	}
	if (begin_err != NULL) {
		PQclear(last);
		return (begin_err);
	}
	return (last);
}

/*
 * A master db's statement failed with res: 1 when it is a read-only
 * error (the host is a standby now: the db forgets it) and first is set
 * (the statement began the transaction, so it may be sent again).
 */
static int
session_role_lost(pgb_session *s, const PGresult *res, int first)
{
	const char	*st = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (s->outer != NULL || !pgbi_db_is_master(s->db) || st == NULL ||
	    strcmp(st, "25006") != 0)
		return (0);
	pgbi_db_role_lost(s->db, s->conn);
	return (first);
}

/*
 * A master db's session failed to open a connection (s->conn NULL), or
 * lost its connection on its transaction's first statement (nothing
 * ran), with sqlstate (may be NULL) and libpq's msg.  1 when that means
 * its host is leaving the role (pgbi_role_moving): the db drops that
 * host and forgets the answer, then this waits (it may: the blocking
 * API) until the daemon names another host, or none, or an event of the
 * cluster comes; the caller tries again.  0 when the caller fails: not
 * the role moving, or the db's role wait, counted from *until (0: from
 * now), ran out.
 */
static int
session_role_moving(pgb_session *s, const char *sqlstate, const char *msg,
    int64_t *until)
{
	char		 host[PGB_HOST_MAX];
	pgb_resolved	 r;
	pgb_event	 ev;
	pgb_hook_fn	 hook;
	void		*harg;
	pgb_client	*cl = NULL;
	pgb_watch	*w = NULL;
	int64_t		 left;
	int		 port, ret = 0, wait = pgbi_db_role_wait_ms(s->db);

	pgbi_db_hook(s->db, &hook, &harg);
	if (s->outer != NULL || !pgbi_db_is_master(s->db) ||
	    hook != pgb_db_default_hook || pgb_db_cluster(s->db) == NULL ||
	    wait <= 0 || !pgbi_role_moving(sqlstate, msg))
		return (0);
	if (*until == 0)
		*until = pgbi_now_ms() + wait;
	if (s->conn != NULL) {
		pgbi_strlcpy(host, s->conn->host, sizeof host);
		port = s->conn->port;
		pgbi_db_role_lost(s->db, s->conn);
		session_release(s, 1);
	} else if (pgb_db_current_host(s->db, host, sizeof host, &port) == 0)
		pgbi_db_host_lost(s->db, host, port);
	else
		return (0);
	pgbi_db_invalidate(s->db);
	/* Subscribed first: an event from here on is not missed. */
	w = pgb_watch_new(pgbi_db_socket(s->db), pgb_db_cluster(s->db));
	cl = pgb_client_new(pgbi_db_socket(s->db));
	if (w == NULL || cl == NULL)
		goto out;
	for (;;) {
		if ((left = *until - pgbi_now_ms()) <= 0)
			goto out;
		pgb_client_set_timeout(cl, (int)(left < 2000 ? left : 2000));
		if (pgb_client_resolve(cl, pgb_db_cluster(s->db),
		    pgb_db_role(s->db), NULL, &r) != 0 || r.port != port ||
		    strcmp(r.host, host) != 0)
			break;		/* another host, none, or no daemon */
		/* Still named: until the cluster's next event. */
		if ((left = *until - pgbi_now_ms()) <= 0 ||
		    pgb_watch_wait(w, &ev, (int)left) != 1)
			goto out;
		if (ev.resync || strcmp(ev.cluster, pgb_db_cluster(s->db)) == 0)
			break;
	}
	ret = 1;
out:
	pgb_client_free(cl);
	pgb_watch_free(w);
	return (ret);
}

static PGresult *
session_run(pgb_session *s, const char *sql, int params, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format)
{
	PGresult	*res;
	int64_t		 until = 0;	/* end of a wait for the role to move */
	int		 attempt, begin, lost = 0;

	if (s == NULL)
		return (NULL);
	if (sql == NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: no SQL given",
		    pgbi_db_label(s->db));
		return (NULL);
	}
	for (attempt = 0; attempt < 2; attempt++) {
		if (session_acquire(s) == -1) {
			/* Refused as the host leaves the role: nothing ran. */
			if (s->err.code == PGB_ERR_CONNECT && s->outer == NULL &&
			    session_role_moving(s, NULL, s->err.text, &until)) {
				attempt--;
				continue;
			}
			return (NULL);
		}
		begin = !s->autocommit && !session_in_tx(s);
		if (begin)
			s->tx_wrote = 0;
		if (begin && s->outer != NULL) {
			if (sp_exec(s, s->sp.begin) == -1)
				return (NULL);
			begin = 0;
		}
		if (begin) {
			res = session_begin_and_run(s->conn->pg, sql, params,
			    nparams, types, values, lengths, formats,
			    result_format);
		} else if (params)
			res = PQexecParams(s->conn->pg, sql, nparams, types,
			    values, lengths, formats, result_format);
		else
			res = PQexec(s->conn->pg, sql);
		if (PQstatus(s->conn->pg) != CONNECTION_OK) {
			pgbi_serr_pg(&s->err, s->db, s->conn, res,
			    "connection lost");
			s->err.code = PGB_ERR_CONNECT;
			/* Ended as the host leaves the role before anything
			 * ran (it came with the BEGIN): once more there. */
			if (begin && session_role_moving(s,
			    PQresultErrorField(res, PG_DIAG_SQLSTATE),
			    PQerrorMessage(s->conn->pg), &until)) {
				PQclear(res);
				attempt--;
				continue;
			}
			if (s->conn == NULL) {	/* dropped: the wait ran out */
				PQclear(res);
				return (NULL);
			}
			PQclear(res);
			/*
			 * A pooled connection that died while idle: when this
			 * was the transaction's first statement nothing can
			 * have been committed, so try once on a new one.
			 */
			attempt += !(begin && s->conn->reused);
			session_release(s, 1);
			pgbi_db_invalidate(s->db);
			continue;
		}
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_SINGLE_TUPLE:
			pgbi_serr_clear(&s->err);
			s->tx_wrote |= pgbi_tag_wrote(PQcmdStatus(res));
			return (res);
		default:
			pgbi_serr_pg(&s->err, s->db, s->conn, res, NULL);
			if (session_role_lost(s, res, begin || s->autocommit) &&
			    !lost) {
				/*
				 * Nothing ran: its transaction (or implicit
				 * one) failed whole.  Once more (whatever
				 * the attempts before), on the host the
				 * daemon names now.
				 */
				PQclear(res);
				session_release(s, 1);
				lost = 1;
				attempt--;
				continue;
			}
			PQclear(res);
			return (NULL);
		}
	}
	return (NULL);
}

PGresult *
pgb_exec(pgb_session *s, const char *sql)
{
	return (session_run(s, sql, 0, 0, NULL, NULL, NULL, NULL, 0));
}

PGresult *
pgb_exec_params(pgb_session *s, const char *sql, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format)
{
	return (session_run(s, sql, 1, nparams, types, values, lengths,
	    formats, result_format));
}

PGconn *
pgb_session_conn(pgb_session *s)
{
	PGresult	*res;

	if (s == NULL || session_acquire(s) == -1)
		return (NULL);
	if (s->outer != NULL && !session_in_tx(s)) {
		s->tx_wrote = 0;
		if (sp_exec(s, s->sp.begin) == -1)
			return (NULL);
	} else if (!s->autocommit && !session_in_tx(s)) {
		s->tx_wrote = 0;
		res = PQexec(s->conn->pg, "BEGIN");
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			pgbi_serr_pg(&s->err, s->db, s->conn, res, "BEGIN");
			PQclear(res);
			session_release(s, PQstatus(s->conn->pg) !=
			    CONNECTION_OK);
			return (NULL);
		}
		PQclear(res);
	}
	return (s->conn->pg);
}

int
pgb_session_commit(pgb_session *s)
{
	struct pgbi_commit	 cm;
	PGresult		*res;
	int			 nres = 0, ok = 1;

	if (s == NULL)
		return (-1);
	if (!session_in_tx(s))
		return (0);
	if (PQtransactionStatus(s->conn->pg) == PQTRANS_INERROR) {
		/*
		 * The message names s->conn, which a failed rollback (the
		 * connection lost) releases: made first, kept after.
		 */
		struct pgbi_serr	failed;

		failed.first = NULL;
		pgbi_serr_failed_tx(&failed, s->db, s->conn);
		(void)pgb_session_rollback(s);
		failed.first = s->err.first;
		s->err = failed;
		pgbi_serr_note(&s->err);
		return (-1);
	}
	if (s->outer != NULL)
		return (sp_exec(s, s->sp.release));
	if (!PQsendQuery(s->conn->pg, pgbi_commit_sql(&cm, s->db, s->conn,
	    s->track_lsn || (s->ctx != NULL && s->ctx->track_lsn),
	    s->tx_wrote))) {
		pgbi_serr_pg(&s->err, s->db, s->conn, NULL, "COMMIT");
		session_release(s, 1);
		return (-1);
	}
	while ((res = PQgetResult(s->conn->pg)) != NULL) {
		nres++;
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK) {
			if (ok)
				pgbi_serr_pg(&s->err, s->db, s->conn, res,
				    "COMMIT");
			ok = 0;
		} else
			pgbi_commit_result(&cm, nres, res);
		PQclear(res);
	}
	if (PQstatus(s->conn->pg) != CONNECTION_OK) {
		if (ok)
			pgbi_serr_pg(&s->err, s->db, s->conn, NULL, "COMMIT");
		session_release(s, 1);
		return (-1);
	}
	if (!ok || !pgbi_commit_complete(&cm, nres)) {
		if (ok)
			pgbi_serr_set(&s->err, PGB_ERR_SQL, "%s: COMMIT got"
			    " no reply", pgbi_db_label(s->db));
		if (session_in_tx(s))
			(void)pgb_session_rollback(s);
		return (-1);
	}
	pgbi_commit_record(&cm, s->commit_lsn, s->ctx != NULL ?
	    &s->ctx->lsn : NULL);
	s->tx_wrote = 0;
	return (0);
}

int
pgb_session_rollback(pgb_session *s)
{
	PGresult	*res;
	int		 rc = 0;

	if (s == NULL)
		return (-1);
	if (!session_in_tx(s))
		return (0);
	if (s->outer != NULL)
		return (sp_exec(s, s->sp.rollback));
	res = PQexec(s->conn->pg, "ROLLBACK");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgbi_serr_pg(&s->err, s->db, s->conn, res, "ROLLBACK");
		rc = -1;
	}
	PQclear(res);
	if (rc == -1)
		session_release(s, 1);
	return (rc);
}

void
pgb_session_close(pgb_session *s)
{
	if (s == NULL || s->conn == NULL)
		return;
	if (session_in_tx(s))
		(void)pgb_session_rollback(s);
	session_release(s, 0);
}

int
pgb_session_in_transaction(const pgb_session *s)
{
	return (s != NULL && session_in_tx(s));
}

const char *
pgb_session_host(const pgb_session *s)
{
	return (s->conn != NULL ? s->conn->host : NULL);
}

int
pgb_session_port(const pgb_session *s)
{
	return (s->conn != NULL ? s->conn->port : 0);
}

const char *
pgb_session_role(const pgb_session *s)
{
	return (s->conn != NULL ? s->conn->role : NULL);
}

pgb_db *
pgb_session_db(const pgb_session *s)
{
	return (s->db);
}

const char *
pgb_session_commit_lsn(const pgb_session *s)
{
	return (s->commit_lsn);
}

const char *
pgb_session_error(const pgb_session *s)
{
	return (s != NULL ? s->err.text : "no session (no current context,"
	    " the context ended, or out of memory)");
}

pgb_errcode
pgb_session_errcode(const pgb_session *s)
{
	return (s != NULL ? s->err.code : PGB_ERR_ARG);
}

const char *
pgb_session_sqlstate(const pgb_session *s)
{
	return (s != NULL ? s->err.sqlstate : "");
}

/* --- atomic blocks, new contexts ----------------------------------------- */

/* The error of an atomic block whose callback failed, on ctx. */
static void
atomic_failed(pgb_ctx *ctx, const pgb_session *s)
{
	if (s->err.code != PGB_OK)
		ctx_seterr(ctx, "%s", s->err.text);
	else
		ctx_seterr(ctx, "%s: the atomic block's callback failed",
		    pgbi_db_label(s->db));
}

int
pgb_atomic(pgb_ctx *ctx, pgb_db *db, pgb_atomic_mode mode, pgb_atomic_fn fn,
    void *arg)
{
	pgb_session	*s;

	if (ctx == NULL)
		ctx = ctx_current;
	if (ctx == NULL)
		return (-1);
	if (fn == NULL) {
		ctx_seterr(ctx, "pgb_atomic: no callback given");
		return (-1);
	}
	if (db == NULL) {
		ctx_seterr(ctx, "pgb_atomic: no db given");
		return (-1);
	}
	s = pgb_ctx_session(ctx, db);
	if (s == NULL) {
		ctx_seterr(ctx, "%s: no session (context ended or out of"
		    " memory)", pgbi_db_label(db));
		return (-1);
	}
	if (session_in_tx(s)) {
		switch (mode) {
		case PGB_ATOMIC_COMMIT_FIRST:
			if (pgb_session_commit(s) == -1) {
				ctx_seterr(ctx, "%s", s->err.text);
				return (-1);
			}
			break;
		case PGB_ATOMIC_ROLLBACK_FIRST:
			if (pgb_session_rollback(s) == -1) {
				ctx_seterr(ctx, "%s", s->err.text);
				return (-1);
			}
			break;
		case PGB_ATOMIC_APPEND:
			/* fn joins it; committed or rolled back with it below. */
			break;
		case PGB_ATOMIC_REFUSE:
		default:
			pgbi_serr_tx_open(&s->err, s->db, s->conn);
			ctx_seterr(ctx, "%s", s->err.text);
			return (-1);
		}
	}
	pgbi_serr_clear(&s->err);
	if (fn(s, arg) != 0) {
		atomic_failed(ctx, s);
		(void)pgb_session_rollback(s);
		return (-1);
	}
	if (pgb_session_commit(s) == -1) {
		ctx_seterr(ctx, "%s", s->err.text);
		return (-1);
	}
	return (0);
}

int
pgb_run_in_new_ctx(pgb_ctx_fn fn, void *arg, char *errbuf, size_t errlen)
{
	pgb_ctx	*ctx;
	int	 rc, end;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (fn == NULL) {
		if (errbuf != NULL)
			pgbi_strlcpy(errbuf, "pgb_run_in_new_ctx: no callback"
			    " given", errlen);
		return (-1);
	}
	ctx = pgb_ctx_begin(PGB_CTX_FORCE);
	if (ctx == NULL) {
		if (errbuf != NULL)
			pgbi_strlcpy(errbuf, "out of memory", errlen);
		return (-1);
	}
	rc = fn(ctx, arg);
	end = pgb_ctx_end(ctx, rc == 0 ? 200 : 500);
	/* fn failed: the first failure in the context says why. */
	if (rc != 0 && errbuf != NULL && errlen > 0)
		pgbi_ctx_why_failed(errbuf, errlen, ctx->first_error,
		    "returned", rc);
	else if (end == -1 && errbuf != NULL)
		pgbi_strlcpy(errbuf, ctx->error, errlen);
	pgb_ctx_free(ctx);
	return (rc == 0 && end == 0 ? 0 : -1);
}
