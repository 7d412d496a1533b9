/*
 * it_lib_client.c - libpgbeacon's daemon client, watch and CLI against a
 * real pgbeacond: every request, the daemon absent, and the daemon
 * restarted under connected clients.
 */
#include <sys/wait.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/spawn.h"
#include "../check_main.h"

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
setup(void)
{
	it_watched_start(&fx, 1);
}

static void
teardown(void)
{
	it_watched_stop(&fx);
}

START_TEST(test_client_resolves_every_answer_form)
{
	pgb_client	*cl = pgb_client_new(fx.sock);
	pgb_resolved	 r;

	ck_assert_int_eq(pgb_client_ping(cl), 0);
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r), 0);
	ck_assert_str_eq(r.host, "127.0.0.1");
	ck_assert_int_eq(r.port, it_port(fx.cluster, 0));
	ck_assert_str_eq(r.role, "master");
	ck_assert_uint_ge(r.generation, 1);
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "replica",
	    "max_lag_ms=60000 fallback=none", &r), 0);
	ck_assert_int_eq(r.port, it_port(fx.cluster, 1));
	ck_assert_str_eq(r.role, "replica");

	ck_assert_int_eq(pgb_client_resolve(cl, "nope", "master", NULL, &r),
	    -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_NOCLUSTER);
	ck_assert_str_ne(pgb_client_error(cl), "");
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "boss", NULL, &r), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_BADROLE);
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", "bogus=1",
	    &r), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_BADREQ);
	/* Arguments that would break the line are refused locally. */
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master",
	    "max_lag_ms=1\nPING", &r), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_ARG);
	/* The connection is still in step after all that. */
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r), 0);
	pgb_client_free(cl);
}
END_TEST

START_TEST(test_client_reports_nohost_when_role_has_no_host)
{
	pgb_client	*cl = pgb_client_new(fx.sock);
	pgb_resolved	 r;

	it_stop(fx.cluster, 1, "fast");
	ck_assert(IT_POLL_UNTIL(pgb_client_resolve(cl, "main", "replica",
	    "fallback=none", &r) == -1 &&
	    pgb_client_errcode(cl) == PGB_ERR_NOHOST, 10000));
	pgb_client_free(cl);
}
END_TEST

START_TEST(test_client_status_returns_json_of_every_host)
{
	pgb_client	*cl = pgb_client_new(fx.sock);
	char		*json, port[32];

	ck_assert_int_eq(pgb_client_status(cl, NULL, &json), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"name\":\"main\""));
	snprintf(port, sizeof port, "\"port\":%d", it_port(fx.cluster, 1));
	ck_assert_ptr_nonnull(strstr(json, port));
	pgb_free(json);
	ck_assert_int_eq(pgb_client_status(cl, "main", &json), 0);
	pgb_free(json);
	ck_assert_int_eq(pgb_client_status(cl, "nope", &json), -1);
	ck_assert_ptr_null(json);
	pgb_client_free(cl);
}
END_TEST

START_TEST(test_socket_comes_from_environment_when_not_given)
{
	pgb_client	*cl;

	setenv(PGB_SOCKET_ENV, fx.sock, 1);
	cl = pgb_client_new(NULL);
	ck_assert_str_eq(pgb_client_socket(cl), fx.sock);
	ck_assert_int_eq(pgb_client_ping(cl), 0);
	pgb_client_free(cl);
	unsetenv(PGB_SOCKET_ENV);
	cl = pgb_client_new("");
	ck_assert_str_eq(pgb_client_socket(cl), PGB_DEFAULT_SOCKET);
	pgb_client_free(cl);
}
END_TEST

START_TEST(test_absent_daemon_gives_clear_error)
{
	char		 path[600], want[700];
	pgb_client	*cl;
	pgb_watch	*w;
	pgb_db		*db;
	pgb_session	*s;
	pgb_event	 ev;

	snprintf(path, sizeof path, "%s/absent.sock",
	    it_cluster_dir(fx.cluster));
	snprintf(want, sizeof want, "pgbeacond not reachable at %s: No such"
	    " file or directory", path);
	cl = pgb_client_new(path);
	ck_assert_int_eq(pgb_client_ping(cl), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_UNREACHABLE);
	ck_assert_str_eq(pgb_client_error(cl), want);
	pgb_client_free(cl);

	w = pgb_watch_new(path, "main");
	ck_assert_int_eq(pgb_watch_connected(w), 0);
	ck_assert_int_eq(pgb_watch_fd(w), -1);
	ck_assert_str_eq(pgb_watch_error(w), want);
	ck_assert_int_eq(pgb_watch_poll(w, &ev), -1);
	pgb_watch_free(w);

	db = pgb_db_new("user=postgres dbname=postgres", "main", "master", path);
	s = pgb_session_new(db, 0);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	/* The same code as the event-driven API gives (issue 8, section 6). */
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_UNREACHABLE);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), want));
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "main master"));
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* True when the watch delivers a resync notice. */
static bool
watch_resynced(pgb_watch *w)
{
	pgb_event	ev;

	while (pgb_watch_poll(w, &ev) == 1) {
		if (ev.resync)
			return (true);
	}
	return (false);
}

START_TEST(test_daemon_restart_is_transparent_to_connected_clients)
{
	pgb_client	*cl = pgb_client_new(fx.sock);
	pgb_watch	*w = pgb_watch_new(fx.sock, "main");
	pgb_db		*db;
	pgb_session	*s;
	pgb_resolved	 r;
	PGresult	*res;

	db = pgb_db_new("user=postgres dbname=postgres", "main", "master",
	    fx.sock);
	ck_assert_int_eq(pgb_watch_connected(w), 1);
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r), 0);
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	res = pgb_exec(s, "SELECT 1");
	ck_assert_ptr_nonnull(res);
	PQclear(res);
	pgb_session_close(s);

	/* Restart while the client holds its connection. */
	it_daemon_stop(fx.daemon);
	it_watched_daemon_start(&fx);	/* waits for both roles */
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r), 0);
	ck_assert_int_eq(r.port, it_port(fx.cluster, 0));
	/* The watch re-subscribes and says it may have missed events. */
	ck_assert(IT_POLL_UNTIL(watch_resynced(w), 5000));
	ck_assert_int_eq(pgb_watch_connected(w), 1);
	ck_assert_int_ge(pgb_watch_fd(w), 0);
	/* The db's hook asks the daemon again and goes on. */
	res = pgb_exec(s, "SELECT 1");
	ck_assert_msg(res != NULL, "%s", pgb_session_error(s));
	PQclear(res);
	pgb_session_close(s);

	/* While it is down: clear errors, then back to normal. */
	it_daemon_stop(fx.daemon);
	fx.daemon = NULL;
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r),
	    -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_UNREACHABLE);
	ck_assert_ptr_nonnull(strstr(pgb_client_error(cl),
	    "pgbeacond not reachable at"));
	ck_assert(IT_POLL_UNTIL(!pgb_watch_connected(w) ||
	    pgb_watch_poll(w, &(pgb_event){0}) == -1, 2000));
	it_watched_daemon_start(&fx);	/* waits for both roles */
	ck_assert_int_eq(pgb_client_resolve(cl, "main", "master", NULL, &r), 0);
	ck_assert(IT_POLL_UNTIL(watch_resynced(w), 5000));
	pgb_session_free(s);
	pgb_db_free(db);
	pgb_watch_free(w);
	pgb_client_free(cl);
}
END_TEST

/* Runs the CLI with args; its stdout in out, exit status returned. */
static int
run_cli(const char *args, char *out, size_t outlen)
{
	char	 cmd[1024];
	FILE	*f;
	size_t	 n;
	int	 st;

	snprintf(cmd, sizeof cmd, "%s/pgbeacon %s 2>/dev/null",
	    getenv("BUILD") != NULL ? getenv("BUILD") : "build", args);
	f = it_popen(cmd);
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, outlen - 1, f);
	out[n] = '\0';
	st = it_pclose(f);
	return (WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

START_TEST(test_cli_resolve_status_ping_exit_codes)
{
	char	args[700], out[8192], want[64];

	snprintf(args, sizeof args, "-s %s resolve main master", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
	snprintf(want, sizeof want, "127.0.0.1:%d\n", it_port(fx.cluster, 0));
	ck_assert_str_eq(out, want);
	snprintf(args, sizeof args, "-s %s resolve nope master", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 1);
	/* Distinct sysexits codes: usage 64, daemon unreachable 69. */
	snprintf(args, sizeof args, "-s %s resolve main", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 64);
	snprintf(args, sizeof args, "-s %s resolve main boss", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 64);
	ck_assert_int_eq(run_cli("-x", out, sizeof out), 64);
	snprintf(args, sizeof args, "-s %s/absent.sock ping",
	    it_cluster_dir(fx.cluster));
	ck_assert_int_eq(run_cli(args, out, sizeof out), 69);
	snprintf(args, sizeof args, "-s %s/absent.sock resolve main master",
	    it_cluster_dir(fx.cluster));
	ck_assert_int_eq(run_cli(args, out, sizeof out), 69);
	snprintf(args, sizeof args, "-s %s/absent.sock watch main",
	    it_cluster_dir(fx.cluster));
	ck_assert_int_eq(run_cli(args, out, sizeof out), 69);
	ck_assert_int_eq(run_cli("-V", out, sizeof out), 0);
	ck_assert_str_eq(out, "pgbeacon " PGB_VERSION_STRING "\n");
	snprintf(args, sizeof args, "-s %s ping", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
	snprintf(args, sizeof args, "-s %s status", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "cluster main"));
	ck_assert_ptr_nonnull(strstr(out, "replica"));
	ck_assert_ptr_nonnull(strstr(out, "ms ago"));
	snprintf(args, sizeof args, "-s %s status --json main", fx.sock);
	ck_assert_int_eq(run_cli(args, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "{\"clusters\":["));
}
END_TEST

static Suite *
lib_client_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_client");
	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_client_resolves_every_answer_form);
	tcase_add_test(tc, test_client_reports_nohost_when_role_has_no_host);
	tcase_add_test(tc, test_client_status_returns_json_of_every_host);
	tcase_add_test(tc, test_socket_comes_from_environment_when_not_given);
	tcase_add_test(tc, test_cli_resolve_status_ping_exit_codes);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_absent_daemon_gives_clear_error);
	tcase_add_test(tc, test_daemon_restart_is_transparent_to_connected_clients);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_client_suite()));
}
