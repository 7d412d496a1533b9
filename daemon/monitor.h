/*
 * monitor.h - watches every configured PostgreSQL host over one persistent,
 * non-blocking libpq connection each, driven by libevent, and keeps the
 * clusters' topology current.
 *
 * Per host: resolve the name (evdns, never a blocking getaddrinfo in the
 * loop), PQconnectStartParams/PQconnectPoll, then one probe query per
 * interval with PQsendQuery/PQconsumeInput/PQgetResult.  Every wait has a
 * timer: connect_timeout_ms, query_timeout_ms, and a jittered exponential
 * backoff before reconnecting to a dead host.  When a connection drops or
 * the primary is lost, every connected host of that cluster is probed at
 * once and then every fast_check_interval_ms until a primary is known,
 * and also while the primary's probe is late.  A probe timeout is death
 * at once.  A second connection per host checks every
 * connect_check_interval_ms that new connections are answered, and
 * replaces the first make-before-break when a reload changes the conninfo.
 */
#ifndef PGB_MONITOR_H
#define PGB_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "topology.h"

struct event_base;
struct evdns_base;
struct monitor;

struct monitor_callbacks {
	/* The master of c changed (its generation was bumped). */
	void	(*master_changed)(void *arg, struct topo_cluster *c);
	/* c's topology was recomputed (roles, lags; the master may be the
	 * same).  May be NULL. */
	void	(*topology_updated)(void *arg, struct topo_cluster *c);
	/* Every host has answered or failed once since monitor_new(). */
	void	(*first_round_done)(void *arg);
	void	 *arg;
};

/*
 * Creates a monitor for cfg's clusters and starts connecting.  cfg is only
 * read during the call (everything needed is copied).  dns may be NULL:
 * libpq then resolves host names itself (blocking; a warning is logged).
 * Returns NULL on allocation failure.
 */
struct monitor *monitor_new(struct event_base *base, struct evdns_base *dns,
	const struct config *cfg, const struct monitor_callbacks *cb)
	__attribute__((warn_unused_result));

/*
 * Applies a reloaded configuration: clusters added, removed or changed.
 * Hosts that stay (same cluster, host, port and system identifier) keep
 * their connection and state; a changed conninfo is swapped in
 * make-before-break.  A changed cluster keeps its generation.  Returns
 * -1 on allocation failure (the monitor is then left as it was).
 */
int monitor_reconfigure(struct monitor *m, const struct config *cfg)
	__attribute__((warn_unused_result));

/* Closes every connection and frees m; NULL is a no-op. */
void monitor_free(struct monitor *m);

/* The clusters, in configuration order.  Borrowed: valid until the next
 * monitor_reconfigure() or monitor_free(). */
struct topo_cluster *const *monitor_clusters(const struct monitor *m,
	size_t *n);

/* The cluster called name, or NULL.  Borrowed, as above. */
struct topo_cluster *monitor_find_cluster(const struct monitor *m,
	const char *name);

/* The sync_by_* defaults of the current configuration. */
const struct topo_limits *monitor_limits(const struct monitor *m);

/* How many times a host of c (one of m's clusters) changed role since it
 * was configured; 0 for a cluster m does not know. */
uint64_t monitor_role_changes(const struct monitor *m,
	const struct topo_cluster *c);

/*
 * Clears the timeline memory of the cluster called name (an operator
 * restored an older timeline on purpose), logs it naming who (e.g. "uid 0
 * pid 42"), saves the state file and derives the topology again.  -1
 * when m has no such cluster.
 */
int monitor_forget(struct monitor *m, const char *name, const char *who)
	__attribute__((warn_unused_result));

/* Monotonic milliseconds, the clock of topo_host.last_ok_ms. */
int64_t monitor_now_ms(void);

#endif /* PGB_MONITOR_H */
