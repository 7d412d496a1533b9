/*
 * async-acquire.c - how an event-driven session acquires a connection
 * for its head operation: the daemon's answer (RESOLVE on the loop,
 * unless the binding's answer is fresh) or the db's before-create hook,
 * a pool slot (or a place in the db's FIFO of waiters, shared with
 * blocking threads; the db writes to the loop's eventfd and the loop
 * calls the binding's wake callback), and, for a new slot, the host's
 * name resolved with evdns (libpq's getaddrinfo would block the loop),
 * then PQconnectStart/PQconnectPoll; and how it gives the connection
 * back.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "pgbeacon.h"
#include "async-internal.h"
#include "asession-internal.h"
#include "db-internal.h"
#include "proto-internal.h"
#include "session-internal.h"
#include "util-internal.h"

static int	 asess_take(pgb_asession *s);
static int	 asess_dns_start(pgb_asession *s);
static void	 asess_acq_fail(pgb_asession *s, pgb_errcode code);

/* --- acquiring a connection --------------------------------------------- */

void
pgbi_asess_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	pgb_asession	*s = arg;
	int		 ms = pgbi_db_checkout_timeout_ms(s->db);

	(void)fd;
	(void)what;
	s->refs++;
	switch (s->state) {
	case S_RESOLVING:
		pgbi_serr_set(&s->err, PGB_ERR_TIMEOUT, "%s: no answer from"
		    " pgbeacond in %d ms", pgbi_db_label(s->db), ms);
		asess_acq_fail(s, PGB_ERR_TIMEOUT);
		break;
	case S_ROLEWAIT:
		/* s->err holds the daemon's "no host" answer, or the error
		 * of the host that was leaving the role. */
		asess_acq_fail(s, s->err.code);
		break;
	case S_WAITING:
		pgbi_serr_set(&s->err, PGB_ERR_POOL_TIMEOUT, "%s: pool"
		    " exhausted: no connection free in %d ms",
		    pgbi_db_label(s->db), ms);
		asess_acq_fail(s, PGB_ERR_POOL_TIMEOUT);
		break;
	case S_CONNECTING:
		pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s: cannot %s"
		    " %s:%d (%s): timeout after %d ms", pgbi_db_label(s->db),
		    s->dns_req != NULL ? "resolve the name of" : "connect to",
		    s->conn->host, s->conn->port, s->conn->role, ms);
		asess_acq_fail(s, PGB_ERR_CONNECT);
		break;
	default:
		break;
	}
	pgbi_asess_unref(s);
}

/*
 * Drops the acquisition in progress, if any: its RESOLVE, its place among
 * the waiters, its timer, and a connection still being opened (its slot
 * goes to the next waiter).  1 when it dropped such a connection.  The
 * caller resets the state.
 */
int
pgbi_asess_acq_drop(pgb_asession *s)
{
	if (s->req != NULL) {
		s->req->fn = NULL;
		s->req = NULL;
	}
	if (s->waiting) {
		TAILQ_REMOVE(&s->b->waiters, s, wentry);
		s->waiting = 0;
	}
	if (s->queued) {
		pgbi_db_unwait(s->db, &s->w);
		s->queued = 0;
	}
	evtimer_del(&s->timer);
	if (s->dns_req != NULL) {
		struct evdns_getaddrinfo_request *req = s->dns_req;

		/* dns_cb gets EVUTIL_EAI_CANCEL later, and drops its ref. */
		s->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);
	}
	if (s->state != S_CONNECTING || s->conn == NULL)
		return (0);
	event_del(&s->io);
	pgbi_db_abandon(s->db, s->conn);
	s->conn = NULL;
	return (1);
}

static void	asess_acq_fail(pgb_asession *s, pgb_errcode code);

/*
 * A savepoint session takes its outer session's connection, whose
 * transaction must be open (nothing here blocks): 0, or -1 when it is
 * not (the operation failed with PGB_ERR_STATE).
 */
static int
sp_acquire(pgb_asession *s)
{
	struct pgbi_pconn	*c;

	c = pgbi_session_outer_conn(s->outer, 0);
	if (c == NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_STATE, "%s: savepoint session:"
		    " %s", pgbi_db_label(s->db), pgb_session_error(s->outer));
		asess_acq_fail(s, PGB_ERR_STATE);
		return (-1);
	}
	s->conn = c;
	(void)PQsetnonblocking(c->pg, 1);
	return (0);
}

/*
 * Abandons the acquisition in progress and fails the head operation with
 * s->err.text (code already set).
 */
static void
asess_acq_fail(pgb_asession *s, pgb_errcode code)
{
	struct aop	*op;

	s->err.code = code;
	/* A host that failed to connect: ask the daemon again next time. */
	if (pgbi_asess_acq_drop(s))
		s->b->answer_valid = 0;
	s->state = S_IDLE;
	s->resolved = 0;
	s->role_until = 0;
	s->moving = 0;
	op = TAILQ_FIRST(&s->ops);
	if (op != NULL && pgbi_aop_fail(s, op))
		pgbi_asess_step(s);
}

static void	resolve_reply(pgb_asession *s, const char *line,
		    pgb_errcode code, const char *err);
static int	asess_role_wait(pgb_asession *s);
static int	asess_moving_wait(pgb_asession *s);

static void
resolve_cb(void *owner, const char *line, pgb_errcode code, const char *err)
{
	pgb_asession	*s = owner;

	s->refs++;
	resolve_reply(s, line, code, err);
	pgbi_asess_unref(s);
}

static void
resolve_reply(pgb_asession *s, const char *line, pgb_errcode code,
    const char *err)
{
	pgb_resolved	 r;
	char		 text[512], lsn[PGB_LSN_MAX];
	int		 min_lsn = pgbi_ctx_lsn_min(s->ctx != NULL ?
			    &s->ctx->lsn : NULL, s->db, lsn);

	s->req = NULL;
	if (line == NULL) {
		/* Daemon down: the hosts it named last, for a while. */
		if (pgbi_db_stale(s->db, code, min_lsn ? lsn : NULL,
		    &s->route) == 0) {
			s->resolved = 1;
			s->state = S_IDLE;
			pgbi_asess_step(s);
			return;
		}
		pgbi_serr_set(&s->err, code, "%s: no host from pgbeacond: %s",
		    pgbi_db_label(s->db), err);
		asess_acq_fail(s, code);
		return;
	}
	if (pgbi_proto_parse_resolve(line, &r, text, sizeof text) == -1) {
		if (pgbi_proto_parse_err(line, &code, text, sizeof text) == -1)
			code = PGB_ERR_PROTOCOL;
		pgbi_serr_set(&s->err, code, "%s: no host from pgbeacond: %s",
		    pgbi_db_label(s->db), text);
		if (code == PGB_ERR_NOHOST && !min_lsn && asess_role_wait(s))
			return;
		asess_acq_fail(s, code);
		return;
	}
	if (s->moving && r.port == s->moving_port &&
	    strcmp(r.host, s->moving_host) == 0 && asess_moving_wait(s))
		return;
	/* An answer for a min_lsn is for this session only. */
	if (pgbi_db_answer(s->db, &r, min_lsn, &s->route) == -1) {
		pgbi_serr_set(&s->err, PGB_ERR_HOOK, "%s", pgb_db_error(s->db));
		asess_acq_fail(s, PGB_ERR_HOOK);
		return;
	}
	s->b->answer_valid = !min_lsn;
	s->b->answer_ms = pgbi_now_ms();
	if (!min_lsn)
		pgbi_db_confirmed(s->db);
	s->resolved = 1;
	s->role_until = 0;
	s->state = S_IDLE;
	pgbi_asess_step(s);
}

/*
 * s waits up to left ms (> 0), without blocking the loop, for a WATCH
 * event of its cluster, then asks the daemon again; at once when an event
 * came while it asked.  Returns 1 (s is waiting or asking).
 */
static int
asess_wait_event(pgb_asession *s, int64_t left)
{
	struct timeval	 tv;

	if (s->b->events != s->asked_events) {
		/* An event came while it asked: ask again now. */
		s->state = S_IDLE;
		s->resolved = 0;
		pgbi_asess_kick(s);
		return (1);
	}
	evtimer_del(&s->timer);
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
	evtimer_add(&s->timer, &tv);
	TAILQ_INSERT_TAIL(&s->b->waiters, s, wentry);
	s->waiting = 1;
	s->state = S_ROLEWAIT;
	return (1);
}

/*
 * The daemon answered that no host holds the role (a failover in
 * progress): 1 when s waits, without blocking the loop, for a WATCH event
 * of its cluster (the binding's wake callback), then asks again, up to
 * the db's role wait in all; 0 when it must fail now.
 */
static int
asess_role_wait(pgb_asession *s)
{
	int64_t		 now = pgbi_now_ms(), left;
	int		 wait = pgbi_db_role_wait_ms(s->db);

	if (wait <= 0)
		return (0);
	if (s->role_until == 0)
		s->role_until = now + wait;
	if ((left = s->role_until - now) <= 0)
		return (0);
	return (asess_wait_event(s, left));
}

/*
 * The daemon still names the host s left because it was leaving the role
 * (s->err says why): 1 when s waits, without blocking the loop, for an
 * event of its cluster, then asks again, until s->moving_until; 0 when
 * the wait ran out (s goes there: it fails there or works).
 */
static int
asess_moving_wait(pgb_asession *s)
{
	int64_t		 left = s->moving_until - pgbi_now_ms();

	if (left <= 0)
		return (0);
	return (asess_wait_event(s, left));
}

int
pgbi_asess_role_moving(pgb_asession *s, const char *sqlstate,
    const char *msg)
{
	pgb_hook_fn	 hook;
	void		*harg;
	int64_t		 now = pgbi_now_ms();
	int		 wait = pgbi_db_role_wait_ms(s->db);

	pgbi_db_hook(s->db, &hook, &harg);
	if (s->outer != NULL || s->conn == NULL || !pgbi_db_is_master(s->db) ||
	    hook != pgb_db_default_hook || pgb_db_cluster(s->db) == NULL ||
	    wait <= 0 || !pgbi_role_moving(sqlstate, msg))
		return (0);
	if (!s->moving)
		s->moving_until = now + wait;
	else if (now >= s->moving_until)
		return (0);
	s->moving = 1;
	pgbi_strlcpy(s->moving_host, s->conn->host, sizeof s->moving_host);
	s->moving_port = s->conn->port;
	pgbi_db_role_lost(s->db, s->conn);
	if (!pgbi_asess_acq_drop(s))
		pgbi_asess_release(s, 1);
	s->b->answer_valid = 0;
	s->resolved = 0;
	s->role_until = 0;
	s->state = S_IDLE;
	pgbi_asess_kick(s);
	return (1);
}

/*
 * Starts or continues taking a connection for the head operation.  0 when
 * s->conn is ready now, 1 when waiting, -1 when the operation failed
 * (its callback called).
 */
int
pgbi_asess_acquire(pgb_asession *s)
{
	struct timeval	 tv;
	pgb_hook_fn	 hook;
	void		*harg;
	pgb_actx	*ctx;
	char		 lsn[PGB_LSN_MAX], line[512];
	int		 need, rc, alive, ms;

	if (s->outer != NULL)
		return (sp_acquire(s));
	if (!evtimer_pending(&s->timer, NULL)) {
		ms = pgbi_db_checkout_timeout_ms(s->db);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(&s->timer, &tv);
	}
	(void)pgbi_ctx_lsn_min(s->ctx != NULL ? &s->ctx->lsn : NULL, s->db,
	    lsn);
	if (!s->resolved)
		s->route.set = 0;
	pgbi_db_hook(s->db, &hook, &harg);
	if (!s->resolved && hook == pgb_db_default_hook &&
	    pgb_db_cluster(s->db) != NULL) {
		if (lsn[0] != '\0' || !s->b->answer_valid)
			need = 1;
		else if (pgbi_db_is_master(s->db)) {
			need = !pgbi_loop_watch_ok(s->loop);
			if (!need)	/* the healthy watch confirms it */
				pgbi_db_confirmed(s->db);
		} else
			need = pgbi_now_ms() - s->b->answer_ms >=
			    pgbi_db_recheck_ms(s->db);
		if (need && !pgbi_proto_resolve_args_ok(pgb_db_cluster(s->db),
		    pgb_db_role(s->db))) {
			/* Sent as is, it would split or garble the line. */
			pgbi_serr_set(&s->err, PGB_ERR_ARG, "%s: cluster or"
			    " role unusable in a request to pgbeacond (empty,"
			    " too long, or with spaces or control characters)",
			    pgbi_db_label(s->db));
			asess_acq_fail(s, PGB_ERR_ARG);
			return (-1);
		}
		if (need) {
			snprintf(line, sizeof line, "RESOLVE %s %s%s%s",
			    pgb_db_cluster(s->db), pgb_db_role(s->db),
			    lsn[0] != '\0' ? " min_lsn=" : "", lsn);
			pgbi_db_count_resolve(s->db);
			s->asked_events = s->b->events;
			s->req = pgbi_loop_request(s->loop, line, resolve_cb, s);
			if (s->req == NULL) {
				pgbi_serr_set(&s->err, PGB_ERR_NOMEM, "%s:"
				    " out of memory", pgbi_db_label(s->db));
				asess_acq_fail(s, PGB_ERR_NOMEM);
				return (-1);
			}
			s->state = S_RESOLVING;
			return (1);
		}
	} else if (!s->resolved && hook != NULL &&
	    hook != pgb_db_default_hook) {
		ctx = pgbi_asess_frame_enter(s);
		pgb_db_set_error(s->db, "%s", "");
		rc = hook(s->db, lsn[0] != '\0' ? lsn : NULL, harg);
		alive = pgbi_asess_frame_leave(s, ctx);
		if (!alive)
			return (1);
		if (rc == -1) {
			pgbi_serr_set(&s->err, PGB_ERR_HOOK, "%s",
			    *pgb_db_error(s->db) != '\0' ? pgb_db_error(s->db) :
			    "before-create hook failed");
			asess_acq_fail(s, PGB_ERR_HOOK);
			return (-1);
		}
	}
	s->resolved = 1;
	return (asess_take(s));
}

/* The connection being opened failed: fails the acquisition. */
static void
asess_connect_fail(pgb_asession *s)
{
	char	err[sizeof s->err.text];

	pgbi_db_connect_error(s->db, s->conn, err, sizeof err);
	pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s", err);
	/* The host refused it because it is leaving the role: ask again. */
	if (pgbi_asess_role_moving(s, NULL, err))
		return;
	pgbi_db_connect_failed(s->db, s->conn);
	asess_acq_fail(s, PGB_ERR_CONNECT);
}

/* --- the host's name, then the connection -------------------------------- */

/*
 * Starts s->conn's connection: to the addresses in addrs (a libpq
 * hostaddr list, hosts the name repeated as often) when given, else to
 * c->host as libpq takes it (a numeric address or a socket directory:
 * no lookup).  1 while connecting, -1 when it failed (operation failed).
 */
static int
asess_connect_start(pgb_asession *s, const char *hosts, const char *addrs)
{
	const char	*keys[6], *vals[6];
	char		 port[16];
	int		 n = 0;

	if (addrs == NULL)
		s->conn->pg = pgbi_db_connect_start(s->db, s->conn);
	else {
		/* As pgbi_db_connect_start, with the addresses found. */
		snprintf(port, sizeof port, "%d", s->conn->port);
		keys[n] = "dbname";	vals[n++] = pgbi_db_conninfo(s->db);
		keys[n] = "host";	vals[n++] = hosts;
		keys[n] = "hostaddr";	vals[n++] = addrs;
		keys[n] = "port";	vals[n++] = port;
		keys[n] = "fallback_application_name"; vals[n++] = "pgbeacon";
		keys[n] = NULL;		vals[n] = NULL;
		s->conn->pg = PQconnectStartParams(keys, vals, 1);
	}
	if (s->conn->pg == NULL || PQstatus(s->conn->pg) == CONNECTION_BAD) {
		asess_connect_fail(s);
		return (-1);
	}
	pgbi_asess_arm(s, EV_WRITE);
	return (1);
}

/* Up to this many addresses of a name are tried, in the resolver's order. */
#define DNS_MAX_ADDRS	8

/*
 * The addresses of res as libpq's hostaddr list in addrs, and name
 * repeated as often in hosts (libpq pairs them); the number of addresses.
 */
static int
dns_lists(const struct evutil_addrinfo *res, const char *name, char *addrs,
    size_t alen, char *hosts, size_t hlen)
{
	char		 addr[INET6_ADDRSTRLEN];
	const void	*a;
	size_t		 ao = 0, ho = 0;
	int		 n = 0, w, v;

	addrs[0] = hosts[0] = '\0';
	for (; res != NULL && n < DNS_MAX_ADDRS; res = res->ai_next) {
		if (res->ai_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)
			    (const void *)res->ai_addr)->sin6_addr;
		else if (res->ai_family == AF_INET)
			a = &((const struct sockaddr_in *)
			    (const void *)res->ai_addr)->sin_addr;
		else
			continue;
		if (inet_ntop(res->ai_family, a, addr, sizeof addr) == NULL)
			continue;
		w = snprintf(addrs + ao, alen - ao, "%s%s", n ? "," : "",
		    addr);
		v = snprintf(hosts + ho, hlen - ho, "%s%s", n ? "," : "",
		    name);
		if (w < 0 || (size_t)w >= alen - ao || v < 0 ||
		    (size_t)v >= hlen - ho) {
			addrs[ao] = hosts[ho] = '\0';
			break;
		}
		ao += (size_t)w;
		ho += (size_t)v;
		n++;
	}
	return (n);
}

static void
dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	pgb_asession	*s = arg;
	char		 addrs[DNS_MAX_ADDRS * (INET6_ADDRSTRLEN + 1)];
	char		 hosts[DNS_MAX_ADDRS * (PGB_HOST_MAX + 1)];
	int		 n = 0;

	if (result == EVUTIL_EAI_CANCEL) {
		/* Dropped by pgbi_asess_acq_drop: s may be dead. */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		pgbi_asess_unref(s);
		return;
	}
	s->dns_req = NULL;
	if (s->dead || s->state != S_CONNECTING || s->conn == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		pgbi_asess_unref(s);
		return;
	}
	if (result == 0)
		n = dns_lists(res, s->conn->host, addrs, sizeof addrs, hosts,
		    sizeof hosts);
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (n == 0) {
		pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s: cannot connect to"
		    " %s:%d (%s): cannot resolve %s: %s", pgbi_db_label(s->db),
		    s->conn->host, s->conn->port, s->conn->role, s->conn->host,
		    result != 0 ? evutil_gai_strerror(result) :
		    "no IPv4 or IPv6 address");
		pgbi_db_connect_failed(s->db, s->conn);
		s->dns_rc = -1;
		asess_acq_fail(s, PGB_ERR_CONNECT);
	} else
		s->dns_rc = asess_connect_start(s, hosts, addrs);
	pgbi_asess_unref(s);
}

/* 1 when host needs no lookup: a socket directory or a numeric address. */
static int
host_is_literal(const char *host)
{
	struct in6_addr	a6;
	struct in_addr	a4;

	return (host[0] == '/' || host[0] == '@' ||
	    inet_pton(AF_INET, host, &a4) == 1 ||
	    inet_pton(AF_INET6, host, &a6) == 1);
}

/*
 * Resolves s->conn's host name with the loop's evdns, then connects; a
 * literal host connects at once.  1 while resolving or connecting, -1
 * when it failed (operation failed).
 */
static int
asess_dns_start(pgb_asession *s)
{
	struct evutil_addrinfo		 hints;
	struct evdns_getaddrinfo_request *req;
	struct evdns_base		*dns;

	if (host_is_literal(s->conn->host))
		return (asess_connect_start(s, NULL, NULL));
	if ((dns = pgbi_loop_dns(s->loop)) == NULL) {
		pgbi_serr_set(&s->err, PGB_ERR_CONNECT, "%s: cannot connect to"
		    " %s:%d (%s): cannot resolve %s: no DNS resolver (out of"
		    " memory, or no usable /etc/resolv.conf)",
		    pgbi_db_label(s->db), s->conn->host, s->conn->port,
		    s->conn->role, s->conn->host);
		asess_acq_fail(s, PGB_ERR_CONNECT);
		return (-1);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/*
	 * The lookup holds a reference: its callback comes once, perhaps at
	 * once (hosts file, cache), perhaps after s was freed (canceled).
	 */
	s->refs++;
	s->dns_rc = 0;
	req = evdns_getaddrinfo(dns, s->conn->host, NULL, &hints, dns_cb, s);
	if (s->dns_rc != 0)
		return (s->dns_rc);	/* dns_cb ran already */
	s->dns_req = req;
	return (1);
}

static int
asess_take(pgb_asession *s)
{
	char		 err[512];
	pgb_errcode	 code;
	int		 rc;

	rc = pgbi_db_take(s->db, &s->w, &s->route, &s->conn, &code, err,
	    sizeof err);
	s->queued = rc == 0;
	if (rc == -1) {
		pgbi_serr_set(&s->err, code, "%s", err);
		asess_acq_fail(s, code);
		return (-1);
	}
	if (rc == 0) {
		/* The db grants it a connection, then writes to our eventfd. */
		if (!s->waiting)
			TAILQ_INSERT_TAIL(&s->b->waiters, s, wentry);
		s->waiting = 1;
		s->state = S_WAITING;
		return (1);
	}
	if (s->conn->pg != NULL) {
		evtimer_del(&s->timer);
		s->resolved = 0;
		s->state = S_IDLE;
		(void)PQsetnonblocking(s->conn->pg, 1);
		return (0);
	}
	s->state = S_CONNECTING;
	return (asess_dns_start(s));
}

void
pgbi_asess_connect_poll(pgb_asession *s)
{
	switch (PQconnectPoll(s->conn->pg)) {
	case PGRES_POLLING_READING:
		pgbi_asess_arm(s, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		pgbi_asess_arm(s, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		event_del(&s->io);
		(void)PQsetnonblocking(s->conn->pg, 1);
		pgbi_db_opened(s->db, s->conn);
		evtimer_del(&s->timer);
		s->resolved = 0;
		s->state = S_IDLE;
		pgbi_asess_step(s);
		return;
	default:
		asess_connect_fail(s);
		return;
	}
}

/* The binding's wake callback, given to the loop by pgbi_asess_alloc. */
void
pgbi_asess_wake_cb(struct pgbi_binding *b)
{
	pgb_asession	*s, *next;

	for (s = TAILQ_FIRST(&b->waiters); s != NULL; s = next) {
		next = TAILQ_NEXT(s, wentry);
		if (s->state == S_ROLEWAIT) {
			if (s->asked_events == b->events)
				continue;
			/* An event came: ask again (acquire re-arms the
			 * checkout timeout). */
			evtimer_del(&s->timer);
			s->resolved = 0;
		} else if (!pgbi_db_granted(b->db, &s->w))
			continue;
		TAILQ_REMOVE(&b->waiters, s, wentry);
		s->waiting = 0;
		s->state = S_IDLE;
		pgbi_asess_kick(s);
	}
}

/* Gives the connection back (closed when discard, or not reusable). */
void
pgbi_asess_release(pgb_asession *s, int discard)
{
	struct pgbi_pconn	*c = s->conn;

	if (c == NULL)
		return;
	event_del(&s->io);
	s->conn = NULL;
	if (s->outer != NULL) {
		/* outer's: back to the blocking session, not to the pool. */
		if (c->pg != NULL)
			(void)PQsetnonblocking(c->pg, 0);
		return;
	}
	if (c->pg == NULL || PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF ||
	    PQisBusy(c->pg))
		discard = 1;
	if (!discard && PQsetnonblocking(c->pg, 0) != 0)
		discard = 1;
	pgbi_db_checkin(s->db, c, discard);
}

void
pgbi_asess_arm(pgb_asession *s, short what)
{
	event_del(&s->io);
	event_assign(&s->io, pgb_loop_base(s->loop), PQsocket(s->conn->pg),
	    what, pgbi_asess_io_cb, s);
	event_add(&s->io, NULL);
}
