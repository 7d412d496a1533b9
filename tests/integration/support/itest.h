/*
 * itest.h - what the integration tests, the demo and the benchmarks use:
 * throwaway PostgreSQL clusters (tests/harness/pgcluster), a pgbeacond
 * under test, and a line client for its socket.
 *
 * Failure convention: set-up steps that a test cannot go on without
 * (creating a cluster, stopping a node, starting the daemon) do not
 * return errors; they print the reason with the harness output to stderr
 * and fail the current Check test (ck_abort_msg), or exit(1) when the
 * program does not link Check.  Queries (it_sql, it_sock_*) return NULL
 * or -1 instead, so that they can be polled.
 *
 * Clean-up: every cluster has a watchdog process that destroys it when
 * the process that created it dies, however it dies (a failed ck_assert
 * _exit()s without running checked teardowns; a Check timeout SIGKILLs
 * the test).  Every program started here (spawn.h) gets SIGKILL when its
 * parent dies.  The process
 * that first loaded this file also reaps, at exit, every cluster under
 * its prefix.  Cluster directories are PREFIX + 6 random characters, the
 * prefix being $PGBEACON_IT_PREFIX or "/tmp/pgbeacon-it.<pid>." where pid
 * is that of the test binary; temporary directories (it_tmpdir()) are
 * made under the same prefix.  After a crash,
 *   tests/harness/pgcluster reap PREFIX
 * removes what is left.
 */
#ifndef PGB_ITEST_H
#define PGB_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- clusters -------------------------------------------------------- */

/* A primary (node 0), its replicas (1..n) and any foreign servers.  Owns
 * its directory and every server in it. */
struct it_cluster;

/* Largest node index + 1 a cluster may hold. */
#define IT_MAX_NODES 16

/* node0 primary plus nreplicas streaming replicas, all streaming when this
 * returns.  Never NULL: fails the test instead.  Free with
 * it_cluster_destroy(). */
struct it_cluster *it_cluster_create(int nreplicas);

/* How it_cluster_create_opts() sets the servers up; all zero: defaults. */
struct it_cluster_opts {
	/* synchronous_commit of every node ("off", "local", "remote_write",
	 * "on", "remote_apply"); NULL: $PGBEACON_IT_SYNCHRONOUS_COMMIT when
	 * set, else the server's default (on). */
	const char	*synchronous_commit;
};
/* it_cluster_create() with opts (NULL: as it_cluster_create()), which
 * itself follows $PGBEACON_IT_SYNCHRONOUS_COMMIT. */
struct it_cluster *it_cluster_create_opts(int nreplicas,
    const struct it_cluster_opts *opts);
/* Stops every server, removes the directory and frees c; NULL is a no-op.
 * Never fails the test (it is meant for teardowns). */
void it_cluster_destroy(struct it_cluster *c);

/* The cluster's directory.  Borrowed: lives as long as c. */
const char *it_cluster_dir(const struct it_cluster *c);
/* 1 + nreplicas + foreign servers; node indexes are 0 .. nodes-1. */
int it_cluster_nodes(const struct it_cluster *c);
/* True when node was made by it_foreign_create(). */
bool it_is_foreign(const struct it_cluster *c, int node);
/* The node's TCP port on 127.0.0.1; it never changes. */
int it_port(const struct it_cluster *c, int node);
/* The node's postmaster pid, or -1 when it is not running. */
int it_pid(const struct it_cluster *c, int node);

/* The following fail the test when the harness fails. */
/* pg_ctl stop -m mode ("fast", "immediate"); no-op when already down. */
void it_stop(struct it_cluster *c, int node, const char *mode);
/* pg_ctl start -w; no-op when already running. */
void it_start(struct it_cluster *c, int node);
/* Promotes a replica; returns once it accepts writes. */
void it_promote(struct it_cluster *c, int node);
/* Makes node (running or not) a replica streaming from upstream (pg_rewind,
 * else a new base backup); returns once it streams. */
void it_reattach(struct it_cluster *c, int node, int upstream);
/* Returns once n replicas stream from node primary. */
void it_wait_streaming(struct it_cluster *c, int primary, int n);
/* An independent server (its own initdb, so its own system identifier),
 * running as a primary; returns its node index. */
int it_foreign_create(struct it_cluster *c);

/*
 * Runs sql (one or more statements) on node as user postgres and returns
 * its rows as psql -A -t prints them ("a|b" lines), the last newline
 * removed: "" when nothing was returned.  NULL when the node cannot be
 * reached or a statement fails (the reason: it_last_error()).  The caller
 * frees the result.
 */
char *it_sql(struct it_cluster *c, int node, const char *sql);
/* True when it_sql() succeeds and prints exactly expected. */
bool it_sql_is(struct it_cluster *c, int node, const char *sql,
    const char *expected);
/* The reason for the last NULL from it_sql() in this process. */
const char *it_last_error(void);

/*
 * A complete pgbeacond configuration: socket "<dir>/pgbeacon.sock",
 * state_file "<dir>/pgbeacon.state", fast
 * test timings, log_level "debug" and one cluster called cluster_name with
 * every node of c (foreign ones included) as 127.0.0.1:<port>, in node
 * order.  extra (NULL: none) is appended at top level; a default is left
 * out when extra sets the same key, and the cluster list is left out when
 * extra sets "clusters".  The caller frees the result.
 */
char *it_config(const struct it_cluster *c, const char *cluster_name,
    const char *extra_global_settings);
/* The same with hosts given by the caller: "host:port" strings. */
char *it_config_hosts(const char *dir, const char *cluster_name,
    const char *const *hosts, int nhosts, const char *extra_global_settings);

/* --- the daemon -------------------------------------------------------- */

/* A running pgbeacond.  Owns the process: stop or kill it to free it. */
struct it_daemon;

/*
 * Writes dir/pgbeacon.conf, runs the daemon ($PGBEACOND, else
 * $BUILD/pgbeacond, else build/pgbeacond from the current directory) as
 * "pgbeacond -c dir/pgbeacon.conf", its output appended to
 * dir/pgbeacond.log, and waits up to 15 s for its socket (the config's
 * "socket", else dir/pgbeacon.sock) to answer PING with PONG.  Never NULL:
 * fails the test, with the end of the log, instead.
 */
struct it_daemon *it_daemon_start(const char *config_text, const char *dir);
/* The same without waiting for PONG (for daemons expected to fail). */
struct it_daemon *it_daemon_spawn(const char *config_text, const char *dir);
/* Waits up to timeout_ms for PING -> PONG; false if it does not come or
 * the daemon exits. */
bool it_daemon_wait_ready(struct it_daemon *d, int timeout_ms);
/* True when the daemon exited (reaped) within timeout_ms; *status (may be
 * NULL) is then as it_daemon_stop() returns it. */
bool it_daemon_exited(struct it_daemon *d, int timeout_ms, int *status);

/* Where it_daemon_spawn() finds pgbeacond (see it_daemon_start()). */
const char *it_daemon_binary(void);
/* The last max bytes of the file at path ("" when unreadable).  The caller
 * frees the result. */
char *it_file_tail(const char *path, size_t max);

/* Borrowed, living as long as d. */
const char *it_daemon_socket(const struct it_daemon *d);
const char *it_daemon_log(const struct it_daemon *d);
int it_daemon_pid(const struct it_daemon *d);
/* Replaces the config file (atomically) and sends SIGHUP. */
void it_daemon_reload(struct it_daemon *d, const char *new_config_text);
/* SIGTERM, then waits up to 10 s (then SIGKILL).  Returns the exit status,
 * or 128 + the signal that ended it.  Frees d. */
int it_daemon_stop(struct it_daemon *d);
/* SIGKILL, reaps it.  Frees d; NULL is a no-op. */
void it_daemon_kill(struct it_daemon *d);

/* --- the socket protocol, one line at a time ------------------------- */

/* A connected socket to path, or -1. */
int it_sock_connect(const char *path);
/* Sends line + "\n" and returns the next reply line without its "\n";
 * NULL on timeout, EOF or error.  The caller frees the result. */
char *it_sock_request(int fd, const char *line, int timeout_ms);
/* Sends line + "\n" without reading; -1 on error. */
int it_sock_send(int fd, const char *line);
/* The next line (a pipelined reply, a pushed EVENT), or NULL on timeout,
 * EOF or error.  Lines read ahead are kept in a buffer per fd. */
char *it_sock_readline(int fd, int timeout_ms);
/* Closes fd and drops its buffer. */
void it_sock_close(int fd);
/* A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0,
 * read back, closed): for a listener to bind next, or a host that is
 * down.  Fails the test when no socket can be bound. */
int it_free_port(void);
/* One-shot "RESOLVE cluster role_and_opts" on a fresh connection: the
 * reply, or NULL.  The caller frees the result. */
char *it_resolve(const char *socket, const char *cluster,
    const char *role_and_opts);

/* True when "RESOLVE cluster role" on a fresh connection answers OK with
 * that role and, when port > 0, that port. */
bool it_resolves_to(const char *socket, const char *cluster, const char *role,
    int port);

/* --- a cluster watched by a daemon: the client tests' fixture --------- */

/* A cluster, a pgbeacond watching it as cluster "main", and its socket. */
struct it_watched {
	struct it_cluster	*cluster;
	struct it_daemon	*daemon;	/* NULL while stopped */
	char			*config;	/* the daemon's, owned */
	char			 sock[512];	/* kept across restarts */
};

/*
 * Creates a cluster of a primary and nreplicas replicas, writes
 * it_config(cluster, "main", NULL) and starts the daemon on it as
 * it_watched_daemon_start() does.  Fails the test instead of returning
 * when something does not come up.
 */
void it_watched_start(struct it_watched *w, int nreplicas);
/* The same on it_cluster_create_opts(nreplicas, opts). */
void it_watched_start_opts(struct it_watched *w, int nreplicas,
    const struct it_cluster_opts *opts);
/* Starts w's daemon (again) on w->config and waits up to 15 s until
 * RESOLVE main master answers node 0 and, when the cluster has replicas,
 * RESOLVE main replica answers a replica.  Fails the test otherwise. */
void it_watched_daemon_start(struct it_watched *w);
/* Stops the daemon (when running), destroys the cluster, frees the
 * config and zeroes w.  Never fails the test (it is meant for teardowns). */
void it_watched_stop(struct it_watched *w);

/* --- faults ------------------------------------------------------------ */

/*
 * Freezes node the way a hung machine is frozen: SIGSTOP to its
 * postmaster and to every process of it (backends, walsender, ...), so
 * that connections stay open and nothing answers.  it_thaw() sends
 * SIGCONT to the same.  it_freeze_postmaster() stops the postmaster only:
 * established connections keep working, new ones get no answer.  Fail the
 * test when node is not running.  A frozen node is thawed by
 * it_cluster_destroy() (pgcluster destroy) too.
 */
void it_freeze(struct it_cluster *c, int node);
void it_freeze_postmaster(struct it_cluster *c, int node);
void it_thaw(struct it_cluster *c, int node);

/*
 * A fault relay (tests/harness/faultrelay, $FAULTRELAY, else
 * $BUILD/tests/faultrelay, else build/tests/faultrelay): a TCP forwarder
 * from 127.0.0.1:it_relay_port() to 127.0.0.1:target_port, controlled by
 * it_relay_set().  It dies with the process that started it.  Never NULL:
 * fails the test instead.
 */
struct it_relay;
struct it_relay *it_relay_start(int target_port);
/* The port to give the daemon instead of the server's. */
int it_relay_port(const struct it_relay *r);
/*
 * Puts mode in force for every connection, established and new:
 * "pass", "delay N" (ms, both ways), "blackhole" (nothing forwarded,
 * nothing closed: no FIN, no RST), "reset" (RST to every connection),
 * "refuse" (new connections refused; established ones keep the mode
 * they had), "accept" (listen again, keeping the mode).  Fails the test
 * when the relay refuses or does not answer.
 */
void it_relay_set(struct it_relay *r, const char *mode);
/*
 * Stops the relay (or the slow DNS server) and frees r; NULL is a no-op.
 * The helper exits 0 on EOF on its stdin after freeing everything; when
 * it exits otherwise (a sanitizer's report at exit, a crash, no exit
 * within 20 s) the test fails, naming the helper and its status.
 */
void it_relay_stop(struct it_relay *r);

/*
 * A slow DNS server (tests/harness/slowdns, $SLOWDNS, else
 * $BUILD/tests/slowdns): UDP on 127.0.0.1:it_relay_port(), answering
 * name with the address ipv4, and any other name with NXDOMAIN, each
 * delay_ms after the query.  Stopped with it_relay_stop.  Never NULL.
 */
struct it_relay *it_slowdns_start(int delay_ms, const char *name,
    const char *ipv4);

/* --- temporary directories ------------------------------------------- */

/* The prefix of every cluster and temporary directory of this process
 * (see the top of this file): tests/run.sh reaps what is left under it. */
const char *it_tmp_prefix(void);
/* A new empty directory PREFIX + tag + "-" + 6 random characters; the
 * caller frees the string and removes the directory with it_rmdir_all()
 * (else the reaping at exit or by tests/run.sh does).  Never NULL: fails
 * the test instead. */
char *it_tmpdir(const char *tag);
/* rm -rf dir when it lies under the prefix (a directory of it_tmpdir() or
 * a cluster's); else, or for NULL, nothing.  Never fails the test. */
void it_rmdir_all(const char *dir);

/* --- failing ------------------------------------------------------------- */

/* Prints "itest: <message>" to stderr and fails the current Check test,
 * or exit(1)s when the program does not link Check (the benchmarks).
 * For support code, which must not call ck_assert itself. */
void it_fail(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* --- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t it_now_ms(void);
void it_sleep_ms(int ms);

/* Evaluates expr every 5 ms until it is true or timeout_ms has passed;
 * true when it became true.  expr is evaluated at least once. */
#define IT_POLL_UNTIL(expr, timeout_ms) __extension__ ({		\
	int64_t it_poll_deadline_ = it_now_ms() + (timeout_ms);		\
	bool it_poll_ok_ = false;					\
	for (;;) {							\
		if ((expr)) {						\
			it_poll_ok_ = true;				\
			break;						\
		}							\
		if (it_now_ms() >= it_poll_deadline_)			\
			break;						\
		it_sleep_ms(5);						\
	}								\
	it_poll_ok_;							\
})

#endif /* PGB_ITEST_H */
