/*
 * proxy_fence.c - fencing: connections relayed to a host that lost the
 * role their listener routes to are closed at once (see proxy.h,
 * proxy_fence_reason()).
 */

#include "proxy_int.h"

/* Whether replica h is within l's lag bounds (the sync_* defaults from lim
 * for those roles), as topology_resolve() judges a replica. */
static bool
proxy_lag_ok(const struct topo_host *h, const struct config_listen *l,
    const struct topo_limits *lim)
{
	enum topo_want	w = l->query.want;
	int64_t		max_ms = l->query.max_lag_ms;
	int64_t		max_b = l->query.max_lag_bytes;
	bool		ok_t, ok_b;

	if (max_ms < 0 && lim != NULL && (w == TOPO_WANT_SYNC_BY_TIME ||
	    w == TOPO_WANT_SYNC_BY_TIME_OR_BYTES ||
	    w == TOPO_WANT_SYNC_BY_TIME_AND_BYTES))
		max_ms = lim->sync_max_lag_ms;
	if (max_b < 0 && lim != NULL && (w == TOPO_WANT_SYNC_BY_BYTES ||
	    w == TOPO_WANT_SYNC_BY_TIME_OR_BYTES ||
	    w == TOPO_WANT_SYNC_BY_TIME_AND_BYTES))
		max_b = lim->sync_max_lag_bytes;
	if (w == TOPO_WANT_SYNC_BY_TIME)
		max_b = -1;
	if (w == TOPO_WANT_SYNC_BY_BYTES)
		max_ms = -1;
	ok_t = max_ms < 0 || (h->lag_known && h->lag_ms >= 0 &&
	    h->lag_ms <= max_ms);
	ok_b = max_b < 0 || (h->lag_known && h->lag_bytes <= (uint64_t)max_b);
	if (w == TOPO_WANT_SYNC_BY_TIME_OR_BYTES && max_ms >= 0 && max_b >= 0)
		return ok_t || ok_b;
	return ok_t && ok_b;
}

const char *
proxy_fence_reason(const struct topo_cluster *c, const struct topo_host *h,
    enum topo_role was, uint64_t generation, const struct config_listen *l,
    const struct topo_limits *lim)
{
	if (h == NULL)
		return "host no longer configured";
	if (was == TOPO_ROLE_MASTER) {
		if (c->master_host != h || h->role != TOPO_ROLE_MASTER)
			return !h->alive ? "primary is dead" :
			    "no longer the primary";
		if (c->generation != generation)
			return "the primary changed";
		return NULL;
	}
	if (!h->alive)
		return "replica is dead";
	if (h->role != TOPO_ROLE_REPLICA)
		return "no longer a replica";
	if (l->fence_on_lag && !proxy_lag_ok(h, l, lim))
		return "replica over the lag bound";
	return NULL;
}

/* The host of cl called host:port, or NULL. */
static const struct topo_host *
proxy_find_host(const struct topo_cluster *cl, const char *host, int port)
{
	size_t i;

	for (i = 0; i < cl->nhosts; i++)
		if (cl->hosts[i]->port == port &&
		    strcmp(cl->hosts[i]->host, host) == 0)
			return cl->hosts[i];
	return NULL;
}

/* A connection still connecting to a host that lost the role, or whose
 * startup that host has not answered yet: pick again (no session began
 * there, so it is not fenced). */
static void
proxy_conn_reroute(struct proxy_conn *c)
{
	if (c->startup != NULL) {
		proxy_conn_rehold(c);
		proxy_route(c);
		return;
	}
	bufferevent_free(c->srv);
	c->srv = NULL;
	event_del(c->timer);
	proxy_conn_set_state(c, PC_HELD);
	proxy_route(c);
}

/* Closes the connections of l relayed to hosts that lost the role, one
 * log line per host. */
void
proxy_listener_fence(struct proxy_listener *l, struct topo_cluster *cl)
{
	const struct topo_limits *lim = monitor_limits(l->px->mon);
	struct proxy_conn *c, *next;
	char host[sizeof(c->host)];
	const char *why;
	uint64_t n;
	int port;

	TAILQ_FOREACH(c, &l->conns, entry) {
		c->fence_why = NULL;
		if (c->state == PC_RELAY || c->state == PC_CONNECTING ||
		    c->state == PC_DRAIN)
			c->fence_why = proxy_fence_reason(cl,
			    proxy_find_host(cl, c->host, c->port), c->role,
			    c->generation, &l->cfg, lim);
	}
	for (;;) {
		why = NULL;
		n = 0;
		port = 0;
		host[0] = '\0';
		for (c = TAILQ_FIRST(&l->conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, entry);
			if (c->fence_why == NULL)
				continue;
			if (why == NULL) {
				why = c->fence_why;
				snprintf(host, sizeof(host), "%s", c->host);
				port = c->port;
			} else if (c->port != port || strcmp(c->host, host) != 0)
				continue;
			c->fence_why = NULL;
			if (c->state == PC_CONNECTING || (c->state == PC_RELAY &&
			    c->startup != NULL)) {
				proxy_conn_reroute(c);
				continue;
			}
			n++;
			l->st.fenced_total++;
			proxy_conn_close(c);
		}
		if (why == NULL)
			break;
		if (n > 0)
			log_warn("listener %s %s (role %s): fenced %" PRIu64
			    " connection(s) to %s:%d: %s", l->cluster,
			    l->cfg.address, l->cfg.role, n, host, port, why);
	}
}
