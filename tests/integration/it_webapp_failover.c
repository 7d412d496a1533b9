/*
 * it_webapp_failover.c - 200 HTTP requests to the example service with a
 * failover in the middle (primary stopped, replica promoted): every
 * request either succeeds on the host that was primary at the time or
 * fails with a clear error; once the daemon reports the new primary, no
 * request goes to the old one; every acknowledged write is on the new
 * primary.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/webapp_util.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=webapp"
#define NREQ		200
#define NLATE		20	/* sent 1 s after the daemon named node 1 */
#define GAP_MS		20

static struct it_watched	 fx;	/* cluster, daemon, socket */
static _Atomic int64_t		 t_reported;	/* daemon names node 1 */
static _Atomic int64_t		 t_stopped;	/* node 0 stopped */

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

/* Stops the primary, promotes node 1, notes when the daemon says so. */
static void *
failover_thread(void *arg)
{
	(void)arg;
	it_sleep_ms(800);
	it_stop(fx.cluster, 0, "fast");
	t_stopped = it_now_ms();
	it_promote(fx.cluster, 1);
	if (IT_POLL_UNTIL(it_resolves_to(fx.sock, "main", "master",
	    it_port(fx.cluster, 1)), 20000))
		t_reported = it_now_ms();
	return (NULL);
}

START_TEST(test_200_requests_across_a_failover_go_to_the_right_primary)
{
	static char	 pathbuf[NREQ + NLATE][64];
	static struct wa_resp resp[NREQ + NLATE];
	const char	*paths[NREQ + NLATE];
	struct wa_proc	 app;
	struct wa_resp	 r;
	pthread_t	 t;
	char		 want0[64], want1[64], *sql, *got;
	size_t		 len;
	int		 i, ok0 = 0, ok1 = 0, failed = 0, late_ok = 0;
	int		 p0 = it_port(fx.cluster, 0);
	int		 p1 = it_port(fx.cluster, 1);

	wa_start(&app, fx.sock, it_cluster_dir(fx.cluster), CONNINFO, 20);
	wa_get(app.port, "/simple?tag=fo_warm", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	for (i = 0; i < NREQ + NLATE; i++) {
		snprintf(pathbuf[i], sizeof pathbuf[i], "/simple?tag=fo_%d", i);
		paths[i] = pathbuf[i];
	}
	ck_assert_int_eq(pthread_create(&t, NULL, failover_thread, NULL), 0);
	wa_get_many(app.port, paths, NULL, resp, NREQ, GAP_MS);
	pthread_join(t, NULL);
	ck_assert_msg(t_reported > 0, "the daemon never named node 1");
	/*
	 * On a loaded machine the promotion may outlast the batch above, so
	 * the requests "well after the report" are a batch of their own,
	 * sent once a second has passed since the report whenever that was.
	 */
	while (it_now_ms() <= t_reported + 1000)
		it_sleep_ms(10);
	wa_get_many(app.port, paths + NREQ, NULL, resp + NREQ, NLATE, GAP_MS);

	snprintf(want0, sizeof want0, "ok simple 127.0.0.1:%d master", p0);
	snprintf(want1, sizeof want1, "ok simple 127.0.0.1:%d master", p1);
	len = strlen(want0);
	sql = strdup("SELECT count(*) FROM items WHERE tag IN ('fo_warm'");
	for (i = 0; i < NREQ + NLATE; i++) {
		ck_assert_msg(resp[i].status > 0, "request %d: no answer", i);
		if (resp[i].status == 200) {
			char	*n;

			if (strncmp(resp[i].body, want0, len) == 0) {
				ok0++;
				/* Never the old primary once replaced. */
				ck_assert_msg(resp[i].t_sent < t_reported,
				    "request %d went to the old primary %lld ms"
				    " after the new one was reported", i,
				    (long long)(resp[i].t_sent - t_reported));
			} else if (strncmp(resp[i].body, want1,
			    strlen(want1)) == 0) {
				ok1++;
				/* Not before the old one was gone. */
				ck_assert(resp[i].t_done > t_stopped);
			} else
				ck_abort_msg("request %d: %s", i,
				    resp[i].body);
			if (resp[i].t_sent > t_reported + 1000)
				late_ok++;
			ck_assert(asprintf(&n, "%s,'fo_%d'", sql, i) != -1);
			free(sql);
			sql = n;
		} else {
			if (failed++ == 0)
				fprintf(stderr, "first failure: %d %s\n",
				    resp[i].status, resp[i].body);
			ck_assert_msg(resp[i].status >= 500, "request %d: %d",
			    i, resp[i].status);
			/* A clear error: names the db (cluster and role). */
			ck_assert_msg(strstr(resp[i].body, "main master") !=
			    NULL, "request %d: unclear error: %s", i,
			    resp[i].body);
		}
	}
	/* Requests well after the report all worked, on the new primary. */
	for (i = 0; i < NREQ + NLATE; i++) {
		if (resp[i].t_sent > t_reported + 1000)
			ck_assert_msg(resp[i].status == 200, "request %d after"
			    " the failover: %d %s", i, resp[i].status,
			    resp[i].body);
	}
	ck_assert_int_gt(ok0, 0);
	ck_assert_int_gt(ok1, 0);
	ck_assert_int_gt(late_ok, 0);
	fprintf(stderr, "failover: %d ok on the old primary, %d on the new,"
	    " %d failed; reported %lld ms after the stop\n", ok0, ok1, failed,
	    (long long)(t_reported - t_stopped));
	/* Every acknowledged write is on the new primary. */
	{
		char	*n, want[16];

		ck_assert(asprintf(&n, "%s)", sql) != -1);
		free(sql);
		sql = n;
		got = it_sql(fx.cluster, 1, sql);
		ck_assert_ptr_nonnull(got);
		snprintf(want, sizeof want, "%d", ok0 + ok1 + 1);
		ck_assert_msg(strcmp(got, want) == 0, "%s rows of %s"
		    " acknowledged writes on the new primary", got, want);
		free(got);
		free(sql);
	}
	ck_assert(it_sql_is(fx.cluster, 1, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'webapp' AND state LIKE"
	    " 'idle in transaction%'", "0"));
	ck_assert_int_eq(wa_stop(&app), 0);
}
END_TEST

static Suite *
failover_suite(void)
{
	Suite	*s = suite_create("webapp_failover");
	TCase	*tc;

	tc = tcase_create("failover");
	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    test_200_requests_across_a_failover_go_to_the_right_primary);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(failover_suite()));
}
