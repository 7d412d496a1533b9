/*
 * http_api.h - the pure part of the HTTP listener (http.h): routing,
 * parameters, health answers and rendering.  No I/O; unit tested and
 * fuzzed.  The endpoints and their parameters are described in http.h.
 */
#ifndef PGB_HTTP_API_H
#define PGB_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "topology.h"

struct evbuffer;
struct evkeyvalq;
struct proto_listener_stats;
struct server_counters;

/* Appends a string literal without its NUL. */
#define HTTP_ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

/* Routes, also the "endpoint" label of the request counters. */
enum http_endpoint {
	HTTP_EP_MASTER,			/* /master */
	HTTP_EP_REPLICA,		/* /replica */
	HTTP_EP_SYNC_BY_TIME,		/* /sync_by_time */
	HTTP_EP_SYNC_BY_BYTES,		/* /sync_by_bytes */
	HTTP_EP_SYNC_BY_TIME_OR_BYTES,	/* /sync_by_time_or_bytes */
	HTTP_EP_SYNC_BY_TIME_AND_BYTES,	/* /sync_by_time_and_bytes */
	HTTP_EP_REPLICAS_INFO,		/* /replicas_info */
	HTTP_EP_V1_RESOLVE,		/* /v1/resolve */
	HTTP_EP_V1_STATUS,		/* /v1/status */
	HTTP_EP_METRICS,		/* /metrics */
	HTTP_EP_HEALTH_PRIMARY,		/* /health/primary */
	HTTP_EP_HEALTH_REPLICA,		/* /health/replica */
	HTTP_EP_UNKNOWN,		/* any other path: 404 */
	HTTP_EP_COUNT
};

/* The status codes counted one by one; anything else counts as 500. */
#define HTTP_NCODES 6
extern const int http_codes[HTTP_NCODES];	/* 200 400 404 405 500 503 */

/* Requests answered, by endpoint and index into http_codes. */
struct http_counters {
	uint64_t	 requests[HTTP_EP_COUNT][HTTP_NCODES];
};

/* What a request asks for, after its parameters were checked. */
struct http_params {
	const char	*cluster;	/* NULL: the first; borrowed from the
					   evkeyvalq the params came from */
	struct topo_query query;	/* the role endpoints and health */
	const char	*host;		/* health: "H:P" as given, borrowed */
	char		 host_name[256]; /* health: H, brackets removed */
	int		 host_port;	/* health: P */
};

/* What /metrics renders.  Everything is borrowed for the call. */
struct http_metrics_input {
	struct topo_cluster *const *clusters;
	size_t			 nclusters;
	const uint64_t		*role_changes;	/* nclusters counts, or NULL */
	const struct http_counters *http;	/* NULL: none */
	const struct server_counters *socket;	/* NULL: none */
	size_t			 socket_clients;
	size_t			 http_clients;	/* shown when http is set */
	const struct proto_listener_stats *listeners; /* nlisteners of them */
	size_t			 nlisteners;
};

/* Splits "HOST:PORT" or "[V6]:PORT" into p->host_name and p->host_port.
 * False when s is not that. */
bool http_parse_hostport(const char *s, struct http_params *p);

/* The route of a path (without its query string). */
enum http_endpoint http_endpoint_parse(const char *path);

/* The path of an endpoint ("/master"), "other" for HTTP_EP_UNKNOWN. */
const char *http_endpoint_name(enum http_endpoint ep);

/* Index of code in http_codes; unknown codes map to the 500 slot. */
size_t http_code_index(int code);

/*
 * True when an Accept header value is exactly application/json (any case,
 * blanks around it ignored), as pg-status decides.  NULL: false.
 */
bool http_wants_json(const char *accept);

/* True for pg-status's endpoints (/master ... /replicas_info). */
bool http_is_pg_status(enum http_endpoint ep);

/* True when a raw query string encodes a NUL byte ("%00"). */
bool http_query_has_nul(const char *query);

/*
 * Checks kv, the decoded query parameters of a request to ep, and fills
 * p.  Returns 0, or -1 with a one-line reason in why (the request is a
 * 400).  For /v1/resolve role is required; for the health endpoints host is.
 */
int http_params_parse(enum http_endpoint ep, const struct evkeyvalq *kv,
	struct http_params *p, char *why, size_t why_len)
	__attribute__((warn_unused_result));

/*
 * Writes p, as http_params_parse() filled it for ep, back as a query
 * string ("cluster=main&max_lag_ms=5"): canonical names (max_lag_ms, not
 * lag_ms), values percent-encoded.  Parsing it again gives the same p.
 * Returns 0, or -1 when it does not fit in len bytes.
 */
int http_params_format(enum http_endpoint ep, const struct http_params *p,
	char *buf, size_t len) __attribute__((warn_unused_result));

/* The cluster p->cluster names (the first when NULL), or NULL. */
struct topo_cluster *http_pick_cluster(struct topo_cluster *const *clusters,
	size_t n, const char *name);

/*
 * Appends the host of h (NULL: none) as pg-status does: plain text, or
 * {"host": "..."} (no port) when json.  -1 when out could not grow.
 */
int http_format_host(struct evbuffer *out, const struct topo_host *h,
	bool json);

/* Appends the /replicas_info array of c.  -1 when out could not grow. */
int http_format_replicas_info(struct evbuffer *out,
	const struct topo_cluster *c);

/* Appends the /v1/resolve object for h (not NULL) in c. */
int http_format_resolve(struct evbuffer *out, const struct topo_cluster *c,
	const struct topo_host *h);

/*
 * The answer of /health/primary (replica == false) or /health/replica for
 * the host p names in c: 200 when it holds the role (a replica also within
 * p->query's max_lag_bytes / max_lag_ms when given), 503 when not, 404
 * when c has no such host.  why gets a one-line reason.
 */
int http_health(const struct topo_cluster *c, const struct http_params *p,
	bool replica, char *why, size_t why_len);

/* Appends the whole /metrics page.  -1 when out could not grow. */
int http_format_metrics(struct evbuffer *out,
	const struct http_metrics_input *in);

#endif /* PGB_HTTP_API_H */
