/*
 * it_daemon_detect.c - failures pgbeacond must detect in bounded time:
 * a frozen primary (every process SIGSTOPped), a blackholed one (the
 * fault relay forwards nothing and closes nothing), a replica promoted
 * while the old primary is frozen or partitioned, a postmaster stopped
 * while its backends work; and a reload that changes the conninfo,
 * which must replace the connections make-before-break.
 *
 * The deadlines are generous (tests never measure time: make bench
 * does).  Each test is built so that only the mechanism under test can
 * make it pass within them: max_fails is high, so counting failures
 * cannot; the connection check is off unless it is under test.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/daemon_util.h"
#include "../check_main.h"

/* Per-test state, built by the test, torn down by the checked fixture. */
static struct it_cluster	*cl;
static struct it_daemon		*dmn;
static struct it_relay		*relay;

static void
teardown(void)
{
	it_daemon_kill(dmn);
	dmn = NULL;
	it_relay_stop(relay);
	relay = NULL;
	it_cluster_destroy(cl);	/* thaws frozen nodes first */
	cl = NULL;
}

/* The default timings of pgbeacond (not it_config()'s fast ones), with
 * what a test adds. */
#define DEFAULT_TIMINGS							\
	"check_interval_ms = 500;\n"					\
	"fast_check_interval_ms = 25;\n"				\
	"connect_timeout_ms = 2000;\n"					\
	"query_timeout_ms = 1000;\n"					\
	"reconnect_max_ms = 5000;\n"

/* Starts the daemon on cl with node0 reached through the relay when
 * through_relay, and waits until node0 is master and node1 a replica.
 * Returns node0's port as the daemon knows it. */
static int
start_watching(bool through_relay, const char *extra)
{
	char		 h0[32], h1[32], *conf;
	const char	*hosts[2] = { h0, h1 };
	int		 p0;

	if (through_relay) {
		relay = it_relay_start(it_port(cl, 0));
		p0 = it_relay_port(relay);
	} else
		p0 = it_port(cl, 0);
	snprintf(h0, sizeof h0, "127.0.0.1:%d", p0);
	snprintf(h1, sizeof h1, "127.0.0.1:%d", it_port(cl, 1));
	conf = it_config_hosts(it_cluster_dir(cl), "main", hosts, 2, extra);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(it_daemon_socket(dmn),
	    "main", "master") == p0, ITD_STATE_MS), "node0 never master");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(it_daemon_socket(dmn), "main",
	    it_port(cl, 1), true, "replica"), ITD_STATE_MS),
	    "node1 never a live replica");
	return p0;
}

/* STATUS's last_ok_ms_ago of the host with port, or -1. */
static int64_t
last_ok_ago(const char *s, int port)
{
	json_object	*st = itd_status(s), *h;
	int64_t		 v = -1;

	h = itd_status_host(itd_status_cluster(st, "main"), port);
	if (h != NULL)
		v = itd_json_int(h, "last_ok_ms_ago");
	json_object_put(st);
	return v;
}

/* STATUS's error text of the host with port (caller frees), or NULL. */
static char *
host_error(const char *s, int port)
{
	json_object	*st = itd_status(s), *h;
	char		*e = NULL;

	h = itd_status_host(itd_status_cluster(st, "main"), port);
	if (h != NULL)
		e = strdup(itd_json_str(h, "error"));
	json_object_put(st);
	return e;
}

/* --- a frozen or blackholed primary is dead after one probe timeout ------ */

/*
 * max_fails = 50: before, a probe timeout was one failure of 50, each
 * later one a 2 s connect timeout, so the frozen primary stayed master
 * for minutes.  Now the first timeout is enough (check_interval_ms +
 * query_timeout_ms, 1.5 s, at worst).
 */
static void
primary_lost_without_fin(bool blackhole)
{
	const char	*s;
	int		 p0;
	int64_t		 t0;

	cl = it_cluster_create(1);
	p0 = start_watching(blackhole, DEFAULT_TIMINGS "max_fails = 50;\n"
	    "connect_check_interval_ms = 0;\n");
	s = it_daemon_socket(dmn);

	t0 = it_now_ms();
	if (blackhole)
		it_relay_set(relay, "blackhole");
	else
		it_freeze(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the %s primary is still master",
	    blackhole ? "blackholed" : "frozen");
	fprintf(stderr, "%s primary no longer named after %" PRId64 " ms\n",
	    blackhole ? "blackholed" : "frozen", it_now_ms() - t0);
	ck_assert(itd_host_is(s, "main", p0, false, "none"));
	ck_assert_int_eq(itd_resolve_port(s, "main", "replica"),
	    it_port(cl, 1));

	/* back: named again */
	if (blackhole)
		it_relay_set(relay, "pass");
	else
		it_thaw(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    p0, ITD_STATE_MS), "node0 never came back as master");
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}

START_TEST(test_frozen_primary_is_dead_after_one_probe_timeout)
{
	primary_lost_without_fin(false);
}
END_TEST

START_TEST(test_blackholed_primary_is_dead_after_one_probe_timeout)
{
	primary_lost_without_fin(true);
}
END_TEST

/* --- a replica promoted while the old primary is frozen or partitioned --- */

/*
 * check_interval_ms = 3000 and query_timeout_ms = 60000: the old primary
 * stays alive (its probe pending) for the whole test, and the replica's
 * regular probes are 3 s apart.  Once the primary's probe is late, the
 * replica must be probed fast: its last_ok_ms_ago stays under 1 s over
 * 2 s of samples, which 3 s apart probes cannot do.  Then the promoted
 * replica is named while the old primary is still unreachable.
 */
static void
promoted_while_primary_unreachable(bool blackhole)
{
	const char	*s;
	int64_t		 g0, t0, ago;
	int		 p0, p1 = 0;
	json_object	*st;
	char		 hp[64];

	cl = it_cluster_create(1);
	p0 = start_watching(blackhole, "check_interval_ms = 3000;\n"
	    "fast_check_interval_ms = 25;\nquery_timeout_ms = 60000;\n"
	    "max_fails = 50;\nconnect_check_interval_ms = 0;\n");
	s = it_daemon_socket(dmn);
	p1 = it_port(cl, 1);
	g0 = itd_generation(s, "main");

	if (blackhole)
		it_relay_set(relay, "blackhole");
	else
		it_freeze(cl, 0);
	/* node0's next probe is sent within 3 s and then goes unanswered */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(last_ok_ago(s, p0) > 3500, ITD_STATE_MS),
	    "node0's probe never became late");
	ck_assert_int_eq(itd_resolve_port(s, "main", "master"), p0);
	t0 = it_now_ms();
	while (it_now_ms() - t0 < 2000) {
		ago = last_ok_ago(s, p1);
		ITD_ASSERT(dmn, ago >= 0 && ago < 1000, "node1 not probed fast "
		    "while the primary's probe is late: last ok %" PRId64
		    " ms ago", ago);
		it_sleep_ms(50);
	}

	it_promote(cl, 1);
	t0 = it_now_ms();
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    p1, ITD_STATE_MS), "the promoted node1 never named");
	fprintf(stderr, "promoted replica named %" PRId64 " ms after the "
	    "promotion returned, old primary %s\n", it_now_ms() - t0,
	    blackhole ? "blackholed" : "frozen");
	/* the old primary was unreachable all along */
	ck_assert_int_ne(last_ok_ago(s, p0), -1);
	ck_assert_int_gt(last_ok_ago(s, p0), 3500);
	ck_assert(itd_host_is(s, "main", p0, true, "none") ||
	    itd_host_is(s, "main", p0, false, "none"));
	ck_assert_int_eq(itd_generation(s, "main"), g0 + 1);

	/* reachable again: a primary on a lower timeline, no role */
	if (blackhole)
		it_relay_set(relay, "pass");
	else
		it_thaw(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(last_ok_ago(s, p0) >= 0 &&
	    last_ok_ago(s, p0) < 1000, ITD_STATE_MS), "node0 never answered "
	    "again");
	st = itd_status(s);
	ck_assert_str_eq(itd_json_str(itd_status_cluster(st, "main"), "master"),
	    itd_hostport(hp, sizeof hp, p1));
	json_object_put(st);
	ck_assert(itd_host_is(s, "main", p0, true, "none"));
	ck_assert_int_eq(itd_resolve_port(s, "main", "master"), p1);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}

START_TEST(test_promoted_replica_named_while_old_primary_frozen)
{
	promoted_while_primary_unreachable(false);
}
END_TEST

START_TEST(test_promoted_replica_named_while_old_primary_partitioned)
{
	promoted_while_primary_unreachable(true);
}
END_TEST

/* --- the postmaster stopped, its backends alive --------------------------- */

START_TEST(test_stopped_postmaster_is_dead_by_connection_check)
{
	const char	*s;
	char		*e;
	int		 p0;

	cl = it_cluster_create(1);
	p0 = start_watching(false, "max_fails = 50;\n"
	    "connect_check_interval_ms = 500;\n");
	s = it_daemon_socket(dmn);

	it_freeze_postmaster(cl, 0);
	/* the backends answer: the daemon's probes keep working... */
	ck_assert_int_eq(itd_resolve_port(s, "main", "master"), p0);
	/* ... but nobody can connect, which the check finds */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "a primary nobody can connect to is "
	    "still master");
	e = host_error(s, p0);
	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e, "new connection got no answer") != NULL ||
	    strstr(e, "timeout") != NULL, "node0 error: %s", e);
	free(e);
	ck_assert_int_eq(itd_resolve_port(s, "main", "replica"),
	    it_port(cl, 1));

	it_thaw(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    p0, ITD_STATE_MS), "node0 never came back as master");
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* A server that answers the check with an error (here: the role's
 * connection limit) has a working postmaster: the host keeps its role. */
START_TEST(test_check_answered_with_an_error_keeps_the_host)
{
	const char	*s;
	char		*conf, *extra;
	int64_t		 g0;

	cl = it_cluster_create(1);
	ck_assert(it_sql_is(cl, 0, "CREATE ROLE limited LOGIN "
	    "CONNECTION LIMIT 1; GRANT pg_monitor TO limited; "
	    "GRANT EXECUTE ON FUNCTION pg_control_system() TO limited; "
	    "GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO limited",
	    ""));
	it_wait_streaming(cl, 0, 1);
	ck_assert_int_ge(asprintf(&extra, "connect_check_interval_ms = 200;\n"
	    "clusters = ( { name = \"main\"; hosts = ( \"127.0.0.1:%d\", "
	    "\"127.0.0.1:%d\" ); conninfo = \"user=limited dbname=postgres\";"
	    " } );\n", it_port(cl, 0), it_port(cl, 1)), 0);
	conf = it_config(cl, "main", extra);
	free(extra);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	s = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "node0 never master");
	g0 = itd_generation(s, "main");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_log_contains(dmn,
	    "connection check answered"), ITD_STATE_MS),
	    "no check was answered with the connection limit");
	ck_assert_int_eq(itd_resolve_port(s, "main", "master"), it_port(cl, 0));
	ck_assert_int_eq(itd_generation(s, "main"), g0);
	ck_assert(!itd_log_contains(dmn, "got no answer"));
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- a reload that changes the conninfo: make-before-break ---------------- */

START_TEST(test_conninfo_reload_never_answers_nohost)
{
	const char	*s;
	char		*conf, *reply;
	int64_t		 g0, deadline;
	long		 batches = 0, answers = 0;
	int		 fd, i, p0;

	cl = it_cluster_create(1);
	p0 = start_watching(false, NULL);
	s = it_daemon_socket(dmn);
	g0 = itd_generation(s, "main");
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);

	conf = it_config(cl, "main", NULL);
	{
		char *p = strstr(conf, "user=postgres dbname=postgres");
		char *fixed;

		ck_assert_ptr_nonnull(p);
		*p = '\0';
		ck_assert_int_ge(asprintf(&fixed, "%suser=postgres "
		    "dbname=postgres application_name=pgb_rotated%s", conf,
		    p + strlen("user=postgres dbname=postgres")), 0);
		free(conf);
		conf = fixed;
	}
	it_daemon_reload(dmn, conf);
	free(conf);

	/* pipelined RESOLVEs until both hosts use the new conninfo, and a
	 * while after */
	deadline = it_now_ms() + ITD_STATE_MS;
	for (;;) {
		bool done = it_sql_is(cl, 0, "SELECT count(*) FROM "
		    "pg_stat_activity WHERE application_name = 'pgb_rotated'",
		    "1") && it_sql_is(cl, 1, "SELECT count(*) FROM "
		    "pg_stat_activity WHERE application_name = 'pgb_rotated'",
		    "1");

		for (i = 0; i < 50; i++)
			ck_assert_int_eq(it_sock_send(fd, "RESOLVE main master"),
			    0);
		for (i = 0; i < 50; i++) {
			struct itd_answer a;

			reply = it_sock_readline(fd, ITD_REPLY_MS);
			ITD_ASSERT(dmn, itd_parse_answer(reply, &a),
			    "bad reply: %s", reply ? reply : "(none)");
			ITD_ASSERT(dmn, a.ok && a.port == p0 &&
			    (int64_t)a.generation == g0, "answer %ld during "
			    "the reload: %s", answers, reply);
			free(reply);
			answers++;
		}
		batches++;
		if (done && batches > 20)
			break;
		ITD_ASSERT(dmn, it_now_ms() < deadline, "the daemon never "
		    "reconnected with the new application_name");
	}
	fprintf(stderr, "%ld answers during the reload, all OK\n", answers);
	ck_assert(itd_log_contains(dmn, "now connected with the reloaded "
	    "conninfo"));
	ck_assert_int_eq(itd_generation(s, "main"), g0);
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

static Suite *
detect_suite(void)
{
	Suite	*s = suite_create("it_daemon_detect");
	TCase	*tc;

	tc = tcase_create("no_fin");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_frozen_primary_is_dead_after_one_probe_timeout);
	tcase_add_test(tc,
	    test_blackholed_primary_is_dead_after_one_probe_timeout);
	tcase_add_test(tc, test_promoted_replica_named_while_old_primary_frozen);
	tcase_add_test(tc,
	    test_promoted_replica_named_while_old_primary_partitioned);
	suite_add_tcase(s, tc);

	tc = tcase_create("connection_check");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_stopped_postmaster_is_dead_by_connection_check);
	tcase_add_test(tc, test_check_answered_with_an_error_keeps_the_host);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_conninfo_reload_never_answers_nohost);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(detect_suite()));
}
