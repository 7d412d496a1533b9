/*
 * it_harness.c - proves that the local-cluster harness (pgcluster and
 * support/itest.c) does what the other integration tests rely on.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "support/itest.h"
#include "../check_main.h"

#define WAIT_MS 20000

static struct it_cluster *cluster;	/* fresh 1+2 cluster of each test */

static void
setup(void)
{
	cluster = it_cluster_create(2);
}

static void
teardown(void)
{
	it_cluster_destroy(cluster);
	cluster = NULL;
}

/* Runs sql on node, failing the test when it fails; caller frees. */
static char *
sql_ok(int node, const char *sql)
{
	char	*out;

	out = it_sql(cluster, node, sql);
	ck_assert_msg(out != NULL, "node %d: %s: %s", node, sql,
	    it_last_error());
	return out;
}

static void
assert_sql(int node, const char *sql, const char *expected)
{
	char	*out;

	out = sql_ok(node, sql);
	ck_assert_msg(strcmp(out, expected) == 0,
	    "node %d: %s: got '%s', want '%s'", node, sql, out, expected);
	free(out);
}

static bool
dir_exists(const char *path)
{
	struct stat	 st;

	return stat(path, &st) == 0;
}

/* True when pid has exited (a zombie waiting for init counts as gone). */
static bool
pid_gone(int pid)
{
	char	 path[64], buf[256], *p;
	FILE	*f;
	bool	 zombie = false;

	if (kill(pid, 0) == -1 && errno == ESRCH)
		return true;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	/* "pid (comm) S ...": the state follows the last ')' */
	if (fgets(buf, sizeof buf, f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		zombie = p[2] == 'Z';
	fclose(f);
	return zombie;
}

#define STREAMING_SQL							\
	"SELECT string_agg(application_name || ':' || state, ',' "	\
	"ORDER BY application_name) FROM pg_stat_replication"

/* --- cluster ---------------------------------------------------------- */

START_TEST(test_create_makes_every_replica_stream)
{
	ck_assert_int_eq(it_cluster_nodes(cluster), 3);
	ck_assert_int_ne(it_port(cluster, 0), it_port(cluster, 1));
	ck_assert_int_ne(it_port(cluster, 1), it_port(cluster, 2));
	ck_assert_int_ne(it_port(cluster, 0), it_port(cluster, 2));
	assert_sql(0, STREAMING_SQL, "node1:streaming,node2:streaming");
	assert_sql(0, "SELECT pg_is_in_recovery()", "f");
	assert_sql(1, "SELECT pg_is_in_recovery()", "t");
	assert_sql(2, "SELECT pg_is_in_recovery()", "t");
	ck_assert_int_gt(it_pid(cluster, 0), 0);
}
END_TEST

START_TEST(test_write_on_primary_becomes_visible_on_replicas)
{
	free(sql_ok(0, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)"));
	ck_assert(IT_POLL_UNTIL(it_sql_is(cluster, 1,
	    "SELECT count(*) FROM t WHERE x = 42", "1"), WAIT_MS));
	ck_assert(IT_POLL_UNTIL(it_sql_is(cluster, 2,
	    "SELECT count(*) FROM t WHERE x = 42", "1"), WAIT_MS));
}
END_TEST

START_TEST(test_sql_returns_rows_and_null_on_error)
{
	char	*out;

	assert_sql(0, "SELECT 1, 'a' UNION ALL SELECT 2, NULL", "1|a\n2|");
	assert_sql(0, "CREATE TABLE e (x int)", "");
	out = it_sql(cluster, 0, "SELECT * FROM no_such_table");
	ck_assert_ptr_null(out);
	ck_assert(strstr(it_last_error(), "no_such_table") != NULL);
	/* a replica refuses writes */
	ck_assert_ptr_null(it_sql(cluster, 1, "CREATE TABLE f (x int)"));
}
END_TEST

START_TEST(test_fast_stop_and_promote_make_replica_writable)
{
	int	 pid0 = it_pid(cluster, 0);

	it_stop(cluster, 0, "fast");
	ck_assert_int_eq(it_pid(cluster, 0), -1);
	ck_assert(IT_POLL_UNTIL(pid_gone(pid0), WAIT_MS));
	ck_assert_ptr_null(it_sql(cluster, 0, "SELECT 1"));
	it_promote(cluster, 1);
	assert_sql(1, "SELECT pg_is_in_recovery()", "f");
	assert_sql(1, "CREATE TABLE p (x int); INSERT INTO p VALUES (1) "
	    "RETURNING x", "1");
	/* stopping a stopped node is not an error */
	it_stop(cluster, 0, "immediate");
}
END_TEST

START_TEST(test_reattach_makes_old_primary_stream_from_new_one)
{
	free(sql_ok(0, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"));
	it_stop(cluster, 0, "fast");
	it_promote(cluster, 1);
	free(sql_ok(1, "INSERT INTO t VALUES (2)"));
	it_reattach(cluster, 0, 1);
	it_reattach(cluster, 2, 1);
	assert_sql(1, STREAMING_SQL, "node0:streaming,node2:streaming");
	assert_sql(0, "SELECT pg_is_in_recovery()", "t");
	ck_assert(IT_POLL_UNTIL(it_sql_is(cluster, 0,
	    "SELECT string_agg(x::text, ',' ORDER BY x) FROM t", "1,2"),
	    WAIT_MS));
}
END_TEST

START_TEST(test_reattach_rewinds_a_diverged_primary)
{
	int	 port0 = it_port(cluster, 0);

	free(sql_ok(0, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"));
	ck_assert(IT_POLL_UNTIL(it_sql_is(cluster, 1,
	    "SELECT count(*) FROM t", "1"), WAIT_MS));
	/* split brain: node1 promoted while node0 still takes writes */
	it_promote(cluster, 1);
	free(sql_ok(0, "INSERT INTO t SELECT generate_series(100, 2000)"));
	free(sql_ok(1, "INSERT INTO t VALUES (2)"));
	it_stop(cluster, 0, "immediate");
	it_reattach(cluster, 0, 1);
	ck_assert_int_eq(it_port(cluster, 0), port0);
	ck_assert(IT_POLL_UNTIL(it_sql_is(cluster, 0,
	    "SELECT string_agg(x::text, ',' ORDER BY x) FROM t", "1,2"),
	    WAIT_MS));
	assert_sql(1, "SELECT count(*) FROM pg_stat_replication "
	    "WHERE application_name = 'node0' AND state = 'streaming'", "1");
}
END_TEST

START_TEST(test_stopped_replica_restarts_and_streams_again)
{
	it_stop(cluster, 2, "immediate");
	assert_sql(0, STREAMING_SQL, "node1:streaming");
	it_start(cluster, 2);
	it_wait_streaming(cluster, 0, 2);
	assert_sql(0, STREAMING_SQL, "node1:streaming,node2:streaming");
}
END_TEST

START_TEST(test_foreign_node_has_another_system_identifier)
{
	char	*own, *other;
	int	 f;

	f = it_foreign_create(cluster);
	ck_assert_int_eq(f, 3);
	ck_assert_int_eq(it_cluster_nodes(cluster), 4);
	ck_assert(it_is_foreign(cluster, f));
	ck_assert(!it_is_foreign(cluster, 1));
	own = sql_ok(0, "SELECT system_identifier FROM pg_control_system()");
	other = sql_ok(f, "SELECT system_identifier FROM pg_control_system()");
	ck_assert_str_ne(own, other);
	free(other);
	other = sql_ok(2, "SELECT system_identifier FROM pg_control_system()");
	ck_assert_str_eq(own, other);
	free(own);
	free(other);
	assert_sql(f, "SELECT pg_is_in_recovery()", "f");
}
END_TEST

START_TEST(test_destroy_removes_dir_and_every_server)
{
	char	 dir[512];
	int	 pids[IT_MAX_NODES], i, n;

	it_foreign_create(cluster);
	n = it_cluster_nodes(cluster);
	for (i = 0; i < n; i++) {
		pids[i] = it_pid(cluster, i);
		ck_assert_int_gt(pids[i], 0);
	}
	snprintf(dir, sizeof dir, "%s", it_cluster_dir(cluster));
	ck_assert(dir_exists(dir));
	it_cluster_destroy(cluster);
	cluster = NULL;
	ck_assert(!dir_exists(dir));
	for (i = 0; i < n; i++)
		ck_assert_msg(IT_POLL_UNTIL(pid_gone(pids[i]), WAIT_MS),
		    "postmaster %d survived", pids[i]);
}
END_TEST

/*
 * A test process that dies without its teardown (what a failed ck_assert
 * does in fork mode) still has its cluster destroyed by the watchdog.
 */
START_TEST(test_watchdog_destroys_cluster_of_a_dead_test)
{
	struct it_cluster	*c;
	char			 buf[600], dir[512];
	ssize_t			 n;
	pid_t			 child;
	int			 p[2], st, pid0;

	ck_assert_int_eq(pipe(p), 0);
	child = fork();
	ck_assert_int_ne(child, -1);
	if (child == 0) {
		close(p[0]);
		c = it_cluster_create(1);
		n = snprintf(buf, sizeof buf, "%d %s", it_pid(c, 0),
		    it_cluster_dir(c));
		if (write(p[1], buf, n) != n)
			_exit(2);
		_exit(1);	/* no it_cluster_destroy */
	}
	close(p[1]);
	n = read(p[0], buf, sizeof buf - 1);
	close(p[0]);
	ck_assert_int_eq(waitpid(child, &st, 0), child);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_int_eq(sscanf(buf, "%d %511s", &pid0, dir), 2);
	ck_assert(IT_POLL_UNTIL(!dir_exists(dir), WAIT_MS));
	ck_assert(IT_POLL_UNTIL(pid_gone(pid0), WAIT_MS));
}
END_TEST

/* --- config text ------------------------------------------------------- */

static int
count(const char *s, const char *what)
{
	int	 n = 0;

	while ((s = strstr(s, what)) != NULL) {
		n++;
		s += strlen(what);
	}
	return n;
}

START_TEST(test_config_lists_every_node_and_lets_extra_override)
{
	char	*text, host[64];
	int	 i, f;

	f = it_foreign_create(cluster);
	text = it_config(cluster, "main", "check_interval_ms = 50;\n"
	    "sync_max_lag_ms = 10;");
	ck_assert_int_eq(count(text, "check_interval_ms"), 2);	/* +fast_ */
	ck_assert_int_eq(count(text, "check_interval_ms = 50;"), 1);
	ck_assert_int_eq(count(text, "fast_check_interval_ms = 20;"), 1);
	ck_assert_int_eq(count(text, "max_fails = 2;"), 1);
	ck_assert_int_eq(count(text, "log_level = \"debug\";"), 1);
	ck_assert_int_eq(count(text, "name = \"main\";"), 1);
	ck_assert(strstr(text, "pgbeacon.sock") != NULL);
	for (i = 0; i <= f; i++) {
		snprintf(host, sizeof host, "\"127.0.0.1:%d\"",
		    it_port(cluster, i));
		ck_assert_int_eq(count(text, host), 1);
		if (i > 0) {
			char prev[64];

			snprintf(prev, sizeof prev, "\"127.0.0.1:%d\"",
			    it_port(cluster, i - 1));
			ck_assert(strstr(text, prev) < strstr(text, host));
		}
	}
	free(text);
	text = it_config(cluster, "main", "clusters = ();");
	ck_assert_int_eq(count(text, "clusters"), 1);
	free(text);
}
END_TEST

/* --- the line client, on a socketpair ---------------------------------- */

START_TEST(test_sock_readline_splits_pipelined_lines_and_times_out)
{
	char	*line;
	int	 sv[2];
	int64_t	 t0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "ONE\nTWO\nTHR", 11), 11);
	line = it_sock_readline(sv[0], 1000);
	ck_assert_str_eq(line, "ONE");
	free(line);
	line = it_sock_readline(sv[0], 1000);
	ck_assert_str_eq(line, "TWO");
	free(line);
	t0 = it_now_ms();
	ck_assert_ptr_null(it_sock_readline(sv[0], 100));
	ck_assert_int_ge(it_now_ms() - t0, 100);
	ck_assert_int_eq(write(sv[1], "EE\n", 3), 3);
	line = it_sock_readline(sv[0], 1000);
	ck_assert_str_eq(line, "THREE");
	free(line);
	/* a request is one line out, one line back */
	ck_assert_int_eq(write(sv[1], "PONG\n", 5), 5);
	line = it_sock_request(sv[0], "PING", 1000);
	ck_assert_str_eq(line, "PONG");
	free(line);
	line = it_sock_readline(sv[1], 1000);
	ck_assert_str_eq(line, "PING");
	free(line);
	close(sv[1]);
	ck_assert_ptr_null(it_sock_readline(sv[0], 1000));	/* EOF */
	it_sock_close(sv[0]);
	it_sock_close(sv[1]);
}
END_TEST

START_TEST(test_poll_until_gives_up_at_its_deadline)
{
	int64_t	 t0 = it_now_ms();
	int	 n = 0;

	ck_assert(!IT_POLL_UNTIL(false, 50));
	ck_assert_int_ge(it_now_ms() - t0, 50);
	ck_assert(IT_POLL_UNTIL(++n == 3, 1000));
	ck_assert_int_eq(n, 3);
}
END_TEST

/* --- the daemon helpers ------------------------------------------------- */

/* True when RESOLVE cluster role answers a line starting with prefix. */
static bool
resolves_to(const struct it_daemon *d, const char *name, const char *role,
    const char *prefix)
{
	char	*reply;
	bool	 ok;

	reply = it_resolve(it_daemon_socket(d), name, role);
	ok = reply != NULL && strncmp(reply, prefix, strlen(prefix)) == 0;
	free(reply);
	return ok;
}

START_TEST(test_daemon_starts_answers_reloads_and_stops)
{
	struct it_daemon	*d;
	char			*conf, *reply, want[64];
	int			 fd;

	conf = it_config(cluster, "main", NULL);
	d = it_daemon_start(conf, it_cluster_dir(cluster));
	free(conf);
	ck_assert_int_gt(it_daemon_pid(d), 0);
	fd = it_sock_connect(it_daemon_socket(d));
	ck_assert_int_ge(fd, 0);
	reply = it_sock_request(fd, "PING", 2000);
	ck_assert_str_eq(reply, "PONG");
	free(reply);
	it_sock_close(fd);

	snprintf(want, sizeof want, "OK host=127.0.0.1 port=%d role=master ",
	    it_port(cluster, 0));
	ck_assert(IT_POLL_UNTIL(resolves_to(d, "main", "master", want),
	    WAIT_MS));

	conf = it_config(cluster, "other", NULL);
	it_daemon_reload(d, conf);
	free(conf);
	ck_assert(IT_POLL_UNTIL(resolves_to(d, "other", "master", want),
	    WAIT_MS));
	ck_assert_int_eq(it_daemon_stop(d), 0);
}
END_TEST

START_TEST(test_daemon_spawn_reports_exit_of_broken_config)
{
	struct it_daemon	*d;
	int			 st = 0;

	d = it_daemon_spawn("clusters = ( broken", it_cluster_dir(cluster));
	ck_assert(it_daemon_exited(d, WAIT_MS, &st));
	ck_assert_int_ne(st, 0);
	ck_assert(!it_daemon_wait_ready(d, 100));
	ck_assert_int_eq(it_daemon_stop(d), st);
}
END_TEST

START_TEST(test_daemon_kill_leaves_no_process)
{
	struct it_daemon	*d;
	char			*conf;
	int			 pid;

	conf = it_config(cluster, "main", NULL);
	d = it_daemon_start(conf, it_cluster_dir(cluster));
	free(conf);
	pid = it_daemon_pid(d);
	it_daemon_kill(d);
	ck_assert(pid_gone(pid));
}
END_TEST

/* --- faults: the relay and frozen nodes ------------------------------ */

/* A blocking libpq connection to 127.0.0.1:port (2 s connect timeout). */
static PGconn *
pq_connect(int port)
{
	char	 ci[128];

	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres connect_timeout=2", port);
	return PQconnectdb(ci);
}

/* True when a new connection to port opens (under load, one may take
 * more than the 2 s of pq_connect(): poll this). */
static bool
connects(int port)
{
	PGconn	*c = pq_connect(port);
	bool	 ok = PQstatus(c) == CONNECTION_OK;

	PQfinish(c);
	return ok;
}

/* True when SELECT 1 on c answers 1. */
static bool
select1(PGconn *c)
{
	PGresult	*r = PQexec(c, "SELECT 1");
	bool		 ok = PQresultStatus(r) == PGRES_TUPLES_OK &&
			    strcmp(PQgetvalue(r, 0, 0), "1") == 0;

	PQclear(r);
	return ok;
}

/* Sends SELECT 1 on c and checks that nothing comes back for ms. */
static void
send_unanswered(PGconn *c, int ms)
{
	struct pollfd	 p = { .fd = PQsocket(c), .events = POLLIN };

	ck_assert(PQsendQuery(c, "SELECT 1"));
	ck_assert_int_eq(poll(&p, 1, ms), 0);
}

/* The answer to send_unanswered()'s query, once it comes. */
static void
receive_late_answer(PGconn *c)
{
	PGresult	*r;
	bool		 got = false;

	while ((r = PQgetResult(c)) != NULL) {
		got |= PQresultStatus(r) == PGRES_TUPLES_OK;
		PQclear(r);
	}
	ck_assert(got);
}

START_TEST(test_relay_passes_delays_blackholes_resets_and_refuses)
{
	struct it_relay	*r = it_relay_start(it_port(cluster, 0));
	int		 port = it_relay_port(r);
	PGconn		*a, *b;
	int64_t		 t;

	ck_assert_int_ne(port, it_port(cluster, 0));
	a = pq_connect(port);
	ck_assert_msg(PQstatus(a) == CONNECTION_OK, "%s", PQerrorMessage(a));
	ck_assert(select1(a));

	it_relay_set(r, "delay 300");
	t = it_now_ms();
	ck_assert(select1(a));
	ck_assert_int_ge(it_now_ms() - t, 300);	/* a lower bound only */

	it_relay_set(r, "blackhole");
	send_unanswered(a, 1000);
	ck_assert_int_eq(PQstatus(a), CONNECTION_OK);	/* nothing closed */
	it_relay_set(r, "pass");
	receive_late_answer(a);
	ck_assert(select1(a));

	it_relay_set(r, "reset");
	ck_assert(!select1(a));
	PQfinish(a);
	b = pq_connect(port);
	ck_assert(PQstatus(b) != CONNECTION_OK);
	PQfinish(b);

	it_relay_set(r, "refuse");
	b = pq_connect(port);
	ck_assert(PQstatus(b) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(b), "refused") != NULL, "%s",
	    PQerrorMessage(b));
	PQfinish(b);

	it_relay_set(r, "pass");
	ck_assert(IT_POLL_UNTIL(connects(port), WAIT_MS));
	it_relay_stop(r);
}
END_TEST

START_TEST(test_freeze_stops_a_node_and_thaw_resumes_it)
{
	PGconn	*a, *b;

	a = pq_connect(it_port(cluster, 0));
	ck_assert_msg(PQstatus(a) == CONNECTION_OK, "%s", PQerrorMessage(a));

	/* the postmaster alone: backends answer, nobody can connect */
	it_freeze_postmaster(cluster, 0);
	ck_assert(select1(a));
	b = pq_connect(it_port(cluster, 0));
	ck_assert(PQstatus(b) != CONNECTION_OK);
	PQfinish(b);
	it_thaw(cluster, 0);
	ck_assert(IT_POLL_UNTIL(connects(it_port(cluster, 0)), WAIT_MS));

	/* the whole node: even established connections get no answer */
	it_freeze(cluster, 0);
	send_unanswered(a, 1000);
	it_thaw(cluster, 0);
	receive_late_answer(a);
	ck_assert(select1(a));
	PQfinish(a);

	/* destroy thaws a node left frozen */
	it_freeze(cluster, 0);
}
END_TEST

static Suite *
harness_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("harness");

	tc = tcase_create("cluster");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_create_makes_every_replica_stream);
	tcase_add_test(tc, test_write_on_primary_becomes_visible_on_replicas);
	tcase_add_test(tc, test_sql_returns_rows_and_null_on_error);
	tcase_add_test(tc, test_fast_stop_and_promote_make_replica_writable);
	tcase_add_test(tc, test_reattach_makes_old_primary_stream_from_new_one);
	tcase_add_test(tc, test_reattach_rewinds_a_diverged_primary);
	tcase_add_test(tc, test_stopped_replica_restarts_and_streams_again);
	tcase_add_test(tc, test_foreign_node_has_another_system_identifier);
	tcase_add_test(tc, test_destroy_removes_dir_and_every_server);
	tcase_add_test(tc, test_config_lists_every_node_and_lets_extra_override);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_relay_passes_delays_blackholes_resets_and_refuses);
	tcase_add_test(tc, test_freeze_stops_a_node_and_thaw_resumes_it);
	suite_add_tcase(s, tc);

	tc = tcase_create("cleanup");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_watchdog_destroys_cluster_of_a_dead_test);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_add_test(tc, test_sock_readline_splits_pipelined_lines_and_times_out);
	tcase_add_test(tc, test_poll_until_gives_up_at_its_deadline);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_daemon_starts_answers_reloads_and_stops);
	tcase_add_test(tc, test_daemon_spawn_reports_exit_of_broken_config);
	tcase_add_test(tc, test_daemon_kill_leaves_no_process);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	return (check_run_suite(harness_suite()));
}
