/*
 * session-internal.h - what the blocking sessions (ctx.c) and the
 * event-driven ones (async.c) share: the error a session stores for its
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
};

/* Sets code and a message (truncated); clears the SQLSTATE. */
void	pgbi_serr_set(struct pgbi_serr *e, pgb_errcode code,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

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

#endif /* PGB_SESSION_INTERNAL_H */
