/*
 * fuzz_http.c - the HTTP listener's pure request handling (daemon/http.c):
 * routing, the Accept header, and the query parameters as libevent
 * decodes them (evhttp_parse_query_str, then http_params_parse).
 *
 * Input: the first byte picks the endpoint, the rest is the query string
 * (it also goes through http_endpoint_parse and http_wants_json).
 *
 * Properties:
 *  - parameters that parse re-format (http_params_format) to a query
 *    string that parses to the same parameters;
 *  - the same question can be asked on the socket: the query formatted as
 *    a RESOLVE request parses there to the same query (no drift between
 *    the HTTP and the socket grammar, e.g. in the bounds of numbers);
 *  - a health check answers 404 exactly when the cluster has no such
 *    host, and 200 or 503 otherwise.
 */
#include <sys/queue.h>

#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "fuzz.h"
#include "http_api.h"
#include "protocol.h"
#include "topology.h"

static void
check_same_params(const struct http_params *a, const struct http_params *b,
    const char *q)
{
	FUZZ_CHECK((a->cluster == NULL) == (b->cluster == NULL), "%s", q);
	FUZZ_CHECK(a->cluster == NULL || strcmp(a->cluster, b->cluster) == 0,
	    "%s", q);
	FUZZ_CHECK(a->query.want == b->query.want &&
	    a->query.max_lag_ms == b->query.max_lag_ms &&
	    a->query.max_lag_bytes == b->query.max_lag_bytes &&
	    a->query.has_min_lsn == b->query.has_min_lsn &&
	    a->query.min_lsn == b->query.min_lsn &&
	    a->query.fallback == b->query.fallback, "%s", q);
	FUZZ_CHECK((a->host == NULL) == (b->host == NULL), "%s", q);
	if (a->host != NULL)
		FUZZ_CHECK(strcmp(a->host_name, b->host_name) == 0 &&
		    a->host_port == b->host_port, "'%s' vs '%s'", a->host,
		    b->host);
}

/* The query p holds, asked as "RESOLVE c <role> [options]". */
static void
check_socket_agrees(const struct http_params *p, const char *q)
{
	struct proto_request	req, req2;
	char			line[PROTO_MAX_LINE + 2], sent[PROTO_MAX_LINE + 2];
	char			why[256];
	size_t			n;

	memset(&req, 0, sizeof req);
	req.cmd = PROTO_CMD_RESOLVE;
	req.cluster = "c";
	req.query = p->query;
	n = protocol_format_request(line, sizeof line, &req);
	FUZZ_CHECK(n > 1 && line[n - 1] == '\n', "%s", line);
	line[--n] = '\0';
	memcpy(sent, line, n + 1);
	FUZZ_CHECK(protocol_parse_request(line, n, &req2, why, sizeof why) ==
	    PROTO_OK, "HTTP took '%s', the socket refuses '%s': %s", q, sent,
	    why);
	FUZZ_CHECK(req2.query.want == p->query.want &&
	    req2.query.max_lag_ms == p->query.max_lag_ms &&
	    req2.query.max_lag_bytes == p->query.max_lag_bytes &&
	    req2.query.has_min_lsn == p->query.has_min_lsn &&
	    (!p->query.has_min_lsn || req2.query.min_lsn == p->query.min_lsn) &&
	    req2.query.fallback == p->query.fallback, "'%s' vs '%s'", q, sent);
}

static void
check_health(const struct http_params *p, bool replica)
{
	static struct topo_host	 m = { .host = "db1", .port = 5432,
	    .alive = true, .probed = true, .role = TOPO_ROLE_MASTER };
	static struct topo_host	 r = { .host = "::1", .port = 5433,
	    .alive = true, .probed = true, .role = TOPO_ROLE_REPLICA,
	    .lag_known = true, .lag_bytes = 100, .lag_ms = 5 };
	static struct topo_host	 d = { .host = "/run/pg", .port = 5434,
	    .why = TOPO_WHY_DEAD };
	struct topo_host	*hosts[] = { &m, &r, &d };
	struct topo_cluster	 c;
	char			 why[512];
	size_t			 i;
	bool			 known = false;
	int			 code;

	topology_cluster_init(&c, "main", hosts, 3, 0);
	c.master = 0;
	c.master_host = &m;
	for (i = 0; i < 3; i++)
		known |= hosts[i]->port == p->host_port &&
		    strcasecmp(hosts[i]->host, p->host_name) == 0;
	code = http_health(&c, p, replica, why, sizeof why);
	FUZZ_CHECK(known ? code == 200 || code == 503 : code == 404,
	    "%s:%d -> %d (%s)", p->host_name, p->host_port, code, why);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evkeyvalq	 kv, kv2;
	struct http_params	 p, p2;
	enum http_endpoint	 ep;
	char			*q, *again, why[256];
	size_t			 againlen;

	if (size < 1 || size > 4096)
		return (0);
	ep = (enum http_endpoint)(data[0] % HTTP_EP_COUNT);
	q = fuzz_cstr(data + 1, size - 1);
	(void)http_endpoint_parse(q);
	(void)http_wants_json(q);

	TAILQ_INIT(&kv);
	TAILQ_INIT(&kv2);
	againlen = 3 * size + 512;
	if ((again = malloc(againlen)) == NULL)
		abort();
	if (evhttp_parse_query_str(q, &kv) != 0 ||
	    http_params_parse(ep, &kv, &p, why, sizeof why) != 0)
		goto done;

	FUZZ_CHECK(http_params_format(ep, &p, again, againlen) == 0, "%s", q);
	FUZZ_CHECK(evhttp_parse_query_str(again, &kv2) == 0, "'%s' -> '%s'",
	    q, again);
	FUZZ_CHECK(http_params_parse(ep, &kv2, &p2, why, sizeof why) == 0,
	    "'%s' -> '%s': %s", q, again, why);
	check_same_params(&p, &p2, q);
	check_socket_agrees(&p, q);
	if (ep == HTTP_EP_HEALTH_PRIMARY || ep == HTTP_EP_HEALTH_REPLICA)
		check_health(&p, ep == HTTP_EP_HEALTH_REPLICA);
done:
	evhttp_clear_headers(&kv);
	evhttp_clear_headers(&kv2);
	free(again);
	free(q);
	return (0);
}
