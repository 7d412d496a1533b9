/*
 * async-session.c - the event-driven sessions (pgb_asession): their
 * lifetime (references, callback frames, the kick that runs the queue),
 * killing and cancelling their work, and the public calls that queue
 * operations or read a session.  The operations run in async-op.c; a
 * connection is acquired in async-acquire.c.
 */
#include <sys/queue.h>

#include <pthread.h>
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

/* --- small helpers ------------------------------------------------------ */

int
pgbi_asess_in_tx(const pgb_asession *s)
{
	if (s->outer != NULL && !s->sp_open)
		return (0);
	return (s->conn != NULL && s->conn->pg != NULL &&
	    s->state != S_CONNECTING && pgbi_in_tx(s->conn->pg));
}

void
pgbi_asess_kick(pgb_asession *s)
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
	pgbi_asess_step(s);
	pgbi_asess_unref(s);
}

/* Callback frames: the session (and its context) stay allocated. */
pgb_actx *
pgbi_asess_frame_enter(pgb_asession *s)
{
	s->refs++;
	if (s->ctx != NULL)
		s->ctx->refs++;
	return (s->ctx);
}

/* 1 when the session is still alive after the callback. */
int
pgbi_asess_frame_leave(pgb_asession *s, pgb_actx *ctx)
{
	int	alive = !s->dead;

	if (ctx != NULL)
		pgbi_actx_unref(ctx);
	pgbi_asess_unref(s);
	return (alive);
}

void
pgbi_asess_unref(pgb_asession *s)
{
	if (--s->refs == 0)
		free(s);
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
int
pgbi_asess_cancel_work(pgb_asession *s, const char *why)
{
	struct aop	*op;
	PGcancel	*pc;
	pthread_t	 t;
	pthread_attr_t	 attr;
	int		 n = 0;

	if (!pgbi_asess_acq_drop(s) && s->state == S_BUSY && s->conn != NULL) {
		pc = PQgetCancel(s->conn->pg);
		if (pc != NULL) {
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr,
			    PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &attr, cancel_thread, pc) != 0)
				PQfreeCancel(pc);
			pthread_attr_destroy(&attr);
		}
		pgbi_asess_release(s, 1);
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
		if (!pgbi_aop_done(s, op, -1))
			break;
	}
	return (n);
}

/* Marks s dead, releases everything and cancels its work. */
void
pgbi_asess_kill(pgb_asession *s, const char *why)
{
	struct aop	*op;

	if (s->dead)
		return;
	s->refs++;
	(void)pgbi_asess_cancel_work(s, why);
	s->dead = 1;
	event_del(&s->kick);
	/* An open transaction is abandoned: the server rolls it back. */
	pgbi_asess_release(s, pgbi_asess_in_tx(s));
	while ((op = TAILQ_FIRST(&s->ops)) != NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_CANCELED, "%s: canceled: %s",
		    pgbi_db_label(s->db), why);
		op->release_after = 0;
		(void)pgbi_aop_done(s, op, -1);
	}
	event_del(&s->io);
	event_del(&s->timer);
	pgbi_asess_unref(s);
}

/* --- sessions ----------------------------------------------------------- */

pgb_asession *
pgbi_asess_alloc(pgb_loop *loop, pgb_db *db)
{
	pgb_asession		*s;
	struct pgbi_binding	*b;
	struct event_base	*base = pgb_loop_base(loop);

	b = pgbi_loop_bind(loop, db, pgbi_asess_wake_cb);
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
	event_assign(&s->io, base, -1, 0, pgbi_asess_io_cb, s);
	event_assign(&s->kick, base, -1, 0, kick_cb, s);
	evtimer_assign(&s->timer, base, pgbi_asess_timer_cb, s);
	return (s);
}

pgb_asession *
pgb_asession_new(pgb_loop *loop, pgb_db *db, int flags)
{
	pgb_asession	*s;

	if (loop == NULL || db == NULL)
		return (NULL);
	s = pgbi_asess_alloc(loop, db);
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
	pgbi_asess_kill(s, "session freed");
	pgbi_asess_unref(s);
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
	if ((op = pgbi_aop_new(s, OP_EXEC)) == NULL)
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
	return (pgbi_aop_queue(s, op));
nomem:
	pgbi_aop_free(op);
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

	if (s == NULL || (op = pgbi_aop_new(s, kind)) == NULL)
		return (NULL);
	op->dcb = cb;
	op->arg = arg;
	return (op);
}

int
pgbi_aop_done_queue(pgb_asession *s, enum op_kind kind, pgb_done_cb cb,
    void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, kind, cb, arg)) == NULL)
		return (-1);
	return (pgbi_aop_queue(s, op));
}

int
pgb_asession_conn(pgb_asession *s, pgb_conn_cb cb, void *arg)
{
	struct aop	*op;

	if (s == NULL || (op = pgbi_aop_new(s, OP_CONN)) == NULL)
		return (-1);
	op->ccb = cb;
	op->arg = arg;
	return (pgbi_aop_queue(s, op));
}

int
pgb_asession_commit(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (pgbi_aop_done_queue(s, OP_COMMIT, cb, arg));
}

int
pgb_asession_rollback(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (pgbi_aop_done_queue(s, OP_ROLLBACK, cb, arg));
}

int
pgb_asession_close(pgb_asession *s, pgb_done_cb cb, void *arg)
{
	return (pgbi_aop_done_queue(s, OP_CLOSE, cb, arg));
}

int
pgb_aatomic_begin(pgb_asession *s, pgb_atomic_mode mode, pgb_done_cb cb,
    void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, OP_ABEGIN, cb, arg)) == NULL)
		return (-1);
	op->u.mode = mode;
	return (pgbi_aop_queue(s, op));
}

int
pgb_aatomic_end(pgb_asession *s, int ok, pgb_done_cb cb, void *arg)
{
	struct aop	*op;

	if ((op = done_new(s, OP_AEND, cb, arg)) == NULL)
		return (-1);
	op->u.ok = ok != 0;
	return (pgbi_aop_queue(s, op));
}

int
pgb_asession_in_transaction(const pgb_asession *s)
{
	return (pgbi_asess_in_tx(s));
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
