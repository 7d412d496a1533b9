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
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>
#include <libpq-fe.h>

#include "common/hostport.h"
#include "common/limits.h"
#include "common/num.h"
#include "common/request.h"
#include "config.h"
#include "config_table.h"
#include "log.h"

/* Room libpq needs after a socket directory: "/.s.PGSQL.65535". */
#define CONFIG_PGSOCK_SUFFIX	16

#define CONFIG_FILE_MAX		(4 * 1024 * 1024) /* largest file read */

/*
 * Splits "host:port", "[v6]:port" or "/dir:port" with common/'s grammar
 * (PGBC_HP_STRICT), then checks what libpq needs of a socket directory.
 * On success *host is a new string (brackets removed) the caller frees.
 * Otherwise *why is a short static reason.
 */
__attribute__((warn_unused_result)) static bool
config_split_hostport(const char *s, bool allow_dir, char **host, int *port,
    const char **why)
{
	struct pgbc_hostport	 hp;
	struct sockaddr_un	 sun;

	*host = NULL;
	if (!pgbc_hostport_parse(s, strlen(s), PGBC_HP_STRICT |
	    (allow_dir ? PGBC_HP_ALLOW_DIR : 0), &hp, why))
		return false;
	if (hp.kind == PGBC_HOST_DIR) {
		if (hp.hostlen + CONFIG_PGSOCK_SUFFIX >= sizeof sun.sun_path) {
			*why = "socket directory too long";
			return false;
		}
		/* libpq reads a comma in host as a list of hosts. */
		if (memchr(hp.host, ',', hp.hostlen) != NULL) {
			*why = "a socket directory must not contain ','";
			return false;
		}
	}
	if ((*host = strndup(hp.host, hp.hostlen)) == NULL) {
		*why = "out of memory";
		return false;
	}
	*port = hp.port;
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

/*
 * The conv functions of the tables below (struct config_param): each
 * checks one value and stores it in its field.
 */
__attribute__((warn_unused_result)) static bool
config_conv_socket(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	(void)obj;
	return config_check_sock_path(ctx, where, "socket", v) &&
	    config_store_string(ctx, where, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_mode(struct config_ctx *ctx, const config_setting_t *s,
    const char *v, void *obj, void *field)
{
	const char	*p;
	unsigned long	 mode = 0;

	(void)obj;
	if (*v == '\0')
		goto bad;
	for (p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			goto bad;
		mode = mode * 8 + (unsigned long)(*p - '0');
		if (mode > 0777)
			goto bad;
	}
	*(mode_t *)field = (mode_t)mode;
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
config_conv_http(struct config_ctx *ctx, const config_setting_t *s,
    const char *v, void *obj, void *field)
{
	const char	*why;
	char		*host;
	int		 port;

	(void)obj;
	if (v[0] == '/') {
		if (!config_check_sock_path(ctx, s, "http_listen", v))
			return false;
	} else {
		if (!config_split_hostport(v, false, &host, &port, &why)) {
			config_fail(ctx, s, "http_listen must be HOST:PORT, "
			    "[IPV6]:PORT or an absolute path: %s", why);
			return false;
		}
		free(host);
	}
	return config_store_string(ctx, s, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_state_file(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	(void)obj;
	if (v[0] != '\0' && (v[0] != '/' || v[strlen(v) - 1] == '/')) {
		config_fail(ctx, where, "state_file must be an absolute file "
		    "path, or \"\" for none");
		return false;
	}
	if (strlen(v) >= 4000) {
		config_fail(ctx, where, "state_file must be shorter than 4000 "
		    "bytes");
		return false;
	}
	return config_store_string(ctx, where, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_log_level(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	(void)obj;
	if (!log_level_parse(v, field)) {
		config_fail(ctx, where, "log_level must be error, warn, info "
		    "or debug, not \"%.32s\"", v);
		return false;
	}
	return true;
}

/* connect_check_interval_ms: 0 (off), or at least 100. */
__attribute__((warn_unused_result)) static bool
config_check_connect_check(struct config_ctx *ctx, const config_setting_t *s,
    const void *obj)
{
	const struct config	*cfg = obj;

	if (cfg->connect_check_interval_ms > 0 &&
	    cfg->connect_check_interval_ms < 100) {
		config_fail(ctx, s, "connect_check_interval_ms must be 0 (off) "
		    "or at least 100, not %d", cfg->connect_check_interval_ms);
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
    void *obj)
{
	uint64_t		*out = &((struct config_cluster *)obj)->
	    system_identifier;
	config_setting_t	*s;
	const char		*v;
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
		if (!pgbc_parse_u64(v, strlen(v), UINT64_MAX, &id) || id == 0)
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
    void *obj)
{
	struct config_cluster	*c = obj;
	config_setting_t	*list, *e;
	const char		*v, *why;
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
		    &c->hosts[i].port, &why)) {
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

__attribute__((warn_unused_result)) static bool
config_conv_role(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	struct config_listen	*l = obj;

	if (!topology_want_parse(v, &l->query.want)) {
		config_fail(ctx, where, "unknown role \"%.40s\"", v);
		return false;
	}
	return config_store_string(ctx, where, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_address(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	struct config_listen	*l = obj;
	const char		*why;

	if (!config_split_hostport(v, true, &l->host, &l->port, &why)) {
		config_fail(ctx, where, "listener address must be HOST:PORT, "
		    "[IPV6]:PORT or /DIR:PORT: %s", why);
		return false;
	}
	l->is_unix = l->host[0] == '/';
	return config_store_string(ctx, where, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_fallback(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	const struct pgbc_opt	*o = &pgbc_opts[PGBC_OPT_FALLBACK];
	struct pgbc_opt_value	 val;

	(void)obj;
	if (!pgbc_opt_parse(o, v, &val)) {
		config_fail(ctx, where, "%s must be %s", o->name, o->expect);
		return false;
	}
	*(enum topo_fallback *)field = (enum topo_fallback)val.fallback;
	return true;
}

#define L(m)	CONFIG_FIELD(config_listen, m)
/* The settings of one listener (listen = ( { ... } )). */
static const struct config_param config_listen_params[] = {
	{ "role", CONFIG_T_STRING, L(role), .conv = config_conv_role,
	  .missing = "listener has no role" },
	{ "address", CONFIG_T_STRING, L(address), .conv = config_conv_address,
	  .missing = "listener has no address" },
	/* The bound of RESOLVE's options on the socket and HTTP. */
	{ "max_lag_ms", CONFIG_T_INT64, L(query.max_lag_ms), .def = -1,
	  .min = 0, .max = PGBC_LAG_MAX },
	{ "max_lag_bytes", CONFIG_T_INT64, L(query.max_lag_bytes), .def = -1,
	  .min = 0, .max = PGBC_LAG_MAX },
	{ "fallback", CONFIG_T_WORD, L(query.fallback),
	  .conv = config_conv_fallback },
	{ "wait_ms", CONFIG_T_INT, L(wait_ms), .def = 5000, .min = 0,
	  .max = 3600000 },
	{ "max_clients", CONFIG_T_INT, L(max_clients), .def = 1000, .min = 1,
	  .max = 1000000 },
	{ "connect_timeout_ms", CONFIG_T_INT, L(connect_timeout_ms),
	  .def = 2000, .min = 10, .max = 600000 },
	{ "client_timeout_ms", CONFIG_T_INT, L(client_timeout_ms),
	  .def = 10000, .min = 10, .max = 600000 },
	{ "fence_on_lag", CONFIG_T_BOOL, L(fence_on_lag), .def = false },
	{ .name = NULL }
};
#undef L

/* Fills l from one element of a cluster's listen list. */
__attribute__((warn_unused_result)) static bool
config_parse_listen_one(struct config_ctx *ctx, const config_setting_t *g,
    struct config_listen *l)
{
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		config_fail(ctx, g, "each listener must be a group { role = "
		    "...; address = ...; }");
		return false;
	}
	topology_query_init(&l->query, TOPO_WANT_MASTER);
	return config_parse_params(ctx, g, config_listen_params, l);
}

/* Fills c->listen from the cluster's optional listen list. */
__attribute__((warn_unused_result)) static bool
config_parse_listen(struct config_ctx *ctx, const config_setting_t *group,
    void *obj)
{
	struct config_cluster	*c = obj;
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
config_conv_name(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	(void)obj;
	if (!pgbc_config_name_ok(v, strlen(v))) {
		config_fail(ctx, where, "cluster name \"%.80s\" must be 1 to "
		    "%d characters of A-Z a-z 0-9 _ . -", v,
		    PGBC_CLUSTER_NAME_MAX);
		return false;
	}
	return config_store_string(ctx, where, v, field);
}

__attribute__((warn_unused_result)) static bool
config_conv_conninfo(struct config_ctx *ctx, const config_setting_t *where,
    const char *v, void *obj, void *field)
{
	(void)obj;
	return config_check_conninfo(ctx, where, v) &&
	    config_store_string(ctx, where, v, field);
}

#define C(m)	CONFIG_FIELD(config_cluster, m)
/* The settings of one cluster (clusters = ( { ... } )). */
static const struct config_param config_cluster_params[] = {
	{ "name", CONFIG_T_STRING, C(name), .conv = config_conv_name,
	  .missing = "cluster has no name" },
	{ "hosts", CONFIG_T_CUSTOM, C(hosts), .parse = config_parse_hosts },
	{ "conninfo", CONFIG_T_STRING, C(conninfo), .def_str = "",
	  .conv = config_conv_conninfo },
	{ "listen", CONFIG_T_CUSTOM, C(listen), .parse = config_parse_listen },
	{ "system_identifier", CONFIG_T_CUSTOM, C(system_identifier),
	  .parse = config_parse_sysid },
	{ .name = NULL }
};
#undef C

/* Fills c from one element of clusters; c is freed by the caller. */
__attribute__((warn_unused_result)) static bool
config_parse_cluster(struct config_ctx *ctx, const config_setting_t *group,
    struct config_cluster *c)
{
	if (config_setting_type(group) != CONFIG_TYPE_GROUP) {
		config_fail(ctx, group, "each cluster must be a group "
		    "{ name = ...; hosts = (...); }");
		return false;
	}
	return config_parse_params(ctx, group, config_cluster_params, c);
}

__attribute__((warn_unused_result)) static bool
config_parse_clusters(struct config_ctx *ctx, const config_setting_t *root,
    void *obj)
{
	struct config		*cfg = obj;
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

#define T(m)	CONFIG_FIELD(config, m)
/* The settings of the file's top level. */
static const struct config_param config_top_params[] = {
	{ "socket", CONFIG_T_STRING, T(socket_path),
	  .def_str = CONFIG_DEFAULT_SOCKET, .conv = config_conv_socket,
	  .flags = CF_NO_RELOAD },
	{ "socket_mode", CONFIG_T_WORD, T(socket_mode), .def_str = "0660",
	  .conv = config_conv_mode, .flags = CF_NO_RELOAD },
	{ "http_listen", CONFIG_T_STRING, T(http_listen),
	  .conv = config_conv_http, .flags = CF_NO_RELOAD },
	{ "state_file", CONFIG_T_STRING, T(state_file),
	  .def_str = CONFIG_DEFAULT_STATE_FILE, .conv = config_conv_state_file,
	  .flags = CF_NO_RELOAD },
	{ "log_level", CONFIG_T_WORD, T(log_level), .def_str = "info",
	  .conv = config_conv_log_level },
	{ "check_interval_ms", CONFIG_T_INT, T(check_interval_ms), .def = 500,
	  .min = 10, .max = 3600000 },
	{ "fast_check_interval_ms", CONFIG_T_INT, T(fast_check_interval_ms),
	  .def = 25, .min = 5, .max_from = "check_interval_ms" },
	{ "connect_timeout_ms", CONFIG_T_INT, T(connect_timeout_ms),
	  .def = 2000, .min = 10, .max = 600000 },
	{ "query_timeout_ms", CONFIG_T_INT, T(query_timeout_ms), .def = 1000,
	  .min = 10, .max = 600000 },
	{ "reconnect_max_ms", CONFIG_T_INT, T(reconnect_max_ms), .def = 5000,
	  .min = 10, .max = INT32_MAX },
	{ "max_fails", CONFIG_T_INT, T(max_fails), .def = 3, .min = 1,
	  .max = 1000 },
	{ "connect_check_interval_ms", CONFIG_T_INT,
	  T(connect_check_interval_ms), .def = 5000, .min = 0, .max = 3600000,
	  .check = config_check_connect_check },
	{ "sync_max_lag_ms", CONFIG_T_INT64, T(sync_max_lag_ms), .def = 1000,
	  .min = 0, .max = INT64_MAX },
	{ "sync_max_lag_bytes", CONFIG_T_INT64, T(sync_max_lag_bytes),
	  .def = 1000000, .min = 0, .max = INT64_MAX },
	{ "socket_max_clients", CONFIG_T_INT, T(socket_max_clients),
	  .def = 4096, .min = 1, .max = 1000000 },
	{ "http_max_clients", CONFIG_T_INT, T(http_max_clients), .def = 2048,
	  .min = 1, .max = 1000000 },
	{ "http_request_timeout_ms", CONFIG_T_INT, T(http_request_timeout_ms),
	  .def = 10000, .min = 100, .max = 3600000 },
	{ "clusters", CONFIG_T_CUSTOM, T(clusters),
	  .parse = config_parse_clusters },
	{ .name = NULL }
};
#undef T

/* Validates the parsed file into cfg; cfg is freed by the caller. */
__attribute__((warn_unused_result)) static bool
config_parse(struct config_ctx *ctx, const config_t *lc, struct config *cfg)
{
	const config_setting_t	*root = config_root_setting(lc);

	return config_parse_params(ctx, root, config_top_params, cfg) &&
	    config_check_listen_unique(ctx, root, cfg);
}

/* Parses text with libconfig and validates it into a new config. */
static struct config *
config_build(const char *text, const char *name, const char *include_dir,
    char *err, size_t errlen)
{
	struct config_ctx	 ctx = { name, text, err, errlen, NULL, 0 };
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
	ctx.warning = cfg->warning;
	ctx.warnlen = sizeof cfg->warning;
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
	/* Filled from the tables at every call, always with the same
	 * names: the tables stay the one list. */
	static const char	*names[3][32];

	switch (level) {
	case CONFIG_LEVEL_CLUSTER:
		return config_params_names(config_cluster_params, names[1], 32);
	case CONFIG_LEVEL_LISTEN:
		return config_params_names(config_listen_params, names[2], 32);
	case CONFIG_LEVEL_TOP:
	default:
		return config_params_names(config_top_params, names[0], 32);
	}
}

size_t
config_restart_changes(const struct config *old, const struct config *new,
    char *buf, size_t len)
{
	return config_params_changed(config_top_params, old, new, buf, len);
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
