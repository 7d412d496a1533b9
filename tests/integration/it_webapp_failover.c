/*
 * it_webapp_failover.c - a stream of HTTP requests to the example service
 * (started with a role wait of ROLE_WAIT_MS) across a failover (primary
 * stopped, replica promoted): no request that starts after the old
 * primary's connections dropped fails (the boundary of
 * it_lib_async_failover.c: once the fast stop has returned); those
 * begun while no host was the primary wait for the new one and run
 * there.  Only requests in flight on the old primary when the stop began
 * may fail, with a clear error.  Once the daemon reports the new primary
 * no request goes to the old one; every acknowledged write is on the new
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
#define ROLE_WAIT_MS	30000	/* well beyond a promotion on a loaded machine */
#define MAX_REQ		6000
#define BATCH		10	/* requests per wa_get_many() of the stream */
#define GAP_MS		20
#define NWIN		3	/* sent while no host is the primary */

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

/*
 * The request stream: batches of BATCH GET /simple, one every GAP_MS,
 * until stop.  resp and path are the sender thread's until it is joined;
 * meanwhile the other thread reads only the atomics.
 */
struct stream {
	int		 port;
	struct wa_resp	*resp;		/* MAX_REQ, owned */
	char		(*path)[32];	/* MAX_REQ, owned */
	atomic_int	 stop;
	atomic_int	 n;		/* requests answered (whole batches) */
	_Atomic int64_t	 last_sent;	/* t_sent of the last one answered */
};

static void *
sender_main(void *arg)
{
	struct stream	*st = arg;
	const char	*paths[BATCH];
	int		 i, n;

	for (n = 0; !atomic_load(&st->stop) && n + BATCH <= MAX_REQ;
	    n += BATCH) {
		for (i = 0; i < BATCH; i++) {
			snprintf(st->path[n + i], sizeof st->path[0],
			    "/simple?tag=fo_%d", n + i);
			paths[i] = st->path[n + i];
		}
		wa_get_many(st->port, paths, NULL, st->resp + n, BATCH, GAP_MS);
		atomic_store(&st->last_sent, st->resp[n + BATCH - 1].t_sent);
		atomic_store(&st->n, n + BATCH);
	}
	return (NULL);
}

/* The daemon answers that no host is the primary now. */
static bool
no_primary(void)
{
	char	*reply = it_resolve(fx.sock, "main", "master");
	bool	 none = reply != NULL && strncmp(reply, "ERR NOHOST", 10) == 0;

	free(reply);
	return (none);
}

/* Appends ",'tag'" to the growing IN list *sql. */
static void
sql_add_tag(char **sql, const char *tag)
{
	char	*n;

	ck_assert(asprintf(&n, "%s,'%s'", *sql, tag) != -1);
	free(*sql);
	*sql = n;
}

START_TEST(test_requests_across_a_failover_fail_only_in_flight_on_the_old_primary)
{
	struct stream	 st;
	struct wa_proc	 app;
	struct wa_resp	 r;
	pthread_t	 th;
	int64_t		 stopping, dropped, promoting, reported;
	char		 want0[64], want1[64], path[64], tag[32], buf[4096];
	char		*sql, *got;
	int		 win[NWIN];
	int		 i, n, ok0 = 0, ok1 = 0, failed = 0, late_ok = 0;
	int		 p0 = it_port(fx.cluster, 0);
	int		 p1 = it_port(fx.cluster, 1);

	wa_start_role_wait(&app, fx.sock, it_cluster_dir(fx.cluster), CONNINFO,
	    20, ROLE_WAIT_MS);
	wa_get(app.port, "/simple?tag=fo_warm", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	memset(&st, 0, sizeof st);
	st.port = app.port;
	st.resp = calloc(MAX_REQ, sizeof *st.resp);
	st.path = calloc(MAX_REQ, sizeof *st.path);
	ck_assert(st.resp != NULL && st.path != NULL);
	ck_assert_int_eq(pthread_create(&th, NULL, sender_main, &st), 0);
	/* Some requests on the old primary first. */
	ck_assert(IT_POLL_UNTIL(atomic_load(&st.n) >= 3 * BATCH, 30000));

	stopping = it_now_ms();
	it_stop(fx.cluster, 0, "fast");
	dropped = it_now_ms();		/* its connections are gone */
	ck_assert(IT_POLL_UNTIL(no_primary(), 30000));
	/*
	 * Requests begun while no host is the primary: they wait for the
	 * promotion.  Without the role wait they would fail at once.  The
	 * service has read them once it answers a later /health.
	 */
	for (i = 0; i < NWIN; i++) {
		snprintf(path, sizeof path, "/simple?tag=fo_w%d", i);
		win[i] = wa_raw_send(app.port, path);
	}
	ck_assert(wa_healthy(app.port));
	promoting = it_now_ms();
	it_promote(fx.cluster, 1);
	ck_assert_msg(IT_POLL_UNTIL(it_resolves_to(fx.sock, "main", "master",
	    p1), 30000), "the daemon never named node 1");
	reported = it_now_ms();
	/* The stream goes on until requests sent well after the report
	 * are answered. */
	ck_assert_msg(IT_POLL_UNTIL(atomic_load(&st.last_sent) >
	    reported + 1000, 120000), "the stream stalled after the failover");
	atomic_store(&st.stop, 1);
	pthread_join(th, NULL);
	n = atomic_load(&st.n);

	snprintf(want0, sizeof want0, "ok simple 127.0.0.1:%d master", p0);
	snprintf(want1, sizeof want1, "ok simple 127.0.0.1:%d master", p1);
	sql = strdup("SELECT count(*) FROM items WHERE tag IN ('fo_warm'");
	ck_assert_ptr_nonnull(sql);
	for (i = 0; i < NWIN; i++) {
		ck_assert_int_gt(wa_raw_read(win[i], buf, sizeof buf,
		    ROLE_WAIT_MS + 30000), 0);
		ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0 &&
		    strstr(buf, want1) != NULL, "request fo_w%d, begun while"
		    " no host was the primary: %s", i, buf);
		snprintf(tag, sizeof tag, "fo_w%d", i);
		sql_add_tag(&sql, tag);
	}
	for (i = 0; i < n; i++) {
		struct wa_resp	*q = &st.resp[i];

		ck_assert_msg(q->status > 0, "request %d: no answer", i);
		if (q->status != 200) {
			if (failed++ == 0)
				fprintf(stderr, "first failure: %d %s\n",
				    q->status, q->body);
			/* Only one in flight on the old primary may fail. */
			ck_assert_msg(q->t_sent < dropped, "request %d, begun"
			    " %lld ms after the old primary stopped, failed:"
			    " %d %s", i, (long long)(q->t_sent - dropped),
			    q->status, q->body);
			ck_assert_msg(q->t_done >= stopping, "request %d failed"
			    " before the stop: %d %s", i, q->status, q->body);
			ck_assert_msg(q->status >= 500, "request %d: %d", i,
			    q->status);
			/* A clear error: names the db (cluster and role). */
			ck_assert_msg(strstr(q->body, "main master") != NULL,
			    "request %d: unclear error: %s", i, q->body);
			continue;
		}
		if (strncmp(q->body, want0, strlen(want0)) == 0) {
			ok0++;
			/* Never the old primary once it was gone. */
			ck_assert_msg(q->t_sent < dropped, "request %d went to"
			    " the old primary %lld ms after it stopped", i,
			    (long long)(q->t_sent - dropped));
		} else if (strncmp(q->body, want1, strlen(want1)) == 0) {
			ok1++;
			/* Not before the promotion. */
			ck_assert(q->t_done > promoting);
		} else
			ck_abort_msg("request %d: %s", i, q->body);
		if (q->t_sent > reported + 1000)
			late_ok++;
		sql_add_tag(&sql, st.path[i] + strlen("/simple?tag="));
	}
	ck_assert_int_gt(ok0, 0);
	ck_assert_int_gt(ok1, 0);
	ck_assert_int_gt(late_ok, 0);
	fprintf(stderr, "failover: %d ok on the old primary, %d on the new,"
	    " %d failed (in flight); reported %lld ms after the stop\n", ok0,
	    ok1, failed, (long long)(reported - dropped));
	/* Every acknowledged write is on the new primary. */
	{
		char	*q, want[16];

		ck_assert(asprintf(&q, "%s)", sql) != -1);
		got = it_sql(fx.cluster, 1, q);
		ck_assert_ptr_nonnull(got);
		snprintf(want, sizeof want, "%d", ok0 + ok1 + NWIN + 1);
		ck_assert_msg(strcmp(got, want) == 0, "%s rows of %s"
		    " acknowledged writes on the new primary", got, want);
		free(got);
		free(q);
		free(sql);
	}
	ck_assert(it_sql_is(fx.cluster, 1, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'webapp' AND state LIKE"
	    " 'idle in transaction%'", "0"));
	ck_assert_int_eq(wa_stop(&app), 0);
	free(st.resp);
	free(st.path);
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
	    test_requests_across_a_failover_fail_only_in_flight_on_the_old_primary);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(failover_suite()));
}
