/*
 * soak.c - a bounded chaos soak of pgbeacond and libpgbeacon with checked
 * invariants (make soak; not in CI; issue 11 section 2).
 *
 * Runs a primary and two replicas, a fourth configured host that is a
 * fault relay (accepting and never answering, or resetting, or refusing)
 * and a pgbeacond ($PGBEACOND: the release build, or the ASan one), for
 * $SOAK_SECONDS (default 600).  The main thread plays random events:
 *   - failover: fast or immediate stop of the primary, promotion of a
 *     replica, re-attachment (it_reattach) of the others; sometimes the old
 *     primary is first restarted as it was, without rewind (a second
 *     primary on an older timeline) for a few seconds;
 *   - SIGSTOP/SIGCONT of a whole node or of its postmaster only;
 *   - daemon restarts (SIGTERM, or SIGKILL) and SIGHUP reloads;
 *   - the relay host switched between blackhole, reset and refuse.
 * Meanwhile:
 *   - a checker thread asks "RESOLVE main master" on one kept connection
 *     about every millisecond and checks each answer against the event log:
 *     an answer naming a node whose stop had returned before the request
 *     was sent, and that was not promoted again before the answer came, is
 *     wrong;
 *   - a verifier thread asks the named host itself, right after the
 *     answer, for a sample of the answers (at most one every 20 ms, and
 *     only when it is idle): an answer is wrong when that host says it is
 *     in recovery, or is writing on a timeline lower than one a primary
 *     was seen writing on before the request was sent, and nothing
 *     happened to it (stop, promotion) between the request and the
 *     verifier's reply;
 *   - a writer thread inserts sequence numbers through libpgbeacon (a
 *     "main master" db), each INSERT returning the server's port and its
 *     current WAL timeline: a write accepted by a node that was not the
 *     primary (by the same rule), or on a timeline lower than one already
 *     written on, breaks an invariant;
 *   - a second writer does the same with plain libpq through a master
 *     connection listener of the daemon.
 * At the end it prints counters and exits 1 when an invariant broke:
 * wrong answers (by the event log or on the host), writes on a
 * non-primary, daemon crashes (an unexpected exit, or a sanitizer report
 * in its log), descriptors not flat, RSS not flat (release build only).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgbeacon.h"
#include "../integration/support/itest.h"

#define NODES		3
#define MAX_SAMPLES	(4 * 1024 * 1024)

/* Per node: whether it may be named master now, and a generation bumped
 * on every change of that, so that a reader can tell a change happened
 * while it waited. */
static _Atomic bool	 ok_master[NODES];
static atomic_uint	 gen[NODES];
static int		 ports[NODES];
static atomic_bool	 running = true;
static char		 sock_path[512];

/* Counters. */
static atomic_ulong	 answers, wrong_answers, no_answers, err_answers;
static atomic_ulong	 writes_ok, writes_failed, writes_bad;
/* The same for the writer through the master listener. */
static atomic_ulong	 lwrites_ok, lwrites_failed, lwrites_bad;
static int		 listen_port;
static atomic_long	 stop_at_ms = -1;	/* last primary stop, -1: none */
static atomic_bool	 stop_done;		/* that stop has returned */
static long		*outages;		/* stop -> first write, ms */
static int		 noutages;
static pthread_mutex_t	 outage_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t		*lat_us;		/* RESOLVE latencies, us */
static size_t		 nlat;
/* Highest timeline a primary was seen writing on (by a writer or the
 * verifier); 0: none yet. */
static atomic_int	 max_tli;

/* One answer handed by the checker to the verifier (a mailbox of one,
 * full while the verifier works on it, so that every sample is asked
 * right after its answer).  Guarded by vbox_lock. */
struct vsample {
	int		 node;		/* the node the answer named */
	unsigned	 gen;		/* gen[node] before the request */
	int		 tli;		/* max_tli before the request */
	char		 reply[512];	/* the answer, for the report */
};
static pthread_mutex_t	 vbox_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 vbox_cond = PTHREAD_COND_INITIALIZER;
static bool		 vbox_full;
static struct vsample	 vbox;
static atomic_ulong	 host_verified, host_wrong, host_unverified;

static void
tli_seen(int tli)
{
	int	cur = atomic_load(&max_tli);

	while (tli > cur && !atomic_compare_exchange_weak(&max_tli, &cur, tli))
		;
}

static int
node_of_port(int port)
{
	int	i;

	for (i = 0; i < NODES; i++)
		if (ports[i] == port)
			return i;
	return -1;
}

static int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* True when node was not allowed to be master before (b, g) was taken
 * and nothing changed since. */
static bool
was_demoted(int node, bool before, unsigned g)
{
	return !before && atomic_load(&gen[node]) == g &&
	    !atomic_load(&ok_master[node]);
}

static int
sock_open(void)
{
	struct sockaddr_un	sa;
	int			fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof sa.sun_path) {
		close(fd);
		return -1;
	}
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request, one reply line into buf; false on error or 2 s timeout. */
static bool
sock_ask(int fd, const char *line, char *buf, size_t len)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLIN };
	size_t		n = 0;
	ssize_t		r;

	if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
		return false;
	while (n + 1 < len) {
		if (poll(&pfd, 1, 2000) != 1)
			return false;
		if ((r = read(fd, buf + n, 1)) != 1)
			return false;
		if (buf[n] == '\n') {
			buf[n] = '\0';
			return true;
		}
		n++;
	}
	return false;
}

/* Hands the answer naming node to the verifier when it is idle and the
 * last sample is 20 ms old. */
static void
verify_later(int node, unsigned g, int tli, const char *reply)
{
	static int64_t	last_us;
	int64_t		now = now_us();

	if (now - last_us < 20000)
		return;
	pthread_mutex_lock(&vbox_lock);
	if (!vbox_full) {
		vbox.node = node;
		vbox.gen = g;
		vbox.tli = tli;
		snprintf(vbox.reply, sizeof vbox.reply, "%s", reply);
		vbox_full = true;
		last_us = now;
		pthread_cond_signal(&vbox_cond);
	}
	pthread_mutex_unlock(&vbox_lock);
}

/*
 * The verifier: asks the host an answer named, on one kept connection per
 * node (opened again when it breaks), whether it is in recovery and, when
 * it is not, on which timeline it writes.  The timeline comes from the
 * name of the WAL file being written (pg_walfile_name(pg_current_wal_lsn())
 * starts with it), which changes the moment a promotion ends; the one in
 * pg_control_checkpoint() is that of the last checkpoint, which after a
 * promotion stays the old one until the next checkpoint completes, and
 * would make a new primary look like a stale one.  pg_walfile_name()
 * fails during recovery, hence the CASE.
 *
 * A reply is judged only when gen[node] did not move between the request
 * to the daemon and the host's reply (no stop, no promotion of that node
 * in between: the daemon may name a primary until its stop returned).  An
 * unreachable or frozen host is not judged either: the verifier waits
 * (a freeze lasts at most 3 s) or counts it unverified.
 */
static void *
verifier_main(void *arg)
{
	static const char sql[] = "SELECT pg_is_in_recovery(), CASE WHEN "
	    "pg_is_in_recovery() THEN 0 ELSE ('x' || substr(pg_walfile_name("
	    "pg_current_wal_lsn()), 1, 8))::bit(32)::int END";
	PGconn		*pg[NODES] = { NULL };
	PGresult	*r;
	struct vsample	 v;
	struct timespec	 ts;
	char		 ci[256];
	bool		 recovery;
	int		 tli, i;

	(void)arg;
	while (atomic_load(&running)) {
		pthread_mutex_lock(&vbox_lock);
		if (!vbox_full) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&vbox_cond, &vbox_lock, &ts);
		}
		v = vbox;
		if (!vbox_full) {
			pthread_mutex_unlock(&vbox_lock);
			continue;
		}
		pthread_mutex_unlock(&vbox_lock);

		if (pg[v.node] == NULL ||
		    PQstatus(pg[v.node]) != CONNECTION_OK) {
			PQfinish(pg[v.node]);
			snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d "
			    "user=postgres dbname=postgres connect_timeout=2",
			    ports[v.node]);
			pg[v.node] = PQconnectdb(ci);
		}
		r = PQstatus(pg[v.node]) == CONNECTION_OK ?
		    PQexec(pg[v.node], sql) : NULL;
		if (PQresultStatus(r) != PGRES_TUPLES_OK ||
		    PQntuples(r) != 1) {
			atomic_fetch_add(&host_unverified, 1);
			PQfinish(pg[v.node]);
			pg[v.node] = NULL;
		} else if (atomic_load(&gen[v.node]) != v.gen) {
			atomic_fetch_add(&host_unverified, 1);
		} else {
			recovery = PQgetvalue(r, 0, 0)[0] == 't';
			tli = atoi(PQgetvalue(r, 0, 1));
			atomic_fetch_add(&host_verified, 1);
			if (recovery || tli < v.tli) {
				atomic_fetch_add(&host_wrong, 1);
				fprintf(stderr, "soak: WRONG on host at %" PRId64
				    " ms: %s, but port %d says %s (timeline "
				    "%d, highest seen before %d)\n", it_now_ms(),
				    v.reply, ports[v.node], recovery ?
				    "in recovery" : "primary", tli, v.tli);
			} else {
				tli_seen(tli);
			}
		}
		PQclear(r);
		pthread_mutex_lock(&vbox_lock);
		vbox_full = false;
		pthread_mutex_unlock(&vbox_lock);
	}
	for (i = 0; i < NODES; i++)
		PQfinish(pg[i]);
	return NULL;
}

static void *
checker_main(void *arg)
{
	char		 reply[512];
	bool		 before[NODES];
	unsigned	 g[NODES];
	int		 fd = -1, port, node, i, tli;
	int64_t		 t0, t1;

	(void)arg;
	while (atomic_load(&running)) {
		if (fd < 0 && (fd = sock_open()) < 0) {
			atomic_fetch_add(&no_answers, 1);
			usleep(10000);
			continue;
		}
		for (i = 0; i < NODES; i++) {
			g[i] = atomic_load(&gen[i]);
			before[i] = atomic_load(&ok_master[i]);
		}
		tli = atomic_load(&max_tli);
		t0 = now_us();
		if (!sock_ask(fd, "RESOLVE main master\n", reply,
		    sizeof reply)) {
			atomic_fetch_add(&no_answers, 1);
			close(fd);
			fd = -1;
			continue;
		}
		t1 = now_us();
		if (nlat < MAX_SAMPLES)
			lat_us[nlat++] = (uint32_t)(t1 - t0);
		atomic_fetch_add(&answers, 1);
		if (sscanf(reply, "OK host=%*s port=%d", &port) != 1) {
			atomic_fetch_add(&err_answers, 1);
		} else if ((node = node_of_port(port)) < 0 ||
		    was_demoted(node, before[node], g[node])) {
			atomic_fetch_add(&wrong_answers, 1);
			fprintf(stderr, "soak: WRONG answer at %" PRId64
			    " ms: %s\n", it_now_ms(), reply);
		} else {
			verify_later(node, g[node], tli, reply);
		}
		usleep(1000);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *
writer_main(void *arg)
{
	pgb_db		*db;
	pgb_session	*s;
	PGresult	*r;
	char		 sql[256];
	bool		 before[NODES];
	unsigned	 g[NODES];
	long		 seq = 0, stop;
	bool		 done;
	int		 maxtli = 0, tli, port, node, i;

	(void)arg;
	db = pgb_db_new("dbname=postgres user=postgres connect_timeout=2",
	    "main", "master", sock_path);
	if (db == NULL)
		abort();
	while (atomic_load(&running)) {
		for (i = 0; i < NODES; i++) {
			g[i] = atomic_load(&gen[i]);
			before[i] = atomic_load(&ok_master[i]);
		}
		done = atomic_load(&stop_done);
		snprintf(sql, sizeof sql, "INSERT INTO soak VALUES (%ld) "
		    "RETURNING inet_server_port(), ('x' || substr(pg_walfile_"
		    "name(pg_current_wal_lsn()), 1, 8))::bit(32)::int", ++seq);
		s = pgb_session_new(db, PGB_SESSION_AUTOCOMMIT);
		r = s != NULL ? pgb_exec(s, sql) : NULL;
		if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK &&
		    PQntuples(r) == 1) {
			port = atoi(PQgetvalue(r, 0, 0));
			tli = atoi(PQgetvalue(r, 0, 1));
			atomic_fetch_add(&writes_ok, 1);
			node = node_of_port(port);
			if (node < 0 || was_demoted(node, before[node],
			    g[node]) || tli < maxtli) {
				atomic_fetch_add(&writes_bad, 1);
				fprintf(stderr, "soak: BAD write %ld on port %d "
				    "timeline %d (highest %d)\n", seq, port,
				    tli, maxtli);
			}
			if (tli > maxtli)
				maxtli = tli;
			if (node >= 0 && !was_demoted(node, before[node],
			    g[node]))
				tli_seen(tli);
			/* The outage ends with the first write begun after
			 * the stop returned. */
			stop = done ? atomic_exchange(&stop_at_ms, -1) : -1;
			if (stop >= 0) {
				pthread_mutex_lock(&outage_lock);
				outages[noutages++] = (long)it_now_ms() - stop;
				pthread_mutex_unlock(&outage_lock);
			}
		} else {
			atomic_fetch_add(&writes_failed, 1);
			usleep(5000);
		}
		PQclear(r);
		pgb_session_free(s);
		usleep(2000);
	}
	pgb_db_free(db);
	return NULL;
}

/* Plain libpq through the master listener: one connection, opened again
 * when it breaks; the same checks as writer_main(). */
static void *
lwriter_main(void *arg)
{
	PGconn		*pg = NULL;
	PGresult	*r;
	char		 sql[256], ci[256];
	bool		 before[NODES];
	unsigned	 g[NODES];
	long		 seq = 1000000000L;
	int		 maxtli = 0, tli, port, node, i;

	(void)arg;
	snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres connect_timeout=5", listen_port);
	while (atomic_load(&running)) {
		if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
			PQfinish(pg);
			pg = PQconnectdb(ci);
			if (PQstatus(pg) != CONNECTION_OK) {
				atomic_fetch_add(&lwrites_failed, 1);
				usleep(20000);
				continue;
			}
		}
		for (i = 0; i < NODES; i++) {
			g[i] = atomic_load(&gen[i]);
			before[i] = atomic_load(&ok_master[i]);
		}
		snprintf(sql, sizeof sql, "INSERT INTO soak VALUES (%ld) "
		    "RETURNING inet_server_port(), ('x' || substr(pg_walfile_"
		    "name(pg_current_wal_lsn()), 1, 8))::bit(32)::int", ++seq);
		r = PQexec(pg, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
			port = atoi(PQgetvalue(r, 0, 0));
			tli = atoi(PQgetvalue(r, 0, 1));
			atomic_fetch_add(&lwrites_ok, 1);
			node = node_of_port(port);
			if (node < 0 || was_demoted(node, before[node],
			    g[node]) || tli < maxtli) {
				atomic_fetch_add(&lwrites_bad, 1);
				fprintf(stderr, "soak: BAD listener write %ld on "
				    "port %d timeline %d (highest %d)\n", seq,
				    port, tli, maxtli);
			}
			if (tli > maxtli)
				maxtli = tli;
			if (node >= 0 && !was_demoted(node, before[node],
			    g[node]))
				tli_seen(tli);
		} else {
			atomic_fetch_add(&lwrites_failed, 1);
			PQfinish(pg);
			pg = NULL;
			usleep(5000);
		}
		PQclear(r);
		usleep(2000);
	}
	PQfinish(pg);
	return NULL;
}

/* --- the daemon's figures -------------------------------------------- */

static int
count_fds(int pid)
{
	char		 path[64];
	DIR		*d;
	struct dirent	*e;
	int		 n = 0;

	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long
rss_kb(int pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 kb = -1;

	snprintf(path, sizeof path, "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* True when the process maps a sanitizer runtime (ASan, TSan): its RSS
 * then holds shadow memory and quarantined blocks and says nothing about
 * the daemon's own memory. */
static bool
sanitized(int pid)
{
	char	 path[64], line[512];
	FILE	*f;
	bool	 yes = false;

	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (!yes && fgets(line, sizeof line, f) != NULL)
		yes = strstr(line, "libasan") != NULL ||
		    strstr(line, "libtsan") != NULL;
	fclose(f);
	return yes;
}

/*
 * The RSS rule: after the warm-up of each daemon (20 s after its start),
 * every sample must stay within RSS_BOUND_KB(warm) of the value at warm-up.
 * Allocators keep a high-water mark, so a one-off burst (a failover's
 * buffers) may stay; a leak grows with the events and breaks the bound.
 */
#define RSS_BOUND_KB(warm)	((warm) + (warm) / 5 + 1024)

/* The RSS figures of the running daemon and the worst of all daemons. */
struct rss_fig {
	long		 warm, max;	/* this daemon's; -1: before warm-up */
	long		 worst_warm, worst_max;	/* the largest growth seen */
	unsigned long	 daemons;	/* daemons that reached warm-up */
	bool		 over;		/* a sample broke the bound */
	bool		 judged;	/* false under a sanitizer */
};

static void
rss_sample(struct rss_fig *f, long kb, bool warm_now)
{
	if (kb < 0)
		return;
	if (f->warm < 0) {
		if (!warm_now)
			return;
		f->warm = f->max = kb;
		f->daemons++;
	}
	if (kb > f->max)
		f->max = kb;
	if (f->worst_warm < 0 ||
	    f->max - f->warm > f->worst_max - f->worst_warm) {
		f->worst_warm = f->warm;
		f->worst_max = f->max;
	}
	if (f->judged && kb > RSS_BOUND_KB(f->warm) && !f->over) {
		f->over = true;
		fprintf(stderr, "soak: RSS %ld kB over the bound %ld kB (warm "
		    "%ld kB) at %" PRId64 " ms\n", kb, RSS_BOUND_KB(f->warm),
		    f->warm, it_now_ms());
	}
}

/* --- events ------------------------------------------------------------ */

static struct it_cluster	*cl;
static struct it_daemon		*dmn;
static struct it_relay		*relay;
static char			*conf;
static int			 primary;
static unsigned long		 ev_failover, ev_rogue, ev_freeze, ev_restart,
				 ev_kill, ev_reload, ev_relay, crashes;

static void
set_master(int node, bool ok)
{
	atomic_store(&ok_master[node], ok);
	atomic_fetch_add(&gen[node], 1);
}

/* True when the daemon had died and was started again. */
static bool
check_daemon_alive(void)
{
	int	st;

	if (it_daemon_exited(dmn, 0, &st)) {
		fprintf(stderr, "soak: daemon died (status %d)\n", st);
		crashes++;
		dmn = it_daemon_start(conf, it_cluster_dir(cl));
		return true;
	}
	return false;
}

static void
failover(void)
{
	int	old = primary, next, other, i;
	bool	rogue = rand() % 3 == 0;

	next = (old + 1 + rand() % (NODES - 1)) % NODES;
	other = 3 - old - next;
	atomic_store(&stop_done, false);
	atomic_store(&stop_at_ms, (long)it_now_ms());
	it_stop(cl, old, rand() % 2 ? "fast" : "immediate");
	atomic_store(&stop_done, true);
	set_master(old, false);
	set_master(next, true);
	it_promote(cl, next);
	primary = next;
	ev_failover++;
	if (rogue) {
		/* Back as it was: a primary on the old timeline. */
		it_start(cl, old);
		ev_rogue++;
		for (i = 0; i < 30; i++)
			it_sleep_ms(100);
	}
	it_reattach(cl, other, next);
	it_reattach(cl, old, next);
	it_wait_streaming(cl, next, NODES - 1);
}

static void
freeze(void)
{
	int	node = rand() % NODES;

	if (rand() % 2)
		it_freeze(cl, node);
	else
		it_freeze_postmaster(cl, node);
	it_sleep_ms(500 + rand() % 2500);
	it_thaw(cl, node);
	ev_freeze++;
}

static void
daemon_restart(bool kill9)
{
	int	st;

	if (kill9) {
		it_daemon_kill(dmn);
		ev_kill++;
	} else {
		st = it_daemon_stop(dmn);
		if (st != 0) {
			fprintf(stderr, "soak: daemon exit status %d\n", st);
			crashes++;
		}
		ev_restart++;
	}
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
}

static int
cmp_long(const void *a, const void *b)
{
	long	x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static unsigned long
sanitizer_reports(const char *log)
{
	char		 line[1024];
	FILE		*f;
	unsigned long	 n = 0;

	if ((f = fopen(log, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, "ERROR: AddressSanitizer") != NULL ||
		    strstr(line, "ERROR: LeakSanitizer") != NULL ||
		    strstr(line, "runtime error:") != NULL)
			n++;
	fclose(f);
	return n;
}

int
main(void)
{
	const char	*env = getenv("SOAK_SECONDS");
	const char	*hosts[NODES + 1];
	char		 hostbuf[NODES + 1][32], *logpath;
	static const char *const relay_modes[] = { "blackhole", "reset",
	    "refuse", "accept" };
	pthread_t	 checker, verifier, writer, lwriter;
	static const char anchor[] =
	    "conninfo = \"user=postgres dbname=postgres\";";
	char		*at, *withl;
	int64_t		 start, end, warm_at;
	int		 secs = env != NULL ? atoi(env) : 600, i, pid;
	int		 fds_warm = -1, fds_end, fds_max = 0, n;
	long		 rss_end;
	struct rss_fig	 rss = { .warm = -1, .worst_warm = -1 };
	bool		 failed;
	char		*out;

	if (secs <= 0)
		secs = 600;
	srand((unsigned)time(NULL));
	outages = calloc(100000, sizeof *outages);
	lat_us = calloc(MAX_SAMPLES, sizeof *lat_us);
	if (outages == NULL || lat_us == NULL)
		return 2;
	cl = it_cluster_create(NODES - 1);
	for (i = 0; i < NODES; i++) {
		ports[i] = it_port(cl, i);
		snprintf(hostbuf[i], sizeof hostbuf[i], "127.0.0.1:%d",
		    ports[i]);
		hosts[i] = hostbuf[i];
		set_master(i, i == 0);
	}
	relay = it_relay_start(it_free_port());
	it_relay_set(relay, "blackhole");
	snprintf(hostbuf[NODES], sizeof hostbuf[NODES], "127.0.0.1:%d",
	    it_relay_port(relay));
	hosts[NODES] = hostbuf[NODES];
	out = it_sql(cl, 0, "CREATE TABLE soak (seq bigint)");
	free(out);
	it_wait_streaming(cl, 0, NODES - 1);
	conf = it_config_hosts(it_cluster_dir(cl), "main", hosts, NODES + 1,
	    NULL);
	/* A master listener in the cluster. */
	listen_port = it_free_port();
	if ((at = strstr(conf, anchor)) == NULL ||
	    asprintf(&withl, "%.*s\n    listen = ( { role = \"master\"; "
	    "address = \"127.0.0.1:%d\"; } );%s",
	    (int)(at - conf + sizeof anchor - 1), conf, listen_port,
	    at + sizeof anchor - 1) < 0) {
		fprintf(stderr, "soak: cannot add a listener to the config\n");
		return 2;
	}
	free(conf);
	conf = withl;
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	logpath = strdup(it_daemon_log(dmn));
	snprintf(sock_path, sizeof sock_path, "%s", it_daemon_socket(dmn));
	printf("soak: %d s, daemon %s, nodes %d %d %d, silent host %d\n",
	    secs, it_daemon_binary(), ports[0], ports[1], ports[2],
	    it_relay_port(relay));
	rss.judged = !sanitized(it_daemon_pid(dmn));
	if (!rss.judged)
		printf("soak: the daemon runs under a sanitizer: its RSS is "
		    "printed, not judged\n");
	fflush(stdout);
	pthread_create(&checker, NULL, checker_main, NULL);
	pthread_create(&verifier, NULL, verifier_main, NULL);
	pthread_create(&writer, NULL, writer_main, NULL);
	pthread_create(&lwriter, NULL, lwriter_main, NULL);

	start = it_now_ms();
	end = start + (int64_t)secs * 1000;
	warm_at = start + 20000;
	while (it_now_ms() < end) {
		it_sleep_ms(1000 + rand() % 2000);
		if (check_daemon_alive()) {
			fds_warm = -1;
			rss.warm = -1;
			warm_at = it_now_ms() + 20000;
		}
		pid = it_daemon_pid(dmn);
		if ((n = count_fds(pid)) > fds_max)
			fds_max = n;
		rss_sample(&rss, rss_kb(pid), it_now_ms() >= warm_at);
		if (fds_warm < 0 && it_now_ms() >= warm_at)
			fds_warm = n;
		if (it_now_ms() >= end)
			break;
		switch (rand() % 12) {
		case 0: case 1: case 2:
			failover();
			break;
		case 3: case 4:
			freeze();
			break;
		case 5:
			/* Restarts reset the figures; keep them rare and
			 * never in the last minute, so the end is measured
			 * on a daemon that ran through events. */
			if (end - it_now_ms() > 60000) {
				daemon_restart(rand() % 2);
				fds_warm = -1;
				rss.warm = -1;
				warm_at = it_now_ms() + 20000;
			}
			break;
		case 6: case 7:
			it_daemon_reload(dmn, conf);
			ev_reload++;
			break;
		default:
			it_relay_set(relay, relay_modes[rand() % 4]);
			ev_relay++;
			break;
		}
	}
	/* Quiet end: everything thawed and attached; measure. */
	it_relay_set(relay, "blackhole");
	it_sleep_ms(5000);
	if (check_daemon_alive())
		rss.warm = -1;
	pid = it_daemon_pid(dmn);
	fds_end = count_fds(pid);
	rss_end = rss_kb(pid);
	rss_sample(&rss, rss_end, it_now_ms() >= warm_at);
	atomic_store(&running, false);
	pthread_join(checker, NULL);
	pthread_join(verifier, NULL);
	pthread_join(writer, NULL);
	pthread_join(lwriter, NULL);
	if (it_daemon_stop(dmn) != 0)
		crashes++;
	crashes += sanitizer_reports(logpath);

	qsort(outages, (size_t)noutages, sizeof *outages, cmp_long);
	qsort(lat_us, nlat, sizeof *lat_us, cmp_u32);
	printf("soak: events: %lu failovers (%lu with the old primary back "
	    "unrewound), %lu freezes, %lu daemon restarts, %lu kill -9, "
	    "%lu reloads, %lu relay changes\n", ev_failover, ev_rogue,
	    ev_freeze, ev_restart, ev_kill, ev_reload, ev_relay);
	printf("soak: answers checked %lu, wrong %lu, ERR %lu, no answer "
	    "%lu\n", atomic_load(&answers), atomic_load(&wrong_answers),
	    atomic_load(&err_answers), atomic_load(&no_answers));
	printf("soak: answers verified on host %lu (one at most every 20 ms), "
	    "wrong on host %lu, not verifiable %lu\n",
	    atomic_load(&host_verified), atomic_load(&host_wrong),
	    atomic_load(&host_unverified));
	printf("soak: writes ok %lu, failed %lu, on a non-primary or lower "
	    "timeline %lu\n", atomic_load(&writes_ok),
	    atomic_load(&writes_failed), atomic_load(&writes_bad));
	printf("soak: listener writes ok %lu, failed %lu, on a non-primary or "
	    "lower timeline %lu\n", atomic_load(&lwrites_ok),
	    atomic_load(&lwrites_failed), atomic_load(&lwrites_bad));
	if (noutages > 0)
		printf("soak: outage stop -> first write: p50 %ld ms, max %ld "
		    "ms (%d)\n", outages[noutages / 2], outages[noutages - 1],
		    noutages);
	if (nlat > 0)
		printf("soak: RESOLVE latency p99 %.3f ms, max %.3f ms\n",
		    lat_us[nlat * 99 / 100] / 1000.0,
		    lat_us[nlat - 1] / 1000.0);
	printf("soak: daemon fds warm %d end %d (max %d); crashes or "
	    "sanitizer reports %lu\n", fds_warm, fds_end, fds_max, crashes);
	printf("soak: daemon RSS warm %ld kB, max %ld kB, end %ld kB; worst of "
	    "%lu daemons: warm %ld kB, max %ld kB, bound %ld kB (+20 %% + 1 "
	    "MiB)%s\n", rss.warm, rss.max, rss_end, rss.daemons,
	    rss.worst_warm, rss.worst_max, rss.worst_warm < 0 ? -1 :
	    RSS_BOUND_KB(rss.worst_warm), rss.judged ? "" :
	    ", not judged (sanitizer)");
	failed = atomic_load(&wrong_answers) > 0 ||
	    atomic_load(&host_wrong) > 0 ||
	    atomic_load(&writes_bad) > 0 || atomic_load(&lwrites_bad) > 0 ||
	    crashes > 0 ||
	    (fds_warm >= 0 && fds_end > fds_warm + 4) ||
	    rss.over;
	printf("soak: %s\n", failed ? "FAILED" : "ok");
	it_relay_stop(relay);
	it_cluster_destroy(cl);
	free(conf);
	free(logpath);
	free(outages);
	free(lat_us);
	return failed ? 1 : 0;
}
