/*
 * asession-internal.h - what the pieces of the event-driven contexts
 * (pgb_actx) and sessions (pgb_asession) share: the blocking API of ctx.c
 * again, as state machines on the caller's event_base.
 *
 *   async-session.c  lifetime, killing and cancelling, the public calls
 *   async-op.c       the operations (aop) and their exchanges
 *   async-acquire.c  acquiring a connection, giving it back
 *   async-ctx.c      contexts, test utilities, all sessions at once
 *
 * A session runs its queued operations (aop) one at a time.  An
 * operation that needs a connection first acquires one: the daemon's
 * answer (RESOLVE on the loop, unless the binding's answer is fresh), a
 * pool slot (or a place in the db's FIFO of waiters, shared with blocking
 * threads; the db writes to the loop's eventfd when it grants one, and
 * the loop calls the binding's wake callback), and, for a new slot,
 * PQconnectStart/PQconnectPoll.  Each exchange is one round trip:
 * PQsendQuery (or a pipeline for parameters after BEGIN), PQflush until
 * 0, then PQconsumeInput/PQisBusy/PQgetResult until done.
 *
 * Lifetime.  Sessions and contexts are reference counted: one reference
 * for the owner, one for each callback running.  _free marks the object
 * dead, releases its resources and calls its pending callbacks; the
 * memory goes when the last callback returns, and code that called a
 * callback stops when it finds its session dead.  All events are deleted
 * when the object dies, so none fires into freed memory.
 */
#ifndef PGB_ASESSION_INTERNAL_H
#define PGB_ASESSION_INTERNAL_H

#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <libpq-fe.h>

#include "pgbeacon.h"
#include "async-internal.h"
#include "db-internal.h"
#include "session-internal.h"

enum astate {
	S_IDLE,			/* no exchange, no acquisition running */
	S_RESOLVING,		/* waiting for the daemon's answer */
	S_WAITING,		/* queued for a pool slot */
	S_ROLEWAIT,		/* no host holds the role: waiting (in
				   b->waiters) for an event of the cluster */
	S_CONNECTING,		/* resolving the host's name (dns_req),
				   then PQconnectPoll running */
	S_BUSY,			/* an exchange is in flight */
};

enum op_kind {
	OP_EXEC,		/* user statement(s) */
	OP_CONN,		/* hand out the connection, BEGIN done */
	OP_COMMIT,
	OP_ROLLBACK,
	OP_CLOSE,		/* becomes ROLLBACK + release */
	OP_ABEGIN,		/* becomes COMMIT, ROLLBACK or nothing */
	OP_AEND,		/* becomes COMMIT, ROLLBACK or nothing */
	OP_END,			/* context end: COMMIT or ROLLBACK + release */
};

enum xkind {
	X_USER,			/* the user's statement, maybe after BEGIN */
	X_BEGIN,
	X_COMMIT,
	X_ROLLBACK,
};

struct aop {
	enum op_kind	 kind;
	union {
		pgb_atomic_mode	 mode;	/* OP_ABEGIN: what an open tx gets */
		int		 ok;	/* OP_AEND: commit (1) or roll back */
		int		 status;	/* OP_END: the ctx's status */
	}		 u;		/* by kind; zero for the others */
	int		 phase;		/* COMMIT: 1 = rolling back after */
	int		 retried;	/* EXEC: resent on a new connection */
	int		 role_retried;	/* EXEC: resent after a read-only
					   error (the host lost the role) */
	int		 release_after;	/* give the connection back at the end */
	int		 force_fail;	/* report -1 whatever happens */
	char		*sql;		/* owned */
	int		 params;
	int		 nparams;
	Oid		*types;		/* owned */
	char		**values;	/* owned, each owned */
	int		*lengths;	/* owned */
	int		*formats;	/* owned */
	int		 result_format;
	pgb_result_cb	 rcb;
	pgb_done_cb	 dcb;
	pgb_conn_cb	 ccb;
	void		*arg;
	TAILQ_ENTRY(aop) entry;
};

struct pgb_asession {
	pgb_loop	*loop;		/* borrowed */
	struct pgbi_binding *b;		/* borrowed from the loop */
	pgb_db		*db;		/* borrowed */
	pgb_actx	*ctx;		/* owner, or NULL */
	int		 autocommit;
	int		 refs;
	int		 dead;
	enum astate	 state;
	struct pgbi_pconn *conn;	/* checked out (pg NULL: reserved) */
	struct event	 io;		/* on PQsocket, re-armed each time */
	struct event	 kick;		/* runs the queue from the loop */
	struct event	 timer;		/* acquisition timeout */
	struct pgbi_areq *req;		/* RESOLVE in flight */
	struct evdns_getaddrinfo_request *dns_req; /* name lookup in flight
					   (S_CONNECTING, conn->pg NULL); it
					   holds a reference to the session */
	int		 dns_rc;	/* set by its callback: 1 connecting,
					   -1 failed */
	int		 resolved;	/* this acquisition asked already */
	int64_t		 role_until;	/* end of its wait for a host to hold
					   the role; 0: not waiting */
	uint64_t	 asked_events;	/* b->events when it asked */
	/* the host its head operation left because it was leaving the role
	   (pgbi_asess_role_moving), while that operation runs */
	int		 moving;
	char		 moving_host[PGB_HOST_MAX];
	int		 moving_port;
	int64_t		 moving_until;	/* its role wait ends */
	int		 waiting;	/* in b->waiters */
	int		 queued;	/* w in the db's waiters, or granted */
	struct pgbi_waiter w;		/* its place in the db's FIFO */
	struct pgbi_route route;	/* where this acquisition goes */
	TAILQ_HEAD(, aop) ops;		/* owned, FIFO; head is running */
	/* the exchange in flight */
	enum xkind	 x_kind;
	int		 x_begin;
	int		 x_pipeline;
	int		 x_flushing;
	int		 x_broken;
	int		 x_nres;
	int		 x_nulls;
	int		 x_ok;
	PGresult	*x_keep;	/* owned */
	struct pgbi_commit x_commit;	/* of an X_COMMIT exchange */
	int		 track_lsn;	/* PGB_SESSION_TRACK_LSN */
	int		 tx_wrote;	/* a statement's tag showed a write */
	char		 commit_lsn[PGB_LSN_MAX];
	struct pgbi_serr err;		/* read by pgb_asession_error */
	/*
	 * A savepoint session (tests): runs on outer's connection, inside
	 * its transaction; BEGIN, COMMIT and ROLLBACK become the savepoint
	 * statements of sp.  outer (blocking API) is borrowed and outlives
	 * it.
	 */
	pgb_session	*outer;
	int		 sp_open;	/* its savepoint is open */
	struct pgbi_sp	 sp;
	TAILQ_ENTRY(pgb_asession) entry;	/* in ctx->sessions */
	TAILQ_ENTRY(pgb_asession) wentry;	/* in b->waiters */
};

struct pgb_actx {
	pgb_loop	*loop;
	int		 refs;
	int		 ended;		/* pgb_actx_end called */
	int		 freed;
	TAILQ_HEAD(, pgb_asession) sessions;	/* owned */
	pgb_abefore_commit_fn bc;
	void		*bc_arg;
	struct pgbi_ctx_lsn lsn;	/* highest commit LSN seen or given */
	int		 track_lsn;	/* pgb_actx_set_track_lsn */
	char		 first_error[PGBI_FIRST_MAX];	/* of any session */
	struct event	 kick;		/* runs the end from the loop */
	int		 end_status;
	int		 end_started;
	int		 end_pending;
	int		 end_rc;
	int		 end_called;
	pgb_actx_done_cb end_cb;
	void		*end_arg;
	/* pgb_arun_in_new_ctx */
	int		 finish_rc;
	pgb_actx_done_cb done_cb;
	void		*done_arg;
	char		 error[PGBI_CTX_ERROR_MAX];
};

/* --- async-session.c ------------------------------------------------------ */

/* A new session of loop for db (no context, no flags); NULL when out of
 * memory. */
pgb_asession *pgbi_asess_alloc(pgb_loop *loop, pgb_db *db);

/* 1 when s has a transaction (or its savepoint) open. */
int	pgbi_asess_in_tx(const pgb_asession *s);

/* Runs s's queue from the loop, soon (not from this frame). */
void	pgbi_asess_kick(pgb_asession *s);

/* Drops a reference; the last one frees s. */
void	pgbi_asess_unref(pgb_asession *s);

/*
 * Around a user callback: the session (and its context, returned) stay
 * allocated.  _leave returns 1 when the session is still alive after it.
 */
pgb_actx *pgbi_asess_frame_enter(pgb_asession *s);
int	pgbi_asess_frame_leave(pgb_asession *s, pgb_actx *ctx);

/*
 * Stops what s is doing and fails its queued operations (but an OP_END)
 * with PGB_ERR_CANCELED; the number of operations cancelled.
 */
int	pgbi_asess_cancel_work(pgb_asession *s, const char *why);

/* Marks s dead, releases everything and cancels its work. */
void	pgbi_asess_kill(pgb_asession *s, const char *why);

/* Queues an operation of kind (no argument) reporting to cb; 0 or -1. */
int	pgbi_aop_done_queue(pgb_asession *s, enum op_kind kind,
	    pgb_done_cb cb, void *arg);

/* --- async-op.c ----------------------------------------------------------- */

/* A new operation of kind; NULL (error on s) when out of memory. */
struct aop *pgbi_aop_new(pgb_asession *s, enum op_kind kind);

/* Frees op and everything it owns; NULL is ignored. */
void	pgbi_aop_free(struct aop *op);

/* Queues op on s; -1 when s cannot take work (op freed). */
int	pgbi_aop_queue(pgb_asession *s, struct aop *op);

/*
 * Completes the head operation op with rc (or fails it with the error
 * already on s): its callback is called.  0 when the session died in the
 * callback (stop touching it).
 */
int	pgbi_aop_done(pgb_asession *s, struct aop *op, int rc);
int	pgbi_aop_fail(pgb_asession *s, struct aop *op);

/* Runs the queue until something has to wait. */
void	pgbi_asess_step(pgb_asession *s);

/* The event of s's connection socket (s->io). */
void	pgbi_asess_io_cb(evutil_socket_t fd, short what, void *arg);

/* --- async-acquire.c ------------------------------------------------------ */

/*
 * Starts or continues taking a connection for the head operation.  0 when
 * s->conn is ready now, 1 when waiting, -1 when the operation failed
 * (its callback called).
 */
int	pgbi_asess_acquire(pgb_asession *s);

/* PQconnectPoll on the connection being opened, from s->io. */
void	pgbi_asess_connect_poll(pgb_asession *s);

/*
 * Drops the acquisition in progress, if any; 1 when it dropped a
 * connection being opened.  The caller resets the state.
 */
int	pgbi_asess_acq_drop(pgb_asession *s);

/*
 * s->conn (being opened, or that failed on the transaction's first
 * statement: nothing ran) failed with sqlstate or msg.  When that means
 * its host is leaving the role (pgbi_role_moving) for a master db with
 * the default hook, and the db's role wait has not run out since the
 * first such failure of the head operation: the db drops that host
 * (pgbi_db_role_lost), the connection is closed, and the session asks
 * the daemon again, waiting for an event of the cluster while the
 * daemon still names that host; returns 1 (the operation goes on, its
 * callback not called).  0 otherwise: nothing done.
 */
int	pgbi_asess_role_moving(pgb_asession *s, const char *sqlstate,
	    const char *msg);

/* Gives the connection back (closed when discard, or not reusable). */
void	pgbi_asess_release(pgb_asession *s, int discard);

/* (Re)arms s->io on the connection's socket for what. */
void	pgbi_asess_arm(pgb_asession *s, short what);

/* The acquisition timeout (s->timer). */
void	pgbi_asess_timer_cb(evutil_socket_t fd, short what, void *arg);

/* The wake callback of the bindings sessions wait on (see the loop's). */
void	pgbi_asess_wake_cb(struct pgbi_binding *b);

/* --- async-ctx.c ---------------------------------------------------------- */

/* Drops a reference; the last one frees ctx. */
void	pgbi_actx_unref(pgb_actx *ctx);

#endif /* PGB_ASESSION_INTERNAL_H */
