/*
 * db-impl-internal.h - what the pieces of the connect object (pgb_db)
 * share: its struct, the pool of one host, and the helpers that work
 * under its lock.  Sessions use db-internal.h, never this header.
 *
 *   db.c        lifetime, settings, accessors, counters
 *   db-pool.c   the pools per host: checkout and checkin, the FIFO of
 *               waiters, opening and validating connections, closing
 *   db-route.c  which hosts sessions use: moving the db, applying an
 *               answer of the daemon (replicas to spread over, min_lsn
 *               routes), hosts that refuse connections
 *   db-hook.c   the before-create hook: running it, the default hook
 *               that asks pgbeacond, its cached answer, the stale TTL
 *               while the daemon is down, WATCH events, lost roles
 *
 * Pools per host.  A db keeps one pool (struct pgbi_host) for each host
 * it has connected to.  Plain sessions use the qualifying hosts: the
 * current one of a master or fixed db, or, for other roles, every host
 * the daemon named recently (sessions spread over them and reuse their
 * connections).  A session that its hook routed elsewhere (a min_lsn
 * answer) takes a connection to that host alone; nothing else moves.  A
 * host that loses the role loses its idle connections; those in use are
 * closed when given back.  size bounds the connections of each host.
 *
 * Waiting.  Checkouts that find nothing wait in one FIFO per db, shared
 * by the blocking and the event-driven API; a connection given back (or
 * a slot freed) is handed to the first waiter that can use it, which is
 * then signalled (its condition variable, or its loop's eventfd).
 *
 * Locking: db->mtx guards the pools, the waiters and the current host;
 * db->hook_mtx guards the daemon client and watch of the default hook
 * (one thread asks the daemon at a time).  hook_mtx may be held while
 * taking mtx, never the other way round.  No libpq call that does I/O is
 * made with mtx held; connections to close are closed by pgbi_db_unlock.
 */
#ifndef PGB_DB_IMPL_INTERNAL_H
#define PGB_DB_IMPL_INTERNAL_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "pgbeacon.h"
#include "db-internal.h"

#define DB_POOL_SIZE		10
#define DB_CHECKOUT_TIMEOUT_MS	5000
#define DB_IDLE_CHECK_MS	30000
#define DB_RECHECK_MS		1000
#define DB_ROLE_WAIT_MS		5000
#define DB_STALE_TTL_MS		30000

TAILQ_HEAD(pconn_list, pgbi_pconn);
TAILQ_HEAD(waiter_list, pgbi_waiter);

/* The pool of one host.  Owned by its db; lives as long as the db. */
struct pgbi_host {
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 role[PGB_ROLE_MAX];	/* as the daemon said last */
	int		 qualifies;	/* plain sessions may use it */
	uint64_t	 seen;		/* db->answers when last named */
	uint64_t	 epoch;		/* bumped when it loses the role */
	struct pconn_list idle;		/* owned; most recently used first */
	int		 nidle;
	int		 nbusy;		/* checked out, current epoch */
	int		 nretiring;	/* checked out, former epoch */
	TAILQ_ENTRY(pgbi_host) entry;
};

struct pgb_db {
	char		*conninfo;	/* owned; no host or port */
	char		*cluster;	/* owned; NULL for fixed dbs */
	char		*role;		/* owned; the role asked for, or label */
	char		*socket_path;	/* owned; NULL: default */
	char		*label;		/* owned; "cluster role" for messages */
	int		 is_master;
	struct pgbi_readers *readers;	/* its cluster's group; owned ref */

	pthread_mutex_t	 mtx;
	int		 size;		/* per host */
	int		 checkout_timeout_ms;
	int		 idle_check_ms;
	int		 recheck_ms;
	int		 role_wait_ms;	/* under hook_mtx */
	int		 stale_ttl_ms;	/* under hook_mtx */
	pgb_hook_fn	 hook;
	void		*hook_arg;

	/* under mtx */
	TAILQ_HEAD(, pgbi_host) hosts;	/* owned */
	struct pgbi_host *current;	/* the last host set, or NULL */
	int		 nqualify;	/* hosts with qualifies set */
	uint64_t	 answers;	/* plain answers applied so far */
	unsigned	 rr;		/* spreads plain sessions */
	struct waiter_list waiters;	/* borrowed, FIFO */
	struct pconn_list doomed;	/* owned; closed by pgbi_db_unlock */
	int		 closed;
	pgb_pool_stats	 stats;		/* counters; idle/busy filled on read */

	/* default hook state, under hook_mtx */
	pthread_mutex_t	 hook_mtx;
	pgb_client	*client;	/* owned, made on first use */
	pgb_watch	*watch;		/* owned, master dbs only */
	int		 answer_valid;	/* the last answer may be reused */
	int64_t		 answer_ms;	/* when it was received */
	int64_t		 confirmed_ms;	/* when the daemon last answered or
					   confirmed the hosts in use; 0:
					   never */
};

/* --- db-pool.c ------------------------------------------------------------ */

/* Unlocks mtx, then closes the connections doomed meanwhile. */
void	pgbi_db_unlock(pgb_db *db);
/*
 * Under mtx: the pool of host:port, made when new (role recorded then);
 * NULL when out of memory.
 */
struct pgbi_host *pgbi_db_host(pgb_db *db, const char *host, int port,
	    const char *role);
/*
 * Under mtx: h lost the role (or the db moved or closed): its idle
 * connections are doomed, those in use will be closed when given back,
 * and plain sessions stop using it.
 */
void	pgbi_db_host_drop(pgb_db *db, struct pgbi_host *h);
/*
 * Under mtx: hands out what is free to the waiters, first come first
 * served, and signals each one served but self.
 */
void	pgbi_db_dispatch(pgb_db *db, const struct pgbi_waiter *self);

/* --- db-hook.c ------------------------------------------------------------ */

/*
 * Runs hook (with min_lsn, which may be NULL) for a session of db that
 * rt routes when the default hook names a host for it alone.  0, or -1
 * with *code (the default hook's reason, else PGB_ERR_HOOK) and the
 * hook's message in err.
 */
int	pgbi_db_run_hook(pgb_db *db, pgb_hook_fn hook, void *hook_arg,
	    const char *min_lsn, struct pgbi_route *rt, pgb_errcode *code,
	    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif /* PGB_DB_IMPL_INTERNAL_H */
