/*
 * server.c - the Unix-socket listener and its clients.
 *
 * Every client is a bufferevent that owns its fd.  Requests are read line
 * by line straight from the input evbuffer into a stack buffer, answered
 * from the monitor's memory and appended to the output evbuffer, so a
 * pipelining client gets all of its answers in one write.  A client that
 * sends faster than it reads is paused (its input is left unread) until
 * its output drains; a WATCH subscriber that stops reading altogether is
 * dropped rather than allowed to grow without bound.
 */
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "monitor.h"
#include "protocol.h"
#include "proxy.h"
#include "server.h"
#include "unixsock.h"

/* Output queued past this: stop reading the client's requests. */
#define SERVER_OUT_HIGH		(256 * 1024)
/* Resume reading once the output is down to this. */
#define SERVER_OUT_LOW		(64 * 1024)
/* A watcher whose unread events pass this is dropped. */
#define SERVER_OUT_MAX		(4 * 1024 * 1024)

/* One connected client.  Owned by the server's list. */
struct server_client {
	TAILQ_ENTRY(server_client) entry;
	struct server		*srv;		/* back pointer, not owned */
	struct bufferevent	*bev;		/* owned, owns the fd */
	uint64_t		 id;		/* for logs */
	uid_t			 uid;		/* the peer, from SO_PEERCRED */
	pid_t			 pid;
	bool			 watching;
	char			 watch_cluster[64]; /* "" for every cluster */
	bool			 throttled;	/* reading paused for back-pressure */
	bool			 closing;	/* close once the output is flushed */
	bool			 dead;		/* to be freed by the reaper */
};

TAILQ_HEAD(server_clients, server_client);

/* The server.  Owned by main. */
struct server {
	struct event_base	*base;		/* borrowed */
	struct monitor		*mon;		/* borrowed */
	char			*path;		/* owned */
	char			*lock_path;	/* owned */
	int			 lock_fd;	/* flock()ed for our lifetime */
	struct evconnlistener	*listener;	/* owned, owns the socket */
	struct event		*accept_retry;	/* owned; re-enables after EMFILE */
	struct event		*reaper;	/* owned; frees dead clients */
	struct server_clients	 clients;
	size_t			 nclients;
	uint64_t		 next_id;
	struct server_counters	 counters;	/* requests answered */
	struct proxy		*proxy;		/* borrowed, may be NULL */
};

static void	server_client_process(struct server_client *);

static void
server_client_kill(struct server_client *c)
{
	if (c->dead)
		return;
	c->dead = true;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->srv->reaper, EV_TIMEOUT, 1);
}

static void
server_reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct server_client *c, *next;

	(void)fd;
	(void)what;
	for (c = TAILQ_FIRST(&s->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (!c->dead)
			continue;
		TAILQ_REMOVE(&s->clients, c, entry);
		s->nclients--;
		log_debug("client %" PRIu64 ": closed", c->id);
		bufferevent_free(c->bev);
		free(c);
	}
}

static void
server_reply(struct server_client *c, const char *buf, size_t len)
{
	if (evbuffer_add(bufferevent_get_output(c->bev), buf, len) != 0) {
		log_warn("client %" PRIu64 ": out of memory, closing", c->id);
		server_client_kill(c);
	}
}

static void
server_reply_error(struct server_client *c, enum proto_err err,
    const char *text)
{
	char buf[PROTO_REPLY_MAX];

	server_reply(c, buf, protocol_format_error(buf, sizeof(buf), err, text));
}

static enum proto_err
server_handle_resolve(struct server_client *c, const struct proto_request *req)
{
	struct server *s = c->srv;
	struct topo_cluster *tc;
	const struct topo_host *h;
	char buf[PROTO_REPLY_MAX], why[256];

	if ((tc = monitor_find_cluster(s->mon, req->cluster)) == NULL) {
		snprintf(why, sizeof(why), "no cluster '%s'", req->cluster);
		server_reply_error(c, PROTO_ERR_NOCLUSTER, why);
		return PROTO_ERR_NOCLUSTER;
	}
	h = topology_resolve(tc, &req->query, monitor_limits(s->mon), why,
	    sizeof(why));
	if (h == NULL) {
		server_reply_error(c, PROTO_ERR_NOHOST, why);
		return PROTO_ERR_NOHOST;
	}
	server_reply(c, buf, protocol_format_resolve(buf, sizeof(buf), h,
	    tc->generation));
	return PROTO_OK;
}

static enum proto_err
server_handle_status(struct server_client *c, const struct proto_request *req)
{
	struct server *s = c->srv;
	struct topo_cluster *const *all, *one;
	struct proto_listener_stats *ls;
	size_t n, nls;
	char why[128];
	int rc;

	if (req->cluster != NULL) {
		if ((one = monitor_find_cluster(s->mon, req->cluster)) == NULL) {
			snprintf(why, sizeof(why), "no cluster '%s'", req->cluster);
			server_reply_error(c, PROTO_ERR_NOCLUSTER, why);
			return PROTO_ERR_NOCLUSTER;
		}
		all = &one;
		n = 1;
	} else
		all = monitor_clusters(s->mon, &n);
	ls = proxy_get_stats(s->proxy, req->cluster, &nls);
	rc = protocol_format_status_listeners(bufferevent_get_output(c->bev),
	    all, n, monitor_now_ms(), ls, nls);
	free(ls);
	if (rc != 0) {
		log_warn("client %" PRIu64 ": out of memory, closing", c->id);
		server_client_kill(c);
	}
	return PROTO_OK;
}

static enum proto_err
server_handle_watch(struct server_client *c, const struct proto_request *req)
{
	static const char ok[] = "OK watching\n";
	char why[128];

	if (req->cluster != NULL &&
	    monitor_find_cluster(c->srv->mon, req->cluster) == NULL) {
		snprintf(why, sizeof(why), "no cluster '%s'", req->cluster);
		server_reply_error(c, PROTO_ERR_NOCLUSTER, why);
		return PROTO_ERR_NOCLUSTER;
	}
	c->watching = true;
	snprintf(c->watch_cluster, sizeof(c->watch_cluster), "%s",
	    req->cluster != NULL ? req->cluster : "");
	server_reply(c, ok, sizeof(ok) - 1);
	return PROTO_OK;
}

static void
server_handle_line(struct server_client *c, char *line, size_t len)
{
	static const char pong[] = "PONG\n";
	struct proto_request req;
	enum proto_err err;
	char why[256];

	err = protocol_parse_request(line, len, &req, why, sizeof(why));
	if (err != PROTO_OK) {
		log_debug("client %" PRIu64 ": bad request: %s", c->id, why);
		server_reply_error(c, err, why);
		c->srv->counters.requests[SERVER_CMD_INVALID][err]++;
		return;
	}
	switch (req.cmd) {
	case PROTO_CMD_RESOLVE:
		err = server_handle_resolve(c, &req);
		break;
	case PROTO_CMD_STATUS:
		err = server_handle_status(c, &req);
		break;
	case PROTO_CMD_WATCH:
		err = server_handle_watch(c, &req);
		break;
	case PROTO_CMD_PING:
		server_reply(c, pong, sizeof(pong) - 1);
		break;
	}
	if ((size_t)req.cmd < SERVER_NCMDS && (size_t)err < SERVER_NRESULTS)
		c->srv->counters.requests[req.cmd][err]++;
}

/* Answers "line too long" and closes the connection once that is sent. */
static void
server_client_too_long(struct server_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	log_info("client %" PRIu64 ": request line over %d bytes, closing",
	    c->id, PROTO_MAX_LINE);
	server_reply_error(c, PROTO_ERR_BADREQ, "line too long");
	evbuffer_drain(in, evbuffer_get_length(in));
	c->closing = true;
	bufferevent_disable(c->bev, EV_READ);
}

/* Answers every complete request line waiting in the input. */
static void
server_client_process(struct server_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_ptr eol;
	char line[PROTO_MAX_LINE + 2];
	size_t eol_len, len;

	while (!c->dead && !c->closing) {
		if (evbuffer_get_length(out) > SERVER_OUT_HIGH) {
			/* Reading resumes in server_write_cb(). */
			c->throttled = true;
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			/* One byte more than a line may be its '\r'. */
			if (evbuffer_get_length(in) > PROTO_MAX_LINE + 1)
				server_client_too_long(c);
			return;
		}
		len = (size_t)eol.pos;
		if (len > PROTO_MAX_LINE + 1) {
			server_client_too_long(c);
			return;
		}
		if (evbuffer_remove(in, line, len + eol_len) < 0) {
			server_client_kill(c);
			return;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len > PROTO_MAX_LINE) {
			server_client_too_long(c);
			return;
		}
		line[len] = '\0';
		server_handle_line(c, line, len);
	}
}

static void
server_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	server_client_process(arg);
}

static void
server_write_cb(struct bufferevent *bev, void *arg)
{
	struct server_client *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			server_client_kill(c);
		return;
	}
	if (c->throttled) {
		c->throttled = false;
		bufferevent_enable(bev, EV_READ);
		server_client_process(c);
	}
}

static void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct server_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR)
		log_debug("client %" PRIu64 ": %s", c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		server_client_kill(c);
}

static void
server_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;
	struct server_client *c;
	struct ucred cred;
	socklen_t credlen = sizeof(cred);

	(void)l;
	(void)sa;
	(void)salen;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("out of memory accepting a client");
		evutil_closesocket(fd);
		return;
	}
	c->srv = s;
	c->id = ++s->next_id;
	c->uid = (uid_t)-1;
	c->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0) {
		c->uid = cred.uid;
		c->pid = cred.pid;
	}
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warn("out of memory accepting a client");
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, server_read_cb, server_write_cb,
	    server_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SERVER_OUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&s->clients, c, entry);
	s->nclients++;
	log_debug("client %" PRIu64 ": connected (uid %ld, pid %ld)", c->id,
	    (long)c->uid, (long)c->pid);
}

static void
server_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(s->listener);
}

static void
server_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 100 * 1000 };

	/* Out of descriptors: accepting again at once would spin.  Pause. */
	log_warn("accept on %s: %s; pausing for 100 ms", s->path,
	    evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	event_add(s->accept_retry, &tv);
}

/*
 * Takes "<path>.lock" for our lifetime, then listens on path.  Holding the
 * lock, a socket file found there is from a daemon that died: replaced.
 * Returns the listening socket, or -1 with err set.
 */
static int
server_bind(struct server *s, mode_t mode, char *err, size_t errlen)
{
	s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", s->lock_path,
		    strerror(errno));
		return -1;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another pgbeacond is already "
			    "serving %s", s->path);
		else
			snprintf(err, errlen, "cannot lock %s: %s", s->lock_path,
			    strerror(errno));
		return -1;
	}
	return unixsock_listen(s->path, mode, false, err, errlen);
}

struct server *
server_new(struct event_base *base, const char *path, mode_t mode,
    struct monitor *mon, char *err, size_t errlen)
{
	struct server *s;
	int fd;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->mon = mon;
	s->lock_fd = -1;
	TAILQ_INIT(&s->clients);
	if ((s->path = strdup(path)) == NULL ||
	    asprintf(&s->lock_path, "%s.lock", path) < 0) {
		s->lock_path = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	s->reaper = event_new(base, -1, 0, server_reaper_cb, s);
	s->accept_retry = evtimer_new(base, server_accept_retry_cb, s);
	if (s->reaper == NULL || s->accept_retry == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((fd = server_bind(s, mode, err, errlen)) < 0)
		goto fail;
	s->listener = evconnlistener_new(base, server_accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (s->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s", path);
		close(fd);
		unlink(s->path);
		goto fail;
	}
	evconnlistener_set_error_cb(s->listener, server_accept_error_cb);
	return s;
fail:
	server_free(s);		/* the listener is NULL: no socket to unlink */
	return NULL;
}

void
server_free(struct server *s)
{
	struct server_client *c;

	if (s == NULL)
		return;
	while ((c = TAILQ_FIRST(&s->clients)) != NULL) {
		TAILQ_REMOVE(&s->clients, c, entry);
		bufferevent_free(c->bev);
		free(c);
	}
	if (s->listener != NULL) {
		evconnlistener_free(s->listener);
		if (s->path != NULL)
			unlink(s->path);
	}
	if (s->reaper != NULL)
		event_free(s->reaper);
	if (s->accept_retry != NULL)
		event_free(s->accept_retry);
	if (s->lock_fd >= 0)
		close(s->lock_fd);	/* releases the lock */
	free(s->lock_path);
	free(s->path);
	free(s);
}

void
server_broadcast(struct server *s, const struct topo_cluster *tc)
{
	struct server_client *c;
	char buf[PROTO_REPLY_MAX];
	size_t len;

	len = protocol_format_event(buf, sizeof(buf), tc);
	TAILQ_FOREACH(c, &s->clients, entry) {
		if (!c->watching || c->dead ||
		    (c->watch_cluster[0] != '\0' &&
		    strcmp(c->watch_cluster, tc->name) != 0))
			continue;
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
		    SERVER_OUT_MAX) {
			log_warn("client %" PRIu64 ": not reading its events, "
			    "closing", c->id);
			server_client_kill(c);
			continue;
		}
		server_reply(c, buf, len);
	}
}

size_t
server_nclients(const struct server *s)
{
	return s->nclients;
}

void
server_set_proxy(struct server *s, struct proxy *px)
{
	s->proxy = px;
}

const struct server_counters *
server_get_counters(const struct server *s)
{
	return &s->counters;
}
