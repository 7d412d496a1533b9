/*
 * it_lib_async_dns.c - host names in the event-driven API: resolved with
 * evdns on the loop, never with libpq's blocking getaddrinfo.  A slow DNS
 * server (tests/harness/slowdns) answers a second late; meanwhile a timer
 * of the same loop keeps ticking and a session on a numeric host
 * completes, then the session on the named host succeeds.  A name that
 * does not resolve is a clear error; a session freed mid-lookup leaves
 * nothing behind; the loop's own resolver reads /etc/hosts.  Against a
 * real PostgreSQL server.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=itdns"
#define SLOW_NAME	"db.slow.pgbeacon.test"
#define DNS_DELAY_MS	1000

static struct it_watched	 fx;	/* cluster, daemon, socket */

static void
suite_setup(void)
{
	it_watched_start(&fx, 0);
}

static void
suite_teardown(void)
{
	it_watched_stop(&fx);
}

static struct event_base	*base;
static pgb_loop			*loop;
static struct it_relay		*dnsd;		/* the slow DNS server */
static struct evdns_base	*dns;		/* pointed at dnsd */
static struct event		*tick_ev;
static int			 ticks;

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ticks++;
}

static void
setup(void)
{
	char	addr[64];

	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	dnsd = it_slowdns_start(DNS_DELAY_MS, SLOW_NAME, "127.0.0.1");
	dns = evdns_base_new(base, 0);
	ck_assert_ptr_nonnull(dns);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", it_relay_port(dnsd));
	ck_assert_int_eq(evdns_base_nameserver_ip_add(dns, addr), 0);
	ticks = 0;
	tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	ck_assert_ptr_nonnull(tick_ev);
}

static void
teardown(void)
{
	event_free(tick_ev);
	pgb_loop_free(loop);
	evdns_base_free(dns, 0);
	event_base_free(base);
	it_relay_stop(dnsd);
}

#define RUN_UNTIL(cond, ms) \
	IT_POLL_UNTIL((event_base_loop(base, EVLOOP_ONCE), (cond)), (ms))

struct got {
	int		 calls;
	int		 ok;
	int		 ticks;		/* ticks when the result came */
	pgb_errcode	 code;
	char		 value[64];
	char		 error[512];
};

static void
res_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct got	*g = arg;

	g->calls++;
	g->ticks = ticks;
	g->ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	g->code = pgb_asession_errcode(s);
	if (g->ok)
		snprintf(g->value, sizeof g->value, "%s", PQgetvalue(res, 0, 0));
	snprintf(g->error, sizeof g->error, "%s", pgb_asession_error(s));
}

static void
tick_every_10ms(void)
{
	struct timeval	tv = { 0, 10 * 1000 };

	ck_assert_int_eq(evtimer_add(tick_ev, &tv), 0);
}

/*
 * While the slow server takes its second to answer, the loop keeps
 * serving: the timer ticks, a session on a numeric host runs its
 * statement; then the named host's statement succeeds.
 */
START_TEST(test_a_slow_lookup_does_not_block_the_loop)
{
	pgb_db		*named, *numeric;
	pgb_asession	*sn, *si;
	struct got	 gn = { 0 }, gi = { 0 };
	int		 start;

	named = pgb_db_new_fixed(CONNINFO, SLOW_NAME, it_port(fx.cluster, 0),
	    "named");
	numeric = pgb_db_new_fixed(CONNINFO, "127.0.0.1",
	    it_port(fx.cluster, 0), "numeric");
	ck_assert_ptr_nonnull(named);
	ck_assert_ptr_nonnull(numeric);
	pgb_loop_set_dns(loop, dns);
	tick_every_10ms();
	sn = pgb_asession_new(loop, named, PGB_SESSION_AUTOCOMMIT);
	si = pgb_asession_new(loop, numeric, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(sn);
	ck_assert_ptr_nonnull(si);
	start = ticks;
	ck_assert_int_eq(pgb_aexec(sn, "SELECT 'named'", res_cb, &gn), 0);
	ck_assert_int_eq(pgb_aexec(si, "SELECT 'numeric'", res_cb, &gi), 0);
	ck_assert(RUN_UNTIL(gn.calls == 1, 30000));
	ck_assert_msg(gn.ok, "named host: %s", gn.error);
	ck_assert_str_eq(gn.value, "named");
	/* The numeric host's statement completed while the name resolved. */
	ck_assert_int_eq(gi.calls, 1);
	ck_assert_msg(gi.ok, "numeric host: %s", gi.error);
	ck_assert_str_eq(gi.value, "numeric");
	ck_assert_int_le(gi.ticks, gn.ticks);
	/* And the timer kept ticking meanwhile (a blocked loop ticks at
	 * most once in that second). */
	ck_assert_msg(gn.ticks - start >= 5, "%d ticks while resolving",
	    gn.ticks - start);
	pgb_asession_free(sn);
	pgb_asession_free(si);
	pgb_db_free(named);
	pgb_db_free(numeric);
}
END_TEST

/* A name that does not resolve fails the operation, and says so. */
START_TEST(test_a_name_that_does_not_resolve_is_a_clear_error)
{
	pgb_db		*db;
	pgb_asession	*s;
	struct got	 g = { 0 };

	db = pgb_db_new_fixed(CONNINFO, "nowhere.pgbeacon.test",
	    it_port(fx.cluster, 0), "named");
	ck_assert_ptr_nonnull(db);
	pgb_loop_set_dns(loop, dns);
	s = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_aexec(s, "SELECT 1", res_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 30000));
	ck_assert(!g.ok);
	ck_assert_int_eq(g.code, PGB_ERR_CONNECT);
	ck_assert_msg(strstr(g.error, "cannot resolve nowhere.pgbeacon.test")
	    != NULL, "%s", g.error);
	pgb_asession_free(s);
	pgb_db_free(db);
}
END_TEST

/*
 * A session freed while its name resolves calls back once (canceled);
 * the lookup's late answer touches nothing (ASan), and its pool slot
 * serves the next session.
 */
START_TEST(test_freeing_a_session_mid_lookup)
{
	pgb_db		*db;
	pgb_asession	*s;
	struct got	 g = { 0 }, g2 = { 0 };

	db = pgb_db_new_fixed(CONNINFO, SLOW_NAME, it_port(fx.cluster, 0),
	    "named");
	ck_assert_ptr_nonnull(db);
	pgb_db_set_pool(db, 1, 5000, 30000);
	pgb_loop_set_dns(loop, dns);
	s = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_aexec(s, "SELECT 1", res_cb, &g), 0);
	/* Until the lookup is sent: the server saw a query. */
	(void)event_base_loop(base, EVLOOP_NONBLOCK);
	pgb_asession_free(s);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_int_eq(g.code, PGB_ERR_CANCELED);
	s = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_aexec(s, "SELECT 'again'", res_cb, &g2), 0);
	ck_assert(RUN_UNTIL(g2.calls == 1, 30000));
	ck_assert_msg(g2.ok, "%s", g2.error);
	ck_assert_str_eq(g2.value, "again");
	pgb_asession_free(s);
	pgb_db_free(db);
}
END_TEST

/* Without pgb_loop_set_dns the loop's own resolver reads /etc/hosts. */
START_TEST(test_the_default_resolver_reads_etc_hosts)
{
	pgb_db		*db;
	pgb_asession	*s;
	struct got	 g = { 0 };

	db = pgb_db_new_fixed(CONNINFO, "localhost", it_port(fx.cluster, 0),
	    "named");
	ck_assert_ptr_nonnull(db);
	s = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pgb_aexec(s, "SELECT 'hosts'", res_cb, &g), 0);
	ck_assert(RUN_UNTIL(g.calls == 1, 30000));
	ck_assert_msg(g.ok, "%s", g.error);
	ck_assert_str_eq(g.value, "hosts");
	pgb_asession_free(s);
	pgb_db_free(db);
}
END_TEST

static Suite *
dns_suite(void)
{
	Suite	*s = suite_create("lib_async_dns");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_a_slow_lookup_does_not_block_the_loop);
	tcase_add_test(tc, test_a_name_that_does_not_resolve_is_a_clear_error);
	tcase_add_test(tc, test_freeing_a_session_mid_lookup);
	tcase_add_test(tc, test_the_default_resolver_reads_etc_hosts);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(dns_suite()));
}
