/*
 * proxy_relay.c - the relay data path of a connection listener: bytes
 * moved both ways between bufferevents with watermarks, the connection's
 * start followed (BackendKeyData, the StartupMessage kept for a retry),
 * the server's answers to it held until they show the session is up, a
 * closing side drained.
 */

#include "proxy_int.h"

/*
 * While relaying, each side is read here rather than by its bufferevent:
 * one read(2) of up to PROXY_READ_SIZE into the bufferevent's input, then
 * the callback the bufferevent would have called.  libevent 2.1 reads a
 * socket 4 KiB at a time, each read after an ioctl(FIONREAD): twice the
 * system calls for a small message, eight times the reads for a COPY
 * (bench/relay_bench.c measures both ways).  Writing stays with the
 * bufferevents, and so do their write watermarks.
 */
static void
proxy_relay_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_conn *c = arg;
	bool cli = c->rd_cli != NULL && fd == event_get_fd(c->rd_cli);
	struct bufferevent *bev = cli ? c->cli : c->srv;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v;
	ssize_t n = -1;

	(void)what;
	/* A socket bufferevent keeps the end of its input frozen but for
	 * its own reads; this is one of those. */
	(void)evbuffer_unfreeze(in, 0);
	if (evbuffer_reserve_space(in, PROXY_READ_SIZE, &v, 1) == 1)
		n = read(fd, v.iov_base, v.iov_len);
	else
		errno = ENOMEM;
	if (n > 0) {
		v.iov_len = (size_t)n;
		(void)evbuffer_commit_space(in, &v, 1);
	}
	(void)evbuffer_freeze(in, 0);
	if (n > 0) {
		if (cli)
			proxy_cli_read_cb(bev, c);
		else
			proxy_srv_read_cb(bev, c);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (cli)
		proxy_cli_event_cb(bev, BEV_EVENT_READING | (n == 0 ?
		    BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
	else
		proxy_srv_event_cb(bev, BEV_EVENT_READING | (n == 0 ?
		    BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
}

/* Relaying starts: both sides read by proxy_relay_read_cb(). */
bool
proxy_relay_start(struct proxy_conn *c)
{
	struct event_base *base = c->l->px->base;

	c->rd_cli = event_new(base, bufferevent_getfd(c->cli),
	    EV_READ | EV_PERSIST, proxy_relay_read_cb, c);
	c->rd_srv = event_new(base, bufferevent_getfd(c->srv),
	    EV_READ | EV_PERSIST, proxy_relay_read_cb, c);
	if (c->rd_cli == NULL || c->rd_srv == NULL) {
		proxy_relay_stop(c);
		return false;
	}
	bufferevent_disable(c->cli, EV_READ);
	bufferevent_disable(c->srv, EV_READ);
	event_add(c->rd_cli, NULL);
	event_add(c->rd_srv, NULL);
	return true;
}

/* Relaying ends (c closes, or is held again). */
void
proxy_relay_stop(struct proxy_conn *c)
{
	if (c->rd_cli != NULL)
		event_free(c->rd_cli);
	if (c->rd_srv != NULL)
		event_free(c->rd_srv);
	c->rd_cli = c->rd_srv = NULL;
}

/* Starts or stops reading bev, one side of c. */
void
proxy_read_set(struct proxy_conn *c, struct bufferevent *bev, bool on)
{
	struct event *ev = bev == c->cli ? c->rd_cli : c->rd_srv;

	if (ev == NULL) {
		if (on)
			bufferevent_enable(bev, EV_READ);
		else
			bufferevent_disable(bev, EV_READ);
	} else if (on)
		event_add(ev, NULL);
	else
		event_del(ev);
}

/*
 * Keeps a copy of the client's StartupMessage, the first packet or the one
 * after an SSLRequest or GSSENCRequest refused ('N'), as it goes out: the
 * len bytes in `in`.  A client that sent more than its startup cannot be
 * moved to another server (those bytes are gone): nothing is kept.
 */
static void
proxy_keep_startup(struct proxy_conn *c, struct evbuffer *in, size_t len)
{
	size_t n = len < PGWIRE_MAX_STARTUP ? len : PGWIRE_MAX_STARTUP;
	struct pgwire_first f;
	char why[160];
	uint8_t *p;
	enum pgwire_kind k;

	p = evbuffer_pullup(in, (ev_ssize_t)n);
	k = p != NULL && !c->track.encrypted ?
	    pgwire_parse_first(p, n, &f, why, sizeof(why)) : PGWIRE_BAD;
	if (k == PGWIRE_SSL || k == PGWIRE_GSSENC)
		return;		/* the server answers one byte first */
	c->startup_watch = false;
	if (k != PGWIRE_STARTUP || f.len != len ||
	    (c->startup = malloc(f.len)) == NULL)
		return;		/* in parts, more, or no startup: no retry */
	memcpy(c->startup, p, f.len);
	c->startup_len = f.len;
}

/*
 * The session at the server is c's for good (its startup is answered, or
 * the client spoke meanwhile): no retry elsewhere; what the server said
 * while its answers were held goes to the client.
 */
static void
proxy_startup_settle(struct proxy_conn *c)
{
	free(c->startup);
	c->startup = NULL;
	if (c->srv != NULL)
		proxy_pump(c, c->srv, c->cli, false);
}

/* Moves what src read to dst, feeding the tracker until it is done;
 * stops reading src while dst holds more than the high watermark. */
void
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
	else if (up && c->startup != NULL)
		proxy_startup_settle(c);
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
		proxy_read_set(c, src, false);
}

/* bev took enough of its queue: the other side may be read again; or bev
 * got all that was left for it before closing. */
void
proxy_write_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	struct bufferevent *other = bev == c->cli ? c->srv : c->cli;
	bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;

	switch (c->state) {
	case PC_RELAY:
		if (other != NULL)
			proxy_read_set(c, other, true);
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
void
proxy_conn_rehold(struct proxy_conn *c)
{
	(void)evbuffer_prepend(bufferevent_get_input(c->cli), c->startup,
	    c->startup_len);
	free(c->startup);
	c->startup = NULL;
	c->first.kind = PGWIRE_STARTUP;	/* what the next server gets */
	proxy_relay_stop(c);
	bufferevent_enable(c->cli, EV_READ);	/* sees the client go */
	bufferevent_free(c->srv);
	c->srv = NULL;
	c->l->st.relayed_total--;
	event_del(c->timer);
	proxy_conn_set_state(c, PC_HELD);
	proxy_timer_set(c, c->hold_until_ms - monitor_now_ms());
}

/*
 * Until the server's answers to the startup decide how it ends, they are
 * held here, not relayed: a client with nothing to send (trust, peer)
 * waits for ReadyForQuery anyway, and PostgreSQL itself flushes its
 * AuthenticationOk only with the messages that follow it.  A server that
 * cannot run the session (a class 57P error: shutting down, starting up,
 * or a shutdown that caught the new backend) then leaves no trace: the
 * client is held again and relayed to the next holder of the role.  An
 * authentication request the client must answer (a password, SASL,
 * GSSAPI) ends the holding at once: such a startup cannot be replayed.
 */
void
proxy_srv_read_cb(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == PC_RELAY && c->startup != NULL) {
		size_t avail = evbuffer_get_length(in);
		enum pgwire_answer a;
		char st[6];

		if (avail > PGWIRE_MAX_ANSWER)
			avail = PGWIRE_MAX_ANSWER;
		a = pgwire_startup_answer(evbuffer_pullup(in, (ev_ssize_t)avail),
		    avail, st);
		if (a == PGWIRE_ANS_MORE)
			return;		/* held until the rest comes */
		if (a == PGWIRE_ANS_ERROR && strncmp(st, "57P", 3) == 0 &&
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
void
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
	proxy_read_set(c, gone, false);
	bufferevent_disable(gone, EV_READ | EV_WRITE);
	proxy_read_set(c, other, false);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
	proxy_timer_set(c, PROXY_DRAIN_MS);
}

void
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
		bufferevent_enable(c->srv, EV_WRITE);
		bufferevent_enable(c->cli, EV_WRITE);
		if (!proxy_relay_start(c)) {
			log_warn("listener %s %s: client %" PRIu64 ": out of "
			    "memory starting the relay", l->cluster,
			    l->cfg.address, c->id);
			proxy_conn_close(c);
			return;
		}
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
		/* Closed before the startup was answered (a postmaster that
		 * went down with the connection in its backlog, or a backend
		 * ended before its session began): the client saw nothing. */
		log_info("listener %s %s: client %" PRIu64 ": %s:%d closed the "
		    "connection before answering its startup; holding",
		    l->cluster, l->cfg.address, c->id, c->host, c->port);
		proxy_conn_rehold(c);
		return;
	}
	if (c->state == PC_RELAY && c->startup != NULL)
		proxy_startup_settle(c);	/* the client gets its error */
	if (c->state == PC_DRAIN)
		proxy_conn_close(c);
	else
		proxy_conn_drain(c, bev);
}
