/*
 * it_proxy_limits.c - connection listeners at their limits: a slow reader
 * of a large COPY (the daemon's memory stays bounded, the data arrives
 * whole), the server connect timeout (a blackholed server, a frozen
 * postmaster), descriptor exhaustion (the daemon under a low
 * RLIMIT_NOFILE and a storm of clients), and a replica listener fencing a
 * replica left behind on the old timeline.
 */
#include <sys/stat.h>

#include <check.h>
#include <poll.h>

#include "it_proxy_util.h"
#include "../check_main.h"

static struct it_cluster	*cl;
static struct it_daemon		*dm;

/* Stops the daemon (a sanitizer report makes its exit status nonzero)
 * and destroys the cluster. */
static void
teardown(void)
{
	itp_teardown(&cl, &dm);
}

/* Starts the daemon on conf (freed here), and waits until it resolves
 * the master at port master and, when replica >= 0, a replica at that
 * port. */
static void
start_conf(char *conf, int master, int replica)
{
	dm = itp_start_conf(cl, conf, master, replica);
}

/* A figure of /proc/PID/status ("VmRSS", "VmHWM"), in KiB; -1 when
 * absent. */
static long
proc_kib(int pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = atol(line + klen + 1);
			break;
		}
	fclose(f);
	return v;
}

/* The soft "Max open files" of /proc/PID/limits, or -1. */
static long
proc_limit(int pid)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/limits", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "Max open files", 14) == 0) {
			v = atol(line + 14);
			break;
		}
	fclose(f);
	return v;
}

/* --- a slow reader ----------------------------------------------------- */

/* The COPY's backend waits to write to the daemon (ClientWrite), and the
 * daemon moved no byte to the client between two such looks: it stopped
 * reading.  *bytes: the bytes it moved to the client. */
static bool
server_stalled(const char *sock, const char *addr, int64_t *bytes)
{
	static const char q[] = "select count(*) from pg_stat_activity "
	    "where wait_event = 'ClientWrite' and query like "
	    "'COPY (select repeat%'";
	int64_t before;

	if (!it_sql_is(cl, 0, q, "1"))
		return false;
	before = itp_figure(sock, addr, "bytes_to_clients");
	if (!it_sql_is(cl, 0, q, "1"))
		return false;
	*bytes = itp_figure(sock, addr, "bytes_to_clients");
	return *bytes == before;
}

#define SLOW_ROWS	200000		/* of 1,000 bytes: 200 MB */
#define SLOW_BOUND_KIB	(48 * 1024)	/* the daemon's growth at most */

START_TEST(test_slow_reader_keeps_the_daemon_bounded)
{
	static const char copy[] = "COPY (select repeat('x', 1000) from "
	    "generate_series(1, 200000)) TO STDOUT";
	const char *sock;
	char listen[512], addr[64], *asan = getenv("ASAN_OPTIONS"), *env;
	PGconn *c;
	PGresult *r;
	char *buf, *run;
	long rss0, hwm;
	int64_t paused_bytes, rows = 0, bad = 0;
	int pm, n, pid;

	cl = it_cluster_create(0);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; }", addr);
	/* Under ASan freed buffers wait in a quarantine (256 MB by
	 * default) that would count as growth: keep it small. */
	if (asan != NULL) {
		ck_assert_int_ge(asprintf(&env, "%s:quarantine_size_mb=8",
		    asan), 0);
		setenv("ASAN_OPTIONS", env, 1);
		free(env);
	}
	start_conf(itp_config(cl, listen, NULL), it_port(cl, 0), -1);
	sock = it_daemon_socket(dm);
	pid = it_daemon_pid(dm);

	c = itp_connect("127.0.0.1", pm, NULL);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	ck_assert(itp_exec_ok(c, "select 1"));
	rss0 = proc_kib(pid, "VmRSS");
	ck_assert_int_gt(rss0, 0);

	/* The client sends the COPY and reads nothing: the server ends up
	 * blocked writing to the daemon, which stopped reading from it. */
	ck_assert_int_eq(PQsendQuery(c, copy), 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(server_stalled(sock, addr, &paused_bytes),
	    ITD_STATE_MS), "the daemon never stopped reading the server");
	ck_assert_msg(paused_bytes < (int64_t)SLOW_BOUND_KIB * 1024,
	    "%" PRId64 " bytes went to a client that reads nothing",
	    paused_bytes);
	ck_assert_msg(proc_kib(pid, "VmRSS") - rss0 < SLOW_BOUND_KIB,
	    "the daemon grew from %ld to %ld KiB", rss0,
	    proc_kib(pid, "VmRSS"));

	/* The client resumes: every row arrives, whole. */
	r = PQgetResult(c);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COPY_OUT);
	PQclear(r);
	while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
		rows++;
		bad += n != 1001 || buf[1000] != '\n' ||
		    strspn(buf, "x") != 1000;
		PQfreemem(buf);
	}
	ck_assert_msg(n == -1, "%s", PQerrorMessage(c));
	r = PQgetResult(c);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	run = PQcmdTuples(r);
	ck_assert_str_eq(run, "200000");
	PQclear(r);
	while ((r = PQgetResult(c)) != NULL)
		PQclear(r);
	ck_assert_int_eq(rows, SLOW_ROWS);
	ck_assert_int_eq(bad, 0);
	ck_assert(itp_exec_ok(c, "select 1"));
	PQfinish(c);

	/* The daemon's peak over the whole transfer stayed bounded. */
	hwm = proc_kib(pid, "VmHWM");
	ck_assert_msg(hwm - rss0 < SLOW_BOUND_KIB, "the daemon's peak RSS "
	    "was %ld KiB over its %ld KiB before the COPY", hwm - rss0, rss0);
	ck_assert_int_ge(itp_figure(sock, addr, "bytes_to_clients"),
	    (int64_t)SLOW_ROWS * 1001);
	if (asan != NULL)
		setenv("ASAN_OPTIONS", asan, 1);
}
END_TEST

/* --- the server connect timeout ---------------------------------------- */

/* psql through 127.0.0.1:port with its own 60 s timeout (a hang shows as
 * libpq's "timeout expired"); popen'ed for reading. */
static FILE *
psql_start(int port)
{
	char args[600];
	FILE *p;

	snprintf(args, sizeof args, "PGCONNECT_TIMEOUT=60 %s/psql -X -A -t "
	    "'host=127.0.0.1 port=%d user=postgres dbname=postgres "
	    "sslmode=disable' -c 'select inet_server_port(), "
	    "pg_is_in_recovery()' 2>&1", itp_bindir(), port);
	ck_assert_ptr_nonnull(p = popen(args, "r"));
	return p;
}

/* The output of a psql_start()ed psql (caller frees); *st its status. */
static char *
psql_end(FILE *p, int *st)
{
	char *out = calloc(1, 1024);
	size_t n;

	ck_assert_ptr_nonnull(out);
	n = fread(out, 1, 1023, p);
	out[n] = '\0';
	*st = pclose(p);
	return out;
}

/*
 * The primary's address is a fault relay that turns into a black hole:
 * it takes connections and answers nothing, the daemon's own probe
 * included.  A client with a short wait gets an ErrorResponse from
 * pgbeacon, not a hang; one with a long wait is held and relayed to the
 * new primary once there is one.
 */
START_TEST(test_blackholed_server_gets_an_error_or_a_new_host)
{
	const char *sock;
	char listen[512], addr_s[64], addr_l[64], hosts[2][64];
	const char *hv[2] = { hosts[0], hosts[1] };
	char want[64], *out;
	struct it_relay *relay;
	FILE *p_short, *p_long;
	int ps, pl, rp, st;

	cl = it_cluster_create(1);
	relay = it_relay_start(it_port(cl, 0));
	rp = it_relay_port(relay);
	snprintf(hosts[0], sizeof hosts[0], "127.0.0.1:%d", rp);
	snprintf(hosts[1], sizeof hosts[1], "127.0.0.1:%d", it_port(cl, 1));
	ps = it_free_port();
	pl = it_free_port();
	snprintf(addr_s, sizeof addr_s, "127.0.0.1:%d", ps);
	snprintf(addr_l, sizeof addr_l, "127.0.0.1:%d", pl);
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"%s\"; wait_ms = 300; "
	    "connect_timeout_ms = 500; },"
	    "{ role = \"master\"; address = \"%s\"; wait_ms = 60000; "
	    "connect_timeout_ms = 500; }", addr_s, addr_l);
	start_conf(itp_add_listen(it_config_hosts(it_cluster_dir(cl), "main",
	    hv, 2, NULL), listen), rp, it_port(cl, 1));
	sock = it_daemon_socket(dm);

	it_relay_set(relay, "blackhole");
	p_short = psql_start(ps);
	p_long = psql_start(pl);
	out = psql_end(p_short, &st);
	ck_assert_msg(st != 0 && strstr(out, "pgbeacon: ") != NULL &&
	    strstr(out, "timeout expired") == NULL, "psql: %s", out);
	free(out);

	/* The daemon is unharmed, and sees the primary gone. */
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_err(sock, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the blackholed primary is still known");
	it_promote(cl, 1);
	out = psql_end(p_long, &st);
	snprintf(want, sizeof want, "%d|f\n", it_port(cl, 1));
	ck_assert_msg(st == 0 && strcmp(out, want) == 0, "held psql: %s",
	    out);
	free(out);
	ck_assert_int_eq(itp_lands_on("127.0.0.1", ps, NULL), it_port(cl, 1));
	ck_assert_int_eq(itp_figure(sock, addr_s, "clients"), 0);
	ck_assert_int_eq(itp_figure(sock, addr_l, "held"), 0);
	it_relay_stop(relay);
}
END_TEST

/*
 * The primary's postmaster is frozen: the kernel still completes TCP
 * connections to it (its backlog), so the listener's connect succeeds,
 * but nothing answers, while the daemon's own session there goes on.  The
 * monitor's new-connection check finds the host dead; the client, whose
 * startup got no answer, is held rather than fenced, and gets pgbeacon's
 * 57P03 when its wait is over: an error, not a hang.  Thawed, the host
 * takes clients again.
 */
START_TEST(test_unanswering_server_times_out)
{
	const char *sock;
	char listen[512], addr[64], want[200], *out;
	FILE *p;
	int pm, st;

	cl = it_cluster_create(0);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; wait_ms = 300; }", addr);
	start_conf(itp_config(cl, listen, "connect_check_interval_ms = 500;"),
	    it_port(cl, 0), -1);
	sock = it_daemon_socket(dm);

	it_freeze_postmaster(cl, 0);
	p = psql_start(pm);
	out = psql_end(p, &st);
	snprintf(want, sizeof want, "pgbeacon: no server holds role master "
	    "of cluster main after waiting 300 ms");
	ck_assert_msg(st != 0 && strstr(out, want) != NULL, "psql: %s", out);
	free(out);
	snprintf(want, sizeof want, "host 127.0.0.1:%d (cluster main) is "
	    "dead: a new connection got no answer", it_port(cl, 0));
	ck_assert(itd_log_contains(dm, want));
	ck_assert_int_eq(itp_figure(sock, addr, "clients"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "held"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "fenced_total"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "refused_total"), 1);

	it_thaw(cl, 0);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "master",
	    it_port(cl, 0)), ITD_STATE_MS), "the thawed primary is not back");
	ck_assert_int_eq(itp_lands_on("127.0.0.1", pm, NULL), it_port(cl, 0));
}
END_TEST

/* --- descriptor exhaustion -------------------------------------------- */

#define FD_LIMIT	200	/* the daemon's RLIMIT_NOFILE */
#define FD_CLIENTS	((FD_LIMIT - 64) / 2)	/* what it relays at most */
#define FD_STORM	100

START_TEST(test_descriptor_exhaustion)
{
	const char *sock;
	char listen[512], addr[64];
	char wrapper[300], *bin, *old;
	FILE *f;
	PGconn *c[FD_STORM];
	int ports[FD_STORM], pm, i, left, ok;
	char *conf;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; }", addr);
	/* The storm loads the server: probes get time to answer. */
	conf = itp_config(cl, listen, "connect_timeout_ms = 5000; "
	    "query_timeout_ms = 5000;");
	/* The daemon starts under `ulimit -n FD_LIMIT` (soft and hard: it
	 * raises its soft limit to the hard one), through a wrapper that
	 * execs it (same pid). */
	ck_assert_ptr_nonnull(bin = realpath(it_daemon_binary(), NULL));
	old = getenv("PGBEACOND") != NULL ? strdup(getenv("PGBEACOND")) : NULL;
	snprintf(wrapper, sizeof wrapper, "%s/pgbeacond-ulimit",
	    it_cluster_dir(cl));
	ck_assert_ptr_nonnull(f = fopen(wrapper, "w"));
	fprintf(f, "#!/bin/sh\nulimit -n %d || exit 125\nexec %s \"$@\"\n",
	    FD_LIMIT, bin);
	fclose(f);
	ck_assert_int_eq(chmod(wrapper, 0755), 0);
	setenv("PGBEACOND", wrapper, 1);
	dm = it_daemon_start(conf, it_cluster_dir(cl));
	if (old != NULL)
		setenv("PGBEACOND", old, 1);
	else
		unsetenv("PGBEACOND");
	free(old);
	free(bin);
	free(conf);
	ck_assert_int_eq(proc_limit(it_daemon_pid(dm)), FD_LIMIT);
	sock = it_daemon_socket(dm);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "master",
	    it_port(cl, 0)), ITD_STATE_MS), "no master");
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "replica",
	    it_port(cl, 1)), ITD_STATE_MS), "no replica");

	/* A storm past the limit, every client started at once. */
	for (i = 0; i < FD_STORM; i++)
		ports[i] = pm;
	left = itp_connect_storm(c, FD_STORM, ports, 60000);
	ck_assert_int_eq(left, 0);
	for (i = ok = 0; i < FD_STORM; i++)
		ok += PQstatus(c[i]) == CONNECTION_OK;
	/* As many as the descriptors allow, the others closed at once. */
	ITD_ASSERT(dm, ok == FD_CLIENTS, "%d clients relayed, not %d", ok,
	    FD_CLIENTS);
	ck_assert_int_eq(itp_figure(sock, addr, "clients"), FD_CLIENTS);
	ck_assert_int_eq(itp_figure(sock, addr, "refused_total"),
	    FD_STORM - FD_CLIENTS);
	ITD_ASSERT(dm, itd_log_contains(dm, "connections use every descriptor "
	    "left; closing a new client"), "no log line");
	for (i = 0; i < FD_STORM; i++)
		if (PQstatus(c[i]) == CONNECTION_OK)
			ck_assert(itp_exec_ok(c[i], "select 1"));

	/* The probes and the socket still work: a failover is seen. */
	ck_assert_int_eq(itd_resolve_port(sock, "main", "master"),
	    it_port(cl, 0));
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_port(sock, "main", "master")
	    == it_port(cl, 1), ITD_STATE_MS), "the failover was not seen");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr, "clients") == 0,
	    ITD_STATE_MS), "the old primary's clients are still relayed");

	/* After the storm, new clients are relayed. */
	for (i = 0; i < FD_STORM; i++)
		PQfinish(c[i]);
	for (i = 0; i < FD_CLIENTS; i++) {
		c[i] = itp_connect("127.0.0.1", pm, NULL);
		ck_assert_msg(PQstatus(c[i]) == CONNECTION_OK, "client %d: %s",
		    i, PQerrorMessage(c[i]));
	}
	for (i = 0; i < FD_CLIENTS; i++) {
		char *v = itp_value(c[i], "select inet_server_port()");

		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(atoi(v), it_port(cl, 1));
		free(v);
		PQfinish(c[i]);
	}
}
END_TEST

/* --- a replica listener fences a stale replica ------------------------ */

START_TEST(test_replica_listener_fences_a_stale_replica)
{
	const char *sock;
	char listen[512], addr[64], line[200], *v;
	PGconn *on2 = NULL, *other[8];
	PGresult *r;
	int pr, i, n = 0, port;

	cl = it_cluster_create(2);
	pr = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pr);
	snprintf(listen, sizeof listen, "{ role = \"replica\"; address = "
	    "\"%s\"; }", addr);
	start_conf(itp_config(cl, listen, NULL), it_port(cl, 0),
	    it_port(cl, 1));
	sock = it_daemon_socket(dm);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "replica",
	    it_port(cl, 2)), ITD_STATE_MS), "no replica 2");

	/* A session on node 2 (round robin over the replicas). */
	while (on2 == NULL && n < 8) {
		PGconn *c = itp_connect("127.0.0.1", pr, NULL);

		ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s",
		    PQerrorMessage(c));
		v = itp_value(c, "select inet_server_port()");
		ck_assert_ptr_nonnull(v);
		if (atoi(v) == it_port(cl, 2))
			on2 = c;
		else
			other[n++] = c;
		free(v);
	}
	ck_assert_ptr_nonnull(on2);
	for (i = 0; i < n; i++)
		PQfinish(other[i]);

	/* node0 stops, node1 is promoted: node2 still follows node0 and
	 * stays on timeline 1, stale. */
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_port(sock, "main", "master")
	    == it_port(cl, 1) && itd_host_is(sock, "main", it_port(cl, 2),
	    true, "none"), ITD_STATE_MS), "node2 never seen stale");
	ck_assert(it_sql_is(cl, 2, "select pg_is_in_recovery()", "t"));

	/* Its relayed session is closed... */
	r = PQexec(on2, "select inet_server_port()");
	ck_assert_msg(PQresultStatus(r) != PGRES_TUPLES_OK, "the session on "
	    "the stale replica still runs");
	PQclear(r);
	PQfinish(on2);
	snprintf(line, sizeof line, "fenced 1 connection(s) to 127.0.0.1:%d: "
	    "no longer a replica", it_port(cl, 2));
	ITD_ASSERT(dm, itd_log_contains(dm, line), "no fence line");
	ck_assert_int_ge(itp_figure(sock, addr, "fenced_total"), 1);

	/* ... and it gets no new one (RESOLVE falls back to the master). */
	for (i = 0; i < 10; i++) {
		port = itp_lands_on("127.0.0.1", pr, NULL);
		ck_assert_int_ne(port, it_port(cl, 2));
		ck_assert_int_eq(port, it_port(cl, 1));
	}
}
END_TEST

static Suite *
proxy_limits_suite(void)
{
	Suite	*s = suite_create("proxy_limits");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_slow_reader_keeps_the_daemon_bounded);
	tcase_add_test(tc, test_blackholed_server_gets_an_error_or_a_new_host);
	tcase_add_test(tc, test_unanswering_server_times_out);
	tcase_add_test(tc, test_descriptor_exhaustion);
	tcase_add_test(tc, test_replica_listener_fences_a_stale_replica);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_limits_suite()));
}
