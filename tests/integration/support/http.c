/*
 * http.c - the HTTP client of the integration tests and benchmarks; see
 * http.h.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http.h"
#include "itest.h"

/* --- raw ----------------------------------------------------------------- */

int
it_http_connect(const char *target)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	socklen_t		 len;
	const char		*colon;
	int			 fd;

	memset(&ss, 0, sizeof ss);
	if (target[0] == '/') {
		if (strlen(target) >= sizeof sun->sun_path)
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, target, strlen(target) + 1);
		len = sizeof *sun;
	} else {
		if ((colon = strrchr(target, ':')) == NULL)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons((uint16_t)atoi(colon + 1));
		len = sizeof *sin;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
it_http_read_to_eof(int fd, int timeout_ms, char **buf, size_t *len)
{
	struct pollfd	 pfd;
	int64_t		 deadline = it_now_ms() + timeout_ms, left;
	size_t		 cap = 65536;
	ssize_t		 n;
	char		*b, *nb;
	int		 rc = 0;

	if ((b = malloc(cap)) == NULL)
		it_fail("out of memory");
	*len = 0;
	for (;;) {
		if ((left = deadline - it_now_ms()) <= 0)
			break;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (*len + 1 >= cap) {
			cap *= 2;
			if ((nb = realloc(b, cap)) == NULL)
				it_fail("out of memory");
			b = nb;
		}
		n = recv(fd, b + *len, cap - *len - 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == 0)
			rc = 1;
		else if (n < 0)
			rc = -1;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	b[*len] = '\0';
	*buf = b;
	return rc;
}

int
it_http_raw(const char *target, const char *request, size_t reqlen,
    int timeout_ms, char **buf, size_t *len)
{
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd, status;

	*buf = NULL;
	*len = 0;
	if ((fd = it_http_connect(target)) < 0)
		return -1;
	while (off < reqlen) {
		if ((n = send(fd, request + off, reqlen - off,
		    MSG_NOSIGNAL)) < 0)
			break;	/* the server may close early: read why */
		off += (size_t)n;
	}
	(void)it_http_read_to_eof(fd, timeout_ms, buf, len);
	close(fd);
	if (*len == 0) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	if (sscanf(*buf, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	return status;
}

/* --- evhttp -------------------------------------------------------------- */

static void
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

void
wa_send(struct wa_one *o)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;

	o->conn = evhttp_connection_base_new(o->batch->base, NULL, "127.0.0.1",
	    (ev_uint16_t)o->port);
	if (o->conn == NULL)
		it_fail("evhttp_connection_base_new failed");
	evhttp_connection_set_timeout(o->conn, 120);
	if ((req = evhttp_request_new(wa_done_cb, o)) == NULL)
		it_fail("evhttp_request_new failed");
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", "127.0.0.1");
	evhttp_add_header(h, "Connection", "close");
	if (o->cookie != NULL && *o->cookie != '\0')
		evhttp_add_header(h, "Cookie", o->cookie);
	o->resp->t_sent = it_now_ms();
	if (evhttp_make_request(o->conn, req, EVHTTP_REQ_GET, o->path) != 0)
		it_fail("evhttp_make_request GET %s failed", o->path);
}

/* Requests sent one every gap_ms by a timer. */
struct wa_spaced {
	struct wa_one	*ones;		/* borrowed */
	int		 n;
	int		 next;
	int		 gap_ms;
	struct event	*timer;		/* owned */
};

static void
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

void
wa_get_many(int port, const char *const *paths, const char *cookie,
    struct wa_resp *out, int n, int gap_ms)
{
	struct wa_batch		 batch;
	struct wa_one		*ones;
	struct wa_spaced	 sp;
	struct timeval		 tv = { 0, 0 };
	int			 i;

	if ((batch.base = event_base_new()) == NULL)
		it_fail("event_base_new failed");
	batch.left = n;
	if ((ones = calloc((size_t)n, sizeof *ones)) == NULL)
		it_fail("out of memory");
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

void
wa_get(int port, const char *path, const char *cookie, struct wa_resp *out)
{
	const char	*paths[1] = { path };

	wa_get_many(port, paths, cookie, out, 1, 0);
}

int
wa_raw_send(int port, const char *path)
{
	char	 target[32], buf[512];
	int	 fd, n;

	snprintf(target, sizeof target, "127.0.0.1:%d", port);
	if ((fd = it_http_connect(target)) < 0)
		it_fail("connect %s: %s", target, strerror(errno));
	n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: 127.0.0.1"
	    "\r\nConnection: close\r\n\r\n", path);
	if (n <= 0 || (size_t)n >= sizeof buf)
		it_fail("GET %s: the path is too long", path);
	if (write(fd, buf, (size_t)n) != n)
		it_fail("write to %s: %s", target, strerror(errno));
	return fd;
}

int
wa_raw_read(int fd, char *buf, size_t len, int timeout_ms)
{
	char	*all;
	size_t	 n;
	int	 rc;

	rc = it_http_read_to_eof(fd, timeout_ms, &all, &n);
	close(fd);
	if (n + 1 > len)
		n = len - 1;
	memcpy(buf, all, n);
	buf[n] = '\0';
	free(all);
	if (rc == 0 && n + 1 < len)
		return -1;	/* still open at the deadline */
	return (int)n;
}
