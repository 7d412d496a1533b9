/*
 * it_lib_async_failover.c - the event-driven API rides out a failover: a
 * request loop on an event loop across a stop of the primary and the
 * promotion of a replica.  A request begun while no host is the primary
 * waits, without blocking the loop, for the WATCH event naming the new
 * one; none of the requests begun after the old primary's connections
 * dropped fails.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=it_af"
#define MAX_REQ		100000

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
setup(void)
{
	it_watched_start(&fx, 1);
	ck_assert(it_sql_is(fx.cluster, 0, "CREATE TABLE af (v int)", ""));
}

static void
teardown(void)
{
	it_watched_stop(&fx);
}

/* One request; written by the loop's thread. */
struct req {
	int64_t		 start_ms;
	int64_t		 end_ms;
	int		 ok;
	char		 error[256];
};

struct stream {
	pgb_db		*db;
	atomic_int	 stop;
	atomic_int	 n;		/* requests finished */
	atomic_int	 nok;
	struct req	*reqs;		/* MAX_REQ */
	int		 cur;		/* the request running */
	struct event_base *base;
	pgb_loop	*loop;
	struct event	*tick;
	atomic_int	 ticks;		/* loop iterations of a timer */
	struct event	*beat;
};

static void	next_request(struct stream *st);

static void
req_done(pgb_actx *ctx, int rc, void *arg)
{
	struct stream	*st = arg;
	struct req	*r = &st->reqs[st->cur];

	r->end_ms = it_now_ms();
	r->ok = rc == 0;
	if (!r->ok && r->error[0] == '\0')
		snprintf(r->error, sizeof r->error, "%s", pgb_actx_error(ctx));
	if (r->ok)
		atomic_fetch_add(&st->nok, 1);
	atomic_fetch_add(&st->n, 1);
	next_request(st);
}

static void
req_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct stream	*st = arg;

	if (res == NULL)
		snprintf(st->reqs[st->cur].error, sizeof st->reqs[0].error,
		    "%s", pgb_asession_error(s));
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
}

static void
req_fn(pgb_actx *ctx, void *arg)
{
	struct stream	*st = arg;

	if (pgb_aexec(pgb_actx_session(ctx, st->db),
	    "INSERT INTO af VALUES (1)", req_cb, st) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream	*st = arg;
	int		 i = atomic_load(&st->n);

	(void)fd;
	(void)what;
	if (atomic_load(&st->stop) || i >= MAX_REQ) {
		event_base_loopbreak(st->base);
		return;
	}
	st->cur = i;
	st->reqs[i].start_ms = it_now_ms();
	if (pgb_arun_in_new_ctx(st->loop, req_fn, st, req_done, st) == -1)
		abort();
}

static void
next_request(struct stream *st)
{
	struct timeval	tv = { 0, 0 };

	/* After a failure, do not spin: 2 ms. */
	if (!st->reqs[st->cur].ok)
		tv.tv_usec = 2000;
	evtimer_add(st->tick, &tv);
}

/* A 10 ms timer: counts while the loop keeps turning. */
static void
beat_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream	*st = arg;

	(void)fd;
	(void)what;
	atomic_fetch_add(&st->ticks, 1);
}

static void *
stream_main(void *arg)
{
	struct stream	*st = arg;
	struct timeval	 tv = { 0, 0 }, ten = { 0, 10000 };

	st->base = event_base_new();
	st->loop = pgb_loop_new(st->base, fx.sock);
	st->tick = evtimer_new(st->base, tick_cb, st);
	st->beat = event_new(st->base, -1, EV_PERSIST, beat_cb, st);
	if (st->base == NULL || st->loop == NULL || st->tick == NULL ||
	    st->beat == NULL)
		abort();
	evtimer_add(st->beat, &ten);
	evtimer_add(st->tick, &tv);
	(void)event_base_dispatch(st->base);
	event_free(st->beat);
	event_free(st->tick);
	pgb_loop_free(st->loop);
	event_base_free(st->base);
	return (NULL);
}

START_TEST(test_async_loop_across_failover_fails_nothing_begun_after)
{
	struct stream	 st;
	pthread_t	 th;
	int64_t		 dropped, promoting;
	int		 i, n, nok, after = 0, waited = 0, ticks;

	memset(&st, 0, sizeof st);
	st.reqs = calloc(MAX_REQ, sizeof *st.reqs);
	ck_assert_ptr_nonnull(st.reqs);
	st.db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(st.db);
	pgb_db_set_pool(st.db, 4, 60000, 30000);
	pgb_db_set_role_wait(st.db, 60000);	/* no timing in the test */
	ck_assert_int_eq(pthread_create(&th, NULL, stream_main, &st), 0);
	ck_assert(IT_POLL_UNTIL(atomic_load(&st.nok) >= 50, 20000));

	it_stop(fx.cluster, 0, "fast");
	dropped = it_now_ms();		/* its connections are gone */
	/* The loop keeps turning while requests wait for a primary. */
	ticks = atomic_load(&st.ticks);
	ck_assert(IT_POLL_UNTIL(atomic_load(&st.ticks) >= ticks + 5, 10000));
	promoting = it_now_ms();
	it_promote(fx.cluster, 1);
	nok = atomic_load(&st.nok);
	ck_assert(IT_POLL_UNTIL(atomic_load(&st.nok) >= nok + 50, 60000));
	atomic_store(&st.stop, 1);
	pthread_join(th, NULL);

	n = atomic_load(&st.n);
	for (i = 0; i < n; i++) {
		/*
		 * Begun while no host was the primary, done on the new one:
		 * it waited for the event instead of failing.
		 */
		if (st.reqs[i].ok && st.reqs[i].start_ms < promoting &&
		    st.reqs[i].end_ms > promoting)
			waited = 1;
		if (st.reqs[i].start_ms < dropped)
			continue;
		after++;
		ck_assert_msg(st.reqs[i].ok, "request %d, begun %lld ms after"
		    " the primary stopped, failed: %s", i,
		    (long long)(st.reqs[i].start_ms - dropped),
		    st.reqs[i].error);
	}
	ck_assert_int_ge(after, 50);
	ck_assert(waited);
	pgb_db_free(st.db);
	free(st.reqs);
}
END_TEST

static Suite *
lib_async_failover_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_async_failover");
	tc = tcase_create("failover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_async_loop_across_failover_fails_nothing_begun_after);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_async_failover_suite()));
}
