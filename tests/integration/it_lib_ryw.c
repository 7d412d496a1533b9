/*
 * it_lib_ryw.c - read your own writes under every synchronous_commit,
 * what its bookkeeping costs, and the errors a caller is given.
 *
 * The read-your-writes tests run twice, on a primary + 2 replicas with
 * synchronous_commit = on (tcase "sync_on") and with it off
 * ("sync_off"), dozens of times each: the blocking and the event-driven
 * API (write on the master, commit, read on a replica in the same
 * context), the example service's /write then /read with the cookie,
 * RESOLVE min_lsn on the daemon, and the README's orders.c, built from
 * the README itself and run 50 times.  Under synchronous_commit = off the
 * WAL *write* position after COMMIT can lie before the end of the commit
 * record: a replica that replayed that far can lack the commit.
 *
 * One cluster, daemon and example service per tcase (unchecked
 * fixtures, made in the parent before the tests fork).
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "pgbeacon.h"
#include "support/itest.h"
#include "support/spawn.h"
#include "support/webapp_util.h"
#include "../check_main.h"

#define CONNINFO	"user=postgres dbname=postgres application_name=it_ryw"
#define WA_CONNINFO	"user=postgres dbname=postgres application_name=webapp"
/* Iterations of each read-your-writes loop. */
#define RYW_N		40

static struct it_watched	 fx;	/* cluster, daemon, socket */
static struct wa_proc		 app;	/* the example service */

static void
fixture_start(const char *synchronous_commit)
{
	struct it_cluster_opts	opts = { .synchronous_commit =
				    synchronous_commit };
	char			*v;

	it_watched_start_opts(&fx, 2, &opts);
	/* A daemon that sees each replay within 10 ms: the window in which
	 * a too-low LSN names a replica that lacks the commit is wide. */
	(void)it_daemon_stop(fx.daemon);
	free(fx.config);
	fx.config = it_config(fx.cluster, "main", "check_interval_ms = 10;\n"
	    "fast_check_interval_ms = 10;\n");
	it_watched_daemon_start(&fx);
	v = it_sql(fx.cluster, 2, "SHOW synchronous_commit");
	if (v == NULL || strcmp(v, synchronous_commit) != 0) {
		fprintf(stderr, "synchronous_commit is %s, not %s\n",
		    v != NULL ? v : it_last_error(), synchronous_commit);
		exit(1);
	}
	free(v);
	wa_start(&app, fx.sock, it_cluster_dir(fx.cluster), WA_CONNINFO, 10);
}

static void
setup_sync_on(void)
{
	fixture_start("on");
}

static void
setup_sync_off(void)
{
	fixture_start("off");
}

static void
fixture_stop(void)
{
	(void)wa_stop(&app);
	it_watched_stop(&fx);
}

static pgb_db *
db_new(const char *role)
{
	pgb_db	*db;

	db = pgb_db_new(CONNINFO, "main", role, fx.sock);
	ck_assert_ptr_nonnull(db);
	/* Ask the daemon before every replica session: no stale answer. */
	pgb_db_set_recheck(db, 0);
	return (db);
}

/* True when the daemon names a replica for min_lsn=lsn. */
static bool
replica_has(const char *lsn)
{
	char	 opts[128], *reply;
	bool	 ok;

	snprintf(opts, sizeof opts, "replica min_lsn=%s fallback=none", lsn);
	reply = it_resolve(fx.sock, "main", opts);
	ok = reply != NULL && strncmp(reply, "OK ", 3) == 0;
	free(reply);
	return (ok);
}

/*
 * Returns once the daemon knows a replica that replayed all the primary
 * has written: the moment a commit's write position, taken for its
 * LSN, would wrongly name that replica.
 */
static void
wait_caught_up(void)
{
	char	*lsn;

	lsn = it_sql(fx.cluster, 0, "SELECT pg_current_wal_lsn()");
	ck_assert_msg(lsn != NULL, "%s", it_last_error());
	ck_assert_msg(IT_POLL_UNTIL(replica_has(lsn), 20000), "no replica"
	    " replayed %s within 20 s", lsn);
	free(lsn);
}

/* Runs sql on s; asserts success and returns the first value, owned. */
static char *
exec_val(pgb_session *s, const char *sql)
{
	PGresult	*res;
	char		*v;

	res = pgb_exec(s, sql);
	ck_assert_msg(res != NULL, "%s: %s", sql, pgb_session_error(s));
	v = strdup(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return (v);
}

/*
 * The write of iteration i: a new table (prefix_i; each tcase has a
 * cluster of its own) and a row in it; on odd i the last statement is a
 * SELECT, so the commit cannot learn from the tag that the transaction
 * wrote and asks.  Nothing is dropped: a transaction that drops a table
 * commits synchronously whatever synchronous_commit says.
 */
static void
ryw_write_sql(char *buf, size_t len, const char *prefix, int i)
{
	snprintf(buf, len, "CREATE TABLE %s_%d (v int);"
	    " INSERT INTO %s_%d VALUES (%d)%s", prefix, i, prefix, i, i,
	    i % 2 == 1 ? "; SELECT 1" : "");
}

/* --- the blocking API ------------------------------------------------------ */

START_TEST(test_blocking_read_your_writes_every_time)
{
	pgb_db		*m = db_new("master"), *r = db_new("replica");
	pgb_ctx		*ctx;
	pgb_session	*sm, *sr;
	char		 sql[512], lsn[PGB_LSN_MAX], *v;
	int		 i, on_replica = 0;

	for (i = 0; i < RYW_N; i++) {
		wait_caught_up();
		ctx = pgb_ctx_begin(0);
		ck_assert_ptr_nonnull(ctx);
		sm = pgb_ctx_session(ctx, m);
		ryw_write_sql(sql, sizeof sql, "t_ryw_b", i);
		free(exec_val(sm, sql));
		ck_assert_msg(pgb_session_commit(sm) == 0, "%s",
		    pgb_session_error(sm));
		ck_assert_int_eq(pgb_ctx_lsn(ctx, lsn), 1);
		sr = pgb_ctx_session(ctx, r);
		snprintf(sql, sizeof sql, "SELECT max(v) FROM t_ryw_b_%d", i);
		v = exec_val(sr, sql);
		snprintf(sql, sizeof sql, "%d", i);
		ck_assert_msg(strcmp(v, sql) == 0, "iteration %d: read %s on"
		    " %s:%d (%s), commit at %s", i, v, pgb_session_host(sr),
		    pgb_session_port(sr), pgb_session_role(sr), lsn);
		free(v);
		on_replica += strcmp(pgb_session_role(sr), "replica") == 0;
		ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
		pgb_ctx_free(ctx);
	}
	fprintf(stderr, "blocking: %d of %d reads on a replica\n", on_replica,
	    RYW_N);
	pgb_db_free(m);
	pgb_db_free(r);
}
END_TEST

/* --- the event-driven API -------------------------------------------------- */

struct aryw {
	struct event_base *base;
	pgb_db		*m, *r;
	pgb_actx	*ctx;
	int		 i;
	int		 done;		/* 1 ok, -1 failed */
	int		 on_replica;
	char		 why[1200];
};

static void
aryw_fail(struct aryw *a, pgb_asession *s, const char *what)
{
	snprintf(a->why, sizeof a->why, "iteration %d: %s: %s", a->i, what,
	    s != NULL ? pgb_asession_error(s) : "");
	a->done = -1;
}

static void
aryw_end_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct aryw	*a = arg;

	if (rc != 0) {
		snprintf(a->why, sizeof a->why, "iteration %d: end: %s", a->i,
		    pgb_actx_error(ctx));
		a->done = -1;
	} else
		a->done = 1;
}

static void
aryw_read_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct aryw	*a = arg;
	char		 want[16], lsn[PGB_LSN_MAX];

	if (res == NULL)
		return (aryw_fail(a, s, "replica read"));
	snprintf(want, sizeof want, "%d", a->i);
	if (strcmp(PQgetvalue(res, 0, 0), want) != 0) {
		(void)pgb_actx_lsn(a->ctx, lsn);
		snprintf(a->why, sizeof a->why, "iteration %d: read %s on"
		    " %s:%d (%s), commit at %s", a->i, PQgetvalue(res, 0, 0),
		    pgb_asession_host(s), pgb_asession_port(s),
		    pgb_asession_role(s), lsn);
		a->done = -1;
		return;
	}
	a->on_replica += strcmp(pgb_asession_role(s), "replica") == 0;
	if (pgb_actx_end(a->ctx, 200, aryw_end_cb, a) == -1)
		aryw_fail(a, NULL, "pgb_actx_end");
}

static void
aryw_commit_cb(pgb_asession *s, int rc, void *arg)
{
	struct aryw	*a = arg;
	pgb_asession	*sr;
	char		 lsn[PGB_LSN_MAX], sql[64];

	if (rc != 0)
		return (aryw_fail(a, s, "commit"));
	if (pgb_actx_lsn(a->ctx, lsn) != 1)
		return (aryw_fail(a, s, "no LSN recorded"));
	sr = pgb_actx_session(a->ctx, a->r);
	snprintf(sql, sizeof sql, "SELECT max(v) FROM t_ryw_a_%d", a->i);
	if (pgb_aexec(sr, sql, aryw_read_cb, a) == -1)
		aryw_fail(a, sr, "queue the read");
}

static void
aryw_write_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct aryw	*a = arg;

	if (res == NULL)
		return (aryw_fail(a, s, "write"));
	if (pgb_asession_commit(s, aryw_commit_cb, a) == -1)
		aryw_fail(a, s, "queue the commit");
}

START_TEST(test_event_driven_read_your_writes_every_time)
{
	struct aryw	 a = { 0 };
	pgb_loop	*loop;
	pgb_asession	*sm;
	char		 sql[512];
	int64_t		 deadline;

	a.base = event_base_new();
	ck_assert_ptr_nonnull(a.base);
	loop = pgb_loop_new(a.base, fx.sock);
	ck_assert_ptr_nonnull(loop);
	a.m = db_new("master");
	a.r = db_new("replica");
	for (a.i = 0; a.i < RYW_N; a.i++) {
		a.done = 0;
		wait_caught_up();
		a.ctx = pgb_actx_new(loop);
		ck_assert_ptr_nonnull(a.ctx);
		sm = pgb_actx_session(a.ctx, a.m);
		ryw_write_sql(sql, sizeof sql, "t_ryw_a", a.i);
		ck_assert_int_eq(pgb_aexec(sm, sql, aryw_write_cb, &a), 0);
		/* No sleep between turns: the read follows the commit at
		 * once, as in a service. */
		deadline = it_now_ms() + 20000;
		while (a.done == 0 && it_now_ms() < deadline)
			event_base_loop(a.base, EVLOOP_ONCE);
		ck_assert_msg(a.done == 1, "%s", a.why);
		pgb_actx_free(a.ctx);
	}
	fprintf(stderr, "event-driven: %d of %d reads on a replica\n",
	    a.on_replica, RYW_N);
	pgb_loop_free(loop);
	pgb_db_free(a.m);
	pgb_db_free(a.r);
	event_base_free(a.base);
}
END_TEST

/* --- the example service: /write, then /read with its cookie -------------- */

START_TEST(test_webapp_write_then_read_with_cookie_every_time)
{
	struct wa_resp	w, r;
	char		path[128];
	int		i;

	for (i = 0; i < RYW_N; i++) {
		wait_caught_up();
		snprintf(path, sizeof path, "/write?tag=ryw%d", i);
		wa_get(app.port, path, NULL, &w);
		ck_assert_msg(w.status == 200, "%s: %d %s", path, w.status,
		    w.body);
		ck_assert_msg(strncmp(w.cookie, "pgb_lsn=", 8) == 0, "cookie"
		    " [%s]", w.cookie);
		snprintf(path, sizeof path, "/read?tag=ryw%d", i);
		wa_get(app.port, path, w.cookie, &r);
		ck_assert_msg(r.status == 200 && strncmp(r.body, "1 ", 2) == 0,
		    "iteration %d, %s: %d %s (%s)", i, path, r.status, r.body,
		    w.cookie);
	}
}
END_TEST

/* --- the daemon: RESOLVE min_lsn ------------------------------------------ */

START_TEST(test_min_lsn_never_names_a_replica_without_the_commit)
{
	PGconn		*pm, *pr[IT_MAX_NODES] = { 0 };
	PGresult	*res;
	char		 ci[256], sql[256], opts[128], lsn[PGB_LSN_MAX], *reply;
	int		 i, n, port, on_replica = 0;

	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d %s",
	    it_port(fx.cluster, 0), CONNINFO);
	pm = PQconnectdb(ci);
	ck_assert_int_eq(PQstatus(pm), CONNECTION_OK);
	for (n = 1; n < it_cluster_nodes(fx.cluster); n++) {
		snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d %s",
		    it_port(fx.cluster, n), CONNINFO);
		pr[n] = PQconnectdb(ci);
		ck_assert_int_eq(PQstatus(pr[n]), CONNECTION_OK);
	}
	res = PQexec(pm, "CREATE TABLE t_ryw_d (v int)");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	for (i = 0; i < RYW_N; i++) {
		wait_caught_up();
		/* A commit, then the insert position, in the same session.
		 * The explicit BEGIN/COMMIT matters: statements of one
		 * simple query are otherwise one transaction, and the
		 * position would be read before its commit record exists. */
		snprintf(sql, sizeof sql, "BEGIN; INSERT INTO t_ryw_d VALUES "
		    "(%d); COMMIT; SELECT pg_current_wal_insert_lsn()", i);
		res = PQexec(pm, sql);
		ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
		snprintf(lsn, sizeof lsn, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
		snprintf(opts, sizeof opts, "replica min_lsn=%s fallback=none",
		    lsn);
		reply = it_resolve(fx.sock, "main", opts);
		ck_assert_ptr_nonnull(reply);
		if (strncmp(reply, "OK ", 3) != 0) {
			/* Not yet: ask until a replica is named. */
			ck_assert_msg(strncmp(reply, "ERR NOHOST", 10) == 0,
			    "%s", reply);
			free(reply);
			ck_assert(IT_POLL_UNTIL((reply = it_resolve(fx.sock,
			    "main", opts)) != NULL && strncmp(reply, "OK ", 3)
			    == 0 ? true : (free(reply), false), 20000));
		} else
			on_replica++;
		if (sscanf(reply, "OK host=%*s port=%d", &port) == 1) {
			for (n = 1; n < it_cluster_nodes(fx.cluster); n++)
				if (it_port(fx.cluster, n) == port)
					break;
			ck_assert_int_lt(n, it_cluster_nodes(fx.cluster));
			snprintf(sql, sizeof sql, "SELECT count(*) FROM t_ryw_d"
			    " WHERE v = %d", i);
			res = PQexec(pr[n], sql);
			ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
			ck_assert_msg(strcmp(PQgetvalue(res, 0, 0), "1") == 0,
			    "iteration %d: %s for min_lsn=%s lacks the row",
			    i, reply, lsn);
			PQclear(res);
		}
		free(reply);
	}
	fprintf(stderr, "min_lsn: %d of %d first answers named a replica\n",
	    on_replica, RYW_N);
	PQfinish(pm);
	for (n = 1; n < it_cluster_nodes(fx.cluster); n++)
		PQfinish(pr[n]);
}
END_TEST

/* --- the README's example, 50 times ---------------------------------------- */

/* Writes the README's orders.c (its ```c block) to path. */
static void
readme_example(const char *path)
{
	FILE	*in, *out;
	char	 line[1024];
	int	 state = 0;	/* 0 before, 1 in the block, 2 after */

	in = fopen("README.md", "r");
	ck_assert_msg(in != NULL, "README.md: run from the repository root");
	out = fopen(path, "w");
	ck_assert_ptr_nonnull(out);
	while (state < 2 && fgets(line, sizeof line, in) != NULL) {
		if (state == 0 && strncmp(line, "/* orders.c", 11) == 0)
			state = 1;
		else if (state == 1 && strncmp(line, "```", 3) == 0)
			state = 2;
		if (state == 1)
			fputs(line, out);
	}
	fclose(in);
	fclose(out);
	ck_assert_msg(state == 2, "no ```c block starting /* orders.c in"
	    " README.md");
}

/* Runs cmd with sh -c; its output in *out (owned); returns the status. */
static int
run(const char *cmd, char **out)
{
	FILE	*p;
	size_t	 len = 0, n;
	char	 buf[4096];

	*out = calloc(1, 1);
	ck_assert_ptr_nonnull(*out);
	p = it_popen(cmd);
	ck_assert_ptr_nonnull(p);
	while ((n = fread(buf, 1, sizeof buf, p)) > 0) {
		*out = realloc(*out, len + n + 1);
		ck_assert_ptr_nonnull(*out);
		memcpy(*out + len, buf, n);
		len += n;
		(*out)[len] = '\0';
	}
	return (it_pclose(p));
}

START_TEST(test_readme_example_works_50_times)
{
	const char	*build = getenv("BUILD");
	char		 dir[256], cmd[2048], *out, *v;
	int		 i, st;

	if (build == NULL || *build == '\0')
		build = "build";
	snprintf(dir, sizeof dir, "%s/orders-%d", it_cluster_dir(fx.cluster),
	    (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(cmd, sizeof cmd, "%s/orders.c", dir);
	readme_example(cmd);
	snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Werror -Iclient-lib"
	    " $(pkg-config --cflags libpq) -o %s/orders %s/orders.c"
	    " %s/libpgbeacon.a $(pkg-config --libs libpq libevent"
	    " libevent_pthreads) -lpthread%s 2>&1", dir, dir, build,
#ifdef __SANITIZE_ADDRESS__
	    " -fsanitize=address,undefined"
#else
	    ""
#endif
	    );
	st = run(cmd, &out);
	ck_assert_msg(st == 0, "%s:\n%s", cmd, out);
	free(out);
	for (i = 0; i < 50; i++) {
		/* As the issue did: the table dropped before each run. */
		v = it_sql(fx.cluster, 0, "SET client_min_messages TO warning;"
		    " DROP TABLE IF EXISTS orders");
		ck_assert_msg(v != NULL, "%s", it_last_error());
		free(v);
		wait_caught_up();
		snprintf(cmd, sizeof cmd, "PGBEACON_SOCKET=%s %s/orders"
		    " '%s' 2>&1", fx.sock, dir, CONNINFO);
		st = run(cmd, &out);
		ck_assert_msg(st == 0 && strstr(out, "\n1 orders, read on") !=
		    NULL && strstr(out, "status 200") != NULL, "run %d of 50"
		    " (exit %d):\n%s", i + 1, st, out);
		free(out);
	}
}
END_TEST

/* --- what read-your-writes costs when nothing can use it ------------------- */

/* 1 when a write committed in a new context on m records an LSN. */
static int
write_records_lsn(pgb_db *m, int track)
{
	pgb_ctx		*ctx;
	pgb_session	*s;
	char		 lsn[PGB_LSN_MAX];
	int		 got;

	ctx = pgb_ctx_begin(0);
	ck_assert_ptr_nonnull(ctx);
	if (track)
		pgb_ctx_set_track_lsn(ctx, 1);
	s = pgb_ctx_session(ctx, m);
	free(exec_val(s, "CREATE TABLE IF NOT EXISTS t_ryw_cost (v int);"
	    " INSERT INTO t_ryw_cost VALUES (1)"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	got = pgb_ctx_lsn(ctx, lsn);
	ck_assert_int_eq(got, pgb_session_commit_lsn(s)[0] != '\0');
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	return (got);
}

START_TEST(test_lsn_recorded_only_when_a_replica_db_or_the_context_wants_it)
{
	pgb_db		*m = db_new("master"), *other, *r;
	pgb_session	*s;

	/* No replica db in the process: a bare COMMIT, nothing recorded. */
	ck_assert_int_eq(write_records_lsn(m, 0), 0);
	/* Unless the context asks (a cookie for another process). */
	ck_assert_int_eq(write_records_lsn(m, 1), 1);
	/* A replica db of another cluster changes nothing. */
	other = pgb_db_new(CONNINFO, "other", "replica", fx.sock);
	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(write_records_lsn(m, 0), 0);
	/* One of this cluster: recorded, for as long as it exists. */
	r = db_new("sync_by_time");
	ck_assert_int_eq(write_records_lsn(m, 0), 1);
	pgb_db_free(r);
	ck_assert_int_eq(write_records_lsn(m, 0), 0);
	pgb_db_free(other);
	/* A session outside any context asks with a flag. */
	s = pgb_session_new(m, PGB_SESSION_TRACK_LSN);
	free(exec_val(s, "INSERT INTO t_ryw_cost VALUES (2)"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_str_ne(pgb_session_commit_lsn(s), "");
	pgb_session_free(s);
	pgb_db_free(m);
}
END_TEST

/*
 * With a replica db, what a transaction did decides: a tag that shows a
 * write skips the question "did it write?", anything else asks it, so a
 * write hidden in a function call is still recorded and a read-only
 * transaction is not.
 */
START_TEST(test_lsn_recorded_for_every_write_and_no_read)
{
	pgb_db		*m = db_new("master"), *r = db_new("replica");
	pgb_ctx		*ctx;
	pgb_session	*s;
	char		 lsn[PGB_LSN_MAX], prev[PGB_LSN_MAX];

	ctx = pgb_ctx_begin(0);
	s = pgb_ctx_session(ctx, m);
	free(exec_val(s, "SET client_min_messages TO warning;"
	    " DROP TABLE IF EXISTS t_ryw_w; CREATE TABLE t_ryw_w (v int);"
	    " CREATE OR REPLACE FUNCTION t_ryw_w_add() RETURNS int"
	    " LANGUAGE sql AS 'INSERT INTO t_ryw_w VALUES (7) RETURNING v'"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_ctx_lsn(ctx, prev), 1);
	/* Read only: nothing recorded. */
	free(exec_val(s, "SELECT count(*) FROM t_ryw_w"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_str_eq(pgb_session_commit_lsn(s), prev);
	/* A write behind a SELECT: recorded, higher. */
	free(exec_val(s, "SELECT t_ryw_w_add()"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_ctx_lsn(ctx, lsn), 1);
	ck_assert_str_ne(lsn, prev);
	snprintf(prev, sizeof prev, "%s", lsn);
	/* An INSERT's tag: recorded, higher. */
	free(exec_val(s, "INSERT INTO t_ryw_w VALUES (8)"));
	ck_assert_int_eq(pgb_session_commit(s), 0);
	ck_assert_int_eq(pgb_ctx_lsn(ctx, lsn), 1);
	ck_assert_str_ne(lsn, prev);
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(m);
	pgb_db_free(r);
}
END_TEST

/* --- errors that reach the caller ------------------------------------------ */

struct efn {
	pgb_db		*db;
	const char	*sql[3];	/* run in order, failures ignored */
	pgb_errcode	 code;		/* of the first failure */
};

static int
efn_cb(pgb_ctx *ctx, void *arg)
{
	struct efn	*e = arg;
	pgb_session	*s = pgb_ctx_session(ctx, e->db);
	PGresult	*res;
	int		 i, rc = 0;

	for (i = 0; i < 3 && e->sql[i] != NULL; i++) {
		res = pgb_exec(s, e->sql[i]);
		if (res == NULL && rc == 0) {
			e->code = pgb_session_errcode(s);
			rc = -1;
		}
		PQclear(res);
	}
	return (rc);
}

static int
efn_silent_cb(pgb_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return (-1);
}

START_TEST(test_run_in_new_ctx_reports_the_first_failure)
{
	struct efn	 e = { 0 };
	char		 err[512];

	e.db = db_new("master");
	e.sql[0] = "SELECT 1/0";
	e.sql[1] = "SELECT 1";	/* fails too: the transaction is aborted */
	ck_assert_int_eq(pgb_run_in_new_ctx(efn_cb, &e, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "division by zero") != NULL, "[%s]", err);
	ck_assert_int_eq(e.code, PGB_ERR_SQL);
	/* fn failing on its own says so. */
	ck_assert_int_eq(pgb_run_in_new_ctx(efn_silent_cb, NULL, err,
	    sizeof err), -1);
	ck_assert_msg(strstr(err, "callback failed") != NULL, "[%s]", err);
	pgb_db_free(e.db);
}
END_TEST

static int
atomic_fail_cb(pgb_session *s, void *arg)
{
	const char	*sql = arg;
	PGresult	*res;

	if (sql == NULL)
		return (-1);
	res = pgb_exec(s, sql);
	PQclear(res);
	return (res == NULL ? -1 : 0);
}

START_TEST(test_failed_atomic_block_sets_the_context_error)
{
	pgb_db	*m = db_new("master");
	pgb_ctx	*ctx;

	ctx = pgb_ctx_begin(0);
	ck_assert_int_eq(pgb_atomic(ctx, m, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_fail_cb, (void *)(uintptr_t)"SELECT 1/0"), -1);
	ck_assert_msg(strstr(pgb_ctx_error(ctx), "division by zero") != NULL,
	    "[%s]", pgb_ctx_error(ctx));
	ck_assert_int_eq(pgb_atomic(ctx, m, PGB_ATOMIC_COMMIT_FIRST,
	    atomic_fail_cb, NULL), -1);
	ck_assert_msg(strstr(pgb_ctx_error(ctx), "callback failed") != NULL,
	    "[%s]", pgb_ctx_error(ctx));
	ck_assert_int_eq(pgb_atomic(ctx, m, PGB_ATOMIC_COMMIT_FIRST, NULL,
	    NULL), -1);
	ck_assert_msg(strstr(pgb_ctx_error(ctx), "no callback") != NULL,
	    "[%s]", pgb_ctx_error(ctx));
	ck_assert_int_eq(pgb_ctx_end(ctx, 200), 0);
	pgb_ctx_free(ctx);
	pgb_db_free(m);
}
END_TEST

/* Every _error function has a message for a NULL object it was given. */
START_TEST(test_error_functions_take_the_null_a_failed_constructor_gave)
{
	char	err[128];

	ck_assert_str_ne(pgb_ctx_error(NULL), "");
	ck_assert_str_ne(pgb_session_error(NULL), "");
	ck_assert_str_ne(pgb_asession_error(NULL), "");
	ck_assert_int_eq(pgb_asession_errcode(NULL), PGB_ERR_ARG);
	ck_assert_str_eq(pgb_asession_sqlstate(NULL), "");
	ck_assert_str_ne(pgb_actx_error(NULL), "");
	ck_assert_int_eq(pgb_run_in_new_ctx(NULL, NULL, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "no callback") != NULL, "[%s]", err);
}
END_TEST

/* No daemon at the socket: the same code and message in both APIs. */
struct nod {
	pgb_db		*db;
	pgb_errcode	 code;
	int		 done, rc;
	char		 session_err[512], ctx_err[1100];
};

static void
nod_res_cb(pgb_asession *s, PGresult *res, void *arg)
{
	struct nod	*n = arg;

	n->code = pgb_asession_errcode(s);
	snprintf(n->session_err, sizeof n->session_err, "%s",
	    pgb_asession_error(s));
	pgb_actx_finish(pgb_asession_ctx(s), res == NULL ? -1 : 0);
}

static void
nod_fn(pgb_actx *ctx, void *arg)
{
	struct nod	*n = arg;

	if (pgb_aexec(pgb_actx_session(ctx, n->db), "SELECT 1", nod_res_cb,
	    n) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
nod_done_cb(pgb_actx *ctx, int rc, void *arg)
{
	struct nod	*n = arg;

	n->done = 1;
	n->rc = rc;
	snprintf(n->ctx_err, sizeof n->ctx_err, "%s", pgb_actx_error(ctx));
}

START_TEST(test_daemon_unreachable_same_code_and_message_in_both_apis)
{
	struct efn		 e = { 0 };
	struct nod		 n = { 0 };
	struct event_base	*base;
	pgb_loop		*loop;
	char			 sock[300], err[512];

	snprintf(sock, sizeof sock, "%s/nobody-listens.sock",
	    it_cluster_dir(fx.cluster));
	/* Blocking. */
	e.db = pgb_db_new(CONNINFO, "main", "master", sock);
	e.sql[0] = "SELECT 1";
	ck_assert_int_eq(pgb_run_in_new_ctx(efn_cb, &e, err, sizeof err), -1);
	ck_assert_int_eq(e.code, PGB_ERR_UNREACHABLE);
	ck_assert_msg(strstr(err, "main master: no host from pgbeacond:"
	    " pgbeacond not reachable at") != NULL, "[%s]", err);
	pgb_db_free(e.db);
	/* Event-driven. */
	base = event_base_new();
	loop = pgb_loop_new(base, sock);
	n.db = pgb_db_new(CONNINFO, "main", "master", sock);
	ck_assert_int_eq(pgb_arun_in_new_ctx(loop, nod_fn, &n, nod_done_cb,
	    &n), 0);
	ck_assert(IT_POLL_UNTIL((event_base_loop(base, EVLOOP_NONBLOCK),
	    n.done), 10000));
	ck_assert_int_eq(n.rc, -1);
	ck_assert_int_eq(n.code, PGB_ERR_UNREACHABLE);
	ck_assert_msg(strstr(n.ctx_err, "main master: no host from pgbeacond:"
	    " pgbeacond not reachable at") != NULL, "[%s]", n.ctx_err);
	ck_assert_str_eq(n.ctx_err, n.session_err);
	pgb_loop_free(loop);
	pgb_db_free(n.db);
	event_base_free(base);
}
END_TEST

static void
add_ryw_tests(TCase *tc)
{
	tcase_add_test(tc, test_blocking_read_your_writes_every_time);
	tcase_add_test(tc, test_event_driven_read_your_writes_every_time);
	tcase_add_test(tc, test_webapp_write_then_read_with_cookie_every_time);
	tcase_add_test(tc, test_min_lsn_never_names_a_replica_without_the_commit);
	tcase_add_test(tc, test_readme_example_works_50_times);
}

static Suite *
lib_ryw_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("lib_ryw");
	tc = tcase_create("sync_on");
	tcase_add_unchecked_fixture(tc, setup_sync_on, fixture_stop);
	tcase_set_timeout(tc, 300);
	add_ryw_tests(tc);
	tcase_add_test(tc, test_lsn_recorded_only_when_a_replica_db_or_the_context_wants_it);
	tcase_add_test(tc, test_lsn_recorded_for_every_write_and_no_read);
	tcase_add_test(tc, test_run_in_new_ctx_reports_the_first_failure);
	tcase_add_test(tc, test_failed_atomic_block_sets_the_context_error);
	tcase_add_test(tc, test_error_functions_take_the_null_a_failed_constructor_gave);
	tcase_add_test(tc, test_daemon_unreachable_same_code_and_message_in_both_apis);
	suite_add_tcase(s, tc);

	tc = tcase_create("sync_off");
	tcase_add_unchecked_fixture(tc, setup_sync_off, fixture_stop);
	tcase_set_timeout(tc, 300);
	add_ryw_tests(tc);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(lib_ryw_suite()));
}
