/*
 * http.c - the HTTP listener: pg-status's endpoints, pgbeacon's /v1 API,
 * Prometheus metrics and per-host health checks, all on one evhttp.
 *
 * Requests are answered at once from the monitor's memory.  This file is
 * the evhttp glue; the pure part (routing, parameters, rendering) is in
 * http_api.c.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "http.h"
#include "log.h"
#include "lsn.h"
#include "monitor.h"
#include "protocol.h"
#include "proxy.h"
#include "server.h"
#include "unixsock.h"

/* Buckets of the table of connections (a power of two). */
#define HTTP_CONN_BUCKETS	1024

/*
 * One accepted connection.  evhttp owns the connection; this follows it
 * from its bufferevent's creation (http_bev_cb()) to its close callback,
 * to count clients and to hold its request deadline.  Owned by the http:
 * in the pending list until adopted, then in a bucket of the table, then
 * in the dead list until the reaper frees it.
 */
struct http_conn {
	LIST_ENTRY(http_conn)	 entry;
	struct http		*h;		/* back pointer, not owned */
	struct bufferevent	*bev;		/* evhttp's; borrowed */
	struct evhttp_connection *evcon;	/* borrowed; NULL until adopted */
	struct event		*deadline;	/* owned; the request deadline */
};
LIST_HEAD(http_conn_list, http_conn);

/* The listener.  Owned by main. */
struct http {
	struct event_base	*base;		/* borrowed */
	struct monitor		*mon;		/* borrowed */
	struct server		*srv;		/* borrowed, may be NULL */
	struct evhttp		*evh;		/* owned; owns its connections */
	struct evconnlistener	*listener;	/* evhttp's; borrowed */
	char			*unix_path;	/* owned; NULL for TCP */
	struct evbuffer		*body;		/* owned; scratch for one reply */
	struct http_counters	 counters;
	struct event		*adopt;		/* owned; adopts and reaps conns */
	struct event		*accept_retry;	/* owned; after an accept error */
	struct server_backoff	 backoff;	/* of accept errors */
	struct http_conn_list	 pending;	/* accepted, not adopted yet */
	struct http_conn_list	 dead;		/* closed, to be freed */
	struct http_conn_list	 conns[HTTP_CONN_BUCKETS]; /* by evcon */
	size_t			 nconns;	/* connections open */
	size_t			 max_clients;	/* the listener pauses here */
	bool			 full;		/* paused because of that */
	bool			 backing_off;	/* paused after an accept error */
	int			 request_timeout_ms;
	struct proxy		*proxy;		/* borrowed, may be NULL */
};

static struct http_conn *http_conn_find(struct http *,
		    const struct evhttp_connection *);
static void	http_conn_arm(struct http_conn *);

/* --- evhttp glue ---------------------------------------------------------- */

void
http_set_proxy(struct http *h, struct proxy *px)
{
	h->proxy = px;
}

/* Sends h->body with code, counting the request. */
static void
http_send(struct http *h, struct evhttp_request *req, enum http_endpoint ep,
    int code, const char *ctype)
{
	h->counters.requests[ep][http_code_index(code)]++;
	if (ctype != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", ctype);
	evhttp_send_reply(req, code, NULL, h->body);
	/* evhttp_send_reply() moved the data out; make sure. */
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
}

/* A 4xx/5xx with a short reason, as text or {"error_text": ...}. */
static void
http_send_error(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, int code, bool json, const char *why)
{
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	if (json) {
		if (HTTP_ADD_LIT(h->body, "{\"error_text\": ") == -1 ||
		    protocol_json_string(h->body, why) == -1 ||
		    HTTP_ADD_LIT(h->body, "}") == -1)
			goto oom;
		http_send(h, req, ep, code, "application/json");
	} else {
		if (evbuffer_add_printf(h->body, "%s\n", why) < 0)
			goto oom;
		http_send(h, req, ep, code, NULL);
	}
	return;
oom:
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	http_send(h, req, ep, 500, NULL);
}

static void
http_handle_role(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p, bool json)
{
	const struct topo_host	*host;
	char			 why[256];

	host = topology_resolve(c, &p->query, monitor_limits(h->mon), why,
	    sizeof(why));
	if (http_format_host(h->body, host, json) == -1) {
		http_send_error(h, req, ep, 500, json, "out of memory");
		return;
	}
	http_send(h, req, ep, host != NULL ? 200 : 404,
	    json ? "application/json" : NULL);
}

static void
http_handle_v1_resolve(struct http *h, struct evhttp_request *req,
    struct topo_cluster *c, const struct http_params *p)
{
	const struct topo_host	*host;
	char			 why[256];
	int			 rc;

	host = topology_resolve(c, &p->query, monitor_limits(h->mon), why,
	    sizeof(why));
	if (host != NULL)
		rc = http_format_resolve(h->body, c, host);
	else if ((rc = HTTP_ADD_LIT(h->body, "{\"error\": \"NOHOST\", \"why\": ")) == 0 &&
	    (rc = protocol_json_string(h->body, why)) == 0)
		rc = HTTP_ADD_LIT(h->body, "}");
	if (rc == -1) {
		http_send_error(h, req, HTTP_EP_V1_RESOLVE, 500, true,
		    "out of memory");
		return;
	}
	http_send(h, req, HTTP_EP_V1_RESOLVE, host != NULL ? 200 : 404,
	    "application/json");
}

static void
http_handle_v1_status(struct http *h, struct evhttp_request *req,
    struct topo_cluster *one)
{
	struct topo_cluster *const *all;
	struct evbuffer		*tmp;
	struct proto_listener_stats *ls;
	size_t			 n, len, nls;
	int			 rc = -1, fmt;

	if (one != NULL) {
		all = &one;
		n = 1;
	} else
		all = monitor_clusters(h->mon, &n);
	/* STATUS's "OK <json>\n" without "OK " and "\n": one renderer. */
	if ((tmp = evbuffer_new()) == NULL)
		goto done;
	ls = proxy_get_stats(h->proxy, one != NULL ? one->name : NULL, &nls);
	fmt = protocol_format_status_listeners(tmp, all, n, monitor_now_ms(),
	    ls, nls);
	free(ls);
	if (fmt != 0 ||
	    (len = evbuffer_get_length(tmp)) < 4 ||
	    evbuffer_drain(tmp, 3) != 0 ||
	    evbuffer_remove_buffer(tmp, h->body, len - 4) != (int)(len - 4))
		goto done;
	rc = 0;
done:
	if (tmp != NULL)
		evbuffer_free(tmp);
	if (rc != 0) {
		http_send_error(h, req, HTTP_EP_V1_STATUS, 500, true,
		    "out of memory");
		return;
	}
	http_send(h, req, HTTP_EP_V1_STATUS, 200, "application/json");
}

static void
http_handle_metrics(struct http *h, struct evhttp_request *req)
{
	struct http_metrics_input	 in;
	struct proto_listener_stats	*listeners;
	uint64_t			*changes = NULL;
	size_t				 i;
	int				 rc;

	memset(&in, 0, sizeof(in));
	in.clusters = monitor_clusters(h->mon, &in.nclusters);
	if (in.nclusters > 0 &&
	    (changes = calloc(in.nclusters, sizeof(*changes))) != NULL) {
		for (i = 0; i < in.nclusters; i++)
			changes[i] = monitor_role_changes(h->mon,
			    in.clusters[i]);
		in.role_changes = changes;
	}
	in.http = &h->counters;	/* this request is not in it yet */
	in.http_clients = h->nconns;
	if (h->srv != NULL) {
		in.socket = server_get_counters(h->srv);
		in.socket_clients = server_nclients(h->srv);
	}
	in.listeners = listeners = proxy_get_stats(h->proxy, NULL,
	    &in.nlisteners);
	rc = http_format_metrics(h->body, &in);
	free(listeners);
	if (rc == -1) {
		free(changes);
		http_send_error(h, req, HTTP_EP_METRICS, 500, false,
		    "out of memory");
		return;
	}
	free(changes);
	http_send(h, req, HTTP_EP_METRICS, 200,
	    "text/plain; version=0.0.4; charset=utf-8");
}

static void
http_handle_health(struct http *h, struct evhttp_request *req,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p)
{
	char	why[256];
	int	code;

	code = http_health(c, p, ep == HTTP_EP_HEALTH_REPLICA, why,
	    sizeof(why));
	if (evbuffer_add_printf(h->body, "%s\n", why) < 0) {
		http_send_error(h, req, ep, 500, false, "out of memory");
		return;
	}
	http_send(h, req, ep, code, NULL);
}

static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http		*h = arg;
	struct http_conn	*conn;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*query;
	struct evkeyvalq	 kv;
	struct http_params	 p;
	struct topo_cluster	*c = NULL, *const *all;
	enum http_endpoint	 ep;
	enum evhttp_cmd_type	 cmd;
	size_t			 n;
	char			 why[256];
	bool			 json;

	TAILQ_INIT(&kv);
	/* A whole request came: the next one has a deadline of its own. */
	if ((conn = http_conn_find(h, evhttp_request_get_connection(req))) !=
	    NULL)
		http_conn_arm(conn);
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	ep = http_endpoint_parse(uri != NULL ? evhttp_uri_get_path(uri) : NULL);
	json = ep == HTTP_EP_V1_RESOLVE || ep == HTTP_EP_V1_STATUS ||
	    ep == HTTP_EP_REPLICAS_INFO ||
	    http_wants_json(evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Accept"));
	if (ep == HTTP_EP_UNKNOWN) {
		http_send_error(h, req, ep, 404, json, "unknown path");
		return;
	}
	cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET, HEAD");
		http_send_error(h, req, ep, 405, json, "only GET and HEAD");
		return;
	}
	query = evhttp_uri_get_query(uri);
	/* pg-status answers a bad request with {"error_text": ...} always. */
	if (query != NULL && (evhttp_parse_query_str(query, &kv) != 0 ||
	    http_query_has_nul(query))) {
		http_send_error(h, req, ep, 400, json || http_is_pg_status(ep),
		    "malformed query string");
		goto done;
	}
	if (http_params_parse(ep, &kv, &p, why, sizeof(why)) != 0) {
		http_send_error(h, req, ep, 400, json || http_is_pg_status(ep),
		    why);
		goto done;
	}
	if (ep != HTTP_EP_METRICS &&
	    (ep != HTTP_EP_V1_STATUS || p.cluster != NULL)) {
		all = monitor_clusters(h->mon, &n);
		if ((c = http_pick_cluster(all, n, p.cluster)) == NULL) {
			snprintf(why, sizeof(why), "no cluster '%.64s'",
			    p.cluster != NULL ? p.cluster : "");
			http_send_error(h, req, ep, 404, json, why);
			goto done;
		}
	}

	switch (ep) {
	case HTTP_EP_MASTER:
	case HTTP_EP_REPLICA:
	case HTTP_EP_SYNC_BY_TIME:
	case HTTP_EP_SYNC_BY_BYTES:
	case HTTP_EP_SYNC_BY_TIME_OR_BYTES:
	case HTTP_EP_SYNC_BY_TIME_AND_BYTES:
		http_handle_role(h, req, ep, c, &p, json);
		break;
	case HTTP_EP_REPLICAS_INFO:
		if (http_format_replicas_info(h->body, c) == -1)
			http_send_error(h, req, ep, 500, true, "out of memory");
		else
			http_send(h, req, ep, 200, "application/json");
		break;
	case HTTP_EP_V1_RESOLVE:
		http_handle_v1_resolve(h, req, c, &p);
		break;
	case HTTP_EP_V1_STATUS:
		http_handle_v1_status(h, req, c);
		break;
	case HTTP_EP_METRICS:
		http_handle_metrics(h, req);
		break;
	case HTTP_EP_HEALTH_PRIMARY:
	case HTTP_EP_HEALTH_REPLICA:
		http_handle_health(h, req, ep, c, &p);
		break;
	default:
		http_send_error(h, req, ep, 404, json, "unknown path");
		break;
	}
done:
	evhttp_clear_headers(&kv);
}

/* --- connections: count, cap, deadline ------------------------------------ */

static struct http_conn_list *
http_bucket(struct http *h, const struct evhttp_connection *evcon)
{
	uintptr_t v = (uintptr_t)evcon;

	v ^= v >> 12;
	return &h->conns[(v >> 4) & (HTTP_CONN_BUCKETS - 1)];
}

static struct http_conn *
http_conn_find(struct http *h, const struct evhttp_connection *evcon)
{
	struct http_conn *c;

	LIST_FOREACH(c, http_bucket(h, evcon), entry)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

/* Pauses the listener at max_clients connections, resumes it below. */
static void
http_check_full(struct http *h)
{
	bool full = h->nconns >= h->max_clients;

	if (full == h->full || h->listener == NULL)
		return;
	h->full = full;
	if (full) {
		log_warn("%zu HTTP clients: not accepting more until one "
		    "leaves", h->nconns);
		evconnlistener_disable(h->listener);
	} else if (!h->backing_off)
		evconnlistener_enable(h->listener);
}

/* The request deadline passed: evhttp's timeout only measures silence,
 * so a client dripping one byte at a time would never reach it. */
static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	char *addr = NULL;
	ev_uint16_t port = 0;

	(void)fd;
	(void)what;
	evhttp_connection_get_peer(c->evcon, &addr, &port);
	log_info("HTTP client %s:%u: no complete request in %d ms, closing",
	    addr != NULL ? addr : "?", (unsigned)port,
	    c->h->request_timeout_ms);
	evhttp_connection_free(c->evcon);	/* calls http_close_cb() */
}

/* evhttp closes a connection: stop counting it; the reaper frees it. */
static void
http_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct http *h = c->h;

	(void)evcon;
	LIST_REMOVE(c, entry);
	event_del(c->deadline);
	LIST_INSERT_HEAD(&h->dead, c, entry);
	h->nconns--;
	event_active(h->adopt, EV_TIMEOUT, 1);
}

static void
http_conn_arm(struct http_conn *c)
{
	struct timeval tv;

	tv.tv_sec = c->h->request_timeout_ms / 1000;
	tv.tv_usec = (c->h->request_timeout_ms % 1000) * 1000;
	event_add(c->deadline, &tv);
}

/*
 * Adopts the connections accepted since the last run and frees the dead
 * ones.  evhttp gives no hook between creating a connection and reading
 * from it, so http_bev_cb() only records the bufferevent; this runs at
 * SERVER_PRIO_URGENT, before any event of the new connections, and finds
 * each connection as the argument evhttp set on its bufferevent.
 */
static void
http_adopt_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;
	void *cbarg;

	(void)fd;
	(void)what;
	while ((c = LIST_FIRST(&h->pending)) != NULL) {
		LIST_REMOVE(c, entry);
		cbarg = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &cbarg);
		c->evcon = cbarg;
		LIST_INSERT_HEAD(http_bucket(h, c->evcon), c, entry);
		evhttp_connection_set_closecb(c->evcon, http_close_cb, c);
		http_conn_arm(c);
	}
	while ((c = LIST_FIRST(&h->dead)) != NULL) {
		LIST_REMOVE(c, entry);
		event_free(c->deadline);
		free(c);
	}
	http_check_full(h);
}

/*
 * evhttp accepted a connection and asks for its bufferevent.  Counts the
 * connection and pauses the listener at the cap: evconnlistener stops
 * its accept loop as soon as its callback disabled it.
 */
static struct bufferevent *
http_bev_cb(struct event_base *base, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;	/* evhttp makes its own; not counted */
	c->h = h;
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->deadline = evtimer_new(base, http_deadline_cb, c);
	if (c->bev == NULL || c->deadline == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		if (c->deadline != NULL)
			event_free(c->deadline);
		free(c);
		return NULL;
	}
	/* See SERVER_PRIO_HTTP; fails only without priorities. */
	(void)bufferevent_priority_set(c->bev, SERVER_PRIO_HTTP);
	LIST_INSERT_HEAD(&h->pending, c, entry);
	h->nconns++;
	server_backoff_ok(&h->backoff);
	event_active(h->adopt, EV_TIMEOUT, 1);
	if (h->nconns >= h->max_clients)
		http_check_full(h);
	return c->bev;
}

/*
 * The accept-retry timer is always pending: after an accept error it
 * fires after the back-off; otherwise after HTTP_IDLE_RETRY_S, doing
 * nothing but re-arming.  That keeps it visible to
 * event_base_foreach_event(), which is how http_accept_error_cb() finds
 * its struct http (evhttp passes its own argument to the callback).
 */
#define HTTP_IDLE_RETRY_S	3600

static void
http_retry_arm(struct http *h, int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->accept_retry, &tv);
}

static void
http_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	(void)fd;
	(void)what;
	if (h->backing_off && !h->full)
		evconnlistener_enable(h->listener);
	h->backing_off = false;
	http_retry_arm(h, HTTP_IDLE_RETRY_S * 1000);
}

/* What http_find_cb() looks for, and finds. */
struct http_find {
	const struct evhttp	*evh;
	struct http		*h;
};

static int
http_find_cb(const struct event_base *base, const struct event *ev,
    void *arg)
{
	struct http_find *f = arg;
	struct http *h;

	(void)base;
	if (event_get_callback(ev) != http_accept_retry_cb)
		return 0;
	h = event_get_callback_arg(ev);
	if (h->evh != f->evh)
		return 0;
	f->h = h;
	return 1;
}

/* Out of descriptors: accepting again at once would spin.  Pause, longer
 * each time, and log at most every 10 s.  arg is evhttp's. */
static void
http_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct http_find f = { arg, NULL };
	unsigned suppressed;
	bool log;
	int ms, err = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(l);
	(void)event_base_foreach_event(evconnlistener_get_base(l),
	    http_find_cb, &f);
	if (f.h == NULL) {	/* cannot happen; never spin */
		log_warn("HTTP accept: %s",
		    evutil_socket_error_to_string(err));
		return;
	}
	ms = server_backoff_fail(&f.h->backoff, monitor_now_ms(), &log,
	    &suppressed);
	if (log)
		log_warn("HTTP accept: %s; pausing for %d ms (%u more such "
		    "errors not logged)", evutil_socket_error_to_string(err),
		    ms, suppressed);
	f.h->backing_off = true;
	http_retry_arm(f.h, ms);
}

/* Watches the listener of bs: accept errors, the client cap. */
static void
http_watch_listener(struct http *h, struct evhttp_bound_socket *bs)
{
	h->listener = evhttp_bound_socket_get_listener(bs);
	evconnlistener_set_error_cb(h->listener, http_accept_error_cb);
}

/* True when fd is bound to a loopback address. */
static bool
http_is_loopback(evutil_socket_t fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

/* Binds "HOST:PORT" or "[V6]:PORT". */
static int
http_bind_tcp(struct http *h, const char *listen_addr, char *err, size_t errlen)
{
	struct evhttp_bound_socket	*bs;
	struct http_params		 p;
	evutil_socket_t			 fd;

	if (!http_parse_hostport(listen_addr, &p)) {
		snprintf(err, errlen, "http_listen %s: not HOST:PORT", listen_addr);
		return -1;
	}
	bs = evhttp_bind_socket_with_handle(h->evh, p.host_name,
	    (ev_uint16_t)p.host_port);
	if (bs == NULL) {
		snprintf(err, errlen, "cannot listen for HTTP on %s: %s", listen_addr,
		    errno != 0 ? strerror(errno) : "bind failed");
		return -1;
	}
	fd = evhttp_bound_socket_get_fd(bs);
	/* evhttp listened with a backlog of 128: a burst of connects would
	 * be refused.  Listening again only changes the backlog. */
	if (listen(fd, SOMAXCONN) != 0)
		log_warn("HTTP listener %s: cannot raise its backlog: %s",
		    listen_addr, strerror(errno));
	http_watch_listener(h, bs);
	if (!http_is_loopback(fd))
		log_warn("HTTP listener %s is not on loopback: anyone who can "
		    "reach it can read the cluster's topology", listen_addr);
	return 0;
}

/* Binds an absolute Unix socket path, replacing a dead one. */
static int
http_bind_unix(struct http *h, const char *path, mode_t mode, char *err,
    size_t errlen)
{
	struct evhttp_bound_socket *bs;
	int fd;

	if ((fd = unixsock_listen(path, mode, true, err, errlen)) < 0)
		return -1;
	if ((h->unix_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	if ((bs = evhttp_accept_socket_with_handle(h->evh, fd)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s", path);
		close(fd);
		return -1;	/* http_free() unlinks unix_path */
	}
	http_watch_listener(h, bs);	/* listening with SOMAXCONN */
	return 0;
}

struct http *
http_new(struct event_base *base, const char *listen, mode_t mode,
    struct monitor *mon, struct server *srv, char *err, size_t errlen)
{
	struct http	*h;
	size_t		 i;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->mon = mon;
	h->srv = srv;
	h->max_clients = HTTP_DEFAULT_MAX_CLIENTS;
	h->request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS;
	LIST_INIT(&h->pending);
	LIST_INIT(&h->dead);
	for (i = 0; i < HTTP_CONN_BUCKETS; i++)
		LIST_INIT(&h->conns[i]);
	if ((h->body = evbuffer_new()) == NULL ||
	    (h->evh = evhttp_new(base)) == NULL ||
	    (h->adopt = event_new(base, -1, 0, http_adopt_cb, h)) == NULL ||
	    (h->accept_retry = evtimer_new(base, http_accept_retry_cb,
	    h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Fails only on a base without priorities (the unit tests'). */
	(void)event_priority_set(h->adopt, SERVER_PRIO_URGENT);
	http_retry_arm(h, HTTP_IDLE_RETRY_S * 1000);
	evhttp_set_bevcb(h->evh, http_bev_cb, h);
	/* Every method reaches http_request_cb(), which answers 405 to all
	 * but GET and HEAD (evhttp itself would say 501). */
	evhttp_set_allowed_methods(h->evh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->evh, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evh, 0);
	evhttp_set_timeout(h->evh, HTTP_TIMEOUT_S);
	evhttp_set_default_content_type(h->evh, "text/plain; charset=utf-8");
	evhttp_set_gencb(h->evh, http_request_cb, h);
	errno = 0;
	if (listen[0] == '/') {
		if (http_bind_unix(h, listen, mode, err, errlen) != 0)
			goto fail;
	} else if (http_bind_tcp(h, listen, err, errlen) != 0)
		goto fail;
	log_info("HTTP API listening on %s", listen);
	return h;
fail:
	http_free(h);
	return NULL;
}

/* Frees every http_conn of list. */
static void
http_conn_free_list(struct http_conn_list *list)
{
	struct http_conn *c;

	while ((c = LIST_FIRST(list)) != NULL) {
		LIST_REMOVE(c, entry);
		event_free(c->deadline);
		free(c);
	}
}

void
http_free(struct http *h)
{
	size_t i;

	if (h == NULL)
		return;
	if (h->evh != NULL)
		evhttp_free(h->evh);	/* closes every connection */
	http_conn_free_list(&h->pending);
	http_conn_free_list(&h->dead);
	for (i = 0; i < HTTP_CONN_BUCKETS; i++)
		http_conn_free_list(&h->conns[i]);
	if (h->adopt != NULL)
		event_free(h->adopt);
	if (h->accept_retry != NULL)
		event_free(h->accept_retry);
	if (h->unix_path != NULL) {
		unlink(h->unix_path);
		free(h->unix_path);
	}
	if (h->body != NULL)
		evbuffer_free(h->body);
	free(h);
}

void
http_set_limits(struct http *h, size_t max_clients, int request_timeout_ms)
{
	h->max_clients = max_clients > 0 ? max_clients : 1;
	if (request_timeout_ms > 0)
		h->request_timeout_ms = request_timeout_ms;
	http_check_full(h);
}

size_t
http_nclients(const struct http *h)
{
	return h->nconns;
}
