/*
 * it_daemon_probe.c - what the monitor does when a probe fails on a good
 * connection: the server answers the probe with an error (here, the probe
 * user may not call pg_walfile_name()).  The host must count failures and
 * die after max_fails, but keep its connection and probe at the usual
 * pace: reconnecting at once would hammer the server in a tight loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <json-c/json.h>

#include "support/itest.h"
#include "../check_main.h"

static struct it_cluster *cluster;

static void
setup(void)
{
	cluster = it_cluster_create(0);
	ck_assert(it_sql_is(cluster, 0, "CREATE ROLE weak LOGIN", ""));
	ck_assert(it_sql_is(cluster, 0,
	    "REVOKE EXECUTE ON FUNCTION pg_walfile_name(pg_lsn) FROM PUBLIC",
	    ""));
}

static void
teardown(void)
{
	it_cluster_destroy(cluster);
}

/* The one host's "fails", "alive" and "error" from STATUS; false when the
 * daemon does not answer. */
static bool
host_state(const char *sock, int *fails, bool *alive, char *error,
    size_t errlen)
{
	struct json_object *o, *clusters, *hosts, *h, *v;
	int fd = it_sock_connect(sock);
	char *reply;
	bool ok = false;

	if (fd < 0)
		return false;
	reply = it_sock_request(fd, "STATUS", 5000);
	it_sock_close(fd);
	if (reply == NULL || strncmp(reply, "OK ", 3) != 0) {
		free(reply);
		return false;
	}
	o = json_tokener_parse(reply + 3);
	free(reply);
	if (o != NULL && json_object_object_get_ex(o, "clusters", &clusters) &&
	    (h = json_object_array_get_idx(clusters, 0)) != NULL &&
	    json_object_object_get_ex(h, "hosts", &hosts) &&
	    (h = json_object_array_get_idx(hosts, 0)) != NULL) {
		json_object_object_get_ex(h, "fails", &v);
		*fails = json_object_get_int(v);
		json_object_object_get_ex(h, "alive", &v);
		*alive = json_object_get_boolean(v);
		json_object_object_get_ex(h, "error", &v);
		snprintf(error, errlen, "%s", v != NULL ?
		    json_object_get_string(v) : "");
		ok = true;
	}
	json_object_put(o);
	return ok;
}

static bool
fails_at_least(const char *sock, int n)
{
	char error[256];
	bool alive;
	int fails;

	return host_state(sock, &fails, &alive, error, sizeof(error)) &&
	    fails >= n && !alive && strstr(error, "permission denied") != NULL;
}

static bool
is_alive(const char *sock)
{
	char error[256];
	bool alive;
	int fails;

	return host_state(sock, &fails, &alive, error, sizeof(error)) &&
	    alive && fails == 0;
}

static char *
probe_backend(void)
{
	return it_sql(cluster, 0, "SELECT string_agg(pid::text, ',') FROM "
	    "pg_stat_activity WHERE usename = 'weak'");
}

START_TEST(test_probe_error_keeps_the_connection_and_the_pace)
{
	struct it_daemon *d;
	const char *sock;
	char *cfg, *extra, *pid1, *pid2, *pid3, *reply;

	/* The probe logs in as the role without the privilege.  No
	 * connection checks: they would show a second backend of 'weak'
	 * for an instant. */
	if (asprintf(&extra, "max_fails = 2;\nconnect_check_interval_ms = 0;\n"
	    "clusters = ( { name = \"main\"; "
	    "hosts = ( \"127.0.0.1:%d\" ); conninfo = \"user=weak "
	    "dbname=postgres\"; } );\n", it_port(cluster, 0)) < 0)
		ck_abort_msg("out of memory");
	cfg = it_config(cluster, "main", extra);
	free(extra);
	d = it_daemon_start(cfg, it_cluster_dir(cluster));
	sock = it_daemon_socket(d);

	ck_assert_msg(IT_POLL_UNTIL(fails_at_least(sock, 2), 20000),
	    "the host was not found dead by failed probes");
	reply = it_resolve(sock, "main", "master");
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(strncmp(reply, "ERR NOHOST", 10) == 0, "got %s", reply);
	free(reply);

	/* Several more failed probes, all on the same backend. */
	pid1 = probe_backend();
	ck_assert_ptr_nonnull(pid1);
	ck_assert_msg(strchr(pid1, ',') == NULL && pid1[0] != '\0',
	    "expected one probe connection, got '%s'", pid1);
	ck_assert(IT_POLL_UNTIL(fails_at_least(sock, 6), 20000));
	pid2 = probe_backend();
	ck_assert_ptr_nonnull(pid2);
	ck_assert_str_eq(pid1, pid2);

	/* Once the probe may run again, the same connection finds the
	 * primary. */
	ck_assert(it_sql_is(cluster, 0,
	    "GRANT EXECUTE ON FUNCTION pg_walfile_name(pg_lsn) TO PUBLIC", ""));
	ck_assert_msg(IT_POLL_UNTIL(is_alive(sock), 20000),
	    "the host did not come back");
	pid3 = probe_backend();
	ck_assert_ptr_nonnull(pid3);
	ck_assert_str_eq(pid1, pid3);
	reply = it_resolve(sock, "main", "master");
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(strncmp(reply, "OK host=127.0.0.1", 17) == 0, "got %s",
	    reply);
	free(reply);

	free(pid1);
	free(pid2);
	free(pid3);
	free(cfg);
	ck_assert_int_eq(it_daemon_stop(d), 0);
}
END_TEST

static Suite *
probe_suite(void)
{
	Suite *s = suite_create("daemon_probe");
	TCase *tc = tcase_create("errors");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_probe_error_keeps_the_connection_and_the_pace);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(probe_suite()));
}
