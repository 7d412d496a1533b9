/*
 * proxy.c - connection listeners: accept, route, hold, relay, fence; see
 * proxy.h.
 *
 * A connection goes through these states:
 *
 *   FIRST ---> HELD <---> CONNECTING ---> RELAY ---> DRAIN ---> (freed)
 *     |         |            |              |
 *     |         +-> REFUSE <-+              +--> fenced: closed at once
 *     +-> CANCEL (a CancelRequest, sent on to its server)
 *
 * Closed connections are unlinked, their bufferevents freed, and the
 * struct itself freed by a reaper event after the callback returns.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "log.h"
#include "monitor.h"
#include "pgwire.h"
#include "proxy.h"
#include "unixsock.h"

/* Bytes queued towards one side before reading from the other stops. */
#define PROXY_HIGH_WATER	(256 * 1024)
/* How long a closing side has to take what is still queued for it. */
#define PROXY_DRAIN_MS		5000
/* Descriptors kept for the monitor, the socket and HTTP clients. */
#define PROXY_FD_RESERVE	64

enum proxy_state {
	PC_FIRST,	/* reading the client's first packet */
	PC_HELD,	/* no host holds the role: waiting for one */
	PC_CONNECTING,	/* connecting to the host picked */
	PC_RELAY,	/* relaying both ways */
	PC_DRAIN,	/* one side closed: flushing to the other */
	PC_REFUSE,	/* answering the client with an ErrorResponse */
	PC_CANCEL,	/* passing a CancelRequest on to its server */
};

struct proxy_listener;

/* One accepted client.  Owned by its listener's list, then by the
 * proxy's reap list once closed. */
struct proxy_conn {
	TAILQ_ENTRY(proxy_conn)	 entry;
	struct proxy_listener	*l;		/* back pointer; NULL once closed */
	uint64_t		 id;
	enum proxy_state	 state;
	struct bufferevent	*cli;		/* owned, owns the client fd */
	struct bufferevent	*srv;		/* owned; NULL until connecting */
	struct event		*timer;		/* owned: the current deadline */
	int64_t			 hold_until_ms;	/* monotonic end of the wait */
	struct pgwire_first	 first;
	/* where it is relayed (valid from CONNECTING on) */
	char			 host[256];
	int			 port;
	enum topo_role		 role;		/* the host's role when picked */
	uint64_t		 generation;	/* the cluster's then */
	struct pgwire_track	 track;
	/* the StartupMessage sent to the server, kept until its first answer
	 * shows whether it can take connections (a retry needs it again) */
	uint8_t			*startup;	/* owned; NULL when none */
	size_t			 startup_len;
	bool			 startup_watch;	/* it may still come */
	const char		*fence_why;	/* set while fencing */
	struct bufferevent	*drain_to;	/* DRAIN: the side being flushed */
	bool			 cancel_sent;	/* CANCEL: connected, request out */
	char			 refuse_state[6]; /* SQLSTATE of the refusal */
	char			 refuse_msg[300];
};

TAILQ_HEAD(proxy_conn_list, proxy_conn);

/* One listening address.  Owned by the proxy. */
struct proxy_listener {
	TAILQ_ENTRY(proxy_listener) entry;
	struct proxy		*px;		/* back pointer */
	char			*cluster;	/* owned */
	struct config_listen	 cfg;		/* owned copy of its strings */
	char			*unix_path;	/* owned; NULL for TCP */
	struct evconnlistener	*evl;		/* owned, owns the socket */
	struct event		*accept_retry;	/* owned */
	struct proxy_conn_list	 conns;
	uint64_t		 nrelay;	/* in RELAY or DRAIN */
	uint64_t		 nwait;		/* in HELD or CONNECTING */
	uint64_t		 nconns;	/* every state */
	struct proto_listener_stats	 st;		/* totals; gauges filled on read */
};

struct proxy {
	struct event_base	*base;		/* borrowed */
	struct evdns_base	*dns;		/* borrowed, may be NULL */
	struct monitor		*mon;		/* borrowed */
	mode_t			 mode;
	TAILQ_HEAD(, proxy_listener) listeners;
	struct proxy_conn_list	 dead;		/* closed, to free */
	struct event		*reaper;	/* owned */
	uint64_t		 next_id;
	size_t			 nconns;	/* over every listener */
	size_t			 max_conns;	/* from RLIMIT_NOFILE */
};

static void	proxy_cli_read_cb(struct bufferevent *, void *);
static void	proxy_cli_event_cb(struct bufferevent *, short, void *);
static void	proxy_route(struct proxy_conn *);
static void	proxy_bev_connect(struct proxy *, struct bufferevent *,
		    const char *, int);

/* --- pure ------------------------------------------------------------------ */

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

/* --- connections ------------------------------------------------------------ */

static void
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

static void
proxy_conn_count(struct proxy_conn *c, int dir)
{
	struct proxy_listener *l = c->l;

	if (c->state == PC_RELAY || c->state == PC_DRAIN)
		l->nrelay += (uint64_t)dir;
	else if (c->state == PC_HELD || c->state == PC_CONNECTING)
		l->nwait += (uint64_t)dir;
}

static void
proxy_conn_set_state(struct proxy_conn *c, enum proxy_state s)
{
	proxy_conn_count(c, -1);
	c->state = s;
	proxy_conn_count(c, 1);
}

/* Closes both sides at once and hands c to the reaper. */
static void
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

static void
proxy_timer_set(struct proxy_conn *c, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	event_add(c->timer, &tv);
}

static void
proxy_set_nodelay(struct bufferevent *bev)
{
	evutil_socket_t	fd = bufferevent_getfd(bev);
	int		one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
}

/* Keeps a copy of the client's StartupMessage, the first packet or the one
 * after an SSLRequest or GSSENCRequest refused ('N'), as it goes out. */
static void
proxy_keep_startup(struct proxy_conn *c, struct evbuffer *in, size_t len)
{
	struct pgwire_first f;
	char why[160];
	uint8_t *p;
	enum pgwire_kind k;

	if (len > PGWIRE_MAX_STARTUP)
		len = PGWIRE_MAX_STARTUP;
	p = evbuffer_pullup(in, (ev_ssize_t)len);
	k = p != NULL && !c->track.encrypted ?
	    pgwire_parse_first(p, len, &f, why, sizeof(why)) : PGWIRE_BAD;
	if (k == PGWIRE_SSL || k == PGWIRE_GSSENC)
		return;		/* the server answers one byte first */
	c->startup_watch = false;
	if (k != PGWIRE_STARTUP || (c->startup = malloc(f.len)) == NULL)
		return;		/* in parts, or not a startup: no retry */
	memcpy(c->startup, p, f.len);
	c->startup_len = f.len;
}

/* Moves what src read to dst, feeding the tracker until it is done;
 * stops reading src while dst holds more than the high watermark. */
static void
proxy_pump(struct proxy_conn *c, struct bufferevent *src,
    struct bufferevent *dst, bool up)
{
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);
	size_t len = evbuffer_get_length(in);

	if (len == 0)
		return;
	if (up && c->startup_watch)
		proxy_keep_startup(c, in, len);
	if (c->track.state != PGWIRE_TR_DONE) {
		struct evbuffer_iovec v[8];
		int i, nv = evbuffer_peek(in, -1, NULL, v, 8);

		if (nv > 8)	/* not a connection's start: stop following */
			c->track.state = PGWIRE_TR_DONE;
		for (i = 0; i < nv && i < 8 && c->track.state !=
		    PGWIRE_TR_DONE; i++) {
			if (up)
				pgwire_track_client(&c->track, v[i].iov_base,
				    v[i].iov_len);
			else
				pgwire_track_server(&c->track, v[i].iov_base,
				    v[i].iov_len);
		}
	}
	/* Nothing queued for dst: write now rather than on the next turn of
	 * the loop (one epoll_wait less per message); the rest queues. */
	if (evbuffer_get_length(out) == 0 && bufferevent_getfd(dst) >= 0)
		(void)evbuffer_write(in, bufferevent_getfd(dst));
	evbuffer_add_buffer(out, in);
	if (up)
		c->l->st.bytes_up += len;
	else
		c->l->st.bytes_down += len;
	if (evbuffer_get_length(out) >= PROXY_HIGH_WATER)
		bufferevent_disable(src, EV_READ);
}

/* bev took enough of its queue: the other side may be read again; or bev
 * got all that was left for it before closing. */
static void
proxy_write_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	struct bufferevent *other = bev == c->cli ? c->srv : c->cli;
	bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

	switch (c->state) {
	case PC_RELAY:
		if (other != NULL)
			bufferevent_enable(other, EV_READ);
		break;
	case PC_DRAIN:
		if (empty && bev == c->drain_to)
			proxy_conn_close(c);
		break;
	case PC_REFUSE:
		if (empty && bev == c->cli && c->refuse_msg[0] == '\0')
			proxy_conn_close(c);
		break;
	case PC_CANCEL:
		if (empty && bev == c->srv && c->cancel_sent)
			proxy_conn_close(c);
		break;
	default:
		break;
	}
}

/*
 * The server will not run c's session (it answered the StartupMessage
 * with a 57P error, or lost the role before answering) and the client saw
 * nothing of it: hold c again, its startup back in its input.
 */
static void
proxy_conn_rehold(struct proxy_conn *c)
{
	(void)evbuffer_prepend(bufferevent_get_input(c->cli), c->startup,
	    c->startup_len);
	free(c->startup);
	c->startup = NULL;
	c->first.kind = PGWIRE_STARTUP;	/* what the next server gets */
	bufferevent_free(c->srv);
	c->srv = NULL;
	c->l->st.relayed_total--;
	event_del(c->timer);
	proxy_conn_set_state(c, PC_HELD);
	proxy_timer_set(c, c->hold_until_ms - monitor_now_ms());
}

static void
proxy_srv_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == PC_RELAY && c->startup != NULL) {
		size_t avail = evbuffer_get_length(in), mlen;
		char st[6];
		int e;

		if (avail > PGWIRE_MAX_STARTUP)
			avail = PGWIRE_MAX_STARTUP;
		e = pgwire_first_error(evbuffer_pullup(in, (ev_ssize_t)avail),
		    avail, &mlen, st);
		if (e < 0)
			return;		/* the rest of it comes */
		/* Class 57P as the first answer: the server is going down or
		 * not up yet (57P01 a shutdown that caught the startup, 57P03
		 * shutting down or starting up); no session began there. */
		if (e == 1 && strncmp(st, "57P", 3) == 0 &&
		    monitor_now_ms() < c->hold_until_ms) {
			log_info("listener %s %s: client %" PRIu64 ": %s:%d "
			    "cannot take connections now (SQLSTATE %s); "
			    "holding", c->l->cluster, c->l->cfg.address, c->id,
			    c->host, c->port, st);
			proxy_conn_rehold(c);
			return;
		}
		free(c->startup);
		c->startup = NULL;
	}
	if (c->state == PC_RELAY)
		proxy_pump(c, bev, c->cli, false);
	else
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
}

/* One side is gone: give the other what is queued for it, then close. */
static void
proxy_conn_drain(struct proxy_conn *c, struct bufferevent *gone)
{
	struct bufferevent *other = gone == c->cli ? c->srv : c->cli;

	if (other == NULL ||
	    evbuffer_get_length(bufferevent_get_output(other)) == 0) {
		proxy_conn_close(c);
		return;
	}
	proxy_conn_set_state(c, PC_DRAIN);
	c->drain_to = other;
	bufferevent_disable(gone, EV_READ | EV_WRITE);
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
	proxy_timer_set(c, PROXY_DRAIN_MS);
}

/* Sends the client an ErrorResponse once it has said which protocol it
 * speaks (an SSLRequest is answered 'N' first), then closes. */
static void
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

static void
proxy_srv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *c = arg;
	struct proxy_listener *l = c->l;
	char msg[400];

	if (what & BEV_EVENT_CONNECTED) {
		proxy_set_nodelay(bev);
		event_del(c->timer);
		if (c->state == PC_CANCEL) {
			/* The request is queued: proxy_write_cb closes once it
			 * is out. */
			c->cancel_sent = true;
			return;
		}
		proxy_conn_set_state(c, PC_RELAY);
		l->st.relayed_total++;
		log_debug("listener %s %s: client %" PRIu64 " relayed to "
		    "%s:%d", l->cluster, l->cfg.address, c->id, c->host,
		    c->port);
		pgwire_track_init(&c->track);
		c->startup_watch = c->first.kind == PGWIRE_STARTUP ||
		    c->first.kind == PGWIRE_SSL || c->first.kind == PGWIRE_GSSENC;
		bufferevent_setwatermark(c->cli, EV_WRITE, PROXY_HIGH_WATER / 2,
		    0);
		bufferevent_setwatermark(c->srv, EV_WRITE, PROXY_HIGH_WATER / 2,
		    0);
		bufferevent_setcb(c->srv, proxy_srv_read_cb, proxy_write_cb,
		    proxy_srv_event_cb, c);
		bufferevent_enable(c->srv, EV_READ | EV_WRITE);
		bufferevent_enable(c->cli, EV_READ | EV_WRITE);
		proxy_pump(c, c->cli, c->srv, true);
		return;
	}
	if (c->state == PC_CANCEL) {
		proxy_conn_close(c);
		return;
	}
	if (c->state == PC_CONNECTING) {
		int err = EVUTIL_SOCKET_ERROR();

		snprintf(msg, sizeof(msg), "cannot connect to %s:%d: %s",
		    c->host, c->port, (what & BEV_EVENT_ERROR) && err != 0 ?
		    evutil_socket_error_to_string(err) : "connection closed");
		bufferevent_free(c->srv);
		c->srv = NULL;
		if (monitor_now_ms() < c->hold_until_ms) {
			/* The monitor may not know yet: wait for its next
			 * update, within the client's wait. */
			log_info("listener %s %s: client %" PRIu64 ": %s; "
			    "holding", l->cluster, l->cfg.address, c->id, msg);
			proxy_conn_set_state(c, PC_HELD);
			proxy_timer_set(c, c->hold_until_ms - monitor_now_ms());
			return;
		}
		proxy_refuse(c, "08006", msg);
		return;
	}
	if (c->state == PC_RELAY && c->startup != NULL &&
	    monitor_now_ms() < c->hold_until_ms) {
		/* Closed before any answer to the startup (a postmaster that
		 * went down with the connection in its backlog): no session
		 * began, the client saw nothing of it. */
		log_info("listener %s %s: client %" PRIu64 ": %s:%d closed the "
		    "connection before answering its startup; holding",
		    l->cluster, l->cfg.address, c->id, c->host, c->port);
		proxy_conn_rehold(c);
		return;
	}
	if (c->state == PC_DRAIN)
		proxy_conn_close(c);
	else
		proxy_conn_drain(c, bev);
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
static void
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

/* A CancelRequest: to the server whose session has this key, else to the
 * role's current host (a key sent under TLS is unknown). */
static void
proxy_cancel(struct proxy_conn *c)
{
	struct proxy_listener *l = c->l, *ol;
	struct proxy *px = l->px;
	struct proxy_conn *oc;
	struct topo_cluster *cl;
	const struct topo_host *h;
	uint8_t pkt[8 + 4 + PGWIRE_MAX_KEY];
	uint32_t len = (uint32_t)(8 + c->first.keylen);
	char why[256];
	bool found = false;

	evbuffer_drain(bufferevent_get_input(c->cli), c->first.len);
	TAILQ_FOREACH(ol, &px->listeners, entry) {
		TAILQ_FOREACH(oc, &ol->conns, entry) {
			if (oc->state == PC_RELAY && oc->track.has_key &&
			    oc->track.keylen == c->first.keylen &&
			    memcmp(oc->track.key, c->first.key,
			    c->first.keylen) == 0) {
				snprintf(c->host, sizeof(c->host), "%s",
				    oc->host);
				c->port = oc->port;
				found = true;
				break;
			}
		}
		if (found)
			break;
	}
	if (!found) {
		cl = monitor_find_cluster(px->mon, l->cluster);
		h = cl != NULL ? topology_resolve(cl, &l->cfg.query,
		    monitor_limits(px->mon), why, sizeof(why)) : NULL;
		if (h == NULL) {
			log_info("listener %s %s: client %" PRIu64 ": cancel "
			    "request for an unknown session and no host to "
			    "send it to", l->cluster, l->cfg.address, c->id);
			proxy_conn_close(c);
			return;
		}
		snprintf(c->host, sizeof(c->host), "%s", h->host);
		c->port = h->port;
	}
	log_debug("listener %s %s: client %" PRIu64 ": cancel request to "
	    "%s:%d (%s session)", l->cluster, l->cfg.address, c->id, c->host,
	    c->port, found ? "its" : "unknown");
	c->srv = bufferevent_socket_new(px->base, -1,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (c->srv == NULL) {
		proxy_conn_close(c);
		return;
	}
	proxy_conn_set_state(c, PC_CANCEL);
	bufferevent_setcb(c->srv, NULL, proxy_write_cb, proxy_srv_event_cb, c);
	bufferevent_disable(c->cli, EV_READ);
	pkt[0] = (uint8_t)(len >> 24);
	pkt[1] = (uint8_t)(len >> 16);
	pkt[2] = (uint8_t)(len >> 8);
	pkt[3] = (uint8_t)len;
	pkt[4] = (uint8_t)(PGWIRE_CANCEL_CODE >> 24);
	pkt[5] = (uint8_t)(PGWIRE_CANCEL_CODE >> 16);
	pkt[6] = (uint8_t)(PGWIRE_CANCEL_CODE >> 8);
	pkt[7] = (uint8_t)PGWIRE_CANCEL_CODE;
	memcpy(pkt + 8, c->first.key, c->first.keylen);
	bufferevent_write(c->srv, pkt, len);
	bufferevent_enable(c->srv, EV_WRITE);
	proxy_timer_set(c, l->cfg.connect_timeout_ms);
	proxy_bev_connect(px, c->srv, c->host, c->port);
}

/* Picks the host for c now, or holds c while there is none. */
static void
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

static void
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

static void
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

static void
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

/* --- listeners --------------------------------------------------------------- */

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
static void
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
