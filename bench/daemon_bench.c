/*
 * daemon_bench.c - the daemon's figures of DESIGN.md, each printed beside
 * a baseline measured in the same run:
 *
 *   resolve    RESOLVE over the socket: one client pipelining, one client
 *              in lock-step, 50 concurrent clients.  Baselines: PING over
 *              the same socket (the transport's floor) and what a program
 *              without pgbeacon does to learn the primary: a fresh libpq
 *              connection asking pg_is_in_recovery().
 *   failover   rounds of "stop the primary, promote a replica": time from
 *              the promotion finishing (polled on the replica itself, 1 ms
 *              resolution) to the first RESOLVE answer naming it, and the
 *              answers naming the stopped primary after its stop returned.
 *   flood      PING over the socket, lock-step, while wrk keeps 1,000
 *              keep-alive HTTP clients on /master; baseline: the same
 *              PING without the flood.
 *   detect     with default settings, time until a primary that is frozen
 *              (SIGSTOP), blackholed (the fault relay) or whose postmaster
 *              alone is stopped is no longer named, and from a promotion
 *              to the promoted replica named while the old primary is
 *              frozen.  Baselines: a primary killed (SIGQUIT), and
 *              stop -m fast + promote.
 *   idle       CPU and RSS of the daemon watching 3 hosts at the default
 *              interval; RSS with 3 clusters and 1,000 client connections.
 *
 * Not a test: nothing here passes or fails.  Run it with `make bench`.
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../tests/integration/support/itest.h"
#include "../tests/integration/support/spawn.h"
#include "common/promote.h"
#include "common/stats.h"

#define FAILOVER_ROUNDS	7

static int
sock_open(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
write_all(int fd, const char *buf, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("write");
			exit(1);
		}
		buf += w;
		len -= (size_t)w;
	}
}

struct result {
	double	 rps;
	int64_t	 p50_us, p99_us, max_us;
	long	 bad;		/* replies that were not what was expected */
};

/* Fills r's rate and percentiles from n latencies taken in elapsed us. */
static void
result_finish(struct result *r, int64_t *lat, size_t n, int64_t elapsed)
{
	r->rps = (double)n * 1e6 / (double)elapsed;
	stats_sort(lat, n);
	r->p50_us = stats_pct(lat, n, 50);
	r->p99_us = stats_pct(lat, n, 99);
	r->max_us = n > 0 ? lat[n - 1] : 0;
}

/*
 * One client keeping up to window requests in flight, n requests in all.
 * Latency is from the write that carried a request to the read that
 * brought its reply.
 */
static struct result
run_pipelined(const char *sock, const char *req, const char *expect,
    size_t n, size_t window)
{
	struct result r = { 0 };
	int64_t *lat = calloc(n, sizeof(*lat)), *sent = calloc(n, sizeof(*sent));
	size_t reqlen = strlen(req), elen = strlen(expect);
	char *out = malloc(reqlen * window), in[65536];
	size_t nsent = 0, nrecv = 0, have = 0, i;
	int64_t t0, t;
	int fd;

	if (lat == NULL || sent == NULL || out == NULL ||
	    (fd = sock_open(sock)) < 0) {
		perror("pipelined client");
		exit(1);
	}
	t0 = stats_now_us();
	while (nrecv < n) {
		size_t batch = 0;
		ssize_t got;
		char *p, *nl;

		while (nsent < n && nsent - nrecv < window) {
			memcpy(out + batch * reqlen, req, reqlen);
			batch++;
			nsent++;
		}
		if (batch > 0) {
			t = stats_now_us();
			for (i = nsent - batch; i < nsent; i++)
				sent[i] = t;
			write_all(fd, out, batch * reqlen);
		}
		got = read(fd, in + have, sizeof(in) - have);
		if (got <= 0) {
			perror("read");
			exit(1);
		}
		t = stats_now_us();
		have += (size_t)got;
		p = in;
		while ((nl = memchr(p, '\n', have - (size_t)(p - in))) != NULL) {
			if ((size_t)(nl - p) < elen || memcmp(p, expect, elen) != 0)
				r.bad++;
			lat[nrecv] = t - sent[nrecv];
			nrecv++;
			p = nl + 1;
		}
		have -= (size_t)(p - in);
		memmove(in, p, have);
	}
	t = stats_now_us();
	close(fd);
	result_finish(&r, lat, n, t - t0);
	free(lat);
	free(sent);
	free(out);
	return r;
}

/* nclients connections, each with one request in flight; n in all. */
static struct result
run_concurrent(const char *sock, const char *req, const char *expect,
    size_t n, int nclients)
{
	struct result r = { 0 };
	struct epoll_event ev, evs[64];
	int64_t *lat = calloc(n, sizeof(*lat)), *sent;
	int *fds, ep, i, k;
	size_t reqlen = strlen(req), elen = strlen(expect), nsent = 0, nrecv = 0;
	int64_t t0, t;
	char buf[4096];

	sent = calloc((size_t)nclients, sizeof(*sent));
	fds = calloc((size_t)nclients, sizeof(*fds));
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || lat == NULL ||
	    sent == NULL || fds == NULL) {
		perror("concurrent clients");
		exit(1);
	}
	for (i = 0; i < nclients; i++) {
		if ((fds[i] = sock_open(sock)) < 0) {
			perror("connect");
			exit(1);
		}
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	t0 = stats_now_us();
	for (i = 0; i < nclients && nsent < n; i++, nsent++) {
		sent[i] = stats_now_us();
		write_all(fds[i], req, reqlen);
	}
	while (nrecv < n) {
		int ready = epoll_wait(ep, evs, 64, 10000);

		if (ready <= 0) {
			fprintf(stderr, "concurrent clients: no answer\n");
			exit(1);
		}
		for (k = 0; k < ready; k++) {
			int c = (int)evs[k].data.u32;
			ssize_t got = read(fds[c], buf, sizeof(buf));

			/* One request in flight: one whole reply per read
			 * (replies are far shorter than a socket buffer). */
			if (got <= 0) {
				perror("read");
				exit(1);
			}
			t = stats_now_us();
			if ((size_t)got < elen || memcmp(buf, expect, elen) != 0)
				r.bad++;
			lat[nrecv++] = t - sent[c];
			if (nsent < n) {
				nsent++;
				sent[c] = stats_now_us();
				write_all(fds[c], req, reqlen);
			}
		}
	}
	result_finish(&r, lat, n, stats_now_us() - t0);
	for (i = 0; i < nclients; i++)
		close(fds[i]);
	close(ep);
	free(lat);
	free(sent);
	free(fds);
	return r;
}

/* The baseline: learn the primary with a fresh connection each time. */
static struct result
run_fresh_libpq(int port, size_t n)
{
	struct result r = { 0 };
	int64_t *lat = calloc(n, sizeof(*lat)), t0, t;
	char conninfo[128];
	size_t i;

	snprintf(conninfo, sizeof(conninfo),
	    "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
	t0 = stats_now_us();
	for (i = 0; i < n; i++) {
		PGconn *conn;
		PGresult *res;

		t = stats_now_us();
		conn = PQconnectdb(conninfo);
		res = PQexec(conn, "SELECT pg_is_in_recovery()");
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			r.bad++;
		PQclear(res);
		PQfinish(conn);
		lat[i] = stats_now_us() - t;
	}
	result_finish(&r, lat, n, stats_now_us() - t0);
	free(lat);
	return r;
}

static void
print_result(const char *what, struct result r, const struct result *base,
    const char *base_name)
{
	printf("  %-44s %10.0f req/s   p50 %5" PRId64 " us   p99 %5" PRId64
	    " us", what, r.rps, r.p50_us, r.p99_us);
	if (base != NULL)
		printf("   %.2fx %s", r.rps / base->rps, base_name);
	if (r.bad)
		printf("   (%ld unexpected replies!)", r.bad);
	printf("\n");
}

static void
bench_resolve(struct it_cluster *c, const char *dir)
{
	struct it_daemon *d;
	struct result ping1, res1, pingp, resp, pingc, resc, fresh;
	const char *sock;
	char *cfg, expect[64];

	cfg = it_config(c, "main", "log_level = \"warn\";\n");
	d = it_daemon_start(cfg, dir);
	free(cfg);
	sock = it_daemon_socket(d);
	if (!IT_POLL_UNTIL(it_resolves_to(sock, "main", "master", 0),
	    10000)) {
		fprintf(stderr, "daemon found no primary\n");
		exit(1);
	}
	snprintf(expect, sizeof(expect), "OK host=127.0.0.1 port=%d",
	    it_port(c, 0));

	printf("\nresolve over the Unix socket (RESOLVE main master)\n");
	pingp = run_pipelined(sock, "PING\n", "PONG", 1000000, 64);
	resp = run_pipelined(sock, "RESOLVE main master\n", expect, 1000000, 64);
	print_result("baseline: PING, 1 client, 64 in flight", pingp, NULL, "");
	print_result("RESOLVE, 1 client, 64 in flight", resp, &pingp, "of PING");

	ping1 = run_pipelined(sock, "PING\n", "PONG", 100000, 1);
	res1 = run_pipelined(sock, "RESOLVE main master\n", expect, 100000, 1);
	print_result("baseline: PING, 1 client, lock-step", ping1, NULL, "");
	print_result("RESOLVE, 1 client, lock-step", res1, &ping1, "of PING");

	pingc = run_concurrent(sock, "PING\n", "PONG", 500000, 50);
	resc = run_concurrent(sock, "RESOLVE main master\n", expect, 500000, 50);
	print_result("baseline: PING, 50 clients, 1 in flight each", pingc,
	    NULL, "");
	print_result("RESOLVE, 50 clients, 1 in flight each", resc, &pingc,
	    "of PING");

	fresh = run_fresh_libpq(it_port(c, 0), 300);
	print_result("baseline: fresh libpq conn + pg_is_in_recovery()",
	    fresh, NULL, "");
	printf("  => RESOLVE lock-step is %.0fx faster than asking PostgreSQL "
	    "with a fresh connection;\n     pipelined it is %.0fx.  Targets: "
	    ">= 100,000 req/s pipelined, p99 < 100 us.\n",
	    res1.rps / fresh.rps, resp.rps / fresh.rps);
	if (it_daemon_stop(d) != 0)
		fprintf(stderr, "warning: daemon did not exit cleanly\n");
}

/* --- PING under an HTTP flood --------------------------------------------- */

/*
 * A socket client's PING, lock-step, while wrk keeps 1,000 keep-alive HTTP
 * clients on GET /master at full speed; baseline: the same PING with no
 * flood, same daemon, same run.  The daemon gives socket events a higher
 * priority than HTTP and runs HTTP callbacks in slices (server.h), so the
 * PING p99 should stay under 5 ms.
 */
static void
bench_flood(struct it_cluster *c, const char *dir)
{
	struct it_daemon *d;
	struct result base, flood;
	struct rlimit rl;
	const char *sock;
	char *cfg, settings[128], url[64], out[512], line[256];
	double wrk_rps = 0;
	FILE *f;
	const char *argv[] = { "wrk", "-t1", "-c1000", "-d60s", url, NULL };
	int port;
	pid_t wrk;

	printf("\nPING over the Unix socket during an HTTP flood (wrk -t1 "
	    "-c1000 on /master)\n");
	if (it_system("command -v wrk >/dev/null 2>&1") != 0) {
		printf("  skipped: wrk is missing (scripts/deps.sh install "
		    "bench)\n");
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {	/* wrk needs 1,000+ */
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	port = it_free_port();
	snprintf(settings, sizeof(settings), "log_level = \"warn\";\n"
	    "http_listen = \"127.0.0.1:%d\";\n", port);
	cfg = it_config(c, "main", settings);
	d = it_daemon_start(cfg, dir);
	free(cfg);
	sock = it_daemon_socket(d);
	if (!IT_POLL_UNTIL(it_resolves_to(sock, "main", "master", 0),
	    10000)) {
		fprintf(stderr, "daemon found no primary\n");
		exit(1);
	}
	base = run_pipelined(sock, "PING\n", "PONG", 20000, 1);

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/master", port);
	snprintf(out, sizeof(out), "%s/wrk.out", dir);
	/* One wrk thread: on 2 cores the other is the daemon's. */
	if ((wrk = it_spawn_argv(argv, out)) == -1) {
		perror("daemon_bench: wrk");
		exit(1);
	}
	it_sleep_ms(2000);	/* let wrk open its 1,000 connections */
	flood = run_pipelined(sock, "PING\n", "PONG", 20000, 1);
	/* wrk prints its figures on SIGINT and exits */
	(void)it_stop_pid(wrk, SIGINT, -1);
	if ((f = fopen(out, "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "Requests/sec: %lf", &wrk_rps) == 1)
				break;
		fclose(f);
	}
	print_result("baseline: PING, lock-step, no HTTP load", base, NULL, "");
	print_result("PING, lock-step, 1,000 HTTP clients flooding", flood,
	    NULL, "");
	printf("  the flood: %.0f HTTP req/s.  max %" PRId64 " us without "
	    "it, %" PRId64 " us with it.\n  Target: p99 < 5 ms under the "
	    "flood.\n", wrk_rps, base.max_us, flood.max_us);
	if (it_daemon_stop(d) != 0)
		fprintf(stderr, "warning: daemon did not exit cleanly\n");
}

/* --- failover ------------------------------------------------------------ */

struct prober {
	const char	*sock;
	volatile bool	 stop;
	int		 new_port, old_port;
	int64_t		 stop_returned_us;	/* set by main; 0 before */
	int64_t		 first_new_us;		/* first answer naming new_port */
	long		 old_after_stop;	/* answers naming old_port after it */
	long		 answers;
	pthread_mutex_t	 lock;
};

/* Asks RESOLVE main master every 200 us and notes what it hears. */
static void *
prober_main(void *arg)
{
	struct prober *p = arg;
	char buf[512], want_new[64], want_old[64];
	int fd = sock_open(p->sock);

	snprintf(want_new, sizeof(want_new), "port=%d ", p->new_port);
	snprintf(want_old, sizeof(want_old), "port=%d ", p->old_port);
	if (fd < 0)
		return NULL;
	while (!p->stop) {
		ssize_t got;
		int64_t t;

		write_all(fd, "RESOLVE main master\n", 20);
		got = read(fd, buf, sizeof(buf) - 1);
		if (got <= 0)
			break;
		buf[got] = '\0';
		t = stats_now_us();
		pthread_mutex_lock(&p->lock);
		p->answers++;
		if (strstr(buf, want_new) != NULL && p->first_new_us == 0)
			p->first_new_us = t;
		if (strstr(buf, want_old) != NULL && p->stop_returned_us != 0)
			p->old_after_stop++;
		pthread_mutex_unlock(&p->lock);
		usleep(200);
	}
	close(fd);
	return NULL;
}

static void
bench_failover(void)
{
	int64_t detect[FAILOVER_ROUNDS];
	long stale_total = 0;
	int round;

	printf("\nfailover detection (%d rounds: stop node0 -m fast, "
	    "promote node1)\n", FAILOVER_ROUNDS);
	for (round = 0; round < FAILOVER_ROUNDS; round++) {
		struct it_cluster *c = it_cluster_create(2);
		struct prober p;
		struct it_daemon *d;
		pthread_t th;
		PGconn *conn;
		char *cfg;
		int64_t promoted_us = 0, t_stop;

		cfg = it_config(c, "main", "log_level = \"warn\";\n"
		    "check_interval_ms = 500;\nfast_check_interval_ms = 25;\n"
		    "reconnect_max_ms = 5000;\n");
		d = it_daemon_start(cfg, it_cluster_dir(c));
		free(cfg);
		if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d), "main",
		    "master", 0), 10000))
			exit(1);

		memset(&p, 0, sizeof(p));
		pthread_mutex_init(&p.lock, NULL);
		p.sock = it_daemon_socket(d);
		p.old_port = it_port(c, 0);
		p.new_port = it_port(c, 1);
		conn = bench_connect(p.new_port);
		pthread_create(&th, NULL, prober_main, &p);

		t_stop = stats_now_us();
		it_stop(c, 0, "fast");
		pthread_mutex_lock(&p.lock);
		p.stop_returned_us = stats_now_us();
		pthread_mutex_unlock(&p.lock);

		/* Promote without waiting, then watch for the end of recovery
		 * ourselves, every millisecond. */
		promoted_us = bench_promote(conn, t_stop, 30 * 1000000);
		PQfinish(conn);
		if (!IT_POLL_UNTIL(p.first_new_us != 0, 10000))
			fprintf(stderr, "round %d: new primary never answered\n",
			    round);
		p.stop = true;
		pthread_join(th, NULL);
		detect[round] = p.first_new_us - promoted_us;
		stale_total += p.old_after_stop;
		printf("  round %d: primary stopped in %4" PRId64 " ms; new "
		    "primary answered %6.1f ms after the promotion finished; "
		    "%ld answers named the stopped primary (of %ld)\n", round + 1,
		    (p.stop_returned_us - t_stop) / 1000,
		    (double)detect[round] / 1000.0, p.old_after_stop, p.answers);
		pthread_mutex_destroy(&p.lock);
		(void)it_daemon_stop(d);
		it_cluster_destroy(c);
	}
	stats_sort(detect, FAILOVER_ROUNDS);
	printf("  => detection median %.1f ms, max %.1f ms (targets: median "
	    "<= 200 ms, max < 1 s);\n     %ld answers named a stopped primary "
	    "(target 0).  Baseline: pg-status polls every 5 s and needs 3\n"
	    "     failures, 1.5 to 20 s; the ratio to its best case (1.5 s) is "
	    "%.0fx.\n", (double)stats_pct(detect, FAILOVER_ROUNDS, 50) / 1000.0,
	    (double)detect[FAILOVER_ROUNDS - 1] / 1000.0, stale_total,
	    1500.0 / ((double)stats_pct(detect, FAILOVER_ROUNDS, 50) / 1000.0));
}

/* --- detection without FIN or RST ----------------------------------------- */

#define DETECT_ROUNDS	5

/* pgbeacond's defaults, spelled out: it_config()'s are the tests' fast
 * ones. */
#define DEFAULTS	"log_level = \"warn\";\ncheck_interval_ms = 500;\n"	\
	"fast_check_interval_ms = 25;\nconnect_timeout_ms = 2000;\n"	\
	"query_timeout_ms = 1000;\nmax_fails = 3;\nreconnect_max_ms = 5000;\n" \
	"connect_check_interval_ms = 5000;\n"

/* What RESOLVE main master answers while a fault is made. */
struct watch {
	const char	*sock;
	volatile bool	 stop;
	int		 old_port, new_port;
	int64_t		 since_us;	/* set by main when the fault starts */
	int64_t		 gone_us;	/* first answer after it not naming old */
	int64_t		 new_us;	/* first answer naming new_port */
	pthread_mutex_t	 lock;
};

/* Asks RESOLVE main master every 200 us and notes what it hears. */
static void *
watch_main(void *arg)
{
	struct watch *w = arg;
	char buf[512], want_new[64], want_old[64];
	int fd = sock_open(w->sock);

	snprintf(want_new, sizeof(want_new), "port=%d ", w->new_port);
	snprintf(want_old, sizeof(want_old), "port=%d ", w->old_port);
	if (fd < 0)
		return NULL;
	while (!w->stop) {
		ssize_t got;
		int64_t t;

		write_all(fd, "RESOLVE main master\n", 20);
		got = read(fd, buf, sizeof(buf) - 1);
		if (got <= 0)
			break;
		buf[got] = '\0';
		t = stats_now_us();
		pthread_mutex_lock(&w->lock);
		if (w->since_us != 0 && w->gone_us == 0 &&
		    strstr(buf, want_old) == NULL)
			w->gone_us = t;
		if (w->new_port != 0 && w->new_us == 0 &&
		    strstr(buf, want_new) != NULL)
			w->new_us = t;
		pthread_mutex_unlock(&w->lock);
		usleep(200);
	}
	close(fd);
	return NULL;
}

static void
watch_start(struct watch *w, pthread_t *th, const char *sock, int old_port,
    int new_port)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->sock = sock;
	w->old_port = old_port;
	w->new_port = new_port;
	pthread_create(th, NULL, watch_main, w);
}

static void
watch_mark(struct watch *w)
{
	pthread_mutex_lock(&w->lock);
	w->since_us = stats_now_us();
	pthread_mutex_unlock(&w->lock);
}

static void
watch_end(struct watch *w, pthread_t th)
{
	w->stop = true;
	pthread_join(th, NULL);
	pthread_mutex_destroy(&w->lock);
}

static void
print_ms(const char *what, int64_t *v, int n, const char *target)
{
	int i;

	stats_sort(v, (size_t)n);
	printf("  %-44s median %6.0f ms, max %6.0f ms  (", what,
	    (double)stats_pct(v, (size_t)n, 50) / 1000.0,
	    (double)v[n - 1] / 1000.0);
	for (i = 0; i < n; i++)
		printf("%s%.0f", i ? " " : "", (double)v[i] / 1000.0);
	printf(")%s%s\n", target[0] ? "; " : "", target);
}

enum fault { FAULT_FREEZE, FAULT_BLACKHOLE, FAULT_POSTMASTER, FAULT_STOP };

/* Rounds of: fault on the primary, time until it is no longer named,
 * repair, wait until it is named again.  One cluster for all. */
static void
detect_loss(enum fault kind, int rounds, int64_t *out)
{
	struct it_cluster *c = it_cluster_create(1);
	struct it_relay *relay = NULL;
	struct it_daemon *d;
	struct watch w;
	pthread_t th;
	char *cfg, extra[1024];
	int p0 = it_port(c, 0), r;

	if (kind == FAULT_BLACKHOLE) {
		relay = it_relay_start(p0);
		p0 = it_relay_port(relay);
	}
	snprintf(extra, sizeof(extra), "%sclusters = ( { name = \"main\"; "
	    "hosts = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" ); conninfo = "
	    "\"user=postgres dbname=postgres\"; } );\n", DEFAULTS, p0,
	    it_port(c, 1));
	cfg = it_config(c, "main", extra);
	d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);
	for (r = 0; r < rounds; r++) {
		if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d), "main",
		    "master", p0), 60000)) {
			fprintf(stderr, "node0 never master again\n");
			exit(1);
		}
		watch_start(&w, &th, it_daemon_socket(d), p0, 0);
		it_sleep_ms(300 + (int)arc4random_uniform(500));
		watch_mark(&w);
		switch (kind) {
		case FAULT_FREEZE:
			it_freeze(c, 0);
			break;
		case FAULT_BLACKHOLE:
			it_relay_set(relay, "blackhole");
			break;
		case FAULT_POSTMASTER:
			it_freeze_postmaster(c, 0);
			break;
		case FAULT_STOP:
			/* what pg_ctl stop -m immediate sends, without the
			 * harness's own start-up time */
			kill(it_pid(c, 0), SIGQUIT);
			break;
		}
		if (!IT_POLL_UNTIL(w.gone_us != 0, 60000))
			fprintf(stderr, "round %d: never detected\n", r);
		watch_end(&w, th);
		out[r] = w.gone_us - w.since_us;
		switch (kind) {
		case FAULT_FREEZE:
		case FAULT_POSTMASTER:
			it_thaw(c, 0);
			break;
		case FAULT_BLACKHOLE:
			it_relay_set(relay, "pass");
			break;
		case FAULT_STOP:
			if (!IT_POLL_UNTIL(it_pid(c, 0) == -1, 60000))
				exit(1);
			it_start(c, 0);
			break;
		}
	}
	(void)it_daemon_stop(d);
	it_relay_stop(relay);
	it_cluster_destroy(c);
}

/* Rounds of: fault on the primary (freeze, or stop -m fast for the
 * baseline), promote node1 at once, time from the end of the promotion
 * (polled on node1 every ms) to the first answer naming node1. */
static void
detect_promotion(enum fault kind, int rounds, int64_t *out)
{
	int r;

	for (r = 0; r < rounds; r++) {
		struct it_cluster *c = it_cluster_create(1);
		struct it_daemon *d;
		struct watch w;
		pthread_t th;
		PGconn *conn;
		char *cfg;
		int64_t promoted_us = 0, t0;

		cfg = it_config(c, "main", DEFAULTS);
		d = it_daemon_start(cfg, it_cluster_dir(c));
		free(cfg);
		if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d), "main",
		    "master", it_port(c, 0)), 30000))
			exit(1);
		conn = bench_connect(it_port(c, 1));
		watch_start(&w, &th, it_daemon_socket(d), it_port(c, 0),
		    it_port(c, 1));
		it_sleep_ms(300 + (int)arc4random_uniform(500));
		t0 = stats_now_us();
		if (kind == FAULT_FREEZE)
			it_freeze(c, 0);
		else
			it_stop(c, 0, "fast");
		promoted_us = bench_promote(conn, t0, 30 * 1000000);
		PQfinish(conn);
		if (!IT_POLL_UNTIL(w.new_us != 0, 30000))
			fprintf(stderr, "round %d: new primary never named\n",
			    r);
		watch_end(&w, th);
		out[r] = w.new_us > promoted_us ? w.new_us - promoted_us : 0;
		(void)it_daemon_stop(d);
		it_cluster_destroy(c);	/* thaws node0 first */
	}
}

static void
bench_detect(void)
{
	int64_t v[DETECT_ROUNDS];

	printf("\ndetection with default settings (%d rounds each; the fault "
	    "starts 0.3-0.8 s after a\nrandom probe)\n", DETECT_ROUNDS);
	detect_loss(FAULT_STOP, DETECT_ROUNDS, v);
	print_ms("baseline: primary killed (SIGQUIT: FIN/RST)", v,
	    DETECT_ROUNDS, "");
	detect_loss(FAULT_FREEZE, DETECT_ROUNDS, v);
	print_ms("primary frozen (SIGSTOP, whole node)", v, DETECT_ROUNDS,
	    "target < 2000 ms");
	detect_loss(FAULT_BLACKHOLE, DETECT_ROUNDS, v);
	print_ms("primary blackholed (fault relay)", v, DETECT_ROUNDS,
	    "target < 2000 ms");
	detect_promotion(FAULT_STOP, DETECT_ROUNDS, v);
	print_ms("baseline: stop -m fast + promote -> named", v,
	    DETECT_ROUNDS, "");
	detect_promotion(FAULT_FREEZE, DETECT_ROUNDS, v);
	print_ms("frozen primary + promote -> named", v, DETECT_ROUNDS,
	    "target < 600 ms");
	detect_loss(FAULT_POSTMASTER, 3, v);
	print_ms("postmaster stopped, backends alive", v, 3,
	    "bound: 1.2 x connect_check_interval_ms + connect_timeout_ms");
}

/* --- idle cost and memory ---------------------------------------------- */

/* Memory of a process in KiB: all resident, its own (anonymous), and
 * resident pages of mapped files (mostly shared libraries). */
struct mem {
	long	rss, anon, file;
};

static bool
proc_stat(int pid, long *ticks, struct mem *m)
{
	char path[64], buf[4096], *p;
	unsigned long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(buf, sizeof(buf), f) == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2) {
		fclose(f);
		return false;
	}
	fclose(f);
	*ticks = (long)(ut + st);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	m->rss = m->anon = m->file = -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		(void)sscanf(buf, "VmRSS: %ld kB", &m->rss);
		(void)sscanf(buf, "RssAnon: %ld kB", &m->anon);
		(void)sscanf(buf, "RssFile: %ld kB", &m->file);
	}
	fclose(f);
	return m->rss >= 0;
}

static void
bench_idle(struct it_cluster *c)
{
	struct it_daemon *d;
	struct rlimit rl;
	struct mem m0, m1;
	long t0, t1, hz = sysconf(_SC_CLK_TCK);
	int64_t w0, w1;
	char hosts[256], *cfg;
	int *fds, i, n = 1000;

	printf("\nidle cost and memory (3 hosts, check_interval_ms = 500)\n");
	snprintf(hosts, sizeof(hosts), "\"127.0.0.1:%d\", \"127.0.0.1:%d\", "
	    "\"127.0.0.1:%d\"", it_port(c, 0), it_port(c, 1), it_port(c, 2));
	if (asprintf(&cfg, "socket = \"%s/idle.sock\";\nlog_level = \"warn\";\n"
	    "clusters = (\n"
	    " { name = \"a\"; hosts = ( %s ); conninfo = \"user=postgres dbname=postgres\"; },\n"
	    " { name = \"b\"; hosts = ( %s ); conninfo = \"user=postgres dbname=postgres\"; },\n"
	    " { name = \"c\"; hosts = ( %s ); conninfo = \"user=postgres dbname=postgres\"; }\n"
	    ");\n", it_cluster_dir(c), hosts, hosts, hosts) < 0)
		exit(1);
	d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);
	it_sleep_ms(1000);	/* let the first rounds settle: not a state */
	proc_stat(it_daemon_pid(d), &t0, &m0);
	w0 = stats_now_us();
	it_sleep_ms(10000);
	proc_stat(it_daemon_pid(d), &t1, &m1);
	w1 = stats_now_us();
	printf("  3 clusters x 3 hosts, idle 10 s: %.2f%% of one core "
	    "(target < 1%%)\n", 100.0 * (double)(t1 - t0) / (double)hz /
	    ((double)(w1 - w0) / 1e6));
	printf("  memory idle: RSS %ld KiB = %ld KiB of its own (anonymous) "
	    "+ %ld KiB of mapped\n    files (libpq, OpenSSL, libevent, ...: "
	    "shared with every libpq program)\n", m1.rss, m1.anon, m1.file);

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
		rl.rlim_cur = 2048;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fds = calloc((size_t)n, sizeof(*fds));
	for (i = 0; i < n; i++)
		if ((fds[i] = sock_open(it_daemon_socket(d))) < 0)
			break;
	n = i;
	/* Each connection asks once, so the daemon has touched them all. */
	for (i = 0; i < n; i++) {
		char *r = it_sock_request(fds[i], "RESOLVE a replica", 5000);

		free(r);
	}
	proc_stat(it_daemon_pid(d), &t1, &m1);
	printf("  with %d client connections: RSS %ld KiB = %ld KiB own + "
	    "%ld KiB mapped files\n    (target: RSS < 8 MiB = 8192 KiB; the "
	    "daemon's own memory grew by %ld KiB)\n", n, m1.rss, m1.anon,
	    m1.file, m1.anon - m0.anon);
	for (i = 0; i < n; i++)
		it_sock_close(fds[i]);
	free(fds);
	(void)it_daemon_stop(d);
}

int
main(int argc, char **argv)
{
	struct it_cluster *c;
	const char *only = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("pgbeacond benchmark on %ld cores; daemon and load share them\n",
	    sysconf(_SC_NPROCESSORS_ONLN));
	if (only == NULL || strcmp(only, "resolve") == 0 ||
	    strcmp(only, "idle") == 0 || strcmp(only, "flood") == 0) {
		c = it_cluster_create(2);
		if (only == NULL || strcmp(only, "resolve") == 0)
			bench_resolve(c, it_cluster_dir(c));
		if (only == NULL || strcmp(only, "flood") == 0)
			bench_flood(c, it_cluster_dir(c));
		if (only == NULL || strcmp(only, "idle") == 0)
			bench_idle(c);
		it_cluster_destroy(c);
	}
	if (only == NULL || strcmp(only, "failover") == 0)
		bench_failover();
	if (only == NULL || strcmp(only, "detect") == 0)
		bench_detect();
	return 0;
}
