/*
 * it_daemon_notify.c - pgbeacond under a stand-in for systemd: the
 * test binds a datagram socket, hands it to the daemon as NOTIFY_SOCKET
 * (through itest's IT_NOTIFY_SOCKET), and reads what sd_notify() sends.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "support/itest.h"
#include "../check_main.h"

static struct it_cluster *cluster;
static int notify_fd = -1;

/* One datagram from the daemon, or NULL after timeout_ms. */
static char *
notify_read(int timeout_ms)
{
	struct pollfd pfd = { .fd = notify_fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return NULL;
	if ((n = recv(notify_fd, buf, sizeof(buf) - 1, 0)) < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* Reads datagrams until one holds needle; returns it, or NULL. */
static char *
notify_wait_for(const char *needle, int timeout_ms)
{
	int64_t deadline = it_now_ms() + timeout_ms;
	char *msg;

	while (it_now_ms() < deadline) {
		msg = notify_read((int)(deadline - it_now_ms()));
		if (msg == NULL)
			return NULL;
		if (strstr(msg, needle) != NULL)
			return msg;
		free(msg);
	}
	return NULL;
}

static void
setup(void)
{
	struct sockaddr_un sun;
	char *path;

	cluster = it_cluster_create(1);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (asprintf(&path, "%s/notify.sock", it_cluster_dir(cluster)) < 0)
		ck_abort_msg("out of memory");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(notify_fd, 0);
	ck_assert_int_eq(bind(notify_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	setenv("IT_NOTIFY_SOCKET", path, 1);
	free(path);
}

static void
teardown(void)
{
	unsetenv("IT_NOTIFY_SOCKET");
	if (notify_fd >= 0)
		close(notify_fd);
	it_cluster_destroy(cluster);
}

START_TEST(test_ready_after_first_probe_round_with_status)
{
	struct it_daemon *d;
	char *cfg, *msg, *reply, want[128];

	cfg = it_config(cluster, "main", NULL);
	d = it_daemon_spawn(cfg, it_cluster_dir(cluster));
	msg = notify_wait_for("READY=1", 20000);
	ck_assert_msg(msg != NULL, "no READY=1 from the daemon");

	/* READY means answers: the first probe round is over. */
	reply = it_resolve(it_daemon_socket(d), "main", "master");
	snprintf(want, sizeof(want), "OK host=127.0.0.1 port=%d role=master ",
	    it_port(cluster, 0));
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(strncmp(reply, want, strlen(want)) == 0,
	    "after READY=1 the daemon answered '%s'", reply);
	free(reply);

	snprintf(want, sizeof(want), "STATUS=main: primary 127.0.0.1:%d, 1/1 "
	    "replicas", it_port(cluster, 0));
	ck_assert_msg(strstr(msg, want) != NULL, "READY message '%s' lacks '%s'",
	    msg, want);
	free(msg);

	ck_assert_int_eq(it_daemon_stop(d), 0);
	free(cfg);
}
END_TEST

START_TEST(test_status_follows_the_primary)
{
	struct it_daemon *d;
	char *cfg, *msg;

	cfg = it_config(cluster, "main", NULL);
	d = it_daemon_spawn(cfg, it_cluster_dir(cluster));
	msg = notify_wait_for("READY=1", 20000);
	ck_assert_ptr_nonnull(msg);
	free(msg);

	it_stop(cluster, 0, "fast");
	msg = notify_wait_for("STATUS=main: no primary", 20000);
	ck_assert_msg(msg != NULL, "no STATUS= saying the primary is gone");
	free(msg);

	ck_assert_int_eq(it_daemon_stop(d), 0);
	free(cfg);
}
END_TEST

START_TEST(test_status_follows_the_replicas)
{
	struct it_daemon *d;
	char *cfg, *msg;

	cfg = it_config(cluster, "main", NULL);
	d = it_daemon_spawn(cfg, it_cluster_dir(cluster));
	msg = notify_wait_for("READY=1", 20000);
	ck_assert_ptr_nonnull(msg);
	free(msg);

	/* The primary stays: only the replica count changes. */
	it_stop(cluster, 1, "fast");
	msg = notify_wait_for("0/1 replicas", 20000);
	ck_assert_msg(msg != NULL, "STATUS= never said the replica was gone");
	free(msg);
	it_start(cluster, 1);
	msg = notify_wait_for("1/1 replicas", 20000);
	ck_assert_msg(msg != NULL, "STATUS= never said the replica was back");
	free(msg);

	ck_assert_int_eq(it_daemon_stop(d), 0);
	free(cfg);
}
END_TEST

START_TEST(test_reload_and_stop_are_announced)
{
	struct it_daemon *d;
	char *cfg, *msg;
	int status = -1;

	cfg = it_config(cluster, "main", NULL);
	d = it_daemon_spawn(cfg, it_cluster_dir(cluster));
	msg = notify_wait_for("READY=1", 20000);
	ck_assert_ptr_nonnull(msg);
	free(msg);

	it_daemon_reload(d, cfg);
	msg = notify_wait_for("RELOADING=1", 10000);
	ck_assert_msg(msg != NULL, "SIGHUP did not send RELOADING=1");
	free(msg);
	msg = notify_wait_for("READY=1", 10000);
	ck_assert_msg(msg != NULL, "no READY=1 after the reload");
	free(msg);

	kill(it_daemon_pid(d), SIGTERM);
	msg = notify_wait_for("STOPPING=1", 10000);
	ck_assert_msg(msg != NULL, "SIGTERM did not send STOPPING=1");
	free(msg);
	ck_assert_msg(it_daemon_exited(d, 10000, &status),
	    "the daemon did not exit after SIGTERM");
	ck_assert_int_eq(status, 0);
	it_daemon_kill(d);	/* frees d; the process is already gone */
	free(cfg);
}
END_TEST

static Suite *
notify_suite(void)
{
	Suite *s = suite_create("daemon_notify");
	TCase *tc = tcase_create("sd_notify");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ready_after_first_probe_round_with_status);
	tcase_add_test(tc, test_status_follows_the_primary);
	tcase_add_test(tc, test_status_follows_the_replicas);
	tcase_add_test(tc, test_reload_and_stop_are_announced);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(notify_suite()));
}
