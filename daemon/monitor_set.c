/*
 * monitor_set.c - the monitor's clusters and hosts: creation, start,
 * reconfiguration on reload (hosts that stay keep their connections), the
 * state file, and what the rest of the daemon reads.
 */

#include "monitor_int.h"

static void
monitor_host_free(struct mon_host *h)
{
	if (h == NULL)
		return;
	monitor_close_conn(h);
	if (h->io != NULL)
		event_free(h->io);
	if (h->timer != NULL)
		event_free(h->timer);
	if (h->late != NULL)
		event_free(h->late);
	if (h->side_io != NULL)
		event_free(h->side_io);
	if (h->side_timer != NULL)
		event_free(h->side_timer);
	free(h->host);
	free(h);
}

static struct mon_host *
monitor_host_new(struct mon_cluster *cl, const struct config_host *ch)
{
	struct event_base *base = cl->mon->base;
	struct mon_host *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->cluster = cl;
	h->port = ch->port;
	h->io_fd = -1;
	if ((h->host = strdup(ch->host)) == NULL)
		goto fail;
	h->topo.host = h->host;
	h->topo.port = h->port;
	topology_host_name(&h->topo, h->label, sizeof(h->label));
	h->topo.lag_ms = -1;
	/* A placeholder assignment; monitor_io_arm() assigns the real fd. */
	h->io = event_new(base, -1, 0, monitor_io_cb, h);
	h->timer = evtimer_new(base, monitor_timer_cb, h);
	h->late = evtimer_new(base, monitor_late_cb, h);
	h->side_io = event_new(base, -1, 0, monitor_side_io_cb, h);
	h->side_timer = evtimer_new(base, monitor_side_timer_cb, h);
	if (h->io == NULL || h->timer == NULL || h->late == NULL ||
	    h->side_io == NULL || h->side_timer == NULL)
		goto fail;
	h->state = MON_IDLE;
	return h;
fail:
	monitor_host_free(h);
	return NULL;
}

static void
monitor_cluster_free(struct mon_cluster *cl)
{
	size_t i;

	if (cl == NULL)
		return;
	for (i = 0; i < cl->nhosts; i++)
		monitor_host_free(cl->hosts[i]);
	free(cl->hosts);
	free(cl->topo_hosts);
	free(cl->name);
	free(cl->conninfo);
	free(cl);
}

/* Hosts of cl may serve cc: a changed conninfo does not prevent it (the
 * connections are replaced make-before-break by monitor_cluster_start). */
static bool
monitor_cluster_same_source(const struct mon_cluster *cl,
    const struct config_cluster *cc)
{
	return cl->configured_system_id == cc->system_identifier;
}

/*
 * Hands the hosts that monitor_cluster_new() moved from old to cl back to
 * old, so that freeing cl frees only what it created.
 */
static void
monitor_cluster_give_back(struct mon_cluster *cl, struct mon_cluster *old)
{
	size_t i, j;

	if (old == NULL)
		return;
	for (i = 0; i < cl->nhosts; i++)
		for (j = 0; j < old->nhosts; j++)
			if (cl->hosts[i] != NULL && old->hosts[j] == NULL &&
			    old->topo_hosts[j] == &cl->hosts[i]->topo) {
				old->hosts[j] = cl->hosts[i];
				old->hosts[j]->cluster = old;
				cl->hosts[i] = NULL;
			}
}

/*
 * Builds a cluster for cc.  Hosts of old (may be NULL) that are still
 * wanted are moved over with their connections (old loses them); old's
 * generation and round-robin cursor carry on.
 */
static struct mon_cluster *
monitor_cluster_new(struct monitor *m, const struct config_cluster *cc,
    struct mon_cluster *old)
{
	struct mon_cluster *cl;
	size_t i, j;

	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return NULL;
	cl->mon = m;
	cl->configured_system_id = cc->system_identifier;
	if ((cl->name = strdup(cc->name)) == NULL ||
	    (cl->conninfo = strdup(cc->conninfo)) == NULL)
		goto fail;
	cl->hosts = calloc(cc->nhosts, sizeof(*cl->hosts));
	cl->topo_hosts = calloc(cc->nhosts, sizeof(*cl->topo_hosts));
	if (cl->hosts == NULL || cl->topo_hosts == NULL)
		goto fail;
	for (i = 0; i < cc->nhosts; i++) {
		struct mon_host *h = NULL;

		if (old != NULL && monitor_cluster_same_source(old, cc))
			for (j = 0; j < old->nhosts; j++) {
				struct mon_host *oh = old->hosts[j];

				if (oh != NULL && oh->port == cc->hosts[i].port &&
				    strcmp(oh->host, cc->hosts[i].host) == 0) {
					h = oh;
					old->hosts[j] = NULL;
					h->cluster = cl;
					break;
				}
			}
		if (h == NULL && (h = monitor_host_new(cl, &cc->hosts[i])) == NULL)
			goto fail;
		cl->hosts[i] = h;
		cl->topo_hosts[i] = &h->topo;
		cl->nhosts++;
	}
	topology_cluster_init(&cl->topo, cl->name, cl->topo_hosts, cl->nhosts,
	    cl->configured_system_id);
	if (old == NULL) {
		/* New, or removed and added again: its memory carries on. */
		const struct state_entry *e = state_find(m->state, cl->name);

		if (e != NULL) {
			cl->topo.generation = e->generation;
			topology_restore(&cl->topo, e->timeline,
			    e->timeline_host, e->system_id);
		}
	} else {
		topology_restore(&cl->topo, old->topo.max_timeline,
		    old->topo.max_timeline_host, old->topo.memory_system_id);
		cl->topo.has_last_master_lsn = old->topo.has_last_master_lsn;
		cl->topo.last_master_lsn = old->topo.last_master_lsn;
		cl->topo.generation = old->topo.generation;
		cl->topo.rr = old->topo.rr;
		cl->topo.system_id = old->topo.system_id;
		cl->fast = old->fast;
		/* Keep the old master so that a reload which keeps it does not
		 * look like a change (a moved host keeps its address). */
		for (i = 0; i < cl->nhosts; i++)
			if (cl->topo_hosts[i] == old->topo.master_host) {
				cl->topo.master_host = old->topo.master_host;
				cl->topo.master = (int)i;
			}
	}
	return cl;
fail:
	monitor_cluster_give_back(cl, old);
	monitor_cluster_free(cl);
	return NULL;
}

/*
 * Starts every host of cl that is not running yet.  A host whose
 * connection was opened with another conninfo (a reload changed it) keeps
 * it, and its role, until a connection with the new one answers a probe
 * (make-before-break); an attempt still under way with the old one
 * starts over.
 */
static void
monitor_cluster_start(struct mon_cluster *cl)
{
	size_t i;

	for (i = 0; i < cl->nhosts; i++) {
		struct mon_host *h = cl->hosts[i];
		bool stale = h->conninfo_used != NULL &&
		    strcmp(h->conninfo_used, cl->conninfo) != 0;

		if (h->side != MON_SIDE_IDLE && h->side_conninfo != NULL &&
		    strcmp(h->side_conninfo, cl->conninfo) != 0) {
			monitor_side_close(h);
			if (!stale)
				monitor_side_schedule(h, -1);
		}
		if (stale && (h->state == MON_RESOLVING ||
		    h->state == MON_CONNECTING)) {
			monitor_close_conn(h);
			h->state = MON_IDLE;
			monitor_timer_set(h, 0);
		} else if (stale && h->side == MON_SIDE_IDLE) {
			event_del(h->side_timer);
			monitor_side_start(h);
		}
		if (h->state == MON_IDLE && !event_pending(h->timer, EV_TIMEOUT,
		    NULL))
			monitor_timer_set(h, 0);
	}
}

static void
monitor_apply_settings(struct monitor *m, const struct config *cfg)
{
	m->limits.sync_max_lag_ms = cfg->sync_max_lag_ms;
	m->limits.sync_max_lag_bytes = cfg->sync_max_lag_bytes;
	m->check_interval_ms = cfg->check_interval_ms;
	m->fast_check_interval_ms = cfg->fast_check_interval_ms;
	m->connect_timeout_ms = cfg->connect_timeout_ms;
	m->query_timeout_ms = cfg->query_timeout_ms;
	m->reconnect_max_ms = cfg->reconnect_max_ms;
	m->max_fails = cfg->max_fails;
	m->connect_check_interval_ms = cfg->connect_check_interval_ms;
}

static struct mon_cluster *
monitor_cluster_named(const struct monitor *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nclusters; i++)
		if (strcmp(m->clusters[i]->name, name) == 0)
			return m->clusters[i];
	return NULL;
}

int
monitor_reconfigure(struct monitor *m, const struct config *cfg)
{
	struct mon_cluster **clusters;
	struct topo_cluster **topo;
	size_t i, j;

	clusters = calloc(cfg->nclusters, sizeof(*clusters));
	topo = calloc(cfg->nclusters, sizeof(*topo));
	if (clusters == NULL || topo == NULL)
		goto fail;
	for (i = 0; i < cfg->nclusters; i++) {
		clusters[i] = monitor_cluster_new(m, &cfg->clusters[i],
		    monitor_cluster_named(m, cfg->clusters[i].name));
		if (clusters[i] == NULL)
			goto fail;
		topo[i] = &clusters[i]->topo;
	}

	/* Commit: nothing below can fail. */
	for (j = 0; j < m->nclusters; j++) {
		bool kept = false;

		for (i = 0; i < cfg->nclusters; i++)
			kept |= strcmp(m->clusters[j]->name, clusters[i]->name) == 0;
		if (!kept)
			log_info("cluster %s: removed", m->clusters[j]->name);
		monitor_cluster_free(m->clusters[j]);
	}
	free(m->clusters);
	free(m->topo_clusters);
	m->clusters = clusters;
	m->topo_clusters = topo;
	m->nclusters = cfg->nclusters;
	monitor_apply_settings(m, cfg);
	for (i = 0; i < m->nclusters; i++) {
		monitor_cluster_start(m->clusters[i]);
		monitor_cluster_update(m->clusters[i]);
	}
	return 0;
fail:
	if (clusters != NULL)
		for (i = 0; i < cfg->nclusters && clusters[i] != NULL; i++) {
			monitor_cluster_give_back(clusters[i],
			    monitor_cluster_named(m, clusters[i]->name));
			monitor_cluster_free(clusters[i]);
		}
	free(clusters);
	free(topo);
	return -1;
}

/*
 * Reads the state file of cfg (before any cluster exists).  A missing or
 * corrupt file does not stop the daemon: it starts with no memory (a
 * corrupt one is overwritten at the first change).  -1 on allocation
 * failure only.
 */
static int
monitor_state_open(struct monitor *m, const struct config *cfg)
{
	char err[300];

	if ((m->state = state_new(cfg->state_file)) == NULL)
		return -1;
	if (m->state->path == NULL) {
		log_warn("no state_file: the timeline memory and generations "
		    "will not survive a restart");
		return 0;
	}
	if ((m->syncer = state_syncer_new(m->state->path)) == NULL)
		return -1;
	switch (state_load(m->state, err, sizeof(err))) {
	case STATE_LOADED:
		log_info("state file %s: %zu cluster(s) remembered",
		    m->state->path, m->state->n);
		break;
	case STATE_MISSING:
		log_info("state file %s does not exist yet: starting with no "
		    "memory", m->state->path);
		break;
	case STATE_CORRUPT:
		log_warn("state file %s: %s; starting with no memory (the file "
		    "will be rewritten)", m->state->path, err);
		break;
	}
	return 0;
}

struct monitor *
monitor_new(struct event_base *base, struct evdns_base *dns,
    const struct config *cfg, const struct monitor_callbacks *cb)
{
	struct monitor *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->base = base;
	m->dns = dns;
	if (cb != NULL)
		m->cb = *cb;
	if (dns == NULL)
		log_warn("no asynchronous DNS resolver: libpq will resolve host "
		    "names itself, which blocks the event loop while it does");
	monitor_apply_settings(m, cfg);
	if (monitor_state_open(m, cfg) != 0 ||
	    monitor_reconfigure(m, cfg) != 0) {
		monitor_free(m);
		return NULL;
	}
	monitor_cluster_round_check(m);	/* no hosts at all */
	return m;
}

void
monitor_free(struct monitor *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nclusters; i++)
		monitor_cluster_free(m->clusters[i]);
	free(m->clusters);
	free(m->topo_clusters);
	state_syncer_free(m->syncer);	/* finishes a pending fsync */
	state_free(m->state);
	free(m);
}

struct topo_cluster *const *
monitor_clusters(const struct monitor *m, size_t *n)
{
	*n = m->nclusters;
	return m->topo_clusters;
}

struct topo_cluster *
monitor_find_cluster(const struct monitor *m, const char *name)
{
	struct mon_cluster *cl = monitor_cluster_named(m, name);

	return cl != NULL ? &cl->topo : NULL;
}

const struct topo_limits *
monitor_limits(const struct monitor *m)
{
	return &m->limits;
}

int
monitor_forget(struct monitor *m, const char *name, const char *who)
{
	struct mon_cluster *cl = monitor_cluster_named(m, name);

	if (cl == NULL)
		return -1;
	if (cl->topo.max_timeline != 0)
		log_warn("cluster %s: timeline memory (%" PRIu32 " seen on %s) "
		    "cleared by %s", cl->name, cl->topo.max_timeline,
		    cl->topo.max_timeline_host, who);
	else
		log_warn("cluster %s: timeline memory (none) cleared by %s",
		    cl->name, who);
	topology_forget(&cl->topo);
	monitor_cluster_update(cl);
	return 0;
}

uint64_t
monitor_role_changes(const struct monitor *m, const struct topo_cluster *c)
{
	size_t i;

	for (i = 0; i < m->nclusters; i++)
		if (&m->clusters[i]->topo == c)
			return m->clusters[i]->role_changes;
	return 0;
}
