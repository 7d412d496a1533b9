/*
 * it_lib_replica_events.c - the WATCH event names the live replicas
 * (replicas=, since 0.6): pgbeacond pushes one when a replica dies, and a
 * replica-role db drains that replica at once, long before its recheck_ms
 * would have made it ask again.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=it_rev"

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
setup(void)
{
	it_watched_start(&fx, 2);
}

static void
teardown(void)
{
	it_watched_stop(&fx);
}

/* The node of cluster fx whose port is port, or -1. */
static int
node_of(int port)
{
	int	i;

	for (i = 0; i < it_cluster_nodes(fx.cluster); i++) {
		if (it_port(fx.cluster, i) == port)
			return (i);
	}
	return (-1);
}

/* One read through db; the port of the server that ran it, 0 on failure
 * (its error in err). */
static int
one_read(pgb_db *db, char *err, size_t errlen)
{
	pgb_ctx		*ctx;
	PGresult	*res;
	int		 port = 0;

	ctx = pgb_ctx_begin(0);
	res = pgb_exec(pgb_ctx_session(ctx, db), "SELECT inet_server_port()");
	if (res != NULL)
		port = atoi(PQgetvalue(res, 0, 0));
	else
		snprintf(err, errlen, "%s",
		    pgb_session_error(pgb_ctx_session(ctx, db)));
	PQclear(res);
	pgb_ctx_free(ctx);
	return (port);
}

/*
 * An event was pushed (*seen, sticky across calls) and the daemon no
 * longer names the replica on port.
 */
static bool
event_without(pgb_watch *w, int port, bool *seen)
{
	pgb_event	ev;

	while (pgb_watch_poll(w, &ev) == 1)
		*seen = true;
	return (*seen && !it_resolves_to(fx.sock, "main", "replica", port));
}

START_TEST(test_dead_replica_drained_before_recheck)
{
	pgb_db		*db;
	pgb_watch	*w;
	pgb_pool_stats	 ps;
	char		 err[512] = "";
	int		 first, port, i, node;
	bool		 seen = false;

	db = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_recheck(db, 600000);		/* never within the test */
	first = one_read(db, err, sizeof err);
	ck_assert_msg(first != 0, "%s", err);
	node = node_of(first);
	ck_assert_int_ge(node, 1);
	/* The answer is reused: no second daemon round trip. */
	ck_assert_int_eq(one_read(db, err, sizeof err), first);
	pgb_db_stats(db, &ps);
	ck_assert_uint_eq(ps.resolves, 1);

	w = pgb_watch_new(fx.sock, "main");
	ck_assert_ptr_nonnull(w);
	ck_assert(pgb_watch_connected(w));
	it_stop(fx.cluster, node, "immediate");
	/* The daemon saw it go and pushed the event (to us, and to db). */
	ck_assert(IT_POLL_UNTIL(event_without(w, first, &seen), 30000));
	for (i = 0; i < 20; i++) {
		port = one_read(db, err, sizeof err);
		ck_assert_msg(port != 0, "read %d failed: %s", i, err);
		ck_assert_int_ne(port, first);
	}
	pgb_db_stats(db, &ps);
	ck_assert_int_eq(ps.qualifying, 1);
	pgb_watch_free(w);
	pgb_db_free(db);
}
END_TEST

/* --- the event-driven API ---------------------------------------------- */

struct aread {
	int	done;
	int	port;
	char	error[512];
};

static void
aread_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct aread	*r = arg;

	if (res != NULL)
		r->port = atoi(PQgetvalue(res, 0, 0));
	else
		snprintf(r->error, sizeof r->error, "%s",
		    pgb_asession_error(s));
	r->done = 1;
}

/* One read through db on loop; the server's port, 0 on failure. */
static int
aone_read(struct event_base *base, pgb_loop *loop, pgb_db *db, char *err,
    size_t errlen)
{
	struct aread	 r;
	pgb_actx	*ctx;

	memset(&r, 0, sizeof r);
	ctx = pgb_actx_new(loop);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(pgb_aexec(pgb_actx_session(ctx, db),
	    "SELECT inet_server_port()", aread_cb, &r), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    r.done), 30000));
	pgb_actx_free(ctx);
	if (r.port == 0)
		snprintf(err, errlen, "%s", r.error);
	return (r.port);
}

static void
count_event_cb(pgb_loop *loop, const pgb_event *ev, void *arg)
{
	(void)loop;
	if (!ev->resync)
		(*(int *)arg)++;
}

START_TEST(test_async_dead_replica_drained_before_recheck)
{
	struct event_base	*base;
	pgb_loop		*loop;
	pgb_db			*db;
	pgb_pool_stats		 ps;
	char			 err[512] = "";
	int			 first, port, i, node, events = 0;

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	pgb_loop_set_event_cb(loop, count_event_cb, &events);
	db = pgb_db_new(CONNINFO, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	pgb_db_set_recheck(db, 600000);		/* never within the test */
	ck_assert_int_eq(pgb_loop_attach(loop, db), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    pgb_loop_watching(loop)), 15000));
	first = aone_read(base, loop, db, err, sizeof err);
	ck_assert_msg(first != 0, "%s", err);
	node = node_of(first);
	ck_assert_int_ge(node, 1);
	/* A second read may go to the other replica: plain sessions spread
	 * over the qualifying hosts (db_dispatch()). */
	ck_assert_int_ne(aone_read(base, loop, db, err, sizeof err), 0);
	pgb_db_stats(db, &ps);
	/* At least the first; an EVENT about replicas becoming live right
	 * after the start may make the binding ask once more (recheck_ms,
	 * 10 minutes, cannot). */
	ck_assert_uint_ge(ps.resolves, 1);

	events = 0;
	it_stop(fx.cluster, node, "immediate");
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    events > 0 && !it_resolves_to(fx.sock, "main", "replica", first)),
	    30000));
	for (i = 0; i < 20; i++) {
		port = aone_read(base, loop, db, err, sizeof err);
		ck_assert_msg(port != 0, "read %d failed: %s", i, err);
		ck_assert_int_ne(port, first);
	}
	pgb_loop_free(loop);
	pgb_db_free(db);
	event_base_free(base);
}
END_TEST

static Suite *
lib_replica_events_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_replica_events");
	tc = tcase_create("blocking");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_dead_replica_drained_before_recheck);
	suite_add_tcase(s, tc);
	tc = tcase_create("async");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_async_dead_replica_drained_before_recheck);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_replica_events_suite()));
}
