/*
 * it_webapp.c - the example service (examples/webapp) driven through
 * HTTP by a real client, against a real primary + replica and a real
 * pgbeacond; the database state is checked afterwards with psql.
 *
 * One cluster, one daemon and one service serve the suite (made in the
 * parent before the tests fork); every test uses its own tag.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/spawn.h"
#include "support/webapp_util.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=webapp"

static struct it_watched	 fx;	/* cluster, daemon, socket */
static struct wa_proc		 app;

static void
suite_setup(void)
{
	it_watched_start(&fx, 1);
	wa_start(&app, fx.sock, it_cluster_dir(fx.cluster), CONNINFO, 20);
}

static void
suite_teardown(void)
{
	int	st;

	st = wa_stop(&app);
	if (st != 0)
		fprintf(stderr, "webapp exited with %d\n", st);
	it_watched_stop(&fx);
}

/* The vals stored under tag on the primary, in order, "," separated. */
static char *
vals(const char *tag)
{
	char	 sql[256], *r;

	snprintf(sql, sizeof sql, "SELECT coalesce(string_agg(val, ','"
	    " ORDER BY val), '') FROM items WHERE tag = '%s'", tag);
	r = it_sql(fx.cluster, 0, sql);
	ck_assert_msg(r != NULL, "%s", it_last_error());
	return (r);
}

static void
assert_vals(const char *tag, const char *expected)
{
	char	*v = vals(tag);

	ck_assert_msg(strcmp(v, expected) == 0, "tag %s: rows [%s], expected"
	    " [%s]", tag, v, expected);
	free(v);
}

static void
get(const char *path, struct wa_resp *r)
{
	wa_get(app.port, path, NULL, r);
	ck_assert_msg(r->status > 0, "%s: no answer", path);
}

static void
assert_no_idle_in_transaction(void)
{
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 0, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'webapp' AND state"
	    " LIKE 'idle in transaction%'", "0"), 5000));
}

/* --- routes --------------------------------------------------------------- */

START_TEST(test_simple_route_commits_on_the_master)
{
	struct wa_resp	r;
	char		want[64];

	get("/simple?tag=simple1", &r);
	ck_assert_int_eq(r.status, 200);
	/* a plain-text body, said so */
	ck_assert_str_eq(r.content_type, "text/plain; charset=utf-8");
	snprintf(want, sizeof want, "ok simple 127.0.0.1:%d master",
	    it_port(fx.cluster, 0));
	ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%s", r.body);
	assert_vals("simple1", "simple");
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_atomic_route_commits_its_block)
{
	struct wa_resp	r;

	get("/atomic?tag=atomic1", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("atomic1", "inside");
}
END_TEST

START_TEST(test_atomic_with_open_transaction_follows_each_mode)
{
	struct wa_resp	r;

	/* commit first: the earlier write is committed, then the block. */
	get("/atomic_prev?tag=ap_commit&mode=commit", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("ap_commit", "before,inside");
	/* roll back first: the earlier write is gone. */
	get("/atomic_prev?tag=ap_rollback&mode=rollback", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("ap_rollback", "inside");
	/* append: the block joins the open transaction and commits it. */
	get("/atomic_prev?tag=ap_append&mode=append", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("ap_append", "before,inside");
	/* refuse: 409, and the request's rollback drops the earlier write. */
	get("/atomic_prev?tag=ap_refuse&mode=refuse", &r);
	ck_assert_int_eq(r.status, 409);
	ck_assert_msg(strstr(r.body, "already open") != NULL, "%s", r.body);
	assert_vals("ap_refuse", "");
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_failed_statement_rolls_the_request_back)
{
	struct wa_resp	r;

	get("/rollback_error?tag=rberr", &r);
	ck_assert_int_eq(r.status, 500);
	ck_assert_msg(strstr(r.body, "division by zero") != NULL, "%s", r.body);
	assert_vals("rberr", "");
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_status_422_rolls_the_request_back)
{
	struct wa_resp	r;

	get("/rollback_status?tag=rbstatus", &r);
	ck_assert_int_eq(r.status, 422);
	assert_vals("rbstatus", "");
}
END_TEST

START_TEST(test_early_commit_survives_a_failing_request)
{
	struct wa_resp	r;

	get("/early_commit_then_fail?tag=ecommit", &r);
	ck_assert_int_eq(r.status, 500);
	assert_vals("ecommit", "first");
}
END_TEST

START_TEST(test_early_rollback_drops_only_the_first_write)
{
	struct wa_resp	r;

	get("/early_rollback_then_write?tag=erollback", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("erollback", "second");
}
END_TEST

START_TEST(test_early_close_rolls_back_and_next_write_uses_a_new_transaction)
{
	struct wa_resp	r;

	get("/early_close_then_write?tag=eclose", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("eclose", "second");
	assert_no_idle_in_transaction();
}
END_TEST

/*
 * The seed's examples, one route each: the status of the answer and the
 * rows the request left committed, as the seed's handler does.
 */
static const struct seed_case {
	const char	*route;
	int		 status;
	int		 rows;
	const char	*why;
} seed_cases[] = {
	{ "simple_usage", 200, 1, "one insert, committed at the end" },
	{ "atomic_usage", 200, 1, "an atomic block with one insert" },
	{ "atomic_and_previous_transaction", 500, 5, "commit: 2, rollback: 1,"
	    " append: 2, failed append: 0, raise: the request fails, 0" },
	{ "early_commit", 200, 4, "commit, commit and close, then two inserts"
	    " committed at the end" },
	{ "early_rollback", 200, 0, "both inserts rolled back" },
	{ "early_connection_close", 200, 2, "an atomic block, close, then an"
	    " insert on a new connection" },
	{ "concurrent_queries", 200, 5, "six units, the failing one rolled"
	    " back" },
	{ "auto_rollback_by_exception", 500, 0, "a failed statement" },
	{ "auto_rollback_by_status_code", 500, 0, "answered 500" },
	{ "manual_commit", 200, 4, "as early_commit" },
	{ "manual_rollback", 200, 0, "as early_rollback" },
	{ "multiple_session_usage", 200, 5, "five units, each committing" },
	{ "simple_with_exception", 500, 0, "the handler fails" },
	{ "simple_with_http_exception", 500, 0, "answered 500" },
};

START_TEST(test_seed_example_routes_answer_and_commit_as_the_seed)
{
	const struct seed_case	*c = &seed_cases[_i];
	struct wa_resp		 r;
	char			 path[128], tag[64], sql[160], want[16];

	snprintf(tag, sizeof tag, "seed_%s", c->route);
	snprintf(path, sizeof path, "/%s?tag=%s", c->route, tag);
	get(path, &r);
	ck_assert_msg(r.status == c->status, "%s: status %d, expected %d: %s",
	    c->route, r.status, c->status, r.body);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM items WHERE tag ="
	    " '%s'", tag);
	snprintf(want, sizeof want, "%d", c->rows);
	ck_assert_msg(it_sql_is(fx.cluster, 0, sql, want), "%s: expected %d"
	    " rows (%s), got %s", c->route, c->rows, c->why, vals(tag));
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_read_your_writes_through_the_lsn_cookie)
{
	struct wa_resp	w, r;
	char		want[64];
	char		*v;

	/* The replica stops replaying: it cannot have the write. */
	v = it_sql(fx.cluster, 1, "SELECT pg_wal_replay_pause()");
	ck_assert_ptr_nonnull(v);
	free(v);
	get("/write?tag=ryw", &w);
	ck_assert_int_eq(w.status, 200);
	ck_assert_msg(strncmp(w.cookie, "pgb_lsn=", 8) == 0, "cookie [%s]",
	    w.cookie);
	/* Without the cookie: the replica, which has not got it. */
	get("/read?tag=ryw", &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(want, sizeof want, "0 127.0.0.1:%d replica",
	    it_port(fx.cluster, 1));
	ck_assert_msg(strcmp(r.body, want) == 0 || strncmp(r.body, want,
	    strlen(want)) == 0, "%s", r.body);
	/* With it: a host that has it, the primary. */
	wa_get(app.port, "/read?tag=ryw", w.cookie, &r);
	ck_assert_int_eq(r.status, 200);
	snprintf(want, sizeof want, "1 127.0.0.1:%d master",
	    it_port(fx.cluster, 0));
	ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%s", r.body);
	/* Replay again: the replica serves the cookie holder. */
	v = it_sql(fx.cluster, 1, "SELECT pg_wal_replay_resume()");
	ck_assert_ptr_nonnull(v);
	free(v);
	snprintf(want, sizeof want, "1 127.0.0.1:%d replica",
	    it_port(fx.cluster, 1));
	ck_assert(IT_POLL_UNTIL((wa_get(app.port, "/read?tag=ryw", w.cookie,
	    &r), strncmp(r.body, want, strlen(want)) == 0), 10000));
}
END_TEST

/* --- concurrency ---------------------------------------------------------- */

START_TEST(test_concurrent_units_in_one_request_overlap)
{
	struct wa_resp	r;
	int64_t		t;

	get("/health", &r);
	t = it_now_ms();
	get("/concurrent?tag=conc&n=3&ms=1000", &r);
	t = it_now_ms() - t;
	ck_assert_msg(r.status == 200, "%d %s", r.status, r.body);
	/* Three 1 s statements one after the other would take 3 s. */
	ck_assert_msg(t >= 1000 && t < 1900, "took %lld ms", (long long)t);
	assert_vals("conc", "unit0,unit1,unit2");
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_two_slow_requests_take_the_time_of_one)
{
	const char	*paths[2] = { "/slow?tag=slowa&ms=1000",
			    "/slow?tag=slowb&ms=1000" };
	struct wa_resp	r[2];
	int64_t		t;

	t = it_now_ms();
	wa_get_many(app.port, paths, NULL, r, 2, 0);
	t = it_now_ms() - t;
	ck_assert_int_eq(r[0].status, 200);
	ck_assert_int_eq(r[1].status, 200);
	ck_assert_msg(t >= 1000 && t < 1900, "took %lld ms", (long long)t);
	assert_vals("slowa", "slow");
	assert_vals("slowb", "slow");
}
END_TEST

START_TEST(test_fast_request_is_not_delayed_by_a_slow_one)
{
	const char	*paths[2] = { "/slow?tag=slowc&ms=1500",
			    "/simple?tag=fastc" };
	struct wa_resp	r[2];

	wa_get_many(app.port, paths, NULL, r, 2, 0);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert_int_eq(r[1].status, 200);
	ck_assert_msg(r[1].t_done - r[1].t_sent < 700, "fast request took"
	    " %lld ms", (long long)(r[1].t_done - r[1].t_sent));
	ck_assert(r[1].t_done < r[0].t_done);
}
END_TEST

/* --- cancellation ----------------------------------------------------------- */

START_TEST(test_ending_a_request_cancels_its_running_statement)
{
	struct wa_resp	r;

	get("/cancel?tag=cancel1&ms=30000", &r);
	/* The end cancelled the statement: an error, seconds not 30 s. */
	ck_assert_msg(r.status == 500, "%d %s", r.status, r.body);
	ck_assert_msg(r.t_done - r.t_sent < 5000, "took %lld ms",
	    (long long)(r.t_done - r.t_sent));
	ck_assert_msg(strstr(r.body, "canceled") != NULL, "%s", r.body);
	/* two messages, two lines */
	ck_assert_msg(strstr(r.body, "ran\nstatement: ") != NULL, "%s",
	    r.body);
	/* Nothing committed, and the server stopped sleeping. */
	assert_vals("cancel1", "");
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 0, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE query LIKE '%pg_sleep($3%' AND"
	    " application_name = 'webapp'", "0"), 10000));
	/* The service goes on serving. */
	get("/simple?tag=aftercancel", &r);
	ck_assert_int_eq(r.status, 200);
	assert_vals("aftercancel", "simple");
}
END_TEST

/* --- the process ------------------------------------------------------------- */

START_TEST(test_service_exits_zero_on_sigterm_after_serving)
{
	struct wa_proc	p;
	struct wa_resp	r;

	wa_start(&p, fx.sock, it_cluster_dir(fx.cluster), CONNINFO, 4);
	wa_get(p.port, "/simple?tag=sigterm", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	wa_get(p.port, "/read?tag=sigterm", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(wa_stop(&p), 0);
	assert_vals("sigterm", "simple");
}
END_TEST

/* True when n statements of the service's sleep are running. */
static bool
sleeps_running(int n)
{
	char	want[16];

	snprintf(want, sizeof want, "%d", n);
	return (it_sql_is(fx.cluster, 0, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE application_name = 'webapp' AND state = 'active' AND"
	    " query LIKE '%pg_sleep($3%'", want));
}

/* No connection of the service is running a statement. */
static bool
service_quiet(void)
{
	return (it_sql_is(fx.cluster, 0, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE application_name = 'webapp' AND state <> 'idle'", "0"));
}

/*
 * The client sends path, waits until its nsleep statements run, and
 * hangs up.  The service must end the request rolled back (its
 * statements cancelled, nothing committed), send nothing, free it, and
 * go on serving; then exit 0 on SIGTERM (under ASan: no use after free,
 * no leak).
 */
static void
hang_up_mid_request(const char *path, int nsleep, const char *tag)
{
	struct wa_proc	p;
	struct wa_resp	r;
	int		fd;

	wa_start(&p, fx.sock, it_cluster_dir(fx.cluster), CONNINFO, 4);
	fd = wa_raw_send(p.port, path);
	ck_assert_msg(IT_POLL_UNTIL(sleeps_running(nsleep), 10000),
	    "%s: the statements did not start", path);
	close(fd);
	/* Cancelled at once: the 3 s statements do not end on their own. */
	ck_assert_msg(IT_POLL_UNTIL(sleeps_running(0), 2000),
	    "%s: still running after the client left", path);
	ck_assert(IT_POLL_UNTIL(service_quiet(), 10000));
	wa_get(p.port, "/simple?tag=after_hang_up", NULL, &r);
	ck_assert_msg(r.status == 200, "after the hang-up: %d %s (see %s)",
	    r.status, r.body, p.log);
	assert_vals(tag, "");
	assert_no_idle_in_transaction();
	ck_assert_msg(wa_stop(&p) == 0, "webapp did not exit 0; see %s",
	    p.log);
}

START_TEST(test_client_hang_up_mid_request_rolls_it_back)
{
	hang_up_mid_request("/slow?tag=hangup1&ms=3000", 1, "hangup1");
}
END_TEST

START_TEST(test_client_hang_up_mid_concurrent_rolls_back_every_unit)
{
	hang_up_mid_request("/concurrent?tag=hangup2&n=3&ms=3000", 3,
	    "hangup2");
}
END_TEST

/*
 * SIGTERM while requests run: they are ended rolled back (their clients
 * get the connection closed, no answer), freed, and the service exits 0
 * without waiting for the statements.
 */
START_TEST(test_sigterm_mid_requests_rolls_them_back_and_exits_zero)
{
	struct wa_proc	p;
	char		buf[512];
	int		fd1, fd2, n;

	wa_start(&p, fx.sock, it_cluster_dir(fx.cluster), CONNINFO, 4);
	fd1 = wa_raw_send(p.port, "/slow?tag=term1&ms=3000");
	fd2 = wa_raw_send(p.port, "/concurrent?tag=term2&n=2&ms=3000");
	ck_assert(IT_POLL_UNTIL(sleeps_running(3), 10000));
	ck_assert_msg(wa_stop(&p) == 0, "webapp did not exit 0; see %s",
	    p.log);
	n = wa_raw_read(fd1, buf, sizeof buf, 5000);
	ck_assert_msg(n == 0, "/slow got [%s]", buf);
	n = wa_raw_read(fd2, buf, sizeof buf, 5000);
	ck_assert_msg(n == 0, "/concurrent got [%s]", buf);
	ck_assert(IT_POLL_UNTIL(service_quiet(), 15000));
	assert_vals("term1", "");
	assert_vals("term2", "");
	assert_no_idle_in_transaction();
}
END_TEST

START_TEST(test_unknown_route_is_404)
{
	struct wa_resp	r;

	get("/nope", &r);
	ck_assert_int_eq(r.status, 404);
}
END_TEST

/* --- options ------------------------------------------------------------- */

START_TEST(test_bad_role_wait_is_refused_with_a_clear_error)
{
	static const char *const bad[] = { "abc", "-1", "5x", "", "3600001" };
	const char	*argv[4];
	char		 bin[512], *out;
	size_t		 i;

	wa_bin(bin, sizeof bin);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		argv[0] = bin;
		argv[1] = "-w";
		argv[2] = bad[i];
		argv[3] = NULL;
		ck_assert_int_eq(it_run_capture(argv, &out), 2);
		ck_assert_msg(strstr(out, "the role wait must be 0 to 3600000"
		    " ms") != NULL, "-w '%s': %s", bad[i], out);
		free(out);
	}
}
END_TEST

static Suite *
webapp_suite(void)
{
	Suite	*s = suite_create("webapp");
	TCase	*tc;

	tc = tcase_create("routes");
	tcase_set_timeout(tc, 180);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_test(tc, test_simple_route_commits_on_the_master);
	tcase_add_test(tc, test_atomic_route_commits_its_block);
	tcase_add_test(tc, test_atomic_with_open_transaction_follows_each_mode);
	tcase_add_test(tc, test_failed_statement_rolls_the_request_back);
	tcase_add_test(tc, test_status_422_rolls_the_request_back);
	tcase_add_test(tc, test_early_commit_survives_a_failing_request);
	tcase_add_test(tc, test_early_rollback_drops_only_the_first_write);
	tcase_add_test(tc,
	    test_early_close_rolls_back_and_next_write_uses_a_new_transaction);
	tcase_add_loop_test(tc,
	    test_seed_example_routes_answer_and_commit_as_the_seed, 0,
	    (int)(sizeof seed_cases / sizeof seed_cases[0]));
	tcase_add_test(tc, test_read_your_writes_through_the_lsn_cookie);
	tcase_add_test(tc, test_concurrent_units_in_one_request_overlap);
	tcase_add_test(tc, test_two_slow_requests_take_the_time_of_one);
	tcase_add_test(tc, test_fast_request_is_not_delayed_by_a_slow_one);
	tcase_add_test(tc, test_ending_a_request_cancels_its_running_statement);
	tcase_add_test(tc, test_service_exits_zero_on_sigterm_after_serving);
	tcase_add_test(tc, test_unknown_route_is_404);
	tcase_add_test(tc, test_client_hang_up_mid_request_rolls_it_back);
	tcase_add_test(tc,
	    test_client_hang_up_mid_concurrent_rolls_back_every_unit);
	tcase_add_test(tc,
	    test_sigterm_mid_requests_rolls_them_back_and_exits_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_test(tc, test_bad_role_wait_is_refused_with_a_clear_error);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(webapp_suite()));
}
