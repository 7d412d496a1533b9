/*
 * lib_bench.c - libpgbeacon's figures of DESIGN.md and issue 3, each
 * printed beside a baseline measured in the same run, against a real
 * primary and a real pgbeacond:
 *
 *   checkout   taking a pooled connection for a new session and giving it
 *              back, before-create hook included.  Timed, per iteration:
 *                  s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
 *                  pg = pgb_session_conn(s);   hook + pool checkout
 *                  pgb_session_free(s);        pool checkin
 *              An autocommit session sends nothing on pgb_session_conn,
 *              so no PostgreSQL round trip is in the figure; it is the
 *              narrowest public sequence that does a checkout and a
 *              return.  db is a "main master" db with the default hook
 *              and a healthy watch subscription (the hook polls the
 *              watch without blocking and asks the daemon nothing; the
 *              run checks that no RESOLVE was made).  Floor: the same
 *              sequence on a fixed db (no hook).  Baseline: PQconnectdb
 *              to the same host until CONNECTION_OK (PQfinish untimed).
 *   request    one request: pgb_ctx_begin, pgb_ctx_session, pgb_exec of
 *              one statement, pgb_ctx_end(ctx, 200) (commit), pgb_ctx_free.
 *              Twice: with read-your-writes off (the process has no
 *              replica db: a bare COMMIT) and on (pgb_ctx_set_track_lsn,
 *              as a replica db of the cluster would make it).
 *              Baselines: the same transaction on raw libpq over one kept
 *              connection, PQexec("BEGIN"), PQexec(statement),
 *              PQexec("COMMIT") (3 round trips); the best raw libpq
 *              transaction, "BEGIN;statement" then "COMMIT" (2 round
 *              trips), against which the library is held; the 2 trips
 *              carrying the SQL of the library's commit when
 *              read-your-writes is on; and carrying the SQL of the
 *              commit before issue 8 (asked whether the transaction
 *              wrote and where the WAL was written on every commit).
 *              Statements: an INSERT into a two-column table (the
 *              library's commit then records the WAL LSN) and SELECT 1.
 *              The variants take turns in blocks, so that load from
 *              elsewhere on the machine hits them alike.
 *
 *   pools      issue 8's mixed load on a primary + 2 replicas: blocking
 *              threads and one event loop share a master db and a replica
 *              db (pool 4 each); each request writes on the master,
 *              commits, then reads on the replica db with read-your-writes
 *              (min_lsn; a replica that has not replayed it yet means the
 *              primary).  Reports the share of checkouts that reused a
 *              connection (target >= 99 %), connections opened against
 *              pool size x hosts (+ broken ones), host swaps and
 *              failures.
 *
 *   failover   issue 11's failover window: a request loop in each API
 *              across a stop of the primary and the promotion of its
 *              replica; the latency added to the requests that start in
 *              the window (p50, max) against the p50 before it, and the
 *              failed requests (see bench_failover()).
 *
 * Not a test: nothing here passes or fails, except a broken setup.  Run
 * it with `make bench`, or alone:
 * build/bench/lib_bench [checkout|request|pools|failover].
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "pgbeacon.h"
#include "../tests/integration/support/itest.h"
#include "common/stats.h"

#define CHECKOUT_N	100000	/* checkouts per variant */
#define FRESH_N		200	/* fresh connections */
#define REQUEST_N	4000	/* requests per variant and statement */
#define REQUEST_BLOCK	250	/* requests per turn of a variant */

#define CONNINFO	"user=postgres dbname=postgres application_name=lib_bench"

static void
die(const char *what, const char *why)
{
	fprintf(stderr, "lib_bench: %s: %s\n", what, why);
	exit(1);
}

/* Samples of one variant, in nanoseconds. */
struct series {
	const char	*name;
	int64_t		*ns;
	size_t		 n;
	/* filled by series_done */
	double		 p50_us, p99_us, ops;
};

static void
series_init(struct series *s, const char *name, size_t cap)
{
	s->name = name;
	s->n = 0;
	if ((s->ns = calloc(cap, sizeof(*s->ns))) == NULL)
		die(name, "out of memory");
}

static void
series_done(struct series *s)
{
	int64_t sum = 0;
	size_t i;

	for (i = 0; i < s->n; i++)
		sum += s->ns[i];
	stats_sort(s->ns, s->n);
	s->p50_us = (double)stats_pct(s->ns, s->n, 50) / 1000.0;
	s->p99_us = (double)stats_pct(s->ns, s->n, 99) / 1000.0;
	/* ops/s: n over the sum of the timed iterations. */
	s->ops = sum > 0 ? (double)s->n * 1e9 / (double)sum : 0;
}

static void
series_print(const struct series *s)
{
	printf("  %-50s n %6zu   p50 %9.2f us   p99 %9.2f us   %9.0f ops/s\n",
	    s->name, s->n, s->p50_us, s->p99_us, s->ops);
}

static void
series_free(struct series *s)
{
	free(s->ns);
	s->ns = NULL;
}

/* --- checkout ------------------------------------------------------------ */

/* One timed checkout + return through the public API. */
static int64_t
checkout_once(pgb_db *db)
{
	pgb_session *s;
	int64_t t0, t1;

	t0 = stats_now_ns();
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	if (s == NULL || pgb_session_conn(s) == NULL)
		die("checkout", s != NULL ? pgb_session_error(s) :
		    "out of memory");
	pgb_session_free(s);
	t1 = stats_now_ns();
	return t1 - t0;
}

static void
run_checkout(struct series *out, pgb_db *db, size_t n)
{
	size_t i;

	for (i = 0; i < 1000; i++)	/* warm caches and branch predictors */
		(void)checkout_once(db);
	series_init(out, out->name, n);
	for (i = 0; i < n; i++)
		out->ns[out->n++] = checkout_once(db);
	series_done(out);
}

static void
bench_checkout(struct it_cluster *c, const char *sock)
{
	struct series hooked = { .name = "checkout, master db, default hook + watch" };
	struct series fixed = { .name = "floor: checkout, fixed db, no hook" };
	struct series fresh = { .name = "baseline: fresh PQconnectdb to the same host" };
	pgb_pool_stats before, after;
	pgb_db *db, *fdb;
	pgb_session *s;
	PGresult *res;
	char conninfo[160];
	size_t i;

	printf("\nsession checkout from a warm pool (pgb_session_new autocommit"
	    " + pgb_session_conn + pgb_session_free;\n  no PostgreSQL round "
	    "trip inside) vs opening a fresh libpq connection\n");

	db = pgb_db_new(CONNINFO, "main", "master", sock);
	fdb = pgb_db_new_fixed(CONNINFO, "127.0.0.1", it_port(c, 0), "master");
	if (db == NULL || fdb == NULL)
		die("pgb_db_new", "out of memory");
	/* Warm: one real statement opens a connection and the watch. */
	s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
	if ((res = pgb_exec(s, "SELECT 1")) == NULL)
		die("warm-up", pgb_session_error(s));
	PQclear(res);
	pgb_session_free(s);

	pgb_db_stats(db, &before);
	run_checkout(&hooked, db, CHECKOUT_N);
	pgb_db_stats(db, &after);
	run_checkout(&fixed, fdb, CHECKOUT_N);

	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d %s",
	    it_port(c, 0), CONNINFO);
	series_init(&fresh, fresh.name, FRESH_N);
	for (i = 0; i < FRESH_N; i++) {
		int64_t t0 = stats_now_ns();
		PGconn *pg = PQconnectdb(conninfo);
		int64_t t1 = stats_now_ns();

		if (PQstatus(pg) != CONNECTION_OK)
			die("PQconnectdb", PQerrorMessage(pg));
		PQfinish(pg);
		fresh.ns[fresh.n++] = t1 - t0;
	}
	series_done(&fresh);

	series_print(&fresh);
	series_print(&fixed);
	series_print(&hooked);
	printf("  hook during the timed loop: %" PRIu64 " daemon round trips, "
	    "%" PRIu64 " connections opened, %" PRIu64 " reuses (of %d "
	    "checkouts)\n", after.resolves - before.resolves,
	    after.opened - before.opened, after.reused - before.reused,
	    CHECKOUT_N + 1000);
	printf("  => checkout with the hook: p50 %.2f us, p99 %.2f us "
	    "(target < 20 us); %.0fx cheaper than a fresh\n     connection at "
	    "p50 (%.0fx at p99; target >= 100x).  The hook adds %.2f us at p50"
	    " to the bare pool.\n", hooked.p50_us, hooked.p99_us,
	    fresh.p50_us / hooked.p50_us, fresh.p99_us / hooked.p99_us,
	    hooked.p50_us - fixed.p50_us);

	series_free(&hooked);
	series_free(&fixed);
	series_free(&fresh);
	pgb_db_free(fdb);
	pgb_db_free(db);
}

/* --- request loop -------------------------------------------------------- */

static void
expect_ok(PGresult *res, PGconn *pg, const char *what)
{
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		die(what, PQerrorMessage(pg));
	PQclear(res);
}

/* One request through the library, read-your-writes on when track;
 * stores whether the commit recorded an LSN in *lsn (may be NULL). */
static int64_t
request_lib(pgb_db *db, const char *sql, int track, int *lsn)
{
	char buf[PGB_LSN_MAX];
	pgb_session *s;
	PGresult *res;
	pgb_ctx *ctx;
	int64_t t0, t1;

	t0 = stats_now_ns();
	if ((ctx = pgb_ctx_begin(0)) == NULL)
		die("pgb_ctx_begin", "refused");
	if (track)
		pgb_ctx_set_track_lsn(ctx, 1);
	s = pgb_ctx_session(ctx, db);
	if ((res = pgb_exec(s, sql)) == NULL)
		die(sql, pgb_session_error(s));
	PQclear(res);
	if (pgb_ctx_end(ctx, 200) != 0)
		die("pgb_ctx_end", pgb_ctx_error(ctx));
	t1 = stats_now_ns();
	if (lsn != NULL)
		*lsn = pgb_ctx_lsn(ctx, buf);
	pgb_ctx_free(ctx);
	return t1 - t0;
}

/* The same transaction on raw libpq: three round trips. */
static int64_t
request_raw3(PGconn *pg, const char *sql)
{
	int64_t t0 = stats_now_ns();

	expect_ok(PQexec(pg, "BEGIN"), pg, "BEGIN");
	expect_ok(PQexec(pg, sql), pg, sql);
	expect_ok(PQexec(pg, "COMMIT"), pg, "COMMIT");
	return stats_now_ns() - t0;
}

/*
 * What the library sends to commit on a host that is not a replica with
 * read-your-writes on (session-common.c, pgbi_commit_sql): after an
 * INSERT, whose tag shows the write, COMMIT and the WAL insert position;
 * otherwise it first asks whether the transaction wrote.
 */
#define LIB_LSN_SQL	"SELECT CASE WHEN pg_is_in_recovery() THEN NULL" \
			" ELSE pg_current_wal_insert_lsn() END"
#define LIB_COMMIT_WROTE_SQL	"COMMIT;" LIB_LSN_SQL
#define LIB_COMMIT_ASK_SQL	"SELECT pg_current_xact_id_if_assigned()" \
			" IS NOT NULL;COMMIT;" LIB_LSN_SQL
/* What every commit sent before issue 8, RYW used or not. */
#define OLD_COMMIT_SQL	"SELECT pg_current_xact_id_if_assigned() IS NOT NULL;" \
			"COMMIT;" \
			"SELECT CASE WHEN pg_is_in_recovery() THEN NULL" \
			" ELSE pg_current_wal_lsn() END"

/* Raw libpq with the library's two round trips: begin_sql, commit_sql. */
static int64_t
request_raw2(PGconn *pg, const char *begin_sql, const char *commit_sql)
{
	int64_t t0 = stats_now_ns();
	PGresult *res;

	expect_ok(PQexec(pg, begin_sql), pg, begin_sql);
	if (!PQsendQuery(pg, commit_sql))
		die(commit_sql, PQerrorMessage(pg));
	while ((res = PQgetResult(pg)) != NULL)
		expect_ok(res, pg, commit_sql);
	return stats_now_ns() - t0;
}

/* Runs pid (0: this process) on CPU 0 only. */
static void
pin_to_cpu0(pid_t pid)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	if (sched_setaffinity(pid, sizeof(one), &one) != 0)
		fprintf(stderr, "lib_bench: cannot pin %ld to CPU 0: %s\n",
		    (long)pid, strerror(errno));
}

/* Prints x / base as "1.034x". */
static const char *
ratio(char buf[32], double x, double base)
{
	snprintf(buf, 32, "%.3fx", base > 0 ? x / base : 0);
	return buf;
}

static void
bench_request_sql(pgb_db *db, PGconn **pg, const char *label, const char *sql,
    int wrote)
{
	struct series off = { .name = NULL }, on, raw3, raw2, rawon, rawold;
	char n_off[96], n_on[96], n_raw3[96], n_raw2[96], n_rawon[96];
	char n_rawold[96], *multi, r1[32], r2[32], r3[32];
	const char *on_sql = wrote ? LIB_COMMIT_WROTE_SQL : LIB_COMMIT_ASK_SQL;
	int lsn_off = 0, lsn_on = 0;
	size_t i;

	snprintf(n_raw3, sizeof(n_raw3), "raw libpq, 3 round trips, %s", label);
	snprintf(n_raw2, sizeof(n_raw2), "baseline: raw libpq, BEGIN;stmt + "
	    "COMMIT (2 trips), %s", label);
	snprintf(n_rawon, sizeof(n_rawon), "raw libpq, 2 trips, commit SQL of"
	    " RYW on, %s", label);
	snprintf(n_rawold, sizeof(n_rawold), "raw libpq, 2 trips, commit SQL "
	    "before issue 8, %s", label);
	snprintf(n_off, sizeof(n_off), "libpgbeacon request, RYW off, %s",
	    label);
	snprintf(n_on, sizeof(n_on), "libpgbeacon request, RYW on, %s", label);
	series_init(&off, n_off, REQUEST_N);
	series_init(&on, n_on, REQUEST_N);
	series_init(&raw3, n_raw3, REQUEST_N);
	series_init(&raw2, n_raw2, REQUEST_N);
	series_init(&rawon, n_rawon, REQUEST_N);
	series_init(&rawold, n_rawold, REQUEST_N);
	if (asprintf(&multi, "BEGIN;%s", sql) < 0)
		die("asprintf", "out of memory");

	for (i = 0; i < 200; i++) {	/* warm-up, untimed */
		(void)request_lib(db, sql, 0, NULL);
		(void)request_lib(db, sql, 1, NULL);
		(void)request_raw3(pg[0], sql);
		(void)request_raw2(pg[1], multi, "COMMIT");
		(void)request_raw2(pg[2], multi, on_sql);
		(void)request_raw2(pg[3], multi, OLD_COMMIT_SQL);
	}
	/*
	 * The variants take turns in blocks, so that slow drifts of the
	 * machine hit them alike, while each runs back to back on its own
	 * connection within a block, as an application's requests do.
	 * (Turns of one request each put every backend to sleep between
	 * its requests, and the wake-ups then dominate what is measured.)
	 * The library's two variants share the pool's connection.
	 */
	for (i = 0; i < REQUEST_N; i += REQUEST_BLOCK) {
		size_t j, end = i + REQUEST_BLOCK < REQUEST_N ?
		    i + REQUEST_BLOCK : REQUEST_N;

		for (j = i; j < end; j++)
			raw2.ns[raw2.n++] = request_raw2(pg[1], multi,
			    "COMMIT");
		for (j = i; j < end; j++)
			off.ns[off.n++] = request_lib(db, sql, 0,
			    j == 0 ? &lsn_off : NULL);
		for (j = i; j < end; j++)
			on.ns[on.n++] = request_lib(db, sql, 1,
			    j == 0 ? &lsn_on : NULL);
		for (j = i; j < end; j++)
			raw3.ns[raw3.n++] = request_raw3(pg[0], sql);
		for (j = i; j < end; j++)
			rawon.ns[rawon.n++] = request_raw2(pg[2], multi,
			    on_sql);
		for (j = i; j < end; j++)
			rawold.ns[rawold.n++] = request_raw2(pg[3], multi,
			    OLD_COMMIT_SQL);
	}
	series_done(&off);
	series_done(&on);
	series_done(&raw3);
	series_done(&raw2);
	series_done(&rawon);
	series_done(&rawold);
	series_print(&raw2);
	series_print(&raw3);
	series_print(&rawon);
	series_print(&rawold);
	series_print(&off);
	series_print(&on);
	printf("  => %s, RYW off: library / best raw (2 trips) p50 %s "
	    "(target <= 1.05x), p99 %s;\n     / raw 3 trips p50 %s.  "
	    "Commit recorded an LSN: %s.\n", label,
	    ratio(r1, off.p50_us, raw2.p50_us),
	    ratio(r2, off.p99_us, raw2.p99_us),
	    ratio(r3, off.p50_us, raw3.p50_us), lsn_off ? "yes" : "no");
	printf("  => %s, RYW on: library / best raw p50 %s; bookkeeping (on - "
	    "off) p50 %+.2f us\n     (target <= 5 us); its SQL on raw libpq "
	    "%+.2f us over a bare COMMIT; before issue 8\n     every commit "
	    "paid %+.2f us (%s of the best raw).  Commit recorded an LSN: %s."
	    "\n", label, ratio(r1, on.p50_us, raw2.p50_us),
	    on.p50_us - off.p50_us, rawon.p50_us - raw2.p50_us,
	    rawold.p50_us - raw2.p50_us, ratio(r2, rawold.p50_us, raw2.p50_us),
	    lsn_on ? "yes" : "no");
	free(multi);
	series_free(&off);
	series_free(&on);
	series_free(&raw3);
	series_free(&raw2);
	series_free(&rawon);
	series_free(&rawold);
}

static void
bench_request(struct it_cluster *c, const char *sock)
{
	char conninfo[160], *r;
	pgb_db *db;
	PGconn *pg[4];
	cpu_set_t saved;
	int i;

	printf("\nrequest loop: begin context, one statement, end with status"
	    " 200 (commit)\n  vs the same transaction on raw libpq over one "
	    "kept connection (%d requests each;\n  the variants take turns "
	    "in blocks of %d, each on its own connection; loopback\n  "
	    "TCP, harness server with fsync = off; this process and its\n  "
	    "backends pinned to CPU 0)\n", REQUEST_N,
	    REQUEST_BLOCK);
	r = it_sql(c, 0, "CREATE TABLE IF NOT EXISTS lib_bench_t "
	    "(id bigserial PRIMARY KEY, v int NOT NULL)");
	if (r == NULL)
		die("CREATE TABLE", it_last_error());
	free(r);

	db = pgb_db_new(CONNINFO, "main", "master", sock);
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d %s",
	    it_port(c, 0), CONNINFO);
	if (db == NULL)
		die("pgb_db_new", "out of memory");
	/*
	 * Everything on one CPU: this process and every backend it talks
	 * to.  On this machine (a VM) a wake-up across CPUs adds 50 to 60 us
	 * to a round trip, at random, which would swamp the differences
	 * measured here; on one CPU what remains is the work itself.
	 */
	sched_getaffinity(0, sizeof(saved), &saved);
	pin_to_cpu0(0);
	for (i = 0; i < 4; i++) {
		pg[i] = PQconnectdb(conninfo);
		if (PQstatus(pg[i]) != CONNECTION_OK)
			die("PQconnectdb", PQerrorMessage(pg[i]));
		pin_to_cpu0(PQbackendPID(pg[i]));
	}
	{
		/* The pool's connection: back-to-back requests reuse it. */
		pgb_session *s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
		PGconn *conn = s != NULL ? pgb_session_conn(s) : NULL;

		if (conn == NULL)
			die("pgb_session_conn", pgb_db_error(db));
		pin_to_cpu0(PQbackendPID(conn));
		pgb_session_free(s);
	}

	bench_request_sql(db, pg, "INSERT",
	    "INSERT INTO lib_bench_t (v) VALUES (1)", 1);
	bench_request_sql(db, pg, "SELECT 1", "SELECT 1", 0);
	sched_setaffinity(0, sizeof(saved), &saved);

	for (i = 0; i < 4; i++)
		PQfinish(pg[i]);
	pgb_db_free(db);
}

/*
 * A primary with nreplicas replicas, a daemon (*d) that sees a replica,
 * and table (id bigserial, v int) on the primary.
 */
static struct it_cluster *
bench_cluster(int nreplicas, const char *table, struct it_daemon **d)
{
	struct it_cluster *c = it_cluster_create(nreplicas);
	char *cfg, *out, sql[128];

	cfg = it_config(c, "main", "log_level = \"warn\";\n");
	*d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);
	if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(*d), "main",
	    "replica", 0), 10000))
		die("daemon", "found no replica");
	snprintf(sql, sizeof sql, "CREATE TABLE %s (id bigserial PRIMARY KEY,"
	    " v int)", table);
	if ((out = it_sql(c, 0, sql)) == NULL)
		die("CREATE TABLE", it_last_error());
	free(out);
	return c;
}

/* --- pools under a mixed load ------------------------------------------- */


#define POOLS_THREADS	6
#define POOLS_SIZE	4
#define POOLS_MS	10000	/* how long the load runs */

struct pools_load {
	pgb_db		*master;
	pgb_db		*replica;
	atomic_int	 stop;
	atomic_int	 done;
	atomic_int	 failed;
};

/* One request: INSERT on the master, commit, read it on the replica db. */
static int
pools_request(pgb_ctx *ctx, void *arg)
{
	struct pools_load *ld = arg;
	PGresult *res;
	int ok;

	res = pgb_exec(pgb_ctx_session(ctx, ld->master),
	    "INSERT INTO bench_pools (v) VALUES (1)");
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok || pgb_ctx_commit_all(ctx) == -1)
		return -1;
	res = pgb_exec(pgb_ctx_session(ctx, ld->replica), "SELECT 1");
	ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK;
	PQclear(res);
	return ok ? 0 : -1;
}

static void *
pools_thread(void *arg)
{
	struct pools_load *ld = arg;
	char err[256];

	while (!atomic_load(&ld->stop)) {
		if (pgb_run_in_new_ctx(pools_request, ld, err, sizeof err) == 0)
			atomic_fetch_add(&ld->done, 1);
		else
			atomic_fetch_add(&ld->failed, 1);
	}
	return NULL;
}

struct pools_areq {
	struct pools_load *ld;
	int running;
};

static void
pools_a_read(pgb_asession *s, PGresult *res, void *arg)
{
	(void)arg;
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL ? 0 : -1);
}

static void
pools_a_commit(pgb_actx *ctx, int rc, void *arg)
{
	struct pools_areq *q = arg;
	pgb_asession *s = pgb_actx_session(ctx, q->ld->replica);

	if (rc == -1 || s == NULL ||
	    pgb_aexec(s, "SELECT 1", pools_a_read, q) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
pools_a_write(pgb_asession *s, PGresult *res, void *arg)
{
	pgb_actx *ctx = pgb_asession_ctx(s);

	if (res == NULL || pgb_actx_commit_all(ctx, pools_a_commit, arg) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
pools_a_start(pgb_actx *ctx, void *arg)
{
	struct pools_areq *q = arg;
	pgb_asession *s = pgb_actx_session(ctx, q->ld->master);

	if (s == NULL || pgb_aexec(s, "INSERT INTO bench_pools (v) VALUES (2)",
	    pools_a_write, q) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
pools_a_done(pgb_actx *ctx, int rc, void *arg)
{
	struct pools_areq *q = arg;

	(void)ctx;
	atomic_fetch_add(rc == 0 ? &q->ld->done : &q->ld->failed, 1);
	q->running = 0;
}

static void
bench_pools(void)
{
	struct pools_load ld = { 0 };
	struct pools_areq q[4] = { { 0 } };
	pthread_t t[POOLS_THREADS];
	struct it_cluster *c;
	struct it_daemon *d;
	struct event_base *base;
	pgb_loop *loop;
	pgb_pool_stats ms, rs;
	int64_t end;
	uint64_t checkouts, reused;
	int i;

	printf("\npools under a mixed load: %d blocking threads + 1 event loop"
	    " (4 requests at once),\n  master db and replica db (pool %d each)"
	    " on a primary + 2 replicas, %d s;\n  each request: INSERT on the"
	    " master, commit, read-your-writes read on the replica db\n",
	    POOLS_THREADS, POOLS_SIZE, POOLS_MS / 1000);
	c = bench_cluster(2, "bench_pools", &d);
	ld.master = pgb_db_new(CONNINFO, "main", "master", it_daemon_socket(d));
	ld.replica = pgb_db_new(CONNINFO, "main", "replica",
	    it_daemon_socket(d));
	base = event_base_new();
	loop = base != NULL ? pgb_loop_new(base, it_daemon_socket(d)) : NULL;
	if (ld.master == NULL || ld.replica == NULL || loop == NULL)
		die("pgb_db_new", "out of memory");
	pgb_db_set_pool(ld.master, POOLS_SIZE, 10000, -1);
	pgb_db_set_pool(ld.replica, POOLS_SIZE, 10000, -1);
	for (i = 0; i < POOLS_THREADS; i++)
		if (pthread_create(&t[i], NULL, pools_thread, &ld) != 0)
			die("pthread_create", strerror(errno));
	end = it_now_ms() + POOLS_MS;
	while (it_now_ms() < end) {
		for (i = 0; i < 4; i++) {
			if (q[i].running)
				continue;
			q[i].ld = &ld;
			q[i].running = 1;
			if (pgb_arun_in_new_ctx(loop, pools_a_start, &q[i],
			    pools_a_done, &q[i]) == -1)
				die("pgb_arun_in_new_ctx", "out of memory");
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	atomic_store(&ld.stop, 1);
	for (i = 0; i < POOLS_THREADS; i++)
		pthread_join(t[i], NULL);
	while (q[0].running || q[1].running || q[2].running || q[3].running)
		event_base_loop(base, EVLOOP_ONCE);
	pgb_db_stats(ld.master, &ms);
	pgb_db_stats(ld.replica, &rs);
	checkouts = ms.checkouts + rs.checkouts;
	reused = ms.reused + rs.reused;
	printf("  %d requests, %d failed; master db: %" PRIu64 " checkouts, %"
	    PRIu64 " opened (bound %d x 1 host + %" PRIu64 " broken), %" PRIu64
	    " waits\n", atomic_load(&ld.done), atomic_load(&ld.failed),
	    ms.checkouts, ms.opened, POOLS_SIZE, ms.broken, ms.waits);
	printf("  replica db: %" PRIu64 " checkouts, %" PRIu64 " opened (bound"
	    " %d x 3 hosts + %" PRIu64 " broken), %" PRIu64 " host swaps, %"
	    PRIu64 " waits, %d hosts in use\n", rs.checkouts, rs.opened,
	    POOLS_SIZE, rs.broken, rs.host_changes, rs.waits, rs.hosts);
	printf("  => %.2f %% of checkouts reused a connection (target >= 99"
	    " %%)\n", checkouts > 0 ? 100.0 * (double)reused /
	    (double)checkouts : 0.0);
	pgb_loop_free(loop);
	event_base_free(base);
	pgb_db_free(ld.replica);
	pgb_db_free(ld.master);
	if (it_daemon_stop(d) != 0)
		fprintf(stderr, "warning: daemon did not exit cleanly\n");
	it_cluster_destroy(c);
}

/* --- the failover window ------------------------------------------------ */

#define FO_MAX		400000	/* samples kept per API */
#define FO_BEFORE_MS	3000	/* requests before the switchover */
#define FO_AFTER_MS	2000	/* requests after the promotion */
#define FO_ROUNDS	3

struct fo_sample {
	int64_t	start_us;
	int64_t	dur_us;
	bool	ok;
};

/* One API's request loop: samples written by one thread only. */
struct fo_run {
	pgb_db			*db;
	struct fo_sample	*v;	/* owned; FO_MAX */
	int			 n;
	atomic_int		*stop;
	int			 running;	/* event-driven: one in flight */
	int64_t			 t0;
};

static void
fo_record(struct fo_run *r, int64_t t0, bool ok)
{
	if (r->n < FO_MAX) {
		r->v[r->n].start_us = t0;
		r->v[r->n].dur_us = stats_now_us() - t0;
		r->v[r->n].ok = ok;
		r->n++;
	}
}

static int
fo_request(pgb_ctx *ctx, void *arg)
{
	struct fo_run *r = arg;
	PGresult *res;
	int ok;

	res = pgb_exec(pgb_ctx_session(ctx, r->db),
	    "INSERT INTO bench_fo (v) VALUES (1)");
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	return ok ? 0 : -1;
}

static void *
fo_thread(void *arg)
{
	struct fo_run *r = arg;
	char err[256];
	int64_t t0;
	int rc;

	while (!atomic_load(r->stop)) {
		t0 = stats_now_us();
		rc = pgb_run_in_new_ctx(fo_request, r, err, sizeof err);
		fo_record(r, t0, rc == 0);
	}
	return NULL;
}

static void
fo_a_inserted(pgb_asession *s, PGresult *res, void *arg)
{
	(void)arg;
	pgb_actx_finish(pgb_asession_ctx(s), res != NULL &&
	    PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1);
}

static void
fo_a_start(pgb_actx *ctx, void *arg)
{
	struct fo_run *r = arg;
	pgb_asession *s = pgb_actx_session(ctx, r->db);

	if (s == NULL || pgb_aexec(s, "INSERT INTO bench_fo (v) VALUES (2)",
	    fo_a_inserted, r) == -1)
		pgb_actx_finish(ctx, -1);
}

static void
fo_a_done(pgb_actx *ctx, int rc, void *arg)
{
	struct fo_run *r = arg;

	(void)ctx;
	fo_record(r, r->t0, rc == 0);
	r->running = 0;
}

/* When the switchover's steps happened (stats_now_us()). */
struct fo_switch {
	struct it_cluster	*c;
	int			 from, to;
	int64_t			 stop_us, stopped_us, promoted_us;
	atomic_int		*stop;
};

static void *
fo_switch_thread(void *arg)
{
	struct fo_switch *w = arg;

	usleep(FO_BEFORE_MS * 1000);
	w->stop_us = stats_now_us();
	it_stop(w->c, w->from, "fast");
	w->stopped_us = stats_now_us();
	it_promote(w->c, w->to);
	w->promoted_us = stats_now_us();
	usleep(FO_AFTER_MS * 1000);
	atomic_store(w->stop, 1);
	return NULL;
}

/* Prints one API's figures for one round. */
static void
fo_report(const char *api, const struct fo_run *r, const struct fo_switch *w)
{
	int64_t *base = calloc((size_t)r->n + 1, sizeof(int64_t));
	int64_t *win = calloc((size_t)r->n + 1, sizeof(int64_t));
	int64_t first_ok = -1, b50, end;
	size_t nb = 0, nw = 0;
	int fail_inflight = 0, fail_after = 0, i;

	if (base == NULL || win == NULL)
		die("calloc", "out of memory");
	for (i = 0; i < r->n; i++) {
		const struct fo_sample *x = &r->v[i];

		end = x->start_us + x->dur_us;
		if (end < w->stop_us && x->ok)
			base[nb++] = x->dur_us;
		if (x->start_us >= w->stop_us && x->start_us <= w->promoted_us)
			win[nw++] = x->dur_us;
		if (!x->ok && x->start_us < w->stopped_us && end >= w->stop_us)
			fail_inflight++;
		else if (!x->ok && x->start_us >= w->stopped_us)
			fail_after++;
		if (x->ok && x->start_us >= w->stopped_us &&
		    (first_ok == -1 || end < first_ok))
			first_ok = end;
	}
	stats_sort(base, nb);
	stats_sort(win, nw);
	b50 = stats_pct(base, nb, 50);
	printf("  %-12s before: p50 %.2f ms (%zu requests); %zu started between"
	    " the stop and the promotion's end:\n    p50 %.2f ms (%+.2f), p99 "
	    "%.1f ms, max %.1f ms (%+.1f); stopped -> first commit %.1f ms\n"
	    "    failed: %d in flight on the old primary, %d started after its "
	    "stop (target 0)\n", api, (double)b50 / 1000.0, nb, nw,
	    (double)stats_pct(win, nw, 50) / 1000.0,
	    (double)(stats_pct(win, nw, 50) - b50) / 1000.0,
	    (double)stats_pct(win, nw, 99) / 1000.0,
	    (double)stats_pct(win, nw, 100) / 1000.0,
	    (double)(stats_pct(win, nw, 100) - b50) / 1000.0,
	    first_ok < 0 ? -1.0 : (double)(first_ok - w->stopped_us) / 1000.0,
	    fail_inflight, fail_after);
	free(base);
	free(win);
}

/*
 * The failover window of issue 11: a request loop in each API (one
 * blocking thread, one event loop, one request at a time each) on a master
 * db with the default role wait, across "stop -m fast" of the primary and
 * the promotion of its replica.  Reported per API: the requests that
 * started between the stop and the end of the promotion (the window),
 * their latency against the p50 before the stop, and the failures: those
 * in flight on the old primary when it stopped may fail (their connection
 * is gone); those started after the stop returned must not.
 */
static void
bench_failover(void)
{
	atomic_int stop;
	struct fo_run rb, ra;
	struct fo_switch w;
	struct it_cluster *c;
	struct it_daemon *d;
	struct event_base *base;
	pgb_loop *loop;
	pthread_t tb, tw;
	int round, from;

	printf("\nfailover window: stop -m fast of the primary, then promotion"
	    " of its replica,\n  under a request loop in each API (INSERT +"
	    " COMMIT, one at a time each), %d rounds\n", FO_ROUNDS);
	c = bench_cluster(1, "bench_fo", &d);
	memset(&rb, 0, sizeof rb);
	memset(&ra, 0, sizeof ra);
	rb.db = pgb_db_new(CONNINFO, "main", "master", it_daemon_socket(d));
	ra.db = pgb_db_new(CONNINFO, "main", "master", it_daemon_socket(d));
	rb.v = calloc(FO_MAX, sizeof *rb.v);
	ra.v = calloc(FO_MAX, sizeof *ra.v);
	base = event_base_new();
	loop = base != NULL ? pgb_loop_new(base, it_daemon_socket(d)) : NULL;
	if (rb.db == NULL || ra.db == NULL || rb.v == NULL || ra.v == NULL ||
	    loop == NULL)
		die("setup", "out of memory");
	rb.stop = ra.stop = &stop;
	for (round = 0, from = 0; round < FO_ROUNDS; round++, from = 1 - from) {
		if (round > 0) {
			/* the last old primary follows the new one */
			it_reattach(c, 1 - from, from);
			if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d),
			    "main", "replica", it_port(c, 1 - from)), 30000))
				die("reattach", "the old primary never came "
				    "back as a replica");
		}
		atomic_store(&stop, 0);
		rb.n = ra.n = 0;
		memset(&w, 0, sizeof w);
		w.c = c;
		w.from = from;
		w.to = 1 - from;
		w.stop = &stop;
		if (pthread_create(&tb, NULL, fo_thread, &rb) != 0 ||
		    pthread_create(&tw, NULL, fo_switch_thread, &w) != 0)
			die("pthread_create", strerror(errno));
		while (!atomic_load(&stop) || ra.running) {
			if (!ra.running && !atomic_load(&stop)) {
				ra.running = 1;
				ra.t0 = stats_now_us();
				if (pgb_arun_in_new_ctx(loop, fo_a_start, &ra,
				    fo_a_done, &ra) == -1)
					die("pgb_arun_in_new_ctx",
					    "out of memory");
			}
			event_base_loop(base, EVLOOP_ONCE);
		}
		pthread_join(tb, NULL);
		pthread_join(tw, NULL);
		printf(" round %d: node%d stopped in %.0f ms, node%d promoted in "
		    "%.0f ms\n", round + 1, w.from,
		    (double)(w.stopped_us - w.stop_us) / 1000.0, w.to,
		    (double)(w.promoted_us - w.stopped_us) / 1000.0);
		fo_report("blocking", &rb, &w);
		fo_report("event-driven", &ra, &w);
	}
	pgb_loop_free(loop);
	event_base_free(base);
	pgb_db_free(ra.db);
	pgb_db_free(rb.db);
	free(ra.v);
	free(rb.v);
	if (it_daemon_stop(d) != 0)
		fprintf(stderr, "warning: daemon did not exit cleanly\n");
	it_cluster_destroy(c);
}

int
main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	struct it_cluster *c;
	struct it_daemon *d;
	char *cfg;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("libpgbeacon %s benchmark on %ld cores; PostgreSQL, daemon and "
	    "client share them\n", pgb_version(), sysconf(_SC_NPROCESSORS_ONLN));
	c = it_cluster_create(0);
	cfg = it_config(c, "main", "log_level = \"warn\";\n");
	d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);
	if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d), "main",
	    "master", 0), 10000))
		die("daemon", "found no primary");

	if (only == NULL || strcmp(only, "checkout") == 0)
		bench_checkout(c, it_daemon_socket(d));
	if (only == NULL || strcmp(only, "request") == 0)
		bench_request(c, it_daemon_socket(d));
	if (only == NULL || strcmp(only, "pools") == 0)
		bench_pools();
	if (only == NULL || strcmp(only, "failover") == 0)
		bench_failover();

	if (it_daemon_stop(d) != 0)
		fprintf(stderr, "warning: daemon did not exit cleanly\n");
	it_cluster_destroy(c);
	return 0;
}
