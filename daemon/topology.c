/*
 * topology.c - who is primary, who is a replica, how far behind, and which
 * host answers a role question.  Pure logic: no I/O, no clock, no libpq.
 *
 * topology_update() derives everything from the hosts' last observations
 * in one pass, so the answer never depends on the order probes came in.
 * topology_resolve() only reads what the last update derived (and moves
 * the round-robin cursor).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/hostport.h"
#include "common/lsn.h"
#include "common/roles.h"

#include "topology.h"

/* The lag limits of one query, after the config defaults were applied. */
struct topo_limit_set {
	int64_t		 max_ms;	/* -1: no time limit */
	int64_t		 max_bytes;	/* -1: no bytes limit */
};

static void	topology_set_why(char *buf, size_t len, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
static size_t	topology_count_id(const struct topo_cluster *c, uint64_t id);
static void	topology_learn_system_id(struct topo_cluster *c);
static void	topology_remember_system(struct topo_cluster *c);
static void	topology_remember_timeline(struct topo_cluster *c);
static void	topology_mark_stale(struct topo_cluster *c);
static void	topology_set_outage_lags(struct topo_cluster *c);
static bool	topology_lag(const struct topo_host *h, uint64_t *bytes,
		    int64_t *ms);
static void	topology_classify(struct topo_cluster *c,
		    struct topo_host *h);
static struct topo_host *topology_elect(struct topo_cluster *c);
static void	topology_explain_no_candidate(struct topo_cluster *c);
static void	topology_explain_split(struct topo_cluster *c, uint32_t tl);
static void	topology_set_lags(struct topo_cluster *c,
		    const struct topo_host *m);
static bool	topology_want_is_replica(enum topo_want want);
static void	topology_get_limits(const struct topo_query *q,
		    const struct topo_limits *lim, struct topo_limit_set *ls);
static bool	topology_check_time(const struct topo_host *h, int64_t max);
static bool	topology_check_bytes(const struct topo_host *h, int64_t max);
static bool	topology_check_replica(const struct topo_host *h,
		    const struct topo_query *q, const struct topo_limit_set *ls,
		    char *why, size_t len);

void
topology_host_name(const struct topo_host *h, char *buf, size_t len)
{
	(void)pgbc_hostport_format(buf, len, h->host != NULL ? h->host : "?",
	    h->port);
}

/* snprintf into an optional why buffer (NULL or len 0: nothing). */
static void
topology_set_why(char *buf, size_t len, const char *fmt, ...)
{
	va_list	ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void
topology_query_init(struct topo_query *q, enum topo_want want)
{
	memset(q, 0, sizeof *q);
	q->want = want;
	q->max_lag_ms = -1;
	q->max_lag_bytes = -1;
	q->has_min_lsn = false;
	q->min_lsn = 0;
	q->fallback = TOPO_FALLBACK_DEFAULT;
}

void
topology_cluster_init(struct topo_cluster *c, const char *name,
    struct topo_host **hosts, size_t nhosts, uint64_t configured_system_id)
{
	memset(c, 0, sizeof *c);
	c->name = name;
	c->hosts = hosts;
	c->nhosts = nhosts;
	c->configured_system_id = configured_system_id;
	c->system_id = configured_system_id;
	c->master = -1;
	c->master_host = NULL;
	c->generation = 0;
	c->rr = 0;
	snprintf(c->why_no_master, sizeof c->why_no_master,
	    "no host probed yet");
}

/* How many live, probed hosts report system identifier id. */
static size_t
topology_count_id(const struct topo_cluster *c, uint64_t id)
{
	size_t	i, n = 0;

	for (i = 0; i < c->nhosts; i++) {
		const struct topo_host *h = c->hosts[i];

		if (h->alive && h->probed && h->system_id == id)
			n++;
	}
	return (n);
}

/*
 * Sets c->system_id.  A configured identifier always wins.  Otherwise the
 * majority of live, probed hosts decides; on a tie the identifier already
 * in use stays (so a foreign host that comes up while half the cluster is
 * down cannot take the cluster over), else the first listed host's.  With
 * no live, probed host the old identifier is kept.
 */
static void
topology_learn_system_id(struct topo_cluster *c)
{
	size_t		i, n, best = 0;
	uint64_t	pick = 0;

	if (c->configured_system_id != 0) {
		c->system_id = c->configured_system_id;
		return;
	}
	for (i = 0; i < c->nhosts; i++) {
		const struct topo_host *h = c->hosts[i];

		if (!h->alive || !h->probed)
			continue;
		/* Strictly greater: the lowest index wins a tie. */
		if ((n = topology_count_id(c, h->system_id)) > best) {
			best = n;
			pick = h->system_id;
		}
	}
	if (best == 0)
		return;
	if (c->system_id != 0 && c->system_id != pick &&
	    topology_count_id(c, c->system_id) == best)
		return;
	c->system_id = pick;
}

/*
 * A cluster rebuilt with initdb has a new history: the timelines seen on
 * the old one mean nothing for it.  Clears the memory when the cluster's
 * identifier is known and is not the one the memory belongs to.
 */
static void
topology_remember_system(struct topo_cluster *c)
{
	if (c->system_id == 0 || c->memory_system_id == c->system_id)
		return;
	if (c->memory_system_id != 0) {
		c->max_timeline = 0;
		c->max_timeline_host[0] = '\0';
		c->has_last_master_lsn = false;
		c->last_master_lsn = 0;
	}
	c->memory_system_id = c->system_id;
}

/*
 * Raises the highest timeline seen to that of any live host of the
 * cluster's system, primary or replica: a replica on timeline 37 proves
 * that a promotion to 37 happened as much as the primary does.  The host
 * named is a primary that showed it when there is one, else a replica;
 * the one named first keeps the credit while the timeline stays.
 */
static void
topology_remember_timeline(struct topo_cluster *c)
{
	size_t	i;
	int	pass;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < c->nhosts; i++) {
			const struct topo_host *h = c->hosts[i];

			if (!h->alive || !h->probed || h->why != TOPO_WHY_OK ||
			    h->in_recovery != (pass == 1) ||
			    h->timeline <= c->max_timeline)
				continue;
			c->max_timeline = h->timeline;
			topology_host_name(h, c->max_timeline_host,
			    sizeof c->max_timeline_host);
		}
	}
}

void
topology_restore(struct topo_cluster *c, uint32_t max_timeline,
    const char *max_timeline_host, uint64_t system_id)
{
	c->max_timeline = max_timeline;
	snprintf(c->max_timeline_host, sizeof c->max_timeline_host, "%s",
	    max_timeline_host != NULL ? max_timeline_host : "");
	c->memory_system_id = system_id;
	if (c->configured_system_id == 0 && system_id != 0)
		c->system_id = system_id;
}

void
topology_forget(struct topo_cluster *c)
{
	c->max_timeline = 0;
	c->max_timeline_host[0] = '\0';
}

/*
 * Gives h its role from its own observation only; primary candidates are
 * left as TOPO_ROLE_NONE / TOPO_WHY_OK for topology_elect().
 */
static void
topology_classify(struct topo_cluster *c, struct topo_host *h)
{
	h->role = TOPO_ROLE_NONE;
	h->why = TOPO_WHY_OK;
	h->why_text[0] = '\0';
	h->lag_known = false;
	h->lag_bytes = 0;
	h->lag_ms = -1;
	h->outage_lag_known = false;
	h->outage_lag_bytes = 0;
	h->outage_lag_ms = -1;

	if (!h->alive) {
		/*
		 * "Never probed" means no probe has answered and none has
		 * failed it yet (the state before the first probe); a host
		 * that failed its probes from the start is dead, which is
		 * what STATUS should say.
		 */
		if (!h->probed && h->last_ok_ms == 0 && h->dead_since_ms == 0)
			h->why = TOPO_WHY_UNPROBED;
		else
			h->why = TOPO_WHY_DEAD;
		return;
	}
	if (!h->probed) {
		h->why = TOPO_WHY_UNPROBED;
		return;
	}
	if (h->system_id != c->system_id) {
		h->why = TOPO_WHY_FOREIGN;
		return;
	}
	if (h->in_recovery)
		h->role = TOPO_ROLE_REPLICA;
}

/* True when h is still a primary candidate after topology_classify(). */
#define TOPO_IS_CANDIDATE(h) \
	((h)->role == TOPO_ROLE_NONE && (h)->why == TOPO_WHY_OK)

/*
 * Picks the one primary among the candidates.  A candidate below the
 * highest timeline ever seen (c->max_timeline, which already includes
 * every live candidate's) is an old primary that came back un-rewound,
 * whether or not the newer primary is still up; a tie at the top is a
 * split brain and nobody is primary.  Returns the master or NULL, having
 * written c->why_no_master.
 */
static struct topo_host *
topology_elect(struct topo_cluster *c)
{
	struct topo_host	*h, *top = NULL, *lower = NULL;
	size_t			 i, ntop = 0;
	char			 name[TOPO_HOST_NAMELEN];

	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		if (!TOPO_IS_CANDIDATE(h))
			continue;
		if (h->timeline < c->max_timeline) {
			h->why = TOPO_WHY_LOWER_TIMELINE;
			topology_set_why(h->why_text, sizeof h->why_text,
			    "lower timeline: timeline %u < %u seen on %s",
			    (unsigned)h->timeline, (unsigned)c->max_timeline,
			    c->max_timeline_host);
			if (lower == NULL)
				lower = h;
			continue;
		}
		if (top == NULL)
			top = h;
		ntop++;
	}
	if (top == NULL && lower != NULL) {
		topology_host_name(lower, name, sizeof name);
		topology_set_why(c->why_no_master, sizeof c->why_no_master,
		    "no live primary: %s is primary on timeline %u < %u seen "
		    "on %s", name, (unsigned)lower->timeline,
		    (unsigned)c->max_timeline, c->max_timeline_host);
		return (NULL);
	}
	if (top == NULL) {
		topology_explain_no_candidate(c);
		return (NULL);
	}

	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		if (!TOPO_IS_CANDIDATE(h))
			continue;
		if (ntop > 1)
			h->why = TOPO_WHY_SPLIT_BRAIN;
		else
			h->role = TOPO_ROLE_MASTER;
	}
	if (ntop > 1) {
		topology_explain_split(c, top->timeline);
		return (NULL);
	}
	c->why_no_master[0] = '\0';
	return (top);
}

/*
 * A replica below the highest timeline seen still follows a primary that
 * a promotion left behind: its data stops where the old timeline ended,
 * so it gets no role until it reaches the new timeline.
 */
static void
topology_mark_stale(struct topo_cluster *c)
{
	size_t	i;

	for (i = 0; i < c->nhosts; i++) {
		struct topo_host *h = c->hosts[i];

		if (h->role != TOPO_ROLE_REPLICA ||
		    h->timeline >= c->max_timeline)
			continue;
		h->role = TOPO_ROLE_NONE;
		h->why = TOPO_WHY_STALE_TIMELINE;
		topology_set_why(h->why_text, sizeof h->why_text,
		    "stale replica: timeline %u < %u seen on %s",
		    (unsigned)h->timeline, (unsigned)c->max_timeline,
		    c->max_timeline_host);
	}
}

/* why_no_master when no live host claims to be primary. */
static void
topology_explain_no_candidate(struct topo_cluster *c)
{
	size_t	i, dead = 0, unprobed = 0, foreign = 0, replicas = 0;

	for (i = 0; i < c->nhosts; i++) {
		const struct topo_host *h = c->hosts[i];

		if (h->why == TOPO_WHY_DEAD)
			dead++;
		else if (h->why == TOPO_WHY_UNPROBED)
			unprobed++;
		else if (h->why == TOPO_WHY_FOREIGN)
			foreign++;
		else if (h->role == TOPO_ROLE_REPLICA)
			replicas++;
	}
	if (c->nhosts == 0)
		snprintf(c->why_no_master, sizeof c->why_no_master,
		    "no live primary: no hosts configured");
	else if (dead == c->nhosts)
		snprintf(c->why_no_master, sizeof c->why_no_master,
		    "no live primary: all %zu hosts dead", c->nhosts);
	else
		snprintf(c->why_no_master, sizeof c->why_no_master,
		    "no live primary (%zu replicas, %zu dead, %zu not probed,"
		    " %zu foreign)", replicas, dead, unprobed, foreign);
}

/*
 * why_no_master for a split brain: "split brain: a and b both primary on
 * timeline 2", or "a, b and c all primary ..." for more.
 */
static void
topology_explain_split(struct topo_cluster *c, uint32_t tl)
{
	char	 name[TOPO_HOST_NAMELEN], *p = c->why_no_master;
	size_t	 i, left = sizeof c->why_no_master, n = 0, total = 0;
	int	 w;

	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i]->why == TOPO_WHY_SPLIT_BRAIN)
			total++;

	w = snprintf(p, left, "split brain: ");
	for (i = 0; i < c->nhosts && w >= 0 && (size_t)w < left; i++) {
		if (c->hosts[i]->why != TOPO_WHY_SPLIT_BRAIN)
			continue;
		p += w;
		left -= (size_t)w;
		topology_host_name(c->hosts[i], name, sizeof name);
		n++;
		w = snprintf(p, left, "%s%s", n == 1 ? "" :
		    n == total ? " and " : ", ", name);
	}
	if (w >= 0 && (size_t)w < left) {
		p += w;
		left -= (size_t)w;
		snprintf(p, left, " %s primary on timeline %u",
		    total == 2 ? "both" : "all", (unsigned)tl);
	}
}

/*
 * Lags of every host against master m (NULL: none).  Byte lag is the
 * primary's current LSN minus the replayed LSN.  Time lag is 0 once the
 * replica has replayed everything the primary has written: an idle
 * primary writes nothing, so the replay timestamp stops moving, and
 * now() - replay timestamp would grow without the replica being behind at
 * all (pg-status reports that growing lag; we do not).  Behind the
 * primary, the time lag is the replica's own now() minus the time of the
 * last replayed transaction, or -1 when the replica has replayed none.
 */
static void
topology_set_lags(struct topo_cluster *c, const struct topo_host *m)
{
	struct topo_host	*h;
	size_t			 i;

	if (m == NULL)
		return;		/* topology_classify() left lags unknown */
	c->has_last_master_lsn = true;
	c->last_master_lsn = m->current_lsn;
	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		h->seen_lag_ms = -1;
		h->seen_lag_at_ms = 0;
		if (h == m) {
			h->lag_known = true;
			h->lag_bytes = 0;
			h->lag_ms = 0;
			continue;
		}
		if (h->role != TOPO_ROLE_REPLICA)
			continue;
		h->lag_known = true;
		h->lag_bytes = pgbc_lsn_diff(m->current_lsn, h->replay_lsn);
		if (h->replay_lsn >= m->current_lsn)
			h->lag_ms = 0;
		else if (h->has_replay_ts) {
			h->lag_ms = h->host_now_ms - h->replay_ts_ms;
			if (h->lag_ms < 0)
				h->lag_ms = 0;	/* clock skew within one host */
		} else
			h->lag_ms = -1;
		/* As of the older of the two probes it compares. */
		h->seen_lag_ms = h->lag_ms;
		h->seen_lag_at_ms = h->last_ok_ms < m->last_ok_ms ?
		    h->last_ok_ms : m->last_ok_ms;
	}
}

/*
 * The outage rule: while no primary is known, nothing new can be replayed
 * from it, so a replica's lag is judged against the last primary seen.
 * Bytes: that primary's last current_lsn minus the replica's replay_lsn
 * now.  Time: the replica's time lag at the last update that had a
 * primary, plus the time from that measurement to the replica's last good
 * probe; it only grows, so a replica qualifies for max_lag_ms only while
 * it qualified then and max_lag_ms minus its lag then has not passed
 * since.  Unknown (never qualifies) when no primary was seen since the
 * daemon started, or the replica was no replica then.
 */
static void
topology_set_outage_lags(struct topo_cluster *c)
{
	size_t	i;

	if (!c->has_last_master_lsn)
		return;
	for (i = 0; i < c->nhosts; i++) {
		struct topo_host *h = c->hosts[i];

		if (h->role != TOPO_ROLE_REPLICA)
			continue;
		h->outage_lag_known = true;
		h->outage_lag_bytes = pgbc_lsn_diff(c->last_master_lsn,
		    h->replay_lsn);
		h->outage_lag_ms = -1;
		if (h->seen_lag_at_ms > 0 && h->seen_lag_ms >= 0 &&
		    h->last_ok_ms >= h->seen_lag_at_ms)
			h->outage_lag_ms = h->seen_lag_ms +
			    (h->last_ok_ms - h->seen_lag_at_ms);
	}
}

bool
topology_update(struct topo_cluster *c)
{
	struct topo_host	*m;
	size_t			 i;
	bool			 changed;

	topology_learn_system_id(c);
	topology_remember_system(c);
	for (i = 0; i < c->nhosts; i++)
		topology_classify(c, c->hosts[i]);
	topology_remember_timeline(c);
	topology_mark_stale(c);
	m = topology_elect(c);
	topology_set_lags(c, m);
	if (m == NULL)
		topology_set_outage_lags(c);

	c->master = -1;
	for (i = 0; i < c->nhosts; i++)
		if (c->hosts[i] == m)
			c->master = (int)i;

	/* Identity is the host, not its index: a reload may reorder. */
	changed = (m != c->master_host);
	c->master_host = m;
	if (changed)
		c->generation++;
	return (changed);
}

const struct topo_host *
topology_master(const struct topo_cluster *c)
{
	if (c->master < 0 || (size_t)c->master >= c->nhosts)
		return (NULL);
	return (c->hosts[c->master]);
}

/* True for the roles answered by a replica when one qualifies. */
static bool
topology_want_is_replica(enum topo_want want)
{
	return (want != TOPO_WANT_MASTER);
}

/*
 * The limits a query applies: its own options, else the config defaults
 * for the sync_by_* roles that use that kind of lag.  A negative limit
 * (option or config) means none.
 */
static void
topology_get_limits(const struct topo_query *q, const struct topo_limits *lim,
    struct topo_limit_set *ls)
{
	bool	uses_time, uses_bytes;

	uses_time = (q->want == TOPO_WANT_SYNC_BY_TIME ||
	    q->want == TOPO_WANT_SYNC_BY_TIME_OR_BYTES ||
	    q->want == TOPO_WANT_SYNC_BY_TIME_AND_BYTES);
	uses_bytes = (q->want == TOPO_WANT_SYNC_BY_BYTES ||
	    q->want == TOPO_WANT_SYNC_BY_TIME_OR_BYTES ||
	    q->want == TOPO_WANT_SYNC_BY_TIME_AND_BYTES);

	ls->max_ms = -1;
	ls->max_bytes = -1;
	if (q->max_lag_ms >= 0)
		ls->max_ms = q->max_lag_ms;
	else if (uses_time && lim != NULL && lim->sync_max_lag_ms >= 0)
		ls->max_ms = lim->sync_max_lag_ms;
	if (q->max_lag_bytes >= 0)
		ls->max_bytes = q->max_lag_bytes;
	else if (uses_bytes && lim != NULL && lim->sync_max_lag_bytes >= 0)
		ls->max_bytes = lim->sync_max_lag_bytes;

	/* sync_by_time ignores a bytes limit and sync_by_bytes a time one. */
	if (q->want == TOPO_WANT_SYNC_BY_TIME)
		ls->max_bytes = -1;
	if (q->want == TOPO_WANT_SYNC_BY_BYTES)
		ls->max_ms = -1;
}

/*
 * h's lag against the primary, else (no primary known) against the last
 * one seen; false when neither is known.  *ms is -1 when the time lag is
 * unknown.
 */
static bool
topology_lag(const struct topo_host *h, uint64_t *bytes, int64_t *ms)
{
	if (h->lag_known) {
		*bytes = h->lag_bytes;
		*ms = h->lag_ms;
		return (true);
	}
	if (h->outage_lag_known) {
		*bytes = h->outage_lag_bytes;
		*ms = h->outage_lag_ms;
		return (true);
	}
	*bytes = 0;
	*ms = -1;
	return (false);
}

/* Time lag within max (>= 0); an unknown lag never passes. */
static bool
topology_check_time(const struct topo_host *h, int64_t max)
{
	uint64_t	bytes;
	int64_t		ms;

	return (topology_lag(h, &bytes, &ms) && ms >= 0 && ms <= max);
}

/* Byte lag within max (>= 0); an unknown lag never passes. */
static bool
topology_check_bytes(const struct topo_host *h, int64_t max)
{
	uint64_t	bytes;
	int64_t		ms;

	return (topology_lag(h, &bytes, &ms) && bytes <= (uint64_t)max);
}

/*
 * Whether replica h answers q under limits ls.  On false, why (when not
 * NULL: nothing is formatted otherwise) names the first criterion h fails,
 * with h's name.  For the _or_ role, a limit that
 * is not set does not make the check pass by itself: the replica must
 * pass one of the limits that are set (or there are none).
 */
static bool
topology_check_replica(const struct topo_host *h, const struct topo_query *q,
    const struct topo_limit_set *ls, char *why, size_t len)
{
	char	 name[TOPO_HOST_NAMELEN], lsn[PGBC_LSN_STRLEN], want_lsn[PGBC_LSN_STRLEN];
	char	 tlag[32], blag[32];
	bool	 has_t = ls->max_ms >= 0, has_b = ls->max_bytes >= 0;
	bool	 ok_t, ok_b, ok, known;
	uint64_t lb;
	int64_t	 lm;

	if (q->has_min_lsn && h->replay_lsn < q->min_lsn) {
		if (why == NULL)
			return (false);
		topology_host_name(h, name, sizeof name);
		pgbc_lsn_format(h->replay_lsn, lsn);
		pgbc_lsn_format(q->min_lsn, want_lsn);
		topology_set_why(why, len, "%s replayed %s, before min_lsn %s",
		    name, lsn, want_lsn);
		return (false);
	}

	ok_t = !has_t || topology_check_time(h, ls->max_ms);
	ok_b = !has_b || topology_check_bytes(h, ls->max_bytes);
	if (q->want == TOPO_WANT_SYNC_BY_TIME_OR_BYTES && has_t && has_b)
		ok = ok_t || ok_b;
	else
		ok = ok_t && ok_b;
	if (ok || why == NULL)
		return (ok);

	topology_host_name(h, name, sizeof name);
	known = topology_lag(h, &lb, &lm);
	if (known && lm >= 0)
		snprintf(tlag, sizeof tlag, "%lld ms", (long long)lm);
	else
		snprintf(tlag, sizeof tlag, "unknown");
	if (known)
		snprintf(blag, sizeof blag, "%llu bytes",
		    (unsigned long long)lb);
	else
		snprintf(blag, sizeof blag, "unknown");

	if (!ok_t && !ok_b)
		topology_set_why(why, len, "%s time lag %s over %lld ms and "
		    "byte lag %s over %lld bytes", name, tlag,
		    (long long)ls->max_ms, blag, (long long)ls->max_bytes);
	else if (!ok_t)
		topology_set_why(why, len, "%s time lag %s over %lld ms",
		    name, tlag, (long long)ls->max_ms);
	else
		topology_set_why(why, len, "%s byte lag %s over %lld bytes",
		    name, blag, (long long)ls->max_bytes);
	return (false);
}

/*
 * Replica roles pick among the qualifying replicas round robin: the k-th
 * qualifying replica in host order, k = c->rr++ modulo their number, so
 * each gets an equal share over many calls.  When none qualifies:
 * fallback=none gives no host, otherwise the master (which is never
 * behind itself, so it satisfies every lag limit and min_lsn).  "any"
 * always falls back to the master: it means any live host, replicas
 * first, so fallback=none is ignored for it.
 */
const struct topo_host *
topology_resolve(struct topo_cluster *c, const struct topo_query *q,
    const struct topo_limits *lim, char *why_buf, size_t why_len)
{
	const struct topo_host	*m = topology_master(c), *h;
	struct topo_limit_set	 ls;
	char			 name[TOPO_HOST_NAMELEN];
	char			 first[200] = "no live replica";
	size_t			 i, n = 0, k;

	if (!topology_want_is_replica(q->want)) {
		if (m == NULL) {
			topology_set_why(why_buf, why_len, "no primary: %s",
			    c->why_no_master);
			return (NULL);
		}
		if (why_buf != NULL && why_len > 0) {
			topology_host_name(m, name, sizeof name);
			topology_set_why(why_buf, why_len, "%s is primary on "
			    "timeline %u", name, (unsigned)m->timeline);
		}
		return (m);
	}

	topology_get_limits(q, lim, &ls);
	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		if (h->role == TOPO_ROLE_REPLICA &&
		    topology_check_replica(h, q, &ls, NULL, 0))
			n++;
	}

	if (n > 0) {
		k = c->rr++ % n;
		for (i = 0; i < c->nhosts; i++) {
			h = c->hosts[i];
			if (h->role != TOPO_ROLE_REPLICA ||
			    !topology_check_replica(h, q, &ls, NULL, 0))
				continue;
			if (k-- == 0) {
				if (why_buf == NULL || why_len == 0)
					return (h);
				topology_host_name(h, name, sizeof name);
				topology_set_why(why_buf, why_len,
				    "%s is one of %zu qualifying replicas",
				    name, n);
				return (h);
			}
		}
	}

	/* None qualifies: the first replica says why (only now, so that a
	 * successful answer formats no reasons). */
	for (i = 0; i < c->nhosts; i++) {
		h = c->hosts[i];
		if (h->role == TOPO_ROLE_REPLICA) {
			(void)topology_check_replica(h, q, &ls, first,
			    sizeof first);
			break;
		}
	}

	if (q->fallback == TOPO_FALLBACK_NONE && q->want != TOPO_WANT_ANY) {
		topology_set_why(why_buf, why_len, "no replica qualifies: %s",
		    first);
		return (NULL);
	}
	if (m == NULL) {
		topology_set_why(why_buf, why_len, "no replica qualifies (%s) "
		    "and no primary", first);
		return (NULL);
	}
	topology_host_name(m, name, sizeof name);
	topology_set_why(why_buf, why_len, "no replica qualifies (%s): "
	    "primary %s", first, name);
	return (m);
}

bool
topology_want_parse(const char *name, enum topo_want *out)
{
	enum pgbc_want	want;

	if (!pgbc_want_parse(name, &want))
		return (false);
	*out = (enum topo_want)want;
	return (true);
}

const char *
topology_want_name(enum topo_want want)
{
	return (pgbc_want_name((enum pgbc_want)want));
}

const char *
topology_role_name(enum topo_role role)
{
	return (pgbc_role_name((enum pgbc_role)role));
}

const char *
topology_why_text(enum topo_why why)
{
	switch (why) {
	case TOPO_WHY_OK:
		return ("ok");
	case TOPO_WHY_UNPROBED:
		return ("not probed yet");
	case TOPO_WHY_DEAD:
		return ("dead");
	case TOPO_WHY_FOREIGN:
		return ("foreign system identifier");
	case TOPO_WHY_LOWER_TIMELINE:
		return ("lower timeline");
	case TOPO_WHY_SPLIT_BRAIN:
		return ("split brain");
	case TOPO_WHY_STALE_TIMELINE:
		return ("stale replica (lower timeline)");
	}
	return ("unknown");
}
