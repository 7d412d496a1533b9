/*
 * proxy.h - connection listeners (listen = ( ... ) in a cluster): each
 * accepted connection is relayed, byte for byte, to the host that RESOLVE
 * would answer for the listener's role at that moment.
 *
 * On accept the client's first packet is read (SSLRequest, GSSENCRequest,
 * CancelRequest or StartupMessage; anything else closes that connection).
 * The host is picked from the monitor's memory with topology_resolve();
 * while none qualifies the client is held, up to wait_ms, and relayed as
 * soon as one does (proxy_cluster_updated()); when the wait runs out it
 * gets a PostgreSQL ErrorResponse.  The server is connected without
 * blocking and bytes are relayed both ways with bufferevents and
 * watermarks, so a slow reader stops the other side instead of growing
 * buffers.
 *
 * Fencing: when the host a connection was relayed to loses the role the
 * listener routes to (see proxy_fence_reason()), the connection is closed
 * at once.  CancelRequests go to the server whose BackendKeyData carried
 * the key (read while the start of each relayed connection passes in
 * clear); an unknown key (a TLS session) goes to the role's current host.
 */
#ifndef PGB_PROXY_H
#define PGB_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "protocol.h"
#include "topology.h"

struct event_base;
struct evdns_base;
struct monitor;
struct proxy;


/*
 * Starts every listener of cfg.  mon (and dns, may be NULL) are borrowed
 * and outlive the proxy.  Unix listeners are created with mode.  Returns
 * NULL with the reason in err when one cannot listen.
 */
struct proxy *proxy_new(struct event_base *base, struct evdns_base *dns,
	struct monitor *mon, mode_t mode, const struct config *cfg,
	char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Applies a reloaded configuration: listeners no longer configured are
 * closed with their connections, new ones start, kept ones (same cluster
 * and address) take their new options and keep their connections.  A
 * listener that cannot start is logged and left out; the others apply.
 */
void proxy_reconfigure(struct proxy *p, const struct config *cfg);

/* Closes every listener and connection and frees p; NULL is a no-op. */
void proxy_free(struct proxy *p);

/* The monitor recomputed c: fences what lost its role, relays the held
 * clients that now have a host. */
void proxy_cluster_updated(struct proxy *p, struct topo_cluster *c);

/* The figures (protocol.h) of every listener (of cluster only, when not NULL), in a
 * new array of *n the caller frees; NULL when there are none or on
 * allocation failure (then *n is 0). */
struct proto_listener_stats *proxy_get_stats(const struct proxy *p,
	const char *cluster, size_t *n);

/* --- pure, exported for tests --------------------------------------------- */

/*
 * Why a connection that l relayed to h must be closed now, or NULL when
 * it may stay.  h is the host's current state in c (NULL: the host is no
 * longer configured); was is the role h held when it was picked and
 * generation c's generation then.
 *  - picked as master: fenced when c's master is not h or the generation
 *    moved;
 *  - picked as replica: fenced when h is dead or not a replica any more
 *    (stale, lower timeline, foreign...), and, only with fence_on_lag,
 *    when it is over the listener's lag bounds.
 */
const char *proxy_fence_reason(const struct topo_cluster *c,
	const struct topo_host *h, enum topo_role was, uint64_t generation,
	const struct config_listen *l, const struct topo_limits *lim);

#endif /* PGB_PROXY_H */
