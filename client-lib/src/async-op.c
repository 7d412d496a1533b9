/*
 * async-op.c - the operations (aop) of an event-driven session, run one
 * at a time from the head of its queue, and the exchanges they make on
 * its connection: one round trip each, PQsendQuery (or a pipeline for
 * parameters after BEGIN), PQflush until 0, then PQconsumeInput /
 * PQisBusy / PQgetResult until done.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "pgbeacon.h"
#include "async-internal.h"
#include "asession-internal.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

static int	 op_run(pgb_asession *s, struct aop *op);
static void	 x_send(pgb_asession *s, enum xkind kind, const char *sql);
static void	 x_send_user(pgb_asession *s, struct aop *op, int begin);
static void	 x_flush(pgb_asession *s);
static void	 x_read(pgb_asession *s);
static void	 x_finish(pgb_asession *s);

/* What stands for ROLLBACK on s. */
static const char *
rollback_sql(const pgb_asession *s)
{
	return (s->outer != NULL ? s->sp.rollback : "ROLLBACK");
}

/* --- operations --------------------------------------------------------- */

void
pgbi_aop_free(struct aop *op)
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
int
pgbi_aop_queue(pgb_asession *s, struct aop *op)
{
	if (s->dead || (s->ctx != NULL && s->ctx->ended &&
	    op->kind != OP_END)) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: the session's"
		    " context has ended", pgbi_db_label(s->db));
		pgbi_aop_free(op);
		return (-1);
	}
	TAILQ_INSERT_TAIL(&s->ops, op, entry);
	pgbi_asess_kick(s);
	return (0);
}

struct aop *
pgbi_aop_new(pgb_asession *s, enum op_kind kind)
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
int
pgbi_aop_done(pgb_asession *s, struct aop *op, int rc)
{
	PGresult	*res;
	pgb_actx	*ctx;
	int		 alive;

	s->moving = 0;		/* the next op starts afresh */
	if (op->release_after)
		pgbi_asess_release(s, pgbi_asess_in_tx(s));
	if (op->force_fail)
		rc = -1;
	if (rc == 0 && op->kind != OP_EXEC) {
		pgbi_serr_clear(&s->err);
	}
	TAILQ_REMOVE(&s->ops, op, entry);
	res = s->x_keep;
	s->x_keep = NULL;
	ctx = pgbi_asess_frame_enter(s);
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
	alive = pgbi_asess_frame_leave(s, ctx);
	PQclear(res);
	pgbi_aop_free(op);
	return (alive);
}

/* Fails op with code and s->err.text (already set). */
int
pgbi_aop_fail(pgb_asession *s, struct aop *op)
{
	PQclear(s->x_keep);
	s->x_keep = NULL;
	return (pgbi_aop_done(s, op, -1));
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
	enum pgbi_end_step step;
	int		 rc, alive, refuse;

	switch (op->kind) {
	case OP_EXEC:
	case OP_CONN:
		if (s->conn == NULL) {
			rc = pgbi_asess_acquire(s);
			if (rc != 0)
				return (rc == 1);
		}
		if (op->kind == OP_CONN) {
			if (!s->autocommit && !pgbi_asess_in_tx(s)) {
				s->tx_wrote = 0;
				s->sp_open = s->outer != NULL;
				x_send(s, X_BEGIN, s->outer != NULL ?
				    s->sp.begin : "BEGIN");
				return (1);
			}
			pgbi_aop_done(s, op, 0);
			return (0);
		}
		x_send_user(s, op, !s->autocommit && !pgbi_asess_in_tx(s));
		return (1);
	case OP_COMMIT:
		if (!pgbi_asess_in_tx(s)) {
			pgbi_aop_done(s, op, 0);
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
		if (!pgbi_asess_in_tx(s)) {
			pgbi_aop_done(s, op, 0);
			return (0);
		}
		x_send(s, X_ROLLBACK, rollback_sql(s));
		return (1);
	case OP_CLOSE:
		op->kind = OP_ROLLBACK;
		op->release_after = 1;
		return (op_run(s, op));
	case OP_ABEGIN:
		if (!pgbi_asess_in_tx(s)) {
			pgbi_aop_done(s, op, 0);
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
			pgbi_aop_done(s, op, 0);
			return (0);
		default:
			pgbi_serr_tx_open(&s->err, s->db, s->conn);
			pgbi_aop_done(s, op, -1);
			return (0);
		}
	case OP_AEND:
		op->force_fail = !op->u.ok;
		op->kind = op->u.ok ? OP_COMMIT : OP_ROLLBACK;
		return (op_run(s, op));
	case OP_END:
		op->release_after = 1;
		if (!pgbi_asess_in_tx(s)) {
			op->kind = OP_ROLLBACK;
			return (op_run(s, op));
		}
		refuse = 0;
		step = pgbi_end_step(op->u.status,
		    PQtransactionStatus(s->conn->pg) == PQTRANS_INERROR,
		    s->ctx != NULL && s->ctx->bc != NULL);
		if (step == PGBI_END_FAILED_TX) {
			pgbi_serr_end_failed(&s->err, s->db, s->conn);
			refuse = 1;
		} else if (step == PGBI_END_ASK) {
			ctx = pgbi_asess_frame_enter(s);
			rc = ctx->bc(ctx, s, ctx->bc_arg);
			alive = pgbi_asess_frame_leave(s, ctx);
			if (!alive)
				return (0);
			if (rc != 0) {
				pgbi_serr_refused(&s->err, s->db);
				refuse = 1;
			}
		}
		if (step == PGBI_END_ROLLBACK || refuse) {
			op->force_fail = refuse;
			op->kind = OP_ROLLBACK;
		} else
			op->kind = OP_COMMIT;
		return (op_run(s, op));
	}
	return (0);
}

/* Runs the queue until something has to wait. */
void
pgbi_asess_step(pgb_asession *s)
{
	struct aop	*op;

	while (!s->dead && (op = TAILQ_FIRST(&s->ops)) != NULL) {
		if (s->state != S_IDLE)
			return;
		if (op_run(s, op))
			return;
	}
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
	pgbi_asess_arm(s, EV_READ | (s->x_flushing ? EV_WRITE : 0));
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

void
pgbi_asess_io_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_asession	*s = arg;

	(void)fd;
	s->refs++;
	io_event(s, what);
	pgbi_asess_unref(s);
}

static void
io_event(pgb_asession *s, short what)
{
	int	rc;

	if (s->state == S_CONNECTING) {
		pgbi_asess_connect_poll(s);
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
			pgbi_asess_arm(s, EV_READ |
			    (s->x_flushing ? EV_WRITE : 0));
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

/*
 * The transaction's first statement (sent with its BEGIN: nothing ran)
 * failed: 1 when its host is leaving the role and the statement goes
 * again on the next holder (pgbi_asess_role_moving).
 */
static int
x_role_moving(pgb_asession *s)
{
	char	st[sizeof s->err.sqlstate], msg[512];

	pgbi_strlcpy(st, s->x_ok ? "" : s->err.sqlstate, sizeof st);
	pgbi_strlcpy(msg, PQerrorMessage(s->conn->pg), sizeof msg);
	if (!pgbi_asess_role_moving(s, st, msg))
		return (0);
	PQclear(s->x_keep);
	s->x_keep = NULL;
	return (1);
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
	if (!ok && op != NULL && op->kind == OP_EXEC && s->x_kind == X_USER &&
	    s->x_begin && x_role_moving(s))
		return;		/* sent again on the role's next holder */
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
		pgbi_asess_release(s, 1);
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
			pgbi_asess_step(s);
			return;
		}
	} else if (!ok && op != NULL && op->kind == OP_EXEC &&
	    s->x_kind == X_USER && s->outer == NULL &&
	    pgbi_db_is_master(s->db) &&
	    strcmp(s->err.sqlstate, "25006") == 0) {
		/*
		 * Read-only: the host is a standby now.  The db forgets it;
		 * when the statement began the transaction (nothing ran), it
		 * is sent once more on the host the daemon names now.
		 */
		pgbi_db_role_lost(s->db, s->conn);
		pgbi_asess_release(s, 1);
		s->b->answer_valid = 0;
		if ((s->x_begin || s->autocommit) && !op->role_retried) {
			op->role_retried = 1;
			PQclear(s->x_keep);
			s->x_keep = NULL;
			pgbi_asess_step(s);
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
		if (!ok && pgbi_asess_in_tx(s)) {
			op->phase = 1;
			op->force_fail = 1;
			x_send(s, X_ROLLBACK, rollback_sql(s));
			return;
		}
	} else if (s->x_kind == X_ROLLBACK) {
		if (op->phase == 1)
			ok = 0;
		if (!s->x_ok && !broken)
			pgbi_asess_release(s, 1);
	}
	if (pgbi_aop_done(s, op, ok ? 0 : -1))
		pgbi_asess_step(s);
}
