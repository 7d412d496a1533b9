/*
 * db-internal.h - what the sessions (ctx.c) use of a pgb_db: taking a
 * pooled connection (hook included) and giving it back.
 */
#ifndef PGB_DB_INTERNAL_H
#define PGB_DB_INTERNAL_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <pthread.h>

#include "pgbeacon.h"

struct pgbi_host;

/*
 * One pooled libpq connection.  Owned by its pgb_db's idle list while
 * idle, by the session that checked it out while busy; either way only
 * pgbi_db_checkin (or the db) closes it.
 */
struct pgbi_pconn {
	PGconn		*pg;		/* owned */
	struct pgbi_host *h;		/* borrowed: the db's pool of its host */
	uint64_t	 epoch;		/* h's epoch when it was opened */
	int64_t		 last_used_ms;	/* monotonic, when last checked in */
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 role[PGB_ROLE_MAX];	/* role of the host when opened */
	int		 reused;	/* came from the idle list */
	TAILQ_ENTRY(pgbi_pconn) entry;	/* in its host's idle list */
};

/*
 * The host one session was routed to by its hook (a min_lsn answer):
 * that session takes a connection there, the pool stays where it is.
 */
struct pgbi_route {
	int		 set;
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 role[PGB_ROLE_MAX];
};

/*
 * A checkout waiting for a connection, in the db's FIFO of waiters
 * (shared by both APIs).  A connection given back goes to the first
 * waiter that can use it: granted is set under the db's lock, and the
 * waiter is signalled through cond (blocking API) or by writing to
 * notify_fd (the eventfd of its pgb_loop).  Owned by the checkout.
 */
struct pgbi_waiter {
	struct pgbi_host *target;	/* NULL: any qualifying host */
	struct pgbi_pconn *granted;	/* owned by the waiter once set */
	pthread_cond_t	*cond;		/* or NULL */
	int		 notify_fd;	/* or -1 */
	int		 queued;
	int		 closed;	/* dequeued by pgb_db_close */
	TAILQ_ENTRY(pgbi_waiter) entry;
};

/*
 * Runs the db's before-create hook (with min_lsn, which may be NULL),
 * then checks out a connection to the host the hook routed the session
 * to, else to one of the db's qualifying hosts: an idle one (validated
 * when idle too long), else a new one while that host's pool has room,
 * else waits (first come, first served) up to the checkout timeout.  0
 * with *out; -1 with *code and a message in err naming host and role.
 */
int	pgbi_db_checkout(pgb_db *db, const char *min_lsn,
	    struct pgbi_pconn **out, pgb_errcode *code, char *err,
	    size_t errlen);

/*
 * Gives c back, to the first waiter that can use it, else to the idle
 * list.  It is closed instead of kept when discard is set, when it is
 * broken or inside a transaction, when its host lost the role since it
 * was opened, or when the db is closed.
 */
void	pgbi_db_checkin(pgb_db *db, struct pgbi_pconn *c, int discard);

/*
 * pgb_db_change_host, telling whether db moved: 1 when the pool was
 * swapped to host:port, 0 when it was there already, -1 as
 * pgb_db_change_host.
 */
int	pgbi_db_move(pgb_db *db, const char *host, int port, const char *role);

/*
 * Applies a daemon answer r of the default hook (both APIs): a master db
 * moves to r's host (pgbi_db_move); another db adds r's host to the
 * qualifying hosts its sessions spread over (hosts not named for a while
 * drop out); an answer for a min_lsn routes only the session of rt (rt
 * may be NULL).  A host named with another role than before, and a
 * former master when r names another one, lose their idle connections.
 * -1 as pgb_db_change_host.
 */
int	pgbi_db_answer(pgb_db *db, const pgb_resolved *r, int for_min_lsn,
	    struct pgbi_route *rt);

/* Forgets the last daemon answer: the next hook asks again. */
void	pgbi_db_invalidate(pgb_db *db);

/*
 * Daemon down: after a request to the daemon failed with code, 0 when
 * the session may use the hosts the daemon named last (counted in the
 * stats' stale), because code is PGB_ERR_UNREACHABLE and the daemon
 * confirmed them less than the db's stale TTL ago; a session with a
 * min_lsn is routed (rt) to the cluster's last primary.  -1 otherwise.
 */
int	pgbi_db_stale(pgb_db *db, pgb_errcode code, const char *min_lsn,
	    struct pgbi_route *rt);
/* The daemon answered for, or confirmed, db's hosts just now. */
void	pgbi_db_confirmed(pgb_db *db);
/*
 * A master db's connection c met a read-only error (SQLSTATE 25006):
 * its host is no longer the primary.  Its pool is drained, the last
 * answer forgotten (also as the cluster's primary for read-your-writes
 * fallbacks), so the next session asks the daemon again, and while the
 * daemon is down does not go there.
 */
void	pgbi_db_role_lost(pgb_db *db, struct pgbi_pconn *c);
/*
 * As pgbi_db_role_lost, for host:port that refused a new connection as
 * it leaves the role (pgbi_role_moving): no connection to give.
 */
void	pgbi_db_host_lost(pgb_db *db, const char *host, int port);
/*
 * A WATCH event named the cluster's live replicas (list, len as
 * pgbi_proto_event_replicas gives them): a db for a non-master role
 * drains, at once, every host it uses as a replica that is not among
 * them (a host it has none left for makes its next session ask).
 */
void	pgbi_db_replicas(pgb_db *db, const char *list, size_t len);

/* 1 when db is for the master role (or its alias primary). */
int	pgbi_db_is_master(const pgb_db *db);

/*
 * 1 while the process holds a db of db's cluster for a role other than
 * master: a commit's LSN can then be read by a replica session.
 */
int	pgbi_db_ryw_readers(const pgb_db *db);

/* "cluster role" of db for messages ("fixed role" for fixed dbs). */
const char *pgbi_db_label(const pgb_db *db);

/* --- for the event-driven API (async-*.c) ----------------------------- */

/*
 * Non-blocking checkout for route rt (NULL: any qualifying host): no
 * hook, no wait, no libpq call.  1 with *out an idle connection (reused;
 * c->pg set), 1 with *out a reserved slot (c->pg NULL, host fields set:
 * the caller sets c->pg from pgbi_db_connect_start, then calls
 * pgbi_db_opened once it is up, or pgbi_db_abandon when it fails), 0
 * when every slot is busy: w (notify_fd set) is queued, and a later call
 * with the same w (after its fd turned readable) takes what it was
 * granted, or returns 0 again; -1 with *code and a message in err.
 */
int	pgbi_db_take(pgb_db *db, struct pgbi_waiter *w,
	    const struct pgbi_route *rt, struct pgbi_pconn **out,
	    pgb_errcode *code, char *err, size_t errlen);
/* 1 when w was granted a connection (or the db closed): take it now. */
int	pgbi_db_granted(pgb_db *db, struct pgbi_waiter *w);
/* Leaves the queue; a connection granted meanwhile goes to the next. */
void	pgbi_db_unwait(pgb_db *db, struct pgbi_waiter *w);
/*
 * c's host refused a new connection: when other hosts qualify, plain
 * sessions stop using it until the daemon names it again.  The caller
 * then gives c up with pgbi_db_abandon.
 */
void	pgbi_db_connect_failed(pgb_db *db, struct pgbi_pconn *c);
/* A slot reserved by pgbi_db_take whose connection failed: frees c. */
void	pgbi_db_abandon(pgb_db *db, struct pgbi_pconn *c);
/*
 * Starts connecting (PQconnectStartParams) to c's host with the db's
 * conninfo; the caller owns the result, NULL when out of memory.
 */
PGconn	*pgbi_db_connect_start(pgb_db *db, const struct pgbi_pconn *c);
/* The db's conninfo (no host or port; set at creation, never changed). */
const char *pgbi_db_conninfo(const pgb_db *db);
/* The daemon's socket given to pgb_db_new (NULL: the default). */
const char *pgbi_db_socket(const pgb_db *db);
/* "cannot connect" for c, with libpq's reason (c->pg may be NULL). */
void	pgbi_db_connect_error(const pgb_db *db, const struct pgbi_pconn *c,
	    char *err, size_t errlen);
/* Counts c, newly opened, and sets its notice processor (drops them). */
void	pgbi_db_opened(pgb_db *db, struct pgbi_pconn *c);
/* Counts a daemon round trip made for db by the event-driven API. */
void	pgbi_db_count_resolve(pgb_db *db);
int	pgbi_db_checkout_timeout_ms(pgb_db *db);
int	pgbi_db_recheck_ms(pgb_db *db);
int	pgbi_db_role_wait_ms(pgb_db *db);
void	pgbi_db_hook(pgb_db *db, pgb_hook_fn *fn, void **arg);

#endif /* PGB_DB_INTERNAL_H */
