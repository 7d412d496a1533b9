/*
 * db-hook.c - the before-create hook of a pgb_db: running it for a
 * checkout, and the default hook, which asks pgbeacond where the role is
 * and keeps the answer (recheck_ms; for a master db until a WATCH event),
 * waits out a failover (role_wait_ms), rides out a daemon restart on the
 * hosts it named last (stale_ttl_ms), drains replicas WATCH events no
 * longer name, and forgets the answer when its host loses the role.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "db-impl-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

/* The session being checked out by this thread, for the default hook. */
struct db_route_slot {
	pgb_db		*db;
	struct pgbi_route *rt;
};

static _Thread_local struct db_route_slot db_route_tl;
static _Thread_local char db_error[1024];
/* Why the default hook failed in this thread (the daemon's answer or
 * the client's failure), so a session gets the code the event-driven
 * API gives for the same condition; PGB_OK: not the default hook's. */
static _Thread_local pgb_errcode db_hook_code;

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
pgbi_db_run_hook(pgb_db *db, pgb_hook_fn hook, void *hook_arg,
    const char *min_lsn, struct pgbi_route *rt, pgb_errcode *code,
    char *err, size_t errlen)
{
	struct db_route_slot	 saved;
	int			 rc;

	db_error[0] = '\0';
	db_hook_code = PGB_OK;
	saved = db_route_tl;
	db_route_tl.db = db;
	db_route_tl.rt = rt;
	rc = hook(db, min_lsn, hook_arg);
	db_route_tl = saved;
	if (rc == -1) {
		*code = db_hook_code != PGB_OK ? db_hook_code :
		    PGB_ERR_HOOK;
		snprintf(err, errlen, "%s", db_error[0] != '\0' ?
		    db_error : "before-create hook failed");
		return (-1);
	}
	return (0);
}

/*
 * With hook_mtx held, after the daemon could not be reached (code): 0
 * when the session may go on with the hosts the daemon named last (a
 * session with a min_lsn routed, through rt, to the cluster's last
 * primary), because the daemon confirmed them less than stale_ttl_ms
 * ago; -1 otherwise.
 */
static int
db_use_stale(pgb_db *db, pgb_errcode code, const char *min_lsn,
    struct pgbi_route *rt)
{
	char	 host[PGB_HOST_MAX];
	int64_t	 now = pgbi_now_ms(), ms;
	int	 port, ok = 0;

	if (code != PGB_ERR_UNREACHABLE || db->stale_ttl_ms == 0)
		return (-1);
	if (min_lsn != NULL && !db->is_master) {
		/* Read-your-writes falls back to the primary. */
		if (rt == NULL || pgbi_readers_master(db->readers, host,
		    sizeof host, &port, &ms) == -1 ||
		    now - ms > db->stale_ttl_ms)
			return (-1);
		rt->set = 1;
		pgbi_strlcpy(rt->host, host, sizeof rt->host);
		rt->port = port;
		pgbi_strlcpy(rt->role, "master", sizeof rt->role);
		ok = 1;
	} else if (db->confirmed_ms == 0 ||
	    now - db->confirmed_ms > db->stale_ttl_ms)
		return (-1);
	pthread_mutex_lock(&db->mtx);
	if (min_lsn == NULL || db->is_master)
		ok = db->nqualify > 0;
	if (ok)
		db->stats.stale++;
	pthread_mutex_unlock(&db->mtx);
	return (ok ? 0 : -1);
}

int
pgbi_db_stale(pgb_db *db, pgb_errcode code, const char *min_lsn,
    struct pgbi_route *rt)
{
	int	rc;

	pthread_mutex_lock(&db->hook_mtx);
	rc = db_use_stale(db, code, min_lsn, rt);
	pthread_mutex_unlock(&db->hook_mtx);
	return (rc);
}

/* With hook_mtx held: the daemon answered for, or confirmed, db's hosts. */
static void
db_confirmed(pgb_db *db)
{
	char	host[PGB_HOST_MAX];
	int	port, has;

	db->confirmed_ms = pgbi_now_ms();
	if (!db->is_master)
		return;
	pthread_mutex_lock(&db->mtx);
	if ((has = db->current != NULL)) {
		pgbi_strlcpy(host, db->current->host, sizeof host);
		port = db->current->port;
	}
	pthread_mutex_unlock(&db->mtx);
	if (has)
		pgbi_readers_set_master(db->readers, host, port);
}

void
pgbi_db_confirmed(pgb_db *db)
{
	pthread_mutex_lock(&db->hook_mtx);
	db_confirmed(db);
	pthread_mutex_unlock(&db->hook_mtx);
}

void
pgbi_db_replicas(pgb_db *db, const char *list, size_t len)
{
	struct pgbi_host	*h;

	if (db->is_master)
		return;
	pthread_mutex_lock(&db->mtx);
	TAILQ_FOREACH(h, &db->hosts, entry) {
		if (h->qualifies && strcmp(h->role, "replica") == 0 &&
		    !pgbi_proto_replicas_has(list, len, h->host, h->port))
			pgbi_db_host_drop(db, h);
	}
	pgbi_db_unlock(db);
}

void
pgbi_db_role_lost(pgb_db *db, struct pgbi_pconn *c)
{
	char	 host[PGB_HOST_MAX];
	int64_t	 ms;
	int	 port;

	pthread_mutex_lock(&db->hook_mtx);
	db->answer_valid = 0;
	pthread_mutex_unlock(&db->hook_mtx);
	pthread_mutex_lock(&db->mtx);
	db->stats.role_lost++;
	if (c->epoch == c->h->epoch)
		pgbi_db_host_drop(db, c->h);
	pgbi_db_unlock(db);
	if (pgbi_readers_master(db->readers, host, sizeof host, &port,
	    &ms) == 0 && port == c->port && strcmp(host, c->host) == 0)
		pgbi_readers_set_master(db->readers, NULL, 0);
}

/*
 * With hook_mtx held, after the daemon answered that no host holds db's
 * role: waits (up to role_wait_ms in all) for a WATCH event naming the
 * cluster, asking again after each.  0 with r filled once a host holds
 * it; -1 when the bound passed or the daemon failed otherwise.
 */
static int
db_wait_role(pgb_db *db, pgb_resolved *r)
{
	pgb_watch	*own = NULL, *w;
	pgb_event	 ev;
	int64_t		 deadline, left;
	int		 rc, ret = -1;

	deadline = pgbi_now_ms() + db->role_wait_ms;
	w = db->watch;
	if (w == NULL && (w = own = pgb_watch_new(db->socket_path,
	    db->cluster)) == NULL)
		return (-1);
	/* Subscribed now: a change from here on is not missed. */
	for (;;) {
		pgbi_db_count_resolve(db);
		if (pgb_client_resolve(db->client, db->cluster, db->role,
		    NULL, r) == 0) {
			ret = 0;
			break;
		}
		if (pgb_client_errcode(db->client) != PGB_ERR_NOHOST)
			break;
		for (;;) {
			if ((left = deadline - pgbi_now_ms()) <= 0)
				goto out;
			rc = pgb_watch_wait(w, &ev, (int)left);
			if (rc == 0)
				goto out;
			if (rc == -1 || ev.resync ||
			    strcmp(ev.cluster, db->cluster) == 0)
				break;
		}
	}
out:
	pgb_watch_free(own);
	return (ret);
}

/*
 * With hook_mtx held, for a non-master db: reads the pending WATCH events
 * of its cluster (subscribing on first use) and drains the replicas that
 * they no longer name, so no session goes to a replica that died or
 * stopped qualifying while its answer is reused (recheck_ms).
 */
static void
db_watch_replicas(pgb_db *db)
{
	pgb_event	 ev;
	const char	*list;
	size_t		 len;

	if (db->watch == NULL &&
	    (db->watch = pgb_watch_new(db->socket_path, db->cluster)) == NULL)
		return;
	while (pgb_watch_poll(db->watch, &ev) == 1) {
		if (ev.resync || strcmp(ev.cluster, db->cluster) != 0)
			continue;
		if (pgbi_watch_replicas(db->watch, &list, &len) == 1)
			pgbi_db_replicas(db, list, len);
	}
}

void
pgbi_db_invalidate(pgb_db *db)
{
	pthread_mutex_lock(&db->hook_mtx);
	db->answer_valid = 0;
	pthread_mutex_unlock(&db->hook_mtx);
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
	has_host = db->current != NULL;
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
	if (!db->is_master) {
		db_watch_replicas(db);
		pthread_mutex_lock(&db->mtx);
		has_host = db->current != NULL;
		pthread_mutex_unlock(&db->mtx);
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
			db_confirmed(db);
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
	    min_lsn != NULL ? opts : NULL, &r) == -1 &&
	    (min_lsn != NULL || db->role_wait_ms == 0 ||
	    pgb_client_errcode(db->client) != PGB_ERR_NOHOST ||
	    db_wait_role(db, &r) == -1)) {
		db->answer_valid = 0;
		if (db_use_stale(db, pgb_client_errcode(db->client), min_lsn,
		    db_route_tl.db == db ? db_route_tl.rt : NULL) == 0) {
			pthread_mutex_unlock(&db->hook_mtx);
			return (0);
		}
		pgb_db_set_error(db, "%s: no host from pgbeacond: %s",
		    db->label, pgb_client_error(db->client));
		db_hook_code = pgb_client_errcode(db->client);
		pthread_mutex_unlock(&db->hook_mtx);
		return (-1);
	}
	/* An answer for a min_lsn is for that session only. */
	db->answer_valid = min_lsn == NULL;
	db->answer_ms = pgbi_now_ms();
	rc = pgbi_db_answer(db, &r, min_lsn != NULL,
	    db_route_tl.db == db ? db_route_tl.rt : NULL);
	if (rc == 0 && min_lsn == NULL)
		db_confirmed(db);
	pthread_mutex_unlock(&db->hook_mtx);
	return (rc);
}

const char *
pgbi_db_conninfo(const pgb_db *db)
{
	return (db->conninfo);
}

const char *
pgbi_db_socket(const pgb_db *db)
{
	return (db->socket_path);
}

/* The primary host:port went away as it lost the role (57P0x or a close
 * before the first statement): forget the answer, drop the host, and
 * stop sending min_lsn reads to it. */
void
pgbi_db_host_lost(pgb_db *db, const char *host, int port)
{
	struct pgbi_host	*h;
	char			 mhost[PGB_HOST_MAX];
	int64_t			 ms;
	int			 mport;

	pthread_mutex_lock(&db->hook_mtx);
	db->answer_valid = 0;
	pthread_mutex_unlock(&db->hook_mtx);
	pthread_mutex_lock(&db->mtx);
	db->stats.role_lost++;
	TAILQ_FOREACH(h, &db->hosts, entry) {
		if (h->port == port && strcmp(h->host, host) == 0) {
			pgbi_db_host_drop(db, h);
			break;
		}
	}
	pgbi_db_unlock(db);
	if (pgbi_readers_master(db->readers, mhost, sizeof mhost, &mport,
	    &ms) == 0 && mport == port && strcmp(mhost, host) == 0)
		pgbi_readers_set_master(db->readers, NULL, 0);
}
