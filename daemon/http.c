/*
 * http.c - the HTTP listener: pg-status's endpoints, pgbeacon's /v1 API,
 * Prometheus metrics and per-host health checks.
 *
 * Requests are answered at once from the monitor's memory.  This file is
 * the connection handling; the pure part (request heads, routing,
 * parameters, rendering) is in http_api.c.
 *
 * Why not evhttp: libevent 2.1's evhttp frees a connection as soon as
 * it reads EOF (evhttp_error_cb() -> evhttp_connection_fail_()), even
 * when the client only shut down its sending side and still waits for
 * the answers to the requests it pipelined before.  The requests still
 * unparsed in its input buffer are dropped without a reply (`printf
 * 'GET /master ...' | nc -N` got some answers or none), and evhttp gives
 * no hook to defer that EOF.  So this is a small HTTP/1.1 server of its
 * own on evconnlistener: keep-alive, pipelining, HTTP/1.0, and on a
 * half-close every complete request received before EOF is answered, in
 * order, and the connection closes once the last answer is written.
 * libevent still decodes query strings (evhttp_parse_query_str()).
 *
 * A connection is two plain events on its socket, not a bufferevent:
 * requests are answered and written in the callback that read them, so a
 * request costs one recv() and one writev() (bufferevent's read adds a
 * FIONREAD ioctl, and its write waits for EPOLLOUT, armed and disarmed
 * with two epoll_ctl() calls, and one more loop iteration).  The write
 * event is added only while an answer waits for room in the socket.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "http.h"
#include "log.h"
#include "monitor.h"
#include "protocol.h"
#include "proxy.h"
#include "server.h"
#include "unixsock.h"

/* Stop reading a client's requests while this much output waits... */
#define HTTP_OUT_HIGH		(256 * 1024)
/* ...and read again once it is down to this. */
#define HTTP_OUT_LOW		(64 * 1024)
/* Bytes read at most per read callback (as bufferevent's 4 KiB), which
 * bounds the work of one callback for the event loop's slices. */
#define HTTP_READ_MAX		4096

/*
 * One accepted connection.  Owned by the http: in its list of
 * connections, then in the dead list until the reaper frees it.
 */
struct http_conn {
	LIST_ENTRY(http_conn)	 entry;
	struct http		*h;		/* back pointer, not owned */
	evutil_socket_t		 fd;		/* owned */
	struct event		*rev;		/* owned; readable, or silence */
	struct event		*wev;		/* owned; room to write, or
						 * silence; added while output
						 * waits */
	struct event		*deadline;	/* owned; the request deadline */
	struct evbuffer		*in;		/* owned; requests not parsed */
	struct evbuffer		*out;		/* owned; answers not written */
	int64_t			 head_since_ms;	/* the deadline runs from here:
						 * accept or the last request */
	char			 peer[64];	/* "ADDR:PORT", for logs */
	bool			 reading;	/* rev is added */
	bool			 writing;	/* wev is added */
	bool			 throttled;	/* reading paused: output full */
	bool			 eof;		/* the peer shut down its side */
	bool			 closing;	/* close once the output is flushed */
	bool			 dead;		/* to be freed by the reaper */
};
LIST_HEAD(http_conn_list, http_conn);

/* The listener.  Owned by main. */
struct http {
	struct event_base	*base;		/* borrowed */
	struct monitor		*mon;		/* borrowed */
	struct server		*srv;		/* borrowed, may be NULL */
	struct evconnlistener	*listener;	/* owned, owns the socket */
	char			*unix_path;	/* owned; NULL for TCP */
	struct evbuffer		*body;		/* owned; scratch for one reply */
	struct http_counters	 counters;
	struct event		*reaper;	/* owned; frees dead conns */
	struct event		*accept_retry;	/* owned; after an accept error */
	struct server_backoff	 backoff;	/* of accept errors */
	struct http_conn_list	 conns;		/* open */
	struct http_conn_list	 dead;		/* closed, to be freed */
	size_t			 nconns;	/* connections not freed yet */
	size_t			 max_clients;	/* the listener pauses here */
	bool			 full;		/* paused because of that */
	bool			 backing_off;	/* paused after an accept error */
	int			 request_timeout_ms;
	struct timeval		 silence;	/* HTTP_TIMEOUT_S, a common
						 * timeout of base if it can */
	struct proxy		*proxy;		/* borrowed, may be NULL */
	time_t			 date_at;	/* when date was made */
	char			 date[64];	/* "Date: ...\r\n" */
};

/* The request being answered. */
struct http_exchange {
	struct http_conn	*conn;
	const struct http_request *rq;
	bool			 allow;		/* add "Allow: GET, HEAD" (405) */
};

static void	http_conn_kill(struct http_conn *);
static void	http_conn_reading(struct http_conn *, bool);

/* --- answers ------------------------------------------------------------ */

void
http_set_proxy(struct http *h, struct proxy *px)
{
	h->proxy = px;
}

/* The Date header line, made at most once a second. */
static const char *
http_date(struct http *h)
{
	time_t		now = time(NULL);
	struct tm	tm;

	if (now != h->date_at && gmtime_r(&now, &tm) != NULL &&
	    strftime(h->date, sizeof(h->date),
	    "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm) > 0)
		h->date_at = now;
	return h->date_at != 0 ? h->date : "";
}

/* An answer's head, built without printf (it was most of a request's
 * own CPU time). */
struct http_head {
	char	buf[512];
	size_t	len;
};

/* Appends s; the pieces are the daemon's own and fit (cut if not). */
static void
http_head_add(struct http_head *hd, const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(hd->buf) - hd->len)
		n = sizeof(hd->buf) - hd->len;
	memcpy(hd->buf + hd->len, s, n);
	hd->len += n;
}

/* Appends v in decimal. */
static void
http_head_add_num(struct http_head *hd, uintmax_t v)
{
	char	 digits[24], *p = digits + sizeof(digits);

	*--p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0 && p > digits);
	http_head_add(hd, p);
}

/*
 * Writes a whole answer to c: the status line, the headers and body (not
 * for HEAD), drained from body.  rq is NULL for a request refused before
 * its head was read (answered as HTTP/1.1, and the connection closes).
 */
static void
http_write(struct http_conn *c, const struct http_request *rq, int code,
    const char *ctype, bool allow, struct evbuffer *body)
{
	struct evbuffer	*out = c->out;
	size_t		 len = evbuffer_get_length(body);
	bool		 keep = rq != NULL && rq->keep_alive && !c->closing;
	const char	*conn_hdr = "";
	struct http_head hd;

	if (!keep)
		conn_hdr = "Connection: close\r\n";
	else if (rq->minor == 0)
		conn_hdr = "Connection: keep-alive\r\n";
	/* "HTTP/1.M CODE REASON\r\nDate: ...\r\nContent-Type: ...\r\n"
	 * "Content-Length: N\r\n[Allow: ...][Connection: ...]\r\n" */
	hd.len = 0;
	http_head_add(&hd, rq != NULL && rq->minor == 0 ? "HTTP/1.0 " :
	    "HTTP/1.1 ");
	http_head_add_num(&hd, (uintmax_t)code);
	http_head_add(&hd, " ");
	http_head_add(&hd, http_reason(code));
	http_head_add(&hd, "\r\n");
	http_head_add(&hd, http_date(c->h));
	http_head_add(&hd, "Content-Type: ");
	http_head_add(&hd, ctype != NULL ? ctype :
	    "text/plain; charset=utf-8");
	http_head_add(&hd, "\r\nContent-Length: ");
	http_head_add_num(&hd, (uintmax_t)len);
	http_head_add(&hd, "\r\n");
	if (allow)
		http_head_add(&hd, "Allow: GET, HEAD\r\n");
	http_head_add(&hd, conn_hdr);
	http_head_add(&hd, "\r\n");
	if (evbuffer_add(out, hd.buf, hd.len) != 0 ||
	    ((rq == NULL || rq->method != HTTP_M_HEAD) &&
	    evbuffer_add_buffer(out, body) != 0)) {
		evbuffer_drain(body, evbuffer_get_length(body));
		http_conn_kill(c);	/* out of memory: drop the client */
		return;
	}
	evbuffer_drain(body, evbuffer_get_length(body));
	if (!keep) {
		c->closing = true;
		http_conn_reading(c, false);
	}
}

/* Sends h->body with code, counting the request. */
static void
http_send(struct http *h, struct http_exchange *x, enum http_endpoint ep,
    int code, const char *ctype)
{
	h->counters.requests[ep][http_code_index(code)]++;
	http_write(x->conn, x->rq, code, ctype, x->allow, h->body);
}

/* A 4xx/5xx with a short reason, as text or the JSON of
 * http_format_error() (err is its code). */
static void
http_send_error(struct http *h, struct http_exchange *x,
    enum http_endpoint ep, int code, bool json, const char *err,
    const char *why)
{
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	if (json) {
		if (http_format_error(h->body, ep, err, why, false) == -1)
			goto oom;
		http_send(h, x, ep, code, "application/json");
	} else {
		if (evbuffer_add_printf(h->body, "%s\n", why) < 0)
			goto oom;
		http_send(h, x, ep, code, NULL);
	}
	return;
oom:
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	http_send(h, x, ep, 500, NULL);
}

static void
http_handle_role(struct http *h, struct http_exchange *x,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p, bool json)
{
	const struct topo_host	*host;

	/* pg-status's bodies carry no reason: none is formatted. */
	host = topology_resolve(c, &p->query, monitor_limits(h->mon), NULL, 0);
	if (http_format_host(h->body, host, json) == -1) {
		http_send_error(h, x, ep, 500, json, HTTP_ERR_INTERNAL,
		    "out of memory");
		return;
	}
	http_send(h, x, ep, host != NULL ? 200 : 404,
	    json ? "application/json" : NULL);
}

static void
http_handle_v1_resolve(struct http *h, struct http_exchange *x,
    struct topo_cluster *c, const struct http_params *p)
{
	const struct topo_host	*host;
	char			 why[256];
	int			 rc;

	host = topology_resolve(c, &p->query, monitor_limits(h->mon), why,
	    sizeof(why));
	if (host != NULL)
		rc = http_format_resolve(h->body, c, host);
	else
		rc = http_format_error(h->body, HTTP_EP_V1_RESOLVE,
		    HTTP_ERR_NOHOST, why, true);
	if (rc == -1) {
		http_send_error(h, x, HTTP_EP_V1_RESOLVE, 500, true,
		    HTTP_ERR_INTERNAL, "out of memory");
		return;
	}
	http_send(h, x, HTTP_EP_V1_RESOLVE, host != NULL ? 200 : 404,
	    "application/json");
}

static void
http_handle_v1_status(struct http *h, struct http_exchange *x,
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
		http_send_error(h, x, HTTP_EP_V1_STATUS, 500, true,
		    HTTP_ERR_INTERNAL, "out of memory");
		return;
	}
	http_send(h, x, HTTP_EP_V1_STATUS, 200, "application/json");
}

static void
http_handle_metrics(struct http *h, struct http_exchange *x)
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
		http_send_error(h, x, HTTP_EP_METRICS, 500, false,
		    HTTP_ERR_INTERNAL, "out of memory");
		return;
	}
	free(changes);
	http_send(h, x, HTTP_EP_METRICS, 200,
	    "text/plain; version=0.0.4; charset=utf-8");
}

static void
http_handle_health(struct http *h, struct http_exchange *x,
    enum http_endpoint ep, struct topo_cluster *c,
    const struct http_params *p)
{
	char	why[256];
	int	code;

	code = http_health(c, p, ep == HTTP_EP_HEALTH_REPLICA, why,
	    sizeof(why));
	if (evbuffer_add_printf(h->body, "%s\n", why) < 0) {
		http_send_error(h, x, ep, 500, false, HTTP_ERR_INTERNAL,
		    "out of memory");
		return;
	}
	http_send(h, x, ep, code, NULL);
}

static void
http_handle(struct http *h, struct http_conn *conn,
    const struct http_request *rq)
{
	struct http_exchange	 xs = { conn, rq, false }, *x = &xs;
	struct evkeyvalq	 kv;
	struct http_params	 p;
	struct topo_cluster	*c = NULL, *const *all;
	enum http_endpoint	 ep;
	size_t			 n;
	char			 why[256];
	bool			 json;

	TAILQ_INIT(&kv);
	evbuffer_drain(h->body, evbuffer_get_length(h->body));
	ep = http_endpoint_parse(rq->path);
	json = ep == HTTP_EP_V1_RESOLVE || ep == HTTP_EP_V1_STATUS ||
	    ep == HTTP_EP_REPLICAS_INFO || rq->json;
	if (ep == HTTP_EP_UNKNOWN) {
		http_send_error(h, x, ep, 404, json,
		    HTTP_ERR_NOTFOUND, "unknown path");
		return;
	}
	if (rq->method == HTTP_M_OTHER) {
		x->allow = true;
		http_send_error(h, x, ep, 405, json,
		    HTTP_ERR_BADMETHOD, "only GET and HEAD");
		return;
	}
	/* pg-status answers a bad request in JSON always. */
	if (rq->has_query && (evhttp_parse_query_str(rq->query, &kv) != 0 ||
	    http_query_has_nul(rq->query))) {
		http_send_error(h, x, ep, 400, json || http_is_pg_status(ep),
		    HTTP_ERR_BADREQ, "malformed query string");
		goto done;
	}
	if (http_params_parse(ep, &kv, &p, why, sizeof(why)) != 0) {
		http_send_error(h, x, ep, 400, json || http_is_pg_status(ep),
		    HTTP_ERR_BADREQ, why);
		goto done;
	}
	if (ep != HTTP_EP_METRICS &&
	    (ep != HTTP_EP_V1_STATUS || p.cluster != NULL)) {
		all = monitor_clusters(h->mon, &n);
		if ((c = http_pick_cluster(all, n, p.cluster)) == NULL) {
			snprintf(why, sizeof(why), "no cluster '%.64s'",
			    p.cluster != NULL ? p.cluster : "");
			http_send_error(h, x, ep, 404, json,
			    HTTP_ERR_NOCLUSTER, why);
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
		http_handle_role(h, x, ep, c, &p, json);
		break;
	case HTTP_EP_REPLICAS_INFO:
		if (http_format_replicas_info(h->body, c) == -1)
			http_send_error(h, x, ep, 500, true,
			    HTTP_ERR_INTERNAL, "out of memory");
		else
			http_send(h, x, ep, 200, "application/json");
		break;
	case HTTP_EP_V1_RESOLVE:
		http_handle_v1_resolve(h, x, c, &p);
		break;
	case HTTP_EP_V1_STATUS:
		http_handle_v1_status(h, x, c);
		break;
	case HTTP_EP_METRICS:
		http_handle_metrics(h, x);
		break;
	case HTTP_EP_HEALTH_PRIMARY:
	case HTTP_EP_HEALTH_REPLICA:
		http_handle_health(h, x, ep, c, &p);
		break;
	default:
		http_send_error(h, x, ep, 404, json,
		    HTTP_ERR_NOTFOUND, "unknown path");
		break;
	}
done:
	evhttp_clear_headers(&kv);
}

/* --- connections -------------------------------------------------------- */

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

/* Stops serving c; the reaper frees it (callbacks up the stack may still
 * hold c). */
static void
http_conn_kill(struct http_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	event_del(c->rev);
	event_del(c->wev);
	event_del(c->deadline);
	c->reading = c->writing = false;
	LIST_REMOVE(c, entry);
	LIST_INSERT_HEAD(&c->h->dead, c, entry);
	event_active(c->h->reaper, EV_TIMEOUT, 1);
}

/* Frees a connection's resources and closes its socket. */
static void
http_conn_free(struct http_conn *c)
{
	LIST_REMOVE(c, entry);
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->in != NULL)
		evbuffer_free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	evutil_closesocket(c->fd);
	free(c);
}

/* Frees the dead connections, which may let the listener resume. */
static void
http_reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;

	(void)fd;
	(void)what;
	while ((c = LIST_FIRST(&h->dead)) != NULL) {
		http_conn_free(c);
		h->nconns--;
	}
	http_check_full(h);
}

/* Waits for c's requests (with the silence timeout) or stops waiting.
 * Only a change costs a system call. */
static void
http_conn_reading(struct http_conn *c, bool on)
{
	if (on == c->reading || c->dead)
		return;
	if (on && event_add(c->rev, &c->h->silence) != 0) {
		log_warn("HTTP client %s: cannot wait for its requests", c->peer);
		http_conn_kill(c);
		return;
	}
	if (!on)
		event_del(c->rev);
	c->reading = on;
}

/*
 * Writes as much of c's answers as the socket takes now and waits for
 * room for the rest (with the silence timeout).  Once all is written,
 * closes c if it is closing.  -1 when c was killed.
 */
static int
http_conn_flush(struct http_conn *c)
{
	int e;

	if (evbuffer_get_length(c->out) > 0 &&
	    evbuffer_write(c->out, c->fd) < 0) {
		e = EVUTIL_SOCKET_ERROR();
		if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
			log_debug("HTTP client %s: %s", c->peer,
			    evutil_socket_error_to_string(e));
			http_conn_kill(c);
			return -1;
		}
	}
	if (evbuffer_get_length(c->out) > 0) {
		if (!c->writing) {
			if (event_add(c->wev, &c->h->silence) != 0) {
				log_warn("HTTP client %s: cannot wait to "
				    "write", c->peer);
				http_conn_kill(c);
				return -1;
			}
			c->writing = true;
		}
		return 0;
	}
	if (c->writing) {
		event_del(c->wev);
		c->writing = false;
	}
	if (c->closing) {
		http_conn_kill(c);
		return -1;
	}
	return 0;
}

/* Closes c once its output is written (http_conn_flush()). */
static void
http_conn_close_when_flushed(struct http_conn *c)
{
	c->closing = true;
	http_conn_reading(c, false);
}

/* Answers a request refused before its head was read, then closes. */
static void
http_conn_refuse(struct http_conn *c, int code)
{
	log_debug("HTTP client %s: %d %s, closing", c->peer, code,
	    http_reason(code));
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	evbuffer_drain(c->h->body, evbuffer_get_length(c->h->body));
	if (evbuffer_add_printf(c->h->body, "%s\n", http_reason(code)) < 0) {
		http_conn_kill(c);
		return;
	}
	c->closing = true;	/* "Connection: close" */
	http_write(c, NULL, code, NULL, false, c->h->body);
	if (!c->dead)
		http_conn_close_when_flushed(c);
}

/*
 * Answers every whole request head waiting in c's input, in order, until
 * the output is over HTTP_OUT_HIGH (reading pauses: throttled).  After
 * EOF, what is left is an incomplete request, which gets no answer: the
 * connection closes once the answers are written.
 */
static void
http_conn_process(struct http_conn *c)
{
	struct http_request	 rq;
	size_t			 len;
	int			 rc;

	while (!c->dead && !c->closing) {
		if (evbuffer_get_length(c->out) > HTTP_OUT_HIGH) {
			/* Reading resumes in http_conn_run(). */
			c->throttled = true;
			http_conn_reading(c, false);
			return;
		}
		len = evbuffer_get_length(c->in);
		if (len > HTTP_MAX_HEADERS + 1)
			len = HTTP_MAX_HEADERS + 1;	/* enough to refuse */
		rc = len == 0 ? 0 : http_request_parse(
		    (const char *)evbuffer_pullup(c->in, (ev_ssize_t)len),
		    len, &rq);
		if (rc < 0) {
			http_conn_refuse(c, -rc);
			return;
		}
		if (rc == 0) {
			if (c->eof)
				http_conn_close_when_flushed(c);
			return;
		}
		evbuffer_drain(c->in, (size_t)rc);
		/* A whole request came: the next one has a deadline of its
		 * own (http_deadline_cb() reads the clock only then). */
		c->head_since_ms = monitor_now_ms();
		http_handle(c->h, c, &rq);
	}
}

/* Answers what c's input holds and writes the answers; when writing made
 * room in a throttled connection's output, reads and answers again. */
static void
http_conn_run(struct http_conn *c)
{
	for (;;) {
		http_conn_process(c);
		if (c->dead || http_conn_flush(c) != 0)
			return;
		if (!c->throttled ||
		    evbuffer_get_length(c->out) > HTTP_OUT_LOW)
			return;
		c->throttled = false;
		if (!c->eof)
			http_conn_reading(c, true);
	}
}

/* Readable (at most HTTP_READ_MAX bytes taken), or silent too long. */
static void
http_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	struct evbuffer_iovec	 v;
	ssize_t			 n;
	int			 e;

	if (what & EV_TIMEOUT) {
		log_debug("HTTP client %s: timed out", c->peer);
		http_conn_kill(c);
		return;
	}
	if (evbuffer_reserve_space(c->in, HTTP_READ_MAX, &v, 1) != 1) {
		log_warn("out of memory reading HTTP client %s", c->peer);
		http_conn_kill(c);
		return;
	}
	n = recv(fd, v.iov_base, v.iov_len < HTTP_READ_MAX ? v.iov_len :
	    HTTP_READ_MAX, 0);
	if (n < 0) {
		e = EVUTIL_SOCKET_ERROR();
		if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
			return;
		log_debug("HTTP client %s: %s", c->peer,
		    evutil_socket_error_to_string(e));
		http_conn_kill(c);
		return;
	}
	if (n == 0) {
		/* A half-close: the requests read so far still get their
		 * answers, then the connection closes. */
		c->eof = true;
		http_conn_reading(c, false);
	} else {
		v.iov_len = (size_t)n;
		if (evbuffer_commit_space(c->in, &v, 1) != 0) {
			http_conn_kill(c);
			return;
		}
	}
	http_conn_run(c);
}

/* Room to write, or no progress too long. */
static void
http_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		log_debug("HTTP client %s: timed out", c->peer);
		http_conn_kill(c);
		return;
	}
	http_conn_run(c);
}

/*
 * The request deadline: the silence timeout alone would never catch a
 * client dripping one byte at a time.  The timer is added once; a request
 * only moves head_since_ms, and the timer, when it fires early, waits for
 * what is left.
 */
static void
http_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn	*c = arg;
	int64_t			 left;
	struct timeval		 tv;

	(void)fd;
	(void)what;
	left = c->head_since_ms + c->h->request_timeout_ms - monitor_now_ms();
	if (left > 0) {
		tv.tv_sec = (time_t)(left / 1000);
		tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
		if (event_add(c->deadline, &tv) == 0)
			return;
	}
	log_info("HTTP client %s: no complete request in %d ms, closing",
	    c->peer, c->h->request_timeout_ms);
	http_conn_kill(c);
}

/* "ADDR:PORT" of a peer, "unix" for a Unix socket. */
static void
http_peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr,
		    (unsigned)ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%u", addr,
		    (unsigned)ntohs(sin6->sin6_port));
	} else
		snprintf(buf, len, "unix");
}

/* A new connection.  Pauses the listener at the cap: evconnlistener
 * stops its accept loop as soon as its callback disabled it. */
static void
http_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct http *h = arg;
	struct http_conn *c;
	struct timeval tv;

	(void)l;
	(void)salen;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("out of memory accepting an HTTP client");
		evutil_closesocket(fd);
		return;
	}
	c->h = h;
	c->fd = fd;
	LIST_INSERT_HEAD(&h->conns, c, entry);
	h->nconns++;
	http_peer_name(sa, c->peer, sizeof(c->peer));
	c->rev = event_new(h->base, fd, EV_READ | EV_PERSIST, http_read_cb, c);
	c->wev = event_new(h->base, fd, EV_WRITE | EV_PERSIST, http_write_cb,
	    c);
	c->deadline = evtimer_new(h->base, http_deadline_cb, c);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	tv.tv_sec = h->request_timeout_ms / 1000;
	tv.tv_usec = (h->request_timeout_ms % 1000) * 1000;
	c->head_since_ms = monitor_now_ms();
	if (c->rev == NULL || c->wev == NULL || c->deadline == NULL ||
	    c->in == NULL || c->out == NULL ||
	    event_add(c->deadline, &tv) != 0) {
		log_warn("out of memory accepting an HTTP client");
		http_conn_free(c);	/* closes fd */
		h->nconns--;
		return;
	}
	/* See SERVER_PRIO_HTTP; fails only without priorities. */
	(void)event_priority_set(c->rev, SERVER_PRIO_HTTP);
	(void)event_priority_set(c->wev, SERVER_PRIO_HTTP);
	http_conn_reading(c, true);
	server_backoff_ok(&h->backoff);
	http_check_full(h);
}

/*
 * The accept-retry timer: after an accept error it re-enables the
 * listener once the back-off has passed.
 */
static void
http_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	(void)fd;
	(void)what;
	if (h->backing_off && !h->full)
		evconnlistener_enable(h->listener);
	h->backing_off = false;
}

/* Out of descriptors: accepting again at once would spin.  Pause, longer
 * each time, and log at most every 10 s. */
static void
http_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct http *h = arg;
	struct timeval tv;
	unsigned suppressed;
	bool log;
	int ms, err = EVUTIL_SOCKET_ERROR();

	evconnlistener_disable(l);
	ms = server_backoff_fail(&h->backoff, monitor_now_ms(), &log,
	    &suppressed);
	if (log)
		log_warn("HTTP accept: %s; pausing for %d ms (%u more such "
		    "errors not logged)", evutil_socket_error_to_string(err),
		    ms, suppressed);
	h->backing_off = true;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->accept_retry, &tv);
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

/* Binds "HOST:PORT" or "[V6]:PORT", listening with SOMAXCONN (a burst of
 * connects would be refused with 128). */
static int
http_bind_tcp(struct http *h, const char *listen_addr, char *err, size_t errlen)
{
	struct evutil_addrinfo	 hints, *ai = NULL;
	struct http_params	 p;
	char			 port[8];
	int			 rc, e;

	if (!http_parse_hostport(listen_addr, &p)) {
		snprintf(err, errlen, "http_listen %s: not HOST:PORT", listen_addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", p.host_port);
	if ((rc = evutil_getaddrinfo(p.host_name[0] != '\0' ? p.host_name :
	    NULL, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "cannot listen for HTTP on %s: %s",
		    listen_addr, evutil_gai_strerror(rc));
		return -1;
	}
	errno = 0;
	h->listener = evconnlistener_new_bind(h->base, http_accept_cb, h,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
	    SOMAXCONN, ai->ai_addr, (int)ai->ai_addrlen);
	e = errno;
	evutil_freeaddrinfo(ai);
	if (h->listener == NULL) {
		snprintf(err, errlen, "cannot listen for HTTP on %s: %s",
		    listen_addr, e != 0 ? strerror(e) : "bind failed");
		return -1;
	}
	evconnlistener_set_error_cb(h->listener, http_accept_error_cb);
	if (!http_is_loopback(evconnlistener_get_fd(h->listener)))
		log_warn("HTTP listener %s is not on loopback: anyone who can "
		    "reach it can read the cluster's topology", listen_addr);
	return 0;
}

/* Binds an absolute Unix socket path, replacing a dead one. */
static int
http_bind_unix(struct http *h, const char *path, mode_t mode, char *err,
    size_t errlen)
{
	int fd;

	if ((fd = unixsock_listen(path, mode, true, err, errlen)) < 0)
		return -1;
	if ((h->unix_path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		unlink(path);
		return -1;
	}
	/* Backlog 0: keep the SOMAXCONN unixsock_listen() gave it. */
	h->listener = evconnlistener_new(h->base, http_accept_cb, h,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (h->listener == NULL) {
		snprintf(err, errlen, "cannot listen on %s", path);
		close(fd);
		return -1;	/* http_free() unlinks unix_path */
	}
	evconnlistener_set_error_cb(h->listener, http_accept_error_cb);
	return 0;
}

struct http *
http_new(struct event_base *base, const char *listen, mode_t mode,
    struct monitor *mon, struct server *srv, char *err, size_t errlen)
{
	struct http		*h;
	const struct timeval	*common;

	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->base = base;
	h->mon = mon;
	h->srv = srv;
	h->max_clients = HTTP_DEFAULT_MAX_CLIENTS;
	h->request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS;
	/* Every connection's silence timeout has this one length: in a
	 * common-timeout queue adding it again is O(1), not a heap move. */
	h->silence.tv_sec = HTTP_TIMEOUT_S;
	if ((common = event_base_init_common_timeout(base, &h->silence)) !=
	    NULL)
		h->silence = *common;
	LIST_INIT(&h->conns);
	LIST_INIT(&h->dead);
	if ((h->body = evbuffer_new()) == NULL ||
	    (h->reaper = event_new(base, -1, 0, http_reaper_cb, h)) == NULL ||
	    (h->accept_retry = evtimer_new(base, http_accept_retry_cb,
	    h)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Fails only on a base without priorities (the unit tests'). */
	(void)event_priority_set(h->reaper, SERVER_PRIO_URGENT);
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

void
http_free(struct http *h)
{
	struct http_conn *c;

	if (h == NULL)
		return;
	if (h->listener != NULL)
		evconnlistener_free(h->listener);
	while ((c = LIST_FIRST(&h->conns)) != NULL)
		http_conn_free(c);
	while ((c = LIST_FIRST(&h->dead)) != NULL)
		http_conn_free(c);
	if (h->reaper != NULL)
		event_free(h->reaper);
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
