/*
 * protocol.c - parse requests and format replies of the socket protocol
 * (DESIGN.md, "The socket protocol").  Pure: no sockets, no clock.
 *
 * The protocol is ASCII text: a request holding a NUL, a control byte
 * other than tab, DEL or any byte >= 0x80 is refused as binary data
 * (cluster names, roles and options are all ASCII).  A master whose host
 * is an IPv6 address is written "[addr]:port" in EVENT and STATUS.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "common/errcodes.h"
#include "common/lsn.h"
#include "common/request.h"

#include "protocol.h"
#include "topology.h"

#define PROTO_MAX_TOKENS	8		/* RESOLVE c r + 4 options + 2 */

static enum proto_err	protocol_fail(char *, size_t, enum proto_err,
			    const char *, ...)
			    __attribute__((format(printf, 4, 5)));

static enum proto_err
protocol_fail(char *why, size_t why_len, enum proto_err err,
    const char *fmt, ...)
{
	va_list	ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Splits line into at most max tokens at runs of spaces and tabs; returns
 * how many there are (max + 1 when there are more). */
static size_t
protocol_split(char *line, char **tok, size_t max)
{
	size_t	 n = 0;
	char	*p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			return n;
		if (n == max)
			return max + 1;
		tok[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
}

enum proto_err
protocol_query_option(struct topo_query *q, const struct pgbc_opt *o,
    const char *val, unsigned *seen, char *why, size_t why_len)
{
	struct pgbc_opt_value	v;

	if (seen != NULL) {
		if (*seen & (1u << o->id))
			return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
			    "option %s given twice", o->name);
		*seen |= 1u << o->id;
	}
	if (*val == '\0')
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "option %s has an empty value", o->name);
	if (!pgbc_opt_parse(o, val, &v))
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "%s must be %s", o->name, o->expect);
	switch (o->id) {
	case PGBC_OPT_MAX_LAG_MS:
		q->max_lag_ms = v.num;
		break;
	case PGBC_OPT_MAX_LAG_BYTES:
		q->max_lag_bytes = v.num;
		break;
	case PGBC_OPT_MIN_LSN:
		q->min_lsn = v.lsn;
		q->has_min_lsn = true;
		break;
	case PGBC_OPT_FALLBACK:
	case PGBC_OPT_COUNT:
		q->fallback = (enum topo_fallback)v.fallback;
		break;
	}
	return PROTO_OK;
}

bool
protocol_query_value(const struct topo_query *q, const struct pgbc_opt *o,
    struct pgbc_opt_value *v)
{
	memset(v, 0, sizeof *v);
	switch (o->id) {
	case PGBC_OPT_MAX_LAG_MS:
		v->num = q->max_lag_ms;
		return q->max_lag_ms >= 0;
	case PGBC_OPT_MAX_LAG_BYTES:
		v->num = q->max_lag_bytes;
		return q->max_lag_bytes >= 0;
	case PGBC_OPT_MIN_LSN:
		v->lsn = q->min_lsn;
		return q->has_min_lsn;
	case PGBC_OPT_FALLBACK:
	case PGBC_OPT_COUNT:
		break;
	}
	v->fallback = (enum pgbc_fallback)q->fallback;
	return q->fallback != TOPO_FALLBACK_DEFAULT;
}

static enum proto_err
protocol_parse_option(char *tok, unsigned *seen, struct topo_query *q,
    char *why, size_t why_len)
{
	const struct pgbc_opt	*o;
	char			*eq, *key;

	if ((eq = strchr(tok, '=')) == NULL)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "option '%.40s' needs key=value", tok);
	*eq = '\0';
	key = tok;
	if (*key == '\0')
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "option without a name");
	if ((o = pgbc_opt_find(key, false)) == NULL)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "unknown option '%.40s'", key);
	return protocol_query_option(q, o, eq + 1, seen, why, why_len);
}

/* Checks the optional cluster token of STATUS and WATCH, or of RESOLVE. */
static enum proto_err
protocol_check_cluster(const char *name, char *why, size_t why_len)
{
	if (!pgbc_cluster_name_ok(name))
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "cluster name longer than %d bytes", PGBC_CLUSTER_NAME_MAX);
	return PROTO_OK;
}

enum proto_err
protocol_parse_request(char *line, size_t len, struct proto_request *req,
    char *why, size_t why_len)
{
	char		*tok[PROTO_MAX_TOKENS];
	size_t		 n, i;
	unsigned	 seen = 0;
	enum topo_want	 want;
	enum proto_err	 err;

	memset(req, 0, sizeof *req);
	topology_query_init(&req->query, TOPO_WANT_MASTER);
	if (why != NULL && why_len > 0)
		why[0] = '\0';

	if (len > PROTO_MAX_LINE)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "line too long");
	if (!pgbc_line_text_ok(line, len))
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "binary data in request");
	line[len] = '\0';

	n = protocol_split(line, tok, PROTO_MAX_TOKENS);
	if (n == 0)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "empty request");

	if (strcasecmp(tok[0], "PING") == 0) {
		req->cmd = PROTO_CMD_PING;
		if (n > 1)
			return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
			    "PING takes no arguments");
		return PROTO_OK;
	}
	if (strcasecmp(tok[0], "STATUS") == 0 ||
	    strcasecmp(tok[0], "WATCH") == 0) {
		req->cmd = strcasecmp(tok[0], "STATUS") == 0 ?
		    PROTO_CMD_STATUS : PROTO_CMD_WATCH;
		if (n > 2)
			return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
			    "%s takes at most one cluster",
			    req->cmd == PROTO_CMD_STATUS ? "STATUS" : "WATCH");
		if (n == 2) {
			if ((err = protocol_check_cluster(tok[1], why,
			    why_len)) != PROTO_OK)
				return err;
			req->cluster = tok[1];
		}
		return PROTO_OK;
	}
	if (strcasecmp(tok[0], "FORGET") == 0) {
		req->cmd = PROTO_CMD_FORGET;
		if (n != 2)
			return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
			    "FORGET takes one cluster");
		if ((err = protocol_check_cluster(tok[1], why, why_len)) !=
		    PROTO_OK)
			return err;
		req->cluster = tok[1];
		return PROTO_OK;
	}
	if (strcasecmp(tok[0], "RESOLVE") != 0)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "unknown command '%.32s'", tok[0]);

	req->cmd = PROTO_CMD_RESOLVE;
	if (n < 3)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "RESOLVE needs a cluster and a role");
	if (n > PROTO_MAX_TOKENS)
		return protocol_fail(why, why_len, PROTO_ERR_BADREQ,
		    "too many options");
	if ((err = protocol_check_cluster(tok[1], why, why_len)) != PROTO_OK)
		return err;
	req->cluster = tok[1];
	if (!topology_want_parse(tok[2], &want))
		return protocol_fail(why, why_len, PROTO_ERR_BADROLE,
		    "unknown role '%.40s'", tok[2]);
	req->query.want = want;
	for (i = 3; i < n; i++) {
		if ((err = protocol_parse_option(tok[i], &seen, &req->query,
		    why, why_len)) != PROTO_OK)
			return err;
	}
	return PROTO_OK;
}

const char *
protocol_err_code(enum proto_err err)
{
	return pgbc_err_name((enum pgbc_err)err);
}

/*
 * Formats one reply line into buf: the text, cut to fit, then "\n".
 * Returns the bytes written (without the NUL), at most len - 1.
 */
static size_t	protocol_line(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static size_t
protocol_line(char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;
	int	n;
	size_t	body;

	if (len == 0)
		return 0;
	if (len == 1) {
		buf[0] = '\0';
		return 0;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf, len - 1, fmt, ap);
	va_end(ap);
	body = n < 0 ? 0 : (size_t)n;
	if (body > len - 2)
		body = len - 2;
	buf[body] = '\n';
	buf[body + 1] = '\0';
	return body + 1;
}

size_t
protocol_format_resolve(char *buf, size_t len, const struct topo_host *h,
    uint64_t generation)
{
	return protocol_line(buf, len, "OK host=%s port=%d role=%s "
	    "generation=%" PRIu64, h->host, h->port,
	    topology_role_name(h->role), generation);
}

size_t
protocol_format_error(char *buf, size_t len, enum proto_err err,
    const char *text)
{
	size_t	n, i, start;

	if (text == NULL)
		text = "";
	n = protocol_line(buf, len, "ERR %s ", protocol_err_code(err));
	if (n == 0)
		return 0;
	start = n - 1;		/* overwrite the "\n" */
	/* ...then the text, cut to fit, control characters as spaces. */
	for (i = 0; text[i] != '\0' && start + 2 < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		buf[start++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	if (start + 1 >= len)
		start = len - 2;
	buf[start] = '\n';
	buf[start + 1] = '\0';
	return start + 1;
}

size_t
protocol_format_event(char *buf, size_t len, const struct topo_cluster *c)
{
	const struct topo_host	*m = topology_master(c);
	char			 hp[TOPO_HOST_NAMELEN], hp2[TOPO_HOST_NAMELEN];
	char			 reps[PROTO_MAX_LINE];
	size_t			 i, n, rl = 0, base;
	bool			 fits = true;

	if (m != NULL)
		topology_host_name(m, hp, sizeof hp);
	else
		strcpy(hp, "none");
	for (i = 0; i < c->nhosts && fits; i++) {
		if (c->hosts[i]->role != TOPO_ROLE_REPLICA)
			continue;
		topology_host_name(c->hosts[i], hp2, sizeof hp2);
		n = strlen(hp2);
		if (strchr(hp2, ',') != NULL || rl + n + 2 > sizeof reps)
			fits = false;
		else {
			if (rl > 0)
				reps[rl++] = ',';
			memcpy(reps + rl, hp2, n + 1);
			rl += n;
		}
	}
	if (rl == 0)
		strcpy(reps, "none");
	base = protocol_line(buf, len, "EVENT %s generation=%" PRIu64
	    " master=%s", c->name, c->generation, hp);
	/* The replicas only when the whole of them fits. */
	if (!fits || base == 0 || base + strlen(" replicas=") + strlen(reps) >
	    len - 1)
		return base;
	return protocol_line(buf, len, "EVENT %s generation=%" PRIu64
	    " master=%s replicas=%s", c->name, c->generation, hp, reps);
}

size_t
protocol_format_request(char *buf, size_t len,
    const struct proto_request *req)
{
	const struct topo_query	*q = &req->query;
	struct pgbc_opt_value	 v;
	char			 opts[160];
	size_t			 n = 0, i;

	switch (req->cmd) {
	case PROTO_CMD_PING:
		return protocol_line(buf, len, "PING");
	case PROTO_CMD_STATUS:
	case PROTO_CMD_WATCH:
		return protocol_line(buf, len, "%s%s%s",
		    req->cmd == PROTO_CMD_STATUS ? "STATUS" : "WATCH",
		    req->cluster != NULL ? " " : "",
		    req->cluster != NULL ? req->cluster : "");
	case PROTO_CMD_FORGET:
		return protocol_line(buf, len, "FORGET %s",
		    req->cluster != NULL ? req->cluster : "");
	case PROTO_CMD_RESOLVE:
		break;
	}
	/* In the order of the option table; each value fits in 32 bytes. */
	opts[0] = '\0';
	for (i = 0; i < PGBC_OPT_COUNT; i++) {
		if (!protocol_query_value(q, &pgbc_opts[i], &v))
			continue;
		n += (size_t)snprintf(opts + n, sizeof opts - n, " %s=",
		    pgbc_opts[i].name);
		n += (size_t)pgbc_opt_format(opts + n, sizeof opts - n,
		    &pgbc_opts[i], &v);
	}
	return protocol_line(buf, len, "RESOLVE %s %s%s",
	    req->cluster != NULL ? req->cluster : "",
	    topology_want_name(q->want), opts);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t
protocol_utf8_len(const unsigned char *s, size_t n)
{
	size_t		need, i;
	uint32_t	cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

/* Appends the n bytes at s as a JSON string; bad UTF-8 becomes U+FFFD. */
static int
protocol_json_bytes(struct evbuffer *out, const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run = 0, k;
	char			 esc[8];

	if (evbuffer_add(out, "\"", 1) == -1)
		return -1;
	while (i < n) {
		k = protocol_utf8_len(p + i, n - i);
		if (k != 0 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' &&
		    p[i] != 0x7f) {
			i += k;
			run += k;
			continue;
		}
		if (run > 0 && evbuffer_add(out, p + i - run, run) == -1)
			return -1;
		run = 0;
		if (k == 0)
			strcpy(esc, "\\ufffd");
		else if (p[i] == '"' || p[i] == '\\')
			snprintf(esc, sizeof esc, "\\%c", p[i]);
		else
			snprintf(esc, sizeof esc, "\\u%04x", p[i]);
		if (evbuffer_add(out, esc, strlen(esc)) == -1)
			return -1;
		i++;
	}
	if (run > 0 && evbuffer_add(out, p + n - run, run) == -1)
		return -1;
	return evbuffer_add(out, "\"", 1);
}

int
protocol_json_string(struct evbuffer *out, const char *s)
{
	if (s == NULL)
		return evbuffer_add(out, "null", 4);
	return protocol_json_bytes(out, s, strlen(s));
}

/* Appends ,"key":N or ,"key":null. */
static int
protocol_json_num(struct evbuffer *out, const char *key, bool known,
    int64_t v)
{
	if (!known)
		return evbuffer_add_printf(out, ",\"%s\":null", key) < 0 ?
		    -1 : 0;
	return evbuffer_add_printf(out, ",\"%s\":%" PRId64, key, v) < 0 ?
	    -1 : 0;
}

/* Appends ,"key":"X/Y" or ,"key":null. */
static int
protocol_json_lsn(struct evbuffer *out, const char *key, bool known,
    uint64_t lsn)
{
	char	text[PGBC_LSN_STRLEN];

	if (!known)
		return evbuffer_add_printf(out, ",\"%s\":null", key) < 0 ?
		    -1 : 0;
	pgbc_lsn_format(lsn, text);
	return evbuffer_add_printf(out, ",\"%s\":\"%s\"", key, text) < 0 ?
	    -1 : 0;
}

static int
protocol_status_host(struct evbuffer *out, const struct topo_host *h,
    int64_t now_ms)
{
	int64_t	age;

	if (evbuffer_add(out, "{\"host\":", 8) == -1 ||
	    protocol_json_string(out, h->host) == -1 ||
	    evbuffer_add_printf(out, ",\"port\":%d,\"alive\":%s,\"role\":\"%s\""
	    ",\"why\":", h->port, h->alive ? "true" : "false",
	    topology_role_name(h->role)) < 0 ||
	    protocol_json_string(out, h->why_text[0] != '\0' ? h->why_text :
	    topology_why_text(h->why)) == -1)
		return -1;
	age = now_ms - h->last_ok_ms;
	if (age < 0)
		age = 0;
	if ((h->lag_known ? evbuffer_add_printf(out, ",\"lag_bytes\":%" PRIu64,
	    h->lag_bytes) : evbuffer_add_printf(out, ",\"lag_bytes\":null")) < 0 ||
	    protocol_json_num(out, "lag_ms", h->lag_known && h->lag_ms >= 0,
	    h->lag_ms) == -1 ||
	    protocol_json_lsn(out, "replay_lsn", h->role == TOPO_ROLE_REPLICA,
	    h->replay_lsn) == -1 ||
	    protocol_json_lsn(out, "current_lsn", h->role == TOPO_ROLE_MASTER,
	    h->current_lsn) == -1 ||
	    protocol_json_num(out, "timeline", h->probed, h->timeline) == -1 ||
	    protocol_json_num(out, "last_ok_ms_ago", h->last_ok_ms > 0,
	    age) == -1 ||
	    protocol_json_num(out, "fails", true, h->fails) == -1 ||
	    evbuffer_add(out, ",\"error\":", 9) == -1)
		return -1;
	if (h->error[0] == '\0') {
		if (evbuffer_add(out, "null", 4) == -1)
			return -1;
	} else if (protocol_json_bytes(out, h->error,
	    strnlen(h->error, sizeof h->error)) == -1)
		return -1;
	return evbuffer_add(out, "}", 1);
}

static int
protocol_status_cluster(struct evbuffer *out, const struct topo_cluster *c,
    int64_t now_ms)
{
	const struct topo_host	*m = topology_master(c);
	char			 hp[TOPO_HOST_NAMELEN];
	size_t			 i;

	if (evbuffer_add(out, "{\"name\":", 8) == -1 ||
	    protocol_json_string(out, c->name) == -1 ||
	    evbuffer_add_printf(out, ",\"generation\":%" PRIu64
	    ",\"master\":", c->generation) < 0)
		return -1;
	if (m != NULL) {
		topology_host_name(m, hp, sizeof hp);
		if (protocol_json_string(out, hp) == -1 ||
		    evbuffer_add(out, ",\"why_no_master\":null", 21) == -1)
			return -1;
	} else if (evbuffer_add(out, "null,\"why_no_master\":", 21) == -1 ||
	    protocol_json_bytes(out, c->why_no_master,
	    strnlen(c->why_no_master, sizeof c->why_no_master)) == -1)
		return -1;
	if (c->system_id != 0) {
		if (evbuffer_add_printf(out, ",\"system_identifier\":\"%"
		    PRIu64 "\"", c->system_id) < 0)
			return -1;
	} else if (evbuffer_add(out, ",\"system_identifier\":null", 25) == -1)
		return -1;
	if (protocol_json_num(out, "max_timeline", c->max_timeline > 0,
	    c->max_timeline) == -1 ||
	    evbuffer_add(out, ",\"max_timeline_host\":", 21) == -1 ||
	    (c->max_timeline > 0 ? protocol_json_string(out,
	    c->max_timeline_host) : evbuffer_add(out, "null", 4)) == -1)
		return -1;
	if (evbuffer_add(out, ",\"hosts\":[", 10) == -1)
		return -1;
	for (i = 0; i < c->nhosts; i++) {
		if ((i > 0 && evbuffer_add(out, ",", 1) == -1) ||
		    protocol_status_host(out, c->hosts[i], now_ms) == -1)
			return -1;
	}
	return evbuffer_add(out, "]}", 2);
}

int
protocol_format_status(struct evbuffer *out,
    struct topo_cluster *const *clusters, size_t n, int64_t now_ms)
{
	return protocol_format_status_listeners(out, clusters, n, now_ms,
	    NULL, 0);
}

static int
protocol_status_listener(struct evbuffer *out,
    const struct proto_listener_stats *l)
{
	if (evbuffer_add(out, "{\"cluster\":", 11) == -1 ||
	    protocol_json_string(out, l->cluster) == -1 ||
	    evbuffer_add(out, ",\"address\":", 11) == -1 ||
	    protocol_json_string(out, l->address) == -1 ||
	    evbuffer_add(out, ",\"role\":", 8) == -1 ||
	    protocol_json_string(out, l->role) == -1)
		return -1;
	return evbuffer_add_printf(out, ",\"clients\":%" PRIu64 ",\"held\":%"
	    PRIu64 ",\"relayed_total\":%" PRIu64 ",\"fenced_total\":%" PRIu64
	    ",\"refused_total\":%" PRIu64 ",\"bytes_from_clients\":%" PRIu64
	    ",\"bytes_to_clients\":%" PRIu64 "}", l->clients, l->held,
	    l->relayed_total, l->fenced_total, l->refused_total, l->bytes_up,
	    l->bytes_down) < 0 ? -1 : 0;
}

int
protocol_format_status_listeners(struct evbuffer *out,
    struct topo_cluster *const *clusters, size_t n, int64_t now_ms,
    const struct proto_listener_stats *ls, size_t nls)
{
	struct evbuffer	*tmp;
	size_t		 i;
	int		 rc = -1;

	/* Build aside so that out never holds half a reply. */
	if ((tmp = evbuffer_new()) == NULL)
		return -1;
	if (evbuffer_add(tmp, "OK {\"clusters\":[", 16) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if ((i > 0 && evbuffer_add(tmp, ",", 1) == -1) ||
		    protocol_status_cluster(tmp, clusters[i], now_ms) == -1)
			goto fail;
	}
	if (nls > 0 && evbuffer_add(tmp, "],\"listeners\":[", 15) == -1)
		goto fail;
	for (i = 0; i < nls; i++) {
		if ((i > 0 && evbuffer_add(tmp, ",", 1) == -1) ||
		    protocol_status_listener(tmp, &ls[i]) == -1)
			goto fail;
	}
	if (evbuffer_add(tmp, "]}\n", 3) == -1 ||
	    evbuffer_add_buffer(out, tmp) == -1)
		goto fail;
	rc = 0;
fail:
	evbuffer_free(tmp);
	return rc;
}
