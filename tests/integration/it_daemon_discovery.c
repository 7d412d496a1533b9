/*
 * it_daemon_discovery.c - pgbeacond against a real cluster that does not
 * fail over: initial discovery, pipelining, a foreign server listed by
 * mistake, a host that accepts TCP and never answers, min_lsn routing.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Starts the daemon over every node of cl as cluster "main". */
static void
start_daemon(const char *extra)
{
	char	*conf = it_config(cl, "main", extra);

	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
}

/* Polls until master is node0 and nodes 1..n-1 are live replicas. */
static void
wait_settled(int nreplicas)
{
	const char	*s = it_daemon_socket(dmn);
	int		 i;

	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "master never resolved to node0");
	for (i = 1; i <= nreplicas; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main",
		    it_port(cl, i), true, "replica"), ITD_STATE_MS),
		    "node%d never became a live replica", i);
}

/* --- initial discovery --------------------------------------------------- */

START_TEST(test_initial_discovery_finds_primary_and_replicas)
{
	const char	*s;
	struct itd_answer a;
	json_object	*st, *c, *h, *hosts;
	char		*reply, hp[64];
	bool		 seen1 = false, seen2 = false;
	int		 i, fd;

	cl = it_cluster_create(2);
	start_daemon(NULL);
	s = it_daemon_socket(dmn);
	wait_settled(2);

	/* master: node0, as a master */
	ck_assert(itd_resolve(s, "main", "master", &a) && a.ok);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_int_eq(a.port, it_port(cl, 0));
	ck_assert_str_eq(a.role, "master");
	ck_assert_uint_ge(a.generation, 1);
	ck_assert(itd_resolve(s, "main", "primary", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 0));

	/* replica: round robin over node1 and node2, never node0 */
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve_fd(fd, "main", "replica", &a) && a.ok);
		ck_assert_str_eq(a.role, "replica");
		ck_assert_msg(a.port == it_port(cl, 1) ||
		    a.port == it_port(cl, 2), "replica answer port %d", a.port);
		seen1 |= a.port == it_port(cl, 1);
		seen2 |= a.port == it_port(cl, 2);
	}
	ck_assert_msg(seen1 && seen2, "round robin skipped a replica "
	    "(node1 %d, node2 %d)", seen1, seen2);

	/* STATUS: three live hosts with the right roles */
	st = itd_status(s);
	ck_assert_ptr_nonnull(st);
	c = itd_status_cluster(st, "main");
	ck_assert_ptr_nonnull(c);
	ck_assert_int_ge(itd_json_int(c, "generation"), 1);
	ck_assert_str_eq(itd_json_str(c, "master"),
	    itd_hostport(hp, sizeof hp, it_port(cl, 0)));
	ck_assert(json_object_object_get_ex(c, "hosts", &hosts));
	ck_assert_uint_eq(json_object_array_length(hosts), 3);
	ck_assert_str_ne(itd_json_str(c, "system_identifier"), "null");
	for (i = 0; i < 3; i++) {
		h = itd_status_host(c, it_port(cl, i));
		ck_assert_ptr_nonnull(h);
		ck_assert_str_eq(itd_json_str(h, "host"), "127.0.0.1");
		ck_assert(itd_json_true(h, "alive"));
		ck_assert_str_eq(itd_json_str(h, "role"),
		    i == 0 ? "master" : "replica");
		ck_assert_int_eq(itd_json_int(h, "timeline"), 1);
	}
	json_object_put(st);

	/* PING */
	reply = it_sock_request(fd, "PING", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(reply, "PONG");
	free(reply);
	it_sock_close(fd);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_pipelined_requests_answered_in_order)
{
	/* Five kinds of request, each with a reply no other kind gives. */
	static const char *const req[] = {
		"PING",
		"RESOLVE main master",
		"RESOLVE main replica",
		"RESOLVE nosuchcluster master",
		"RESOLVE main nosuchrole",
	};
	enum { NREQ = 100 };
	int		 kind[NREQ];
	char		*batch, *line;
	size_t		 len = 0, i;
	struct itd_answer a;
	unsigned	 x = 12345;
	int		 fd;

	cl = it_cluster_create(2);
	start_daemon(NULL);
	wait_settled(2);

	/* 100 lines in one write: a pseudo-random mix of kinds */
	batch = calloc(NREQ, 64);
	ck_assert_ptr_nonnull(batch);
	for (i = 0; i < NREQ; i++) {
		x = x * 1103515245u + 12345u;
		kind[i] = (int)((x >> 16) % 5);
		len += (size_t)sprintf(batch + len, "%s%s", i > 0 ? "\n" : "",
		    req[kind[i]]);
	}
	fd = it_sock_connect(it_daemon_socket(dmn));
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(it_sock_send(fd, batch), 0);
	free(batch);

	for (i = 0; i < NREQ; i++) {
		line = it_sock_readline(fd, ITD_REPLY_MS);
		ck_assert_msg(line != NULL, "reply %zu of %d missing", i, NREQ);
		switch (kind[i]) {
		case 0:
			ck_assert_str_eq(line, "PONG");
			break;
		case 1:
			ck_assert_msg(itd_parse_answer(line, &a) && a.ok &&
			    a.port == it_port(cl, 0) &&
			    strcmp(a.role, "master") == 0,
			    "reply %zu to \"%s\": %s", i, req[kind[i]], line);
			break;
		case 2:
			ck_assert_msg(itd_parse_answer(line, &a) && a.ok &&
			    a.port != it_port(cl, 0) &&
			    strcmp(a.role, "replica") == 0,
			    "reply %zu to \"%s\": %s", i, req[kind[i]], line);
			break;
		case 3:
			ck_assert_msg(strncmp(line, "ERR NOCLUSTER ", 14) == 0,
			    "reply %zu to \"%s\": %s", i, req[kind[i]], line);
			break;
		case 4:
			ck_assert_msg(strncmp(line, "ERR BADROLE ", 12) == 0,
			    "reply %zu to \"%s\": %s", i, req[kind[i]], line);
			break;
		}
		free(line);
	}
	/* and not one reply more */
	line = it_sock_readline(fd, 500);
	ck_assert_msg(line == NULL, "extra reply: %s", line);
	it_sock_close(fd);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- a foreign server listed by mistake ------------------------------------ */

START_TEST(test_foreign_host_never_gets_a_role)
{
	const char	*s;
	struct itd_answer a;
	json_object	*st, *c, *h;
	char		*sysid, hp[64];
	int		 f, fport, i, fd;

	cl = it_cluster_create(1);
	f = it_foreign_create(cl);
	fport = it_port(cl, f);
	start_daemon(NULL);		/* it_config lists the foreign node too */
	s = it_daemon_socket(dmn);
	wait_settled(1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main", fport, true,
	    "none"), ITD_STATE_MS), "the foreign host was never probed alive");

	/* STATUS says why, and names node0's identifier as the cluster's */
	st = itd_status(s);
	c = itd_status_cluster(st, "main");
	ck_assert_ptr_nonnull(c);
	h = itd_status_host(c, fport);
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(itd_json_str(h, "role"), "none");
	ck_assert_str_eq(itd_json_str(h, "why"), "foreign system identifier");
	ck_assert_str_eq(itd_json_str(c, "master"),
	    itd_hostport(hp, sizeof hp, it_port(cl, 0)));
	ck_assert_str_eq(itd_json_str(c, "why_no_master"), "null");
	sysid = it_sql(cl, 0, "SELECT system_identifier FROM pg_control_system()");
	ck_assert_msg(sysid != NULL, "%s", it_last_error());
	ck_assert_str_eq(itd_json_str(c, "system_identifier"), sysid);
	free(sysid);
	json_object_put(st);

	/* no role, over many answers */
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	for (i = 0; i < 50; i++) {
		ck_assert(itd_resolve_fd(fd, "main", "replica", &a) && a.ok);
		ck_assert_int_eq(a.port, it_port(cl, 1));
		ck_assert(itd_resolve_fd(fd, "main", "any", &a) && a.ok);
		ck_assert_int_ne(a.port, fport);
		ck_assert(itd_resolve_fd(fd, "main", "master", &a) && a.ok);
		ck_assert_int_eq(a.port, it_port(cl, 0));
	}
	it_sock_close(fd);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- a host that accepts TCP and never answers ------------------------- */

/* A listening TCP socket on 127.0.0.1 that nobody accepts on: the kernel
 * completes handshakes, nothing is ever written.  Returns the fd; *port. */
static int
blackhole_listen(int *port)
{
	struct sockaddr_in sin;
	socklen_t	 len = sizeof sin;
	int		 fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ne(fd, -1);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 64), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/*
 * PINGs on one connection, paced 10 ms apart, for at least span_ms and at
 * least n of them: each must be answered within 1 s.  span_ms covers a
 * whole connect timeout plus backoff, so a loop that stalled on the black
 * hole at any point of its cycle would be caught.
 */
static void
assert_pings_prompt(int n, int span_ms)
{
	int64_t	 t0, end = it_now_ms() + span_ms;
	char	*reply;
	int	 fd, i;

	fd = it_sock_connect(it_daemon_socket(dmn));
	ck_assert_int_ne(fd, -1);
	for (i = 0; i < n || it_now_ms() < end; i++) {
		t0 = it_now_ms();
		reply = it_sock_request(fd, "PING", 1000);
		ITD_ASSERT(dmn, reply != NULL && strcmp(reply, "PONG") == 0,
		    "PING %d: no PONG within 1 s (%s)", i,
		    reply != NULL ? reply : "timeout");
		free(reply);
		ck_assert_int_lt(it_now_ms() - t0, 1000);
		it_sleep_ms(10);	/* pacing, not waiting for a state */
	}
	it_sock_close(fd);
}

START_TEST(test_unresponsive_host_does_not_stall_answers)
{
	const char	*s;
	const char	*hosts[3];
	char		 h0[64], h1[64], hb[64], *conf;
	json_object	*st, *h;
	struct itd_answer a;
	int		 bfd, bport, i;

	cl = it_cluster_create(1);
	bfd = blackhole_listen(&bport);
	hosts[0] = itd_hostport(h0, sizeof h0, it_port(cl, 0));
	hosts[1] = itd_hostport(h1, sizeof h1, it_port(cl, 1));
	hosts[2] = itd_hostport(hb, sizeof hb, bport);
	/* a long connect timeout: a stall would outlast a PING's 1 s */
	conf = it_config_hosts(it_cluster_dir(cl), "main", hosts, 3,
	    "connect_timeout_ms = 3000;");
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	s = it_daemon_socket(dmn);

	/* while the first connect to the black hole hangs */
	assert_pings_prompt(200, 4000);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "master never resolved to node0");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main", it_port(cl, 1),
	    true, "replica"), ITD_STATE_MS), "node1 never became a replica");

	/* eventually reported with a connect timeout, without a role */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({
		json_object *st_ = itd_status(s);
		json_object *h_ = itd_status_host(
		    itd_status_cluster(st_, "main"), bport);
		bool ok_ = h_ != NULL && !itd_json_true(h_, "alive") &&
		    strstr(itd_json_str(h_, "error"), "connect timeout") != NULL;
		json_object_put(st_);
		ok_;
	}), ITD_STATE_MS), "the black hole never reported a connect timeout");
	st = itd_status(s);
	h = itd_status_host(itd_status_cluster(st, "main"), bport);
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(itd_json_str(h, "role"), "none");
	ck_assert_str_ne(itd_json_str(h, "why"), "ok");
	json_object_put(st);

	/* still prompt while the daemon keeps reconnecting to it */
	assert_pings_prompt(200, 4000);
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve(s, "main", "master", &a) && a.ok);
		ck_assert_int_eq(a.port, it_port(cl, 0));
		ck_assert(itd_resolve(s, "main", "any", &a) && a.ok);
		ck_assert_int_ne(a.port, bport);
	}

	close(bfd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- min_lsn routing --------------------------------------------------------- */

/* True when node has replayed lsn. */
static bool
replayed(int node, const char *lsn)
{
	char	 sql[256];

	snprintf(sql, sizeof sql, "SELECT pg_wal_lsn_diff("
	    "pg_last_wal_replay_lsn(), '%s') >= 0", lsn);
	return it_sql_is(cl, node, sql, "t");
}

/* The node whose port is port, or -1. */
static int
node_of(int port)
{
	int	 i;

	for (i = 0; i < it_cluster_nodes(cl); i++)
		if (it_port(cl, i) == port)
			return i;
	return -1;
}

/* A write on node0; returns pg_current_wal_lsn() after it (caller frees). */
static char *
write_and_lsn(const char *sql)
{
	char	*r, *lsn;

	r = it_sql(cl, 0, sql);
	ck_assert_msg(r != NULL, "%s: %s", sql, it_last_error());
	free(r);
	lsn = it_sql(cl, 0, "SELECT pg_current_wal_lsn()");
	ck_assert_msg(lsn != NULL, "%s", it_last_error());
	return lsn;
}

START_TEST(test_min_lsn_routes_to_a_replica_that_replayed_it)
{
	const char	*s;
	struct itd_answer a;
	char		 opts[128], *lsn;
	int		 node, i;

	cl = it_cluster_create(2);
	start_daemon(NULL);
	s = it_daemon_socket(dmn);
	wait_settled(2);

	/* read-your-writes: a replica that has the row */
	lsn = write_and_lsn("CREATE TABLE rw (i int); INSERT INTO rw VALUES (1)");
	snprintf(opts, sizeof opts, "replica min_lsn=%s fallback=none", lsn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve(s, "main", opts, &a) &&
	    a.ok, ITD_STATE_MS), "no replica ever reached %s", lsn);
	ck_assert_str_eq(a.role, "replica");
	node = node_of(a.port);
	ck_assert_msg(node == 1 || node == 2, "answer port %d", a.port);
	ck_assert_msg(replayed(node, lsn), "node%d has not replayed %s", node,
	    lsn);
	ck_assert(it_sql_is(cl, node, "SELECT count(*) FROM rw WHERE i = 1",
	    "1"));
	free(lsn);

	/* replay paused on both replicas: nobody has the next write */
	for (i = 1; i <= 2; i++) {
		free(it_sql(cl, i, "SELECT pg_wal_replay_pause()"));
		ck_assert_msg(IT_POLL_UNTIL(it_sql_is(cl, i,
		    "SELECT pg_get_wal_replay_pause_state()", "paused"),
		    ITD_STATE_MS), "node%d never paused", i);
	}
	lsn = write_and_lsn("INSERT INTO rw VALUES (2)");
	ck_assert(!replayed(1, lsn) && !replayed(2, lsn));
	snprintf(opts, sizeof opts, "replica min_lsn=%s", lsn);
	for (i = 0; i < 10; i++) {
		ck_assert(itd_resolve(s, "main", opts, &a));
		ITD_ASSERT(dmn, a.ok && a.port == it_port(cl, 0) &&
		    strcmp(a.role, "master") == 0,
		    "min_lsn=%s while replay is paused: not the master", lsn);
	}
	snprintf(opts, sizeof opts, "replica min_lsn=%s fallback=master", lsn);
	ck_assert(itd_resolve(s, "main", opts, &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 0));
	snprintf(opts, sizeof opts, "replica min_lsn=%s fallback=none", lsn);
	for (i = 0; i < 10; i++)
		ck_assert(itd_resolve_err(s, "main", opts, "NOHOST"));

	/* replay resumed: a replica again, one that has row 2 */
	for (i = 1; i <= 2; i++)
		free(it_sql(cl, i, "SELECT pg_wal_replay_resume()"));
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve(s, "main", opts, &a) &&
	    a.ok, ITD_STATE_MS), "no replica reached %s after resume", lsn);
	ck_assert_str_eq(a.role, "replica");
	node = node_of(a.port);
	ck_assert_msg(node == 1 || node == 2, "answer port %d", a.port);
	ck_assert_msg(replayed(node, lsn), "node%d has not replayed %s", node,
	    lsn);
	ck_assert(it_sql_is(cl, node, "SELECT count(*) FROM rw WHERE i = 2",
	    "1"));
	free(lsn);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

static Suite *
discovery_suite(void)
{
	Suite	*s = suite_create("it_daemon_discovery");
	TCase	*tc;

	tc = tcase_create("discovery");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_initial_discovery_finds_primary_and_replicas);
	tcase_add_test(tc, test_pipelined_requests_answered_in_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("misconfigured_hosts");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_foreign_host_never_gets_a_role);
	tcase_add_test(tc, test_unresponsive_host_does_not_stall_answers);
	suite_add_tcase(s, tc);

	tc = tcase_create("min_lsn");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_min_lsn_routes_to_a_replica_that_replayed_it);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(discovery_suite()));
}
