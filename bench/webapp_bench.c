/*
 * webapp_bench.c - the example service under load (wrk, 50 concurrent
 * HTTP clients, 2 threads), in one run:
 *
 *   pooled   GET /simple: a context, INSERT + SELECT through a lazily
 *            begun pooled session, commit at the end of the request
 *   fresh    GET /fresh: the same transaction on a new libpq connection
 *            per request (PQconnectStart, driven by the same event loop)
 *   mixed    /simple again while 5 other clients keep /slow?ms=200
 *            requests running: if the loop ever blocked on a query, the
 *            fast requests' p99 would include those 200 ms
 *
 * Requests per second and p50/p99 latency for each, and the ratio
 * pooled/fresh.  Not a test: nothing here passes or fails.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/integration/support/itest.h"

#define DURATION	"10s"

static const char *duration = DURATION;

struct wrk_out {
	double	rps;
	double	p50_ms;
	double	p99_ms;
	long	non2xx;
	long	errors;
};

static int
free_port(void)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof sin;
	int			fd, port;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
		perror("webapp_bench: port");
		exit(1);
	}
	port = ntohs(sin.sin_port);
	close(fd);
	return (port);
}

/* "1.23ms", "850.00us", "2.10s" -> milliseconds. */
static double
wrk_ms(const char *s)
{
	double	v = atof(s);

	if (strstr(s, "us") != NULL)
		return (v / 1000.0);
	if (strstr(s, "ms") != NULL)
		return (v);
	if (strstr(s, "s") != NULL)
		return (v * 1000.0);
	return (v);
}

/* Runs wrk on url with conns connections; parses its --latency output. */
static int
run_wrk(const char *url, int conns, struct wrk_out *o)
{
	char	 cmd[512], line[512], unit[32];
	FILE	*f;
	long	 a, b, c, d;

	memset(o, 0, sizeof *o);
	snprintf(cmd, sizeof cmd, "wrk -t2 -c%d -d%s --latency '%s' 2>&1",
	    conns, duration, url);
	if ((f = popen(cmd, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, " Requests/sec: %lf", &o->rps) == 1)
			continue;
		if (sscanf(line, " 50%% %31s", unit) == 1)
			o->p50_ms = wrk_ms(unit);
		else if (sscanf(line, " 99%% %31s", unit) == 1)
			o->p99_ms = wrk_ms(unit);
		else if (sscanf(line, " Non-2xx or 3xx responses: %ld",
		    &o->non2xx) == 1)
			continue;
		else if (sscanf(line, " Socket errors: connect %ld, read %ld,"
		    " write %ld, timeout %ld", &a, &b, &c, &d) == 4)
			o->errors = a + b + c + d;
	}
	return (pclose(f) == 0 && o->rps > 0 ? 0 : -1);
}

static void
print(const char *name, const struct wrk_out *o)
{
	printf("  %-8s %9.0f req/s   p50 %7.2f ms   p99 %7.2f ms   non-2xx %ld"
	    "   socket errors %ld\n", name, o->rps, o->p50_ms, o->p99_ms,
	    o->non2xx, o->errors);
}

static bool
healthy(int port)
{
	char	cmd[256];

	snprintf(cmd, sizeof cmd, "wrk -t1 -c1 -d1s"
	    " http://127.0.0.1:%d/health >/dev/null 2>&1", port);
	return (system(cmd) == 0);
}

int
main(void)
{
	struct it_cluster	*c;
	struct it_daemon	*d;
	struct wrk_out		 pooled, fresh, mixed;
	const char		*build = getenv("BUILD");
	char			*cfg, bin[256], port[16], url[256], log[512];
	pid_t			 pid, bg;
	int			 p, fd, st;

	if (system("command -v wrk >/dev/null 2>&1") != 0) {
		printf("  wrk not installed (apt-get install wrk): skipped\n");
		return (0);
	}
	c = it_cluster_create(0);
	cfg = it_config(c, "main", NULL);
	d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);

	p = free_port();
	snprintf(bin, sizeof bin, "%s/examples/webapp",
	    build != NULL && *build != '\0' ? build : "build");
	snprintf(port, sizeof port, "%d", p);
	snprintf(log, sizeof log, "%s/webapp.log", it_cluster_dir(c));
	if ((pid = fork()) == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "-p", port, "-s", it_daemon_socket(d), "-c",
		    "user=postgres dbname=postgres application_name=webapp",
		    "-n", "20", (char *)NULL);
		_exit(127);
	}
	if (!IT_POLL_UNTIL(healthy(p), 20000)) {
		fprintf(stderr, "webapp_bench: the service did not start\n");
		return (1);
	}
	/* Warm the pool and the daemon's answer. */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/simple?tag=warm", p);
	duration = "2s";
	(void)run_wrk(url, 20, &pooled);
	duration = DURATION;
	printf("  50 HTTP clients, wrk -t2 -d%s, pool of 20 connections\n",
	    DURATION);

	snprintf(url, sizeof url, "http://127.0.0.1:%d/simple?tag=bench", p);
	if (run_wrk(url, 50, &pooled) == 0)
		print("pooled", &pooled);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/fresh?tag=bench", p);
	if (run_wrk(url, 50, &fresh) == 0)
		print("fresh", &fresh);
	if (pooled.rps > 0 && fresh.rps > 0)
		printf("  pooled/fresh: %.1fx the requests per second,"
		    " p99 %.1fx lower\n", pooled.rps / fresh.rps,
		    pooled.p99_ms > 0 ? fresh.p99_ms / pooled.p99_ms : 0);

	/* Fast requests beside slow ones. */
	if ((bg = fork()) == 0) {
		char	surl[256];

		snprintf(surl, sizeof surl,
		    "http://127.0.0.1:%d/slow?tag=benchslow&ms=200", p);
		fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		execlp("wrk", "wrk", "-t1", "-c5", "-d12s", surl, (char *)NULL);
		_exit(127);
	}
	it_sleep_ms(500);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/simple?tag=bench2", p);
	if (run_wrk(url, 45, &mixed) == 0) {
		print("mixed", &mixed);
		printf("  (the same /simple while 5 clients run 200 ms"
		    " statements: p99 stays below 200 ms when the loop never"
		    " blocks)\n");
	}
	waitpid(bg, &st, 0);

	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	printf("  service exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) :
	    128 + WTERMSIG(st));
	it_daemon_stop(d);
	it_cluster_destroy(c);
	return (0);
}
