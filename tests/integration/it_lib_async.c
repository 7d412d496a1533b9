/*
 * it_lib_async.c - the event-driven API of libpgbeacon on its own (the
 * example service's tests cover the request workflows): non-blocking
 * RESOLVE, answers reused while subscribed, queued pool checkout and its
 * timeout, freeing a context with a statement in flight, no daemon.
 * Against a real primary + replica and a real pgbeacond.
 */
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/lib_util.h"
#include "../check_main.h"

static struct it_watched	 fx;	/* cluster, daemon, socket */

#define CONNINFO(app)	"user=postgres dbname=postgres application_name=" app

static void
suite_setup(void)
{
	it_watched_start(&fx, 1);
}

static void
suite_teardown(void)
{
	it_watched_stop(&fx);
}

static struct event_base	*base;
static pgb_loop			*loop;

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
}

static void
teardown(void)
{
	pgb_loop_free(loop);
	event_base_free(base);
}

/* Runs the loop until *flag is set (deadline ms); true when it was. */
#define RUN_UNTIL(cond, ms) \
	IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK), (cond)), (ms))

/* --- resolve and subscription ---------------------------------------------- */

struct got {
	int		 calls;
	int		 port;
	pgb_errcode	 code;
	int		 rc;		/* of an end callback */
	int64_t		 at;
	char		 error[512];
};

static void
resolve_cb(pgb_loop *l, const pgb_resolved *r, pgb_errcode code,
    const char *error, void *arg)
{
	struct got	*g = arg;

	(void)l;
	g->calls++;
	g->code = code;
	g->port = r != NULL ? r->port : 0;
	snprintf(g->error, sizeof g->error, "%s", error);
}

START_TEST(test_resolve_answers_through_the_callback_without_blocking)
{
	struct got	g = { 0 }, bad = { 0 };

	ck_assert_int_eq(pgb_loop_resolve(loop, "main", "master", NULL,
	    resolve_cb, &g), 0);
	ck_assert_int_eq(pgb_loop_resolve(loop, "nope", "master", NULL,
	    resolve_cb, &bad), 0);
	/* Nothing is called from inside the request. */
	ck_assert_int_eq(g.calls, 0);
	ck_assert(RUN_UNTIL(g.calls == 1 && bad.calls == 1, 5000));
	ck_assert_int_eq(g.code, PGB_OK);
	ck_assert_int_eq(g.port, it_port(fx.cluster, 0));
	ck_assert_int_eq(bad.code, PGB_ERR_NOCLUSTER);
	ck_assert(RUN_UNTIL(pgb_loop_watching(loop), 5000));
}
END_TEST

/* Role names longer than an answer's role field are asked for too. */
START_TEST(test_resolve_takes_the_longest_role_names)
{
	struct got	g = { 0 };

	ck_assert_int_eq(pgb_loop_resolve(loop, "main",
	    "sync_by_time_and_bytes", "max_lag_ms=60000", resolve_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 5000));
	ck_assert_msg(g.code == PGB_OK || g.code == PGB_ERR_NOHOST, "%d %s",
	    g.code, g.error);
	/* A role that cannot be one token is still refused at once. */
	ck_assert_int_eq(pgb_loop_resolve(loop, "main", "sync by time",
	    NULL, resolve_cb, &g), -1);
	ck_assert_ptr_nonnull(strstr(pgb_loop_error(loop), "RESOLVE"));
}
END_TEST

static void
res_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->at = it_now_ms();
	g->code = pgb_asession_errcode(s);
	snprintf(g->error, sizeof g->error, "%s", pgb_asession_error(s));
	g->port = res != NULL ? pgb_asession_port(s) : -1;
}

static void
end_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct got	*g = arg;

	(void)ctx;
	g->calls++;
	g->rc = rc;
	g->at = it_now_ms();
}

START_TEST(test_master_answer_is_reused_while_subscribed)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_reuse"), "main",
			    "master", fx.sock);
	pgb_pool_stats	 st;
	struct got	 g = { 0 }, e = { 0 };
	pgb_actx	*ctx;
	int		 i;

	ck_assert(RUN_UNTIL(pgb_loop_watching(loop), 5000));
	for (i = 0; i < 3; i++) {
		memset(&g, 0, sizeof g);
		memset(&e, 0, sizeof e);
		ctx = pgb_actx_new(loop);
		ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db),
		    "SELECT 1", res_cb, &g), 0);
		ck_assert(RUN_UNTIL(g.calls == 1, 5000));
		ck_assert_msg(g.port == it_port(fx.cluster, 0), "%s", g.error);
		ck_assert_int_eq(pgb_actx_end(ctx, 200, end_cb, &e), 0);
		ck_assert(RUN_UNTIL(e.calls == 1, 5000));
		ck_assert_int_eq(e.rc, 0);
		pgb_actx_free(ctx);
	}
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.resolves, 1);
	ck_assert_int_eq(st.opened, 1);
	ck_assert_int_eq(st.reused, 2);
	ck_assert_int_eq(st.busy, 0);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

/* --- the pool ---------------------------------------------------------------- */

/*
 * A db whose cluster name cannot be sent (a newline in it) fails its
 * statements with PGB_ERR_ARG; it does not put a second line on the
 * shared connection to the daemon, whose extra reply would go to the
 * next request.
 */
START_TEST(test_unsendable_cluster_name_is_refused_not_sent)
{
	pgb_db		*bad = pgb_db_new(CONNINFO("it_async_badname"),
			    "main\nPING", "master", fx.sock);
	pgb_db		*good = pgb_db_new(CONNINFO("it_async_goodname"),
			    "main", "master", fx.sock);
	pgb_asession	*sb = pgb_asession_new(loop, bad, 0);
	pgb_asession	*sg = pgb_asession_new(loop, good, 0);
	struct got	 gb = { 0 }, gg = { 0 };

	ck_assert_int_eq(pgb_aexec(sb, "SELECT 1", res_cb, &gb), 0);
	ck_assert_int_eq(pgb_aexec(sg, "SELECT 1", res_cb, &gg), 0);
	ck_assert(RUN_UNTIL(gb.calls == 1 && gg.calls == 1, 5000));
	ck_assert_msg(gb.code == PGB_ERR_ARG, "%d %s", gb.code, gb.error);
	ck_assert_int_eq(gb.port, -1);
	ck_assert_msg(gg.port == it_port(fx.cluster, 0), "%s", gg.error);
	pgb_asession_free(sb);
	pgb_asession_free(sg);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(bad);
	pgb_db_free(good);
}
END_TEST

START_TEST(test_queued_checkout_is_served_when_a_connection_frees)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_queue"), "main",
			    "master", fx.sock);
	pgb_actx	*a = pgb_actx_new(loop), *b = pgb_actx_new(loop);
	struct got	 ga = { 0 }, gb = { 0 }, ea = { 0 }, eb = { 0 };

	pgb_db_set_pool(db, 1, 5000, -1);
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(a, db),
	    "SELECT pg_sleep(0.3)", res_cb, &ga), 0);
	ck_assert(RUN_UNTIL(ga.calls == 1, 5000));
	/* a holds the only connection (its transaction is open). */
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(b, db), "SELECT 2",
	    res_cb, &gb), 0);
	ck_assert(!RUN_UNTIL(gb.calls == 1, 300));
	ck_assert_int_eq(pgb_actx_end(a, 200, end_cb, &ea), 0);
	ck_assert(RUN_UNTIL(gb.calls == 1, 5000));
	ck_assert_msg(gb.port == it_port(fx.cluster, 0), "%s", gb.error);
	ck_assert(ea.calls == 1 && ea.at <= gb.at);
	ck_assert_int_eq(pgb_actx_end(b, 200, end_cb, &eb), 0);
	ck_assert(RUN_UNTIL(eb.calls == 1, 5000));
	pgb_actx_free(a);
	pgb_actx_free(b);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

/* A binary parameter is copied by its length: without one, refused. */
START_TEST(test_binary_parameter_without_length_is_refused)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_binarg"), "main",
			    "master", fx.sock);
	pgb_asession	*s = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	static const char bytes[2] = { 'a', 'b' };	/* no NUL after them */
	const char	*vals[1] = { bytes };
	const int	 fmts[1] = { 1 }, lens[1] = { 2 };
	struct got	 g = { 0 };

	ck_assert_int_eq(pgb_aexec_params(s, "SELECT length($1::bytea)", 1,
	    NULL, vals, NULL, fmts, 0, res_cb, &g), -1);
	ck_assert_int_eq(pgb_asession_errcode(s), PGB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(pgb_asession_error(s), "$1"));
	ck_assert_ptr_nonnull(strstr(pgb_asession_error(s), "main master"));
	ck_assert(!RUN_UNTIL(g.calls > 0, 200));
	/* With its length it runs. */
	ck_assert_int_eq(pgb_aexec_params(s, "SELECT length($1::bytea)", 1,
	    NULL, vals, lens, fmts, 0, res_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 5000));
	ck_assert_msg(g.port == it_port(fx.cluster, 0), "%s", g.error);
	pgb_asession_free(s);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

START_TEST(test_queued_checkout_times_out_with_pool_timeout)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_timeout"), "main",
			    "master", fx.sock);
	pgb_actx	*a = pgb_actx_new(loop), *b = pgb_actx_new(loop);
	struct got	 ga = { 0 }, gb = { 0 };
	int64_t		 t;

	pgb_db_set_pool(db, 1, 400, -1);
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(a, db), "SELECT 1",
	    res_cb, &ga), 0);
	ck_assert(RUN_UNTIL(ga.calls == 1, 5000));
	t = it_now_ms();
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(b, db), "SELECT 2",
	    res_cb, &gb), 0);
	ck_assert(RUN_UNTIL(gb.calls == 1, 5000));
	ck_assert_int_eq(gb.code, PGB_ERR_POOL_TIMEOUT);
	ck_assert_int_eq(gb.port, -1);
	ck_assert_msg(gb.at - t >= 350 && gb.at - t < 2000, "%lld ms",
	    (long long)(gb.at - t));
	ck_assert_msg(strstr(gb.error, "main master") != NULL, "%s", gb.error);
	pgb_actx_free(a);
	pgb_actx_free(b);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

/* --- cancellation and errors -------------------------------------------------- */

START_TEST(test_freeing_a_context_mid_statement_calls_back_once)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_free"), "main",
			    "master", fx.sock);
	pgb_actx	*ctx = pgb_actx_new(loop);
	struct got	 g = { 0 }, g2 = { 0 }, e = { 0 };
	pgb_asession	*s = pgb_actx_session(ctx, db);

	ck_assert_int_eq(pgb_aexec(s, "CREATE TEMP TABLE t (i int);"
	    " SELECT pg_sleep(30)", res_cb, &g), 0);
	ck_assert_int_eq(pgb_aexec(s, "SELECT 3", res_cb, &g2), 0);
	ck_assert_int_eq(pgb_actx_end(ctx, 200, end_cb, &e), 0);
	pgb_actx_free(ctx);	/* before the end could even start */
	/* Every pending callback ran once, during the free. */
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.code, PGB_ERR_CANCELED);
	ck_assert_int_eq(g2.calls, 1);
	ck_assert_int_eq(e.calls, 1);
	ck_assert_int_eq(e.rc, -1);
	/* Nothing more comes, and the server is not left sleeping. */
	ck_assert(!RUN_UNTIL(g.calls > 1 || g2.calls > 1 || e.calls > 1, 300));
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 0, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'it_async_free'",
	    "0"), 10000));
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

START_TEST(test_ending_mid_statement_cancels_it_on_the_server)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_end"), "main",
			    "master", fx.sock);
	pgb_actx	*ctx = pgb_actx_new(loop);
	struct got	 g = { 0 }, e = { 0 };
	int64_t		 t;

	ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db),
	    "SELECT pg_sleep(30)", res_cb, &g), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    it_sql_is(fx.cluster, 0, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE application_name = 'it_async_end' AND state = 'active'",
	    "1")), 10000));
	t = it_now_ms();
	ck_assert_int_eq(pgb_actx_end(ctx, 200, end_cb, &e), 0);
	ck_assert(RUN_UNTIL(e.calls == 1, 5000));
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.code, PGB_ERR_CANCELED);
	ck_assert_int_eq(e.rc, -1);
	ck_assert_msg(strstr(pgb_actx_error(ctx), "canceled") != NULL, "%s",
	    pgb_actx_error(ctx));
	ck_assert(it_now_ms() - t < 2000);
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 0, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'it_async_end'", "0"),
	    10000));
	pgb_actx_free(ctx);
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

START_TEST(test_without_daemon_each_statement_fails_once)
{
	pgb_loop	*l2 = pgb_loop_new(base, "/nonexistent/pgbeacon.sock");
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_nod"), "main",
			    "master", "/nonexistent/pgbeacon.sock");
	pgb_actx	*ctx = pgb_actx_new(l2);
	struct got	 g = { 0 }, g2 = { 0 };

	ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db), "SELECT 1",
	    res_cb, &g), 0);
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db), "SELECT 2",
	    res_cb, &g2), 0);
	ck_assert(RUN_UNTIL(g.calls == 1 && g2.calls == 1, 5000));
	ck_assert(!RUN_UNTIL(g.calls > 1 || g2.calls > 1, 200));
	ck_assert_int_eq(g.code, PGB_ERR_UNREACHABLE);
	ck_assert_msg(strstr(g.error, "not reachable") != NULL, "%s", g.error);
	ck_assert_int_eq(pgb_loop_watching(l2), 0);
	pgb_actx_free(ctx);
	pgb_loop_free(l2);
	pgb_db_free(db);
}
END_TEST

/* --- the shared library ------------------------------------------------------ */

/* --- atomic blocks ------------------------------------------------------------ */

static void
done_cb(pgb_asession *s, int rc, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->rc = rc;
	g->code = pgb_asession_errcode(s);
	snprintf(g->error, sizeof g->error, "%s", pgb_asession_error(s));
}

/* Runs sql on s and waits; 0 when it worked, -1 when it failed. */
static int
a_exec(pgb_asession *s, const char *sql)
{
	struct got	g = { 0 };

	ck_assert_int_eq(pgb_aexec(s, sql, res_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 10000));
	return (g.port == -1 ? -1 : 0);
}

static void
a_insert(pgb_asession *s, const char *v)
{
	char	sql[128];

	snprintf(sql, sizeof sql, "INSERT INTO t_aatomic VALUES ('%s')", v);
	ck_assert_msg(a_exec(s, sql) == 0, "%s: %s", sql,
	    pgb_asession_error(s));
}

/* pgb_aatomic_begin (end: 0) or _end (end: 1, ok) and waits; its rc. */
static int
a_atomic(pgb_asession *s, int end, int arg, pgb_errcode *code)
{
	struct got	g = { 0 };

	if (end)
		ck_assert_int_eq(pgb_aatomic_end(s, arg, done_cb, &g), 0);
	else
		ck_assert_int_eq(pgb_aatomic_begin(s, (pgb_atomic_mode)arg,
		    done_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 10000));
	if (code != NULL)
		*code = g.code;
	return (g.rc);
}

/*
 * The seed's atomic_and_previous_transaction on the event-driven API:
 * an insert left open, then a block in each mode.  "append" commits the
 * open transaction with the block (3a, 3b stay although the request
 * ends with 500) and rolls it back with a failed block (4a, 4b go).
 */
START_TEST(test_aatomic_and_previous_transaction_as_the_seed)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_atomic"), "main",
			    "master", fx.sock);
	pgb_actx	*ctx = pgb_actx_new(loop);
	pgb_asession	*s = pgb_actx_session(ctx, db);
	struct got	 e = { 0 };
	pgb_errcode	 code;
	char		*r;

	r = it_sql(fx.cluster, 0, "SET client_min_messages TO warning;"
	    " DROP TABLE IF EXISTS t_aatomic; CREATE TABLE t_aatomic (v text)");
	ck_assert_msg(r != NULL, "%s", it_last_error());
	free(r);
	a_insert(s, "1a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_COMMIT_FIRST, NULL), 0);
	a_insert(s, "1b");
	ck_assert_int_eq(a_atomic(s, 1, 1, NULL), 0);
	a_insert(s, "2a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_ROLLBACK_FIRST, NULL), 0);
	a_insert(s, "2b");
	ck_assert_int_eq(a_atomic(s, 1, 1, NULL), 0);
	a_insert(s, "3a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_APPEND, NULL), 0);
	a_insert(s, "3b");
	ck_assert_int_eq(a_atomic(s, 1, 1, NULL), 0);
	ck_assert_int_eq(pgb_asession_in_transaction(s), 0);
	ck_assert(it_sql_is(fx.cluster, 0, "SELECT string_agg(v, ','"
	    " ORDER BY v) FROM t_aatomic", "1a,1b,2b,3a,3b"));
	a_insert(s, "4a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_APPEND, NULL), 0);
	a_insert(s, "4b");
	ck_assert_int_eq(a_exec(s, "SELECT 1/0"), -1);
	ck_assert_int_eq(a_atomic(s, 1, 0, NULL), -1);
	ck_assert_int_eq(pgb_asession_in_transaction(s), 0);
	a_insert(s, "5a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_REFUSE, &code), -1);
	ck_assert_int_eq(code, PGB_ERR_STATE);
	ck_assert_int_eq(pgb_actx_end(ctx, 500, end_cb, &e), 0);
	ck_assert(RUN_UNTIL(e.calls == 1, 10000));
	ck_assert_int_eq(e.rc, 0);
	pgb_actx_free(ctx);
	ck_assert(it_sql_is(fx.cluster, 0, "SELECT string_agg(v, ','"
	    " ORDER BY v) FROM t_aatomic", "1a,1b,2b,3a,3b"));
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

/* --- test contexts --------------------------------------------------------- */

/* One cell of sql on the blocking session s (owned by the caller). */
#define outer_value(s, sql)	itl_session_value((s), (sql))

/*
 * Event-driven code under test on a savepoint session of the test's
 * blocking transaction: its early commit keeps its row in the test's
 * transaction, its failed statement and rollback drop only their own,
 * the context's end releases the savepoint; the rows are seen by the
 * test and committed nowhere.  get/put/pop hand sessions in and out.
 */
START_TEST(test_asavepoint_session_runs_inside_the_test_transaction)
{
	pgb_db		*db = pgb_db_new(CONNINFO("it_async_sp"), "main",
			    "master", fx.sock);
	pgb_session	*outer = pgb_session_new(db, 0);
	pgb_actx	*ctx = pgb_actx_new(loop);
	pgb_asession	*s, *own;
	struct got	 e = { 0 };
	char		*v, *r;
	const char	*rows = "SELECT coalesce(string_agg(v, ',' ORDER BY v),"
			    " '') FROM t_aatomic";

	r = it_sql(fx.cluster, 0, "SET client_min_messages TO warning;"
	    " DROP TABLE IF EXISTS t_aatomic; CREATE TABLE t_aatomic (v text)");
	ck_assert_msg(r != NULL, "%s", it_last_error());
	free(r);
	v = outer_value(outer, "SELECT 1");		/* begins it */
	free(v);
	ck_assert_ptr_null(pgb_actx_get_session(ctx, db));
	s = pgb_actx_put_savepoint_session(ctx, outer);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(pgb_actx_get_session(ctx, db), s);
	ck_assert_ptr_eq(pgb_actx_session(ctx, db), s);

	a_insert(s, "a");
	ck_assert_int_eq(a_atomic(s, 0, PGB_ATOMIC_COMMIT_FIRST, NULL), 0);
	a_insert(s, "b");
	ck_assert_int_eq(a_exec(s, "SELECT 1/0"), -1);
	ck_assert_int_eq(a_atomic(s, 1, 0, NULL), -1);	/* b rolled back */
	a_insert(s, "c");
	ck_assert_int_eq(pgb_actx_end(ctx, 200, end_cb, &e), 0);
	ck_assert(RUN_UNTIL(e.calls == 1, 10000));
	ck_assert_msg(e.rc == 0, "%s", pgb_actx_error(ctx));
	ck_assert_ptr_null(pgb_actx_pop_session(ctx, db));	/* ended */
	pgb_actx_free(ctx);
	v = outer_value(outer, rows);
	ck_assert_str_eq(v, "a,c");
	free(v);
	ck_assert(it_sql_is(fx.cluster, 0, rows, ""));

	/* pop and put: a session of one's own, then back in a context. */
	ctx = pgb_actx_new(loop);
	own = pgb_asession_new_savepoint(loop, outer);
	ck_assert_ptr_nonnull(own);
	ck_assert_int_eq(pgb_actx_put_session(ctx, own), 0);
	ck_assert_int_eq(pgb_actx_put_session(ctx, own), -1);	/* owned */
	a_insert(own, "d");
	ck_assert_ptr_eq(pgb_actx_pop_session(ctx, db), own);
	ck_assert_ptr_null(pgb_actx_get_session(ctx, db));
	memset(&e, 0, sizeof e);
	ck_assert_int_eq(pgb_actx_end(ctx, 200, end_cb, &e), 0);
	ck_assert(RUN_UNTIL(e.calls == 1, 10000));
	pgb_actx_free(ctx);
	/* own was out of the context: its savepoint is still open. */
	ck_assert_int_eq(pgb_asession_in_transaction(own), 1);
	ck_assert_int_eq(a_atomic(own, 1, 0, NULL), -1);	/* d dropped */
	pgb_asession_free(own);
	v = outer_value(outer, rows);
	ck_assert_str_eq(v, "a,c");
	free(v);

	pgb_session_free(outer);		/* the test rolls back */
	ck_assert(it_sql_is(fx.cluster, 0, rows, ""));
	pgb_loop_free(loop);
	loop = NULL;
	pgb_db_free(db);
}
END_TEST

/* The test utilities are in version node PGBEACON_1.2. */
START_TEST(test_test_utilities_are_in_version_node_1_2)
{
	static const char *const syms[] = { "pgb_session_new_savepoint",
	    "pgb_ctx_get_session", "pgb_ctx_put_session",
	    "pgb_ctx_pop_session", "pgb_ctx_put_savepoint_session",
	    "pgb_asession_new_savepoint", "pgb_actx_get_session",
	    "pgb_actx_put_session", "pgb_actx_pop_session",
	    "pgb_actx_put_savepoint_session", NULL };
	const char	*build = getenv("BUILD");
	char		 path[512];
	void		*h;
	int		 i;

	snprintf(path, sizeof path, "%s/libpgbeacon.so.1",
	    build != NULL && *build != '\0' ? build : "build");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(h != NULL, "%s: %s", path, dlerror());
	for (i = 0; syms[i] != NULL; i++)
		ck_assert_msg(dlvsym(h, syms[i], "PGBEACON_1.2") != NULL,
		    "%s not in PGBEACON_1.2", syms[i]);
	dlclose(h);
}
END_TEST

/*
 * Every function of the event-driven API is in version node PGBEACON_1.1
 * of libpgbeacon.so.1, so that a program using it refuses to load against
 * a library without it instead of failing at its first call.
 */
START_TEST(test_event_api_is_in_version_node_1_1)
{
	static const char *const syms[] = { "pgb_loop_new", "pgb_loop_free",
	    "pgb_loop_set_event_cb", "pgb_loop_resolve", "pgb_actx_new",
	    "pgb_aexec", NULL };
	const char	*build = getenv("BUILD");
	char		 path[512];
	void		*h;
	int		 i;

	snprintf(path, sizeof path, "%s/libpgbeacon.so.1",
	    build != NULL && *build != '\0' ? build : "build");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(h != NULL, "%s: %s", path, dlerror());
	for (i = 0; syms[i] != NULL; i++)
		ck_assert_msg(dlvsym(h, syms[i], "PGBEACON_1.1") != NULL,
		    "%s not in PGBEACON_1.1", syms[i]);
	ck_assert_ptr_nonnull(dlvsym(h, "pgb_db_new", "PGBEACON_1"));
	dlclose(h);
}
END_TEST

static Suite *
async_suite(void)
{
	Suite	*s = suite_create("lib_async");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    test_resolve_answers_through_the_callback_without_blocking);
	tcase_add_test(tc, test_master_answer_is_reused_while_subscribed);
	tcase_add_test(tc, test_resolve_takes_the_longest_role_names);
	tcase_add_test(tc, test_unsendable_cluster_name_is_refused_not_sent);
	tcase_add_test(tc, test_queued_checkout_is_served_when_a_connection_frees);
	tcase_add_test(tc, test_queued_checkout_times_out_with_pool_timeout);
	tcase_add_test(tc, test_binary_parameter_without_length_is_refused);
	tcase_add_test(tc, test_event_api_is_in_version_node_1_1);
	tcase_add_test(tc, test_aatomic_and_previous_transaction_as_the_seed);
	tcase_add_test(tc, test_asavepoint_session_runs_inside_the_test_transaction);
	tcase_add_test(tc, test_test_utilities_are_in_version_node_1_2);
	tcase_add_test(tc, test_freeing_a_context_mid_statement_calls_back_once);
	tcase_add_test(tc, test_ending_mid_statement_cancels_it_on_the_server);
	tcase_add_test(tc, test_without_daemon_each_statement_fails_once);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(async_suite()));
}
