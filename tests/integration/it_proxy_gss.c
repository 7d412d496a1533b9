/*
 * it_proxy_gss.c - GSSAPI through a connection listener, against a real
 * MIT Kerberos KDC that the test starts (support/kdc.h): GSSAPI
 * authentication in clear (gssencmode=disable) and GSSAPI transport
 * encryption (gssencmode=require: the client's GSSENCRequest goes to the
 * server, and the encrypted stream comes back) with libpq and psql, and
 * a cancel of an encrypted session; a client held across a
 * stop-and-promote with its GSSENCRequest, then encrypted on the new
 * primary, and one past wait_ms refused in clear; a client without a
 * ticket gets GSSAPI's error and harms nothing.
 *
 * The servers authenticate role gssuser by GSSAPI on 127.0.0.1 (principal
 * gssuser@IT_KDC_REALM, include_realm=0) with the keytab of
 * postgres/localhost; the clients connect with host=localhost (which
 * names that principal) and hostaddr=127.0.0.1.  The daemon's own user,
 * postgres, keeps the harness's trust.
 */
#include <sys/wait.h>

#include <check.h>
#include <string.h>

#include "support/kdc.h"
#include "support/proxy_util.h"
#include "support/spawn.h"
#include "../check_main.h"

static struct it_cluster	*cl;
static struct it_daemon		*dm;
static struct it_kdc		*kdc;

/* How a session authenticated: gss_authenticated, principal, encrypted
 * and the server's port, as "t gssuser@PGBEACON.TEST f 20001". */
#define GSS_SESSION_SQL "select concat_ws(' ', gss_authenticated, " \
	"principal, encrypted, inet_server_port()) from pg_stat_gssapi " \
	"where pid = pg_backend_pid()"

/* Stops the KDC, then the daemon (a sanitizer report makes its exit
 * status nonzero), and destroys the cluster. */
static void
teardown(void)
{
	it_kdc_stop(kdc);
	kdc = NULL;
	itp_teardown(&cl, &dm);
}

/* A libpq connection as gssuser to 127.0.0.1:port with host=localhost,
 * gssencmode mode, with the client's ticket or without any; check
 * PQstatus(). */
static PGconn *
gss_connect(int port, const char *mode, bool ticket)
{
	char	 extra[200];
	PGconn	*conn;

	snprintf(extra, sizeof extra, "hostaddr=127.0.0.1 user=gssuser "
	    "gssencmode=%s", mode);
	it_kdc_ticket(kdc, ticket);
	conn = itp_connect("localhost", port, extra);
	it_kdc_ticket(kdc, false);
	return conn;
}

/* GSS_SESSION_SQL's answer on a new connection (with the ticket) through
 * port, or "error: " and libpq's message.  The caller frees it. */
static char *
gss_session(int port, const char *mode)
{
	PGconn	*conn = gss_connect(port, mode, true);
	char	*v;

	if (PQstatus(conn) != CONNECTION_OK) {
		if (asprintf(&v, "error: %s", PQerrorMessage(conn)) < 0)
			v = NULL;
	} else if ((v = itp_value(conn, GSS_SESSION_SQL)) == NULL &&
	    asprintf(&v, "error: %s", PQerrorMessage(conn)) < 0)
		v = NULL;
	PQfinish(conn);
	ck_assert_ptr_nonnull(v);
	return v;
}

/* GSS_SESSION_SQL's answer for a session of gssuser on node. */
static void
want_session(char *buf, size_t len, bool encrypted, int node)
{
	snprintf(buf, len, "t gssuser@%s %s %d", IT_KDC_REALM,
	    encrypted ? "t" : "f", it_port(cl, node));
}

/* Checks gss_session(port, mode) against a session on node. */
static void
assert_session(int port, const char *mode, bool encrypted, int node)
{
	char	 want[200], *v;

	want_session(want, sizeof want, encrypted, node);
	v = gss_session(port, mode);
	ITD_ASSERT(dm, strcmp(v, want) == 0, "gssencmode=%s through %d: "
	    "'%s', not '%s'", mode, port, v, want);
	free(v);
}

/* The psql command line of a gssuser session through port, with
 * gssencmode mode, printing GSS_SESSION_SQL. */
static void
gss_psql_args(char *buf, size_t len, int port, const char *mode)
{
	snprintf(buf, len, "'host=localhost hostaddr=127.0.0.1 port=%d "
	    "user=gssuser dbname=postgres sslmode=disable gssencmode=%s' "
	    "-c \"%s\"", port, mode, GSS_SESSION_SQL);
}

/* True when a session of gssuser straight to node is authenticated by
 * GSSAPI (once the server reloaded its pg_hba.conf); *last: its answer,
 * replacing the one before (the caller frees the last). */
static bool
direct_session_ok(int node, char **last)
{
	char	want[200];

	free(*last);
	want_session(want, sizeof want, false, node);
	*last = gss_session(it_port(cl, node), "disable");
	return strcmp(*last, want) == 0;
}

/*
 * The KDC, then a cluster of a primary and nreplicas replicas whose
 * servers authenticate gssuser by GSSAPI (checked directly on each), then
 * the daemon with a master listener (wait_ms 60 s) on a free loopback
 * port, whose port it returns, and the listeners in more (NULL: none).
 */
static int
gss_start(int nreplicas, const char *more)
{
	char	 listen[600], *v;
	int	 port, n;

	kdc = it_kdc_start("localhost", "gssuser");
	cl = it_cluster_create(nreplicas);
	for (n = 0; n <= nreplicas; n++) {
		itp_node_set(cl, n, "krb_server_keyfile",
		    it_kdc_server_keytab(kdc));
		itp_hba_prepend(cl, n, "host all gssuser 127.0.0.1/32 gss "
		    "include_realm=0");
	}
	ck_assert_ptr_nonnull(v = it_sql(cl, 0, "create role gssuser login"));
	free(v);
	for (n = 0; n <= nreplicas; n++) {
		v = NULL;
		ck_assert_msg(IT_POLL_UNTIL(direct_session_ok(n, &v),
		    ITD_STATE_MS), "node %d: no GSSAPI session directly: %s",
		    n, v);
		free(v);
	}
	port = it_free_port();
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; wait_ms = 60000; }%s%s", port,
	    more != NULL ? ", " : "", more != NULL ? more : "");
	dm = itp_start(cl, listen, NULL, 0, nreplicas > 0 ? 1 : -1);
	return port;
}

START_TEST(test_gss_authentication_through_a_listener)
{
	char addr[64], args[600], want[200], *out;
	int pm, st;

	pm = gss_start(0, NULL);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);

	/* libpq: authenticated by GSSAPI, in clear. */
	assert_session(pm, "disable", false, 0);
	/* psql the same. */
	gss_psql_args(args, sizeof args, pm, "disable");
	it_kdc_ticket(kdc, true);
	st = itp_psql(args, &out);
	it_kdc_ticket(kdc, false);
	want_session(want, sizeof want, false, 0);
	ck_assert_msg(st == 0 && strncmp(out, want, strlen(want)) == 0 &&
	    strcmp(out + strlen(want), "\n") == 0, "psql (%d): %s", st, out);
	free(out);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "relayed_total"), 2);
}
END_TEST

START_TEST(test_gss_encryption_through_a_listener)
{
	char addr[64], args[600], want[200], err[256], *out, *v;
	PGconn *conn;
	PGcancel *cn;
	PGresult *r;
	bool canceled = false;
	int pm, st;

	pm = gss_start(0, NULL);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);

	/* libpq and psql: GSSENCRequest accepted, the session encrypted. */
	assert_session(pm, "require", true, 0);
	gss_psql_args(args, sizeof args, pm, "require");
	it_kdc_ticket(kdc, true);
	st = itp_psql(args, &out);
	it_kdc_ticket(kdc, false);
	want_session(want, sizeof want, true, 0);
	ck_assert_msg(st == 0 && strncmp(out, want, strlen(want)) == 0 &&
	    strcmp(out + strlen(want), "\n") == 0, "psql (%d): %s", st, out);
	free(out);

	/* Megabytes of encrypted packets both ways, in order. */
	conn = gss_connect(pm, "require", true);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
	    PQerrorMessage(conn));
	ck_assert_int_eq(PQgssEncInUse(conn), 1);
	ck_assert(itp_exec_ok(conn, "create temp table t as select i, "
	    "md5(i::text) h from generate_series(1, 50000) i"));
	r = PQexec(conn, "select i, h from t order by i");
	ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(r), 50000);
	ck_assert_str_eq(PQgetvalue(r, 49999, 0), "50000");
	ck_assert_str_eq(PQgetvalue(r, 49999, 1),
	    "1017bfd4673955ffee4641ad3d481b1c");
	PQclear(r);
	v = itp_value(conn, "select md5(string_agg(h, '' order by i)) = "
	    "md5(string_agg(md5(i::text), '' order by i)) from t");
	ck_assert_str_eq(v, "t");
	free(v);

	/* A cancel: its key cannot be read in the encrypted stream, so the
	 * request goes to the role's current host, which runs the session. */
	ck_assert_int_eq(PQsendQuery(conn, "select pg_sleep(60) /* gss */"),
	    1);
	ck_assert(IT_POLL_UNTIL(it_sql_is(cl, 0, "select count(*) from "
	    "pg_stat_activity where query like '%/* gss */%' and state = "
	    "'active' and pid <> pg_backend_pid()", "1"), ITD_STATE_MS));
	ck_assert_ptr_nonnull(cn = PQgetCancel(conn));
	ck_assert_msg(PQcancel(cn, err, sizeof err) == 1, "%s", err);
	PQfreeCancel(cn);
	while ((r = PQgetResult(conn)) != NULL) {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		canceled |= code != NULL && strcmp(code, "57014") == 0;
		PQclear(r);
	}
	ck_assert(canceled);
	ITD_ASSERT(dm, itd_log_contains(dm, "(unknown session)"),
	    "no cancel line");
	ck_assert(itp_exec_ok(conn, "select 1"));
	PQfinish(conn);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "relayed_total"), 3);
}
END_TEST

START_TEST(test_gss_client_held_across_stop_and_promote)
{
	const char *sock;
	char addr[64], args[600], cmd[900], want[200], more[200];
	char *out;
	PGconn *old;
	FILE *held;
	size_t n;
	int pm, pshort, st;

	pshort = it_free_port();
	snprintf(more, sizeof more, "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; wait_ms = 200; }", pshort);
	pm = gss_start(1, more);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	sock = it_daemon_socket(dm);
	old = gss_connect(pm, "require", true);
	ck_assert_msg(PQstatus(old) == CONNECTION_OK, "%s",
	    PQerrorMessage(old));
	ck_assert(itp_exec_ok(old, "select 1"));

	it_stop(cl, 0, "fast");
	ITD_ASSERT(dm, IT_POLL_UNTIL(itd_resolve_err(sock, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the primary is still known");
	ck_assert(!itp_exec_ok(old, "select 1"));
	PQfinish(old);

	/* Past wait_ms the listener itself answers the GSSENCRequest 'N'
	 * (it cannot encrypt), then its error in clear. */
	old = gss_connect(pshort, "prefer", true);
	ck_assert(PQstatus(old) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(old), "pgbeacon: no server holds "
	    "role master of cluster main after waiting 200 ms") != NULL, "%s",
	    PQerrorMessage(old));
	PQfinish(old);
	old = gss_connect(pshort, "require", true);
	ck_assert(PQstatus(old) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(old), "server doesn't support "
	    "GSSAPI encryption, but it was required") != NULL, "%s",
	    PQerrorMessage(old));
	PQfinish(old);

	/* A psql asking for GSS encryption now is held, GSSENCRequest
	 * and all, and relayed to the new primary. */
	gss_psql_args(args, sizeof args, pm, "require");
	snprintf(cmd, sizeof cmd, "PGCONNECT_TIMEOUT=60 %s/psql -X -A -t %s "
	    "2>&1", itp_bindir(), args);
	it_kdc_ticket(kdc, true);
	held = it_popen(cmd);
	it_kdc_ticket(kdc, false);
	ck_assert_ptr_nonnull(held);
	ITD_ASSERT(dm, IT_POLL_UNTIL(itp_figure(sock, addr, "held") == 1,
	    ITD_STATE_MS), "the client is not held");
	it_promote(cl, 1);
	ck_assert_ptr_nonnull(out = calloc(1, 512));
	n = fread(out, 1, 511, held);
	st = it_pclose(held);
	want_session(want, sizeof want, true, 1);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
	    strncmp(out, want, strlen(want)) == 0 &&
	    strcmp(out + strlen(want), "\n") == 0, "held psql (%zu bytes): %s",
	    n, out);
	free(out);

	/* New connections land on the new primary, encrypted or not. */
	ITD_ASSERT(dm, IT_POLL_UNTIL(it_resolves_to(sock, "main", "master",
	    it_port(cl, 1)), ITD_STATE_MS), "node 1 is not the master");
	assert_session(pm, "require", true, 1);
	assert_session(pm, "disable", false, 1);
	ck_assert_int_eq(itp_figure(sock, addr, "held"), 0);
	ck_assert_int_eq(itp_figure(sock, addr, "relayed_total"), 4);
}
END_TEST

START_TEST(test_gss_client_without_a_ticket)
{
	char addr[64];
	PGconn *conn, *other;
	int pm;

	pm = gss_start(0, NULL);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", pm);
	other = gss_connect(pm, "require", true);
	ck_assert_msg(PQstatus(other) == CONNECTION_OK, "%s",
	    PQerrorMessage(other));

	/* The server asks for GSSAPI through the listener; without
	 * credentials the client cannot answer, and says why. */
	conn = gss_connect(pm, "disable", false);
	ck_assert(PQstatus(conn) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(conn), "GSSAPI") != NULL &&
	    strstr(PQerrorMessage(conn), "No Kerberos credentials") != NULL,
	    "%s", PQerrorMessage(conn));
	PQfinish(conn);
	/* gssencmode=prefer without credentials: in clear, the same. */
	conn = gss_connect(pm, "prefer", false);
	ck_assert(PQstatus(conn) != CONNECTION_OK);
	ck_assert_msg(strstr(PQerrorMessage(conn), "No Kerberos credentials")
	    != NULL, "%s", PQerrorMessage(conn));
	PQfinish(conn);

	/* Nothing else was harmed: the open session and a new one work. */
	ck_assert(itp_exec_ok(other, "select 1"));
	PQfinish(other);
	assert_session(pm, "require", true, 0);
	ck_assert(it_resolves_to(it_daemon_socket(dm), "main", "master",
	    it_port(cl, 0)));
	/* prefer with a ticket: encrypted. */
	assert_session(pm, "prefer", true, 0);
	ck_assert_int_eq(itp_figure(it_daemon_socket(dm), addr,
	    "relayed_total"), 5);
}
END_TEST

static Suite *
proxy_gss_suite(void)
{
	Suite	*s = suite_create("proxy_gss");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_gss_authentication_through_a_listener);
	tcase_add_test(tc, test_gss_encryption_through_a_listener);
	tcase_add_test(tc, test_gss_client_held_across_stop_and_promote);
	tcase_add_test(tc, test_gss_client_without_a_ticket);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_gss_suite()));
}
