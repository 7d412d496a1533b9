/*
 * proxy_bench.c - connection listeners beside HAProxy and pgbouncer, each
 * measured in the same run (bench/proxy.sh has the throughput figures):
 *
 *   failover  clients that connect, write one row and disconnect every
 *             10 ms, through a master listener and through HAProxy 2.6
 *             with pgbeacond's /health/primary as its check (the README's
 *             old settings, "inter 1s fall 2", and the faster ones,
 *             "fastinter 100ms downinter 100ms" with "option redispatch
 *             1"), all during the same rounds of "stop the primary -m
 *             fast, promote the replica".  Per path: the time from the
 *             promotion finishing (polled on the replica, 1 ms) to the
 *             first write landing on the new primary, the failed connects,
 *             the failed writes, the attempts that hung over 1 s, and any
 *             write that landed on the old primary after its stop; for
 *             HAProxy also when it marked the old primary DOWN and the new
 *             one UP.  After the last round pgbeacond is stopped and the
 *             time until HAProxy marks every server DOWN is measured.
 *   memory    RSS of pgbeacond with N (BENCH_CONNS, 1000) idle relayed
 *             connections minus its RSS with none, divided by N; the same
 *             for HAProxy in TCP mode relaying to the same server, and for
 *             pgbouncer holding N idle logged-in clients.
 *
 *   BENCH_QUICK    1: 2 rounds and 200 connections (unless set below)
 *   BENCH_ROUNDS   failover rounds (default 5)
 *   BENCH_CONNS    connections of the memory figure (default 1000)
 *
 * HAProxy and pgbouncer are Debian's (scripts/deps.sh installs them with
 * the bench packages; never started as services); without them their
 * columns are left out.  Not a test: nothing here passes or fails.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../tests/integration/support/itest.h"
#include "../tests/integration/support/proxy_util.h"
#include "../tests/integration/support/spawn.h"
#include "common/promote.h"
#include "common/stats.h"

#define CLIENTS_PER_PATH	4
#define AFTER_PROMOTION_MS	5000
#define HANG_US			1000000

/* --- helpers ----------------------------------------------------------------- */

static bool
have(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return it_system(cmd) == 0;
}

static int
env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "proxy_bench: cannot write %s\n", path);
		exit(1);
	}
}

/* Runs argv in the background, its output to log; its pid. */
static pid_t
spawn(const char *const argv[], const char *log)
{
	pid_t pid = it_spawn_argv(argv, log);

	if (pid < 0) {
		fprintf(stderr, "proxy_bench: cannot run %s\n", argv[0]);
		exit(1);
	}
	return pid;
}

static void
reap(pid_t pid)
{
	(void)it_stop_pid(pid, SIGTERM, 10000);
}

/* True when a TCP connection to 127.0.0.1:port is accepted. */
static bool
port_open(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return rc == 0;
}

/* VmRSS and RssAnon of pid in KiB. */
static bool
proc_mem(int pid, long *rss, long *anon)
{
	char path[64], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	*rss = *anon = -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		(void)sscanf(buf, "VmRSS: %ld kB", rss);
		(void)sscanf(buf, "RssAnon: %ld kB", anon);
	}
	fclose(f);
	return *rss >= 0;
}

static void
raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;	/* root may; otherwise it stays */
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		(void)getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* --- HAProxy's view of its servers --------------------------------------- */

/*
 * The op_state (0 stopped, 2 running) of server srv of backend be from
 * "show servers state" on HAProxy's stats socket, or -1.
 */
static int
haproxy_state(const char *sock, const char *be, const char *srv)
{
	struct sockaddr_un sun;
	char req[128], buf[8192], *line, *save = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, st = -1;

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	snprintf(req, sizeof(req), "show servers state %s\n", be);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char bname[64], sname[64];
		int op;

		/* be_id be_name srv_id srv_name srv_addr srv_op_state ... */
		if (sscanf(line, "%*d %63s %*d %63s %*s %d", bname, sname,
		    &op) == 3 && strcmp(bname, be) == 0 &&
		    strcmp(sname, srv) == 0)
			st = op;
	}
	return st;
}

/* --- failover under load --------------------------------------------------- */

enum path { P_LISTENER, P_HA_README, P_HA_FAST, NPATHS };

static const char *const path_name[NPATHS] = {
	"pgbeacon listener", "HAProxy, README's old check",
	"HAProxy, faster check",
};
static const char *const path_be[NPATHS] = { NULL, "pg_readme", "pg_fast" };

/* What the clients of one path saw in one round.  Guarded by lock. */
struct path_round {
	int		 port;
	int64_t		 first_new_us;	/* first write on the new primary */
	long		 attempts, ok, connect_fail, write_fail, hangs;
	long		 old_after_stop;	/* writes on the old primary */
	int64_t		 old_down_us;	/* HAProxy marked the old one DOWN */
	int64_t		 new_up_us;	/* HAProxy marked the new one UP */
	char		 last_err[160];	/* of the last failed attempt */
};

struct round {
	pthread_mutex_t	 lock;
	volatile bool	 stop;
	int		 old_port, new_port;
	int64_t		 stop_start_us, stop_done_us;
	struct path_round p[NPATHS];
	const char	*ha_sock;	/* NULL: no HAProxy */
	char		 old_name[64], new_name[64];
};

struct client {
	struct round	*r;
	enum path	 path;
	pthread_t	 th;
};

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	struct round *r = cl->r;
	struct path_round *pr = &r->p[cl->path];
	char ci[256];

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres sslmode=disable connect_timeout=10", pr->port);
	while (!r->stop) {
		int64_t t0 = stats_now_us(), t1;
		PGconn *conn = PQconnectdb(ci);
		PGresult *res = NULL;
		bool cfail = PQstatus(conn) != CONNECTION_OK, ok = false;
		int port = -1;

		if (!cfail) {
			res = PQexec(conn, "insert into fo_t values (default) "
			    "returning inet_server_port()");
			if (PQresultStatus(res) == PGRES_TUPLES_OK) {
				ok = true;
				port = atoi(PQgetvalue(res, 0, 0));
			}
			PQclear(res);
		}
		t1 = stats_now_us();
		pthread_mutex_lock(&r->lock);
		pr->attempts++;
		if (cfail)
			pr->connect_fail++;
		else if (!ok)
			pr->write_fail++;
		if (!ok) {
			char *nl;

			snprintf(pr->last_err, sizeof(pr->last_err), "%s%s",
			    cfail ? "connect: " : "write: ",
			    PQerrorMessage(conn));
			while ((nl = strchr(pr->last_err, '\n')) != NULL)
				*nl = ' ';
		}
		else {
			pr->ok++;
			if (port == r->new_port && pr->first_new_us == 0)
				pr->first_new_us = t1;
			if (port == r->old_port && r->stop_done_us != 0)
				pr->old_after_stop++;
		}
		if (!ok && t1 - t0 > HANG_US)
			pr->hangs++;
		pthread_mutex_unlock(&r->lock);
		PQfinish(conn);
		usleep(10000);
	}
	return NULL;
}

/* Polls HAProxy's view every 10 ms until the round stops. */
static void *
watcher_main(void *arg)
{
	struct round *r = arg;
	int i;

	while (!r->stop) {
		for (i = P_HA_README; i < NPATHS; i++) {
			struct path_round *pr = &r->p[i];
			int64_t t = stats_now_us();

			if (pr->old_down_us == 0 && r->stop_start_us != 0 &&
			    haproxy_state(r->ha_sock, path_be[i],
			    r->old_name) == 0)
				pr->old_down_us = t;
			if (pr->new_up_us == 0 && r->stop_start_us != 0 &&
			    haproxy_state(r->ha_sock, path_be[i],
			    r->new_name) == 2)
				pr->new_up_us = t;
		}
		usleep(10000);
	}
	return NULL;
}

static pid_t
haproxy_start(const char *dir, int http_port, const struct it_cluster *c,
    int port_readme, int port_fast, char *sock, size_t socklen)
{
	char cfg[4096], path[512], log[512], srv[256];
	const char *argv[] = { "haproxy", "-f", path, "-db", NULL };
	int i, p;

	snprintf(sock, socklen, "%s/haproxy.sock", dir);
	snprintf(path, sizeof(path), "%s/haproxy.cfg", dir);
	snprintf(log, sizeof(log), "%s/haproxy.log", dir);
	srv[0] = '\0';
	for (i = 0; i < 2; i++) {
		p = it_port(c, i);
		snprintf(srv + strlen(srv), sizeof(srv) - strlen(srv),
		    "    server 127.0.0.1:%d 127.0.0.1:%d check\n", p, p);
	}
	/* The README's backend, then the same with the faster settings. */
	snprintf(cfg, sizeof(cfg),
	    "global\n    maxconn 4000\n"
	    "    stats socket %s mode 600 level admin\n"
	    "defaults\n    mode tcp\n    timeout connect 5s\n"
	    "    timeout client 1h\n    timeout server 1h\n"
	    "listen pg_readme\n    bind 127.0.0.1:%d\n"
	    "    option httpchk\n"
	    "    http-check send meth GET uri-lf /health/primary?host=%%[srv_name]\n"
	    "    http-check expect status 200\n"
	    "    default-server inter 1s fall 2 rise 1 on-marked-down "
	    "shutdown-sessions addr 127.0.0.1 port %d\n%s"
	    "listen pg_fast\n    bind 127.0.0.1:%d\n"
	    "    option httpchk\n    option redispatch 1\n"
	    "    http-check send meth GET uri-lf /health/primary?host=%%[srv_name]\n"
	    "    http-check expect status 200\n"
	    "    default-server inter 1s fall 2 rise 1 fastinter 100ms "
	    "downinter 100ms on-marked-down shutdown-sessions addr 127.0.0.1 "
	    "port %d\n%s", sock, port_readme, http_port, srv, port_fast,
	    http_port, srv);
	write_file(path, cfg);
	return spawn(argv, log);
}

static void
print_ms_stats(const char *what, int64_t *v, int n)
{
	if (n == 0) {
		printf("      %-34s never\n", what);
		return;
	}
	stats_sort(v, (size_t)n);
	printf("      %-34s median %7.1f ms, max %7.1f ms\n", what,
	    (double)stats_pct(v, (size_t)n, 50) / 1000.0,
	    (double)v[n - 1] / 1000.0);
}

static void
bench_failover(void)
{
	int rounds = env_int("BENCH_ROUNDS", env_int("BENCH_QUICK", 0) == 1 ?
	    2 : 5), round, i;
	bool ha = have("haproxy");
	int npaths = ha ? NPATHS : 1;
	int64_t *first[NPATHS], *down[NPATHS], *up[NPATHS];
	int nfirst[NPATHS] = { 0 }, ndown[NPATHS] = { 0 }, nup[NPATHS] = { 0 };
	long cfail[NPATHS] = { 0 }, wfail[NPATHS] = { 0 }, hang[NPATHS] = { 0 };
	long old[NPATHS] = { 0 }, att[NPATHS] = { 0 };
	int64_t all_down_ms[2] = { -1, -1 };

	for (i = 0; i < NPATHS; i++) {
		first[i] = calloc((size_t)rounds, sizeof(int64_t));
		down[i] = calloc((size_t)rounds, sizeof(int64_t));
		up[i] = calloc((size_t)rounds, sizeof(int64_t));
	}
	printf("\nfailover under load (%d rounds: stop node0 -m fast, promote "
	    "node1; %d clients per path,\neach connecting, writing one row "
	    "and disconnecting every 10 ms)\n", rounds, CLIENTS_PER_PATH);
	if (!ha)
		printf("  (haproxy not installed: no HAProxy rows)\n");
	raise_nofile(4096);
	for (round = 0; round < rounds; round++) {
		struct it_cluster *c = it_cluster_create(1);
		const char *dir = it_cluster_dir(c);
		struct client cl[NPATHS * CLIENTS_PER_PATH];
		struct it_daemon *d;
		struct round r;
		pthread_t wt;
		PGconn *conn;
		char *cfg, listen[128], extra[512], hasock[512], *v;
		int http_port = it_free_port(), n = 0;
		int64_t promoted_us = 0;
		pid_t hpid = 0;

		memset(&r, 0, sizeof(r));
		pthread_mutex_init(&r.lock, NULL);
		r.old_port = it_port(c, 0);
		r.new_port = it_port(c, 1);
		snprintf(r.old_name, sizeof(r.old_name), "127.0.0.1:%d",
		    r.old_port);
		snprintf(r.new_name, sizeof(r.new_name), "127.0.0.1:%d",
		    r.new_port);
		r.p[P_LISTENER].port = it_free_port();
		r.p[P_HA_README].port = it_free_port();
		r.p[P_HA_FAST].port = it_free_port();
		v = it_sql(c, 0, "create table fo_t (i serial, t timestamptz "
		    "default now())");
		free(v);
		it_wait_streaming(c, 0, 1);

		/* The daemon's timings are its defaults but for fast probing
		 * while no primary is known, as in daemon_bench. */
		snprintf(extra, sizeof(extra), "log_level = \"warn\";\n"
		    "check_interval_ms = 500;\nfast_check_interval_ms = 25;\n"
		    "reconnect_max_ms = 5000;\nhttp_listen = \"127.0.0.1:%d\";\n",
		    http_port);
		snprintf(listen, sizeof(listen), "{ role = \"master\"; "
		    "address = \"127.0.0.1:%d\"; }", r.p[P_LISTENER].port);
		cfg = itp_add_listen(it_config(c, "main", extra), listen);
		d = it_daemon_start(cfg, dir);
		free(cfg);
		if (!IT_POLL_UNTIL(port_open(r.p[P_LISTENER].port), 10000))
			exit(1);
		if (ha) {
			hpid = haproxy_start(dir, http_port, c,
			    r.p[P_HA_README].port, r.p[P_HA_FAST].port, hasock,
			    sizeof(hasock));
			r.ha_sock = hasock;
			/* Both backends on node0 before the round starts. */
			if (!IT_POLL_UNTIL(haproxy_state(hasock, "pg_readme",
			    r.old_name) == 2 && haproxy_state(hasock, "pg_fast",
			    r.old_name) == 2 && haproxy_state(hasock,
			    "pg_readme", r.new_name) == 0 && haproxy_state(
			    hasock, "pg_fast", r.new_name) == 0, 20000)) {
				fprintf(stderr, "proxy_bench: HAProxy never "
				    "settled (see %s/haproxy.log)\n", dir);
				exit(1);
			}
			pthread_create(&wt, NULL, watcher_main, &r);
		}
		conn = bench_connect(r.new_port);
		for (i = 0; i < npaths * CLIENTS_PER_PATH; i++) {
			cl[i].r = &r;
			cl[i].path = (enum path)(i % npaths);
			pthread_create(&cl[i].th, NULL, client_main, &cl[i]);
		}
		it_sleep_ms(1000);	/* steady state */

		pthread_mutex_lock(&r.lock);
		r.stop_start_us = stats_now_us();
		pthread_mutex_unlock(&r.lock);
		it_stop(c, 0, "fast");
		pthread_mutex_lock(&r.lock);
		r.stop_done_us = stats_now_us();
		pthread_mutex_unlock(&r.lock);
		promoted_us = bench_promote(conn, r.stop_start_us,
		    60 * 1000000);
		PQfinish(conn);
		it_sleep_ms(AFTER_PROMOTION_MS);
		r.stop = true;
		for (i = 0; i < npaths * CLIENTS_PER_PATH; i++)
			pthread_join(cl[i].th, NULL);
		if (ha)
			pthread_join(wt, NULL);

		printf("  round %d: stop took %" PRId64 " ms, promotion "
		    "finished %" PRId64 " ms after the stop returned\n",
		    round + 1, (r.stop_done_us - r.stop_start_us) / 1000,
		    (promoted_us - r.stop_done_us) / 1000);
		for (i = 0; i < npaths; i++) {
			struct path_round *pr = &r.p[i];

			printf("    %-28s first write on the new primary ", 
			    path_name[i]);
			if (pr->first_new_us != 0) {
				int64_t dt = pr->first_new_us - promoted_us;

				first[i][nfirst[i]++] = dt < 0 ? 0 : dt;
				printf("%+7.1f ms", (double)dt / 1000.0);
			} else
				printf("   never  ");
			printf(" after the promotion; %ld of %ld attempts "
			    "failed (%ld connects, %ld writes, %ld hung > 1 s)",
			    pr->connect_fail + pr->write_fail, pr->attempts,
			    pr->connect_fail, pr->write_fail, pr->hangs);
			if (i != P_LISTENER) {
				if (pr->old_down_us != 0) {
					down[i][ndown[i]++] = pr->old_down_us -
					    r.stop_start_us;
					printf("; old primary DOWN %" PRId64
					    " ms after the stop began",
					    (pr->old_down_us - r.stop_start_us) /
					    1000);
				}
				if (pr->new_up_us != 0 && pr->new_up_us >=
				    promoted_us)
					up[i][nup[i]++] = pr->new_up_us -
					    promoted_us;
			}
			printf("\n");
			if (pr->last_err[0] != '\0')
				printf("      last failure: %s\n", pr->last_err);
			cfail[i] += pr->connect_fail;
			wfail[i] += pr->write_fail;
			hang[i] += pr->hangs;
			old[i] += pr->old_after_stop;
			att[i] += pr->attempts;
		}

		/* Last round: pgbeacond stops; how soon does HAProxy take
		 * every server out? */
		if (ha && round == rounds - 1) {
			int64_t t0 = stats_now_us();
			bool gone[2] = { false, false };
			int k;

			(void)it_daemon_stop(d);
			d = NULL;
			while (stats_now_us() - t0 < 15000000 &&
			    !(gone[0] && gone[1])) {
				for (k = 0; k < 2; k++) {
					const char *be = k ? "pg_fast" :
					    "pg_readme";

					if (!gone[k] && haproxy_state(hasock,
					    be, r.old_name) == 0 &&
					    haproxy_state(hasock, be,
					    r.new_name) == 0) {
						gone[k] = true;
						all_down_ms[k] = (stats_now_us()
						    - t0) / 1000;
					}
				}
				usleep(10000);
			}
		}
		reap(hpid);
		if (d != NULL)
			(void)it_daemon_stop(d);
		pthread_mutex_destroy(&r.lock);
		it_cluster_destroy(c);
		(void)n;
	}
	printf("  => over %d rounds:\n", rounds);
	for (i = 0; i < npaths; i++) {
		printf("    %s: %ld of %ld attempts failed (%ld connects, %ld "
		    "writes, %ld hung > 1 s); %ld writes on the stopped "
		    "primary\n", path_name[i], cfail[i] + wfail[i], att[i],
		    cfail[i], wfail[i], hang[i], old[i]);
		print_ms_stats("promotion -> first write:", first[i],
		    nfirst[i]);
		if (i != P_LISTENER) {
			print_ms_stats("stop began -> old primary DOWN:",
			    down[i], ndown[i]);
			print_ms_stats("promotion -> new primary UP:", up[i],
			    nup[i]);
		}
	}
	if (ha && nfirst[P_LISTENER] > 0 && nfirst[P_HA_FAST] > 0 &&
	    stats_pct(first[P_HA_FAST], (size_t)nfirst[P_HA_FAST], 50) > 0)
		printf("    listener/HAProxy (faster check): promotion -> first "
		    "write, median %.2f; failed attempts %ld vs %ld\n",
		    (double)stats_pct(first[P_LISTENER],
		    (size_t)nfirst[P_LISTENER], 50) /
		    (double)stats_pct(first[P_HA_FAST],
		    (size_t)nfirst[P_HA_FAST], 50),
		    cfail[P_LISTENER] + wfail[P_LISTENER],
		    cfail[P_HA_FAST] + wfail[P_HA_FAST]);
	printf("    targets (listener): median <= 100 ms, max < 1 s, 0 failed "
	    "connects, 0 writes on a non-primary\n");
	if (ha)
		printf("  pgbeacond stopped: HAProxy marked every server DOWN "
		    "after %" PRId64 " ms (README's check), %" PRId64 " ms "
		    "(faster check)\n", all_down_ms[0], all_down_ms[1]);
	for (i = 0; i < NPATHS; i++) {
		free(first[i]);
		free(down[i]);
		free(up[i]);
	}
}

/* --- memory per relayed connection ----------------------------------------- */

/* Opens n libpq connections to port; how many succeeded. */
static int
open_conns(PGconn **conns, int n, int port)
{
	char ci[160];
	int i, ok = 0;

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres sslmode=disable connect_timeout=30", port);
	for (i = 0; i < n; i++) {
		conns[i] = PQconnectdb(ci);
		ok += PQstatus(conns[i]) == CONNECTION_OK;
	}
	return ok;
}

static void
close_conns(PGconn **conns, int n)
{
	int i;

	for (i = 0; i < n; i++)
		PQfinish(conns[i]);
}

/* Prints RSS per connection of pid with n connections to port; returns
 * it in KiB (0 when unknown). */
static double
measure(const char *what, int pid, int port, int n, struct it_cluster *c)
{
	PGconn **conns = calloc((size_t)n, sizeof(*conns));
	long rss0, anon0, rss1, anon1;
	double per;
	int ok;

	it_sleep_ms(500);
	if (!proc_mem(pid, &rss0, &anon0)) {
		printf("  %-22s (no process)\n", what);
		free(conns);
		return 0;
	}
	ok = open_conns(conns, n, port);
	it_sleep_ms(500);
	(void)proc_mem(pid, &rss1, &anon1);
	per = ok > 0 ? (double)(rss1 - rss0) / ok : 0.0;
	printf("  %-22s %4d idle connections: RSS %6ld -> %6ld KiB, "
	    "%5.2f KiB per connection (own memory %5.2f KiB)\n", what, ok,
	    rss0, rss1, per, ok > 0 ? (double)(anon1 - anon0) / ok : 0.0);
	close_conns(conns, n);
	free(conns);
	/* Wait for the server's backends to go before the next one. */
	(void)IT_POLL_UNTIL(it_sql_is(c, 0, "select count(*) < 20 from "
	    "pg_stat_activity where backend_type = 'client backend'", "t"),
	    60000);
	return per;
}

static void
bench_memory(void)
{
	int n = env_int("BENCH_CONNS", env_int("BENCH_QUICK", 0) == 1 ? 200 :
	    1000);
	double mine, theirs;
	struct it_cluster *c;
	struct it_daemon *d;
	const char *dir;
	char *cfg, *v, listen[128], path[512], log[512], text[2048];
	char *bdir;
	int lport, hport, bport, p0;
	pid_t hpid = 0, bpid = 0;

	printf("\nmemory per relayed connection (RSS with N idle relayed "
	    "connections minus RSS with none,\ndivided by N; the client, "
	    "the relays and the server on the same host)\n");
	raise_nofile((rlim_t)(4 * n + 256));
	c = it_cluster_create(0);
	dir = it_cluster_dir(c);
	p0 = it_port(c, 0);
	snprintf(text, sizeof(text), "alter system set max_connections = %d",
	    n + 100);
	v = it_sql(c, 0, text);
	free(v);
	it_stop(c, 0, "fast");
	it_start(c, 0);

	lport = it_free_port();
	snprintf(listen, sizeof(listen), "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; max_clients = %d; }", lport, n + 10);
	cfg = itp_add_listen(it_config(c, "main", "log_level = \"warn\";\n"),
	    listen);
	d = it_daemon_start(cfg, dir);
	free(cfg);
	if (!IT_POLL_UNTIL(port_open(lport), 10000))
		exit(1);
	(void)IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(d), "main",
	    "master", p0), 10000);
	mine = measure("pgbeacond listener", it_daemon_pid(d), lport, n, c);
	(void)it_daemon_stop(d);

	if (have("haproxy")) {
		const char *argv[] = { "haproxy", "-f", path, "-db", NULL };

		hport = it_free_port();
		snprintf(path, sizeof(path), "%s/haproxy-mem.cfg", dir);
		snprintf(log, sizeof(log), "%s/haproxy-mem.log", dir);
		snprintf(text, sizeof(text), "global\n    maxconn %d\n"
		    "defaults\n    mode tcp\n    timeout connect 5s\n"
		    "    timeout client 1h\n    timeout server 1h\n"
		    "listen pg\n    bind 127.0.0.1:%d\n"
		    "    server db1 127.0.0.1:%d\n", 2 * n + 100, hport, p0);
		write_file(path, text);
		hpid = spawn(argv, log);
		if (IT_POLL_UNTIL(port_open(hport), 10000)) {
			theirs = measure("HAProxy (TCP mode)", (int)hpid,
			    hport, n, c);
			if (mine > 0 && theirs > 0)
				printf("  listener/HAProxy RSS per connection: "
				    "%.2f\n", mine / theirs);
		}
		reap(hpid);
	} else
		printf("  (haproxy not installed)\n");

	if (have("pgbouncer")) {
		const char *argv[] = { "pgbouncer", "-u", "postgres", path, NULL };

		bdir = it_tmpdir("bench-bouncer");

		/* pgbouncer will not run as root: it drops to postgres. */
		chmod(bdir, 0777);
		bport = it_free_port();
		snprintf(path, sizeof(path), "%s/pgbouncer.ini", bdir);
		snprintf(log, sizeof(log), "%s/pgbouncer.log", bdir);
		snprintf(text, sizeof(text), "[databases]\n"
		    "postgres = host=127.0.0.1 port=%d dbname=postgres "
		    "user=postgres\n"
		    "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\n"
		    "unix_socket_dir =\nauth_type = any\npool_mode = session\n"
		    "max_client_conn = %d\ndefault_pool_size = 5\n"
		    "ignore_startup_parameters = extra_float_digits\n",
		    p0, bport, n + 100);
		write_file(path, text);
		chmod(path, 0644);
		bpid = spawn(argv, log);
		if (IT_POLL_UNTIL(port_open(bport), 10000))
			measure("pgbouncer (idle)", (int)bpid, bport, n, c);
		else
			printf("  pgbouncer did not start (see %s)\n", log);
		reap(bpid);
		it_rmdir_all(bdir);
		free(bdir);
	} else
		printf("  (pgbouncer not installed)\n");
	printf("  target (listener): <= 2 x the buffers' high watermark "
	    "(2 x 256 KiB) per connection\n");
	it_cluster_destroy(c);
}

int
main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("connection listener benchmark on %ld cores; clients, relays "
	    "and servers share them\n", sysconf(_SC_NPROCESSORS_ONLN));
	if (only == NULL || strcmp(only, "memory") == 0)
		bench_memory();
	if (only == NULL || strcmp(only, "failover") == 0)
		bench_failover();
	return 0;
}
