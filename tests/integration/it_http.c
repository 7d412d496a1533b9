/*
 * it_http.c - pgbeacond's HTTP listener against real PostgreSQL: the
 * pg-status endpoints in plain and JSON mode before and after a failover,
 * 404s, ?cluster= with two clusters, /v1/resolve and /v1/status,
 * /metrics against STATUS,
 * health checks, bad requests, the Unix-socket form, and the request
 * sequence of a pg-status user.
 *
 * The HTTP client here is a few lines over a socket: one request per
 * connection ("Connection: close"), read to EOF, so every answer is whole.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "support/daemon_util.h"
#include "support/http.h"
#include "support/spawn.h"
#include "../check_main.h"

#define HTTP_MS		5000	/* one HTTP exchange */

/* Per-test state, torn down by the checked fixture. */
static struct it_cluster	*cl, *cl2;
static struct it_daemon		*dmn;
static char			 target[256];	/* "127.0.0.1:P" or a path */

/* One answer. */
struct resp {
	int	 status;	/* 0: no answer */
	char	 ctype[128];	/* Content-Type, "" when none */
	char	*body;		/* owned, NUL-terminated */
	size_t	 len;
};

static void
teardown(void)
{
	it_daemon_kill(dmn);
	dmn = NULL;
	it_cluster_destroy(cl);
	cl = NULL;
	it_cluster_destroy(cl2);
	cl2 = NULL;
}

static void
resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Sends raw bytes and reads the answer to EOF; the whole answer, head
 * included, is returned in r->body (r->status parsed when it is HTTP). */
static bool
http_raw(const char *t, const char *request, size_t reqlen, struct resp *r)
{
	int	st;

	memset(r, 0, sizeof(*r));
	st = it_http_raw(t, request, reqlen, HTTP_MS, &r->body, &r->len);
	if (st < 0)
		return false;
	r->status = st;
	return r->len > 0;
}

/* GET path, optionally with "Accept: application/json"; the body alone
 * in r->body.  False when no HTTP answer came. */
static bool
http_get(const char *path, bool json, struct resp *r)
{
	char	 req[2048], *sep, *ct;
	size_t	 head;
	int	 n;

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n"
	    "Connection: close\r\n%s\r\n", path,
	    json ? "Accept: application/json\r\n" : "");
	if (!http_raw(target, req, (size_t)n, r) || r->status == 0)
		return false;
	if ((sep = strstr(r->body, "\r\n\r\n")) == NULL)
		return false;
	*sep = '\0';
	if ((ct = strcasestr(r->body, "\r\nContent-Type: ")) != NULL)
		sscanf(ct + 16, "%127[^\r]", r->ctype);
	head = (size_t)(sep + 4 - r->body);
	memmove(r->body, sep + 4, r->len - head + 1);
	r->len -= head;
	return true;
}

/* GET path and assert the status; the body (caller frees). */
static char *
get_expect(const char *path, bool json, int status)
{
	struct resp	 r;
	char		*body;

	ITD_ASSERT(dmn, http_get(path, json, &r), "GET %s: no answer", path);
	ITD_ASSERT(dmn, r.status == status, "GET %s: status %d, want %d: %s",
	    path, r.status, status, r.body);
	body = r.body;
	r.body = NULL;
	return body;
}

/* The port of a /v1/resolve answer at path, or -1 (404, no answer);
 * *status gets the status. */
static int
v1_port(const char *path, int *status)
{
	struct resp	 r;
	json_object	*j, *port;
	int		 p = -1;

	*status = 0;
	if (!http_get(path, false, &r))
		return -1;
	*status = r.status;
	if (r.status == 200 && (j = json_tokener_parse(r.body)) != NULL) {
		if (json_object_object_get_ex(j, "port", &port))
			p = json_object_get_int(port);
		json_object_put(j);
	}
	resp_free(&r);
	return p;
}

/*
 * GET path, a pg-status endpoint, with Accept: application/json: its
 * body must be pg-status's, {"host": "127.0.0.1"} or {"host": null}, so
 * it has no port.  The port comes from the same question asked of
 * /v1/resolve (role = the path's name, same parameters).  Returns that
 * port, -1 when both say no host, -2 when the two disagree (the
 * topology moved in between: pollers ask again); *status gets the
 * pg-status endpoint's status.
 */
static int
json_port(const char *path, int *status)
{
	struct resp	 r;
	char		 v1[512];
	const char	*q;
	int		 p, v1_status;
	bool		 ok;

	*status = 0;
	if (!http_get(path, true, &r))
		return -2;
	*status = r.status;
	ok = (r.status == 200 && strcmp(r.body, "{\"host\": \"127.0.0.1\"}") ==
	    0) || (r.status == 404 && strcmp(r.body, "{\"host\": null}") == 0);
	ITD_ASSERT(dmn, ok, "%s: not a pg-status answer: %d %s", path,
	    r.status, r.body);
	resp_free(&r);
	q = strchr(path, '?');
	snprintf(v1, sizeof(v1), "/v1/resolve?role=%.*s%s%s",
	    (int)(q != NULL ? (size_t)(q - path - 1) : strlen(path + 1)),
	    path + 1, q != NULL ? "&" : "", q != NULL ? q + 1 : "");
	p = v1_port(v1, &v1_status);
	if (v1_status != *status)
		return -2;
	return p;
}

/* The port /path answers with in JSON mode (-1: none, as 404). */
static int
port_of(const char *path)
{
	int	status;

	return json_port(path, &status);
}

/* The status code of GET path. */
static int
status_of(const char *path)
{
	struct resp	r;
	int		s;

	if (!http_get(path, false, &r))
		return 0;
	s = r.status;
	resp_free(&r);
	return s;
}

/* Starts the daemon on cl ("main", plus extra settings) with the HTTP
 * listener on a free loopback port; waits for node0 master and every
 * replica live. */
static void
start_daemon(int nreplicas, const char *extra)
{
	char	*conf, settings[1024];
	int	 i;

	cl = it_cluster_create(nreplicas);
	snprintf(target, sizeof(target), "127.0.0.1:%d", it_free_port());
	snprintf(settings, sizeof(settings), "http_listen = \"%s\";\n%s",
	    target, extra != NULL ? extra : "");
	conf = it_config(cl, "main", settings);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master") == it_port(cl, 0),
	    ITD_STATE_MS), "/master never answered node0");
	for (i = 1; i <= nreplicas; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(it_daemon_socket(dmn),
		    "main", it_port(cl, i), true, "replica"), ITD_STATE_MS),
		    "node%d never became a live replica", i);
}

/* True when the JSON array body lists a replica on port. */
static bool
replicas_info_has(const char *body, int port)
{
	json_object	*arr, *e, *v;
	size_t		 i;
	bool		 found = false;

	if ((arr = json_tokener_parse(body)) == NULL ||
	    !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return false;
	}
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(e, "port", &v) &&
		    json_object_get_int(v) == port &&
		    json_object_object_get_ex(e, "lag_ms", &v) &&
		    json_object_object_get_ex(e, "lag_bytes", &v) &&
		    json_object_object_get_ex(e, "host", &v) &&
		    strcmp(json_object_get_string(v), "127.0.0.1") == 0)
			found = true;
	}
	json_object_put(arr);
	return found;
}

/* Every replica-type endpoint answers one of the two replica ports. */
static void
assert_replica_endpoints(int a, int b)
{
	static const char *const paths[] = { "/replica", "/sync_by_time",
	    "/sync_by_bytes", "/sync_by_time_or_bytes",
	    "/sync_by_time_and_bytes" };
	size_t	i;
	int	p;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char *body = get_expect(paths[i], false, 200);

		ck_assert_str_eq(body, "127.0.0.1");
		free(body);
		p = port_of(paths[i]);
		ITD_ASSERT(dmn, p == a || p == b, "%s answered port %d, want "
		    "%d or %d", paths[i], p, a, b);
	}
}

/*
 * Asserts that body is a JSON error in the one shape: exactly "error"
 * (when code is not NULL: pgbeacon's endpoints) and "error_text" (text
 * when not NULL), plus "why" equal to error_text when why.
 */
static void
assert_json_error(const char *body, const char *code, const char *text,
    bool why)
{
	json_object	*j = json_tokener_parse(body), *v, *t;

	ck_assert_msg(j != NULL && json_object_is_type(j, json_type_object),
	    "not a JSON object: %s", body);
	ck_assert_msg(json_object_object_length(j) == (code != NULL) + 1 +
	    why, "keys: %s", body);
	ck_assert_msg(json_object_object_get_ex(j, "error_text", &t) &&
	    json_object_is_type(t, json_type_string), "%s", body);
	if (text != NULL)
		ck_assert_str_eq(json_object_get_string(t), text);
	if (code != NULL) {
		ck_assert_msg(json_object_object_get_ex(j, "error", &v), "%s",
		    body);
		ck_assert_str_eq(json_object_get_string(v), code);
	}
	if (why) {
		ck_assert_msg(json_object_object_get_ex(j, "why", &v), "%s",
		    body);
		ck_assert_str_eq(json_object_get_string(v),
		    json_object_get_string(t));
	}
	json_object_put(j);
}

/* --- roles, before and after a failover ------------------------------- */

START_TEST(test_role_endpoints_plain_and_json_follow_a_failover)
{
	char		 path[128], *body;
	int		 n0, n1, n2, p, i, st, seen1 = 0, seen2 = 0;
	json_object	*j;

	start_daemon(2, NULL);
	n0 = it_port(cl, 0);
	n1 = it_port(cl, 1);
	n2 = it_port(cl, 2);

	body = get_expect("/master", false, 200);
	ck_assert_str_eq(body, "127.0.0.1");
	free(body);
	body = get_expect("/master", true, 200);
	ck_assert_str_eq(body, "{\"host\": \"127.0.0.1\"}");
	free(body);
	ck_assert_int_eq(port_of("/master"), n0);

	assert_replica_endpoints(n1, n2);
	for (i = 0; i < 10; i++) {
		p = v1_port("/v1/resolve?role=replica", &st);
		seen1 += p == n1;
		seen2 += p == n2;
	}
	ck_assert_msg(seen1 == 5 && seen2 == 5, "round robin: %d x node1, "
	    "%d x node2", seen1, seen2);

	body = get_expect("/replicas_info", false, 200);
	ck_assert_msg(replicas_info_has(body, n1) &&
	    replicas_info_has(body, n2) && !replicas_info_has(body, n0),
	    "replicas_info: %s", body);
	free(body);

	body = get_expect("/v1/resolve?role=master", false, 200);
	j = json_tokener_parse(body);
	ck_assert_int_eq(itd_json_int(j, "port"), n0);
	ck_assert_str_eq(itd_json_str(j, "role"), "master");
	ck_assert_str_eq(itd_json_str(j, "cluster"), "main");
	ck_assert_int_eq(itd_json_int(j, "generation"),
	    itd_generation(it_daemon_socket(dmn), "main"));
	json_object_put(j);
	free(body);
	body = get_expect("/v1/resolve?role=standby", false, 200);
	j = json_tokener_parse(body);
	ck_assert_str_eq(itd_json_str(j, "role"), "replica");
	json_object_put(j);
	free(body);

	snprintf(path, sizeof(path), "/health/primary?host=127.0.0.1:%d", n0);
	ck_assert_int_eq(status_of(path), 200);
	snprintf(path, sizeof(path), "/health/replica?host=127.0.0.1:%d", n0);
	ck_assert_int_eq(status_of(path), 503);
	snprintf(path, sizeof(path), "/health/replica?host=127.0.0.1:%d"
	    "&max_lag_bytes=100000000", n1);
	ck_assert_int_eq(status_of(path), 200);
	snprintf(path, sizeof(path), "/health/primary?host=127.0.0.1:%d", n1);
	ck_assert_int_eq(status_of(path), 503);

	/* node0 stops, node1 is promoted, node2 follows node1. */
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master") == n1, ITD_STATE_MS),
	    "/master never answered node1 after the promotion");
	snprintf(path, sizeof(path), "/health/primary?host=127.0.0.1:%d", n1);
	ck_assert_int_eq(status_of(path), 200);
	snprintf(path, sizeof(path), "/health/primary?host=127.0.0.1:%d", n0);
	ck_assert_int_eq(status_of(path), 503);
	it_reattach(cl, 2, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(it_daemon_socket(dmn),
	    "main", n2, true, "replica"), ITD_STATE_MS),
	    "node2 never became a replica of node1");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/sync_by_time_and_bytes") == n2,
	    ITD_STATE_MS), "node2 never became a synchronous replica");
	assert_replica_endpoints(n2, n2);
	body = get_expect("/master", false, 200);
	ck_assert_str_eq(body, "127.0.0.1");
	free(body);
	body = get_expect("/replicas_info", false, 200);
	ck_assert_msg(replicas_info_has(body, n2) &&
	    !replicas_info_has(body, n1) && !replicas_info_has(body, n0),
	    "replicas_info after failover: %s", body);
	free(body);
	snprintf(path, sizeof(path), "/health/replica?host=127.0.0.1:%d", n2);
	ck_assert_int_eq(status_of(path), 200);
}
END_TEST

/* --- 404s ------------------------------------------------------------------ */

START_TEST(test_no_host_is_404_with_empty_body_or_json_null)
{
	struct resp	 r;
	char		 path[128], *body;
	int		 st;

	start_daemon(1, NULL);

	/* No replica has replayed that far: the master, or 404 with none. */
	ck_assert_int_eq(port_of("/replica?min_lsn=FFFF/0"), it_port(cl, 0));
	body = get_expect("/replica?min_lsn=FFFF/0&fallback=none", false, 404);
	ck_assert_str_eq(body, "");
	free(body);
	ck_assert_int_eq(json_port("/sync_by_bytes?min_lsn=FFFF/0&"
	    "fallback=none", &st), -1);
	ck_assert_int_eq(st, 404);
	ck_assert(http_get("/sync_by_time?fallback=none&min_lsn=FFFF/0", true,
	    &r));
	ck_assert_str_eq(r.body, "{\"host\": null}");
	ck_assert_str_eq(r.ctype, "application/json");
	resp_free(&r);
	body = get_expect("/v1/resolve?role=replica&min_lsn=FFFF/0&"
	    "fallback=none", false, 404);
	ck_assert_ptr_nonnull(strstr(body, "\"NOHOST\""));
	/* The one error shape, and "why", which it carried before. */
	assert_json_error(body, "NOHOST", NULL, true);
	free(body);

	/* Every host down: no master. */
	it_stop(cl, 1, "immediate");
	it_stop(cl, 0, "immediate");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(status_of("/master") == 404,
	    ITD_STATE_MS), "/master still answered with every host down");
	body = get_expect("/master", false, 404);
	ck_assert_str_eq(body, "");
	free(body);
	body = get_expect("/master", true, 404);
	ck_assert_str_eq(body, "{\"host\": null}");
	free(body);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(status_of("/replica") == 404,
	    ITD_STATE_MS), "/replica still answered with every host down");
	body = get_expect("/replicas_info", false, 200);
	ck_assert_str_eq(body, "[]");
	free(body);
	snprintf(path, sizeof(path), "/health/primary?host=127.0.0.1:%d",
	    it_port(cl, 0));
	ck_assert_int_eq(status_of(path), 503);

	/* And back. */
	it_start(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master") == it_port(cl, 0),
	    ITD_STATE_MS), "/master never came back");
}
END_TEST

/* --- two clusters ---------------------------------------------------------- */

START_TEST(test_cluster_parameter_selects_among_two_clusters)
{
	char		*conf, settings[2048], *body;
	json_object	*j, *arr;
	int		 a0, a1, b0, b1;

	cl = it_cluster_create(1);
	cl2 = it_cluster_create(1);
	a0 = it_port(cl, 0);
	a1 = it_port(cl, 1);
	b0 = it_port(cl2, 0);
	b1 = it_port(cl2, 1);
	snprintf(target, sizeof(target), "127.0.0.1:%d", it_free_port());
	snprintf(settings, sizeof(settings),
	    "http_listen = \"%s\";\n"
	    "clusters = (\n"
	    "  { name = \"alpha\"; hosts = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" );"
	    " conninfo = \"user=postgres dbname=postgres\"; },\n"
	    "  { name = \"beta\"; hosts = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" );"
	    " conninfo = \"user=postgres dbname=postgres\"; }\n);\n",
	    target, a0, a1, b0, b1);
	conf = it_config(cl, "unused", settings);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);

	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master") == a0, ITD_STATE_MS),
	    "/master (first cluster) never answered alpha's node0");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master?cluster=beta") == b0,
	    ITD_STATE_MS), "/master?cluster=beta never answered beta's node0");
	ck_assert_int_eq(port_of("/master?cluster=alpha"), a0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/replica?cluster=beta") == b1,
	    ITD_STATE_MS), "beta's replica never answered");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/replica") == a1, ITD_STATE_MS),
	    "alpha's replica never answered");

	body = get_expect("/replicas_info?cluster=beta", false, 200);
	ck_assert_msg(replicas_info_has(body, b1) && !replicas_info_has(body,
	    a1), "beta's replicas_info: %s", body);
	free(body);
	body = get_expect("/master?cluster=gamma", false, 404);
	ck_assert_str_eq(body, "no cluster 'gamma'\n");
	free(body);
	body = get_expect("/master?cluster=gamma", true, 404);
	ck_assert_ptr_nonnull(strstr(body, "error_text"));
	free(body);

	body = get_expect("/v1/status", false, 200);
	j = json_tokener_parse(body);
	ck_assert(json_object_object_get_ex(j, "clusters", &arr));
	ck_assert_int_eq(json_object_array_length(arr), 2);
	json_object_put(j);
	free(body);
	body = get_expect("/v1/status?cluster=beta", false, 200);
	j = json_tokener_parse(body);
	ck_assert(json_object_object_get_ex(j, "clusters", &arr));
	ck_assert_int_eq(json_object_array_length(arr), 1);
	ck_assert_str_eq(itd_json_str(json_object_array_get_idx(arr, 0),
	    "name"), "beta");
	json_object_put(j);
	free(body);
	body = get_expect("/v1/resolve?cluster=beta&role=master", false, 200);
	j = json_tokener_parse(body);
	ck_assert_int_eq(itd_json_int(j, "port"), b0);
	ck_assert_str_eq(itd_json_str(j, "cluster"), "beta");
	json_object_put(j);
	free(body);
}
END_TEST

/* --- /v1/status and /metrics against STATUS ---------------------------- */

/* One sample of a metrics page. */
struct sample {
	char	name[128];
	char	labels[512];	/* inside the braces, "" when none */
	double	value;
};

/*
 * Parses a Prometheus text page strictly enough for our output: comment
 * lines are "# HELP name text" or "# TYPE name gauge|counter", and every
 * sample's name was TYPEd before it.  Returns the samples (caller frees)
 * and their count in *n; fails the test on a malformed line.
 */
static struct sample *
parse_metrics(char *page, size_t *n)
{
	struct sample	*s = NULL;
	char		 typed[64][128], *line, *save = NULL, *sp, *end;
	size_t		 ntyped = 0, cap = 0, i;
	bool		 known;

	*n = 0;
	for (line = strtok_r(page, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128], type[32];

			ck_assert_msg(sscanf(line + 7, "%127s %31s", name,
			    type) == 2 && (strcmp(type, "gauge") == 0 ||
			    strcmp(type, "counter") == 0), "bad TYPE: %s", line);
			ck_assert_uint_lt(ntyped, 64);
			snprintf(typed[ntyped++], 128, "%s", name);
			continue;
		}
		ck_assert_msg(line[0] != '#', "stray comment: %s", line);
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			s = realloc(s, cap * sizeof(*s));
			ck_assert_ptr_nonnull(s);
		}
		memset(&s[*n], 0, sizeof(s[*n]));
		sp = line + strcspn(line, "{ ");
		ck_assert_msg(sp > line && (size_t)(sp - line) < 128,
		    "bad sample: %s", line);
		memcpy(s[*n].name, line, (size_t)(sp - line));
		if (*sp == '{') {
			end = strstr(sp, "} ");
			ck_assert_msg(end != NULL && (size_t)(end - sp) < 512,
			    "bad labels: %s", line);
			memcpy(s[*n].labels, sp + 1, (size_t)(end - sp - 1));
			sp = end + 1;
		}
		ck_assert_msg(*sp == ' ', "bad sample: %s", line);
		s[*n].value = strtod(sp + 1, &end);
		ck_assert_msg(end != sp + 1 && *end == '\0', "bad value: %s",
		    line);
		known = false;
		for (i = 0; i < ntyped; i++)
			known |= strcmp(typed[i], s[*n].name) == 0;
		ck_assert_msg(known, "sample before its TYPE: %s", line);
		(*n)++;
	}
	return s;
}

/* The value of name{labels} (exact label text), or -1 when absent. */
static double
sample_value(const struct sample *s, size_t n, const char *name,
    const char *labels)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strcmp(s[i].name, name) == 0 &&
		    strcmp(s[i].labels, labels) == 0)
			return s[i].value;
	return -1;
}

/* Fetches and parses /metrics. */
static struct sample *
metrics(size_t *n)
{
	struct sample	*s;
	char		*page = get_expect("/metrics", false, 200);

	s = parse_metrics(page, n);
	free(page);
	return s;
}

/*
 * Fetches STATUS and /metrics and compares them: generation, and per host
 * up, role, lag bytes and ms (both absent or equal), failures 0 for live
 * hosts and a probe duration.  Two snapshots may straddle a probe, so
 * callers poll this; false with the first difference in why.
 */
static bool
metrics_match_status(char *why, size_t len)
{
	struct sample	*s;
	json_object	*st, *c, *hosts, *h, *v;
	char		 labels[512], lbl2[600];
	size_t		 n, i;
	double		 m;
	int		 port;
	bool		 ok = false;
	const char	*role;

	st = itd_status(it_daemon_socket(dmn));
	s = metrics(&n);
	snprintf(why, len, "no cluster main in STATUS");
	if ((c = itd_status_cluster(st, "main")) == NULL ||
	    !json_object_object_get_ex(c, "hosts", &hosts))
		goto done;
	m = sample_value(s, n, "pgbeacon_cluster_generation",
	    "cluster=\"main\"");
	if ((int64_t)m != itd_json_int(c, "generation")) {
		snprintf(why, len, "generation %f vs %" PRId64, m,
		    itd_json_int(c, "generation"));
		goto done;
	}
	for (i = 0; i < json_object_array_length(hosts); i++) {
		h = json_object_array_get_idx(hosts, i);
		port = (int)itd_json_int(h, "port");
		role = itd_json_str(h, "role");
		snprintf(labels, sizeof(labels), "cluster=\"main\","
		    "host=\"127.0.0.1\",port=\"%d\"", port);
		snprintf(why, len, "host %d differs", port);
		if (sample_value(s, n, "pgbeacon_host_up", labels) !=
		    (itd_json_true(h, "alive") ? 1 : 0))
			goto done;
		snprintf(lbl2, sizeof(lbl2), "%s,role=\"%s\"", labels, role);
		if (sample_value(s, n, "pgbeacon_host_role", lbl2) != 1)
			goto done;
		snprintf(lbl2, sizeof(lbl2), "%s,role=\"none\"", labels);
		if (strcmp(role, "none") != 0 &&
		    sample_value(s, n, "pgbeacon_host_role", lbl2) != 0)
			goto done;
		m = sample_value(s, n, "pgbeacon_host_lag_bytes", labels);
		if (json_object_object_get_ex(h, "lag_bytes", &v) && v != NULL ?
		    m != (double)json_object_get_int64(v) : m != -1)
			goto done;
		m = sample_value(s, n, "pgbeacon_host_lag_seconds", labels);
		if (json_object_object_get_ex(h, "lag_ms", &v) && v != NULL ?
		    (int64_t)(m * 1000 + 0.5) != json_object_get_int64(v) :
		    m != -1)
			goto done;
		if (itd_json_true(h, "alive") && sample_value(s, n,
		    "pgbeacon_host_consecutive_failures", labels) != 0)
			goto done;
		m = sample_value(s, n, "pgbeacon_host_probe_duration_seconds",
		    labels);
		if (!(m > 0 && m < 5))
			goto done;
	}
	ok = true;
done:
	free(s);
	json_object_put(st);
	return ok;
}

START_TEST(test_metrics_agree_with_status)
{
	struct sample	*s;
	char		 labels[512], why[512], *reply;
	size_t		 n;
	double		 before, v;
	int		 fd;

	start_daemon(2, NULL);
	/* The cluster is idle: lags settle at 0 and stay there. */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/sync_by_time_and_bytes?"
	    "lag_ms=0&lag_bytes=0&fallback=none") > 0, ITD_STATE_MS),
	    "replicas never caught up");

	fd = it_sock_connect(it_daemon_socket(dmn));
	ck_assert_int_ne(fd, -1);
	s = metrics(&n);
	before = sample_value(s, n, "pgbeacon_socket_requests_total",
	    "command=\"resolve\",result=\"NOHOST\"");
	free(s);
	ck_assert(before == -1 || before == 0);

	ITD_ASSERT(dmn, IT_POLL_UNTIL(metrics_match_status(why, sizeof(why)),
	    ITD_STATE_MS), "metrics never matched STATUS: %s", why);
	s = metrics(&n);
	ck_assert(sample_value(s, n, "pgbeacon_cluster_has_master",
	    "cluster=\"main\"") == 1);
	ck_assert(sample_value(s, n, "pgbeacon_cluster_role_changes_total",
	    "cluster=\"main\"") >= 3);
	ck_assert(sample_value(s, n, "pgbeacon_http_requests_total",
	    "endpoint=\"/metrics\",code=\"200\"") >= 1);
	ck_assert(sample_value(s, n, "pgbeacon_socket_clients", "") >= 1);
	free(s);

	/* Counters move with requests: two socket requests, one HTTP 404. */
	reply = it_sock_request(fd, "RESOLVE main replica min_lsn=FFFF/0 "
	    "fallback=none", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(strncmp(reply, "ERR NOHOST", 10) == 0, "%s", reply);
	free(reply);
	reply = it_sock_request(fd, "HELLO", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(reply);
	free(reply);
	ck_assert_int_eq(status_of("/nowhere"), 404);
	s = metrics(&n);
	ck_assert(sample_value(s, n, "pgbeacon_socket_requests_total",
	    "command=\"resolve\",result=\"NOHOST\"") == 1);
	ck_assert(sample_value(s, n, "pgbeacon_socket_requests_total",
	    "command=\"invalid\",result=\"BADREQ\"") >= 1);
	ck_assert(sample_value(s, n, "pgbeacon_http_requests_total",
	    "endpoint=\"other\",code=\"404\"") == 1);
	free(s);
	it_sock_close(fd);

	/* A dead host shows up as down, with its failures counted. */
	it_stop(cl, 2, "immediate");
	snprintf(labels, sizeof(labels), "cluster=\"main\",host=\"127.0.0.1\","
	    "port=\"%d\"", it_port(cl, 2));
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({
		s = metrics(&n);
		v = sample_value(s, n, "pgbeacon_host_up", labels);
		free(s);
		v == 0; }), ITD_STATE_MS), "stopped node2 never shown down");
	ck_assert(itd_host_is(it_daemon_socket(dmn), "main", it_port(cl, 2),
	    false, NULL));
}
END_TEST

START_TEST(test_v1_status_is_the_socket_status_json)
{
	json_object	*web, *sock, *wc, *sc, *wh, *sh;
	char		*body;
	size_t		 i;

	start_daemon(1, NULL);
	body = get_expect("/v1/status", false, 200);
	web = json_tokener_parse(body);
	ck_assert_msg(web != NULL, "not JSON: %s", body);
	ck_assert_int_eq(body[strlen(body) - 1], '}');
	free(body);
	sock = itd_status(it_daemon_socket(dmn));
	wc = itd_status_cluster(web, "main");
	sc = itd_status_cluster(sock, "main");
	ck_assert_ptr_nonnull(wc);
	ck_assert_ptr_nonnull(sc);
	ck_assert_str_eq(itd_json_str(wc, "master"), itd_json_str(sc, "master"));
	ck_assert_int_eq(itd_json_int(wc, "generation"),
	    itd_json_int(sc, "generation"));
	ck_assert_str_eq(itd_json_str(wc, "system_identifier"),
	    itd_json_str(sc, "system_identifier"));
	for (i = 0; i < 2; i++) {
		wh = itd_status_host(wc, it_port(cl, (int)i));
		sh = itd_status_host(sc, it_port(cl, (int)i));
		ck_assert_ptr_nonnull(wh);
		ck_assert_ptr_nonnull(sh);
		ck_assert_str_eq(itd_json_str(wh, "role"),
		    itd_json_str(sh, "role"));
		ck_assert_int_eq(itd_json_true(wh, "alive"),
		    itd_json_true(sh, "alive"));
	}
	json_object_put(web);
	json_object_put(sock);
}
END_TEST

/* --- bad requests ------------------------------------------------------ */

START_TEST(test_bad_requests_get_4xx_and_the_daemon_keeps_serving)
{
	static const char garbage[] = "THIS IS NOT HTTP\r\n\r\n";
	static const char post[] = "POST /master HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct resp	 r;
	char		*big, *body, *reply;
	size_t		 i;
	int		 fd;

	start_daemon(1, NULL);
	body = get_expect("/nowhere", false, 404);
	ck_assert_str_eq(body, "unknown path\n");
	free(body);
	body = get_expect("/master/", false, 404);
	free(body);
	/* pg-status ignores what /master does not take... */
	body = get_expect("/master?lag_ms=1", false, 200);
	ck_assert_str_eq(body, "127.0.0.1");
	free(body);
	/* ...but pgbeacon's own API does not. */
	body = get_expect("/v1/resolve?role=master&lag=1", false, 400);
	ck_assert_ptr_nonnull(strstr(body, "unknown parameter 'lag'"));
	free(body);
	body = get_expect("/replica?lag_ms=abc", true, 400);
	ck_assert_str_eq(body, "{\"error_text\": \"Invalid lag_ms\"}");
	free(body);
	body = get_expect("/replica?lag_ms=abc", false, 400);
	ck_assert_str_eq(body, "{\"error_text\": \"Invalid lag_ms\"}");
	free(body);
	body = get_expect("/master?cluster=main%00junk", false, 400);
	free(body);
	body = get_expect("/v1/resolve?role=master&cluster=main%00", false,
	    400);
	free(body);
	body = get_expect("/replica?lag_ms=1&lag_ms=2", false, 400);
	free(body);
	body = get_expect("/v1/resolve?role=boss", false, 400);
	ck_assert_ptr_nonnull(strstr(body, "unknown role"));
	free(body);
	body = get_expect("/health/primary", false, 400);
	free(body);
	body = get_expect("/health/primary?host=nohost:1", false, 404);
	free(body);
	/* A malformed name is an unknown parameter: ignored by pg-status's
	 * endpoints, refused by pgbeacon's. */
	body = get_expect("/replica?%zz=1", false, 200);
	free(body);
	body = get_expect("/v1/resolve?role=replica&%zz=1", false, 400);
	free(body);

	/* Another method. */
	ck_assert(http_raw(target, post, sizeof(post) - 1, &r));
	ck_assert_int_eq(r.status, 405);
	resp_free(&r);

	/* Not HTTP at all. */
	ck_assert(http_raw(target, garbage, sizeof(garbage) - 1, &r) ||
	    r.len == 0);
	ck_assert_msg(r.status == 0 || (r.status >= 400 && r.status < 500),
	    "garbage got %d", r.status);
	resp_free(&r);

	/* Oversized headers: 4xx or a closed connection, never an answer. */
	big = malloc(20000);
	ck_assert_ptr_nonnull(big);
	i = (size_t)snprintf(big, 20000, "GET /master HTTP/1.1\r\nHost: x\r\n"
	    "X-Big: ");
	memset(big + i, 'a', 16000);
	i += 16000;
	i += (size_t)snprintf(big + i, 20000 - i, "\r\n\r\n");
	http_raw(target, big, i, &r);
	ck_assert_msg(r.status == 0 || (r.status >= 400 && r.status < 500),
	    "oversized headers got %d", r.status);
	resp_free(&r);
	free(big);

	/* A client that connects and says nothing does not block others. */
	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	body = get_expect("/master", false, 200);
	free(body);
	close(fd);

	/* Still serving, on both listeners. */
	ck_assert_int_eq(port_of("/master"), it_port(cl, 0));
	fd = it_sock_connect(it_daemon_socket(dmn));
	ck_assert_int_ne(fd, -1);
	reply = it_sock_request(fd, "PING", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(reply, "PONG");
	free(reply);
	it_sock_close(fd);
}
END_TEST

/* Every JSON error has one shape: {"error": CODE, "error_text": TEXT};
 * on pg-status's endpoints {"error_text": TEXT} alone, as pg-status. */
START_TEST(test_json_errors_have_one_shape)
{
	static const char post[] = "POST /v1/status HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct resp	 r;
	char		*body;

	start_daemon(0, NULL);
	body = get_expect("/v1/resolve?role=boss", false, 400);
	assert_json_error(body, "BADREQ", NULL, false);
	ck_assert_ptr_nonnull(strstr(body, "unknown role"));
	free(body);
	body = get_expect("/v1/resolve?role=master&lag=1", true, 400);
	assert_json_error(body, "BADREQ", "unknown parameter 'lag'", false);
	free(body);
	body = get_expect("/v1/resolve?role=master&%zz", false, 400);
	assert_json_error(body, "BADREQ", NULL, false);
	free(body);
	body = get_expect("/v1/resolve?role=master&cluster=gamma", false, 404);
	assert_json_error(body, "NOCLUSTER", "no cluster 'gamma'", false);
	free(body);
	body = get_expect("/v1/status?cluster=gamma", false, 404);
	assert_json_error(body, "NOCLUSTER", "no cluster 'gamma'", false);
	free(body);
	body = get_expect("/nowhere", true, 404);
	assert_json_error(body, "NOTFOUND", "unknown path", false);
	free(body);
	body = get_expect("/health/primary", true, 400);
	assert_json_error(body, "BADREQ", NULL, false);
	free(body);
	ck_assert(http_raw(target, post, sizeof(post) - 1, &r));
	ck_assert_int_eq(r.status, 405);
	ck_assert_ptr_nonnull(strstr(r.body, "\r\nAllow: GET, HEAD\r\n"));
	assert_json_error(strstr(r.body, "\r\n\r\n") + 4, "BADMETHOD",
	    "only GET and HEAD", false);
	resp_free(&r);
	/* pg-status's endpoints: pg-status's shape. */
	body = get_expect("/replica?lag_bytes=-1", false, 400);
	assert_json_error(body, NULL, "Invalid lag_bytes", false);
	free(body);
	body = get_expect("/master?cluster=gamma", true, 404);
	assert_json_error(body, NULL, "no cluster 'gamma'", false);
	free(body);
	body = get_expect("/replicas_info?cluster=gamma", false, 404);
	assert_json_error(body, NULL, "no cluster 'gamma'", false);
	free(body);
	/* Plain text where JSON was not asked for. */
	body = get_expect("/master?cluster=gamma", false, 404);
	ck_assert_str_eq(body, "no cluster 'gamma'\n");
	free(body);
}
END_TEST

/* --- the Unix-socket form ---------------------------------------------- */

START_TEST(test_unix_socket_listener_serves_and_goes_away_on_stop)
{
	struct stat	 sb;
	char		*conf, settings[1024], path[200];
	int		 rc;

	cl = it_cluster_create(0);
	snprintf(path, sizeof(path), "%s/http.sock", it_cluster_dir(cl));
	snprintf(target, sizeof(target), "%s", path);
	snprintf(settings, sizeof(settings), "http_listen = \"%s\";\n", path);
	conf = it_config(cl, "main", settings);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/master") == it_port(cl, 0),
	    ITD_STATE_MS), "/master over the Unix socket never answered");
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	/* No replica: /replica falls back to the master, as pg-status does. */
	ck_assert_int_eq(port_of("/replica"), it_port(cl, 0));
	rc = it_daemon_stop(dmn);
	dmn = NULL;
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(stat(path, &sb), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* --- a pg-status user's requests ---------------------------------------- */

/*
 * What a pg-status client does, and what pg-status documents in reply:
 * GET /master etc. answer the host name as the whole plain-text body, or
 * {"host": "<name>"} with Accept: application/json; /replica and the
 * /sync_by_* endpoints answer the master when no replica qualifies;
 * lag_ms / lag_bytes override the thresholds and must be non-negative
 * integers (else 400); no host is 404 with an empty body / {"host": null}.
 */
START_TEST(test_pg_status_client_sequence_gets_documented_answers)
{
	static const char *const endpoints[] = { "/master", "/replica",
	    "/sync_by_time", "/sync_by_bytes", "/sync_by_time_or_bytes",
	    "/sync_by_time_and_bytes" };
	struct resp	 r;
	json_object	*j, *v;
	char		 path[256];
	size_t		 i;
	int		 n0, n1;

	start_daemon(1, NULL);
	n0 = it_port(cl, 0);
	n1 = it_port(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/sync_by_time_and_bytes") == n1,
	    ITD_STATE_MS), "the replica never became synchronous");

	for (i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		ck_assert(http_get(endpoints[i], false, &r));
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.body, "127.0.0.1");
		ck_assert_msg(strncmp(r.ctype, "text/plain", 10) == 0, "%s",
		    r.ctype);
		resp_free(&r);

		ck_assert(http_get(endpoints[i], true, &r));
		ck_assert_int_eq(r.status, 200);
		ck_assert_str_eq(r.ctype, "application/json");
		j = json_tokener_parse(r.body);
		ck_assert_msg(j != NULL && json_object_object_get_ex(j, "host",
		    &v) && json_object_is_type(v, json_type_string),
		    "%s: %s", endpoints[i], r.body);
		ck_assert_str_eq(json_object_get_string(v), "127.0.0.1");
		json_object_put(j);
		resp_free(&r);
	}
	/* The replica where one qualifies, the master when none does. */
	ck_assert_int_eq(port_of("/sync_by_bytes?lag_bytes=0"), n1);
	ck_assert_int_eq(port_of("/replica?lag_ms=1000000"), n1);
	snprintf(path, sizeof(path), "/replica?min_lsn=FFFF/0");
	ck_assert_int_eq(port_of(path), n0);
	ck_assert_int_eq(port_of("/sync_by_time?min_lsn=FFFF/0"), n0);
	/* Malformed lag values are 400. */
	ck_assert_int_eq(status_of("/replica?lag_ms=-5"), 400);
	ck_assert_int_eq(status_of("/sync_by_bytes?lag_bytes=x"), 400);
	ck_assert_int_eq(status_of("/replica?min_lsn=nope"), 400);

	/* The replica gone: /replica answers the master. */
	it_stop(cl, 1, "fast");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/replica") == n0, ITD_STATE_MS),
	    "/replica never fell back to the master");
	for (i = 1; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		ck_assert_int_eq(port_of(endpoints[i]), n0);
	ck_assert(http_get("/replicas_info", false, &r));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "[]");
	resp_free(&r);
}
END_TEST

/*
 * A pg-status client's requests, byte for byte, and what pg-status
 * answers to each: the status and the whole body.  (Recorded from its
 * documented behaviour: unknown parameters ignored, JSON only for
 * exactly "Accept: application/json", {"host": "..."} without a port,
 * 400 {"error_text": "Invalid lag_ms"}.)
 */
static const struct replay {
	const char	*request;	/* the request head, CRLFs included */
	int		 status;
	const char	*body;
} pg_status_replay[] = {
	{ "GET /master HTTP/1.1\r\nHost: x\r\n", 200, "127.0.0.1" },
	{ "GET /master?_=1700000000123 HTTP/1.1\r\nHost: x\r\n", 200,
	    "127.0.0.1" },
	{ "GET /master HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n",
	    200, "{\"host\": \"127.0.0.1\"}" },
	/* axios's default Accept: plain text from pg-status. */
	{ "GET /master HTTP/1.1\r\nHost: x\r\nAccept: application/json, "
	    "text/plain, */*\r\n", 200, "127.0.0.1" },
	{ "GET /replica?nocache=abc&lag_ms=1000000 HTTP/1.1\r\nHost: x\r\n"
	    "Accept: application/json\r\n", 200, "{\"host\": \"127.0.0.1\"}" },
	{ "GET /sync_by_bytes?lag_bytes=100000000&t=5 HTTP/1.1\r\nHost: x\r\n",
	    200, "127.0.0.1" },
	{ "GET /sync_by_time_or_bytes?foo=bar HTTP/1.1\r\nHost: x\r\n", 200,
	    "127.0.0.1" },
	{ "GET /sync_by_time_and_bytes?_= HTTP/1.1\r\nHost: x\r\nAccept: "
	    "application/json\r\n", 200, "{\"host\": \"127.0.0.1\"}" },
	{ "GET /replica?lag_ms=abc HTTP/1.1\r\nHost: x\r\n", 400,
	    "{\"error_text\": \"Invalid lag_ms\"}" },
	{ "GET /sync_by_bytes?lag_bytes=-1&_=2 HTTP/1.1\r\nHost: x\r\nAccept: "
	    "application/json\r\n", 400, "{\"error_text\": \"Invalid lag_bytes\"}" },
	{ "GET /replica?min_lsn=FFFF/0&fallback=none HTTP/1.1\r\nHost: x\r\n",
	    404, "" },
	{ "GET /replica?min_lsn=FFFF/0&fallback=none&_=1 HTTP/1.1\r\nHost: x\r\n"
	    "Accept: application/json\r\n", 404, "{\"host\": null}" },
};

START_TEST(test_pg_status_replay_gets_pg_status_bodies_and_codes)
{
	const struct replay	*rp;
	struct resp		 r;
	char			 req[1024], *sep;
	size_t			 i;
	int			 n;

	start_daemon(1, NULL);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(port_of("/sync_by_time_and_bytes") ==
	    it_port(cl, 1), ITD_STATE_MS), "the replica never became "
	    "synchronous");
	for (i = 0; i < sizeof(pg_status_replay) / sizeof(pg_status_replay[0]);
	    i++) {
		rp = &pg_status_replay[i];
		n = snprintf(req, sizeof(req), "%sConnection: close\r\n\r\n",
		    rp->request);
		ck_assert(http_raw(target, req, (size_t)n, &r));
		sep = strstr(r.body, "\r\n\r\n");
		ck_assert_ptr_nonnull(sep);
		ITD_ASSERT(dmn, r.status == rp->status && strcmp(sep + 4,
		    rp->body) == 0, "request %zu: %s\nwant %d \"%s\", got %d "
		    "\"%s\"", i, rp->request, rp->status, rp->body, r.status,
		    sep + 4);
		resp_free(&r);
	}
}
END_TEST

/* --- a daemon no client can starve ------------------------------------------ */

/* The backlog ss(8) shows for the listener on port (Send-Q), or -1. */
static int
listen_backlog(int port)
{
	char	 cmd[128], line[512];
	FILE	*f;
	int	 backlog = -1, recvq;

	snprintf(cmd, sizeof(cmd), "ss -ltnH 'sport = :%d' 2>/dev/null", port);
	if ((f = it_popen(cmd)) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) != NULL &&
	    sscanf(line, "LISTEN %d %d", &recvq, &backlog) != 2)
		backlog = -1;
	it_pclose(f);
	return backlog;
}

/* /proc/sys/net/core/somaxconn, capped at SOMAXCONN as listen() does. */
static int
max_backlog(void)
{
	FILE	*f = fopen("/proc/sys/net/core/somaxconn", "r");
	int	 v = SOMAXCONN;

	if (f != NULL) {
		if (fscanf(f, "%d", &v) != 1)
			v = SOMAXCONN;
		fclose(f);
	}
	return v < SOMAXCONN ? v : SOMAXCONN;
}

/* pgbeacon_http_clients from /metrics (the metrics request counts). */
static int
http_clients(void)
{
	struct resp	 r;
	const char	*p;
	int		 n = -1;

	if (!http_get("/metrics", false, &r))
		return -1;
	if ((p = strstr(r.body, "\npgbeacon_http_clients ")) != NULL)
		n = atoi(p + strlen("\npgbeacon_http_clients "));
	resp_free(&r);
	return n;
}

START_TEST(test_http_listener_backlog_and_client_count)
{
	int	fds[20], i;

	start_daemon(0, NULL);
	/* evhttp listens with 128; a burst of connects needs more. */
	ck_assert_int_eq(listen_backlog(atoi(strchr(target, ':') + 1)),
	    max_backlog());
	/* Every kind of connection is counted out when it closes. */
	for (i = 0; i < 20; i++) {
		fds[i] = it_http_connect(target);
		ck_assert_int_ge(fds[i], 0);
	}
	ITD_ASSERT(dmn, IT_POLL_UNTIL(http_clients() == 21, ITD_STATE_MS),
	    "20 idle connections not counted: %d", http_clients());
	for (i = 0; i < 20; i++) {
		if (i % 2 == 0 && write(fds[i], "garbage\r\n\r\n", 11) < 0)
			ck_abort_msg("write: %s", strerror(errno));
		close(fds[i]);
	}
	ITD_ASSERT(dmn, IT_POLL_UNTIL(http_clients() == 1, ITD_STATE_MS),
	    "closed connections still counted: %d", http_clients());
}
END_TEST

START_TEST(test_http_request_head_has_a_deadline_however_slow_the_drip)
{
	static const char head[] = "GET /master HTTP/1.1\r\nHost: x\r\n";
	int64_t	 deadline;
	char	 buf[256];
	ssize_t	 n;
	int	 fd;
	bool	 closed = false;

	start_daemon(0, "http_request_timeout_ms = 300;\n");
	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, head, sizeof(head) - 1),
	    (ssize_t)sizeof(head) - 1);
	/* One header byte every 50 ms: never silent for evhttp's timeout,
	 * but the head is never complete.  The daemon must hang up. */
	deadline = it_now_ms() + 15000;
	while (!closed && it_now_ms() < deadline) {
		if (send(fd, "X", 1, MSG_NOSIGNAL) != 1)
			closed = true;	/* reset by the daemon */
		else if (itd_sees_eof(fd, 50))
			closed = true;
	}
	ITD_ASSERT(dmn, closed, "a dripping client was never closed");
	close(fd);
	/* A quick client is unaffected. */
	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	n = snprintf(buf, sizeof(buf), "%sConnection: close\r\n\r\n", head);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	ITD_ASSERT(dmn, itd_sees_eof(fd, ITD_REPLY_MS) &&
	    itd_log_contains(dmn, "no complete request in 300 ms"),
	    "deadline not logged");
	close(fd);
}
END_TEST

START_TEST(test_http_client_cap_pauses_the_listener_until_one_leaves)
{
	static const char req[] = "GET /master HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r\n\r\n";
	struct resp	 r;
	int		 idle[3], fd, i;
	char		 buf[512];
	ssize_t		 n;

	start_daemon(0, "http_max_clients = 3;\n");
	for (i = 0; i < 3; i++) {
		idle[i] = it_http_connect(target);
		ck_assert_int_ge(idle[i], 0);
	}
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_log_contains(dmn, "3 HTTP clients: "
	    "not accepting more"), ITD_STATE_MS), "the listener never paused");
	/* The fourth waits in the backlog... */
	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, req, sizeof(req) - 1),
	    (ssize_t)sizeof(req) - 1);
	/* ...and is answered once one of the three leaves. */
	close(idle[0]);
	n = 0;
	{
		int64_t dl = it_now_ms() + ITD_STATE_MS;
		struct pollfd p = { fd, POLLIN, 0 };

		while (n <= 0 && it_now_ms() < dl && poll(&p, 1, 100) >= 0)
			if (p.revents & POLLIN)
				n = recv(fd, buf, sizeof(buf) - 1, 0);
	}
	ITD_ASSERT(dmn, n > 0, "the waiting client was never answered");
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	close(fd);
	for (i = 1; i < 3; i++)
		close(idle[i]);
	ck_assert(http_get("/master", false, &r));
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

/* --- pipelining and half-close ------------------------------------------ */

/*
 * Sends the len bytes at req to target in one write, shuts down the
 * sending side when half_close, and reads until EOF or deadline_ms.  The
 * bytes read (caller frees) and in *eof whether EOF came.
 */
static char *
send_and_read_to_eof(const char *req, size_t len, bool half_close,
    int deadline_ms, size_t *outlen, bool *eof)
{
	char	*buf;
	int	 fd;

	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	if (half_close)
		ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	*eof = it_http_read_to_eof(fd, deadline_ms, &buf, outlen) == 1;
	close(fd);
	return buf;
}

/* One answer of a stream. */
struct answer {
	int	 status;
	int	 minor;		/* HTTP/1.minor */
	bool	 close;		/* "Connection: close" */
	char	 body[512];	/* NUL-terminated, cut at 511 bytes */
};

/*
 * Splits the stream at buf into whole answers (by Content-Length) into
 * a[0..max); returns how many.  Trailing bytes that are not a whole
 * answer make it return -1.  head_only: the answers have no bodies
 * (HEAD).
 */
static int
split_answers(const char *buf, size_t len, struct answer *a, int max,
    bool head_only)
{
	const char	*p = buf, *end = buf + len, *sep, *clen;
	size_t		 blen;
	int		 n = 0;

	while (p < end) {
		if (n == max)
			return -1;
		memset(&a[n], 0, sizeof(a[n]));
		if ((sep = strstr(p, "\r\n\r\n")) == NULL ||
		    sscanf(p, "HTTP/1.%d %d", &a[n].minor, &a[n].status) != 2)
			return -1;
		clen = strcasestr(p, "\r\nContent-Length: ");
		if (clen == NULL || clen > sep)
			return -1;
		blen = (size_t)strtoul(clen + 18, NULL, 10);
		{
			const char *c = strcasestr(p, "\r\nConnection: close");

			a[n].close = c != NULL && c < sep;
		}
		p = sep + 4;
		if (head_only)
			blen = 0;
		if ((size_t)(end - p) < blen)
			return -1;
		snprintf(a[n].body, sizeof(a[n].body), "%.*s",
		    (int)(blen < 511 ? blen : 511), p);
		p += blen;
		n++;
	}
	return n;
}

#define PIPELINED	50

START_TEST(test_pipelined_requests_then_half_close_get_every_answer_in_order)
{
	/* Three answers told apart by status and body. */
	static const char *const paths[] = { "/master", "/nowhere",
	    "/v1/resolve?role=master" };
	struct answer	 a[PIPELINED + 1];
	char		*req, *buf, want_port[64];
	size_t		 len = 0, cap = PIPELINED * 256, got;
	bool		 eof;
	int		 i, n;

	start_daemon(0, "http_request_timeout_ms = 60000;\n");
	snprintf(want_port, sizeof(want_port), "\"port\": %d", it_port(cl, 0));
	req = malloc(cap);
	ck_assert_ptr_nonnull(req);
	/* Headers as a browser's: the whole is more than one read (4 KiB)
	 * of libevent's, so EOF is read while answers are being written. */
	for (i = 0; i < PIPELINED; i++)
		len += (size_t)snprintf(req + len, cap - len,
		    "GET %s HTTP/1.1\r\nHost: x\r\n"
		    "User-Agent: it_http/1.0 (pipelined, then half-closed)\r\n"
		    "Accept: text/plain, */*\r\nX-Request: %03d\r\n\r\n",
		    paths[i % 3], i);
	/* As `printf ... | nc -N` does: everything, then a half-close. */
	buf = send_and_read_to_eof(req, len, true, ITD_STATE_MS, &got, &eof);
	ITD_ASSERT(dmn, eof, "no EOF after the answers: %zu bytes", got);
	n = split_answers(buf, got, a, PIPELINED + 1, false);
	ITD_ASSERT(dmn, n == PIPELINED, "%d whole answers of %d: %s", n,
	    PIPELINED, buf);
	for (i = 0; i < PIPELINED; i++) {
		switch (i % 3) {
		case 0:
			ck_assert_int_eq(a[i].status, 200);
			ck_assert_str_eq(a[i].body, "127.0.0.1");
			break;
		case 1:
			ck_assert_int_eq(a[i].status, 404);
			ck_assert_str_eq(a[i].body, "unknown path\n");
			break;
		default:
			ck_assert_int_eq(a[i].status, 200);
			ck_assert_msg(strstr(a[i].body, want_port) != NULL,
			    "answer %d: %s", i, a[i].body);
		}
		ck_assert_int_eq(a[i].minor, 1);
		ck_assert(!a[i].close);
	}
	free(buf);

	/* The same without the half-close: keep-alive, all answered, the
	 * connection stays open (no EOF before the deadline we wait). */
	buf = send_and_read_to_eof(req, len, false, 1000, &got, &eof);
	ck_assert(!eof);
	n = split_answers(buf, got, a, PIPELINED + 1, false);
	ITD_ASSERT(dmn, n == PIPELINED, "keep-alive: %d whole answers of %d",
	    n, PIPELINED);
	free(buf);
	free(req);
}
END_TEST

/* Answers to the flood below: more than the daemon buffers for one
 * client (256 KiB) beyond what the sockets hold. */
#define FLOOD		12000

/*
 * Sends all of req on a new connection, reading only while it cannot
 * send (so that the answers pile up in the daemon, which must stop
 * reading and resume), then half-closes and reads to EOF.  Returns the
 * bytes read (caller frees); *eof says whether EOF came in deadline_ms.
 */
static char *
send_all_reading_when_blocked(const char *req, size_t len, int deadline_ms,
    size_t *outlen, bool *eof)
{
	struct pollfd	 pfd;
	int64_t		 deadline = it_now_ms() + deadline_ms;
	size_t		 cap = 1 << 20, off = 0, sent = 0;
	char		*buf = malloc(cap);
	ssize_t		 n;
	int		 fd, small = 4096;

	ck_assert_ptr_nonnull(buf);
	*eof = false;
	fd = it_http_connect(target);
	ck_assert_int_ge(fd, 0);
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	for (;;) {
		int64_t left = deadline - it_now_ms();

		if (left <= 0)
			break;
		pfd.fd = fd;
		pfd.events = sent < len ? POLLOUT | POLLIN : POLLIN;
		if (poll(&pfd, 1, (int)left) <= 0)
			break;
		if (sent < len && (pfd.revents & POLLOUT)) {
			n = send(fd, req + sent, len - sent,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			ck_assert_int_gt(n, 0);
			sent += (size_t)n;
			if (sent == len)
				ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
			continue;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (off + 4096 >= cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		n = recv(fd, buf + off, 4096, MSG_DONTWAIT);
		if (n == 0)
			*eof = true;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n > 0)
			off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*outlen = off;
	return buf;
}

/*
 * Reads the statuses of the whole answers at buf into status[0..max);
 * returns how many, or -1 at bytes that are not a whole keep-alive
 * answer.  split_answers() would take minutes here: its sscanf() measures
 * the rest of the buffer at every answer.
 */
static int
flood_statuses(const char *buf, size_t len, int *status, int max)
{
	static const char clen_hdr[] = "\r\nContent-Length: ";
	const char	*p = buf, *end = buf + len, *sep, *clen;
	int		 n = 0;

	while (p < end) {
		if (n == max || end - p < 12 ||
		    memcmp(p, "HTTP/1.1 ", 9) != 0 ||
		    (sep = memmem(p, (size_t)(end - p), "\r\n\r\n", 4)) == NULL ||
		    (clen = memmem(p, (size_t)(sep - p), clen_hdr,
		    sizeof(clen_hdr) - 1)) == NULL ||
		    memmem(p, (size_t)(sep - p), "Connection: close", 17) != NULL)
			return -1;
		status[n++] = atoi(p + 9);
		p = sep + 4 + strtoul(clen + sizeof(clen_hdr) - 1, NULL, 10);
	}
	return p == end ? n : -1;
}

START_TEST(test_a_flood_of_pipelined_requests_to_a_slow_reader_is_all_answered)
{
	static int	 status[FLOOD + 1];
	char		*req, *buf;
	size_t		 len = 0, cap = FLOOD * 64, got;
	bool		 eof;
	int		 i, n;

	start_daemon(0, "http_request_timeout_ms = 60000;\n");
	req = malloc(cap);
	ck_assert_ptr_nonnull(req);
	for (i = 0; i < FLOOD; i++)
		len += (size_t)snprintf(req + len, cap - len,
		    "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
		    i % 2 == 0 ? "/master" : "/nowhere");
	buf = send_all_reading_when_blocked(req, len, 60000, &got, &eof);
	ITD_ASSERT(dmn, eof, "no EOF after the answers: %zu bytes", got);
	n = flood_statuses(buf, got, status, FLOOD + 1);
	ITD_ASSERT(dmn, n == FLOOD, "%d whole answers of %d (%zu bytes)", n,
	    FLOOD, got);
	for (i = 0; i < FLOOD; i++)
		if (status[i] != (i % 2 == 0 ? 200 : 404))
			ck_abort_msg("answer %d: status %d", i, status[i]);
	free(buf);
	free(req);
	/* Still serving. */
	ck_assert_int_eq(port_of("/master"), it_port(cl, 0));
}
END_TEST

START_TEST(test_half_close_after_an_incomplete_request_answers_the_whole_ones)
{
	static const char req[] =
	    "GET /master HTTP/1.1\r\nHost: x\r\n\r\n"
	    "HEAD /master HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /master HTTP/1.1\r\nAccept: application/json\r\n\r\n"
	    "GET /master HTTP/1.1\r\nHost:";
	static const char head[] = "HEAD /master HTTP/1.1\r\n\r\n";
	struct answer	 a[4];
	char		*buf;
	size_t		 got;
	bool		 eof;
	int		 n;

	/* The request deadline is far: the close comes from the EOF. */
	start_daemon(0, "http_request_timeout_ms = 60000;\n");
	buf = send_and_read_to_eof(req, sizeof(req) - 1, true, 20000, &got,
	    &eof);
	ITD_ASSERT(dmn, eof, "not closed after the half-close: %s", buf);
	/* HEAD: headers only; split the GET, HEAD, GET by hand. */
	n = split_answers(buf, got, a, 4, false);
	ITD_ASSERT(dmn, n == -1, "a HEAD answer carried a body: %s", buf);
	{
		char *second = strstr(buf + 1, "HTTP/1.1 200");
		char *third = second != NULL ? strstr(second + 1,
		    "HTTP/1.1 200") : NULL;

		ck_assert_ptr_nonnull(third);
		ck_assert_int_eq(split_answers(buf, (size_t)(second - buf), a,
		    4, false), 1);
		ck_assert_str_eq(a[0].body, "127.0.0.1");
		ck_assert_int_eq(split_answers(second, (size_t)(third - second),
		    a, 4, true), 1);
		ck_assert_int_eq(a[0].status, 200);
		ck_assert_msg(strstr(second, "Content-Length: 9\r\n") != NULL,
		    "HEAD: %s", second);
		ck_assert_int_eq(split_answers(third, got - (size_t)(third -
		    buf), a, 4, false), 1);
		ck_assert_str_eq(a[0].body, "{\"host\": \"127.0.0.1\"}");
	}
	free(buf);

	/* Nothing whole at all: closed without an answer. */
	buf = send_and_read_to_eof(head, sizeof(head) - 4, true, 20000, &got,
	    &eof);
	ck_assert(eof);
	ck_assert_uint_eq(got, 0);
	free(buf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(http_clients() == 1, ITD_STATE_MS),
	    "half-closed connections still counted: %d", http_clients());
}
END_TEST

START_TEST(test_connection_close_http10_and_refused_heads)
{
	static const char close_mid[] =
	    "GET /master HTTP/1.1\r\n\r\n"
	    "GET /master HTTP/1.1\r\nConnection: close\r\n\r\n"
	    "GET /master HTTP/1.1\r\n\r\n";
	static const char http10[] = "GET /master HTTP/1.0\r\n\r\n"
	    "GET /master HTTP/1.0\r\n\r\n";
	static const char http10ka[] = "GET /master HTTP/1.0\r\n"
	    "Connection: keep-alive\r\n\r\nGET /master HTTP/1.0\r\n\r\n";
	static const struct {
		const char	*req;
		int		 status;
	} refused[] = {
		{ "GET /master HTTP/2.0\r\n\r\n", 505 },
		{ "GET /master HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413 },
		{ "GET /master HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "0\r\n\r\n", 413 },
		{ "GET /master HTTP/1.1\r\nBad Header: x\r\n\r\n", 400 },
		{ "GET  /master HTTP/1.1\r\n\r\n", 400 },
	};
	struct answer	 a[4];
	char		*buf, *big;
	size_t		 got, i;
	bool		 eof;
	int		 n;

	start_daemon(0, "http_request_timeout_ms = 60000;\n");
	/* Connection: close ends the stream after its answer. */
	buf = send_and_read_to_eof(close_mid, sizeof(close_mid) - 1, false,
	    20000, &got, &eof);
	ck_assert(eof);
	n = split_answers(buf, got, a, 4, false);
	ITD_ASSERT(dmn, n == 2, "%d answers: %s", n, buf);
	ck_assert(!a[0].close);
	ck_assert(a[1].close);
	free(buf);
	/* HTTP/1.0 closes after one answer, unless it asks keep-alive. */
	buf = send_and_read_to_eof(http10, sizeof(http10) - 1, false, 20000,
	    &got, &eof);
	ck_assert(eof);
	ck_assert_int_eq(split_answers(buf, got, a, 4, false), 1);
	ck_assert_int_eq(a[0].minor, 0);
	ck_assert(a[0].close);
	free(buf);
	buf = send_and_read_to_eof(http10ka, sizeof(http10ka) - 1, false,
	    20000, &got, &eof);
	ck_assert(eof);
	ck_assert_int_eq(split_answers(buf, got, a, 4, false), 2);
	ck_assert(strstr(buf, "Connection: keep-alive\r\n") != NULL);
	ck_assert(a[1].close);
	free(buf);
	/* Refused heads: their status, then the connection closes. */
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		buf = send_and_read_to_eof(refused[i].req,
		    strlen(refused[i].req), false, 20000, &got, &eof);
		ck_assert_msg(eof, "%s", refused[i].req);
		ck_assert_int_eq(split_answers(buf, got, a, 4, false), 1);
		ck_assert_msg(a[0].status == refused[i].status, "%s: %d",
		    refused[i].req, a[0].status);
		ck_assert(a[0].close);
		free(buf);
	}
	/* A 5000-byte target is 414; a 9000-byte head 431. */
	big = malloc(10000);
	ck_assert_ptr_nonnull(big);
	n = snprintf(big, 10000, "GET /master?");
	memset(big + n, 'a', 5000);
	snprintf(big + n + 5000, 10000 - (size_t)n - 5000,
	    " HTTP/1.1\r\n\r\n");
	buf = send_and_read_to_eof(big, strlen(big), false, 20000, &got, &eof);
	ck_assert_int_eq(split_answers(buf, got, a, 4, false), 1);
	ck_assert_int_eq(a[0].status, 414);
	free(buf);
	n = snprintf(big, 10000, "GET /master HTTP/1.1\r\nX: ");
	memset(big + n, 'a', 9000);
	snprintf(big + n + 9000, 10000 - (size_t)n - 9000, "\r\n\r\n");
	buf = send_and_read_to_eof(big, strlen(big), false, 20000, &got, &eof);
	ck_assert_int_eq(split_answers(buf, got, a, 4, false), 1);
	ck_assert_int_eq(a[0].status, 431);
	free(buf);
	free(big);
	/* Still serving. */
	ck_assert_int_eq(port_of("/master"), it_port(cl, 0));
}
END_TEST

static Suite *
http_suite(void)
{
	Suite	*s = suite_create("it_http");
	TCase	*tc;

	tc = tcase_create("roles");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_role_endpoints_plain_and_json_follow_a_failover);
	tcase_add_test(tc, test_no_host_is_404_with_empty_body_or_json_null);
	tcase_add_test(tc, test_cluster_parameter_selects_among_two_clusters);
	tcase_add_test(tc, test_pg_status_client_sequence_gets_documented_answers);
	tcase_add_test(tc, test_pg_status_replay_gets_pg_status_bodies_and_codes);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_http_listener_backlog_and_client_count);
	tcase_add_test(tc,
	    test_http_request_head_has_a_deadline_however_slow_the_drip);
	tcase_add_test(tc,
	    test_http_client_cap_pauses_the_listener_until_one_leaves);
	suite_add_tcase(s, tc);

	tc = tcase_create("pipelining");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc,
	    test_pipelined_requests_then_half_close_get_every_answer_in_order);
	tcase_add_test(tc,
	    test_half_close_after_an_incomplete_request_answers_the_whole_ones);
	tcase_add_test(tc, test_connection_close_http10_and_refused_heads);
	tcase_add_test(tc,
	    test_a_flood_of_pipelined_requests_to_a_slow_reader_is_all_answered);
	suite_add_tcase(s, tc);

	tc = tcase_create("observability");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_metrics_agree_with_status);
	tcase_add_test(tc, test_v1_status_is_the_socket_status_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, test_bad_requests_get_4xx_and_the_daemon_keeps_serving);
	tcase_add_test(tc, test_json_errors_have_one_shape);
	tcase_add_test(tc, test_unix_socket_listener_serves_and_goes_away_on_stop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(http_suite()));
}
