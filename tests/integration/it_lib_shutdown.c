/*
 * it_lib_shutdown.c - a request that starts while the primary is
 * shutting down is not failed: its new connection is refused with 57P03
 * ("the database system is shutting down"), which means the role is
 * moving, so the library drops that host, waits for the daemon to name
 * the role's next holder, and runs the request there.  The primary is
 * held in a smart shutdown (SIGTERM to its postmaster: new connections
 * refused, old ones served) while the daemon still names it; then it
 * stops and a replica is promoted.  Both APIs.  Against a real
 * primary + replica and a real pgbeacond.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=it_sd"

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

/* True when a new connection to node is refused as shutting down. */
static bool
refused_as_shutting_down(int node)
{
	char	 ci[256];
	PGconn	*pg;
	bool	 yes;

	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d " CONNINFO,
	    it_port(fx.cluster, node));
	pg = PQconnectdb(ci);
	yes = PQstatus(pg) != CONNECTION_OK &&
	    strstr(PQerrorMessage(pg), "shutting down") != NULL;
	PQfinish(pg);
	return (yes);
}

/*
 * Puts node 0 in a smart shutdown: it refuses new connections with 57P03
 * while the daemon's connection (which keeps it from stopping) still
 * shows it as the primary.
 */
static void
begin_smart_shutdown(void)
{
	ck_assert_int_eq(kill(it_pid(fx.cluster, 0), SIGTERM), 0);
	ck_assert(IT_POLL_UNTIL(refused_as_shutting_down(0), 20000));
}

static atomic_int	failover_done;

/* Stops node 0 (fast: its last connections are ended) and promotes 1. */
static void *
failover_thread(void *arg)
{
	(void)arg;
	it_stop(fx.cluster, 0, "fast");
	it_promote(fx.cluster, 1);
	failover_done = 1;
	return (NULL);
}

static uint64_t
role_lost(pgb_db *db)
{
	pgb_pool_stats	st;

	pgb_db_stats(db, &st);
	return (st.role_lost);
}

/* --- event-driven API ------------------------------------------------------ */

struct got {
	int		 calls;
	int		 ok;
	char		 value[32];
	char		 error[512];
};

static void
res_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	if (g->ok)
		snprintf(g->value, sizeof g->value, "%s", PQgetvalue(res, 0, 0));
	snprintf(g->error, sizeof g->error, "%s", pgb_asession_error(s));
}

START_TEST(test_async_request_refused_as_shutting_down_runs_on_the_next_primary)
{
	struct event_base	*base;
	pgb_loop		*loop;
	pgb_db			*db;
	pgb_actx		*ctx;
	struct got		 g = { 0 };
	pthread_t		 t;
	char			 want[16];

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_role_wait(db, 60000);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    pgb_loop_watching(loop)), 10000));

	begin_smart_shutdown();
	/* A new request: its connection is refused (57P03). */
	ctx = pgb_actx_new(loop);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db),
	    "SELECT inet_server_port()::text", res_cb, &g), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    g.calls > 0 || role_lost(db) > 0), 20000));
	ck_assert_msg(g.calls == 0, "failed at once: %s", g.error);

	/* The old primary goes, a replica is promoted; the loop runs. */
	failover_done = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, failover_thread, NULL), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    g.calls > 0 && failover_done), 90000));
	pthread_join(t, NULL);
	ck_assert_msg(g.ok, "%s", g.error);
	snprintf(want, sizeof want, "%d", it_port(fx.cluster, 1));
	ck_assert_str_eq(g.value, want);
	pgb_actx_free(ctx);
	pgb_loop_free(loop);
	pgb_db_free(db);
	event_base_free(base);
}
END_TEST

/* --- blocking API ---------------------------------------------------------- */

struct breq {
	pgb_db		*db;
	atomic_int	 done;
	int		 ok;
	char		 value[32];
	char		 error[512];
};

/* One request of the blocking API, in a context of its own. */
static void *
breq_thread(void *arg)
{
	struct breq	*q = arg;
	pgb_ctx		*ctx;
	pgb_session	*s;
	PGresult	*res;

	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, q->db);
	res = pgb_exec(s, "SELECT inet_server_port()::text");
	q->ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (q->ok)
		snprintf(q->value, sizeof q->value, "%s", PQgetvalue(res, 0, 0));
	snprintf(q->error, sizeof q->error, "%s", pgb_session_error(s));
	PQclear(res);
	(void)pgb_ctx_end(ctx, 200);
	pgb_ctx_free(ctx);
	q->done = 1;
	return (NULL);
}

START_TEST(test_blocking_request_refused_as_shutting_down_runs_on_the_next_primary)
{
	struct breq	 q = { 0 };
	pthread_t	 t, f;
	char		 want[16];

	q.db = pgb_db_new(CONNINFO, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(q.db);
	pgb_db_set_role_wait(q.db, 60000);
	begin_smart_shutdown();
	ck_assert_int_eq(pthread_create(&t, NULL, breq_thread, &q), 0);
	/* Its connection is refused (57P03): it waits, it does not fail. */
	ck_assert(IT_POLL_UNTIL(q.done || role_lost(q.db) > 0, 20000));
	ck_assert_msg(!q.done, "failed at once: %s", q.error);

	failover_done = 0;
	ck_assert_int_eq(pthread_create(&f, NULL, failover_thread, NULL), 0);
	ck_assert(IT_POLL_UNTIL(q.done && failover_done, 90000));
	pthread_join(f, NULL);
	pthread_join(t, NULL);
	ck_assert_msg(q.ok, "%s", q.error);
	snprintf(want, sizeof want, "%d", it_port(fx.cluster, 1));
	ck_assert_str_eq(q.value, want);
	pgb_db_free(q.db);
}
END_TEST

static Suite *
shutdown_suite(void)
{
	Suite	*s = suite_create("lib_shutdown");
	TCase	*tc;

	tc = tcase_create("shutdown");
	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    test_async_request_refused_as_shutting_down_runs_on_the_next_primary);
	tcase_add_test(tc,
	    test_blocking_request_refused_as_shutting_down_runs_on_the_next_primary);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(shutdown_suite()));
}
