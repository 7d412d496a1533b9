/*
 * pgbeacon.h - libpgbeacon, the client library of pgbeacon.
 *
 * Four layers, each usable on its own:
 *
 *  - pgb_client, pgb_watch: the daemon client.  Ask pgbeacond which host
 *    holds a role (RESOLVE), read its STATUS, subscribe to role changes
 *    (WATCH).  Blocking with a timeout; the watch is polled without
 *    blocking and exposes its descriptor for select/poll/libevent.
 *  - pgb_db: a connect object.  A conninfo without host/port plus a
 *    cluster and role (or a fixed host), owning a thread-safe pool of
 *    libpq connections for each host holding the role.
 *  - pgb_ctx: a request-scoped context.  Sessions are created lazily,
 *    shared by everything in the request, committed or rolled back when
 *    the context ends.  A thread-local "current context" reaches code deep
 *    in a call stack.
 *  - pgb_session: one transaction stream on one pooled connection.
 *
 * Conventions.  Every object is opaque and created by a _new (or _begin)
 * function paired with a _free; _free(NULL) does nothing.  Functions
 * returning int return 0 on success and -1 on failure; functions returning
 * a pointer return NULL on failure.  After a failure the message is read
 * with the object's _error function; it names the host and role involved.
 * The library never exits and never prints.
 *
 * Threads.  A pgb_db may be shared by any number of threads, and by
 * blocking threads and event loops together: checkouts that wait are
 * served in order, whichever API they wait in, and a connection given
 * back in one thread wakes a waiter in another (a loop through an
 * eventfd of its own: no libevent thread support is needed).  A
 * pgb_client, a pgb_watch, a pgb_ctx and its sessions belong to one
 * thread at a time.
 */
#ifndef PGB_PGBEACON_H
#define PGB_PGBEACON_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's one version: the Makefile, the .pc, the man pages and
 * pgbeacond take it from these three lines. */
#define PGB_VERSION_MAJOR	0
#define PGB_VERSION_MINOR	1
#define PGB_VERSION_PATCH	0
#define PGB_STRINGIFY_(x)	#x
#define PGB_STRINGIFY(x)	PGB_STRINGIFY_(x)
/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
#define PGB_VERSION_STRING	PGB_STRINGIFY(PGB_VERSION_MAJOR) "." \
				PGB_STRINGIFY(PGB_VERSION_MINOR) "." \
				PGB_STRINGIFY(PGB_VERSION_PATCH)
/* major * 10000 + minor * 100 + patch, for #if comparisons. */
#define PGB_VERSION_NUM		(PGB_VERSION_MAJOR * 10000 + \
				 PGB_VERSION_MINOR * 100 + PGB_VERSION_PATCH)

#if defined(__GNUC__) && __GNUC__ >= 4
#define PGB_EXPORT	__attribute__((visibility("default")))
#define PGB_MUSTCHECK	__attribute__((warn_unused_result))
#else
#define PGB_EXPORT
#define PGB_MUSTCHECK
#endif

/* The event-driven API (at the end) runs on a caller's libevent base. */
struct event_base;
struct evdns_base;

/* The socket used when neither an argument nor $PGBEACON_SOCKET says. */
#define PGB_DEFAULT_SOCKET	"/run/pgbeacon/pgbeacon.sock"
/* Environment variable naming the socket. */
#define PGB_SOCKET_ENV		"PGBEACON_SOCKET"

/* Sizes of the text fields of the public structs, NUL included. */
#define PGB_HOST_MAX		256
#define PGB_CLUSTER_MAX		128
#define PGB_ROLE_MAX		16
/* "FFFFFFFF/FFFFFFFF" and its NUL. */
#define PGB_LSN_MAX		18

/* Library version at run time, e.g. "0.1.0". */
PGB_EXPORT const char *pgb_version(void);

/*
 * Frees memory the library returned for the caller to free (the JSON of
 * pgb_client_status).  NULL is ignored.
 */
PGB_EXPORT void pgb_free(void *p);

/* Error classes; append-only.  Read with the object's _errcode function. */
typedef enum pgb_errcode {
	PGB_OK = 0,
	PGB_ERR_NOHOST,		/* daemon: no host holds the role now */
	PGB_ERR_NOCLUSTER,	/* daemon: no cluster of that name */
	PGB_ERR_BADROLE,	/* daemon: unknown role */
	PGB_ERR_BADREQ,		/* daemon refused the request as malformed */
	PGB_ERR_DAEMON,		/* daemon answered an error code unknown here */
	PGB_ERR_UNREACHABLE,	/* the daemon socket could not be reached */
	PGB_ERR_TIMEOUT,	/* no reply from the daemon in time */
	PGB_ERR_PROTOCOL,	/* the daemon's reply could not be understood */
	PGB_ERR_ARG,		/* bad argument (e.g. a newline in a request) */
	PGB_ERR_NOMEM,		/* out of memory */
	PGB_ERR_CONNECT,	/* PostgreSQL connection could not be opened */
	PGB_ERR_SQL,		/* PostgreSQL reported an error */
	PGB_ERR_POOL_TIMEOUT,	/* no pooled connection free in time */
	PGB_ERR_STATE,		/* call not allowed in the object's state */
	PGB_ERR_HOOK,		/* the before-create hook failed */
	PGB_ERR_CLOSED,		/* the pgb_db was closed */
	PGB_ERR_CANCELED,	/* event-driven: canceled (context ended/freed) */
} pgb_errcode;

/* ------------------------------------------------------------------ */
/* Daemon client                                                       */
/* ------------------------------------------------------------------ */

typedef struct pgb_client pgb_client;

/* Answer of a RESOLVE. */
typedef struct pgb_resolved {
	char		host[PGB_HOST_MAX];
	int		port;
	char		role[PGB_ROLE_MAX];	/* "master" or "replica" */
	uint64_t	generation;		/* of the cluster's primary */
} pgb_resolved;

/*
 * Makes a client for the daemon socket at socket_path; when NULL or "",
 * $PGBEACON_SOCKET, else PGB_DEFAULT_SOCKET.  Does not connect: the first
 * request does (or pgb_client_connect).  Returns NULL only when out of
 * memory.  Free with pgb_client_free.
 */
PGB_EXPORT pgb_client *pgb_client_new(const char *socket_path);

/* Closes the connection and frees cl.  NULL is ignored. */
PGB_EXPORT void pgb_client_free(pgb_client *cl);

/*
 * Connects now (closing any connection open before).  -1 when the daemon
 * cannot be reached: "pgbeacond not reachable at <path>: <reason>".
 */
PGB_EXPORT int pgb_client_connect(pgb_client *cl) PGB_MUSTCHECK;

/* The socket path in use; valid until pgb_client_free. */
PGB_EXPORT const char *pgb_client_socket(const pgb_client *cl);

/*
 * Sets how long one request waits for its reply, in milliseconds
 * (default 2000; <= 0 restores the default).  A request that times out
 * closes the connection; the next request opens a new one.
 */
PGB_EXPORT void pgb_client_set_timeout(pgb_client *cl, int timeout_ms);

/*
 * Requests below reconnect by themselves: when the connection turns out
 * to be broken (the daemon restarted), they reconnect once and retry.
 */

/* PING; 0 when the daemon answered PONG. */
PGB_EXPORT int pgb_client_ping(pgb_client *cl) PGB_MUSTCHECK;

/*
 * RESOLVE cluster role [options]: which host holds role in cluster now.
 * options is NULL or a space-separated list of key=value (max_lag_ms=N,
 * max_lag_bytes=N, min_lsn=X/Y, fallback=master|none), passed through.
 * Fills *out and returns 0; -1 on failure, with pgb_client_errcode()
 * PGB_ERR_NOHOST when no host holds the role, and the daemon's text in
 * pgb_client_error().
 */
PGB_EXPORT int pgb_client_resolve(pgb_client *cl, const char *cluster,
	const char *role, const char *options, pgb_resolved *out) PGB_MUSTCHECK;

/*
 * STATUS [cluster]: stores in *json a NUL-terminated copy of the daemon's
 * JSON (without "OK "), to be freed with pgb_free.  cluster NULL: all.
 */
PGB_EXPORT int pgb_client_status(pgb_client *cl, const char *cluster,
	char **json) PGB_MUSTCHECK;

/*
 * FORGET cluster: the daemon clears the highest timeline it remembers for
 * cluster (after an operator restored an older timeline on purpose), and
 * logs it.  Only root and the daemon's own user may: others get -1 with
 * PGB_ERR_DAEMON ("DENIED: ...").  0 on success.
 */
PGB_EXPORT int pgb_client_forget(pgb_client *cl, const char *cluster)
	PGB_MUSTCHECK;

/* Message of the last failure; "" when none.  Valid until the next call. */
PGB_EXPORT const char *pgb_client_error(const pgb_client *cl);
/* Class of the last failure; PGB_OK when the last call succeeded. */
PGB_EXPORT pgb_errcode pgb_client_errcode(const pgb_client *cl);

/* ------------------------------------------------------------------ */
/* Watch subscription                                                  */
/* ------------------------------------------------------------------ */

typedef struct pgb_watch pgb_watch;

/* One role change pushed by the daemon (or a resync notice). */
typedef struct pgb_event {
	/*
	 * 1: the subscription was (re-)established after a break; events
	 * may have been missed, so anything may have changed.  The other
	 * fields are then empty (cluster is the watched one, or "").
	 */
	int		resync;
	char		cluster[PGB_CLUSTER_MAX];
	uint64_t	generation;
	int		has_master;		/* 0: "master=none" */
	char		master_host[PGB_HOST_MAX];
	int		master_port;
} pgb_event;

/*
 * Opens a second connection to the daemon and sends "WATCH [cluster]"
 * (cluster NULL: every cluster).  socket_path as in pgb_client_new.
 * Returns NULL only when out of memory; when the daemon cannot be reached
 * the handle is returned disconnected (pgb_watch_connected() is 0, the
 * reason in pgb_watch_error()), and polling keeps trying to subscribe.
 */
PGB_EXPORT pgb_watch *pgb_watch_new(const char *socket_path,
	const char *cluster);

/* Closes the subscription and frees w.  NULL is ignored. */
PGB_EXPORT void pgb_watch_free(pgb_watch *w);

/*
 * Takes one pending event without blocking.  Returns 1 and fills *ev when
 * there was one, 0 when none is pending, -1 when the subscription is
 * broken and could not be re-established (yet; a later call retries, at
 * most every 100 ms).  After a break, the first event once subscribed
 * again has resync set.
 */
PGB_EXPORT int pgb_watch_poll(pgb_watch *w, pgb_event *ev) PGB_MUSTCHECK;

/*
 * As pgb_watch_poll, but waits up to timeout_ms (< 0: for ever) for an
 * event.  0 when none came in time.  -1 only when timeout_ms is 0 and
 * the subscription is broken, or on a bad argument; while broken it
 * keeps retrying until the deadline.
 */
PGB_EXPORT int pgb_watch_wait(pgb_watch *w, pgb_event *ev, int timeout_ms)
	PGB_MUSTCHECK;

/*
 * Descriptor that turns readable when an event may be pending, for
 * select/poll/libevent; -1 while disconnected.  It changes after a
 * reconnect: read it again after every pgb_watch_poll.
 */
PGB_EXPORT int pgb_watch_fd(const pgb_watch *w);

/* 1 while subscribed, 0 otherwise. */
PGB_EXPORT int pgb_watch_connected(const pgb_watch *w);

/* Message of the last failure; "" when none. */
PGB_EXPORT const char *pgb_watch_error(const pgb_watch *w);

/* ------------------------------------------------------------------ */
/* Connect object and pool                                             */
/* ------------------------------------------------------------------ */

typedef struct pgb_db pgb_db;

/*
 * Before-create hook: runs before each new session of db takes its first
 * connection.  min_lsn is the read-your-writes LSN the session needs
 * ("X/Y"), or NULL.  Return 0 to go on, -1 to fail the session (set a
 * message with pgb_db_set_error).  The hook may call pgb_db_change_host
 * (or pgb_db_default_hook).  It may run in several threads at once.
 */
typedef int (*pgb_hook_fn)(pgb_db *db, const char *min_lsn, void *arg);

/*
 * A connect object for the host holding role ("master", "replica",
 * "sync_by_time", ... as the daemon knows them) in cluster, as the daemon
 * at socket_path (as in pgb_client_new) says.  conninfo is a libpq
 * connection string without host and port.  Nothing is connected until
 * a session runs a statement.  Returns NULL when cluster or role is NULL,
 * or out of memory.  Free with pgb_db_free.
 */
PGB_EXPORT pgb_db *pgb_db_new(const char *conninfo, const char *cluster,
	const char *role, const char *socket_path);

/*
 * A connect object for a fixed host and port, with no daemon and no
 * hook (one may be installed).  role is only a label for messages
 * (NULL: "fixed").  NULL when host is NULL, port is not 1..65535, or
 * out of memory.
 */
PGB_EXPORT pgb_db *pgb_db_new_fixed(const char *conninfo, const char *host,
	int port, const char *role);

/* Closes the pool (pgb_db_close) and frees db.  NULL is ignored. */
PGB_EXPORT void pgb_db_free(pgb_db *db);

/*
 * Pool settings.  size: most connections open at once to one host
 * (default 10); a db holds connections to each host it uses (a replica
 * db: every qualifying replica, and the primary when read-your-writes
 * falls back to it).  checkout_timeout_ms: how long a session waits for
 * a free one (default 5000); waiters are served first come, first
 * served.  idle_check_ms: a connection idle
 * longer than this is validated with a round trip before reuse (default
 * 30000; 0 validates every time, < 0 never) by the blocking API; the
 * event-driven one never validates, and sends a transaction's first
 * statement once more on a new connection when a reused one was dead.
 */
PGB_EXPORT void pgb_db_set_pool(pgb_db *db, int size,
	int checkout_timeout_ms, int idle_check_ms);

/*
 * How long a non-master role's answer is reused before asking the daemon
 * again (default 1000 ms; 0: ask before every session).  A master db
 * asks only when its watch subscription reports a change or a break.
 */
PGB_EXPORT void pgb_db_set_recheck(pgb_db *db, int recheck_ms);

/*
 * When the daemon answers that no host holds db's role (a failover in
 * progress), the default hook waits up to wait_ms (default 5000; < 0:
 * the default; 0: fail at once) for the WATCH event that names one and
 * asks again, instead of failing the session.  min_lsn requests do not
 * wait.  (Since 0.5, PGBEACON_1.4.)  Since 0.6 the event-driven API
 * waits too, without blocking the loop: the session waits for an event
 * of the cluster on the loop's subscription.
 */
PGB_EXPORT void pgb_db_set_role_wait(pgb_db *db, int wait_ms);

/*
 * Daemon down (stopped, restarting): when pgbeacond cannot be reached
 * (PGB_ERR_UNREACHABLE: socket missing, connection refused or closed),
 * the default hook (both APIs) goes on with the hosts the daemon named
 * last, for at most ttl_ms (default 30000; < 0: the default; 0: never)
 * after the daemon last answered for them or, for a master db, last
 * confirmed them through its healthy watch subscription.  Each such
 * session is counted in pgb_db_stats' stale; nothing is printed.  A
 * session with a min_lsn then goes to the cluster's primary as last
 * named to any db of this process (fails when none is known).  After
 * ttl_ms, sessions fail with PGB_ERR_UNREACHABLE.
 *
 * A master db whose statement fails with a read-only error (SQLSTATE
 * 25006: its host is a standby now) drains that host's pool, forgets the
 * answer, and, when the statement was the transaction's first (nothing
 * can have run), sends it once more on a host asked anew; counted in
 * role_lost.  While the daemon is down that host is not used again: the
 * session fails with PGB_ERR_UNREACHABLE.  (Since 0.6, PGBEACON_1.5.)
 */
PGB_EXPORT void pgb_db_set_stale_ttl(pgb_db *db, int ttl_ms);

/*
 * Installs fn as the before-create hook (NULL: none).  pgb_db_new
 * installs pgb_db_default_hook; pgb_db_new_fixed installs none.
 */
PGB_EXPORT void pgb_db_set_hook(pgb_db *db, pgb_hook_fn fn, void *arg);

/*
 * The default hook: asks the daemon which host holds db's role (with
 * min_lsn when given).  A master db follows the answer as
 * pgb_db_change_host does.  Another db adds the host named to the hosts
 * its sessions spread over (idle connections kept on each; a host the
 * daemon has not named for a while, or names with another role, loses
 * its idle connections).  An answer for a min_lsn routes only the
 * session that asked: it takes a connection to that host (the primary,
 * when no replica has replayed min_lsn) and moves nothing else.  For the
 * master role, when the db's watch subscription is healthy and has
 * reported no change since the last answer, no request is made.
 */
PGB_EXPORT int pgb_db_default_hook(pgb_db *db, const char *min_lsn,
	void *arg);

/*
 * Points db at host:port.  When that is not the current host (or other
 * hosts are in use), the pool is swapped: idle connections to every
 * other host are closed at once, those in use are closed when returned,
 * new sessions connect to host:port alone.
 * role, when not NULL, records the role the host holds ("master",
 * "replica") for messages.  Thread-safe.
 */
PGB_EXPORT int pgb_db_change_host(pgb_db *db, const char *host, int port,
	const char *role) PGB_MUSTCHECK;

/*
 * Copies the current host (for a non-master db with the default hook:
 * the one the daemon named last) into host (hostlen bytes) and its port
 * into *port; -1 when db has no host yet.
 */
PGB_EXPORT int pgb_db_current_host(pgb_db *db, char *host, size_t hostlen,
	int *port);

/*
 * Pool counters, for monitoring and tests.  A db keeps a pool for each
 * host it connects to (see pgb_db_set_pool); the counts below add them
 * up.
 */
typedef struct pgb_pool_stats {
	int		idle;		/* open, unused */
	int		busy;		/* checked out, host still qualifies */
	int		retiring;	/* checked out, to a host that lost it */
	uint64_t	opened;		/* connections opened so far */
	uint64_t	reused;		/* checkouts served by an idle one */
	uint64_t	discarded;	/* closed as broken or stale */
	uint64_t	host_changes;	/* pgb_db_change_host swaps */
	uint64_t	resolves;	/* daemon round trips of the default hook */
	/* Since 0.3 (pgb_db_stats_size): */
	uint64_t	checkouts;	/* handed out: reused + opened */
	uint64_t	waits;		/* checkouts that had to queue */
	uint64_t	broken;		/* closed because the connection broke */
	int		hosts;		/* hosts with a connection open now */
	int		qualifying;	/* hosts plain sessions may use now */
	/* Since 0.6 (pgb_db_stats_size): */
	uint64_t	stale;		/* sessions routed on a kept answer
					   while the daemon was unreachable */
	uint64_t	role_lost;	/* read-only errors (SQLSTATE 25006)
					   of a master db taken as a role
					   change; since 0.7 also its
					   connections refused or ended, before
					   a first statement, as the host shut
					   down (57P01/57P02/57P03) */
} pgb_pool_stats;

/*
 * Fills *out.  A macro passing sizeof *out to pgb_db_stats_size, which
 * fills that many bytes; the function pgb_db_stats itself fills the
 * fields up to resolves, for programs built against 0.1 or 0.2.
 */
PGB_EXPORT void pgb_db_stats(pgb_db *db, pgb_pool_stats *out);
PGB_EXPORT void pgb_db_stats_size(pgb_db *db, pgb_pool_stats *out,
	size_t size);
#define pgb_db_stats(db, out)	pgb_db_stats_size((db), (out), sizeof *(out))

/*
 * Disposes of the pool: idle connections are closed now, those in use
 * when returned; new sessions fail with PGB_ERR_CLOSED.  Thread-safe.
 */
PGB_EXPORT void pgb_db_close(pgb_db *db);

/* The db's cluster and role (role as given; "fixed" dbs: the label). */
PGB_EXPORT const char *pgb_db_cluster(const pgb_db *db);
PGB_EXPORT const char *pgb_db_role(const pgb_db *db);

/*
 * Sets the db's error message (for hooks); printf-like.  The message is
 * per thread: pgb_db_error() returns the one set by the calling thread.
 */
PGB_EXPORT void pgb_db_set_error(pgb_db *db, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Last error of a pgb_db function in the calling thread; "" when none. */
PGB_EXPORT const char *pgb_db_error(const pgb_db *db);

/* ------------------------------------------------------------------ */
/* Context                                                             */
/* ------------------------------------------------------------------ */

typedef struct pgb_ctx pgb_ctx;
typedef struct pgb_session pgb_session;

/* Flags of pgb_ctx_begin. */
#define PGB_CTX_FORCE	0x1	/* begin even when a context is current */

/*
 * Before-commit callback: runs for each session with an open
 * transaction, just before pgb_ctx_end commits it.  Nonzero: that
 * session is rolled back instead, and pgb_ctx_end returns -1.
 */
typedef int (*pgb_before_commit_fn)(pgb_ctx *ctx, pgb_session *s,
	void *arg);

/*
 * Begins a context and makes it the calling thread's current one (the
 * previous one is restored by pgb_ctx_end).  Returns NULL when a context
 * is already current and flags lacks PGB_CTX_FORCE, or when out of
 * memory.  End with pgb_ctx_end, then free with pgb_ctx_free.
 */
PGB_EXPORT pgb_ctx *pgb_ctx_begin(int flags);

/*
 * Ends ctx: when status < 400, runs the before-commit callback and
 * commits each session with an open transaction; otherwise (or for a
 * session whose transaction failed) rolls back.  Then closes every
 * session (connections go back to their pools) and restores the previous
 * current context.  -1 when anything failed (pgb_ctx_error says what);
 * the context is ended either way.  A second call does nothing.
 */
PGB_EXPORT int pgb_ctx_end(pgb_ctx *ctx, int status);

/* Frees ctx, first ending it with status 500 when not ended.  NULL ok. */
PGB_EXPORT void pgb_ctx_free(pgb_ctx *ctx);

/* The calling thread's current context, or NULL. */
PGB_EXPORT pgb_ctx *pgb_ctx_current(void);
/* 1 when the calling thread has a current context. */
PGB_EXPORT int pgb_ctx_is_current(void);

PGB_EXPORT void pgb_ctx_set_before_commit(pgb_ctx *ctx,
	pgb_before_commit_fn fn, void *arg);

/* Commit, roll back, close every session of ctx now.  -1: one failed. */
PGB_EXPORT int pgb_ctx_commit_all(pgb_ctx *ctx) PGB_MUSTCHECK;
PGB_EXPORT int pgb_ctx_rollback_all(pgb_ctx *ctx);
PGB_EXPORT void pgb_ctx_close_all(pgb_ctx *ctx);

/*
 * Read-your-writes: the highest WAL position ("X/Y") a commit in ctx
 * reached, or one given by the application (e.g. from a cookie).  Replica
 * sessions of ctx ask the daemon for a host that replayed it.
 * pgb_ctx_lsn copies it into buf and returns 1, or 0 when there is none.
 * pgb_ctx_set_lsn keeps the higher of the current and the given one; -1
 * on malformed text.
 *
 * The position recorded for a commit that wrote is the WAL insert
 * position read in the COMMIT's round trip: at or after the end of the
 * commit record under every synchronous_commit (off, local,
 * remote_write, on, remote_apply), so a replica that replayed it has the
 * commit.  It is recorded only when it can be used: when the commit went
 * through a db whose cluster has, in this process, a pgb_db for a role
 * other than master (for pgb_db_new_fixed dbs: another fixed db whose
 * label is not "master"), or when the context (pgb_ctx_set_track_lsn) or
 * the session (PGB_SESSION_TRACK_LSN) asked for it, e.g. to hand it to
 * another process in a cookie.  Otherwise the commit is a bare COMMIT
 * and nothing is recorded.
 */
PGB_EXPORT int pgb_ctx_lsn(const pgb_ctx *ctx, char buf[PGB_LSN_MAX]);
PGB_EXPORT int pgb_ctx_set_lsn(pgb_ctx *ctx, const char *lsn) PGB_MUSTCHECK;
/* on nonzero: commits in ctx record their LSN even with no replica db. */
PGB_EXPORT void pgb_ctx_set_track_lsn(pgb_ctx *ctx, int on);

/*
 * Message of the last failure in ctx ("" when none): of pgb_ctx_end,
 * pgb_ctx_commit_all/_rollback_all, pgb_ctx_set_lsn, pgb_atomic (what its
 * session said, or that its callback failed).  A NULL ctx (pgb_ctx_begin
 * refused) gets a message saying so.
 */
PGB_EXPORT const char *pgb_ctx_error(const pgb_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

/*
 * The session of ctx for db (ctx NULL: the current context), created on
 * first use; every later call in the context returns the same one.  No
 * connection is taken and no transaction begun until the first
 * statement, which is sent together with BEGIN in one round trip.  Owned
 * by ctx.  NULL when there is no context or out of memory.
 */
PGB_EXPORT pgb_session *pgb_ctx_session(pgb_ctx *ctx, pgb_db *db);

/* Flags of pgb_session_new. */
#define PGB_SESSION_AUTOCOMMIT	0x1	/* no implicit BEGIN */
/* Commits record their LSN even with no replica db (see pgb_ctx_lsn). */
#define PGB_SESSION_TRACK_LSN	0x2

/*
 * A session outside any context, owned by the caller (pgb_session_free).
 * Without PGB_SESSION_AUTOCOMMIT, the first statement begins a
 * transaction that lasts until pgb_session_commit/rollback.
 */
PGB_EXPORT pgb_session *pgb_session_new(pgb_db *db, int flags);

/*
 * Frees a session made by pgb_session_new, rolling back an open
 * transaction and returning its connection.  NULL is ignored.  Sessions
 * of a context are freed by the context.
 */
PGB_EXPORT void pgb_session_free(pgb_session *s);

/*
 * Runs sql (one or more statements) and returns the result of the last
 * one, to be freed with PQclear.  NULL on any failure, the message (with
 * host and role) in pgb_session_error; after a failed statement the
 * transaction is aborted until rolled back.
 */
PGB_EXPORT PGresult *pgb_exec(pgb_session *s, const char *sql);

/* As PQexecParams: one statement with $1.. parameters. */
PGB_EXPORT PGresult *pgb_exec_params(pgb_session *s, const char *sql,
	int nparams, const Oid *types, const char *const *values,
	const int *lengths, const int *formats, int result_format);

/*
 * The session's libpq connection for anything else: takes one from the
 * pool and begins the transaction if not done yet.  Borrowed: valid until
 * the session's commit, rollback or close.  NULL on failure.
 */
PGB_EXPORT PGconn *pgb_session_conn(pgb_session *s);

/*
 * Commits the open transaction (nothing to do: 0).  When it wrote, the
 * LSN the commit reached is recorded in the session's context (when it
 * can be used: see pgb_ctx_lsn).  A failed
 * transaction is rolled back and -1 returned.  The connection stays with
 * the session; the next statement begins a new transaction.
 */
PGB_EXPORT int pgb_session_commit(pgb_session *s) PGB_MUSTCHECK;
/* Rolls back the open transaction, if any. */
PGB_EXPORT int pgb_session_rollback(pgb_session *s);
/*
 * Rolls back any open transaction and returns the connection to the pool
 * early; a later statement takes a new one.
 */
PGB_EXPORT void pgb_session_close(pgb_session *s);

/* 1 when the session has a transaction open (possibly failed). */
PGB_EXPORT int pgb_session_in_transaction(const pgb_session *s);
/* Host, port and role of the session's connection; NULL/0 without one. */
PGB_EXPORT const char *pgb_session_host(const pgb_session *s);
PGB_EXPORT int pgb_session_port(const pgb_session *s);
PGB_EXPORT const char *pgb_session_role(const pgb_session *s);
/* The session's db. */
PGB_EXPORT pgb_db *pgb_session_db(const pgb_session *s);
/* LSN ("X/Y") the session's last writing commit reached; "" if none. */
PGB_EXPORT const char *pgb_session_commit_lsn(const pgb_session *s);

/*
 * The session's last failure.  A NULL session (pgb_ctx_session found no
 * context) is refused by every function above without a crash: NULL or
 * -1, and here a message saying so, with PGB_ERR_ARG.
 */
PGB_EXPORT const char *pgb_session_error(const pgb_session *s);
PGB_EXPORT pgb_errcode pgb_session_errcode(const pgb_session *s);
/* SQLSTATE of the last failed statement, "" when not from PostgreSQL. */
PGB_EXPORT const char *pgb_session_sqlstate(const pgb_session *s);

/* ------------------------------------------------------------------ */
/* Atomic blocks and new contexts                                      */
/* ------------------------------------------------------------------ */

/*
 * What pgb_atomic does with a transaction already open (the seed's
 * atomic_db_session modes "commit", "rollback", "append", "raise").
 * PGB_ATOMIC_COMMIT_FIRST is 0, the default: a zeroed mode commits.
 */
typedef enum pgb_atomic_mode {
	PGB_ATOMIC_COMMIT_FIRST = 0,	/* commit it, then a new one */
	PGB_ATOMIC_ROLLBACK_FIRST,	/* roll it back, then a new one */
	PGB_ATOMIC_APPEND,		/* run inside it, then commit or roll
					   back the whole of it */
	PGB_ATOMIC_REFUSE,		/* fail with PGB_ERR_STATE */
} pgb_atomic_mode;

typedef int (*pgb_atomic_fn)(pgb_session *s, void *arg);

/*
 * Runs fn on ctx's session for db (ctx NULL: current) in a transaction
 * of its own: committed when fn returns 0, rolled back otherwise.  mode
 * says what to do with a transaction already open.  With
 * PGB_ATOMIC_APPEND, fn runs inside the open transaction, and that whole
 * transaction (the work before the block and fn's) is committed when fn
 * returns 0 and rolled back otherwise, as the seed's "append" does.  0
 * when fn returned 0 and the commit worked.
 */
PGB_EXPORT int pgb_atomic(pgb_ctx *ctx, pgb_db *db, pgb_atomic_mode mode,
	pgb_atomic_fn fn, void *arg) PGB_MUSTCHECK;

typedef int (*pgb_ctx_fn)(pgb_ctx *ctx, void *arg);

/*
 * Runs fn in a fresh context of its own (current in this thread for the
 * duration, whatever was current before), then ends it with status 200
 * when fn returned 0 and 500 otherwise.  0 when fn returned 0 and every
 * commit worked.  When errbuf is not NULL, a failure message is copied
 * there (errlen bytes): when fn failed, the first failure of any session
 * or atomic block of the context (what their _error said first), or a
 * message saying that fn failed without one; when a commit failed, why.
 */
PGB_EXPORT int pgb_run_in_new_ctx(pgb_ctx_fn fn, void *arg, char *errbuf,
	size_t errlen) PGB_MUSTCHECK;

/* ------------------------------------------------------------------ */
/* Testing code that uses contexts (since 0.3, PGBEACON_1.2)            */
/* ------------------------------------------------------------------ */
/*
 * The seed's test utilities, for tests that run application code (a
 * request handler) inside one outer transaction that the test rolls
 * back, so that nothing the code does persists, while the code's own
 * commits, rollbacks and atomic blocks behave as in production, as
 * savepoints:
 *
 *   outer = pgb_session_new(db, 0);         the seed's rollback_session:
 *                                           pgb_session_free rolls back
 *   ctx = pgb_ctx_begin(0);                 set_test_context (middleware
 *                                           that finds a current context
 *                                           uses it instead of its own)
 *   pgb_ctx_put_savepoint_session(ctx, outer);  put_savepoint_session_in_ctx
 *   ... run the code: pgb_ctx_session(ctx, db) is the savepoint session;
 *   ... pgb_ctx_end(ctx, status) releases or rolls back its savepoint;
 *   ... read the results through outer: they are visible there;
 *   pgb_ctx_free(ctx); pgb_session_free(outer);   nothing persists
 *
 * A savepoint session runs on its outer session's connection, inside its
 * transaction (begun on first use).  What the code sends as BEGIN (the
 * lazy one), COMMIT and ROLLBACK becomes SAVEPOINT, RELEASE SAVEPOINT and
 * ROLLBACK TO SAVEPOINT: a commit keeps the work in the outer
 * transaction, a rollback drops only the work since the savepoint, a
 * failed statement is rolled back to it, and atomic blocks of every mode
 * act on it.  Commits record no LSN.  The outer session must keep its
 * transaction open, and not run statements itself while a savepoint
 * session's work is in flight; free (or end the context of) its
 * savepoint sessions before committing, rolling back or freeing it.
 */

/*
 * A savepoint session on outer (a transaction session: not
 * PGB_SESSION_AUTOCOMMIT), owned by the caller (pgb_session_free: rolls
 * back to its savepoint if one is open).  NULL when outer is NULL or
 * autocommit, or out of memory.
 */
PGB_EXPORT pgb_session *pgb_session_new_savepoint(pgb_session *outer);

/*
 * A context's session for db (ctx NULL: the current context), as the
 * seed's get/put/pop_db_session_from_context.  get: the session, or NULL
 * when the context has none for db yet (none is created).  pop: takes it
 * out of the context and gives it to the caller (pgb_session_free), with
 * its transaction and connection; a later pgb_ctx_session makes a new
 * one.  put: gives s (a session outside any context: pgb_session_new or
 * pgb_session_new_savepoint) to ctx, which owns it from then on, as its
 * session for s's db; a session ctx had for that db is closed (rolled
 * back) and freed.  -1 when ctx or s is NULL, ctx ended, or s belongs to
 * a context.
 */
PGB_EXPORT pgb_session *pgb_ctx_get_session(pgb_ctx *ctx, pgb_db *db);
PGB_EXPORT pgb_session *pgb_ctx_pop_session(pgb_ctx *ctx, pgb_db *db);
PGB_EXPORT int pgb_ctx_put_session(pgb_ctx *ctx, pgb_session *s)
	PGB_MUSTCHECK;

/*
 * The seed's put_savepoint_session_in_ctx: pgb_session_new_savepoint
 * then pgb_ctx_put_session.  The new session (owned by ctx), or NULL.
 */
PGB_EXPORT pgb_session *pgb_ctx_put_savepoint_session(pgb_ctx *ctx,
	pgb_session *outer);

/* ================================================================== */
/* Event-driven API (libevent)                                         */
/* ================================================================== */
/*
 * The same four layers without a blocking call, on the caller's libevent
 * event_base (the library never runs the loop; it adds events to it).
 * Everything here belongs to the thread that runs the base.
 *
 * Callbacks.  A request function returns 0 when it queued the work (its
 * callback will then be called exactly once, from the loop, never from
 * inside the call that queued it) and -1 when it did not (no callback;
 * the reason in the object's _error).  A PGresult or pgb_resolved given
 * to a callback is valid only during the callback: the library clears it
 * afterwards.  When a context or session is freed, or a context ends,
 * with work still queued or running, each pending callback is called
 * once with PGB_ERR_CANCELED (during the _free itself).  Any object may
 * be freed from inside one of its own callbacks.
 *
 * Order of teardown: contexts and sessions, then the pgb_loop, then the
 * dbs, then the event_base.
 */

typedef struct pgb_loop pgb_loop;
typedef struct pgb_actx pgb_actx;
typedef struct pgb_asession pgb_asession;

/* r is NULL on failure (code and error say why). */
typedef void (*pgb_resolve_cb)(pgb_loop *loop, const pgb_resolved *r,
	pgb_errcode code, const char *error, void *arg);
typedef void (*pgb_event_cb)(pgb_loop *loop, const pgb_event *ev, void *arg);
/* res is NULL on failure (pgb_asession_error/errcode say why). */
typedef void (*pgb_result_cb)(pgb_asession *s, PGresult *res, void *arg);
/* rc 0 on success, -1 on failure. */
typedef void (*pgb_done_cb)(pgb_asession *s, int rc, void *arg);
/* conn is NULL on failure. */
typedef void (*pgb_conn_cb)(pgb_asession *s, PGconn *conn, void *arg);
typedef void (*pgb_actx_done_cb)(pgb_actx *ctx, int rc, void *arg);
typedef int (*pgb_abefore_commit_fn)(pgb_actx *ctx, pgb_asession *s,
	void *arg);
typedef void (*pgb_actx_fn)(pgb_actx *ctx, void *arg);

/*
 * Binds the library to base: a non-blocking connection to the daemon at
 * socket_path (as in pgb_client_new) for RESOLVE, and a WATCH
 * subscription (re-established by itself after a break) that updates
 * every pgb_db attached to this loop as soon as the daemon announces a
 * change: a master db is pointed at the new primary at once (its pool
 * swapped), other dbs ask again before their next session.  NULL when
 * base is NULL, or out of memory.
 */
PGB_EXPORT pgb_loop *pgb_loop_new(struct event_base *base,
	const char *socket_path);
/* Pending resolve callbacks get PGB_ERR_CANCELED.  NULL is ignored. */
PGB_EXPORT void pgb_loop_free(pgb_loop *loop);
PGB_EXPORT struct event_base *pgb_loop_base(const pgb_loop *loop);

/*
 * Host names.  A session of loop that opens a connection to a host named
 * by name (not a numeric address, not a Unix socket directory) resolves
 * the name with evdns on the loop, never with libpq's blocking
 * getaddrinfo, then connects to the addresses found (libpq's hostaddr;
 * host stays the name, so sslmode=verify-full still checks it).  dns,
 * owned by the application and on the loop's base, is the resolver to
 * use from now on; NULL (the default) is the loop's own, made on first
 * use from /etc/resolv.conf and /etc/hosts and freed with the loop.  A
 * name that does not resolve fails the operation with PGB_ERR_CONNECT;
 * the lookup counts in the checkout timeout.  dns must outlive the
 * lookups started with it.
 */
PGB_EXPORT void pgb_loop_set_dns(pgb_loop *loop, struct evdns_base *dns);

/*
 * Attaches db to loop (done by the first session of db on loop too).
 * Sessions of an attached db with the default hook ask the daemon without
 * blocking, and a master db reuses the answer until the subscription
 * reports a change or a break.  A custom hook is called as it is, and
 * must not block.  db must outlive loop.  -1 when out of memory.
 */
PGB_EXPORT int pgb_loop_attach(pgb_loop *loop, pgb_db *db) PGB_MUSTCHECK;

/* RESOLVE without blocking (timeout 2000 ms). */
PGB_EXPORT int pgb_loop_resolve(pgb_loop *loop, const char *cluster,
	const char *role, const char *options, pgb_resolve_cb cb, void *arg)
	PGB_MUSTCHECK;

/*
 * Calls cb for every role change the subscription receives (after the
 * attached dbs were updated), and with resync set after a break.
 */
PGB_EXPORT void pgb_loop_set_event_cb(pgb_loop *loop, pgb_event_cb cb,
	void *arg);
/* 1 while the WATCH subscription is established. */
PGB_EXPORT int pgb_loop_watching(const pgb_loop *loop);
PGB_EXPORT const char *pgb_loop_error(const pgb_loop *loop);

/*
 * An explicit request context (no thread-local current one: the request
 * object owns it).  Sessions are lazy as in the blocking API.  NULL when
 * out of memory.
 */
PGB_EXPORT pgb_actx *pgb_actx_new(pgb_loop *loop);

/*
 * Ends ctx: statements still queued or running are canceled (their
 * callbacks get PGB_ERR_CANCELED, a running one is cancelled on the
 * server and its connection closed, so its transaction rolls back, and
 * rc is -1); then, as pgb_ctx_end, every session with an open
 * transaction is committed when status < 400 (before-commit callback
 * first) and rolled back otherwise, and every connection goes back to
 * its pool.  cb (may be NULL) is called once all that is done, with 0 or
 * -1 (pgb_actx_error says what).  -1 when already ended.
 */
PGB_EXPORT int pgb_actx_end(pgb_actx *ctx, int status, pgb_actx_done_cb cb,
	void *arg) PGB_MUSTCHECK;

/*
 * Frees ctx and its sessions.  When not ended (or still ending): queued
 * and running work is canceled as above and open transactions are
 * abandoned by closing their connections (the server rolls them back);
 * a pending end callback gets -1.  NULL is ignored.
 */
PGB_EXPORT void pgb_actx_free(pgb_actx *ctx);
/* 1 once pgb_actx_end was called. */
PGB_EXPORT int pgb_actx_ended(const pgb_actx *ctx);
PGB_EXPORT void pgb_actx_set_before_commit(pgb_actx *ctx,
	pgb_abefore_commit_fn fn, void *arg);
/* Commit, roll back, close every session of ctx; cb gets 0 or -1. */
PGB_EXPORT int pgb_actx_commit_all(pgb_actx *ctx, pgb_actx_done_cb cb,
	void *arg) PGB_MUSTCHECK;
PGB_EXPORT int pgb_actx_rollback_all(pgb_actx *ctx, pgb_actx_done_cb cb,
	void *arg) PGB_MUSTCHECK;
PGB_EXPORT int pgb_actx_close_all(pgb_actx *ctx, pgb_actx_done_cb cb,
	void *arg) PGB_MUSTCHECK;
/* Read-your-writes, as pgb_ctx_lsn / _set_lsn / _set_track_lsn. */
PGB_EXPORT int pgb_actx_lsn(const pgb_actx *ctx, char buf[PGB_LSN_MAX]);
PGB_EXPORT int pgb_actx_set_lsn(pgb_actx *ctx, const char *lsn)
	PGB_MUSTCHECK;
PGB_EXPORT void pgb_actx_set_track_lsn(pgb_actx *ctx, int on);
PGB_EXPORT const char *pgb_actx_error(const pgb_actx *ctx);

/*
 * The session of ctx for db, created on first use (attaching db to the
 * context's loop).  Owned by ctx.  NULL once ctx ended, or out of memory.
 */
PGB_EXPORT pgb_asession *pgb_actx_session(pgb_actx *ctx, pgb_db *db);

/*
 * Concurrent work: runs fn(ctx, arg) on a fresh context of its own; fn
 * starts its statements and, when done (from any later callback), calls
 * pgb_actx_finish(ctx, rc): the context is ended with status 200 when rc
 * is 0 and 500 otherwise, done (may be NULL) gets 0 when rc was 0 and
 * every commit worked, and the context is freed.  In done, with -1,
 * pgb_actx_error(ctx) says why as pgb_run_in_new_ctx's errbuf does.  -1
 * when out of memory.
 */
PGB_EXPORT int pgb_arun_in_new_ctx(pgb_loop *loop, pgb_actx_fn fn, void *arg,
	pgb_actx_done_cb done, void *done_arg) PGB_MUSTCHECK;
PGB_EXPORT void pgb_actx_finish(pgb_actx *ctx, int rc);

/*
 * A session outside any context, owned by the caller (flags as
 * pgb_session_new).  Free with pgb_asession_free: an open transaction is
 * abandoned (its connection closed); close it first to keep the
 * connection pooled.
 */
PGB_EXPORT pgb_asession *pgb_asession_new(pgb_loop *loop, pgb_db *db,
	int flags);
PGB_EXPORT void pgb_asession_free(pgb_asession *s);

/*
 * Queues sql (one or more statements); statements of one session run one
 * after the other, in order.  The first takes a connection (daemon
 * answer, pool checkout or a queued wait up to the checkout timeout,
 * PQconnectStart) and is sent together with BEGIN in one round trip.
 * cb gets the result of the last statement, or NULL on failure.
 */
PGB_EXPORT int pgb_aexec(pgb_asession *s, const char *sql, pgb_result_cb cb,
	void *arg) PGB_MUSTCHECK;
/*
 * As PQsendQueryParams; the parameters are copied (a binary one by its
 * length, which must then be given: -1 with PGB_ERR_ARG otherwise).
 */
PGB_EXPORT int pgb_aexec_params(pgb_asession *s, const char *sql,
	int nparams, const Oid *types, const char *const *values,
	const int *lengths, const int *formats, int result_format,
	pgb_result_cb cb, void *arg) PGB_MUSTCHECK;
/*
 * The session's connection with its transaction begun, for anything
 * else (use it without blocking, and be done with it before queueing
 * more work on s).  Borrowed until the session's commit/rollback/close.
 */
PGB_EXPORT int pgb_asession_conn(pgb_asession *s, pgb_conn_cb cb, void *arg)
	PGB_MUSTCHECK;
/* As pgb_session_commit / _rollback / _close, queued after earlier work. */
PGB_EXPORT int pgb_asession_commit(pgb_asession *s, pgb_done_cb cb,
	void *arg) PGB_MUSTCHECK;
PGB_EXPORT int pgb_asession_rollback(pgb_asession *s, pgb_done_cb cb,
	void *arg) PGB_MUSTCHECK;
PGB_EXPORT int pgb_asession_close(pgb_asession *s, pgb_done_cb cb,
	void *arg) PGB_MUSTCHECK;

/*
 * Atomic blocks, split at the point where the callback of pgb_atomic
 * would run.  pgb_aatomic_begin deals with an open transaction as mode
 * says (PGB_ATOMIC_REFUSE: cb gets -1, PGB_ERR_STATE); then queue the
 * block's statements; then pgb_aatomic_end commits (ok nonzero) or rolls
 * back (cb gets -1).  In append mode the block ran inside the transaction
 * that was open, so pgb_aatomic_end commits or rolls back all of it.
 */
PGB_EXPORT int pgb_aatomic_begin(pgb_asession *s, pgb_atomic_mode mode,
	pgb_done_cb cb, void *arg) PGB_MUSTCHECK;
PGB_EXPORT int pgb_aatomic_end(pgb_asession *s, int ok, pgb_done_cb cb,
	void *arg) PGB_MUSTCHECK;

/*
 * Testing (since 0.3, PGBEACON_1.2; see "Testing code that uses
 * contexts"): a savepoint session of the event-driven API on a blocking
 * outer session, so that a test can run event-driven handlers (a web
 * service's routes) inside its own transaction and roll everything back.
 * outer's transaction must be open already (a statement ran on it, or
 * pgb_session_conn): nothing here blocks.  Its statements run without
 * blocking on outer's connection while the test runs the loop and does
 * not use outer; a statement finding outer's transaction gone fails with
 * PGB_ERR_STATE.  Owned by the caller (pgb_asession_free; an open
 * savepoint is then left in outer's transaction, and a statement still
 * running is cancelled, which leaves outer's connection unusable: end
 * or close the session first, as a context's end does).  NULL when loop or outer is NULL, outer is autocommit
 * or has no transaction open (pgb_session_error(outer) says which), or
 * out of memory.
 */
PGB_EXPORT pgb_asession *pgb_asession_new_savepoint(pgb_loop *loop,
	pgb_session *outer);

/*
 * As pgb_ctx_get_session, _pop_session, _put_session (s a session
 * outside any context on ctx's loop) and _put_savepoint_session.  pop
 * and put refuse (NULL, -1) once ctx ended.  A session put in place of
 * another frees that one as pgb_asession_free does.
 */
PGB_EXPORT pgb_asession *pgb_actx_get_session(pgb_actx *ctx, pgb_db *db);
PGB_EXPORT pgb_asession *pgb_actx_pop_session(pgb_actx *ctx, pgb_db *db);
PGB_EXPORT int pgb_actx_put_session(pgb_actx *ctx, pgb_asession *s)
	PGB_MUSTCHECK;
PGB_EXPORT pgb_asession *pgb_actx_put_savepoint_session(pgb_actx *ctx,
	pgb_session *outer);

/*
 * As the pgb_session_ accessors.  _error, _errcode and _sqlstate take a
 * NULL session (pgb_actx_session refused) as pgb_session_error does, and
 * pgb_actx_error a NULL context.
 */
PGB_EXPORT int pgb_asession_in_transaction(const pgb_asession *s);
PGB_EXPORT const char *pgb_asession_host(const pgb_asession *s);
PGB_EXPORT int pgb_asession_port(const pgb_asession *s);
PGB_EXPORT const char *pgb_asession_role(const pgb_asession *s);
PGB_EXPORT pgb_db *pgb_asession_db(const pgb_asession *s);
PGB_EXPORT pgb_actx *pgb_asession_ctx(const pgb_asession *s);
PGB_EXPORT const char *pgb_asession_commit_lsn(const pgb_asession *s);
PGB_EXPORT const char *pgb_asession_error(const pgb_asession *s);
PGB_EXPORT pgb_errcode pgb_asession_errcode(const pgb_asession *s);
PGB_EXPORT const char *pgb_asession_sqlstate(const pgb_asession *s);

#ifdef __cplusplus
}
#endif

#endif /* PGB_PGBEACON_H */
