/*
 * session-common.c - what the blocking and the event-driven sessions
 * share; see session-internal.h.
 */
#include <sys/queue.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lsn.h"

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
	pgbi_serr_note(e);
}

void
pgbi_serr_note(struct pgbi_serr *e)
{
	if (e->first != NULL && e->first[0] == '\0' && e->text[0] != '\0')
		pgbi_strlcpy(e->first, e->text, PGBI_FIRST_MAX);
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
pgbi_role_moving(const char *sqlstate, const char *msg)
{
	/* The server's messages for 57P01..03, then libpq's for a close. */
	static const char *const says[] = {
		"57P01", "57P02", "57P03",	/* VERBOSE messages */
		"the database system is shutting down",
		"the database system is starting up",
		"the database system is not yet accepting connections",
		"the database system is not accepting connections",
		"terminating connection due to administrator command",
		"terminating connection because of crash of another server",
		"server closed the connection unexpectedly",
		NULL
	};
	int	i;

	if (sqlstate != NULL && *sqlstate != '\0')
		return (strcmp(sqlstate, "57P01") == 0 ||
		    strcmp(sqlstate, "57P02") == 0 ||
		    strcmp(sqlstate, "57P03") == 0);
	for (i = 0; msg != NULL && says[i] != NULL; i++)
		if (strstr(msg, says[i]) != NULL)
			return (1);
	return (0);
}

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
	pgbc_lsn_format(l->pos, buf);
	return (1);
}

int
pgbi_ctx_lsn_set(struct pgbi_ctx_lsn *l, const char *text, char *err,
    size_t errlen)
{
	uint64_t	v;

	if (!pgbc_lsn_parse(text, &v)) {
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
		pgbc_lsn_format(l->pos, buf);
	return (1);
}

/* --- COMMIT reporting its LSN ------------------------------------------- */

/* One group of pgbi_readers_join: the dbs of one cluster. */
struct pgbi_readers {
	char		*cluster;	/* owned; "" for the fixed dbs */
	int		 refs;		/* dbs in the group, under readers_mtx */
	atomic_int	 nreaders;	/* those not for the master role */
	/* The primary the daemon named last, under readers_mtx. */
	char		 master[PGB_HOST_MAX];	/* "": none known */
	int		 master_port;
	int64_t		 master_ms;	/* when the daemon last confirmed it */
	LIST_ENTRY(pgbi_readers) entry;	/* in readers_groups */
};

static pthread_mutex_t	readers_mtx = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(, pgbi_readers) readers_groups =
    LIST_HEAD_INITIALIZER(readers_groups);

struct pgbi_readers *
pgbi_readers_join(const char *cluster, int reader)
{
	struct pgbi_readers	*g;

	if (cluster == NULL)
		cluster = "";
	pthread_mutex_lock(&readers_mtx);
	LIST_FOREACH(g, &readers_groups, entry) {
		if (strcmp(g->cluster, cluster) == 0)
			break;
	}
	if (g == NULL) {
		if ((g = calloc(1, sizeof *g)) == NULL ||
		    (g->cluster = strdup(cluster)) == NULL) {
			free(g);
			pthread_mutex_unlock(&readers_mtx);
			return (NULL);
		}
		atomic_init(&g->nreaders, 0);
		LIST_INSERT_HEAD(&readers_groups, g, entry);
	}
	g->refs++;
	if (reader)
		atomic_fetch_add(&g->nreaders, 1);
	pthread_mutex_unlock(&readers_mtx);
	return (g);
}

void
pgbi_readers_leave(struct pgbi_readers *g, int reader)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&readers_mtx);
	if (reader)
		atomic_fetch_sub(&g->nreaders, 1);
	if (--g->refs == 0) {
		LIST_REMOVE(g, entry);
		free(g->cluster);
		free(g);
	}
	pthread_mutex_unlock(&readers_mtx);
}

int
pgbi_readers_any(const struct pgbi_readers *g)
{
	return (g != NULL && atomic_load_explicit(
	    &((struct pgbi_readers *)g)->nreaders, memory_order_relaxed) > 0);
}

void
pgbi_readers_set_master(struct pgbi_readers *g, const char *host, int port)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&readers_mtx);
	if (host == NULL) {
		g->master[0] = '\0';
		g->master_port = 0;
	} else {
		pgbi_strlcpy(g->master, host, sizeof g->master);
		g->master_port = port;
		g->master_ms = pgbi_now_ms();
	}
	pthread_mutex_unlock(&readers_mtx);
}

int
pgbi_readers_master(struct pgbi_readers *g, char *host, size_t hostlen,
    int *port, int64_t *ms)
{
	int	rc = -1;

	if (g == NULL)
		return (-1);
	pthread_mutex_lock(&readers_mtx);
	if (g->master[0] != '\0') {
		pgbi_strlcpy(host, g->master, hostlen);
		*port = g->master_port;
		*ms = g->master_ms;
		rc = 0;
	}
	pthread_mutex_unlock(&readers_mtx);
	return (rc);
}

int
pgbi_tag_wrote(const char *tag)
{
	static const char *const verbs[] = { "INSERT ", "UPDATE ", "DELETE ",
			    "MERGE ", NULL };
	const char	*n;
	int		 i;

	if (tag == NULL)
		return (0);
	for (i = 0; verbs[i] != NULL; i++) {
		if (strncmp(tag, verbs[i], strlen(verbs[i])) == 0)
			break;
	}
	if (verbs[i] == NULL || (n = strrchr(tag, ' ')) == NULL)
		return (0);
	/* The row count is the last word; "INSERT 0 0" wrote nothing. */
	for (n++; *n == '0'; n++)
		;
	return (*n >= '1' && *n <= '9');
}

/* PostgreSQL's defaults: XLOG_BLCKSZ and wal_segment_size. */
#define WAL_PAGE		8192
#define WAL_SEGMENT		(16 * 1024 * 1024)
/* SizeOfXLogShortPHD and SizeOfXLogLongPHD on 64-bit servers. */
#define WAL_SHORT_HEADER	24
#define WAL_LONG_HEADER		40

uint64_t
pgbi_lsn_insert_to_end(uint64_t lsn)
{
	/*
	 * Safe even when the server's pages or segments are not the
	 * defaults: a commit record is longer than 40 bytes, so whatever
	 * record ends at lsn, none ends in the 24 (40) bytes before it.
	 */
	if (lsn % WAL_SEGMENT == WAL_LONG_HEADER)
		return (lsn - WAL_LONG_HEADER);
	if (lsn % WAL_PAGE == WAL_SHORT_HEADER)
		return (lsn - WAL_SHORT_HEADER);
	return (lsn);
}

/*
 * pg_current_wal_insert_lsn(), not pg_current_wal_lsn(): the latter is
 * how far the WAL was written, which under synchronous_commit = off (or
 * local, with a concurrent flush) can be before the end of the commit
 * record just made.  The insert position is after it in every mode.
 */
#define COMMIT_LSN_SQL	"SELECT CASE WHEN pg_is_in_recovery() THEN NULL" \
			" ELSE pg_current_wal_insert_lsn() END"

const char *
pgbi_commit_sql(struct pgbi_commit *cm, const pgb_db *db,
    const struct pgbi_pconn *c, int want, int wrote)
{
	cm->track = strcmp(c->role, "replica") != 0 &&
	    (want || pgbi_db_ryw_readers(db));
	cm->check = cm->track && !wrote;
	cm->wrote = cm->track && wrote;
	cm->lsn[0] = '\0';
	if (!cm->track)
		return ("COMMIT");
	if (!cm->check)
		return ("COMMIT;" COMMIT_LSN_SQL);
	return ("SELECT pg_current_xact_id_if_assigned() IS NOT NULL;"
	    "COMMIT;" COMMIT_LSN_SQL);
}

void
pgbi_commit_result(struct pgbi_commit *cm, int nres, const PGresult *res)
{
	int	lsn_res = cm->check ? 3 : 2;

	if (!cm->track || PQntuples(res) != 1)
		return;
	if (cm->check && nres == 1)
		cm->wrote = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	else if (nres == lsn_res && !PQgetisnull(res, 0, 0))
		pgbi_strlcpy(cm->lsn, PQgetvalue(res, 0, 0), sizeof cm->lsn);
}

int
pgbi_commit_complete(const struct pgbi_commit *cm, int nres)
{
	return (nres >= (cm->check ? 2 : 1));
}

void
pgbi_commit_record(const struct pgbi_commit *cm,
    char commit_lsn[PGB_LSN_MAX], struct pgbi_ctx_lsn *l)
{
	uint64_t	v;

	if (!cm->wrote || !pgbc_lsn_parse(cm->lsn, &v))
		return;
	v = pgbi_lsn_insert_to_end(v);
	pgbc_lsn_format(v, commit_lsn);
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

/* --- contexts (pgb_ctx, pgb_actx) ---------------------------------------- */

void
pgbi_ctx_seterr(char *error, char *first, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(error, PGBI_CTX_ERROR_MAX, fmt, ap);
	va_end(ap);
	if (first[0] == '\0')
		pgbi_strlcpy(first, error, PGBI_FIRST_MAX);
}

void
pgbi_ctx_why_failed(char *buf, size_t len, const char *first,
    const char *how, int rc)
{
	if (first[0] != '\0')
		pgbi_strlcpy(buf, first, len);
	else
		snprintf(buf, len, "the callback failed (%s %d) without a"
		    " failure in the library", how, rc);
}

enum pgbi_end_step
pgbi_end_step(int status, int tx_failed, int has_before_commit)
{
	if (status >= 400)
		return (PGBI_END_ROLLBACK);
	if (tx_failed)
		return (PGBI_END_FAILED_TX);
	return (has_before_commit ? PGBI_END_ASK : PGBI_END_COMMIT);
}

void
pgbi_serr_end_failed(struct pgbi_serr *e, const pgb_db *db,
    const struct pgbi_pconn *c)
{
	pgbi_serr_set(e, PGB_ERR_STATE, "%s on %s:%d: transaction failed"
	    " earlier; rolled back", pgbi_db_label(db), c->host, c->port);
}

void
pgbi_serr_refused(struct pgbi_serr *e, const pgb_db *db)
{
	pgbi_serr_set(e, PGB_ERR_STATE, "%s: before-commit callback refused;"
	    " rolled back", pgbi_db_label(db));
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
