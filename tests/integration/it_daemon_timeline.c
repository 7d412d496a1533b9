/*
 * it_daemon_timeline.c - answers that must never be wrong (issue 9):
 * the highest timeline seen is remembered, also across a daemon restart,
 * so a diverged old primary is never named master; the generation never
 * goes backwards; FORGET clears the memory for root only; a replica left
 * behind by a promotion gets no replica role until it reaches the new
 * timeline; lag-bounded roles keep answering during an outage, against
 * the last primary seen; hosts that were never alive show as dead.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support/daemon_util.h"
#include "support/spawn.h"
#include "../check_main.h"

/* Per-test state, built by the test, torn down by the checked fixture. */
static struct it_cluster	*cl;
static struct it_daemon		*dmn;
static char			*tmpdir;	/* itd_mkdtemp(), or NULL */

static void
teardown(void)
{
	it_daemon_kill(dmn);
	dmn = NULL;
	it_cluster_destroy(cl);
	cl = NULL;
	itd_rmdir_all(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

/* Starts the daemon on conf in the cluster's directory and waits until
 * node0 is master and nodes 1..nreplicas live replicas. */
static const char *
start_daemon_settled(const char *conf, int nreplicas)
{
	const char	*s;
	int		 i;

	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	s = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "master never resolved to node0");
	for (i = 1; i <= nreplicas; i++)
		ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_host_is(s, "main",
		    it_port(cl, i), true, "replica"), ITD_STATE_MS),
		    "node%d never became a live replica", i);
	return s;
}

/* True when STATUS shows host port of main alive, with a why containing
 * needle. */
static bool
host_why_has(const char *s, int port, bool alive, const char *needle)
{
	json_object	*st = itd_status(s), *h;
	bool		 ok;

	h = itd_status_host(itd_status_cluster(st, "main"), port);
	ok = h != NULL && itd_json_true(h, "alive") == alive &&
	    strstr(itd_json_str(h, "why"), needle) != NULL;
	json_object_put(st);
	return ok;
}

/* The why of host port of main in STATUS (caller frees). */
static char *
host_why(const char *s, int port)
{
	json_object	*st = itd_status(s);
	char		*why;

	why = strdup(itd_json_str(itd_status_host(itd_status_cluster(st,
	    "main"), port), "why"));
	json_object_put(st);
	ck_assert_ptr_nonnull(why);
	return why;
}

/* The one-line reply to line on a fresh connection (caller frees). */
static char *
request(const char *s, const char *line)
{
	char	*reply;
	int	 fd;

	fd = it_sock_connect(s);
	ck_assert_int_ne(fd, -1);
	reply = it_sock_request(fd, line, ITD_REPLY_MS);
	it_sock_close(fd);
	return reply;
}

/*
 * Runs "pgbeacon -s SOCK args" (the CLI beside pgbeacond); its exit
 * status.
 */
static int
run_cli(const char *s, const char *args)
{
	char	cmd[1024];
	int	st;

	snprintf(cmd, sizeof cmd, "%s/pgbeacon -s '%s' %s >/dev/null 2>&1",
	    getenv("BUILD") != NULL ? getenv("BUILD") : "build", s, args);
	st = it_system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* node0 stopped, node1 promoted and written to, node1 stopped, node0
 * started again un-rewound: a primary on timeline 1 while 2 was seen. */
static void
diverge(const char *s)
{
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	ck_assert(it_sql_is(cl, 1, "CREATE TABLE on_tl2 AS SELECT 37 AS x; "
	    "SELECT x FROM on_tl2", "37"));
}

/* Waits until node0 is back, alive, on a lower timeline than node1's;
 * then checks every answer and the reasons. */
static void
assert_node0_never_master(const char *s)
{
	struct itd_answer a;
	char		 want[128], *why, *reply;
	json_object	*st, *c;
	int		 i;

	snprintf(want, sizeof want, "timeline 1 < 2 seen on 127.0.0.1:%d",
	    it_port(cl, 1));
	ITD_ASSERT(dmn, IT_POLL_UNTIL(host_why_has(s, it_port(cl, 0), true,
	    want), ITD_STATE_MS), "node0 never reported alive with \"%s\"",
	    want);
	ck_assert(it_sql_is(cl, 0, "SELECT pg_is_in_recovery()", "f"));
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve(s, "main", "master", &a));
		ITD_ASSERT(dmn, !a.ok && strcmp(a.code, "NOHOST") == 0,
		    "answer %d names the diverged node0 (port %d)", i, a.port);
		ck_assert(itd_resolve(s, "main", "any", &a));
		ck_assert(!a.ok);
	}
	reply = it_resolve(s, "main", "master");
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(strstr(reply, want) != NULL, "reply: %s", reply);
	free(reply);

	why = host_why(s, it_port(cl, 0));
	snprintf(want, sizeof want, "lower timeline: timeline 1 < 2 seen on "
	    "127.0.0.1:%d", it_port(cl, 1));
	ck_assert_str_eq(why, want);
	free(why);
	st = itd_status(s);
	c = itd_status_cluster(st, "main");
	ck_assert_int_eq(itd_json_int(c, "max_timeline"), 2);
	snprintf(want, sizeof want, "127.0.0.1:%d", it_port(cl, 1));
	ck_assert_str_eq(itd_json_str(c, "max_timeline_host"), want);
	json_object_put(st);
}

/* Sends FORGET main as user nobody; true when refused with DENIED. */
static bool
forget_as_nobody_is_denied(const char *s)
{
	struct passwd	*pw = getpwnam("nobody");
	pid_t		 pid;
	int		 st;

	ck_assert_ptr_nonnull(pw);
	if ((pid = fork()) == 0) {
		char	*reply;
		int	 fd;

		if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(2);
		if ((fd = it_sock_connect(s)) == -1)
			_exit(3);
		reply = it_sock_request(fd, "FORGET main", ITD_REPLY_MS);
		_exit(reply != NULL && strncmp(reply, "ERR DENIED ", 11) == 0 ?
		    0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	while (waitpid(pid, &st, 0) == -1)
		ck_assert_int_eq(errno, EINTR);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* --- a diverged old primary, remembered ------------------------------------ */

START_TEST(test_diverged_old_primary_is_never_master_until_forgotten)
{
	const char	*s;
	char		*conf, extra[600], sock[300], needle[160];

	/* A socket anyone may reach, to prove FORGET checks the peer. */
	tmpdir = itd_mkdtemp();
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	snprintf(sock, sizeof sock, "%s/pgbeacon.sock", tmpdir);
	snprintf(extra, sizeof extra, "socket = \"%s\";\n"
	    "socket_mode = \"0666\";\n", sock);
	cl = it_cluster_create(1);
	conf = it_config(cl, "main", extra);
	s = start_daemon_settled(conf, 1);
	free(conf);

	diverge(s);
	it_stop(cl, 1, "fast");
	it_start(cl, 0);
	assert_node0_never_master(s);

	/* Only root and the daemon's user may clear the memory. */
	ck_assert(forget_as_nobody_is_denied(s));
	ck_assert(itd_log_contains(dmn, "FORGET main refused to uid"));
	ck_assert(itd_resolve_err(s, "main", "master", "NOHOST"));
	{
		char *reply = request(s, "FORGET nosuch");

		ck_assert_ptr_nonnull(reply);
		ck_assert_int_eq(strncmp(reply, "ERR NOCLUSTER ", 14), 0);
		free(reply);
	}

	/* The operator restores the old timeline on purpose. */
	ck_assert_int_eq(run_cli(s, "forget main"), 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "node0 not master after forget");
	snprintf(needle, sizeof needle, "cluster main: timeline memory (2 seen "
	    "on 127.0.0.1:%d) cleared by uid 0 pid ", it_port(cl, 1));
	ck_assert(itd_log_contains(dmn, needle));

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_timeline_memory_and_generation_survive_a_restart)
{
	const char	*s;
	char		*conf, want[64];
	int64_t		 g, g2;

	cl = it_cluster_create(1);
	conf = it_config(cl, "main", NULL);
	s = start_daemon_settled(conf, 1);
	diverge(s);
	g = itd_generation(s, "main");
	ck_assert_int_ge(g, 3);		/* node0, none, node1 */
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;

	/* The new daemon never sees node1 alive: only the file knows. */
	it_stop(cl, 1, "fast");
	it_start(cl, 0);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	free(conf);
	s = it_daemon_socket(dmn);
	assert_node0_never_master(s);
	ck_assert_int_ge(itd_generation(s, "main"), g);
	ck_assert(itd_log_contains(dmn, "1 cluster(s) remembered"));

	/* node1 back: it is master, at a generation never handed out. */
	it_start(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	g2 = itd_generation(s, "main");
	ck_assert_int_gt(g2, g);
	snprintf(want, sizeof want, "127.0.0.1:%d", it_port(cl, 1));
	{
		json_object *st = itd_status(s);

		ck_assert_str_eq(itd_json_str(itd_status_cluster(st, "main"),
		    "master"), want);
		json_object_put(st);
	}

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

START_TEST(test_generation_never_goes_backwards)
{
	const char	*s;
	char		*conf, *conf2, *state, path[600], hosts[64];
	char		 extra[300];
	int64_t		 g1, g2, g3;
	json_object	*st;

	cl = it_cluster_create(0);
	/* A state file from another cluster called main (another system
	 * identifier, a high timeline): the generation carries on, the
	 * timeline memory is cleared. */
	snprintf(path, sizeof path, "%s/pgbeacon.state", it_cluster_dir(cl));
	{
		FILE *f = fopen(path, "w");

		ck_assert_ptr_nonnull(f);
		fputs("pgbeacon-state 1\ncluster=main generation=50 "
		    "system_identifier=1 timeline=99 timeline_host=db9:5432\n", f);
		ck_assert_int_eq(fclose(f), 0);
	}
	conf = it_config(cl, "main", NULL);
	s = start_daemon_settled(conf, 0);
	ck_assert_int_eq(itd_generation(s, "main"), 51);
	ck_assert(itd_log_contains(dmn, "cluster main: new system identifier "));
	ck_assert(itd_log_contains(dmn, "its timeline memory (99) is cleared"));
	it_stop(cl, 0, "fast");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the stopped primary is still master");
	it_start(cl, 0);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "node0 never came back");
	g1 = itd_generation(s, "main");
	ck_assert_int_ge(g1, 53);
	/* Removed on reload, then added again: its generation carries on. */
	snprintf(hosts, sizeof hosts, "127.0.0.1:%d", it_port(cl, 0));
	snprintf(extra, sizeof extra, "clusters = ( { name = \"other\"; "
	    "hosts = ( \"%s\" ); conninfo = \"user=postgres "
	    "dbname=postgres\"; } );", hosts);
	conf2 = it_config(cl, "main", extra);
	it_daemon_reload(dmn, conf2);
	free(conf2);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(({
		json_object *st_ = itd_status(s);
		bool ok_ = st_ != NULL &&
		    itd_status_cluster(st_, "main") == NULL &&
		    itd_status_cluster(st_, "other") != NULL;
		json_object_put(st_);
		ok_;
	}), ITD_STATE_MS), "cluster main never removed");
	it_daemon_reload(dmn, conf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "main never came back");
	g2 = itd_generation(s, "main");
	ck_assert_int_gt(g2, g1);
	snprintf(path, sizeof path, "%s/pgbeacon.state", it_cluster_dir(cl));
	state = itd_read_file(path);
	ck_assert_ptr_nonnull(state);
	snprintf(extra, sizeof extra, "cluster=main generation=%" PRId64 " ",
	    g2);
	ck_assert_msg(strstr(state, extra) != NULL, "state file:\n%s", state);
	free(state);

	/* And across a restart. */
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = it_daemon_start(conf, it_cluster_dir(cl));
	s = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 0), ITD_STATE_MS), "master never resolved");
	g3 = itd_generation(s, "main");
	ck_assert_int_gt(g3, g2);
	st = itd_status(s);
	ck_assert_int_eq(itd_json_int(itd_status_cluster(st, "main"),
	    "max_timeline"), 1);
	json_object_put(st);
	free(conf);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- a replica left behind by a promotion ---------------------------------- */

/* The status code of GET path on the HTTP listener at Unix socket hs, or
 * -1. */
static int
http_status(const char *hs, const char *path)
{
	char	 req[512], *line;
	int	 fd, code = -1;

	if ((fd = it_sock_connect(hs)) == -1)
		return -1;
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n"
	    "Connection: close\r", path);
	/* it_sock_send adds "\n" to each line, after its "\r". */
	if (it_sock_send(fd, req) == -1 || it_sock_send(fd, "\r") == -1) {
		it_sock_close(fd);
		return -1;
	}
	line = it_sock_readline(fd, ITD_REPLY_MS);
	if (line == NULL || sscanf(line, "HTTP/1.%*d %d", &code) != 1)
		code = -1;
	free(line);
	it_sock_close(fd);
	return code;
}

START_TEST(test_stale_replica_loses_and_regains_replica_role)
{
	const char	*s;
	char		*conf, extra[800], hs[600], path[200], want[128], *why;
	int		 i, port;

	cl = it_cluster_create(2);
	snprintf(hs, sizeof hs, "%s/http.sock", it_cluster_dir(cl));
	snprintf(extra, sizeof extra, "http_listen = \"%s\";", hs);
	conf = it_config(cl, "main", extra);
	s = start_daemon_settled(conf, 2);
	free(conf);
	snprintf(path, sizeof path, "/health/replica?host=127.0.0.1:%d",
	    it_port(cl, 2));
	ck_assert_int_eq(http_status(hs, path), 200);

	/* node2 still follows node0, which is gone: it stays on timeline 1 */
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS), "node1 never resolved as master");
	snprintf(want, sizeof want, "stale replica: timeline 1 < 2 seen on "
	    "127.0.0.1:%d", it_port(cl, 1));
	ITD_ASSERT(dmn, IT_POLL_UNTIL(host_why_has(s, it_port(cl, 2), true,
	    want), ITD_STATE_MS), "node2 never reported stale");
	why = host_why(s, it_port(cl, 2));
	ck_assert_str_eq(why, want);
	free(why);
	ck_assert(itd_host_is(s, "main", it_port(cl, 2), true, "none"));
	for (i = 0; i < 20; i++) {
		ck_assert(itd_resolve_err(s, "main", "replica fallback=none",
		    "NOHOST"));
		ck_assert(itd_resolve_err(s, "main", "sync_by_bytes "
		    "fallback=none", "NOHOST"));
		port = itd_resolve_port(s, "main", "replica");
		ck_assert_int_eq(port, it_port(cl, 1));	/* the master */
		ck_assert_int_eq(itd_resolve_port(s, "main", "any"),
		    it_port(cl, 1));
	}
	ck_assert_int_eq(http_status(hs, path), 503);

	/* re-pointed at node1, it reaches timeline 2: a replica again */
	it_reattach(cl, 2, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main",
	    "replica fallback=none") == it_port(cl, 2), ITD_STATE_MS),
	    "node2 never became a replica again");
	ck_assert(itd_host_is(s, "main", it_port(cl, 2), true, "replica"));
	ck_assert(IT_POLL_UNTIL(http_status(hs, path) == 200, ITD_STATE_MS));

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- lag-bounded roles during an outage -------------------------------------- */

START_TEST(test_lag_roles_answer_during_outage_against_last_primary)
{
	const char	*s;
	char		*conf;
	int		 p1;

	cl = it_cluster_create(1);
	p1 = it_port(cl, 1);
	conf = it_config(cl, "main", NULL);
	s = start_daemon_settled(conf, 1);
	free(conf);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main",
	    "sync_by_time_and_bytes fallback=none") == p1, ITD_STATE_MS),
	    "node1 never qualified by time and bytes");

	it_stop(cl, 0, "fast");
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main", "master",
	    "NOHOST"), ITD_STATE_MS), "the stopped primary is still master");

	/* bytes: node1 replayed all that node0 was last seen writing */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main",
	    "sync_by_bytes max_lag_bytes=0") == p1, ITD_STATE_MS),
	    "sync_by_bytes answers nothing during the outage");
	ck_assert_int_eq(itd_resolve_port(s, "main", "sync_by_bytes"), p1);
	ck_assert_int_eq(itd_resolve_port(s, "main", "sync_by_time_or_bytes"),
	    p1);
	/* time: qualified then, and the limit has not passed since */
	ck_assert_int_eq(itd_resolve_port(s, "main",
	    "sync_by_time max_lag_ms=3600000"), p1);
	/* ... but once it has, no longer */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_err(s, "main",
	    "sync_by_time max_lag_ms=300", "NOHOST"), ITD_STATE_MS),
	    "sync_by_time still answers after max_lag_ms of outage");
	ck_assert(itd_resolve_err(s, "main",
	    "sync_by_time_and_bytes max_lag_ms=300", "NOHOST"));
	ck_assert_int_eq(itd_resolve_port(s, "main", "sync_by_bytes"), p1);
	ck_assert_int_eq(itd_resolve_port(s, "main",
	    "sync_by_time max_lag_ms=3600000"), p1);

	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* --- start-up without any live host ---------------------------------------- */

START_TEST(test_hosts_never_alive_are_dead_and_bad_state_file_is_survived)
{
	const char	*s, *hosts[2];
	char		 h0[64], h1[64], path[300], *conf, *why;
	FILE		*f;
	int		 p0 = it_free_port(), p1 = it_free_port();

	tmpdir = itd_mkdtemp();
	snprintf(h0, sizeof h0, "127.0.0.1:%d", p0);
	snprintf(h1, sizeof h1, "127.0.0.1:%d", p1);
	hosts[0] = h0;
	hosts[1] = h1;
	snprintf(path, sizeof path, "%s/pgbeacon.state", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("this is not a state file\n", f);
	ck_assert_int_eq(fclose(f), 0);

	conf = it_config_hosts(tmpdir, "main", hosts, 2, NULL);
	dmn = it_daemon_start(conf, tmpdir);
	free(conf);
	s = it_daemon_socket(dmn);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(host_why_has(s, p0, false, "dead") &&
	    host_why_has(s, p1, false, "dead"), ITD_STATE_MS),
	    "hosts that never answered are not reported dead");
	ck_assert(itd_log_contains(dmn, "pgbeacon.state: line 1: not a "
	    "pgbeacon state file"));
	ck_assert(itd_log_contains(dmn, "starting with no memory"));
	why = host_why(s, p0);
	ck_assert_str_eq(why, "dead");
	free(why);
	ck_assert(itd_resolve_err(s, "main", "master", "NOHOST"));
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;

	/* a state file that cannot be written does not stop it either */
	conf = it_config_hosts(tmpdir, "main", hosts, 2,
	    "state_file = \"/nonexistent-pgbeacon-it/state\";");
	dmn = it_daemon_start(conf, tmpdir);
	free(conf);
	ck_assert(itd_log_contains(dmn, "does not exist yet"));
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

/* Sets name to value, or unsets it when value is NULL. */
static void
setenv_or_unset(const char *name, const char *value)
{
	if (value != NULL)
		ck_assert_int_eq(setenv(name, value, 1), 0);
	else
		ck_assert_int_eq(unsetenv(name), 0);
}

/*
 * A disk whose fsync hangs (tests/harness/fsyncgate.c) must never hold
 * the event loop: the daemon starts, answers and follows a failover while
 * the state file's fsync is stuck, the file already holds what clients
 * were told, and the fsync completes once the disk is back.
 */
START_TEST(test_a_stuck_fsync_never_holds_the_loop)
{
	const char	*s, *build = getenv("BUILD");
	char		*conf, *state, *asan_old, so[600], gate[600];
	char		 mark[640], path[600], asan[1200], want[64];
	int64_t		 g;
	int		 fd;

	cl = it_cluster_create(1);
	snprintf(so, sizeof so, "%s/tests/fsyncgate.so",
	    build != NULL ? build : "build");
	ck_assert_msg(access(so, R_OK) == 0, "%s missing", so);
	snprintf(gate, sizeof gate, "%s/fsync.gate", it_cluster_dir(cl));
	snprintf(mark, sizeof mark, "%s.blocked", gate);
	ck_assert_int_ne(fd = open(gate, O_WRONLY | O_CREAT, 0644), -1);
	close(fd);

	/* The fault goes into the daemon only, not into the servers. */
	asan_old = getenv("ASAN_OPTIONS") != NULL ?
	    strdup(getenv("ASAN_OPTIONS")) : NULL;
	snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0",
	    asan_old != NULL ? asan_old : "", asan_old != NULL ? ":" : "");
	setenv_or_unset("ASAN_OPTIONS", asan);
	setenv_or_unset("PGB_FSYNC_GATE", gate);
	setenv_or_unset("LD_PRELOAD", so);
	conf = it_config(cl, "main", NULL);
	s = start_daemon_settled(conf, 1);
	free(conf);
	setenv_or_unset("LD_PRELOAD", NULL);
	setenv_or_unset("PGB_FSYNC_GATE", NULL);
	setenv_or_unset("ASAN_OPTIONS", asan_old);
	free(asan_old);

	/* The first state written is stuck in its fsync... */
	ITD_ASSERT(dmn, IT_POLL_UNTIL(access(mark, F_OK) == 0, ITD_STATE_MS),
	    "no fsync of the state file ever started");
	/* ...and a failover is still seen and answered. */
	it_stop(cl, 0, "fast");
	it_promote(cl, 1);
	ITD_ASSERT(dmn, IT_POLL_UNTIL(itd_resolve_port(s, "main", "master") ==
	    it_port(cl, 1), ITD_STATE_MS),
	    "the promotion was not followed while an fsync hung");
	ck_assert(access(gate, F_OK) == 0);	/* still hanging */

	/* The file already holds the generation clients were told. */
	g = itd_generation(s, "main");
	snprintf(path, sizeof path, "%s/pgbeacon.state", it_cluster_dir(cl));
	snprintf(want, sizeof want, "generation=%" PRId64 " ", g);
	state = itd_read_file(path);
	ck_assert_ptr_nonnull(state);
	ck_assert_msg(strstr(state, want) != NULL, "%s lacks %s:\n%s", path,
	    want, state);
	free(state);

	/* The disk is back: the daemon stops cleanly (its fsync thread
	 * finishes and is joined). */
	ck_assert_int_eq(unlink(gate), 0);
	ck_assert_int_eq(it_daemon_stop(dmn), 0);
	dmn = NULL;
}
END_TEST

static Suite *
timeline_suite(void)
{
	Suite	*s = suite_create("it_daemon_timeline");
	TCase	*tc;

	tc = tcase_create("memory");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc,
	    test_diverged_old_primary_is_never_master_until_forgotten);
	tcase_add_test(tc, test_timeline_memory_and_generation_survive_a_restart);
	tcase_add_test(tc, test_generation_never_goes_backwards);
	suite_add_tcase(s, tc);

	tc = tcase_create("replicas");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_stale_replica_loses_and_regains_replica_role);
	tcase_add_test(tc,
	    test_lag_roles_answer_during_outage_against_last_primary);
	suite_add_tcase(s, tc);

	tc = tcase_create("startup");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
	    test_hosts_never_alive_are_dead_and_bad_state_file_is_survived);
	suite_add_tcase(s, tc);

	tc = tcase_create("disk");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_a_stuck_fsync_never_holds_the_loop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(timeline_suite()));
}
