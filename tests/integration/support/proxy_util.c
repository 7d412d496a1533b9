/*
 * proxy_util.c - helpers of the connection-listener tests; see
 * proxy_util.h.
 */
#include <sys/wait.h>

#include <stdio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "proxy_util.h"
#include "spawn.h"

const char *
itp_bindir(void)
{
	const char *d = getenv("PG_BINDIR");

	return d != NULL && *d != '\0' ? d : "/usr/lib/postgresql/15/bin";
}

char *
itp_add_listen(char *base, const char *listen)
{
	static const char anchor[] =
	    "conninfo = \"user=postgres dbname=postgres\";";
	char	*out, *at;
	size_t	 pre;

	if ((at = strstr(base, anchor)) == NULL)
		it_fail("itp_add_listen: no cluster conninfo in the config");
	pre = (size_t)(at - base) + sizeof anchor - 1;
	if (asprintf(&out, "%.*s\n    listen = ( %s );%s", (int)pre, base,
	    listen, base + pre) < 0)
		it_fail("out of memory");
	free(base);
	return out;
}

char *
itp_config(const struct it_cluster *c, const char *listen, const char *extra)
{
	return itp_add_listen(it_config(c, "main", extra), listen);
}

struct it_daemon *
itp_start_conf(struct it_cluster *c, char *conf, int master_port,
    int replica_port)
{
	struct it_daemon	*dm;

	dm = it_daemon_start(conf, it_cluster_dir(c));
	free(conf);
	if (!IT_POLL_UNTIL(it_resolves_to(it_daemon_socket(dm), "main",
	    "master", master_port), ITD_STATE_MS)) {
		itd_print_log_tail(dm, 3000);
		it_fail("no master");
	}
	if (replica_port >= 0 && !IT_POLL_UNTIL(it_resolves_to(
	    it_daemon_socket(dm), "main", "replica", replica_port),
	    ITD_STATE_MS)) {
		itd_print_log_tail(dm, 3000);
		it_fail("no replica");
	}
	return dm;
}

struct it_daemon *
itp_start(struct it_cluster *c, const char *listen, const char *extra,
    int master, int replica)
{
	return itp_start_conf(c, itp_config(c, listen, extra),
	    it_port(c, master), replica >= 0 ? it_port(c, replica) : -1);
}

void
itp_teardown(struct it_cluster **cl, struct it_daemon **dm)
{
	int	 st;

	st = itd_stop_showing_log(*dm);
	*dm = NULL;
	it_cluster_destroy(*cl);
	*cl = NULL;
	if (st != 0)
		it_fail("pgbeacond exited with status %d", st);
}

/* Runs sql on node; fails the test when it fails. */
static void
itp_node_sql(struct it_cluster *c, int node, const char *sql)
{
	char	*v = it_sql(c, node, sql);

	if (v == NULL)
		it_fail("%s on node %d: %s", sql, node, it_last_error());
	free(v);
}

void
itp_node_set(struct it_cluster *c, int node, const char *name,
    const char *value)
{
	char	*sql;

	if (strchr(value, '\'') != NULL)
		it_fail("itp_node_set: a quote in %s", value);
	if (asprintf(&sql, "alter system set %s = '%s'", name, value) < 0)
		it_fail("out of memory");
	itp_node_sql(c, node, sql);
	free(sql);
	itp_node_sql(c, node, "select pg_reload_conf()");
	if (asprintf(&sql, "show %s", name) < 0)
		it_fail("out of memory");
	if (!IT_POLL_UNTIL(it_sql_is(c, node, sql, value), ITD_STATE_MS))
		it_fail("node %d: %s is not %s", node, name, value);
	free(sql);
}

void
itp_hba_prepend(struct it_cluster *c, int node, const char *rule)
{
	char	*cmd;

	if (strchr(rule, '\'') != NULL)
		it_fail("itp_hba_prepend: a quote in %s", rule);
	if (asprintf(&cmd, "cd %s/node%d/data && sed -i '1i %s' pg_hba.conf "
	    "&& chown postgres pg_hba.conf", it_cluster_dir(c), node,
	    rule) < 0)
		it_fail("out of memory");
	if (it_system(cmd) != 0)
		it_fail("%s failed", cmd);
	free(cmd);
	itp_node_sql(c, node, "select pg_reload_conf()");
}

PGconn *
itp_connect(const char *host, int port, const char *extra)
{
	char	ci[1024];

	snprintf(ci, sizeof ci, "host=%s port=%d user=postgres "
	    "dbname=postgres connect_timeout=30 %s %s", host, port,
	    extra != NULL && strstr(extra, "sslmode") != NULL ? "" :
	    "sslmode=disable", extra != NULL ? extra : "");
	return PQconnectdb(ci);
}

char *
itp_value(PGconn *conn, const char *sql)
{
	PGresult	*r = PQexec(conn, sql);
	char		*v = NULL;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

bool
itp_exec_ok(PGconn *conn, const char *sql)
{
	PGresult	*r = PQexec(conn, sql);
	bool		 ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
	    PQresultStatus(r) == PGRES_TUPLES_OK;

	PQclear(r);
	return ok;
}

int
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

int
itp_psql(const char *args, char **out)
{
	char	 cmd[2048], chunk[4096];
	char	*text = NULL;
	size_t	 len = 0, n;
	FILE	*p, *m;
	int	 st;

	snprintf(cmd, sizeof cmd, "PGCONNECT_TIMEOUT=30 %s/psql -X -A -t %s "
	    "2>&1", itp_bindir(), args);
	if ((p = it_popen(cmd)) == NULL)
		it_fail("cannot run %s", cmd);
	if ((m = open_memstream(&text, &len)) == NULL)
		it_fail("out of memory");
	while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(m);
	st = it_pclose(p);
	if (out != NULL)
		*out = text;
	else
		free(text);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

json_object *
itp_status_listener(json_object *st, const char *address)
{
	return itd_json_find(st, "listeners", "address", address);
}

int64_t
itp_figure(const char *sock, const char *address, const char *key)
{
	json_object	*st = itd_status(sock), *l;
	int64_t		 v = -1;

	if ((l = itp_status_listener(st, address)) != NULL)
		v = itd_json_int(l, key);
	json_object_put(st);
	return v;
}

int
itp_tcp_connect(int port)
{
	char	 target[32];

	snprintf(target, sizeof target, "127.0.0.1:%d", port);
	return it_http_connect(target);
}

int
itp_connect_storm(PGconn **c, int n, const int *ports, int timeout_ms)
{
	PostgresPollingStatusType	*st;
	struct pollfd			*pf;
	char				 ci[256];
	int64_t				 deadline;
	int				 i, left;

	st = calloc((size_t)n, sizeof *st);
	pf = calloc((size_t)n, sizeof *pf);
	if (st == NULL || pf == NULL)
		it_fail("out of memory");
	for (i = 0; i < n; i++) {
		snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=postgres "
		    "dbname=postgres sslmode=disable", ports[i]);
		if ((c[i] = PQconnectStart(ci)) == NULL ||
		    PQstatus(c[i]) == CONNECTION_BAD)
			it_fail("PQconnectStart of client %d failed", i);
		st[i] = PGRES_POLLING_WRITING;
	}
	deadline = it_now_ms() + timeout_ms;
	for (left = n; left > 0 && it_now_ms() < deadline;) {
		for (i = 0; i < n; i++) {
			pf[i].fd = -1;
			pf[i].events = 0;
			if (st[i] == PGRES_POLLING_OK ||
			    st[i] == PGRES_POLLING_FAILED)
				continue;
			pf[i].fd = PQsocket(c[i]);
			pf[i].events = st[i] == PGRES_POLLING_READING ?
			    POLLIN : POLLOUT;
		}
		if (poll(pf, (nfds_t)n, 1000) < 0)
			continue;
		for (i = 0; i < n; i++) {
			if (pf[i].fd < 0 || pf[i].revents == 0)
				continue;
			st[i] = PQconnectPoll(c[i]);
			if (st[i] == PGRES_POLLING_OK ||
			    st[i] == PGRES_POLLING_FAILED)
				left--;
		}
	}
	free(pf);
	free(st);
	return left;
}
