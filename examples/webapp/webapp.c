/*
 * webapp.c - an example web service on libevent's evhttp and the
 * event-driven API of libpgbeacon.  One pgb_actx per HTTP request (the
 * "middleware": begun when the request arrives, ended with the response
 * status), one route per workflow; see README.md.
 *
 *   webapp -p PORT -s SOCKET -c CONNINFO [-C CLUSTER] [-n POOL] [-w MS]
 *
 * -w: how long a request waits during a failover for the daemon to name
 * a host of its role (pgb_db_set_role_wait; 0: it fails at once; default
 * the library's, 5000).
 *
 * Rows go to items(tag text, val text, at timestamptz default now()),
 * created at start-up when missing.
 *
 * A client that hangs up before its answer: the request's context is
 * ended rolled back (and its /concurrent units with it), nothing is sent,
 * everything is freed.  SIGTERM or SIGINT: stops accepting; requests not
 * yet answering are dropped the same way (their connections closed),
 * those already answering finish; then everything is freed and the
 * service exits 0 (a second signal, or STOP_GRACE_SEC, cuts the wait
 * short: what is left is freed, its connections closed).
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <libpq-fe.h>

#include "pgbeacon.h"

#define STOP_GRACE_SEC	10	/* SIGTERM: longest wait for requests */
#define ROLE_WAIT_MAX_MS 3600000 /* -w: at most an hour */

struct app {
	struct event_base	*base;
	struct evhttp		*http;
	struct evhttp_bound_socket *listener;
	struct event		*stop_timer;
	pgb_loop		*loop;
	pgb_db			*master;
	pgb_db			*replica;
	char			*conninfo;
	int			 stopping;	/* SIGTERM seen */
	TAILQ_HEAD(, req)	 reqs;		/* in flight */
	/*
	 * Tests only (NULL in the service): called with each request's
	 * context before its route runs, to put sessions in it, e.g. a
	 * savepoint session on the test's own transaction
	 * (pgb_actx_put_session).  -1: the request is answered 503.
	 */
	int			(*test_ctx)(pgb_actx *ctx, void *arg);
	void			*test_ctx_arg;
};

struct req;
typedef void	(*step_fn)(struct req *r);

/* One step of a seed example's handler (see "the seed's examples"). */
enum seed_op {
	SD_INSERT,		/* an INSERT on the session */
	SD_FAIL_SQL,		/* a statement that fails (division by zero) */
	SD_COMMIT,		/* pgb_asession_commit */
	SD_CTX_COMMIT,		/* pgb_actx_commit_all: through the context */
	SD_ROLLBACK,		/* pgb_asession_rollback */
	SD_CTX_ROLLBACK,	/* pgb_actx_rollback_all: through the context */
	SD_CLOSE,		/* pgb_asession_close */
	SD_ABEGIN,		/* pgb_aatomic_begin, arg the mode */
	SD_AEND,		/* pgb_aatomic_end, arg ok */
	SD_RAISE,		/* the handler fails (an "exception"): 500 */
	SD_END,			/* the handler returns; arg the status */
};

struct seed_step {
	enum seed_op	 op;
	int		 arg;
	int		 caught;	/* its failure is caught: go on */
};

/*
 * A seed handler running: steps on session s (of ctx, or owned when ctx
 * is NULL), then done(sc, status) once, unless the request is freed
 * first.  Embedded in its request or unit.
 */
struct script {
	struct req		*r;
	pgb_actx		*ctx;		/* borrowed; NULL: s is free */
	pgb_asession		*s;		/* borrowed */
	const struct seed_step	*steps;		/* static */
	int			 i;
	void			(*done)(struct script *sc, int status,
				    const char *why);
};

/*
 * One unit of /concurrent (its own context, its own connection) or of
 * /concurrent_queries and /multiple_session_usage (sc: a script on the
 * request's context, a new context, or a session of its own).
 */
struct unit {
	struct req		*r;
	pgb_actx		*ctx;		/* the library's: freed after done */
	pgb_asession		*own;		/* outside any context: owned */
	int			 i;
	int			 expect;	/* status the unit should end with */
	struct script		 sc;
	TAILQ_ENTRY(unit)	 entry;
};

/*
 * One HTTP request in flight.  Owns its context.  hr and evcon are
 * evhttp's: valid until the reply is sent or close_cb runs (the client
 * hung up, or the service stops), then NULL.  Freed once its context
 * ended and its /concurrent units are done (req_reap).
 */
struct req {
	struct app		*app;
	struct evhttp_request	*hr;		/* borrowed from evhttp */
	struct evhttp_connection *evcon;	/* hr's; close_cb set on it */
	struct event		*hup;		/* EV_READ on its socket */
	pgb_actx		*ctx;		/* owned */
	struct evkeyvalq	 q;		/* query parameters */
	const char		*path;		/* the route's */
	const char		*tag;
	char			 lsn_in[PGB_LSN_MAX];
	int			 ms;
	int			 n;
	int			 pending;	/* /concurrent units running */
	TAILQ_HEAD(, unit)	 units;		/* /concurrent units running */
	int			 failed;
	int			 status;
	int			 responding;	/* the context is ending */
	int			 gone;		/* no reply: client gone */
	int			 ended;		/* end_cb ran */
	int			 freeing;	/* in req_free */
	struct evbuffer		*body;
	struct event		*timer;		/* /cancel */
	/* /fresh: a raw libpq connection per request */
	PGconn			*raw;
	struct event		*raw_ev;
	int			 raw_sent;
	struct script		 sc;		/* the seed's examples */
	TAILQ_ENTRY(req)	 entry;
};

static void	 respond(struct req *r, int status, const char *fmt, ...)
		     __attribute__((format(printf, 3, 4)));
static void	 req_free(struct req *r);

/* --- middleware ------------------------------------------------------------ */

/* Forgets hr's connection: close_cb and hup_cb are no longer called. */
static void
req_detach(struct req *r)
{
	if (r->hup != NULL)
		event_free(r->hup);
	r->hup = NULL;
	if (r->evcon != NULL)
		evhttp_connection_set_closecb(r->evcon, NULL, NULL);
	r->evcon = NULL;
}

/*
 * Frees r now.  Anything still running is abandoned: pgb_actx_free
 * closes the connections of open transactions, so the server rolls them
 * back (callbacks it calls back into r return at once: r->freeing).
 */
static void
req_free(struct req *r)
{
	struct app	*app = r->app;
	struct unit	*u;

	r->freeing = 1;
	req_detach(r);
	TAILQ_REMOVE(&app->reqs, r, entry);
	while ((u = TAILQ_FIRST(&r->units)) != NULL) {
		TAILQ_REMOVE(&r->units, u, entry);
		pgb_actx_free(u->ctx);
		pgb_asession_free(u->own);
		free(u);
	}
	pgb_actx_free(r->ctx);
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->raw_ev != NULL)
		event_free(r->raw_ev);
	if (r->raw != NULL)
		PQfinish(r->raw);
	evhttp_clear_headers(&r->q);
	evbuffer_free(r->body);
	free(r);
	if (app->stopping && TAILQ_EMPTY(&app->reqs))
		event_base_loopexit(app->base, NULL);
}

/* Frees r once its context ended and its units are done. */
static void
req_reap(struct req *r)
{
	if (r->ended && r->pending == 0 && !r->freeing)
		req_free(r);
}

static void
end_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct req	*r = arg;
	char		 lsn[PGB_LSN_MAX], cookie[64];

	if (r->freeing)
		return;
	r->ended = 1;
	if (r->gone)
		return (req_reap(r));
	if (rc == -1 && r->status < 400) {
		r->status = 500;
		evbuffer_add_printf(r->body, "\nend of request failed: %s",
		    pgb_actx_error(ctx));
	}
	if (pgb_actx_lsn(ctx, lsn)) {
		snprintf(cookie, sizeof cookie, "pgb_lsn=%s; Path=/", lsn);
		evhttp_add_header(evhttp_request_get_output_headers(r->hr),
		    "Set-Cookie", cookie);
	}
	evbuffer_add(r->body, "\n", 1);
	evhttp_add_header(evhttp_request_get_output_headers(r->hr),
	    "Content-Type", "text/plain; charset=utf-8");
	/* From here evhttp owns hr: a later close must not reach r. */
	req_detach(r);
	evhttp_send_reply(r->hr, r->status, r->status < 400 ? "OK" : "Error",
	    r->body);
	r->hr = NULL;
	req_reap(r);
}

/*
 * The client will get no answer (it hung up, or the service stops):
 * the context ends with 499 so that it is rolled back, statements still
 * running cancelled, and so are the /concurrent units.  Rolled back,
 * not committed: the client never got a success answer, so it must not
 * find the work done.  When the end had already begun (the answer was
 * being made, maybe with a commit), it finishes unchanged, unsent.
 * r is freed from end_cb or the last unit_done_cb, never here.
 */
static void
req_abandon(struct req *r)
{
	struct unit	*u;

	r->gone = 1;
	TAILQ_FOREACH(u, &r->units, entry)
		pgb_actx_finish(u->ctx, -1);
	if (r->responding)
		return;
	r->responding = 1;
	r->status = 499;
	if (pgb_actx_end(r->ctx, r->status, end_cb, r) == -1) {
		/* Cannot happen (only respond ends ctx): no end to wait
		 * for, r goes once its units are done. */
		r->ended = 1;
		req_reap(r);
	}
}

/*
 * evhttp is freeing hr's connection before the reply: the client hung
 * up (EOF or error on the socket) or signal_cb dropped it.  hr is gone
 * with it, except when evhttp detached it from the connection first
 * (EOF while the request was ours): then it is ours to free.
 */
static void
close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct req	*r = arg;

	(void)evcon;
	req_detach(r);
	if (evhttp_request_get_connection(r->hr) == NULL)
		evhttp_request_free(r->hr);
	r->hr = NULL;
	req_abandon(r);
}

/*
 * The client's socket is readable while its request is ours.  evhttp
 * (2.1) does not read it between the request and the reply, so a
 * hang-up would go unseen until the reply is written: peek.  EOF or an
 * error: the client is gone (a client that half-closes and still waits
 * is taken as gone too), its connection is freed, and close_cb drops the
 * request.  Data (a pipelined request): it is there, stop watching.
 */
static void
hup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct req	*r = arg;
	char		 c;
	ssize_t		 n;

	(void)what;
	n = recv(fd, &c, 1, MSG_PEEK);
	if (n > 0)
		return;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR)) {
		(void)event_add(r->hup, NULL);
		return;
	}
	evhttp_connection_free(r->evcon);	/* calls close_cb */
}

/* Ends the request's context with status, then replies. */
static void
respond(struct req *r, int status, const char *fmt, ...)
{
	va_list	ap;

	if (r->responding)
		return;
	r->responding = 1;
	r->status = status;
	va_start(ap, fmt);
	evbuffer_add_vprintf(r->body, fmt, ap);
	va_end(ap);
	if (pgb_actx_end(r->ctx, status, end_cb, r) == -1)
		end_cb(r->ctx, -1, r);
}

/* Replies 500 with the session's error. */
static void
fail(struct req *r, pgb_asession *s, const char *what)
{
	respond(r, 500, "%s failed: %s", what, pgb_asession_error(s));
}

static const char *
host_of(pgb_asession *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d %s", pgb_asession_host(s) != NULL ?
	    pgb_asession_host(s) : "-", pgb_asession_port(s),
	    pgb_asession_role(s) != NULL ? pgb_asession_role(s) : "-");
	return (buf);
}

/* INSERT INTO items (tag, val) on the master session. */
static int
insert(struct req *r, pgb_asession *s, const char *val, pgb_result_cb cb)
{
	const char	*p[2] = { r->tag, val };

	return (pgb_aexec_params(s, "INSERT INTO items (tag, val)"
	    " VALUES ($1, $2)", 2, NULL, p, NULL, NULL, 0, cb, r));
}

#define MASTER(r)	pgb_actx_session((r)->ctx, (r)->app->master)

/* --- /simple: one write and one read in the request's transaction --------- */

static void
simple_read_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	char		 h[300];

	if (res == NULL)
		return (fail(r, s, "select"));
	respond(r, 200, "ok %s %s", PQgetvalue(res, 0, 0),
	    host_of(s, h, sizeof h));
}

static void
simple_insert_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	const char	*p[1] = { r->tag };

	if (res == NULL)
		return (fail(r, s, "insert"));
	if (pgb_aexec_params(s, "SELECT val FROM items WHERE tag = $1"
	    " LIMIT 1", 1, NULL, p, NULL, NULL, 0, simple_read_cb, r) == -1)
		fail(r, s, "select");
}

static void
route_simple(struct req *r)
{
	if (insert(r, MASTER(r), "simple", simple_insert_cb) == -1)
		fail(r, MASTER(r), "insert");
}

/* --- /atomic and /atomic_prev?mode= ------------------------------------- */

static void
atomic_end_cb(pgb_asession *s, int rc, void *arg)
{
	struct req	*r = arg;

	if (rc == -1)
		return (fail(r, s, "atomic block"));
	respond(r, 200, "ok atomic");
}

static void
atomic_insert_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (pgb_aatomic_end(s, res != NULL, atomic_end_cb, r) == -1)
		fail(r, s, "atomic end");
}

static void
atomic_begin_cb(pgb_asession *s, int rc, void *arg)
{
	struct req	*r = arg;

	if (rc == -1) {
		respond(r, pgb_asession_errcode(s) == PGB_ERR_STATE ? 409 : 500,
		    "atomic block refused: %s", pgb_asession_error(s));
		return;
	}
	if (insert(r, s, "inside", atomic_insert_cb) == -1)
		fail(r, s, "insert");
}

static pgb_atomic_mode
atomic_mode(const char *m)
{
	if (m == NULL || strcmp(m, "commit") == 0)
		return (PGB_ATOMIC_COMMIT_FIRST);
	if (strcmp(m, "rollback") == 0)
		return (PGB_ATOMIC_ROLLBACK_FIRST);
	if (strcmp(m, "append") == 0)
		return (PGB_ATOMIC_APPEND);
	return (PGB_ATOMIC_REFUSE);
}

static void
route_atomic(struct req *r)
{
	if (pgb_aatomic_begin(MASTER(r), PGB_ATOMIC_COMMIT_FIRST,
	    atomic_begin_cb, r) == -1)
		fail(r, MASTER(r), "atomic begin");
}

static void
atomic_prev_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (res == NULL)
		return (fail(r, s, "insert"));
	if (pgb_aatomic_begin(s, atomic_mode(evhttp_find_header(&r->q,
	    "mode")), atomic_begin_cb, r) == -1)
		fail(r, s, "atomic begin");
}

static void
route_atomic_prev(struct req *r)
{
	if (insert(r, MASTER(r), "before", atomic_prev_cb) == -1)
		fail(r, MASTER(r), "insert");
}

/* --- /rollback_error, /rollback_status ------------------------------------ */

static void
rb_error_div_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (res == NULL)
		return (respond(r, 500, "failed as planned: %s",
		    pgb_asession_error(s)));
	respond(r, 200, "division by zero did not fail?");
}

static void
rb_error_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (res == NULL)
		return (fail(r, s, "insert"));
	if (pgb_aexec(s, "SELECT 1 / 0", rb_error_div_cb, r) == -1)
		fail(r, s, "select");
}

static void
route_rollback_error(struct req *r)
{
	if (insert(r, MASTER(r), "error", rb_error_cb) == -1)
		fail(r, MASTER(r), "insert");
}

static void
rb_status_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (res == NULL)
		return (fail(r, s, "insert"));
	respond(r, 422, "unprocessable: the insert is rolled back");
}

static void
route_rollback_status(struct req *r)
{
	if (insert(r, MASTER(r), "status", rb_status_cb) == -1)
		fail(r, MASTER(r), "insert");
}

/* --- /slow, /concurrent --------------------------------------------------- */

static void
slow_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	if (res == NULL)
		return (fail(r, s, "slow insert"));
	respond(r, 200, "ok slow");
}

/* INSERT and pg_sleep(ms) in one statement of s's transaction. */
static int
slow_insert(struct req *r, pgb_asession *s, const char *val, void *arg,
    pgb_result_cb cb)
{
	const char	*p[3];
	char		 secs[32];

	snprintf(secs, sizeof secs, "%.3f", r->ms / 1000.0);
	p[0] = r->tag;
	p[1] = val;
	p[2] = secs;
	return (pgb_aexec_params(s, "INSERT INTO items (tag, val)"
	    " SELECT $1, $2 FROM pg_sleep($3::float8)", 3, NULL, p, NULL,
	    NULL, 0, cb, arg));
}

static void
route_slow(struct req *r)
{
	if (slow_insert(r, MASTER(r), "slow", r, slow_cb) == -1)
		fail(r, MASTER(r), "slow insert");
}

static void
unit_done_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct unit	*u = arg;
	struct req	*r = u->r;

	(void)ctx;
	if (r->freeing)
		return;			/* req_free frees u */
	TAILQ_REMOVE(&r->units, u, entry);
	free(u);
	if (rc == -1)
		r->failed++;
	if (--r->pending == 0 && r->gone)
		req_reap(r);
	else if (r->pending == 0) {
		if (r->failed)
			respond(r, 500, "%d of %d units failed", r->failed,
			    r->n);
		else
			respond(r, 200, "ok %d units", r->n);
	}
}

static void
unit_stmt_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct unit	*u = arg;

	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
	(void)u;
}

static void
unit_fn(pgb_actx *ctx, void *arg)
{
	struct unit	*u = arg;
	pgb_asession	*s = pgb_actx_session(ctx, u->r->app->master);
	char		 val[32];

	u->ctx = ctx;
	snprintf(val, sizeof val, "unit%d", u->i);
	if (s == NULL || slow_insert(u->r, s, val, u, unit_stmt_cb) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
route_concurrent(struct req *r)
{
	struct unit	*u;
	int		 i;

	if (r->n < 1 || r->n > 50)
		return (respond(r, 400, "n must be 1..50"));
	r->pending = r->n;
	for (i = 0; i < r->n; i++) {
		u = calloc(1, sizeof *u);
		if (u == NULL) {
			r->pending -= r->n - i;
			r->failed += r->n - i;
			break;
		}
		u->r = r;
		u->i = i;
		TAILQ_INSERT_TAIL(&r->units, u, entry);
		if (pgb_arun_in_new_ctx(r->app->loop, unit_fn, u, unit_done_cb,
		    u) == -1) {
			TAILQ_REMOVE(&r->units, u, entry);
			free(u);
			r->pending--;
			r->failed++;
		}
	}
	if (r->pending == 0)
		respond(r, 500, "could not start the units");
}

/* --- /early_commit, /early_rollback, /early_close ------------------------- */

static void
early_last_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	const char	*path = r->path;

	if (res == NULL)
		return (fail(r, s, "second insert"));
	/* early_commit ends with an error: only the second write goes. */
	if (strncmp(path, "/early_commit", 13) == 0)
		respond(r, 500, "failing after an early commit");
	else
		respond(r, 200, "ok");
}

static void
early_mid_cb(pgb_asession *s, int rc, void *arg)
{
	struct req	*r = arg;

	if (rc == -1)
		return (fail(r, s, "early commit/rollback/close"));
	if (insert(r, s, "second", early_last_cb) == -1)
		fail(r, s, "second insert");
}

static void
early_first_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	const char	*path = r->path;
	int		 rc;

	if (res == NULL)
		return (fail(r, s, "first insert"));
	if (strncmp(path, "/early_commit", 13) == 0)
		rc = pgb_asession_commit(s, early_mid_cb, r);
	else if (strncmp(path, "/early_rollback", 15) == 0)
		rc = pgb_asession_rollback(s, early_mid_cb, r);
	else
		rc = pgb_asession_close(s, early_mid_cb, r);
	if (rc == -1)
		fail(r, s, "early step");
}

static void
route_early(struct req *r)
{
	if (insert(r, MASTER(r), "first", early_first_cb) == -1)
		fail(r, MASTER(r), "first insert");
}

/* --- the seed's examples ---------------------------------------------------- */
/*
 * One route per example of the seed (context-async-sqlalchemy), named as
 * there, each doing what the seed's handler does with the request's
 * context session (a script of seed_steps).  Rows committed, for a tag:
 * see README.md.
 */

static void	script_run(struct script *sc);

static const char *const seed_op_name[] = {
	[SD_INSERT] = "insert", [SD_FAIL_SQL] = "failing statement",
	[SD_COMMIT] = "commit", [SD_CTX_COMMIT] = "commit through the context",
	[SD_ROLLBACK] = "rollback",
	[SD_CTX_ROLLBACK] = "rollback through the context",
	[SD_CLOSE] = "close", [SD_ABEGIN] = "atomic block",
	[SD_AEND] = "end of atomic block", [SD_RAISE] = "handler",
	[SD_END] = "handler",
};

/* The step in progress finished with rc (0 or -1). */
static void
script_after(struct script *sc, pgb_asession *s, int rc)
{
	const struct seed_step	*st = &sc->steps[sc->i];
	char			 why[1200];

	if (sc->r->freeing || sc->done == NULL)
		return;
	if (rc == -1 && !st->caught) {
		snprintf(why, sizeof why, "%s failed: %s", seed_op_name[st->op],
		    s != NULL ? pgb_asession_error(s) : pgb_actx_error(sc->ctx));
		sc->done(sc, 500, why);
		return;
	}
	sc->i++;
	script_run(sc);
}

static void
script_res_cb(pgb_asession *s, PGresult *res, void *arg)
{
	script_after(arg, s, res != NULL ? 0 : -1);
}

static void
script_done_cb(pgb_asession *s, int rc, void *arg)
{
	script_after(arg, s, rc);
}

static void
script_ctx_cb(pgb_actx *ctx, int rc, void *arg)
{
	(void)ctx;
	script_after(arg, NULL, rc);
}

/* Runs the next step; its callback runs the one after. */
static void
script_run(struct script *sc)
{
	const struct seed_step	*st = &sc->steps[sc->i];
	const char		*p[2];
	char			 val[16];
	void			(*done)(struct script *, int, const char *);
	int			 rc = -1;

	switch (st->op) {
	case SD_INSERT:
		snprintf(val, sizeof val, "%d", sc->i);
		p[0] = sc->r->tag;
		p[1] = val;
		rc = pgb_aexec_params(sc->s, "INSERT INTO items (tag, val)"
		    " VALUES ($1, $2)", 2, NULL, p, NULL, NULL, 0,
		    script_res_cb, sc);
		break;
	case SD_FAIL_SQL:
		rc = pgb_aexec(sc->s, "SELECT 1/0", script_res_cb, sc);
		break;
	case SD_COMMIT:
		rc = pgb_asession_commit(sc->s, script_done_cb, sc);
		break;
	case SD_CTX_COMMIT:
		rc = pgb_actx_commit_all(sc->ctx, script_ctx_cb, sc);
		break;
	case SD_ROLLBACK:
		rc = pgb_asession_rollback(sc->s, script_done_cb, sc);
		break;
	case SD_CTX_ROLLBACK:
		rc = pgb_actx_rollback_all(sc->ctx, script_ctx_cb, sc);
		break;
	case SD_CLOSE:
		rc = pgb_asession_close(sc->s, script_done_cb, sc);
		break;
	case SD_ABEGIN:
		rc = pgb_aatomic_begin(sc->s, (pgb_atomic_mode)st->arg,
		    script_done_cb, sc);
		break;
	case SD_AEND:
		rc = pgb_aatomic_end(sc->s, st->arg, script_done_cb, sc);
		break;
	case SD_RAISE:
	case SD_END:
		done = sc->done;
		sc->done = NULL;
		done(sc, st->op == SD_RAISE ? 500 : st->arg, st->op ==
		    SD_RAISE ? "the handler failed" : "");
		return;
	}
	if (rc == -1)
		script_after(sc, sc->s, -1);
}

/* A route's script is over: the request ends with status. */
static void
seed_route_done(struct script *sc, int status, const char *why)
{
	sc->done = NULL;
	if (status < 400)
		respond(sc->r, status, "ok %s", sc->r->path + 1);
	else
		respond(sc->r, status, "%s: %s", sc->r->path + 1, why);
}

static void
seed_route(struct req *r, const struct seed_step *steps)
{
	r->sc.r = r;
	r->sc.ctx = r->ctx;
	r->sc.s = MASTER(r);
	r->sc.steps = steps;
	r->sc.done = seed_route_done;
	script_run(&r->sc);
}

#define INS		{ SD_INSERT, 0, 0 }
#define END(st)		{ SD_END, st, 0 }

static const struct seed_step seed_simple_usage[] = { INS, END(200) };
static const struct seed_step seed_atomic_usage[] = {
	{ SD_ABEGIN, PGB_ATOMIC_COMMIT_FIRST, 0 }, INS, { SD_AEND, 1, 0 },
	END(200) };
static const struct seed_step seed_atomic_and_previous_transaction[] = {
	INS, { SD_ABEGIN, PGB_ATOMIC_COMMIT_FIRST, 0 }, INS, { SD_AEND, 1, 0 },
	INS, { SD_ABEGIN, PGB_ATOMIC_ROLLBACK_FIRST, 0 }, INS,
	{ SD_AEND, 1, 0 },
	INS, { SD_ABEGIN, PGB_ATOMIC_APPEND, 0 }, INS, { SD_AEND, 1, 0 },
	/* the block fails; the handler catches it */
	INS, { SD_ABEGIN, PGB_ATOMIC_APPEND, 0 }, INS, { SD_FAIL_SQL, 0, 1 },
	{ SD_AEND, 0, 1 },
	/* "raise": the block is refused, the request fails */
	INS, { SD_ABEGIN, PGB_ATOMIC_REFUSE, 0 }, INS, { SD_AEND, 1, 0 },
	END(200) };
/* early_commit and manual_commit: the seed's two handlers are one. */
static const struct seed_step seed_early_commit[] = {
	INS, { SD_COMMIT, 0, 0 },
	INS, { SD_CTX_COMMIT, 0, 0 }, { SD_CLOSE, 0, 0 },
	INS, INS, END(200) };
static const struct seed_step seed_early_rollback[] = {
	INS, { SD_CTX_ROLLBACK, 0, 0 }, INS, { SD_ROLLBACK, 0, 0 }, END(200) };
static const struct seed_step seed_early_connection_close[] = {
	{ SD_ABEGIN, PGB_ATOMIC_COMMIT_FIRST, 0 }, INS, { SD_AEND, 1, 0 },
	{ SD_CLOSE, 0, 0 }, INS, END(200) };
static const struct seed_step seed_auto_rollback_by_exception[] = {
	INS, { SD_FAIL_SQL, 0, 0 }, END(200) };
static const struct seed_step seed_auto_rollback_by_status_code[] = {
	INS, END(500) };
static const struct seed_step seed_simple_with_exception[] = {
	INS, { SD_RAISE, 0, 0 } };

static void
route_simple_usage(struct req *r)
{
	seed_route(r, seed_simple_usage);
}

static void
route_atomic_usage(struct req *r)
{
	seed_route(r, seed_atomic_usage);
}

static void
route_atomic_and_previous_transaction(struct req *r)
{
	seed_route(r, seed_atomic_and_previous_transaction);
}

static void
route_early_commit(struct req *r)
{
	seed_route(r, seed_early_commit);
}

static void
route_early_rollback(struct req *r)
{
	seed_route(r, seed_early_rollback);
}

static void
route_early_connection_close(struct req *r)
{
	seed_route(r, seed_early_connection_close);
}

static void
route_auto_rollback_by_exception(struct req *r)
{
	seed_route(r, seed_auto_rollback_by_exception);
}

static void
route_auto_rollback_by_status_code(struct req *r)
{
	seed_route(r, seed_auto_rollback_by_status_code);
}

static void
route_simple_with_exception(struct req *r)
{
	seed_route(r, seed_simple_with_exception);
}

/*
 * concurrent_queries and multiple_session_usage: units that run at once,
 * each a script on the request's context session, on a new context
 * (pgb_arun_in_new_ctx) or on a session outside any context.
 */
enum cq_where { CQ_REQ_CTX, CQ_NEW_CTX, CQ_OWN };

static const struct seed_step cq_insert[] = { INS, END(200) };
static const struct seed_step cq_insert_commit_close[] = {
	INS, { SD_COMMIT, 0, 0 }, { SD_CLOSE, 0, 0 }, END(200) };
static const struct seed_step cq_atomic_insert[] = {
	{ SD_ABEGIN, PGB_ATOMIC_COMMIT_FIRST, 0 }, INS, { SD_AEND, 1, 0 },
	END(200) };
static const struct seed_step cq_insert_commit[] = {
	INS, { SD_COMMIT, 0, 0 }, END(200) };
static const struct seed_step cq_insert_then_fail[] = {
	INS, { SD_RAISE, 0, 0 } };

static const struct cq_unit {
	enum cq_where		 where;
	const struct seed_step	*steps;
	int			 expect;	/* its end status */
} cq_units[] = {
	{ CQ_REQ_CTX, cq_insert, 200 },
	{ CQ_NEW_CTX, cq_insert, 200 },
	{ CQ_NEW_CTX, cq_insert_commit_close, 200 },
	{ CQ_OWN, cq_atomic_insert, 200 },
	{ CQ_OWN, cq_insert_commit, 200 },
	{ CQ_NEW_CTX, cq_insert_then_fail, 500 },	/* concurrent_queries */
};

/* A unit is over (status: how it ended; 500 when not as expected). */
static void
cq_unit_over(struct unit *u, int status)
{
	struct req	*r = u->r;

	if (r->freeing)
		return;			/* req_free frees u */
	TAILQ_REMOVE(&r->units, u, entry);
	if (status != u->expect)
		r->failed++;
	pgb_asession_free(u->own);
	free(u);
	if (--r->pending == 0 && r->gone)
		req_reap(r);
	else if (r->pending == 0) {
		if (r->failed)
			respond(r, 500, "%d of %d units did not end as"
			    " expected", r->failed, r->n);
		else
			respond(r, 200, "ok %s %d units", r->path + 1, r->n);
	}
}

/* The script of a unit outside a new context is over. */
static void
cq_script_done(struct script *sc, int status, const char *why)
{
	(void)why;
	sc->done = NULL;
	cq_unit_over((struct unit *)((char *)sc - offsetof(struct unit, sc)),
	    status);
}

/* The script of a new-context unit is over: the context ends with it. */
static void
cq_ctx_script_done(struct script *sc, int status, const char *why)
{
	(void)why;
	sc->done = NULL;
	pgb_actx_finish(sc->ctx, status < 400 ? 0 : -1);
}

static void
cq_ctx_done_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct unit	*u = arg;

	(void)ctx;
	cq_unit_over(u, rc == 0 ? 200 : 500);
}

static void
cq_ctx_fn(pgb_actx *ctx, void *arg)
{
	struct unit	*u = arg;

	u->ctx = ctx;
	u->sc.ctx = ctx;
	u->sc.s = pgb_actx_session(ctx, u->r->app->master);
	u->sc.done = cq_ctx_script_done;
	if (u->sc.s == NULL)
		pgb_actx_finish(ctx, -1);
	else
		script_run(&u->sc);
}

static void
concurrent_units(struct req *r, int n)
{
	struct unit	*u;
	int		 i, rc;

	r->n = n;
	r->pending = n;
	for (i = 0; i < n; i++) {
		u = calloc(1, sizeof *u);
		if (u == NULL) {
			r->pending -= n - i;
			r->failed += n - i;
			break;
		}
		u->r = r;
		u->i = i;
		u->expect = cq_units[i].expect;
		u->sc.r = r;
		u->sc.steps = cq_units[i].steps;
		u->sc.done = cq_script_done;
		TAILQ_INSERT_TAIL(&r->units, u, entry);
		switch (cq_units[i].where) {
		case CQ_REQ_CTX:
			u->sc.ctx = r->ctx;
			u->sc.s = MASTER(r);
			script_run(&u->sc);
			break;
		case CQ_OWN:
			u->sc.s = u->own = pgb_asession_new(r->app->loop,
			    r->app->master, 0);
			if (u->own == NULL)
				cq_unit_over(u, 500);
			else
				script_run(&u->sc);
			break;
		case CQ_NEW_CTX:
			rc = pgb_arun_in_new_ctx(r->app->loop, cq_ctx_fn, u,
			    cq_ctx_done_cb, u);
			if (rc == -1)
				cq_unit_over(u, 500);
			break;
		}
	}
	if (r->pending == 0 && !r->responding)
		respond(r, 500, "could not start the units");
}

static void
route_concurrent_queries(struct req *r)
{
	concurrent_units(r, 6);
}

static void
route_multiple_session_usage(struct req *r)
{
	concurrent_units(r, 5);
}

/* --- /write, /read: read your writes through a cookie ----------------------- */

static void
write_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	char		 h[300];

	if (res == NULL)
		return (fail(r, s, "insert"));
	respond(r, 200, "ok wrote on %s", host_of(s, h, sizeof h));
}

static void
route_write(struct req *r)
{
	if (insert(r, MASTER(r), "written", write_cb) == -1)
		fail(r, MASTER(r), "insert");
}

static void
read_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;
	char		 h[300];

	if (res == NULL)
		return (fail(r, s, "replica read"));
	respond(r, 200, "%s %s", PQgetvalue(res, 0, 0), host_of(s, h,
	    sizeof h));
}

static void
route_read(struct req *r)
{
	pgb_asession	*s = pgb_actx_session(r->ctx, r->app->replica);
	const char	*p[1] = { r->tag };

	if (r->lsn_in[0] != '\0' && pgb_actx_set_lsn(r->ctx, r->lsn_in) == -1)
		return (respond(r, 400, "bad pgb_lsn cookie"));
	if (pgb_aexec_params(s, "SELECT count(*) FROM items WHERE tag = $1",
	    1, NULL, p, NULL, NULL, 0, read_cb, r) == -1)
		fail(r, s, "replica read");
}

/* --- /cancel: the request ends while its statement still runs ------------- */

static void
cancel_stmt_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct req	*r = arg;

	/* Called with PGB_ERR_CANCELED when the end below cancels it. */
	(void)s;
	(void)res;
	/* Its own line, before or after the answer's message. */
	if (evbuffer_get_length(r->body) > 0)
		evbuffer_add_printf(r->body, "\nstatement: %s", res != NULL ?
		    "done" : pgb_asession_error(s));
	else
		evbuffer_add_printf(r->body, "statement: %s\n", res != NULL ?
		    "done" : pgb_asession_error(s));
}

static void
cancel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	respond(arg, 200, "ended while the statement ran");
}

static void
route_cancel(struct req *r)
{
	struct timeval	tv = { 0, 300 * 1000 };

	if (slow_insert(r, MASTER(r), "cancel", r, cancel_stmt_cb) == -1)
		return (fail(r, MASTER(r), "slow insert"));
	r->timer = evtimer_new(r->app->base, cancel_timer_cb, r);
	if (r->timer == NULL || evtimer_add(r->timer, &tv) == -1)
		respond(r, 500, "no timer");
}

/* --- /fresh: the same as /simple on a new libpq connection ------------------ */

static void
fresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct req		*r = arg;
	PostgresPollingStatusType st;
	PGresult		*res;
	char			*lit, *sql;
	int			 ok = 1;

	(void)fd;
	(void)what;
	if (!r->raw_sent) {
		st = PQconnectPoll(r->raw);
		if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
			event_free(r->raw_ev);
			r->raw_ev = event_new(r->app->base, PQsocket(r->raw),
			    st == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
			    fresh_cb, r);
			event_add(r->raw_ev, NULL);
			return;
		}
		if (st != PGRES_POLLING_OK)
			return (respond(r, 500, "connect: %s",
			    PQerrorMessage(r->raw)));
		lit = PQescapeLiteral(r->raw, r->tag, strlen(r->tag));
		if (lit == NULL || asprintf(&sql, "BEGIN; INSERT INTO items"
		    " (tag, val) VALUES (%s, 'fresh'); SELECT val FROM items"
		    " WHERE tag = %s LIMIT 1; COMMIT", lit, lit) == -1) {
			PQfreemem(lit);
			return (respond(r, 500, "out of memory"));
		}
		PQfreemem(lit);
		(void)PQsetnonblocking(r->raw, 1);
		ok = PQsendQuery(r->raw, sql);
		free(sql);
		if (!ok || PQflush(r->raw) != 0)
			return (respond(r, 500, "send failed"));
		r->raw_sent = 1;
	} else if (!PQconsumeInput(r->raw))
		return (respond(r, 500, "%s", PQerrorMessage(r->raw)));
	while (!PQisBusy(r->raw)) {
		res = PQgetResult(r->raw);
		if (res == NULL) {
			respond(r, r->failed ? 500 : 200, "ok fresh");
			return;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		    PQresultStatus(res) != PGRES_TUPLES_OK)
			r->failed = 1;
		PQclear(res);
	}
	event_free(r->raw_ev);
	r->raw_ev = event_new(r->app->base, PQsocket(r->raw), EV_READ,
	    fresh_cb, r);
	event_add(r->raw_ev, NULL);
}

static void
route_fresh(struct req *r)
{
	const char	*keys[] = { "dbname", "host", "port", NULL };
	const char	*vals[4];
	char		 host[PGB_HOST_MAX], port[16];
	int		 p;

	if (pgb_db_current_host(r->app->master, host, sizeof host, &p) == -1)
		return (respond(r, 503, "no master known yet: call /simple"));
	snprintf(port, sizeof port, "%d", p);
	vals[0] = r->app->conninfo;
	vals[1] = host;
	vals[2] = port;
	vals[3] = NULL;
	r->raw = PQconnectStartParams(keys, vals, 1);
	if (r->raw == NULL || PQstatus(r->raw) == CONNECTION_BAD)
		return (respond(r, 500, "connect failed"));
	r->raw_ev = event_new(r->app->base, PQsocket(r->raw), EV_WRITE,
	    fresh_cb, r);
	if (r->raw_ev == NULL || event_add(r->raw_ev, NULL) == -1)
		respond(r, 500, "no event");
}

static void
route_health(struct req *r)
{
	respond(r, 200, "ok");
}

/* --- dispatch ------------------------------------------------------------- */

static const struct route {
	const char	*path;
	step_fn		 fn;
} routes[] = {
	{ "/simple", route_simple },
	{ "/atomic", route_atomic },
	{ "/atomic_prev", route_atomic_prev },
	{ "/rollback_error", route_rollback_error },
	{ "/rollback_status", route_rollback_status },
	{ "/slow", route_slow },
	{ "/concurrent", route_concurrent },
	{ "/early_commit_then_fail", route_early },
	{ "/early_rollback_then_write", route_early },
	{ "/early_close_then_write", route_early },
	/* the seed's examples */
	{ "/simple_usage", route_simple_usage },
	{ "/atomic_usage", route_atomic_usage },
	{ "/atomic_and_previous_transaction",
	    route_atomic_and_previous_transaction },
	{ "/early_commit", route_early_commit },
	{ "/early_rollback", route_early_rollback },
	{ "/early_connection_close", route_early_connection_close },
	{ "/concurrent_queries", route_concurrent_queries },
	{ "/auto_rollback_by_exception", route_auto_rollback_by_exception },
	{ "/auto_rollback_by_status_code",
	    route_auto_rollback_by_status_code },
	{ "/manual_commit", route_early_commit },
	{ "/manual_rollback", route_early_rollback },
	{ "/multiple_session_usage", route_multiple_session_usage },
	{ "/simple_with_exception", route_simple_with_exception },
	{ "/simple_with_http_exception", route_auto_rollback_by_status_code },
	{ "/write", route_write },
	{ "/read", route_read },
	{ "/cancel", route_cancel },
	{ "/fresh", route_fresh },
	{ "/health", route_health },
};

/* Copies the pgb_lsn cookie of the request into buf. */
static void
cookie_lsn(struct evhttp_request *hr, char *buf, size_t len)
{
	const char	*c, *p;
	size_t		 n;

	buf[0] = '\0';
	c = evhttp_find_header(evhttp_request_get_input_headers(hr), "Cookie");
	if (c == NULL || (p = strstr(c, "pgb_lsn=")) == NULL)
		return;
	p += 8;
	n = strcspn(p, "; ");
	if (n >= len)
		return;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static void
request_cb(struct evhttp_request *hr, void *arg)
{
	struct app		*app = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(hr);
	const char		*path = evhttp_uri_get_path(uri);
	const char		*query = evhttp_uri_get_query(uri);
	const char		*v;
	struct req		*r;
	size_t			 i;

	if (app->stopping) {
		evhttp_send_error(hr, 503, "stopping");
		return;
	}
	r = calloc(1, sizeof *r);
	if (r == NULL || (r->body = evbuffer_new()) == NULL ||
	    (r->ctx = pgb_actx_new(app->loop)) == NULL) {
		if (r != NULL) {
			if (r->body != NULL)
				evbuffer_free(r->body);
			free(r);
		}
		evhttp_send_error(hr, 503, "out of memory");
		return;
	}
	r->app = app;
	r->hr = hr;
	TAILQ_INIT(&r->q);
	TAILQ_INIT(&r->units);
	TAILQ_INSERT_TAIL(&app->reqs, r, entry);
	/* One request at a time per connection: the close callback is r's
	 * until the reply (end_cb) or the close (close_cb). */
	r->evcon = evhttp_request_get_connection(hr);
	evhttp_connection_set_closecb(r->evcon, close_cb, r);
	r->hup = event_new(app->base, bufferevent_getfd(
	    evhttp_connection_get_bufferevent(r->evcon)), EV_READ, hup_cb, r);
	if (r->hup == NULL || event_add(r->hup, NULL) == -1) {
		evhttp_connection_free(r->evcon);	/* calls close_cb */
		return;
	}
	if (query != NULL)
		(void)evhttp_parse_query_str(query, &r->q);
	r->tag = (v = evhttp_find_header(&r->q, "tag")) != NULL ? v : "none";
	r->ms = (v = evhttp_find_header(&r->q, "ms")) != NULL ? atoi(v) : 500;
	r->n = (v = evhttp_find_header(&r->q, "n")) != NULL ? atoi(v) : 2;
	cookie_lsn(hr, r->lsn_in, sizeof r->lsn_in);
	if (app->test_ctx != NULL &&
	    app->test_ctx(r->ctx, app->test_ctx_arg) == -1)
		return (respond(r, 503, "test context refused"));
	for (i = 0; path != NULL && i < sizeof routes / sizeof routes[0]; i++) {
		if (strcmp(path, routes[i].path) == 0) {
			r->path = routes[i].path;
			routes[i].fn(r);
			return;
		}
	}
	respond(r, 404, "no such route");
}

static void
stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app	*app = arg;

	(void)fd;
	(void)what;
	event_base_loopexit(app->base, NULL);
}

/*
 * SIGTERM, SIGINT: no new connection; every request not yet answering is
 * dropped (its connection closed: close_cb ends its context rolled
 * back); the loop exits when the last request is freed (req_free), at
 * the latest after STOP_GRACE_SEC or at a second signal.
 */
static void
signal_cb(evutil_socket_t fd, short what, void *arg)
{
	struct app	*app = arg;
	struct timeval	 tv = { STOP_GRACE_SEC, 0 };
	struct req	*r, *next;

	(void)fd;
	(void)what;
	if (app->stopping) {
		event_base_loopexit(app->base, NULL);
		return;
	}
	app->stopping = 1;
	if (app->listener != NULL) {
		evhttp_del_accept_socket(app->http, app->listener);
		app->listener = NULL;
	}
	for (r = TAILQ_FIRST(&app->reqs); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);	/* r stays: freed later */
		if (!r->responding && r->evcon != NULL)
			evhttp_connection_free(r->evcon);
	}
	if (TAILQ_EMPTY(&app->reqs) || app->stop_timer == NULL ||
	    evtimer_add(app->stop_timer, &tv) == -1)
		event_base_loopexit(app->base, NULL);
}

int
main(int argc, char **argv)
{
	struct app	 app;
	struct event	*sigterm, *sigint;
	struct req	*r;
	PGconn		*pg;
	PGresult	*res;
	const char	*sock = NULL, *cluster = "main", *conninfo = NULL;
	const char	*keys[] = { "dbname", "host", "port", NULL };
	const char	*vals[4];
	char		 host[PGB_HOST_MAX], portbuf[16];
	pgb_resolved	 rv;
	pgb_client	*cl;
	char		*end;
	long		 ms;
	int		 ch, port = 8080, pool = 20, role_wait = -1;

	while ((ch = getopt(argc, argv, "p:s:c:C:n:w:")) != -1) {
		switch (ch) {
		case 'p': port = atoi(optarg); break;
		case 's': sock = optarg; break;
		case 'c': conninfo = optarg; break;
		case 'C': cluster = optarg; break;
		case 'n': pool = atoi(optarg); break;
		case 'w':
			errno = 0;
			ms = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    ms < 0 || ms > ROLE_WAIT_MAX_MS) {
				fprintf(stderr, "webapp: -w %s: the role wait"
				    " must be 0 to %d ms\n", optarg,
				    ROLE_WAIT_MAX_MS);
				return (2);
			}
			role_wait = (int)ms;
			break;
		default:
			fprintf(stderr, "usage: webapp -p PORT -s SOCKET -c"
			    " CONNINFO [-C CLUSTER] [-n POOL] [-w MS]\n");
			return (2);
		}
	}
	if (conninfo == NULL)
		conninfo = "dbname=postgres";
	signal(SIGPIPE, SIG_IGN);
	memset(&app, 0, sizeof app);
	TAILQ_INIT(&app.reqs);
	app.conninfo = strdup(conninfo);

	/* Start-up (before the loop runs): the table, made on the master. */
	cl = pgb_client_new(sock);
	if (cl == NULL || pgb_client_resolve(cl, cluster, "master", NULL,
	    &rv) == -1) {
		fprintf(stderr, "webapp: no master: %s\n", cl != NULL ?
		    pgb_client_error(cl) : "out of memory");
		pgb_client_free(cl);
		free(app.conninfo);
		return (1);
	}
	pgb_client_free(cl);
	snprintf(host, sizeof host, "%s", rv.host);
	snprintf(portbuf, sizeof portbuf, "%d", rv.port);
	vals[0] = conninfo;
	vals[1] = host;
	vals[2] = portbuf;
	vals[3] = NULL;
	pg = PQconnectdbParams(keys, vals, 1);
	res = PQexec(pg, "SET client_min_messages = warning;"
	    " CREATE TABLE IF NOT EXISTS items (tag text NOT NULL, val text,"
	    " at timestamptz NOT NULL DEFAULT now());"
	    " CREATE INDEX IF NOT EXISTS items_tag ON items (tag)");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "webapp: cannot create the table: %s",
		    PQerrorMessage(pg));
		PQclear(res);
		PQfinish(pg);
		free(app.conninfo);
		return (1);
	}
	PQclear(res);
	PQfinish(pg);

	app.base = event_base_new();
	app.loop = pgb_loop_new(app.base, sock);
	app.master = pgb_db_new(conninfo, cluster, "master", sock);
	app.replica = pgb_db_new(conninfo, cluster, "replica", sock);
	app.http = evhttp_new(app.base);
	if (app.base == NULL || app.loop == NULL || app.master == NULL ||
	    app.replica == NULL || app.http == NULL ||
	    pgb_loop_attach(app.loop, app.master) == -1 ||
	    pgb_loop_attach(app.loop, app.replica) == -1 ||
	    (app.listener = evhttp_bind_socket_with_handle(app.http,
	    "127.0.0.1", (ev_uint16_t)port)) == NULL) {
		fprintf(stderr, "webapp: cannot start on port %d\n", port);
		return (1);
	}
	pgb_db_set_pool(app.master, pool, 5000, -1);
	pgb_db_set_pool(app.replica, pool, 5000, -1);
	pgb_db_set_role_wait(app.master, role_wait);	/* -1: the default */
	pgb_db_set_role_wait(app.replica, role_wait);
	evhttp_set_gencb(app.http, request_cb, &app);
	evhttp_set_allowed_methods(app.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	app.stop_timer = evtimer_new(app.base, stop_timer_cb, &app);
	sigterm = evsignal_new(app.base, SIGTERM, signal_cb, &app);
	sigint = evsignal_new(app.base, SIGINT, signal_cb, &app);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	printf("webapp listening on 127.0.0.1:%d\n", port);
	fflush(stdout);

	event_base_dispatch(app.base);

	/*
	 * Teardown in reverse order.  Requests left (the grace period ran
	 * out, or a second signal): freed hard, their transactions
	 * abandoned (rolled back by the server); no reply.  Their hr go
	 * with evhttp_free.
	 */
	while ((r = TAILQ_FIRST(&app.reqs)) != NULL)
		req_free(r);
	evhttp_free(app.http);
	pgb_loop_free(app.loop);
	pgb_db_free(app.master);
	pgb_db_free(app.replica);
	event_free(sigterm);
	event_free(sigint);
	if (app.stop_timer != NULL)
		event_free(app.stop_timer);
	event_base_free(app.base);
	free(app.conninfo);
	return (0);
}
