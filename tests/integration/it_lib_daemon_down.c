/*
 * it_lib_daemon_down.c - the library rides out a restart of pgbeacond: a
 * request loop in each API (a thread on the blocking API, an event loop
 * on the event-driven one) across SIGTERM + restart and SIGKILL +
 * restart of the daemon, with 0 failed requests, because the default
 * hook keeps the daemon's last answer while the daemon cannot be
 * reached; and only for the bounded time pgb_db_set_stale_ttl sets.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=it_down"

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
setup(void)
{
	it_watched_start(&fx, 1);
	ck_assert(it_sql_is(fx.cluster, 0, "CREATE TABLE d (v int)", ""));
}

static void
teardown(void)
{
	it_watched_stop(&fx);
}

/* A request loop, in either API; counters written by its thread. */
struct stream {
	pgb_db		*db;		/* master */
	pgb_db		*rdb;		/* replica */
	int		 async;
	atomic_int	 stop;
	atomic_int	 nok;
	atomic_int	 nfail;
	char		 first_error[512];	/* of the first failure */
	/* event-driven */
	struct event_base *base;
	pgb_loop	*loop;
	struct event	*tick;
};

static void
stream_failed(struct stream *st, const char *what, const char *err)
{
	if (atomic_fetch_add(&st->nfail, 1) == 0)
		snprintf(st->first_error, sizeof st->first_error, "%s: %s",
		    what, err);
}

/* --- blocking: a write through the master db, a read through the replica
 * db, each in a context of its own ------------------------------------ */

static void
blocking_request(struct stream *st)
{
	pgb_ctx		*ctx;
	PGresult	*res;
	int		 ok;

	ctx = pgb_ctx_begin(0);
	res = pgb_exec(pgb_ctx_session(ctx, st->db),
	    "INSERT INTO d VALUES (1)");
	ok = res != NULL;
	if (!ok)
		stream_failed(st, "write",
		    pgb_session_error(pgb_ctx_session(ctx, st->db)));
	PQclear(res);
	if (ok && pgb_ctx_end(ctx, 200) == -1) {
		stream_failed(st, "commit", pgb_ctx_error(ctx));
		ok = 0;
	}
	pgb_ctx_free(ctx);
	if (ok) {
		ctx = pgb_ctx_begin(0);
		res = pgb_exec(pgb_ctx_session(ctx, st->rdb), "SELECT 1");
		if (res == NULL) {
			stream_failed(st, "read", pgb_session_error(
			    pgb_ctx_session(ctx, st->rdb)));
			ok = 0;
		}
		PQclear(res);
		pgb_ctx_free(ctx);
	}
	if (ok)
		atomic_fetch_add(&st->nok, 1);
	else
		it_sleep_ms(2);		/* do not spin */
}

/* --- event-driven: the same, chained from callbacks ------------------- */

static void	async_next(struct stream *st);

static void
async_read_done(pgb_actx *ctx, int rc, void *arg)
{
	struct stream	*st = arg;

	(void)ctx;
	if (rc == 0)
		atomic_fetch_add(&st->nok, 1);
	async_next(st);
}

static void
async_read_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct stream	*st = arg;

	if (res == NULL)
		stream_failed(st, "read", pgb_asession_error(s));
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
}

static void
async_read_fn(pgb_actx *ctx, void *arg)
{
	struct stream	*st = arg;

	if (pgb_aexec(pgb_actx_session(ctx, st->rdb), "SELECT 1",
	    async_read_cb, st) == -1) {
		stream_failed(st, "read", "not queued");
		pgb_actx_finish(ctx, -1);
	}
}

static void
async_write_done(pgb_actx *ctx, int rc, void *arg)
{
	struct stream	*st = arg;

	if (rc == -1) {
		if (atomic_load(&st->nfail) == 0)
			stream_failed(st, "commit", pgb_actx_error(ctx));
		async_next(st);
		return;
	}
	if (pgb_arun_in_new_ctx(st->loop, async_read_fn, st, async_read_done,
	    st) == -1) {
		stream_failed(st, "read", "out of memory");
		async_next(st);
	}
}

static void
async_write_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct stream	*st = arg;

	if (res == NULL)
		stream_failed(st, "write", pgb_asession_error(s));
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
}

static void
async_write_fn(pgb_actx *ctx, void *arg)
{
	struct stream	*st = arg;

	if (pgb_aexec(pgb_actx_session(ctx, st->db), "INSERT INTO d VALUES (1)",
	    async_write_cb, st) == -1) {
		stream_failed(st, "write", "not queued");
		pgb_actx_finish(ctx, -1);
	}
}

/* Starts the next request from the loop (a zero timer: no recursion). */
static void
async_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream	*st = arg;

	(void)fd;
	(void)what;
	if (atomic_load(&st->stop)) {
		event_base_loopbreak(st->base);
		return;
	}
	if (pgb_arun_in_new_ctx(st->loop, async_write_fn, st,
	    async_write_done, st) == -1) {
		stream_failed(st, "write", "out of memory");
		async_next(st);
	}
}

static void
async_next(struct stream *st)
{
	struct timeval	tv = { 0, 0 };

	evtimer_add(st->tick, &tv);
}

static void *
stream_main(void *arg)
{
	struct stream	*st = arg;

	if (!st->async) {
		while (!atomic_load(&st->stop))
			blocking_request(st);
		return (NULL);
	}
	st->base = event_base_new();
	st->loop = pgb_loop_new(st->base, fx.sock);
	st->tick = evtimer_new(st->base, async_tick_cb, st);
	if (st->base == NULL || st->loop == NULL || st->tick == NULL)
		abort();
	async_next(st);
	(void)event_base_dispatch(st->base);
	event_free(st->tick);
	pgb_loop_free(st->loop);
	event_base_free(st->base);
	return (NULL);
}

static void
stream_start(struct stream *st, pthread_t *th, int async, int ttl_ms)
{
	memset(st, 0, sizeof *st);
	st->async = async;
	st->db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	st->rdb = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(st->db);
	ck_assert_ptr_nonnull(st->rdb);
	pgb_db_set_pool(st->db, 4, 10000, 30000);
	pgb_db_set_pool(st->rdb, 4, 10000, 30000);
	pgb_db_set_stale_ttl(st->db, ttl_ms);
	pgb_db_set_stale_ttl(st->rdb, ttl_ms);
	/* A restarted daemon answers once it probed: no timing here. */
	pgb_db_set_role_wait(st->db, 60000);
	pgb_db_set_role_wait(st->rdb, 60000);
	ck_assert_int_eq(pthread_create(th, NULL, stream_main, st), 0);
	ck_assert_msg(IT_POLL_UNTIL(atomic_load(&st->nok) >= 20, 20000),
	    "stream did not start: %s", st->first_error);
}

/* Waits until n more requests succeeded. */
static void
stream_progress(struct stream *st, int n)
{
	int	nok = atomic_load(&st->nok);

	ck_assert_msg(IT_POLL_UNTIL(atomic_load(&st->nok) >= nok + n ||
	    atomic_load(&st->nfail) > 0, 30000) &&
	    atomic_load(&st->nfail) == 0, "%d failed requests, first: %s",
	    atomic_load(&st->nfail), st->first_error);
}

static void
stream_stop(struct stream *st, pthread_t th)
{
	atomic_store(&st->stop, 1);
	pthread_join(th, NULL);
	pgb_db_free(st->db);
	pgb_db_free(st->rdb);
}

/* The daemon's socket refuses or is gone. */
static bool
daemon_down(void)
{
	pgb_client	*cl;
	bool		 down;

	cl = pgb_client_new(fx.sock);
	ck_assert_ptr_nonnull(cl);
	down = pgb_client_ping(cl) == -1 &&
	    pgb_client_errcode(cl) == PGB_ERR_UNREACHABLE;
	pgb_client_free(cl);
	return (down);
}

/*
 * A request loop across a daemon restart: stopped with SIGTERM (kill 0)
 * or SIGKILL (kill 1); requests keep succeeding while it is down and
 * after it is back, none fails.
 */
static void
run_restart(int async, int kill9)
{
	struct stream	st;
	pgb_pool_stats	ps, rs;
	pthread_t	th;

	stream_start(&st, &th, async, 120000);
	if (kill9)
		it_daemon_kill(fx.daemon);
	else
		ck_assert_int_eq(it_daemon_stop(fx.daemon), 0);
	fx.daemon = NULL;
	ck_assert(daemon_down());
	stream_progress(&st, 50);	/* served while the daemon is down */
	/* The replica db asks again once its answer is recheck_ms old. */
	ck_assert(IT_POLL_UNTIL((pgb_db_stats(st.db, &ps),
	    pgb_db_stats(st.rdb, &rs), ps.stale >= 1 && rs.stale >= 1),
	    30000));
	ck_assert(daemon_down());
	ck_assert_msg(atomic_load(&st.nfail) == 0, "%d failed, first: %s",
	    atomic_load(&st.nfail), st.first_error);
	it_watched_daemon_start(&fx);
	stream_progress(&st, 50);
	stream_stop(&st, th);
	ck_assert_int_eq(atomic_load(&st.nfail), 0);
}

START_TEST(test_blocking_loop_across_daemon_sigterm_restart)
{
	run_restart(0, 0);
}
END_TEST

START_TEST(test_blocking_loop_across_daemon_sigkill_restart)
{
	run_restart(0, 1);
}
END_TEST

START_TEST(test_async_loop_across_daemon_sigterm_restart)
{
	run_restart(1, 0);
}
END_TEST

START_TEST(test_async_loop_across_daemon_sigkill_restart)
{
	run_restart(1, 1);
}
END_TEST

/* One blocking write; its session's error code (PGB_OK on success). */
static pgb_errcode
one_write(pgb_db *db)
{
	pgb_ctx		*ctx;
	PGresult	*res;
	pgb_errcode	 code;

	ctx = pgb_ctx_begin(0);
	res = pgb_exec(pgb_ctx_session(ctx, db), "INSERT INTO d VALUES (2)");
	code = res != NULL ? PGB_OK :
	    pgb_session_errcode(pgb_ctx_session(ctx, db));
	PQclear(res);
	if (res != NULL && pgb_ctx_end(ctx, 200) == -1)
		code = PGB_ERR_SQL;
	pgb_ctx_free(ctx);
	return (code);
}

/* With no kept answer allowed (TTL 0), a session fails at once. */
START_TEST(test_ttl_zero_fails_unreachable_while_daemon_down)
{
	pgb_db		*db;
	pgb_pool_stats	 ps;

	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_stale_ttl(db, 0);
	ck_assert_int_eq(one_write(db), PGB_OK);
	ck_assert_int_eq(it_daemon_stop(fx.daemon), 0);
	fx.daemon = NULL;
	ck_assert_int_eq(one_write(db), PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.stale, 0);
	pgb_db_free(db);
}
END_TEST

/*
 * Once the TTL has passed with the daemon still down, sessions fail with
 * PGB_ERR_UNREACHABLE (the kept answer is not used for ever).
 */
START_TEST(test_after_ttl_sessions_fail_unreachable)
{
	pgb_db		*db;
	pgb_pool_stats	 ps;
	pgb_errcode	 code = PGB_OK;

	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_stale_ttl(db, 300);
	ck_assert_int_eq(one_write(db), PGB_OK);
	it_daemon_kill(fx.daemon);
	fx.daemon = NULL;
	ck_assert(IT_POLL_UNTIL((code = one_write(db)) != PGB_OK, 30000));
	ck_assert_int_eq(code, PGB_ERR_UNREACHABLE);
	/* and it stays so */
	ck_assert_int_eq(one_write(db), PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_ge(ps.resolves, 2);
	pgb_db_free(db);
}
END_TEST

/* --- read-your-writes while the daemon is down: to the primary ---------- */

START_TEST(test_min_lsn_falls_back_to_primary_while_daemon_down)
{
	pgb_db		*db, *rdb;
	pgb_ctx		*ctx;
	PGresult	*res;
	pgb_pool_stats	 rs;

	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	rdb = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	ck_assert_ptr_nonnull(rdb);
	ck_assert_int_eq(one_write(db), PGB_OK);
	it_daemon_kill(fx.daemon);
	fx.daemon = NULL;
	ctx = pgb_ctx_begin(0);
	ck_assert_int_eq(pgb_ctx_set_lsn(ctx, "0/1"), 0);
	res = pgb_exec(pgb_ctx_session(ctx, rdb),
	    "SELECT inet_server_port()");
	ck_assert_msg(res != NULL, "%s",
	    pgb_session_error(pgb_ctx_session(ctx, rdb)));
	ck_assert_int_eq(atoi(PQgetvalue(res, 0, 0)),
	    it_port(fx.cluster, 0));
	PQclear(res);
	pgb_ctx_free(ctx);
	pgb_db_stats(rdb, &rs);
	ck_assert_uint_ge(rs.stale, 1);
	pgb_db_free(rdb);
	pgb_db_free(db);
}
END_TEST

/*
 * While the daemon is down the kept primary is demoted (the failover
 * happened meanwhile and the old primary came back as a standby): the
 * read-only error is taken as a role change, not as the application's
 * error; the request fails as the daemon being unreachable, the host is
 * not used again, and once the daemon is back requests go to the new
 * primary.
 */
START_TEST(test_read_only_kept_host_is_a_role_change)
{
	pgb_db		*db;
	pgb_pool_stats	 ps;
	pgb_ctx		*ctx;
	PGresult	*res;

	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_stale_ttl(db, 120000);
	ck_assert_int_eq(one_write(db), PGB_OK);
	it_daemon_kill(fx.daemon);
	fx.daemon = NULL;
	it_stop(fx.cluster, 0, "fast");
	it_promote(fx.cluster, 1);
	it_reattach(fx.cluster, 0, 1);
	ck_assert(it_sql_is(fx.cluster, 0, "SELECT pg_is_in_recovery()",
	    "t"));
	ck_assert_int_eq(one_write(db), PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.role_lost, 1);
	ck_assert_int_eq(one_write(db), PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.role_lost, 1);	/* not tried again */
	fx.daemon = it_daemon_start(fx.config, it_cluster_dir(fx.cluster));
	ck_assert(IT_POLL_UNTIL(it_resolves_to(fx.sock, "main", "master",
	    it_port(fx.cluster, 1)), 30000));
	ctx = pgb_ctx_begin(0);
	res = pgb_exec(pgb_ctx_session(ctx, db),
	    "INSERT INTO d VALUES (3) RETURNING inet_server_port()");
	ck_assert_msg(res != NULL, "%s",
	    pgb_session_error(pgb_ctx_session(ctx, db)));
	ck_assert_int_eq(atoi(PQgetvalue(res, 0, 0)),
	    it_port(fx.cluster, 1));
	PQclear(res);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(db);
}
END_TEST

/* --- the same on the event-driven API -------------------------------- */

struct awrite {
	int		 done;
	int		 port;
	pgb_errcode	 code;
};

static void
awrite_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct awrite	*w = arg;

	if (res != NULL)
		w->port = atoi(PQgetvalue(res, 0, 0));
	w->code = res != NULL ? PGB_OK : pgb_asession_errcode(s);
	w->done = 1;
}

/* One write (in a transaction, abandoned) through db on loop: its error
 * code, and in *port the server's. */
static pgb_errcode
aone_write(struct event_base *base, pgb_loop *loop, pgb_db *db, int *port)
{
	struct awrite	 w;
	pgb_asession	*s;

	memset(&w, 0, sizeof w);
	s = pgb_asession_new(loop, db, 0);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_aexec(s, "INSERT INTO d VALUES (4)"
	    " RETURNING inet_server_port()", awrite_cb, &w), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    w.done), 60000));
	pgb_asession_free(s);
	*port = w.port;
	return (w.code);
}

START_TEST(test_async_read_only_kept_host_is_a_role_change)
{
	struct event_base	*base;
	pgb_loop		*loop;
	pgb_db			*db;
	pgb_pool_stats		 ps;
	int			 port;

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_stale_ttl(db, 120000);
	ck_assert_int_eq(aone_write(base, loop, db, &port), PGB_OK);
	ck_assert_int_eq(port, it_port(fx.cluster, 0));
	it_daemon_kill(fx.daemon);
	fx.daemon = NULL;
	it_stop(fx.cluster, 0, "fast");
	it_promote(fx.cluster, 1);
	it_reattach(fx.cluster, 0, 1);
	ck_assert(it_sql_is(fx.cluster, 0, "SELECT pg_is_in_recovery()",
	    "t"));
	ck_assert_int_eq(aone_write(base, loop, db, &port),
	    PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.role_lost, 1);
	ck_assert_int_eq(aone_write(base, loop, db, &port),
	    PGB_ERR_UNREACHABLE);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.role_lost, 1);	/* not tried again */
	fx.daemon = it_daemon_start(fx.config, it_cluster_dir(fx.cluster));
	ck_assert(IT_POLL_UNTIL(it_resolves_to(fx.sock, "main", "master",
	    it_port(fx.cluster, 1)), 30000));
	ck_assert_int_eq(aone_write(base, loop, db, &port), PGB_OK);
	ck_assert_int_eq(port, it_port(fx.cluster, 1));
	pgb_loop_free(loop);
	pgb_db_free(db);
	event_base_free(base);
}
END_TEST

static Suite *
lib_daemon_down_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_daemon_down");
	tc = tcase_create("blocking");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_blocking_loop_across_daemon_sigterm_restart);
	tcase_add_test(tc, test_blocking_loop_across_daemon_sigkill_restart);
	tcase_add_test(tc, test_ttl_zero_fails_unreachable_while_daemon_down);
	tcase_add_test(tc, test_after_ttl_sessions_fail_unreachable);
	tcase_add_test(tc, test_min_lsn_falls_back_to_primary_while_daemon_down);
	tcase_add_test(tc, test_read_only_kept_host_is_a_role_change);
	suite_add_tcase(s, tc);
	tc = tcase_create("async");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_async_loop_across_daemon_sigterm_restart);
	tcase_add_test(tc, test_async_loop_across_daemon_sigkill_restart);
	tcase_add_test(tc, test_async_read_only_kept_host_is_a_role_change);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_daemon_down_suite()));
}
