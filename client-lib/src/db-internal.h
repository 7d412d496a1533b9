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

#include "pgbeacon.h"

/*
 * One pooled libpq connection.  Owned by its pgb_db's idle list while
 * idle, by the session that checked it out while busy; either way only
 * pgbi_db_checkin (or the db) closes it.
 */
struct pgbi_pconn {
	PGconn		*pg;		/* owned */
	uint64_t	 epoch;		/* db epoch (host) it was opened for */
	int64_t		 last_used_ms;	/* monotonic, when last checked in */
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 role[PGB_ROLE_MAX];	/* role of the host when opened */
	int		 reused;	/* came from the idle list */
	TAILQ_ENTRY(pgbi_pconn) entry;	/* in the db's idle list */
};

/*
 * Runs the db's before-create hook (with min_lsn, which may be NULL),
 * then checks out a connection: an idle one (validated when idle too
 * long), else a new one while the pool has room, else waits up to the
 * checkout timeout.  0 with *out; -1 with *code and a message in err
 * naming host and role.
 */
int	pgbi_db_checkout(pgb_db *db, const char *min_lsn,
	    struct pgbi_pconn **out, pgb_errcode *code, char *err,
	    size_t errlen);

/*
 * Gives c back.  It is closed instead of kept when discard is set, when
 * it is broken or inside a transaction, when the db moved to another
 * host since it was opened, or when the db is closed.
 */
void	pgbi_db_checkin(pgb_db *db, struct pgbi_pconn *c, int discard);

/*
 * pgb_db_change_host, telling whether db moved: 1 when the pool was
 * swapped to host:port, 0 when it was there already, -1 as
 * pgb_db_change_host.
 */
int	pgbi_db_move(pgb_db *db, const char *host, int port, const char *role);

/* Forgets the last daemon answer: the next hook asks again. */
void	pgbi_db_invalidate(pgb_db *db);

/* 1 when db is for the master role (or its alias primary). */
int	pgbi_db_is_master(const pgb_db *db);

/*
 * 1 while the process holds a db of db's cluster for a role other than
 * master: a commit's LSN can then be read by a replica session.
 */
int	pgbi_db_ryw_readers(const pgb_db *db);

/* "cluster role" of db for messages ("fixed role" for fixed dbs). */
const char *pgbi_db_label(const pgb_db *db);

/* --- for the event-driven API (async.c) ------------------------------- */

/*
 * Non-blocking checkout: no hook, no wait, no libpq call.  1 with *out
 * an idle connection (reused; c->pg set), 1 with *out a reserved slot
 * (c->pg NULL, host fields set: the caller sets c->pg from
 * pgbi_db_connect_start, then calls pgbi_db_opened once it is up, or
 * pgbi_db_abandon when it fails), 0 when every slot is busy, -1 with
 * *code and a message in err.
 */
int	pgbi_db_take(pgb_db *db, struct pgbi_pconn **out, pgb_errcode *code,
	    char *err, size_t errlen);
/* A slot reserved by pgbi_db_take whose connection failed: frees c. */
void	pgbi_db_abandon(pgb_db *db, struct pgbi_pconn *c);
/*
 * Starts connecting (PQconnectStartParams) to c's host with the db's
 * conninfo; the caller owns the result, NULL when out of memory.
 */
PGconn	*pgbi_db_connect_start(pgb_db *db, const struct pgbi_pconn *c);
/* "cannot connect" for c, with libpq's reason (c->pg may be NULL). */
void	pgbi_db_connect_error(const pgb_db *db, const struct pgbi_pconn *c,
	    char *err, size_t errlen);
/* Counts c, newly opened, and sets its notice processor (drops them). */
void	pgbi_db_opened(pgb_db *db, struct pgbi_pconn *c);
/* Counts a daemon round trip made for db by the event-driven API. */
void	pgbi_db_count_resolve(pgb_db *db);
int	pgbi_db_checkout_timeout_ms(pgb_db *db);
int	pgbi_db_recheck_ms(pgb_db *db);
void	pgbi_db_hook(pgb_db *db, pgb_hook_fn *fn, void **arg);

#endif /* PGB_DB_INTERNAL_H */
