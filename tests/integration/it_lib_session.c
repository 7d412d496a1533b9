/*
 * it_lib_session.c - libpgbeacon's connect objects, contexts, sessions,
 * atomic blocks and read-your-writes, against a real primary + replica
 * and a real pgbeacond.
 *
 * One cluster and one daemon serve the whole suite (an unchecked
 * fixture, made in the parent before the tests fork); each test uses its
 * own table and its own application_name, so tests do not see each
 * other.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* True when sql on the primary prints expected. */
static bool
primary_is(const char *sql, const char *expected)
{
	return (it_sql_is(fx.cluster, 0, sql, expected));
}

/* Runs sql on s; asserts success. */
#define exec_ok(s, sql)	itl_exec_ok((s), (sql))

static pgb_db *
master_db(const char *conninfo)
{
	pgb_db	*db;

	db = pgb_db_new(conninfo, "main", "master", fx.sock);
	ck_assert_ptr_nonnull(db);
	return (db);
}

/* --- lazy sessions -------------------------------------------------------- */

START_TEST(test_session_takes_no_connection_before_first_statement)
{
	pgb_db		*db = master_db(CONNINFO("it_lazy"));
	pgb_ctx		*ctx;
	pgb_session	*s;
	pgb_pool_stats	 st;
	const char	*q = "SELECT count(*) FROM pg_stat_activity"
			    " WHERE application_name = 'it_lazy'";
	const char	*qtx = "SELECT count(*) FROM pg_stat_activity"
			    " WHERE application_name = 'it_lazy'"
			    " AND state = 'idle in transaction'";

	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_nonnull(ctx);
	s = pgb_ctx_session(ctx, db);
	ck_assert_ptr_nonnull(s);
	ck_assert(primary_is(q, "0"));
	ck_assert_ptr_null(pgb_session_host(s));
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.opened, 0);

	exec_ok(s, "SELECT 1");
	ck_assert(primary_is(q, "1"));
	/* The first statement ran inside the transaction it began. */
	ck_assert(primary_is(qtx, "1"));
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 0));
	ck_assert_str_eq(pgb_session_role(s), "master");

	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	/* Back in the pool, idle, not in a transaction. */
	ck_assert(primary_is(qtx, "0"));
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.idle, 1);
	ck_assert_int_eq(st.busy, 0);
	pgb_db_free(db);
	ck_assert(IT_POLL_UNTIL(primary_is(q, "0"), 5000));
}
END_TEST

START_TEST(test_parameterised_first_statement_begins_transaction)
{
	pgb_db		*db = master_db(CONNINFO("it_params"));
	pgb_ctx		*ctx;
	pgb_session	*s;
	PGresult	*res;
	const char	*vals[2] = { "20", "22" };

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_params;"
	    " CREATE TABLE t_params (v int)");
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	res = pgb_exec_params(s, "INSERT INTO t_params SELECT $1::int + $2::int"
	    " RETURNING v", 2, NULL, vals, NULL, NULL, 0);
	ck_assert_msg(res != NULL, "%s", pgb_session_error(s));
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "42");
	PQclear(res);
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert(primary_is("SELECT count(*) FROM t_params", "0"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is("SELECT v FROM t_params", "42"));
	pgb_db_free(db);
}
END_TEST

/* Nested calls reach the same session through the current context. */
static pgb_session *
deep_call(pgb_db *db)
{
	return (pgb_ctx_session(NULL, db));
}

START_TEST(test_one_session_per_db_per_context_shared_by_nested_calls)
{
	pgb_db		*db = master_db(CONNINFO("it_share"));
	pgb_db		*db2 = master_db(CONNINFO("it_share2"));
	pgb_ctx		*ctx, *inner;
	pgb_session	*s;

	ck_assert_int_eq(pgb_ctx_is_current(), 0);
	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_eq(pgb_ctx_current(), ctx);
	s = pgb_ctx_session(ctx, db);
	ck_assert_ptr_eq(deep_call(db), s);
	ck_assert_ptr_ne(pgb_ctx_session(ctx, db2), s);
	/* Beginning a second context while one is current needs FORCE. */
	ck_assert_ptr_null(pgb_ctx_begin(0));
	inner = pgb_ctx_begin(PGB_CTX_FORCE);
	ck_assert_ptr_nonnull(inner);
	ck_assert_ptr_eq(pgb_ctx_current(), inner);
	ck_assert_ptr_ne(deep_call(db), s);
	ck_assert_int_eq(pgb_ctx_end(inner, 200), 0);
	pgb_ctx_free(inner);
	ck_assert_ptr_eq(pgb_ctx_current(), ctx);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	ck_assert_int_eq(pgb_ctx_is_current(), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(db);
	pgb_db_free(db2);
}
END_TEST

/* --- end of context --------------------------------------------------------- */

/* Inserts v into table in a context ended with status. */
static int
request_insert(pgb_db *db, const char *table, int v, int status)
{
	pgb_ctx		*ctx;
	char		 sql[128];
	int		 rc;

	ctx = pgb_ctx_begin(0);
	snprintf(sql, sizeof sql, "INSERT INTO %s VALUES (%d)", table, v);
	exec_ok(pgb_ctx_session(ctx, db), sql);
	rc = pgb_ctx_end(ctx, status);
	pgb_ctx_free(ctx);
	return (rc);
}

START_TEST(test_end_commits_below_400_and_rolls_back_from_400)
{
	pgb_db	*db = master_db(CONNINFO("it_end"));

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_end; CREATE TABLE t_end (v int)");
	ck_assert_int_eq(request_insert(db, "t_end", 1, 200), 0);
	ck_assert_int_eq(request_insert(db, "t_end", 2, 399), 0);
	ck_assert_int_eq(request_insert(db, "t_end", 3, 400), 0);
	ck_assert_int_eq(request_insert(db, "t_end", 4, 500), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM t_end", "1,2"));
	pgb_db_free(db);
}
END_TEST

/*
 * Without a current context pgb_ctx_session gives NULL; passing that on
 * is refused, not a crash.  So is pgb_atomic without a db.
 */
static int
atomic_unreached(pgb_session *s, void *arg)
{
	(void)s;
	(void)arg;
	ck_abort_msg("pgb_atomic ran its callback without a db");
	return (0);
}

START_TEST(test_null_session_and_db_are_refused)
{
	pgb_db		*db = master_db(CONNINFO("it_nullsess"));
	pgb_session	*s;
	pgb_ctx		*ctx;

	ck_assert_ptr_null(pgb_ctx_current());
	s = pgb_ctx_session(NULL, db);
	ck_assert_ptr_null(s);
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_ptr_null(pgb_exec_params(s, "SELECT $1", 1, NULL,
	    (const char *const []){ "1" }, NULL, NULL, 0));
	ck_assert_ptr_null(pgb_session_conn(s));
	ck_assert_int_eq(pgb_session_commit(s), -1);
	ck_assert_int_eq(pgb_session_rollback(s), -1);
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "no session"));
	ck_assert_str_eq(pgb_session_sqlstate(s), "");

	ctx = pgb_ctx_begin(0);
	ck_assert_int_eq(pgb_atomic(ctx, NULL, PGB_ATOMIC_REFUSE,
	    atomic_unreached, NULL), -1);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "no db"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_failed_statement_is_reported_and_rolled_back)
{
	pgb_db		*db = master_db(CONNINFO("it_fail"));
	pgb_ctx		*ctx;
	pgb_session	*s;
	char		 port[16];

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_fail; CREATE TABLE t_fail (v int)");
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	exec_ok(s, "INSERT INTO t_fail VALUES (1)");
	ck_assert_ptr_null(pgb_exec(s, "SELECT * FROM no_such_table"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_SQL);
	ck_assert_str_eq(pgb_session_sqlstate(s), "42P01");
	/* The message names the cluster, role and host. */
	snprintf(port, sizeof port, ":%d", it_port(fx.cluster, 0));
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "main master"));
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), port));
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "no_such_table"));
	/* The transaction is aborted until rolled back. */
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_str_eq(pgb_session_sqlstate(s), "25P02");
	/* Ending with success still rolls back, and says so. */
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), -1);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "rolled back"));
	pgb_ctx_free(ctx);
	ck_assert(primary_is("SELECT count(*) FROM t_fail", "0"));
	pgb_db_free(db);
}
END_TEST

/*
 * A failed transaction whose connection is then lost: the ROLLBACK that
 * commit (and the end of the context) sends instead fails, and releases
 * the connection.  Both must report that, not read the released one.
 */
static void
fail_then_lose_connection(pgb_session *s, const char *app)
{
	char	sql[256];

	exec_ok(s, "SELECT 1");
	ck_assert_ptr_null(pgb_exec(s, "SELECT * FROM no_such_table"));
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(pid, 5000)"
	    " FROM pg_stat_activity WHERE application_name = '%s'", app);
	primary_sql(sql);
}

START_TEST(test_commit_of_failed_transaction_on_lost_connection)
{
	pgb_db		*db = master_db(CONNINFO("it_failost"));
	pgb_ctx		*ctx;
	pgb_session	*s;

	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	fail_then_lose_connection(s, "it_failost");
	ck_assert_int_eq(pgb_session_commit(s), -1);
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(s), "rolled back"));
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);

	/* The same, met by the end of the context. */
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	fail_then_lose_connection(s, "it_failost");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), -1);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "rolled back"));
	pgb_ctx_free(ctx);
	pgb_db_free(db);
}
END_TEST

static int before_commit_calls;

static int
before_commit_count_cb(pgb_ctx *ctx, pgb_session *s, void *arg)
{
	(void)ctx;
	(void)s;
	(void)arg;
	before_commit_calls++;
	return (0);
}

static int
before_commit_refuse_cb(pgb_ctx *ctx, pgb_session *s, void *arg)
{
	(void)ctx;
	before_commit_calls++;
	return (pgb_session_db(s) == arg ? -1 : 0);
}

START_TEST(test_before_commit_runs_per_session_and_can_refuse)
{
	pgb_db		*a = master_db(CONNINFO("it_bc_a"));
	pgb_db		*b = master_db(CONNINFO("it_bc_b"));
	pgb_db		*c = master_db(CONNINFO("it_bc_c"));
	pgb_ctx		*ctx;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_bc; CREATE TABLE t_bc (v int)");
	ctx = pgb_ctx_begin(0);
	pgb_ctx_set_before_commit(ctx, before_commit_count_cb, NULL);
	exec_ok(pgb_ctx_session(ctx, a), "INSERT INTO t_bc VALUES (1)");
	exec_ok(pgb_ctx_session(ctx, b), "INSERT INTO t_bc VALUES (2)");
	(void)pgb_ctx_session(ctx, c);		/* never used: no callback */
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert_int_eq(before_commit_calls, 2);
	/* Not called when rolling back. */
	ctx = pgb_ctx_begin(0);
	pgb_ctx_set_before_commit(ctx, before_commit_count_cb, NULL);
	exec_ok(pgb_ctx_session(ctx, a), "INSERT INTO t_bc VALUES (3)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	ck_assert_int_eq(before_commit_calls, 2);
	/* A refusal rolls back that session only. */
	ctx = pgb_ctx_begin(0);
	pgb_ctx_set_before_commit(ctx, before_commit_refuse_cb, b);
	exec_ok(pgb_ctx_session(ctx, a), "INSERT INTO t_bc VALUES (4)");
	exec_ok(pgb_ctx_session(ctx, b), "INSERT INTO t_bc VALUES (5)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), -1);
	pgb_ctx_free(ctx);
	ck_assert_int_eq(before_commit_calls, 4);
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM t_bc", "1,2,4"));
	pgb_db_free(a);
	pgb_db_free(b);
	pgb_db_free(c);
}
END_TEST

START_TEST(test_early_commit_rollback_and_close_mid_request)
{
	pgb_db		*db = master_db(CONNINFO("it_early"));
	pgb_ctx		*ctx;
	pgb_session	*s;
	pgb_pool_stats	 st;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_early;"
	    " CREATE TABLE t_early (v int)");
	/* Early commit: kept even though the request then fails. */
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	exec_ok(s, "INSERT INTO t_early VALUES (1)");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT count(*) FROM t_early", "1"));
	exec_ok(s, "INSERT INTO t_early VALUES (2)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	/* Early rollback: undone even though the request then succeeds. */
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	exec_ok(s, "INSERT INTO t_early VALUES (3)");
	ck_assert_int_eq(pgb_ctx_rollback_all(ctx), 0);
	ck_assert_int_eq(pgb_session_in_transaction(s), 0);
	exec_ok(s, "INSERT INTO t_early VALUES (4)");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	/* Early close: connection back in the pool, open work dropped, a
	 * later statement takes a fresh one. */
	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, db);
	exec_ok(s, "INSERT INTO t_early VALUES (5)");
	pgb_session_close(s);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.busy, 0);
	ck_assert_int_ge(st.idle, 1);
	ck_assert_ptr_null(pgb_session_host(s));
	exec_ok(s, "INSERT INTO t_early VALUES (6)");
	ck_assert_int_eq(pgb_ctx_commit_all(ctx), 0);
	exec_ok(s, "INSERT INTO t_early VALUES (7)");
	pgb_ctx_close_all(ctx);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM t_early", "1,4,6"));
	pgb_db_free(db);
}
END_TEST

/* --- atomic blocks ------------------------------------------------------------ */

static int
atomic_insert_cb(pgb_session *s, void *arg)
{
	PGresult	*res;
	char		 sql[128];

	snprintf(sql, sizeof sql, "INSERT INTO t_atomic VALUES ('%s')",
	    (const char *)arg);
	res = pgb_exec(s, sql);
	if (res == NULL)
		return (-1);
	PQclear(res);
	return (0);
}

static int
atomic_insert_then_fail_cb(pgb_session *s, void *arg)
{
	(void)atomic_insert_cb(s, arg);
	return (-1);
}

static const char *atomic_rows = "SELECT coalesce(string_agg(v, ',' ORDER BY v),"
	" '') FROM t_atomic";

/* A context with "a" inserted and not committed. */
static pgb_ctx *
atomic_open(pgb_db *db)
{
	pgb_ctx	*ctx;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_atomic;"
	    " CREATE TABLE t_atomic (v text)");
	ctx = pgb_ctx_begin(0);
	exec_ok(pgb_ctx_session(ctx, db), "INSERT INTO t_atomic VALUES ('a')");
	return (ctx);
}

START_TEST(test_atomic_commit_first)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx = atomic_open(db);

	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"b"), 0);
	ck_assert(primary_is(atomic_rows, "a,b"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "a,b"));
	pgb_db_free(db);
}
END_TEST

START_TEST(test_atomic_rollback_first)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx = atomic_open(db);

	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_ROLLBACK_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"b"), 0);
	ck_assert(primary_is(atomic_rows, "b"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "b"));
	pgb_db_free(db);
}
END_TEST

/* The seed's "append": the block joins the open transaction and commits it. */
START_TEST(test_atomic_append_commits_open_transaction_with_block)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx = atomic_open(db);

	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_cb, (void *)(uintptr_t)"b"), 0);
	ck_assert(primary_is(atomic_rows, "a,b"));
	ck_assert_int_eq(pgb_session_in_transaction(pgb_ctx_session(ctx, db)),
	    0);
	/* The request failing afterwards cannot take them back. */
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "a,b"));
	pgb_db_free(db);
}
END_TEST

/* ... and when the block fails, rolls the whole transaction back. */
START_TEST(test_atomic_append_failure_rolls_back_open_transaction)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx = atomic_open(db);

	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_then_fail_cb, (void *)(uintptr_t)"b"), -1);
	ck_assert_int_eq(pgb_session_in_transaction(pgb_ctx_session(ctx, db)),
	    0);
	/* The request succeeding afterwards cannot bring them back. */
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, ""));
	pgb_db_free(db);
}
END_TEST

static void
seed_insert(pgb_ctx *ctx, pgb_db *db, const char *v)
{
	ck_assert_int_eq(atomic_insert_cb(pgb_ctx_session(ctx, db),
	    (void *)(uintptr_t)v), 0);
}

/*
 * The seed's atomic_and_previous_transaction, step by step: an insert
 * left open, then a block in each mode.  Committed at the end: 1a, 1b
 * (commit), 2b (rollback), 3a, 3b (append); 4a and 4b go with the failed
 * append block, 5a with the request that the refused block fails.
 */
START_TEST(test_atomic_and_previous_transaction_as_the_seed)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS"
	    " t_atomic; CREATE TABLE t_atomic (v text)");
	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_nonnull(ctx);
	seed_insert(ctx, db, "1a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"1b"), 0);
	seed_insert(ctx, db, "2a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_ROLLBACK_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"2b"), 0);
	seed_insert(ctx, db, "3a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_cb, (void *)(uintptr_t)"3b"), 0);
	seed_insert(ctx, db, "4a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_then_fail_cb, (void *)(uintptr_t)"4b"), -1);
	seed_insert(ctx, db, "5a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_REFUSE,
	    atomic_insert_cb, (void *)(uintptr_t)"5b"), -1);
	ck_assert_int_eq(pgb_session_errcode(pgb_ctx_session(ctx, db)),
	    PGB_ERR_STATE);
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "1a,1b,2b,3a,3b"));
	pgb_db_free(db);
}
END_TEST

START_TEST(test_atomic_refuse_fails_and_leaves_transaction_open)
{
	pgb_db		*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx		*ctx = atomic_open(db);
	pgb_session	*s = pgb_ctx_session(ctx, db);

	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_REFUSE,
	    atomic_insert_cb, (void *)(uintptr_t)"b"), -1);
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_STATE);
	ck_assert_ptr_nonnull(strstr(pgb_ctx_error(ctx), "already open"));
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "a"));
	pgb_db_free(db);
}
END_TEST

START_TEST(test_atomic_callback_result_decides_commit_or_rollback)
{
	pgb_db	*db = master_db(CONNINFO("it_atomic"));
	pgb_ctx	*ctx;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_atomic;"
	    " CREATE TABLE t_atomic (v text)");
	ctx = pgb_ctx_begin(0);
	/* No transaction open: every mode runs a transaction of its own. */
	ck_assert_int_eq(pgb_atomic(NULL, db, PGB_ATOMIC_REFUSE,
	    atomic_insert_cb, (void *)(uintptr_t)"x"), 0);
	ck_assert(primary_is(atomic_rows, "x"));
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_then_fail_cb, (void *)(uintptr_t)"y"), -1);
	ck_assert_int_eq(pgb_session_in_transaction(pgb_ctx_session(ctx, db)),
	    0);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "x"));
	pgb_db_free(db);
}
END_TEST

/* --- test contexts: savepoint sessions, get/put/pop -------------------------- */

/* The value of the one-cell query sql on s (owned by the caller). */
#define session_value(s, sql)	itl_session_value((s), (sql))

/*
 * The seed's transactional tests: the code under test (here the seed's
 * atomic_and_previous_transaction, then an early commit, a failed
 * statement and its rollback) runs in a test context whose session is a
 * savepoint session on the test's outer transaction.  Its commits,
 * rollbacks and atomic blocks act as in production, as savepoints: the
 * test sees exactly the rows production would commit, inside its own
 * transaction, and nothing persists once the test rolls back.
 */
START_TEST(test_code_under_test_runs_on_savepoints_of_the_test_transaction)
{
	pgb_db		*db = master_db(CONNINFO("it_sp"));
	pgb_session	*outer, *sp;
	pgb_ctx		*ctx;
	char		*v;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS"
	    " t_atomic; CREATE TABLE t_atomic (v text)");
	outer = pgb_session_new(db, 0);		/* the seed's rollback_session */
	ck_assert_ptr_null(pgb_session_new_savepoint(NULL));
	ctx = pgb_ctx_begin(0);			/* set_test_context */
	ck_assert_ptr_nonnull(ctx);
	sp = pgb_ctx_put_savepoint_session(ctx, outer);
	ck_assert_ptr_nonnull(sp);
	ck_assert_ptr_eq(pgb_ctx_get_session(NULL, db), sp);
	ck_assert_ptr_eq(pgb_ctx_session(ctx, db), sp);

	/* atomic_and_previous_transaction, as in production. */
	seed_insert(ctx, db, "1a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"1b"), 0);
	seed_insert(ctx, db, "2a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_ROLLBACK_FIRST,
	    atomic_insert_cb, (void *)(uintptr_t)"2b"), 0);
	seed_insert(ctx, db, "3a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_cb, (void *)(uintptr_t)"3b"), 0);
	seed_insert(ctx, db, "4a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_APPEND,
	    atomic_insert_then_fail_cb, (void *)(uintptr_t)"4b"), -1);
	seed_insert(ctx, db, "5a");
	ck_assert_int_eq(pgb_atomic(ctx, db, PGB_ATOMIC_REFUSE,
	    atomic_insert_cb, (void *)(uintptr_t)"5b"), -1);
	ck_assert_int_eq(pgb_ctx_end(ctx, 500), 0);
	pgb_ctx_free(ctx);

	/* Visible in the test's transaction, committed nowhere. */
	v = session_value(outer, atomic_rows);
	ck_assert_str_eq(v, "1a,1b,2b,3a,3b");
	free(v);
	ck_assert(primary_is(atomic_rows, ""));

	/* A failed statement rolls back to its savepoint only. */
	ctx = pgb_ctx_begin(0);
	sp = pgb_ctx_put_savepoint_session(ctx, outer);
	ck_assert_ptr_nonnull(sp);
	exec_ok(sp, "INSERT INTO t_atomic VALUES ('6')");
	ck_assert_int_eq(pgb_session_commit(sp), 0);	/* early commit */
	exec_ok(sp, "INSERT INTO t_atomic VALUES ('7')");
	ck_assert_ptr_null(pgb_exec(sp, "SELECT 1/0"));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), -1);	/* 7 rolled back */
	pgb_ctx_free(ctx);
	v = session_value(outer, atomic_rows);
	ck_assert_str_eq(v, "1a,1b,2b,3a,3b,6");
	free(v);

	pgb_session_free(outer);		/* the test rolls back */
	ck_assert(primary_is(atomic_rows, ""));
	pgb_db_free(db);
}
END_TEST

/* get, put and pop a context's session, as the seed's helpers. */
START_TEST(test_ctx_get_put_pop_session)
{
	pgb_db		*db = master_db(CONNINFO("it_getputpop"));
	pgb_db		*other = master_db(CONNINFO("it_getputpop2"));
	pgb_session	*s, *popped, *fresh;
	pgb_ctx		*ctx;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS"
	    " t_atomic; CREATE TABLE t_atomic (v text)");
	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_null(pgb_ctx_get_session(ctx, db));
	ck_assert_ptr_null(pgb_ctx_pop_session(ctx, db));
	s = pgb_ctx_session(ctx, db);
	ck_assert_ptr_eq(pgb_ctx_get_session(ctx, db), s);
	ck_assert_ptr_null(pgb_ctx_get_session(ctx, other));
	exec_ok(s, "INSERT INTO t_atomic VALUES ('popped')");

	/* Popped: the caller's, transaction and all; the context makes
	 * a new one. */
	popped = pgb_ctx_pop_session(ctx, db);
	ck_assert_ptr_eq(popped, s);
	ck_assert_ptr_null(pgb_ctx_get_session(ctx, db));
	fresh = pgb_ctx_session(ctx, db);
	ck_assert_ptr_ne(fresh, popped);
	exec_ok(fresh, "INSERT INTO t_atomic VALUES ('fresh')");
	ck_assert_int_eq(pgb_ctx_put_session(ctx, fresh), -1);	/* owned */

	/* Put back: it replaces fresh, which is rolled back and freed. */
	ck_assert_int_eq(pgb_ctx_put_session(ctx, popped), 0);
	ck_assert_ptr_eq(pgb_ctx_get_session(ctx, db), popped);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	s = pgb_session_new(db, 0);
	ck_assert_int_eq(pgb_ctx_put_session(ctx, s), -1);	/* ended */
	pgb_session_free(s);
	pgb_ctx_free(ctx);
	ck_assert(primary_is(atomic_rows, "popped"));
	pgb_db_free(db);
	pgb_db_free(other);
}
END_TEST

/* --- outside a context ------------------------------------------------------- */

START_TEST(test_session_outside_context_with_and_without_transaction)
{
	pgb_db		*db = master_db(CONNINFO("it_noctx"));
	pgb_session	*s, *auto_s;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_noctx;"
	    " CREATE TABLE t_noctx (v int)");
	ck_assert_int_eq(pgb_ctx_is_current(), 0);
	s = pgb_session_new(db, 0);
	exec_ok(s, "INSERT INTO t_noctx VALUES (1)");
	ck_assert_int_eq(pgb_session_in_transaction(s), 1);
	ck_assert(primary_is("SELECT count(*) FROM t_noctx", "0"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert(primary_is("SELECT count(*) FROM t_noctx", "1"));
	exec_ok(s, "INSERT INTO t_noctx VALUES (2)");
	pgb_session_free(s);		/* rolls back 2 */

	auto_s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(auto_s, "INSERT INTO t_noctx VALUES (3)");
	ck_assert_int_eq(pgb_session_in_transaction(auto_s), 0);
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM t_noctx", "1,3"));
	pgb_session_free(auto_s);
	pgb_db_free(db);
}
END_TEST

struct worker {
	pgb_db		*db;
	int		 id;
	int		 rc;
	pgb_ctx		*seen_ctx;
	int		 current_ok;
};

static int
worker_cb(pgb_ctx *ctx, void *arg)
{
	struct worker	*w = arg;
	char		 sql[128];
	PGresult	*res;

	w->seen_ctx = ctx;
	w->current_ok = pgb_ctx_current() == ctx;
	snprintf(sql, sizeof sql, "INSERT INTO t_threads VALUES (%d);"
	    " SELECT pg_sleep(0.2)", w->id);
	res = pgb_exec(pgb_ctx_session(NULL, w->db), sql);
	if (res == NULL)
		return (-1);
	PQclear(res);
	return (w->id % 2 == 0 ? 0 : -1);	/* odd ids fail */
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;

	w->rc = pgb_run_in_new_ctx(worker_cb, w, NULL, 0);
	return (NULL);
}

START_TEST(test_run_in_new_ctx_from_several_threads)
{
	pgb_db		*db = master_db(CONNINFO("it_threads"));
	struct worker	 w[6];
	pthread_t	 th[6];
	pgb_session	*warm[6];
	PGresult	*res;
	pgb_ctx		*outer;
	int64_t		 t0;
	int		 i;

	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_threads;"
	    " CREATE TABLE t_threads (v int)");
	/*
	 * Six connections open beforehand: the figure below is about the
	 * requests running at once, not about connection set-up, which a
	 * loaded machine (or ThreadSanitizer) slows down.
	 */
	for (i = 0; i < 6; i++) {
		warm[i] = pgb_session_new(db, 0);
		res = pgb_exec(warm[i], "SELECT 1");
		ck_assert_ptr_nonnull(res);
		PQclear(res);
	}
	for (i = 0; i < 6; i++)
		pgb_session_free(warm[i]);
	outer = pgb_ctx_begin(0);
	t0 = it_now_ms();
	for (i = 0; i < 6; i++) {
		w[i].db = db;
		w[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	/* Concurrent: six 200 ms requests well under 6 x 200 ms. */
	ck_assert_int_lt(it_now_ms() - t0, 1000);
	for (i = 0; i < 6; i++) {
		ck_assert_int_eq(w[i].rc, i % 2 == 0 ? 0 : -1);
		ck_assert(w[i].current_ok);
		ck_assert_ptr_ne(w[i].seen_ctx, outer);
	}
	ck_assert(primary_is("SELECT string_agg(v::text, ',' ORDER BY v)"
	    " FROM t_threads", "0,2,4"));
	/* Also from inside a context: the outer one is current again after. */
	w[0].id = 8;
	ck_assert_int_eq(pgb_run_in_new_ctx(worker_cb, &w[0], NULL, 0), 0);
	ck_assert_ptr_eq(pgb_ctx_current(), outer);
	ck_assert_int_eq(pgb_ctx_end(outer, 200), 0);
	pgb_ctx_free(outer);
	pgb_db_free(db);
}
END_TEST

/* --- roles, read-your-writes ---------------------------------------------- */

START_TEST(test_master_and_replica_dbs_in_one_context)
{
	pgb_db		*m = master_db(CONNINFO("it_roles"));
	pgb_db		*r;
	pgb_ctx		*ctx;
	pgb_session	*sm, *sr;
	PGresult	*res;

	r = pgb_db_new(CONNINFO("it_roles"), "main", "replica", fx.sock);
	ctx = pgb_ctx_begin(0);
	sm = pgb_ctx_session(ctx, m);
	sr = pgb_ctx_session(ctx, r);
	ck_assert_ptr_ne(sm, sr);
	res = pgb_exec(sm, "SELECT pg_is_in_recovery()");
	ck_assert_ptr_nonnull(res);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "f");
	PQclear(res);
	res = pgb_exec(sr, "SELECT pg_is_in_recovery()");
	ck_assert_msg(res != NULL, "%s", pgb_session_error(sr));
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	ck_assert_int_eq(pgb_session_port(sm), it_port(fx.cluster, 0));
	ck_assert_int_eq(pgb_session_port(sr), it_port(fx.cluster, 1));
	ck_assert_str_eq(pgb_session_role(sr), "replica");
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(m);
	pgb_db_free(r);
}
END_TEST

static void
replica_sql(const char *sql)
{
	char	*res;

	res = it_sql(fx.cluster, 1, sql);
	ck_assert_msg(res != NULL, "%s: %s", sql, it_last_error());
	free(res);
}

/* Count of t_ryw rows seen by a replica-db session of a new context given
 * lsn (NULL: none); *port gets the server that answered. */
static int
ryw_read(pgb_db *r, const char *lsn, int *port)
{
	pgb_ctx		*ctx;
	pgb_session	*s;
	PGresult	*res;
	int		 n;

	ctx = pgb_ctx_begin(0);
	if (lsn != NULL)
		ck_assert_int_eq(pgb_ctx_set_lsn(ctx, lsn), 0);
	s = pgb_ctx_session(ctx, r);
	res = pgb_exec(s, "SELECT count(*) FROM t_ryw");
	ck_assert_msg(res != NULL, "%s", pgb_session_error(s));
	n = atoi(PQgetvalue(res, 0, 0));
	*port = pgb_session_port(s);
	PQclear(res);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	return (n);
}

START_TEST(test_read_your_writes_with_min_lsn_while_replica_lags)
{
	pgb_db		*m = master_db(CONNINFO("it_ryw"));
	pgb_db		*r;
	pgb_ctx		*ctx;
	pgb_session	*sm, *sr;
	PGresult	*res;
	char		 lsn[PGB_LSN_MAX];
	int		 port;

	r = pgb_db_new(CONNINFO("it_ryw"), "main", "replica", fx.sock);
	pgb_db_set_recheck(r, 0);
	primary_sql("SET client_min_messages TO warning; DROP TABLE IF EXISTS t_ryw; CREATE TABLE t_ryw (v int)");
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 1,
	    "SELECT to_regclass('t_ryw') IS NOT NULL", "t"), 10000));
	replica_sql("SELECT pg_wal_replay_pause()");

	/* Reads-only transactions record no LSN. */
	ctx = pgb_ctx_begin(0);
	sm = pgb_ctx_session(ctx, m);
	exec_ok(sm, "SELECT count(*) FROM t_ryw");
	ck_assert_int_eq(pgb_session_commit(sm), 0);
	ck_assert_int_eq(pgb_ctx_lsn(ctx, lsn), 0);
	/* A write records the LSN its commit reached. */
	exec_ok(sm, "INSERT INTO t_ryw VALUES (1)");
	ck_assert_int_eq(pgb_session_commit(sm), 0);
	ck_assert_int_eq(pgb_ctx_lsn(ctx, lsn), 1);
	ck_assert_str_eq(pgb_session_commit_lsn(sm), lsn);
	/* The replica has not replayed it: the replica db is sent to the
	 * primary, and sees the write. */
	sr = pgb_ctx_session(ctx, r);
	res = pgb_exec(sr, "SELECT count(*) FROM t_ryw");
	ck_assert_msg(res != NULL, "%s", pgb_session_error(sr));
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	ck_assert_int_eq(pgb_session_port(sr), it_port(fx.cluster, 0));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);

	/* Without the LSN the replica is used, and it is behind. */
	ck_assert_int_eq(ryw_read(r, NULL, &port), 0);
	ck_assert_int_eq(port, it_port(fx.cluster, 1));
	/* With the LSN from a "cookie", still the primary. */
	ck_assert_int_eq(ryw_read(r, lsn, &port), 1);
	ck_assert_int_eq(port, it_port(fx.cluster, 0));

	/* Once replayed, the replica itself answers, with the write. */
	replica_sql("SELECT pg_wal_replay_resume()");
	ck_assert(IT_POLL_UNTIL(ryw_read(r, lsn, &port) == 1 &&
	    port == it_port(fx.cluster, 1), 10000));
	pgb_db_free(m);
	pgb_db_free(r);
}
END_TEST

/* --- pool ------------------------------------------------------------------- */

struct late_release {
	pgb_session	*holder;
	int		 delay_ms;
};

static void *
late_release_main(void *arg)
{
	struct late_release *lr = arg;

	it_sleep_ms(lr->delay_ms);
	pgb_session_close(lr->holder);
	return (NULL);
}

START_TEST(test_pool_exhaustion_times_out_then_recovers)
{
	pgb_db			*db = master_db(CONNINFO("it_pool"));
	pgb_session		*a, *b;
	struct late_release	 lr;
	pthread_t		 th;
	int64_t			 t0;

	pgb_db_set_pool(db, 1, 300, -1);
	a = pgb_session_new(db, 0);
	b = pgb_session_new(db, 0);
	exec_ok(a, "SELECT 1");
	t0 = it_now_ms();
	ck_assert_ptr_null(pgb_exec(b, "SELECT 1"));
	ck_assert_int_ge(it_now_ms() - t0, 290);
	ck_assert_int_eq(pgb_session_errcode(b), PGB_ERR_POOL_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(pgb_session_error(b), "exhausted"));
	ck_assert_ptr_nonnull(strstr(pgb_session_error(b), "main master"));
	/* A waiter gets the connection as soon as it is returned. */
	pgb_db_set_pool(db, 1, 5000, -1);
	lr.holder = a;
	lr.delay_ms = 100;
	ck_assert_int_eq(pthread_create(&th, NULL, late_release_main, &lr), 0);
	exec_ok(b, "SELECT 1");
	pthread_join(th, NULL);
	pgb_session_free(a);
	pgb_session_free(b);
	pgb_db_free(db);
}
END_TEST

START_TEST(test_broken_idle_connection_is_replaced_not_handed_out)
{
	pgb_db		*db = master_db(CONNINFO("it_broken"));
	pgb_session	*s;
	pgb_pool_stats	 st;

	pgb_db_set_pool(db, 2, 1000, 0);	/* validate every reuse */
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	exec_ok(s, "SELECT 1");
	pgb_session_close(s);
	primary_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	    " WHERE application_name = 'it_broken'");
	exec_ok(s, "SELECT 1");
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.opened, 2);
	ck_assert_int_ge(st.discarded, 1);
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

/* --- fixed hosts, closing --------------------------------------------------- */

START_TEST(test_fixed_db_and_closed_db)
{
	pgb_db		*db;
	pgb_session	*s;
	pgb_pool_stats	 st;

	db = pgb_db_new_fixed(CONNINFO("it_fixed"), "127.0.0.1",
	    it_port(fx.cluster, 1), "replica");
	s = pgb_session_new(db, 0);
	exec_ok(s, "SELECT 1");
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_session_port(s), it_port(fx.cluster, 1));
	pgb_db_close(db);
	/* In use: closed when returned, not kept. */
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 1);
	pgb_session_close(s);
	pgb_db_stats(db, &st);
	ck_assert_int_eq(st.retiring, 0);
	ck_assert_int_eq(st.idle, 0);
	ck_assert(IT_POLL_UNTIL(it_sql_is(fx.cluster, 1, "SELECT count(*) FROM"
	    " pg_stat_activity WHERE application_name = 'it_fixed'", "0"),
	    5000));
	ck_assert_ptr_null(pgb_exec(s, "SELECT 1"));
	ck_assert_int_eq(pgb_session_errcode(s), PGB_ERR_CLOSED);
	pgb_session_free(s);
	pgb_db_free(db);
}
END_TEST

static Suite *
lib_session_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_session");
	tc = tcase_create("core");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_session_takes_no_connection_before_first_statement);
	tcase_add_test(tc, test_parameterised_first_statement_begins_transaction);
	tcase_add_test(tc, test_one_session_per_db_per_context_shared_by_nested_calls);
	tcase_add_test(tc, test_end_commits_below_400_and_rolls_back_from_400);
	tcase_add_test(tc, test_failed_statement_is_reported_and_rolled_back);
	tcase_add_test(tc, test_null_session_and_db_are_refused);
	tcase_add_test(tc, test_commit_of_failed_transaction_on_lost_connection);
	tcase_add_test(tc, test_before_commit_runs_per_session_and_can_refuse);
	tcase_add_test(tc, test_early_commit_rollback_and_close_mid_request);
	tcase_add_test(tc, test_atomic_commit_first);
	tcase_add_test(tc, test_atomic_rollback_first);
	tcase_add_test(tc, test_atomic_append_commits_open_transaction_with_block);
	tcase_add_test(tc, test_atomic_append_failure_rolls_back_open_transaction);
	tcase_add_test(tc, test_atomic_and_previous_transaction_as_the_seed);
	tcase_add_test(tc,
	    test_code_under_test_runs_on_savepoints_of_the_test_transaction);
	tcase_add_test(tc, test_ctx_get_put_pop_session);
	tcase_add_test(tc, test_atomic_refuse_fails_and_leaves_transaction_open);
	tcase_add_test(tc, test_atomic_callback_result_decides_commit_or_rollback);
	tcase_add_test(tc, test_session_outside_context_with_and_without_transaction);
	tcase_add_test(tc, test_run_in_new_ctx_from_several_threads);
	tcase_add_test(tc, test_master_and_replica_dbs_in_one_context);
	tcase_add_test(tc, test_read_your_writes_with_min_lsn_while_replica_lags);
	tcase_add_test(tc, test_pool_exhaustion_times_out_then_recovers);
	tcase_add_test(tc, test_broken_idle_connection_is_replaced_not_handed_out);
	tcase_add_test(tc, test_fixed_db_and_closed_db);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_session_suite()));
}
