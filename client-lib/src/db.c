/*
 * db.c - the connect object (pgb_db): a thread-safe pool of libpq
 * connections per host, and the default before-create hook that asks
 * pgbeacond where the role is.
 *
 * Pools per host.  A db keeps one pool (struct pgbi_host) for each host
 * it has connected to.  Plain sessions use the qualifying hosts: the
 * current one of a master or fixed db, or, for other roles, every host
 * the daemon named recently (sessions spread over them and reuse their
 * connections).  A session that its hook routed elsewhere (a min_lsn
 * answer) takes a connection to that host alone; nothing else moves.  A
 * host that loses the role loses its idle connections; those in use are
 * closed when given back.  size bounds the connections of each host.
 *
 * Waiting.  Checkouts that find nothing wait in one FIFO per db, shared
 * by the blocking and the event-driven API; a connection given back (or
 * a slot freed) is handed to the first waiter that can use it, which is
 * then signalled (its condition variable, or its loop's eventfd).
 *
 * Locking: db->mtx guards the pools, the waiters and the current host;
 * db->hook_mtx guards the daemon client and watch of the default hook
 * (one thread asks the daemon at a time).  hook_mtx may be held while
 * taking mtx, never the other way round.  No libpq call that does I/O is
 * made with mtx held; connections to close are closed by db_unlock.
 */
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/roles.h"

#include "pgbeacon.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

#define DB_POOL_SIZE		10
#define DB_CHECKOUT_TIMEOUT_MS	5000
#define DB_IDLE_CHECK_MS	30000
#define DB_RECHECK_MS		1000
#define DB_ROLE_WAIT_MS		5000
#define DB_STALE_TTL_MS		30000

TAILQ_HEAD(pconn_list, pgbi_pconn);
TAILQ_HEAD(waiter_list, pgbi_waiter);

/* The pool of one host.  Owned by its db; lives as long as the db. */
struct pgbi_host {
	char		 host[PGB_HOST_MAX];
	int		 port;
	char		 role[PGB_ROLE_MAX];	/* as the daemon said last */
	int		 qualifies;	/* plain sessions may use it */
	uint64_t	 seen;		/* db->answers when last named */
	uint64_t	 epoch;		/* bumped when it loses the role */
	struct pconn_list idle;		/* owned; most recently used first */
	int		 nidle;
	int		 nbusy;		/* checked out, current epoch */
	int		 nretiring;	/* checked out, former epoch */
	TAILQ_ENTRY(pgbi_host) entry;
};

/* The session being checked out by this thread, for the default hook. */
struct db_route_slot {
	pgb_db		*db;
	struct pgbi_route *rt;
};

struct pgb_db {
	char		*conninfo;	/* owned; no host or port */
	char		*cluster;	/* owned; NULL for fixed dbs */
	char		*role;		/* owned; the role asked for, or label */
	char		*socket_path;	/* owned; NULL: default */
	char		*label;		/* owned; "cluster role" for messages */
	int		 is_master;
	struct pgbi_readers *readers;	/* its cluster's group; owned ref */

	pthread_mutex_t	 mtx;
	int		 size;		/* per host */
	int		 checkout_timeout_ms;
	int		 idle_check_ms;
	int		 recheck_ms;
	int		 role_wait_ms;	/* under hook_mtx */
	int		 stale_ttl_ms;	/* under hook_mtx */
	pgb_hook_fn	 hook;
	void		*hook_arg;

	/* under mtx */
	TAILQ_HEAD(, pgbi_host) hosts;	/* owned */
	struct pgbi_host *current;	/* the last host set, or NULL */
	int		 nqualify;	/* hosts with qualifies set */
	uint64_t	 answers;	/* plain answers applied so far */
	unsigned	 rr;		/* spreads plain sessions */
	struct waiter_list waiters;	/* borrowed, FIFO */
	struct pconn_list doomed;	/* owned; closed by db_unlock */
	int		 closed;
	pgb_pool_stats	 stats;		/* counters; idle/busy filled on read */

	/* default hook state, under hook_mtx */
	pthread_mutex_t	 hook_mtx;
	pgb_client	*client;	/* owned, made on first use */
	pgb_watch	*watch;		/* owned, master dbs only */
	int		 answer_valid;	/* the last answer may be reused */
	int64_t		 answer_ms;	/* when it was received */
	int64_t		 confirmed_ms;	/* when the daemon last answered or
					   confirmed the hosts in use; 0:
					   never */
};

static _Thread_local struct db_route_slot db_route_tl;
static _Thread_local char db_error[1024];
/* Why the default hook failed in this thread (the daemon's answer or
 * the client's failure), so a session gets the code the event-driven
 * API gives for the same condition; PGB_OK: not the default hook's. */
static _Thread_local pgb_errcode db_hook_code;

static pgb_db	*db_alloc(const char *conninfo, const char *role);
static void	 db_unlock(pgb_db *db);
static void	 db_close_list(struct pconn_list *list);
static struct pgbi_host *db_host(pgb_db *db, const char *host, int port,
		     const char *role);
static void	 db_host_drop(pgb_db *db, struct pgbi_host *h);
static void	 db_qualify(pgb_db *db, struct pgbi_host *h);
static void	 db_dispatch(pgb_db *db, const struct pgbi_waiter *self);
static int	 db_enqueue(pgb_db *db, struct pgbi_waiter *w,
		     const struct pgbi_route *rt, int head, pgb_errcode *code,
		     char *err, size_t errlen);
static void	 db_dequeue(pgb_db *db, struct pgbi_waiter *w);
static int	 db_connect(pgb_db *db, struct pgbi_pconn *c, char *err,
		     size_t errlen);
static PGconn	*db_open(const pgb_db *db, const struct pgbi_pconn *c,
		     int blocking);
static int	 db_validate(struct pgbi_pconn *c, int idle_check_ms);
static void	 db_notice_cb(void *arg, const char *message);
static int	 db_bad_host(pgb_db *db, const char *host, int port);
static void	 db_notify(int fd);

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
pgb_db_set_pool(pgb_db *db, int size, int checkout_timeout_ms,
    int idle_check_ms)
{
	pthread_mutex_lock(&db->mtx);
	db->size = size > 0 ? size : DB_POOL_SIZE;
	db->checkout_timeout_ms = checkout_timeout_ms >= 0 ?
	    checkout_timeout_ms : DB_CHECKOUT_TIMEOUT_MS;
	db->idle_check_ms = idle_check_ms;
	db_dispatch(db, NULL);		/* a bigger pool has room now */
	db_unlock(db);
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
			db_host_drop(db, h);
	}
	db_unlock(db);
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
		db_host_drop(db, c->h);
	db_unlock(db);
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

/* Unlocks mtx, then closes the connections doomed meanwhile. */
static void
db_unlock(pgb_db *db)
{
	struct pconn_list	old;

	TAILQ_INIT(&old);
	TAILQ_CONCAT(&old, &db->doomed, entry);
	pthread_mutex_unlock(&db->mtx);
	db_close_list(&old);
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

/*
 * Under mtx: the pool of host:port, made when new (role recorded then);
 * NULL when out of memory.
 */
static struct pgbi_host *
db_host(pgb_db *db, const char *host, int port, const char *role)
{
	struct pgbi_host	*h;

	TAILQ_FOREACH(h, &db->hosts, entry) {
		if (h->port == port && strcmp(h->host, host) == 0)
			return (h);
	}
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return (NULL);
	pgbi_strlcpy(h->host, host, sizeof h->host);
	h->port = port;
	pgbi_strlcpy(h->role, role != NULL ? role : db->role, sizeof h->role);
	TAILQ_INIT(&h->idle);
	TAILQ_INSERT_TAIL(&db->hosts, h, entry);
	return (h);
}

/*
 * Under mtx: h lost the role (or the db moved or closed): its idle
 * connections are doomed, those in use will be closed when given back,
 * and plain sessions stop using it.
 */
static void
db_host_drop(pgb_db *db, struct pgbi_host *h)
{
	h->epoch++;
	TAILQ_CONCAT(&db->doomed, &h->idle, entry);
	db->stats.discarded += (uint64_t)h->nidle;
	h->nidle = 0;
	h->nretiring += h->nbusy;
	h->nbusy = 0;
	if (h->qualifies)
		db->nqualify--;
	h->qualifies = 0;
	if (db->current == h)
		db->current = NULL;
}

/* Under mtx: plain sessions may use h. */
static void
db_qualify(pgb_db *db, struct pgbi_host *h)
{
	if (!h->qualifies)
		db->nqualify++;
	h->qualifies = 1;
	db->current = h;
}

/*
 * Wakes an event-driven waiter: its loop's eventfd turns readable.  A
 * plain write(2), so any thread may call it whatever libevent's thread
 * setup; EAGAIN (the counter is full) means it is readable already.
 */
static void
db_notify(int fd)
{
	uint64_t	one = 1;
	ssize_t		n;

	do
		n = write(fd, &one, sizeof one);
	while (n == -1 && errno == EINTR);
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
	h = db_host(db, host, port, role);
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
			db_host_drop(db, o);
	}
	pgbi_strlcpy(h->role, role != NULL ? role : db->role, sizeof h->role);
	db_qualify(db, h);
	db_dispatch(db, NULL);
	db_unlock(db);
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
	h = db_host(db, r->host, r->port, r->role);
	if (h == NULL) {
		pthread_mutex_unlock(&db->mtx);
		pgb_db_set_error(db, "%s: out of memory", db->label);
		return (-1);
	}
	if (strcmp(h->role, r->role) != 0) {
		/* Promoted, or demoted: what it holds was for another role. */
		db_host_drop(db, h);
		pgbi_strlcpy(h->role, r->role, sizeof h->role);
	}
	if (strcmp(r->role, "master") == 0) {
		TAILQ_FOREACH(o, &db->hosts, entry) {
			if (o != h && strcmp(o->role, "master") == 0) {
				db_host_drop(db, o);
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
				db_host_drop(db, o);
		}
	} else if (h->qualifies)
		h->seen = db->answers;
	if (rt != NULL && for_min_lsn) {
		rt->set = 1;
		pgbi_strlcpy(rt->host, h->host, sizeof rt->host);
		rt->port = h->port;
		pgbi_strlcpy(rt->role, h->role, sizeof rt->role);
	}
	db_dispatch(db, NULL);
	db_unlock(db);
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
pgb_db_close(pgb_db *db)
{
	struct pgbi_host	*h;
	struct pgbi_waiter	*w;

	pthread_mutex_lock(&db->mtx);
	db->closed = 1;
	TAILQ_FOREACH(h, &db->hosts, entry)
		db_host_drop(db, h);
	while ((w = TAILQ_FIRST(&db->waiters)) != NULL) {
		db_dequeue(db, w);
		w->closed = 1;
		if (w->cond != NULL)
			pthread_cond_signal(w->cond);
		else if (w->notify_fd >= 0)
			db_notify(w->notify_fd);
	}
	db_unlock(db);
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
 * Under mtx: hands out what is free to the waiters, first come first
 * served: an idle connection to the host the waiter can use (for a plain
 * waiter, the qualifying host with the fewest sessions, so reads spread
 * over the replicas), else a slot on it when it has room.  Each waiter
 * served is dequeued and signalled, except self (the caller, which looks
 * for itself).
 */
static void
db_dispatch(pgb_db *db, const struct pgbi_waiter *self)
{
	struct pgbi_waiter	*w, *wnext;
	struct pgbi_host	*h, *best;
	struct pgbi_pconn	*c;
	unsigned		 i, start, n, bn = 0;

	for (w = TAILQ_FIRST(&db->waiters); w != NULL; w = wnext) {
		wnext = TAILQ_NEXT(w, entry);
		if (db->closed)
			return;
		c = NULL;
		best = NULL;
		if (w->target != NULL) {
			h = w->target;
			if (h->nidle > 0)
				best = h;
			else if (h->nbusy + h->nidle < db->size)
				best = h;
		} else if (db->nqualify > 0) {
			/*
			 * The least busy qualifying host, in turn on a tie:
			 * its idle connection, else a new one if it has room
			 * (if it has none, all are full).
			 */
			start = db->rr++ % (unsigned)db->nqualify;
			i = 0;
			TAILQ_FOREACH(h, &db->hosts, entry) {
				if (!h->qualifies)
					continue;
				n = i++ < start;	/* before start: later */
				if (best == NULL || h->nbusy < best->nbusy ||
				    (h->nbusy == best->nbusy && bn && !n))
					best = h, bn = n;
			}
			if (best->nidle == 0 &&
			    best->nbusy + best->nidle >= db->size)
				best = NULL;
		}
		if (best == NULL)
			continue;
		if ((c = TAILQ_FIRST(&best->idle)) != NULL) {
			TAILQ_REMOVE(&best->idle, c, entry);
			best->nidle--;
			c->reused = 1;
		} else {
			c = calloc(1, sizeof *c);
			if (c == NULL)
				continue;	/* its timeout will tell */
			c->h = best;
			c->epoch = best->epoch;
			pgbi_strlcpy(c->host, best->host, sizeof c->host);
			c->port = best->port;
			pgbi_strlcpy(c->role, best->role, sizeof c->role);
		}
		best->nbusy++;
		db_dequeue(db, w);
		w->granted = c;
		if (w == self)
			continue;
		if (w->cond != NULL)
			pthread_cond_signal(w->cond);
		else if (w->notify_fd >= 0)
			db_notify(w->notify_fd);
	}
}

/*
 * Under mtx: queues w (at the head when head is set, for a checkout that
 * was served a broken connection) for rt's host, or any qualifying host,
 * then serves what it can.  -1 with *code and a message when the db is
 * closed, has no host, or is out of memory.
 */
static int
db_enqueue(pgb_db *db, struct pgbi_waiter *w, const struct pgbi_route *rt,
    int head, pgb_errcode *code, char *err, size_t errlen)
{
	w->granted = NULL;
	w->closed = 0;
	w->target = NULL;
	if (db->closed) {
		*code = PGB_ERR_CLOSED;
		snprintf(err, errlen, "%s: the db is closed", db->label);
		return (-1);
	}
	if (rt != NULL && rt->set) {
		w->target = db_host(db, rt->host, rt->port, rt->role);
		if (w->target == NULL) {
			*code = PGB_ERR_NOMEM;
			snprintf(err, errlen, "%s: out of memory", db->label);
			return (-1);
		}
	} else if (db->nqualify == 0) {
		*code = PGB_ERR_STATE;
		snprintf(err, errlen, "%s: no host known (no hook set one)",
		    db->label);
		return (-1);
	}
	if (head)
		TAILQ_INSERT_HEAD(&db->waiters, w, entry);
	else
		TAILQ_INSERT_TAIL(&db->waiters, w, entry);
	w->queued = 1;
	db_dispatch(db, w);
	return (0);
}

static void
db_dequeue(pgb_db *db, struct pgbi_waiter *w)
{
	if (!w->queued)
		return;
	TAILQ_REMOVE(&db->waiters, w, entry);
	w->queued = 0;
}

/* 0 when an idle connection is fit for reuse. */
static int
db_validate(struct pgbi_pconn *c, int idle_check_ms)
{
	PGresult	*res;
	int		 ok;

	if (PQstatus(c->pg) != CONNECTION_OK ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE)
		return (-1);
	if (idle_check_ms < 0 ||
	    pgbi_now_ms() - c->last_used_ms < idle_check_ms)
		return (0);
	res = PQexec(c->pg, "");
	ok = PQresultStatus(res) == PGRES_EMPTY_QUERY;
	PQclear(res);
	return (ok ? 0 : -1);
}

/* Waits until w is served or the deadline passes; under mtx. */
static void
db_wait(pgb_db *db, struct pgbi_waiter *w, int64_t deadline)
{
	pthread_condattr_t	 attr;
	pthread_cond_t		 cond;
	struct timespec		 ts;
	int64_t			 left;

	if (!w->queued)
		return;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &attr);
	pthread_condattr_destroy(&attr);
	w->cond = &cond;
	db->stats.waits++;
	while (w->queued && (left = deadline - pgbi_now_ms()) > 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&cond, &db->mtx, &ts);
	}
	db_dequeue(db, w);
	w->cond = NULL;
	pthread_cond_destroy(&cond);
}

int
pgbi_db_checkout(pgb_db *db, const char *min_lsn, struct pgbi_pconn **out,
    pgb_errcode *code, char *err, size_t errlen)
{
	struct db_route_slot	 saved;
	struct pgbi_route	 rt;
	struct pgbi_waiter	 w;
	struct pgbi_pconn	*c;
	pgb_hook_fn		 hook;
	void			*hook_arg;
	int64_t			 deadline;
	int			 rc, head = 0, idle_check_ms;

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
	memset(&rt, 0, sizeof rt);
	if (hook != NULL) {
		db_error[0] = '\0';
		db_hook_code = PGB_OK;
		saved = db_route_tl;
		db_route_tl.db = db;
		db_route_tl.rt = &rt;
		rc = hook(db, min_lsn, hook_arg);
		db_route_tl = saved;
		if (rc == -1) {
			*code = db_hook_code != PGB_OK ? db_hook_code :
			    PGB_ERR_HOOK;
			snprintf(err, errlen, "%s", db_error[0] != '\0' ?
			    db_error : "before-create hook failed");
			return (-1);
		}
	}

	memset(&w, 0, sizeof w);
	w.notify_fd = -1;
	pthread_mutex_lock(&db->mtx);
	deadline = pgbi_now_ms() + db->checkout_timeout_ms;
	for (;;) {
		if (db_enqueue(db, &w, &rt, head, code, err, errlen) == -1) {
			pthread_mutex_unlock(&db->mtx);
			return (-1);
		}
		db_wait(db, &w, deadline);
		if ((c = w.granted) == NULL) {
			if (w.closed || db->closed) {
				*code = PGB_ERR_CLOSED;
				snprintf(err, errlen, "%s: the db is closed",
				    db->label);
			} else {
				*code = PGB_ERR_POOL_TIMEOUT;
				if (w.target != NULL)
					snprintf(err, errlen, "%s: pool of"
					    " %s:%d exhausted: all %d"
					    " connections in use for %d ms",
					    db->label, w.target->host,
					    w.target->port, db->size,
					    db->checkout_timeout_ms);
				else
					snprintf(err, errlen, "%s: pool"
					    " exhausted: all %d connections"
					    " of each of %d hosts in use for"
					    " %d ms", db->label, db->size,
					    db->nqualify,
					    db->checkout_timeout_ms);
			}
			pthread_mutex_unlock(&db->mtx);
			return (-1);
		}
		idle_check_ms = db->idle_check_ms;
		pthread_mutex_unlock(&db->mtx);
		if (c->pg != NULL) {
			if (db_validate(c, idle_check_ms) == 0) {
				pthread_mutex_lock(&db->mtx);
				db->stats.reused++;
				db->stats.checkouts++;
				pthread_mutex_unlock(&db->mtx);
				*out = c;
				return (0);
			}
			pgbi_db_checkin(db, c, 1);
			head = 1;
			pthread_mutex_lock(&db->mtx);
			continue;
		}
		c->reused = 0;
		if (db_connect(db, c, err, errlen) == -1) {
			pgbi_db_connect_failed(db, c);
			pgbi_db_abandon(db, c);
			pgbi_db_invalidate(db);
			*code = PGB_ERR_CONNECT;
			return (-1);
		}
		pgbi_db_opened(db, c);
		*out = c;
		return (0);
	}
}

void
pgbi_db_checkin(pgb_db *db, struct pgbi_pconn *c, int discard)
{
	struct pgbi_host	*h;
	int			 broken;

	if (c == NULL)
		return;
	broken = PQstatus(c->pg) != CONNECTION_OK;
	if (!discard && (broken ||
	    PQtransactionStatus(c->pg) != PQTRANS_IDLE))
		discard = 1;
	h = c->h;
	pthread_mutex_lock(&db->mtx);
	if (c->epoch != h->epoch) {
		h->nretiring--;
		discard = 1;
	} else {
		h->nbusy--;
		if (discard) {
			db->stats.discarded++;
			db->stats.broken += (uint64_t)broken;
		} else {
			c->last_used_ms = pgbi_now_ms();
			TAILQ_INSERT_HEAD(&h->idle, c, entry);
			h->nidle++;
		}
	}
	if (discard)
		TAILQ_INSERT_TAIL(&db->doomed, c, entry);
	db_dispatch(db, NULL);
	db_unlock(db);
}

/* --- for the event-driven API (async-*.c) -------------------------------- */

int
pgbi_db_take(pgb_db *db, struct pgbi_waiter *w, const struct pgbi_route *rt,
    struct pgbi_pconn **out, pgb_errcode *code, char *err, size_t errlen)
{
	struct pgbi_pconn	*c;

	*out = NULL;
	pthread_mutex_lock(&db->mtx);
	if (!w->queued && w->granted == NULL && !w->closed &&
	    db_enqueue(db, w, rt, 0, code, err, errlen) == -1) {
		pthread_mutex_unlock(&db->mtx);
		return (-1);
	}
	if (w->closed || (w->granted == NULL && db->closed)) {
		db_dequeue(db, w);
		w->closed = 0;
		pthread_mutex_unlock(&db->mtx);
		*code = PGB_ERR_CLOSED;
		snprintf(err, errlen, "%s: the db is closed", db->label);
		return (-1);
	}
	if ((c = w->granted) == NULL) {
		pthread_mutex_unlock(&db->mtx);
		return (0);
	}
	w->granted = NULL;
	if (c->pg != NULL) {
		db->stats.reused++;
		db->stats.checkouts++;
	}
	pthread_mutex_unlock(&db->mtx);
	*out = c;
	return (1);
}

int
pgbi_db_granted(pgb_db *db, struct pgbi_waiter *w)
{
	int	rc;

	pthread_mutex_lock(&db->mtx);
	rc = w->granted != NULL || w->closed;
	pthread_mutex_unlock(&db->mtx);
	return (rc);
}

void
pgbi_db_unwait(pgb_db *db, struct pgbi_waiter *w)
{
	struct pgbi_pconn	*c;

	pthread_mutex_lock(&db->mtx);
	db_dequeue(db, w);
	w->closed = 0;
	c = w->granted;
	w->granted = NULL;
	pthread_mutex_unlock(&db->mtx);
	if (c == NULL)
		return;
	if (c->pg != NULL)
		pgbi_db_checkin(db, c, 0);
	else
		pgbi_db_abandon(db, c);
}

void
pgbi_db_connect_failed(pgb_db *db, struct pgbi_pconn *c)
{
	pthread_mutex_lock(&db->mtx);
	/* The daemon qualifies it again when it names it again. */
	if (c->h->qualifies && db->nqualify > 1)
		db_host_drop(db, c->h);
	db_unlock(db);
}

void
pgbi_db_abandon(pgb_db *db, struct pgbi_pconn *c)
{
	pthread_mutex_lock(&db->mtx);
	if (c->epoch == c->h->epoch)
		c->h->nbusy--;
	else
		c->h->nretiring--;
	TAILQ_INSERT_TAIL(&db->doomed, c, entry);
	db_dispatch(db, NULL);
	db_unlock(db);
}

PGconn *
pgbi_db_connect_start(pgb_db *db, const struct pgbi_pconn *c)
{
	return (db_open(db, c, 0));
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
			db_host_drop(db, h);
			break;
		}
	}
	db_unlock(db);
	if (pgbi_readers_master(db->readers, mhost, sizeof mhost, &mport,
	    &ms) == 0 && mport == port && strcmp(mhost, host) == 0)
		pgbi_readers_set_master(db->readers, NULL, 0);
}

void
pgbi_db_opened(pgb_db *db, struct pgbi_pconn *c)
{
	(void)PQsetNoticeProcessor(c->pg, db_notice_cb, NULL);
	pthread_mutex_lock(&db->mtx);
	db->stats.opened++;
	db->stats.checkouts++;
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
