/*
 * client.c - the daemon client (pgb_client) and the watch subscription
 * (pgb_watch): a blocking line-at-a-time conversation over the daemon's
 * Unix socket, with a timeout on every wait.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/request.h"

#include "pgbeacon.h"
#include "proto-internal.h"
#include "util-internal.h"

/* Longest request line, end of line excluded (DESIGN.md). */
/* Longest reply accepted (STATUS of many clusters is long). */
#define CLIENT_MAX_REPLY	(64 * 1024 * 1024)
#define CLIENT_TIMEOUT_MS	2000
#define WATCH_RETRY_MS		100

/* Bytes read from the socket and not yet consumed. Owns buf. */
struct linebuf {
	char	*buf;
	size_t	 off;		/* start of unconsumed bytes */
	size_t	 len;		/* end of valid bytes */
	size_t	 cap;
};

struct pgb_client {
	char		*path;		/* owned */
	int		 fd;		/* -1 when not connected */
	int		 timeout_ms;
	struct linebuf	 in;
	pgb_errcode	 errcode;
	char		 error[512];
};

struct pgb_watch {
	char		*path;		/* owned */
	char		*cluster;	/* owned; NULL: every cluster */
	int		 fd;		/* -1 when not subscribed */
	int		 was_broken;	/* next event is a resync notice */
	int64_t		 last_try_ms;	/* last subscribe attempt */
	struct linebuf	 in;
	char		 error[512];
	char		*replicas;	/* owned: of the last event, or NULL */
	size_t		 nreplicas;	/* its length; 0: "none" */
};

static char	*client_path(const char *arg);
static int	 sock_open(const char *path, char *err, size_t errlen);
static int	 sock_send(int fd, const char *buf, size_t len);
static int	 linebuf_take(struct linebuf *lb, char **line);
static ssize_t	 linebuf_read(struct linebuf *lb, int fd);
static int	 linebuf_wait_line(struct linebuf *lb, int fd, int64_t deadline,
		     char **line, int *got_bytes);
static void	 client_seterr(pgb_client *cl, pgb_errcode code,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void	 client_close(pgb_client *cl);
static int	 client_request(pgb_client *cl, const char *req, char **reply);
static int	 watch_subscribe(pgb_watch *w);
static void	 watch_close(pgb_watch *w);
static void	 watch_resync_event(pgb_watch *w, pgb_event *ev);
static void	 watch_keep_replicas(pgb_watch *w, const char *line);

const char *
pgb_version(void)
{
	return (PGB_VERSION_STRING);
}

void
pgb_free(void *p)
{
	free(p);
}

/* The socket path: the argument, else $PGBEACON_SOCKET, else default. */
static char *
client_path(const char *arg)
{
	const char	*env;

	if (arg == NULL || *arg == '\0') {
		env = getenv(PGB_SOCKET_ENV);
		arg = (env != NULL && *env != '\0') ? env : PGB_DEFAULT_SOCKET;
	}
	return (strdup(arg));
}

/* Connects to the Unix socket at path; -1 with a message in err. */
static int
sock_open(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un	sun;
	int			fd, saved;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "pgbeacond not reachable at %s: %s",
		    path, "socket path too long");
		return (-1);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "pgbeacond not reachable at %s: %s",
		    path, strerror(errno));
		return (-1);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		saved = errno;
		close(fd);
		snprintf(err, errlen, "pgbeacond not reachable at %s: %s",
		    path, strerror(saved));
		return (-1);
	}
	return (fd);
}

/* Sends all of buf; -1 with errno on failure.  Never raises SIGPIPE. */
static int
sock_send(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { fd, POLLOUT, 0 };

				if (poll(&pfd, 1, CLIENT_TIMEOUT_MS) <= 0) {
					errno = ETIMEDOUT;
					return (-1);
				}
				continue;
			}
			return (-1);
		}
		buf += n;
		len -= (size_t)n;
	}
	return (0);
}

/*
 * Takes one complete line out of lb: NUL-terminates it in place (end of
 * line removed) and sets *line, valid until the next linebuf call.
 * Returns 1 with a line, 0 when no complete line is buffered.
 */
static int
linebuf_take(struct linebuf *lb, char **line)
{
	char	*start, *nl;

	if (lb->len == lb->off)
		return (0);
	start = lb->buf + lb->off;
	nl = memchr(start, '\n', lb->len - lb->off);
	if (nl == NULL)
		return (0);
	*nl = '\0';
	if (nl > start && nl[-1] == '\r')
		nl[-1] = '\0';
	lb->off = (size_t)(nl + 1 - lb->buf);
	*line = start;
	return (1);
}

/*
 * Reads what is available from fd into lb (without blocking).  Returns
 * the byte count, 0 on end of file, -1 with errno (EAGAIN: nothing yet;
 * EMSGSIZE: line too long).
 */
static ssize_t
linebuf_read(struct linebuf *lb, int fd)
{
	ssize_t	 n;
	size_t	 ncap;
	char	*nbuf;

	if (lb->off > 0 && lb->off == lb->len)
		lb->off = lb->len = 0;
	if (lb->cap - lb->len < 4096) {
		if (lb->off > 0) {
			memmove(lb->buf, lb->buf + lb->off, lb->len - lb->off);
			lb->len -= lb->off;
			lb->off = 0;
		}
		if (lb->cap - lb->len < 4096) {
			ncap = lb->cap == 0 ? 8192 : lb->cap * 2;
			if (ncap > CLIENT_MAX_REPLY + 8192) {
				errno = EMSGSIZE;
				return (-1);
			}
			nbuf = realloc(lb->buf, ncap);
			if (nbuf == NULL)
				return (-1);
			lb->buf = nbuf;
			lb->cap = ncap;
		}
	}
	do
		n = recv(fd, lb->buf + lb->len, lb->cap - lb->len, MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		lb->len += (size_t)n;
	return (n);
}

/*
 * Waits until a complete line is buffered or deadline (monotonic ms)
 * passes.  1 with *line; 0 on end of file; -1 with errno (ETIMEDOUT on
 * timeout).  *got_bytes is set when any byte arrived.
 */
static int
linebuf_wait_line(struct linebuf *lb, int fd, int64_t deadline, char **line,
    int *got_bytes)
{
	struct pollfd	pfd;
	int64_t		left;
	ssize_t		n;
	int		rc;

	for (;;) {
		if (linebuf_take(lb, line))
			return (1);
		n = linebuf_read(lb, fd);
		if (n > 0) {
			*got_bytes = 1;
			continue;
		}
		if (n == 0)
			return (0);
		if (errno != EAGAIN)
			return (-1);
		left = deadline - pgbi_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return (-1);
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)left);
		if (rc == -1 && errno != EINTR)
			return (-1);
	}
}

pgb_client *
pgb_client_new(const char *socket_path)
{
	pgb_client	*cl;

	cl = calloc(1, sizeof *cl);
	if (cl == NULL)
		return (NULL);
	cl->path = client_path(socket_path);
	if (cl->path == NULL) {
		free(cl);
		return (NULL);
	}
	cl->fd = -1;
	cl->timeout_ms = CLIENT_TIMEOUT_MS;
	return (cl);
}

void
pgb_client_free(pgb_client *cl)
{
	if (cl == NULL)
		return;
	client_close(cl);
	free(cl->in.buf);
	free(cl->path);
	free(cl);
}

static void
client_seterr(pgb_client *cl, pgb_errcode code, const char *fmt, ...)
{
	va_list	ap;

	cl->errcode = code;
	va_start(ap, fmt);
	vsnprintf(cl->error, sizeof cl->error, fmt, ap);
	va_end(ap);
}

static void
client_close(pgb_client *cl)
{
	if (cl->fd != -1)
		close(cl->fd);
	cl->fd = -1;
	cl->in.off = cl->in.len = 0;
}

int
pgb_client_connect(pgb_client *cl)
{
	client_close(cl);
	cl->fd = sock_open(cl->path, cl->error, sizeof cl->error);
	if (cl->fd == -1) {
		cl->errcode = PGB_ERR_UNREACHABLE;
		return (-1);
	}
	cl->errcode = PGB_OK;
	cl->error[0] = '\0';
	return (0);
}

const char *
pgb_client_socket(const pgb_client *cl)
{
	return (cl->path);
}

void
pgb_client_set_timeout(pgb_client *cl, int timeout_ms)
{
	cl->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_TIMEOUT_MS;
}

const char *
pgb_client_error(const pgb_client *cl)
{
	return (cl->error);
}

pgb_errcode
pgb_client_errcode(const pgb_client *cl)
{
	return (cl->errcode);
}

/*
 * Sends req (one line, with its "\n") and waits for one reply line, set
 * in *reply (borrowed from cl->in until the next request).  A connection
 * found broken before any reply byte arrived is reopened and the request
 * sent again, once.  -1 with the error set.
 */
static int
client_request(pgb_client *cl, const char *req, char **reply)
{
	int64_t	deadline;
	int	attempt, fresh, got, rc, saved;

	for (attempt = 0; attempt < 2; attempt++) {
		fresh = 0;
		if (cl->fd == -1) {
			if (pgb_client_connect(cl) == -1)
				return (-1);
			fresh = 1;
		}
		deadline = pgbi_now_ms() + cl->timeout_ms;
		if (sock_send(cl->fd, req, strlen(req)) == -1) {
			saved = errno;
			client_close(cl);
			if (!fresh && attempt == 0)
				continue;
			client_seterr(cl, PGB_ERR_UNREACHABLE,
			    "pgbeacond not reachable at %s: %s", cl->path,
			    strerror(saved));
			return (-1);
		}
		got = 0;
		rc = linebuf_wait_line(&cl->in, cl->fd, deadline, reply, &got);
		if (rc == 1) {
			cl->errcode = PGB_OK;
			cl->error[0] = '\0';
			return (0);
		}
		saved = rc == 0 ? ECONNRESET : errno;
		client_close(cl);
		if (saved == ETIMEDOUT) {
			client_seterr(cl, PGB_ERR_TIMEOUT,
			    "pgbeacond at %s did not answer within %d ms",
			    cl->path, cl->timeout_ms);
			return (-1);
		}
		if (saved == EMSGSIZE) {
			client_seterr(cl, PGB_ERR_PROTOCOL,
			    "pgbeacond at %s sent an over-long reply", cl->path);
			return (-1);
		}
		if (!got && !fresh && attempt == 0)
			continue;
		client_seterr(cl, PGB_ERR_UNREACHABLE,
		    "pgbeacond not reachable at %s: %s", cl->path,
		    rc == 0 ? "connection closed by the daemon" :
		    strerror(saved));
		return (-1);
	}
	return (-1);
}

/* Stores the error of an "ERR ..." or unexpected reply. */
static void
client_reply_error(pgb_client *cl, const char *what, const char *reply)
{
	pgb_errcode	code;
	char		text[400];

	if (pgbi_proto_parse_err(reply, &code, text, sizeof text) == 0) {
		client_seterr(cl, code, "%s", text);
		return;
	}
	client_seterr(cl, PGB_ERR_PROTOCOL,
	    "unexpected reply from pgbeacond to %s: \"%.200s\"", what, reply);
}

int
pgb_client_ping(pgb_client *cl)
{
	char	*reply;

	if (client_request(cl, "PING\n", &reply) == -1)
		return (-1);
	if (pgbi_proto_classify(reply, NULL) != PGBI_REPLY_PONG) {
		client_reply_error(cl, "PING", reply);
		return (-1);
	}
	return (0);
}

int
pgb_client_resolve(pgb_client *cl, const char *cluster, const char *role,
    const char *options, pgb_resolved *out)
{
	char	 req[PGBC_LINE_MAX + 2], why[128], *reply;

	switch (pgbi_proto_format_resolve(req, sizeof req - 1, cluster, role,
	    options)) {
	case -1:
		client_seterr(cl, PGB_ERR_ARG, "bad cluster, role or options"
		    " for RESOLVE (empty, too long, or with spaces or"
		    " control characters)");
		return (-1);
	case -2:
		client_seterr(cl, PGB_ERR_ARG, "RESOLVE request too long");
		return (-1);
	}
	strcat(req, "\n");
	if (client_request(cl, req, &reply) == -1)
		return (-1);
	switch (pgbi_proto_classify(reply, NULL)) {
	case PGBI_REPLY_OK:
		if (pgbi_proto_parse_resolve(reply, out, why, sizeof why) == 0)
			return (0);
		client_seterr(cl, PGB_ERR_PROTOCOL,
		    "malformed RESOLVE reply from pgbeacond (%s): \"%.200s\"",
		    why, reply);
		return (-1);
	default:
		client_reply_error(cl, "RESOLVE", reply);
		return (-1);
	}
}

int
pgb_client_status(pgb_client *cl, const char *cluster, char **json)
{
	char		 req[PGB_CLUSTER_MAX + 16], *reply;
	const char	*rest;

	*json = NULL;
	if (cluster != NULL && !pgbc_cluster_name_ok(cluster)) {
		client_seterr(cl, PGB_ERR_ARG, "bad cluster name for STATUS");
		return (-1);
	}
	snprintf(req, sizeof req, "STATUS%s%s\n", cluster != NULL ? " " : "",
	    cluster != NULL ? cluster : "");
	if (client_request(cl, req, &reply) == -1)
		return (-1);
	if (pgbi_proto_classify(reply, &rest) != PGBI_REPLY_OK ||
	    *rest == '\0') {
		client_reply_error(cl, "STATUS", reply);
		return (-1);
	}
	*json = strdup(rest);
	if (*json == NULL) {
		client_seterr(cl, PGB_ERR_NOMEM, "out of memory");
		return (-1);
	}
	return (0);
}

int
pgb_client_forget(pgb_client *cl, const char *cluster)
{
	char		 req[PGB_CLUSTER_MAX + 16], *reply;
	const char	*rest;

	if (cluster == NULL || !pgbc_cluster_name_ok(cluster)) {
		client_seterr(cl, PGB_ERR_ARG, "bad cluster name for FORGET");
		return (-1);
	}
	snprintf(req, sizeof req, "FORGET %s\n", cluster);
	if (client_request(cl, req, &reply) == -1)
		return (-1);
	if (pgbi_proto_classify(reply, &rest) != PGBI_REPLY_OK) {
		client_reply_error(cl, "FORGET", reply);
		return (-1);
	}
	return (0);
}

/* --- watch ---------------------------------------------------------- */

pgb_watch *
pgb_watch_new(const char *socket_path, const char *cluster)
{
	pgb_watch	*w;

	w = calloc(1, sizeof *w);
	if (w == NULL)
		return (NULL);
	w->fd = -1;
	w->path = client_path(socket_path);
	if (cluster != NULL)
		w->cluster = strdup(cluster);
	if (w->path == NULL || (cluster != NULL && w->cluster == NULL)) {
		pgb_watch_free(w);
		return (NULL);
	}
	if (cluster != NULL && !pgbc_cluster_name_ok(cluster)) {
		snprintf(w->error, sizeof w->error, "bad cluster name for WATCH");
		return (w);
	}
	if (watch_subscribe(w) == -1)
		w->was_broken = 0;	/* never subscribed: nothing missed yet */
	return (w);
}

void
pgb_watch_free(pgb_watch *w)
{
	if (w == NULL)
		return;
	watch_close(w);
	free(w->replicas);
	free(w->in.buf);
	free(w->cluster);
	free(w->path);
	free(w);
}

/* Keeps the replicas field of the event line (none when absent). */
static void
watch_keep_replicas(pgb_watch *w, const char *line)
{
	const char	*list;
	size_t		 len;

	free(w->replicas);
	w->replicas = NULL;
	if (pgbi_proto_event_replicas(line, &list, &len) != 1 ||
	    (w->replicas = malloc(len + 1)) == NULL)
		return;
	memcpy(w->replicas, list, len);
	w->replicas[len] = '\0';
	w->nreplicas = len;
}

int
pgbi_watch_replicas(const pgb_watch *w, const char **list, size_t *len)
{
	if (w->replicas == NULL)
		return (0);
	*list = w->replicas;
	*len = w->nreplicas;
	return (1);
}

static void
watch_close(pgb_watch *w)
{
	if (w->fd != -1)
		close(w->fd);
	w->fd = -1;
	w->in.off = w->in.len = 0;
}

/* Connects and sends WATCH, waiting for "OK watching".  -1 on failure. */
static int
watch_subscribe(pgb_watch *w)
{
	char	 req[PGB_CLUSTER_MAX + 16], *line;
	int	 got = 0, rc;

	w->last_try_ms = pgbi_now_ms();
	watch_close(w);
	if (w->cluster != NULL && !pgbc_cluster_name_ok(w->cluster))
		return (-1);
	w->fd = sock_open(w->path, w->error, sizeof w->error);
	if (w->fd == -1)
		return (-1);
	snprintf(req, sizeof req, "WATCH%s%s\n", w->cluster != NULL ? " " : "",
	    w->cluster != NULL ? w->cluster : "");
	if (sock_send(w->fd, req, strlen(req)) == -1) {
		snprintf(w->error, sizeof w->error,
		    "pgbeacond not reachable at %s: %s", w->path,
		    strerror(errno));
		watch_close(w);
		return (-1);
	}
	rc = linebuf_wait_line(&w->in, w->fd, pgbi_now_ms() + CLIENT_TIMEOUT_MS,
	    &line, &got);
	if (rc != 1) {
		snprintf(w->error, sizeof w->error,
		    "pgbeacond not reachable at %s: %s", w->path,
		    rc == 0 ? "connection closed by the daemon" :
		    strerror(errno));
		watch_close(w);
		return (-1);
	}
	if (strcmp(line, "OK watching") != 0 &&
	    pgbi_proto_classify(line, NULL) != PGBI_REPLY_OK) {
		pgb_errcode	code;
		char		text[400];

		if (pgbi_proto_parse_err(line, &code, text, sizeof text) == 0)
			snprintf(w->error, sizeof w->error, "WATCH refused: %s",
			    text);
		else
			snprintf(w->error, sizeof w->error,
			    "unexpected reply from pgbeacond to WATCH: \"%.200s\"",
			    line);
		watch_close(w);
		return (-1);
	}
	w->error[0] = '\0';
	return (0);
}

static void
watch_resync_event(pgb_watch *w, pgb_event *ev)
{
	memset(ev, 0, sizeof *ev);
	free(w->replicas);
	w->replicas = NULL;
	ev->resync = 1;
	pgbi_strlcpy(ev->cluster, w->cluster, sizeof ev->cluster);
	w->was_broken = 0;
}

int
pgb_watch_poll(pgb_watch *w, pgb_event *ev)
{
	char	*line, why[128];
	ssize_t	 n;

	for (;;) {
		if (w->fd == -1) {
			if (pgbi_now_ms() - w->last_try_ms < WATCH_RETRY_MS)
				return (-1);
			if (watch_subscribe(w) == -1)
				return (-1);
			w->was_broken = 1;
		}
		if (w->was_broken) {
			watch_resync_event(w, ev);
			return (1);
		}
		while (linebuf_take(&w->in, &line)) {
			if (pgbi_proto_parse_event(line, ev, why,
			    sizeof why) == 0) {
				watch_keep_replicas(w, line);
				return (1);
			}
			/* Anything else pushed on a watch is ignored. */
		}
		n = linebuf_read(&w->in, w->fd);
		if (n > 0)
			continue;
		if (n == -1 && errno == EAGAIN)
			return (0);
		snprintf(w->error, sizeof w->error,
		    "pgbeacond at %s closed the watch: %s", w->path,
		    n == 0 ? "end of file" : strerror(errno));
		watch_close(w);
		w->was_broken = 1;
		w->last_try_ms = 0;	/* try again at once, once */
		if (watch_subscribe(w) == -1)
			return (-1);
	}
}

int
pgb_watch_wait(pgb_watch *w, pgb_event *ev, int timeout_ms)
{
	struct pollfd	pfd;
	int64_t		deadline, left;
	int		rc;

	deadline = timeout_ms < 0 ? INT64_MAX : pgbi_now_ms() + timeout_ms;
	for (;;) {
		rc = pgb_watch_poll(w, ev);
		if (rc == 1)
			return (1);
		if (rc == -1 && timeout_ms == 0)
			return (-1);
		left = deadline - pgbi_now_ms();
		if (left <= 0)
			return (0);
		if (w->fd == -1) {
			/* Broken: sleep until the next subscribe attempt. */
			if (left > WATCH_RETRY_MS)
				left = WATCH_RETRY_MS;
			poll(NULL, 0, (int)left);
			continue;
		}
		pfd.fd = w->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (left > INT32_MAX)
			left = INT32_MAX;
		poll(&pfd, 1, (int)left);
	}
}

int
pgb_watch_fd(const pgb_watch *w)
{
	return (w->fd);
}

int
pgb_watch_connected(const pgb_watch *w)
{
	return (w->fd != -1);
}

const char *
pgb_watch_error(const pgb_watch *w)
{
	return (w->error);
}
