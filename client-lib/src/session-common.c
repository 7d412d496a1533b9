/*
 * session-common.c - what the blocking and the event-driven sessions
 * share; see session-internal.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "session-internal.h"
#include "util-internal.h"

/* --- the error on a session --------------------------------------------- */

void
pgbi_serr_set(struct pgbi_serr *e, pgb_errcode code, const char *fmt, ...)
{
	va_list	ap;

	e->code = code;
	e->sqlstate[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof e->text, fmt, ap);
	va_end(ap);
}

void
pgbi_serr_clear(struct pgbi_serr *e)
{
	e->code = PGB_OK;
	e->text[0] = '\0';
	e->sqlstate[0] = '\0';
}

void
pgbi_serr_pg(struct pgbi_serr *e, const pgb_db *db,
    const struct pgbi_pconn *c, const PGresult *res, const char *what)
{
	char		 msg[768];
	const char	*state;

	pgbi_strlcpy(msg, res != NULL && *PQresultErrorMessage(res) != '\0' ?
	    PQresultErrorMessage(res) : PQerrorMessage(c->pg), sizeof msg);
	pgbi_chomp(msg);
	pgbi_serr_set(e, PGB_ERR_SQL, "%s on %s:%d (%s): %s%s%s",
	    pgbi_db_label(db), c->host, c->port, c->role,
	    what != NULL ? what : "", what != NULL ? ": " : "", msg);
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	pgbi_strlcpy(e->sqlstate, state, sizeof e->sqlstate);
}
