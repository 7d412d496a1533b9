/*
 * it_proxy_util.h - helpers of the connection-listener tests
 * (it_proxy*.c): a config with listen = ( ... ), libpq and psql through a
 * listener, and the listeners' figures from STATUS.
 *
 * Static inline, as it_daemon_util.h, so each binary takes what it uses.
 */
#ifndef PGB_IT_PROXY_UTIL_H
#define PGB_IT_PROXY_UTIL_H

#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#include "it_daemon_util.h"

/* psql and pgbench: $PG_BINDIR, else Debian's PostgreSQL 15. */
static inline const char *
itp_bindir(void)
{
	const char *d = getenv("PG_BINDIR");

	return d != NULL && *d != '\0' ? d : "/usr/lib/postgresql/15/bin";
}

/*
 * base (a config of it_config() or it_config_hosts(), freed here) with
 * listen = ( listen ) in its cluster.  The caller frees the result.
 */
static inline char *
itp_add_listen(char *base, const char *listen)
{
	static const char anchor[] =
	    "conninfo = \"user=postgres dbname=postgres\";";
	char	*out, *at;
	size_t	 pre;

	at = strstr(base, anchor);
	ck_assert_ptr_nonnull(at);
	pre = (size_t)(at - base) + sizeof anchor - 1;
	ck_assert_int_ge(asprintf(&out, "%.*s\n    listen = ( %s );%s",
	    (int)pre, base, listen, base + pre), 0);
	free(base);
	return out;
}

/*
 * it_config(c, "main", extra) with listen = ( listen ) in the cluster.
 * The caller frees the result.
 */
static inline char *
itp_config(const struct it_cluster *c, const char *listen, const char *extra)
{
	return itp_add_listen(it_config(c, "main", extra), listen);
}

/* A libpq connection through host:port (host: an address or a socket
 * directory); check PQstatus().  extra: more conninfo, may be "". */
static inline PGconn *
itp_connect(const char *host, int port, const char *extra)
{
	char	ci[1024];

	snprintf(ci, sizeof ci, "host=%s port=%d user=postgres "
	    "dbname=postgres connect_timeout=30 %s %s", host, port,
	    extra != NULL && strstr(extra, "sslmode") != NULL ? "" :
	    "sslmode=disable", extra != NULL ? extra : "");
	return PQconnectdb(ci);
}

/* The first value of sql's first row (caller frees), or NULL. */
static inline char *
itp_value(PGconn *conn, const char *sql)
{
	PGresult	*r = PQexec(conn, sql);
	char		*v = NULL;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

/* True when sql runs without error. */
static inline bool
itp_exec_ok(PGconn *conn, const char *sql)
{
	PGresult	*r = PQexec(conn, sql);
	bool		 ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK;

	PQclear(r);
	return ok;
}

/* The server port a new connection through the listener lands on, or
 * -1 when it cannot connect. */
static inline int
itp_lands_on(const char *host, int port, const char *extra)
{
	PGconn	*conn = itp_connect(host, port, extra);
	char	*v = NULL;
	int	 p = -1;

	if (PQstatus(conn) == CONNECTION_OK &&
	    (v = itp_value(conn, "select inet_server_port()")) != NULL)
		p = atoi(v);
	free(v);
	PQfinish(conn);
	return p;
}

/*
 * Runs "psql -X -A -t args" (args are shell words), its stdout and stderr
 * in *out (caller frees; may be NULL).  Returns psql's exit status.
 */
static inline int
itp_psql(const char *args, char **out)
{
	char	 cmd[2048], chunk[4096];
	char	*text = NULL;
	size_t	 len = 0, n;
	FILE	*p, *m;
	int	 st;

	snprintf(cmd, sizeof cmd, "PGCONNECT_TIMEOUT=30 %s/psql -X -A -t %s "
	    "2>&1", itp_bindir(), args);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	ck_assert_ptr_nonnull(m = open_memstream(&text, &len));
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	st = pclose(p);
	if (out != NULL)
		*out = text;
	else
		free(text);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The listener of STATUS with that address (borrowed from st), or NULL. */
static inline json_object *
itp_status_listener(json_object *st, const char *address)
{
	json_object	*arr, *l, *a;
	size_t		 i;

	if (st == NULL || !json_object_object_get_ex(st, "listeners", &arr))
		return NULL;
	for (i = 0; i < json_object_array_length(arr); i++) {
		l = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(l, "address", &a) &&
		    strcmp(json_object_get_string(a), address) == 0)
			return l;
	}
	return NULL;
}

/* A figure (clients, held, relayed_total, ...) of a listener from a
 * fresh STATUS; -1 when the listener is not there. */
static inline int64_t
itp_figure(const char *sock, const char *address, const char *key)
{
	json_object	*st = itd_status(sock), *l;
	int64_t		 v = -1;

	if ((l = itp_status_listener(st, address)) != NULL)
		v = itd_json_int(l, key);
	json_object_put(st);
	return v;
}

/* A TCP connection to 127.0.0.1:port, or -1. */
static inline int
itp_tcp_connect(int port)
{
	struct sockaddr_in	sin;
	int			fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif /* PGB_IT_PROXY_UTIL_H */
