/*
 * db.c - the connect object (pgb_db): a thread-safe pool of libpq
 * connections per host, and the default before-create hook that asks
 * pgbeacond where the role is.  This file holds its lifetime, settings,
 * accessors and counters; db-impl-internal.h says where the rest is.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/roles.h"

#include "pgbeacon.h"
#include "db-internal.h"
#include "db-impl-internal.h"
#include "session-internal.h"

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
	TAILQ_INIT(&db->hosts);
	TAILQ_INIT(&db->waiters);
	TAILQ_INIT(&db->doomed);
	db->size = DB_POOL_SIZE;
	db->checkout_timeout_ms = DB_CHECKOUT_TIMEOUT_MS;
	db->idle_check_ms = DB_IDLE_CHECK_MS;
	db->recheck_ms = DB_RECHECK_MS;
	db->role_wait_ms = DB_ROLE_WAIT_MS;
	db->stale_ttl_ms = DB_STALE_TTL_MS;
	db->is_master = pgbc_want_is_master(db->role);
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
	if ((db->readers = pgbi_readers_join(NULL, !db->is_master)) == NULL ||
	    pgbi_db_move(db, host, port, db->role) == -1) {
		pgb_db_free(db);
		return (NULL);
	}
	return (db);
}

void
pgb_db_free(pgb_db *db)
{
	struct pgbi_host	*h;

	if (db == NULL)
		return;
	pgb_db_close(db);
	pgbi_readers_leave(db->readers, !db->is_master);
	pgb_watch_free(db->watch);
	pgb_client_free(db->client);
	/* Connections still checked out keep a pointer to their host. */
	while ((h = TAILQ_FIRST(&db->hosts)) != NULL) {
		TAILQ_REMOVE(&db->hosts, h, entry);
		free(h);
	}
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
pgb_db_set_recheck(pgb_db *db, int recheck_ms)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->recheck_ms = recheck_ms >= 0 ? recheck_ms : DB_RECHECK_MS;
	pthread_mutex_unlock(&db->hook_mtx);
}

void
pgb_db_set_role_wait(pgb_db *db, int wait_ms)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->role_wait_ms = wait_ms >= 0 ? wait_ms : DB_ROLE_WAIT_MS;
	pthread_mutex_unlock(&db->hook_mtx);
}

void
pgb_db_set_stale_ttl(pgb_db *db, int ttl_ms)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->stale_ttl_ms = ttl_ms >= 0 ? ttl_ms : DB_STALE_TTL_MS;
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

/* Fills the first size bytes of *out (a caller's older, smaller struct). */
void
pgb_db_stats_size(pgb_db *db, pgb_pool_stats *out, size_t size)
{
	pgb_pool_stats		 st;
	struct pgbi_host	*h;

	pthread_mutex_lock(&db->mtx);
	st = db->stats;
	st.idle = st.busy = st.retiring = 0;
	st.hosts = 0;
	TAILQ_FOREACH(h, &db->hosts, entry) {
		st.idle += h->nidle;
		st.busy += h->nbusy;
		st.retiring += h->nretiring;
		if (h->nidle + h->nbusy > 0)
			st.hosts++;
	}
	st.qualifying = db->nqualify;
	pthread_mutex_unlock(&db->mtx);
	memcpy(out, &st, size < sizeof st ? size : sizeof st);
}

#undef pgb_db_stats
void
pgb_db_stats(pgb_db *db, pgb_pool_stats *out)
{
	/* Binaries built against 0.1 or 0.2 pass the struct of 0.1. */
	pgb_db_stats_size(db, out, offsetof(pgb_pool_stats, checkouts));
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
pgbi_db_role_wait_ms(pgb_db *db)
{
	int	v;

	pthread_mutex_lock(&db->hook_mtx);
	v = db->role_wait_ms;
	pthread_mutex_unlock(&db->hook_mtx);
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
