/*
 * http_api.c - the pure part of the HTTP listener: routing, parameters,
 * health answers and rendering (JSON, plain text, Prometheus metrics).
 * No I/O: unit tested on hand-built topo_clusters (check_http) and fuzzed
 * (fuzz_http).  The connection handling is in http.c.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/hostport.h"
#include "common/lsn.h"
#include "common/request.h"

#include "http_api.h"
#include "protocol.h"
#include "proxy.h"
#include "server.h"

const int http_codes[HTTP_NCODES] = { 200, 400, 404, 405, 500, 503 };

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

/* HTTP's own parameters; RESOLVE's options come from common/request.h. */
static const struct {
	const char	*name;
	unsigned	 bit;
} http_param_names[] = {
	{ "cluster", HTTP_P_CLUSTER },
	{ "role", HTTP_P_ROLE },
	{ "host", HTTP_P_HOST },
};

/* The parameter bit of each RESOLVE option (its alias is the same). */
static const unsigned http_opt_bits[PGBC_OPT_COUNT] = {
	[PGBC_OPT_MAX_LAG_MS] = HTTP_P_LAG_MS,
	[PGBC_OPT_MAX_LAG_BYTES] = HTTP_P_LAG_BYTES,
	[PGBC_OPT_MIN_LSN] = HTTP_P_MIN_LSN,
	[PGBC_OPT_FALLBACK] = HTTP_P_FALLBACK,
};

/* "H:P", "[V6]:P" or "/DIR:P" (common/hostport.h) into p->host_name and
 * p->host_port. */
bool
http_parse_hostport(const char *s, struct http_params *p)
{
	struct pgbc_hostport	hp;

	if (!pgbc_hostport_parse(s, strlen(s), PGBC_HP_ALLOW_DIR, &hp, NULL) ||
	    hp.hostlen >= sizeof(p->host_name))
		return false;
	memcpy(p->host_name, hp.host, hp.hostlen);
	p->host_name[hp.hostlen] = '\0';
	p->host_port = hp.port;
	return true;
}

int
http_params_parse(enum http_endpoint ep, const struct evkeyvalq *kv,
    struct http_params *p, char *why, size_t why_len)
{
	const struct evkeyval	*e;
	const struct pgbc_opt	*o = NULL;
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
		if ((o = pgbc_opt_find(e->key, true)) != NULL)
			bit = http_opt_bits[o->id];
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
			if (!pgbc_cluster_name_ok(e->value)) {
				snprintf(why, why_len, "cluster name must be at "
				    "most %d bytes of printable ASCII without "
				    "spaces", PGBC_CLUSTER_NAME_MAX);
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
		case HTTP_P_LAG_BYTES:
		case HTTP_P_MIN_LSN:
		case HTTP_P_FALLBACK:
			/* The socket's parser of the value, and its bounds. */
			if (protocol_query_option(&p->query, o, e->value, NULL,
			    why, why_len) != PROTO_OK) {
				/* pg-status's words for a bad number. */
				if (o->type == PGBC_OPT_INT)
					snprintf(why, why_len, "Invalid %s",
					    e->key);
				return -1;
			}
			break;
		case HTTP_P_HOST:
			if (!http_parse_hostport(e->value, p)) {
				snprintf(why, why_len, "host must be HOST:PORT, "
				    "[IPV6]:PORT or /DIR:PORT");
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
	struct pgbc_opt_value	v;
	char			val[32], hp[sizeof(p->host_name) + 16];
	size_t			n = 0, i;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (p->cluster != NULL && !http_query_add(buf, len, &n, "cluster",
	    p->cluster))
		return -1;
	if (ep == HTTP_EP_V1_RESOLVE && !http_query_add(buf, len, &n, "role",
	    topology_want_name(p->query.want)))
		return -1;
	for (i = 0; i < PGBC_OPT_COUNT; i++) {
		if (!protocol_query_value(&p->query, &pgbc_opts[i], &v))
			continue;
		pgbc_opt_format(val, sizeof(val), &pgbc_opts[i], &v);
		if (!http_query_add(buf, len, &n, pgbc_opts[i].name, val))
			return -1;
	}
	if (p->host != NULL) {
		pgbc_hostport_format(hp, sizeof(hp), p->host_name, p->host_port);
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

int
http_format_error(struct evbuffer *out, enum http_endpoint ep,
    const char *code, const char *text, bool why_alias)
{
	if (!http_is_pg_status(ep) &&
	    (HTTP_ADD_LIT(out, "{\"error\": ") == -1 ||
	    protocol_json_string(out, code) == -1 ||
	    HTTP_ADD_LIT(out, ", ") == -1))
		return -1;
	if (http_is_pg_status(ep) && HTTP_ADD_LIT(out, "{") == -1)
		return -1;
	if (HTTP_ADD_LIT(out, "\"error_text\": ") == -1 ||
	    protocol_json_string(out, text) == -1)
		return -1;
	if (why_alias && (HTTP_ADD_LIT(out, ", \"why\": ") == -1 ||
	    protocol_json_string(out, text) == -1))
		return -1;
	return HTTP_ADD_LIT(out, "}");
}

/* --- request heads ------------------------------------------------------ */

/* Longest method: a longer token is refused before the line is whole. */
#define HTTP_MAX_METHOD		32

/* RFC 9110's tchar: what a method or a header name is made of. */
static bool
http_is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* True when the len bytes at s, blanks around them ignored, are word
 * (any case). */
static bool
http_value_is(const char *s, size_t len, const char *word)
{
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return len == strlen(word) && strncasecmp(s, word, len) == 0;
}

/* Reads a Connection value, a comma-separated list of options. */
static void
http_connection_opts(const char *v, size_t len, bool *close, bool *keep)
{
	const char	*end = v + len, *comma;

	while (v < end) {
		if ((comma = memchr(v, ',', (size_t)(end - v))) == NULL)
			comma = end;
		if (http_value_is(v, (size_t)(comma - v), "close"))
			*close = true;
		else if (http_value_is(v, (size_t)(comma - v), "keep-alive"))
			*keep = true;
		v = comma + 1;
	}
}

/* Reads a Content-Length value: 0 when it is zero, 413 when above, 400
 * when not a number. */
static int
http_content_length(const char *v, size_t len)
{
	bool	digits = false, nonzero = false;

	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	for (; len > 0; v++, len--) {
		if (*v < '0' || *v > '9')
			return 400;
		digits = true;
		nonzero |= *v != '0';
	}
	return !digits ? 400 : nonzero ? 413 : 0;
}

/* Parses the request line (len bytes at s, no line end) into req. */
static int
http_request_line(const char *s, size_t len, struct http_request *req)
{
	const char	*sp1, *sp2, *t, *q, *end = s + len;
	size_t		 mlen, tlen, i;

	if ((sp1 = memchr(s, ' ', len)) == NULL)
		return 400;
	mlen = (size_t)(sp1 - s);
	if (mlen == 0 || mlen > HTTP_MAX_METHOD)
		return 400;
	for (i = 0; i < mlen; i++)
		if (!http_is_tchar((unsigned char)s[i]))
			return 400;
	if (mlen == 3 && memcmp(s, "GET", 3) == 0)
		req->method = HTTP_M_GET;
	else if (mlen == 4 && memcmp(s, "HEAD", 4) == 0)
		req->method = HTTP_M_HEAD;
	else
		req->method = HTTP_M_OTHER;
	t = sp1 + 1;
	if ((sp2 = memchr(t, ' ', (size_t)(end - t))) == NULL)
		return 400;
	/* The version: exactly "HTTP/D.D". */
	if (end - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 ||
	    sp2[6] < '0' || sp2[6] > '9' || sp2[7] != '.' ||
	    sp2[8] < '0' || sp2[8] > '9')
		return 400;
	if (sp2[6] != '1')
		return 505;
	req->minor = sp2[8] == '0' ? 0 : 1;
	tlen = (size_t)(sp2 - t);
	if (tlen == 0)
		return 400;
	for (i = 0; i < tlen; i++)
		if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f)
			return 400;
	if (tlen > HTTP_MAX_URI)
		return 414;
	/* Absolute form: keep the path (RFC 9112 3.2.2). */
	if ((tlen > 7 && strncasecmp(t, "http://", 7) == 0) ||
	    (tlen > 8 && strncasecmp(t, "https://", 8) == 0)) {
		const char *auth = (const char *)memchr(t, '/', tlen) + 2;
		const char *slash = memchr(auth, '/', (size_t)(sp2 - auth));
		const char *qm = memchr(auth, '?', (size_t)(sp2 - auth));

		if (qm != NULL && (slash == NULL || qm < slash))
			return 400;	/* "http://h?q": no path */
		if (slash == auth)
			return 400;	/* "http:///p": no host (RFC 9110 4.2.1) */
		if (slash == NULL) {
			t = "/";
			tlen = 1;
		} else {
			tlen -= (size_t)(slash - t);
			t = slash;
		}
	} else if (t[0] != '/' && !(tlen == 1 && t[0] == '*'))
		return 400;
	if ((q = memchr(t, '#', tlen)) != NULL)
		tlen = (size_t)(q - t);
	if ((q = memchr(t, '?', tlen)) != NULL) {
		req->has_query = true;
		memcpy(req->query, q + 1, tlen - (size_t)(q - t) - 1);
		req->query[tlen - (size_t)(q - t) - 1] = '\0';
		tlen = (size_t)(q - t);
	}
	memcpy(req->path, t, tlen);
	req->path[tlen] = '\0';
	return 0;
}

/* Parses one header line (len bytes at s, no line end) into req. */
static int
http_header_line(const char *s, size_t len, struct http_request *req,
    bool *seen_accept, bool *close, bool *keep)
{
	const char	*colon, *v;
	size_t		 nlen, vlen, i;
	int		 rc;

	if ((colon = memchr(s, ':', len)) == NULL)
		return 400;
	nlen = (size_t)(colon - s);
	if (nlen == 0)
		return 400;	/* also an obs-fold line, which starts blank */
	for (i = 0; i < nlen; i++)
		if (!http_is_tchar((unsigned char)s[i]))
			return 400;
	v = colon + 1;
	vlen = len - nlen - 1;
	for (i = 0; i < vlen; i++)
		if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f)
			return 400;
	if (nlen == 10 && strncasecmp(s, "Connection", nlen) == 0)
		http_connection_opts(v, vlen, close, keep);
	else if (nlen == 6 && strncasecmp(s, "Accept", nlen) == 0) {
		if (!*seen_accept)
			req->json = http_value_is(v, vlen, "application/json");
		*seen_accept = true;
	} else if (nlen == 14 && strncasecmp(s, "Content-Length", nlen) == 0) {
		if ((rc = http_content_length(v, vlen)) != 0)
			return rc;
	} else if (nlen == 17 &&
	    strncasecmp(s, "Transfer-Encoding", nlen) == 0)
		return 413;
	return 0;
}

int
http_request_parse(const char *buf, size_t len, struct http_request *req)
{
	const char	*start = buf, *end = buf + len, *line, *nl;
	size_t		 llen;
	bool		 first = true, seen_accept = false;
	bool		 close = false, keep = false;
	int		 rc;

	/* Not a memset of the whole: path and query are 4 KiB each, and a
	 * parse runs for every request and every partial read. */
	memset(req, 0, offsetof(struct http_request, path));
	req->path[0] = '\0';
	req->query[0] = '\0';
	req->has_query = false;
	/* Blank lines before a request are ignored (RFC 9112 2.2). */
	while (start < end && (*start == '\n' || (*start == '\r' &&
	    start + 1 < end && start[1] == '\n')))
		start += *start == '\n' ? 1 : 2;
	for (line = start; ; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL) {
			/* Not whole yet: refuse what can no longer fit. */
			if (first && (size_t)(end - line) >
			    HTTP_MAX_METHOD + HTTP_MAX_URI + 16)
				return -414;
			if (len > HTTP_MAX_HEADERS)
				return -431;
			return 0;
		}
		if ((size_t)(nl + 1 - buf) > HTTP_MAX_HEADERS)
			return first && (size_t)(nl - line) > HTTP_MAX_URI ?
			    -414 : -431;
		llen = (size_t)(nl - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (memchr(line, '\r', llen) != NULL ||
		    memchr(line, '\0', llen) != NULL)
			return -400;
		if (first) {
			if ((rc = http_request_line(line, llen, req)) != 0)
				return -rc;
			first = false;
			continue;
		}
		if (llen == 0)
			break;
		if ((rc = http_header_line(line, llen, req, &seen_accept,
		    &close, &keep)) != 0)
			return -rc;
	}
	req->keep_alive = !close && (req->minor >= 1 || keep);
	return (int)(nl + 1 - buf);
}

const char *
http_reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
