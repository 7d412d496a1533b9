/*
 * it_proxy_clients.c - connection listeners with the clients and
 * protocols they must pass untouched: a Python client (psycopg 3, Debian's
 * python3-psycopg) writing, reading back and reconnecting across a
 * stop-and-promote; SCRAM authentication with the right and a wrong
 * password; a replication connection (IDENTIFY_SYSTEM, then WAL streamed
 * by START_REPLICATION).
 */
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

/* Starts the daemon on cl with listen, and waits until it resolves the
 * master (node 0) and, when replica >= 0, that replica. */
static void
start_daemon(const char *listen, int replica)
{
	dm = itp_start(cl, listen, NULL, 0, replica);
}

/* Starts the daemon with one master listener on a free loopback port;
 * its "127.0.0.1:port" into addr, and the port. */
static int
start_master_listener(char *addr, size_t addrlen)
{
	char	listen[512];
	int	port = it_free_port();

	snprintf(addr, addrlen, "127.0.0.1:%d", port);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; }", addr);
	start_daemon(listen, -1);
	return port;
}

/* Runs sql on node (it must succeed). */
static void
node_sql(int node, const char *sql)
{
	char *v = it_sql(cl, node, sql);

	ck_assert_msg(v != NULL, "%s on node %d: %s", sql, node,
	    it_last_error());
	free(v);
}

/* --- Python ----------------------------------------------------------- */

/*
 * The client: connects through host:port, inserts argv[3] into py_t,
 * reads the table back, prints "wrote <port> <recovery> <rows>"; then
 * waits for a line on stdin, shows that its connection is gone
 * ("broken"), connects again (held by the listener while no host holds
 * the role) and does the same.  Its stdout goes to a file (flushed per
 * line) that the test polls.
 */
static const char py_client[] =
    "import sys, psycopg\n"
    "host, port, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n"
    "def session(conn):\n"
    "    global val\n"
    "    with conn.cursor() as cur:\n"
    "        cur.execute('insert into py_t (i, s) values (%s, %s)',\n"
    "                    (val, 'row %d' % val))\n"
    "        conn.commit()\n"
    "        cur.execute('select inet_server_port(), pg_is_in_recovery(), '\n"
    "                    \"string_agg(i::text || ':' || s, ',' order by i) \"\n"
    "                    'from py_t')\n"
    "        p, rec, rows = cur.fetchone()\n"
    "        conn.commit()\n"
    "    print('wrote', p, 't' if rec else 'f', rows, flush=True)\n"
    "    val += 1\n"
    "def connect():\n"
    "    return psycopg.connect(host=host, port=port, user='postgres',\n"
    "                           dbname='postgres', sslmode='disable',\n"
    "                           connect_timeout=60)\n"
    "conn = connect()\n"
    "session(conn)\n"
    "if sys.stdin.readline().strip() != 'again':\n"
    "    sys.exit(0)\n"
    "try:\n"
    "    conn.execute('select 1')\n"
    "    print('still connected', flush=True)\n"
    "except psycopg.OperationalError:\n"
    "    print('broken', flush=True)\n"
    "conn.close()\n"
    "conn = connect()\n"
    "session(conn)\n"
    "conn.close()\n";

/* True when path's text contains needle. */
static bool
file_has(const char *path, const char *needle)
{
	char *t = itd_read_file(path);
	bool ok = t != NULL && strstr(t, needle) != NULL;

	free(t);
	return ok;
}

START_TEST(test_python_psycopg_through_a_listener)
{
	const char *sock;
	char listen[512], addr[64], script[300], out[300], cmd[1200], want[200];
	char *text;
	FILE *f, *py;
	int pm, st;

	cl = it_cluster_create(1);
	pm = it_free_port();
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"%s\"; wait_ms = 60000; }", addr);
	start_daemon(listen, 1);
	sock = it_daemon_socket(dm);
	node_sql(0, "create table py_t (i int primary key, s text)");

	snprintf(script, sizeof script, "%s/py_client.py", it_cluster_dir(cl));
	snprintf(out, sizeof out, "%s/py_client.out", it_cluster_dir(cl));
	ck_assert_ptr_nonnull(f = fopen(script, "w"));
	fputs(py_client, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s 127.0.0.1 %d 1 >%s "
	    "2>&1", script, pm, out);
	ck_assert_ptr_nonnull(py = popen(cmd, "w"));

	/* Written and read back through the listener, on the primary. */
	snprintf(want, sizeof want, "wrote %d f 1:row 1\n", it_port(cl, 0));
	ITD_ASSERT(dm, IT_POLL_UNTIL(file_has(out, want) ||
	    file_has(out, "Error"), ITD_STATE_MS), "no first write");
	text = itd_read_file(out);
	ck_assert_msg(strcmp(text, want) == 0, "python: %s", text);
	free(text);
	ck_assert(it_sql_is(cl, 0, "select s from py_t where i = 1", "row 1"));

	/* The primary stops: the session ends; the client reconnects while
	 * no host holds the role, is held, and lands on the new primary. */
	it_wait_streaming(cl, 0, 1);
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_sql_is(cl, 1, "select count(*) from "
	    "py_t", "1"), ITD_STATE_MS), "the row never reached node 1");
	it_stop(cl, 0, "fast");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_err(sock, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the primary is still known");
	fputs("again\n", py);
	fflush(py);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr, "held") == 1,
	    ITD_STATE_MS), "the reconnecting client is not held");
	it_promote(cl, 1);
	st = pclose(py);
	text = itd_read_file(out);
	snprintf(want, sizeof want, "wrote %d f 1:row 1\nbroken\n"
	    "wrote %d f 1:row 1,2:row 2\n", it_port(cl, 0), it_port(cl, 1));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    strcmp(text, want) == 0, "python (status %d): %s", st, text);
	free(text);
	ck_assert(it_sql_is(cl, 1, "select s from py_t where i = 2", "row 2"));
	ck_assert_int_eq(itp_figure(sock, addr, "held"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "relayed_total"), 2);
}
END_TEST

/* --- SCRAM ------------------------------------------------------------ */

START_TEST(test_scram_through_a_listener)
{
	char addr[64], ci[200];
	PGconn *ok, *bad;
	char *v;
	int pm;

	cl = it_cluster_create(0);
	pm = start_master_listener(addr, sizeof addr);

	/* Role app must authenticate with SCRAM over TCP (the daemon's own
	 * user, postgres, keeps the harness's trust). */
	itp_node_set(cl, 0, "password_encryption", "scram-sha-256");
	node_sql(0, "create role app login password 'secret-pw'");
	ck_assert(it_sql_is(cl, 0, "select rolpassword like 'SCRAM-SHA-256$%' "
	    "from pg_authid where rolname = 'app'", "t"));
	itp_hba_prepend(cl, 0, "host all app 127.0.0.1/32 scram-sha-256");
	ck_assert(IT_POLL_UNTIL(it_sql_is(cl, 0, "select count(*) from "
	    "pg_hba_file_rules where 'app' = any(user_name) and auth_method = "
	    "'scram-sha-256'", "1"), ITD_STATE_MS));

	/* Directly: no password, no session (the rule is in force). */
	bad = itp_connect("127.0.0.1", it_port(cl, 0), "user=app");
	ck_assert_msg(PQstatus(bad) != CONNECTION_OK, "no password needed");
	PQfinish(bad);

	/* Through the listener: the right password logs in... */
	ok = itp_connect("127.0.0.1", pm, "user=app password=secret-pw");
	ck_assert_msg(PQstatus(ok) == CONNECTION_OK, "%s", PQerrorMessage(ok));
	v = itp_value(ok, "select current_user || ' ' || inet_server_port()");
	snprintf(ci, sizeof ci, "app %d", it_port(cl, 0));
	ck_assert_str_eq(v, ci);
	free(v);

	/* ... a wrong one gets the server's 28P01, and harms nothing. */
	bad = itp_connect("127.0.0.1", pm, "user=app password=wrong-pw");
	ck_assert(PQstatus(bad) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(bad), "password authentication "
	    "failed for user \"app\"") != NULL, "%s", PQerrorMessage(bad));
	PQfinish(bad);
	ck_assert(itp_exec_ok(ok, "select 1"));
	PQfinish(ok);
	ok = itp_connect("127.0.0.1", pm, "user=app password=secret-pw");
	ck_assert_msg(PQstatus(ok) == CONNECTION_OK, "%s", PQerrorMessage(ok));
	PQfinish(ok);
	ck_assert(it_resolves_to(it_daemon_socket(dm), "main", "master",
	    it_port(cl, 0)));
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "relayed_total"), 3);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "refused_total"), 0);
}
END_TEST

/* --- replication ------------------------------------------------------ */

/* Waits up to ITD_STATE_MS for one CopyData message of the replication
 * stream on conn; true when it is WAL (XLogData, 'w'). */
static bool
got_wal(PGconn *conn)
{
	int64_t deadline = it_now_ms() + ITD_STATE_MS;
	struct pollfd pf;
	char *buf;
	int n;

	for (;;) {
		n = PQgetCopyData(conn, &buf, 1);
		if (n > 0) {
			bool wal = buf[0] == 'w' && n > 25;

			PQfreemem(buf);
			if (wal)
				return true;
			continue;	/* a keepalive */
		}
		if (n < 0 || it_now_ms() >= deadline)
			return false;
		pf.fd = PQsocket(conn);
		pf.events = POLLIN;
		(void)poll(&pf, 1, 200);
		if (PQconsumeInput(conn) == 0)
			return false;
	}
}

START_TEST(test_replication_connection_through_a_listener)
{
	char addr[64], sql[200], *sysid;
	PGconn *rc;
	PGresult *r;
	int pm;

	cl = it_cluster_create(0);
	pm = start_master_listener(addr, sizeof addr);
	sysid = it_sql(cl, 0, "select system_identifier from "
	    "pg_control_system()");
	ck_assert_ptr_nonnull(sysid);

	/* A logical-replication walsender (replication=database). */
	rc = itp_connect("127.0.0.1", pm, "replication=database");
	ck_assert_msg(PQstatus(rc) == CONNECTION_OK, "%s", PQerrorMessage(rc));
	r = PQexec(rc, "IDENTIFY_SYSTEM");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
	    PQerrorMessage(rc));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), sysid);
	ck_assert_str_eq(PQgetvalue(r, 0, 3), "postgres");
	PQclear(r);
	PQfinish(rc);

	/* A physical one streams WAL, as pg_receivewal would. */
	rc = itp_connect("127.0.0.1", pm, "replication=true");
	ck_assert_msg(PQstatus(rc) == CONNECTION_OK, "%s", PQerrorMessage(rc));
	r = PQexec(rc, "IDENTIFY_SYSTEM");
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
	    PQerrorMessage(rc));
	ck_assert_str_eq(PQgetvalue(r, 0, 0), sysid);
	snprintf(sql, sizeof sql, "START_REPLICATION PHYSICAL %s TIMELINE %s",
	    PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1));
	PQclear(r);
	r = PQexec(rc, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COPY_BOTH, "%s: %s", sql,
	    PQerrorMessage(rc));
	PQclear(r);
	node_sql(0, "create table repl_t as select generate_series(1, 1000) i");
	ck_assert_msg(got_wal(rc), "no WAL through the listener: %s",
	    PQerrorMessage(rc));
	ck_assert(it_sql_is(cl, 0, "select count(*) from pg_stat_replication "
	    "where state = 'streaming'", "1"));
	PQfinish(rc);
	free(sysid);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "relayed_total"), 2);
}
END_TEST

static Suite *
proxy_clients_suite(void)
{
	Suite	*s = suite_create("proxy_clients");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_python_psycopg_through_a_listener);
	tcase_add_test(tc, test_scram_through_a_listener);
	tcase_add_test(tc, test_replication_connection_through_a_listener);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_clients_suite()));
}
