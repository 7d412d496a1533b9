/*
 * async.c - the event-driven contexts (pgb_actx) and sessions
 * (pgb_asession): the blocking API of ctx.c again, as state machines on
 * the caller's event_base.
 *
 * A session runs its queued operations (aop) one at a time.  An
 * operation that needs a connection first acquires one: the daemon's
 * answer (RESOLVE on the loop, unless the binding's answer is fresh), a
 * pool slot (or a place in the db's FIFO of waiters, shared with blocking
 * threads; the db writes to the loop's eventfd when it grants one), and,
 * for a new slot, PQconnectStart/PQconnectPoll.  Each exchange is one round
 * trip: PQsendQuery (or a pipeline for parameters after BEGIN), PQflush
 * until 0, then PQconsumeInput/PQisBusy/PQgetResult until done.
 *
 * Lifetime.  Sessions and contexts are reference counted: one reference
 * for the owner, one for each callback running.  _free marks the object
 * dead, releases its resources and calls its pending callbacks; the
 * memory goes when the last callback returns, and code that called a
 * callback stops when it finds its session dead.  All events are deleted
 * when the object dies, so none fires into freed memory.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "pgbeacon.h"
#include "async-internal.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

enum astate {
	S_IDLE,			/* no exchange, no acquisition running */
	S_RESOLVING,		/* waiting for the daemon's answer */
	S_WAITING,		/* queued for a pool slot */
	S_CONNECTING,		/* PQconnectPoll running */
	S_BUSY,			/* an exchange is in flight */
};

enum op_kind {
	OP_EXEC,		/* user statement(s) */
	OP_CONN,		/* hand out the connection, BEGIN done */
	OP_COMMIT,
	OP_ROLLBACK,
	OP_CLOSE,		/* becomes ROLLBACK + release */
	OP_ABEGIN,		/* becomes COMMIT, ROLLBACK or nothing */
	OP_AEND,		/* becomes COMMIT, ROLLBACK or nothing */
	OP_END,			/* context end: COMMIT or ROLLBACK + release */
};

enum xkind {
	X_USER,			/* the user's statement, maybe after BEGIN */
	X_BEGIN,
	X_COMMIT,
	X_ROLLBACK,
};

struct aop {
	enum op_kind	 kind;
	union {
		pgb_atomic_mode	 mode;	/* OP_ABEGIN: what an open tx gets */
		int		 ok;	/* OP_AEND: commit (1) or roll back */
		int		 status;	/* OP_END: the context's status */
	}		 u;		/* by kind; zero for the others */
	int		 phase;		/* COMMIT: 1 = rolling back after */
	int		 retried;	/* EXEC: resent on a new connection */
	int		 release_after;	/* give the connection back at the end */
	int		 force_fail;	/* report -1 whatever happens */
	char		*sql;		/* owned */
	int		 params;
	int		 nparams;
	Oid		*types;		/* owned */
	char		**values;	/* owned, each owned */
	int		*lengths;	/* owned */
	int		*formats;	/* owned */
	int		 result_format;
	pgb_result_cb	 rcb;
	pgb_done_cb	 dcb;
	pgb_conn_cb	 ccb;
	void		*arg;
	TAILQ_ENTRY(aop) entry;
};

struct pgb_asession {
	pgb_loop	*loop;		/* borrowed */
	struct pgbi_binding *b;		/* borrowed from the loop */
	pgb_db		*db;		/* borrowed */
	pgb_actx	*ctx;		/* owner, or NULL */
	int		 autocommit;
	int		 refs;
	int		 dead;
	enum astate	 state;
	struct pgbi_pconn *conn;	/* checked out (pg NULL: reserved) */
	struct event	 io;		/* on PQsocket, re-armed each time */
	struct event	 kick;		/* runs the queue from the loop */
	struct event	 timer;		/* acquisition timeout */
	struct pgbi_areq *req;		/* RESOLVE in flight */
	int		 resolved;	/* this acquisition asked already */
	int		 waiting;	/* in b->waiters */
	int		 queued;	/* w in the db's waiters, or granted */
	struct pgbi_waiter w;		/* its place in the db's FIFO */
	struct pgbi_route route;	/* where this acquisition goes */
	TAILQ_HEAD(, aop) ops;		/* owned, FIFO; head is running */
	/* the exchange in flight */
	enum xkind	 x_kind;
	int		 x_begin;
	int		 x_pipeline;
	int		 x_flushing;
	int		 x_broken;
	int		 x_nres;
	int		 x_nulls;
	int		 x_ok;
	PGresult	*x_keep;	/* owned */
	struct pgbi_commit x_commit;	/* of an X_COMMIT exchange */
	int		 track_lsn;	/* PGB_SESSION_TRACK_LSN */
	int		 tx_wrote;	/* a statement's tag showed a write */
	char		 commit_lsn[PGB_LSN_MAX];
	struct pgbi_serr err;		/* read by pgb_asession_error */
	/*
	 * A savepoint session (tests): runs on outer's connection, inside
	 * its transaction; BEGIN, COMMIT and ROLLBACK become the savepoint
	 * statements of sp.  outer (blocking API) is borrowed and outlives
	 * it.
	 */
	pgb_session	*outer;
	int		 sp_open;	/* its savepoint is open */
	struct pgbi_sp	 sp;
	TAILQ_ENTRY(pgb_asession) entry;	/* in ctx->sessions */
	TAILQ_ENTRY(pgb_asession) wentry;	/* in b->waiters */
};

struct pgb_actx {
	pgb_loop	*loop;
	int		 refs;
	int		 ended;		/* pgb_actx_end called */
	int		 freed;
	TAILQ_HEAD(, pgb_asession) sessions;	/* owned */
	pgb_abefore_commit_fn bc;
	void		*bc_arg;
	struct pgbi_ctx_lsn lsn;	/* highest commit LSN seen or given */
	int		 track_lsn;	/* pgb_actx_set_track_lsn */
	char		 first_error[PGBI_FIRST_MAX];	/* of any session */
	struct event	 kick;		/* runs the end from the loop */
	int		 end_status;
	int		 end_started;
	int		 end_pending;
	int		 end_rc;
	int		 end_called;
	pgb_actx_done_cb end_cb;
	void		*end_arg;
	/* pgb_arun_in_new_ctx */
	int		 finish_rc;
	pgb_actx_done_cb done_cb;
	void		*done_arg;
	char		 error[1024];
};

/* Progress of pgb_actx_commit_all and its siblings. */
struct allop {
	pgb_actx	*ctx;		/* referenced */
	int		 pending;
	int		 rc;
	pgb_actx_done_cb cb;
	void		*arg;
};

static void	 asess_kick(pgb_asession *s);
static void	 asess_step(pgb_asession *s);
static int	 asess_acquire(pgb_asession *s);
static int	 asess_take(pgb_asession *s);
static void	 asess_release(pgb_asession *s, int discard);
static void	 asess_arm(pgb_asession *s, short what);
static int	 asess_in_tx(const pgb_asession *s);
static void	 asess_kill(pgb_asession *s, const char *why);
static int	 asess_cancel_work(pgb_asession *s, const char *why);
static void	 asess_unref(pgb_asession *s);
static void	 asess_acq_fail(pgb_asession *s, pgb_errcode code);
static int	 op_run(pgb_asession *s, struct aop *op);
static int	 op_done(pgb_asession *s, struct aop *op, int rc);
static void	 op_free(struct aop *op);
static void	 x_send(pgb_asession *s, enum xkind kind, const char *sql);
static void	 x_send_user(pgb_asession *s, struct aop *op, int begin);
static void	 x_flush(pgb_asession *s);
static void	 x_read(pgb_asession *s);
static void	 x_finish(pgb_asession *s);
static void	 io_cb(evutil_socket_t fd, short what, void *arg);
static void	 actx_unref(pgb_actx *ctx);
static void	 actx_seterr(pgb_actx *ctx, const char *fmt, ...)
		     __attribute__((format(printf, 2, 3)));

/* --- small helpers ------------------------------------------------------ */

static void
actx_seterr(pgb_actx *ctx, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
	if (ctx->first_error[0] == '\0')
		pgbi_strlcpy(ctx->first_error, ctx->error,
		    sizeof ctx->first_error);
}

static int
asess_in_tx(const pgb_asession *s)
{
	if (s->outer != NULL && !s->sp_open)
		return (0);
	return (s->conn != NULL && s->conn->pg != NULL &&
	    s->state != S_CONNECTING && pgbi_in_tx(s->conn->pg));
}

/* What stands for ROLLBACK on s. */
static const char *
rollback_sql(const pgb_asession *s)
{
	return (s->outer != NULL ? s->sp.rollback : "ROLLBACK");
}

static void
asess_kick(pgb_asession *s)
{
	if (!s->dead)
		event_active(&s->kick, EV_TIMEOUT, 0);
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_asession	*s = arg;

	(void)fd;
	(void)what;
	s->refs++;		/* a callback may free s: it lives until here */
	asess_step(s);
	asess_unref(s);
}

/* Callback frames: the session (and its context) stay allocated. */
static pgb_actx *
frame_enter(pgb_asession *s)
{
	s->refs++;
	if (s->ctx != NULL)
		s->ctx->refs++;
	return (s->ctx);
}

/* 1 when the session is still alive after the callback. */
static int
frame_leave(pgb_asession *s, pgb_actx *ctx)
{
	int	alive = !s->dead;

	if (ctx != NULL)
		actx_unref(ctx);
	asess_unref(s);
	return (alive);
}

static void
asess_unref(pgb_asession *s)
{
	if (--s->refs == 0)
		free(s);
}

static void
actx_unref(pgb_actx *ctx)
{
	if (--ctx->refs == 0)
		free(ctx);
}

/* --- operations --------------------------------------------------------- */

static void
op_free(struct aop *op)
{
	int	i;

	if (op == NULL)
		return;
	free(op->sql);
	if (op->values != NULL) {
		for (i = 0; i < op->nparams; i++)
			free(op->values[i]);
	}
	free(op->values);
	free(op->types);
	free(op->lengths);
	free(op->formats);
	free(op);
}

/* Queues op on s; -1 when s cannot take work (op freed). */
static int
op_queue(pgb_asession *s, struct aop *op)
{
	if (s->dead || (s->ctx != NULL && s->ctx->ended &&
	    op->kind != OP_END)) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: the session's"
		    " context has ended", pgbi_db_label(s->db));
		op_free(op);
		return (-1);
	}
	TAILQ_INSERT_TAIL(&s->ops, op, entry);
	asess_kick(s);
	return (0);
}

static struct aop *
op_new(pgb_asession *s, enum op_kind kind)
{
	struct aop	*op;

	op = calloc(1, sizeof *op);
	if (op == NULL)
		pgbi_serr_set(&s->err, PGB_ERR_NOMEM, "%s: out of memory",
		    pgbi_db_label(s->db));
	else
		op->kind = kind;
	return (op);
}

/*
 * Completes the head operation op with rc: releases the connection when
 * asked, pops op and calls its callback.  0 when the session died in
 * the callback (stop touching it).
 */
static int
op_done(pgb_asession *s, struct aop *op, int rc)
{
	PGresult	*res;
	pgb_actx	*ctx;
	int		 alive;

	if (op->release_after)
		asess_release(s, asess_in_tx(s));
	if (op->force_fail)
		rc = -1;
	if (rc == 0 && op->kind != OP_EXEC) {
		pgbi_serr_clear(&s->err);
	}
	TAILQ_REMOVE(&s->ops, op, entry);
	res = s->x_keep;
	s->x_keep = NULL;
	ctx = frame_enter(s);
	switch (op->kind) {
	case OP_EXEC:
		if (op->rcb != NULL)
			op->rcb(s, rc == 0 ? res : NULL, op->arg);
		break;
	case OP_CONN:
		if (op->ccb != NULL)
			op->ccb(s, rc == 0 && s->conn != NULL ? s->conn->pg :
			    NULL, op->arg);
		break;
	default:
		if (op->dcb != NULL)
			op->dcb(s, rc, op->arg);
		break;
	}
	alive = frame_leave(s, ctx);
	PQclear(res);
	op_free(op);
	return (alive);
}

/* Fails op with code and s->err.text (already set). */
static int
op_fail(pgb_asession *s, struct aop *op)
{
	PQclear(s->x_keep);
	s->x_keep = NULL;
	return (op_done(s, op, -1));
}

/*
 * Runs op (the head) as far as it goes without waiting.  1 when an
 * exchange or an acquisition is under way, 0 when op completed (or the
 * session died).
 */
static int
op_run(pgb_asession *s, struct aop *op)
{
	pgb_actx	*ctx;
	int		 rc, alive, refuse;

	switch (op->kind) {
	case OP_EXEC:
	case OP_CONN:
		if (s->conn == NULL) {
			rc = asess_acquire(s);
			if (rc != 0)
				return (rc == 1);
		}
		if (op->kind == OP_CONN) {
			if (!s->autocommit && !asess_in_tx(s)) {
				s->tx_wrote = 0;
				s->sp_open = s->outer != NULL;
				x_send(s, X_BEGIN, s->outer != NULL ?
				    s->sp.begin : "BEGIN");
				return (1);
			}
			op_done(s, op, 0);
			return (0);
		}
		x_send_user(s, op, !s->autocommit && !asess_in_tx(s));
		return (1);
	case OP_COMMIT:
		if (!asess_in_tx(s)) {
			op_done(s, op, 0);
			return (0);
		}
		if (PQtransactionStatus(s->conn->pg) == PQTRANS_INERROR) {
			pgbi_serr_failed_tx(&s->err, s->db, s->conn);
			op->phase = 1;
			x_send(s, X_ROLLBACK, rollback_sql(s));
			return (1);
		}
		if (s->outer != NULL) {
			/* No LSN: a release writes no commit record. */
			memset(&s->x_commit, 0, sizeof s->x_commit);
			x_send(s, X_COMMIT, s->sp.release);
			return (1);
		}
		x_send(s, X_COMMIT, pgbi_commit_sql(&s->x_commit, s->db,
		    s->conn, s->track_lsn || (s->ctx != NULL &&
		    s->ctx->track_lsn), s->tx_wrote));
		return (1);
	case OP_ROLLBACK:
		if (!asess_in_tx(s)) {
			op_done(s, op, 0);
			return (0);
		}
		x_send(s, X_ROLLBACK, rollback_sql(s));
		return (1);
	case OP_CLOSE:
		op->kind = OP_ROLLBACK;
		op->release_after = 1;
		return (op_run(s, op));
	case OP_ABEGIN:
		if (!asess_in_tx(s)) {
			op_done(s, op, 0);
			return (0);
		}
		switch (op->u.mode) {
		case PGB_ATOMIC_COMMIT_FIRST:
			op->kind = OP_COMMIT;
			return (op_run(s, op));
		case PGB_ATOMIC_ROLLBACK_FIRST:
			op->kind = OP_ROLLBACK;
			return (op_run(s, op));
		case PGB_ATOMIC_APPEND:
			/* The block joins it; OP_AEND ends both. */
			op_done(s, op, 0);
			return (0);
		default:
			pgbi_serr_tx_open(&s->err, s->db, s->conn);
			op_done(s, op, -1);
			return (0);
		}
	case OP_AEND:
		op->force_fail = !op->u.ok;
		op->kind = op->u.ok ? OP_COMMIT : OP_ROLLBACK;
		return (op_run(s, op));
	case OP_END:
		op->release_after = 1;
		if (!asess_in_tx(s)) {
			op->kind = OP_ROLLBACK;
			return (op_run(s, op));
		}
		refuse = 0;
		if (op->u.status < 400 && PQtransactionStatus(s->conn->pg) ==
		    PQTRANS_INERROR) {
			pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s on %s:%d:"
			    " transaction failed earlier; rolled back",
			    pgbi_db_label(s->db), s->conn->host,
			    s->conn->port);
			refuse = 1;
		} else if (op->u.status < 400 && s->ctx != NULL &&
		    s->ctx->bc != NULL) {
			ctx = frame_enter(s);
			rc = ctx->bc(ctx, s, ctx->bc_arg);
			alive = frame_leave(s, ctx);
			if (!alive)
				return (0);
			if (rc != 0) {
				pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s:"
				    " before-commit callback refused; rolled"
				    " back", pgbi_db_label(s->db));
				refuse = 1;
			}
		}
		if (op->u.status >= 400 || refuse) {
			op->force_fail = refuse;
			op->kind = OP_ROLLBACK;
		} else
			op->kind = OP_COMMIT;
		return (op_run(s, op));
	}
	return (0);
}

/* Runs the queue until something has to wait. */
static void
asess_step(pgb_asession *s)
{
	struct aop	*op;

	while (!s->dead && (op = TAILQ_FIRST(&s->ops)) != NULL) {
		if (s->state != S_IDLE)
			return;
		if (op_run(s, op))
			return;
	}
}

/* --- acquiring a connection --------------------------------------------- */

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_asession	*s = arg;
	int		 ms = pgbi_db_checkout_timeout_ms(s->db);

	(void)fd;
	(void)what;
	s->refs++;
	switch (s->state) {
	case S_RESOLVING:
		pgbi_serr_set(&s->err, PGB_ERR_TIMEOUT, "%s: no answer from"
		    " pgbeacond in %d ms", pgbi_db_label(s->db), ms);
		asess_acq_fail(s, PGB_ERR_TIMEOUT);
		break;
	case S_WAITING:
		pgbi_serr_set(&s->err, PGB_ERR_POOL_TIMEOUT, "%s: pool"
		    " exhausted: no connection free in %d ms",
		    pgbi_db_label(s->db), ms);
		asess_acq_fail(s, PGB_ERR_POOL_TIMEOUT);
		break;
	case S_CONNECTING:
		pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s: cannot connect to"
		    " %s:%d (%s): timeout after %d ms", pgbi_db_label(s->db),
		    s->conn->host, s->conn->port, s->conn->role, ms);
		asess_acq_fail(s, PGB_ERR_CONNECT);
		break;
	default:
		break;
	}
	asess_unref(s);
}

/*
 * Drops the acquisition in progress, if any: its RESOLVE, its place among
 * the waiters, its timer, and a connection still being opened (its slot
 * goes to the next waiter).  1 when it dropped such a connection.  The
 * caller resets the state.
 */
static int
asess_acq_drop(pgb_asession *s)
{
	if (s->req != NULL) {
		s->req->fn = NULL;
		s->req = NULL;
	}
	if (s->waiting) {
		TAILQ_REMOVE(&s->b->waiters, s, wentry);
		s->waiting = 0;
	}
	if (s->queued) {
		pgbi_db_unwait(s->db, &s->w);
		s->queued = 0;
	}
	evtimer_del(&s->timer);
	if (s->state != S_CONNECTING || s->conn == NULL)
		return (0);
	event_del(&s->io);
	pgbi_db_abandon(s->db, s->conn);
	s->conn = NULL;
	return (1);
}

static void	asess_acq_fail(pgb_asession *s, pgb_errcode code);

/*
 * A savepoint session takes its outer session's connection, whose
 * transaction must be open (nothing here blocks): 0, or -1 when it is
 * not (the operation failed with PGB_ERR_STATE).
 */
static int
sp_acquire(pgb_asession *s)
{
	struct pgbi_pconn	*c;

	c = pgbi_session_outer_conn(s->outer, 0);
	if (c == NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: savepoint session:"
		    " %s", pgbi_db_label(s->db), pgb_session_error(s->outer));
		asess_acq_fail(s, PGB_ERR_STATE);
		return (-1);
	}
	s->conn = c;
	(void)PQsetnonblocking(c->pg, 1);
	return (0);
}

/*
 * Abandons the acquisition in progress and fails the head operation with
 * s->err.text (code already set).
 */
static void
asess_acq_fail(pgb_asession *s, pgb_errcode code)
{
	struct aop	*op;

	s->err.code = code;
	/* A host that failed to connect: ask the daemon again next time. */
	if (asess_acq_drop(s))
		s->b->answer_valid = 0;
	s->state = S_IDLE;
	s->resolved = 0;
	op = TAILQ_FIRST(&s->ops);
	if (op != NULL && op_fail(s, op))
		asess_step(s);
}

static void	resolve_reply(pgb_asession *s, const char *line,
		    pgb_errcode code, const char *err);

static void
resolve_cb(void *owner, const char *line, pgb_errcode code, const char *err)
{
	pgb_asession	*s = owner;

	s->refs++;
	resolve_reply(s, line, code, err);
	asess_unref(s);
}

static void
resolve_reply(pgb_asession *s, const char *line, pgb_errcode code,
    const char *err)
{
	pgb_resolved	 r;
	char		 text[512];
	int		 min_lsn = pgbi_ctx_lsn_min(s->ctx != NULL ?
			    &s->ctx->lsn : NULL, s->db, NULL);

	s->req = NULL;
	if (line == NULL) {
		pgbi_serr_set(&s->err, code, "%s: no host from pgbeacond: %s",
		    pgbi_db_label(s->db), err);
		asess_acq_fail(s, code);
		return;
	}
	if (pgbi_proto_parse_resolve(line, &r, text, sizeof text) == -1) {
		if (pgbi_proto_parse_err(line, &code, text, sizeof text) == -1)
			code = PGB_ERR_PROTOCOL;
		pgbi_serr_set(&s->err, code, "%s: no host from pgbeacond: %s",
		    pgbi_db_label(s->db), text);
		asess_acq_fail(s, code);
		return;
	}
	/* An answer for a min_lsn is for this session only. */
	if (pgbi_db_answer(s->db, &r, min_lsn, &s->route) == -1) {
		pgbi_serr_set(&s->err, PGB_ERR_HOOK, "%s", pgb_db_error(s->db));
		asess_acq_fail(s, PGB_ERR_HOOK);
		return;
	}
	s->b->answer_valid = !min_lsn;
	s->b->answer_ms = pgbi_now_ms();
	s->resolved = 1;
	s->state = S_IDLE;
	asess_step(s);
}

/*
 * Starts or continues taking a connection for the head operation.  0 when
 * s->conn is ready now, 1 when waiting, -1 when the operation failed
 * (its callback called).
 */
static int
asess_acquire(pgb_asession *s)
{
	struct timeval	 tv;
	pgb_hook_fn	 hook;
	void		*harg;
	pgb_actx	*ctx;
	char		 lsn[PGB_LSN_MAX], line[512];
	int		 need, rc, alive, ms;

	if (s->outer != NULL)
		return (sp_acquire(s));
	if (!evtimer_pending(&s->timer, NULL)) {
		ms = pgbi_db_checkout_timeout_ms(s->db);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(&s->timer, &tv);
	}
	(void)pgbi_ctx_lsn_min(s->ctx != NULL ? &s->ctx->lsn : NULL, s->db,
	    lsn);
	if (!s->resolved)
		s->route.set = 0;
	pgbi_db_hook(s->db, &hook, &harg);
	if (!s->resolved && hook == pgb_db_default_hook &&
	    pgb_db_cluster(s->db) != NULL) {
		if (lsn[0] != '\0' || !s->b->answer_valid)
			need = 1;
		else if (pgbi_db_is_master(s->db))
			need = !pgbi_loop_watch_ok(s->loop);
		else
			need = pgbi_now_ms() - s->b->answer_ms >=
			    pgbi_db_recheck_ms(s->db);
		if (need && !pgbi_proto_resolve_args_ok(pgb_db_cluster(s->db),
		    pgb_db_role(s->db))) {
			/* Sent as is, it would split or garble the line. */
			pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: cluster or"
			    " role unusable in a request to pgbeacond (empty,"
			    " too long, or with spaces or control characters)",
			    pgbi_db_label(s->db));
			asess_acq_fail(s, PGB_ERR_ARG);
			return (-1);
		}
		if (need) {
			snprintf(line, sizeof line, "RESOLVE %s %s%s%s",
			    pgb_db_cluster(s->db), pgb_db_role(s->db),
			    lsn[0] != '\0' ? " min_lsn=" : "", lsn);
			pgbi_db_count_resolve(s->db);
			s->req = pgbi_loop_request(s->loop, line, resolve_cb, s);
			if (s->req == NULL) {
				pgbi_serr_set(&s->err, PGB_ERR_NOMEM, "%s:"
				    " out of memory", pgbi_db_label(s->db));
				asess_acq_fail(s, PGB_ERR_NOMEM);
				return (-1);
			}
			s->state = S_RESOLVING;
			return (1);
		}
	} else if (!s->resolved && hook != NULL &&
	    hook != pgb_db_default_hook) {
		ctx = frame_enter(s);
		pgb_db_set_error(s->db, "%s", "");
		rc = hook(s->db, lsn[0] != '\0' ? lsn : NULL, harg);
		alive = frame_leave(s, ctx);
		if (!alive)
			return (1);
		if (rc == -1) {
			pgbi_serr_set(&s->err, PGB_ERR_HOOK, "%s",
			    *pgb_db_error(s->db) != '\0' ? pgb_db_error(s->db) :
			    "before-create hook failed");
			asess_acq_fail(s, PGB_ERR_HOOK);
			return (-1);
		}
	}
	s->resolved = 1;
	return (asess_take(s));
}

/* The connection being opened failed: fails the acquisition. */
static void
asess_connect_fail(pgb_asession *s)
{
	char	err[sizeof s->err.text];

	pgbi_db_connect_error(s->db, s->conn, err, sizeof err);
	pgbi_db_connect_failed(s->db, s->conn);
	pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s", err);
	asess_acq_fail(s, PGB_ERR_CONNECT);
}

static int
asess_take(pgb_asession *s)
{
	char		 err[512];
	pgb_errcode	 code;
	int		 rc;

	rc = pgbi_db_take(s->db, &s->w, &s->route, &s->conn, &code, err,
	    sizeof err);
	s->queued = rc == 0;
	if (rc == -1) {
		pgbi_serr_set(&s->err, code, "%s", err);
		asess_acq_fail(s, code);
		return (-1);
	}
	if (rc == 0) {
		/* The db grants it a connection, then writes to our eventfd. */
		if (!s->waiting)
			TAILQ_INSERT_TAIL(&s->b->waiters, s, wentry);
		s->waiting = 1;
		s->state = S_WAITING;
		return (1);
	}
	if (s->conn->pg != NULL) {
		evtimer_del(&s->timer);
		s->resolved = 0;
		s->state = S_IDLE;
		(void)PQsetnonblocking(s->conn->pg, 1);
		return (0);
	}
	s->conn->pg = pgbi_db_connect_start(s->db, s->conn);
	s->state = S_CONNECTING;
	if (s->conn->pg == NULL || PQstatus(s->conn->pg) == CONNECTION_BAD) {
		asess_connect_fail(s);
		return (-1);
	}
	asess_arm(s, EV_WRITE);
	return (1);
}

static void
asess_connect_poll(pgb_asession *s)
{
	switch (PQconnectPoll(s->conn->pg)) {
	case PGRES_POLLING_READING:
		asess_arm(s, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		asess_arm(s, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		event_del(&s->io);
		(void)PQsetnonblocking(s->conn->pg, 1);
		pgbi_db_opened(s->db, s->conn);
		evtimer_del(&s->timer);
		s->resolved = 0;
		s->state = S_IDLE;
		asess_step(s);
		return;
	default:
		asess_connect_fail(s);
		return;
	}
}

/* The binding's wake callback, given to the loop by asess_alloc. */
static void
asess_wake_cb(struct pgbi_binding *b)
{
	pgb_asession	*s, *next;

	for (s = TAILQ_FIRST(&b->waiters); s != NULL; s = next) {
		next = TAILQ_NEXT(s, wentry);
		if (!pgbi_db_granted(b->db, &s->w))
			continue;
		TAILQ_REMOVE(&b->waiters, s, wentry);
		s->waiting = 0;
		s->state = S_IDLE;
		asess_kick(s);
	}
}

/* Gives the connection back (closed when discard, or not reusable). */
static void
asess_release(pgb_asession *s, int discard)
{
	struct pgbi_pconn	*c = s->conn;

	if (c == NULL)
		return;
	event_del(&s->io);
	s->conn = NULL;
	if (s->outer != NULL) {
		/* outer's: back to the blocking session, not to the pool. */
		if (c->pg != NULL)
			(void)PQsetnonblocking(c->pg, 0);
		return;
	}
	if (c->pg == NULL || PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF ||
	    PQisBusy(c->pg))
		discard = 1;
	if (!discard && PQsetnonblocking(c->pg, 0) != 0)
		discard = 1;
	pgbi_db_checkin(s->db, c, discard);
}

static void
asess_arm(pgb_asession *s, short what)
{
	event_del(&s->io);
	event_assign(&s->io, pgb_loop_base(s->loop), PQsocket(s->conn->pg),
	    what, io_cb, s);
	event_add(&s->io, NULL);
}

/* --- exchanges ---------------------------------------------------------- */

static void
x_reset(pgb_asession *s, enum xkind kind)
{
	PQclear(s->x_keep);
	s->x_keep = NULL;
	s->x_kind = kind;
	s->x_begin = 0;
	s->x_pipeline = 0;
	s->x_flushing = 0;
	s->x_broken = 0;
	s->x_nres = 0;
	s->x_nulls = 0;
	s->x_ok = 1;
	s->state = S_BUSY;
}

static void
x_send(pgb_asession *s, enum xkind kind, const char *sql)
{
	x_reset(s, kind);
	if (!PQsendQuery(s->conn->pg, sql))
		s->x_broken = 1;
	x_flush(s);
}

/*
 * Queues a savepoint session's SAVEPOINT and op's statement in one round
 * trip, as the lazy BEGIN is sent: one simple-query string, or for
 * parameters a pipeline (SAVEPOINT, the statement, a sync).  1 when
 * queued.
 */
static int
sp_send_user(pgb_asession *s, struct aop *op)
{
	PGconn	*pg = s->conn->pg;
	char	*multi;
	int	 ok;

	if (!op->params) {
		/* A simple-query string: the savepoint, then sql, in order. */
		if (asprintf(&multi, "%s;%s", s->sp.begin, op->sql) == -1)
			return (0);
		ok = PQsendQuery(pg, multi);
		free(multi);
		return (ok);
	}
	s->x_pipeline = 1;
	return (PQenterPipelineMode(pg) && PQsendQueryParams(pg, s->sp.begin,
	    0, NULL, NULL, NULL, NULL, 0) && PQsendQueryParams(pg, op->sql,
	    op->nparams, op->types, (const char *const *)op->values,
	    op->lengths, op->formats, op->result_format) &&
	    PQpipelineSync(pg));
}

static void
x_send_user(pgb_asession *s, struct aop *op, int begin)
{
	PGconn	*pg = s->conn->pg;
	char	*multi;
	int	 ok;

	x_reset(s, X_USER);
	s->x_begin = begin;
	if (begin)
		s->tx_wrote = 0;
	if (begin && s->outer != NULL) {
		s->sp_open = 1;
		ok = sp_send_user(s, op);
	} else if (begin && !op->params) {
		if ((multi = pgbi_begin_sql(op->sql)) == NULL)
			ok = 0;
		else {
			ok = PQsendQuery(pg, multi);
			free(multi);
		}
	} else if (begin) {
		s->x_pipeline = 1;
		ok = PQenterPipelineMode(pg) && pgbi_begin_pipeline(pg,
		    op->sql, op->nparams, op->types,
		    (const char *const *)op->values, op->lengths, op->formats,
		    op->result_format);
	} else if (op->params)
		ok = PQsendQueryParams(pg, op->sql, op->nparams, op->types,
		    (const char *const *)op->values, op->lengths, op->formats,
		    op->result_format);
	else
		ok = PQsendQuery(pg, op->sql);
	if (!ok)
		s->x_broken = 1;
	x_flush(s);
}

static void
x_flush(pgb_asession *s)
{
	int	rc;

	if (s->x_broken) {
		x_finish(s);
		return;
	}
	rc = PQflush(s->conn->pg);
	if (rc == -1) {
		s->x_broken = 1;
		x_finish(s);
		return;
	}
	s->x_flushing = rc == 1;
	asess_arm(s, EV_READ | (s->x_flushing ? EV_WRITE : 0));
}

/* Takes one result of the exchange in flight (owned). */
static void
x_result(pgb_asession *s, PGresult *res)
{
	ExecStatusType	st = PQresultStatus(res);
	int		good;

	good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ||
	    st == PGRES_EMPTY_QUERY || st == PGRES_SINGLE_TUPLE;
	s->x_nres++;
	if (st == PGRES_PIPELINE_ABORTED) {
		PQclear(res);
		return;
	}
	if (!good) {
		if (s->x_ok) {
			pgbi_serr_pg(&s->err, s->db, s->conn, res,
			    s->x_kind == X_COMMIT ? "COMMIT" :
			    s->x_kind == X_ROLLBACK ? "ROLLBACK" :
			    s->x_kind == X_BEGIN ? "BEGIN" : NULL);
			if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT ||
			    st == PGRES_COPY_BOTH) {
				pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: COPY"
				    " is not supported by the event-driven API",
				    pgbi_db_label(s->db));
				s->x_broken = 1;
			}
		}
		s->x_ok = 0;
		PQclear(s->x_keep);
		s->x_keep = NULL;
		PQclear(res);
		return;
	}
	if (s->x_kind == X_COMMIT)
		pgbi_commit_result(&s->x_commit, s->x_nres, res);
	if (s->x_kind == X_USER)
		s->tx_wrote |= pgbi_tag_wrote(PQcmdStatus(res));
	if (s->x_kind == X_USER && s->x_ok) {
		PQclear(s->x_keep);
		s->x_keep = res;
	} else
		PQclear(res);
}

static void	io_event(pgb_asession *s, short what);

static void
io_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_asession	*s = arg;

	(void)fd;
	s->refs++;
	io_event(s, what);
	asess_unref(s);
}

static void
io_event(pgb_asession *s, short what)
{
	int	rc;

	if (s->state == S_CONNECTING) {
		asess_connect_poll(s);
		return;
	}
	if (s->state != S_BUSY)
		return;
	if ((what & EV_WRITE) && s->x_flushing) {
		rc = PQflush(s->conn->pg);
		if (rc == -1)
			s->x_broken = 1;
		s->x_flushing = rc == 1;
	}
	if (!s->x_broken && (what & EV_READ) && !PQconsumeInput(s->conn->pg))
		s->x_broken = 1;
	if (s->x_broken) {
		x_finish(s);
		return;
	}
	x_read(s);
}

static void
x_read(pgb_asession *s)
{
	PGconn		*pg = s->conn->pg;
	PGresult	*res;

	for (;;) {
		if (PQstatus(pg) != CONNECTION_OK) {
			s->x_broken = 1;
			break;
		}
		if (s->x_flushing || PQisBusy(pg)) {
			asess_arm(s, EV_READ | (s->x_flushing ? EV_WRITE : 0));
			return;
		}
		res = PQgetResult(pg);
		if (res == NULL) {
			if (!s->x_pipeline)
				break;
			if (++s->x_nulls > 2) {
				s->x_broken = 1;
				break;
			}
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			if (!PQexitPipelineMode(pg))
				s->x_broken = 1;
			s->x_pipeline = 0;
			break;
		}
		x_result(s, res);
		if (s->x_broken)
			break;
	}
	x_finish(s);
}

/* The exchange in flight is over: hands its outcome to the head op. */
static void
x_finish(pgb_asession *s)
{
	struct aop	*op = TAILQ_FIRST(&s->ops);
	int		 broken, reused, ok;

	event_del(&s->io);
	s->state = S_IDLE;
	broken = s->x_broken || PQstatus(s->conn->pg) != CONNECTION_OK;
	ok = s->x_ok && !broken;
	if (broken) {
		if (s->x_ok || s->err.code != PGB_ERR_ARG) {
			char	msg[512];

			pgbi_strlcpy(msg, PQerrorMessage(s->conn->pg),
			    sizeof msg);
			pgbi_chomp(msg);
			pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s on %s:%d"
			    " (%s): connection lost: %s", pgbi_db_label(s->db),
			    s->conn->host, s->conn->port, s->conn->role, msg);
		}
		reused = s->conn->reused;
		asess_release(s, 1);
		s->b->answer_valid = 0;
		/*
		 * A pooled connection that died while idle: the first
		 * statement of a transaction committed nothing, so it is
		 * sent once more on a new connection.
		 */
		if (op != NULL && op->kind == OP_EXEC && s->x_begin &&
		    reused && !op->retried) {
			op->retried = 1;
			PQclear(s->x_keep);
			s->x_keep = NULL;
			asess_step(s);
			return;
		}
	} else if (s->x_kind == X_COMMIT && ok &&
	    !pgbi_commit_complete(&s->x_commit, s->x_nres)) {
		pgbi_serr_set(&s->err, PGB_ERR_SQL, "%s: COMMIT got no reply",
		    pgbi_db_label(s->db));
		ok = 0;
	}
	if (s->outer != NULL && (s->x_kind == X_ROLLBACK ||
	    (s->x_kind == X_COMMIT && ok) || (s->x_kind == X_BEGIN && !ok)))
		s->sp_open = 0;		/* released, rolled back, or never */
	if (op == NULL)
		return;
	if (s->x_kind == X_COMMIT) {
		if (ok) {
			pgbi_commit_record(&s->x_commit, s->commit_lsn,
			    s->ctx != NULL ? &s->ctx->lsn : NULL);
			s->tx_wrote = 0;
		}
		if (!ok && asess_in_tx(s)) {
			op->phase = 1;
			op->force_fail = 1;
			x_send(s, X_ROLLBACK, rollback_sql(s));
			return;
		}
	} else if (s->x_kind == X_ROLLBACK) {
		if (op->phase == 1)
			ok = 0;
		if (!s->x_ok && !broken)
			asess_release(s, 1);
	}
	if (op_done(s, op, ok ? 0 : -1))
		asess_step(s);
}

/* --- killing, cancelling -------------------------------------------------- */

static void *
cancel_thread(void *arg)
{
	PGcancel	*c = arg;
	char		 buf[256];

	(void)PQcancel(c, buf, sizeof buf);
	PQfreeCancel(c);
	return (NULL);
}

/*
 * Stops what s is doing: an acquisition is abandoned, a statement in
 * flight is cancelled on the server (from a short-lived thread: PQcancel
 * blocks) and its connection closed, so the server rolls its transaction
 * back.  Every queued operation then gets PGB_ERR_CANCELED.  Returns the
 * number of operations cancelled.
 */
static int
asess_cancel_work(pgb_asession *s, const char *why)
{
	struct aop	*op;
	PGcancel	*pc;
	pthread_t	 t;
	pthread_attr_t	 attr;
	int		 n = 0;

	if (!asess_acq_drop(s) && s->state == S_BUSY && s->conn != NULL) {
		pc = PQgetCancel(s->conn->pg);
		if (pc != NULL) {
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr,
			    PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &attr, cancel_thread, pc) != 0)
				PQfreeCancel(pc);
			pthread_attr_destroy(&attr);
		}
		asess_release(s, 1);
	}
	PQclear(s->x_keep);
	s->x_keep = NULL;
	s->state = S_IDLE;
	s->resolved = 0;
	while ((op = TAILQ_FIRST(&s->ops)) != NULL && op->kind != OP_END) {
		pgbi_serr_set(&s->err, PGB_ERR_CANCELED, "%s: canceled: %s",
		    pgbi_db_label(s->db), why);
		n++;
		op->release_after = 0;
		if (!op_done(s, op, -1))
			break;
	}
	return (n);
}

/* Marks s dead, releases everything and cancels its work. */
static void
asess_kill(pgb_asession *s, const char *why)
{
	struct aop	*op;

	if (s->dead)
		return;
	s->refs++;
	(void)asess_cancel_work(s, why);
	s->dead = 1;
	event_del(&s->kick);
	/* An open transaction is abandoned: the server rolls it back. */
	asess_release(s, asess_in_tx(s));
	while ((op = TAILQ_FIRST(&s->ops)) != NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_CANCELED, "%s: canceled: %s",
		    pgbi_db_label(s->db), why);
		op->release_after = 0;
		(void)op_done(s, op, -1);
	}
	event_del(&s->io);
	event_del(&s->timer);
	asess_unref(s);
}

/* --- sessions ----------------------------------------------------------- */

static pgb_asession *
asess_alloc(pgb_loop *loop, pgb_db *db)
{
	pgb_asession		*s;
	struct pgbi_binding	*b;
	struct event_base	*base = pgb_loop_base(loop);

	b = pgbi_loop_bind(loop, db, asess_wake_cb);
	if (b == NULL)
		return (NULL);
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return (NULL);
	s->loop = loop;
	s->b = b;
	s->db = db;
	s->refs = 1;
	s->w.notify_fd = pgbi_loop_notify_fd(loop);
	TAILQ_INIT(&s->ops);
	event_assign(&s->io, base, -1, 0, io_cb, s);
	event_assign(&s->kick, base, -1, 0, kick_cb, s);
	evtimer_assign(&s->timer, base, timer_cb, s);
	return (s);
}

pgb_asession *
pgb_asession_new(pgb_loop *loop, pgb_db *db, int flags)
{
	pgb_asession	*s;

	if (loop == NULL || db == NULL)
		return (NULL);
	s = asess_alloc(loop, db);
	if (s != NULL) {
		s->autocommit = (flags & PGB_SESSION_AUTOCOMMIT) != 0;
		s->track_lsn = (flags & PGB_SESSION_TRACK_LSN) != 0;
	}
	return (s);
}

void
pgb_asession_free(pgb_asession *s)
{
	if (s == NULL || s->ctx != NULL || s->dead)
		return;
	asess_kill(s, "session freed");
	asess_unref(s);
}

/*
 * A copy of the n elements of size bytes at src, owned by the caller;
 * NULL when out of memory.
 */
static void *
array_dup(const void *src, int n, size_t size)
{
	void	*p;

	p = calloc((size_t)n, size);
	if (p != NULL)
		memcpy(p, src, (size_t)n * size);
	return (p);
}

static int
exec_queue(pgb_asession *s, const char *sql, int params, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format, pgb_result_cb cb, void *arg)
{
	struct aop	*op;
	size_t		 len;
	int		 i;

	if (s == NULL)
		return (-1);
	if (sql == NULL || nparams < 0) {
		pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: no SQL given",
		    pgbi_db_label(s->db));
		return (-1);
	}
	/* A binary value is copied by its length: it must have one. */
	for (i = 0; params && values != NULL && formats != NULL &&
	    i < nparams; i++) {
		if (values[i] != NULL && formats[i] != 0 &&
		    (lengths == NULL || lengths[i] < 0)) {
			pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: binary"
			    " parameter $%d given without a length",
			    pgbi_db_label(s->db), i + 1);
			return (-1);
		}
	}
	if ((op = op_new(s, OP_EXEC)) == NULL)
		return (-1);
	op->rcb = cb;
	op->arg = arg;
	op->params = params;
	op->nparams = nparams;
	op->result_format = result_format;
	op->sql = strdup(sql);
	if (op->sql == NULL)
		goto nomem;
	if (params && nparams > 0) {
		op->values = calloc((size_t)nparams, sizeof *op->values);
		if (op->values == NULL)
			goto nomem;
		if ((types != NULL && (op->types = array_dup(types, nparams,
		    sizeof *types)) == NULL) ||
		    (lengths != NULL && (op->lengths = array_dup(lengths,
		    nparams, sizeof *lengths)) == NULL) ||
		    (formats != NULL && (op->formats = array_dup(formats,
		    nparams, sizeof *formats)) == NULL))
			goto nomem;
		for (i = 0; values != NULL && i < nparams; i++) {
			if (values[i] == NULL)
				continue;
			len = formats != NULL && formats[i] != 0 ?
			    (size_t)lengths[i] : strlen(values[i]);
			op->values[i] = malloc(len + 1);
			if (op->values[i] == NULL)
				goto nomem;
			memcpy(op->values[i], values[i], len);
			op->values[i][len] = '\0';
		}
	}
	return (op_queue(s, op));
nomem:
	op_free(op);
	pgbi_serr_set(&s->err, PGB_ERR_NOMEM, "%s: out of memory",
	    pgbi_db_label(s->db));
	return (-1);
}

int
pgb_aexec(pgb_asession *s, const char *sql, pgb_result_cb cb, void *arg)
{
	return (exec_queue(s, sql, 0, 0, NULL, NULL, NULL, NULL, 0, cb, arg));
}

int
pgb_aexec_params(pgb_asession *s, const char *sql, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format, pgb_result_cb cb, void *arg)
{
	return (exec_queue(s, sql, 1, nparams, types, values, lengths,
	    formats, result_format, cb, arg));
}

/* A new operation of kind reporting to cb; NULL when out of memory. */
static struct aop *
done_new(pgb_asession *s, enum op_kind kind, pgb_done_cb cb, void *arg)
{
	struct aop	*op;

	if (s == NULL || (op = op_new(s, kind)) == NULL)
		return (NULL);
	op->dcb = cb;
	op->arg = arg;
	return (op);
}

static int
done_queue(pgb_asession *s, enum op_kind kind, pgb_done_cb cb, void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, kind, cb, arg)) == NULL)
		return (-1);
	return (op_queue(s, op));
}

int
pgb_asession_conn(pgb_asession *s, pgb_conn_cb cb, void *arg)
{
	struct aop	*op;

	if (s == NULL || (op = op_new(s, OP_CONN)) == NULL)
		return (-1);
	op->ccb = cb;
	op->arg = arg;
	return (op_queue(s, op));
}

int
pgb_asession_commit(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (done_queue(s, OP_COMMIT, cb, arg));
}

int
pgb_asession_rollback(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (done_queue(s, OP_ROLLBACK, cb, arg));
}

int
pgb_asession_close(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (done_queue(s, OP_CLOSE, cb, arg));
}

int
pgb_aatomic_begin(pgb_asession *s, pgb_atomic_mode mode, pgb_done_cb cb,
    void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, OP_ABEGIN, cb, arg)) == NULL)
		return (-1);
	op->u.mode = mode;
	return (op_queue(s, op));
}

int
pgb_aatomic_end(pgb_asession *s, int ok, pgb_done_cb cb, void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, OP_AEND, cb, arg)) == NULL)
		return (-1);
	op->u.ok = ok != 0;
	return (op_queue(s, op));
}

int
pgb_asession_in_transaction(const pgb_asession *s)
{
	return (asess_in_tx(s));
}

const char *
pgb_asession_host(const pgb_asession *s)
{
	return (s->conn != NULL && s->state != S_CONNECTING ? s->conn->host :
	    NULL);
}

int
pgb_asession_port(const pgb_asession *s)
{
	return (s->conn != NULL && s->state != S_CONNECTING ? s->conn->port :
	    0);
}

const char *
pgb_asession_role(const pgb_asession *s)
{
	return (s->conn != NULL && s->state != S_CONNECTING ? s->conn->role :
	    NULL);
}

pgb_db *
pgb_asession_db(const pgb_asession *s)
{
	return (s->db);
}

pgb_actx *
pgb_asession_ctx(const pgb_asession *s)
{
	return (s->ctx);
}

const char *
pgb_asession_commit_lsn(const pgb_asession *s)
{
	return (s->commit_lsn);
}

const char *
pgb_asession_error(const pgb_asession *s)
{
	return (s != NULL ? s->err.text : "no session (the context ended,"
	    " or out of memory)");
}

pgb_errcode
pgb_asession_errcode(const pgb_asession *s)
{
	return (s != NULL ? s->err.code : PGB_ERR_ARG);
}

const char *
pgb_asession_sqlstate(const pgb_asession *s)
{
	return (s != NULL ? s->err.sqlstate : "");
}

/* --- contexts ----------------------------------------------------------- */

static void actx_kick_cb(evutil_socket_t fd, short what, void *arg);

pgb_actx *
pgb_actx_new(pgb_loop *loop)
{
	pgb_actx	*ctx;

	if (loop == NULL)
		return (NULL);
	ctx = calloc(1, sizeof *ctx);
	if (ctx == NULL)
		return (NULL);
	ctx->loop = loop;
	ctx->refs = 1;
	TAILQ_INIT(&ctx->sessions);
	event_assign(&ctx->kick, pgb_loop_base(loop), -1, 0, actx_kick_cb, ctx);
	return (ctx);
}

pgb_asession *
pgb_actx_session(pgb_actx *ctx, pgb_db *db)
{
	pgb_asession	*s;

	if (ctx == NULL || ctx->ended || db == NULL)
		return (NULL);
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (s->db == db)
			return (s);
	}
	s = asess_alloc(ctx->loop, db);
	if (s == NULL)
		return (NULL);
	s->ctx = ctx;
	s->err.first = ctx->first_error;
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	return (s);
}

/* --- test utilities: savepoint sessions, get/put/pop ---------------------- */

pgb_asession *
pgb_asession_new_savepoint(pgb_loop *loop, pgb_session *outer)
{
	pgb_asession	*s;

	if (loop == NULL || outer == NULL ||
	    pgbi_session_outer_conn(outer, 0) == NULL)
		return (NULL);
	s = asess_alloc(loop, pgb_session_db(outer));
	if (s == NULL)
		return (NULL);
	s->outer = outer;
	pgbi_sp_init(&s->sp, s);
	return (s);
}

pgb_asession *
pgb_actx_get_session(pgb_actx *ctx, pgb_db *db)
{
	pgb_asession	*s;

	if (ctx == NULL || db == NULL)
		return (NULL);
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (s->db == db)
			return (s);
	}
	return (NULL);
}

pgb_asession *
pgb_actx_pop_session(pgb_actx *ctx, pgb_db *db)
{
	pgb_asession	*s;

	if (ctx == NULL || ctx->ended ||
	    (s = pgb_actx_get_session(ctx, db)) == NULL)
		return (NULL);
	TAILQ_REMOVE(&ctx->sessions, s, entry);
	s->ctx = NULL;
	return (s);
}

int
pgb_actx_put_session(pgb_actx *ctx, pgb_asession *s)
{
	pgb_asession	*old;

	if (ctx == NULL || s == NULL)
		return (-1);
	if (ctx->ended || s->ctx != NULL || s->dead || s->loop != ctx->loop) {
		actx_seterr(ctx, "%s: cannot put a session in %s",
		    pgbi_db_label(s->db), ctx->ended ? "an ended context" :
		    s->ctx != NULL ? "a context: it belongs to one already" :
		    "a context of another loop");
		return (-1);
	}
	if ((old = pgb_actx_pop_session(ctx, s->db)) != NULL)
		pgb_asession_free(old);
	s->ctx = ctx;
	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	return (0);
}

pgb_asession *
pgb_actx_put_savepoint_session(pgb_actx *ctx, pgb_session *outer)
{
	pgb_asession	*s;

	if (ctx == NULL || (s = pgb_asession_new_savepoint(ctx->loop,
	    outer)) == NULL)
		return (NULL);
	if (pgb_actx_put_session(ctx, s) == -1) {
		pgb_asession_free(s);
		return (NULL);
	}
	return (s);
}

int
pgb_actx_ended(const pgb_actx *ctx)
{
	return (ctx->ended);
}

void
pgb_actx_set_before_commit(pgb_actx *ctx, pgb_abefore_commit_fn fn,
    void *arg)
{
	ctx->bc = fn;
	ctx->bc_arg = arg;
}

const char *
pgb_actx_error(const pgb_actx *ctx)
{
	return (ctx != NULL ? ctx->error : "no context (out of memory)");
}

int
pgb_actx_lsn(const pgb_actx *ctx, char buf[PGB_LSN_MAX])
{
	return (pgbi_ctx_lsn_get(&ctx->lsn, buf));
}

void
pgb_actx_set_track_lsn(pgb_actx *ctx, int on)
{
	ctx->track_lsn = on != 0;
}

int
pgb_actx_set_lsn(pgb_actx *ctx, const char *lsn)
{
	return (pgbi_ctx_lsn_set(&ctx->lsn, lsn, ctx->error,
	    sizeof ctx->error));
}

/* Calls the end callback once, when every session is done. */
static void
actx_end_check(pgb_actx *ctx)
{
	if (ctx->end_pending > 0 || ctx->end_called || !ctx->end_started)
		return;
	ctx->end_called = 1;
	if (ctx->end_cb != NULL) {
		ctx->refs++;
		ctx->end_cb(ctx, ctx->end_rc, ctx->end_arg);
		actx_unref(ctx);
	}
}

static void
actx_end_one_cb(pgb_asession *s, int rc, void *arg)
{
	pgb_actx	*ctx = arg;

	if (rc == -1) {
		if (ctx->end_rc == 0)
			actx_seterr(ctx, "%s", s->err.text);
		ctx->end_rc = -1;
	}
	ctx->end_pending--;
	actx_end_check(ctx);
}

static void
actx_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_actx	*ctx = arg;
	pgb_asession	*s, *next;
	struct aop	*op;

	(void)fd;
	(void)what;
	if (ctx->freed || ctx->end_started)
		return;
	ctx->refs++;
	ctx->end_started = 1;
	ctx->end_pending = 1;		/* held until every op is queued */
	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL && !ctx->freed;
	    s = next) {
		s->refs++;
		if (asess_cancel_work(s, "the context ended") > 0) {
			if (ctx->end_rc == 0)
				actx_seterr(ctx, "%s: a statement was still"
				    " queued or running: canceled and rolled"
				    " back", pgbi_db_label(s->db));
			ctx->end_rc = -1;
		}
		if (!s->dead && (op = op_new(s, OP_END)) != NULL) {
			op->u.status = ctx->end_status;
			op->dcb = actx_end_one_cb;
			op->arg = ctx;
			ctx->end_pending++;
			TAILQ_INSERT_TAIL(&s->ops, op, entry);
			asess_kick(s);
		}
		next = ctx->freed ? NULL : TAILQ_NEXT(s, entry);
		asess_unref(s);
	}
	ctx->end_pending--;
	actx_end_check(ctx);
	actx_unref(ctx);
}

int
pgb_actx_end(pgb_actx *ctx, int status, pgb_actx_done_cb cb, void *arg)
{
	if (ctx == NULL || ctx->ended)
		return (-1);
	ctx->ended = 1;
	ctx->end_status = status;
	ctx->end_cb = cb;
	ctx->end_arg = arg;
	ctx->error[0] = '\0';
	event_active(&ctx->kick, EV_TIMEOUT, 0);
	return (0);
}

void
pgb_actx_free(pgb_actx *ctx)
{
	pgb_asession	*s;

	if (ctx == NULL || ctx->freed)
		return;
	ctx->freed = 1;
	event_del(&ctx->kick);
	ctx->refs++;
	if (ctx->ended && !ctx->end_started) {
		/* The end never ran: its callback still gets its one call. */
		ctx->end_started = 1;
		ctx->end_rc = -1;
		actx_seterr(ctx, "the context was freed before it ended");
	} else if (!ctx->ended)
		ctx->ended = 1;
	else if (ctx->end_pending > 0) {
		ctx->end_rc = -1;
		actx_seterr(ctx, "the context was freed while ending");
	}
	while ((s = TAILQ_FIRST(&ctx->sessions)) != NULL) {
		TAILQ_REMOVE(&ctx->sessions, s, entry);
		asess_kill(s, "the context was freed");
		s->ctx = NULL;
		s->err.first = NULL;
		asess_unref(s);
	}
	ctx->end_pending = 0;
	actx_end_check(ctx);
	ctx->refs--;			/* this frame's; the owner's remains */
	actx_unref(ctx);
}

/* --- all sessions at once ------------------------------------------------ */

static void
allop_finish(struct allop *a)
{
	if (a->cb != NULL)
		a->cb(a->ctx, a->rc, a->arg);
	actx_unref(a->ctx);
	free(a);
}

static void
allop_one_cb(pgb_asession *s, int rc, void *arg)
{
	struct allop	*a = arg;

	if (rc == -1) {
		if (a->rc == 0)
			actx_seterr(a->ctx, "%s", s->err.text);
		a->rc = -1;
	}
	if (--a->pending == 0)
		allop_finish(a);
}

static void
allop_empty_cb(evutil_socket_t fd, short what, void *arg)
{
	struct allop	*a = arg;

	(void)fd;
	(void)what;
	if (a->ctx->freed)
		a->rc = -1;
	allop_finish(a);
}

static int
actx_all(pgb_actx *ctx, enum op_kind kind, pgb_actx_done_cb cb, void *arg)
{
	struct allop	*a;
	pgb_asession	*s;
	struct timeval	 tv = { 0, 0 };

	if (ctx == NULL || ctx->ended)
		return (-1);
	a = calloc(1, sizeof *a);
	if (a == NULL)
		return (-1);
	a->ctx = ctx;
	a->cb = cb;
	a->arg = arg;
	ctx->refs++;
	TAILQ_FOREACH(s, &ctx->sessions, entry) {
		if (done_queue(s, kind, allop_one_cb, a) == 0)
			a->pending++;
	}
	if (a->pending == 0 && event_base_once(pgb_loop_base(ctx->loop), -1,
	    EV_TIMEOUT, allop_empty_cb, a, &tv) == -1) {
		actx_unref(ctx);
		free(a);
		return (-1);
	}
	return (0);
}

int
pgb_actx_commit_all(pgb_actx *ctx, pgb_actx_done_cb cb, void *arg)
{
	return (actx_all(ctx, OP_COMMIT, cb, arg));
}

int
pgb_actx_rollback_all(pgb_actx *ctx, pgb_actx_done_cb cb, void *arg)
{
	return (actx_all(ctx, OP_ROLLBACK, cb, arg));
}

int
pgb_actx_close_all(pgb_actx *ctx, pgb_actx_done_cb cb, void *arg)
{
	return (actx_all(ctx, OP_CLOSE, cb, arg));
}

/* --- new contexts for concurrent work -------------------------------------- */

static void
finish_cb(pgb_actx *ctx, int rc, void *arg)
{
	(void)arg;
	/* fn failed: the first failure in the context says why. */
	if (ctx->finish_rc != 0) {
		if (ctx->first_error[0] != '\0')
			pgbi_strlcpy(ctx->error, ctx->first_error,
			    sizeof ctx->error);
		else
			snprintf(ctx->error, sizeof ctx->error, "the callback"
			    " failed (pgb_actx_finish with %d) without a"
			    " failure in the library", ctx->finish_rc);
	}
	if (ctx->done_cb != NULL)
		ctx->done_cb(ctx, ctx->finish_rc == 0 && rc == 0 ? 0 : -1,
		    ctx->done_arg);
	pgb_actx_free(ctx);
}

int
pgb_arun_in_new_ctx(pgb_loop *loop, pgb_actx_fn fn, void *arg,
    pgb_actx_done_cb done, void *done_arg)
{
	pgb_actx	*ctx;

	if (fn == NULL || (ctx = pgb_actx_new(loop)) == NULL)
		return (-1);
	ctx->done_cb = done;
	ctx->done_arg = done_arg;
	fn(ctx, arg);
	return (0);
}

void
pgb_actx_finish(pgb_actx *ctx, int rc)
{
	if (ctx == NULL || ctx->ended)
		return;
	ctx->finish_rc = rc;
	if (pgb_actx_end(ctx, rc == 0 ? 200 : 500, finish_cb, NULL) == -1)
		return;
}
