/*
 * it_daemon_failover.c - pgbeacond while the cluster changes under it:
 * the primary stopped or killed and a replica promoted, a replica
 * stopped and back, the old primary back un-rewound beside the new one,
 * every host down and back.
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

static void
teardown(void)
{
	it_daemon_kill(dmn);
	dmn = NULL;
	it_cluster_destroy(cl);
	cl = NULL;
}

/* A cluster of node0 + nreplicas watched as "main", settled: node0
 * master, every replica a live replica. */
static const char *
start_settled(int nreplicas)
{
	const char	*s;
	char		*conf;
	int		 i;

	cl = it_cluster_create(nreplicas);
	conf = it_config(cl, "main", NULL);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	s = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "master never resolved to node0");
	for (i = 1; i <= nreplicas; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main",
		    it_port(cl, i), true, "replica"), ITD_STATE_MS),
		    "node%d never became a live replica", i);
	return s;
}

/* Parses "EVENT main generation=<n> master=<m> replicas=<r>"; false when
 * malformed. */
static bool
parse_event(const char *line, uint64_t *gen, char *master, size_t mlen)
{
	char	 m[128], r[256];
	int	 n = 0;

	if (line == NULL || sscanf(line, "EVENT main generation=%" SCNu64
	    " master=%127s replicas=%255s%n", gen, m, r, &n) != 3 ||
	    line[n] != '\0')
		return false;
	snprintf(master, mlen, "%s", m);
	return true;
}

/*
 * The next pushed line on fd that is not a change of the replicas alone
 * (an event of generation last: the primary did not change), or NULL
 * when none comes in ms.
 */
static char *
next_master_event(int fd, uint64_t last, int ms)
{
	uint64_t g;
	char	 m[128], *line;

	while ((line = it_sock_readline(fd, ms)) != NULL) {
		if (!parse_event(line, &g, m, sizeof m) || g != last)
			return line;
		free(line);
	}
	return NULL;
}

/* Reads the next change of primary pushed on fd (after generation last)
 * and checks it is the expected event; returns its generation. */
static uint64_t
expect_event(int fd, const char *master, uint64_t last)
{
	uint64_t g = 0;
	char	 m[128], *line;

	line = next_master_event(fd, last, ITD_STATE_MS);
	ITD_ASSERT(dmn, line != NULL, "no EVENT master=%s pushed", master);
	ITD_ASSERT(dmn, parse_event(line, &g, m, sizeof m),
	    "malformed event: %s", line);
	ITD_ASSERT(dmn, strcmp(m, master) == 0, "expected master=%s, got: %s",
	    master, line);
	free(line);
	return g;
}

/* A WATCH subscriber on main. */
static int
watch_main(const char *s)
{
	char	*reply;
	int	 fd;

	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	reply = it_sock_request(fd, "WATCH main", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(reply, "OK watching");
	free(reply);
	return fd;
}

/* --- the primary stopped, a replica promoted ------------------------------- */

START_TEST(test_promote_reports_new_primary_and_one_event_per_change)
{
	const char	*s;
	struct itd_answer a;
	char		 hp1[64], *line;
	int64_t		 g0;
	uint64_t	 g1, g2;
	int		 w, fd, i;

	s = start_settled(2);
	g0 = itd_generation(s, "main");
	ck_assert_int_ge(g0, 1);
	w = watch_main(s);
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);

	it_stop(cl, 0, "fast");
	/* the stop has returned: node0 is never named again */
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve_fd(fd, "main", "master", &a));
		ITD_ASSERT(dmn, !a.ok || a.port != it_port(cl, 0),
		    "answer %d after the stop names node0 (generation %"
		    PRIu64 ")", i, a.generation);
	}

	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	ck_assert(itd_resolve_fd(fd, "main", "master", &a) && a.ok);
	ck_assert_str_eq(a.role, "master");

	/* the subscriber saw exactly: none, then node1 */
	g1 = expect_event(w, "none", (uint64_t)g0);
	g2 = expect_event(w, itd_hostport(hp1, sizeof hp1, it_port(cl, 1)),
	    g1);
	ck_assert_uint_eq(g1, (uint64_t)g0 + 1);
	ck_assert_uint_eq(g2, g1 + 1);
	ck_assert_uint_eq(a.generation, g2);
	line = next_master_event(w, g2, 1500);	/* absence, not a wait */
	ITD_ASSERT(dmn, line == NULL, "unexpected extra push: %s", line);
	ck_assert_int_eq(itd_generation(s, "main"), (int64_t)g2);
	ck_assert(itd_host_is(s, "main", it_port(cl, 0), false, "none"));

	it_sock_close(fd);
	it_sock_close(w);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- the primary killed, a replica promoted ------------------------------- */

START_TEST(test_killed_primary_then_promote_reports_new_primary)
{
	const char	*s;
	struct itd_answer a;
	int64_t		 g0;
	char		 hp[64];
	json_object	*st, *c;

	s = start_settled(2);
	g0 = itd_generation(s, "main");

	it_stop(cl, 0, "immediate");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the killed primary is still master");
	ck_assert(itd_host_is(s, "main", it_port(cl, 0), false, "none"));

	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	ck_assert(itd_resolve(s, "main", "master", &a) && a.ok);
	ck_assert_str_eq(a.role, "master");
	ck_assert_int_eq((int64_t)a.generation, g0 + 2);

	st = itd_status(s);
	c = itd_status_cluster(st, "main");
	ck_assert_str_eq(itd_json_str(c, "master"),
	    itd_hostport(hp, sizeof hp, it_port(cl, 1)));
	ck_assert_int_eq(itd_json_int(itd_status_host(c, it_port(cl, 1)),
	    "timeline"), 2);
	json_object_put(st);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- a replica stopped and back ----------------------------------------------- */

START_TEST(test_stopped_replica_is_never_resolved_and_comes_back)
{
	const char	*s;
	struct itd_answer a;
	int64_t		 g0;
	bool		 seen2;
	int		 fd, i;

	s = start_settled(2);
	g0 = itd_generation(s, "main");

	it_stop(cl, 2, "fast");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main", it_port(cl, 2),
	    false, NULL), ITD_STATE_MS), "stopped node2 still alive");
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve_fd(fd, "main", "replica", &a) && a.ok);
		ITD_ASSERT(dmn, a.port == it_port(cl, 1), "answer %d: port %d, "
		    "not node1", i, a.port);
		ck_assert_str_eq(a.role, "replica");
	}
	ck_assert(itd_resolve_fd(fd, "main", "master", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 0));

	it_start(cl, 2);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main", it_port(cl, 2),
	    true, "replica"), ITD_STATE_MS), "node2 never came back");
	seen2 = false;
	for (i = 0; i < 20 && !seen2; i++) {
		ck_assert(itd_resolve_fd(fd, "main", "replica", &a) && a.ok);
		seen2 = a.port == it_port(cl, 2);
	}
	ck_assert_msg(seen2, "node2 is back but never resolved as a replica");
	/* replicas coming and going do not change who is primary */
	ck_assert_int_eq(itd_generation(s, "main"), g0);

	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- the old primary back un-rewound beside the new one -------------------- */

START_TEST(test_old_primary_on_lower_timeline_gets_no_role)
{
	const char	*s;
	struct itd_answer a;
	int64_t		 g;
	json_object	*st, *c, *h0, *h1;
	char		 hp[64], *line;
	int		 w, i;

	s = start_settled(1);
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	g = itd_generation(s, "main");
	w = watch_main(s);

	/* node0 starts as a primary of its own on timeline 1 */
	it_start(cl, 0);
	ck_assert(it_sql_is(cl, 0, "SELECT pg_is_in_recovery()", "f"));
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({
		json_object *st_ = itd_status(s);
		json_object *h_ = itd_status_host(
		    itd_status_cluster(st_, "main"), it_port(cl, 0));
		bool ok_ = h_ != NULL && itd_json_true(h_, "alive") &&
		    strstr(itd_json_str(h_, "why"), "lower timeline") != NULL;
		json_object_put(st_);
		ok_;
	}), ITD_STATE_MS), "node0 never reported alive on a lower timeline");

	st = itd_status(s);
	c = itd_status_cluster(st, "main");
	h0 = itd_status_host(c, it_port(cl, 0));
	h1 = itd_status_host(c, it_port(cl, 1));
	ck_assert_str_eq(itd_json_str(c, "master"),
	    itd_hostport(hp, sizeof hp, it_port(cl, 1)));
	ck_assert_int_eq(itd_json_int(c, "generation"), g);
	ck_assert_str_eq(itd_json_str(h0, "role"), "none");
	ck_assert_msg(strstr(itd_json_str(h0, "why"), "lower timeline") !=
	    NULL, "node0 why: %s", itd_json_str(h0, "why"));
	ck_assert_int_eq(itd_json_int(h0, "timeline"), 1);
	ck_assert_str_eq(itd_json_str(h1, "role"), "master");
	ck_assert_int_eq(itd_json_int(h1, "timeline"), 2);
	json_object_put(st);

	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve(s, "main", "master", &a) && a.ok);
		ck_assert_int_eq(a.port, it_port(cl, 1));
		ck_assert_int_eq((int64_t)a.generation, g);
		ck_assert(itd_resolve(s, "main", "any", &a) && a.ok);
		ck_assert_int_ne(a.port, it_port(cl, 0));
	}
	/* no role change, so nothing pushed */
	line = it_sock_readline(w, 1000);
	ITD_ASSERT(dmn, line == NULL, "unexpected push: %s", line);
	it_sock_close(w);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- every host down, then back --------------------------------------------- */

START_TEST(test_all_hosts_down_then_back)
{
	const char	*s;
	json_object	*st, *c;
	int		 i;

	s = start_settled(2);

	for (i = 0; i < 3; i++)
		it_stop(cl, i, "fast");
	for (i = 0; i < 3; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main",
		    it_port(cl, i), false, "none"), ITD_STATE_MS),
		    "stopped node%d still alive", i);

	ck_assert(itd_resolve_err(s, "main", "master", "NOHOST"));
	ck_assert(itd_resolve_err(s, "main", "replica", "NOHOST"));
	ck_assert(itd_resolve_err(s, "main", "any", "NOHOST"));
	st = itd_status(s);
	c = itd_status_cluster(st, "main");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(itd_json_str(c, "master"), "null");
	ck_assert_str_ne(itd_json_str(c, "why_no_master"), "null");
	ck_assert_str_ne(itd_json_str(c, "why_no_master"), "");
	json_object_put(st);

	for (i = 0; i < 3; i++)
		it_start(cl, i);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "node0 never came back as master");
	for (i = 1; i < 3; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main",
		    it_port(cl, i), true, "replica"), ITD_STATE_MS),
		    "node%d never came back as a replica", i);
	i = itd_resolve_port(s, "main", "replica");
	ck_assert(i == it_port(cl, 1) || i == it_port(cl, 2));

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

static Suite *
failover_suite(void)
{
	Suite	*s = suite_create("it_daemon_failover");
	TCase	*tc;

	tc = tcase_create("primary_lost");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
	    test_promote_reports_new_primary_and_one_event_per_change);
	tcase_add_test(tc, test_killed_primary_then_promote_reports_new_primary);
	tcase_add_test(tc, test_old_primary_on_lower_timeline_gets_no_role);
	suite_add_tcase(s, tc);

	tc = tcase_create("hosts_down");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_stopped_replica_is_never_resolved_and_comes_back);
	tcase_add_test(tc, test_all_hosts_down_then_back);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(failover_suite()));
}
