/*
 * it_webapp_util.h - what the example service's tests share: running
 * build/examples/webapp, and a real HTTP client (libevent's evhttp)
 * that sends any number of requests at once and records each answer.
 */
#ifndef PGB_IT_WEBAPP_UTIL_H
#define PGB_IT_WEBAPP_UTIL_H

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "support/itest.h"

#define WA_UNUSED	__attribute__((unused))

/* One answer. */
struct wa_resp {
	int	 status;		/* HTTP code; -1: no answer */
	char	 body[2048];
	char	 cookie[128];		/* Set-Cookie up to the first ';' */
	char	 content_type[64];	/* Content-Type, "" when none */
	int64_t	 t_sent;
	int64_t	 t_done;
};

/* A running service. */
struct wa_proc {
	pid_t	 pid;
	int	 port;
	char	 log[512];
};

struct wa_batch {
	struct event_base	*base;
	int			 left;
};

struct wa_one {
	struct wa_batch		*batch;
	struct wa_resp		*resp;
	struct evhttp_connection *conn;
	const char		*path;
	const char		*cookie;
	int			 port;
};

static WA_UNUSED void
wa_done_cb(struct evhttp_request *req, void *arg)
{
	struct wa_one	*o = arg;
	struct evbuffer	*b;
	const char	*c;
	size_t		 n;

	o->resp->t_done = it_now_ms();
	if (req == NULL || evhttp_request_get_response_code(req) == 0)
		o->resp->status = -1;
	else {
		o->resp->status = evhttp_request_get_response_code(req);
		b = evhttp_request_get_input_buffer(req);
		n = evbuffer_get_length(b);
		if (n >= sizeof o->resp->body)
			n = sizeof o->resp->body - 1;
		evbuffer_copyout(b, o->resp->body, n);
		o->resp->body[n] = '\0';
		c = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Set-Cookie");
		if (c != NULL) {
			n = strcspn(c, ";");
			if (n >= sizeof o->resp->cookie)
				n = sizeof o->resp->cookie - 1;
			memcpy(o->resp->cookie, c, n);
			o->resp->cookie[n] = '\0';
		}
		c = evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Content-Type");
		if (c != NULL)
			snprintf(o->resp->content_type,
			    sizeof o->resp->content_type, "%s", c);
	}
	if (--o->batch->left == 0)
		event_base_loopbreak(o->batch->base);
}

static WA_UNUSED void
wa_send(struct wa_one *o)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;

	o->conn = evhttp_connection_base_new(o->batch->base, NULL, "127.0.0.1",
	    (ev_uint16_t)o->port);
	ck_assert_ptr_nonnull(o->conn);
	evhttp_connection_set_timeout(o->conn, 120);
	req = evhttp_request_new(wa_done_cb, o);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	evhttp_add_header(h, "Connection", "close");
	if (o->cookie != NULL && *o->cookie != '\0')
		evhttp_add_header(h, "Cookie", o->cookie);
	o->resp->t_sent = it_now_ms();
	ck_assert_int_eq(evhttp_make_request(o->conn, req, EVHTTP_REQ_GET,
	    o->path), 0);
}

struct wa_spaced {
	struct wa_one	*ones;
	int		 n;
	int		 next;
	int		 gap_ms;
	struct event	*timer;
};

static WA_UNUSED void
wa_spaced_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wa_spaced	*sp = arg;
	struct timeval		 tv = { 0, sp->gap_ms * 1000 };

	(void)fd;
	(void)what;
	wa_send(&sp->ones[sp->next++]);
	if (sp->next < sp->n)
		evtimer_add(sp->timer, &tv);
}

/*
 * Sends n GET requests to port (paths[i], with cookie when not NULL),
 * each on its own connection: all at once when gap_ms is 0, else one
 * every gap_ms.  Returns when every one was answered (or failed).
 */
static WA_UNUSED void
wa_get_many(int port, const char *const *paths, const char *cookie,
    struct wa_resp *out, int n, int gap_ms)
{
	struct wa_batch		 batch;
	struct wa_one		*ones;
	struct wa_spaced	 sp;
	struct timeval		 tv = { 0, 0 };
	int			 i;

	batch.base = event_base_new();
	batch.left = n;
	ones = calloc((size_t)n, sizeof *ones);
	ck_assert_ptr_nonnull(ones);
	for (i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof out[i]);
		out[i].status = -1;
		ones[i].batch = &batch;
		ones[i].resp = &out[i];
		ones[i].path = paths[i];
		ones[i].cookie = cookie;
		ones[i].port = port;
	}
	memset(&sp, 0, sizeof sp);
	if (gap_ms > 0) {
		sp.ones = ones;
		sp.n = n;
		sp.gap_ms = gap_ms;
		sp.timer = evtimer_new(batch.base, wa_spaced_cb, &sp);
		evtimer_add(sp.timer, &tv);
	} else {
		for (i = 0; i < n; i++)
			wa_send(&ones[i]);
	}
	event_base_dispatch(batch.base);
	if (sp.timer != NULL)
		event_free(sp.timer);
	for (i = 0; i < n; i++) {
		if (ones[i].conn != NULL)
			evhttp_connection_free(ones[i].conn);
	}
	free(ones);
	event_base_free(batch.base);
}

/* One GET; the answer in *out. */
static WA_UNUSED void
wa_get(int port, const char *path, const char *cookie, struct wa_resp *out)
{
	const char	*paths[1] = { path };

	wa_get_many(port, paths, cookie, out, 1, 0);
}

/*
 * Opens a TCP connection to port and sends "GET path" on it without
 * waiting for the answer: a client that may go away mid-request (close
 * the returned fd) or whose answer is read with wa_raw_read.
 */
static WA_UNUSED int
wa_raw_send(int port, const char *path)
{
	struct sockaddr_in	sin;
	char			buf[512];
	int			fd, n;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: 127.0.0.1"
	    "\r\nConnection: close\r\n\r\n", path);
	ck_assert(n > 0 && (size_t)n < sizeof buf);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	return (fd);
}

/*
 * Reads what the service sends on fd until it closes the connection or
 * timeout_ms passes; returns the byte count (0: closed without a word,
 * -1: still open at the deadline or an error).  Closes fd.
 */
static WA_UNUSED int
wa_raw_read(int fd, char *buf, size_t len, int timeout_ms)
{
	int64_t		deadline = it_now_ms() + timeout_ms;
	struct timeval	tv;
	size_t		got = 0;
	ssize_t		n;
	int		rc = -1;

	while (got + 1 < len) {
		if (it_now_ms() >= deadline)
			break;
		tv.tv_sec = 0;
		tv.tv_usec = 100 * 1000;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		n = read(fd, buf + got, len - 1 - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)) {
			rc = (int)got;
			break;
		}
	}
	if (got + 1 >= len)
		rc = (int)got;
	buf[got] = '\0';
	close(fd);
	return (rc);
}

static WA_UNUSED bool
wa_healthy(int port)
{
	struct wa_resp	r;

	wa_get(port, "/health", NULL, &r);
	return (r.status == 200);
}

/*
 * Starts $BUILD/examples/webapp (BUILD defaults to "build") on a free
 * port against the daemon at sock; its output goes to dir/webapp-PORT.log
 * (dir: $PGBEACON_WEBAPP_LOGDIR when set).
 * Returns once /health answers 200.
 */
static WA_UNUSED void
wa_start(struct wa_proc *p, const char *sock, const char *dir,
    const char *conninfo, int pool)
{
	const char	*build = getenv("BUILD");
	char		 bin[512], port[16], npool[16];
	int		 fd;

	snprintf(bin, sizeof bin, "%s/examples/webapp",
	    build != NULL && *build != '\0' ? build : "build");
	p->port = it_free_port();
	/* $PGBEACON_WEBAPP_LOGDIR keeps the log after the cluster is gone. */
	if (getenv("PGBEACON_WEBAPP_LOGDIR") != NULL)
		dir = getenv("PGBEACON_WEBAPP_LOGDIR");
	snprintf(p->log, sizeof p->log, "%s/webapp-%d.log", dir, p->port);
	snprintf(port, sizeof port, "%d", p->port);
	snprintf(npool, sizeof npool, "%d", pool);
	p->pid = fork();
	ck_assert_int_ge(p->pid, 0);
	if (p->pid == 0) {
		fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "-p", port, "-s", sock, "-c", conninfo, "-n",
		    npool, (char *)NULL);
		_exit(127);
	}
	ck_assert_msg(IT_POLL_UNTIL(wa_healthy(p->port), 20000),
	    "webapp did not answer /health; see %s", p->log);
}

/* SIGTERM, waits; returns the exit status (128 + signal when killed). */
static WA_UNUSED int
wa_stop(struct wa_proc *p)
{
	int	st = 0, i;

	if (p->pid <= 0)
		return (-1);
	kill(p->pid, SIGTERM);
	for (i = 0; i < 2000; i++) {
		if (waitpid(p->pid, &st, WNOHANG) == p->pid)
			break;
		it_sleep_ms(10);
	}
	if (i == 2000) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &st, 0);
	}
	p->pid = 0;
	return (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

#endif /* PGB_IT_WEBAPP_UTIL_H */
