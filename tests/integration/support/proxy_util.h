/*
 * proxy_util.h - what the connection-listener tests (it_proxy*.c) and
 * proxy_bench share: a config with listen = ( ... ), a daemon started on
 * it, libpq and psql through a listener, and the listeners' figures from
 * STATUS.
 */
#ifndef PGB_IT_PROXY_UTIL_SUPPORT_H
#define PGB_IT_PROXY_UTIL_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "daemon_util.h"

/* psql and pgbench: $PG_BINDIR, else Debian's PostgreSQL 15. */
const char *itp_bindir(void);

/*
 * base (a config of it_config() or it_config_hosts(), freed here) with
 * listen = ( listen ) in its cluster.  The caller frees the result.
 */
char *itp_add_listen(char *base, const char *listen);
/*
 * it_config(c, "main", extra) with listen = ( listen ) in the cluster.
 * The caller frees the result.
 */
char *itp_config(const struct it_cluster *c, const char *listen,
    const char *extra);

/*
 * Starts pgbeacond on itp_config(c, listen, extra) and waits until it
 * resolves the master to node master and, when replica >= 0, a replica
 * to node replica.  Fails the test, with the end of the daemon's log,
 * otherwise.
 */
struct it_daemon *itp_start(struct it_cluster *c, const char *listen,
    const char *extra, int master, int replica);
/* The same on a whole configuration (freed here), waiting for the master
 * at master_port and, when replica_port >= 0, a replica there. */
struct it_daemon *itp_start_conf(struct it_cluster *c, char *conf,
    int master_port, int replica_port);
/*
 * The listener tests' teardown: stops *dm (showing the end of its log
 * when its exit status is not 0: a sanitizer report makes it so),
 * destroys *cl, sets both to NULL, then fails the test when the daemon
 * did not exit 0.
 */
void itp_teardown(struct it_cluster **cl, struct it_daemon **dm);

/*
 * Server set-up for the authentication tests (SCRAM, GSSAPI), on one
 * node, the daemon's own user (postgres) keeping the harness's trust:
 * itp_node_set() runs ALTER SYSTEM SET name = 'value', reloads and waits
 * until a new session shows value; itp_hba_prepend() makes rule (no
 * single quote) the first line of the node's pg_hba.conf and reloads
 * (the caller polls for the rule's effect).  Fail the test on error.
 */
void itp_node_set(struct it_cluster *c, int node, const char *name,
    const char *value);
void itp_hba_prepend(struct it_cluster *c, int node, const char *rule);

/* A libpq connection through host:port (host: an address or a socket
 * directory); check PQstatus().  extra: more conninfo, may be "". */
PGconn *itp_connect(const char *host, int port, const char *extra);
/* The first value of sql's first row (caller frees), or NULL. */
char *itp_value(PGconn *conn, const char *sql);
/* True when sql runs without error. */
bool itp_exec_ok(PGconn *conn, const char *sql);
/* The server port a new connection through the listener lands on, or
 * -1 when it cannot connect. */
int itp_lands_on(const char *host, int port, const char *extra);

/*
 * Runs "psql -X -A -t args" (args are shell words), its stdout and stderr
 * in *out (caller frees; may be NULL).  Returns psql's exit status.
 */
int itp_psql(const char *args, char **out);

/* The listener of STATUS with that address (borrowed from st), or NULL. */
json_object *itp_status_listener(json_object *st, const char *address);
/* A figure (clients, held, relayed_total, ...) of a listener from a
 * fresh STATUS; -1 when the listener is not there. */
int64_t itp_figure(const char *sock, const char *address, const char *key);

/* A TCP connection to 127.0.0.1:port, or -1. */
int itp_tcp_connect(int port);

/*
 * Starts n libpq connections at once, client i to 127.0.0.1:ports[i] as
 * postgres (sslmode=disable), and drives them together until each is
 * made or failed, or timeout_ms passed; the number still unfinished (0
 * when all ended).  The caller checks PQstatus() and PQfinish()es c[].
 */
int itp_connect_storm(PGconn **c, int n, const int *ports, int timeout_ms);

#endif /* PGB_IT_PROXY_UTIL_SUPPORT_H */
