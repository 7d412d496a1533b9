/*
 * check_server.c - unit tests of daemon/server.c: how descriptors are
 * shared out between the listeners, the accept back-off, and a real
 * server on a temporary socket (no monitor: PING needs none) for the
 * half-close, the listen backlog and the client cap.
 *
 * The server runs on this process's own event_base, driven with
 * EVLOOP_NONBLOCK between the client's steps: nothing here depends on
 * timing, only on the order of events.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "server.h"
#include "../check_main.h"

static Suite	*server_suite(void);

/* --- descriptor budget ---------------------------------------------------- */

START_TEST(test_caps_leave_the_reserve_free_and_split_a_short_budget)
{
	struct server_fd_budget	b = { 64, 12, 3, 4096, 2048, true };
	size_t			sock, http, reserve;

	reserve = SERVER_FD_SLACK + SERVER_FDS_PER_HOST * 3;
	server_client_caps(&b, &sock, &http);
	ck_assert_uint_le(sock + http + b.in_use + reserve, b.limit);
	/* HTTP never takes more than half: the socket keeps its share. */
	ck_assert_uint_ge(sock, http);
	ck_assert_uint_gt(http, 0);
	ck_assert_uint_eq(sock + http, b.limit - b.in_use - reserve);

	/* No HTTP listener: all of it for the socket. */
	b.http = false;
	server_client_caps(&b, &sock, &http);
	ck_assert_uint_eq(sock, b.limit - b.in_use - reserve);
}
END_TEST

START_TEST(test_caps_are_the_settings_when_descriptors_abound)
{
	struct server_fd_budget	b = { 1048576, 20, 10, 4096, 2048, true };
	size_t			sock, http;

	server_client_caps(&b, &sock, &http);
	ck_assert_uint_eq(sock, 4096);
	ck_assert_uint_eq(http, 2048);
	/* A small HTTP setting leaves the rest to the socket. */
	b.limit = 1000;
	b.http_setting = 10;
	server_client_caps(&b, &sock, &http);
	ck_assert_uint_eq(http, 10);
	ck_assert_uint_eq(sock, 1000 - 20 - SERVER_FD_SLACK -
	    SERVER_FDS_PER_HOST * 10 - 10);
}
END_TEST

START_TEST(test_caps_never_drop_to_zero)
{
	struct server_fd_budget	b = { 16, 14, 3, 4096, 2048, true };
	size_t			sock, http;

	server_client_caps(&b, &sock, &http);
	ck_assert_uint_eq(sock, 1);
	ck_assert_uint_eq(http, 1);
}
END_TEST

/* --- accept back-off -------------------------------------------------------- */

START_TEST(test_backoff_doubles_to_a_cap_and_logs_once_per_period)
{
	struct server_backoff	b;
	unsigned		suppressed, lines = 0, total = 0;
	int64_t			now = 1000;
	bool			log;
	int			ms, last = 0;

	memset(&b, 0, sizeof(b));
	ms = server_backoff_fail(&b, now, &log, &suppressed);
	ck_assert_int_eq(ms, SERVER_BACKOFF_MIN_MS);
	ck_assert(log);
	ck_assert_uint_eq(suppressed, 0);
	/* Out of descriptors for 60 s: the pauses grow, the log is quiet. */
	while (now < 61000) {
		now += ms;
		last = ms;
		ms = server_backoff_fail(&b, now, &log, &suppressed);
		ck_assert_int_ge(ms, last);
		ck_assert_int_le(ms, SERVER_BACKOFF_MAX_MS);
		total++;
		if (log) {
			lines++;
			ck_assert_uint_gt(suppressed, 0);
		}
	}
	ck_assert_int_eq(ms, SERVER_BACKOFF_MAX_MS);
	ck_assert_msg(lines <= 60000 / SERVER_BACKOFF_LOG_MS, "%u lines for "
	    "%u errors", lines, total);
	/* One success: the next pause is the shortest again. */
	server_backoff_ok(&b);
	ck_assert_int_eq(server_backoff_fail(&b, now + 1, &log, &suppressed),
	    SERVER_BACKOFF_MIN_MS);
}
END_TEST

/* --- event priorities ---------------------------------------------------------- */

struct flood {
	int	 pipe_w;	/* written by the 10th HTTP callback */
	int	 http_ran;	/* HTTP callbacks run so far */
	int	 socket_at;	/* http_ran when the socket event ran; -1 */
};

static void
flood_http_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flood *f = arg;

	(void)fd;
	(void)what;
	if (++f->http_ran == 10 && write(f->pipe_w, "x", 1) != 1)
		ck_abort_msg("write: %s", strerror(errno));
}

static void
flood_socket_cb(evutil_socket_t fd, short what, void *arg)
{
	struct flood *f = arg;

	(void)fd;
	(void)what;
	f->socket_at = f->http_ran;
}

START_TEST(test_socket_event_waits_one_http_slice_not_the_whole_flood)
{
	struct event_base	*b = server_base_new();
	struct event		*sock, *http[1000];
	struct flood		 f = { -1, 0, -1 };
	int			 p[2], i;

	/* 1,000 HTTP callbacks ready at once; the 10th makes a socket
	 * client readable.  Its event must run after the current slice, not
	 * after all 1,000. */
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(event_base_get_npriorities(b), SERVER_NPRIO);
	ck_assert_int_eq(pipe(p), 0);
	f.pipe_w = p[1];
	sock = event_new(b, p[0], EV_READ, flood_socket_cb, &f);
	ck_assert_int_eq(event_priority_set(sock, SERVER_PRIO_SOCKET), 0);
	ck_assert_int_eq(event_add(sock, NULL), 0);
	for (i = 0; i < 1000; i++) {
		http[i] = event_new(b, -1, 0, flood_http_cb, &f);
		ck_assert_int_eq(event_priority_set(http[i], SERVER_PRIO_HTTP),
		    0);
		event_active(http[i], EV_TIMEOUT, 1);
	}
	while (f.http_ran < 1000)
		event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert_msg(f.socket_at >= 10 && f.socket_at <= 10 +
	    SERVER_HTTP_SLICE, "the socket event ran after %d HTTP callbacks",
	    f.socket_at);
	for (i = 0; i < 1000; i++)
		event_free(http[i]);
	event_free(sock);
	close(p[0]);
	close(p[1]);
	event_base_free(b);
}
END_TEST

/* --- a real server ------------------------------------------------------------ */

static char		 dir[40], path[80];
static struct event_base *base;
static struct server	*srv;

static void
setup(void)
{
	char err[256];

	strcpy(dir, "/tmp/check_server.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	srv = server_new(base, path, 0600, NULL, err, sizeof(err));
	ck_assert_msg(srv != NULL, "%s", err);
}

static void
teardown(void)
{
	char lock[160];

	server_free(srv);
	srv = NULL;
	event_base_free(base);
	base = NULL;
	snprintf(lock, sizeof(lock), "%s.lock", path);
	unlink(lock);
	rmdir(dir);
}

/* A non-blocking connection to the server, or -1 with errno. */
static int
client(void)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Runs the loop until pred() or about 10 s of iterations. */
static bool
spin_until(bool (*pred)(void *), void *arg)
{
	struct timespec	 ts = { 0, 1000 * 1000 };
	int		 i;

	for (i = 0; i < 10000; i++) {
		if (pred(arg))
			return true;
		event_base_loop(base, EVLOOP_NONBLOCK);
		nanosleep(&ts, NULL);
	}
	return pred(arg);
}

/* Reads fd (non-blocking) into a growing buffer until EOF. */
struct reader {
	int	 fd;
	char	 buf[65536];
	size_t	 len;
	bool	 eof;
};

static bool
reader_done(void *arg)
{
	struct reader	*r = arg;
	ssize_t		 n;

	while (!r->eof && r->len < sizeof(r->buf)) {
		n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
		if (n > 0)
			r->len += (size_t)n;
		else if (n == 0)
			r->eof = true;
		else
			break;	/* EAGAIN */
	}
	return r->eof;
}

static size_t
count_lines(const struct reader *r, const char *line)
{
	size_t	 n = 0, len = strlen(line);
	size_t	 i;

	for (i = 0; i + len <= r->len; i += len) {
		if (memcmp(r->buf + i, line, len) != 0)
			break;
		n++;
	}
	return n;
}

START_TEST(test_half_close_gets_a_reply_to_every_request)
{
	struct reader	r;
	char		reqs[50 * 5 + 4];
	size_t		i;

	memset(&r, 0, sizeof(r));
	for (i = 0; i < 50; i++)
		memcpy(reqs + i * 5, "PING\n", 5);
	r.fd = client();
	ck_assert_int_ge(r.fd, 0);
	ck_assert_int_eq(write(r.fd, reqs, 250), 250);
	ck_assert_int_eq(shutdown(r.fd, SHUT_WR), 0);
	ck_assert(spin_until(reader_done, &r));
	ck_assert_uint_eq(count_lines(&r, "PONG\n"), 50);
	ck_assert_uint_eq(r.len, 250);
	close(r.fd);

	/* An unterminated last line is a request too. */
	memset(&r, 0, sizeof(r));
	r.fd = client();
	ck_assert_int_ge(r.fd, 0);
	ck_assert_int_eq(write(r.fd, "PING\nPING", 9), 9);
	ck_assert_int_eq(shutdown(r.fd, SHUT_WR), 0);
	ck_assert(spin_until(reader_done, &r));
	ck_assert_uint_eq(count_lines(&r, "PONG\n"), 2);
	close(r.fd);
}
END_TEST

START_TEST(test_half_close_waits_for_a_large_backlog_of_replies)
{
	struct reader	 r;
	char		*reqs;
	size_t		 n = 60000, i;
	ssize_t		 w;
	size_t		 off = 0, got = 0;

	/* More replies than the output watermark: the client is throttled
	 * and the EOF must still wait for every reply. */
	reqs = malloc(n * 5);
	ck_assert_ptr_nonnull(reqs);
	for (i = 0; i < n; i++)
		memcpy(reqs + i * 5, "PING\n", 5);
	memset(&r, 0, sizeof(r));
	r.fd = client();
	ck_assert_int_ge(r.fd, 0);
	while (off < n * 5) {
		w = write(r.fd, reqs + off, n * 5 - off);
		if (w > 0)
			off += (size_t)w;
		event_base_loop(base, EVLOOP_NONBLOCK);
		/* Drain what came back so that neither side blocks. */
		while (!r.eof && (w = read(r.fd, r.buf, sizeof(r.buf))) > 0)
			got += (size_t)w;
	}
	ck_assert_int_eq(shutdown(r.fd, SHUT_WR), 0);
	for (i = 0; i < 100000 && !r.eof; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		w = read(r.fd, r.buf, sizeof(r.buf));
		if (w > 0)
			got += (size_t)w;
		else if (w == 0)
			r.eof = true;
	}
	ck_assert(r.eof);
	ck_assert_uint_eq(got, n * 5);	/* "PONG\n" each */
	close(r.fd);
	free(reqs);
}
END_TEST

START_TEST(test_backlog_takes_a_burst_of_connects)
{
	struct rlimit	 rl;
	int		*fds, n = 1000, i, refused = 0;

	/* The server does not run while the burst comes: only the listen
	 * backlog holds the connections (128 would refuse 872 of them). */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < (rlim_t)n + 64)
		n = (int)rl.rlim_cur - 64;
	ck_assert_int_gt(n, 300);
	fds = calloc((size_t)n, sizeof(*fds));
	ck_assert_ptr_nonnull(fds);
	for (i = 0; i < n; i++)
		if ((fds[i] = client()) < 0)
			refused++;
	ck_assert_msg(refused == 0, "%d of %d connects refused: %s", refused,
	    n, strerror(errno));
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}
END_TEST

static bool
nclients_is(void *arg)
{
	return server_nclients(srv) == *(size_t *)arg;
}

START_TEST(test_listener_pauses_at_the_cap_and_resumes_below)
{
	struct reader	r;
	size_t		want;
	int		fds[8], i;

	server_set_max_clients(srv, 5);
	for (i = 0; i < 8; i++) {
		fds[i] = client();	/* the backlog holds the extra ones */
		ck_assert_int_ge(fds[i], 0);
	}
	want = 5;
	ck_assert(spin_until(nclients_is, &want));
	for (i = 0; i < 100; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert_uint_eq(server_nclients(srv), 5);
	/* One leaves: one more is taken, and answered. */
	close(fds[0]);
	want = 5;
	ck_assert(spin_until(nclients_is, &want));
	memset(&r, 0, sizeof(r));
	r.fd = fds[7];
	ck_assert_int_eq(write(r.fd, "PING\n", 5), 5);
	ck_assert_int_eq(shutdown(r.fd, SHUT_WR), 0);
	for (i = 1; i < 6; i++)
		close(fds[i]);	/* make room for fds[7] */
	ck_assert(spin_until(reader_done, &r));
	ck_assert_uint_eq(count_lines(&r, "PONG\n"), 1);
	close(fds[6]);
	close(fds[7]);
	want = 0;
	ck_assert(spin_until(nclients_is, &want));
}
END_TEST

static Suite *
server_suite(void)
{
	Suite	*s = suite_create("server");
	TCase	*tc;

	tc = tcase_create("limits");
	tcase_add_test(tc,
	    test_caps_leave_the_reserve_free_and_split_a_short_budget);
	tcase_add_test(tc, test_caps_are_the_settings_when_descriptors_abound);
	tcase_add_test(tc, test_caps_never_drop_to_zero);
	tcase_add_test(tc, test_backoff_doubles_to_a_cap_and_logs_once_per_period);
	tcase_add_test(tc,
	    test_socket_event_waits_one_http_slice_not_the_whole_flood);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_half_close_gets_a_reply_to_every_request);
	tcase_add_test(tc, test_half_close_waits_for_a_large_backlog_of_replies);
	tcase_add_test(tc, test_backlog_takes_a_burst_of_connects);
	tcase_add_test(tc, test_listener_pauses_at_the_cap_and_resumes_below);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(server_suite()));
}
