/*
 * monitor.c - the per-host libpq state machine on libevent.
 *
 *        +--------+  timer   +-----------+ evdns +------------+ PQconnectPoll OK
 *   ---> |  IDLE  | -------> | RESOLVING | ----> | CONNECTING | -------+
 *        +--------+          +-----------+       +------------+        |
 *            ^  failure, drop or timeout (backoff with jitter)          v
 *            +------------------------------------------------- +---------+
 *                                                     timer     |  READY  |
 *                                            +----------------- +---------+
 *                                            v                      ^
 *                                       +---------+  result NULL    |
 *                                       | PROBING | ----------------+
 *                                       +---------+
 *
 * While connected, a persistent read event stays armed on PQsocket() so a
 * dropped connection is noticed the moment the server closes it, not at
 * the next probe.  Nothing here blocks: names are resolved with evdns,
 * connections use PQconnectStartParams/PQconnectPoll, queries use
 * PQsendQuery/PQflush/PQconsumeInput/PQisBusy/PQgetResult.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <libpq-fe.h>

#include "common/lsn.h"
#include "common/num.h"

#include "log.h"
#include "monitor.h"
#include "state.h"

/*
 * One probe: role, WAL positions, replay time, timeline, system
 * identifier.  The CTE reads pg_is_in_recovery() once, so a promotion
 * between two calls cannot make the row contradict itself.  A primary's
 * timeline comes from the WAL file it is writing, which changes the moment
 * a promotion ends (pg_control_checkpoint() lags until the next
 * checkpoint).  Needs pg_monitor (or superuser) for pg_stat_wal_receiver
 * and pg_control_*().
 */
static const char PROBE_SQL[] =
	"WITH r AS (SELECT pg_is_in_recovery() AS rec) "
	"SELECT r.rec, "
	"CASE WHEN r.rec THEN NULL ELSE pg_current_wal_lsn() END, "
	"pg_last_wal_receive_lsn(), "
	"pg_last_wal_replay_lsn(), "
	"(extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000)::int8, "
	"(extract(epoch FROM clock_timestamp()) * 1000)::int8, "
	"CASE WHEN r.rec THEN coalesce("
	"(SELECT received_tli FROM pg_stat_wal_receiver), "
	"(pg_control_checkpoint()).timeline_id) "
	"ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
	"::bit(32)::int END, "
	"(SELECT system_identifier FROM pg_control_system()) "
	"FROM r";

enum mon_state {
	MON_IDLE,		/* no connection; the timer starts the next attempt */
	MON_RESOLVING,		/* waiting for evdns; the timer is the connect timeout */
	MON_CONNECTING,		/* PQconnectPoll under way; timer: connect timeout */
	MON_READY,		/* connected and idle; the timer sends the next probe */
	MON_PROBING,		/* probe sent; the timer is the query timeout */
};

/* Addresses of one name that a connection attempt tries, at most. */
#define MON_MAX_ADDRS	4
/* Longest host name (a DNS name is at most 253 characters). */
#define MON_MAX_NAME	255

/* The second connection of a host (see struct mon_host). */
enum mon_side {
	MON_SIDE_IDLE,		/* none open; side_timer starts the next check */
	MON_SIDE_CONNECTING,	/* PQconnectPoll under way; timer: connect timeout */
	MON_SIDE_PROBING,	/* a switch's probe sent; timer: query timeout */
};

/*
 * Detection bounds (README, "How it decides").  A probe that gets no
 * answer within query_timeout_ms makes its host dead at once, like a
 * dropped connection: a frozen or unreachable primary is no longer named
 * after check_interval_ms + query_timeout_ms at worst (1.5 s by default).
 * A healthy server answers the probe in about a millisecond, and in tens
 * of milliseconds under heavy load, so the default second is a margin of
 * two orders of magnitude, not a race: raise query_timeout_ms, not
 * max_fails (which counts probes answered with an error), to tolerate
 * slower hosts.
 *
 * The master's probe is late once it has been unanswered for MON_LATE_MS
 * (at most half of query_timeout_ms): the other hosts of its cluster are
 * then probed every fast_check_interval_ms until it answers or dies, so
 * that a replica promoted meanwhile is named within a fast period, while
 * the old primary is still frozen.  Being late costs only those extra
 * probes; it never changes an answer.
 */
#define MON_LATE_MS	100

/* How a host failed; decides what becomes of its connection. */
enum mon_fail {
	MON_FAIL_DROP,		/* an established connection was lost */
	MON_FAIL_CONNECT,	/* a connection attempt failed or timed out */
	MON_FAIL_TIMEOUT,	/* a probe timed out: the connection is dropped */
	MON_FAIL_PROBE,		/* a probe got an error: the connection stays */
};

struct mon_cluster;

/*
 * One host.  Owned by its mon_cluster.  topo must stay the first member:
 * the cluster's topo_host array points at it.
 */
struct mon_host {
	struct topo_host	 topo;
	struct mon_cluster	*cluster;	/* back pointer, not owned */
	char			*host;		/* owned; topo.host borrows it */
	int			 port;
	char			 label[TOPO_HOST_NAMELEN]; /* "host:port", for logs */

	enum mon_state		 state;
	PGconn			*conn;		/* owned; NULL in IDLE/RESOLVING */
	struct event		*io;		/* owned; on PQsocket(conn) */
	evutil_socket_t		 io_fd;		/* what io is armed on, -1: not */
	short			 io_what;
	struct event		*timer;		/* owned */
	struct evdns_getaddrinfo_request *dns_req; /* pending lookup or NULL */
	/* What libpq is given: the addresses the name resolved to, and the
	 * name once per address (for TLS and .pgpass); libpq tries them in
	 * turn.  hostaddr "" lets libpq resolve (no resolver, Unix socket). */
	char			 hostaddr[MON_MAX_ADDRS * (INET6_ADDRSTRLEN + 1)];
	char			 hostlist[MON_MAX_ADDRS * (MON_MAX_NAME + 1)];
	int			 backoff_ms;	/* next reconnect delay, 0 at rest */
	bool			 probe_ok;	/* the probe in flight got its row */
	int64_t			 probe_start_us; /* monotonic, when it was sent */
	struct event		*late;		/* owned; fires when the master's
						   probe is late (see MON_LATE_MS) */
	char			*conninfo_used;	/* owned; what conn was opened with */

	/*
	 * A second connection, never used for probes of record: the
	 * periodic new-connection check, or a connection made with a
	 * reloaded conninfo that replaces conn once it answers a probe
	 * (make-before-break).
	 */
	enum mon_side		 side;
	PGconn			*side_conn;	/* owned; NULL in MON_SIDE_IDLE */
	char			*side_conninfo;	/* owned; what side_conn uses */
	struct event		*side_io;	/* owned; on PQsocket(side_conn) */
	struct event		*side_timer;	/* owned */
	bool			 side_switch;	/* side_conn is to replace conn */
	bool			 round_done;	/* answered or failed at least once */
	enum topo_role		 last_role;	/* for role_changes */
};

/* One cluster.  Owned by the monitor. */
struct mon_cluster {
	struct monitor		*mon;		/* back pointer, not owned */
	char			*name;		/* owned; topo.name borrows it */
	char			*conninfo;	/* owned; may hold a password: never logged */
	uint64_t		 configured_system_id;
	struct mon_host		**hosts;	/* owned, nhosts of them */
	struct topo_host	**topo_hosts;	/* owned array of borrowed pointers */
	size_t			 nhosts;
	struct topo_cluster	 topo;
	bool			 fast;		/* probing fast until a primary is known */
	struct mon_host		*late_master;	/* borrowed: the master, while its
						   probe is late; probing fast */
	uint64_t		 role_changes;	/* host role changes, for metrics */
};

/* The monitor.  Owned by main. */
struct monitor {
	struct event_base	*base;		/* borrowed */
	struct evdns_base	*dns;		/* borrowed, may be NULL */
	struct monitor_callbacks cb;
	struct mon_cluster	**clusters;	/* owned, nclusters of them */
	struct topo_cluster	**topo_clusters; /* owned array of borrowed pointers */
	size_t			 nclusters;
	struct topo_limits	 limits;
	int			 check_interval_ms;
	int			 fast_check_interval_ms;
	int			 connect_timeout_ms;
	int			 query_timeout_ms;
	int			 reconnect_max_ms;
	int			 max_fails;
	int			 connect_check_interval_ms; /* 0: no checks */
	bool			 first_round_reported;
	struct state		*state;		/* owned; the state file's memory */
	int64_t			 state_retry_ms; /* monotonic; next retry of a
						   failed save without a change */
};

static void	monitor_timer_cb(evutil_socket_t, short, void *);
static void	monitor_io_cb(evutil_socket_t, short, void *);
static void	monitor_connect_start(struct mon_host *);
static void	monitor_probe_send(struct mon_host *);
static void	monitor_side_close(struct mon_host *);
static void	monitor_side_schedule(struct mon_host *, int);

static int64_t
monitor_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
monitor_now_ms(void)
{
	return monitor_now_us() / 1000;
}

static void
monitor_timer_set(struct mon_host *h, int ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->timer, &tv);
}

/* (Re)arms the io event on the connection's current socket for what. */
static void
monitor_io_arm(struct mon_host *h, short what)
{
	evutil_socket_t fd = PQsocket(h->conn);

	if (h->io_fd == fd && h->io_what == what)
		return;
	event_del(h->io);
	h->io_fd = -1;
	if (fd < 0)
		return;
	event_assign(h->io, h->cluster->mon->base, fd, what, monitor_io_cb, h);
	if (event_add(h->io, NULL) == 0) {
		h->io_fd = fd;
		h->io_what = what;
	}
}

/* Copies the first line of msg into dst, without the "FATAL:  " noise. */
static void
monitor_set_error(struct mon_host *h, const char *msg)
{
	size_t n;

	if (strncmp(msg, "FATAL:  ", 8) == 0)
		msg += 8;
	else if (strncmp(msg, "ERROR:  ", 8) == 0)
		msg += 8;
	n = strcspn(msg, "\n");
	if (n >= sizeof(h->topo.error))
		n = sizeof(h->topo.error) - 1;
	memcpy(h->topo.error, msg, n);
	h->topo.error[n] = '\0';
}

/* The probe of h is over, answered or not: it is no longer late. */
static void
monitor_probe_ended(struct mon_host *h)
{
	if (h->late != NULL)
		event_del(h->late);
	if (h->cluster->late_master == h)
		h->cluster->late_master = NULL;
}

/* The probe period of h now: fast while its cluster has no primary or
 * the primary's probe is late. */
static int
monitor_interval(const struct mon_host *h)
{
	const struct mon_cluster *cl = h->cluster;

	return cl->fast || cl->late_master != NULL ?
	    cl->mon->fast_check_interval_ms :
	    cl->mon->check_interval_ms;
}

static void
monitor_close_conn(struct mon_host *h)
{
	if (h->dns_req != NULL) {
		struct evdns_getaddrinfo_request *req = h->dns_req;

		h->dns_req = NULL;
		evdns_getaddrinfo_cancel(req);	/* calls back with EAI_CANCEL */
	}
	event_del(h->io);
	h->io_fd = -1;
	h->io_what = 0;
	if (h->conn != NULL) {
		PQfinish(h->conn);
		h->conn = NULL;
	}
	free(h->conninfo_used);
	h->conninfo_used = NULL;
	monitor_probe_ended(h);
	monitor_side_close(h);
}

static int
monitor_jitter(int ms)
{
	/* +-20%, so that many sidecars do not retry in step. */
	int spread = ms / 5;

	if (spread <= 0)
		return ms;
	return ms - spread + (int)arc4random_uniform((uint32_t)(2 * spread + 1));
}

static void
monitor_cluster_round_check(struct monitor *m)
{
	size_t i, j;

	if (m->first_round_reported)
		return;
	for (i = 0; i < m->nclusters; i++)
		for (j = 0; j < m->clusters[i]->nhosts; j++)
			if (!m->clusters[i]->hosts[j]->round_done)
				return;
	m->first_round_reported = true;
	if (m->cb.first_round_done != NULL)
		m->cb.first_round_done(m->cb.arg);
}

/* Probes every connected host of cl now (they are idle or busy). */
static void
monitor_cluster_reprobe(struct mon_cluster *cl)
{
	size_t i;

	for (i = 0; i < cl->nhosts; i++)
		if (cl->hosts[i]->state == MON_READY)
			monitor_timer_set(cl->hosts[i], 0);
}

/*
 * Copies cl's generation and timeline memory into the state and writes
 * the file when they changed (or, once a second, while the last write
 * failed).  Called before a change is announced, so that no client sees
 * a generation the file does not hold.  The file is tiny and written
 * only on a change: a failover costs a few writes, a probe none.
 */
static void
monitor_state_sync(struct mon_cluster *cl)
{
	struct state *st = cl->mon->state;
	const struct topo_cluster *t = &cl->topo;
	struct state_entry *e;
	char err[300];

	if ((e = state_get(st, cl->name)) == NULL) {
		log_error("cluster %s: out of memory for the state", cl->name);
		return;
	}
	if (e->generation == t->generation && e->timeline == t->max_timeline &&
	    e->system_id == t->memory_system_id &&
	    strcmp(e->timeline_host, t->max_timeline_host) == 0 &&
	    (!st->failing || monitor_now_ms() < cl->mon->state_retry_ms))
		return;
	e->generation = t->generation;
	e->timeline = t->max_timeline;
	e->system_id = t->memory_system_id;
	snprintf(e->timeline_host, sizeof(e->timeline_host), "%s",
	    t->max_timeline_host);
	if (state_save(st, err, sizeof(err)) != 0) {
		if (!st->failing)
			log_error("state file %s: %s (the timeline memory and "
			    "generations will not survive a restart until it "
			    "can be written)", st->path, err);
		st->failing = true;
		cl->mon->state_retry_ms = monitor_now_ms() + 1000;
		return;
	}
	if (st->failing)
		log_info("state file %s written again", st->path);
	st->failing = false;
}

/* Logs what changed in cl's timeline memory since before. */
static void
monitor_log_memory(const struct mon_cluster *cl, uint32_t tl_before,
    uint64_t sys_before)
{
	const struct topo_cluster *t = &cl->topo;

	if (sys_before != 0 && t->memory_system_id != sys_before)
		log_warn("cluster %s: new system identifier %" PRIu64 " (was %"
		    PRIu64 "): the cluster was rebuilt, its timeline memory "
		    "(%" PRIu32 ") is cleared", cl->name, t->memory_system_id,
		    sys_before, tl_before);
	if (t->max_timeline != tl_before && t->max_timeline != 0)
		log_info("cluster %s: highest timeline seen is now %" PRIu32
		    " (on %s)", cl->name, t->max_timeline,
		    t->max_timeline_host);
}

/* Recomputes cl's topology after an observation changed. */
static void
monitor_cluster_update(struct mon_cluster *cl)
{
	struct topo_cluster *t = &cl->topo;
	const struct topo_host *old, *now;
	char oldlabel[TOPO_HOST_NAMELEN] = "none";
	char nowlabel[TOPO_HOST_NAMELEN];
	bool changed;
	size_t i;
	uint32_t tl_before = t->max_timeline;
	uint64_t sys_before = t->memory_system_id;

	/* A host outlives the update: old is still valid after it. */
	old = topology_master(t);
	changed = topology_update(t);
	monitor_log_memory(cl, tl_before, sys_before);
	monitor_state_sync(cl);
	for (i = 0; i < cl->nhosts; i++) {
		if (cl->hosts[i]->topo.role != cl->hosts[i]->last_role) {
			cl->hosts[i]->last_role = cl->hosts[i]->topo.role;
			cl->role_changes++;
		}
	}

	/* A late probe matters only while its host is the master. */
	if (cl->late_master != NULL &&
	    &cl->late_master->topo != topology_master(t))
		cl->late_master = NULL;
	/* Probe fast exactly while no primary is known. */
	if (topology_master(t) != NULL)
		cl->fast = false;
	else if (!cl->fast) {
		cl->fast = true;
		monitor_cluster_reprobe(cl);
	}
	if (cl->mon->cb.topology_updated != NULL)
		cl->mon->cb.topology_updated(cl->mon->cb.arg, t);
	if (!changed)
		return;

	if (old != NULL)
		topology_host_name(old, oldlabel, sizeof(oldlabel));
	now = topology_master(t);
	if (now != NULL) {
		topology_host_name(now, nowlabel, sizeof(nowlabel));
		log_info("cluster %s: primary changed from %s to %s "
		    "(generation %" PRIu64 ")", cl->name, oldlabel, nowlabel,
		    t->generation);
	} else
		log_warn("cluster %s: primary changed from %s to none "
		    "(generation %" PRIu64 "): %s", cl->name, oldlabel,
		    t->generation, t->why_no_master);
	if (cl->mon->cb.master_changed != NULL)
		cl->mon->cb.master_changed(cl->mon->cb.arg, t);
}

/*
 * The host failed.  A dropped connection makes it dead at once; other
 * failures make it dead after max_fails in a row.  A drop of a live host
 * is likely a failover starting: it is retried at once and the whole
 * cluster is probed now; after that, attempts back off exponentially with
 * jitter up to reconnect_max_ms.
 */
static void
monitor_host_fail(struct mon_host *h, enum mon_fail kind, const char *why)
{
	struct mon_cluster *cl = h->cluster;
	struct monitor *m = cl->mon;
	bool was_alive = h->topo.alive;
	int delay;

	monitor_set_error(h, why);
	h->topo.fails++;
	/* A timeout is dead at once: see MON_LATE_MS for the bounds. */
	if (kind == MON_FAIL_DROP || kind == MON_FAIL_TIMEOUT ||
	    h->topo.fails >= m->max_fails) {
		h->topo.alive = false;
		if (h->topo.dead_since_ms == 0)
			h->topo.dead_since_ms = monitor_now_ms();
	}
	if (was_alive && !h->topo.alive)
		log_warn("host %s (cluster %s) is dead: %s", h->label, cl->name,
		    h->topo.error);
	else
		log_debug("host %s (cluster %s): %s (%d in a row)", h->label,
		    cl->name, h->topo.error, h->topo.fails);

	if (kind == MON_FAIL_PROBE) {
		/* The server answered with an error: the connection is fine,
		 * probe again at the usual pace. */
		monitor_probe_ended(h);
		h->state = MON_READY;
		monitor_io_arm(h, EV_READ | EV_PERSIST);
		delay = monitor_interval(h);
	} else {
		/* A timed-out probe may still be running on the server: the
		 * connection is not worth keeping. */
		monitor_close_conn(h);
		h->state = MON_IDLE;
		if (h->backoff_ms == 0)
			h->backoff_ms = m->fast_check_interval_ms;
		else if (h->backoff_ms < m->reconnect_max_ms / 2)
			h->backoff_ms *= 2;
		else
			h->backoff_ms = m->reconnect_max_ms;
		delay = kind == MON_FAIL_DROP && was_alive ? 0 :
		    monitor_jitter(h->backoff_ms);
	}
	monitor_timer_set(h, delay);

	h->round_done = true;
	if (was_alive) {
		if (kind == MON_FAIL_DROP || kind == MON_FAIL_TIMEOUT)
			monitor_cluster_reprobe(cl);
		monitor_cluster_update(cl);
	} else if (h->topo.why == TOPO_WHY_UNPROBED)
		monitor_cluster_update(cl);	/* STATUS: dead, not unprobed */
	monitor_cluster_round_check(m);
}

/* True when the comma-separated list holds item. */
static bool
monitor_list_has(const char *list, const char *item)
{
	size_t len = strlen(item);

	while (*list != '\0') {
		if (strncmp(list, item, len) == 0 &&
		    (list[len] == ',' || list[len] == '\0'))
			return true;
		list += strcspn(list, ",");
		if (*list == ',')
			list++;
	}
	return false;
}

/*
 * Fills hostaddr and hostlist from up to MON_MAX_ADDRS distinct addresses
 * of res, in the resolver's order: "localhost" may be ::1 and 127.0.0.1,
 * and the server may listen on only one of them.
 */
static void
monitor_set_addresses(struct mon_host *h, const struct evutil_addrinfo *res)
{
	char addr[INET6_ADDRSTRLEN], *ap = h->hostaddr, *hp = h->hostlist;
	size_t aleft = sizeof(h->hostaddr), hleft = sizeof(h->hostlist);
	int n = 0, w;

	h->hostaddr[0] = h->hostlist[0] = '\0';
	for (; res != NULL && n < MON_MAX_ADDRS; res = res->ai_next) {
		const void *a;

		if (res->ai_family == AF_INET6)
			a = &((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
		else if (res->ai_family == AF_INET)
			a = &((const struct sockaddr_in *)res->ai_addr)->sin_addr;
		else
			continue;
		if (inet_ntop(res->ai_family, a, addr, sizeof(addr)) == NULL ||
		    monitor_list_has(h->hostaddr, addr))
			continue;
		w = snprintf(ap, aleft, "%s%s", n ? "," : "", addr);
		if (w < 0 || (size_t)w >= aleft)
			break;
		ap += w;
		aleft -= (size_t)w;
		w = snprintf(hp, hleft, "%s%s", n ? "," : "", h->host);
		if (w < 0 || (size_t)w >= hleft)
			break;
		hp += w;
		hleft -= (size_t)w;
		n++;
	}
}

static void
monitor_dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct mon_host *h = arg;

	if (result == EVUTIL_EAI_CANCEL) {
		/* h may be going away: touch nothing. */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	h->dns_req = NULL;
	if (result != 0 || res == NULL) {
		char why[200];

		snprintf(why, sizeof(why), "cannot resolve %s: %s", h->host,
		    evutil_gai_strerror(result));
		if (res != NULL)
			evutil_freeaddrinfo(res);
		monitor_host_fail(h, MON_FAIL_CONNECT, why);
		return;
	}
	monitor_set_addresses(h, res);
	evutil_freeaddrinfo(res);
	monitor_connect_start(h);
}

/* Starts resolving h's name, or connecting when no lookup is needed. */
static void
monitor_resolve_start(struct mon_host *h)
{
	struct monitor *m = h->cluster->mon;
	struct evutil_addrinfo hints;
	struct in6_addr a6;
	struct in_addr a4;

	h->hostaddr[0] = '\0';
	snprintf(h->hostlist, sizeof(h->hostlist), "%s", h->host);
	monitor_timer_set(h, m->connect_timeout_ms);
	if (h->host[0] == '/' || m->dns == NULL ||
	    inet_pton(AF_INET, h->host, &a4) == 1 ||
	    inet_pton(AF_INET6, h->host, &a6) == 1) {
		if (h->host[0] != '/' && m->dns != NULL)
			strncpy(h->hostaddr, h->host, sizeof(h->hostaddr) - 1);
		monitor_connect_start(h);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	h->state = MON_RESOLVING;
	/* May call back at once (hosts file, cache): h->dns_req is set only
	 * if it did not. */
	h->dns_req = NULL;
	{
		struct evdns_getaddrinfo_request *req;

		req = evdns_getaddrinfo(m->dns, h->host, NULL, &hints,
		    monitor_dns_cb, h);
		if (h->state == MON_RESOLVING)
			h->dns_req = req;
	}
}

/*
 * Starts a connection to h's resolved addresses with conninfo: the
 * persistent one and the second one (side) alike.  NULL when out of
 * memory.
 */
static PGconn *
monitor_conn_start(struct mon_host *h, const char *conninfo)
{
	struct monitor *m = h->cluster->mon;
	char port[16], tcp_user_timeout[16];
	const char *keys[12], *vals[12];
	int n = 0;

	snprintf(port, sizeof(port), "%d", h->port);
	/* Unacknowledged data for this long kills the connection (a host
	 * that vanished without a FIN or RST). */
	snprintf(tcp_user_timeout, sizeof(tcp_user_timeout), "%d",
	    m->query_timeout_ms + m->connect_timeout_ms);

	/* The conninfo comes first and is expanded; later entries override
	 * it (libpq processes the arrays in order). */
	keys[n] = "dbname";			vals[n++] = conninfo;
	keys[n] = "host";			vals[n++] = h->hostlist;
	keys[n] = "hostaddr";			vals[n++] = h->hostaddr;
	keys[n] = "port";			vals[n++] = port;
	keys[n] = "fallback_application_name";	vals[n++] = "pgbeacond";
	keys[n] = "keepalives";			vals[n++] = "1";
	keys[n] = "keepalives_idle";		vals[n++] = "5";
	keys[n] = "keepalives_interval";	vals[n++] = "2";
	keys[n] = "keepalives_count";		vals[n++] = "3";
	keys[n] = "tcp_user_timeout";		vals[n++] = tcp_user_timeout;
	keys[n] = NULL;				vals[n] = NULL;
	return PQconnectStartParams(keys, vals, 1);
}

static void
monitor_connect_start(struct mon_host *h)
{
	struct mon_cluster *cl = h->cluster;

	h->state = MON_CONNECTING;
	free(h->conninfo_used);
	if ((h->conninfo_used = strdup(cl->conninfo)) == NULL) {
		monitor_host_fail(h, MON_FAIL_CONNECT, "out of memory");
		return;
	}
	h->conn = monitor_conn_start(h, cl->conninfo);
	if (h->conn == NULL) {
		monitor_host_fail(h, MON_FAIL_CONNECT, "out of memory");
		return;
	}
	if (PQstatus(h->conn) == CONNECTION_BAD) {
		char why[200];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(h->conn));
		monitor_host_fail(h, MON_FAIL_CONNECT, why);
		return;
	}
	/* Per libpq's documentation, start as if PQconnectPoll had asked to
	 * write. */
	monitor_io_arm(h, EV_WRITE);
}

static void
monitor_notice_cb(void *arg, const char *message)
{
	struct mon_host *h = arg;

	log_debug("host %s: server notice: %.*s", h->label,
	    (int)strcspn(message, "\n"), message);
}

static void
monitor_connect_poll(struct mon_host *h)
{
	switch (PQconnectPoll(h->conn)) {
	case PGRES_POLLING_READING:
		monitor_io_arm(h, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		monitor_io_arm(h, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default: {
		char why[200];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(h->conn));
		monitor_host_fail(h, MON_FAIL_CONNECT, why);
		return;
	}
	}
	if (PQsetnonblocking(h->conn, 1) != 0) {
		monitor_host_fail(h, MON_FAIL_CONNECT,
		    "cannot make the connection non-blocking");
		return;
	}
	PQsetNoticeProcessor(h->conn, monitor_notice_cb, h);
	log_debug("host %s (cluster %s): connected", h->label, h->cluster->name);
	h->state = MON_READY;
	monitor_side_schedule(h, -1);
	monitor_probe_send(h);
}

static void
monitor_probe_send(struct mon_host *h)
{
	struct monitor *m = h->cluster->mon;
	int f;

	if (!PQsendQuery(h->conn, PROBE_SQL)) {
		char why[200];

		snprintf(why, sizeof(why), "%s", PQerrorMessage(h->conn));
		monitor_host_fail(h, MON_FAIL_DROP, why);
		return;
	}
	h->state = MON_PROBING;
	h->probe_ok = false;
	h->probe_start_us = monitor_now_us();
	monitor_timer_set(h, m->query_timeout_ms);
	if (h->topo.role == TOPO_ROLE_MASTER) {
		int late_ms = m->query_timeout_ms / 2 < MON_LATE_MS ?
		    m->query_timeout_ms / 2 : MON_LATE_MS;
		struct timeval tv = { 0, late_ms * 1000 };

		event_add(h->late, &tv);
	}
	f = PQflush(h->conn);
	if (f < 0) {
		monitor_host_fail(h, MON_FAIL_DROP, PQerrorMessage(h->conn));
		return;
	}
	monitor_io_arm(h, f == 1 ? EV_READ | EV_WRITE | EV_PERSIST :
	    EV_READ | EV_PERSIST);
}

/* A decimal column of the probe's row (bigint: it may be negative). */
static bool
monitor_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	return pgbc_parse_i64(s, strlen(s), min, max, out);
}

/* Reads the probe's row into h->topo.  false on a malformed row. */
static bool
monitor_probe_parse(struct mon_host *h, const PGresult *r)
{
	struct topo_host *t = &h->topo;
	int64_t i;

	if (PQntuples(r) != 1 || PQnfields(r) != 8)
		return false;
	t->in_recovery = PQgetvalue(r, 0, 0)[0] == 't';
	t->current_lsn = 0;
	if (!PQgetisnull(r, 0, 1) && !pgbc_lsn_parse(PQgetvalue(r, 0, 1),
	    &t->current_lsn))
		return false;
	t->receive_lsn = 0;
	if (!PQgetisnull(r, 0, 2) && !pgbc_lsn_parse(PQgetvalue(r, 0, 2),
	    &t->receive_lsn))
		return false;
	t->replay_lsn = 0;
	if (!PQgetisnull(r, 0, 3) && !pgbc_lsn_parse(PQgetvalue(r, 0, 3),
	    &t->replay_lsn))
		return false;
	t->has_replay_ts = !PQgetisnull(r, 0, 4) &&
	    monitor_parse_i64(PQgetvalue(r, 0, 4), INT64_MIN, INT64_MAX,
	    &t->replay_ts_ms);
	if (!monitor_parse_i64(PQgetvalue(r, 0, 5), INT64_MIN, INT64_MAX,
	    &t->host_now_ms))
		return false;
	if (PQgetisnull(r, 0, 6) || !monitor_parse_i64(PQgetvalue(r, 0, 6), 0,
	    UINT32_MAX, &i))
		return false;
	t->timeline = (uint32_t)i;
	/* system_identifier is a bigint: its bits, as strtoull took them. */
	if (!monitor_parse_i64(PQgetvalue(r, 0, 7), INT64_MIN, INT64_MAX, &i))
		return false;
	t->system_id = (uint64_t)i;
	return true;
}

/* Drains every result of the probe in flight; called when readable. */
static void
monitor_probe_read(struct mon_host *h)
{
	struct mon_cluster *cl = h->cluster;
	struct monitor *m = cl->mon;
	PGresult *r;
	char why[200] = "";
	int64_t now_us;

	while (!PQisBusy(h->conn)) {
		r = PQgetResult(h->conn);
		if (r == NULL)
			break;
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			if (monitor_probe_parse(h, r))
				h->probe_ok = true;
			else
				snprintf(why, sizeof(why), "unexpected probe result");
		} else if (why[0] == '\0')
			snprintf(why, sizeof(why), "probe failed: %s",
			    PQresultErrorMessage(r));
		PQclear(r);
	}
	if (PQisBusy(h->conn))
		return;		/* more to come */

	/* The probe is over. */
	if (!h->probe_ok || why[0] != '\0') {
		monitor_host_fail(h, MON_FAIL_PROBE,
		    why[0] ? why : "empty probe result");
		return;
	}
	if (!h->topo.alive)
		log_info("host %s (cluster %s) is alive: %s, timeline %" PRIu32,
		    h->label, cl->name, h->topo.in_recovery ? "in recovery" :
		    "primary", h->topo.timeline);
	h->topo.alive = true;
	h->topo.probed = true;
	h->topo.fails = 0;
	h->topo.dead_since_ms = 0;
	now_us = monitor_now_us();
	h->topo.probe_us = now_us - h->probe_start_us;
	h->topo.last_ok_ms = now_us / 1000;
	h->topo.error[0] = '\0';
	h->backoff_ms = 0;
	h->round_done = true;
	h->state = MON_READY;
	monitor_probe_ended(h);
	monitor_io_arm(h, EV_READ | EV_PERSIST);
	monitor_timer_set(h, monitor_interval(h));
	monitor_cluster_update(cl);
	monitor_cluster_round_check(m);
}

static void
monitor_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mon_host *h = arg;
	int f;

	(void)fd;
	if (h->state == MON_CONNECTING) {
		h->io_fd = -1;		/* one-shot: it is no longer armed */
		monitor_connect_poll(h);
		return;
	}
	if (what & EV_WRITE) {
		f = PQflush(h->conn);
		if (f < 0) {
			monitor_host_fail(h, MON_FAIL_DROP, PQerrorMessage(h->conn));
			return;
		}
		if (f == 0)
			monitor_io_arm(h, EV_READ | EV_PERSIST);
	}
	if (!(what & EV_READ))
		return;
	if (!PQconsumeInput(h->conn) || PQstatus(h->conn) == CONNECTION_BAD) {
		monitor_host_fail(h, MON_FAIL_DROP, PQerrorMessage(h->conn));
		return;
	}
	if (h->state == MON_PROBING)
		monitor_probe_read(h);
}

static void
monitor_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mon_host *h = arg;
	struct monitor *m = h->cluster->mon;
	char why[100];

	(void)fd;
	(void)what;
	switch (h->state) {
	case MON_IDLE:
		monitor_resolve_start(h);
		break;
	case MON_RESOLVING:
	case MON_CONNECTING:
		snprintf(why, sizeof(why), "connect timeout (%d ms)",
		    m->connect_timeout_ms);
		monitor_host_fail(h, MON_FAIL_CONNECT, why);
		break;
	case MON_READY:
		monitor_probe_send(h);
		break;
	case MON_PROBING:
		snprintf(why, sizeof(why), "probe timeout (%d ms)",
		    m->query_timeout_ms);
		monitor_host_fail(h, MON_FAIL_TIMEOUT, why);
		break;
	}
}

/* The master's probe has been unanswered for MON_LATE_MS: probe the rest
 * of its cluster fast until it answers or is dead. */
static void
monitor_late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mon_host *h = arg;
	struct mon_cluster *cl = h->cluster;

	(void)fd;
	(void)what;
	if (h->state != MON_PROBING || h->topo.role != TOPO_ROLE_MASTER ||
	    cl->late_master != NULL)
		return;
	log_debug("host %s (cluster %s): the primary's probe is late: probing "
	    "the cluster every %d ms", h->label, cl->name,
	    cl->mon->fast_check_interval_ms);
	cl->late_master = h;
	monitor_cluster_reprobe(cl);
}

/* --- the second connection: connection checks, make-before-break ------ */

static void	monitor_side_io_cb(evutil_socket_t, short, void *);

/* Closes h's second connection, if any, and stops its timer. */
static void
monitor_side_close(struct mon_host *h)
{
	if (h->side_io != NULL)
		event_del(h->side_io);
	if (h->side_timer != NULL)
		event_del(h->side_timer);
	if (h->side_conn != NULL) {
		PQfinish(h->side_conn);
		h->side_conn = NULL;
	}
	free(h->side_conninfo);
	h->side_conninfo = NULL;
	h->side = MON_SIDE_IDLE;
	h->side_switch = false;
}

/*
 * Starts h's second connection in ms (-1: after the jittered
 * connect_check_interval_ms, or never when checks are off).  Only while
 * h is connected and has no second connection.
 */
static void
monitor_side_schedule(struct mon_host *h, int ms)
{
	struct monitor *m = h->cluster->mon;
	struct timeval tv;

	if (h->side != MON_SIDE_IDLE ||
	    (h->state != MON_READY && h->state != MON_PROBING))
		return;
	if (ms < 0) {
		if (m->connect_check_interval_ms <= 0)
			return;
		ms = monitor_jitter(m->connect_check_interval_ms);
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->side_timer, &tv);
}

static void
monitor_side_arm(struct mon_host *h, short what)
{
	event_del(h->side_io);
	event_assign(h->side_io, h->cluster->mon->base, PQsocket(h->side_conn),
	    what, monitor_side_io_cb, h);
	event_add(h->side_io, NULL);
}

/*
 * The second connection failed.  unanswered: the server never answered
 * (a timeout, a refused or reset connection, a postmaster that cannot
 * fork): nobody can connect, so the host is dead at once, its connection
 * is closed and reconnection backs off as for any dead host.  Otherwise
 * the server answered with an error (too many clients, authentication):
 * the postmaster works, the host keeps its connection and its state.
 */
static void
monitor_side_failed(struct mon_host *h, bool unanswered, const char *why)
{
	struct mon_cluster *cl = h->cluster;
	bool sw = h->side_switch;
	char msg[256], reason[160];

	/* why may be side_conn's error message: copied before it goes */
	snprintf(reason, sizeof(reason), "%.*s", (int)strcspn(why, "\n"), why);
	monitor_side_close(h);
	if (unanswered) {
		snprintf(msg, sizeof(msg), "%s got no answer: %s",
		    sw ? "a connection with the reloaded conninfo" :
		    "a new connection", reason);
		monitor_host_fail(h, MON_FAIL_TIMEOUT, msg);
		return;
	}
	if (sw) {
		log_warn("host %s (cluster %s): cannot use the reloaded "
		    "conninfo, keeping the current connection: %s", h->label,
		    cl->name, reason);
		monitor_side_schedule(h, monitor_jitter(cl->mon->reconnect_max_ms));
		return;
	}
	log_debug("host %s (cluster %s): connection check answered: %s",
	    h->label, cl->name, reason);
	monitor_side_schedule(h, -1);
}

/*
 * The connection made with the reloaded conninfo answered its probe: it
 * replaces h's connection.  The probe the old one may have in flight is
 * dropped with it; h keeps its last observation, hence its role, and is
 * probed on the new connection at once.
 */
static void
monitor_side_swap(struct mon_host *h)
{
	PGconn *conn = h->side_conn;
	char *conninfo = h->side_conninfo;

	h->side_conn = NULL;
	h->side_conninfo = NULL;
	monitor_side_close(h);
	event_del(h->io);
	h->io_fd = -1;
	h->io_what = 0;
	PQfinish(h->conn);
	monitor_probe_ended(h);
	free(h->conninfo_used);
	h->conn = conn;
	h->conninfo_used = conninfo;
	PQsetNoticeProcessor(h->conn, monitor_notice_cb, h);
	h->state = MON_READY;
	log_info("host %s (cluster %s): now connected with the reloaded "
	    "conninfo", h->label, h->cluster->name);
	monitor_io_arm(h, EV_READ | EV_PERSIST);
	monitor_timer_set(h, 0);
	monitor_side_schedule(h, -1);
}

/*
 * Opens h's second connection with the cluster's conninfo: a connection
 * check when h's connection uses the same conninfo, else a switch to the
 * reloaded one.
 */
static void
monitor_side_start(struct mon_host *h)
{
	struct mon_cluster *cl = h->cluster;
	struct timeval tv;
	int ms = cl->mon->connect_timeout_ms;

	monitor_side_close(h);
	h->side_switch = h->conninfo_used == NULL ||
	    strcmp(h->conninfo_used, cl->conninfo) != 0;
	if ((h->side_conninfo = strdup(cl->conninfo)) == NULL ||
	    (h->side_conn = monitor_conn_start(h, cl->conninfo)) == NULL) {
		monitor_side_failed(h, false, "out of memory");
		return;
	}
	if (PQstatus(h->side_conn) == CONNECTION_BAD) {
		/* Failed before any packet left (no socket, say): our
		 * problem, not the host's. */
		monitor_side_failed(h, false, PQerrorMessage(h->side_conn));
		return;
	}
	h->side = MON_SIDE_CONNECTING;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->side_timer, &tv);
	monitor_side_arm(h, EV_WRITE);
}

/* The switch's connection is up: sends it the probe. */
static void
monitor_side_probe_send(struct mon_host *h)
{
	int ms = h->cluster->mon->query_timeout_ms, f;
	struct timeval tv;

	if (PQsetnonblocking(h->side_conn, 1) != 0 ||
	    !PQsendQuery(h->side_conn, PROBE_SQL) ||
	    (f = PQflush(h->side_conn)) < 0) {
		monitor_side_failed(h, true, PQerrorMessage(h->side_conn));
		return;
	}
	h->side = MON_SIDE_PROBING;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_add(h->side_timer, &tv);
	monitor_side_arm(h, f == 1 ? EV_READ | EV_WRITE | EV_PERSIST :
	    EV_READ | EV_PERSIST);
}

/* Reads the switch's probe: swaps when it returned its row. */
static void
monitor_side_probe_read(struct mon_host *h, short what)
{
	char why[200] = "";
	bool ok = false;
	PGresult *r;
	int f;

	if (what & EV_WRITE) {
		if ((f = PQflush(h->side_conn)) < 0) {
			monitor_side_failed(h, true,
			    PQerrorMessage(h->side_conn));
			return;
		}
		if (f == 0)
			monitor_side_arm(h, EV_READ | EV_PERSIST);
	}
	if (!(what & EV_READ))
		return;
	if (!PQconsumeInput(h->side_conn)) {
		monitor_side_failed(h, true, PQerrorMessage(h->side_conn));
		return;
	}
	while (!PQisBusy(h->side_conn)) {
		if ((r = PQgetResult(h->side_conn)) == NULL)
			break;
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			ok = true;
		else if (why[0] == '\0')
			snprintf(why, sizeof(why), "probe failed: %s",
			    PQresultErrorMessage(r));
		PQclear(r);
	}
	if (PQisBusy(h->side_conn))
		return;
	if (!ok || why[0] != '\0') {
		monitor_side_failed(h, false, why[0] ? why : "empty probe result");
		return;
	}
	monitor_side_swap(h);
}

static void
monitor_side_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mon_host *h = arg;
	const char *msg;

	(void)fd;
	if (h->side == MON_SIDE_PROBING) {
		monitor_side_probe_read(h, what);
		return;
	}
	switch (PQconnectPoll(h->side_conn)) {
	case PGRES_POLLING_READING:
		monitor_side_arm(h, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		monitor_side_arm(h, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		/* An error the server sent has libpq's "FATAL:  " prefix;
		 * a fork failure, a refusal or a reset has not. */
		msg = PQerrorMessage(h->side_conn);
		monitor_side_failed(h, strstr(msg, "FATAL:") == NULL, msg);
		return;
	}
	if (h->side_switch) {
		monitor_side_probe_send(h);
		return;
	}
	log_debug("host %s (cluster %s): connection check passed", h->label,
	    h->cluster->name);
	monitor_side_close(h);
	monitor_side_schedule(h, -1);
}

static void
monitor_side_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mon_host *h = arg;
	struct monitor *m = h->cluster->mon;
	char why[100];

	(void)fd;
	(void)what;
	switch (h->side) {
	case MON_SIDE_IDLE:
		monitor_side_start(h);
		break;
	case MON_SIDE_CONNECTING:
		snprintf(why, sizeof(why), "connect timeout (%d ms)",
		    m->connect_timeout_ms);
		monitor_side_failed(h, true, why);
		break;
	case MON_SIDE_PROBING:
		snprintf(why, sizeof(why), "probe timeout (%d ms)",
		    m->query_timeout_ms);
		monitor_side_failed(h, true, why);
		break;
	}
}

static void
monitor_host_free(struct mon_host *h)
{
	if (h == NULL)
		return;
	monitor_close_conn(h);
	if (h->io != NULL)
		event_free(h->io);
	if (h->timer != NULL)
		event_free(h->timer);
	if (h->late != NULL)
		event_free(h->late);
	if (h->side_io != NULL)
		event_free(h->side_io);
	if (h->side_timer != NULL)
		event_free(h->side_timer);
	free(h->host);
	free(h);
}

static struct mon_host *
monitor_host_new(struct mon_cluster *cl, const struct config_host *ch)
{
	struct event_base *base = cl->mon->base;
	struct mon_host *h;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->cluster = cl;
	h->port = ch->port;
	h->io_fd = -1;
	if ((h->host = strdup(ch->host)) == NULL)
		goto fail;
	h->topo.host = h->host;
	h->topo.port = h->port;
	topology_host_name(&h->topo, h->label, sizeof(h->label));
	h->topo.lag_ms = -1;
	/* A placeholder assignment; monitor_io_arm() assigns the real fd. */
	h->io = event_new(base, -1, 0, monitor_io_cb, h);
	h->timer = evtimer_new(base, monitor_timer_cb, h);
	h->late = evtimer_new(base, monitor_late_cb, h);
	h->side_io = event_new(base, -1, 0, monitor_side_io_cb, h);
	h->side_timer = evtimer_new(base, monitor_side_timer_cb, h);
	if (h->io == NULL || h->timer == NULL || h->late == NULL ||
	    h->side_io == NULL || h->side_timer == NULL)
		goto fail;
	h->state = MON_IDLE;
	return h;
fail:
	monitor_host_free(h);
	return NULL;
}

static void
monitor_cluster_free(struct mon_cluster *cl)
{
	size_t i;

	if (cl == NULL)
		return;
	for (i = 0; i < cl->nhosts; i++)
		monitor_host_free(cl->hosts[i]);
	free(cl->hosts);
	free(cl->topo_hosts);
	free(cl->name);
	free(cl->conninfo);
	free(cl);
}

/* Hosts of cl may serve cc: a changed conninfo does not prevent it (the
 * connections are replaced make-before-break by monitor_cluster_start). */
static bool
monitor_cluster_same_source(const struct mon_cluster *cl,
    const struct config_cluster *cc)
{
	return cl->configured_system_id == cc->system_identifier;
}

/*
 * Hands the hosts that monitor_cluster_new() moved from old to cl back to
 * old, so that freeing cl frees only what it created.
 */
static void
monitor_cluster_give_back(struct mon_cluster *cl, struct mon_cluster *old)
{
	size_t i, j;

	if (old == NULL)
		return;
	for (i = 0; i < cl->nhosts; i++)
		for (j = 0; j < old->nhosts; j++)
			if (cl->hosts[i] != NULL && old->hosts[j] == NULL &&
			    old->topo_hosts[j] == &cl->hosts[i]->topo) {
				old->hosts[j] = cl->hosts[i];
				old->hosts[j]->cluster = old;
				cl->hosts[i] = NULL;
			}
}

/*
 * Builds a cluster for cc.  Hosts of old (may be NULL) that are still
 * wanted are moved over with their connections (old loses them); old's
 * generation and round-robin cursor carry on.
 */
static struct mon_cluster *
monitor_cluster_new(struct monitor *m, const struct config_cluster *cc,
    struct mon_cluster *old)
{
	struct mon_cluster *cl;
	size_t i, j;

	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		return NULL;
	cl->mon = m;
	cl->configured_system_id = cc->system_identifier;
	if ((cl->name = strdup(cc->name)) == NULL ||
	    (cl->conninfo = strdup(cc->conninfo)) == NULL)
		goto fail;
	cl->hosts = calloc(cc->nhosts, sizeof(*cl->hosts));
	cl->topo_hosts = calloc(cc->nhosts, sizeof(*cl->topo_hosts));
	if (cl->hosts == NULL || cl->topo_hosts == NULL)
		goto fail;
	for (i = 0; i < cc->nhosts; i++) {
		struct mon_host *h = NULL;

		if (old != NULL && monitor_cluster_same_source(old, cc))
			for (j = 0; j < old->nhosts; j++) {
				struct mon_host *oh = old->hosts[j];

				if (oh != NULL && oh->port == cc->hosts[i].port &&
				    strcmp(oh->host, cc->hosts[i].host) == 0) {
					h = oh;
					old->hosts[j] = NULL;
					h->cluster = cl;
					break;
				}
			}
		if (h == NULL && (h = monitor_host_new(cl, &cc->hosts[i])) == NULL)
			goto fail;
		cl->hosts[i] = h;
		cl->topo_hosts[i] = &h->topo;
		cl->nhosts++;
	}
	topology_cluster_init(&cl->topo, cl->name, cl->topo_hosts, cl->nhosts,
	    cl->configured_system_id);
	if (old == NULL) {
		/* New, or removed and added again: its memory carries on. */
		const struct state_entry *e = state_find(m->state, cl->name);

		if (e != NULL) {
			cl->topo.generation = e->generation;
			topology_restore(&cl->topo, e->timeline,
			    e->timeline_host, e->system_id);
		}
	} else {
		topology_restore(&cl->topo, old->topo.max_timeline,
		    old->topo.max_timeline_host, old->topo.memory_system_id);
		cl->topo.has_last_master_lsn = old->topo.has_last_master_lsn;
		cl->topo.last_master_lsn = old->topo.last_master_lsn;
		cl->topo.generation = old->topo.generation;
		cl->topo.rr = old->topo.rr;
		cl->topo.system_id = old->topo.system_id;
		cl->fast = old->fast;
		/* Keep the old master so that a reload which keeps it does not
		 * look like a change (a moved host keeps its address). */
		for (i = 0; i < cl->nhosts; i++)
			if (cl->topo_hosts[i] == old->topo.master_host) {
				cl->topo.master_host = old->topo.master_host;
				cl->topo.master = (int)i;
			}
	}
	return cl;
fail:
	monitor_cluster_give_back(cl, old);
	monitor_cluster_free(cl);
	return NULL;
}

/*
 * Starts every host of cl that is not running yet.  A host whose
 * connection was opened with another conninfo (a reload changed it) keeps
 * it, and its role, until a connection with the new one answers a probe
 * (make-before-break); an attempt still under way with the old one
 * starts over.
 */
static void
monitor_cluster_start(struct mon_cluster *cl)
{
	size_t i;

	for (i = 0; i < cl->nhosts; i++) {
		struct mon_host *h = cl->hosts[i];
		bool stale = h->conninfo_used != NULL &&
		    strcmp(h->conninfo_used, cl->conninfo) != 0;

		if (h->side != MON_SIDE_IDLE && h->side_conninfo != NULL &&
		    strcmp(h->side_conninfo, cl->conninfo) != 0) {
			monitor_side_close(h);
			if (!stale)
				monitor_side_schedule(h, -1);
		}
		if (stale && (h->state == MON_RESOLVING ||
		    h->state == MON_CONNECTING)) {
			monitor_close_conn(h);
			h->state = MON_IDLE;
			monitor_timer_set(h, 0);
		} else if (stale && h->side == MON_SIDE_IDLE) {
			event_del(h->side_timer);
			monitor_side_start(h);
		}
		if (h->state == MON_IDLE && !event_pending(h->timer, EV_TIMEOUT,
		    NULL))
			monitor_timer_set(h, 0);
	}
}

static void
monitor_apply_settings(struct monitor *m, const struct config *cfg)
{
	m->limits.sync_max_lag_ms = cfg->sync_max_lag_ms;
	m->limits.sync_max_lag_bytes = cfg->sync_max_lag_bytes;
	m->check_interval_ms = cfg->check_interval_ms;
	m->fast_check_interval_ms = cfg->fast_check_interval_ms;
	m->connect_timeout_ms = cfg->connect_timeout_ms;
	m->query_timeout_ms = cfg->query_timeout_ms;
	m->reconnect_max_ms = cfg->reconnect_max_ms;
	m->max_fails = cfg->max_fails;
	m->connect_check_interval_ms = cfg->connect_check_interval_ms;
}

static struct mon_cluster *
monitor_cluster_named(const struct monitor *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nclusters; i++)
		if (strcmp(m->clusters[i]->name, name) == 0)
			return m->clusters[i];
	return NULL;
}

int
monitor_reconfigure(struct monitor *m, const struct config *cfg)
{
	struct mon_cluster **clusters;
	struct topo_cluster **topo;
	size_t i, j;

	clusters = calloc(cfg->nclusters, sizeof(*clusters));
	topo = calloc(cfg->nclusters, sizeof(*topo));
	if (clusters == NULL || topo == NULL)
		goto fail;
	for (i = 0; i < cfg->nclusters; i++) {
		clusters[i] = monitor_cluster_new(m, &cfg->clusters[i],
		    monitor_cluster_named(m, cfg->clusters[i].name));
		if (clusters[i] == NULL)
			goto fail;
		topo[i] = &clusters[i]->topo;
	}

	/* Commit: nothing below can fail. */
	for (j = 0; j < m->nclusters; j++) {
		bool kept = false;

		for (i = 0; i < cfg->nclusters; i++)
			kept |= strcmp(m->clusters[j]->name, clusters[i]->name) == 0;
		if (!kept)
			log_info("cluster %s: removed", m->clusters[j]->name);
		monitor_cluster_free(m->clusters[j]);
	}
	free(m->clusters);
	free(m->topo_clusters);
	m->clusters = clusters;
	m->topo_clusters = topo;
	m->nclusters = cfg->nclusters;
	monitor_apply_settings(m, cfg);
	for (i = 0; i < m->nclusters; i++) {
		monitor_cluster_start(m->clusters[i]);
		monitor_cluster_update(m->clusters[i]);
	}
	return 0;
fail:
	if (clusters != NULL)
		for (i = 0; i < cfg->nclusters && clusters[i] != NULL; i++) {
			monitor_cluster_give_back(clusters[i],
			    monitor_cluster_named(m, clusters[i]->name));
			monitor_cluster_free(clusters[i]);
		}
	free(clusters);
	free(topo);
	return -1;
}

/*
 * Reads the state file of cfg (before any cluster exists).  A missing or
 * corrupt file does not stop the daemon: it starts with no memory (a
 * corrupt one is overwritten at the first change).  -1 on allocation
 * failure only.
 */
static int
monitor_state_open(struct monitor *m, const struct config *cfg)
{
	char err[300];

	if ((m->state = state_new(cfg->state_file)) == NULL)
		return -1;
	if (m->state->path == NULL) {
		log_warn("no state_file: the timeline memory and generations "
		    "will not survive a restart");
		return 0;
	}
	switch (state_load(m->state, err, sizeof(err))) {
	case STATE_LOADED:
		log_info("state file %s: %zu cluster(s) remembered",
		    m->state->path, m->state->n);
		break;
	case STATE_MISSING:
		log_info("state file %s does not exist yet: starting with no "
		    "memory", m->state->path);
		break;
	case STATE_CORRUPT:
		log_warn("state file %s: %s; starting with no memory (the file "
		    "will be rewritten)", m->state->path, err);
		break;
	}
	return 0;
}

struct monitor *
monitor_new(struct event_base *base, struct evdns_base *dns,
    const struct config *cfg, const struct monitor_callbacks *cb)
{
	struct monitor *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->base = base;
	m->dns = dns;
	if (cb != NULL)
		m->cb = *cb;
	if (dns == NULL)
		log_warn("no asynchronous DNS resolver: libpq will resolve host "
		    "names itself, which blocks the event loop while it does");
	monitor_apply_settings(m, cfg);
	if (monitor_state_open(m, cfg) != 0 ||
	    monitor_reconfigure(m, cfg) != 0) {
		monitor_free(m);
		return NULL;
	}
	monitor_cluster_round_check(m);	/* no hosts at all */
	return m;
}

void
monitor_free(struct monitor *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nclusters; i++)
		monitor_cluster_free(m->clusters[i]);
	free(m->clusters);
	free(m->topo_clusters);
	state_free(m->state);
	free(m);
}

struct topo_cluster *const *
monitor_clusters(const struct monitor *m, size_t *n)
{
	*n = m->nclusters;
	return m->topo_clusters;
}

struct topo_cluster *
monitor_find_cluster(const struct monitor *m, const char *name)
{
	struct mon_cluster *cl = monitor_cluster_named(m, name);

	return cl != NULL ? &cl->topo : NULL;
}

const struct topo_limits *
monitor_limits(const struct monitor *m)
{
	return &m->limits;
}

int
monitor_forget(struct monitor *m, const char *name, const char *who)
{
	struct mon_cluster *cl = monitor_cluster_named(m, name);

	if (cl == NULL)
		return -1;
	if (cl->topo.max_timeline != 0)
		log_warn("cluster %s: timeline memory (%" PRIu32 " seen on %s) "
		    "cleared by %s", cl->name, cl->topo.max_timeline,
		    cl->topo.max_timeline_host, who);
	else
		log_warn("cluster %s: timeline memory (none) cleared by %s",
		    cl->name, who);
	topology_forget(&cl->topo);
	monitor_cluster_update(cl);
	return 0;
}

uint64_t
monitor_role_changes(const struct monitor *m, const struct topo_cluster *c)
{
	size_t i;

	for (i = 0; i < m->nclusters; i++)
		if (&m->clusters[i]->topo == c)
			return m->clusters[i]->role_changes;
	return 0;
}
