/*
 * http.h - the one HTTP client of the integration tests and the
 * benchmarks, in two forms:
 *
 *  - raw: a connection to "127.0.0.1:PORT" or a Unix socket path, bytes
 *    written as given and the answer read to EOF, for tests of the
 *    protocol itself (pipelining, half-close, bad requests);
 *  - evhttp (libevent's client): any number of GET requests at once,
 *    each on its own connection, each answer recorded (wa_*, the names
 *    the webapp tests have always used).
 *
 * Failure convention: the raw form returns -1/false so that it can be
 * polled; the evhttp form fails the test (it_fail()) when libevent
 * cannot even make the request.
 */
#ifndef PGB_IT_HTTP_H
#define PGB_IT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_connection;

/* --- raw ----------------------------------------------------------------- */

/* A connected socket to target ("HOST:PORT" on 127.0.0.1, or a path
 * starting with '/': a Unix socket), or -1. */
int it_http_connect(const char *target);

/*
 * Reads fd until EOF, an error or timeout_ms; the bytes read into *buf
 * (NUL-terminated; the caller frees; never NULL) and their count into
 * *len.  Returns 1 when the peer closed (EOF), -1 on a read error (a
 * reset), 0 at the deadline.  Does not close fd.
 */
int it_http_read_to_eof(int fd, int timeout_ms, char **buf, size_t *len);

/*
 * Connects to target, sends the reqlen bytes at request (all of them that
 * the server takes before closing) and reads the answer to EOF or
 * timeout_ms.  The whole answer, head included, into *buf and *len as
 * it_http_read_to_eof() does.  Returns its HTTP status ("HTTP/1.x NNN"),
 * 0 when the answer is not HTTP, -1 when nothing could be connected or
 * nothing came back (*buf is then NULL).
 */
int it_http_raw(const char *target, const char *request, size_t reqlen,
    int timeout_ms, char **buf, size_t *len);

/* --- evhttp -------------------------------------------------------------- */

/* One answer. */
struct wa_resp {
	int	 status;		/* HTTP code; -1: no answer */
	char	 body[2048];
	char	 cookie[128];		/* Set-Cookie up to the first ';' */
	char	 content_type[64];	/* Content-Type, "" when none */
	int64_t	 t_sent;
	int64_t	 t_done;
};

/* Requests in flight on one loop: the loop breaks when left reaches 0. */
struct wa_batch {
	struct event_base	*base;
	int			 left;
};

/* One request of a batch; conn is the caller's to free after the loop. */
struct wa_one {
	struct wa_batch		*batch;
	struct wa_resp		*resp;
	struct evhttp_connection *conn;
	const char		*path;
	const char		*cookie;
	int			 port;
};

/* Sends o's GET on a new connection of o->batch->base; the answer lands
 * in o->resp when the loop runs. */
void wa_send(struct wa_one *o);

/*
 * Sends n GET requests to port (paths[i], with cookie when not NULL),
 * each on its own connection: all at once when gap_ms is 0, else one
 * every gap_ms.  Returns when every one was answered (or failed).
 */
void wa_get_many(int port, const char *const *paths, const char *cookie,
    struct wa_resp *out, int n, int gap_ms);
/* One GET; the answer in *out. */
void wa_get(int port, const char *path, const char *cookie,
    struct wa_resp *out);

/*
 * Opens a TCP connection to port and sends "GET path" on it without
 * waiting for the answer: a client that may go away mid-request (close
 * the returned fd) or whose answer is read with wa_raw_read.  Fails the
 * test when it cannot connect.
 */
int wa_raw_send(int port, const char *path);
/*
 * Reads what the server sends on fd until it closes the connection or
 * timeout_ms passes; returns the byte count (0: closed without a word,
 * -1: still open at the deadline or an error); at most len - 1 bytes are
 * kept in buf, NUL-terminated.  Closes fd.
 */
int wa_raw_read(int fd, char *buf, size_t len, int timeout_ms);

#endif /* PGB_IT_HTTP_H */
