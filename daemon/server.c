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
#include <sys/resource.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <dirent.h>
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
	bool			 eof;		/* the peer shut down its side */
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
	int			 lock_fd;	/* flock()ed for our lifetime, or -1 */
	struct evconnlistener	*listener;	/* owned, owns the socket */
	struct event		*accept_retry;	/* owned; re-enables after EMFILE */
	struct server_backoff	 backoff;	/* of accept errors */
	size_t			 max_clients;	/* listener paused at this many */
	bool			 full;		/* paused because of max_clients */
	struct event		*reaper;	/* owned; frees dead clients */
	struct server_clients	 clients;
	size_t			 nclients;
	uint64_t		 next_id;
	struct server_counters	 counters;	/* requests answered */
	struct proxy		*proxy;		/* borrowed, may be NULL */
	struct server_last	*last;		/* owned list: EVENT sent last */
};

/* The EVENT line pushed last for one cluster.  Owned by the server. */
struct server_last {
	char			*cluster;	/* owned */
	char			*line;		/* owned */
	struct server_last	*next;
};

static void	server_client_process(struct server_client *);

/*
 * Pauses the listener while max_clients are connected and resumes it
 * below: clients past the cap wait in the kernel's backlog instead of
 * taking descriptors that reconnecting to a database server needs.
 */
static void
server_check_full(struct server *s)
{
	bool full = s->nclients >= s->max_clients;

	if (full == s->full || s->listener == NULL)
		return;
	s->full = full;
	if (full) {
		log_warn("%zu clients on %s: not accepting more until one "
		    "leaves", s->nclients, s->path);
		evconnlistener_disable(s->listener);
	} else if (!evtimer_pending(s->accept_retry, NULL))
		evconnlistener_enable(s->listener);
}

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
	server_check_full(s);
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

/*
 * FORGET <cluster>: clears the cluster's timeline memory.  Only root and
 * the daemon's own user may: anyone else on the host could otherwise let
 * a diverged old primary be named master again.
 */
static enum proto_err
server_handle_forget(struct server_client *c, const struct proto_request *req)
{
	char	buf[PROTO_REPLY_MAX], why[160], who[64];

	if (c->uid != 0 && c->uid != geteuid()) {
		log_warn("client %" PRIu64 ": FORGET %s refused to uid %ld "
		    "(pid %ld)", c->id, req->cluster, (long)c->uid,
		    (long)c->pid);
		snprintf(why, sizeof(why), "FORGET needs root or the daemon's "
		    "user (uid %ld)", (long)geteuid());
		server_reply_error(c, PROTO_ERR_DENIED, why);
		return PROTO_ERR_DENIED;
	}
	snprintf(who, sizeof(who), "uid %ld pid %ld", (long)c->uid,
	    (long)c->pid);
	if (monitor_forget(c->srv->mon, req->cluster, who) == -1) {
		snprintf(why, sizeof(why), "no cluster '%s'", req->cluster);
		server_reply_error(c, PROTO_ERR_NOCLUSTER, why);
		return PROTO_ERR_NOCLUSTER;
	}
	server_reply(c, buf, (size_t)snprintf(buf, sizeof(buf),
	    "OK forgot %s\n", req->cluster));
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
	case PROTO_CMD_FORGET:
		err = server_handle_forget(c, &req);
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

/*
 * The peer shut down its side and every line it sent is answered: an
 * unterminated last line is a request too.  Closes once the replies are
 * written (server_write_cb()), never before.
 */
static void
server_client_finish(struct server_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char line[PROTO_MAX_LINE + 2];
	size_t len = evbuffer_get_length(in);

	if (len > 0 && evbuffer_remove(in, line, len) == (int)len) {
		if (line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		server_handle_line(c, line, len);
	}
	if (c->dead)
		return;
	c->closing = true;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		server_client_kill(c);
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
			else if (c->eof)
				server_client_finish(c);
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
		if (!c->eof)
			bufferevent_enable(bev, EV_READ);
		server_client_process(c);
	}
}

static void
server_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct server_client *c = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR) {
		log_debug("client %" PRIu64 ": %s", c->id,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		server_client_kill(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* A half-close: the requests read so far still get their
		 * replies, then the connection closes. */
		c->eof = true;
		if (c->closing) {
			if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
				server_client_kill(c);
		} else if (!c->throttled)
			server_client_process(c);
	}
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
	/* Fails only on a base without priorities (the unit tests'). */
	(void)bufferevent_priority_set(c->bev, SERVER_PRIO_SOCKET);
	bufferevent_setcb(c->bev, server_read_cb, server_write_cb,
	    server_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SERVER_OUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&s->clients, c, entry);
	s->nclients++;
	server_backoff_ok(&s->backoff);
	log_debug("client %" PRIu64 ": connected (uid %ld, pid %ld)", c->id,
	    (long)c->uid, (long)c->pid);
	server_check_full(s);
}

static void
server_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (!s->full)
		evconnlistener_enable(s->listener);
}

static void
server_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct server *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	unsigned suppressed;
	bool log;
	int ms;
	struct timeval tv;

	/* Out of descriptors: accepting again at once would spin.  Pause,
	 * longer each time, and say so at most every 10 s. */
	ms = server_backoff_fail(&s->backoff, monitor_now_ms(), &log,
	    &suppressed);
	if (log)
		log_warn("accept on %s: %s; pausing for %d ms (%u more such "
		    "errors not logged)", s->path,
		    evutil_socket_error_to_string(err), ms, suppressed);
	evconnlistener_disable(l);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(s->accept_retry, &tv);
}

int
server_backoff_fail(struct server_backoff *b, int64_t now_ms, bool *log,
    unsigned *suppressed)
{
	if (b->delay_ms < SERVER_BACKOFF_MIN_MS)
		b->delay_ms = SERVER_BACKOFF_MIN_MS;
	else if (b->delay_ms < SERVER_BACKOFF_MAX_MS / 2)
		b->delay_ms *= 2;
	else
		b->delay_ms = SERVER_BACKOFF_MAX_MS;
	*log = b->next_log_ms == 0 || now_ms >= b->next_log_ms;
	*suppressed = b->suppressed;
	if (*log) {
		b->suppressed = 0;
		b->next_log_ms = now_ms + SERVER_BACKOFF_LOG_MS;
	} else
		b->suppressed++;
	return b->delay_ms;
}

void
server_backoff_ok(struct server_backoff *b)
{
	b->delay_ms = 0;
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
		/* not ours: server_free() must not unlink it */
		close(s->lock_fd);
		s->lock_fd = -1;
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
	/* Backlog 0: keep the SOMAXCONN unixsock_listen() gave it (-1
	 * would listen again with 128, too few for a burst of clients). */
	s->max_clients = SERVER_DEFAULT_MAX_CLIENTS;
	s->listener = evconnlistener_new(base, server_accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
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
	struct server_last *l;

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
	if (s->lock_fd >= 0) {
		/* Unlinked while still held: a daemon that opens the name
		 * now creates a new file, and none can lock this inode
		 * after we let go while another locks a new one. */
		unlink(s->lock_path);
		close(s->lock_fd);	/* releases the lock */
	}
	while ((l = s->last) != NULL) {
		s->last = l->next;
		free(l->cluster);
		free(l->line);
		free(l);
	}
	free(s->lock_path);
	free(s->path);
	free(s);
}

/*
 * true when line is the EVENT pushed last for cluster; otherwise records
 * it (when memory allows) and returns false.
 */
static bool
server_event_seen(struct server *s, const char *cluster, const char *line)
{
	struct server_last	*l;
	char			*dup;

	for (l = s->last; l != NULL; l = l->next) {
		if (strcmp(l->cluster, cluster) == 0)
			break;
	}
	if (l != NULL && strcmp(l->line, line) == 0)
		return true;
	if ((dup = strdup(line)) == NULL)
		return false;
	if (l == NULL) {
		if ((l = calloc(1, sizeof(*l))) == NULL ||
		    (l->cluster = strdup(cluster)) == NULL) {
			free(l);
			free(dup);
			return false;
		}
		l->next = s->last;
		s->last = l;
	}
	free(l->line);
	l->line = dup;
	return false;
}

void
server_broadcast(struct server *s, const struct topo_cluster *tc)
{
	struct server_client *c;
	char buf[PROTO_MAX_LINE];
	size_t len;

	len = protocol_format_event(buf, sizeof(buf), tc);
	if (server_event_seen(s, tc->name, buf))
		return;
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

void
server_set_max_clients(struct server *s, size_t max)
{
	s->max_clients = max > 0 ? max : 1;
	server_check_full(s);
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

void
server_client_caps(const struct server_fd_budget *b, size_t *socket_max,
    size_t *http_max)
{
	size_t reserve = SERVER_FD_SLACK + SERVER_FDS_PER_HOST * b->nhosts;
	size_t avail = 0, h;

	if (b->limit > b->in_use + reserve)
		avail = b->limit - b->in_use - reserve;
	/* HTTP may take half of what is left, the socket the rest: a flood
	 * on one listener never takes the other's descriptors. */
	h = b->http ? b->http_setting : 0;
	if (h > avail / 2)
		h = avail / 2;
	*http_max = h > 0 ? h : 1;
	*socket_max = b->socket_setting < avail - h ? b->socket_setting :
	    avail - h;
	if (*socket_max == 0)
		*socket_max = 1;
}

size_t
server_fds_in_use(void)
{
	DIR *dir;
	struct dirent *e;
	size_t n = 0;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return 16;	/* a guess; the slack covers it */
	while ((e = readdir(dir)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n > 0 ? n - 1 : 0;	/* not the directory's own fd */
}

int
server_raise_fd_limit(char *msg, size_t msglen)
{
	struct rlimit rl;
	rlim_t was;

	msg[0] = '\0';
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur != rl.rlim_max) {
		was = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			snprintf(msg, msglen, "raised the descriptor limit from "
			    "%llu to %llu", (unsigned long long)was,
			    (unsigned long long)rl.rlim_max);
		else if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -1;
	}
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT32_MAX ?
	    INT32_MAX : (int)rl.rlim_cur;
}

/*
 * HTTP on a thread of its own would need locks around the monitor's
 * memory on every request; priorities need none.  See SERVER_PRIO_HTTP.
 */
struct event_base *
server_base_new(void)
{
	struct event_config *ec;
	struct event_base *base = NULL;

	if ((ec = event_config_new()) == NULL)
		return NULL;
	if (event_config_set_max_dispatch_interval(ec, NULL, SERVER_HTTP_SLICE,
	    SERVER_PRIO_HTTP) == 0)
		base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (base != NULL && event_base_priority_init(base, SERVER_NPRIO) != 0) {
		event_base_free(base);
		return NULL;
	}
	return base;
}
