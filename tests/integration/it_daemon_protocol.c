/*
 * it_daemon_protocol.c - the socket protocol over a real pgbeacond's
 * socket (malformed, binary, unknown, over-long requests; the socket
 * file's mode and removal), and "pgbeacond -t" on good and bad files.
 *
 * No PostgreSQL is needed: cluster "main" lists one closed port, so it
 * exists but has no host.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>

#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/daemon_util.h"
#include "../check_main.h"

/* Per test: its directory (under /tmp) and its daemon. */
static char		*dir;
static struct it_daemon	*dmn;

static void
setup(void)
{
	dir = itd_mkdtemp();
}

static void
teardown(void)
{
	it_daemon_kill(dmn);
	dmn = NULL;
	itd_rmdir_all(dir);
	free(dir);
	dir = NULL;
}

/* The daemon with cluster "main" on a closed port; extra as it_config. */
static const char *
start_daemon(const char *extra)
{
	char		 hp[64], *conf;
	const char	*hosts[1];

	hosts[0] = itd_hostport(hp, sizeof hp, it_free_port());
	conf = it_config_hosts(dir, "main", hosts, 1, extra);
	dmn = it_daemon_start(conf, dir);
	free(conf);
	return it_daemon_socket(dmn);
}

/* A connection to s. */
static int
connect_ok(const char *s)
{
	int	 fd = it_sock_connect(s);

	ck_assert_int_ne(fd, -1);
	return fd;
}

/* Sends line on fd and asserts the reply starts with "ERR <code> ". */
static void
assert_err(int fd, const char *line, const char *code)
{
	char	 prefix[32], *reply;

	snprintf(prefix, sizeof prefix, "ERR %s ", code);
	reply = it_sock_request(fd, line, ITD_REPLY_MS);
	ITD_ASSERT(dmn, reply != NULL, "no reply to \"%s\"", line);
	ck_assert_msg(strncmp(reply, prefix, strlen(prefix)) == 0,
	    "\"%s\" -> \"%s\", expected %s...", line, reply, prefix);
	free(reply);
}

/* PING -> PONG on fd. */
static void
assert_pong(int fd)
{
	char	*reply = it_sock_request(fd, "PING", ITD_REPLY_MS);

	ITD_ASSERT(dmn, reply != NULL, "no reply to PING");
	ck_assert_str_eq(reply, "PONG");
	free(reply);
}

/* --- requests ------------------------------------------------------------ */

START_TEST(test_malformed_lines_get_badreq_and_connection_survives)
{
	static const char *const bad[] = {
		"",
		"HELLO",
		"RESOLVE",
		"RESOLVE main",
		"RESOLVE main master max_lag_ms=abc",
		"RESOLVE main master min_lsn=nonsense",
		"RESOLVE main master fallback=maybe",
		"RESOLVE main master noequals",
	};
	const char	*s;
	size_t		 i;
	int		 fd;

	s = start_daemon(NULL);
	fd = connect_ok(s);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_err(fd, bad[i], "BADREQ");
		assert_pong(fd);
	}
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_binary_garbage_gets_badreq)
{
	static const char garbage[] = { 0x00, 0x01, (char)0xff, '\n' };
	static const char garbage2[] = "RESOLVE main \x01\xff\n";
	const char	*s;
	char		*reply;
	int		 fd;

	s = start_daemon(NULL);
	fd = connect_ok(s);
	ck_assert_int_eq(send(fd, garbage, sizeof garbage, MSG_NOSIGNAL),
	    (ssize_t)sizeof garbage);
	reply = it_sock_readline(fd, ITD_REPLY_MS);
	ITD_ASSERT(dmn, reply != NULL, "no reply to binary garbage");
	ck_assert_msg(strncmp(reply, "ERR BADREQ ", 11) == 0, "reply: %s",
	    reply);
	free(reply);
	assert_pong(fd);

	ck_assert_int_eq(send(fd, garbage2, sizeof garbage2 - 1, MSG_NOSIGNAL),
	    (ssize_t)sizeof garbage2 - 1);
	reply = it_sock_readline(fd, ITD_REPLY_MS);
	ITD_ASSERT(dmn, reply != NULL, "no reply to binary garbage");
	ck_assert_msg(strncmp(reply, "ERR BADREQ ", 11) == 0 ||
	    strncmp(reply, "ERR BADROLE ", 12) == 0, "reply: %s", reply);
	free(reply);
	assert_pong(fd);

	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_unknown_cluster_gets_nocluster)
{
	const char	*s;
	int		 fd;

	s = start_daemon(NULL);
	fd = connect_ok(s);
	assert_err(fd, "RESOLVE nosuchcluster master", "NOCLUSTER");
	assert_err(fd, "RESOLVE nosuchcluster replica", "NOCLUSTER");
	assert_err(fd, "STATUS nosuchcluster", "NOCLUSTER");
	assert_err(fd, "WATCH nosuchcluster", "NOCLUSTER");
	/* the known cluster, with no live host */
	assert_err(fd, "RESOLVE main master", "NOHOST");
	assert_pong(fd);
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_unknown_role_gets_badrole)
{
	const char	*s;
	int		 fd;

	s = start_daemon(NULL);
	fd = connect_ok(s);
	assert_err(fd, "RESOLVE main nosuchrole", "BADROLE");
	assert_err(fd, "RESOLVE main MASTERS", "BADROLE");
	assert_pong(fd);
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_overlong_line_gets_badreq_then_eof_others_served)
{
	enum { LONG = 5000 };
	const char	*s;
	char		*line, *reply;
	int		 fd, other;

	s = start_daemon(NULL);
	other = connect_ok(s);
	assert_pong(other);
	fd = connect_ok(s);

	line = malloc(LONG + 1);
	ck_assert_ptr_nonnull(line);
	memcpy(line, "RESOLVE main master ", 20);
	memset(line + 20, 'x', LONG - 20);
	line[LONG] = '\0';
	ck_assert_int_eq(it_sock_send(fd, line), 0);
	free(line);
	reply = it_sock_readline(fd, ITD_REPLY_MS);
	ITD_ASSERT(dmn, reply != NULL, "no reply to a %d-byte line", LONG);
	ck_assert_msg(strncmp(reply, "ERR BADREQ ", 11) == 0, "reply: %s",
	    reply);
	free(reply);
	ITD_ASSERT(dmn, itd_sees_eof(fd, ITD_REPLY_MS),
	    "connection not closed after an over-long line");
	it_sock_close(fd);

	/* everyone else is still served */
	assert_pong(other);
	it_sock_close(other);
	other = connect_ok(s);
	assert_pong(other);
	it_sock_close(other);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_line_of_exactly_max_length_is_accepted)
{
	enum { MAX = 4096 };
	const char	*s;
	char		*line, *reply;
	int		 fd;

	/* 4096 bytes is a legal line: it gets an answer, not a close */
	s = start_daemon(NULL);
	fd = connect_ok(s);
	line = malloc(MAX + 1);
	ck_assert_ptr_nonnull(line);
	memcpy(line, "RESOLVE main master max_lag_ms=", 31);
	memset(line + 31, '1', MAX - 31);
	line[MAX] = '\0';
	ck_assert_int_eq(it_sock_send(fd, line), 0);
	free(line);
	reply = it_sock_readline(fd, ITD_REPLY_MS);
	ITD_ASSERT(dmn, reply != NULL, "no reply to a %d-byte line", MAX);
	ck_assert_msg(strncmp(reply, "ERR ", 4) == 0, "reply: %s", reply);
	free(reply);
	assert_pong(fd);
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- the socket file ---------------------------------------------------------- */

/* The socket's permission bits with socket_mode = mode. */
static void
assert_socket_mode(const char *mode, mode_t want)
{
	char		 extra[64];
	const char	*s;
	struct stat	 sb;

	snprintf(extra, sizeof extra, "socket_mode = \"%s\";", mode);
	s = start_daemon(extra);
	ck_assert_int_eq(stat(s, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_msg((sb.st_mode & 07777) == want, "socket mode %04o, "
	    "configured %s", (unsigned)(sb.st_mode & 07777), mode);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}

START_TEST(test_socket_file_has_configured_mode_0600)
{
	assert_socket_mode("0600", 0600);
}
END_TEST

START_TEST(test_socket_file_has_configured_mode_0666)
{
	assert_socket_mode("0666", 0666);
}
END_TEST

START_TEST(test_sigterm_removes_socket_and_exits_zero)
{
	char		*sock;
	struct stat	 sb;
	int		 fd;

	sock = strdup(start_daemon(NULL));
	fd = connect_ok(sock);
	assert_pong(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	ck_assert_msg(lstat(sock, &sb) == -1 && errno == ENOENT,
	    "%s is still there after SIGTERM", sock);
	ck_assert(itd_sees_eof(fd, ITD_REPLY_MS));
	it_sock_close(fd);
	free(sock);
}
END_TEST

/* --- pgbeacond -t ------------------------------------------------------------ */

/* Writes text to dir/name; returns the path (caller frees). */
static char *
write_conf(const char *name, const char *text)
{
	char	*path;
	FILE	*f;

	ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ne(fputs(text, f), EOF);
	ck_assert_int_eq(fclose(f), 0);
	return path;
}

/* "pgbeacond -t -c dir/bad.conf" fails naming bad.conf and line. */
static void
assert_check_fails_at(const char *text, int line)
{
	char	*path, *err, want[64];
	int	 rc;

	path = write_conf("bad.conf", text);
	rc = itd_run_check(path, &err);
	ck_assert_msg(rc != 0 && rc < 128, "pgbeacond -t exit status %d", rc);
	ck_assert_ptr_nonnull(err);
	snprintf(want, sizeof want, "bad.conf:%d: ", line);
	ck_assert_msg(strstr(err, want) != NULL, "no \"%s\" on stderr: %s",
	    want, err);
	free(err);
	free(path);
}

START_TEST(test_check_good_config_exits_zero)
{
	char		 hp[64], *conf, *path, *err;
	const char	*hosts[1];
	int		 rc;

	hosts[0] = itd_hostport(hp, sizeof hp, 5432);
	conf = it_config_hosts(dir, "main", hosts, 1, "socket_mode = \"0660\";");
	path = write_conf("good.conf", conf);
	rc = itd_run_check(path, &err);
	ck_assert_msg(rc == 0, "pgbeacond -t exit status %d: %s", rc,
	    err != NULL ? err : "");
	free(err);
	free(path);
	free(conf);
}
END_TEST

START_TEST(test_check_syntax_error_names_file_and_line)
{
	assert_check_fails_at(
	    "socket = \"/tmp/x.sock\";\n"			/* 1 */
	    "check_interval_ms = 100;\n"			/* 2 */
	    "\n"						/* 3 */
	    "max_fails = = 3;\n"				/* 4 */
	    "clusters = ( { name = \"main\"; hosts = ( \"127.0.0.1:5432\" );\n"
	    "  conninfo = \"user=postgres\"; } );\n", 4);
}
END_TEST

START_TEST(test_check_bad_value_names_file_and_line)
{
	assert_check_fails_at(
	    "socket = \"/tmp/x.sock\";\n"			/* 1 */
	    "check_interval_ms = 100;\n"			/* 2 */
	    "max_fails = -3;\n"					/* 3 */
	    "clusters = ( { name = \"main\"; hosts = ( \"127.0.0.1:5432\" );\n"
	    "  conninfo = \"user=postgres\"; } );\n", 3);
}
END_TEST

START_TEST(test_check_bad_host_names_file_and_line)
{
	assert_check_fails_at(
	    "socket = \"/tmp/x.sock\";\n"			/* 1 */
	    "clusters = (\n"					/* 2 */
	    "  { name = \"main\";\n"				/* 3 */
	    "    hosts = ( \"127.0.0.1:99999\" );\n"		/* 4 */
	    "    conninfo = \"user=postgres\"; } );\n", 4);
}
END_TEST

static Suite *
protocol_suite(void)
{
	Suite	*s = suite_create("it_daemon_protocol");
	TCase	*tc;

	tc = tcase_create("requests");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
	    test_malformed_lines_get_badreq_and_connection_survives);
	tcase_add_test(tc, test_binary_garbage_gets_badreq);
	tcase_add_test(tc, test_unknown_cluster_gets_nocluster);
	tcase_add_test(tc, test_unknown_role_gets_badrole);
	tcase_add_test(tc, test_overlong_line_gets_badreq_then_eof_others_served);
	tcase_add_test(tc, test_line_of_exactly_max_length_is_accepted);
	suite_add_tcase(s, tc);

	tc = tcase_create("socket_file");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_socket_file_has_configured_mode_0600);
	tcase_add_test(tc, test_socket_file_has_configured_mode_0666);
	tcase_add_test(tc, test_sigterm_removes_socket_and_exits_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("config_check");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_check_good_config_exits_zero);
	tcase_add_test(tc, test_check_syntax_error_names_file_and_line);
	tcase_add_test(tc, test_check_bad_value_names_file_and_line);
	tcase_add_test(tc, test_check_bad_host_names_file_and_line);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(protocol_suite()));
}
