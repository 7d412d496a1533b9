/*
 * session-common.c - what the blocking and the event-driven sessions
 * share; see session-internal.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "proto-internal.h"
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

/* --- transactions ------------------------------------------------------- */

int
pgbi_in_tx(const PGconn *pg)
{
	PGTransactionStatusType	st = PQtransactionStatus(pg);

	return (st == PQTRANS_INTRANS || st == PQTRANS_INERROR ||
	    st == PQTRANS_ACTIVE);
}

char *
pgbi_begin_sql(const char *sql)
{
	char	*multi;

	if (asprintf(&multi, "BEGIN;%s", sql) == -1)
		return (NULL);
	return (multi);
}

int
pgbi_begin_pipeline(PGconn *pg, const char *sql, int nparams,
    const Oid *types, const char *const *values, const int *lengths,
    const int *formats, int result_format)
{
	return (PQsendQueryParams(pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) &&
	    PQsendQueryParams(pg, sql, nparams, types, values, lengths,
	    formats, result_format) && PQpipelineSync(pg));
}

void
pgbi_serr_tx_open(struct pgbi_serr *e, const pgb_db *db,
    const struct pgbi_pconn *c)
{
	pgbi_serr_set(e, PGB_ERR_STATE, "%s on %s:%d: a transaction is already"
	    " open", pgbi_db_label(db), c->host, c->port);
}

/* --- read-your-writes --------------------------------------------------- */

static void
ctx_lsn_raise(struct pgbi_ctx_lsn *l, uint64_t v)
{
	if (!l->known || v > l->pos)
		l->pos = v;
	l->known = 1;
}

int
pgbi_ctx_lsn_get(const struct pgbi_ctx_lsn *l, char buf[PGB_LSN_MAX])
{
	if (!l->known) {
		buf[0] = '\0';
		return (0);
	}
	pgbi_lsn_format(l->pos, buf);
	return (1);
}

int
pgbi_ctx_lsn_set(struct pgbi_ctx_lsn *l, const char *text, char *err,
    size_t errlen)
{
	uint64_t	v;

	if (!pgbi_lsn_parse(text, &v)) {
		snprintf(err, errlen, "malformed LSN \"%.40s\"", text != NULL ?
		    text : "(null)");
		return (-1);
	}
	ctx_lsn_raise(l, v);
	return (0);
}

int
pgbi_ctx_lsn_min(const struct pgbi_ctx_lsn *l, const pgb_db *db,
    char buf[PGB_LSN_MAX])
{
	if (l == NULL || !l->known || pgbi_db_is_master(db)) {
		if (buf != NULL)
			buf[0] = '\0';
		return (0);
	}
	if (buf != NULL)
		pgbi_lsn_format(l->pos, buf);
	return (1);
}

/* --- COMMIT reporting its LSN ------------------------------------------- */

const char *
pgbi_commit_sql(struct pgbi_commit *cm, const struct pgbi_pconn *c)
{
	cm->track = strcmp(c->role, "replica") != 0;
	cm->wrote = 0;
	cm->lsn[0] = '\0';
	return (cm->track ?
	    "SELECT pg_current_xact_id_if_assigned() IS NOT NULL;"
	    "COMMIT;"
	    "SELECT CASE WHEN pg_is_in_recovery() THEN NULL"
	    " ELSE pg_current_wal_lsn() END" : "COMMIT");
}

void
pgbi_commit_result(struct pgbi_commit *cm, int nres, const PGresult *res)
{
	if (!cm->track || PQntuples(res) != 1)
		return;
	if (nres == 1)
		cm->wrote = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	else if (nres == 3 && !PQgetisnull(res, 0, 0))
		pgbi_strlcpy(cm->lsn, PQgetvalue(res, 0, 0), sizeof cm->lsn);
}

int
pgbi_commit_complete(const struct pgbi_commit *cm, int nres)
{
	return (nres >= (cm->track ? 2 : 1));
}

void
pgbi_commit_record(const struct pgbi_commit *cm,
    char commit_lsn[PGB_LSN_MAX], struct pgbi_ctx_lsn *l)
{
	uint64_t	v;

	if (!cm->wrote || !pgbi_lsn_parse(cm->lsn, &v))
		return;
	pgbi_strlcpy(commit_lsn, cm->lsn, PGB_LSN_MAX);
	if (l != NULL)
		ctx_lsn_raise(l, v);
}

void
pgbi_serr_failed_tx(struct pgbi_serr *e, const pgb_db *db,
    const struct pgbi_pconn *c)
{
	pgbi_serr_set(e, PGB_ERR_STATE, "%s on %s:%d (%s): transaction failed"
	    " earlier; rolled back instead of committed", pgbi_db_label(db),
	    c->host, c->port, c->role);
}

/* --- savepoint sessions (tests) ----------------------------------------- */

void
pgbi_sp_init(struct pgbi_sp *sp, const void *owner)
{
	uintptr_t	id = (uintptr_t)owner;

	snprintf(sp->begin, sizeof sp->begin, "SAVEPOINT pgb_sp_%" PRIxPTR,
	    id);
	snprintf(sp->release, sizeof sp->release, "RELEASE SAVEPOINT"
	    " pgb_sp_%" PRIxPTR, id);
	snprintf(sp->rollback, sizeof sp->rollback, "ROLLBACK TO SAVEPOINT"
	    " pgb_sp_%" PRIxPTR "; RELEASE SAVEPOINT pgb_sp_%" PRIxPTR, id, id);
}
