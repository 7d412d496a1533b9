/*
 * it_daemon_names.c - hosts given by name: the daemon resolves them with
 * libevent's asynchronous resolver (here from /etc/hosts, so no packet
 * leaves the machine), connects to the address it got, and answers with
 * the name as configured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../check_main.h"
#include "support/itest.h"

static struct it_cluster *cluster;

static void
setup(void)
{
	cluster = it_cluster_create(1);
}

static void
teardown(void)
{
	it_cluster_destroy(cluster);
}

static bool
answers_with(const char *sock, const char *role, const char *want)
{
	char *r = it_resolve(sock, "main", role);
	bool ok = r != NULL && strncmp(r, want, strlen(want)) == 0;

	free(r);
	return ok;
}

START_TEST(test_host_name_is_resolved_and_answered_as_configured)
{
	struct it_daemon *d;
	char *extra, *cfg, want[128];

	if (asprintf(&extra, "clusters = ( { name = \"main\"; hosts = ( "
	    "\"localhost:%d\", \"127.0.0.1:%d\" ); conninfo = \"user=postgres "
	    "dbname=postgres\"; } );\n", it_port(cluster, 0),
	    it_port(cluster, 1)) < 0)
		ck_abort_msg("out of memory");
	cfg = it_config(cluster, "main", extra);
	free(extra);
	d = it_daemon_start(cfg, it_cluster_dir(cluster));

	snprintf(want, sizeof(want), "OK host=localhost port=%d role=master ",
	    it_port(cluster, 0));
	ck_assert_msg(IT_POLL_UNTIL(answers_with(it_daemon_socket(d),
	    "master", want), 15000), "localhost never became the master");
	snprintf(want, sizeof(want), "OK host=127.0.0.1 port=%d role=replica ",
	    it_port(cluster, 1));
	ck_assert(IT_POLL_UNTIL(answers_with(it_daemon_socket(d), "replica",
	    want), 15000));

	free(cfg);
	ck_assert_int_eq(it_daemon_stop(d), 0);
}
END_TEST

static Suite *
names_suite(void)
{
	Suite *s = suite_create("daemon_names");
	TCase *tc = tcase_create("names");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_host_name_is_resolved_and_answered_as_configured);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run_suite(names_suite());
}
