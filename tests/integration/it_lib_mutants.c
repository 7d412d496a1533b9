/*
 * it_lib_mutants.c - edge paths of libpgbeacon's contexts, sessions and
 * pools (client-lib/src/ctx.c, db.c) that the mutation tool (make mutate)
 * found unpinned: commit and rollback with nothing open, the guards of
 * pgb_atomic and pgb_run_in_new_ctx, the transparent retry when a pooled
 * connection died while idle, validation of idle connections, pool
 * limits and their defaults, closing a db under waiters, hooks, host
 * changes and the pool counters.  Every check is a behaviour that
 * pgbeacon.h states.
 *
 * One cluster (a primary and a replica) and one daemon serve the whole
 * suite; each test uses its own tables and application_name.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/lib_util.h"
#include "../check_main.h"

static struct it_watched	 fx;	/* cluster, daemon, socket */

#define CONNINFO(app)	"user=postgres dbname=postgres application_name=" app

static void
suite_setup(void)
{
	it_watched_start(&fx, 1);
}

static void
suite_teardown(void)
{
	it_watched_stop(&fx);
}

/* Runs sql on the primary (outside the library); asserts success. */
static void
primary_sql(const char *sql)
{
	itl_primary_sql(&fx, sql);
}

static bool
primary_is(const char *sql, const char *expected)
{
	return (it_sql_is(fx.cluster, 0, sql, expected));
}

/* Runs sql on s; asserts success. */
#define exec_ok(s, sql)	itl_exec_ok((s), (sql))

/* Terminates the backends of application app on the primary, waiting
 * until they are gone. */
static void
kill_backends(const char *app)
{
	char	sql[256];

	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid, 5000)"
	    " FROM pg_stat_activity WHERE application_name = '%s'", app);
	primary_sql(sql);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity"
	    " WHERE application_name = '%s'", app);
	ck_assert(IT_POLL_UNTIL(primary_is(sql, "0"), 10000));
}

static void
new_table(const char *name)
{
	char	sql[256];

	snprintf(sql, sizeof sql, "SET client_min_messages TO warning;"
	    " DROP TABLE IF EXISTS %s; CREATE TABLE %s (v int)", name, name);
	primary_sql(sql);
}

static pgb_db *
primary_db(const char *conninfo)
{
	pgb_db	*db;

	db = pgb_db_new_fixed(conninfo, "127.0.0.1", it_port(fx.cluster, 0),
	    "master");
	ck_assert_ptr_nonnull(db);
	return (db);
}

/* --- commit and rollback with nothing open ------------------------------- */

START_TEST(test_commit_and_rollback_with_no_transaction_do_nothing)
{
	pgb_db		*db = primary_db(CONNINFO("mu_notx"));
	pgb_session	*s;
	pgb_pool_stats	 st;

	new_table("mu_notx");
	s = pgb_session_new(db, 0);
	/* Nothing open: 0, and no connection is taken for it. */
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_session_rollback(s), 0);
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_ptr_null(pgb_session_host(s));
	ck_assert_int_eq(pgb_session_port(s), 0);
	ck_assert_ptr_null(pgb_session_role(s));
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.checkouts, 0);

	exec_ok(s, "INSERT INTO mu_notx VALUES (1)");
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert_str_eq(pgb_session_host(s), "127.0.0.1");
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 0));
	ck_assert_str_eq(pgb_session_role(s), "master");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT count(*) FROM mu_notx", "1"));
	/* Committed: a second commit and a rollback have nothing to do,
	 * and the connection stays with the session. */
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_session_rollback(s), 0);
	ck_assert(primary_is("SELECT count(*) FROM mu_notx", "1"));
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 0));
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 1);
	ck_assert_uint_eq(st.checkouts, 1);
	/* The next statement begins a new transaction, which a rollback
	 * undoes. */
	exec_ok(s, "INSERT INTO mu_notx VALUES (2)");
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert_int_eq(pgb_session_rollback(s), 0);
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert(primary_is("SELECT count(*) FROM mu_notx", "1"));
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_commit_all_reports_the_failed_session)
{
	pgb_db		*a = primary_db(CONNINFO("mu_call_a"));
	pgb_db		*b = primary_db(CONNINFO("mu_call_b"));
	pgb_ctx		*ctx;
	pgb_session	*sa, *sb;

	new_table("mu_call");
	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_nonnull(ctx);
	sa = pgb_ctx_session(ctx, a);
	sb = pgb_ctx_session(ctx, b);
	ck_assert_ptr_eq(pgb_ctx_session(ctx, a), sa);
	ck_assert_ptr_eq(pgb_session_db(sb), b);
	exec_ok(sa, "INSERT INTO mu_call VALUES (1)");
	ck_assert_ptr_null(pgb_exec(sa, "SELECT * FROM mu_no_such_table"));
	exec_ok(sb, "INSERT INTO mu_call VALUES (2)");
	/* a's failed transaction is rolled back: -1, and ctx says why. */
	ck_assert_int_eq(pgb_ctx_commit_all(ctx), -1);
	ck_assert_str_ne(pgb_ctx_error(ctx), "");
	ck_assert_int_eq(pgb_session_in_transaction(sa), 0);
	ck_assert_int_eq(pgb_session_in_transaction(sb), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM mu_call",
	    "2"));
	/* Nothing open any more: both succeed. */
	ck_assert_int_eq(pgb_ctx_commit_all(ctx), 0);
	ck_assert_int_eq(pgb_ctx_rollback_all(ctx), 0);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	/* A second end does nothing. */
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	ck_assert_ptr_null(pgb_ctx_current());
	pgb_db_free(a);
	pgb_db_free(b);
}
END_TEST

START_TEST(test_contexts_nest_only_when_forced)
{
	pgb_ctx	*outer, *inner;

	ck_assert_int_eq(pgb_ctx_is_current(), 0);
	outer = pgb_ctx_begin(0);
	ck_assert_ptr_nonnull(outer);
	ck_assert_ptr_eq(pgb_ctx_current(), outer);
	ck_assert_int_eq(pgb_ctx_is_current(), 1);
	ck_assert_ptr_null(pgb_ctx_begin(0));
	ck_assert_str_ne(pgb_ctx_error(NULL), "");
	inner = pgb_ctx_begin(PGB_CTX_FORCE);
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_eq(pgb_ctx_current(), inner);
	ck_assert_int_eq(pgb_ctx_end(inner, 200), 0);
	ck_assert_ptr_eq(pgb_ctx_current(), outer);
	pgb_ctx_free(inner);
	ck_assert_int_eq(pgb_ctx_end(outer, 200), 0);
	ck_assert_ptr_null(pgb_ctx_current());
	pgb_ctx_free(outer);
}
END_TEST

START_TEST(test_put_session_refuses_null_and_owned_sessions)
{
	pgb_db		*db = primary_db(CONNINFO("mu_put"));
	pgb_ctx		*ctx, *other;
	pgb_session	*s;

	s = pgb_session_new(db, 0);
	/* No context given and none current. */
	ck_assert_int_eq(pgb_ctx_put_session(NULL, s), -1);
	ctx = pgb_ctx_begin(0);
	ck_assert_int_eq(pgb_ctx_put_session(ctx, NULL), -1);
	ck_assert_ptr_null(pgb_ctx_get_session(ctx, db));
	/* ctx NULL: the current one, which then owns s. */
	ck_assert_int_eq(pgb_ctx_put_session(NULL, s), 0);
	ck_assert_ptr_eq(pgb_ctx_get_session(ctx, db), s);
	ck_assert_ptr_eq(pgb_ctx_session(ctx, db), s);
	/* s belongs to ctx now: another context refuses it. */
	other = pgb_ctx_begin(PGB_CTX_FORCE);
	ck_assert_int_eq(pgb_ctx_put_session(other, s), -1);
	ck_assert_str_ne(pgb_ctx_error(other), "");
	ck_assert_int_eq(pgb_ctx_end(other, 200), 0);
	pgb_ctx_free(other);
	/* Popped, it is the caller's again, and an ended context refuses
	 * it. */
	ck_assert_ptr_eq(pgb_ctx_pop_session(ctx, db), s);
	ck_assert_ptr_null(pgb_ctx_get_session(ctx, db));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	ck_assert_int_eq(pgb_ctx_put_session(ctx, s), -1);
	ck_assert_str_ne(pgb_ctx_error(ctx), "");
	pgb_ctx_free(ctx);
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* --- pgb_atomic and pgb_run_in_new_ctx guards ----------------------------- */

static int atomic_calls;

static int
atomic_insert_cb(pgb_session *s, void *arg)
{
	PGresult	*res;
	char		 sql[128];

	atomic_calls++;
	snprintf(sql, sizeof sql, "INSERT INTO mu_atomic VALUES (%d)",
	    *(const int *)arg);
	res = pgb_exec(s, sql);
	if (res == NULL)
		return (-1);
	PQclear(res);
	return (0);
}

/* Runs a failing statement but says it succeeded. */
static int
atomic_ignore_failure_cb(pgb_session *s, void *arg)
{
	(void)arg;
	atomic_calls++;
	ck_assert_ptr_null(pgb_exec(s, "SELECT * FROM mu_no_such_table"));
	return (0);
}

/* Fails with no failure in the library. */
static int
atomic_plain_failure_cb(pgb_session *s, void *arg)
{
	(void)atomic_insert_cb(s, arg);	/* counts the call */
	return (1);
}

START_TEST(test_atomic_guards_and_failures)
{
	pgb_db		*db = primary_db(CONNINFO("mu_atomic"));
	pgb_ctx		*ctx;
	int		 v1 = 1, v2 = 2, v3 = 3;

	new_table("mu_atomic");
	atomic_calls = 0;
	/* No context at all. */
	ck_assert_ptr_null(pgb_ctx_current());
	ck_assert_int_eq(pgb_atomic(NULL, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, &v1), -1);
	ck_assert_int_eq(atomic_calls, 0);

	ctx = pgb_ctx_begin(0);
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST, NULL,
	    NULL), -1);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "no callback"));
	/* ctx NULL: the current one, which commits at once. */
	ck_assert_int_eq(pgb_atomic(NULL, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, &v1), 0);
	ck_assert_int_eq(atomic_calls, 1);
	ck_assert(primary_is("SELECT count(*) FROM mu_atomic", "1"));
	/* fn said 0 but its transaction failed: rolled back, -1. */
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_ignore_failure_cb, NULL), -1);
	ck_assert_int_eq(atomic_calls, 2);
	ck_assert_str_ne(pgb_ctx_error(ctx), "");
	ck_assert_int_eq(pgb_session_in_transaction(pgb_ctx_session(ctx, db)),
	    0);
	/* fn failed without a failure in the library: ctx says fn failed. */
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_plain_failure_cb, &v2), -1);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "callback"));
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM mu_atomic",
	    "1"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	/* An ended context runs nothing. */
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, &v3), -1);
	ck_assert_str_ne(pgb_ctx_error(ctx), "");
	ck_assert_int_eq(atomic_calls, 3);
	ck_assert_ptr_null(pgb_ctx_session(ctx, db));
	pgb_ctx_free(ctx);
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM mu_atomic",
	    "1"));
	pgb_db_free(db);
}
END_TEST

static int
ctx_fails_plainly_cb(pgb_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return (7);
}

/* Inserts into mu_rinc, then makes the transaction fail at commit. */
static int
ctx_deferred_failure_cb(pgb_ctx *ctx, void *arg)
{
	pgb_session	*s = pgb_ctx_session(ctx, arg);

	exec_ok(s, "INSERT INTO mu_rinc_child VALUES (42)");
	return (0);
}

static int
ctx_insert_cb(pgb_ctx *ctx, void *arg)
{
	exec_ok(pgb_ctx_session(ctx, arg), "INSERT INTO mu_rinc VALUES (1)");
	return (0);
}

START_TEST(test_run_in_new_ctx_messages)
{
	pgb_db	*db = primary_db(CONNINFO("mu_rinc"));
	char	 buf[256];

	primary_sql("SET client_min_messages TO warning;"
	    " DROP TABLE IF EXISTS mu_rinc_child, mu_rinc;"
	    " CREATE TABLE mu_rinc (v int PRIMARY KEY);"
	    " CREATE TABLE mu_rinc_child (v int REFERENCES mu_rinc (v)"
	    " DEFERRABLE INITIALLY DEFERRED)");
	strcpy(buf, "x");
	ck_assert_int_eq(pgb_run_in_new_ctx(NULL, NULL, buf, sizeof buf), -1);
	ck_assert_ptr_nonnull(strstr(buf, "no callback"));
	/* fn failed with no failure in the library: a message says so. */
	ck_assert_int_eq(pgb_run_in_new_ctx(ctx_fails_plainly_cb, NULL, buf,
	    sizeof buf), -1);
	ck_assert_str_ne(buf, "");
	/* The commit failed: why. */
	ck_assert_int_eq(pgb_run_in_new_ctx(ctx_deferred_failure_cb, db, buf,
	    sizeof buf), -1);
	ck_assert_ptr_nonnull(strstr(buf, "mu_rinc_child"));
	/* Success: errbuf emptied. */
	ck_assert_int_eq(pgb_run_in_new_ctx(ctx_insert_cb, db, buf,
	    sizeof buf), 0);
	ck_assert_str_eq(buf, "");
	ck_assert(primary_is("SELECT count(*) FROM mu_rinc", "1"));
	/* No errbuf at all, and an empty one, are fine. */
	ck_assert_int_eq(pgb_run_in_new_ctx(ctx_fails_plainly_cb, NULL, NULL,
	    0), -1);
	buf[0] = 'x';
	ck_assert_int_eq(pgb_run_in_new_ctx(ctx_fails_plainly_cb, NULL, buf,
	    0), -1);
	ck_assert_int_eq(buf[0], 'x');
	pgb_db_free(db);
}
END_TEST

/* --- a pooled connection that died while idle ------------------------------ */

START_TEST(test_dead_idle_connection_is_replaced_at_transaction_start)
{
	pgb_db		*db = primary_db(CONNINFO("mu_retry"));
	pgb_ctx		*ctx;
	pgb_session	*s;
	pgb_pool_stats	 st;
	PGresult	*res;
	const char	*vals[1] = { "3" };

	new_table("mu_retry");
	pgb_db_set_pool(db, 2, 5000, -1);	/* never validate */
	ctx = pgb_ctx_begin(0);
	exec_ok(pgb_ctx_session(ctx, db), "INSERT INTO mu_retry VALUES (1)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	kill_backends("mu_retry");

	/* The first statement of a transaction: sent again on a new one. */
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	exec_ok(s, "INSERT INTO mu_retry VALUES (2)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 2);
	ck_assert_uint_eq(st.broken, 1);
	ck_assert_int_eq(st.idle, 1);

	/* The same with parameters (BEGIN sent in a pipeline). */
	kill_backends("mu_retry");
	s = pgb_session_new(db, 0);
	res = pgb_exec_params(s, "INSERT INTO mu_retry VALUES ($1::int)"
	    " RETURNING v", 1, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(res != NULL, "%s", pgb_session_error(s));
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "3");
	PQclear(res);
	ck_assert_int_eq(pgb_session_commit(s), 0);
	pgb_session_free(s);
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM mu_retry", "1,2,3"));
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 3);
	ck_assert_uint_eq(st.broken, 2);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_connection_lost_mid_transaction_fails_once)
{
	pgb_db		*db = primary_db(CONNINFO("mu_midtx"));
	pgb_session	*s;

	new_table("mu_midtx");
	s = pgb_session_new(db, 0);
	exec_ok(s, "INSERT INTO mu_midtx VALUES (1)");
	kill_backends("mu_midtx");
	/* Not the transaction's first statement: not sent again. */
	ck_assert_ptr_null(pgb_exec(s, "INSERT INTO mu_midtx VALUES (2)"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_CONNECT);
	ck_assert_str_ne(pgb_session_error(s), "");
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_ptr_null(pgb_session_host(s));
	ck_assert(primary_is("SELECT count(*) FROM mu_midtx", "0"));
	/* The session goes on with a new connection. */
	exec_ok(s, "INSERT INTO mu_midtx VALUES (3)");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM mu_midtx",
	    "3"));
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* The connection lost before COMMIT: -1, and the session lets the dead
 * connection go; its next statement takes a new one. */
START_TEST(test_commit_on_a_lost_connection_fails_and_lets_it_go)
{
	pgb_db		*db = primary_db(CONNINFO("mu_lostcommit"));
	pgb_session	*s;
	pgb_pool_stats	 st;

	new_table("mu_lostcommit");
	s = pgb_session_new(db, 0);
	exec_ok(s, "INSERT INTO mu_lostcommit VALUES (1)");
	kill_backends("mu_lostcommit");
	ck_assert_int_eq(pgb_session_commit(s), -1);
	ck_assert_str_ne(pgb_session_error(s), "");
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_ptr_null(pgb_session_host(s));
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 0);
	ck_assert_uint_eq(st.broken, 1);
	exec_ok(s, "INSERT INTO mu_lostcommit VALUES (2)");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM"
	    " mu_lostcommit", "2"));
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 2);
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/*
 * A commit that cannot even be sent (the application left a query of its
 * own running on the raw connection): -1, and the transaction is gone
 * with its connection, never committed by a later commit.
 */
START_TEST(test_commit_that_cannot_be_sent_loses_the_transaction)
{
	pgb_db		*db = primary_db(CONNINFO("mu_nosend"));
	pgb_session	*s;
	PGconn		*pg;
	pgb_pool_stats	 st;

	new_table("mu_nosend");
	s = pgb_session_new(db, 0);
	exec_ok(s, "INSERT INTO mu_nosend VALUES (1)");
	pg = pgb_session_conn(s);
	ck_assert_ptr_nonnull(pg);
	ck_assert_int_eq(PQsendQuery(pg, "SELECT 2"), 1);
	ck_assert_int_eq(pgb_session_commit(s), -1);
	ck_assert_str_ne(pgb_session_error(s), "");
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_ptr_null(pgb_session_host(s));
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 0);
	ck_assert_uint_eq(st.discarded, 1);
	exec_ok(s, "INSERT INTO mu_nosend VALUES (2)");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',') FROM mu_nosend",
	    "2"));
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* --- validation of idle connections ---------------------------------------- */

START_TEST(test_idle_connections_are_reused_and_validated)
{
	pgb_db		*db = primary_db(CONNINFO("mu_valid"));
	pgb_session	*s;
	pgb_pool_stats	 st;

	pgb_db_set_pool(db, 2, 5000, 0);	/* validate every reuse */
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	/* A healthy idle connection passes validation and is reused. */
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 1);
	ck_assert_uint_eq(st.reused, 1);
	ck_assert_uint_eq(st.checkouts, 2);
	ck_assert_uint_eq(st.discarded, 0);
	ck_assert_int_eq(st.idle, 1);
	ck_assert_int_eq(st.hosts, 1);
	ck_assert_int_eq(st.qualifying, 1);
	/* A dead one is found by validation, replaced, not handed out: an
	 * autocommit statement (never sent twice) works. */
	kill_backends("mu_valid");
	exec_ok(s, "SELECT 1");
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 2);
	ck_assert_uint_eq(st.discarded, 1);
	ck_assert_uint_eq(st.broken, 1);
	ck_assert_uint_eq(st.checkouts, 3);
	pgb_session_free(s);

	/* < 0: never validated, so a dead one is handed out. */
	pgb_db_set_pool(db, 2, 5000, -1);
	kill_backends("mu_valid");
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_CONNECT);
	exec_ok(s, "SELECT 1");
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* --- pool limits --------------------------------------------------------- */

struct waiter {
	pgb_db		*db;
	int		 done;		/* under mtx */
	PGresult	*res;
	pgb_errcode	 code;
	pthread_mutex_t	 mtx;
};

static void *
waiter_main(void *arg)
{
	struct waiter	*w = arg;
	pgb_session	*s;
	PGresult	*res;
	pgb_errcode	 code;

	s = pgb_session_new(w->db, PGB_SESSION_AUTOCOMMIT);
	res = pgb_exec(s, "SELECT 1");
	code = pgb_session_errcode(s);
	pgb_session_free(s);
	pthread_mutex_lock(&w->mtx);
	w->res = res;
	w->code = code;
	w->done = 1;
	pthread_mutex_unlock(&w->mtx);
	return (NULL);
}

static int
waiter_done(struct waiter *w)
{
	int	d;

	pthread_mutex_lock(&w->mtx);
	d = w->done;
	pthread_mutex_unlock(&w->mtx);
	return (d);
}

static uint64_t
db_waits(pgb_db *db)
{
	pgb_pool_stats	st;

	pgb_db_stats(db, &st);
	return (st.waits);
}

static void
waiter_start(struct waiter *w, pthread_t *th, pgb_db *db)
{
	memset(w, 0, sizeof *w);
	w->db = db;
	pthread_mutex_init(&w->mtx, NULL);
	ck_assert_int_eq(pthread_create(th, NULL, waiter_main, w), 0);
}

START_TEST(test_pool_size_defaults_to_ten)
{
	pgb_db		*db = primary_db(CONNINFO("mu_size"));
	pgb_session	*s[11];
	pgb_pool_stats	 st;
	int		 i;

	pgb_db_set_pool(db, 0, 300, -1);	/* size 0: the default, 10 */
	for (i = 0; i < 10; i++) {
		s[i] = pgb_session_new(db, 0);
		exec_ok(s[i], "SELECT 1");
	}
	s[10] = pgb_session_new(db, 0);
	ck_assert_ptr_null(pgb_exec(s[10], "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s[10]), PGB_ERR_POOL_TIMEOUT);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 10);
	ck_assert_uint_eq(st.waits, 1);
	ck_assert_uint_eq(st.opened, 10);
	/* One given back: the next checkout reuses it. */
	pgb_session_close(s[0]);
	exec_ok(s[10], "SELECT 1");
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.reused, 1);
	ck_assert_uint_eq(st.opened, 10);
	for (i = 0; i < 11; i++)
		pgb_session_free(s[i]);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 0);
	ck_assert_int_eq(st.idle, 10);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_bigger_pool_serves_a_waiter_at_once)
{
	pgb_db		*db = primary_db(CONNINFO("mu_grow"));
	pgb_session	*a;
	struct waiter	 w;
	pthread_t	 th;

	pgb_db_set_pool(db, 1, 60000, -1);
	a = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	waiter_start(&w, &th, db);
	ck_assert(IT_POLL_UNTIL(db_waits(db) == 1, 10000));
	ck_assert_int_eq(waiter_done(&w), 0);
	/* Room for a second connection: the waiter gets it while a still
	 * holds the first. */
	pgb_db_set_pool(db, 2, 60000, -1);
	ck_assert(IT_POLL_UNTIL(waiter_done(&w), 20000));
	pthread_join(th, NULL);
	ck_assert_ptr_nonnull(w.res);
	PQclear(w.res);
	ck_assert_int_eq(pgb_session_in_transaction(a), 1);
	pgb_session_free(a);
	pthread_mutex_destroy(&w.mtx);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_negative_checkout_timeout_is_the_default)
{
	pgb_db		*db = primary_db(CONNINFO("mu_tmo"));
	pgb_session	*a;
	struct waiter	 w;
	pthread_t	 th;

	/* < 0: the default 5000 ms, so a waiter outlasts a short hold. */
	pgb_db_set_pool(db, 1, -1, -1);
	a = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	waiter_start(&w, &th, db);
	ck_assert(IT_POLL_UNTIL(db_waits(db) == 1, 10000));
	pgb_session_free(a);
	ck_assert(IT_POLL_UNTIL(waiter_done(&w), 20000));
	pthread_join(th, NULL);
	ck_assert_msg(w.res != NULL, "waiter failed with code %d", w.code);
	PQclear(w.res);
	pthread_mutex_destroy(&w.mtx);
	pgb_db_free(db);
}
END_TEST

/* The order in which waiters were served, for test_waiters_are_served_in_order. */
static pthread_mutex_t	 order_mtx = PTHREAD_MUTEX_INITIALIZER;
static int		 order[2], norder;

struct fifo_waiter {
	struct waiter	 w;
	int		 id;
};

static void *
fifo_waiter_main(void *arg)
{
	struct fifo_waiter	*f = arg;
	pgb_session		*s;

	s = pgb_session_new(f->w.db, PGB_SESSION_AUTOCOMMIT);
	f->w.res = pgb_exec(s, "SELECT 1");
	f->w.code = pgb_session_errcode(s);
	pthread_mutex_lock(&order_mtx);
	order[norder++] = f->id;
	pthread_mutex_unlock(&order_mtx);
	pgb_session_free(s);		/* the next waiter's turn */
	pthread_mutex_lock(&f->w.mtx);
	f->w.done = 1;
	pthread_mutex_unlock(&f->w.mtx);
	return (NULL);
}

START_TEST(test_waiters_are_served_in_order)
{
	pgb_db			*db = primary_db(CONNINFO("mu_fifo"));
	pgb_session		*a;
	struct fifo_waiter	 f[2];
	pthread_t		 th[2];
	int			 i;

	pgb_db_set_pool(db, 1, 60000, -1);
	a = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	norder = 0;
	for (i = 0; i < 2; i++) {
		memset(&f[i], 0, sizeof f[i]);
		f[i].w.db = db;
		f[i].id = i + 1;
		pthread_mutex_init(&f[i].w.mtx, NULL);
		ck_assert_int_eq(pthread_create(&th[i], NULL, fifo_waiter_main,
		    &f[i]), 0);
		/* Queued before the next one starts. */
		ck_assert(IT_POLL_UNTIL(db_waits(db) == (uint64_t)i + 1,
		    10000));
	}
	pgb_session_free(a);
	for (i = 0; i < 2; i++) {
		ck_assert(IT_POLL_UNTIL(waiter_done(&f[i].w), 20000));
		pthread_join(th[i], NULL);
		ck_assert_msg(f[i].w.res != NULL, "waiter %d: code %d", i + 1,
		    f[i].w.code);
		PQclear(f[i].w.res);
		pthread_mutex_destroy(&f[i].w.mtx);
	}
	ck_assert_int_eq(norder, 2);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 2);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_close_fails_waiters_and_new_sessions)
{
	pgb_db		*db = primary_db(CONNINFO("mu_close"));
	pgb_session	*a, *b;
	pgb_pool_stats	 st;
	struct waiter	 w;
	pthread_t	 th;

	pgb_db_set_pool(db, 1, 60000, -1);
	a = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	waiter_start(&w, &th, db);
	ck_assert(IT_POLL_UNTIL(db_waits(db) == 1, 10000));
	pgb_db_close(db);
	ck_assert(IT_POLL_UNTIL(waiter_done(&w), 20000));
	pthread_join(th, NULL);
	ck_assert_ptr_null(w.res);
	ck_assert_int_eq(w.code, PGB_ERR_CLOSED);
	b = pgb_session_new(db, 0);
	ck_assert_ptr_null(pgb_exec(b, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(b), PGB_ERR_CLOSED);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 1);
	pgb_session_free(a);
	pgb_session_free(b);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 0);
	ck_assert_int_eq(st.idle, 0);
	pthread_mutex_destroy(&w.mtx);
	pgb_db_free(db);
}
END_TEST

static void
aresult_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct waiter	*w = arg;

	w->done++;
	w->code = res != NULL ? PGB_OK : pgb_asession_errcode(s);
}

/* An event-driven session waiting for a full pool when the db is closed:
 * its statement fails with PGB_ERR_CLOSED, and the pool goes on working
 * for the session still holding a connection. */
START_TEST(test_close_fails_an_event_driven_waiter)
{
	pgb_db		*db = primary_db(CONNINFO("mu_aclose"));
	struct event_base *base = event_base_new();
	pgb_loop	*loop;
	pgb_session	*a;
	pgb_asession	*b;
	pgb_pool_stats	 st;
	struct waiter	 w;

	ck_assert_ptr_nonnull(base);
	loop = pgb_loop_new(base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	memset(&w, 0, sizeof w);
	pgb_db_set_pool(db, 1, 60000, -1);
	a = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	b = pgb_asession_new(loop, db, PGB_SESSION_AUTOCOMMIT);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pgb_aexec(b, "SELECT 2", aresult_cb, &w), 0);
	/* It queues (as it_lib_async's queued checkout shows) and waits. */
	ck_assert(!IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    w.done > 0), 300));
	pgb_db_close(db);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    w.done == 1), 10000));
	ck_assert_int_eq(w.code, PGB_ERR_CLOSED);
	/* The one in use is closed when given back. */
	pgb_session_free(a);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 0);
	ck_assert_int_eq(st.busy, 0);
	pgb_asession_free(b);
	pgb_loop_free(loop);
	event_base_free(base);
	pgb_db_free(db);
}
END_TEST

/* --- hooks, hosts and the constructors' guards ----------------------------- */

static int hook_calls;

static int
hook_refuse_cb(pgb_db *db, const char *min_lsn, void *arg)
{
	(void)min_lsn;
	hook_calls++;
	if (arg != NULL)
		pgb_db_set_error(db, "%s", (const char *)arg);
	return (-1);
}

static int
hook_to_replica_cb(pgb_db *db, const char *min_lsn, void *arg)
{
	(void)min_lsn;
	(void)arg;
	hook_calls++;
	return (pgb_db_change_host(db, "127.0.0.1", it_port(fx.cluster, 1),
	    "replica"));
}

START_TEST(test_hook_runs_before_each_session_and_can_refuse)
{
	pgb_db		*db = primary_db(CONNINFO("mu_hook"));
	pgb_session	*s;
	pgb_pool_stats	 st;
	char		 msg[] = "mu hook says no";

	hook_calls = 0;
	pgb_db_set_hook(db, hook_refuse_cb, msg);
	s = pgb_session_new(db, 0);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_HOOK);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "mu hook says no"));
	ck_assert_int_eq(hook_calls, 1);
	pgb_db_set_hook(db, hook_refuse_cb, NULL);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_HOOK);
	ck_assert_str_ne(pgb_session_error(s), "");
	pgb_session_free(s);

	/* A hook that moves the db: sessions go where it says. */
	pgb_db_set_hook(db, hook_to_replica_cb, NULL);
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 1));
	ck_assert_str_eq(pgb_session_role(s), "replica");
	pgb_session_close(s);
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(hook_calls, 4);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.host_changes, 1);
	ck_assert_uint_eq(st.opened, 1);
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_change_host_moves_the_pool)
{
	pgb_db		*db = primary_db(CONNINFO("mu_move"));
	pgb_session	*s;
	pgb_pool_stats	 st;
	char		 host[64];
	int		 port = 0;

	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.qualifying, 1);
	ck_assert_int_eq(st.hosts, 0);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_int_eq(port, it_port(fx.cluster, 0));
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	/* The same host again: nothing moves. */
	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1",
	    it_port(fx.cluster, 0), "master"), 0);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.host_changes, 0);
	ck_assert_int_eq(st.idle, 1);
	ck_assert_int_eq(st.hosts, 1);
	/* Another host: idle connections to the old one are closed. */
	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1",
	    it_port(fx.cluster, 1), "replica"), 0);
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.host_changes, 1);
	ck_assert_int_eq(st.idle, 0);
	ck_assert_uint_eq(st.discarded, 1);
	ck_assert_int_eq(st.qualifying, 1);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert_int_eq(port, it_port(fx.cluster, 1));
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 1));
	ck_assert_str_eq(pgb_session_role(s), "replica");
	pgb_session_free(s);

	/* Bad hosts are refused, with a message; the db stays where it was. */
	ck_assert_int_eq(pgb_db_change_host(db, "", 5432, NULL), -1);
	ck_assert_str_ne(pgb_db_error(db), "");
	ck_assert_int_eq(pgb_db_change_host(db, NULL, 5432, NULL), -1);
	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1", 0, NULL), -1);
	ck_assert_int_eq(pgb_db_change_host(db, "127.0.0.1", 65536, NULL), -1);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert_int_eq(port, it_port(fx.cluster, 1));
	pgb_db_free(db);
}
END_TEST

START_TEST(test_constructors_refuse_bad_arguments)
{
	pgb_db	*db;
	char	 host[64];
	int	 port;

	ck_assert_ptr_null(pgb_db_new(NULL, NULL, "master", fx.sock));
	ck_assert_ptr_null(pgb_db_new(NULL, "main", NULL, fx.sock));
	ck_assert_ptr_null(pgb_db_new_fixed(NULL, NULL, 5432, NULL));
	ck_assert_ptr_null(pgb_db_new_fixed(NULL, "127.0.0.1", 0, NULL));
	ck_assert_ptr_null(pgb_db_new_fixed(NULL, "127.0.0.1", 65536, NULL));
	db = pgb_db_new_fixed(NULL, "127.0.0.1", 65535, NULL);
	ck_assert_ptr_nonnull(db);
	ck_assert_str_eq(pgb_db_role(db), "fixed");
	pgb_db_free(db);
	db = pgb_db_new(NULL, "main", "replica", fx.sock);
	ck_assert_ptr_nonnull(db);
	ck_assert_str_eq(pgb_db_cluster(db), "main");
	ck_assert_str_eq(pgb_db_role(db), "replica");
	/* No host before the first session asks the daemon. */
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port),
	    -1);
	pgb_db_free(db);
	pgb_db_free(NULL);
}
END_TEST

/* --- the default hook's requests -------------------------------------------- */

static uint64_t
db_resolves(pgb_db *db)
{
	pgb_pool_stats	st;

	pgb_db_stats(db, &st);
	return (st.resolves);
}

START_TEST(test_default_hook_asks_as_often_as_told)
{
	pgb_db		*db;
	pgb_session	*s;
	pgb_pool_stats	 st;
	char		 host[64];
	int		 port;

	/* A replica db with recheck 0 asks before every session. */
	db = pgb_db_new(CONNINFO("mu_recheck"), "main", "replica", fx.sock);
	pgb_db_set_recheck(db, 0);
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 1));
	ck_assert_str_eq(pgb_session_role(s), "replica");
	pgb_session_close(s);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	ck_assert_uint_eq(db_resolves(db), 2);
	/* Named again with the same role: its idle connection is kept. */
	pgb_db_stats(db, &st);
	ck_assert_uint_eq(st.opened, 1);
	ck_assert_uint_eq(st.reused, 1);
	ck_assert_int_eq(st.qualifying, 1);
	ck_assert_int_eq(pgb_db_current_host(db, host, sizeof host, &port), 0);
	ck_assert_int_eq(port, it_port(fx.cluster, 1));
	/* A long recheck: the answer is reused. */
	pgb_db_set_recheck(db, 3600000);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	exec_ok(s, "SELECT 1");
	ck_assert_uint_eq(db_resolves(db), 2);
	pgb_session_free(s);
	pgb_db_free(db);

	/* A master db asks once while its watch reports no change. */
	db = pgb_db_new(CONNINFO("mu_recheck"), "main", "master", fx.sock);
	pgb_db_set_recheck(db, 0);
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 0));
	pgb_session_close(s);
	exec_ok(s, "SELECT 1");
	ck_assert_uint_eq(db_resolves(db), 1);
	pgb_session_free(s);
	pgb_db_free(db);

	/* An unknown cluster: the session fails with the daemon's code. */
	db = pgb_db_new(CONNINFO("mu_recheck"), "nope", "master", fx.sock);
	s = pgb_session_new(db, 0);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_NOCLUSTER);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "nope master"));
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

static Suite *
lib_mutants_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_mutants");
	tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_commit_and_rollback_with_no_transaction_do_nothing);
	tcase_add_test(tc, test_commit_all_reports_the_failed_session);
	tcase_add_test(tc, test_contexts_nest_only_when_forced);
	tcase_add_test(tc, test_put_session_refuses_null_and_owned_sessions);
	tcase_add_test(tc, test_atomic_guards_and_failures);
	tcase_add_test(tc, test_run_in_new_ctx_messages);
	tcase_add_test(tc, test_dead_idle_connection_is_replaced_at_transaction_start);
	tcase_add_test(tc, test_connection_lost_mid_transaction_fails_once);
	tcase_add_test(tc, test_commit_that_cannot_be_sent_loses_the_transaction);
	tcase_add_test(tc, test_commit_on_a_lost_connection_fails_and_lets_it_go);
	tcase_add_test(tc, test_idle_connections_are_reused_and_validated);
	tcase_add_test(tc, test_pool_size_defaults_to_ten);
	tcase_add_test(tc, test_bigger_pool_serves_a_waiter_at_once);
	tcase_add_test(tc, test_negative_checkout_timeout_is_the_default);
	tcase_add_test(tc, test_waiters_are_served_in_order);
	tcase_add_test(tc, test_close_fails_waiters_and_new_sessions);
	tcase_add_test(tc, test_close_fails_an_event_driven_waiter);
	tcase_add_test(tc, test_hook_runs_before_each_session_and_can_refuse);
	tcase_add_test(tc, test_change_host_moves_the_pool);
	tcase_add_test(tc, test_constructors_refuse_bad_arguments);
	tcase_add_test(tc, test_default_hook_asks_as_often_as_told);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_mutants_suite()));
}
