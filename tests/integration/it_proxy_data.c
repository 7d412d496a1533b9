/*
 * it_proxy_data.c - connection listeners under load and change: a
 * 200-client connect storm, TLS passthrough with sslmode=require (and a cancel under TLS),
 * a reload adding and removing listeners while others keep their
 * clients, and a replica listener with max_lag_ms.  COPY of 100 MB is
 * in it_proxy_copy.c (it takes long on a loaded machine).
 */
#include <sys/stat.h>

#include <check.h>
#include <poll.h>

#include "support/proxy_util.h"
#include "support/spawn.h"
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

static void
start_daemon(const char *listen, int replica)
{
	dm = itp_start(cl, listen, NULL, 0, replica);
}

#define STORM 200

START_TEST(test_connect_storm_of_200_clients)
{
	char listen[512], ci[256];
	PGconn *c[STORM];
	int ports[STORM], pm, pr, i;

	cl = it_cluster_create(1);
	pm = it_free_port();
	pr = it_free_port();
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"127.0.0.1:%d\"; },"
	    "{ role = \"replica\"; address = \"127.0.0.1:%d\"; }", pm, pr);
	/* The storm forks 200 backends at once: on two loaded cores a probe
	 * can then take over the harness's 1 s, and a probe timeout is death
	 * (it_daemon_detect tests that).  This test is about the listeners,
	 * so its monitor gets the default timeouts' order of magnitude. */
	dm = itp_start(cl, listen, "connect_timeout_ms = 5000; "
	    "query_timeout_ms = 5000;", 0, 1);

	/* Half on each listener (one server holds 200 connections at most),
	 * all started at once, driven together. */
	for (i = 0; i < STORM; i++)
		ports[i] = i % 2 ? pr : pm;
	itp_connect_storm(c, STORM, ports, 60000);
	for (i = 0; i < STORM; i++)
		ck_assert_msg(PQstatus(c[i]) == CONNECTION_OK, "client %d: %s",
		    i, PQerrorMessage(c[i]));
	snprintf(ci, sizeof ci, "127.0.0.1:%d", pm);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), ci, "clients"),
	    STORM / 2);
	for (i = 0; i < STORM; i++) {
		char *v = itp_value(c[i], "select inet_server_port()");

		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(atoi(v), it_port(cl, i % 2));
		free(v);
	}
	for (i = 0; i < STORM; i++)
		PQfinish(c[i]);
	ck_assert(IT_POLL_UNTIL(itp_figure(it_daemon_socket(dm), ci,
	    "clients") == 0, ITD_STATE_MS));
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), ci,
	    "relayed_total"), STORM / 2);
}
END_TEST

/* Turns ssl on on node 0 with a new self-signed certificate. */
static void
enable_ssl(void)
{
	char cmd[2048], *v;

	snprintf(cmd, sizeof cmd, "cd %s/node0/data && openssl req -x509 "
	    "-newkey rsa:2048 -nodes -keyout server.key -out server.crt "
	    "-days 2 -subj /CN=localhost >/dev/null 2>&1 && chown postgres "
	    "server.key server.crt && chmod 600 server.key",
	    it_cluster_dir(cl));
	ck_assert_msg(it_system(cmd) == 0, "openssl failed: %s", cmd);
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "alter system set ssl = on"));
	free(v);
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "select pg_reload_conf()"));
	free(v);
	ck_assert(IT_POLL_UNTIL(it_sql_is(cl, 0, "show ssl", "on"),
	    ITD_STATE_MS));
}

START_TEST(test_tls_passes_through_with_sslmode_require)
{
	char listen[256], args[512], *out, *v;
	PGconn *conn;
	PGcancel *cn;
	PGresult *r;
	char err[256];
	bool canceled = false;
	int pm, st;

	cl = it_cluster_create(0);
	enable_ssl();
	pm = it_free_port();
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; }", pm);
	start_daemon(listen, -1);

	snprintf(args, sizeof args, "'host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres sslmode=require' -c 'select ssl from pg_stat_ssl "
	    "where pid = pg_backend_pid()'", pm);
	st = itp_psql(args, &out);
	ck_assert_msg(st == 0 && strcmp(out, "t\n") == 0, "psql: %s", out);
	free(out);

	/* libpq under TLS; its cancel key cannot be read on the way: the
	 * request goes to the role's current host, which runs it. */
	conn = itp_connect("127.0.0.1", pm, "sslmode=require");
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
	    PQerrorMessage(conn));
	ck_assert_ptr_nonnull(PQsslAttribute(conn, "protocol"));
	v = itp_value(conn, "select ssl from pg_stat_ssl where pid = "
	    "pg_backend_pid()");
	ck_assert_str_eq(v, "t");
	free(v);
	ck_assert_int_eq(PQsendQuery(conn, "select pg_sleep(60) /* tls */"),
	    1);
	ck_assert(IT_POLL_UNTIL(it_sql_is(cl, 0, "select count(*) from "
	    "pg_stat_activity where query like '%/* tls */%' and state = "
	    "'active' and pid <> pg_backend_pid()", "1"), ITD_STATE_MS));
	ck_assert_ptr_nonnull(cn = PQgetCancel(conn));
	ck_assert_msg(PQcancel(cn, err, sizeof err) == 1, "%s", err);
	PQfreeCancel(cn);
	while ((r = PQgetResult(conn)) != NULL) {
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		canceled |= s != NULL && strcmp(s, "57014") == 0;
		PQclear(r);
	}
	ck_assert(canceled);
	ITD_ASSERT(dm, itd_log_contains(dm, "(unknown session)"),
	    "no cancel line");
	PQfinish(conn);
}
END_TEST

START_TEST(test_reload_adds_and_removes_listeners_keeping_others)
{
	const char *dir, *sock;
	char listen[1024], addr_a[64], addr_b[64], addr_c[300], line[400];
	char *conf;
	PGconn *a, *b;
	PGresult *r;
	int pa, pb, pc;

	cl = it_cluster_create(1);
	dir = it_cluster_dir(cl);
	pa = it_free_port();
	pb = it_free_port();
	pc = it_free_port();
	snprintf(addr_a, sizeof addr_a, "127.0.0.1:%d", pa);
	snprintf(addr_b, sizeof addr_b, "127.0.0.1:%d", pb);
	snprintf(addr_c, sizeof addr_c, "%s:%d", dir, pc);
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"%s\"; },"
	    "{ role = \"replica\"; address = \"%s\"; }", addr_a, addr_b);
	start_daemon(listen, 1);
	sock = it_daemon_socket(dm);
	a = itp_connect("127.0.0.1", pa, NULL);
	b = itp_connect("127.0.0.1", pb, NULL);
	ck_assert(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK);

	/* A stays (with a new option), B goes, C comes. */
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"%s\"; max_clients = 50; },"
	    "{ role = \"master\"; address = \"%s\"; }", addr_a, addr_c);
	conf = itp_config(cl, listen, NULL);
	it_daemon_reload(dm, conf);
	free(conf);
	snprintf(line, sizeof line, "listener %s: removed (1 connection(s) "
	    "closed)", addr_b);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_log_contains(dm, line),
	    ITD_STATE_MS), "B not removed");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_lands_on(dir, pc, NULL) ==
	    it_port(cl, 0), ITD_STATE_MS), "C does not relay");

	/* A's client never noticed. */
	ck_assert(itp_exec_ok(a, "select 1"));
	ck_assert_int_eq(itp_figure(sock, addr_a, "clients"), 1);
	/* B's client is gone, and B with it. */
	r = PQexec(b, "select 1");
	ck_assert_int_ne(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	ck_assert_int_eq(itp_lands_on("127.0.0.1", pb, NULL), -1);
	ck_assert_int_eq(itp_figure(sock, addr_b, "clients"), -1);
	PQfinish(a);
	PQfinish(b);
}
END_TEST

START_TEST(test_replica_listener_stops_routing_to_a_lagging_replica)
{
	const char *sock;
	char listen[1024], addr_k[64], addr_f[64], *v;
	PGconn *keep, *fence, *fresh;
	PGresult *r;
	json_object *st, *h;
	int pk, pf;
	int64_t lag = 0;

	cl = it_cluster_create(1);
	pk = it_free_port();
	pf = it_free_port();
	snprintf(addr_k, sizeof addr_k, "127.0.0.1:%d", pk);
	snprintf(addr_f, sizeof addr_f, "127.0.0.1:%d", pf);
	snprintf(listen, sizeof listen,
	    "{ role = \"replica\"; address = \"%s\"; max_lag_ms = 1000; "
	    "fallback = \"none\"; wait_ms = 0; },"
	    "{ role = \"replica\"; address = \"%s\"; max_lag_ms = 1000; "
	    "fallback = \"none\"; wait_ms = 0; fence_on_lag = true; }",
	    addr_k, addr_f);
	start_daemon(listen, 1);
	sock = it_daemon_socket(dm);
	/* A transaction replayed, so the replica has a replay time. */
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "create table lag_t (i int)"));
	free(v);
	it_wait_streaming(cl, 0, 1);
	ck_assert(IT_POLL_UNTIL(it_sql_is(cl, 1, "select count(*) from "
	    "lag_t", "0"), ITD_STATE_MS));

	keep = itp_connect("127.0.0.1", pk, NULL);
	fence = itp_connect("127.0.0.1", pf, NULL);
	ck_assert(PQstatus(keep) == CONNECTION_OK &&
	    PQstatus(fence) == CONNECTION_OK);

	ck_assert_ptr_nonnull(v = it_sql(cl, 1, "select pg_wal_replay_pause()"));
	free(v);
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "insert into lag_t values (1)"));
	free(v);
	ck_assert(IT_POLL_UNTIL((st = itd_status(sock),
	    h = itd_status_host(itd_status_cluster(st, "main"),
	    it_port(cl, 1)), lag = itd_json_int(h, "lag_ms"),
	    json_object_put(st), lag > 1000), ITD_STATE_MS));

	/* New clients: no replica qualifies, fallback none, no wait. */
	fresh = itp_connect("127.0.0.1", pk, NULL);
	ck_assert(PQstatus(fresh) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(fresh), "no server holds role "
	    "replica") != NULL, "%s", PQerrorMessage(fresh));
	PQfinish(fresh);
	/* A lag spike does not cut readers off... */
	ck_assert(itp_exec_ok(keep, "select 1"));
	/* ...unless the listener asks for it. */
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr_f, "fenced_total")
	    == 1, ITD_STATE_MS), "not fenced on lag");
	r = PQexec(fence, "select 1");
	ck_assert_int_ne(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	ck_assert(itd_log_contains(dm, "replica over the lag bound"));
	ck_assert_int_eq(itp_figure(sock, addr_k, "fenced_total"), 0);
	PQfinish(keep);
	PQfinish(fence);
	v = it_sql(cl, 1, "select pg_wal_replay_resume()");
	free(v);
}
END_TEST

static Suite *
proxy_data_suite(void)
{
	Suite	*s = suite_create("proxy_data");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_connect_storm_of_200_clients);
	tcase_add_test(tc, test_tls_passes_through_with_sslmode_require);
	tcase_add_test(tc, test_reload_adds_and_removes_listeners_keeping_others);
	tcase_add_test(tc, test_replica_listener_stops_routing_to_a_lagging_replica);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_data_suite()));
}
