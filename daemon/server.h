/*
 * server.h - the Unix-socket server: the listener, one bufferevent per
 * client, the line protocol of protocol.h answered from the monitor's
 * memory, and WATCH subscribers.
 */
#ifndef PGB_SERVER_H
#define PGB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

struct event_base;
struct monitor;
struct proxy;
struct server;
struct topo_cluster;

/*
 * Takes the socket path (a lock file "<path>.lock" refuses a second
 * daemon; a stale socket file from a crashed run is replaced), binds it
 * with mode, and starts accepting.  mon is borrowed and must outlive the
 * server.  On failure returns NULL and writes the reason to err.
 */
struct server *server_new(struct event_base *base, const char *path,
	mode_t mode, struct monitor *mon, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Closes every client, removes the socket file, frees s; NULL: no-op. */
void server_free(struct server *s);

/*
 * Event priorities of the daemon's event_base (main.c initialises
 * SERVER_NPRIO of them).  libevent runs only the most urgent queue that
 * has active events, and main.c caps how many callbacks of the HTTP
 * queue run before it looks for new events again, so a socket client is
 * answered between two slices of an HTTP flood instead of after all of
 * it.  HTTP gets the lowest priority because it is the one open to bulk
 * load (a load balancer, wrk); the socket's requests are single lines
 * answered from memory, so they cannot keep HTTP waiting for long.
 * Monitor events keep the default, SERVER_PRIO_SOCKET.
 */
#define SERVER_PRIO_URGENT	0	/* the daemon's own bookkeeping */
#define SERVER_PRIO_SOCKET	1	/* Unix-socket clients, probes */
#define SERVER_PRIO_HTTP	2	/* HTTP connections */
#define SERVER_NPRIO		3
/* HTTP callbacks run before the loop looks for new events again. */
#define SERVER_HTTP_SLICE	16

/* The daemon's event loop: SERVER_NPRIO priorities, HTTP callbacks run in
 * slices of SERVER_HTTP_SLICE.  NULL when out of memory. */
struct event_base *server_base_new(void) __attribute__((warn_unused_result));

/* Clients a listener takes by default (socket_max_clients and
 * http_max_clients in the configuration). */
#define SERVER_DEFAULT_MAX_CLIENTS	4096
#define HTTP_DEFAULT_MAX_CLIENTS	2048

/*
 * Descriptors kept free so that reconnecting to a database server never
 * fails because of clients: SERVER_FD_SLACK for the daemon itself (DNS,
 * the config file, the state file, a reload) and SERVER_FDS_PER_HOST for
 * every host watched (its probe connection and a second one while it is
 * replaced or checked).
 */
#define SERVER_FD_SLACK		16
#define SERVER_FDS_PER_HOST	2

/* What server_client_caps() shares out. */
struct server_fd_budget {
	size_t	 limit;		/* RLIMIT_NOFILE (soft) */
	size_t	 in_use;	/* descriptors open before any client */
	size_t	 nhosts;	/* hosts watched, all clusters */
	size_t	 socket_setting; /* socket_max_clients */
	size_t	 http_setting;	/* http_max_clients */
	bool	 http;		/* an HTTP listener exists */
};

/*
 * How many clients each listener may hold: its setting, lowered so that
 * both together leave the reserve free (HTTP gets at most half of what
 * is available).  Never less than 1.
 */
void server_client_caps(const struct server_fd_budget *b,
	size_t *socket_max, size_t *http_max);

/* Descriptors this process has open now. */
size_t server_fds_in_use(void);

/*
 * Raises RLIMIT_NOFILE's soft limit to the hard one.  Returns the limit
 * now in force (-1 when it cannot be read); msg gets a line to log when it
 * was raised, else "".
 */
int server_raise_fd_limit(char *msg, size_t msglen);

/* Past max clients the listener pauses (clients wait in the kernel's
 * backlog) until one leaves.  max 0 is taken as 1. */
void server_set_max_clients(struct server *s, size_t max);

/* Back-off and log rate limit of a listener whose accept() fails (out of
 * descriptors).  Zero it to start. */
struct server_backoff {
	int64_t		 next_log_ms;	/* no log line before this; 0: none yet */
	unsigned	 suppressed;	/* errors not logged since the last line */
	int		 delay_ms;	/* the last pause, 0 after a success */
};
#define SERVER_BACKOFF_MIN_MS	50
#define SERVER_BACKOFF_MAX_MS	2000
#define SERVER_BACKOFF_LOG_MS	10000

/*
 * An accept error at now_ms: returns the pause before accepting again
 * (doubling from SERVER_BACKOFF_MIN_MS up to SERVER_BACKOFF_MAX_MS).  *log
 * is true when the error should be logged, at most once every
 * SERVER_BACKOFF_LOG_MS, and *suppressed is then how many were not.
 */
int server_backoff_fail(struct server_backoff *b, int64_t now_ms, bool *log,
	unsigned *suppressed);
/* An accept succeeded: the next error pauses SERVER_BACKOFF_MIN_MS. */
void server_backoff_ok(struct server_backoff *b);

/*
 * Pushes "EVENT ..." for c to every client watching it, unless it is the
 * very line pushed last for c (nothing changed: neither the primary nor
 * the live replicas).
 */
void server_broadcast(struct server *s, const struct topo_cluster *c);

/* STATUS also lists px's connection listeners (borrowed, may be NULL;
 * it must outlive s or be unset first). */
void server_set_proxy(struct server *s, struct proxy *px);

/* Connected clients right now. */
size_t server_nclients(const struct server *s);

/* Request counters: by command (an enum proto_cmd, or SERVER_CMD_INVALID
 * for a line that did not parse) and result (an enum proto_err). */
#define SERVER_CMD_INVALID	(PROTO_CMD_FORGET + 1)
#define SERVER_NCMDS		(SERVER_CMD_INVALID + 1)
#define SERVER_NRESULTS		(PROTO_ERR_DENIED + 1)
struct server_counters {
	uint64_t	 requests[SERVER_NCMDS][SERVER_NRESULTS];
};

/* The counters since start.  Borrowed: lives as long as s. */
const struct server_counters *server_get_counters(const struct server *s);

#endif /* PGB_SERVER_H */
