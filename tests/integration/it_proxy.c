/*
 * it_proxy.c - connection listeners against real clusters and real
 * clients (psql, pgbench, libpq): every role in the Unix and TCP forms,
 * clients held across a stop-and-promote, after a refused server connect
 * and after a server's "shutting down" answer, fencing of an open transaction,
 * an un-rewound old primary, cancel requests, bad input and limits.
 */
#include <sys/wait.h>

#include <check.h>
#include <string.h>
#include <unistd.h>

#include "support/http.h"
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

/* Starts the daemon on cl with listen, and waits until it resolves the
 * master (node master) and, when replica >= 0, a replica. */
static void
start_daemon(const char *listen, const char *extra, int master, int replica)
{
	dm = itp_start(cl, listen, extra, master, replica);
}

/* GET path over HTTP/1.0 on 127.0.0.1:port: the whole answer (caller
 * frees), or NULL. */
static char *
http_get(int port, const char *path)
{
	char	 target[32], req[256], *text;
	size_t	 len;

	snprintf(target, sizeof target, "127.0.0.1:%d", port);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
	(void)it_http_raw(target, req, strlen(req), ITD_STATE_MS, &text, &len);
	return text;
}

START_TEST(test_every_role_unix_and_tcp)
{
	const char *dir;
	char listen[1024], extra[128], addr_m[300], args[600], *out;
	int pm, pr, pa, ph, st;

	cl = it_cluster_create(1);
	dir = it_cluster_dir(cl);
	pm = it_free_port();
	pr = it_free_port();
	pa = it_free_port();
	ph = it_free_port();
	snprintf(addr_m, sizeof addr_m, "%s:%d", dir, pm);
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"%s\"; },"
	    "{ role = \"replica\"; address = \"127.0.0.1:%d\"; },"
	    "{ role = \"any\"; address = \"127.0.0.1:%d\"; }", addr_m, pr, pa);
	snprintf(extra, sizeof extra, "http_listen = \"127.0.0.1:%d\";", ph);
	start_daemon(listen, extra, 0, 1);

	/* libpq on each form, each role. */
	ck_assert_int_eq(itp_lands_on(dir, pm, NULL), it_port(cl, 0));
	ck_assert_int_eq(itp_lands_on("127.0.0.1", pr, NULL), it_port(cl, 1));
	ck_assert_int_eq(itp_lands_on("127.0.0.1", pa, NULL), it_port(cl, 1));
	/* The socket is named as libpq expects: psql -h DIR -p PORT. */
	snprintf(args, sizeof args, "-h %s -p %d -U postgres -c "
	    "'select pg_is_in_recovery()' postgres", dir, pm);
	st = itp_psql(args, &out);
	ck_assert_msg(st == 0 && strcmp(out, "f\n") == 0, "psql: %s", out);
	free(out);
	/* Default sslmode (prefer): an SSLRequest refused by the server. */
	snprintf(args, sizeof args, "-h 127.0.0.1 -p %d -U postgres -c "
	    "'select pg_is_in_recovery()' postgres", pr);
	st = itp_psql(args, &out);
	ck_assert_msg(st == 0 && strcmp(out, "t\n") == 0, "psql: %s", out);
	free(out);

	/* pgbench through the master listener. */
	snprintf(args, sizeof args, "%s/pgbench -h %s -p %d -U postgres -i "
	    "-s 1 postgres >/dev/null 2>&1 && %s/pgbench -h %s -p %d -U "
	    "postgres -S -c 4 -j 2 -T 2 postgres 2>&1 | grep -q "
	    "'number of failed transactions: 0'", itp_bindir(), dir, pm,
	    itp_bindir(), dir, pm);
	ck_assert_msg(it_system(args) == 0,
	    "pgbench through the listener failed");

	ck_assert_int_ge(itp_figure(it_daemon_socket(dm), addr_m,
	    "relayed_total"), 7);
	ck_assert_int_gt(itp_figure(it_daemon_socket(dm), addr_m,
	    "bytes_to_clients"), 10000);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr_m,
	    "fenced_total"), 0);

	out = http_get(ph, "/metrics");
	ck_assert_ptr_nonnull(out);
	snprintf(args, sizeof args, "pgbeacon_listener_relayed_total{cluster="
	    "\"main\",address=\"%s\",role=\"master\"} ", addr_m);
	ck_assert_msg(strstr(out, args) != NULL, "no %s in %s", args, out);
	ck_assert_ptr_nonnull(strstr(out, "pgbeacon_listener_bytes_total{"));
	free(out);
	out = http_get(ph, "/v1/status");
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(strstr(out, "\"listeners\":[{\"cluster\":"
	    "\"main\""));
	free(out);
}
END_TEST

START_TEST(test_clients_held_across_stop_and_promote)
{
	const char *dir, *sock;
	char listen[1024], addr_m[300], args[600], *out;
	FILE *held;
	size_t n;
	int pm, pshort, st;

	cl = it_cluster_create(1);
	dir = it_cluster_dir(cl);
	pm = it_free_port();
	pshort = it_free_port();
	snprintf(addr_m, sizeof addr_m, "%s:%d", dir, pm);
	snprintf(listen, sizeof listen,
	    "{ role = \"master\"; address = \"%s\"; wait_ms = 60000; },"
	    "{ role = \"master\"; address = \"127.0.0.1:%d\"; wait_ms = 200; }",
	    addr_m, pshort);
	start_daemon(listen, NULL, 0, 1);
	sock = it_daemon_socket(dm);

	it_stop(cl, 0, "fast");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_err(sock, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the primary is still known");

	/* A client connecting now is held, not refused. */
	snprintf(args, sizeof args, "PGCONNECT_TIMEOUT=60 %s/psql -X -A -t "
	    "-h %s -p %d -U postgres -c 'select inet_server_port(), "
	    "pg_is_in_recovery()' postgres 2>&1", itp_bindir(), dir, pm);
	ck_assert_ptr_nonnull(held = it_popen(args));
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr_m, "held") == 1,
	    ITD_STATE_MS), "the client is not held");

	/* Past wait_ms: a PostgreSQL error, in clear even when the client
	 * asked for TLS first (sslmode=prefer) or not (disable). */
	snprintf(args, sizeof args, "'host=127.0.0.1 port=%d user=postgres "
	    "sslmode=prefer' -c 'select 1'", pshort);
	st = itp_psql(args, &out);
	ck_assert_msg(st != 0 && strstr(out, "pgbeacon: no server holds role "
	    "master of cluster main after waiting 200 ms") != NULL, "psql: %s",
	    out);
	free(out);
	snprintf(args, sizeof args, "'host=127.0.0.1 port=%d user=postgres "
	    "sslmode=disable' -c 'select 1'", pshort);
	st = itp_psql(args, &out);
	ck_assert_msg(st != 0 && strstr(out, "pgbeacon: no server holds role")
	    != NULL, "psql: %s", out);
	free(out);

	it_promote(cl, 1);
	out = calloc(1, 512);
	n = fread(out, 1, 511, held);
	st = it_pclose(held);
	snprintf(args, sizeof args, "%d|f\n", it_port(cl, 1));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    strcmp(out, args) == 0, "held psql (%zu bytes): %s", n, out);
	free(out);
	ck_assert_int_eq(itp_figure(sock, addr_m, "held"), 0);
	ck_assert_int_ge(itp_figure(sock, addr_m, "relayed_total"), 1);
}
END_TEST

/*
 * New connections to the primary fail (the fault relay in mode) while the
 * daemon still holds it as the primary (its probe connection lives on): a
 * client routed there is held again, not failed, and relayed once the
 * role lands on a live host.  log_fmt: the daemon's line, with %d for the
 * relay's port.
 */
static void
held_again_after(const char *mode, const char *log_fmt)
{
	const char *sock;
	char listen[512], addr[64], args[600], line[200], hosts[2][64];
	const char *hv[2] = { hosts[0], hosts[1] };
	char *conf, *out;
	struct it_relay *relay;
	FILE *held;
	size_t n;
	int pm, rp, st;

	cl = it_cluster_create(1);
	relay = it_relay_start(it_port(cl, 0));
	rp = it_relay_port(relay);
	snprintf(hosts[0], sizeof hosts[0], "127.0.0.1:%d", rp);
	snprintf(hosts[1], sizeof hosts[1], "127.0.0.1:%d", it_port(cl, 1));
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; wait_ms = 60000; }", addr);
	conf = itp_add_listen(it_config_hosts(it_cluster_dir(cl), "main", hv,
	    2, NULL), listen);
	dm = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	sock = it_daemon_socket(dm);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "master",
	    rp), ITD_STATE_MS), "no master");
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "replica",
	    it_port(cl, 1)), ITD_STATE_MS), "no replica");

	/* New connections to the primary fail; the daemon's own
	 * connection to it lives on, so the role stays where it is. */
	it_relay_set(relay, mode);
	ck_assert_int_eq(itd_resolve_port(sock, "main", "master"), rp);
	snprintf(args, sizeof args, "PGCONNECT_TIMEOUT=60 %s/psql -X -A -t "
	    "'host=127.0.0.1 port=%d user=postgres dbname=postgres "
	    "sslmode=disable' -c 'select inet_server_port(), "
	    "pg_is_in_recovery()' 2>&1", itp_bindir(), pm);
	ck_assert_ptr_nonnull(held = it_popen(args));
	snprintf(line, sizeof line, log_fmt, rp);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_log_contains(dm, line),
	    ITD_STATE_MS), "the listener never tried the primary");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr, "held") == 1,
	    ITD_STATE_MS), "the client is not held after the refusal");
	ck_assert_int_eq(itp_figure(sock, addr, "refused_total"), 0);
	ck_assert_int_eq(itd_resolve_port(sock, "main", "master"), rp);

	/* The role moves to a live host: the client is relayed there. */
	it_promote(cl, 1);
	out = calloc(1, 512);
	n = fread(out, 1, 511, held);
	st = it_pclose(held);
	snprintf(args, sizeof args, "%d|f\n", it_port(cl, 1));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    strcmp(out, args) == 0, "held psql (%zu bytes): %s", n, out);
	free(out);
	ck_assert_int_eq(itp_figure(sock, addr, "held"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "relayed_total"), 1);
	ck_assert_int_eq(itp_figure(sock, addr, "refused_total"), 0);
	it_relay_stop(relay);
}

START_TEST(test_refused_server_connect_holds_the_client_again)
{
	held_again_after("refuse", "cannot connect to 127.0.0.1:%d");
}
END_TEST

/* Accepted, then closed with nothing sent: a postmaster that went down
 * with the connection in its backlog. */
START_TEST(test_server_closing_before_answering_holds_the_client_again)
{
	held_again_after("close", "127.0.0.1:%d closed the connection before "
	    "answering its startup; holding");
}
END_TEST

/*
 * The primary is shutting down (smart: the daemon's own session keeps it
 * up and primary) and answers new sessions 57P03: a client relayed there,
 * with or without an SSLRequest first, is held again rather than handed
 * that error, and relayed once the role moves.
 */
START_TEST(test_server_shutting_down_holds_the_client_again)
{
	const char *sock;
	char listen[512], addr[64], args[800], line[200], *out;
	FILE *held[2];
	size_t n;
	int pm, st, i;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; wait_ms = 60000; }", addr);
	start_daemon(listen, NULL, 0, 1);
	sock = it_daemon_socket(dm);

	snprintf(args, sizeof args, "runuser -u postgres -- %s/pg_ctl -D "
	    "%s/node0/data -m smart -W -s stop", itp_bindir(),
	    it_cluster_dir(cl));
	ck_assert_msg(it_system(args) == 0, "%s failed", args);
	/* Directly, a new session is refused now. */
	snprintf(args, sizeof args, "'host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres sslmode=disable' -c 'select 1'", it_port(cl, 0));
	ck_assert(IT_POLL_UNTIL(itp_psql(args, NULL) != 0, ITD_STATE_MS));
	ck_assert_int_eq(itd_resolve_port(sock, "main", "master"),
	    it_port(cl, 0));

	for (i = 0; i < 2; i++) {
		snprintf(args, sizeof args, "PGCONNECT_TIMEOUT=60 %s/psql -X "
		    "-A -t 'host=127.0.0.1 port=%d user=postgres "
		    "dbname=postgres sslmode=%s' -c 'select "
		    "inet_server_port(), pg_is_in_recovery()' 2>&1",
		    itp_bindir(), pm, i ? "prefer" : "disable");
		ck_assert_ptr_nonnull(held[i] = it_popen(args));
	}
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr, "held") == 2,
	    ITD_STATE_MS), "the clients are not held");
	snprintf(line, sizeof line, "127.0.0.1:%d cannot take connections "
	    "now (SQLSTATE 57P03); holding", it_port(cl, 0));
	ck_assert(itd_log_contains(dm, line));
	ck_assert_int_eq(itd_resolve_port(sock, "main", "master"),
	    it_port(cl, 0));

	it_promote(cl, 1);
	for (i = 0; i < 2; i++) {
		out = calloc(1, 512);
		n = fread(out, 1, 511, held[i]);
		st = it_pclose(held[i]);
		snprintf(args, sizeof args, "%d|f\n", it_port(cl, 1));
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
		    strcmp(out, args) == 0, "held psql %d (%zu bytes): %s", i,
		    n, out);
		free(out);
	}
	ck_assert_int_eq(itp_figure(sock, addr, "held"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "relayed_total"), 2);
}
END_TEST

/* The pid of a backend waiting for the lock on a database (a new session
 * that passed authentication), other than not_pid; 0 while none. */
static int
db_lock_waiter(PGconn *conn, int not_pid)
{
	char	 sql[300], *v;
	int	 pid;

	snprintf(sql, sizeof sql, "SELECT pid FROM pg_locks WHERE locktype = "
	    "'object' AND classid = 'pg_database'::regclass AND NOT granted "
	    "AND pid <> %d LIMIT 1", not_pid);
	v = itp_value(conn, sql);
	pid = v != NULL ? atoi(v) : 0;
	free(v);
	return pid;
}

/*
 * A backend ended with 57P01 after it sent AuthenticationOk (trust: the
 * client has nothing to send) but before ReadyForQuery.  The new backend
 * is made to wait there: PostgreSQL takes the lock on the database after
 * authenticating, and a transaction renaming the database holds it.  Then
 * it is ended: by pg_terminate_backend() (how = "terminate"; the primary
 * stays) or by a fast stop of the primary and a promotion ("stop").
 * wait_ms: the listener's.  With a wait left, the client is held again
 * and ends on the holder of the role, never seeing the error; with none,
 * it gets the server's error, not a bare close.
 */
static void
ended_after_auth_ok(const char *how, int wait_ms)
{
	const char *sock;
	char listen[512], addr[64], args[800], line[200], *out;
	PGconn *admin, *locker;
	FILE *held;
	size_t n;
	int pm, pid, st, lands = strcmp(how, "stop") == 0 ? 1 : 0;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; wait_ms = %d; }", addr, wait_ms);
	start_daemon(listen, NULL, 0, 1);
	sock = it_daemon_socket(dm);

	admin = itp_connect("127.0.0.1", it_port(cl, 0), NULL);
	ck_assert_int_eq(PQstatus(admin), CONNECTION_OK);
	ck_assert(itp_exec_ok(admin, "CREATE DATABASE holddb"));
	locker = itp_connect("127.0.0.1", it_port(cl, 0), NULL);
	ck_assert_int_eq(PQstatus(locker), CONNECTION_OK);
	ck_assert(itp_exec_ok(locker, "BEGIN; ALTER DATABASE holddb RENAME "
	    "TO holddb_locked"));

	snprintf(args, sizeof args, "PGCONNECT_TIMEOUT=60 %s/psql -X -A -t "
	    "'host=127.0.0.1 port=%d user=postgres dbname=holddb "
	    "sslmode=disable' -c 'select inet_server_port(), "
	    "pg_is_in_recovery(), current_database()' 2>&1", itp_bindir(), pm);
	ck_assert_ptr_nonnull(held = it_popen(args));
	ITD_ASSERT(dm, IT_POLL_UNTIL((pid = db_lock_waiter(admin, 0)) > 0,
	    ITD_STATE_MS), "the client's backend never waited for the lock");

	if (lands == 0) {
		snprintf(line, sizeof line, "SELECT pg_terminate_backend(%d)",
		    pid);
		ck_assert(itp_exec_ok(admin, line));
	} else
		it_stop(cl, 0, "fast");	/* ends the locker too */
	if (wait_ms == 0) {
		/* Nothing to wait for: the client gets the server's error. */
		out = calloc(1, 1024);
		n = fread(out, 1, 1023, held);
		st = it_pclose(held);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
		    strstr(out, "terminating connection due to administrator "
		    "command") != NULL, "psql (%zu bytes): %s", n, out);
		free(out);
		PQfinish(locker);
		PQfinish(admin);
		return;
	}
	if (lands == 0) {
		snprintf(line, sizeof line, "127.0.0.1:%d cannot take "
		    "connections now (SQLSTATE 57P01); holding",
		    it_port(cl, 0));
		ITD_ASSERT(dm, IT_POLL_UNTIL(itd_log_contains(dm, line),
		    ITD_STATE_MS), "the ended startup was not held again");
		/* Relayed again to the primary, it waits there again. */
		ITD_ASSERT(dm, IT_POLL_UNTIL(db_lock_waiter(admin, pid) > 0,
		    ITD_STATE_MS), "the client was not relayed again");
		ck_assert(itp_exec_ok(locker, "ROLLBACK"));
	} else
		it_promote(cl, 1);

	out = calloc(1, 512);
	n = fread(out, 1, 511, held);
	st = it_pclose(held);
	snprintf(args, sizeof args, "%d|f|holddb\n", it_port(cl, lands));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    strcmp(out, args) == 0, "held psql (%zu bytes): %s", n, out);
	free(out);
	ck_assert_int_eq(itp_figure(sock, addr, "refused_total"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "relayed_total"), 1);
	PQfinish(locker);
	PQfinish(admin);
}

START_TEST(test_backend_ended_after_auth_ok_holds_the_client_again)
{
	ended_after_auth_ok("terminate", 60000);
}
END_TEST

START_TEST(test_primary_stopped_after_auth_ok_holds_the_client_again)
{
	ended_after_auth_ok("stop", 60000);
}
END_TEST

START_TEST(test_backend_ended_after_auth_ok_past_the_wait_gets_the_error)
{
	ended_after_auth_ok("terminate", 0);
}
END_TEST

START_TEST(test_fencing_closes_open_transaction_on_old_primary)
{
	const char *sock;
	char listen[512], addr[64], line[128], *v;
	PGconn *conn;
	PGresult *r;
	int pm;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; }", addr);
	start_daemon(listen, NULL, 0, 1);
	sock = it_daemon_socket(dm);
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "create table fence_t (i int)"));
	free(v);
	it_wait_streaming(cl, 0, 1);

	conn = itp_connect("127.0.0.1", pm, NULL);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
	    PQerrorMessage(conn));
	ck_assert(itp_exec_ok(conn, "begin"));
	ck_assert(itp_exec_ok(conn, "insert into fence_t values (1)"));
	v = itp_value(conn, "select inet_server_port()");
	ck_assert_int_eq(atoi(v), it_port(cl, 0));
	free(v);

	/* The replica is promoted while the old primary still runs. */
	it_promote(cl, 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_port(sock, "main", "master")
	    == it_port(cl, 1), ITD_STATE_MS), "promotion not seen");

	/* Fenced when the promotion was seen: nothing more gets through. */
	r = PQexec(conn, "insert into fence_t values (2)");
	ck_assert_int_ne(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	r = PQexec(conn, "commit");
	ck_assert_int_ne(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(conn);
	ck_assert(it_sql_is(cl, 0, "select count(*) from fence_t", "0"));
	ck_assert(it_sql_is(cl, 1, "select count(*) from fence_t", "0"));
	snprintf(line, sizeof line, "fenced 1 connection(s) to 127.0.0.1:%d",
	    it_port(cl, 0));
	ITD_ASSERT(dm, itd_log_contains(dm, line), "no fence line");
	ck_assert_int_eq(itp_figure(sock, addr, "fenced_total"), 1);
	/* New clients go to the new primary. */
	ck_assert_int_eq(itp_lands_on("127.0.0.1", pm, NULL), it_port(cl, 1));
}
END_TEST

START_TEST(test_unrewound_old_primary_never_gets_a_connection)
{
	const char *sock;
	char listen[512];
	int pm, i, want;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; }", pm);
	start_daemon(listen, NULL, 0, 1);
	sock = it_daemon_socket(dm);

	it_stop(cl, 0, "immediate");
	it_promote(cl, 1);
	it_start(cl, 0);	/* a primary on the old timeline, not rewound */
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_port(sock, "main", "master")
	    == it_port(cl, 1) && itd_host_is(sock, "main", it_port(cl, 0),
	    true, NULL), ITD_STATE_MS), "old primary not back or not beaten");
	/* The listener follows RESOLVE, whatever rule keeps node 0 out. */
	for (i = 0; i < 20; i++) {
		want = itd_resolve_port(sock, "main", "master");
		ck_assert_int_eq(want, it_port(cl, 1));
		ck_assert_int_eq(itp_lands_on("127.0.0.1", pm, NULL), want);
	}
}
END_TEST

/* Sends a long query on conn and waits until node runs it. */
static void
start_sleep(PGconn *conn, int node, const char *tag)
{
	char sql[256], check[256];

	snprintf(sql, sizeof sql, "select pg_sleep(60) /* %s */", tag);
	ck_assert_int_eq(PQsendQuery(conn, sql), 1);
	snprintf(check, sizeof check, "select count(*) from pg_stat_activity "
	    "where query like '%%/* %s */%%' and state = 'active' and pid <> "
	    "pg_backend_pid()", tag);
	ck_assert_msg(IT_POLL_UNTIL(it_sql_is(cl, node, check, "1"),
	    ITD_STATE_MS), "%s never ran on node %d", tag, node);
}

/* Cancels conn's query and checks it ends with 57014. */
static void
cancel_and_check(PGconn *conn)
{
	PGcancel *cn = PQgetCancel(conn);
	PGresult *r;
	char err[256];
	bool canceled = false;

	ck_assert_ptr_nonnull(cn);
	ck_assert_msg(PQcancel(cn, err, sizeof err) == 1, "%s", err);
	PQfreeCancel(cn);
	while ((r = PQgetResult(conn)) != NULL) {
		const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		canceled |= s != NULL && strcmp(s, "57014") == 0;
		PQclear(r);
	}
	ck_assert_msg(canceled, "the query was not canceled");
}

START_TEST(test_cancel_reaches_the_session_server)
{
	char listen[512], *port_a, *port_b;
	PGconn *a, *b;
	int pr, na, nb;

	cl = it_cluster_create(2);
	pr = it_free_port();
	snprintf(listen, sizeof listen, "{ role = \"replica\"; address = "
	    "\"127.0.0.1:%d\"; }", pr);
	start_daemon(listen, NULL, 0, 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(dm),
	    "main", "replica", it_port(cl, 2)), ITD_STATE_MS), "no replica 2");

	/* Round robin: two sessions on two replicas. */
	a = itp_connect("127.0.0.1", pr, NULL);
	b = itp_connect("127.0.0.1", pr, NULL);
	ck_assert(PQstatus(a) == CONNECTION_OK && PQstatus(b) == CONNECTION_OK);
	port_a = itp_value(a, "select inet_server_port()");
	port_b = itp_value(b, "select inet_server_port()");
	na = atoi(port_a) == it_port(cl, 1) ? 1 : 2;
	nb = atoi(port_b) == it_port(cl, 1) ? 1 : 2;
	ck_assert_int_ne(na, nb);
	free(port_a);
	free(port_b);

	start_sleep(a, na, "cancel_a");
	start_sleep(b, nb, "cancel_b");
	cancel_and_check(b);
	/* a still runs on its server. */
	ck_assert(it_sql_is(cl, na, "select count(*) from pg_stat_activity "
	    "where query like '%/* cancel_a */%' and state = 'active' and pid "
	    "<> pg_backend_pid()", "1"));
	cancel_and_check(a);
	ITD_ASSERT(dm, itd_log_contains(dm, "(its session)"), "no cancel line");
	/* The sessions live on. */
	ck_assert(itp_exec_ok(a, "select 1"));
	ck_assert(itp_exec_ok(b, "select 1"));
	PQfinish(a);
	PQfinish(b);
}
END_TEST

START_TEST(test_bad_input_and_client_cap)
{
	static const char garbage[] = "GET / HTTP/1.0\r\n\r\n";
	const char *sock;
	char listen[512], addr[64], line[200];
	PGconn *c[3], *extra;
	int pm, fd1, fd2, i;

	cl = it_cluster_create(0);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; max_clients = 3; client_timeout_ms = 300; },"
	    "{ role = \"master\"; address = \"0.0.0.0:%d\"; }", addr,
	    it_free_port());
	start_daemon(listen, NULL, 0, -1);
	sock = it_daemon_socket(dm);
	/* Like the HTTP listener's, a warning off loopback. */
	ITD_ASSERT(dm, itd_log_contains(dm, "is not on loopback"),
	    "no loopback warning");
	snprintf(line, sizeof line, "listener %s (cluster main) is not on "
	    "loopback", addr);
	ck_assert(!itd_log_contains(dm, line));

	c[0] = itp_connect("127.0.0.1", pm, NULL);
	ck_assert_msg(PQstatus(c[0]) == CONNECTION_OK, "%s",
	    PQerrorMessage(c[0]));

	/* Garbage is closed at once; silence after client_timeout_ms. */
	ck_assert_int_ge(fd1 = itp_tcp_connect(pm), 0);
	ck_assert_int_eq(write(fd1, garbage, sizeof garbage - 1),
	    (ssize_t)sizeof garbage - 1);
	ck_assert(itd_sees_eof(fd1, ITD_REPLY_MS));
	close(fd1);
	ck_assert_int_ge(fd2 = itp_tcp_connect(pm), 0);
	ck_assert(itd_sees_eof(fd2, ITD_REPLY_MS));
	close(fd2);
	ITD_ASSERT(dm, itd_log_contains(dm, "sent no startup packet within "
	    "300 ms"), "no timeout line");
	/* Neither harmed the relayed client. */
	ck_assert(itp_exec_ok(c[0], "select 1"));

	/* The cap: the fourth client gets a PostgreSQL error. */
	for (i = 1; i < 3; i++) {
		c[i] = itp_connect("127.0.0.1", pm, NULL);
		ck_assert(PQstatus(c[i]) == CONNECTION_OK);
	}
	extra = itp_connect("127.0.0.1", pm, NULL);
	ck_assert(PQstatus(extra) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(extra), "too many clients on this "
	    "listener") != NULL, "%s", PQerrorMessage(extra));
	PQfinish(extra);
	PQfinish(c[2]);
	/* A slot is free again once a client leaves. */
	ck_assert(IT_POLL_UNTIL(itp_figure(sock, addr, "clients") == 2,
	    ITD_STATE_MS));
	extra = itp_connect("127.0.0.1", pm, NULL);
	ck_assert_msg(PQstatus(extra) == CONNECTION_OK, "%s",
	    PQerrorMessage(extra));
	PQfinish(extra);
	for (i = 0; i < 2; i++)
		PQfinish(c[i]);
	ck_assert(IT_POLL_UNTIL(itp_figure(sock, addr, "clients") == 0,
	    ITD_STATE_MS));
}
END_TEST

static Suite *
proxy_suite(void)
{
	Suite	*s = suite_create("proxy");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_every_role_unix_and_tcp);
	tcase_add_test(tc, test_clients_held_across_stop_and_promote);
	tcase_add_test(tc, test_refused_server_connect_holds_the_client_again);
	tcase_add_test(tc, test_server_closing_before_answering_holds_the_client_again);
	tcase_add_test(tc, test_server_shutting_down_holds_the_client_again);
	tcase_add_test(tc, test_backend_ended_after_auth_ok_holds_the_client_again);
	tcase_add_test(tc, test_primary_stopped_after_auth_ok_holds_the_client_again);
	tcase_add_test(tc, test_backend_ended_after_auth_ok_past_the_wait_gets_the_error);
	tcase_add_test(tc, test_fencing_closes_open_transaction_on_old_primary);
	tcase_add_test(tc, test_unrewound_old_primary_never_gets_a_connection);
	tcase_add_test(tc, test_cancel_reaches_the_session_server);
	tcase_add_test(tc, test_bad_input_and_client_cap);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_suite()));
}
