/*
 * session-internal.h - what the blocking sessions (ctx.c) and the
 * event-driven ones (async-*.c) share: the error a session stores for its
 * caller, the read-your-writes LSN of a context, and the SQL of the lazy
 * BEGIN and of the COMMIT that reports its LSN.  Sending and reading
 * stay with each API; nothing here blocks or waits.
 */
#ifndef PGB_SESSION_INTERNAL_H
#define PGB_SESSION_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "pgbeacon.h"

struct pgbi_pconn;

/* --- the error on a session --------------------------------------------- */

/*
 * What pgb_[a]session_errcode, _error and _sqlstate return.  Embedded in
 * its session, which owns it; the strings live until the next call on
 * the session.
 */
struct pgbi_serr {
	pgb_errcode	 code;
	char		 sqlstate[6];	/* "" unless the server gave one */
	char		 text[1024];	/* "" when code is PGB_OK */
	char		*first;		/* borrowed: the context's first error
					   (PGBI_FIRST_MAX bytes), or NULL */
};

/* Size of a context's first-error buffer. */
#define PGBI_FIRST_MAX	1024

/* Sets code and a message (truncated); clears the SQLSTATE. */
void	pgbi_serr_set(struct pgbi_serr *e, pgb_errcode code,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Copies e->text to e->first when that is set and still empty: a
 * context keeps the first failure of its sessions for its caller.  Done
 * by pgbi_serr_set and pgbi_serr_pg; call it after writing e->text
 * directly.
 */
void	pgbi_serr_note(struct pgbi_serr *e);

/* Back to PGB_OK, no message, no SQLSTATE. */
void	pgbi_serr_clear(struct pgbi_serr *e);

/*
 * PGB_ERR_SQL for a failed exchange on c (a connection of db): the
 * message of res, or of the connection when res is NULL or has none,
 * prefixed with what (may be NULL) and naming db, host and role; the
 * SQLSTATE of res.
 */
void	pgbi_serr_pg(struct pgbi_serr *e, const pgb_db *db,
	    const struct pgbi_pconn *c, const PGresult *res, const char *what);

/*
 * 1 when a connection that had not run a statement yet failed because
 * its host is leaving the role (a primary shutting down): SQLSTATE
 * sqlstate (may be NULL or "") is 57P01 (terminated by the
 * administrator), 57P02 (crash shutdown) or 57P03 (cannot connect now);
 * else, with no SQLSTATE (a connection that failed to open, or closed),
 * msg (libpq's message) says the server is shutting down or starting
 * up, terminated the connection, or closed it.  0 for anything else
 * (authentication, unknown database, refused, ...).
 */
int	pgbi_role_moving(const char *sqlstate, const char *msg);

/* --- transactions ------------------------------------------------------- */

/* 1 when pg is inside a transaction (open, failed, or a statement running). */
int	pgbi_in_tx(const PGconn *pg);

/*
 * The lazy BEGIN: a session's first statement goes with its BEGIN in one
 * round trip.  pgbi_begin_sql gives "BEGIN;" then sql as one simple-query
 * string (the caller frees it; NULL when out of memory).  For a statement
 * with parameters, pgbi_begin_pipeline queues BEGIN, sql and a sync on pg,
 * which the caller has put in pipeline mode: 1 when all were queued, 0
 * otherwise (pipeline mode left on).
 */
char	*pgbi_begin_sql(const char *sql);
int	pgbi_begin_pipeline(PGconn *pg, const char *sql, int nparams,
	    const Oid *types, const char *const *values, const int *lengths,
	    const int *formats, int result_format);

/* The error of an atomic block refused because a transaction is open. */
void	pgbi_serr_tx_open(struct pgbi_serr *e, const pgb_db *db,
	    const struct pgbi_pconn *c);

/* --- read-your-writes --------------------------------------------------- */

/*
 * The LSN of a context: the highest commit LSN its sessions saw or the
 * caller gave.  Embedded in its context, which owns it.
 */
struct pgbi_ctx_lsn {
	int		 known;
	uint64_t	 pos;
};

/* "X/Y" of l in buf and 1; "" and 0 while unknown. */
int	pgbi_ctx_lsn_get(const struct pgbi_ctx_lsn *l, char buf[PGB_LSN_MAX]);

/*
 * Raises l to the LSN text (never lowers it).  -1 with a message in err
 * (errlen bytes) when text is NULL or malformed.
 */
int	pgbi_ctx_lsn_set(struct pgbi_ctx_lsn *l, const char *text, char *err,
	    size_t errlen);

/*
 * The min_lsn a session of db in a context at l (NULL: no context) asks
 * the daemon for: 1 with it in buf (may be NULL) when l is known and db
 * is not for the master role, else 0 and "".
 */
int	pgbi_ctx_lsn_min(const struct pgbi_ctx_lsn *l, const pgb_db *db,
	    char buf[PGB_LSN_MAX]);

/* --- COMMIT reporting its LSN ------------------------------------------- */

/*
 * Who may read a commit's LSN.  Each pgb_db joins the group of its
 * cluster (fixed dbs: one group of their own) for its lifetime; a group
 * "has readers" while one of its dbs is for a role other than master:
 * only then can a replica session of this process use the LSN of a
 * commit made through a master db of the group.  Thread-safe; the
 * counter is read without a lock.
 */
struct pgbi_readers;

/* Joins the group of cluster (NULL: the fixed dbs); NULL when out of
 * memory.  reader: the db is not for the master role. */
struct pgbi_readers *pgbi_readers_join(const char *cluster, int reader);
/* Leaves the group joined with reader as given then.  NULL is ignored. */
void	pgbi_readers_leave(struct pgbi_readers *g, int reader);
/* 1 while the group has a reader. */
int	pgbi_readers_any(const struct pgbi_readers *g);
/*
 * The primary the daemon last named to any db of g's cluster (host NULL:
 * forget it), so that a read-your-writes session can fall back to it
 * while the daemon cannot be reached.  pgbi_readers_master: 0 with host,
 * *port and *ms (when the daemon last confirmed it), -1 when none.
 */
void	pgbi_readers_set_master(struct pgbi_readers *g, const char *host,
	    int port);
int	pgbi_readers_master(struct pgbi_readers *g, char *host,
	    size_t hostlen, int *port, int64_t *ms);

/*
 * 1 when a statement's command tag (PQcmdStatus) proves that the
 * transaction wrote: INSERT, UPDATE, DELETE or MERGE of at least one row.
 * 0 says nothing (a SELECT may call a function that writes).
 */
int	pgbi_tag_wrote(const char *tag);

/*
 * An LSN the server gave as its WAL insert position, as a position a
 * replica's replay LSN can reach: the server writes a position at the
 * start of a page as the byte after the page header, a replica the end
 * of the last record, the page boundary.  The boundary is returned for
 * such a position (8 kB pages, 16 MB segments: the defaults).  Either
 * way no record ends between the result and the input, so a replica
 * that replayed the result replayed every record the input covers.
 */
uint64_t pgbi_lsn_insert_to_end(uint64_t insert_lsn);

/*
 * The COMMIT of a session, and the bookkeeping of read-your-writes in
 * the same round trip when it can be used: the WAL insert position after
 * COMMIT (at or after the end of the commit record, whatever
 * synchronous_commit says), and, unless the session's own statements
 * showed a write, whether the transaction wrote.  Owned by its session.
 */
struct pgbi_commit {
	int		 track;		/* asks for the LSN */
	int		 check;		/* asks whether it wrote, first */
	int		 wrote;		/* the transaction wrote */
	char		 lsn[PGB_LSN_MAX];	/* "" until read */
};

/*
 * Starts cm for a commit on c, a connection of db; returns the SQL to
 * send (static).  want: the session or its context asked for its LSN;
 * wrote: pgbi_tag_wrote saw a write in the transaction.  The LSN is
 * asked for when c is not a replica's and want is set or db's group has
 * readers.
 */
const char *pgbi_commit_sql(struct pgbi_commit *cm, const pgb_db *db,
	    const struct pgbi_pconn *c, int want, int wrote);

/* Takes the nres-th result (counted from 1) of the reply, a good one. */
void	pgbi_commit_result(struct pgbi_commit *cm, int nres,
	    const PGresult *res);

/* 1 when nres results make a whole reply (COMMIT's included). */
int	pgbi_commit_complete(const struct pgbi_commit *cm, int nres);

/*
 * After a successful commit that wrote: copies its LSN to commit_lsn and
 * raises l (NULL: no context) to it.
 */
void	pgbi_commit_record(const struct pgbi_commit *cm,
	    char commit_lsn[PGB_LSN_MAX], struct pgbi_ctx_lsn *l);

/* The error of committing a failed transaction (rolled back instead). */
void	pgbi_serr_failed_tx(struct pgbi_serr *e, const pgb_db *db,
	    const struct pgbi_pconn *c);

/* --- contexts (pgb_ctx, pgb_actx) ---------------------------------------- */

/* Size of a context's error buffer. */
#define PGBI_CTX_ERROR_MAX	1024

/*
 * Sets a context's error (error: PGBI_CTX_ERROR_MAX bytes) and, while it
 * is empty, its first error (first: PGBI_FIRST_MAX bytes), which keeps
 * the first failure of the context or of its sessions.
 */
void	pgbi_ctx_seterr(char *error, char *first, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * Why a new context failed when its callback did (rc, reported as how
 * says: "returned", "pgb_actx_finish with"): the context's first error
 * (first), else that the callback failed without a failure in the
 * library.  In buf (len bytes).
 */
void	pgbi_ctx_why_failed(char *buf, size_t len, const char *first,
	    const char *how, int rc);

/*
 * What ending a context does with a session's open transaction, for the
 * request's status (>= 400: it failed), whether the transaction failed
 * already (PQTRANS_INERROR), and whether the context has a before-commit
 * callback.  Both APIs decide here and act their own way.
 */
enum pgbi_end_step {
	PGBI_END_ROLLBACK,	/* the request failed: roll back */
	PGBI_END_FAILED_TX,	/* roll back and fail: pgbi_serr_end_failed */
	PGBI_END_ASK,		/* ask the before-commit callback: commit
				   when it returns 0, else roll back and
				   fail: pgbi_serr_refused */
	PGBI_END_COMMIT,
};

enum pgbi_end_step pgbi_end_step(int status, int tx_failed,
	    int has_before_commit);

/* The errors of PGBI_END_FAILED_TX (c: the session's connection) and of
 * a before-commit callback that refused. */
void	pgbi_serr_end_failed(struct pgbi_serr *e, const pgb_db *db,
	    const struct pgbi_pconn *c);
void	pgbi_serr_refused(struct pgbi_serr *e, const pgb_db *db);

/* --- savepoint sessions (tests) ----------------------------------------- */

/*
 * What a savepoint session sends in place of BEGIN, COMMIT and ROLLBACK:
 * it runs inside another session's transaction, on its connection.
 * Embedded in its session, which owns it.
 */
struct pgbi_sp {
	char		 begin[48];	/* SAVEPOINT pgb_sp_<id> */
	char		 release[64];	/* RELEASE SAVEPOINT pgb_sp_<id> */
	char		 rollback[128];	/* ROLLBACK TO ...; RELEASE ... */
};

/* Names the savepoint after owner (unique while owner lives). */
void	pgbi_sp_init(struct pgbi_sp *sp, const void *owner);

/*
 * The pooled connection of a blocking session with its transaction open,
 * for a savepoint session of the event-driven API.  When s has no
 * transaction open: with may_block, one is begun now (a round trip);
 * without, NULL.  NULL with the error on s.  Borrowed: valid while s
 * keeps its transaction.
 */
struct pgbi_pconn *pgbi_session_outer_conn(pgb_session *s, int may_block);

#endif /* PGB_SESSION_INTERNAL_H */
