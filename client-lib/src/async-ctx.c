/*
 * async-ctx.c - the event-driven contexts (pgb_actx): their sessions, one
 * per db; ending them (COMMIT or ROLLBACK on every session, then one
 * callback); the test utilities (savepoint sessions, get/put/pop); the
 * operations on all sessions at once; and pgb_arun_in_new_ctx.
 */
#include <sys/queue.h>

#include <stdarg.h>
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

/* Progress of pgb_actx_commit_all and its siblings. */
struct allop {
	pgb_actx	*ctx;		/* referenced */
	int		 pending;
	int		 rc;
	pgb_actx_done_cb cb;
	void		*arg;
};

/* Sets ctx's error, and its first error while that is empty. */
#define actx_seterr(ctx, ...)						\
	pgbi_ctx_seterr((ctx)->error, (ctx)->first_error, __VA_ARGS__)

/* --- small helpers ------------------------------------------------------ */

void
pgbi_actx_unref(pgb_actx *ctx)
{
	if (--ctx->refs == 0)
		free(ctx);
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
	s = pgbi_asess_alloc(ctx->loop, db);
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
	s = pgbi_asess_alloc(loop, pgb_session_db(outer));
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
		pgbi_actx_unref(ctx);
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
		if (pgbi_asess_cancel_work(s, "the context ended") > 0) {
			if (ctx->end_rc == 0)
				actx_seterr(ctx, "%s: a statement was still"
				    " queued or running: canceled and rolled"
				    " back", pgbi_db_label(s->db));
			ctx->end_rc = -1;
		}
		if (!s->dead && (op = pgbi_aop_new(s, OP_END)) != NULL) {
			op->u.status = ctx->end_status;
			op->dcb = actx_end_one_cb;
			op->arg = ctx;
			ctx->end_pending++;
			TAILQ_INSERT_TAIL(&s->ops, op, entry);
			pgbi_asess_kick(s);
		}
		next = ctx->freed ? NULL : TAILQ_NEXT(s, entry);
		pgbi_asess_unref(s);
	}
	ctx->end_pending--;
	actx_end_check(ctx);
	pgbi_actx_unref(ctx);
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
		pgbi_asess_kill(s, "the context was freed");
		s->ctx = NULL;
		s->err.first = NULL;
		pgbi_asess_unref(s);
	}
	ctx->end_pending = 0;
	actx_end_check(ctx);
	ctx->refs--;			/* this frame's; the owner's remains */
	pgbi_actx_unref(ctx);
}

/* --- all sessions at once ------------------------------------------------ */

static void
allop_finish(struct allop *a)
{
	if (a->cb != NULL)
		a->cb(a->ctx, a->rc, a->arg);
	pgbi_actx_unref(a->ctx);
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
		if (pgbi_aop_done_queue(s, kind, allop_one_cb, a) == 0)
			a->pending++;
	}
	if (a->pending == 0 && event_base_once(pgb_loop_base(ctx->loop), -1,
	    EV_TIMEOUT, allop_empty_cb, a, &tv) == -1) {
		pgbi_actx_unref(ctx);
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
	if (ctx->finish_rc != 0)
		pgbi_ctx_why_failed(ctx->error, sizeof ctx->error,
		    ctx->first_error, "pgb_actx_finish with", ctx->finish_rc);
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
