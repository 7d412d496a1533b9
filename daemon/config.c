/*
 * config.c - pgbeacond's configuration: libconfig parses, this file
 * validates every value and copies it into a struct config.
 *
 * Every error is one line, "FILE:LINE: reason", naming the line of the
 * offending setting (of its parent when a required setting is missing).
 * A conninfo string is never echoed: it may hold a password.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>
#include <libpq-fe.h>

#include "config.h"
#include "log.h"

#define CONFIG_NAME_MAX		63	/* longest cluster name */
#define CONFIG_HOSTNAME_MAX	253	/* longest DNS name */
/* Room libpq needs after a socket directory: "/.s.PGSQL.65535". */
#define CONFIG_PGSOCK_SUFFIX	16

#define CONFIG_FILE_MAX		(4 * 1024 * 1024) /* largest file read */

/* Where errors go while one file is validated. */
struct config_ctx {
	const char	*name;		/* borrowed; file name for messages */
	const char	*text;		/* borrowed; the source text */
	char		*err;		/* borrowed; the caller's buffer */
	size_t		 errlen;
	struct config	*cfg;		/* borrowed; gets the warnings */
};

/* Settings allowed at the top level and in a cluster group. */
static const char *const config_top_names[] = {
	"socket", "socket_mode", "http_listen", "log_level", "state_file",
	"check_interval_ms", "fast_check_interval_ms", "connect_timeout_ms",
	"query_timeout_ms", "reconnect_max_ms", "max_fails",
	"connect_check_interval_ms",
	"sync_max_lag_ms", "sync_max_lag_bytes", "clusters",
	"socket_max_clients", "http_max_clients", "http_request_timeout_ms",
	NULL
};
static const char *const config_cluster_names[] = {
	"name", "hosts", "conninfo", "system_identifier", "listen", NULL
};
static const char *const config_listen_names[] = {
	"role", "address", "max_lag_ms", "max_lag_bytes", "fallback",
	"wait_ms", "fence_on_lag", "max_clients", "connect_timeout_ms",
	"client_timeout_ms", NULL
};

static void	config_fail(struct config_ctx *, const config_setting_t *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static void	config_warn(struct config_ctx *, const config_setting_t *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));

/* Writes "FILE:LINE: reason" (or "FILE: reason" without a setting). */
static void
config_fail(struct config_ctx *ctx, const config_setting_t *s,
    const char *fmt, ...)
{
	char		 reason[512], *p;
	const char	*file = ctx->name;
	va_list		 ap;

	if (ctx->err == NULL || ctx->errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	/* Quoted values may hold escapes ("\n"): the error stays one line. */
	for (p = reason; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	}

	if (s != NULL && config_setting_source_file(s) != NULL)
		file = config_setting_source_file(s);
	if (s != NULL)
		snprintf(ctx->err, ctx->errlen, "%s:%u: %s", file,
		    (unsigned)config_setting_source_line(s), reason);
	else
		snprintf(ctx->err, ctx->errlen, "%s: %s", file, reason);
}

/* Records a remark that does not refuse the file, "FILE:LINE: text",
 * in ctx->cfg->warning (the first one only). */
static void
config_warn(struct config_ctx *ctx, const config_setting_t *s,
    const char *fmt, ...)
{
	char		 text[256];
	const char	*file = ctx->name;
	va_list		 ap;

	if (ctx->cfg == NULL || ctx->cfg->warning[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (config_setting_source_file(s) != NULL)
		file = config_setting_source_file(s);
	snprintf(ctx->cfg->warning, sizeof ctx->cfg->warning, "%s:%u: %s",
	    file, (unsigned)config_setting_source_line(s), text);
}

static bool
config_name_known(const char *name, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strcmp(name, *names) == 0)
			return true;
	}
	return false;
}

/* Fails on the first member of group whose name is not in names. */
__attribute__((warn_unused_result)) static bool
config_check_names(struct config_ctx *ctx, const config_setting_t *group,
    const char *const *names)
{
	config_setting_t	*s;
	int			 i, n;

	n = config_setting_length(group);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(group, (unsigned)i);
		if (s == NULL || config_setting_name(s) == NULL)
			continue;
		if (!config_name_known(config_setting_name(s), names)) {
			config_fail(ctx, s, "unknown setting '%s'",
			    config_setting_name(s));
			return false;
		}
	}
	return true;
}

static bool
config_is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * libconfig 1.5 silently wraps a decimal literal beyond 32 bits that
 * lacks the L suffix (20000000000 reads as -1474836480).  Finds the
 * literal of the int setting s in the source text and returns true when
 * it was wrapped.  Settings from @include files are not checked.
 */
static bool
config_int_wrapped(const struct config_ctx *ctx, const config_setting_t *s)
{
	const char	*name = config_setting_name(s), *p = ctx->text, *q;
	unsigned	 line = config_setting_source_line(s), l;
	uint64_t	 v = 0;
	bool		 neg = false, digits = false;

	if (p == NULL || name == NULL || line == 0 ||
	    config_setting_source_file(s) != NULL)
		return false;
	for (l = 1; l < line && p != NULL; l++) {
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	for (; p != NULL && (q = strstr(p, name)) != NULL; p = q + 1) {
		if ((q > ctx->text && config_is_name_char(q[-1])) ||
		    config_is_name_char(q[strlen(name)]))
			continue;
		q += strlen(name);
		q += strspn(q, " \t\r\n");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t\r\n");
		if (*q == '-' || *q == '+')
			neg = *q++ == '-';
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
			/* libconfig keeps the low 32 bits of a hex literal
			 * without L: 0x100000003 reads as 3. */
			for (q += 2; isxdigit((unsigned char)*q); q++) {
				digits = true;
				if (v <= UINT32_MAX)
					v = v * 16 + (uint64_t)(isdigit(
					    (unsigned char)*q) ? *q - '0' :
					    (tolower((unsigned char)*q) - 'a' + 10));
			}
			return digits && *q != 'L' && v > INT32_MAX;
		}
		for (; isdigit((unsigned char)*q); q++) {
			digits = true;
			if (v <= UINT32_MAX)
				v = v * 10 + (uint64_t)(*q - '0');
		}
		if (!digits || *q == 'L')
			return false;
		return v > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX);
	}
	return false;
}

/*
 * Reads the integer setting name of group into *out: def when absent,
 * else an int or int64 within min..max.
 */
__attribute__((warn_unused_result)) static bool
config_get_int(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	config_setting_t	*s;
	int64_t			 v;

	s = config_setting_get_member(group, name);
	if (s == NULL) {
		*out = def;
		return true;
	}
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		if (config_int_wrapped(ctx, s)) {
			config_fail(ctx, s, "%s does not fit in 32 bits: write "
			    "it with an L suffix (1000000000000L)", name);
			return false;
		}
		v = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		break;
	default:
		config_fail(ctx, s, "%s must be an integer", name);
		return false;
	}
	if (v < min || v > max) {
		if (max == INT64_MAX)
			config_fail(ctx, s, "%s must be at least %" PRId64
			    ", not %" PRId64, name, min, v);
		else
			config_fail(ctx, s, "%s must be between %" PRId64
			    " and %" PRId64 ", not %" PRId64, name, min, max, v);
		return false;
	}
	*out = v;
	return true;
}

/* The same for a setting stored in an int. */
__attribute__((warn_unused_result)) static bool
config_get_int32(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, int def, int min, int max, int *out)
{
	int64_t	v;

	if (!config_get_int(ctx, group, name, def, min, max, &v))
		return false;
	*out = (int)v;
	return true;
}

/*
 * Reads the string setting name of group: *out borrows libconfig's
 * string, or def (possibly NULL) when absent.  *where is the setting,
 * or group when absent.
 */
__attribute__((warn_unused_result)) static bool
config_get_string(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, const char *def, const char **out,
    const config_setting_t **where)
{
	config_setting_t	*s;

	s = config_setting_get_member(group, name);
	if (where != NULL)
		*where = s != NULL ? s : group;
	if (s == NULL) {
		*out = def;
		return true;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		config_fail(ctx, s, "%s must be a string", name);
		return false;
	}
	*out = config_setting_get_string(s);
	return true;
}

/* Parses a port, "1" to "65535", digits only; -1 on anything else. */
static int
config_parse_port(const char *s)
{
	long	v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= 65535 ? (int)v : -1;
}

/* A DNS name or dotted IPv4 address: [A-Za-z0-9_.-], not starting with
 * '.' or '-'. */
static bool
config_valid_hostname(const char *s, size_t len)
{
	size_t	i;

	if (len == 0 || len > CONFIG_HOSTNAME_MAX || s[0] == '.' ||
	    s[0] == '-')
		return false;
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return false;
	}
	return true;
}

/* True when the len bytes at s are ASCII from '!' to '~'. */
static bool
config_printable_ascii(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	}
	return true;
}

/*
 * Splits "host:port", "[v6]:port" or "/dir:port" (at the last ':').
 * On success *host is a new string (brackets removed) the caller frees.
 * Otherwise writes a reason into why.
 */
__attribute__((warn_unused_result)) static bool
config_split_hostport(const char *s, bool allow_dir, char **host, int *port,
    char *why, size_t whylen)
{
	const char		*colon, *h;
	size_t			 hlen;
	unsigned char		 addr[sizeof(struct in6_addr)];
	char			 tmp[INET6_ADDRSTRLEN + 1];
	struct sockaddr_un	 sun;

	*host = NULL;
	colon = strrchr(s, ':');
	if (colon == NULL) {
		snprintf(why, whylen, "no ':PORT'");
		return false;
	}
	if ((*port = config_parse_port(colon + 1)) == -1) {
		snprintf(why, whylen, "port must be a number from 1 to 65535");
		return false;
	}
	h = s;
	hlen = (size_t)(colon - s);
	if (hlen > 0 && h[0] == '[') {
		if (hlen < 3 || h[hlen - 1] != ']' ||
		    hlen - 2 > INET6_ADDRSTRLEN) {
			snprintf(why, whylen, "bad IPv6 address");
			return false;
		}
		memcpy(tmp, h + 1, hlen - 2);
		tmp[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, addr) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return false;
		}
		h++;
		hlen -= 2;
	} else if (hlen > 0 && h[0] == '/') {
		if (!allow_dir) {
			snprintf(why, whylen, "a path has no port");
			return false;
		}
		if (hlen + CONFIG_PGSOCK_SUFFIX >= sizeof sun.sun_path) {
			snprintf(why, whylen, "socket directory too long");
			return false;
		}
		/* libpq reads a comma in host as a list of hosts. */
		if (memchr(h, ',', hlen) != NULL) {
			snprintf(why, whylen, "a socket directory must not "
			    "contain ','");
			return false;
		}
		/* The socket protocol's replies separate fields by spaces
		 * and are ASCII: a host must travel in them unchanged. */
		if (!config_printable_ascii(h, hlen)) {
			snprintf(why, whylen, "a socket directory must be "
			    "printable ASCII without spaces");
			return false;
		}
	} else if (hlen == 0) {
		snprintf(why, whylen, "no host before ':'");
		return false;
	} else if (memchr(h, ':', hlen) != NULL) {
		snprintf(why, whylen, "an IPv6 address needs brackets");
		return false;
	} else if (!config_valid_hostname(h, hlen)) {
		snprintf(why, whylen, "bad host name");
		return false;
	}
	if ((*host = strndup(h, hlen)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	return true;
}

/* Checks a Unix socket path: absolute and short enough for sun_path. */
__attribute__((warn_unused_result)) static bool
config_check_sock_path(struct config_ctx *ctx, const config_setting_t *s,
    const char *name, const char *path)
{
	struct sockaddr_un	sun;

	if (path[0] != '/') {
		config_fail(ctx, s, "%s must be an absolute path", name);
		return false;
	}
	if (strlen(path) >= sizeof sun.sun_path) {
		config_fail(ctx, s, "%s must be shorter than %zu bytes", name,
		    sizeof sun.sun_path);
		return false;
	}
	return true;
}

__attribute__((warn_unused_result)) static bool
config_parse_mode(struct config_ctx *ctx, const config_setting_t *group,
    mode_t *out)
{
	const config_setting_t	*s;
	const char		*v, *p;
	unsigned long		 mode = 0;

	if (!config_get_string(ctx, group, "socket_mode", "0660", &v, &s))
		return false;
	if (*v == '\0')
		goto bad;
	for (p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			goto bad;
		mode = mode * 8 + (unsigned long)(*p - '0');
		if (mode > 0777)
			goto bad;
	}
	*out = (mode_t)mode;
	if (mode & 0007)
		config_warn(ctx, s, "socket_mode \"%.16s\" gives every local "
		    "user access to the socket%s; \"0660\" and a group is "
		    "safer", v, (mode & 0002) ? " and lets them write to it" :
		    "");
	return true;
bad:
	config_fail(ctx, s, "socket_mode must be octal digits from \"0\" to "
	    "\"0777\", not \"%.16s\"", v);
	return false;
}

__attribute__((warn_unused_result)) static bool
config_parse_http(struct config_ctx *ctx, const config_setting_t *group,
    char **out)
{
	const config_setting_t	*s;
	const char		*v;
	char			 why[128], *host;
	int			 port;

	*out = NULL;
	if (!config_get_string(ctx, group, "http_listen", NULL, &v, &s))
		return false;
	if (v == NULL)
		return true;
	if (v[0] == '/') {
		if (!config_check_sock_path(ctx, s, "http_listen", v))
			return false;
	} else {
		if (!config_split_hostport(v, false, &host, &port, why,
		    sizeof why)) {
			config_fail(ctx, s, "http_listen must be HOST:PORT, "
			    "[IPV6]:PORT or an absolute path: %s", why);
			return false;
		}
		free(host);
	}
	if ((*out = strdup(v)) == NULL) {
		config_fail(ctx, s, "out of memory");
		return false;
	}
	return true;
}

/*
 * Checks a conninfo string with libpq and refuses host, hostaddr and
 * port.  Never quotes the string: it may carry a password.
 */
__attribute__((warn_unused_result)) static bool
config_check_conninfo(struct config_ctx *ctx, const config_setting_t *s,
    const char *conninfo)
{
	PQconninfoOption	*opts, *o;
	char			*errmsg = NULL;
	bool			 ok = true;

	opts = PQconninfoParse(conninfo, &errmsg);
	if (opts == NULL) {
		/* libpq's message may quote a fragment of the string. */
		config_fail(ctx, s, "conninfo is not a valid libpq connection "
		    "string");
		PQfreemem(errmsg);
		return false;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0 ||
		    strcmp(o->keyword, "port") == 0) {
			config_fail(ctx, s, "conninfo must not set %s: list "
			    "the servers in hosts", o->keyword);
			ok = false;
			break;
		}
	}
	PQconninfoFree(opts);
	return ok;
}

__attribute__((warn_unused_result)) static bool
config_parse_sysid(struct config_ctx *ctx, const config_setting_t *group,
    uint64_t *out)
{
	config_setting_t	*s;
	const char		*v, *p;
	uint64_t		 id = 0;
	int64_t			 i;

	*out = 0;
	s = config_setting_get_member(group, "system_identifier");
	if (s == NULL)
		return true;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (config_setting_type(s) == CONFIG_TYPE_INT &&
		    config_int_wrapped(ctx, s)) {
			config_fail(ctx, s, "system_identifier does not fit in "
			    "32 bits: write it as a string or with an L suffix");
			return false;
		}
		i = config_setting_type(s) == CONFIG_TYPE_INT ?
		    config_setting_get_int(s) : config_setting_get_int64(s);
		if (i <= 0)
			goto bad;
		id = (uint64_t)i;
		break;
	case CONFIG_TYPE_STRING:
		v = config_setting_get_string(s);
		if (*v == '\0')
			goto bad;
		for (p = v; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p) ||
			    id > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
				goto bad;
			id = id * 10 + (uint64_t)(*p - '0');
		}
		if (id == 0)
			goto bad;
		break;
	default:
		goto bad;
	}
	*out = id;
	return true;
bad:
	config_fail(ctx, s, "system_identifier must be a nonzero decimal "
	    "number (integer or string of digits)");
	return false;
}

static bool
config_valid_name(const char *s)
{
	size_t	len = strlen(s), i;

	if (len == 0 || len > CONFIG_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '.' && s[i] != '-')
			return false;
	}
	return true;
}

/* Same port and same host: names without case, IPv6 by address. */
static bool
config_host_same(const struct config_host *a, const struct config_host *b)
{
	struct in6_addr	a6, b6;

	if (a->port != b->port)
		return false;
	if (inet_pton(AF_INET6, a->host, &a6) == 1 &&
	    inet_pton(AF_INET6, b->host, &b6) == 1)
		return memcmp(&a6, &b6, sizeof a6) == 0;
	if (a->host[0] == '/' || b->host[0] == '/')
		return strcmp(a->host, b->host) == 0;
	return strcasecmp(a->host, b->host) == 0;
}

__attribute__((warn_unused_result)) static bool
config_parse_hosts(struct config_ctx *ctx, const config_setting_t *group,
    struct config_cluster *c)
{
	config_setting_t	*list, *e;
	const char		*v;
	char			 why[128];
	int			 n, i, j;

	list = config_setting_get_member(group, "hosts");
	if (list == NULL) {
		config_fail(ctx, group, "cluster '%s' has no hosts", c->name);
		return false;
	}
	if (config_setting_type(list) != CONFIG_TYPE_LIST &&
	    config_setting_type(list) != CONFIG_TYPE_ARRAY) {
		config_fail(ctx, list, "hosts must be a list of \"HOST:PORT\" "
		    "strings");
		return false;
	}
	if ((n = config_setting_length(list)) == 0) {
		config_fail(ctx, list, "hosts must not be empty");
		return false;
	}
	if ((c->hosts = calloc((size_t)n, sizeof *c->hosts)) == NULL) {
		config_fail(ctx, list, "out of memory");
		return false;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			config_fail(ctx, e, "hosts must be a list of "
			    "\"HOST:PORT\" strings");
			return false;
		}
		v = config_setting_get_string(e);
		if (!config_split_hostport(v, true, &c->hosts[i].host,
		    &c->hosts[i].port, why, sizeof why)) {
			config_fail(ctx, e, "bad host \"%.300s\": %s", v, why);
			return false;
		}
		c->nhosts++;
		for (j = 0; j < i; j++) {
			if (config_host_same(&c->hosts[i], &c->hosts[j])) {
				config_fail(ctx, e, "host \"%.300s\" is listed "
				    "twice in cluster '%s'", v, c->name);
				return false;
			}
		}
	}
	return true;
}

/* Reads the boolean setting name of group into *out (def when absent). */
__attribute__((warn_unused_result)) static bool
config_get_bool(struct config_ctx *ctx, const config_setting_t *group,
    const char *name, bool def, bool *out)
{
	config_setting_t	*s;

	s = config_setting_get_member(group, name);
	if (s == NULL) {
		*out = def;
		return true;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		config_fail(ctx, s, "%s must be true or false", name);
		return false;
	}
	*out = config_setting_get_bool(s) != 0;
	return true;
}

/* Fills l from one element of a cluster's listen list. */
__attribute__((warn_unused_result)) static bool
config_parse_listen_one(struct config_ctx *ctx, const config_setting_t *g,
    struct config_listen *l)
{
	const config_setting_t	*where;
	const char		*v;
	char			 why[128];

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		config_fail(ctx, g, "each listener must be a group { role = "
		    "...; address = ...; }");
		return false;
	}
	if (!config_check_names(ctx, g, config_listen_names))
		return false;
	if (!config_get_string(ctx, g, "role", NULL, &v, &where))
		return false;
	if (v == NULL) {
		config_fail(ctx, g, "listener has no role");
		return false;
	}
	topology_query_init(&l->query, TOPO_WANT_MASTER);
	if (!topology_want_parse(v, &l->query.want)) {
		config_fail(ctx, where, "unknown role \"%.40s\"", v);
		return false;
	}
	if ((l->role = strdup(v)) == NULL)
		goto oom;
	if (!config_get_string(ctx, g, "address", NULL, &v, &where))
		return false;
	if (v == NULL) {
		config_fail(ctx, g, "listener has no address");
		return false;
	}
	if (!config_split_hostport(v, true, &l->host, &l->port, why,
	    sizeof why)) {
		config_fail(ctx, where, "listener address must be HOST:PORT, "
		    "[IPV6]:PORT or /DIR:PORT: %s", why);
		return false;
	}
	l->is_unix = l->host[0] == '/';
	if ((l->address = strdup(v)) == NULL)
		goto oom;
	if (!config_get_int(ctx, g, "max_lag_ms", -1, 0, INT64_MAX,
	    &l->query.max_lag_ms) ||
	    !config_get_int(ctx, g, "max_lag_bytes", -1, 0, INT64_MAX,
	    &l->query.max_lag_bytes))
		return false;
	if (!config_get_string(ctx, g, "fallback", NULL, &v, &where))
		return false;
	if (v != NULL && strcmp(v, "master") == 0)
		l->query.fallback = TOPO_FALLBACK_MASTER;
	else if (v != NULL && strcmp(v, "none") == 0)
		l->query.fallback = TOPO_FALLBACK_NONE;
	else if (v != NULL) {
		config_fail(ctx, where, "fallback must be master or none");
		return false;
	}
	if (!config_get_int32(ctx, g, "wait_ms", 5000, 0, 3600000,
	    &l->wait_ms) ||
	    !config_get_int32(ctx, g, "max_clients", 1000, 1, 1000000,
	    &l->max_clients) ||
	    !config_get_int32(ctx, g, "connect_timeout_ms", 2000, 10, 600000,
	    &l->connect_timeout_ms) ||
	    !config_get_int32(ctx, g, "client_timeout_ms", 10000, 10, 600000,
	    &l->client_timeout_ms) ||
	    !config_get_bool(ctx, g, "fence_on_lag", false, &l->fence_on_lag))
		return false;
	return true;
oom:
	config_fail(ctx, g, "out of memory");
	return false;
}

/* Fills c->listen from the cluster's optional listen list. */
__attribute__((warn_unused_result)) static bool
config_parse_listen(struct config_ctx *ctx, const config_setting_t *group,
    struct config_cluster *c)
{
	config_setting_t	*list, *e;
	int			 n, i;

	if ((list = config_setting_get_member(group, "listen")) == NULL)
		return true;
	if (config_setting_type(list) != CONFIG_TYPE_LIST) {
		config_fail(ctx, list, "listen must be a list of groups "
		    "( { role = ...; address = ...; } )");
		return false;
	}
	if ((n = config_setting_length(list)) == 0)
		return true;
	if ((c->listen = calloc((size_t)n, sizeof *c->listen)) == NULL) {
		config_fail(ctx, list, "out of memory");
		return false;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		c->nlisten++;
		if (!config_parse_listen_one(ctx, e, &c->listen[i]))
			return false;
	}
	return true;
}

/* Same listening address: by host and port, as config_host_same(). */
static bool
config_listen_same(const struct config_listen *a,
    const struct config_listen *b)
{
	struct config_host ha = { a->host, a->port }, hb = { b->host, b->port };

	return config_host_same(&ha, &hb);
}

/* Fails when two listeners, of any clusters, share an address. */
__attribute__((warn_unused_result)) static bool
config_check_listen_unique(struct config_ctx *ctx, const config_setting_t *root,
    const struct config *cfg)
{
	const config_setting_t	*list;
	size_t			 ci, li, cj, lj;

	for (ci = 0; ci < cfg->nclusters; ci++)
		for (li = 0; li < cfg->clusters[ci].nlisten; li++)
			for (cj = 0; cj <= ci; cj++)
				for (lj = 0; lj < cfg->clusters[cj].nlisten &&
				    (cj < ci || lj < li); lj++) {
					if (!config_listen_same(
					    &cfg->clusters[ci].listen[li],
					    &cfg->clusters[cj].listen[lj]))
						continue;
					list = config_setting_get_member(
					    config_setting_get_elem(
					    config_setting_get_member(root,
					    "clusters"), (unsigned)ci), "listen");
					config_fail(ctx, config_setting_get_elem(
					    list, (unsigned)li), "listener "
					    "address \"%.300s\" is used twice",
					    cfg->clusters[ci].listen[li].address);
					return false;
				}
	return true;
}

/* Fills c from one element of clusters; c is freed by the caller. */
__attribute__((warn_unused_result)) static bool
config_parse_cluster(struct config_ctx *ctx, const config_setting_t *group,
    struct config_cluster *c)
{
	const config_setting_t	*where;
	const char		*v;

	if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
		config_fail(ctx, group, "each cluster must be a group "
		    "{ name = ...; hosts = (...); }");
		return false;
	}
	if (!config_check_names(ctx, group, config_cluster_names))
		return false;

	if (!config_get_string(ctx, group, "name", NULL, &v, &where))
		return false;
	if (v == NULL) {
		config_fail(ctx, group, "cluster has no name");
		return false;
	}
	if (!config_valid_name(v)) {
		config_fail(ctx, where, "cluster name \"%.80s\" must be 1 to "
		    "%d characters of A-Z a-z 0-9 _ . -", v, CONFIG_NAME_MAX);
		return false;
	}
	if ((c->name = strdup(v)) == NULL)
		goto oom;

	if (!config_parse_hosts(ctx, group, c))
		return false;

	if (!config_get_string(ctx, group, "conninfo", "", &v, &where))
		return false;
	if (!config_check_conninfo(ctx, where, v))
		return false;
	if ((c->conninfo = strdup(v)) == NULL)
		goto oom;

	if (!config_parse_listen(ctx, group, c))
		return false;
	return config_parse_sysid(ctx, group, &c->system_identifier);
oom:
	config_fail(ctx, group, "out of memory");
	return false;
}

__attribute__((warn_unused_result)) static bool
config_parse_clusters(struct config_ctx *ctx, const config_setting_t *root,
    struct config *cfg)
{
	config_setting_t	*list, *e;
	int			 n, i;
	size_t			 j;

	list = config_setting_get_member(root, "clusters");
	if (list == NULL) {
		config_fail(ctx, NULL, "no clusters configured");
		return false;
	}
	if (config_setting_type(list) != CONFIG_TYPE_LIST &&
	    config_setting_type(list) != CONFIG_TYPE_ARRAY) {
		config_fail(ctx, list, "clusters must be a list of groups "
		    "( { name = ...; hosts = (...); } )");
		return false;
	}
	if ((n = config_setting_length(list)) == 0) {
		config_fail(ctx, list, "clusters must not be empty");
		return false;
	}
	if ((cfg->clusters = calloc((size_t)n, sizeof *cfg->clusters)) ==
	    NULL) {
		config_fail(ctx, list, "out of memory");
		return false;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(list, (unsigned)i);
		cfg->nclusters++;
		if (!config_parse_cluster(ctx, e, &cfg->clusters[i]))
			return false;
		for (j = 0; j < (size_t)i; j++) {
			if (strcmp(cfg->clusters[j].name,
			    cfg->clusters[i].name) == 0) {
				config_fail(ctx, e, "cluster '%s' is defined "
				    "twice", cfg->clusters[i].name);
				return false;
			}
		}
	}
	return true;
}

/* Validates the parsed file into cfg; cfg is freed by the caller. */
__attribute__((warn_unused_result)) static bool
config_parse(struct config_ctx *ctx, const config_t *lc, struct config *cfg)
{
	const config_setting_t	*root = config_root_setting(lc), *where;
	const char		*v;
	int64_t			 i64;

	if (!config_check_names(ctx, root, config_top_names))
		return false;

	if (!config_get_string(ctx, root, "socket", CONFIG_DEFAULT_SOCKET, &v,
	    &where))
		return false;
	if (!config_check_sock_path(ctx, where, "socket", v))
		return false;
	if ((cfg->socket_path = strdup(v)) == NULL)
		goto oom;
	if (!config_parse_mode(ctx, root, &cfg->socket_mode))
		return false;
	if (!config_parse_http(ctx, root, &cfg->http_listen))
		return false;

	if (!config_get_string(ctx, root, "state_file",
	    CONFIG_DEFAULT_STATE_FILE, &v, &where))
		return false;
	if (v[0] != '\0' && (v[0] != '/' || v[strlen(v) - 1] == '/')) {
		config_fail(ctx, where, "state_file must be an absolute file "
		    "path, or \"\" for none");
		return false;
	}
	if (strlen(v) > 4000) {
		config_fail(ctx, where, "state_file must be shorter than 4000 "
		    "bytes");
		return false;
	}
	if ((cfg->state_file = strdup(v)) == NULL)
		goto oom;

	if (!config_get_string(ctx, root, "log_level", "info", &v, &where))
		return false;
	if (!log_level_parse(v, &cfg->log_level)) {
		config_fail(ctx, where, "log_level must be error, warn, info "
		    "or debug, not \"%.32s\"", v);
		return false;
	}

	if (!config_get_int32(ctx, root, "check_interval_ms", 500, 10,
	    3600000, &cfg->check_interval_ms) ||
	    !config_get_int32(ctx, root, "fast_check_interval_ms", 25, 5,
	    cfg->check_interval_ms, &cfg->fast_check_interval_ms) ||
	    !config_get_int32(ctx, root, "connect_timeout_ms", 2000, 10,
	    600000, &cfg->connect_timeout_ms) ||
	    !config_get_int32(ctx, root, "query_timeout_ms", 1000, 10,
	    600000, &cfg->query_timeout_ms) ||
	    !config_get_int32(ctx, root, "reconnect_max_ms", 5000, 10,
	    INT32_MAX, &cfg->reconnect_max_ms) ||
	    !config_get_int32(ctx, root, "max_fails", 3, 1, 1000,
	    &cfg->max_fails) ||
	    !config_get_int32(ctx, root, "connect_check_interval_ms", 5000, 0,
	    3600000, &cfg->connect_check_interval_ms))
		return false;
	if (cfg->connect_check_interval_ms > 0 &&
	    cfg->connect_check_interval_ms < 100) {
		config_fail(ctx, config_setting_get_member(root,
		    "connect_check_interval_ms"), "connect_check_interval_ms "
		    "must be 0 (off) or at least 100, not %d",
		    cfg->connect_check_interval_ms);
		return false;
	}
	if (!config_get_int(ctx, root, "sync_max_lag_ms", 1000, 0, INT64_MAX,
	    &cfg->sync_max_lag_ms) ||
	    !config_get_int(ctx, root, "sync_max_lag_bytes", 1000000, 0,
	    INT64_MAX, &i64))
		return false;
	cfg->sync_max_lag_bytes = i64;
	if (!config_get_int32(ctx, root, "socket_max_clients", 4096, 1,
	    1000000, &cfg->socket_max_clients) ||
	    !config_get_int32(ctx, root, "http_max_clients", 2048, 1,
	    1000000, &cfg->http_max_clients) ||
	    !config_get_int32(ctx, root, "http_request_timeout_ms", 10000, 100,
	    3600000, &cfg->http_request_timeout_ms))
		return false;

	if (!config_parse_clusters(ctx, root, cfg))
		return false;
	return config_check_listen_unique(ctx, root, cfg);
oom:
	config_fail(ctx, NULL, "out of memory");
	return false;
}

/* Parses text with libconfig and validates it into a new config. */
static struct config *
config_build(const char *text, const char *name, const char *include_dir,
    char *err, size_t errlen)
{
	struct config_ctx	 ctx = { name, text, err, errlen, NULL };
	struct config		*cfg = NULL;
	const char		*file;
	config_t		 lc;

	config_init(&lc);
	if (include_dir != NULL)
		config_set_include_dir(&lc, include_dir);
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		file = config_error_file(&lc) != NULL ?
		    config_error_file(&lc) : name;
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", file,
			    config_error_text(&lc));
		else
			snprintf(err, errlen, "%s:%d: %s", file,
			    config_error_line(&lc), config_error_text(&lc));
		goto fail;
	}
	if ((cfg = calloc(1, sizeof *cfg)) == NULL ||
	    (cfg->path = strdup(name)) == NULL) {
		config_fail(&ctx, NULL, "out of memory");
		goto fail;
	}
	ctx.cfg = cfg;
	if (!config_parse(&ctx, &lc, cfg))
		goto fail;
	config_destroy(&lc);
	return cfg;
fail:
	config_destroy(&lc);
	config_free(cfg);
	return NULL;
}

/* Reads all of fd into a new NUL-terminated string, or NULL with errno. */
static char *
config_read_fd(int fd)
{
	char	*buf = NULL, *nbuf;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;

	for (;;) {
		if (cap - len < 4096) {
			if (cap >= CONFIG_FILE_MAX) {
				errno = EFBIG;
				goto fail;
			}
			cap = cap == 0 ? 8192 : cap * 2;
			if ((nbuf = realloc(buf, cap + 1)) == NULL)
				goto fail;
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
fail:
	free(buf);
	return NULL;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config	*cfg;
	char		*text = NULL, *dir = NULL, *slash;
	int		 fd, saved;

	/* Read it here: libconfig says only "file I/O error". */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (text = config_read_fd(fd)) == NULL) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot read: %s", path,
		    strerror(saved));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	close(fd);
	if ((slash = strrchr(path, '/')) != NULL &&
	    (dir = strndup(path, (size_t)(slash - path) + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(text);
		return NULL;
	}
	cfg = config_build(text, path, dir, err, errlen);
	free(dir);
	free(text);
	return cfg;
}

int
config_file_digest(const char *path, uint64_t *digest)
{
	char		*text;
	const char	*p;
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	text = config_read_fd(fd);
	close(fd);
	if (text == NULL)
		return -1;
	for (p = text; *p != '\0'; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	free(text);
	*digest = h;
	return 0;
}

struct config *
config_load_string(const char *text, const char *name, char *err,
    size_t errlen)
{
	return config_build(text, name, NULL, err, errlen);
}

static void
config_cluster_clear(struct config_cluster *c)
{
	size_t	i;

	for (i = 0; i < c->nhosts; i++)
		free(c->hosts[i].host);
	free(c->hosts);
	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i].address);
		free(c->listen[i].host);
		free(c->listen[i].role);
	}
	free(c->listen);
	free(c->name);
	free(c->conninfo);
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nclusters; i++)
		config_cluster_clear(&cfg->clusters[i]);
	free(cfg->clusters);
	free(cfg->path);
	free(cfg->socket_path);
	free(cfg->http_listen);
	free(cfg->state_file);
	free(cfg);
}

const char *const *
config_setting_names(enum config_level level)
{
	switch (level) {
	case CONFIG_LEVEL_CLUSTER:
		return config_cluster_names;
	case CONFIG_LEVEL_LISTEN:
		return config_listen_names;
	case CONFIG_LEVEL_TOP:
	default:
		return config_top_names;
	}
}

const struct config_cluster *
config_find_cluster(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->nclusters; i++) {
		if (strcmp(cfg->clusters[i].name, name) == 0)
			return &cfg->clusters[i];
	}
	return NULL;
}

bool
config_cluster_equal(const struct config_cluster *a,
    const struct config_cluster *b)
{
	size_t	i;

	if (strcmp(a->name, b->name) != 0 ||
	    strcmp(a->conninfo, b->conninfo) != 0 ||
	    a->system_identifier != b->system_identifier ||
	    a->nhosts != b->nhosts)
		return false;
	for (i = 0; i < a->nhosts; i++) {
		if (a->hosts[i].port != b->hosts[i].port ||
		    strcmp(a->hosts[i].host, b->hosts[i].host) != 0)
			return false;
	}
	return true;
}
