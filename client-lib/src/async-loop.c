/*
 * async-loop.c - the event-driven daemon client (pgb_loop): RESOLVE
 * requests pipelined over one non-blocking connection to pgbeacond, and a
 * WATCH subscription that keeps every attached pgb_db current.  Runs on
 * the caller's event_base; never blocks (connecting to a Unix socket
 * either succeeds or fails at once).
 */
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "common/limits.h"

#include "pgbeacon.h"
#include "async-internal.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "util-internal.h"

#define LOOP_TIMEOUT_MS		2000
#define LOOP_MAX_LINE		(64 * 1024)
#define WATCH_RETRY_MIN_MS	50
#define WATCH_RETRY_MAX_MS	1000

TAILQ_HEAD(areq_list, pgbi_areq);

struct pgb_loop {
	struct event_base	*base;		/* borrowed */
	char			*path;		/* owned */

	struct bufferevent	*bev;		/* RESOLVE connection, or NULL */
	struct areq_list	 pending;	/* sent, in order */
	struct areq_list	 failed;	/* could not be sent */
	struct event		*fail_ev;	/* fails `failed` from the loop */
	char			 fail_msg[256];

	struct bufferevent	*wbev;		/* WATCH connection, or NULL */
	int			 watch_ok;	/* "OK watching" received */
	int			 was_broken;	/* a resync event is due */
	int			 retry_ms;
	struct event		*retry_ev;
	pgb_event_cb		 ecb;
	void			*earg;

	int			 notify_fd;	/* owned eventfd; notify_cb */
	struct event		*notify_ev;

	struct evdns_base	*dns;		/* the application's, or NULL */
	struct evdns_base	*own_dns;	/* owned default, or NULL */

	TAILQ_HEAD(, pgbi_binding) bindings;	/* owned */
	int			 depth;		/* callbacks running */
	int			 free_pending;	/* pgb_loop_free inside one */
	char			 error[512];
};

static int	 loop_connect(pgb_loop *l, struct bufferevent **out);
static void	 loop_call(pgb_loop *l, struct pgbi_areq *r, const char *line,
		     pgb_errcode code, const char *err);
static void	 loop_fail_all(pgb_loop *l, pgb_errcode code, const char *err);
static void	 loop_free_now(pgb_loop *l);
static void	 req_read_cb(struct bufferevent *bev, void *arg);
static void	 req_event_cb(struct bufferevent *bev, short what, void *arg);
static void	 fail_cb(evutil_socket_t fd, short what, void *arg);
static void	 watch_start(pgb_loop *l);
static void	 watch_broken(pgb_loop *l, const char *why);
static void	 watch_read_cb(struct bufferevent *bev, void *arg);
static void	 watch_event_cb(struct bufferevent *bev, short what, void *arg);
static void	 watch_retry_cb(evutil_socket_t fd, short what, void *arg);
static void	 watch_invalidate(pgb_loop *l, const char *cluster);
static void	 watch_user_event(pgb_loop *l, const pgb_event *ev);
static void	 notify_cb(evutil_socket_t fd, short what, void *arg);
static int	 binding_set_host(struct pgbi_binding *b, const char *host,
		     int port, const char *role, int reusable);

pgb_loop *
pgb_loop_new(struct event_base *base, const char *socket_path)
{
	pgb_loop	*l;
	const char	*env;

	if (base == NULL)
		return (NULL);
	l = calloc(1, sizeof *l);
	if (l == NULL)
		return (NULL);
	l->base = base;
	l->notify_fd = -1;
	if (socket_path == NULL || *socket_path == '\0') {
		env = getenv(PGB_SOCKET_ENV);
		socket_path = env != NULL && *env != '\0' ? env :
		    PGB_DEFAULT_SOCKET;
	}
	l->path = strdup(socket_path);
	TAILQ_INIT(&l->pending);
	TAILQ_INIT(&l->failed);
	TAILQ_INIT(&l->bindings);
	l->fail_ev = event_new(base, -1, 0, fail_cb, l);
	l->retry_ev = evtimer_new(base, watch_retry_cb, l);
	/*
	 * A pgb_db shared with blocking threads (or other loops) grants
	 * connections to this loop's sessions from their threads: they
	 * write to this eventfd, which needs no libevent thread support.
	 */
	l->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->notify_fd != -1)
		l->notify_ev = event_new(base, l->notify_fd,
		    EV_READ | EV_PERSIST, notify_cb, l);
	if (l->path == NULL || l->fail_ev == NULL || l->retry_ev == NULL ||
	    l->notify_ev == NULL || event_add(l->notify_ev, NULL) == -1) {
		loop_free_now(l);
		return (NULL);
	}
	l->retry_ms = WATCH_RETRY_MIN_MS;
	watch_start(l);
	return (l);
}

void
pgb_loop_free(pgb_loop *l)
{
	if (l == NULL)
		return;
	if (l->depth > 0) {
		l->free_pending = 1;
		return;
	}
	loop_free_now(l);
}

static void
loop_free_now(pgb_loop *l)
{
	struct pgbi_binding	*b;

	l->free_pending = 0;
	l->depth++;			/* callbacks below must not free l */
	loop_fail_all(l, PGB_ERR_CANCELED, "the pgb_loop was freed");
	l->depth--;
	if (l->wbev != NULL)
		bufferevent_free(l->wbev);
	if (l->fail_ev != NULL)
		event_free(l->fail_ev);
	if (l->retry_ev != NULL)
		event_free(l->retry_ev);
	if (l->notify_ev != NULL)
		event_free(l->notify_ev);
	if (l->notify_fd != -1)
		close(l->notify_fd);
	if (l->own_dns != NULL)
		evdns_base_free(l->own_dns, 1);
	while ((b = TAILQ_FIRST(&l->bindings)) != NULL) {
		TAILQ_REMOVE(&l->bindings, b, entry);
		free(b);
	}
	free(l->path);
	free(l);
}

struct event_base *
pgb_loop_base(const pgb_loop *l)
{
	return (l->base);
}

void
pgb_loop_set_dns(pgb_loop *l, struct evdns_base *dns)
{
	if (l != NULL)
		l->dns = dns;
}

struct evdns_base *
pgbi_loop_dns(pgb_loop *l)
{
	if (l->dns != NULL)
		return (l->dns);
	if (l->own_dns == NULL) {
		/* Reads /etc/resolv.conf and /etc/hosts once: local files. */
		l->own_dns = evdns_base_new(l->base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS |
		    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (l->own_dns != NULL)
			(void)evdns_base_load_hosts(l->own_dns, NULL);
	}
	return (l->own_dns);
}

const char *
pgb_loop_error(const pgb_loop *l)
{
	return (l->error);
}

int
pgb_loop_watching(const pgb_loop *l)
{
	return (l->watch_ok);
}

int
pgbi_loop_watch_ok(const pgb_loop *l)
{
	return (l->watch_ok);
}

int
pgbi_loop_notify_fd(const pgb_loop *l)
{
	return (l->notify_fd);
}

/* A db granted connections to sessions of this loop: they go on. */
static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_loop		*l = arg;
	struct pgbi_binding	*b;
	uint64_t		 n;

	(void)what;
	while (read(fd, &n, sizeof n) == -1 && errno == EINTR)
		;
	/* Sessions are only kicked here: none runs, none is freed. */
	TAILQ_FOREACH(b, &l->bindings, entry) {
		if (b->wake != NULL)
			b->wake(b);
	}
}

void
pgb_loop_set_event_cb(pgb_loop *l, pgb_event_cb cb, void *arg)
{
	l->ecb = cb;
	l->earg = arg;
}

struct pgbi_binding *
pgbi_loop_bind(pgb_loop *l, pgb_db *db, pgbi_binding_wake_fn wake)
{
	struct pgbi_binding	*b;

	TAILQ_FOREACH(b, &l->bindings, entry) {
		if (b->db == db) {
			if (wake != NULL)
				b->wake = wake;
			return (b);
		}
	}
	b = calloc(1, sizeof *b);
	if (b == NULL)
		return (NULL);
	b->db = db;
	b->loop = l;
	b->wake = wake;
	TAILQ_INIT(&b->waiters);
	TAILQ_INSERT_TAIL(&l->bindings, b, entry);
	return (b);
}

int
pgb_loop_attach(pgb_loop *l, pgb_db *db)
{
	if (db == NULL || pgbi_loop_bind(l, db, NULL) == NULL) {
		snprintf(l->error, sizeof l->error, "out of memory");
		return (-1);
	}
	return (0);
}

/* A non-blocking connection to the daemon; -1 with l->error set. */
static int
loop_connect(pgb_loop *l, struct bufferevent **out)
{
	struct sockaddr_un	 sun;
	int			 fd, saved;

	*out = NULL;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(l->path) >= sizeof sun.sun_path) {
		snprintf(l->error, sizeof l->error, "pgbeacond not reachable"
		    " at %s: socket path too long", l->path);
		return (-1);
	}
	memcpy(sun.sun_path, l->path, strlen(l->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sun, sizeof sun) ==
	    -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		snprintf(l->error, sizeof l->error, "pgbeacond not reachable"
		    " at %s: %s", l->path, strerror(saved));
		return (-1);
	}
	*out = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (*out == NULL) {
		close(fd);
		snprintf(l->error, sizeof l->error, "out of memory");
		return (-1);
	}
	return (0);
}

/* --- RESOLVE requests ------------------------------------------------------ */

struct pgbi_areq *
pgbi_loop_request(pgb_loop *l, const char *line, pgbi_areq_fn fn,
    void *owner)
{
	struct pgbi_areq	*r;
	struct timeval		 tv;

	r = calloc(1, sizeof *r);
	if (r == NULL)
		return (NULL);
	r->fn = fn;
	r->owner = owner;
	if (l->bev == NULL) {
		if (loop_connect(l, &l->bev) == -1) {
			pgbi_strlcpy(l->fail_msg, l->error, sizeof l->fail_msg);
			TAILQ_INSERT_TAIL(&l->failed, r, entry);
			event_active(l->fail_ev, 0, 0);
			return (r);
		}
		bufferevent_setcb(l->bev, req_read_cb, NULL, req_event_cb, l);
		bufferevent_enable(l->bev, EV_READ | EV_WRITE);
	}
	if (evbuffer_add_printf(bufferevent_get_output(l->bev), "%s\n",
	    line) == -1) {
		free(r);
		return (NULL);
	}
	TAILQ_INSERT_TAIL(&l->pending, r, entry);
	tv.tv_sec = LOOP_TIMEOUT_MS / 1000;
	tv.tv_usec = (LOOP_TIMEOUT_MS % 1000) * 1000;
	bufferevent_set_timeouts(l->bev, &tv, NULL);
	return (r);
}

/* Calls r's callback (if not canceled) with a line or an error. */
static void
loop_call(pgb_loop *l, struct pgbi_areq *r, const char *line,
    pgb_errcode code, const char *err)
{
	pgb_resolved	 res;
	pgb_errcode	 ecode;
	char		 text[512];

	l->depth++;
	if (r->ucb != NULL) {
		if (line == NULL)
			r->ucb(l, NULL, code, err, r->uarg);
		else if (pgbi_proto_parse_resolve(line, &res, text,
		    sizeof text) == 0)
			r->ucb(l, &res, PGB_OK, "", r->uarg);
		else if (pgbi_proto_parse_err(line, &ecode, text,
		    sizeof text) == 0)
			r->ucb(l, NULL, ecode, text, r->uarg);
		else
			r->ucb(l, NULL, PGB_ERR_PROTOCOL, text, r->uarg);
	} else if (r->fn != NULL)
		r->fn(r->owner, line, code, err);
	l->depth--;
}

/* Fails every pending and unsent request; closes the connection. */
static void
loop_fail_all(pgb_loop *l, pgb_errcode code, const char *err)
{
	struct areq_list	 list;
	struct pgbi_areq	*r;
	char			 msg[512];

	pgbi_strlcpy(msg, err, sizeof msg);
	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &l->pending, entry);
	TAILQ_CONCAT(&list, &l->failed, entry);
	if (l->bev != NULL) {
		bufferevent_free(l->bev);
		l->bev = NULL;
	}
	while ((r = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, r, entry);
		loop_call(l, r, NULL, code, msg);
		free(r);
	}
}

static void
fail_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_loop		*l = arg;
	struct areq_list	 list;
	struct pgbi_areq	*r;
	char			 msg[256];

	(void)fd;
	(void)what;
	pgbi_strlcpy(msg, l->fail_msg, sizeof msg);
	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &l->failed, entry);
	while ((r = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, r, entry);
		loop_call(l, r, NULL, PGB_ERR_UNREACHABLE, msg);
		free(r);
	}
	if (l->free_pending)
		loop_free_now(l);
}

static void
req_read_cb(struct bufferevent *bev, void *arg)
{
	pgb_loop		*l = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct pgbi_areq	*r;
	char			*line;
	size_t			 n;

	while (l->bev == bev &&
	    (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		r = TAILQ_FIRST(&l->pending);
		if (r == NULL) {
			free(line);
			loop_fail_all(l, PGB_ERR_PROTOCOL, "pgbeacond sent a"
			    " line nobody asked for");
			break;
		}
		TAILQ_REMOVE(&l->pending, r, entry);
		loop_call(l, r, line, PGB_OK, NULL);
		free(line);
		free(r);
		if (l->free_pending)
			break;
	}
	if (l->free_pending) {
		loop_free_now(l);
		return;
	}
	if (l->bev == bev && evbuffer_get_length(in) > LOOP_MAX_LINE)
		loop_fail_all(l, PGB_ERR_PROTOCOL, "pgbeacond reply too long");
	else if (l->bev == bev && TAILQ_EMPTY(&l->pending))
		bufferevent_set_timeouts(bev, NULL, NULL);
	if (l->free_pending)
		loop_free_now(l);
}

static void
req_event_cb(struct bufferevent *bev, short what, void *arg)
{
	pgb_loop	*l = arg;
	char		 msg[512];

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(msg, sizeof msg, "no reply from pgbeacond at %s in"
		    " %d ms", l->path, LOOP_TIMEOUT_MS);
		loop_fail_all(l, PGB_ERR_TIMEOUT, msg);
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		snprintf(msg, sizeof msg, "pgbeacond at %s closed the"
		    " connection", l->path);
		loop_fail_all(l, PGB_ERR_UNREACHABLE, msg);
	}
	if (l->free_pending)
		loop_free_now(l);
}

int
pgb_loop_resolve(pgb_loop *l, const char *cluster, const char *role,
    const char *options, pgb_resolve_cb cb, void *arg)
{
	struct pgbi_areq	*r;
	char			 line[PGBC_LINE_MAX + 1];

	if (cb == NULL || pgbi_proto_format_resolve(line, sizeof line,
	    cluster, role, options) != 0) {
		snprintf(l->error, sizeof l->error, "bad cluster, role or"
		    " options for RESOLVE");
		return (-1);
	}
	r = pgbi_loop_request(l, line, NULL, NULL);
	if (r == NULL) {
		snprintf(l->error, sizeof l->error, "out of memory");
		return (-1);
	}
	r->ucb = cb;
	r->uarg = arg;
	return (0);
}

/* --- WATCH subscription ---------------------------------------------------- */

/*
 * Points b's db at host:port, as the daemon answered (the answer reusable
 * when reusable is set).  When the db moved, the db hands the new host's
 * slots to the waiters.  -1 when pgb_db_change_host refused.
 */
static int
binding_set_host(struct pgbi_binding *b, const char *host, int port,
    const char *role, int reusable)
{
	/* The db hands the new host's slots to the waiters itself. */
	if (pgbi_db_move(b->db, host, port, role) == -1)
		return (-1);
	b->answer_valid = reusable;
	b->answer_ms = pgbi_now_ms();
	return (0);
}

static void
watch_start(pgb_loop *l)
{
	struct timeval	tv;

	if (loop_connect(l, &l->wbev) == -1) {
		tv.tv_sec = l->retry_ms / 1000;
		tv.tv_usec = (l->retry_ms % 1000) * 1000;
		evtimer_add(l->retry_ev, &tv);
		l->retry_ms = l->retry_ms * 2 > WATCH_RETRY_MAX_MS ?
		    WATCH_RETRY_MAX_MS : l->retry_ms * 2;
		return;
	}
	bufferevent_setcb(l->wbev, watch_read_cb, NULL, watch_event_cb, l);
	bufferevent_enable(l->wbev, EV_READ | EV_WRITE);
	evbuffer_add_printf(bufferevent_get_output(l->wbev), "WATCH\n");
}

static void
watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watch_start(arg);
}

/* Every binding of cluster (NULL: all) must ask the daemon again. */
static void
watch_invalidate(pgb_loop *l, const char *cluster)
{
	struct pgbi_binding	*b;
	const char		*c;

	TAILQ_FOREACH(b, &l->bindings, entry) {
		c = pgb_db_cluster(b->db);
		if (cluster == NULL || (c != NULL && strcmp(c, cluster) == 0)) {
			b->answer_valid = 0;
			b->events++;
			if (b->wake != NULL)
				b->wake(b);
		}
	}
}

static void
watch_user_event(pgb_loop *l, const pgb_event *ev)
{
	if (l->ecb == NULL)
		return;
	l->depth++;
	l->ecb(l, ev, l->earg);
	l->depth--;
}

static void
watch_broken(pgb_loop *l, const char *why)
{
	struct timeval	tv;

	snprintf(l->error, sizeof l->error, "WATCH subscription to %s"
	    " broken: %s", l->path, why);
	if (l->wbev != NULL) {
		bufferevent_free(l->wbev);
		l->wbev = NULL;
	}
	l->watch_ok = 0;
	l->was_broken = 1;
	watch_invalidate(l, NULL);
	tv.tv_sec = l->retry_ms / 1000;
	tv.tv_usec = (l->retry_ms % 1000) * 1000;
	evtimer_add(l->retry_ev, &tv);
	l->retry_ms = l->retry_ms * 2 > WATCH_RETRY_MAX_MS ?
	    WATCH_RETRY_MAX_MS : l->retry_ms * 2;
}

static void
watch_apply(pgb_loop *l, const pgb_event *ev, const char *line)
{
	struct pgbi_binding	*b;
	const char		*c, *list;
	size_t			 len;
	int			 reps;

	reps = pgbi_proto_event_replicas(line, &list, &len) == 1;
	TAILQ_FOREACH(b, &l->bindings, entry) {
		c = pgb_db_cluster(b->db);
		if (c == NULL || strcmp(c, ev->cluster) != 0)
			continue;
		/* A replica the daemon no longer names is drained at once. */
		if (reps)
			pgbi_db_replicas(b->db, list, len);
		if (!pgbi_db_is_master(b->db) || !ev->has_master ||
		    binding_set_host(b, ev->master_host, ev->master_port,
		    "master", 1) == -1)
			b->answer_valid = 0;
		/* Sessions waiting for a host to hold the role ask again. */
		b->events++;
		if (b->wake != NULL)
			b->wake(b);
	}
}

static void
watch_read_cb(struct bufferevent *bev, void *arg)
{
	pgb_loop	*l = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	pgb_event	 ev;
	char		*line, why[256];
	size_t		 n;

	while (l->wbev == bev && !l->free_pending &&
	    (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		if (!l->watch_ok) {
			if (strcmp(line, "OK watching") != 0) {
				free(line);
				watch_broken(l, "WATCH refused");
				break;
			}
			l->watch_ok = 1;
			l->retry_ms = WATCH_RETRY_MIN_MS;
			watch_invalidate(l, NULL);
			if (l->was_broken) {
				l->was_broken = 0;
				memset(&ev, 0, sizeof ev);
				ev.resync = 1;
				watch_user_event(l, &ev);
			}
		} else if (pgbi_proto_parse_event(line, &ev, why,
		    sizeof why) == 0) {
			watch_apply(l, &ev, line);
			watch_user_event(l, &ev);
		}
		free(line);
	}
	if (l->free_pending) {
		loop_free_now(l);
		return;
	}
	if (l->wbev == bev && evbuffer_get_length(in) > LOOP_MAX_LINE)
		watch_broken(l, "line too long");
}

static void
watch_event_cb(struct bufferevent *bev, short what, void *arg)
{
	pgb_loop	*l = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		watch_broken(l, (what & BEV_EVENT_EOF) ? "closed by pgbeacond" :
		    "socket error");
}
