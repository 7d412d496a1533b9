/*
 * async-internal.h - what the event-driven sessions (async-*.c) use of the
 * event-driven daemon client (async-loop.c): the loop's RESOLVE
 * connection and its per-db bindings, kept fresh by the WATCH
 * subscription.  The loop knows nothing of sessions: it wakes those
 * waiting on a binding through the callback the binding was made with.
 */
#ifndef PGB_ASYNC_INTERNAL_H
#define PGB_ASYNC_INTERNAL_H

#include <sys/queue.h>

#include <stdint.h>

#include "pgbeacon.h"

struct pgb_asession;
struct pgbi_binding;

/*
 * Called from the loop, once its eventfd fired (a pgb_db granted a
 * connection, or closed), and after a WATCH event of b's cluster or a
 * break of the subscription (b->events bumped): b's waiting sessions
 * that were granted one, or that wait for a host to hold the role, go
 * on.  It may only kick sessions (none runs, none is freed), and must
 * not bind, request or free the loop.
 */
typedef void	(*pgbi_binding_wake_fn)(struct pgbi_binding *b);

/*
 * A pgb_db attached to a loop: whether the daemon's last answer for it
 * may be reused, and its sessions queued in the db's FIFO of waiters.
 * Owned by the loop, which never touches the waiters itself.
 */
struct pgbi_binding {
	pgb_db		*db;		/* borrowed; outlives the loop */
	pgb_loop	*loop;
	int		 answer_valid;	/* last answer reusable */
	int64_t		 answer_ms;	/* when it came */
	uint64_t	 events;	/* WATCH events of its cluster, breaks */
	pgbi_binding_wake_fn wake;	/* or NULL: nobody waits here */
	TAILQ_HEAD(, pgb_asession) waiters;	/* borrowed; wake's */
	TAILQ_ENTRY(pgbi_binding) entry;
};

/*
 * A pending daemon request.  fn is called once with the reply line, or
 * with line NULL and an error; fn NULL means canceled (the reply is then
 * dropped).  Owned by the loop.
 */
typedef void	(*pgbi_areq_fn)(void *owner, const char *line,
		    pgb_errcode code, const char *error);
struct pgbi_areq {
	pgbi_areq_fn	 fn;
	void		*owner;
	pgb_resolve_cb	 ucb;		/* pgb_loop_resolve's */
	void		*uarg;
	TAILQ_ENTRY(pgbi_areq) entry;
};

/*
 * Finds or makes db's binding; NULL when out of memory.  wake, when not
 * NULL, becomes the binding's callback (pgb_loop_attach binds without).
 */
struct pgbi_binding *pgbi_loop_bind(pgb_loop *loop, pgb_db *db,
	    pgbi_binding_wake_fn wake);

/*
 * Sends line (no newline) to the daemon, connecting first if needed.  The
 * answer goes to fn(owner, ...) from the loop.  NULL when out of memory.
 */
struct pgbi_areq *pgbi_loop_request(pgb_loop *loop, const char *line,
	    pgbi_areq_fn fn, void *owner);

/* 1 while the WATCH subscription is established. */
int	pgbi_loop_watch_ok(const pgb_loop *loop);

/*
 * The loop's eventfd: a pgb_db writes to it (from any thread) when it
 * granted a connection to one of the loop's waiting sessions.
 */
int	pgbi_loop_notify_fd(const pgb_loop *loop);

/*
 * The resolver of loop's host names: the application's
 * (pgb_loop_set_dns), else the loop's own, made on first use; NULL when
 * it cannot be made (out of memory, no usable resolv.conf).
 */
struct evdns_base *pgbi_loop_dns(pgb_loop *loop);

#endif /* PGB_ASYNC_INTERNAL_H */
