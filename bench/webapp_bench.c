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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/integration/support/itest.h"
#include "../tests/integration/support/spawn.h"
#include "../tests/integration/support/webapp_util.h"

#define DURATION	"10s"

static const char *duration = DURATION;

struct wrk_out {
	double	rps;
	double	p50_ms;
	double	p99_ms;
	long	non2xx;
	long	errors;
};

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
	if ((f = it_popen(cmd)) == NULL)
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
	return (it_pclose(f) == 0 && o->rps > 0 ? 0 : -1);
}

static void
print(const char *name, const struct wrk_out *o)
{
	printf("  %-8s %9.0f req/s   p50 %7.2f ms   p99 %7.2f ms   non-2xx %ld"
	    "   socket errors %ld\n", name, o->rps, o->p50_ms, o->p99_ms,
	    o->non2xx, o->errors);
}

int
main(void)
{
	struct it_cluster	*c;
	struct it_daemon	*d;
	struct wrk_out		 pooled, fresh, mixed;
	struct wa_proc		 app;
	const char		*wrk[] = { "wrk", "-t1", "-c5", "-d12s", NULL,
	    NULL };
	char			*cfg, url[256], surl[256];
	pid_t			 bg;
	int			 p;

	if (it_system("command -v wrk >/dev/null 2>&1") != 0) {
		printf("  wrk not installed (apt-get install wrk): skipped\n");
		return (0);
	}
	c = it_cluster_create(0);
	cfg = it_config(c, "main", NULL);
	d = it_daemon_start(cfg, it_cluster_dir(c));
	free(cfg);

	wa_start(&app, it_daemon_socket(d), it_cluster_dir(c),
	    "user=postgres dbname=postgres application_name=webapp", 20);
	p = app.port;
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
	snprintf(surl, sizeof surl,
	    "http://127.0.0.1:%d/slow?tag=benchslow&ms=200", p);
	wrk[4] = surl;
	if ((bg = it_spawn_argv(wrk, "/dev/null")) == -1)
		perror("webapp_bench: wrk");
	it_sleep_ms(500);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/simple?tag=bench2", p);
	if (run_wrk(url, 45, &mixed) == 0) {
		print("mixed", &mixed);
		printf("  (the same /simple while 5 clients run 200 ms"
		    " statements: p99 stays below 200 ms when the loop never"
		    " blocks)\n");
	}
	if (bg != -1)
		it_wait_pid(bg, -1, NULL);

	printf("  service exit status %d\n", wa_stop(&app));
	it_daemon_stop(d);
	it_cluster_destroy(c);
	return (0);
}
