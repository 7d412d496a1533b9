/*
 * it_lib_pools.c - the pools of a pgb_db under threads and both APIs: a
 * min_lsn fallback routes one session and moves no pool, replica reads
 * spread over the replicas and reuse their connections, a connection
 * given back by a blocking thread wakes an event-driven waiter, and a
 * mixed load (blocking threads + a loop, master and replica dbs,
 * read-your-writes lookups) reuses connections instead of opening them,
 * and a replica the daemon stops naming loses its idle connections.
 * Against a real primary + 2 replicas and a real pgbeacond.  Threaded:
 * `make test-tsan` runs it under ThreadSanitizer.
 */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/lib_util.h"
#include "../check_main.h"

static struct it_watched	 fx;	/* cluster, daemon, socket */

#define CONNINFO	"user=postgres dbname=postgres application_name=pools"
/* An LSN no replica has replayed: the daemon answers the primary. */
#define FAR_LSN		"FFFFFFF/0"

static void
suite_setup(void)
{
	it_watched_start(&fx, 2);
	itl_primary_sql(&fx, "CREATE TABLE IF NOT EXISTS pools_t"
	    " (id bigserial PRIMARY KEY, v int)");
}

static void
suite_teardown(void)
{
	it_watched_stop(&fx);
}

/* Runs one SELECT on s; its port, or -1 (message printed). */
static int
select_port(pgb_session *s)
{
	PGresult	*res;
	int		 ok;

	res = pgb_exec(s, "SELECT 1");
	ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	if (!ok) {
		fprintf(stderr, "select: %s\n", pgb_session_error(s));
		return (-1);
	}
	return (pgb_session_port(s));
}

static int
is_replica_port(int port)
{
	return (port == it_port(fx.cluster, 1) ||
	    port == it_port(fx.cluster, 2));
}

/* --- routing ------------------------------------------------------------ */

START_TEST(test_min_lsn_fallback_routes_one_session_not_the_pool)
{
	pgb_db		*db;
	pgb_ctx		*ctx;
	pgb_session	*s;
	pgb_pool_stats	 before, after;
	char		 host[PGB_HOST_MAX];
	int		 i, port, cur;

	db = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_pool(db, 4, 5000, -1);
	/* Warm: plain reads on a replica, connection kept idle. */
	for (i = 0; i < 5; i++) {
		s = pgb_session_new(db, 0);
		ck_assert(is_replica_port(select_port(s)));
		pgb_session_free(s);
	}
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &cur), 0);
	pgb_db_stats(db, &before);
	ck_assert_int_ge(before.idle, 1);

	for (i = 0; i < 10; i++) {
		/* A read-your-writes lookup that only the primary can serve. */
		ctx = pgb_ctx_begin(0);
		ck_assert_ptr_nonnull(ctx);
		ck_assert_int_eq(pgb_ctx_set_lsn(ctx, FAR_LSN), 0);
		s = pgb_ctx_session(ctx, db);
		port = select_port(s);
		ck_assert_int_eq(port, it_port(fx.cluster, 0));
		ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
		pgb_ctx_free(ctx);
		/* The next plain read still goes to a replica, reusing. */
		s = pgb_session_new(db, 0);
		ck_assert(is_replica_port(select_port(s)));
		pgb_session_free(s);
	}
	pgb_db_stats(db, &after);
	ck_assert_uint_eq(after.host_changes, 0);
	/*
	 * No idle connection closed; one more opened for the primary (and
	 * one for the other replica if the daemon named it meanwhile).
	 */
	ck_assert_uint_eq(after.discarded, before.discarded);
	ck_assert_uint_le(after.opened, before.opened + 2);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert(is_replica_port(port));
	pgb_db_free(db);
}
END_TEST

START_TEST(test_replica_reads_spread_over_replicas_and_reuse)
{
	enum { N = 4, ROUNDS = 30 };
	pgb_db		*db;
	pgb_session	*s[N];
	pgb_pool_stats	 st;
	int		 i, r, port, on1 = 0, on2 = 0;

	db = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_pool(db, N, 5000, -1);
	pgb_db_set_recheck(db, 0);	/* the daemon names them in turn */
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < N; i++) {
			s[i] = pgb_session_new(db, 0);
			ck_assert_ptr_nonnull(s[i]);
			port = select_port(s[i]);
			ck_assert(is_replica_port(port));
			on1 += port == it_port(fx.cluster, 1);
			on2 += port == it_port(fx.cluster, 2);
		}
		for (i = 0; i < N; i++)
			pgb_session_free(s[i]);
	}
	pgb_db_stats(db, &st);
	ck_assert_msg(on1 > 0 && on2 > 0, "node1 %d, node2 %d", on1, on2);
	ck_assert_int_eq(st.qualifying, 2);
	ck_assert_uint_eq(st.host_changes, 0);
	/* N at once, each host at most N: never more than 2 * N opened. */
	ck_assert_uint_le(st.opened, 2 * N);
	ck_assert_uint_eq(st.checkouts, N * ROUNDS);
	ck_assert_uint_ge(st.reused, N * ROUNDS - 2 * N);
	pgb_db_free(db);
}
END_TEST

/* pgb_db_change_host keeps its documented swap, pools per host or not. */
START_TEST(test_change_host_swaps_the_whole_pool)
{
	pgb_db		*db;
	pgb_session	*s[3], *busy;
	pgb_pool_stats	 st;
	char		 host[PGB_HOST_MAX];
	int		 i, port;

	db = pgb_db_new_fixed(CONNINFO, "127.0.0.1", it_port(fx.cluster, 1),
	    "replica");
	ck_assert_ptr_nonnull(db);
	for (i = 0; i < 3; i++) {
		s[i] = pgb_session_new(db, 0);
		ck_assert_int_eq(select_port(s[i]), it_port(fx.cluster, 1));
	}
	busy = s[0];
	pgb_session_free(s[1]);
	pgb_session_free(s[2]);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.idle, 2);
	ck_assert_int_eq(st.busy, 1);

	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1",
	    it_port(fx.cluster, 2), "replica"), 0);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.host_changes, 1);
	ck_assert_int_eq(st.idle, 0);		/* closed at once */
	ck_assert_uint_eq(st.discarded, 2);
	ck_assert_int_eq(st.busy, 0);
	ck_assert_int_eq(st.retiring, 1);	/* closed when returned */
	ck_assert_int_eq(st.qualifying, 1);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert_int_eq(port, it_port(fx.cluster, 2));

	s[1] = pgb_session_new(db, 0);
	ck_assert_int_eq(select_port(s[1]), it_port(fx.cluster, 2));
	pgb_session_free(s[1]);
	pgb_session_free(busy);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 0);
	ck_assert_int_eq(st.idle, 1);
	ck_assert_int_eq(st.hosts, 1);
	/* The same host again: nothing moves. */
	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1",
	    it_port(fx.cluster, 2), NULL), 0);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.host_changes, 1);
	ck_assert_int_eq(st.idle, 1);
	pgb_db_free(db);
}
END_TEST

/*
 * pgb_pool_stats grew: the function pgb_db_stats, which programs built
 * against 0.1 call, fills the 0.1 fields only; the macro of the same
 * name fills all; pgb_db_stats_size is in its own version node.
 */
START_TEST(test_stats_keep_the_old_layout_for_old_binaries)
{
	pgb_db		*db;
	pgb_session	*s;
	pgb_pool_stats	 st;
	const char	*build = getenv("BUILD");
	char		 path[512];
	void		*h;

	db = pgb_db_new_fixed(CONNINFO, "127.0.0.1", it_port(fx.cluster, 0),
	    "master");
	ck_assert_ptr_nonnull(db);
	s = pgb_session_new(db, 0);
	ck_assert_int_eq(select_port(s), it_port(fx.cluster, 0));
	pgb_session_free(s);
	memset(&st, 0xab, sizeof st);
	(pgb_db_stats)(db, &st);		/* the function, not the macro */
	ck_assert_uint_eq(st.opened, 1);
	ck_assert_uint_eq(st.checkouts, 0xababababababababULL);
	ck_assert_int_eq(st.qualifying, (int)0xabababab);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.checkouts, 1);
	ck_assert_int_eq(st.qualifying, 1);
	ck_assert_int_eq(st.hosts, 1);
	pgb_db_free(db);

	snprintf(path, sizeof path, "%s/libpgbeacon.so.1",
	    build != NULL && *build != '\0' ? build : "build");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(h != NULL, "%s: %s", path, dlerror());
	ck_assert_ptr_nonnull(dlvsym(h, "pgb_db_stats_size", "PGBEACON_1.2"));
	ck_assert_ptr_nonnull(dlvsym(h, "pgb_db_stats", "PGBEACON_1"));
	dlclose(h);
}
END_TEST

/* --- blocking threads and an event loop on one db ------------------------ */

struct load {
	pgb_db		*master;
	pgb_db		*replica;	/* or NULL */
	atomic_int	 stop;
	atomic_int	 done;		/* requests that worked */
	atomic_int	 failed;
	int		 max;		/* requests per thread, 0: until stop */
};

/* One request: a write on the master, then (replica db) a read of it. */
static int
request_fn(pgb_ctx *ctx, void *arg)
{
	struct load	*ld = arg;
	pgb_session	*s;
	PGresult	*res;
	int		 ok;

	s = pgb_ctx_session(ctx, ld->master);
	res = pgb_exec(s, "INSERT INTO pools_t (v) VALUES (1)");
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		return (-1);
	if (ld->replica == NULL)
		return (0);
	if (pgb_ctx_commit_all(ctx) == -1)
		return (-1);
	/* Read-your-writes: min_lsn; a lagging replica falls back. */
	s = pgb_ctx_session(ctx, ld->replica);
	res = pgb_exec(s, "SELECT count(*) FROM pools_t");
	ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	return (ok ? 0 : -1);
}

static void *
blocking_thread(void *arg)
{
	struct load	*ld = arg;
	char		 err[512];
	int		 n;

	for (n = 0; ld->max == 0 ? !atomic_load(&ld->stop) : n < ld->max;
	    n++) {
		if (pgb_run_in_new_ctx(request_fn, ld, err, sizeof err) == 0)
			atomic_fetch_add(&ld->done, 1);
		else {
			atomic_fetch_add(&ld->failed, 1);
			fprintf(stderr, "blocking request: %s\n", err);
		}
	}
	return (NULL);
}

struct areq {
	struct load	*ld;
	int		 stage;
	int		 finished;
	int		 rc;
	int64_t		 took_ms;
	int64_t		 start_ms;
	char		 error[512];
};

static void	a_read_cb(pgb_asession *s, PGresult *res, void *arg);

static void
a_commit_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct areq	*q = arg;
	pgb_asession	*s;

	if (rc == -1 || q->ld->replica == NULL) {
		snprintf(q->error, sizeof q->error, "%s", pgb_actx_error(ctx));
		pgb_actx_finish(ctx, rc);
		return;
	}
	s = pgb_actx_session(ctx, q->ld->replica);
	if (s == NULL || pgb_aexec(s, "SELECT count(*) FROM pools_t",
	    a_read_cb, q) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
a_write_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct areq	*q = arg;
	pgb_actx	*ctx = pgb_asession_ctx(s);

	if (res == NULL) {
		snprintf(q->error, sizeof q->error, "%s",
		    pgb_asession_error(s));
		pgb_actx_finish(ctx, -1);
		return;
	}
	if (pgb_actx_commit_all(ctx, a_commit_cb, q) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
a_read_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct areq	*q = arg;

	if (res == NULL)
		snprintf(q->error, sizeof q->error, "%s",
		    pgb_asession_error(s));
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
}

static void
a_start(pgb_actx *ctx, void *arg)
{
	struct areq	*q = arg;
	pgb_asession	*s;

	s = pgb_actx_session(ctx, q->ld->master);
	if (s == NULL || pgb_aexec(s, "INSERT INTO pools_t (v) VALUES (2)",
	    a_write_cb, q) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
a_done(pgb_actx *ctx, int rc, void *arg)
{
	struct areq	*q = arg;

	if (rc == -1 && q->error[0] == '\0')
		snprintf(q->error, sizeof q->error, "%s", pgb_actx_error(ctx));
	q->rc = rc;
	q->took_ms = it_now_ms() - q->start_ms;
	q->finished = 1;
}

/*
 * Runs n event-driven requests, k at a time, on a fresh loop; the number
 * that failed (each failure printed).
 */
static int
run_async(struct load *ld, int n, int k)
{
	struct event_base	*base;
	pgb_loop		*loop;
	struct areq		*q;
	int			 i, started = 0, finished = 0, failed = 0;
	int			 running = 0;

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	q = calloc((size_t)n, sizeof *q);
	ck_assert_ptr_nonnull(q);
	while (finished < n) {
		while (started < n && running < k) {
			q[started].ld = ld;
			q[started].start_ms = it_now_ms();
			ck_assert_int_eq(pgb_arun_in_new_ctx(loop, a_start,
			    &q[started], a_done, &q[started]), 0);
			started++;
			running++;
		}
		event_base_loop(base, EVLOOP_ONCE);
		for (i = 0, running = 0, finished = 0; i < started; i++) {
			if (!q[i].finished)
				running++;
			else
				finished++;
		}
	}
	for (i = 0; i < n; i++) {
		if (q[i].rc != 0) {
			failed++;
			fprintf(stderr, "async request %d (%lld ms): %s\n", i,
			    (long long)q[i].took_ms, q[i].error);
		}
	}
	free(q);
	pgb_loop_free(loop);
	event_base_free(base);
	return (failed);
}

START_TEST(test_blocking_returns_wake_event_driven_waiters)
{
	enum { THREADS = 6 };
	struct load	 ld = { 0 };
	pthread_t	 t[THREADS];
	pgb_pool_stats	 st;
	int		 i, failed;

	ld.master = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(ld.master);
	/* Fewer connections than blocking threads: they queue all along. */
	pgb_db_set_pool(ld.master, 4, 2000, -1);
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, blocking_thread,
		    &ld), 0);
	ck_assert(IT_POLL_UNTIL(atomic_load(&ld.done) >= 50, 60000));
	failed = run_async(&ld, 30, 3);
	atomic_store(&ld.stop, 1);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pgb_db_stats(ld.master, &st);
	ck_assert_int_eq(failed, 0);
	ck_assert_int_eq(atomic_load(&ld.failed), 0);
	ck_assert_uint_le(st.opened, 4);
	ck_assert_uint_gt(st.waits, 0);
	pgb_db_free(ld.master);
}
END_TEST

START_TEST(test_mixed_load_reuses_connections)
{
	enum { THREADS = 4, PER_THREAD = 300, ASYNC = 200, SIZE = 4 };
	struct load	 ld = { 0 };
	pthread_t	 t[THREADS];
	pgb_pool_stats	 ms, rs;
	uint64_t	 checkouts, reused;
	int		 i, failed;

	ld.master = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ld.replica = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(ld.master);
	ck_assert_ptr_nonnull(ld.replica);
	pgb_db_set_pool(ld.master, SIZE, 10000, -1);
	pgb_db_set_pool(ld.replica, SIZE, 10000, -1);
	ld.max = PER_THREAD;
	for (i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, blocking_thread,
		    &ld), 0);
	failed = run_async(&ld, ASYNC, 4);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(failed, 0);
	ck_assert_int_eq(atomic_load(&ld.failed), 0);
	pgb_db_stats(ld.master, &ms);
	pgb_db_stats(ld.replica, &rs);
	fprintf(stderr, "mixed load: master opened %llu checkouts %llu;"
	    " replica opened %llu checkouts %llu reused %llu hosts %d\n",
	    (unsigned long long)ms.opened, (unsigned long long)ms.checkouts,
	    (unsigned long long)rs.opened, (unsigned long long)rs.checkouts,
	    (unsigned long long)rs.reused, rs.hosts);
	ck_assert_uint_eq(ms.checkouts, THREADS * PER_THREAD + ASYNC);
	ck_assert_uint_eq(rs.checkouts, THREADS * PER_THREAD + ASYNC);
	/* Master: 1 host.  Replica db: 2 replicas + the primary fallback. */
	ck_assert_uint_le(ms.opened, SIZE * 1 + ms.broken);
	ck_assert_uint_le(rs.opened, SIZE * 3 + rs.broken);
	ck_assert_uint_eq(rs.host_changes, 0);
	checkouts = ms.checkouts + rs.checkouts;
	reused = ms.reused + rs.reused;
	ck_assert_msg(reused * 100 >= checkouts * 99, "reused %llu of %llu",
	    (unsigned long long)reused, (unsigned long long)checkouts);
	pgb_db_free(ld.replica);
	pgb_db_free(ld.master);
}
END_TEST

/* --- a host that loses the role ------------------------------------------ */

/* Runs 4 plain reads on db at once, counting their hosts; -1: one failed. */
static int
reads_on(pgb_db *db, int *on1, int *on2)
{
	enum { N = 4 };
	pgb_session	*s[N];
	int		 i, port, rc = 0;

	for (i = 0; i < N; i++) {
		s[i] = pgb_session_new(db, 0);
		port = select_port(s[i]);
		if (port == -1)
			rc = -1;
		*on1 += port == it_port(fx.cluster, 1);
		*on2 += port == it_port(fx.cluster, 2);
	}
	for (i = 0; i < N; i++)
		pgb_session_free(s[i]);
	return (rc);
}

START_TEST(test_host_that_loses_the_role_loses_its_idle_connections)
{
	pgb_db		*db;
	pgb_pool_stats	 st;
	int		 on1 = 0, on2 = 0, i;

	db = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_pool(db, 4, 5000, -1);
	pgb_db_set_recheck(db, 0);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(reads_on(db, &on1, &on2), 0);
	ck_assert(on1 > 0 && on2 > 0);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.qualifying, 2);

	/* Node 2 goes away: the daemon stops naming it. */
	it_stop(fx.cluster, 2, "fast");
	ck_assert(IT_POLL_UNTIL(it_resolves_to(fx.sock, "main", "replica",
	    it_port(fx.cluster, 1)) && it_resolves_to(fx.sock, "main",
	    "replica", it_port(fx.cluster, 1)), 15000));
	/* Sessions that still meet node 2 fail once; then it is gone. */
	ck_assert(IT_POLL_UNTIL((on1 = on2 = 0, reads_on(db, &on1, &on2) ==
	    0 && on2 == 0 && (pgb_db_stats(db, &st), st.qualifying == 1)),
	    15000));
	pgb_db_stats(db, &st);
	/* Every connection left is to node 1; none to node 2 stays idle. */
	ck_assert_int_eq(st.hosts, 1);
	ck_assert_int_le(st.idle, 4);
	ck_assert_int_eq(st.retiring, 0);
	it_start(fx.cluster, 2);
	it_wait_streaming(fx.cluster, 0, 2);
	pgb_db_free(db);
}
END_TEST

static Suite *
pools_suite(void)
{
	Suite	*s = suite_create("lib_pools");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_test(tc,
	    test_min_lsn_fallback_routes_one_session_not_the_pool);
	tcase_add_test(tc, test_replica_reads_spread_over_replicas_and_reuse);
	tcase_add_test(tc, test_change_host_swaps_the_whole_pool);
	tcase_add_test(tc, test_stats_keep_the_old_layout_for_old_binaries);
	tcase_add_test(tc, test_blocking_returns_wake_event_driven_waiters);
	tcase_add_test(tc, test_mixed_load_reuses_connections);
	tcase_add_test(tc,
	    test_host_that_loses_the_role_loses_its_idle_connections);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(pools_suite()));
}
