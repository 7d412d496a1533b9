/*
 * http.c - the HTTP listener: pg-status's endpoints, pgbeacon's /v1 API,
 * Prometheus metrics and per-host health checks, all on one evhttp.
 *
 * Requests are answered at once from the monitor's memory.  The first
 * half of this file is pure (routing, parameters, rendering) and is unit
 * tested on hand-built topo_clusters; the second half is the evhttp glue.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "http.h"
#include "log.h"
#include "common/lsn.h"
#include "monitor.h"
#include "protocol.h"
#include "proxy.h"
#include "server.h"
#include "unixsock.h"

/* Appends a string literal without its NUL. */
#define HTTP_ADD_LIT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

const int http_codes[HTTP_NCODES] = { 200, 400, 404, 405, 500, 503 };

/* Buckets of the table of connections (a power of two). */
#define HTTP_CONN_BUCKETS	1024

/*
 * One accepted connection.  evhttp owns the connection; this follows it
 * from its bufferevent's creation (http_bev_cb()) to its close callback,
 * to count clients and to hold its request deadline.  Owned by the http:
 * in the pending list until adopted, then in a bucket of the table, then
 * in the dead list until the reaper frees it.
 */
struct http_conn {
	LIST_ENTRY(http_conn)	 entry;
	struct http		*h;		/* back pointer, not owned */
	struct bufferevent	*bev;		/* evhttp's; borrowed */
	struct evhttp_connection *evcon;	/* borrowed; NULL until adopted */
	struct event		*deadline;	/* owned; the request deadline */
};
LIST_HEAD(http_conn_list, http_conn);

/* The listener.  Owned by main. */
struct http {
	struct event_base	*base;		/* borrowed */
	struct monitor		*mon;		/* borrowed */
	struct server		*srv;		/* borrowed, may be NULL */
	struct evhttp		*evh;		/* owned; owns its connections */
	struct evconnlistener	*listener;	/* evhttp's; borrowed */
	char			*unix_path;	/* owned; NULL for TCP */
	struct evbuffer		*body;		/* owned; scratch for one reply */
	struct http_counters	 counters;
	struct event		*adopt;		/* owned; adopts and reaps conns */
	struct event		*accept_retry;	/* owned; after an accept error */
	struct server_backoff	 backoff;	/* of accept errors */
	struct http_conn_list	 pending;	/* accepted, not adopted yet */
	struct http_conn_list	 dead;		/* closed, to be freed */
	struct http_conn_list	 conns[HTTP_CONN_BUCKETS]; /* by evcon */
	size_t			 nconns;	/* connections open */
	size_t			 max_clients;	/* the listener pauses here */
	bool			 full;		/* paused because of that */
	bool			 backing_off;	/* paused after an accept error */
	int			 request_timeout_ms;
	struct proxy		*proxy;		/* borrowed, may be NULL */
};

static struct http_conn *http_conn_find(struct http *,
		    const struct evhttp_connection *);
static void	http_conn_arm(struct http_conn *);

/* --- pure helpers ------------------------------------------------------- */

static const char *const http_paths[HTTP_EP_COUNT] = {
	[HTTP_EP_MASTER] = "/master",
	[HTTP_EP_REPLICA] = "/replica",
	[HTTP_EP_SYNC_BY_TIME] = "/sync_by_time",
	[HTTP_EP_SYNC_BY_BYTES] = "/sync_by_bytes",
	[HTTP_EP_SYNC_BY_TIME_OR_BYTES] = "/sync_by_time_or_bytes",
	[HTTP_EP_SYNC_BY_TIME_AND_BYTES] = "/sync_by_time_and_bytes",
	[HTTP_EP_REPLICAS_INFO] = "/replicas_info",
	[HTTP_EP_V1_RESOLVE] = "/v1/resolve",
	[HTTP_EP_V1_STATUS] = "/v1/status",
	[HTTP_EP_METRICS] = "/metrics",
	[HTTP_EP_HEALTH_PRIMARY] = "/health/primary",
	[HTTP_EP_HEALTH_REPLICA] = "/health/replica",
	[HTTP_EP_UNKNOWN] = "other",
};

enum http_endpoint
http_endpoint_parse(const char *path)
{
	int	i;

	if (path == NULL)
		return HTTP_EP_UNKNOWN;
	for (i = 0; i < HTTP_EP_UNKNOWN; i++)
		if (strcmp(path, http_paths[i]) == 0)
			return (enum http_endpoint)i;
	return HTTP_EP_UNKNOWN;
}

const char *
http_endpoint_name(enum http_endpoint ep)
{
	if ((int)ep < 0 || ep >= HTTP_EP_COUNT)
		return "other";
	return http_paths[ep];
}

size_t
http_code_index(int code)
{
	size_t	i;

	for (i = 0; i < HTTP_NCODES; i++)
		if (http_codes[i] == code)
			return i;
	return 4;	/* 500 */
}

bool
http_wants_json(const char *accept)
{
	static const char	 json[] = "application/json";
	size_t			 len;

	if (accept == NULL)
		return false;
	accept += strspn(accept, " \t");
	len = strlen(accept);
	while (len > 0 && (accept[len - 1] == ' ' || accept[len - 1] == '\t'))
		len--;
	return len == sizeof(json) - 1 && strncasecmp(accept, json, len) == 0;
}

bool
http_query_has_nul(const char *query)
{
	const char *p;

	/* Decoded, "%00" would end the value early: "main%00junk" would
	 * read as "main". */
	for (p = query; (p = strchr(p, '%')) != NULL; p++)
		if (p[1] == '0' && p[2] == '0')
			return true;
	return false;
}

bool
http_is_pg_status(enum http_endpoint ep)
{
	return ep >= HTTP_EP_MASTER && ep <= HTTP_EP_REPLICAS_INFO;
}

/* Which parameters each endpoint takes. */
enum {
	HTTP_P_CLUSTER = 1 << 0,
	HTTP_P_ROLE = 1 << 1,
	HTTP_P_LAG_MS = 1 << 2,		/* lag_ms, max_lag_ms */
	HTTP_P_LAG_BYTES = 1 << 3,	/* lag_bytes, max_lag_bytes */
	HTTP_P_MIN_LSN = 1 << 4,
	HTTP_P_FALLBACK = 1 << 5,
	HTTP_P_HOST = 1 << 6,
};

#define HTTP_P_ROLE_OPTS (HTTP_P_CLUSTER | HTTP_P_LAG_MS | HTTP_P_LAG_BYTES | \
	HTTP_P_MIN_LSN | HTTP_P_FALLBACK)

static const unsigned http_allowed[HTTP_EP_COUNT] = {
	[HTTP_EP_MASTER] = HTTP_P_CLUSTER,
	[HTTP_EP_REPLICA] = HTTP_P_ROLE_OPTS,
	[HTTP_EP_SYNC_BY_TIME] = HTTP_P_ROLE_OPTS,
	[HTTP_EP_SYNC_BY_BYTES] = HTTP_P_ROLE_OPTS,
	[HTTP_EP_SYNC_BY_TIME_OR_BYTES] = HTTP_P_ROLE_OPTS,
	[HTTP_EP_SYNC_BY_TIME_AND_BYTES] = HTTP_P_ROLE_OPTS,
	[HTTP_EP_REPLICAS_INFO] = HTTP_P_CLUSTER,
	[HTTP_EP_V1_RESOLVE] = HTTP_P_ROLE_OPTS | HTTP_P_ROLE,
	[HTTP_EP_V1_STATUS] = HTTP_P_CLUSTER,
	[HTTP_EP_METRICS] = 0,
	[HTTP_EP_HEALTH_PRIMARY] = HTTP_P_CLUSTER | HTTP_P_HOST,
	[HTTP_EP_HEALTH_REPLICA] = HTTP_P_CLUSTER | HTTP_P_HOST |
	    HTTP_P_LAG_MS | HTTP_P_LAG_BYTES,
	[HTTP_EP_UNKNOWN] = 0,
};

static const struct {
	const char	*name;
	unsigned	 bit;
} http_param_names[] = {
	{ "cluster", HTTP_P_CLUSTER },
	{ "role", HTTP_P_ROLE },
	{ "lag_ms", HTTP_P_LAG_MS },
	{ "max_lag_ms", HTTP_P_LAG_MS },
	{ "lag_bytes", HTTP_P_LAG_BYTES },
	{ "max_lag_bytes", HTTP_P_LAG_BYTES },
	{ "min_lsn", HTTP_P_MIN_LSN },
	{ "fallback", HTTP_P_FALLBACK },
	{ "host", HTTP_P_HOST },
};

/* A decimal integer in 0..PROTO_MAX_LAG (the socket's bound), nothing
 * else. */
static bool
http_parse_nonneg(const char *s, int64_t *out)
{
	uint64_t	v = 0;

	if (*s == '\0' || strlen(s) > 19)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > (uint64_t)PROTO_MAX_LAG)
		return false;
	*out = (int64_t)v;
	return true;
}

/* "H:P" or "[V6]:P" into p->host_name and p->host_port. */
static bool
http_parse_hostport(const char *s, struct http_params *p)
{
	const char	*colon, *name = s;
	size_t		 len;
	int64_t		 port;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return false;
		name = s + 1;
		len = (size_t)(close - name);
		colon = close + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return false;
		len = (size_t)(colon - s);
		if (memchr(s, ':', len) != NULL)
			return false;	/* a bare IPv6 address: brackets */
	}
	if (len == 0 || len >= sizeof(p->host_name))
		return false;
	if (!http_parse_nonneg(colon + 1, &port) || port < 1 || port > 65535)
		return false;
	memcpy(p->host_name, name, len);
	p->host_name[len] = '\0';
	p->host_port = (int)port;
	return true;
}

int
http_params_parse(enum http_endpoint ep, const struct evkeyvalq *kv,
    struct http_params *p, char *why, size_t why_len)
{
	const struct evkeyval	*e;
	enum topo_want		 want = TOPO_WANT_MASTER;
	unsigned		 seen = 0, bit;
	size_t			 i;
	bool			 has_role = false;

	memset(p, 0, sizeof(*p));
	switch (ep) {
	case HTTP_EP_REPLICA:
	case HTTP_EP_HEALTH_REPLICA:
		want = TOPO_WANT_REPLICA;
		break;
	case HTTP_EP_SYNC_BY_TIME:
		want = TOPO_WANT_SYNC_BY_TIME;
		break;
	case HTTP_EP_SYNC_BY_BYTES:
		want = TOPO_WANT_SYNC_BY_BYTES;
		break;
	case HTTP_EP_SYNC_BY_TIME_OR_BYTES:
		want = TOPO_WANT_SYNC_BY_TIME_OR_BYTES;
		break;
	case HTTP_EP_SYNC_BY_TIME_AND_BYTES:
		want = TOPO_WANT_SYNC_BY_TIME_AND_BYTES;
		break;
	default:
		break;
	}
	topology_query_init(&p->query, want);

	TAILQ_FOREACH(e, kv, next) {
		bit = 0;
		for (i = 0; i < sizeof(http_param_names) /
		    sizeof(http_param_names[0]); i++)
			if (strcmp(e->key, http_param_names[i].name) == 0)
				bit = http_param_names[i].bit;
		if (bit == 0 || (http_allowed[ep] & bit) == 0) {
			/* pg-status ignores what it does not know (a
			 * cache-buster "_=123"); pgbeacon's own API does not. */
			if (http_is_pg_status(ep))
				continue;
			snprintf(why, why_len, "unknown parameter '%.40s'",
			    e->key);
			return -1;
		}
		if (seen & bit) {
			snprintf(why, why_len, "parameter '%.40s' given twice",
			    e->key);
			return -1;
		}
		seen |= bit;
		switch (bit) {
		case HTTP_P_CLUSTER:
			if (e->value[0] == '\0') {
				snprintf(why, why_len, "empty cluster");
				return -1;
			}
			p->cluster = e->value;
			break;
		case HTTP_P_ROLE:
			if (!topology_want_parse(e->value, &p->query.want)) {
				snprintf(why, why_len, "unknown role '%.40s'",
				    e->value);
				return -1;
			}
			has_role = true;
			break;
		case HTTP_P_LAG_MS:
			if (!http_parse_nonneg(e->value, &p->query.max_lag_ms)) {
				snprintf(why, why_len, "Invalid %s", e->key);
				return -1;
			}
			break;
		case HTTP_P_LAG_BYTES:
			if (!http_parse_nonneg(e->value,
			    &p->query.max_lag_bytes)) {
				snprintf(why, why_len, "Invalid %s", e->key);
				return -1;
			}
			break;
		case HTTP_P_MIN_LSN:
			if (!pgbc_lsn_parse(e->value, &p->query.min_lsn)) {
				snprintf(why, why_len, "invalid min_lsn");
				return -1;
			}
			p->query.has_min_lsn = true;
			break;
		case HTTP_P_FALLBACK:
			if (strcmp(e->value, "master") == 0)
				p->query.fallback = TOPO_FALLBACK_MASTER;
			else if (strcmp(e->value, "none") == 0)
				p->query.fallback = TOPO_FALLBACK_NONE;
			else {
				snprintf(why, why_len, "fallback must be "
				    "master or none");
				return -1;
			}
			break;
		case HTTP_P_HOST:
			if (!http_parse_hostport(e->value, p)) {
				snprintf(why, why_len, "host must be HOST:PORT "
				    "or [IPV6]:PORT");
				return -1;
			}
			p->host = e->value;
			break;
		}
	}
	if (ep == HTTP_EP_V1_RESOLVE && !has_role) {
		snprintf(why, why_len, "missing parameter 'role'");
		return -1;
	}
	if ((ep == HTTP_EP_HEALTH_PRIMARY || ep == HTTP_EP_HEALTH_REPLICA) &&
	    p->host == NULL) {
		snprintf(why, why_len, "missing parameter 'host'");
		return -1;
	}
	return 0;
}

/* Appends "&key=value" (no "&" at the start), value percent-encoded. */
static bool
http_query_add(char *buf, size_t len, size_t *n, const char *key,
    const char *value)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*v = (const unsigned char *)value;
	int			 w;

	w = snprintf(buf + *n, len - *n, "%s%s=", *n > 0 ? "&" : "", key);
	if (w < 0 || (size_t)w >= len - *n)
		return false;
	*n += (size_t)w;
	for (; *v != '\0'; v++) {
		if (len - *n < 4)
			return false;
		if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		    (*v >= '0' && *v <= '9') || *v == '-' || *v == '.' ||
		    *v == '_' || *v == '~')
			buf[(*n)++] = (char)*v;
		else {
			buf[(*n)++] = '%';
			buf[(*n)++] = hex[*v >> 4];
			buf[(*n)++] = hex[*v & 0xf];
		}
	}
	buf[*n] = '\0';
	return true;
}

int
http_params_format(enum http_endpoint ep, const struct http_params *p,
    char *buf, size_t len)
{
	char	num[32], lsn[PGBC_LSN_STRLEN], hp[sizeof(p->host_name) + 16];
	size_t	n = 0;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (p->cluster != NULL && !http_query_add(buf, len, &n, "cluster",
	    p->cluster))
		return -1;
	if (ep == HTTP_EP_V1_RESOLVE && !http_query_add(buf, len, &n, "role",
	    topology_want_name(p->query.want)))
		return -1;
	if (p->query.max_lag_ms >= 0) {
		snprintf(num, sizeof(num), "%" PRId64, p->query.max_lag_ms);
		if (!http_query_add(buf, len, &n, "max_lag_ms", num))
			return -1;
	}
	if (p->query.max_lag_bytes >= 0) {
		snprintf(num, sizeof(num), "%" PRId64, p->query.max_lag_bytes);
		if (!http_query_add(buf, len, &n, "max_lag_bytes", num))
			return -1;
	}
	if (p->query.has_min_lsn) {
		pgbc_lsn_format(p->query.min_lsn, lsn);
		if (!http_query_add(buf, len, &n, "min_lsn", lsn))
			return -1;
	}
	if (p->query.fallback != TOPO_FALLBACK_DEFAULT &&
	    !http_query_add(buf, len, &n, "fallback",
	    p->query.fallback == TOPO_FALLBACK_NONE ? "none" : "master"))
		return -1;
	if (p->host != NULL) {
		/* Brackets whenever the name could not be read back without. */
		if (strchr(p->host_name, ':') != NULL || p->host_name[0] == '[')
			snprintf(hp, sizeof(hp), "[%s]:%d", p->host_name,
			    p->host_port);
		else
			snprintf(hp, sizeof(hp), "%s:%d", p->host_name,
			    p->host_port);
		if (!http_query_add(buf, len, &n, "host", hp))
			return -1;
	}
	return 0;
}

struct topo_cluster *
http_pick_cluster(struct topo_cluster *const *clusters, size_t n,
    const char *name)
{
	size_t	i;

	if (name == NULL)
		return n > 0 ? clusters[0] : NULL;
	for (i = 0; i < n; i++)
		if (strcmp(clusters[i]->name, name) == 0)
			return clusters[i];
	return NULL;
}

int
http_format_host(struct evbuffer *out, const struct topo_host *h, bool json)
{
	if (!json)
		return h == NULL ? 0 : evbuffer_add(out, h->host, strlen(h->host));
	if (h == NULL)
		return HTTP_ADD_LIT(out, "{\"host\": null}");
	/* pg-status's body exactly: no port (that is on /v1/resolve). */
	if (HTTP_ADD_LIT(out, "{\"host\": ") == -1 ||
	    protocol_json_string(out, h->host) == -1 ||
	    HTTP_ADD_LIT(out, "}") == -1)
		return -1;
	return 0;
}

int
http_format_replicas_info(struct evbuffer *out, const struct topo_cluster *c)
{
	const struct topo_host	*h;
	char			 lsn[PGBC_LSN_STRLEN];
	size_t			 i;
	bool			 first = true;

	if (HTTP_ADD_LIT(out, "[") == -1)
		return -1;
	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		if (h->role != TOPO_ROLE_REPLICA)
			continue;
		if ((!first && HTTP_ADD_LIT(out, ", ") == -1) ||
		    HTTP_ADD_LIT(out, "{\"host\": ") == -1 ||
		    protocol_json_string(out, h->host) == -1 ||
		    evbuffer_add_printf(out, ", \"port\": %d", h->port) < 0)
			return -1;
		first = false;
		if ((h->lag_known && h->lag_ms >= 0 ? evbuffer_add_printf(out,
		    ", \"lag_ms\": %" PRId64, h->lag_ms) :
		    evbuffer_add_printf(out, ", \"lag_ms\": null")) < 0)
			return -1;
		if ((h->lag_known ? evbuffer_add_printf(out,
		    ", \"lag_bytes\": %" PRIu64, h->lag_bytes) :
		    evbuffer_add_printf(out, ", \"lag_bytes\": null")) < 0)
			return -1;
		pgbc_lsn_format(h->replay_lsn, lsn);
		if (evbuffer_add_printf(out, ", \"replay_lsn\": \"%s\"}",
		    lsn) < 0)
			return -1;
	}
	return HTTP_ADD_LIT(out, "]");
}

int
http_format_resolve(struct evbuffer *out, const struct topo_cluster *c,
    const struct topo_host *h)
{
	if (HTTP_ADD_LIT(out, "{\"cluster\": ") == -1 ||
	    protocol_json_string(out, c->name) == -1 ||
	    HTTP_ADD_LIT(out, ", \"host\": ") == -1 ||
	    protocol_json_string(out, h->host) == -1 ||
	    evbuffer_add_printf(out, ", \"port\": %d, \"role\": \"%s\", "
	    "\"generation\": %" PRIu64 "}", h->port,
	    topology_role_name(h->role), c->generation) < 0)
		return -1;
	return 0;
}

int
http_health(const struct topo_cluster *c, const struct http_params *p,
    bool replica, char *why, size_t why_len)
{
	const struct topo_host	*h = NULL;
	const struct topo_query	*q = &p->query;
	size_t			 i;

	for (i = 0; i < c->nhosts; i++) {
		if (c->hosts[i]->port == p->host_port &&
		    strcasecmp(c->hosts[i]->host, p->host_name) == 0) {
			h = c->hosts[i];
			break;
		}
	}
	if (h == NULL) {
		snprintf(why, why_len, "no host %s in cluster %s", p->host,
		    c->name);
		return 404;
	}
	if (!replica) {
		if (h->role == TOPO_ROLE_MASTER) {
			snprintf(why, why_len, "primary");
			return 200;
		}
		snprintf(why, why_len, "not primary: %s",
		    h->role == TOPO_ROLE_REPLICA ? "replica" :
		    topology_why_text(h->why));
		return 503;
	}
	if (h->role != TOPO_ROLE_REPLICA) {
		snprintf(why, why_len, "not a replica: %s",
		    h->role == TOPO_ROLE_MASTER ? "primary" :
		    topology_why_text(h->why));
		return 503;
	}
	if (q->max_lag_bytes >= 0 &&
	    (!h->lag_known || h->lag_bytes > (uint64_t)q->max_lag_bytes)) {
		if (h->lag_known)
			snprintf(why, why_len, "replica, lag %" PRIu64
			    " bytes over %" PRId64, h->lag_bytes,
			    q->max_lag_bytes);
		else
			snprintf(why, why_len, "replica, lag unknown");
		return 503;
	}
	if (q->max_lag_ms >= 0 &&
	    (!h->lag_known || h->lag_ms < 0 || h->lag_ms > q->max_lag_ms)) {
		if (h->lag_known && h->lag_ms >= 0)
			snprintf(why, why_len, "replica, lag %" PRId64
			    " ms over %" PRId64, h->lag_ms, q->max_lag_ms);
		else
			snprintf(why, why_len, "replica, lag unknown");
		return 503;
	}
	snprintf(why, why_len, "replica");
	return 200;
}

/* Appends s as a Prometheus label value (quotes included). */
static int
http_prom_label(struct evbuffer *out, const char *s)
{
	const char	*p;

	if (HTTP_ADD_LIT(out, "\"") == -1)
		return -1;
	for (p = s; *p != '\0'; p++) {
		const char *esc = NULL;

		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '"')
			esc = "\\\"";
		else if (*p == '\n')
			esc = "\\n";
		if (esc != NULL) {
			if (evbuffer_add(out, esc, 2) == -1)
				return -1;
		} else if (evbuffer_add(out, p, 1) == -1)
			return -1;
	}
	return HTTP_ADD_LIT(out, "\"");
}

static int
http_prom_head(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	return evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name,
	    help, name, type) < 0 ? -1 : 0;
}

/* Appends 'name{cluster="..",host="..",port=".."' (brace left open). */
static int
http_prom_host(struct evbuffer *out, const char *name,
    const struct topo_cluster *c, const struct topo_host *h)
{
	if (evbuffer_add_printf(out, "%s{cluster=", name) < 0 ||
	    http_prom_label(out, c->name) == -1 ||
	    HTTP_ADD_LIT(out, ",host=") == -1 ||
	    http_prom_label(out, h->host) == -1 ||
	    evbuffer_add_printf(out, ",port=\"%d\"", h->port) < 0)
		return -1;
	return 0;
}

/* Appends 'name{cluster=".."' (brace left open). */
static int
http_prom_cluster(struct evbuffer *out, const char *name,
    const struct topo_cluster *c)
{
	if (evbuffer_add_printf(out, "%s{cluster=", name) < 0 ||
	    http_prom_label(out, c->name) == -1)
		return -1;
	return 0;
}

/* The connection listeners' families. */
static int
http_format_listener_metrics(struct evbuffer *out,
    const struct http_metrics_input *in)
{
	static const struct {
		const char	*name;
		const char	*type;
		const char	*help;
	} fam[] = {
		{ "pgbeacon_listener_clients", "gauge",
		    "Connections a listener relays now." },
		{ "pgbeacon_listener_held", "gauge",
		    "Clients held by a listener until a host holds its role." },
		{ "pgbeacon_listener_relayed_total", "counter",
		    "Connections a listener relayed to a server." },
		{ "pgbeacon_listener_fenced_total", "counter",
		    "Relayed connections closed because their host lost the "
		    "role." },
		{ "pgbeacon_listener_refused_total", "counter",
		    "Clients refused with an error or closed before relaying." },
		{ "pgbeacon_listener_bytes_total", "counter",
		    "Bytes relayed, by direction." },
	};
	const struct proto_listener_stats *l;
	size_t f, i, d;
	uint64_t v;

	if (in->nlisteners == 0)
		return 0;
	for (f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		if (http_prom_head(out, fam[f].name, fam[f].type,
		    fam[f].help) == -1)
			return -1;
		for (i = 0; i < in->nlisteners; i++) {
			l = &in->listeners[i];
			for (d = 0; d < (f == 5 ? 2u : 1u); d++) {
				v = f == 0 ? l->clients : f == 1 ? l->held :
				    f == 2 ? l->relayed_total :
				    f == 3 ? l->fenced_total :
				    f == 4 ? l->refused_total :
				    d == 0 ? l->bytes_up : l->bytes_down;
				if (evbuffer_add_printf(out, "%s{cluster=",
				    fam[f].name) < 0 ||
				    http_prom_label(out, l->cluster) == -1 ||
				    HTTP_ADD_LIT(out, ",address=") == -1 ||
				    http_prom_label(out, l->address) == -1 ||
				    HTTP_ADD_LIT(out, ",role=") == -1 ||
				    http_prom_label(out, l->role) == -1 ||
				    (f == 5 && evbuffer_add_printf(out,
				    ",direction=\"%s\"", d == 0 ?
				    "from_clients" : "to_clients") < 0) ||
				    evbuffer_add_printf(out, "} %" PRIu64 "\n",
				    v) < 0)
					return -1;
			}
		}
	}
	return 0;
}

/* The per-host families. */
enum http_host_metric {
	HTTP_HM_UP,
	HTTP_HM_ROLE,
	HTTP_HM_LAG_BYTES,
	HTTP_HM_LAG_SECONDS,
	HTTP_HM_PROBE_SECONDS,
	HTTP_HM_FAILURES,
	HTTP_HM_COUNT
};

static const struct {
	const char	*name;
	const char	*help;
} http_host_metrics[HTTP_HM_COUNT] = {
	[HTTP_HM_UP] = { "pgbeacon_host_up",
	    "1 when the host answers probes, 0 when it is dead." },
	[HTTP_HM_ROLE] = { "pgbeacon_host_role",
	    "1 for the role the host holds (master, replica or none)." },
	[HTTP_HM_LAG_BYTES] = { "pgbeacon_host_lag_bytes",
	    "Replay lag behind the primary in bytes; absent when unknown." },
	[HTTP_HM_LAG_SECONDS] = { "pgbeacon_host_lag_seconds",
	    "Replay lag behind the primary in seconds (ms resolution); "
	    "absent when unknown." },
	[HTTP_HM_PROBE_SECONDS] = { "pgbeacon_host_probe_duration_seconds",
	    "Duration of the last successful probe." },
	[HTTP_HM_FAILURES] = { "pgbeacon_host_consecutive_failures",
	    "Probes failed in a row." },
};

static int
http_prom_host_metric(struct evbuffer *out, enum http_host_metric m,
    const struct topo_cluster *c, const struct topo_host *h)
{
	static const enum topo_role roles[] = { TOPO_ROLE_MASTER,
	    TOPO_ROLE_REPLICA, TOPO_ROLE_NONE };
	const char	*name = http_host_metrics[m].name;
	size_t		 i;
	int		 rc = 0;

	switch (m) {
	case HTTP_HM_ROLE:
		for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
			if (http_prom_host(out, name, c, h) == -1 ||
			    evbuffer_add_printf(out, ",role=\"%s\"} %d\n",
			    topology_role_name(roles[i]),
			    h->role == roles[i]) < 0)
				return -1;
		}
		return 0;
	case HTTP_HM_LAG_BYTES:
		if (!h->lag_known)
			return 0;
		break;
	case HTTP_HM_LAG_SECONDS:
		if (!h->lag_known || h->lag_ms < 0)
			return 0;
		break;
	default:
		break;
	}
	if (http_prom_host(out, name, c, h) == -1)
		return -1;
	switch (m) {
	case HTTP_HM_UP:
		rc = evbuffer_add_printf(out, "} %d\n", h->alive ? 1 : 0);
		break;
	case HTTP_HM_LAG_BYTES:
		rc = evbuffer_add_printf(out, "} %" PRIu64 "\n", h->lag_bytes);
		break;
	case HTTP_HM_LAG_SECONDS:
		rc = evbuffer_add_printf(out, "} %" PRId64 ".%03d\n",
		    h->lag_ms / 1000, (int)(h->lag_ms % 1000));
		break;
	case HTTP_HM_PROBE_SECONDS:
		rc = evbuffer_add_printf(out, "} %" PRId64 ".%06d\n",
		    h->probe_us / 1000000, (int)(h->probe_us % 1000000));
		break;
	case HTTP_HM_FAILURES:
		rc = evbuffer_add_printf(out, "} %d\n", h->fails);
		break;
	default:
		break;
	}
	return rc < 0 ? -1 : 0;
}

/* Names of the socket commands, indexed like server_counters. */
static const char *const http_socket_cmds[SERVER_NCMDS] = {
	[PROTO_CMD_RESOLVE] = "resolve",
	[PROTO_CMD_STATUS] = "status",
	[PROTO_CMD_WATCH] = "watch",
	[PROTO_CMD_PING] = "ping",
	[PROTO_CMD_FORGET] = "forget",
	[SERVER_CMD_INVALID] = "invalid",
};

int
http_format_metrics(struct evbuffer *out, const struct http_metrics_input *in)
{
	const struct topo_cluster	*c;
	size_t				 i, j, k;
	int				 m;

	for (m = 0; m < HTTP_HM_COUNT; m++) {
		if (http_prom_head(out, http_host_metrics[m].name, "gauge",
		    http_host_metrics[m].help) == -1)
			return -1;
		for (i = 0; i < in->nclusters; i++) {
			c = in->clusters[i];
			for (j = 0; j < c->nhosts; j++)
				if (http_prom_host_metric(out,
				    (enum http_host_metric)m, c,
				    c->hosts[j]) == -1)
					return -1;
		}
	}

	if (http_prom_head(out, "pgbeacon_cluster_generation", "gauge",
	    "Changes of the answer to 'who is primary' since start.") == -1)
		return -1;
	for (i = 0; i < in->nclusters; i++) {
		c = in->clusters[i];
		if (http_prom_cluster(out, "pgbeacon_cluster_generation",
		    c) == -1 || evbuffer_add_printf(out, "} %" PRIu64 "\n",
		    c->generation) < 0)
			return -1;
	}
	if (http_prom_head(out, "pgbeacon_cluster_has_master", "gauge",
	    "1 when the cluster has a primary.") == -1)
		return -1;
	for (i = 0; i < in->nclusters; i++) {
		c = in->clusters[i];
		if (http_prom_cluster(out, "pgbeacon_cluster_has_master",
		    c) == -1 || evbuffer_add_printf(out, "} %d\n",
		    topology_master(c) != NULL) < 0)
			return -1;
	}
	if (in->role_changes != NULL) {
		if (http_prom_head(out, "pgbeacon_cluster_role_changes_total",
		    "counter", "Changes of any host's role (master, replica, "
		    "none) since start or reload.") == -1)
			return -1;
		for (i = 0; i < in->nclusters; i++) {
			if (http_prom_cluster(out,
			    "pgbeacon_cluster_role_changes_total",
			    in->clusters[i]) == -1 ||
			    evbuffer_add_printf(out, "} %" PRIu64 "\n",
			    in->role_changes[i]) < 0)
				return -1;
		}
	}

	if (in->http != NULL) {
		if (http_prom_head(out, "pgbeacon_http_requests_total",
		    "counter", "HTTP requests answered, by endpoint and "
		    "status code.") == -1)
			return -1;
		for (i = 0; i < HTTP_EP_COUNT; i++)
			for (k = 0; k < HTTP_NCODES; k++) {
				uint64_t v = in->http->requests[i][k];

				/* Every endpoint's 200 series exists from
				 * the start; the others once they happen. */
				if (v == 0 && (k != 0 || i == HTTP_EP_UNKNOWN))
					continue;
				if (evbuffer_add_printf(out,
				    "pgbeacon_http_requests_total{endpoint=\"%s\","
				    "code=\"%d\"} %" PRIu64 "\n",
				    http_endpoint_name((enum http_endpoint)i),
				    http_codes[k], v) < 0)
					return -1;
			}
	}
	if (in->socket != NULL) {
		if (http_prom_head(out, "pgbeacon_socket_requests_total",
		    "counter", "Unix-socket requests answered, by command and "
		    "result.") == -1)
			return -1;
		for (i = 0; i < SERVER_NCMDS; i++)
			for (k = 0; k < SERVER_NRESULTS; k++) {
				uint64_t v = in->socket->requests[i][k];

				if (v == 0 && (k != PROTO_OK ||
				    i == SERVER_CMD_INVALID))
					continue;
				if (evbuffer_add_printf(out,
				    "pgbeacon_socket_requests_total{command=\"%s\","
				    "result=\"%s\"} %" PRIu64 "\n",
				    http_socket_cmds[i],
				    protocol_err_code((enum proto_err)k), v) < 0)
					return -1;
			}
	}
	if (in->http != NULL && (http_prom_head(out, "pgbeacon_http_clients",
	    "gauge", "Connections to the HTTP listener.") == -1 ||
	    evbuffer_add_printf(out, "pgbeacon_http_clients %zu\n",
	    in->http_clients) < 0))
		return -1;
	if (http_prom_head(out, "pgbeacon_socket_clients", "gauge",
	    "Clients connected to the Unix socket.") == -1 ||
	    evbuffer_add_printf(out, "pgbeacon_socket_clients %zu\n",
	    in->socket_clients) < 0)
		return -1;
	return http_format_listener_metrics(out, in);
}

/* --- evhttp glue ---------------------------------------------------------- */

void
http_set_proxy(struct http *h, struct proxy *px)
{
	h->proxy = px;
}

/* Sends h->body with code, counting the request. */
static void
http_send(struct http *h, struct evhttp_request *req, enum http_endpoint ep,
    int code, const char *ctype)
{
	h->counters.requests[ep][http_code_index(code)]++;
	if (ctype != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", ctype);
	evhttp_send_reply(req, code, NULL, h->body);
	/* evhttp_send_reply() moved the data out; make sure. */
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
}

/* A 4xx/5xx with a short reason, as text or {"error_text": ...}. */
static void
http_send_error(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, int code, bool json, const char *why)
{
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	if (json) {
		if (HTTP_ADD_LIT(h->body, "{\"error_text\": ") == -1 ||
		    protocol_json_string(h->body, why) == -1 ||
		    HTTP_ADD_LIT(h->body, "}") == -1)
			goto oom;
		http_send(h, req, ep, code, "application/json");
	} else {
		if (evbuffer_add_printf(h->body, "%s\n", why) < 0)
			goto oom;
		http_send(h, req, ep, code, NULL);
	}
	return;
oom:
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	http_send(h, req, ep, 500, NULL);
}

static void
http_handle_role(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p, bool json)
{
	const struct topo_host	*host;
	char			 why[256];

	host = topology_resolve(c, &p->query, monitor_limits(h->mon), why,
	    sizeof(why));
	if (http_format_host(h->body, host, json) == -1) {
		http_send_error(h, req, ep, 500, json, "out of memory");
		return;
	}
	http_send(h, req, ep, host != NULL ? 200 : 404,
	    json ? "application/json" : NULL);
}

static void
http_handle_v1_resolve(struct http *h, struct evhttp_request *req,
    struct topo_cluster *c, const struct http_params *p)
{
	const struct topo_host	*host;
	char			 why[256];
	int			 rc;

	host = topology_resolve(c, &p->query, monitor_limits(h->mon), why,
	    sizeof(why));
	if (host != NULL)
		rc = http_format_resolve(h->body, c, host);
	else if ((rc = HTTP_ADD_LIT(h->body, "{\"error\": \"NOHOST\", \"why\": ")) == 0 &&
	    (rc = protocol_json_string(h->body, why)) == 0)
		rc = HTTP_ADD_LIT(h->body, "}");
	if (rc == -1) {
		http_send_error(h, req, HTTP_EP_V1_RESOLVE, 500, true,
		    "out of memory");
		return;
	}
	http_send(h, req, HTTP_EP_V1_RESOLVE, host != NULL ? 200 : 404,
	    "application/json");
}

static void
http_handle_v1_status(struct http *h, struct evhttp_request *req,
    struct topo_cluster *one)
{
	struct topo_cluster *const *all;
	struct evbuffer		*tmp;
	struct proto_listener_stats *ls;
	size_t			 n, len, nls;
	int			 rc = -1, fmt;

	if (one != NULL) {
		all = &one;
		n = 1;
	} else
		all = monitor_clusters(h->mon, &n);
	/* STATUS's "OK <json>\n" without "OK " and "\n": one renderer. */
	if ((tmp = evbuffer_new()) == NULL)
		goto done;
	ls = proxy_get_stats(h->proxy, one != NULL ? one->name : NULL, &nls);
	fmt = protocol_format_status_listeners(tmp, all, n, monitor_now_ms(),
	    ls, nls);
	free(ls);
	if (fmt != 0 ||
	    (len = evbuffer_get_length(tmp)) < 4 ||
	    evbuffer_drain(tmp, 3) != 0 ||
	    evbuffer_remove_buffer(tmp, h->body, len - 4) != (int)(len - 4))
		goto done;
	rc = 0;
done:
	if (tmp != NULL)
		evbuffer_free(tmp);
	if (rc != 0) {
		http_send_error(h, req, HTTP_EP_V1_STATUS, 500, true,
		    "out of memory");
		return;
	}
	http_send(h, req, HTTP_EP_V1_STATUS, 200, "application/json");
}

static void
http_handle_metrics(struct http *h, struct evhttp_request *req)
{
	struct http_metrics_input	 in;
	struct proto_listener_stats	*listeners;
	uint64_t			*changes = NULL;
	size_t				 i;
	int				 rc;

	memset(&in, 0, sizeof(in));
	in.clusters = monitor_clusters(h->mon, &in.nclusters);
	if (in.nclusters > 0 &&
	    (changes = calloc(in.nclusters, sizeof(*changes))) != NULL) {
		for (i = 0; i < in.nclusters; i++)
			changes[i] = monitor_role_changes(h->mon,
			    in.clusters[i]);
		in.role_changes = changes;
	}
	in.http = &h->counters;	/* this request is not in it yet */
	in.http_clients = h->nconns;
	if (h->srv != NULL) {
		in.socket = server_get_counters(h->srv);
		in.socket_clients = server_nclients(h->srv);
	}
	in.listeners = listeners = proxy_get_stats(h->proxy, NULL,
	    &in.nlisteners);
	rc = http_format_metrics(h->body, &in);
	free(listeners);
	if (rc == -1) {
		free(changes);
		http_send_error(h, req, HTTP_EP_METRICS, 500, false,
		    "out of memory");
		return;
	}
	free(changes);
	http_send(h, req, HTTP_EP_METRICS, 200,
	    "text/plain; version=0.0.4; charset=utf-8");
}

static void
http_handle_health(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p)
{
	char	why[256];
	int	code;

	code = http_health(c, p, ep == HTTP_EP_HEALTH_REPLICA, why,
	    sizeof(why));
	if (evbuffer_add_printf(h->body, "%s\n", why) < 0) {
		http_send_error(h, req, ep, 500, false, "out of memory");
		return;
	}
	http_send(h, req, ep, code, NULL);
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http		*h = arg;
	struct http_conn	*conn;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*query;
	struct evkeyvalq	 kv;
	struct http_params	 p;
	struct topo_cluster	*c = NULL, *const *all;
	enum http_endpoint	 ep;
	enum evhttp_cmd_type	 cmd;
	size_t			 n;
	char			 why[256];
	bool			 json;

	TAILQ_INIT(&kv);
	/* A whole request came: the next one has a deadline of its own. */
	if ((conn = http_conn_find(h, evhttp_request_get_connection(req))) !=
	    NULL)
		http_conn_arm(conn);
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	ep = http_endpoint_parse(uri != NULL ? evhttp_uri_get_path(uri) : NULL);
	json = ep == HTTP_EP_V1_RESOLVE || ep == HTTP_EP_V1_STATUS ||
	    ep == HTTP_EP_REPLICAS_INFO ||
	    http_wants_json(evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Accept"));
	if (ep == HTTP_EP_UNKNOWN) {
		http_send_error(h, req, ep, 404, json, "unknown path");
		return;
	}
	cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		http_send_error(h, req, ep, 405, json, "only GET and HEAD");
		return;
	}
	query = evhttp_uri_get_query(uri);
	/* pg-status answers a bad request with {"error_text": ...} always. */
	if (query != NULL && (evhttp_parse_query_str(query, &kv) != 0 ||
	    http_query_has_nul(query))) {
		http_send_error(h, req, ep, 400, json || http_is_pg_status(ep),
		    "malformed query string");
		goto done;
	}
	if (http_params_parse(ep, &kv, &p, why, sizeof(why)) != 0) {
		http_send_error(h, req, ep, 400, json || http_is_pg_status(ep),
		    why);
		goto done;
	}
	if (ep != HTTP_EP_METRICS &&
	    (ep != HTTP_EP_V1_STATUS || p.cluster != NULL)) {
		all = monitor_clusters(h->mon, &n);
		if ((c = http_pick_cluster(all, n, p.cluster)) == NULL) {
			snprintf(why, sizeof(why), "no cluster '%.64s'",
			    p.cluster != NULL ? p.cluster : "");
			http_send_error(h, req, ep, 404, json, why);
			goto done;
		}
	}

	switch (ep) {
	case HTTP_EP_MASTER:
	case HTTP_EP_REPLICA:
	case HTTP_EP_SYNC_BY_TIME:
	case HTTP_EP_SYNC_BY_BYTES:
	case HTTP_EP_SYNC_BY_TIME_OR_BYTES:
	case HTTP_EP_SYNC_BY_TIME_AND_BYTES:
		http_handle_role(h, req, ep, c, &p, json);
		break;
	case HTTP_EP_REPLICAS_INFO:
		if (http_format_replicas_info(h->body, c) == -1)
			http_send_error(h, req, ep, 500, true, "out of memory");
		else
			http_send(h, req, ep, 200, "application/json");
		break;
	case HTTP_EP_V1_RESOLVE:
		http_handle_v1_resolve(h, req, c, &p);
		break;
	case HTTP_EP_V1_STATUS:
		http_handle_v1_status(h, req, c);
		break;
	case HTTP_EP_METRICS:
		http_handle_metrics(h, req);
		break;
	case HTTP_EP_HEALTH_PRIMARY:
	case HTTP_EP_HEALTH_REPLICA:
		http_handle_health(h, req, ep, c, &p);
		break;
	default:
		http_send_error(h, req, ep, 404, json, "unknown path");
		break;
	}
done:
	evhttp_clear_headers(&kv);
}

/* --- connections: count, cap, deadline ------------------------------------ */

static struct http_conn_list *
http_bucket(struct http *h, const struct evhttp_connection *evcon)
{
	uintptr_t v = (uintptr_t)evcon;

	v ^= v >> 12;
	return &h->conns[(v >> 4) & (HTTP_CONN_BUCKETS - 1)];
}

static struct http_conn *
http_conn_find(struct http *h, const struct evhttp_connection *evcon)
{
	struct http_conn *c;

	LIST_FOREACH(c, http_bucket(h, evcon), entry)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

/* Pauses the listener at max_clients connections, resumes it below. */
static void
http_check_full(struct http *h)
{
	bool full = h->nconns >= h->max_clients;

	if (full == h->full || h->listener == NULL)
		return;
	h->full = full;
	if (full) {
		log_warn("%zu HTTP clients: not accepting more until one "
		    "leaves", h->nconns);
		evconnlistener_disable(h->listener);
	} else if (!h->backing_off)
		evconnlistener_enable(h->listener);
}

/* The request deadline passed: evhttp's timeout only measures silence,
 * so a client dripping one byte at a time would never reach it. */
static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	char *addr = NULL;
	ev_uint16_t port = 0;

	(void)fd;
	(void)what;
	evhttp_connection_get_peer(c->evcon, &addr, &port);
	log_info("HTTP client %s:%u: no complete request in %d ms, closing",
	    addr != NULL ? addr : "?", (unsigned)port,
	    c->h->request_timeout_ms);
	evhttp_connection_free(c->evcon);	/* calls http_close_cb() */
}

/* evhttp closes a connection: stop counting it; the reaper frees it. */
static void
http_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct http *h = c->h;

	(void)evcon;
	LIST_REMOVE(c, entry);
	event_del(c->deadline);
	LIST_INSERT_HEAD(&h->dead, c, entry);
	h->nconns--;
	event_active(h->adopt, EV_TIMEOUT, 1);
}

static void
http_conn_arm(struct http_conn *c)
{
	struct timeval tv;

	tv.tv_sec = c->h->request_timeout_ms / 1000;
	tv.tv_usec = (c->h->request_timeout_ms % 1000) * 1000;
	event_add(c->deadline, &tv);
}

/*
 * Adopts the connections accepted since the last run and frees the dead
 * ones.  evhttp gives no hook between creating a connection and reading
 * from it, so http_bev_cb() only records the bufferevent; this runs at
 * SERVER_PRIO_URGENT, before any event of the new connections, and finds
 * each connection as the argument evhttp set on its bufferevent.
 */
static void
http_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;
	void *cbarg;

	(void)fd;
	(void)what;
	while ((c = LIST_FIRST(&h->pending)) != NULL) {
		LIST_REMOVE(c, entry);
		cbarg = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		c->evcon = cbarg;
		LIST_INSERT_HEAD(http_bucket(h, c->evcon), c, entry);
		evhttp_connection_set_closecb(c->evcon, http_close_cb, c);
		http_conn_arm(c);
	}
	while ((c = LIST_FIRST(&h->dead)) != NULL) {
		LIST_REMOVE(c, entry);
		event_free(c->deadline);
		free(c);
	}
	http_check_full(h);
}

/*
 * evhttp accepted a connection and asks for its bufferevent.  Counts the
 * connection and pauses the listener at the cap: evconnlistener stops
 * its accept loop as soon as its callback disabled it.
 */
static struct bufferevent *
http_bev_cb(struct event_base *base, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;	/* evhttp makes its own; not counted */
	c->h = h;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(base, http_deadline_cb, c);
	if (c->bev == NULL || c->deadline == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	/* See SERVER_PRIO_HTTP; fails only without priorities. */
	(void)bufferevent_priority_set(c->bev, SERVER_PRIO_HTTP);
	LIST_INSERT_HEAD(&h->pending, c, entry);
	h->nconns++;
	server_backoff_ok(&h->backoff);
	event_active(h->adopt, EV_TIMEOUT, 1);
	if (h->nconns >= h->max_clients)
		http_check_full(h);
	return c->bev;
}

/*
 * The accept-retry timer is always pending: after an accept error it
 * fires after the back-off; otherwise after HTTP_IDLE_RETRY_S, doing
 * nothing but re-arming.  That keeps it visible to
 * event_base_foreach_event(), which is how http_accept_error_cb() finds
 * its struct http (evhttp passes its own argument to the callback).
 */
#define HTTP_IDLE_RETRY_S	3600

static void
http_retry_arm(struct http *h, int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->accept_retry, &tv);
}

static void
http_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	(void)fd;
	(void)what;
	if (h->backing_off && !h->full)
		evconnlistener_enable(h->listener);
	h->backing_off = false;
	http_retry_arm(h, HTTP_IDLE_RETRY_S * 1000);
}

/* What http_find_cb() looks for, and finds. */
struct http_find {
	const struct evhttp	*evh;
	struct http		*h;
};

static int
http_find_cb(const struct event_base *base, const struct event *ev,
    void *arg)
{
	struct http_find *f = arg;
	struct http *h;

	(void)base;
	if (event_get_callback(ev) != http_accept_retry_cb)
		return 0;
	h = event_get_callback_arg(ev);
	if (h->evh != f->evh)
		return 0;
	f->h = h;
	return 1;
}

/* Out of descriptors: accepting again at once would spin.  Pause, longer
 * each time, and log at most every 10 s.  arg is evhttp's. */
static void
http_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct http_find f = { arg, NULL };
	unsigned suppressed;
	bool log;
	int ms, err = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(l);
	(void)event_base_foreach_event(evconnlistener_get_base(l),
	    http_find_cb, &f);
	if (f.h == NULL) {	/* cannot happen; never spin */
		log_warn("HTTP accept: %s",
		    evutil_socket_error_to_string(err));
		return;
	}
	ms = server_backoff_fail(&f.h->backoff, monitor_now_ms(), &log,
	    &suppressed);
	if (log)
		log_warn("HTTP accept: %s; pausing for %d ms (%u more such "
		    "errors not logged)", evutil_socket_error_to_string(err),
		    ms, suppressed);
	f.h->backing_off = true;
	http_retry_arm(f.h, ms);
}

/* Watches the listener of bs: accept errors, the client cap. */
static void
http_watch_listener(struct http *h, struct evhttp_bound_socket *bs)
{
	h->listener = evhttp_bound_socket_get_listener(bs);
	evconnlistener_set_error_cb(h->listener, http_accept_error_cb);
}

/* True when fd is bound to a loopback address. */
static bool
http_is_loopback(evutil_socket_t fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

/* Binds "HOST:PORT" or "[V6]:PORT". */
static int
http_bind_tcp(struct http *h, const char *listen_addr, char *err, size_t errlen)
{
	struct evhttp_bound_socket	*bs;
	struct http_params		 p;
	evutil_socket_t			 fd;

	if (!http_parse_hostport(listen_addr, &p)) {
		snprintf(err, errlen, "http_listen %s: not HOST:PORT", listen_addr);
		return -1;
	}
	bs = evhttp_bind_socket_with_handle(h->evh, p.host_name,
	    (ev_uint16_t)p.host_port);
	if (bs == NULL) {
		snprintf(err, errlen, "cannot listen for HTTP on %s: %s", listen_addr,
		    errno != 0 ? strerror(errno) : "bind failed");
		return -1;
	}
	fd = evhttp_bound_socket_get_fd(bs);
	/* evhttp listened with a backlog of 128: a burst of connects would
	 * be refused.  Listening again only changes the backlog. */
	if (listen(fd, SOMAXCONN) != 0)
		log_warn("HTTP listener %s: cannot raise its backlog: %s",
		    listen_addr, strerror(errno));
	http_watch_listener(h, bs);
	if (!http_is_loopback(fd))
		log_warn("HTTP listener %s is not on loopback: anyone who can "
		    "reach it can read the cluster's topology", listen_addr);
	return 0;
}

/* Binds an absolute Unix socket path, replacing a dead one. */
static int
http_bind_unix(struct http *h, const char *path, mode_t mode, char *err,
    size_t errlen)
{
	struct evhttp_bound_socket *bs;
	int fd;

	if ((fd = unixsock_listen(path, mode, true, err, errlen)) < 0)
		return -1;
	if ((h->unix_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	if ((bs = evhttp_accept_socket_with_handle(h->evh, fd)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s", path);
		close(fd);
		return -1;	/* http_free() unlinks unix_path */
	}
	http_watch_listener(h, bs);	/* listening with SOMAXCONN */
	return 0;
}

struct http *
http_new(struct event_base *base, const char *listen, mode_t mode,
    struct monitor *mon, struct server *srv, char *err, size_t errlen)
{
	struct http	*h;
	size_t		 i;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->mon = mon;
	h->srv = srv;
	h->max_clients = HTTP_DEFAULT_MAX_CLIENTS;
	h->request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS;
	LIST_INIT(&h->pending);
	LIST_INIT(&h->dead);
	for (i = 0; i < HTTP_CONN_BUCKETS; i++)
		LIST_INIT(&h->conns[i]);
	if ((h->body = evbuffer_new()) == NULL ||
	    (h->evh = evhttp_new(base)) == NULL ||
	    (h->adopt = event_new(base, -1, 0, http_adopt_cb, h)) == NULL ||
	    (h->accept_retry = evtimer_new(base, http_accept_retry_cb,
	    h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Fails only on a base without priorities (the unit tests'). */
	(void)event_priority_set(h->adopt, SERVER_PRIO_URGENT);
	http_retry_arm(h, HTTP_IDLE_RETRY_S * 1000);
	evhttp_set_bevcb(h->evh, http_bev_cb, h);
	/* Every method reaches http_request_cb(), which answers 405 to all
	 * but GET and HEAD (evhttp itself would say 501). */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->evh, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evh, 0);
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	evhttp_set_default_content_type(h->evh, "text/plain; charset=utf-8");
	evhttp_set_gencb(h->evh, http_request_cb, h);
	errno = 0;
	if (listen[0] == '/') {
		if (http_bind_unix(h, listen, mode, err, errlen) != 0)
			goto fail;
	} else if (http_bind_tcp(h, listen, err, errlen) != 0)
		goto fail;
	log_info("HTTP API listening on %s", listen);
	return h;
fail:
	http_free(h);
	return NULL;
}

/* Frees every http_conn of list. */
static void
http_conn_free_list(struct http_conn_list *list)
{
	struct http_conn *c;

	while ((c = LIST_FIRST(list)) != NULL) {
		LIST_REMOVE(c, entry);
		event_free(c->deadline);
		free(c);
	}
}

void
http_free(struct http *h)
{
	size_t i;

	if (h == NULL)
		return;
	if (h->evh != NULL)
		evhttp_free(h->evh);	/* closes every connection */
	http_conn_free_list(&h->pending);
	http_conn_free_list(&h->dead);
	for (i = 0; i < HTTP_CONN_BUCKETS; i++)
		http_conn_free_list(&h->conns[i]);
	if (h->adopt != NULL)
		event_free(h->adopt);
	if (h->accept_retry != NULL)
		event_free(h->accept_retry);
	if (h->unix_path != NULL) {
		unlink(h->unix_path);
		free(h->unix_path);
	}
	if (h->body != NULL)
		evbuffer_free(h->body);
	free(h);
}

const struct http_counters *
http_get_counters(const struct http *h)
{
	return &h->counters;
}

void
http_set_limits(struct http *h, size_t max_clients, int request_timeout_ms)
{
	h->max_clients = max_clients > 0 ? max_clients : 1;
	if (request_timeout_ms > 0)
		h->request_timeout_ms = request_timeout_ms;
	http_check_full(h);
}

size_t
http_nclients(const struct http *h)
{
	return h->nconns;
}
