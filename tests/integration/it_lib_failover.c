/*
 * it_lib_failover.c - a stream of requests through a master pgb_db while
 * the primary moves: once pgbeacond reports the new primary, every
 * request goes to it, and no pooled connection to the old one is reused.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define MAX_REQ	100000

static struct it_watched	 fx;	/* cluster, daemon, socket */

/* One request of the stream, written by the worker only. */
struct req {
	int64_t		start_ms;
	int		ok;
	int		port;		/* server that ran it; 0 on failure */
};

struct stream {
	pgb_db		*db;
	atomic_int	 stop;
	atomic_int	 n;		/* requests recorded */
	atomic_int	 nok;
	struct req	*reqs;		/* MAX_REQ of them */
};

/* The daemon names node as the primary. */
static bool
master_is(int node)
{
	return (it_resolves_to(fx.sock, "main", "master",
	    it_port(fx.cluster, node)));
}

static void
setup(void)
{
	it_watched_start(&fx, 2);
	ck_assert(it_sql_is(fx.cluster, 0, "CREATE TABLE f (v int)", ""));
}

static void
teardown(void)
{
	it_watched_stop(&fx);
}

/* One request: a write in a context, committed. */
static void
one_request(struct stream *st, struct req *r)
{
	pgb_ctx		*ctx;
	PGresult	*res;

	r->start_ms = it_now_ms();
	ctx = pgb_ctx_begin(0);
	res = pgb_exec(pgb_ctx_session(ctx, st->db),
	    "INSERT INTO f VALUES (1) RETURNING inet_server_port()");
	if (res != NULL) {
		r->port = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	r->ok = res != NULL && pgb_ctx_end(ctx, 200) == 0;
	if (!r->ok)
		r->port = 0;
	pgb_ctx_free(ctx);
}

static void *
stream_main(void *arg)
{
	struct stream	*st = arg;
	int		 i;

	while (!atomic_load(&st->stop) && (i = atomic_load(&st->n)) < MAX_REQ) {
		one_request(st, &st->reqs[i]);
		if (st->reqs[i].ok)
			atomic_fetch_add(&st->nok, 1);
		atomic_store(&st->n, i + 1);
		if (!st->reqs[i].ok)
			it_sleep_ms(2);		/* do not spin while down */
	}
	return (NULL);
}

static void
stream_start(struct stream *st, pthread_t *th)
{
	memset(st, 0, sizeof *st);
	st->reqs = calloc(MAX_REQ, sizeof *st->reqs);
	st->db = pgb_db_new("user=postgres dbname=postgres"
	    " application_name=it_failover", "main", "master", fx.sock);
	ck_assert_ptr_nonnull(st->reqs);
	ck_assert_ptr_nonnull(st->db);
	pgb_db_set_pool(st->db, 4, 2000, 30000);
	ck_assert_int_eq(pthread_create(th, NULL, stream_main, st), 0);
	ck_assert(IT_POLL_UNTIL(atomic_load(&st->nok) >= 50, 10000));
}

/*
 * Stops the stream once 50 more requests succeeded after known_ms, and
 * checks that every request begun after known_ms went to new_port.
 */
static void
stream_check(struct stream *st, pthread_t th, int64_t known_ms,
    int old_port, int new_port)
{
	pgb_pool_stats	ps;
	int		i, n, before = 0, after = 0, nok;

	nok = atomic_load(&st->nok);
	ck_assert(IT_POLL_UNTIL(atomic_load(&st->nok) >= nok + 50, 10000));
	atomic_store(&st->stop, 1);
	pthread_join(th, NULL);
	n = atomic_load(&st->n);
	for (i = 0; i < n; i++) {
		if (!st->reqs[i].ok)
			continue;
		if (st->reqs[i].start_ms < known_ms) {
			ck_assert_msg(st->reqs[i].port == old_port ||
			    st->reqs[i].port == new_port, "request %d on"
			    " port %d", i, st->reqs[i].port);
			before += st->reqs[i].port == old_port;
		} else {
			ck_assert_msg(st->reqs[i].port == new_port,
			    "request %d, begun %lld ms after the change was"
			    " known, went to port %d", i,
			    (long long)(st->reqs[i].start_ms - known_ms),
			    st->reqs[i].port);
			after++;
		}
	}
	ck_assert_int_ge(before, 50);
	ck_assert_int_ge(after, 50);
	pgb_db_stats(st->db, &ps);
	ck_assert_uint_ge(ps.host_changes, 1);
	ck_assert_int_eq(ps.retiring, 0);
	pgb_db_free(st->db);
	free(st->reqs);
}

START_TEST(test_failover_mid_stream_moves_requests_to_new_primary)
{
	struct stream	st;
	pthread_t	th;
	int64_t		known;

	stream_start(&st, &th);
	it_stop(fx.cluster, 0, "fast");
	it_promote(fx.cluster, 1);
	ck_assert(IT_POLL_UNTIL(master_is(1), 10000));
	known = it_now_ms();
	stream_check(&st, th, known, it_port(fx.cluster, 0),
	    it_port(fx.cluster, 1));
}
END_TEST

START_TEST(test_old_primary_still_up_gets_nothing_once_change_known)
{
	struct stream	st;
	pthread_t	th;
	int64_t		known;
	const char	*q = "SELECT count(*) FROM pg_stat_activity"
			    " WHERE application_name = 'it_failover'";

	stream_start(&st, &th);
	ck_assert(it_sql_is(fx.cluster, 0, q, "1"));
	/* node0 keeps running and accepting writes: only the timeline
	 * rule makes node1 the primary. */
	it_promote(fx.cluster, 1);
	ck_assert(IT_POLL_UNTIL(master_is(1), 10000));
	known = it_now_ms();
	/* The pool's connection to node0 is closed, not kept for later. */
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 0, q, "0"), 5000));
	stream_check(&st, th, known, it_port(fx.cluster, 0),
	    it_port(fx.cluster, 1));
	ck_assert(it_sql_is(fx.cluster, 0, q, "0"));
}
END_TEST

/* The daemon answers that no host is the primary now. */
static bool
no_primary(void)
{
	pgb_client	*cl;
	pgb_resolved	 r;
	bool		 none;

	cl = pgb_client_new(fx.sock);
	ck_assert_ptr_nonnull(cl);
	none = pgb_client_resolve(cl, "main", "master", NULL, &r) == -1 &&
	    pgb_client_errcode(cl) == PGB_ERR_NOHOST;
	pgb_client_free(cl);
	return (none);
}

static void *
one_main(void *arg)
{
	struct stream	*st = arg;

	one_request(st, &st->reqs[0]);
	atomic_store(&st->n, 1);
	return (NULL);
}

/*
 * A request begun while no host is the primary waits for the WATCH
 * event naming the new one, and runs there, instead of failing.
 */
START_TEST(test_request_during_failover_waits_for_new_primary)
{
	struct stream	st;
	pgb_pool_stats	ps;
	pthread_t	th;
	uint64_t	resolves;

	memset(&st, 0, sizeof st);
	st.reqs = calloc(2, sizeof *st.reqs);
	st.db = pgb_db_new("user=postgres dbname=postgres"
	    " application_name=it_failover", "main", "master", fx.sock);
	ck_assert_ptr_nonnull(st.reqs);
	ck_assert_ptr_nonnull(st.db);
	pgb_db_set_role_wait(st.db, 120000);	/* no timing in the test */
	one_request(&st, &st.reqs[1]);
	ck_assert(st.reqs[1].ok);
	it_stop(fx.cluster, 0, "fast");
	ck_assert(IT_POLL_UNTIL(no_primary(), 30000));
	pgb_db_stats(st.db, &ps);
	resolves = ps.resolves;
	ck_assert_int_eq(pthread_create(&th, NULL, one_main, &st), 0);
	/* The request asked and heard "no primary" before the promotion. */
	ck_assert(IT_POLL_UNTIL((pgb_db_stats(st.db, &ps),
	    ps.resolves > resolves), 30000));
	ck_assert(IT_POLL_UNTIL(no_primary(), 30000));
	ck_assert_int_eq(atomic_load(&st.n), 0);
	it_promote(fx.cluster, 1);
	pthread_join(th, NULL);
	ck_assert_msg(st.reqs[0].ok, "%s", pgb_db_error(st.db));
	ck_assert_int_eq(st.reqs[0].port, it_port(fx.cluster, 1));
	pgb_db_free(st.db);
	free(st.reqs);
}
END_TEST

static Suite *
lib_failover_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_failover");
	tc = tcase_create("failover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_failover_mid_stream_moves_requests_to_new_primary);
	tcase_add_test(tc, test_old_primary_still_up_gets_nothing_once_change_known);
	tcase_add_test(tc, test_request_during_failover_waits_for_new_primary);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_failover_suite()));
}
