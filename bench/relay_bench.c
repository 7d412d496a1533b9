/*
 * relay_bench.c - what a byte relay costs, by method: the same pgbench -S
 * traffic and the same COPY out relayed by a minimal relay process in
 * each of three ways, on one throwaway server, in the same run:
 *
 *   bev     libevent socket bufferevents, as pgbeacond's listeners relay
 *           (daemon/proxy_relay.c: read callback, a write at once when
 *           nothing is queued on the other side, the rest queued, a 256
 *           KiB high watermark that stops reading the other side)
 *   raw     plain events and read(2)/write(2) through an evbuffer (no
 *           bufferevent, no ioctl(FIONREAD) before each read): the floor
 *           of a copying relay on libevent
 *   splice  splice(2) from the socket into a pipe and from the pipe into
 *           the other socket, no copy through user space
 *
 * For each: tps (pgbench -S -c4 -j2 -T$BENCH_SECONDS) and MB/s of a COPY
 * of $BENCH_COPY_MB MB out of the server (psql \copy to /dev/null), and
 * the relay process's own CPU time (schedstat of each of its threads, in ns) per
 * transaction and per MB, with the system calls per transaction when
 * perf can count them.  CPU per transaction does not depend on how busy
 * the machine is; tps does.
 *
 *   BENCH_QUICK     1: -T5 and a 20 MB COPY
 *   BENCH_SECONDS   pgbench -T (default 15, quick 5)
 *   BENCH_COPY_MB   COPY size (default 100, quick 20)
 *
 *   relay_bench [bev|raw|splice]...  only those methods
 *
 * Not a test: nothing here passes or fails.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "../tests/integration/support/itest.h"

#define HIGH_WATER	(256 * 1024)
#define PIPE_SIZE	(256 * 1024)
#define PG_BIN		"/usr/lib/postgresql/15/bin"

enum method { M_BEV, M_RAW, M_SPLICE };

static const char *const method_name[] = { "bev", "raw", "splice" };

/* --- the relay (runs in a child process) ------------------------------------ */

struct side;

/* One relayed connection, both ways.  Owned by the relay, freed when
 * either side closes. */
struct pair {
	enum method		 m;
	int			 fd[2];		/* owned: client, server */
	struct bufferevent	*bev[2];	/* bev: owned, own the fds */
	struct event		*rd[2];		/* raw, splice: owned */
	struct event		*wr[2];		/* raw, splice: owned */
	struct evbuffer		*q[2];		/* raw: queued towards fd[i] */
	int			 pipe[2][2];	/* splice: towards fd[i] */
	size_t			 inpipe[2];	/* splice: bytes in pipe[i] */
};

struct relay {
	struct event_base	*base;
	enum method		 m;
	int			 server_port;
};

static void
pair_free(struct pair *p)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (p->bev[i] != NULL)
			bufferevent_free(p->bev[i]);
		else if (p->fd[i] >= 0)
			close(p->fd[i]);
		if (p->rd[i] != NULL)
			event_free(p->rd[i]);
		if (p->wr[i] != NULL)
			event_free(p->wr[i]);
		if (p->q[i] != NULL)
			evbuffer_free(p->q[i]);
		if (p->pipe[i][0] >= 0) {
			close(p->pipe[i][0]);
			close(p->pipe[i][1]);
		}
	}
	free(p);
}

/* bev: as daemon/proxy_relay.c's proxy_pump(). */
static void
bev_read_cb(struct bufferevent *src, void *arg)
{
	struct pair *p = arg;
	struct bufferevent *dst = src == p->bev[0] ? p->bev[1] : p->bev[0];
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);

	if (evbuffer_get_length(out) == 0)
		(void)evbuffer_write(in, bufferevent_getfd(dst));
	evbuffer_add_buffer(out, in);
	if (evbuffer_get_length(out) >= HIGH_WATER)
		bufferevent_disable(src, EV_READ);
}

static void
bev_write_cb(struct bufferevent *bev, void *arg)
{
	struct pair *p = arg;

	bufferevent_enable(bev == p->bev[0] ? p->bev[1] : p->bev[0], EV_READ);
}

static void
bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	pair_free(arg);
}

/* raw and splice: i is the side that became readable, j = 1 - i. */
static void
raw_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *p = arg;
	int i = fd == p->fd[0] ? 0 : 1, j = 1 - i;
	struct evbuffer *q = p->q[j];
	bool was_empty = evbuffer_get_length(q) == 0;
	struct evbuffer_iovec v;
	ssize_t n;

	(void)what;
	if (evbuffer_reserve_space(q, 65536, &v, 1) < 1) {
		pair_free(p);
		return;
	}
	n = read(fd, v.iov_base, v.iov_len);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		pair_free(p);
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(q, &v, 1);
	if (was_empty)
		(void)evbuffer_write(q, p->fd[j]);
	if (evbuffer_get_length(q) > 0)
		event_add(p->wr[j], NULL);
	if (evbuffer_get_length(q) >= HIGH_WATER)
		event_del(p->rd[i]);
}

static void
raw_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *p = arg;
	int j = fd == p->fd[0] ? 0 : 1, i = 1 - j;

	(void)what;
	if (evbuffer_write(p->q[j], fd) < 0 && errno != EAGAIN) {
		pair_free(p);
		return;
	}
	if (evbuffer_get_length(p->q[j]) == 0)
		event_del(p->wr[j]);
	if (evbuffer_get_length(p->q[j]) < HIGH_WATER / 2)
		event_add(p->rd[i], NULL);
}

/* Empties pipe j into fd[j] as far as it takes; false on an error. */
static bool
splice_out(struct pair *p, int j)
{
	while (p->inpipe[j] > 0) {
		ssize_t n = splice(p->pipe[j][0], NULL, p->fd[j], NULL,
		    p->inpipe[j], SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (n < 0)
			return errno == EAGAIN;
		p->inpipe[j] -= (size_t)n;
	}
	return true;
}

static void
splice_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *p = arg;
	int i = fd == p->fd[0] ? 0 : 1, j = 1 - i;
	ssize_t n;

	(void)what;
	n = splice(fd, NULL, p->pipe[j][1], NULL, PIPE_SIZE,
	    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		pair_free(p);
		return;
	}
	p->inpipe[j] += (size_t)n;
	if (!splice_out(p, j)) {
		pair_free(p);
		return;
	}
	if (p->inpipe[j] > 0) {
		/* fd[j] is full: stop reading fd[i] until the pipe empties */
		event_del(p->rd[i]);
		event_add(p->wr[j], NULL);
	}
}

static void
splice_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pair *p = arg;
	int j = fd == p->fd[0] ? 0 : 1, i = 1 - j;

	(void)what;
	if (!splice_out(p, j)) {
		pair_free(p);
		return;
	}
	if (p->inpipe[j] == 0) {
		event_del(p->wr[j]);
		event_add(p->rd[i], NULL);
	}
}

static void
nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct relay *r = arg;
	struct sockaddr_in sin;
	struct pair *p;
	int i, s;

	(void)evl;
	(void)sa;
	(void)salen;
	/* A blocking connect on loopback: this bench relay has nothing else
	 * to serve meanwhile. */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)r->server_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		if (s >= 0)
			close(s);
		close(fd);
		return;
	}
	p->m = r->m;
	p->fd[0] = fd;
	p->fd[1] = s;
	p->pipe[0][0] = p->pipe[0][1] = p->pipe[1][0] = p->pipe[1][1] = -1;
	for (i = 0; i < 2; i++) {
		evutil_make_socket_nonblocking(p->fd[i]);
		nodelay(p->fd[i]);
	}
	for (i = 0; i < 2; i++) {
		switch (r->m) {
		case M_BEV:
			p->bev[i] = bufferevent_socket_new(r->base, p->fd[i],
			    BEV_OPT_CLOSE_ON_FREE);
			bufferevent_setcb(p->bev[i], bev_read_cb, bev_write_cb,
			    bev_event_cb, p);
			bufferevent_setwatermark(p->bev[i], EV_WRITE,
			    HIGH_WATER / 2, 0);
			bufferevent_enable(p->bev[i], EV_READ | EV_WRITE);
			break;
		case M_RAW:
			p->q[i] = evbuffer_new();
			p->rd[i] = event_new(r->base, p->fd[i],
			    EV_READ | EV_PERSIST, raw_read_cb, p);
			p->wr[i] = event_new(r->base, p->fd[i],
			    EV_WRITE | EV_PERSIST, raw_write_cb, p);
			event_add(p->rd[i], NULL);
			break;
		case M_SPLICE:
			if (pipe2(p->pipe[i], O_NONBLOCK | O_CLOEXEC) != 0) {
				p->pipe[i][0] = p->pipe[i][1] = -1;
				pair_free(p);
				return;
			}
			(void)fcntl(p->pipe[i][1], F_SETPIPE_SZ, PIPE_SIZE);
			p->rd[i] = event_new(r->base, p->fd[i],
			    EV_READ | EV_PERSIST, splice_read_cb, p);
			p->wr[i] = event_new(r->base, p->fd[i],
			    EV_WRITE | EV_PERSIST, splice_write_cb, p);
			event_add(p->rd[i], NULL);
			break;
		}
	}
}

/* The relay's process: listens on listen_port until killed. */
static void
relay_main(enum method m, int listen_port, int server_port, int ready_fd)
{
	struct relay r = { .m = m, .server_port = server_port };
	struct sockaddr_in sin;
	struct evconnlistener *evl;

	signal(SIGPIPE, SIG_IGN);
	if ((r.base = event_base_new()) == NULL)
		_exit(1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)listen_port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	evl = evconnlistener_new_bind(r.base, accept_cb, &r,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (evl == NULL)
		_exit(1);
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	close(ready_fd);
	event_base_dispatch(r.base);
	_exit(0);
}

/* --- the driver -------------------------------------------------------------- */

/* CPU time of every thread of pid so far, in seconds (schedstat: ns). */
static double
cpu_s(pid_t pid)
{
	char cmd[128];
	double v;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "cat /proc/%d/task/*/schedstat 2>/dev/null",
	    (int)pid);
	if ((f = popen(cmd, "r")) == NULL)
		return 0;
	v = 0;
	{
		unsigned long long ns;
		char line[256];

		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "%llu", &ns) == 1)
				v += (double)ns / 1e9;
	}
	pclose(f);
	return v;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs cmd, returns the first number after key in its output (0 if none). */
static double
run_get(const char *cmd, const char *key)
{
	char line[512];
	double v = 0;
	FILE *f = popen(cmd, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *k = strstr(line, key);

		if (k != NULL && v == 0)
			v = strtod(k + strlen(key), NULL);
	}
	pclose(f);
	return v;
}

struct result {
	double	tps, txns, cpu_txn_us, sys_txn;
	double	mbps, cpu_mb_ms;
};

static double
syscalls_per_txn(pid_t pid, int port, const char *dir)
{
	char cmd[1024], out[512];
	double n, calls = 0;
	FILE *f;
	pid_t perf;

	if (system("perf stat -e raw_syscalls:sys_enter true >/dev/null "
	    "2>&1") != 0)
		return -1;
	snprintf(out, sizeof(out), "%s/perf.out", dir);
	unlink(out);
	if ((perf = fork()) == 0) {
		char p[16];

		snprintf(p, sizeof(p), "%d", (int)pid);
		execlp("perf", "perf", "stat", "-x,", "-e",
		    "raw_syscalls:sys_enter", "-p", p, "-o", out, (char *)NULL);
		_exit(127);
	}
	it_sleep_ms(300);
	snprintf(cmd, sizeof(cmd), PG_BIN "/pgbench -h 127.0.0.1 -p %d -n -S "
	    "-c4 -j2 -T3 postgres 2>/dev/null", port);
	n = run_get(cmd, "actually processed: ");
	kill(perf, SIGINT);
	waitpid(perf, NULL, 0);
	if ((f = fopen(out, "r")) != NULL) {
		char line[512];

		while (fgets(line, sizeof(line), f) != NULL)
			if (strstr(line, "raw_syscalls") != NULL)
				calls = strtod(line, NULL);
		fclose(f);
	}
	return n > 0 && calls > 0 ? calls / n : -1;
}

static void
measure(enum method m, int server_port, int secs, int copy_mb,
    const char *dir, struct result *res)
{
	int lport = it_free_port(), ready[2];
	double c0, c1;
	char cmd[1024], buf[1];
	double t0, t1;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (pipe(ready) != 0)
		exit(1);
	if ((pid = fork()) == 0) {
		close(ready[0]);
		relay_main(m, lport, server_port, ready[1]);
	}
	close(ready[1]);
	if (read(ready[0], buf, 1) != 1) {
		fprintf(stderr, "relay_bench: the %s relay did not start\n",
		    method_name[m]);
		exit(1);
	}
	close(ready[0]);

	snprintf(cmd, sizeof(cmd), PG_BIN "/pgbench -h 127.0.0.1 -p %d -n -S "
	    "-c4 -j2 -T%d postgres 2>/dev/null", lport, secs);
	c0 = cpu_s(pid);
	{
		char line[512];
		FILE *f = popen(cmd, "r");

		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			char *k;

			if ((k = strstr(line, "actually processed: ")) != NULL)
				res->txns = strtod(k + 20, NULL);
			if (strncmp(line, "tps = ", 6) == 0)
				res->tps = strtod(line + 6, NULL);
		}
		if (f != NULL)
			pclose(f);
	}
	c1 = cpu_s(pid);
	if (res->txns > 0)
		res->cpu_txn_us = (c1 - c0) * 1e6 / res->txns;
	res->sys_txn = syscalls_per_txn(pid, lport, dir);

	snprintf(cmd, sizeof(cmd), PG_BIN "/psql -X -q -h 127.0.0.1 -p %d "
	    "-c '\\copy copy_b to /dev/null' postgres", lport);
	c0 = cpu_s(pid);
	t0 = now_s();
	if (system(cmd) != 0)
		fprintf(stderr, "relay_bench: COPY through %s failed\n",
		    method_name[m]);
	t1 = now_s();
	c1 = cpu_s(pid);
	res->mbps = copy_mb / (t1 - t0);
	res->cpu_mb_ms = (c1 - c0) * 1e3 / copy_mb;

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static int
env_int(const char *name, int def)
{
	const char *v = getenv(name);

	return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

int
main(int argc, char **argv)
{
	bool quick = env_int("BENCH_QUICK", 0) == 1;
	int secs = env_int("BENCH_SECONDS", quick ? 5 : 15);
	int copy_mb = env_int("BENCH_COPY_MB", quick ? 20 : 100);
	bool want[3] = { argc <= 1, argc <= 1, argc <= 1 };
	struct it_cluster *c;
	struct result r[3];
	char cmd[1024], la[64] = "";
	double direct_tps;
	FILE *f;
	int i, k, port;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc; i++)
		for (k = 0; k < 3; k++)
			want[k] |= strcmp(argv[i], method_name[k]) == 0;
	if ((f = fopen("/proc/loadavg", "r")) != NULL) {
		if (fgets(la, sizeof(la), f) == NULL)
			la[0] = '\0';
		fclose(f);
	}
	printf("relay methods on %ld cores, pgbench -S -c4 -j2 -T%d, COPY %d "
	    "MB; load average %.14s\n", sysconf(_SC_NPROCESSORS_ONLN), secs,
	    copy_mb, la);
	if ((c = it_cluster_create(0)) == NULL) {
		fprintf(stderr, "relay_bench: cannot create a cluster: %s\n",
		    it_last_error());
		return 1;
	}
	port = it_port(c, 0);
	snprintf(cmd, sizeof(cmd), "PGUSER=postgres " PG_BIN "/pgbench -h "
	    "127.0.0.1 -p %d -i -s 10 -q postgres >/dev/null 2>&1", port);
	if (system(cmd) != 0)
		fprintf(stderr, "relay_bench: pgbench -i failed\n");
	snprintf(cmd, sizeof(cmd), "create table copy_b as select "
	    "repeat('x', 1000) as t from generate_series(1, %d * 1000)",
	    copy_mb);
	free(it_sql(c, 0, cmd));
	setenv("PGUSER", "postgres", 1);
	snprintf(cmd, sizeof(cmd), PG_BIN "/pgbench -h 127.0.0.1 -p %d -n -S "
	    "-c4 -j2 -T%d postgres 2>/dev/null", port, secs);
	direct_tps = run_get(cmd, "tps = ");
	printf("  %-7s %8.0f tps\n", "direct", direct_tps);
	for (k = 0; k < 3; k++) {
		if (!want[k])
			continue;
		measure((enum method)k, port, secs, copy_mb, it_cluster_dir(c),
		    &r[k]);
		printf("  %-7s %8.0f tps (%.2f x direct), CPU %5.1f us/txn, ",
		    method_name[k], r[k].tps, direct_tps > 0 ? r[k].tps /
		    direct_tps : 0, r[k].cpu_txn_us);
		if (r[k].sys_txn > 0)
			printf("%4.1f syscalls/txn, ", r[k].sys_txn);
		printf("COPY %4.0f MB/s, CPU %5.2f ms/MB\n", r[k].mbps,
		    r[k].cpu_mb_ms);
	}
	if (want[M_BEV])
		for (k = 1; k < 3; k++)
			if (want[k] && r[M_BEV].cpu_txn_us > 0 &&
			    r[M_BEV].cpu_mb_ms > 0)
				printf("  %s/bev: CPU per transaction %.2f, "
				    "per MB %.2f\n", method_name[k],
				    r[k].cpu_txn_us / r[M_BEV].cpu_txn_us,
				    r[k].cpu_mb_ms / r[M_BEV].cpu_mb_ms);
	it_cluster_destroy(c);
	return 0;
}
