/*
 * db-pool.c - the pools of a pgb_db, one per host: checking connections
 * out (blocking, or step by step for the event-driven API) and in, the
 * FIFO of waiters both APIs share, opening and validating connections,
 * and closing the db.
 */
#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgbeacon.h"
#include "db-internal.h"
#include "db-impl-internal.h"
#include "util-internal.h"

static void	 db_close_list(struct pconn_list *list);
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
static void	 db_notify(int fd);

/* Unlocks mtx, then closes the connections doomed meanwhile. */
void
pgbi_db_unlock(pgb_db *db)
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
struct pgbi_host *
pgbi_db_host(pgb_db *db, const char *host, int port, const char *role)
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
void
pgbi_db_host_drop(pgb_db *db, struct pgbi_host *h)
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

/*
 * Under mtx: hands out what is free to the waiters, first come first
 * served: an idle connection to the host the waiter can use (for a plain
 * waiter, the qualifying host with the fewest sessions, so reads spread
 * over the replicas), else a slot on it when it has room.  Each waiter
 * served is dequeued and signalled, except self (the caller, which looks
 * for itself).
 */
void
pgbi_db_dispatch(pgb_db *db, const struct pgbi_waiter *self)
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
		w->target = pgbi_db_host(db, rt->host, rt->port, rt->role);
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
	pgbi_db_dispatch(db, w);
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

int
pgbi_db_checkout(pgb_db *db, const char *min_lsn, struct pgbi_pconn **out,
    pgb_errcode *code, char *err, size_t errlen)
{
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
	if (hook != NULL && pgbi_db_run_hook(db, hook, hook_arg, min_lsn, &rt,
	    code, err, errlen) == -1)
		return (-1);

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
	pgbi_db_dispatch(db, NULL);
	pgbi_db_unlock(db);
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
pgbi_db_abandon(pgb_db *db, struct pgbi_pconn *c)
{
	pthread_mutex_lock(&db->mtx);
	if (c->epoch == c->h->epoch)
		c->h->nbusy--;
	else
		c->h->nretiring--;
	TAILQ_INSERT_TAIL(&db->doomed, c, entry);
	pgbi_db_dispatch(db, NULL);
	pgbi_db_unlock(db);
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
	db->stats.checkouts++;
	pthread_mutex_unlock(&db->mtx);
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
	pgbi_db_dispatch(db, NULL);		/* a bigger pool has room now */
	pgbi_db_unlock(db);
}

void
pgb_db_close(pgb_db *db)
{
	struct pgbi_host	*h;
	struct pgbi_waiter	*w;

	pthread_mutex_lock(&db->mtx);
	db->closed = 1;
	TAILQ_FOREACH(h, &db->hosts, entry)
		pgbi_db_host_drop(db, h);
	while ((w = TAILQ_FIRST(&db->waiters)) != NULL) {
		db_dequeue(db, w);
		w->closed = 1;
		if (w->cond != NULL)
			pthread_cond_signal(w->cond);
		else if (w->notify_fd >= 0)
			db_notify(w->notify_fd);
	}
	pgbi_db_unlock(db);
}
