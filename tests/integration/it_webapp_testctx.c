/*
 * it_webapp_testctx.c - the example service's handlers tested the way
 * the seed's transactional tests do it (set_test_context plus
 * put_savepoint_session_in_ctx): every request's context gets, before
 * its route runs, a savepoint session on the test's own transaction.
 * The routes run unchanged, over real HTTP, with their commits,
 * rollbacks and atomic blocks acting on savepoints; the test sees their
 * rows in its transaction, and nothing is ever committed.
 *
 * The service's code is compiled into this test (webapp.c is included,
 * its main renamed) so that request_cb, the routes and the test share
 * one event_base and the test's connection.
 */
#define main webapp_main
int	webapp_main(int argc, char **argv);
#include "../../examples/webapp/webapp.c"
#undef main

#include <check.h>

#include "support/itest.h"
#include "support/lib_util.h"
#include "support/webapp_util.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=testctx"

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
suite_setup(void)
{
	it_watched_start(&fx, 1);
	itl_primary_sql(&fx, "CREATE TABLE items (tag text NOT NULL, val"
	    " text, at timestamptz NOT NULL DEFAULT now())");
}

static void
suite_teardown(void)
{
	it_watched_stop(&fx);
}

/* The service's state, as its main makes it, on a port of its own. */
static struct app	 app;
static int		 port;

static void
setup(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;

	memset(&app, 0, sizeof app);
	TAILQ_INIT(&app.reqs);
	app.conninfo = strdup(CONNINFO);
	app.base = event_base_new();
	ck_assert_ptr_nonnull(app.base);
	app.loop = pgb_loop_new(app.base, fx.sock);
	app.master = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	app.replica = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	app.http = evhttp_new(app.base);
	ck_assert(app.loop != NULL && app.master != NULL &&
	    app.replica != NULL && app.http != NULL);
	ck_assert_int_eq(pgb_loop_attach(app.loop, app.master), 0);
	app.listener = evhttp_bind_socket_with_handle(app.http, "127.0.0.1",
	    0);
	ck_assert_ptr_nonnull(app.listener);
	ck_assert_int_eq(getsockname(evhttp_bound_socket_get_fd(app.listener),
	    (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	evhttp_set_gencb(app.http, request_cb, &app);
}

static void
teardown(void)
{
	evhttp_free(app.http);
	pgb_loop_free(app.loop);
	pgb_db_free(app.master);
	pgb_db_free(app.replica);
	event_base_free(app.base);
	free(app.conninfo);
}

/* The test's middleware override: the request's savepoint session. */
static int
put_savepoint_cb(pgb_actx *ctx, void *arg)
{
	return (pgb_actx_put_savepoint_session(ctx, arg) != NULL ? 0 : -1);
}

/* GET path from the service, running its loop until the answer. */
static void
get(const char *path, struct wa_resp *r)
{
	struct wa_batch	batch = { app.base, 1 };
	struct wa_one	one;

	memset(r, 0, sizeof *r);
	r->status = -1;
	memset(&one, 0, sizeof one);
	one.batch = &batch;
	one.resp = r;
	one.path = path;
	one.port = port;
	wa_send(&one);
	event_base_dispatch(app.base);
	evhttp_connection_free(one.conn);
	ck_assert_msg(r->status > 0, "%s: no answer", path);
}

/* count(*) of tag's rows, through s (the test's transaction). */
static int
rows_in(pgb_session *s, const char *tag)
{
	const char	*p[1] = { tag };
	PGresult	*res;
	int		 n;

	res = pgb_exec_params(s, "SELECT count(*) FROM items WHERE tag = $1",
	    1, NULL, p, NULL, NULL, 0);
	ck_assert_msg(res != NULL, "%s", pgb_session_error(s));
	n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return (n);
}

/* count(*) of tag's rows committed on the primary. */
static int
rows_committed(const char *tag)
{
	char	sql[160], *v;
	int	n;

	snprintf(sql, sizeof sql, "SELECT count(*) FROM items WHERE tag ="
	    " '%s'", tag);
	v = it_sql(fx.cluster, 0, sql);
	ck_assert_msg(v != NULL, "%s", it_last_error());
	n = atoi(v);
	free(v);
	return (n);
}

/*
 * The seed's examples that work with the request's context session (the
 * others open sessions of their own, which the seed tests only
 * non-transactionally): the status and the rows production commits.
 */
static const struct tc_case {
	const char	*route;
	int		 status;
	int		 rows;
} tc_cases[] = {
	{ "simple_usage", 200, 1 },
	{ "atomic_usage", 200, 1 },
	{ "atomic_and_previous_transaction", 500, 5 },
	{ "early_commit", 200, 4 },
	{ "early_rollback", 200, 0 },
	{ "early_connection_close", 200, 2 },
	{ "auto_rollback_by_exception", 500, 0 },
	{ "auto_rollback_by_status_code", 500, 0 },
	{ "manual_commit", 200, 4 },
	{ "manual_rollback", 200, 0 },
	{ "simple_with_exception", 500, 0 },
	{ "simple_with_http_exception", 500, 0 },
};
#define NCASES	((int)(sizeof tc_cases / sizeof tc_cases[0]))

START_TEST(test_handlers_in_test_context_are_seen_by_the_test_and_never_committed)
{
	pgb_session	*outer;
	struct wa_resp	 r;
	char		 path[1024], tag[NCASES][64];
	int		 i, n;

	/* The seed's rollback_session: the test's transaction. */
	outer = pgb_session_new(app.master, 0);
	ck_assert_ptr_nonnull(outer);
	ck_assert_int_eq(rows_in(outer, "none"), 0);	/* begins it */
	app.test_ctx = put_savepoint_cb;
	app.test_ctx_arg = outer;
	for (i = 0; i < NCASES; i++) {
		snprintf(tag[i], sizeof tag[i], "tc_%s", tc_cases[i].route);
		snprintf(path, sizeof path, "/%s?tag=%s", tc_cases[i].route,
		    tag[i]);
		get(path, &r);
		ck_assert_msg(r.status == tc_cases[i].status, "%s: status %d,"
		    " expected %d: %s", path, r.status, tc_cases[i].status,
		    r.body);
		n = rows_in(outer, tag[i]);
		ck_assert_msg(n == tc_cases[i].rows, "%s: %d rows in the test's"
		    " transaction, expected %d", path, n, tc_cases[i].rows);
		ck_assert_int_eq(rows_committed(tag[i]), 0);
	}
	/* Every request ended: its sessions gave the connection back. */
	ck_assert_int_eq(pgb_session_in_transaction(outer), 1);
	app.test_ctx = NULL;
	pgb_session_free(outer);		/* the test rolls back */
	for (i = 0; i < NCASES; i++)
		ck_assert_int_eq(rows_committed(tag[i]), 0);

	/* The same service without the override commits for real. */
	get("/simple_usage?tag=tc_after", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(rows_committed("tc_after"), 1);
}
END_TEST

static void
stmt_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct wa_resp	*r = arg;

	r->status = res != NULL ? 0 : (int)pgb_asession_errcode(s);
	snprintf(r->body, sizeof r->body, "%s", pgb_asession_error(s));
}

/*
 * A savepoint session needs the test's transaction open, and says so
 * instead of blocking or running outside it.
 */
START_TEST(test_savepoint_session_without_outer_transaction_is_refused)
{
	pgb_session	*outer;
	pgb_asession	*s;
	struct wa_resp	 r;

	outer = pgb_session_new(app.master, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_null(pgb_asession_new_savepoint(app.loop, outer));
	pgb_session_free(outer);

	/* Not begun yet: the request's context cannot get one. */
	outer = pgb_session_new(app.master, 0);
	ck_assert_ptr_null(pgb_asession_new_savepoint(app.loop, outer));
	ck_assert_msg(strstr(pgb_session_error(outer), "no transaction open")
	    != NULL, "%s", pgb_session_error(outer));
	app.test_ctx = put_savepoint_cb;
	app.test_ctx_arg = outer;
	get("/simple_usage?tag=tc_refused", &r);
	ck_assert_int_eq(r.status, 503);
	app.test_ctx = NULL;

	/* Ended under it: its next statement fails. */
	ck_assert_int_eq(rows_in(outer, "none"), 0);
	s = pgb_asession_new_savepoint(app.loop, outer);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_session_rollback(outer), 0);
	memset(&r, 0, sizeof r);
	r.status = -1;
	ck_assert_int_eq(pgb_aexec(s, "SELECT 1", stmt_cb, &r), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(app.base, EVLOOP_NONBLOCK),
	    r.status != -1), 5000));
	ck_assert_int_eq(r.status, PGB_ERR_STATE);
	ck_assert_msg(strstr(r.body, "no transaction open") != NULL, "%s",
	    r.body);
	pgb_asession_free(s);
	pgb_session_free(outer);
	ck_assert_int_eq(rows_committed("tc_refused"), 0);
}
END_TEST

static Suite *
testctx_suite(void)
{
	Suite	*s = suite_create("webapp_testctx");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 180);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    test_handlers_in_test_context_are_seen_by_the_test_and_never_committed);
	tcase_add_test(tc,
	    test_savepoint_session_without_outer_transaction_is_refused);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(testctx_suite()));
}
