/*
 * http.h - pgbeacond's optional HTTP listener (http_listen in the config),
 * on libevent's evhttp.  Everything is answered from the monitor's memory;
 * no request ever waits on a database.
 *
 * Endpoints (GET or HEAD; other methods get 405):
 *
 *   pg-status compatible, same paths and answers, so that a pg-status
 *   client cannot tell the difference:
 *     /master /replica /sync_by_time /sync_by_bytes
 *     /sync_by_time_or_bytes /sync_by_time_and_bytes
 *         200 with the host as plain text, or {"host": "..."} (no port)
 *         when the Accept header is exactly "application/json" (any
 *         other value, the "application/json, text/plain, ..." of axios included,
 *         gets plain text); 404 with an empty body (JSON: {"host": null})
 *         when no host holds the role.  A bad lag value is 400
 *         {"error_text": "Invalid lag_ms"}.
 *     /replicas_info
 *         200, always JSON: an array of the live replicas,
 *         [{"host": "...", "port": N, "lag_ms": N|null,
 *           "lag_bytes": N|null, "replay_lsn": "X/Y"|null}, ...]
 *   Unknown parameters are ignored on these, as pg-status does (a
 *   cache-buster "?_=123").
 *   pgbeacon's own:
 *     /v1/resolve?role=...   {"cluster", "host", "port", "role",
 *                            "generation"}; 404 {"error": "NOHOST", "why"}
 *     /v1/status             the JSON of the socket's STATUS
 *     /metrics               Prometheus text format 0.0.4
 *     /health/primary?host=H:P
 *     /health/replica?host=H:P[&max_lag_bytes=N][&max_lag_ms=N]
 *                            200 or 503 (for HAProxy's httpchk)
 *
 * Parameters: cluster=NAME on every endpoint but /metrics (default: the
 * first configured cluster); lag_ms / lag_bytes (pg-status's names) or
 * max_lag_ms / max_lag_bytes, min_lsn=X/Y and fallback=master|none on the
 * role endpoints.  A repeated or malformed parameter, or one holding a
 * NUL byte (%00), is 400; an unknown one is 400 on all but the pg-status
 * endpoints.  pgbeacon's richer answers (the port, the generation) are on the
 * /v1/ endpoints.
 *
 * The pure pieces (routing, parameters, rendering) are exported for the
 * unit tests; only http_new()/http_free() touch sockets.
 */
#ifndef PGB_HTTP_H
#define PGB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "topology.h"

struct event_base;
struct evbuffer;
struct evkeyvalq;
struct http;
struct monitor;
struct proto_listener_stats;
struct proxy;
struct server;
struct server_counters;

/* Longest request head (request line and headers) accepted. */
#define HTTP_MAX_HEADERS	8192
/* Idle keep-alive connections and slow clients are closed after this. */
#define HTTP_TIMEOUT_S		30
/* Default of http_request_timeout_ms: a connection that has not sent a
 * whole request head this long after it was accepted, or after its
 * previous request, is closed, however slowly it keeps sending. */
#define HTTP_REQUEST_TIMEOUT_MS	10000

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

/*
 * Starts listening on listen ("HOST:PORT", "[V6]:PORT" or an absolute
 * Unix socket path, created with mode; a stale socket file nobody
 * answers on is replaced).  mon and srv are borrowed and must outlive the
 * listener; srv may be NULL.  On failure returns NULL and writes the
 * reason to err.
 */
struct http *http_new(struct event_base *base, const char *listen,
	mode_t mode, struct monitor *mon, struct server *srv,
	char *err, size_t errlen) __attribute__((warn_unused_result));

/* Closes the listener and every connection, removes a Unix socket file,
 * frees h; NULL is a no-op.  Call it once the event loop has stopped. */
void http_free(struct http *h);

/* /v1/status and /metrics also show px's connection listeners
 * (borrowed, may be NULL; it must outlive h or be unset first). */
void http_set_proxy(struct http *h, struct proxy *px);

/* The counters so far.  Borrowed: lives as long as h. */
const struct http_counters *http_get_counters(const struct http *h);

/*
 * At max_clients connections (0 is taken as 1) the listener pauses until
 * one closes; request_timeout_ms (> 0; else unchanged) is the deadline
 * of each request head (HTTP_REQUEST_TIMEOUT_MS by default).
 */
void http_set_limits(struct http *h, size_t max_clients,
	int request_timeout_ms);

/* HTTP connections open right now. */
size_t http_nclients(const struct http *h);

/* --- pure helpers, exported for tests ----------------------------------- */

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

#endif /* PGB_HTTP_H */
