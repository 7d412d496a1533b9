/*
 * topology.h - who is primary, who is a replica, how far behind, and which
 * host answers a role question.  Pure logic: no I/O, no clock, no libpq.
 *
 * The monitor writes what each probe observed into a topo_host and calls
 * topology_update(); the socket and HTTP servers call topology_resolve().
 * Unit tests build hosts by hand and call the same two functions.
 *
 * Rules (see DESIGN.md, "Monitoring"):
 *  - A host whose system identifier differs from the cluster's is never
 *    given a role.  The cluster's identifier is the configured one, else
 *    the one shared by most live hosts; on a tie the one already in use
 *    stays, else the first listed host's.
 *  - Exactly one primary: among live hosts not in recovery, the highest
 *    timeline wins; a tie at the top means no primary ("split brain").
 *  - Each change of the answer to "who is primary" (including to and from
 *    "nobody") bumps the cluster's generation.
 *  - Timeline memory: the cluster remembers the highest timeline any of its
 *    live hosts ever showed, and which host showed it.  A primary below it
 *    never gets a role (it is an old primary back un-rewound, even when
 *    the newer one is down); a replica below it is stale (left behind by
 *    a promotion) and gets no role.  A new system identifier clears the
 *    memory.  The caller persists it (state.c) and may clear it
 *    (topology_forget()).
 *  - While no primary is known, lag-bounded roles use the last primary
 *    seen: bytes against its last WAL position, time as the replica's
 *    lag then plus the time since then (see topology_update()).
 */
#ifndef PGB_TOPOLOGY_H
#define PGB_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/request.h"
#include "common/roles.h"

/* A host's role: the values and names of common/roles.h. */
enum topo_role {
	TOPO_ROLE_NONE = PGBC_ROLE_NONE, /* no role: dead, foreign, or a
					  * losing primary */
	TOPO_ROLE_MASTER = PGBC_ROLE_MASTER, /* the cluster's one primary */
	TOPO_ROLE_REPLICA = PGBC_ROLE_REPLICA, /* a live standby of this
						* cluster */
};

/* Why a host has the role it has; TOPO_WHY_OK for master and replicas. */
enum topo_why {
	TOPO_WHY_OK,		/* eligible for its role */
	TOPO_WHY_UNPROBED,	/* has not answered a probe yet */
	TOPO_WHY_DEAD,		/* connection lost or max_fails probes failed */
	TOPO_WHY_FOREIGN,	/* system identifier is not the cluster's */
	TOPO_WHY_LOWER_TIMELINE, /* claims primary, another one is ahead */
	TOPO_WHY_SPLIT_BRAIN,	/* claims primary on the same timeline as another */
	TOPO_WHY_STALE_TIMELINE, /* replica below the highest timeline seen */
};

/* Room for any "host:port" that topology_host_name() writes. */
#define TOPO_HOST_NAMELEN 300

/*
 * One host.  Owned by the monitor (or a test); topology reads the
 * observation fields and writes the derived ones.
 */
struct topo_host {
	/* identity, set once */
	const char	*host;		/* borrowed; outlives the topo_host */
	int		 port;

	/* observation, written by the monitor after every probe */
	bool		 alive;		/* connected and fewer than max_fails failures */
	bool		 probed;	/* the fields below hold a real answer */
	bool		 in_recovery;
	uint64_t	 system_id;
	uint32_t	 timeline;
	uint64_t	 current_lsn;	/* pg_current_wal_lsn(); primaries only */
	uint64_t	 receive_lsn;	/* replicas only; 0 when unknown */
	uint64_t	 replay_lsn;	/* replicas only */
	bool		 has_replay_ts;
	int64_t		 replay_ts_ms;	/* pg_last_xact_replay_timestamp(), epoch ms */
	int64_t		 host_now_ms;	/* now() on that host at the probe, epoch ms */
	int64_t		 last_ok_ms;	/* monotonic ms of the last good probe; 0 never */
	int64_t		 dead_since_ms;	/* monotonic ms it was found dead; 0 alive */
	int64_t		 probe_us;	/* how long the last good probe took */
	int		 fails;		/* consecutive failed probes */
	char		 error[160];	/* last error, "" when none; no secrets */

	/* derived by topology_update() */
	enum topo_role	 role;
	enum topo_why	 why;
	bool		 lag_known;	/* false when no primary to compare with */
	uint64_t	 lag_bytes;
	int64_t		 lag_ms;	/* -1 when unknown */
	char		 why_text[200];	/* why in words ("lower timeline: timeline
					   36 < 37 seen on db2:5432"); "" when
					   topology_why_text(why) says it all */
	/* While no primary is known: the lag against the last one seen. */
	bool		 outage_lag_known; /* the two below hold an estimate */
	uint64_t	 outage_lag_bytes; /* last primary position - replay_lsn */
	int64_t		 outage_lag_ms;	/* lag then + time since; -1 unknown */
	/* Memory of topology_update() for the estimate above. */
	int64_t		 seen_lag_ms;	/* lag_ms at the last update with a
					   primary; -1 unknown */
	int64_t		 seen_lag_at_ms; /* monotonic ms it was measured; 0 none */
};

/*
 * One cluster.  hosts points at topo_hosts owned by the caller; the array
 * itself is owned by the caller too.
 */
struct topo_cluster {
	const char	 *name;		/* borrowed */
	struct topo_host **hosts;	/* borrowed */
	size_t		  nhosts;
	uint64_t	  configured_system_id;	/* 0: learn it */

	/* derived by topology_update() */
	uint64_t	  system_id;	/* 0 while unknown */
	int		  master;	/* index into hosts, -1 for none */
	const struct topo_host *master_host; /* borrowed: hosts[master] or NULL;
					   the master's identity across updates */
	uint64_t	  generation;	/* bumped on every change of master */
	char		  why_no_master[200];
	unsigned	  rr;		/* round-robin cursor of topology_resolve */

	/*
	 * Memory that outlives a probe, kept by topology_update() across
	 * updates; the caller loads and saves it (and generation).
	 */
	uint32_t	  max_timeline;	/* highest timeline seen; 0: none */
	char		  max_timeline_host[TOPO_HOST_NAMELEN]; /* who showed it */
	uint64_t	  memory_system_id; /* whose timelines those are; 0: unknown */
	bool		  has_last_master_lsn;
	uint64_t	  last_master_lsn; /* the master's current_lsn, last seen */
};

/* What a client asks for: the values and names of common/roles.h. */
enum topo_want {
	TOPO_WANT_MASTER = PGBC_WANT_MASTER,
	TOPO_WANT_REPLICA = PGBC_WANT_REPLICA,
	TOPO_WANT_SYNC_BY_TIME = PGBC_WANT_SYNC_BY_TIME,
	TOPO_WANT_SYNC_BY_BYTES = PGBC_WANT_SYNC_BY_BYTES,
	TOPO_WANT_SYNC_BY_TIME_OR_BYTES = PGBC_WANT_SYNC_BY_TIME_OR_BYTES,
	TOPO_WANT_SYNC_BY_TIME_AND_BYTES = PGBC_WANT_SYNC_BY_TIME_AND_BYTES,
	TOPO_WANT_ANY = PGBC_WANT_ANY,
};

/* fallback=, as common/request.h reads it. */
enum topo_fallback {
	TOPO_FALLBACK_DEFAULT = PGBC_FALLBACK_DEFAULT,	/* the role's own
							 * rule: the master */
	TOPO_FALLBACK_MASTER = PGBC_FALLBACK_MASTER,	/* no replica
							 * qualifies: master */
	TOPO_FALLBACK_NONE = PGBC_FALLBACK_NONE,	/* no replica
							 * qualifies: no host */
};

struct topo_query {
	enum topo_want	 want;
	int64_t		 max_lag_ms;	/* -1: not given */
	int64_t		 max_lag_bytes;	/* -1: not given */
	bool		 has_min_lsn;
	uint64_t	 min_lsn;
	enum topo_fallback fallback;
};

/* Config defaults for the sync_by_* roles. */
struct topo_limits {
	int64_t		 sync_max_lag_ms;
	int64_t		 sync_max_lag_bytes;
};

/* A query for want with nothing else set. */
void topology_query_init(struct topo_query *q, enum topo_want want);

/* Initialises c over hosts (no master, generation 0). */
void topology_cluster_init(struct topo_cluster *c, const char *name,
	struct topo_host **hosts, size_t nhosts, uint64_t configured_system_id);

/*
 * Derives roles, lags and the master from the hosts' observations.
 * Returns true when the master changed (the generation was bumped).
 */
bool topology_update(struct topo_cluster *c);

/*
 * Sets c's memory from a saved state (before the first update): the
 * highest timeline seen (0: none), the host that showed it, and the system
 * identifier they belong to (0: unknown; also taken as the cluster's
 * identifier until the hosts say otherwise, unless one is configured).
 */
void topology_restore(struct topo_cluster *c, uint32_t max_timeline,
	const char *max_timeline_host, uint64_t system_id);

/*
 * Forgets the highest timeline seen (an operator restored an older
 * timeline on purpose).  The next topology_update() learns it again from
 * the live hosts.
 */
void topology_forget(struct topo_cluster *c);

/*
 * Picks the host for q, or NULL when there is none; then writes why to
 * why_buf (one line, no trailing newline; NULL or why_len 0: nothing is
 * formatted).  Advances the round-robin cursor, hence not const.
 */
const struct topo_host *topology_resolve(struct topo_cluster *c,
	const struct topo_query *q, const struct topo_limits *lim,
	char *why_buf, size_t why_len);

/*
 * Writes h as "host:port" into buf: an IPv6 literal in brackets
 * ("[::1]:5432"), a socket directory as it is ("/run/pg:5432"): the
 * grammar of common/hostport.h.
 */
void topology_host_name(const struct topo_host *h, char *buf, size_t len);

/* The master, or NULL. */
const struct topo_host *topology_master(const struct topo_cluster *c);

/* Parses a role name ("master", "primary", "replica", "standby",
 * "sync_by_time", ..., "any") with pgbc_want_parse().  false on an
 * unknown name. */
bool topology_want_parse(const char *name, enum topo_want *out)
	__attribute__((warn_unused_result));
/* The first name topology_want_parse() takes for want ("master"). */
const char *topology_want_name(enum topo_want want);

const char *topology_role_name(enum topo_role role);	/* "master", ... */
const char *topology_why_text(enum topo_why why);	/* short reason */

#endif /* PGB_TOPOLOGY_H */
