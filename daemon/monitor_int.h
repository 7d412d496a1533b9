/*
 * monitor_int.h - what monitor.c (one host's connection and probes),
 * monitor_side.c (its second connection: connection checks and
 * make-before-break) and monitor_set.c (the clusters: creation,
 * reconfiguration, the state file, accessors) share.  Private to them.
 */
#ifndef PGBEACON_MONITOR_INT_H
#define PGBEACON_MONITOR_INT_H

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
#include "statesync.h"

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
	struct state_syncer	*syncer;	/* owned; its fsyncs, or NULL */
	int64_t			 state_retry_ms; /* monotonic; next retry of a
						   failed save without a change */
};

/* monitor.c: one host's connection, probes and failures. */
void monitor_timer_set(struct mon_host *h, int ms);
void monitor_io_arm(struct mon_host *h, short what);
void monitor_probe_ended(struct mon_host *h);
void monitor_close_conn(struct mon_host *h);
int monitor_jitter(int ms);
void monitor_cluster_round_check(struct monitor *m);
void monitor_cluster_update(struct mon_cluster *cl);
void monitor_host_fail(struct mon_host *h, enum mon_fail kind,
	const char *why);
PGconn *monitor_conn_start(struct mon_host *h, const char *conninfo);
void monitor_notice_cb(void *arg, const char *message);
void monitor_io_cb(evutil_socket_t fd, short what, void *arg);
void monitor_timer_cb(evutil_socket_t fd, short what, void *arg);
void monitor_late_cb(evutil_socket_t fd, short what, void *arg);

/* monitor_side.c: the second connection. */
void monitor_side_close(struct mon_host *h);
void monitor_side_schedule(struct mon_host *h, int ms);
void monitor_side_start(struct mon_host *h);
void monitor_side_io_cb(evutil_socket_t fd, short what, void *arg);
void monitor_side_timer_cb(evutil_socket_t fd, short what, void *arg);

/* The probe query (monitor.c). */
extern const char monitor_probe_sql[];

#endif
