/*
 * proxy_conn.c - one client of a listener around the relay: its first
 * packet, routing to the host holding the role, holding while there is
 * none, connecting, refusals with an ErrorResponse, deadlines, closing.
 */

#include "proxy_int.h"

void
proxy_reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct proxy_conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&px->dead)) != NULL) {
		TAILQ_REMOVE(&px->dead, c, entry);
		free(c);
	}
}

void
proxy_conn_count(struct proxy_conn *c, int dir)
{
	struct proxy_listener *l = c->l;

	if (c->state == PC_RELAY || c->state == PC_DRAIN)
		l->nrelay += (uint64_t)dir;
	else if (c->state == PC_HELD || c->state == PC_CONNECTING)
		l->nwait += (uint64_t)dir;
}

void
proxy_conn_set_state(struct proxy_conn *c, enum proxy_state s)
{
	proxy_conn_count(c, -1);
	c->state = s;
	proxy_conn_count(c, 1);
}

/* Closes both sides at once and hands c to the reaper. */
void
proxy_conn_close(struct proxy_conn *c)
{
	struct proxy_listener *l = c->l;
	struct proxy *px;

	if (l == NULL)
		return;
	px = l->px;
	proxy_conn_count(c, -1);
	TAILQ_REMOVE(&l->conns, c, entry);
	l->nconns--;
	px->nconns--;
	c->l = NULL;
	free(c->startup);
	c->startup = NULL;
	proxy_relay_stop(c);
	if (c->cli != NULL)
		bufferevent_free(c->cli);
	if (c->srv != NULL)
		bufferevent_free(c->srv);
	c->cli = c->srv = NULL;
	event_free(c->timer);
	c->timer = NULL;
	TAILQ_INSERT_TAIL(&px->dead, c, entry);
	event_active(px->reaper, EV_TIMEOUT, 0);
}

void
proxy_timer_set(struct proxy_conn *c, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(c->timer, &tv);
}

void
proxy_set_nodelay(struct bufferevent *bev)
{
	evutil_socket_t	fd = bufferevent_getfd(bev);
	int		one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
}

/* Sends the client an ErrorResponse once it has said which protocol it
 * speaks (an SSLRequest is answered 'N' first), then closes. */
void
proxy_refuse(struct proxy_conn *c, const char *sqlstate, const char *msg)
{
	struct proxy_listener *l = c->l;

	log_info("listener %s %s: client %" PRIu64 " refused: %s", l->cluster,
	    l->cfg.address, c->id, msg);
	l->st.refused_total++;
	if (c->srv != NULL) {
		bufferevent_free(c->srv);
		c->srv = NULL;
	}
	snprintf(c->refuse_state, sizeof(c->refuse_state), "%s", sqlstate);
	snprintf(c->refuse_msg, sizeof(c->refuse_msg), "pgbeacon: %s", msg);
	proxy_conn_set_state(c, PC_REFUSE);
	proxy_timer_set(c, l->cfg.client_timeout_ms);
	bufferevent_enable(c->cli, EV_READ);
	proxy_cli_read_cb(c->cli, c);
}

/* Starts connecting c to h (h holds c's role in cl now). */
static void
proxy_connect(struct proxy_conn *c, const struct topo_cluster *cl,
    const struct topo_host *h)
{
	struct proxy_listener *l = c->l;
	struct proxy *px = l->px;

	snprintf(c->host, sizeof(c->host), "%s", h->host);
	c->port = h->port;
	c->role = h->role;
	c->generation = cl->generation;
	c->srv = bufferevent_socket_new(px->base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->srv == NULL) {
		proxy_refuse(c, "53200", "out of memory");
		return;
	}
	bufferevent_setcb(c->srv, proxy_srv_read_cb, NULL, proxy_srv_event_cb,
	    c);
	proxy_conn_set_state(c, PC_CONNECTING);
	proxy_timer_set(c, l->cfg.connect_timeout_ms);
	proxy_bev_connect(px, c->srv, c->host, c->port);
}

/* Connects bev to host:port (a socket directory or a name). */
void
proxy_bev_connect(struct proxy *px, struct bufferevent *bev,
    const char *host, int port)
{
	struct sockaddr_un sun;

	/* A failure is reported through the event callback (deferred). */
	if (host[0] == '/') {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
		    "%s/.s.PGSQL.%d", host, port) >= sizeof(sun.sun_path))
			sun.sun_path[0] = '\0';	/* the connect fails */
		(void)bufferevent_socket_connect(bev, (struct sockaddr *)&sun,
		    sizeof(sun));
	} else
		(void)bufferevent_socket_connect_hostname(bev, px->dns,
		    AF_UNSPEC, host, port);
}

/* Picks the host for c now, or holds c while there is none. */
void
proxy_route(struct proxy_conn *c)
{
	struct proxy_listener *l = c->l;
	struct proxy *px = l->px;
	struct topo_cluster *cl = monitor_find_cluster(px->mon, l->cluster);
	const struct topo_host *h = NULL;
	char why[256] = "cluster not configured";

	if (cl != NULL)
		h = topology_resolve(cl, &l->cfg.query, monitor_limits(px->mon),
		    why, sizeof(why));
	if (h != NULL) {
		proxy_connect(c, cl, h);
		return;
	}
	if (monitor_now_ms() < c->hold_until_ms) {
		if (c->state != PC_HELD) {
			log_debug("listener %s %s: client %" PRIu64 " held: %s",
			    l->cluster, l->cfg.address, c->id, why);
			proxy_conn_set_state(c, PC_HELD);
			proxy_timer_set(c, c->hold_until_ms - monitor_now_ms());
		}
		return;
	}
	{
		char msg[400];

		snprintf(msg, sizeof(msg), "no server holds role %s of "
		    "cluster %s after waiting %d ms: %s", l->cfg.role,
		    l->cluster, l->cfg.wait_ms, why);
		proxy_refuse(c, "57P03", msg);
	}
}

void
proxy_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *c = arg;
	struct proxy_listener *l = c->l;

	(void)fd;
	(void)what;
	switch (c->state) {
	case PC_FIRST:
	case PC_REFUSE:
		log_info("listener %s %s: client %" PRIu64 " sent no startup "
		    "packet within %d ms, closing", l->cluster, l->cfg.address,
		    c->id, l->cfg.client_timeout_ms);
		proxy_conn_close(c);
		break;
	case PC_HELD:
		proxy_route(c);
		break;
	case PC_CONNECTING:
		bufferevent_free(c->srv);
		c->srv = NULL;
		if (monitor_now_ms() < c->hold_until_ms) {
			proxy_conn_set_state(c, PC_HELD);
			proxy_timer_set(c, c->hold_until_ms - monitor_now_ms());
			break;
		}
		{
			char msg[400];

			snprintf(msg, sizeof(msg), "connecting to %s:%d timed "
			    "out after %d ms", c->host, c->port,
			    l->cfg.connect_timeout_ms);
			proxy_refuse(c, "08006", msg);
		}
		break;
	case PC_RELAY:
		break;
	case PC_DRAIN:
	case PC_CANCEL:
		proxy_conn_close(c);
		break;
	}
}

void
proxy_cli_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	struct proxy_listener *l = c->l;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t avail = evbuffer_get_length(in);
	enum pgwire_kind k;
	uint8_t *p;
	char why[160];

	switch (c->state) {
	case PC_RELAY:
		proxy_pump(c, bev, c->srv, true);
		return;
	case PC_FIRST:
	case PC_REFUSE:
		break;
	default:
		/* Held or connecting: the bytes wait in the buffer (the
		 * client sends nothing more before an answer). */
		return;
	}
	if (avail > PGWIRE_MAX_STARTUP)
		avail = PGWIRE_MAX_STARTUP;
	p = evbuffer_pullup(in, (ev_ssize_t)avail);
	k = pgwire_parse_first(p, avail, &c->first, why, sizeof(why));
	if (k == PGWIRE_NEED_MORE)
		return;
	if (k == PGWIRE_BAD) {
		log_info("listener %s %s: client %" PRIu64 ": %s; closing",
		    l->cluster, l->cfg.address, c->id, why);
		l->st.refused_total += c->state == PC_FIRST;
		proxy_conn_close(c);
		return;
	}
	if (c->state == PC_REFUSE) {
		evbuffer_drain(in, c->first.len);
		if (k == PGWIRE_SSL || k == PGWIRE_GSSENC) {
			bufferevent_write(bev, "N", 1);
			return;
		}
		if (k == PGWIRE_STARTUP) {
			uint8_t err[PGWIRE_ERROR_MAX];
			size_t n = pgwire_format_error(err, c->refuse_state,
			    c->refuse_msg);

			bufferevent_write(bev, err, n);
		}
		/* Sent (or a cancel in place of a startup): close once the
		 * output is flushed. */
		c->refuse_msg[0] = '\0';
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_setcb(bev, NULL, proxy_write_cb, proxy_cli_event_cb,
		    c);
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			proxy_conn_close(c);
		return;
	}
	event_del(c->timer);
	if (k == PGWIRE_CANCEL) {
		proxy_cancel(c);
		return;
	}
	c->hold_until_ms = monitor_now_ms() + l->cfg.wait_ms;
	proxy_route(c);
}

void
proxy_cli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *c = arg;

	(void)what;
	if (c->state == PC_RELAY) {
		proxy_conn_drain(c, bev);
		return;
	}
	/* Gone before it was relayed, or while refused or draining. */
	proxy_conn_close(c);
}
