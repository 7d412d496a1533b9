/*
 * it_daemon_limits.c - a daemon that no local client can starve, against
 * real PostgreSQL: under a low descriptor limit, a flood of HTTP clients
 * that drip their headers one byte at a time neither keeps Unix-socket
 * clients from being served nor keeps the daemon from reconnecting to a
 * restarted primary; and a broken configuration file is parsed once, not
 * at every SIGHUP (libconfig 1.5 leaks a little on some syntax errors).
 *
 * The low limit comes from a wrapper script, run as $PGBEACOND, that
 * lowers RLIMIT_NOFILE and execs the daemon under test.
 */
#include <sys/resource.h>
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

#define DRIPPERS	120

static struct it_cluster	*cl;
static struct it_daemon		*dmn;
static int			 drip_fd[DRIPPERS];
static int			 http_port;

static void
setup(void)
{
	int	i;

	for (i = 0; i < DRIPPERS; i++)
		drip_fd[i] = -1;
}

static void
teardown(void)
{
	int	i;

	for (i = 0; i < DRIPPERS; i++)
		if (drip_fd[i] >= 0)
			close(drip_fd[i]);
	it_daemon_kill(dmn);
	dmn = NULL;
	it_cluster_destroy(cl);
	cl = NULL;
	unsetenv("PGBEACOND");
}

/* A TCP connection to the HTTP listener that sent a request head's first
 * line and one header name, never finished; -1 when none. */
static int
drip_open(void)
{
	static const char start[] = "GET /master HTTP/1.1\r\nX-Drip: ";
	struct sockaddr_in	sin;
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)http_port);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* Completes in the kernel even while the daemon does not accept. */
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    send(fd, start, sizeof(start) - 1, MSG_NOSIGNAL) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One more header byte on every dripping connection; those the daemon
 * closed are opened again, as an attacker would. */
static void
drip(void)
{
	int	i;

	for (i = 0; i < DRIPPERS; i++) {
		if (drip_fd[i] >= 0 && send(drip_fd[i], "x", 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
			close(drip_fd[i]);
			drip_fd[i] = -1;
		}
		if (drip_fd[i] < 0)
			drip_fd[i] = drip_open();
	}
}

/* How many times needle is in the daemon's log. */
static int
log_count(const char *needle)
{
	char		*text = itd_read_file(it_daemon_log(dmn));
	const char	*p;
	int		 n = 0;

	for (p = text; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(text);
	return n;
}

/* Writes a script that runs the daemon under test with RLIMIT_NOFILE at
 * soft/hard, and makes it $PGBEACOND. */
static void
use_low_fd_limit(const char *dir, int soft, int hard)
{
	char	path[512];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/pgbeacond-lowfd", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\nulimit -Sn %d && ulimit -Hn %d || exit 99\n"
	    "exec '%s' \"$@\"\n", soft, hard, it_daemon_binary());
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	ck_assert_int_eq(setenv("PGBEACOND", path, 1), 0);
}

START_TEST(test_http_drip_flood_under_a_low_fd_limit_starves_nobody)
{
	struct rlimit	 rl;
	char		*conf, settings[256];
	const char	*sock;
	int		 n0, i, open_drips;

	/* This process holds the drippers too. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);

	cl = it_cluster_create(1);
	n0 = it_port(cl, 0);
	http_port = it_free_port();
	snprintf(settings, sizeof(settings), "http_listen = \"127.0.0.1:%d\";\n",
	    http_port);
	conf = it_config(cl, "main", settings);
	use_low_fd_limit(it_cluster_dir(cl), 40, 64);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	sock = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(it_resolves_to(sock, "main", "master",
	    n0), ITD_STATE_MS), "node0 never master");
	ITD_ASSERT(dmn, itd_log_contains(dmn, "raised the descriptor limit "
	    "from 40 to 64"), "the soft limit was not raised to the hard one");

	/* 120 clients dripping headers: far more than 64 descriptors. */
	for (i = 0; i < DRIPPERS; i++)
		drip_fd[i] = drip_open();
	for (i = 0, open_drips = 0; i < DRIPPERS; i++)
		open_drips += drip_fd[i] >= 0;
	ck_assert_int_ge(open_drips, 100);
	drip();

	/* Unix-socket clients are still served, one after the other. */
	for (i = 0; i < 20; i++) {
		drip();
		ITD_ASSERT(dmn, it_resolves_to(sock, "main", "master", n0),
		    "socket client %d not served during the HTTP flood", i);
	}

	/* The primary restarts: the daemon must reconnect to it. */
	it_stop(cl, 0, "fast");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({ drip(); itd_host_is(sock, "main", n0,
	    false, NULL); }), ITD_STATE_MS), "the stop of node0 never seen");
	it_start(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({ drip(); it_resolves_to(sock, "main",
	    "master", n0); }), ITD_STATE_MS), "the daemon never reconnected to "
	    "the restarted primary during the HTTP flood");

	/* And never ran out of descriptors, or at least never said so at
	 * every turn of its loop. */
	ITD_ASSERT(dmn, log_count("Too many open files") <= 3, "%d lines "
	    "about running out of descriptors",
	    log_count("Too many open files"));
	ITD_ASSERT(dmn, log_count("could not create socket") == 0,
	    "a probe could not get a descriptor");
}
END_TEST

START_TEST(test_broken_config_is_parsed_once_not_at_every_sighup)
{
	char	*good, *bad;
	int	 i;

	cl = it_cluster_create(0);
	good = it_config(cl, "main", NULL);
	dmn = it_daemon_start(good, it_cluster_dir(cl));
	/* A string where a value's name should be: libconfig 1.5 leaks
	 * that string when it stops on the error. */
	if (asprintf(&bad, "%s\n\"a string where a name should be\";\n",
	    good) < 0)
		ck_abort_msg("out of memory");
	for (i = 1; i <= 5; i++) {
		it_daemon_reload(dmn, bad);
		ITD_ASSERT(dmn, IT_POLL_UNTIL(log_count("reload failed") == i,
		    ITD_STATE_MS), "reload %d not answered", i);
	}
	ck_assert_int_eq(log_count("syntax error"), 1);
	ck_assert_int_eq(log_count("is unchanged since the last failed "
	    "reload"), 4);
	/* Fixed, it loads at once. */
	it_daemon_reload(dmn, good);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_log_contains(dmn, "reloaded: 1 "
	    "cluster"), ITD_STATE_MS), "the fixed file was not loaded");
	/* Broken again the same way: parsed again (it was good in between). */
	it_daemon_reload(dmn, bad);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(log_count("syntax error") == 2,
	    ITD_STATE_MS), "the new failure was not parsed");
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	free(bad);
	free(good);
}
END_TEST

static Suite *
limits_suite(void)
{
	Suite	*s = suite_create("it_daemon_limits");
	TCase	*tc;

	tc = tcase_create("starve");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc,
	    test_http_drip_flood_under_a_low_fd_limit_starves_nobody);
	tcase_add_test(tc,
	    test_broken_config_is_parsed_once_not_at_every_sighup);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(limits_suite()));
}
