/*
 * db-route.c - which hosts the sessions of a pgb_db use: the host a
 * master or fixed db moves to, the replicas a db for another role
 * spreads its sessions over (as the daemon names them), the host a
 * min_lsn answer routes one session to, and hosts that refuse
 * connections.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "db-impl-internal.h"
#include "session-internal.h"
#include "util-internal.h"

/* Under mtx: plain sessions may use h. */
static void
db_qualify(pgb_db *db, struct pgbi_host *h)
{
	if (!h->qualifies)
		db->nqualify++;
	h->qualifies = 1;
	db->current = h;
}

/* 1 when host:port is unusable (error set). */
static int
db_bad_host(pgb_db *db, const char *host, int port)
{
	if (host == NULL || *host == '\0' || port <= 0 || port > 65535) {
		pgb_db_set_error(db, "%s: bad host for pgb_db_change_host",
		    db->label);
		return (1);
	}
	return (0);
}

int
pgb_db_change_host(pgb_db *db, const char *host, int port, const char *role)
{
	return (pgbi_db_move(db, host, port, role) == -1 ? -1 : 0);
}

int
pgbi_db_move(pgb_db *db, const char *host, int port, const char *role)
{
	struct pgbi_host	*h, *o;

	if (db_bad_host(db, host, port))
		return (-1);
	pthread_mutex_lock(&db->mtx);
	h = pgbi_db_host(db, host, port, role);
	if (h == NULL) {
		pthread_mutex_unlock(&db->mtx);
		pgb_db_set_error(db, "%s: out of memory", db->label);
		return (-1);
	}
	if (db->current == h && db->nqualify == 1) {
		if (role != NULL)
			pgbi_strlcpy(h->role, role, sizeof h->role);
		pthread_mutex_unlock(&db->mtx);
		return (0);
	}
	/* From another host, even one dropped as it lost the role. */
	if (db->current != NULL || TAILQ_FIRST(&db->hosts) != h ||
	    TAILQ_NEXT(h, entry) != NULL)
		db->stats.host_changes++;
	TAILQ_FOREACH(o, &db->hosts, entry) {
		if (o != h)
			pgbi_db_host_drop(db, o);
	}
	pgbi_strlcpy(h->role, role != NULL ? role : db->role, sizeof h->role);
	db_qualify(db, h);
	pgbi_db_dispatch(db, NULL);
	pgbi_db_unlock(db);
	return (1);
}

int
pgbi_db_answer(pgb_db *db, const pgb_resolved *r, int for_min_lsn,
    struct pgbi_route *rt)
{
	struct pgbi_host	*h, *o;
	uint64_t		 keep;

	if (db_bad_host(db, r->host, r->port))
		return (-1);
	if (strcmp(r->role, "master") == 0)
		pgbi_readers_set_master(db->readers, r->host, r->port);
	if (db->is_master)
		return (pgbi_db_move(db, r->host, r->port, r->role) == -1 ?
		    -1 : 0);
	pthread_mutex_lock(&db->mtx);
	h = pgbi_db_host(db, r->host, r->port, r->role);
	if (h == NULL) {
		pthread_mutex_unlock(&db->mtx);
		pgb_db_set_error(db, "%s: out of memory", db->label);
		return (-1);
	}
	if (strcmp(h->role, r->role) != 0) {
		/* Promoted, or demoted: what it holds was for another role. */
		pgbi_db_host_drop(db, h);
		pgbi_strlcpy(h->role, r->role, sizeof h->role);
	}
	if (strcmp(r->role, "master") == 0) {
		TAILQ_FOREACH(o, &db->hosts, entry) {
			if (o != h && strcmp(o->role, "master") == 0) {
				pgbi_db_host_drop(db, o);
				/* Its next answer names its new role. */
				pgbi_strlcpy(o->role, "former master",
				    sizeof o->role);
			}
		}
	}
	if (!for_min_lsn) {
		h->seen = ++db->answers;
		db_qualify(db, h);
		/*
		 * The daemon hands out the qualifying hosts in turn: one it
		 * has not named in that many answers no longer qualifies.
		 */
		keep = 2 * (uint64_t)db->nqualify + 2;
		TAILQ_FOREACH(o, &db->hosts, entry) {
			if (o->qualifies && db->answers - o->seen > keep)
				pgbi_db_host_drop(db, o);
		}
	} else if (h->qualifies)
		h->seen = db->answers;
	if (rt != NULL && for_min_lsn) {
		rt->set = 1;
		pgbi_strlcpy(rt->host, h->host, sizeof rt->host);
		rt->port = h->port;
		pgbi_strlcpy(rt->role, h->role, sizeof rt->role);
	}
	pgbi_db_dispatch(db, NULL);
	pgbi_db_unlock(db);
	return (0);
}

int
pgb_db_current_host(pgb_db *db, char *host, size_t hostlen, int *port)
{
	int	rc = -1;

	pthread_mutex_lock(&db->mtx);
	if (db->current != NULL) {
		pgbi_strlcpy(host, db->current->host, hostlen);
		*port = db->current->port;
		rc = 0;
	}
	pthread_mutex_unlock(&db->mtx);
	return (rc);
}

void
pgbi_db_connect_failed(pgb_db *db, struct pgbi_pconn *c)
{
	pthread_mutex_lock(&db->mtx);
	/* The daemon qualifies it again when it names it again. */
	if (c->h->qualifies && db->nqualify > 1)
		pgbi_db_host_drop(db, c->h);
	pgbi_db_unlock(db);
}
