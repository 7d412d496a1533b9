/*
 * server.h - the Unix-socket server: the listener, one bufferevent per
 * client, the line protocol of protocol.h answered from the monitor's
 * memory, and WATCH subscribers.
 */
#ifndef PGB_SERVER_H
#define PGB_SERVER_H

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

/* Pushes "EVENT ..." for c to every client watching it. */
void server_broadcast(struct server *s, const struct topo_cluster *c);

/* STATUS also lists px's connection listeners (borrowed, may be NULL;
 * it must outlive s or be unset first). */
void server_set_proxy(struct server *s, struct proxy *px);

/* Connected clients right now. */
size_t server_nclients(const struct server *s);

/* Request counters: by command (an enum proto_cmd, or SERVER_CMD_INVALID
 * for a line that did not parse) and result (an enum proto_err). */
#define SERVER_CMD_INVALID	(PROTO_CMD_PING + 1)
#define SERVER_NCMDS		(SERVER_CMD_INVALID + 1)
#define SERVER_NRESULTS		(PROTO_ERR_BADREQ + 1)
struct server_counters {
	uint64_t	 requests[SERVER_NCMDS][SERVER_NRESULTS];
};

/* The counters since start.  Borrowed: lives as long as s. */
const struct server_counters *server_get_counters(const struct server *s);

#endif /* PGB_SERVER_H */
