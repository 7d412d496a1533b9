/*
 * check_http.c - unit tests of the pure half of daemon/http.c: routing,
 * parameters, the pg-status host answers, /replicas_info, the health
 * checks and the /metrics page, over hand-built topologies.
 *
 * The fixture: a cluster "main" of three hosts, 0 the primary, 1 and 2
 * replicas (2 lagging 5000 bytes and 3 s), and an evbuffer for output.
 */
#include <sys/mman.h>
#include <sys/queue.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http_api.h"
#include "protocol.h"
#include "server.h"
#include "topology.h"
#include "../check_main.h"

#define NHOSTS	3
#define SYSID	UINT64_C(7000000000000000001)
#define NOW_MS	INT64_C(1700000000000)

static struct topo_host		 hosts[NHOSTS];
static struct topo_host		*ptrs[NHOSTS];
static struct topo_cluster	 cl;
static struct evbuffer		*out;
static char			 text[16384];
static char			 why[256];

static void	setup(void);
static void	teardown(void);
static void	set_host(int i, bool primary, uint64_t lsn, int64_t lag_ms);
static const char *out_text(void);
static int	parse(enum http_endpoint ep, const char *query,
		    struct http_params *p);
static Suite	*http_suite(void);

/* Host i answers as the primary writing at lsn, or as a replica that
 * replayed lsn with its last transaction lag_ms old. */
static void
set_host(int i, bool primary, uint64_t lsn, int64_t lag_ms)
{
	struct topo_host	*h = &hosts[i];

	h->alive = true;
	h->probed = true;
	h->in_recovery = !primary;
	h->system_id = SYSID;
	h->timeline = 1;
	h->current_lsn = primary ? lsn : 0;
	h->receive_lsn = primary ? 0 : lsn;
	h->replay_lsn = primary ? 0 : lsn;
	h->has_replay_ts = !primary;
	h->host_now_ms = NOW_MS;
	h->replay_ts_ms = NOW_MS - lag_ms;
	h->last_ok_ms = 1;
	h->dead_since_ms = 0;
	h->fails = 0;
	h->probe_us = 1500;
}

static void
setup(void)
{
	int	i;

	memset(hosts, 0, sizeof(hosts));
	for (i = 0; i < NHOSTS; i++) {
		hosts[i].host = "127.0.0.1";
		hosts[i].port = 5432 + i;
		hosts[i].lag_ms = -1;
		ptrs[i] = &hosts[i];
	}
	hosts[2].host = "db3.example";
	topology_cluster_init(&cl, "main", ptrs, NHOSTS, 0);
	set_host(0, true, 100000, 0);
	set_host(1, false, 100000, 0);
	set_host(2, false, 95000, 3000);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 0);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_REPLICA);
	out = evbuffer_new();
	ck_assert_ptr_nonnull(out);
}

static void
teardown(void)
{
	evbuffer_free(out);
}

/* What out holds, as a string; out is emptied. */
static const char *
out_text(void)
{
	size_t	len = evbuffer_get_length(out);

	ck_assert_uint_lt(len, sizeof(text));
	evbuffer_remove(out, text, len);
	text[len] = '\0';
	return text;
}

/* Parses query ("a=1&b=2", NULL: none) for ep as the listener does. */
static int
parse(enum http_endpoint ep, const char *query, struct http_params *p)
{
	struct evkeyvalq	kv;
	int			rc;

	TAILQ_INIT(&kv);
	if (query != NULL)
		ck_assert_int_eq(evhttp_parse_query_str(query, &kv), 0);
	why[0] = '\0';
	rc = http_params_parse(ep, &kv, p, why, sizeof(why));
	/* p borrows from kv, which is cleared here: keep copies. */
	if (rc == 0 && p->cluster != NULL) {
		static char cluster[64];

		snprintf(cluster, sizeof(cluster), "%s", p->cluster);
		p->cluster = cluster;
	}
	if (rc == 0 && p->host != NULL) {
		static char host[300];

		snprintf(host, sizeof(host), "%s", p->host);
		p->host = host;
	}
	evhttp_clear_headers(&kv);
	return rc;
}

START_TEST(test_endpoint_parse_routes_exact_paths_only)
{
	ck_assert_int_eq(http_endpoint_parse("/master"), HTTP_EP_MASTER);
	ck_assert_int_eq(http_endpoint_parse("/replica"), HTTP_EP_REPLICA);
	ck_assert_int_eq(http_endpoint_parse("/sync_by_time_and_bytes"),
	    HTTP_EP_SYNC_BY_TIME_AND_BYTES);
	ck_assert_int_eq(http_endpoint_parse("/replicas_info"),
	    HTTP_EP_REPLICAS_INFO);
	ck_assert_int_eq(http_endpoint_parse("/v1/resolve"), HTTP_EP_V1_RESOLVE);
	ck_assert_int_eq(http_endpoint_parse("/metrics"), HTTP_EP_METRICS);
	ck_assert_int_eq(http_endpoint_parse("/health/replica"),
	    HTTP_EP_HEALTH_REPLICA);
	ck_assert_int_eq(http_endpoint_parse("/master/"), HTTP_EP_UNKNOWN);
	ck_assert_int_eq(http_endpoint_parse("/MASTER"), HTTP_EP_UNKNOWN);
	ck_assert_int_eq(http_endpoint_parse(""), HTTP_EP_UNKNOWN);
	ck_assert_int_eq(http_endpoint_parse(NULL), HTTP_EP_UNKNOWN);
	ck_assert_str_eq(http_endpoint_name(HTTP_EP_SYNC_BY_BYTES),
	    "/sync_by_bytes");
	ck_assert_str_eq(http_endpoint_name(HTTP_EP_UNKNOWN), "other");
}
END_TEST

START_TEST(test_accept_header_selects_json_only_for_application_json)
{
	/* pg-status sends JSON only for exactly this value. */
	ck_assert(http_wants_json("application/json"));
	ck_assert(http_wants_json("Application/JSON"));
	ck_assert(http_wants_json(" application/json "));
	ck_assert(!http_wants_json("application/json, text/plain, */*"));
	ck_assert(!http_wants_json("text/html, application/json;q=0.9"));
	ck_assert(!http_wants_json("text/plain;q=0.5 ,application/json"));
	ck_assert(!http_wants_json("application/json; charset=utf-8"));
	ck_assert(!http_wants_json("application/jsonx"));
	ck_assert(!http_wants_json("text/plain; x=application/json"));
	ck_assert(!http_wants_json("*/*"));
	ck_assert(!http_wants_json(""));
	ck_assert(!http_wants_json(NULL));
}
END_TEST

START_TEST(test_code_index_maps_unknown_codes_to_500)
{
	ck_assert_int_eq(http_codes[http_code_index(200)], 200);
	ck_assert_int_eq(http_codes[http_code_index(503)], 503);
	ck_assert_int_eq(http_codes[http_code_index(418)], 500);
}
END_TEST

START_TEST(test_params_role_endpoints_map_to_queries)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_MASTER, NULL, &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_MASTER);
	ck_assert_ptr_null(p.cluster);

	ck_assert_int_eq(parse(HTTP_EP_SYNC_BY_TIME, "lag_ms=5&cluster=b",
	    &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_SYNC_BY_TIME);
	ck_assert_int_eq(p.query.max_lag_ms, 5);
	ck_assert_int_eq(p.query.max_lag_bytes, -1);
	ck_assert_str_eq(p.cluster, "b");

	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "max_lag_bytes=7&min_lsn=0/"
	    "3000060&fallback=none", &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_REPLICA);
	ck_assert_int_eq(p.query.max_lag_bytes, 7);
	ck_assert(p.query.has_min_lsn);
	ck_assert_uint_eq(p.query.min_lsn, UINT64_C(0x3000060));
	ck_assert_int_eq(p.query.fallback, TOPO_FALLBACK_NONE);

	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=sync_by_bytes&"
	    "fallback=master", &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_SYNC_BY_BYTES);
	ck_assert_int_eq(p.query.fallback, TOPO_FALLBACK_MASTER);
}
END_TEST

START_TEST(test_params_pg_status_endpoints_ignore_unknown_ones)
{
	struct http_params	p;
	int			ep;

	/* Cache-busters and whatever pg-status ignores. */
	for (ep = HTTP_EP_MASTER; ep <= HTTP_EP_REPLICAS_INFO; ep++) {
		ck_assert_msg(http_is_pg_status((enum http_endpoint)ep),
		    "%d", ep);
		ck_assert_int_eq(parse((enum http_endpoint)ep, "_=123&x=1&"
		    "cluster=b&x=2", &p), 0);
		ck_assert_str_eq(p.cluster, "b");
	}
	ck_assert_int_eq(parse(HTTP_EP_MASTER, "lag_ms=1", &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_MASTER);
	ck_assert_int_eq(parse(HTTP_EP_REPLICAS_INFO, "lag_ms=abc", &p), 0);
	/* Known ones are still checked. */
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "_=1&lag_ms=x", &p), -1);
	ck_assert_str_eq(why, "Invalid lag_ms");
	ck_assert(!http_is_pg_status(HTTP_EP_V1_RESOLVE));
	ck_assert(!http_is_pg_status(HTTP_EP_METRICS));
	ck_assert(!http_is_pg_status(HTTP_EP_HEALTH_PRIMARY));
}
END_TEST

START_TEST(test_query_with_an_encoded_nul_is_spotted)
{
	ck_assert(http_query_has_nul("cluster=main%00junk"));
	ck_assert(http_query_has_nul("%00"));
	ck_assert(http_query_has_nul("a=1&b=%00"));
	ck_assert(!http_query_has_nul("cluster=main"));
	ck_assert(!http_query_has_nul("a=%20&b=%0a%10"));
	ck_assert(!http_query_has_nul("a=%0"));
	ck_assert(!http_query_has_nul(""));
}
END_TEST

START_TEST(test_params_refuse_unknown_repeated_and_malformed)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=master&x=1", &p), -1);
	ck_assert_str_eq(why, "unknown parameter 'x'");
	ck_assert_int_eq(parse(HTTP_EP_V1_STATUS, "_=1", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=a:1&lag_ms=1",
	    &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_METRICS, "cluster=main", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_ms=1&lag_ms=2", &p), -1);
	ck_assert_str_eq(why, "parameter 'lag_ms' given twice");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_ms=1&max_lag_ms=2", &p),
	    -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_ms=-1", &p), -1);
	ck_assert_str_eq(why, "Invalid lag_ms");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_ms=", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_bytes=1e3", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA,
	    "lag_bytes=99999999999999999999", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "min_lsn=zz", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "fallback=any", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "cluster=", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, NULL, &p), -1);
	ck_assert_str_eq(why, "missing parameter 'role'");
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=leader", &p), -1);
	ck_assert_str_eq(why, "unknown role 'leader'");
}
END_TEST

START_TEST(test_params_health_host_forms)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, NULL, &p), -1);
	ck_assert_str_eq(why, "missing parameter 'host'");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=db1:5432", &p), 0);
	ck_assert_str_eq(p.host_name, "db1");
	ck_assert_int_eq(p.host_port, 5432);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=%5B::1%5D:6432&max_lag_bytes=10", &p), 0);
	ck_assert_str_eq(p.host_name, "::1");
	ck_assert_int_eq(p.host_port, 6432);
	ck_assert_int_eq(p.query.max_lag_bytes, 10);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=::1:5432", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=db1", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=db1:0", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=db1:65536", &p),
	    -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=:5432", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY,
	    "host=db1:1&max_lag_bytes=1", &p), -1);
}
END_TEST

/* Found by tests/fuzz/fuzz_http: HTTP took lags the socket refuses. */
START_TEST(test_params_lag_bounds_are_the_sockets)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_REPLICA,
	    "max_lag_ms=4611686018427387904", &p), 0);
	ck_assert_int_eq(p.query.max_lag_ms, PROTO_MAX_LAG);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA,
	    "max_lag_ms=4611686018427387905", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA,
	    "max_lag_ms=9223372036854775807", &p), -1);
	ck_assert_str_eq(why, "Invalid max_lag_ms");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db1:1&lag_bytes=9223372036854775807", &p), -1);
}
END_TEST

/* http_params_format writes what parses back to the same parameters. */
START_TEST(test_params_format_round_trips)
{
	struct http_params	p, p2;
	char			q[512];

	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "fallback=none&role=standby"
	    "&lag_ms=5&cluster=a%2Bb%26c&min_lsn=0/ab&lag_bytes=7", &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_V1_RESOLVE, &p, q,
	    sizeof(q)), 0);
	ck_assert_str_eq(q, "cluster=a%2Bb%26c&role=replica&max_lag_ms=5&"
	    "max_lag_bytes=7&min_lsn=0%2FAB&fallback=none");
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, q, &p2), 0);
	ck_assert_str_eq(p2.cluster, "a+b&c");
	ck_assert_int_eq(p2.query.want, TOPO_WANT_REPLICA);
	ck_assert_int_eq(p2.query.max_lag_ms, 5);
	ck_assert_int_eq(p2.query.max_lag_bytes, 7);
	ck_assert_uint_eq(p2.query.min_lsn, 0xab);
	ck_assert_int_eq(p2.query.fallback, TOPO_FALLBACK_NONE);

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=%5B::1%5D:6432",
	    &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_HEALTH_PRIMARY, &p, q,
	    sizeof(q)), 0);
	ck_assert_str_eq(q, "host=%5B%3A%3A1%5D%3A6432");
	/* Brackets hold an IPv6 address and nothing else (common/hostport.h):
	 * no configured host has them, so no health check names one. */
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=%5B%5Bx%5D:1",
	    &p), -1);
	ck_assert_str_eq(why, "host must be HOST:PORT, [IPV6]:PORT or /DIR:PORT");

	ck_assert_int_eq(parse(HTTP_EP_MASTER, NULL, &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, sizeof(q)),
	    0);
	ck_assert_str_eq(q, "");
	ck_assert_int_eq(parse(HTTP_EP_MASTER, "cluster=main", &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 8), -1);
}
END_TEST

START_TEST(test_pick_cluster_defaults_to_the_first)
{
	struct topo_cluster	 other, *all[2] = { &cl, &other };

	topology_cluster_init(&other, "other", NULL, 0, 0);
	ck_assert_ptr_eq(http_pick_cluster(all, 2, NULL), &cl);
	ck_assert_ptr_eq(http_pick_cluster(all, 2, "other"), &other);
	ck_assert_ptr_null(http_pick_cluster(all, 2, "nope"));
	ck_assert_ptr_null(http_pick_cluster(all, 0, NULL));
}
END_TEST

START_TEST(test_host_answer_is_plain_text_or_pg_status_json)
{
	ck_assert_int_eq(http_format_host(out, &hosts[2], false), 0);
	ck_assert_str_eq(out_text(), "db3.example");
	ck_assert_int_eq(http_format_host(out, &hosts[2], true), 0);
	/* pg-status's body: no port (that is /v1/resolve's). */
	ck_assert_str_eq(out_text(), "{\"host\": \"db3.example\"}");
	ck_assert_int_eq(http_format_host(out, NULL, false), 0);
	ck_assert_str_eq(out_text(), "");
	ck_assert_int_eq(http_format_host(out, NULL, true), 0);
	ck_assert_str_eq(out_text(), "{\"host\": null}");
}
END_TEST

START_TEST(test_replicas_info_lists_live_replicas_with_lag)
{
	ck_assert_int_eq(http_format_replicas_info(out, &cl), 0);
	ck_assert_str_eq(out_text(),
	    "[{\"host\": \"127.0.0.1\", \"port\": 5433, \"lag_ms\": 0, "
	    "\"lag_bytes\": 0, \"replay_lsn\": \"0/186A0\"}, "
	    "{\"host\": \"db3.example\", \"port\": 5434, \"lag_ms\": 3000, "
	    "\"lag_bytes\": 5000, \"replay_lsn\": \"0/17318\"}]");

	hosts[1].alive = false;
	hosts[2].alive = false;
	topology_update(&cl);
	ck_assert_int_eq(http_format_replicas_info(out, &cl), 0);
	ck_assert_str_eq(out_text(), "[]");
}
END_TEST

START_TEST(test_resolve_object_names_cluster_role_and_generation)
{
	ck_assert_int_eq(http_format_resolve(out, &cl, &hosts[0]), 0);
	ck_assert_str_eq(out_text(), "{\"cluster\": \"main\", \"host\": "
	    "\"127.0.0.1\", \"port\": 5432, \"role\": \"master\", "
	    "\"generation\": 1}");
}
END_TEST

START_TEST(test_health_answers_200_for_the_role_503_otherwise)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=127.0.0.1:5432",
	    &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, false, why, sizeof(why)), 200);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "not a replica: primary");

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA, "host=DB3.example:5434",
	    &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 200);
	ck_assert_int_eq(http_health(&cl, &p, false, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "not primary: replica");

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434&max_lag_bytes=4999", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "replica, lag 5000 bytes over 4999");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434&max_lag_bytes=5000&max_lag_ms=2999", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434&max_lag_bytes=5000&max_lag_ms=3000", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 200);

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=127.0.0.1:9999",
	    &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, false, why, sizeof(why)), 404);

	/* A dead primary is not healthy. */
	hosts[0].alive = false;
	topology_update(&cl);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=127.0.0.1:5432",
	    &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, false, why, sizeof(why)), 503);
}
END_TEST

START_TEST(test_metrics_page_has_every_family_and_host)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct http_counters		 hc;
	struct server_counters		 sc;
	uint64_t			 changes[1] = { 4 };
	const char			*page;

	memset(&hc, 0, sizeof(hc));
	memset(&sc, 0, sizeof(sc));
	hc.requests[HTTP_EP_MASTER][0] = 7;
	hc.requests[HTTP_EP_UNKNOWN][http_code_index(404)] = 2;
	sc.requests[PROTO_CMD_RESOLVE][PROTO_ERR_NOHOST] = 3;
	sc.requests[SERVER_CMD_INVALID][PROTO_ERR_BADREQ] = 1;
	hosts[1].fails = 2;
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	in.role_changes = changes;
	in.http = &hc;
	in.socket = &sc;
	in.socket_clients = 5;
	in.http_clients = 3;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	page = out_text();

#define HAS(line) ck_assert_msg(strstr(page, line "\n") != NULL, \
	"missing: %s\n--- page:\n%s", line, page)
	HAS("# TYPE pgbeacon_host_up gauge");
	HAS("pgbeacon_host_up{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 1");
	HAS("pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\","
	    "port=\"5432\",role=\"master\"} 1");
	HAS("pgbeacon_host_role{cluster=\"main\",host=\"db3.example\","
	    "port=\"5434\",role=\"replica\"} 1");
	HAS("pgbeacon_host_role{cluster=\"main\",host=\"db3.example\","
	    "port=\"5434\",role=\"master\"} 0");
	HAS("pgbeacon_host_lag_bytes{cluster=\"main\",host=\"db3.example\","
	    "port=\"5434\"} 5000");
	HAS("pgbeacon_host_lag_seconds{cluster=\"main\",host=\"db3.example\","
	    "port=\"5434\"} 3.000");
	HAS("pgbeacon_host_probe_duration_seconds{cluster=\"main\","
	    "host=\"127.0.0.1\",port=\"5433\"} 0.001500");
	HAS("pgbeacon_host_consecutive_failures{cluster=\"main\","
	    "host=\"127.0.0.1\",port=\"5433\"} 2");
	HAS("pgbeacon_cluster_generation{cluster=\"main\"} 1");
	HAS("pgbeacon_cluster_has_master{cluster=\"main\"} 1");
	HAS("# TYPE pgbeacon_cluster_role_changes_total counter");
	HAS("pgbeacon_cluster_role_changes_total{cluster=\"main\"} 4");
	HAS("pgbeacon_http_requests_total{endpoint=\"/master\",code=\"200\"} 7");
	HAS("pgbeacon_http_requests_total{endpoint=\"/replica\",code=\"200\"} 0");
	HAS("pgbeacon_http_requests_total{endpoint=\"other\",code=\"404\"} 2");
	HAS("pgbeacon_socket_requests_total{command=\"resolve\","
	    "result=\"NOHOST\"} 3");
	HAS("pgbeacon_socket_requests_total{command=\"invalid\","
	    "result=\"BADREQ\"} 1");
	HAS("pgbeacon_socket_clients 5");
	HAS("# TYPE pgbeacon_http_clients gauge");
	HAS("pgbeacon_http_clients 3");
#undef HAS
	ck_assert_ptr_null(strstr(page, "code=\"503\""));
	ck_assert_ptr_null(strstr(page, "endpoint=\"other\",code=\"200\""));
	ck_assert_int_eq(page[strlen(page) - 1], '\n');
}
END_TEST

START_TEST(test_metrics_listener_families)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct proto_listener_stats	 ls[1];
	const char			*page;

	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	ck_assert_ptr_null(strstr(out_text(), "pgbeacon_listener_"));
	evbuffer_drain(out, evbuffer_get_length(out));

	memset(ls, 0, sizeof(ls));
	ls[0].cluster = "main";
	ls[0].address = "/run/pg\"b:5432";
	ls[0].role = "master";
	ls[0].clients = 3;
	ls[0].held = 1;
	ls[0].relayed_total = 40;
	ls[0].fenced_total = 2;
	ls[0].refused_total = 5;
	ls[0].bytes_up = 100;
	ls[0].bytes_down = 900;
	in.listeners = ls;
	in.nlisteners = 1;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	page = out_text();
#define HAS(line) ck_assert_msg(strstr(page, line "\n") != NULL, \
	"missing: %s\n--- page:\n%s", line, page)
#define L "{cluster=\"main\",address=\"/run/pg\\\"b:5432\",role=\"master\""
	HAS("# TYPE pgbeacon_listener_clients gauge");
	HAS("pgbeacon_listener_clients" L "} 3");
	HAS("pgbeacon_listener_held" L "} 1");
	HAS("# TYPE pgbeacon_listener_relayed_total counter");
	HAS("pgbeacon_listener_relayed_total" L "} 40");
	HAS("pgbeacon_listener_fenced_total" L "} 2");
	HAS("pgbeacon_listener_refused_total" L "} 5");
	HAS("pgbeacon_listener_bytes_total" L ",direction=\"from_clients\"} 100");
	HAS("pgbeacon_listener_bytes_total" L ",direction=\"to_clients\"} 900");
#undef L
#undef HAS
}
END_TEST

START_TEST(test_metrics_leave_out_unknown_lag_and_escape_labels)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	const char			*page;

	hosts[2].host = "we\"ird\\host";
	hosts[0].alive = false;		/* no primary: lags unknown */
	topology_update(&cl);
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	page = out_text();
	ck_assert_ptr_nonnull(strstr(page, "host=\"we\\\"ird\\\\host\""));
	ck_assert_ptr_null(strstr(page, "pgbeacon_host_lag_bytes{"));
	ck_assert_ptr_null(strstr(page, "pgbeacon_host_lag_seconds{"));
	ck_assert_ptr_nonnull(strstr(page,
	    "pgbeacon_cluster_has_master{cluster=\"main\"} 0\n"));
	ck_assert_ptr_null(strstr(page, "pgbeacon_http_requests_total"));
	ck_assert_ptr_null(strstr(page, "role_changes_total{"));
}
END_TEST

/* Every role endpoint asks for its own role, with no parameter at all. */
START_TEST(test_params_every_role_endpoint_without_parameters)
{
	static const struct {
		enum http_endpoint	ep;
		enum topo_want		want;
	} cases[] = {
		{ HTTP_EP_MASTER, TOPO_WANT_MASTER },
		{ HTTP_EP_REPLICA, TOPO_WANT_REPLICA },
		{ HTTP_EP_SYNC_BY_TIME, TOPO_WANT_SYNC_BY_TIME },
		{ HTTP_EP_SYNC_BY_BYTES, TOPO_WANT_SYNC_BY_BYTES },
		{ HTTP_EP_SYNC_BY_TIME_OR_BYTES,
		    TOPO_WANT_SYNC_BY_TIME_OR_BYTES },
		{ HTTP_EP_SYNC_BY_TIME_AND_BYTES,
		    TOPO_WANT_SYNC_BY_TIME_AND_BYTES },
	};
	struct http_params	p;
	size_t			i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(parse(cases[i].ep, NULL, &p), 0);
		ck_assert_msg(p.query.want == cases[i].want, "%s asks for %d",
		    http_endpoint_name(cases[i].ep), (int)p.query.want);
	}
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA, "host=db1:5432", &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_REPLICA);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=db1:5432", &p), 0);
	ck_assert_int_eq(p.query.want, TOPO_WANT_MASTER);
}
END_TEST

/* Bracketed hosts must be "[V6]:PORT" exactly. */
START_TEST(test_params_health_refuses_malformed_brackets)
{
	static const char *const bad[] = {
		"host=%5B::1", "host=%5B::1%5Dx5432", "host=%5B::1%5D",
		"host=%5B::1%5D:", "host=%5B%5D:5432", "host=%5B::1%5D:0",
		"host=%5B::1%5D:65536", "host=%5B::1%5D:54x",
		"host=%5B::1%5D:-1",
	};
	struct http_params	p;
	size_t			i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(parse(HTTP_EP_HEALTH_PRIMARY, bad[i], &p) == -1,
		    "accepted %s", bad[i]);
		ck_assert_str_eq(why, "host must be HOST:PORT, [IPV6]:PORT or /DIR:PORT");
	}
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=%5Bfe80::1%5D:1",
	    &p), 0);
	ck_assert_str_eq(p.host_name, "fe80::1");
	ck_assert_int_eq(p.host_port, 1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=d:65535", &p), 0);
	ck_assert_str_eq(p.host_name, "d");
	ck_assert_int_eq(p.host_port, 65535);
}
END_TEST

/* Occurrences of needle in hay. */
static int
count_of(const char *hay, const char *needle)
{
	int	n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* The request counters have one series per endpoint and command, never
 * one past the end of their tables. */
START_TEST(test_metrics_request_series_stay_in_their_tables)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct http_counters		 hc;
	struct server_counters		 sc;
	uint64_t			 changes[1] = { 0 };
	const char			*page;

	memset(&hc, 0, sizeof(hc));
	memset(&sc, 0, sizeof(sc));
	/* Every 200 (and OK) count is set, so that reading one past a row of
	 * the table would print an extra series. */
	for (size_t i = 0; i < HTTP_EP_COUNT; i++)
		hc.requests[i][0] = 1;
	for (size_t i = 0; i < SERVER_NCMDS; i++)
		sc.requests[i][PROTO_OK] = 1;
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	in.role_changes = changes;
	in.http = &hc;
	in.socket = &sc;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	page = out_text();
	ck_assert_int_eq(count_of(page, "pgbeacon_http_requests_total{"),
	    HTTP_EP_COUNT);
	ck_assert_int_eq(count_of(page, "code=\"200\"} 1\n"), HTTP_EP_COUNT);
	ck_assert_int_eq(count_of(page, "pgbeacon_socket_requests_total{"),
	    SERVER_NCMDS);
	ck_assert_int_eq(count_of(page, "result=\"OK\"} 1\n"), SERVER_NCMDS);
	ck_assert_ptr_null(strstr(page, "(null)"));
}
END_TEST

/* Limits of 0 are limits; a healthy replica says "replica". */
START_TEST(test_health_zero_limits_and_reasons)
{
	struct http_params	p;

	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434&max_lag_ms=0", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "replica, lag 3000 ms over 0");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434&max_lag_bytes=0", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "replica, lag 5000 bytes over 0");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=db3.example:5434", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 200);
	ck_assert_str_eq(why, "replica");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=127.0.0.1:5432",
	    &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, false, why, sizeof(why)), 200);
	ck_assert_str_eq(why, "primary");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "cluster=", &p), -1);
	ck_assert_str_eq(why, "empty cluster");
}
END_TEST

/* A cluster name and a lag as the socket takes them, no more (issue 12:
 * HTTP took max_lag_ms=9223372036854775807 and any cluster name). */
START_TEST(test_params_keep_the_socket_grammar)
{
	struct http_params	p;
	char			q[160];

	snprintf(q, sizeof(q), "cluster=%063d&max_lag_ms=4611686018427387904",
	    0);
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=master&"
	    "max_lag_ms=9223372036854775807", &p), -1);
	ck_assert_str_eq(why, "Invalid max_lag_ms");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, q, &p), 0);
	ck_assert_int_eq(p.query.max_lag_ms, PGBC_LAG_MAX);
	ck_assert_uint_eq(strlen(p.cluster), PGBC_CLUSTER_NAME_MAX);
	snprintf(q, sizeof(q), "cluster=%064d", 0);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, q, &p), -1);
	ck_assert_str_eq(why, "cluster name must be at most 63 bytes of "
	    "printable ASCII without spaces");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "cluster=a%20b", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "min_lsn=1", &p), -1);
	ck_assert_str_eq(why, "min_lsn must be an LSN like 16/B374D848");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "fallback=any", &p), -1);
	ck_assert_str_eq(why, "fallback must be master or none");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=/run/a:b:5432",
	    &p), 0);
	ck_assert_str_eq(p.host_name, "/run/a:b");
	ck_assert_int_eq(p.host_port, 5432);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=%5B::1", &p), -1);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=%5Bx%5D:5", &p),
	    -1);
}
END_TEST

/* JSON for exactly "application/json", as pg-status; blanks around it
 * are not part of it, anything else is. */
START_TEST(test_accept_header_trims_blanks_before_parameters)
{
	ck_assert(http_wants_json("application/json\t \t"));
	ck_assert(http_wants_json(" \tapplication/json"));
	ck_assert(!http_wants_json("application/json  ;q=1"));
	ck_assert(!http_wants_json("text/html , application/json \t, x/y"));
	ck_assert(!http_wants_json("application/jso"));
	ck_assert(!http_wants_json("application/jsonx"));
}
END_TEST

/* Freezes the end of a buffer once it holds *arg bytes or more: every
 * later append fails, as when memory runs out. */
static void
freeze_at_cb(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	(void)info;
	if (evbuffer_get_length(b) >= *(const size_t *)arg)
		evbuffer_freeze(b, 0);
}

/* Runs formatter k into a buffer that stops growing at limit bytes
 * (SIZE_MAX: never); its result, and the bytes it wrote in *len. */
static int
format_cut(int k, size_t limit, const struct http_metrics_input *in,
    size_t *len)
{
	struct evbuffer	*b = evbuffer_new();
	int		 rc = -1;

	ck_assert_ptr_nonnull(b);
	if (limit == 0)
		evbuffer_freeze(b, 0);
	else if (limit != SIZE_MAX)
		evbuffer_add_cb(b, freeze_at_cb, &limit);
	switch (k) {
	case 0:
		rc = http_format_metrics(b, in);
		break;
	case 1:
		rc = http_format_replicas_info(b, &cl);
		break;
	case 2:
		rc = http_format_host(b, &hosts[0], true);
		break;
	case 3:
		rc = http_format_host(b, &hosts[0], false);
		break;
	case 4:
		rc = http_format_resolve(b, &cl, &hosts[2]);
		break;
	}
	*len = evbuffer_get_length(b);
	evbuffer_free(b);
	return rc;
}

/* A formatter whose buffer stops growing at any point returns -1: it
 * never reports success for a cut answer. */
START_TEST(test_formatters_never_succeed_with_a_cut_answer)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct http_counters		 hc;
	struct server_counters		 sc;
	uint64_t			 changes[1] = { 4 };
	size_t				 full, len, limit;
	int				 k, rc;

	memset(&hc, 0, sizeof(hc));
	memset(&sc, 0, sizeof(sc));
	hc.requests[HTTP_EP_MASTER][0] = 7;
	sc.requests[PROTO_CMD_RESOLVE][PROTO_ERR_NOHOST] = 3;
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	in.role_changes = changes;
	in.http = &hc;
	in.socket = &sc;
	for (k = 0; k < 5; k++) {
		ck_assert_int_eq(format_cut(k, SIZE_MAX, &in, &full), 0);
		for (limit = 0; limit < full; limit++) {
			rc = format_cut(k, limit, &in, &len);
			ck_assert_msg(rc == -1 || len == full, "formatter %d cut "
			    "at %zu: %d with %zu of %zu bytes", k, limit, rc,
			    len, full);
		}
	}
}
END_TEST

/* An unknown parameter after a known one is still unknown. */
START_TEST(test_params_unknown_after_known_is_unknown)
{
	struct http_params	p;

	/* /v1/ is strict; the pg-status endpoints ignore it, as pg-status. */
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=replica&max_lag_ms=1"
	    "&x=2", &p), -1);
	ck_assert_str_eq(why, "unknown parameter 'x'");
	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "role=replica&cluster=a"
	    "&lag=2", &p), -1);
	ck_assert_str_eq(why, "unknown parameter 'lag'");
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "lag_ms=1&x=2", &p), 0);
	ck_assert_int_eq(p.query.max_lag_ms, 1);
}
END_TEST

/* --- request heads -------------------------------------------------- */

/* Parses the NUL-terminated s whole. */
static int
head_parse(const char *s, struct http_request *rq)
{
	return http_request_parse(s, strlen(s), rq);
}

START_TEST(test_request_parse_reads_a_head_and_stops_at_its_end)
{
	static const char two[] = "GET /master?x=1&y=2#frag HTTP/1.1\r\n"
	    "Host: h\r\naccept:  application/JSON \r\n"
	    "Accept: text/plain\r\n\r\n"
	    "HEAD /replica HTTP/1.0\r\n\r\n";
	struct http_request	 rq;
	int			 n;

	n = head_parse(two, &rq);
	ck_assert_int_eq(n, (int)(strstr(two, "HEAD") - two));
	ck_assert_int_eq(rq.method, HTTP_M_GET);
	ck_assert_int_eq(rq.minor, 1);
	ck_assert(rq.keep_alive);
	ck_assert(rq.json);		/* the first Accept counts */
	ck_assert_str_eq(rq.path, "/master");
	ck_assert(rq.has_query);
	ck_assert_str_eq(rq.query, "x=1&y=2");
	/* The second, pipelined behind it. */
	ck_assert_int_eq(head_parse(two + n, &rq), (int)strlen(two + n));
	ck_assert_int_eq(rq.method, HTTP_M_HEAD);
	ck_assert_int_eq(rq.minor, 0);
	ck_assert(!rq.keep_alive);
	ck_assert(!rq.json);
	ck_assert(!rq.has_query);
	ck_assert_str_eq(rq.query, "");	/* the struct is reused: no
					 * stale query from the first */
	ck_assert_str_eq(rq.path, "/replica");
	/* Every strict prefix is "not whole yet". */
	for (size_t i = 0; i < (size_t)n; i++)
		ck_assert_msg(http_request_parse(two, i, &rq) == 0, "%zu", i);
}
END_TEST

START_TEST(test_request_parse_options_and_forms)
{
	struct http_request	 rq;

	/* LF alone ends lines too; blank lines before a request skipped. */
	ck_assert_int_gt(head_parse("\r\n\nGET / HTTP/1.1\nHost: x\n\n", &rq), 0);
	ck_assert_str_eq(rq.path, "/");
	/* Connection options, a list, any case. */
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nConnection: TE, Close\r\n"
	    "\r\n", &rq), 0);
	ck_assert(!rq.keep_alive);
	ck_assert_int_gt(head_parse("GET / HTTP/1.0\r\nConnection: keep-alive"
	    "\r\n\r\n", &rq), 0);
	ck_assert(rq.keep_alive);
	ck_assert_int_gt(head_parse("GET / HTTP/1.0\r\nConnection: keep-alive, "
	    "close\r\n\r\n", &rq), 0);
	ck_assert(!rq.keep_alive);
	/* HTTP/1.9 is read as 1.1. */
	ck_assert_int_gt(head_parse("GET / HTTP/1.9\r\n\r\n", &rq), 0);
	ck_assert_int_eq(rq.minor, 1);
	/* Other methods are read, to be answered 405. */
	ck_assert_int_gt(head_parse("DELETE /master HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_int_eq(rq.method, HTTP_M_OTHER);
	ck_assert_int_gt(head_parse("get /master HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_int_eq(rq.method, HTTP_M_OTHER);	/* case-sensitive */
	/* Absolute form: the path. */
	ck_assert_int_gt(head_parse("GET http://h:1/v1/status?cluster=a HTTP/1.1"
	    "\r\n\r\n", &rq), 0);
	ck_assert_str_eq(rq.path, "/v1/status");
	ck_assert_str_eq(rq.query, "cluster=a");
	ck_assert_int_gt(head_parse("GET HTTPS://h HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_str_eq(rq.path, "/");
	ck_assert_int_eq(head_parse("GET http://h?x HTTP/1.1\r\n\r\n", &rq), -400);
	/* An empty query is a query. */
	ck_assert_int_gt(head_parse("GET /master? HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert(rq.has_query);
	ck_assert_str_eq(rq.query, "");
	/* Content-Length: 0 is no body. */
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n",
	    &rq), 0);
}
END_TEST

START_TEST(test_request_parse_refusals)
{
	static const struct {
		const char	*head;
		int		 rc;
	} cases[] = {
		{ "GET /\r\n\r\n", -400 },		/* HTTP/0.9 */
		{ "GET / HTTP/2.0\r\n\r\n", -505 },
		{ "GET / HTTP/1.1 \r\n\r\n", -400 },
		{ "GET / HTTP/1\r\n\r\n", -400 },
		{ "GET / HTTP/1.x\r\n\r\n", -400 },
		{ "GET  / HTTP/1.1\r\n\r\n", -400 },
		{ " GET / HTTP/1.1\r\n\r\n", -400 },
		{ "G(T / HTTP/1.1\r\n\r\n", -400 },
		{ "GET master HTTP/1.1\r\n\r\n", -400 },
		{ "GET /a\x01 HTTP/1.1\r\n\r\n", -400 },
		{ "GET /\xc3\xa9 HTTP/1.1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n: empty\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nName : x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", -413 },
		{ "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: \r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -413 },
	};
	struct http_request	 rq;
	char			*big;
	size_t			 i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(head_parse(cases[i].head, &rq) == cases[i].rc,
		    "%s: %d", cases[i].head, head_parse(cases[i].head, &rq));
	/* An embedded NUL. */
	ck_assert_int_eq(http_request_parse("GET / HTTP/1.1\r\nA: \0\r\n\r\n",
	    23, &rq), -400);

	big = malloc(3 * HTTP_MAX_HEADERS);
	ck_assert_ptr_nonnull(big);
	/* A target of HTTP_MAX_URI bytes passes, one more is 414. */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', HTTP_MAX_URI - 1);
	strcpy(big + n + HTTP_MAX_URI - 1, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(head_parse(big, &rq), (int)strlen(big));
	ck_assert_uint_eq(strlen(rq.path), HTTP_MAX_URI);
	memset(big + n, 'a', HTTP_MAX_URI);
	strcpy(big + n + HTTP_MAX_URI, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(head_parse(big, &rq), -414);
	/* ...also before the line is whole, once it cannot fit. */
	memset(big + n, 'a', HTTP_MAX_URI + 200);
	ck_assert_int_eq(http_request_parse(big, n + HTTP_MAX_URI + 200, &rq),
	    -414);
	ck_assert_int_eq(http_request_parse(big, n + HTTP_MAX_URI, &rq), 0);
	/* A head of HTTP_MAX_HEADERS bytes passes, one more is 431, whole
	 * or not. */
	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nX: ");
	memset(big + n, 'a', HTTP_MAX_HEADERS - n - 4);
	strcpy(big + HTTP_MAX_HEADERS - 4, "\r\n\r\n");
	ck_assert_int_eq(head_parse(big, &rq), HTTP_MAX_HEADERS);
	memset(big + n, 'a', HTTP_MAX_HEADERS - n - 3);
	strcpy(big + HTTP_MAX_HEADERS - 3, "\r\n\r\n");
	ck_assert_int_eq(head_parse(big, &rq), -431);
	ck_assert_int_eq(http_request_parse(big, HTTP_MAX_HEADERS, &rq), 0);
	ck_assert_int_eq(http_request_parse(big, HTTP_MAX_HEADERS + 1, &rq),
	    -431);
	free(big);
	/* Nothing yet. */
	ck_assert_int_eq(http_request_parse("", 0, &rq), 0);
	ck_assert_int_eq(http_request_parse("\r", 1, &rq), 0);
}
END_TEST

START_TEST(test_reason_phrases)
{
	ck_assert_str_eq(http_reason(200), "OK");
	ck_assert_str_eq(http_reason(404), "Not Found");
	ck_assert_str_eq(http_reason(405), "Method Not Allowed");
	ck_assert_str_eq(http_reason(413), "Payload Too Large");
	ck_assert_str_eq(http_reason(414), "URI Too Long");
	ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
	ck_assert_str_eq(http_reason(505), "HTTP Version Not Supported");
	ck_assert_str_eq(http_reason(299), "Unknown");
}
END_TEST

/* What b holds, as a string (caller frees); b is emptied. */
static char *
drain_str(struct evbuffer *b)
{
	size_t	 len = evbuffer_get_length(b);
	char	*s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	return s;
}

START_TEST(test_json_errors_have_one_shape)
{
	struct evbuffer	*b = evbuffer_new();
	char		*s;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(http_format_error(b, HTTP_EP_V1_STATUS,
	    HTTP_ERR_NOCLUSTER, "no cluster 'x\"'", false), 0);
	s = drain_str(b);
	ck_assert_str_eq(s, "{\"error\": \"NOCLUSTER\", \"error_text\": "
	    "\"no cluster 'x\\\"'\"}");
	free(s);
	/* pg-status's endpoints: what pg-status sends. */
	ck_assert_int_eq(http_format_error(b, HTTP_EP_REPLICA, HTTP_ERR_BADREQ,
	    "Invalid lag_ms", false), 0);
	s = drain_str(b);
	ck_assert_str_eq(s, "{\"error_text\": \"Invalid lag_ms\"}");
	free(s);
	ck_assert_int_eq(http_format_error(b, HTTP_EP_REPLICAS_INFO,
	    HTTP_ERR_INTERNAL, "out of memory", false), 0);
	s = drain_str(b);
	ck_assert_str_eq(s, "{\"error_text\": \"out of memory\"}");
	free(s);
	/* /v1/resolve's NOHOST keeps its old "why". */
	ck_assert_int_eq(http_format_error(b, HTTP_EP_V1_RESOLVE,
	    HTTP_ERR_NOHOST, "no replica", true), 0);
	s = drain_str(b);
	ck_assert_str_eq(s, "{\"error\": \"NOHOST\", \"error_text\": "
	    "\"no replica\", \"why\": \"no replica\"}");
	free(s);
	ck_assert_int_eq(http_format_error(b, HTTP_EP_UNKNOWN,
	    HTTP_ERR_NOTFOUND, "unknown path", false), 0);
	s = drain_str(b);
	ck_assert_str_eq(s, "{\"error\": \"NOTFOUND\", \"error_text\": "
	    "\"unknown path\"}");
	free(s);
	evbuffer_free(b);
}
END_TEST

/* Third round of mutants (issue 11 §4): endpoint names out of range,
 * the one-cluster default, a role or host that does not fit. */
START_TEST(test_mut3_names_pick_and_cut_formats)
{
	struct topo_cluster	*one[1] = { &cl };
	struct http_params	 p;
	char			 q[128];

	ck_assert_str_eq(http_endpoint_name(HTTP_EP_COUNT), "other");
	ck_assert_str_eq(http_endpoint_name((enum http_endpoint)-1), "other");
	ck_assert_str_eq(http_endpoint_name(HTTP_EP_MASTER), "/master");

	ck_assert_ptr_eq(http_pick_cluster(one, 1, NULL), &cl);

	ck_assert_int_eq(parse(HTTP_EP_V1_RESOLVE, "cluster=m&role=master",
	    &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_V1_RESOLVE, &p, q,
	    sizeof(q)), 0);
	ck_assert_str_eq(q, "cluster=m&role=master");
	/* "cluster=m" fits in 12 bytes, "&role=master" after it does not. */
	ck_assert_int_eq(http_params_format(HTTP_EP_V1_RESOLVE, &p, q, 12),
	    -1);
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 12), 0);
	ck_assert_str_eq(q, "cluster=m");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_PRIMARY, "host=d:1", &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_HEALTH_PRIMARY, &p, q,
	    sizeof(q)), 0);
	ck_assert_str_eq(q, "host=d%3A1");
	ck_assert_int_eq(http_params_format(HTTP_EP_HEALTH_PRIMARY, &p, q, 5),
	    -1);
}
END_TEST

/* A replica with no lag passes max_lag_ms=0; a lag in bytes is shown
 * when the lag in time is not; every family once per listener. */
START_TEST(test_mut3_zero_lag_and_metric_lines)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct proto_listener_stats	 ls[1];
	struct http_params		 p;
	const char			*page;

	ck_assert_int_eq(hosts[1].lag_ms, 0);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=127.0.0.1:5433&max_lag_ms=0&max_lag_bytes=0", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 200);
	ck_assert_str_eq(why, "replica");

	hosts[1].lag_ms = -1;		/* time lag unknown, bytes known */
	memset(ls, 0, sizeof(ls));
	ls[0].cluster = "main";
	ls[0].address = "a:1";
	ls[0].role = "master";
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	in.listeners = ls;
	in.nlisteners = 1;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	page = out_text();
	ck_assert_ptr_nonnull(strstr(page, "pgbeacon_host_lag_bytes{cluster="
	    "\"main\",host=\"127.0.0.1\",port=\"5433\"} 0\n"));
	ck_assert_ptr_null(strstr(page, "pgbeacon_host_lag_seconds{cluster="
	    "\"main\",host=\"127.0.0.1\",port=\"5433\"}"));
	ck_assert_int_eq(count_of(page, "pgbeacon_listener_clients{"), 1);
	ck_assert_int_eq(count_of(page, "pgbeacon_listener_bytes_total{"), 2);
	/* Every family head names a pgbeacon family. */
	ck_assert_int_eq(count_of(page, "# HELP "),
	    count_of(page, "# HELP pgbeacon_"));
	ck_assert_ptr_null(strstr(page, "(null)"));
}
END_TEST

/* Request heads at the edges of their grammar (third round of mutants). */
START_TEST(test_mut3_request_head_edges)
{
	static const struct {
		const char	*head;
		int		 rc;
	} cases[] = {
		{ "GET / HTTP/1x1\r\n\r\n", -400 },
		{ "GET x HTTP/1.1\r\n\r\n", -400 },
		{ "GET *x HTTP/1.1\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", -413 },
		{ "GET / HTTP/1.1\r\nContent-Length: 0\t\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\nAZaz09!#$%&'*+-.^_`|~: v\r\n\r\n", 0 },
		{ "OPTIONS * HTTP/1.1\r\n\r\n", 0 },
	};
	struct http_request	 rq;
	char			 line[128];
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = head_parse(cases[i].head, &rq);
		if (cases[i].rc == 0)
			ck_assert_msg(rc > 0, "%s: %d", cases[i].head, rc);
		else
			ck_assert_msg(rc == cases[i].rc, "%s: %d",
			    cases[i].head, rc);
	}
	/* "http://h" (8 bytes) is the absolute form of "/". */
	ck_assert_int_gt(head_parse("GET http://h HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_str_eq(rq.path, "/");
	/* A method of 32 bytes is read; of 33, refused. */
	memset(line, 'M', 32);
	snprintf(line + 32, sizeof(line) - 32, " / HTTP/1.1\r\n\r\n");
	ck_assert_int_gt(head_parse(line, &rq), 0);
	ck_assert_int_eq(rq.method, HTTP_M_OTHER);
	memset(line, 'M', 33);
	snprintf(line + 33, sizeof(line) - 33, " / HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(head_parse(line, &rq), -400);
	/* Only Connection itself lists connection options. */
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nUser-Agent: close\r\n"
	    "Conn: close\r\n\r\n", &rq), 0);
	ck_assert(rq.keep_alive);
}
END_TEST

/* The sizes: a header line cut past HTTP_MAX_HEADERS is 431; a request
 * line of exactly HTTP_MAX_URI bytes in a head that is too big, too. */
START_TEST(test_mut3_request_head_sizes)
{
	struct http_request	 rq;
	char			*buf;
	size_t			 n, k;

	buf = malloc(3 * HTTP_MAX_HEADERS);
	ck_assert_ptr_nonnull(buf);
	n = (size_t)snprintf(buf, 64, "GET / HTTP/1.1\r\nA: ");
	memset(buf + n, 'x', HTTP_MAX_HEADERS);
	n += HTTP_MAX_HEADERS;
	ck_assert_int_eq(http_request_parse(buf, n, &rq), -431);

	n = 4100;
	memset(buf, '\n', n);
	k = HTTP_MAX_URI - strlen("GET / HTTP/1.1");
	memcpy(buf + n, "GET /", 5);
	memset(buf + n + 5, 'a', k);
	memcpy(buf + n + 5 + k, " HTTP/1.1\n\n", 11);
	n += 5 + k + 11;
	ck_assert_int_eq(http_request_parse(buf, n, &rq), -431);
	free(buf);
}
END_TEST

/* --- fourth round of mutants (issue 11 §4) ------------------------------ */

/* Maps two pages after (at_end) or before one that may not be read, and
 * copies the n bytes of s next to it: a read past (or before) them
 * crashes.  guarded_free() unmaps. */
static char	*guard_map;
static size_t	 guard_pg;

static const char *
guarded(const char *s, size_t n, bool at_end)
{
	char	*page;

	guard_pg = (size_t)sysconf(_SC_PAGESIZE);
	ck_assert_uint_le(n, guard_pg);
	guard_map = mmap(NULL, 3 * guard_pg, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(guard_map, MAP_FAILED);
	ck_assert_int_eq(mprotect(guard_map, guard_pg, PROT_NONE), 0);
	ck_assert_int_eq(mprotect(guard_map + 2 * guard_pg, guard_pg,
	    PROT_NONE), 0);
	page = guard_map + guard_pg;
	if (at_end)
		page += guard_pg - n;
	memcpy(page, s, n);
	return page;
}

static void
guarded_free(void)
{
	ck_assert_int_eq(munmap(guard_map, 3 * guard_pg), 0);
}

/* The parsers read nothing before or after what they are given. */
START_TEST(test_mut4_parsers_stay_in_their_input)
{
	static const char	*const heads[] = { "\n\n", "\r", "\r\n\r",
	    "GET / HTTP/1.1\r\n\r\n" };
	struct http_request	 rq;
	size_t			 i;

	ck_assert(!http_wants_json(guarded("", 1, false)));
	guarded_free();
	ck_assert(!http_wants_json(guarded("  ", 3, false)));
	guarded_free();
	ck_assert(http_wants_json(guarded(" application/json\t", 19, false)));
	guarded_free();
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		ck_assert_int_eq(http_request_parse(guarded(heads[i],
		    strlen(heads[i]), true), strlen(heads[i]), &rq),
		    i == 3 ? (int)strlen(heads[i]) : 0);
		guarded_free();
	}
}
END_TEST

/* Request heads: each part of the grammar, and the blank lines before
 * a request. */
START_TEST(test_mut4_request_head_grammar)
{
	static const struct {
		const char	*head;
		int		 rc;	/* 1: parsed */
		int		 method;
	} cases[] = {
		{ "GET\r\n\r\n", -400, 0 },
		{ "G / HTTP/1.1\r\n\r\n", 1, HTTP_M_OTHER },
		{ " / HTTP/1.1\r\n\r\n", -400, 0 },
		{ "@ET / HTTP/1.1\r\n\r\n", -400, 0 },
		{ "POST / HTTP/1.1\r\n\r\n", 1, HTTP_M_OTHER },
		{ "HEAD / HTTP/1.1\r\n\r\n", 1, HTTP_M_HEAD },
		{ "GET / XTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET / HTTP/0.9\r\n\r\n", -505, 0 },
		{ "GET / HTTP/9.1\r\n\r\n", -505, 0 },
		{ "GET / HTTP/x.1\r\n\r\n", -400, 0 },
		{ "GET / HTTP/:.1\r\n\r\n", -400, 0 },
		{ "GET  HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET /\x7f HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET http:// HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET https:// HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET http://?x/y HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET http:///x HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET https:///master HTTP/1.1\r\n\r\n", -400, 0 },
		{ "GET / HTTP/1.1\r\n X: y\r\n\r\n", -400, 0 },
		{ "GET / HTTP/1.1\r\n@X: y\r\n\r\n", -400, 0 },
		{ "GET / HTTP/1.1\r\nA:\x01\r\n\r\n", -400, 0 },
		{ "GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", -400, 0 },
		{ "GET / HTTP/1.1\r\nX-Custom-Field: 5\r\n\r\n", 1, HTTP_M_GET },
		{ "GET / HTTP/1.1\r\nX-Custom-Header-1: v\r\n\r\n", 1,
		    HTTP_M_GET },
		{ "GET / HTTP/1.1\r\nContent-Length: 0 \r\n\r\n", 1, HTTP_M_GET },
		{ "\r\nGET / HTTP/1.1\r\n\r\n", 1, HTTP_M_GET },
		{ "\nGET / HTTP/1.1\r\n\r\n", 1, HTTP_M_GET },
		{ "\n\r\n\nHEAD / HTTP/1.1\r\n\r\n", 1, HTTP_M_HEAD },
		{ "\r\n", 0, 0 },
		{ "\rXGET / HTTP/1.1\r\n\r\n", -400, 0 },
	};
	struct http_request	 rq;
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = head_parse(cases[i].head, &rq);
		if (cases[i].rc == 1) {
			ck_assert_msg(rc == (int)strlen(cases[i].head),
			    "%s: %d", cases[i].head, rc);
			ck_assert_int_eq(rq.method, cases[i].method);
			ck_assert_str_eq(rq.path, "/");
		} else
			ck_assert_msg(rc == cases[i].rc, "%s: %d",
			    cases[i].head, rc);
	}
	/* A NUL is refused before the version is looked at. */
	ck_assert_int_eq(http_request_parse("GET /\0 HTTP/2.0\r\n\r\n", 19,
	    &rq), -400);
	/* What Accept and Connection say, blanks and lists. */
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nX-Test: application/json"
	    "\r\nAcc: application/json\r\n\r\n", &rq), 0);
	ck_assert(!rq.json);
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nAccept: application/json"
	    "\t\r\n\r\n", &rq), 0);
	ck_assert(rq.json);
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nConnection: close\t\r\n"
	    "\r\n", &rq), 0);
	ck_assert(!rq.keep_alive);
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nConnection: x,close\r\n"
	    "\r\n", &rq), 0);
	ck_assert(!rq.keep_alive);
	ck_assert_int_gt(head_parse("GET / HTTP/1.1\r\nConnection: clo5e, "
	    "clo\r\n\r\n", &rq), 0);
	ck_assert(rq.keep_alive);
	ck_assert_int_gt(head_parse("GET / HTTP/1.0\r\nConnection: keep-alive,"
	    "\r\n\r\n", &rq), 0);
	ck_assert(rq.keep_alive);
	/* A head that is not whole, or refused, has no path. */
	ck_assert_int_gt(head_parse("GET /x HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_str_eq(rq.path, "/x");
	ck_assert_int_eq(head_parse("GET /y HT", &rq), 0);
	ck_assert_str_eq(rq.path, "");
	ck_assert_int_gt(head_parse("GET /x HTTP/1.1\r\n\r\n", &rq), 0);
	ck_assert_int_eq(head_parse("GET /y HTTP/3.0\r\n\r\n", &rq), -505);
	ck_assert_str_eq(rq.path, "");
}
END_TEST

/* The sizes of a request line: a target of a bad byte then HTTP_MAX_URI
 * bytes is 400 (the bad byte first), an absolute form with no path and a
 * long authority is "/" alone, a line that is not whole is refused above
 * HTTP_MAX_METHOD + HTTP_MAX_URI + 16 bytes, a whole line longer than
 * the head's bound is 414. */
START_TEST(test_mut4_request_line_sizes)
{
	struct http_request	 rq;
	char			*buf;
	size_t			 n;

	buf = malloc(3 * HTTP_MAX_HEADERS);
	ck_assert_ptr_nonnull(buf);
	n = (size_t)snprintf(buf, 64, "GET \x7f");
	memset(buf + n, 'a', HTTP_MAX_URI);
	n += HTTP_MAX_URI;
	n += (size_t)snprintf(buf + n, 64, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(http_request_parse(buf, n, &rq), -400);

	n = (size_t)snprintf(buf, 64, "GET http://");
	memset(buf + n, 'h', HTTP_MAX_URI - 8);
	n += HTTP_MAX_URI - 8;
	n += (size_t)snprintf(buf + n, 64, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(http_request_parse(buf, n, &rq), (int)n);
	ck_assert_str_eq(rq.path, "/");
	ck_assert(!rq.has_query);
	ck_assert_str_eq(rq.query, "");

	n = 32 + HTTP_MAX_URI + 16;	/* HTTP_MAX_METHOD is 32 */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', n - 5);
	ck_assert_int_eq(http_request_parse(buf, n, &rq), 0);
	ck_assert_int_eq(http_request_parse(buf, n + 1, &rq), -414);

	memset(buf + 5, 'a', HTTP_MAX_HEADERS);
	n = 5 + HTTP_MAX_HEADERS;
	n += (size_t)snprintf(buf + n, 64, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(http_request_parse(buf, n, &rq), -414);
	free(buf);
}
END_TEST

/* A replica whose lag in bytes is known and in time is not fails a
 * max_lag_ms health check as "lag unknown". */
START_TEST(test_mut4_health_time_lag_unknown)
{
	struct http_params	p;

	hosts[1].lag_ms = -1;
	ck_assert(hosts[1].lag_known);
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=127.0.0.1:5433&max_lag_ms=10", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 503);
	ck_assert_str_eq(why, "replica, lag unknown");
	ck_assert_int_eq(parse(HTTP_EP_HEALTH_REPLICA,
	    "host=127.0.0.1:5433&max_lag_bytes=10", &p), 0);
	ck_assert_int_eq(http_health(&cl, &p, true, why, sizeof(why)), 200);

	ck_assert_str_eq(http_reason(400), "Bad Request");
	ck_assert_str_eq(http_reason(500), "Internal Server Error");
	ck_assert_str_eq(http_reason(503), "Service Unavailable");
}
END_TEST

/* page is the n lines of want, each ended by a newline. */
static void
assert_lines(const char *page, const char *const *want, size_t n)
{
	const char	*p = page, *nl;
	size_t		 i;

	for (i = 0; i < n; i++) {
		nl = strchr(p, '\n');
		ck_assert_msg(nl != NULL, "line %zu missing: %s", i + 1,
		    want[i]);
		ck_assert_msg((size_t)(nl - p) == strlen(want[i]) &&
		    memcmp(p, want[i], strlen(want[i])) == 0,
		    "line %zu is \"%.*s\", not \"%s\"", i + 1,
		    (int)(nl - p > 200 ? 200 : nl - p), p, want[i]);
		p = nl + 1;
	}
	ck_assert_msg(*p == '\0', "more lines than %zu: %.200s", n, p);
}

/* The whole /metrics page of two clusters, line by line: the value and
 * the set of series of every family (a dead host, a replica with no lag
 * and one 2.5 s slow to probe, a cluster with no primary, zero counters
 * that still have their 200 or OK series). */
START_TEST(test_mut4_metrics_page_whole)
{
	static const char	*const want[] = {
		"# HELP pgbeacon_host_up 1 when the host answers probes, 0 when it is dead.",
		"# TYPE pgbeacon_host_up gauge",
		"pgbeacon_host_up{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 1",
		"pgbeacon_host_up{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\"} 1",
		"pgbeacon_host_up{cluster=\"main\",host=\"db3.example\",port=\"5434\"} 1",
		"pgbeacon_host_up{cluster=\"b\",host=\"/run/pg\",port=\"5432\"} 0",
		"# HELP pgbeacon_host_role 1 for the role the host holds (master, replica or none).",
		"# TYPE pgbeacon_host_role gauge",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\",role=\"master\"} 1",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\",role=\"replica\"} 0",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\",role=\"none\"} 0",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\",role=\"master\"} 0",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\",role=\"replica\"} 1",
		"pgbeacon_host_role{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\",role=\"none\"} 0",
		"pgbeacon_host_role{cluster=\"main\",host=\"db3.example\",port=\"5434\",role=\"master\"} 0",
		"pgbeacon_host_role{cluster=\"main\",host=\"db3.example\",port=\"5434\",role=\"replica\"} 1",
		"pgbeacon_host_role{cluster=\"main\",host=\"db3.example\",port=\"5434\",role=\"none\"} 0",
		"pgbeacon_host_role{cluster=\"b\",host=\"/run/pg\",port=\"5432\",role=\"master\"} 0",
		"pgbeacon_host_role{cluster=\"b\",host=\"/run/pg\",port=\"5432\",role=\"replica\"} 0",
		"pgbeacon_host_role{cluster=\"b\",host=\"/run/pg\",port=\"5432\",role=\"none\"} 1",
		"# HELP pgbeacon_host_lag_bytes Replay lag behind the primary in bytes; absent when unknown.",
		"# TYPE pgbeacon_host_lag_bytes gauge",
		"pgbeacon_host_lag_bytes{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 0",
		"pgbeacon_host_lag_bytes{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\"} 0",
		"pgbeacon_host_lag_bytes{cluster=\"main\",host=\"db3.example\",port=\"5434\"} 5000",
		"# HELP pgbeacon_host_lag_seconds Replay lag behind the primary in seconds (ms resolution); absent when unknown.",
		"# TYPE pgbeacon_host_lag_seconds gauge",
		"pgbeacon_host_lag_seconds{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 0.000",
		"pgbeacon_host_lag_seconds{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\"} 0.000",
		"pgbeacon_host_lag_seconds{cluster=\"main\",host=\"db3.example\",port=\"5434\"} 3.000",
		"# HELP pgbeacon_host_probe_duration_seconds Duration of the last successful probe.",
		"# TYPE pgbeacon_host_probe_duration_seconds gauge",
		"pgbeacon_host_probe_duration_seconds{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 0.001500",
		"pgbeacon_host_probe_duration_seconds{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\"} 1.000000",
		"pgbeacon_host_probe_duration_seconds{cluster=\"main\",host=\"db3.example\",port=\"5434\"} 2.500001",
		"pgbeacon_host_probe_duration_seconds{cluster=\"b\",host=\"/run/pg\",port=\"5432\"} 0.000000",
		"# HELP pgbeacon_host_consecutive_failures Probes failed in a row.",
		"# TYPE pgbeacon_host_consecutive_failures gauge",
		"pgbeacon_host_consecutive_failures{cluster=\"main\",host=\"127.0.0.1\",port=\"5432\"} 0",
		"pgbeacon_host_consecutive_failures{cluster=\"main\",host=\"127.0.0.1\",port=\"5433\"} 0",
		"pgbeacon_host_consecutive_failures{cluster=\"main\",host=\"db3.example\",port=\"5434\"} 2",
		"pgbeacon_host_consecutive_failures{cluster=\"b\",host=\"/run/pg\",port=\"5432\"} 0",
		"# HELP pgbeacon_cluster_generation Changes of the answer to 'who is primary' since start.",
		"# TYPE pgbeacon_cluster_generation gauge",
		"pgbeacon_cluster_generation{cluster=\"main\"} 1",
		"pgbeacon_cluster_generation{cluster=\"b\"} 0",
		"# HELP pgbeacon_cluster_has_master 1 when the cluster has a primary.",
		"# TYPE pgbeacon_cluster_has_master gauge",
		"pgbeacon_cluster_has_master{cluster=\"main\"} 1",
		"pgbeacon_cluster_has_master{cluster=\"b\"} 0",
		"# HELP pgbeacon_cluster_role_changes_total Changes of any host's role (master, replica, none) since start or reload.",
		"# TYPE pgbeacon_cluster_role_changes_total counter",
		"pgbeacon_cluster_role_changes_total{cluster=\"main\"} 4",
		"pgbeacon_cluster_role_changes_total{cluster=\"b\"} 0",
		"# HELP pgbeacon_http_requests_total HTTP requests answered, by endpoint and status code.",
		"# TYPE pgbeacon_http_requests_total counter",
		"pgbeacon_http_requests_total{endpoint=\"/master\",code=\"200\"} 7",
		"pgbeacon_http_requests_total{endpoint=\"/replica\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/replica\",code=\"503\"} 2",
		"pgbeacon_http_requests_total{endpoint=\"/sync_by_time\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/sync_by_bytes\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/sync_by_time_or_bytes\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/sync_by_time_and_bytes\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/replicas_info\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/v1/resolve\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/v1/status\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/metrics\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/health/primary\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"/health/replica\",code=\"200\"} 0",
		"pgbeacon_http_requests_total{endpoint=\"other\",code=\"404\"} 1",
		"# HELP pgbeacon_socket_requests_total Unix-socket requests answered, by command and result.",
		"# TYPE pgbeacon_socket_requests_total counter",
		"pgbeacon_socket_requests_total{command=\"resolve\",result=\"OK\"} 3",
		"pgbeacon_socket_requests_total{command=\"resolve\",result=\"NOHOST\"} 1",
		"pgbeacon_socket_requests_total{command=\"status\",result=\"OK\"} 0",
		"pgbeacon_socket_requests_total{command=\"watch\",result=\"OK\"} 0",
		"pgbeacon_socket_requests_total{command=\"ping\",result=\"OK\"} 0",
		"pgbeacon_socket_requests_total{command=\"forget\",result=\"OK\"} 0",
		"pgbeacon_socket_requests_total{command=\"invalid\",result=\"BADREQ\"} 5",
		"# HELP pgbeacon_http_clients Connections to the HTTP listener.",
		"# TYPE pgbeacon_http_clients gauge",
		"pgbeacon_http_clients 3",
		"# HELP pgbeacon_socket_clients Clients connected to the Unix socket.",
		"# TYPE pgbeacon_socket_clients gauge",
		"pgbeacon_socket_clients 1",
	};
	struct topo_host		 bh, *bptr[1] = { &bh };
	struct topo_cluster		 b, *all[2] = { &cl, &b };
	struct http_metrics_input	 in;
	struct http_counters		 hc;
	struct server_counters		 sc;
	uint64_t			 changes[2] = { 4, 0 };

	memset(&bh, 0, sizeof(bh));
	bh.host = "/run/pg";
	bh.port = 5432;
	bh.lag_ms = -1;
	topology_cluster_init(&b, "b", bptr, 1, 0);
	topology_update(&b);
	ck_assert_int_eq(b.master, -1);
	hosts[1].probe_us = 1000000;
	hosts[2].probe_us = 2500001;
	hosts[2].fails = 2;
	memset(&hc, 0, sizeof(hc));
	memset(&sc, 0, sizeof(sc));
	hc.requests[HTTP_EP_MASTER][0] = 7;
	hc.requests[HTTP_EP_REPLICA][5] = 2;
	hc.requests[HTTP_EP_UNKNOWN][2] = 1;
	sc.requests[PROTO_CMD_RESOLVE][PROTO_OK] = 3;
	sc.requests[PROTO_CMD_RESOLVE][PROTO_ERR_NOHOST] = 1;
	sc.requests[SERVER_CMD_INVALID][PROTO_ERR_BADREQ] = 5;
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 2;
	in.role_changes = changes;
	in.http = &hc;
	in.socket = &sc;
	in.http_clients = 3;
	in.socket_clients = 1;
	ck_assert_int_eq(http_format_metrics(out, &in), 0);
	assert_lines(out_text(), want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* http_params_format: a buffer of 0 or 1 byte, an option or a value that
 * does not fit, an empty value that fills the buffer exactly, and which
 * bytes go unencoded (RFC 3986's unreserved ones, and only they). */
START_TEST(test_mut4_params_format_edges)
{
	struct http_params	p;
	char			q[64];

	ck_assert_int_eq(parse(HTTP_EP_MASTER, NULL, &p), 0);
	q[0] = 'x';
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 0), -1);
	ck_assert_int_eq(q[0], 'x');
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 1), 0);
	ck_assert_str_eq(q, "");

	/* "cluster=" fits in 11 bytes, its value's "m" then not. */
	ck_assert_int_eq(parse(HTTP_EP_MASTER, "cluster=m", &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 11), -1);
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 12), 0);
	ck_assert_str_eq(q, "cluster=m");

	/* An option that does not fit. */
	ck_assert_int_eq(parse(HTTP_EP_REPLICA, "max_lag_ms=5", &p), 0);
	ck_assert_int_eq(http_params_format(HTTP_EP_REPLICA, &p, q,
	    sizeof(q)), 0);
	ck_assert_str_eq(q, "max_lag_ms=5");
	ck_assert_int_eq(http_params_format(HTTP_EP_REPLICA, &p, q, 12), -1);

	/* "cluster=" and its NUL need 9 bytes; 8 are not enough even for an
	 * empty value. */
	memset(&p, 0, sizeof(p));
	topology_query_init(&p.query, TOPO_WANT_MASTER);
	p.cluster = "";
	memset(q, 'x', sizeof(q));
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 8), -1);
	ck_assert_int_eq(q[8], 'x');
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, 9), 0);
	ck_assert_str_eq(q, "cluster=");

	p.cluster = "azAZ09-._~";
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, sizeof(q)),
	    0);
	ck_assert_str_eq(q, "cluster=azAZ09-._~");
	p.cluster = "`{@[/:,!";
	ck_assert_int_eq(http_params_format(HTTP_EP_MASTER, &p, q, sizeof(q)),
	    0);
	ck_assert_str_eq(q, "cluster=%60%7B%40%5B%2F%3A%2C%21");
}
END_TEST

/* The first cluster is found by its name too; a replica listed first is
 * in /replicas_info. */
START_TEST(test_mut4_first_cluster_and_first_host)
{
	struct topo_cluster	 other, *all[2] = { &cl, &other };

	topology_cluster_init(&other, "other", NULL, 0, 0);
	ck_assert_ptr_eq(http_pick_cluster(all, 2, "main"), &cl);

	set_host(0, false, 100000, 0);
	set_host(1, true, 100000, 0);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 1);
	ck_assert_int_eq(http_format_replicas_info(out, &cl), 0);
	ck_assert_str_eq(out_text(),
	    "[{\"host\": \"127.0.0.1\", \"port\": 5432, \"lag_ms\": 0, "
	    "\"lag_bytes\": 0, \"replay_lsn\": \"0/186A0\"}, "
	    "{\"host\": \"db3.example\", \"port\": 5434, \"lag_ms\": 3000, "
	    "\"lag_bytes\": 5000, \"replay_lsn\": \"0/17318\"}]");
}
END_TEST

/* http_parse_hostport (also the listener's own address, http.c) ends
 * the name it writes, whatever p held, and refuses what does not parse
 * after a call that parsed. */
START_TEST(test_mut4_parse_hostport_on_a_used_struct)
{
	struct http_params	p;
	bool			ok[4];

	memset(&p, 'x', sizeof(p));
	ck_assert(http_parse_hostport("db:5432", &p));
	ck_assert_str_eq(p.host_name, "db");
	ck_assert_int_eq(p.host_port, 5432);
	ck_assert(http_parse_hostport("/run/pg:6432", &p));
	ck_assert_str_eq(p.host_name, "/run/pg");
	ck_assert(!http_parse_hostport("db", &p));
	/* Back to back, with nothing in between that could reuse the
	 * stack: the refusal must not lean on what the first call left. */
	ok[0] = http_parse_hostport("d:1", &p);
	ok[1] = http_parse_hostport("d:0", &p);
	ok[2] = http_parse_hostport("d:1", &p);
	ok[3] = http_parse_hostport("[x]:1", &p);
	ck_assert(ok[0] && !ok[1] && ok[2] && !ok[3]);
	ck_assert_str_eq(p.host_name, "d");
}
END_TEST

/* libevent's allocator for the tests below: when alloc_fail_in is 0 the
 * next allocation fails (once), else it counts down; -1: none fails. */
static int	alloc_fail_in = -1;
static int	alloc_failures;

static void *
failing_malloc(size_t n)
{
	if (alloc_fail_in == 0) {
		alloc_fail_in = -1;
		alloc_failures++;
		return NULL;
	}
	if (alloc_fail_in > 0)
		alloc_fail_in--;
	return malloc(n);
}

static void *
failing_realloc(void *ptr, size_t n)
{
	if (alloc_fail_in == 0) {
		alloc_fail_in = -1;
		alloc_failures++;
		return NULL;
	}
	if (alloc_fail_in > 0)
		alloc_fail_in--;
	return realloc(ptr, n);
}

/* Runs formatter k (format_cut's, 5: an error in pg-status's shape, 6:
 * one in pgbeacon's with "why") into a new buffer that holds pad bytes
 * first; the next allocation libevent makes fails when fail is set.  The
 * formatter's result; the bytes it wrote (a new string) in *got. */
static int
format_padded(int k, size_t pad, bool fail,
    const struct http_metrics_input *in, char **got)
{
	struct evbuffer	*b = evbuffer_new();
	char		*all;
	size_t		 len;
	int		 rc = -2;

	ck_assert_ptr_nonnull(b);
	all = malloc(pad + 1);
	ck_assert_ptr_nonnull(all);
	memset(all, 'p', pad);
	ck_assert_int_eq(evbuffer_add(b, all, pad), 0);
	free(all);
	alloc_fail_in = fail ? 0 : -1;
	switch (k) {
	case 0:
		rc = http_format_metrics(b, in);
		break;
	case 1:
		rc = http_format_replicas_info(b, &cl);
		break;
	case 2:
		rc = http_format_host(b, &hosts[2], true);
		break;
	case 3:
		rc = http_format_host(b, &hosts[2], false);
		break;
	case 4:
		rc = http_format_resolve(b, &cl, &hosts[2]);
		break;
	case 5:
		rc = http_format_error(b, HTTP_EP_REPLICA, HTTP_ERR_BADREQ,
		    "bad \"lag\"", false);
		break;
	case 6:
		rc = http_format_error(b, HTTP_EP_V1_RESOLVE, HTTP_ERR_NOHOST,
		    "no \"replica\"", true);
		break;
	}
	alloc_fail_in = -1;
	len = evbuffer_get_length(b);
	ck_assert_uint_ge(len, pad);
	*got = malloc(len - pad + 1);
	ck_assert_ptr_nonnull(*got);
	ck_assert_int_eq(evbuffer_drain(b, pad), 0);
	ck_assert_int_eq(evbuffer_remove(b, *got, len - pad),
	    (int)(len - pad));
	(*got)[len - pad] = '\0';
	evbuffer_free(b);
	return rc;
}

/* The room libevent leaves at the end of a buffer that holds pad bytes
 * (0: the next byte needs a new block). */
static size_t
room_after(size_t pad)
{
	struct evbuffer		*b = evbuffer_new();
	struct evbuffer_iovec	 ext[64], v;
	char			*all;
	size_t			 room = 0;
	int			 n;

	ck_assert_ptr_nonnull(b);
	all = malloc(pad + 1);
	ck_assert_ptr_nonnull(all);
	memset(all, 'p', pad);
	ck_assert_int_eq(evbuffer_add(b, all, pad), 0);
	free(all);
	n = evbuffer_peek(b, -1, NULL, ext, 64);
	ck_assert_int_gt(n, 0);
	ck_assert_int_le(n, 64);
	ck_assert_int_eq(evbuffer_reserve_space(b, 1, &v, 1), 1);
	if ((char *)v.iov_base == (char *)ext[n - 1].iov_base +
	    ext[n - 1].iov_len)
		room = v.iov_len;
	evbuffer_free(b);
	return room;
}

/* A formatter meets an allocation that fails once at any point of its
 * answer (a pad before it leaves any room from 0 to its length in
 * libevent's block) and the appends after it succeed: it returns -1, or
 * 0 with the whole answer.  A formatter that went on after a failed
 * append would return 0 with a piece missing. */
START_TEST(test_mut4_formatters_fail_on_a_failed_allocation)
{
	struct topo_cluster		*all[1] = { &cl };
	struct http_metrics_input	 in;
	struct http_counters		 hc;
	struct server_counters		 sc;
	struct proto_listener_stats	 ls[1];
	uint64_t			 changes[1] = { 4 };
	char				*full, *got, *seen;
	size_t				 pad, flen, room, nseen;
	int				 k, rc, cut;

	/* Labels and strings with every character that is escaped. */
	cl.name = "m\\a\"i\nn";
	hosts[2].host = "db\"3\\.example";
	memset(&hc, 0, sizeof(hc));
	memset(&sc, 0, sizeof(sc));
	hc.requests[HTTP_EP_MASTER][0] = 7;
	hc.requests[HTTP_EP_REPLICA][2] = 1;
	sc.requests[PROTO_CMD_RESOLVE][PROTO_ERR_NOHOST] = 3;
	memset(ls, 0, sizeof(ls));
	ls[0].cluster = "m\"1";
	ls[0].address = "a\\:1";
	ls[0].role = "mas\nter";
	ls[0].bytes_down = 9;
	memset(&in, 0, sizeof(in));
	in.clusters = all;
	in.nclusters = 1;
	in.role_changes = changes;
	in.http = &hc;
	in.socket = &sc;
	in.listeners = ls;
	in.nlisteners = 1;
	event_set_mem_functions(failing_malloc, failing_realloc, free);
	for (k = 0; k < 7; k++) {
		ck_assert_int_eq(format_padded(k, 0, false, &in, &full), 0);
		flen = strlen(full);
		seen = calloc(flen + 1, 1);
		ck_assert_ptr_nonnull(seen);
		alloc_failures = 0;
		cut = 0;
		nseen = 0;
		/* Pad 0: the first allocation fails; then one pad for each
		 * room. */
		for (pad = 0; pad <= 8 * flen + 65536 && nseen <= flen; pad++) {
			if (pad > 0) {
				room = room_after(pad);
				if (room > flen || seen[room])
					continue;
				seen[room] = 1;
				nseen++;
			}
			rc = format_padded(k, pad, true, &in, &got);
			ck_assert_msg(rc == -1 || (rc == 0 &&
			    strcmp(got, full) == 0), "formatter %d, pad %zu: "
			    "%d with \"%s\"", k, pad, rc, got);
			cut += rc == -1;
			free(got);
		}
		/* The failures did happen, and in the middle of answers. */
		ck_assert_int_gt(alloc_failures, 0);
		ck_assert_int_gt(cut, 1);
		free(seen);
		free(full);
	}
	event_set_mem_functions(NULL, NULL, NULL);
}
END_TEST

static Suite *
http_suite(void)
{
	Suite	*s = suite_create("http");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_endpoint_parse_routes_exact_paths_only);
	tcase_add_test(tc,
	    test_accept_header_selects_json_only_for_application_json);
	tcase_add_test(tc, test_code_index_maps_unknown_codes_to_500);
	tcase_add_test(tc, test_pick_cluster_defaults_to_the_first);
	tcase_add_test(tc, test_host_answer_is_plain_text_or_pg_status_json);
	tcase_add_test(tc, test_replicas_info_lists_live_replicas_with_lag);
	tcase_add_test(tc,
	    test_resolve_object_names_cluster_role_and_generation);
	tcase_add_test(tc, test_health_answers_200_for_the_role_503_otherwise);
	suite_add_tcase(s, tc);

	tc = tcase_create("params");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_params_role_endpoints_map_to_queries);
	tcase_add_test(tc, test_params_refuse_unknown_repeated_and_malformed);
	tcase_add_test(tc, test_params_pg_status_endpoints_ignore_unknown_ones);
	tcase_add_test(tc, test_query_with_an_encoded_nul_is_spotted);
	tcase_add_test(tc, test_params_health_host_forms);
	tcase_add_test(tc, test_params_lag_bounds_are_the_sockets);
	tcase_add_test(tc, test_params_format_round_trips);
	tcase_add_test(tc, test_params_keep_the_socket_grammar);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_metrics_page_has_every_family_and_host);
	tcase_add_test(tc,
	    test_metrics_leave_out_unknown_lag_and_escape_labels);
	tcase_add_test(tc, test_metrics_listener_families);
	suite_add_tcase(s, tc);
	tc = tcase_create("heads");
	tcase_add_test(tc, test_request_parse_reads_a_head_and_stops_at_its_end);
	tcase_add_test(tc, test_request_parse_options_and_forms);
	tcase_add_test(tc, test_request_parse_refusals);
	tcase_add_test(tc, test_reason_phrases);
	tcase_add_test(tc, test_json_errors_have_one_shape);
	suite_add_tcase(s, tc);
	tc = tcase_create("mutants");
	/* An allocation failing at each byte of each answer takes seconds
	 * under AddressSanitizer. */
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_params_every_role_endpoint_without_parameters);
	tcase_add_test(tc, test_params_health_refuses_malformed_brackets);
	tcase_add_test(tc, test_metrics_request_series_stay_in_their_tables);
	tcase_add_test(tc, test_health_zero_limits_and_reasons);
	tcase_add_test(tc, test_accept_header_trims_blanks_before_parameters);
	tcase_add_test(tc, test_formatters_never_succeed_with_a_cut_answer);
	tcase_add_test(tc, test_params_unknown_after_known_is_unknown);
	tcase_add_test(tc, test_mut3_names_pick_and_cut_formats);
	tcase_add_test(tc, test_mut3_zero_lag_and_metric_lines);
	tcase_add_test(tc, test_mut3_request_head_edges);
	tcase_add_test(tc, test_mut3_request_head_sizes);
	tcase_add_test(tc, test_mut4_formatters_fail_on_a_failed_allocation);
	tcase_add_test(tc, test_mut4_parsers_stay_in_their_input);
	tcase_add_test(tc, test_mut4_request_head_grammar);
	tcase_add_test(tc, test_mut4_request_line_sizes);
	tcase_add_test(tc, test_mut4_health_time_lag_unknown);
	tcase_add_test(tc, test_mut4_metrics_page_whole);
	tcase_add_test(tc, test_mut4_params_format_edges);
	tcase_add_test(tc, test_mut4_first_cluster_and_first_host);
	tcase_add_test(tc, test_mut4_parse_hostport_on_a_used_struct);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(http_suite()));
}
