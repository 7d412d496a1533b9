/*
 * proxy.c - connection listeners (see proxy.h): the set of listeners,
 * started, reloaded and freed; accepting clients; the figures of STATUS
 * and /metrics.  The other parts are listed in proxy_int.h.
 */

#include "proxy_int.h"

static void
proxy_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct proxy_listener *l = arg;
	struct proxy *px = l->px;
	struct proxy_conn *c;

	(void)evl;
	(void)salen;
	if (px->nconns >= px->max_conns) {
		log_warn("listener %s %s: %zu connections use every descriptor "
		    "left; closing a new client", l->cluster, l->cfg.address,
		    px->nconns);
		l->st.refused_total++;
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->l = l;
	c->id = ++px->next_id;
	c->state = PC_FIRST;
	c->cli = bufferevent_socket_new(px->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(px->base, proxy_timer_cb, c);
	if (c->cli == NULL || c->timer == NULL) {
		if (c->cli != NULL)
			bufferevent_free(c->cli);
		else
			evutil_closesocket(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		goto oom_logged;
	}
	if (sa->sa_family != AF_UNIX)
		proxy_set_nodelay(c->cli);
	TAILQ_INSERT_TAIL(&l->conns, c, entry);
	l->nconns++;
	px->nconns++;
	proxy_conn_count(c, 1);
	bufferevent_setcb(c->cli, proxy_cli_read_cb, proxy_write_cb,
	    proxy_cli_event_cb, c);
	bufferevent_setwatermark(c->cli, EV_READ, 0, PROXY_HIGH_WATER);
	bufferevent_enable(c->cli, EV_READ | EV_WRITE);
	if (l->nconns > (uint64_t)l->cfg.max_clients) {
		char msg[200];

		snprintf(msg, sizeof(msg), "too many clients on this listener "
		    "(max_clients %d)", l->cfg.max_clients);
		proxy_refuse(c, "53300", msg);
		return;
	}
	proxy_timer_set(c, l->cfg.client_timeout_ms);
	return;
oom:
	evutil_closesocket(fd);
oom_logged:
	log_warn("listener %s %s: out of memory accepting a client",
	    l->cluster, l->cfg.address);
}

static void
proxy_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->evl);
}

static void
proxy_accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct proxy_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 100 * 1000 };

	/* Out of descriptors: accepting again at once would spin.  Pause. */
	log_warn("listener %s %s: accept: %s; pausing for 100 ms", l->cluster,
	    l->cfg.address, evutil_socket_error_to_string(err));
	evconnlistener_disable(evl);
	event_add(l->accept_retry, &tv);
}

/* Deep copy of the strings of a config_listen. */
static bool
proxy_copy_cfg(struct config_listen *dst, const struct config_listen *src)
{
	*dst = *src;
	dst->address = strdup(src->address);
	dst->host = strdup(src->host);
	dst->role = strdup(src->role);
	return dst->address != NULL && dst->host != NULL && dst->role != NULL;
}

static void
proxy_free_cfg(struct config_listen *cfg)
{
	free(cfg->address);
	free(cfg->host);
	free(cfg->role);
	memset(cfg, 0, sizeof(*cfg));
}

/* True when fd is bound to a loopback address. */
static bool
proxy_is_loopback(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >>
		    24) == 127;
	if (ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((struct sockaddr_in6 *)&ss)->sin6_addr);
	return false;
}

static void
proxy_listener_free(struct proxy_listener *l)
{
	struct proxy_conn *c;

	if (l == NULL)
		return;
	while ((c = TAILQ_FIRST(&l->conns)) != NULL)
		proxy_conn_close(c);
	if (l->evl != NULL)
		evconnlistener_free(l->evl);
	if (l->unix_path != NULL)
		unlink(l->unix_path);
	if (l->accept_retry != NULL)
		event_free(l->accept_retry);
	free(l->unix_path);
	free(l->cluster);
	proxy_free_cfg(&l->cfg);
	free(l);
}

/* Creates and binds a listener; NULL with err set on failure. */
static struct proxy_listener *
proxy_listener_new(struct proxy *px, const char *cluster,
    const struct config_listen *cfg, char *err, size_t errlen)
{
	struct proxy_listener *l;
	struct evutil_addrinfo hints, *res = NULL;
	char port[8];
	evutil_socket_t fd;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		goto oom;
	l->px = px;
	TAILQ_INIT(&l->conns);
	if ((l->cluster = strdup(cluster)) == NULL ||
	    !proxy_copy_cfg(&l->cfg, cfg))
		goto oom;
	l->st.cluster = l->cluster;
	l->st.address = l->cfg.address;
	l->st.role = l->cfg.role;
	if ((l->accept_retry = evtimer_new(px->base, proxy_accept_retry_cb,
	    l)) == NULL)
		goto oom;
	if (cfg->is_unix) {
		if (asprintf(&l->unix_path, "%s/.s.PGSQL.%d", cfg->host,
		    cfg->port) < 0) {
			l->unix_path = NULL;
			goto oom;
		}
		fd = unixsock_listen(l->unix_path, px->mode, true, err, errlen);
		if (fd < 0) {
			free(l->unix_path);
			l->unix_path = NULL;	/* not ours to unlink */
			goto fail;
		}
		l->evl = evconnlistener_new(px->base, proxy_accept_cb, l,
		    flags, -1, fd);
		if (l->evl == NULL) {
			close(fd);
			snprintf(err, errlen, "listener %s: cannot listen",
			    cfg->address);
			goto fail;
		}
	} else {
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV |
		    EVUTIL_AI_ADDRCONFIG;
		snprintf(port, sizeof(port), "%d", cfg->port);
		rc = evutil_getaddrinfo(cfg->host, port, &hints, &res);
		if (rc != 0 || res == NULL) {
			snprintf(err, errlen, "listener %s: %s", cfg->address,
			    evutil_gai_strerror(rc));
			goto fail;
		}
		l->evl = evconnlistener_new_bind(px->base, proxy_accept_cb, l,
		    flags | LEV_OPT_REUSEABLE, -1, res->ai_addr,
		    (int)res->ai_addrlen);
		evutil_freeaddrinfo(res);
		if (l->evl == NULL) {
			snprintf(err, errlen, "listener %s: cannot listen: %s",
			    cfg->address, strerror(errno));
			goto fail;
		}
		if (!proxy_is_loopback(evconnlistener_get_fd(l->evl)))
			log_warn("listener %s (cluster %s) is not on loopback: "
			    "anyone who can reach it reaches the cluster's "
			    "servers through it", cfg->address, cluster);
	}
	evconnlistener_set_error_cb(l->evl, proxy_accept_error_cb);
	log_info("listener %s: role %s of cluster %s", cfg->address,
	    cfg->role, cluster);
	return l;
oom:
	snprintf(err, errlen, "listener %s: out of memory", cfg->address);
fail:
	proxy_listener_free(l);
	return NULL;
}

static struct proxy_listener *
proxy_listener_find(struct proxy *px, const char *cluster,
    const char *address)
{
	struct proxy_listener *l;

	TAILQ_FOREACH(l, &px->listeners, entry)
		if (strcmp(l->cluster, cluster) == 0 &&
		    strcmp(l->cfg.address, address) == 0)
			return l;
	return NULL;
}

struct proxy *
proxy_new(struct event_base *base, struct evdns_base *dns,
    struct monitor *mon, mode_t mode, const struct config *cfg, char *err,
    size_t errlen)
{
	struct proxy *px;
	struct proxy_listener *l;
	struct rlimit rl;
	size_t i, j;

	if ((px = calloc(1, sizeof(*px))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	px->base = base;
	px->dns = dns;
	px->mon = mon;
	px->mode = mode;
	TAILQ_INIT(&px->listeners);
	TAILQ_INIT(&px->dead);
	px->max_conns = 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		px->max_conns = rl.rlim_cur > 2 * PROXY_FD_RESERVE ?
		    (size_t)(rl.rlim_cur - PROXY_FD_RESERVE) / 2 : 1;
	if ((px->reaper = event_new(base, -1, 0, proxy_reaper_cb, px)) ==
	    NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < cfg->nclusters; i++)
		for (j = 0; j < cfg->clusters[i].nlisten; j++) {
			l = proxy_listener_new(px, cfg->clusters[i].name,
			    &cfg->clusters[i].listen[j], err, errlen);
			if (l == NULL)
				goto fail;
			TAILQ_INSERT_TAIL(&px->listeners, l, entry);
		}
	return px;
fail:
	proxy_free(px);
	return NULL;
}

void
proxy_reconfigure(struct proxy *px, const struct config *cfg)
{
	struct proxy_listener *l, *next;
	struct config_listen copy;
	const struct config_cluster *cc;
	char err[512];
	size_t i, j;
	bool kept;

	/* Removed first: an address may move from one cluster to another. */
	for (l = TAILQ_FIRST(&px->listeners); l != NULL; l = next) {
		next = TAILQ_NEXT(l, entry);
		kept = false;
		if ((cc = config_find_cluster(cfg, l->cluster)) != NULL)
			for (j = 0; j < cc->nlisten; j++)
				kept |= strcmp(cc->listen[j].address,
				    l->cfg.address) == 0;
		if (kept)
			continue;
		log_info("listener %s: removed (%" PRIu64 " connection(s) "
		    "closed)", l->cfg.address, l->nconns);
		TAILQ_REMOVE(&px->listeners, l, entry);
		proxy_listener_free(l);
	}
	for (i = 0; i < cfg->nclusters; i++)
		for (j = 0; j < cfg->clusters[i].nlisten; j++) {
			const struct config_listen *cl = &cfg->clusters[i].listen[j];

			l = proxy_listener_find(px, cfg->clusters[i].name,
			    cl->address);
			if (l != NULL) {
				/* Kept: new options, same connections. */
				if (!proxy_copy_cfg(&copy, cl)) {
					proxy_free_cfg(&copy);
					log_error("listener %s: out of memory, "
					    "keeping its old options",
					    cl->address);
					continue;
				}
				proxy_free_cfg(&l->cfg);
				l->cfg = copy;
				l->st.address = l->cfg.address;
				l->st.role = l->cfg.role;
				continue;
			}
			l = proxy_listener_new(px, cfg->clusters[i].name, cl,
			    err, sizeof(err));
			if (l == NULL) {
				log_error("%s", err);
				continue;
			}
			TAILQ_INSERT_TAIL(&px->listeners, l, entry);
		}
}

void
proxy_free(struct proxy *px)
{
	struct proxy_listener *l;

	if (px == NULL)
		return;
	while ((l = TAILQ_FIRST(&px->listeners)) != NULL) {
		TAILQ_REMOVE(&px->listeners, l, entry);
		proxy_listener_free(l);
	}
	if (px->reaper != NULL) {
		proxy_reaper_cb(-1, 0, px);
		event_free(px->reaper);
	}
	free(px);
}

void
proxy_cluster_updated(struct proxy *px, struct topo_cluster *cl)
{
	struct proxy_listener *l;
	struct proxy_conn *c, *next;

	if (px == NULL)
		return;
	TAILQ_FOREACH(l, &px->listeners, entry) {
		if (strcmp(l->cluster, cl->name) != 0)
			continue;
		proxy_listener_fence(l, cl);
		for (c = TAILQ_FIRST(&l->conns); c != NULL; c = next) {
			next = TAILQ_NEXT(c, entry);
			if (c->state == PC_HELD)
				proxy_route(c);
		}
	}
}

struct proto_listener_stats *
proxy_get_stats(const struct proxy *px, const char *cluster, size_t *n)
{
	const struct proxy_listener *l;
	struct proto_listener_stats *out;
	size_t k = 0;

	*n = 0;
	if (px == NULL)
		return NULL;
	TAILQ_FOREACH(l, &px->listeners, entry)
		k += cluster == NULL || strcmp(cluster, l->cluster) == 0;
	if (k == 0 || (out = calloc(k, sizeof(*out))) == NULL)
		return NULL;
	TAILQ_FOREACH(l, &px->listeners, entry) {
		if (cluster != NULL && strcmp(cluster, l->cluster) != 0)
			continue;
		out[*n] = l->st;
		out[*n].clients = l->nrelay;
		out[*n].held = l->nwait;
		(*n)++;
	}
	return out;
}
