/*
 * it_daemon_lifecycle.c - pgbeacond's own life: killed and restarted
 * while a client holds a connection, a second daemon on the same socket,
 * SIGHUP with a good and with a broken configuration.
 *
 * The tests only read the cluster, so one cluster (node0 + node1) serves
 * the whole binary; each test runs its daemon in its own directory.
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/daemon_util.h"
#include "../check_main.h"

/* Shared by every test: made once in the runner, before the forks. */
static struct it_cluster	*cl;
/* Per test. */
static struct it_daemon		*dmn, *dmn2;

static void
cluster_setup(void)
{
	cl = it_cluster_create(1);
}

static void
cluster_teardown(void)
{
	it_cluster_destroy(cl);
	cl = NULL;
}

static void
teardown(void)
{
	it_daemon_kill(dmn2);
	dmn2 = NULL;
	it_daemon_kill(dmn);
	dmn = NULL;
}

/* A fresh directory for one test's daemon, inside the cluster's (caller
 * frees the string). */
static char *
test_dir(const char *name)
{
	char	*dir;

	ck_assert_int_gt(asprintf(&dir, "%s/%s", it_cluster_dir(cl), name), 0);
	ck_assert_msg(mkdir(dir, 0755) == 0 || errno == EEXIST, "%s: %s", dir,
	    strerror(errno));
	return dir;
}

/* Cluster "main" = node0, node1, daemon files in dir (caller frees). */
static char *
main_config(const char *dir, const char *extra)
{
	char		 h0[64], h1[64];
	const char	*hosts[2];

	hosts[0] = itd_hostport(h0, sizeof h0, it_port(cl, 0));
	hosts[1] = itd_hostport(h1, sizeof h1, it_port(cl, 1));
	return it_config_hosts(dir, "main", hosts, 2, extra);
}

static void
wait_master_node0(struct it_daemon *d)
{
	ITD_ASSERT(d, IT_POLL_UNTIL(itd_resolve_port(it_daemon_socket(d),
	    "main", "master") == it_port(cl, 0), ITD_STATE_MS),
	    "master never resolved to node0");
}

/* PING -> PONG on fd. */
static bool
pings(int fd)
{
	char	*reply = it_sock_request(fd, "PING", ITD_REPLY_MS);
	bool	 ok = reply != NULL && strcmp(reply, "PONG") == 0;

	free(reply);
	return ok;
}

/* PING -> PONG on a new connection to sock. */
static bool
pings_new(const char *sock)
{
	int	 fd = it_sock_connect(sock);
	bool	 ok = fd != -1 && pings(fd);

	if (fd != -1)
		it_sock_close(fd);
	return ok;
}

/* --- restarts ----------------------------------------------------------------- */

START_TEST(test_restart_after_sigkill_replaces_stale_socket)
{
	char		*dir, *conf, *sock;
	struct stat	 sb;
	struct itd_answer a;
	int		 fd;

	dir = test_dir("restart");
	conf = main_config(dir, NULL);
	dmn = it_daemon_start(conf, dir);
	sock = strdup(it_daemon_socket(dmn));
	wait_master_node0(dmn);
	fd = it_sock_connect(sock);
	ck_assert_int_ne(fd, -1);
	ck_assert(pings(fd));

	/* SIGKILL leaves the socket file behind, with nobody listening */
	it_daemon_kill(dmn);
	dmn = NULL;
	ck_assert_int_eq(lstat(sock, &sb), 0);
	ck_assert(S_ISSOCK(sb.st_mode));
	ck_assert_int_eq(it_sock_connect(sock), -1);

	/* a new daemon on the same configuration replaces it */
	dmn = it_daemon_start(conf, dir);
	ck_assert(pings_new(sock));
	wait_master_node0(dmn);
	/* node1 may be probed after node0: until then "replica" falls back
	 * to the master. */
	ck_assert(IT_POLL_UNTIL(itd_resolve(sock, "main", "replica", &a) &&
	    a.ok && a.port == it_port(cl, 1), ITD_STATE_MS));

	/* the old client's connection ended with its daemon */
	ck_assert_msg(itd_sees_eof(fd, ITD_REPLY_MS),
	    "the old connection did not see EOF");
	ck_assert_ptr_null(it_sock_readline(fd, 200));
	it_sock_close(fd);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	free(sock);
	free(conf);
	free(dir);
}
END_TEST

START_TEST(test_second_daemon_on_same_socket_is_refused)
{
	char		*dir, *dir2, *conf, *log2, *sock, *lock;
	struct stat	 sb;
	int		 fd, st = 0;

	dir = test_dir("first");
	dir2 = test_dir("second");
	conf = main_config(dir, NULL);
	dmn = it_daemon_start(conf, dir);
	wait_master_node0(dmn);
	fd = it_sock_connect(it_daemon_socket(dmn));
	ck_assert_int_ne(fd, -1);

	/* same configuration, so the same socket; its own log in dir2 */
	dmn2 = it_daemon_spawn(conf, dir2);
	ITD_ASSERT(dmn2, it_daemon_exited(dmn2, ITD_STATE_MS, &st),
	    "the second daemon is still running");
	ITD_ASSERT(dmn2, st != 0 && st < 128, "second daemon exit status %d",
	    st);
	log2 = itd_read_file(it_daemon_log(dmn2));
	ck_assert_ptr_nonnull(log2);
	ck_assert_msg(strstr(log2, "already") != NULL &&
	    strstr(log2, it_daemon_socket(dmn)) != NULL,
	    "no clear message naming the socket: %s", log2);
	free(log2);
	it_daemon_kill(dmn2);
	dmn2 = NULL;

	/* the first one did not notice */
	ck_assert(!it_daemon_exited(dmn, 0, NULL));
	ck_assert_int_eq(lstat(it_daemon_socket(dmn), &sb), 0);
	ck_assert(pings(fd));
	ck_assert(pings_new(it_daemon_socket(dmn)));
	ck_assert_int_eq(itd_resolve_port(it_daemon_socket(dmn), "main",
	    "master"), it_port(cl, 0));
	it_sock_close(fd);

	/* a clean stop leaves neither the socket nor its lock file */
	ck_assert_int_gt(asprintf(&sock, "%s", it_daemon_socket(dmn)), 0);
	ck_assert_int_gt(asprintf(&lock, "%s.lock", sock), 0);
	ck_assert_int_eq(lstat(lock, &sb), 0);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	ck_assert_int_eq(lstat(sock, &sb), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(lstat(lock, &sb), -1);
	ck_assert_int_eq(errno, ENOENT);
	free(lock);
	free(sock);
	free(conf);
	free(dir2);
	free(dir);
}
END_TEST

/* --- SIGHUP ------------------------------------------------------------------- */

START_TEST(test_reload_adds_cluster_and_keeps_clients)
{
	char		*dir, *conf, *conf2, *extra;
	const char	*s;
	struct itd_answer a;
	int64_t		 g;
	int		 fd, w;
	char		*line;

	dir = test_dir("reload-good");
	conf = main_config(dir, NULL);
	dmn = it_daemon_start(conf, dir);
	s = it_daemon_socket(dmn);
	wait_master_node0(dmn);
	/* The replica known too: a change of replicas is pushed (0.6). */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "replica") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as replica");
	g = itd_generation(s, "main");
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	ck_assert(pings(fd));
	ck_assert(itd_resolve_fd(fd, "other", "replica", &a) && !a.ok);
	ck_assert_str_eq(a.code, "NOCLUSTER");
	w = it_sock_connect(s);
	ck_assert_int_ne(w, -1);
	line = it_sock_request(w, "WATCH main", ITD_REPLY_MS);
	ck_assert_ptr_nonnull(line);
	ck_assert_str_eq(line, "OK watching");
	free(line);

	/* main unchanged, "other" = node1 alone */
	ck_assert_int_gt(asprintf(&extra,
	    "clusters = (\n"
	    "  { name = \"main\"; hosts = ( \"127.0.0.1:%d\", \"127.0.0.1:%d\" );\n"
	    "    conninfo = \"user=postgres dbname=postgres\"; },\n"
	    "  { name = \"other\"; hosts = ( \"127.0.0.1:%d\" );\n"
	    "    conninfo = \"user=postgres dbname=postgres\"; }\n"
	    ");", it_port(cl, 0), it_port(cl, 1), it_port(cl, 1)), 0);
	conf2 = it_config_hosts(dir, "unused", NULL, 0, extra);
	it_daemon_reload(dmn, conf2);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "other", "replica") ==
	    it_port(cl, 1), ITD_STATE_MS), "cluster other never resolved");

	/* the connection from before the reload is still served */
	ck_assert(itd_resolve_fd(fd, "other", "replica", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 1));
	ck_assert_str_eq(a.role, "replica");
	ck_assert(itd_resolve_fd(fd, "other", "master", &a) && !a.ok);
	ck_assert_str_eq(a.code, "NOHOST");
	ck_assert(itd_resolve_fd(fd, "main", "master", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 0));
	ck_assert(pings(fd));
	/* main's primary did not change: same generation, nothing pushed */
	ck_assert_int_eq((int64_t)a.generation, g);
	line = it_sock_readline(w, 500);
	ITD_ASSERT(dmn, line == NULL, "unexpected push on reload: %s", line);
	ck_assert(pings(w));
	/* Same socket, socket_mode, http_listen and state_file. */
	ck_assert(!itd_log_contains(dmn, "take effect at restart"));

	/* A setting a reload cannot apply is named in the log (the
	 * CF_NO_RELOAD entries of config.c's table). */
	free(conf2);
	ck_assert_int_gt(asprintf(&conf2, "%ssocket_mode = \"0600\";\n",
	    conf), 0);
	it_daemon_reload(dmn, conf2);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_log_contains(dmn, "socket_mode "
	    "changes take effect at restart"), ITD_STATE_MS),
	    "no restart warning for socket_mode in the log");
	ck_assert(pings(fd));

	it_sock_close(w);
	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	free(conf2);
	free(extra);
	free(conf);
	free(dir);
}
END_TEST

START_TEST(test_reload_broken_config_keeps_running_configuration)
{
	char		*dir, *conf, *broken, needle[512];
	const char	*s, *p;
	struct itd_answer a;
	int		 fd, line;

	dir = test_dir("reload-broken");
	conf = main_config(dir, NULL);
	dmn = it_daemon_start(conf, dir);
	s = it_daemon_socket(dmn);
	wait_master_node0(dmn);
	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	ck_assert(pings(fd));

	/* the good file, a blank line, then a syntax error */
	for (line = 0, p = conf; *p != '\0'; p++)
		line += *p == '\n';
	ck_assert(conf[strlen(conf) - 1] == '\n');
	ck_assert_int_gt(asprintf(&broken, "%s\nmax_fails = = 3;\n", conf), 0);
	line += 2;
	snprintf(needle, sizeof needle, "%s/pgbeacon.conf:%d: ", dir, line);
	ck_assert(!itd_log_contains(dmn, needle));
	it_daemon_reload(dmn, broken);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_log_contains(dmn, needle),
	    ITD_STATE_MS), "no \"%s\" in the log", needle);

	/* still running, on the old configuration, old client included */
	ck_assert(!it_daemon_exited(dmn, 0, NULL));
	ck_assert(pings(fd));
	ck_assert(itd_resolve_fd(fd, "main", "master", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 0));
	ck_assert(itd_resolve_fd(fd, "main", "replica", &a) && a.ok);
	ck_assert_int_eq(a.port, it_port(cl, 1));
	ck_assert(pings_new(s));
	ck_assert(itd_host_is(s, "main", it_port(cl, 1), true, "replica"));

	it_sock_close(fd);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
	free(broken);
	free(conf);
	free(dir);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
	Suite	*s = suite_create("it_daemon_lifecycle");
	TCase	*tc;

	tc = tcase_create("restart");
	tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_restart_after_sigkill_replaces_stale_socket);
	tcase_add_test(tc, test_second_daemon_on_same_socket_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("reload");
	tcase_add_unchecked_fixture(tc, cluster_setup, cluster_teardown);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reload_adds_cluster_and_keeps_clients);
	tcase_add_test(tc, test_reload_broken_config_keeps_running_configuration);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(lifecycle_suite()));
}
