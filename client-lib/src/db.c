/*
 * db.c - the connect object (pgb_db): a thread-safe pool of libpq
 * connections to the current host of a role, and the default
 * before-create hook that asks pgbeacond where the role is.
 *
 * Locking: db->mtx guards the pool and the current host; db->hook_mtx
 * guards the daemon client and watch of the default hook (one thread asks
 * the daemon at a time).  hook_mtx may be held while taking mtx, never
 * the other way round.  No libpq call is made with mtx held.
 */
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "session-internal.h"
#include "util-internal.h"

#define DB_POOL_SIZE		10
#define DB_CHECKOUT_TIMEOUT_MS	5000
#define DB_IDLE_CHECK_MS	30000
#define DB_RECHECK_MS		1000

TAILQ_HEAD(pconn_list, pgbi_pconn);

struct pgb_db {
	char		*conninfo;	/* owned; no host or port */
	char		*cluster;	/* owned; NULL for fixed dbs */
	char		*role;		/* owned; the role asked for, or label */
	char		*socket_path;	/* owned; NULL: default */
	char		*label;		/* owned; "cluster role" for messages */
	int		 is_master;
	struct pgbi_readers *readers;	/* its cluster's group; owned ref */

	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;		/* a slot or an idle conn freed */
	int		 size;
	int		 checkout_timeout_ms;
	int		 idle_check_ms;
	int		 recheck_ms;
	pgb_hook_fn	 hook;
	void		*hook_arg;

	/* under mtx */
	int		 has_host;
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 host_role[PGB_ROLE_MAX];	/* as the daemon said */
	uint64_t	 epoch;		/* bumped by each host change, close */
	struct pconn_list idle;		/* owned; most recently used first */
	int		 nidle;
	int		 nbusy;		/* checked out, current epoch */
	int		 nretiring;	/* checked out, former epoch */
	int		 closed;
	pgb_pool_stats	 stats;		/* counters; idle/busy filled on read */

	/* default hook state, under hook_mtx */
	pthread_mutex_t	 hook_mtx;
	pgb_client	*client;	/* owned, made on first use */
	pgb_watch	*watch;		/* owned, master dbs only */
	int		 answer_valid;	/* the last answer may be reused */
	int64_t		 answer_ms;	/* when it was received */
};

static _Thread_local char db_error[1024];
/* Why the default hook failed in this thread (the daemon's answer or
 * the client's failure), so a session gets the code the event-driven
 * API gives for the same condition; PGB_OK: not the default hook's. */
static _Thread_local pgb_errcode db_hook_code;

static pgb_db	*db_alloc(const char *conninfo, const char *role);
static void	 db_close_list(struct pconn_list *list);
static int	 db_connect(pgb_db *db, struct pgbi_pconn *c, char *err,
		     size_t errlen);
static PGconn	*db_open(const pgb_db *db, const struct pgbi_pconn *c,
		     int blocking);
static int	 db_takeable(pgb_db *db, pgb_errcode *code, char *err,
		     size_t errlen);
static struct pgbi_pconn *db_reserve(pgb_db *db, pgb_errcode *code,
		     char *err, size_t errlen);
static int	 db_validate(pgb_db *db, struct pgbi_pconn *c);
static void	 db_notice_cb(void *arg, const char *message);

static pgb_db *
db_alloc(const char *conninfo, const char *role)
{
	pgb_db	*db;

	db = calloc(1, sizeof *db);
	if (db == NULL)
		return (NULL);
	db->conninfo = strdup(conninfo != NULL ? conninfo : "");
	db->role = strdup(role != NULL ? role : "");
	if (db->conninfo == NULL || db->role == NULL) {
		free(db->conninfo);
		free(db->role);
		free(db);
		return (NULL);
	}
	pthread_mutex_init(&db->mtx, NULL);
	pthread_mutex_init(&db->hook_mtx, NULL);
	pthread_cond_init(&db->cond, NULL);
	TAILQ_INIT(&db->idle);
	db->size = DB_POOL_SIZE;
	db->checkout_timeout_ms = DB_CHECKOUT_TIMEOUT_MS;
	db->idle_check_ms = DB_IDLE_CHECK_MS;
	db->recheck_ms = DB_RECHECK_MS;
	db->is_master = strcmp(db->role, "master") == 0 ||
	    strcmp(db->role, "primary") == 0;
	return (db);
}

pgb_db *
pgb_db_new(const char *conninfo, const char *cluster, const char *role,
    const char *socket_path)
{
	pgb_db	*db;

	if (cluster == NULL || role == NULL)
		return (NULL);
	db = db_alloc(conninfo, role);
	if (db == NULL)
		return (NULL);
	db->cluster = strdup(cluster);
	if (socket_path != NULL)
		db->socket_path = strdup(socket_path);
	if (asprintf(&db->label, "%s %s", cluster, role) == -1)
		db->label = NULL;
	if (db->cluster == NULL || db->label == NULL ||
	    (socket_path != NULL && db->socket_path == NULL) ||
	    (db->readers = pgbi_readers_join(cluster, !db->is_master)) ==
	    NULL) {
		pgb_db_free(db);
		return (NULL);
	}
	db->hook = pgb_db_default_hook;
	return (db);
}

pgb_db *
pgb_db_new_fixed(const char *conninfo, const char *host, int port,
    const char *role)
{
	pgb_db	*db;

	if (host == NULL || port <= 0 || port > 65535)
		return (NULL);
	db = db_alloc(conninfo, role != NULL ? role : "fixed");
	if (db == NULL)
		return (NULL);
	if (asprintf(&db->label, "%s", db->role) == -1) {
		db->label = NULL;
		pgb_db_free(db);
		return (NULL);
	}
	if ((db->readers = pgbi_readers_join(NULL, !db->is_master)) == NULL) {
		pgb_db_free(db);
		return (NULL);
	}
	db->has_host = 1;
	pgbi_strlcpy(db->host, host, sizeof db->host);
	db->port = port;
	pgbi_strlcpy(db->host_role, db->role, sizeof db->host_role);
	return (db);
}

void
pgb_db_free(pgb_db *db)
{
	if (db == NULL)
		return;
	pgb_db_close(db);
	pgbi_readers_leave(db->readers, !db->is_master);
	pgb_watch_free(db->watch);
	pgb_client_free(db->client);
	pthread_cond_destroy(&db->cond);
	pthread_mutex_destroy(&db->mtx);
	pthread_mutex_destroy(&db->hook_mtx);
	free(db->conninfo);
	free(db->cluster);
	free(db->role);
	free(db->socket_path);
	free(db->label);
	free(db);
}

void
pgb_db_set_pool(pgb_db *db, int size, int checkout_timeout_ms,
    int idle_check_ms)
{
	pthread_mutex_lock(&db->mtx);
	db->size = size > 0 ? size : DB_POOL_SIZE;
	db->checkout_timeout_ms = checkout_timeout_ms >= 0 ?
	    checkout_timeout_ms : DB_CHECKOUT_TIMEOUT_MS;
	db->idle_check_ms = idle_check_ms;
	pthread_cond_broadcast(&db->cond);
	pthread_mutex_unlock(&db->mtx);
}

void
pgb_db_set_recheck(pgb_db *db, int recheck_ms)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->recheck_ms = recheck_ms >= 0 ? recheck_ms : DB_RECHECK_MS;
	pthread_mutex_unlock(&db->hook_mtx);
}

void
pgb_db_set_hook(pgb_db *db, pgb_hook_fn fn, void *arg)
{
	pthread_mutex_lock(&db->mtx);
	db->hook = fn;
	db->hook_arg = arg;
	pthread_mutex_unlock(&db->mtx);
}

const char *
pgb_db_cluster(const pgb_db *db)
{
	return (db->cluster);
}

const char *
pgb_db_role(const pgb_db *db)
{
	return (db->role);
}

void
pgb_db_set_error(pgb_db *db, const char *fmt, ...)
{
	va_list	ap;

	(void)db;
	va_start(ap, fmt);
	vsnprintf(db_error, sizeof db_error, fmt, ap);
	va_end(ap);
}

const char *
pgb_db_error(const pgb_db *db)
{
	(void)db;
	return (db_error);
}

int
pgbi_db_is_master(const pgb_db *db)
{
	return (db->is_master);
}

int
pgbi_db_ryw_readers(const pgb_db *db)
{
	return (pgbi_readers_any(db->readers));
}

const char *
pgbi_db_label(const pgb_db *db)
{
	return (db->label);
}

void
pgbi_db_invalidate(pgb_db *db)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->answer_valid = 0;
	pthread_mutex_unlock(&db->hook_mtx);
}

/* Closes every connection of list (not under mtx). */
static void
db_close_list(struct pconn_list *list)
{
	struct pgbi_pconn	*c;

	while ((c = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, c, entry);
		PQfinish(c->pg);
		free(c);
	}
}

int
pgb_db_change_host(pgb_db *db, const char *host, int port, const char *role)
{
	return (pgbi_db_move(db, host, port, role) == -1 ? -1 : 0);
}

int
pgbi_db_move(pgb_db *db, const char *host, int port, const char *role)
{
	struct pconn_list	old;

	if (host == NULL || *host == '\0' || port <= 0 || port > 65535) {
		pgb_db_set_error(db, "%s: bad host for pgb_db_change_host",
		    db->label);
		return (-1);
	}
	TAILQ_INIT(&old);
	pthread_mutex_lock(&db->mtx);
	if (db->has_host && db->port == port && strcmp(db->host, host) == 0) {
		if (role != NULL)
			pgbi_strlcpy(db->host_role, role, sizeof db->host_role);
		pthread_mutex_unlock(&db->mtx);
		return (0);
	}
	db->epoch++;
	TAILQ_CONCAT(&old, &db->idle, entry);
	db->stats.discarded += (uint64_t)db->nidle;
	db->nidle = 0;
	db->nretiring += db->nbusy;
	db->nbusy = 0;
	if (db->has_host)
		db->stats.host_changes++;
	db->has_host = 1;
	pgbi_strlcpy(db->host, host, sizeof db->host);
	db->port = port;
	pgbi_strlcpy(db->host_role, role != NULL ? role : db->role,
	    sizeof db->host_role);
	pthread_cond_broadcast(&db->cond);
	pthread_mutex_unlock(&db->mtx);
	db_close_list(&old);
	return (1);
}

int
pgb_db_current_host(pgb_db *db, char *host, size_t hostlen, int *port)
{
	int	rc = -1;

	pthread_mutex_lock(&db->mtx);
	if (db->has_host) {
		pgbi_strlcpy(host, db->host, hostlen);
		*port = db->port;
		rc = 0;
	}
	pthread_mutex_unlock(&db->mtx);
	return (rc);
}

void
pgb_db_stats(pgb_db *db, pgb_pool_stats *out)
{
	pthread_mutex_lock(&db->mtx);
	*out = db->stats;
	out->idle = db->nidle;
	out->busy = db->nbusy;
	out->retiring = db->nretiring;
	pthread_mutex_unlock(&db->mtx);
}

void
pgb_db_close(pgb_db *db)
{
	struct pconn_list	old;

	TAILQ_INIT(&old);
	pthread_mutex_lock(&db->mtx);
	db->closed = 1;
	db->epoch++;
	TAILQ_CONCAT(&old, &db->idle, entry);
	db->nidle = 0;
	db->nretiring += db->nbusy;
	db->nbusy = 0;
	pthread_cond_broadcast(&db->cond);
	pthread_mutex_unlock(&db->mtx);
	db_close_list(&old);
}

int
pgb_db_default_hook(pgb_db *db, const char *min_lsn, void *arg)
{
	pgb_resolved	 r;
	pgb_event	 ev;
	char		 opts[64];
	int		 rc, dirty = 0, has_host;

	(void)arg;
	if (db->cluster == NULL) {
		pgb_db_set_error(db, "%s: the default hook needs a cluster",
		    db->label);
		return (-1);
	}
	pthread_mutex_lock(&db->mtx);
	has_host = db->has_host;
	pthread_mutex_unlock(&db->mtx);
	pthread_mutex_lock(&db->hook_mtx);
	if (db->client == NULL) {
		db->client = pgb_client_new(db->socket_path);
		if (db->client == NULL) {
			pthread_mutex_unlock(&db->hook_mtx);
			pgb_db_set_error(db, "%s: out of memory", db->label);
			return (-1);
		}
	}
	if (db->is_master && min_lsn == NULL) {
		/* Subscribe before asking, so no change can slip between. */
		if (db->watch == NULL) {
			db->watch = pgb_watch_new(db->socket_path, db->cluster);
			dirty = 1;
		}
		if (db->watch != NULL) {
			while ((rc = pgb_watch_poll(db->watch, &ev)) == 1) {
				if (ev.resync ||
				    strcmp(ev.cluster, db->cluster) == 0)
					dirty = 1;
			}
			if (rc == -1)
				dirty = 1;
		} else
			dirty = 1;
		if (!dirty && db->answer_valid && has_host) {
			pthread_mutex_unlock(&db->hook_mtx);
			return (0);
		}
	} else if (min_lsn == NULL && db->answer_valid && has_host &&
	    pgbi_now_ms() - db->answer_ms < db->recheck_ms) {
		pthread_mutex_unlock(&db->hook_mtx);
		return (0);
	}
	if (min_lsn != NULL)
		snprintf(opts, sizeof opts, "min_lsn=%s", min_lsn);
	pgbi_db_count_resolve(db);
	if (pgb_client_resolve(db->client, db->cluster, db->role,
	    min_lsn != NULL ? opts : NULL, &r) == -1) {
		db->answer_valid = 0;
		pgb_db_set_error(db, "%s: no host from pgbeacond: %s",
		    db->label, pgb_client_error(db->client));
		db_hook_code = pgb_client_errcode(db->client);
		pthread_mutex_unlock(&db->hook_mtx);
		return (-1);
	}
	/* An answer for a min_lsn is for that session only. */
	db->answer_valid = min_lsn == NULL;
	db->answer_ms = pgbi_now_ms();
	rc = pgb_db_change_host(db, r.host, r.port, r.role);
	pthread_mutex_unlock(&db->hook_mtx);
	return (rc);
}

/*
 * Notices (NOTICE, WARNING from the server) are dropped: libpq's default
 * prints them to stderr, and the library never prints.  An application
 * that wants them sets its own processor on pgb_session_conn().
 */
static void
db_notice_cb(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * Starts a libpq connection to c->host:c->port with the db's conninfo:
 * PQconnectdbParams when blocking, else PQconnectStartParams.  The caller
 * owns the result (NULL when out of memory).
 */
static PGconn *
db_open(const pgb_db *db, const struct pgbi_pconn *c, int blocking)
{
	const char *const keys[] = { "dbname", "host", "port",
			    "fallback_application_name", NULL };
	const char	*vals[5];
	char		 port[16];

	snprintf(port, sizeof port, "%d", c->port);
	vals[0] = db->conninfo;
	vals[1] = c->host;
	vals[2] = port;
	vals[3] = "pgbeacon";
	vals[4] = NULL;
	return (blocking ? PQconnectdbParams(keys, vals, 1) :
	    PQconnectStartParams(keys, vals, 1));
}

/*
 * Opens c->pg to c->host:c->port (the caller then calls pgbi_db_opened);
 * -1 with a message in err.
 */
static int
db_connect(pgb_db *db, struct pgbi_pconn *c, char *err, size_t errlen)
{
	c->pg = db_open(db, c, 1);
	if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_OK)
		return (0);
	pgbi_db_connect_error(db, c, err, errlen);
	PQfinish(c->pg);
	c->pg = NULL;
	return (-1);
}

void
pgbi_db_connect_error(const pgb_db *db, const struct pgbi_pconn *c,
    char *err, size_t errlen)
{
	char	msg[512];

	pgbi_strlcpy(msg, c->pg != NULL ? PQerrorMessage(c->pg) :
	    "out of memory", sizeof msg);
	pgbi_chomp(msg);
	snprintf(err, errlen, "%s: cannot connect to %s:%d (%s): %s",
	    db->label, c->host, c->port, c->role, msg);
}

/*
 * Under mtx: 0 when a connection may be handed out, -1 with *code and a
 * message in err when the db is closed or has no host.
 */
static int
db_takeable(pgb_db *db, pgb_errcode *code, char *err, size_t errlen)
{
	if (db->closed) {
		*code = PGB_ERR_CLOSED;
		snprintf(err, errlen, "%s: the db is closed", db->label);
		return (-1);
	}
	if (!db->has_host) {
		*code = PGB_ERR_STATE;
		snprintf(err, errlen, "%s: no host known (no hook set one)",
		    db->label);
		return (-1);
	}
	return (0);
}

/*
 * Under mtx, with room in the pool: reserves a busy slot for a new
 * connection to the current host.  The caller owns the result (pg NULL,
 * host fields set); NULL with *code and a message in err when out of
 * memory.
 */
static struct pgbi_pconn *
db_reserve(pgb_db *db, pgb_errcode *code, char *err, size_t errlen)
{
	struct pgbi_pconn	*c;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		*code = PGB_ERR_NOMEM;
		snprintf(err, errlen, "%s: out of memory", db->label);
		return (NULL);
	}
	db->nbusy++;
	c->epoch = db->epoch;
	pgbi_strlcpy(c->host, db->host, sizeof c->host);
	c->port = db->port;
	pgbi_strlcpy(c->role, db->host_role, sizeof c->role);
	return (c);
}

/* 0 when an idle connection is fit for reuse. */
static int
db_validate(pgb_db *db, struct pgbi_pconn *c)
{
	PGresult	*res;
	int		 ok;

	if (PQstatus(c->pg) != CONNECTION_OK ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return (-1);
	if (db->idle_check_ms < 0 ||
	    pgbi_now_ms() - c->last_used_ms < db->idle_check_ms)
		return (0);
	res = PQexec(c->pg, "");
	ok = PQresultStatus(res) == PGRES_EMPTY_QUERY;
	PQclear(res);
	return (ok ? 0 : -1);
}

int
pgbi_db_checkout(pgb_db *db, const char *min_lsn, struct pgbi_pconn **out,
    pgb_errcode *code, char *err, size_t errlen)
{
	struct pgbi_pconn	*c;
	struct timespec		 ts;
	pgb_hook_fn		 hook;
	void			*hook_arg;
	int64_t			 deadline;
	int			 rc;

	*out = NULL;
	pthread_mutex_lock(&db->mtx);
	hook = db->hook;
	hook_arg = db->hook_arg;
	rc = db->closed;
	pthread_mutex_unlock(&db->mtx);
	if (rc) {
		*code = PGB_ERR_CLOSED;
		snprintf(err, errlen, "%s: the db is closed", db->label);
		return (-1);
	}
	if (hook != NULL) {
		db_error[0] = '\0';
		db_hook_code = PGB_OK;
		if (hook(db, min_lsn, hook_arg) == -1) {
			*code = db_hook_code != PGB_OK ? db_hook_code :
			    PGB_ERR_HOOK;
			snprintf(err, errlen, "%s", db_error[0] != '\0' ?
			    db_error : "before-create hook failed");
			return (-1);
		}
	}

	pthread_mutex_lock(&db->mtx);
	deadline = pgbi_now_ms() + db->checkout_timeout_ms;
	for (;;) {
		if (db_takeable(db, code, err, errlen) == -1) {
			pthread_mutex_unlock(&db->mtx);
			return (-1);
		}
		if ((c = TAILQ_FIRST(&db->idle)) != NULL) {
			TAILQ_REMOVE(&db->idle, c, entry);
			db->nidle--;
			db->nbusy++;
			pthread_mutex_unlock(&db->mtx);
			if (db_validate(db, c) == 0) {
				c->reused = 1;
				pthread_mutex_lock(&db->mtx);
				db->stats.reused++;
				pthread_mutex_unlock(&db->mtx);
				*out = c;
				return (0);
			}
			pgbi_db_checkin(db, c, 1);
			pthread_mutex_lock(&db->mtx);
			continue;
		}
		if (db->nbusy + db->nidle < db->size) {
			c = db_reserve(db, code, err, errlen);
			pthread_mutex_unlock(&db->mtx);
			if (c == NULL)
				return (-1);
			if (db_connect(db, c, err, errlen) == -1) {
				pgbi_db_abandon(db, c);
				pgbi_db_invalidate(db);
				*code = PGB_ERR_CONNECT;
				return (-1);
			}
			pgbi_db_opened(db, c);
			*out = c;
			return (0);
		}
		if (pgbi_now_ms() >= deadline) {
			rc = db->size;
			pthread_mutex_unlock(&db->mtx);
			*code = PGB_ERR_POOL_TIMEOUT;
			snprintf(err, errlen, "%s: pool of %s:%d exhausted: all"
			    " %d connections in use for %d ms", db->label,
			    db->host, db->port, rc, db->checkout_timeout_ms);
			return (-1);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;	/* recheck the deadline often */
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		rc = pthread_cond_timedwait(&db->cond, &db->mtx, &ts);
		if (rc != 0 && rc != ETIMEDOUT) {
			pthread_mutex_unlock(&db->mtx);
			*code = PGB_ERR_STATE;
			snprintf(err, errlen, "%s: pool wait failed: %s",
			    db->label, strerror(rc));
			return (-1);
		}
	}
}

void
pgbi_db_checkin(pgb_db *db, struct pgbi_pconn *c, int discard)
{
	if (c == NULL)
		return;
	if (!discard && (PQstatus(c->pg) != CONNECTION_OK ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE))
		discard = 1;
	pthread_mutex_lock(&db->mtx);
	if (c->epoch != db->epoch) {
		db->nretiring--;
		discard = 1;
	} else {
		db->nbusy--;
		if (discard)
			db->stats.discarded++;
		else {
			c->last_used_ms = pgbi_now_ms();
			TAILQ_INSERT_HEAD(&db->idle, c, entry);
			db->nidle++;
		}
	}
	pthread_cond_signal(&db->cond);
	pthread_mutex_unlock(&db->mtx);
	if (discard) {
		PQfinish(c->pg);
		free(c);
	}
}

/* --- for the event-driven API (async.c) ---------------------------------- */

int
pgbi_db_take(pgb_db *db, struct pgbi_pconn **out, pgb_errcode *code,
    char *err, size_t errlen)
{
	struct pgbi_pconn	*c;

	*out = NULL;
	pthread_mutex_lock(&db->mtx);
	for (;;) {
		if (db_takeable(db, code, err, errlen) == -1) {
			pthread_mutex_unlock(&db->mtx);
			return (-1);
		}
		if ((c = TAILQ_FIRST(&db->idle)) == NULL)
			break;
		TAILQ_REMOVE(&db->idle, c, entry);
		db->nidle--;
		if (PQstatus(c->pg) == CONNECTION_OK &&
		    PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
			db->nbusy++;
			db->stats.reused++;
			pthread_mutex_unlock(&db->mtx);
			c->reused = 1;
			*out = c;
			return (1);
		}
		db->stats.discarded++;
		pthread_mutex_unlock(&db->mtx);
		PQfinish(c->pg);
		free(c);
		pthread_mutex_lock(&db->mtx);
	}
	if (db->nbusy + db->nidle >= db->size) {
		pthread_mutex_unlock(&db->mtx);
		return (0);
	}
	c = db_reserve(db, code, err, errlen);
	pthread_mutex_unlock(&db->mtx);
	if (c == NULL)
		return (-1);
	*out = c;
	return (1);
}

void
pgbi_db_abandon(pgb_db *db, struct pgbi_pconn *c)
{
	pthread_mutex_lock(&db->mtx);
	if (c->epoch == db->epoch)
		db->nbusy--;
	else
		db->nretiring--;
	pthread_cond_signal(&db->cond);
	pthread_mutex_unlock(&db->mtx);
	PQfinish(c->pg);
	free(c);
}

PGconn *
pgbi_db_connect_start(pgb_db *db, const struct pgbi_pconn *c)
{
	return (db_open(db, c, 0));
}

void
pgbi_db_opened(pgb_db *db, struct pgbi_pconn *c)
{
	(void)PQsetNoticeProcessor(c->pg, db_notice_cb, NULL);
	pthread_mutex_lock(&db->mtx);
	db->stats.opened++;
	pthread_mutex_unlock(&db->mtx);
}

void
pgbi_db_count_resolve(pgb_db *db)
{
	pthread_mutex_lock(&db->mtx);
	db->stats.resolves++;
	pthread_mutex_unlock(&db->mtx);
}

int
pgbi_db_checkout_timeout_ms(pgb_db *db)
{
	int	v;

	pthread_mutex_lock(&db->mtx);
	v = db->checkout_timeout_ms;
	pthread_mutex_unlock(&db->mtx);
	return (v);
}

int
pgbi_db_recheck_ms(pgb_db *db)
{
	int	v;

	pthread_mutex_lock(&db->hook_mtx);
	v = db->recheck_ms;
	pthread_mutex_unlock(&db->hook_mtx);
	return (v);
}

void
pgbi_db_hook(pgb_db *db, pgb_hook_fn *fn, void **arg)
{
	pthread_mutex_lock(&db->mtx);
	*fn = db->hook;
	*arg = db->hook_arg;
	pthread_mutex_unlock(&db->mtx);
}
