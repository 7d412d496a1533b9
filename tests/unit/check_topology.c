/*
 * check_topology.c - unit tests of daemon/topology.c: roles, lags, the
 * master election, the generation, and role resolution.
 *
 * Every test starts from the fixture: NHOSTS hosts, 127.0.0.1:5432..,
 * none of them probed, in one cluster that learns its system identifier.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"
#include "../check_main.h"

#define NHOSTS	5
#define SYSID	UINT64_C(7000000000000000001)
#define OTHERID	UINT64_C(7000000000000000002)
#define THIRDID	UINT64_C(7000000000000000003)
#define NOW_MS	INT64_C(1700000000000)

static struct topo_host		 hosts[NHOSTS];
static struct topo_host		*ptrs[NHOSTS];
static struct topo_cluster	 cl;
static struct topo_limits	 lim;
static char			 why[256];

static void	setup(void);
static void	use_hosts(size_t n);
static void	set_primary(int i, uint32_t tl, uint64_t lsn);
static void	set_replica(int i, uint64_t replay, int64_t lag_ms);
static void	set_dead(int i);
static void	standard_cluster(void);
static const struct topo_host *resolve(enum topo_want want);
static const struct topo_host *resolve_q(const struct topo_query *q);
static Suite	*topology_suite(void);

static void
setup(void)
{
	size_t	i;

	memset(hosts, 0, sizeof hosts);
	for (i = 0; i < NHOSTS; i++) {
		hosts[i].host = "127.0.0.1";
		hosts[i].port = 5432 + (int)i;
		hosts[i].lag_ms = -1;
		ptrs[i] = &hosts[i];
	}
	topology_cluster_init(&cl, "main", ptrs, NHOSTS, 0);
	lim.sync_max_lag_ms = 1000;
	lim.sync_max_lag_bytes = 1000000;
	why[0] = '\0';
}

/* Shrinks the cluster to its first n hosts. */
static void
use_hosts(size_t n)
{
	topology_cluster_init(&cl, "main", ptrs, n, 0);
}

/* Host i answers as a primary of SYSID on timeline tl, writing at lsn. */
static void
set_primary(int i, uint32_t tl, uint64_t lsn)
{
	struct topo_host	*h = &hosts[i];

	h->alive = true;
	h->probed = true;
	h->in_recovery = false;
	h->system_id = SYSID;
	h->timeline = tl;
	h->current_lsn = lsn;
	h->receive_lsn = 0;
	h->replay_lsn = 0;
	h->has_replay_ts = false;
	h->host_now_ms = NOW_MS;
	h->last_ok_ms = 1;
	h->dead_since_ms = 0;
	h->fails = 0;
}

/*
 * Host i answers as a replica of SYSID that replayed up to replay, its
 * last replayed transaction lag_ms before its now() (no timestamp when
 * lag_ms < 0).
 */
static void
set_replica(int i, uint64_t replay, int64_t lag_ms)
{
	struct topo_host	*h = &hosts[i];

	h->alive = true;
	h->probed = true;
	h->in_recovery = true;
	h->system_id = SYSID;
	h->timeline = 1;
	h->current_lsn = 0;
	h->receive_lsn = replay;
	h->replay_lsn = replay;
	h->has_replay_ts = lag_ms >= 0;
	h->host_now_ms = NOW_MS;
	h->replay_ts_ms = lag_ms >= 0 ? NOW_MS - lag_ms : 0;
	h->last_ok_ms = 1;
	h->dead_since_ms = 0;
	h->fails = 0;
}

/* Host i was probed once and has died since. */
static void
set_dead(int i)
{
	hosts[i].alive = false;
	hosts[i].last_ok_ms = 1;
	hosts[i].dead_since_ms = 2;
	hosts[i].fails = 3;
}

static const struct topo_host *
resolve_q(const struct topo_query *q)
{
	return (topology_resolve(&cl, q, &lim, why, sizeof why));
}

static const struct topo_host *
resolve(enum topo_want want)
{
	struct topo_query	q;

	topology_query_init(&q, want);
	return (resolve_q(&q));
}

/* Standard cluster: 0 primary at 1000, 1 and 2 replicas, 3 and 4 unused. */
static void
standard_cluster(void)
{
	use_hosts(3);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	set_replica(2, 1000, 0);
	topology_update(&cl);
}

/* ---------------------------------------------------------------- core */

START_TEST(test_lone_primary_is_master)
{
	use_hosts(1);
	set_primary(0, 1, 1000);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 0);
	ck_assert_ptr_eq(topology_master(&cl), &hosts[0]);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_MASTER);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_OK);
	ck_assert_str_eq(cl.why_no_master, "");
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_ptr_eq(resolve(TOPO_WANT_MASTER), &hosts[0]);
}
END_TEST

START_TEST(test_standbys_are_replicas)
{
	standard_cluster();
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_MASTER);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_OK);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_OK);
}
END_TEST

START_TEST(test_replica_without_primary_is_still_replica)
{
	use_hosts(2);
	set_replica(0, 1000, 0);
	set_replica(1, 1000, 0);
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_REPLICA);
	ck_assert_ptr_nonnull(strstr(cl.why_no_master, "no live primary"));
}
END_TEST

START_TEST(test_replica_lag_is_measured_against_master)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	set_replica(1, 3000, 250);
	topology_update(&cl);
	ck_assert(hosts[1].lag_known);
	ck_assert_uint_eq(hosts[1].lag_bytes, 2000);
	ck_assert_int_eq(hosts[1].lag_ms, 250);
}
END_TEST

START_TEST(test_idle_primary_means_zero_time_lag)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	/* The last transaction was an hour ago, but everything is replayed. */
	set_replica(1, 5000, 3600 * 1000);
	topology_update(&cl);
	ck_assert(hosts[1].lag_known);
	ck_assert_uint_eq(hosts[1].lag_bytes, 0);
	ck_assert_int_eq(hosts[1].lag_ms, 0);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME), &hosts[1]);
}
END_TEST

START_TEST(test_replica_ahead_of_last_probe_has_zero_lag)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	set_replica(1, 6000, 900);	/* probed after the primary */
	topology_update(&cl);
	ck_assert_uint_eq(hosts[1].lag_bytes, 0);
	ck_assert_int_eq(hosts[1].lag_ms, 0);
}
END_TEST

START_TEST(test_time_lag_unknown_without_replay_timestamp)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	set_replica(1, 3000, -1);
	topology_update(&cl);
	ck_assert(hosts[1].lag_known);
	ck_assert_uint_eq(hosts[1].lag_bytes, 2000);
	ck_assert_int_eq(hosts[1].lag_ms, -1);
}
END_TEST

START_TEST(test_replay_timestamp_in_the_future_clamps_to_zero)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	set_replica(1, 3000, 0);
	hosts[1].replay_ts_ms = NOW_MS + 40;
	topology_update(&cl);
	ck_assert_int_eq(hosts[1].lag_ms, 0);
	ck_assert_uint_eq(hosts[1].lag_bytes, 2000);
}
END_TEST

START_TEST(test_master_has_known_zero_lag)
{
	standard_cluster();
	ck_assert(hosts[0].lag_known);
	ck_assert_uint_eq(hosts[0].lag_bytes, 0);
	ck_assert_int_eq(hosts[0].lag_ms, 0);
}
END_TEST

START_TEST(test_lag_unknown_without_master)
{
	standard_cluster();
	ck_assert(hosts[1].lag_known);
	set_dead(0);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, -1);
	ck_assert(!hosts[1].lag_known);
	ck_assert_int_eq(hosts[1].lag_ms, -1);
	ck_assert_uint_eq(hosts[1].lag_bytes, 0);
	ck_assert(!hosts[0].lag_known);
	ck_assert_int_eq(hosts[0].lag_ms, -1);
}
END_TEST

START_TEST(test_resolve_master_and_primary_alias)
{
	enum topo_want	w;

	standard_cluster();
	ck_assert(topology_want_parse("primary", &w));
	ck_assert_ptr_eq(resolve(w), &hosts[0]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_MASTER), &hosts[0]);
	ck_assert_ptr_nonnull(strstr(why, "127.0.0.1:5432"));
}
END_TEST

START_TEST(test_host_names_bracket_ipv6_not_socket_dirs)
{
	char	buf[TOPO_HOST_NAMELEN];

	hosts[0].host = "::1";
	topology_host_name(&hosts[0], buf, sizeof buf);
	ck_assert_str_eq(buf, "[::1]:5432");
	hosts[0].host = "/run/pg:a";
	topology_host_name(&hosts[0], buf, sizeof buf);
	ck_assert_str_eq(buf, "/run/pg:a:5432");

	/* The reasons use the same names. */
	standard_cluster();
	hosts[0].host = "/run/pg:a";
	ck_assert_ptr_eq(resolve(TOPO_WANT_MASTER), &hosts[0]);
	ck_assert_ptr_nonnull(strstr(why, "/run/pg:a:5432"));
	ck_assert_ptr_null(strchr(why, '['));
}
END_TEST

START_TEST(test_resolve_master_ignores_replica_options)
{
	struct topo_query	q;

	standard_cluster();
	topology_query_init(&q, TOPO_WANT_MASTER);
	q.fallback = TOPO_FALLBACK_NONE;
	q.max_lag_ms = 0;
	q.has_min_lsn = true;
	q.min_lsn = 999999;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
}
END_TEST

START_TEST(test_replica_round_robin_is_fair)
{
	int	count[NHOSTS] = { 0 };
	int	i;
	const struct topo_host *h;

	use_hosts(4);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	set_replica(2, 900, 10);
	set_replica(3, 1000, 0);
	topology_update(&cl);
	for (i = 0; i < 300; i++) {
		h = resolve(TOPO_WANT_REPLICA);
		ck_assert_ptr_nonnull(h);
		ck_assert_int_eq(h->role, TOPO_ROLE_REPLICA);
		count[h - hosts]++;
	}
	ck_assert_int_eq(count[0], 0);
	ck_assert_int_eq(count[1], 100);
	ck_assert_int_eq(count[2], 100);
	ck_assert_int_eq(count[3], 100);
}
END_TEST

START_TEST(test_round_robin_only_over_qualifying_replicas)
{
	int	count[NHOSTS] = { 0 };
	int	i;
	const struct topo_host *h;

	use_hosts(4);
	set_primary(0, 1, 100000);
	set_replica(1, 100000, 0);
	set_replica(2, 1000, 5000);	/* too far behind */
	set_replica(3, 99000, 20);
	topology_update(&cl);
	for (i = 0; i < 200; i++) {
		h = resolve(TOPO_WANT_SYNC_BY_TIME);
		ck_assert_ptr_nonnull(h);
		count[h - hosts]++;
	}
	ck_assert_int_eq(count[0], 0);
	ck_assert_int_eq(count[1], 100);
	ck_assert_int_eq(count[2], 0);
	ck_assert_int_eq(count[3], 100);
}
END_TEST

START_TEST(test_replica_alias_standby)
{
	enum topo_want	w;

	use_hosts(2);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	topology_update(&cl);
	ck_assert(topology_want_parse("standby", &w));
	ck_assert_int_eq(w, TOPO_WANT_REPLICA);
	ck_assert_ptr_eq(resolve(w), &hosts[1]);
}
END_TEST

START_TEST(test_replica_falls_back_to_master)
{
	use_hosts(1);
	set_primary(0, 1, 1000);
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[0]);
	ck_assert_ptr_nonnull(strstr(why, "no live replica"));
}
END_TEST

START_TEST(test_fallback_master_gives_master)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 100000);
	set_replica(1, 1000, 5000);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.fallback = TOPO_FALLBACK_MASTER;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
}
END_TEST

START_TEST(test_fallback_none_gives_no_host_with_reason)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 100000);
	set_replica(1, 1000, 5000);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "no replica qualifies"));
	ck_assert_ptr_nonnull(strstr(why, "127.0.0.1:5433"));
	ck_assert_ptr_nonnull(strstr(why, "5000 ms"));
	ck_assert_ptr_nonnull(strstr(why, "1000 ms"));
	ck_assert_ptr_null(strchr(why, '\n'));

	/* with no replica at all */
	use_hosts(1);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "no live replica"));
}
END_TEST

START_TEST(test_fallback_reason_names_first_failing_criterion)
{
	struct topo_query	q;

	use_hosts(3);
	set_primary(0, 1, 100000);
	set_replica(1, 50000, 10);	/* fails min_lsn first */
	set_replica(2, 100000, 0);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.fallback = TOPO_FALLBACK_NONE;
	q.has_min_lsn = true;
	q.min_lsn = 200000;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "min_lsn"));
	ck_assert_ptr_nonnull(strstr(why, "127.0.0.1:5433"));
	ck_assert_ptr_nonnull(strstr(why, "0/30D40"));
}
END_TEST

START_TEST(test_sync_by_time_uses_config_default)
{
	use_hosts(3);
	set_primary(0, 1, 100000);
	set_replica(1, 1000, 1500);
	set_replica(2, 2000, 800);
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME), &hosts[2]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME), &hosts[2]);
	lim.sync_max_lag_ms = 2000;
	ck_assert_ptr_nonnull(resolve(TOPO_WANT_SYNC_BY_TIME));
	lim.sync_max_lag_ms = 100;
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME), &hosts[0]);
}
END_TEST

START_TEST(test_sync_by_time_option_overrides_default)
{
	struct topo_query	q;

	use_hosts(3);
	set_primary(0, 1, 100000);
	set_replica(1, 1000, 1500);
	set_replica(2, 2000, 800);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.max_lag_ms = 1600;	/* looser than the default */
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
	q.max_lag_ms = 500;	/* tighter */
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
}
END_TEST

START_TEST(test_sync_by_time_ignores_bytes_limit)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 10000000);
	set_replica(1, 0, 10);		/* 10 MB behind, 10 ms behind */
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.max_lag_bytes = 100;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

START_TEST(test_sync_by_bytes_uses_bytes_limit_only)
{
	struct topo_query	q;

	use_hosts(3);
	set_primary(0, 1, 3000000);
	set_replica(1, 1000000, 10);	/* 2 MB behind */
	set_replica(2, 2900000, 60000);	/* 100 kB, a minute behind */
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_BYTES), &hosts[2]);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_BYTES);
	q.max_lag_ms = 5;	/* ignored */
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
	q.max_lag_bytes = 50000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
	q.max_lag_bytes = 3000000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
}
END_TEST

START_TEST(test_sync_by_bytes_accepts_unknown_time_lag)
{
	use_hosts(2);
	set_primary(0, 1, 3000);
	set_replica(1, 2000, -1);
	topology_update(&cl);
	ck_assert_int_eq(hosts[1].lag_ms, -1);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_BYTES), &hosts[1]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME), &hosts[0]);
}
END_TEST

START_TEST(test_sync_by_time_or_bytes_needs_either)
{
	use_hosts(5);
	set_primary(0, 1, 3000000);
	set_replica(1, 1000000, 5000);	/* fails both */
	set_replica(2, 2999000, 5000);	/* bytes only */
	set_replica(3, 1000000, 10);	/* time only */
	set_replica(4, 3000000, 0);	/* both */
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES), &hosts[2]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES), &hosts[3]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES), &hosts[4]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES), &hosts[2]);
}
END_TEST

START_TEST(test_sync_by_time_and_bytes_needs_both)
{
	int	i;

	use_hosts(5);
	set_primary(0, 1, 3000000);
	set_replica(1, 1000000, 5000);	/* fails both */
	set_replica(2, 2999000, 5000);	/* bytes only */
	set_replica(3, 1000000, 10);	/* time only */
	set_replica(4, 3000000, 0);	/* both */
	topology_update(&cl);
	for (i = 0; i < 4; i++)
		ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_AND_BYTES),
		    &hosts[4]);
	set_replica(4, 0, 0);
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_TIME_AND_BYTES), &hosts[0]);
}
END_TEST

START_TEST(test_or_with_one_limit_unset_uses_the_other)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 3000000);
	set_replica(1, 1000000, 5000);	/* fails the time limit */
	topology_update(&cl);
	lim.sync_max_lag_bytes = -1;	/* no bytes default */
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME_OR_BYTES);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	lim.sync_max_lag_ms = 10000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

START_TEST(test_replica_options_must_all_pass)
{
	struct topo_query	q;

	use_hosts(3);
	set_primary(0, 1, 3000000);
	set_replica(1, 1000000, 10);	/* 2 MB, 10 ms */
	set_replica(2, 2999000, 5000);	/* 1 kB, 5 s */
	topology_update(&cl);

	/* plain replica has no default limit */
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[1]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);

	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.max_lag_ms = 100;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	q.max_lag_ms = -1;
	q.max_lag_bytes = 10000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
	q.max_lag_ms = 100;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
}
END_TEST

START_TEST(test_unknown_time_lag_fails_time_check)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 3000);
	set_replica(1, 2000, -1);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.max_lag_ms = INT64_MAX;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "unknown"));
}
END_TEST

/* No replica qualifies: the first replica says why, also when it is the
 * cluster's first host. */
START_TEST(test_reason_names_a_replica_at_host_index_0)
{
	struct topo_query	q;

	use_hosts(2);
	set_replica(0, 2000, 500);
	set_primary(1, 1, 3000);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.max_lag_ms = 100;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_msg(strstr(why, "127.0.0.1:5432 time lag 500 ms over 100 ms")
	    != NULL, "why: %s", why);
}
END_TEST

START_TEST(test_unknown_lag_fails_every_lag_check_without_master)
{
	struct topo_query	q;
	static const enum topo_want wants[] = {
		TOPO_WANT_SYNC_BY_TIME, TOPO_WANT_SYNC_BY_BYTES,
		TOPO_WANT_SYNC_BY_TIME_OR_BYTES,
		TOPO_WANT_SYNC_BY_TIME_AND_BYTES,
	};
	size_t	i;

	use_hosts(2);
	set_replica(1, 2000, 0);
	topology_update(&cl);
	for (i = 0; i < sizeof wants / sizeof wants[0]; i++) {
		topology_query_init(&q, wants[i]);
		ck_assert_ptr_null(resolve_q(&q));
		ck_assert_ptr_nonnull(strstr(why, "no primary"));
	}
	/* but a plain replica needs no lag */
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[1]);
}
END_TEST

START_TEST(test_min_lsn_picks_replica_that_replayed_it)
{
	struct topo_query	q;
	int			i;

	use_hosts(4);
	set_primary(0, 1, 10000);
	set_replica(1, 8000, 10);
	set_replica(2, 9000, 5);
	set_replica(3, 10000, 0);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_REPLICA);
	q.has_min_lsn = true;
	q.min_lsn = 9000;	/* exactly replayed by host 2 */
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[3]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
	q.min_lsn = 9001;
	for (i = 0; i < 3; i++)
		ck_assert_ptr_eq(resolve_q(&q), &hosts[3]);
}
END_TEST

START_TEST(test_min_lsn_not_replayed_gives_master)
{
	struct topo_query	q;

	standard_cluster();
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.has_min_lsn = true;
	q.min_lsn = 1001;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "min_lsn"));
}
END_TEST

START_TEST(test_any_prefers_replicas)
{
	int	count[NHOSTS] = { 0 };
	int	i;

	standard_cluster();
	for (i = 0; i < 10; i++)
		count[resolve(TOPO_WANT_ANY) - hosts]++;
	ck_assert_int_eq(count[0], 0);
	ck_assert_int_eq(count[1], 5);
	ck_assert_int_eq(count[2], 5);
}
END_TEST

START_TEST(test_any_falls_back_to_master_despite_fallback_none)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 1000);
	set_dead(1);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_ANY);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
	/* and when the replica only misses an option */
	set_replica(1, 500, 10);
	topology_update(&cl);
	q.has_min_lsn = true;
	q.min_lsn = 1000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[0]);
	q.has_min_lsn = false;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

START_TEST(test_any_without_any_live_host_gives_none)
{
	use_hosts(2);
	set_dead(0);
	set_dead(1);
	topology_update(&cl);
	ck_assert_ptr_null(resolve(TOPO_WANT_ANY));
	ck_assert_ptr_nonnull(strstr(why, "no primary"));
}
END_TEST

/* ------------------------------------------------------------ timeline */

START_TEST(test_higher_timeline_wins)
{
	use_hosts(3);
	set_primary(0, 1, 90000);	/* old primary back, un-rewound */
	set_primary(1, 2, 50000);	/* promoted */
	set_replica(2, 50000, 0);
	hosts[2].timeline = 2;		/* follows the promoted one */
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 1);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_MASTER);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_LOWER_TIMELINE);
	ck_assert_str_eq(cl.why_no_master, "");
	/* the loser is never handed out */
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_MASTER), &hosts[1]);
	/* lag against the winner, not the loser's larger LSN */
	ck_assert_uint_eq(hosts[2].lag_bytes, 0);
}
END_TEST

START_TEST(test_timeline_tie_is_split_brain)
{
	use_hosts(3);
	set_primary(0, 2, 1000);
	set_primary(1, 2, 2000);
	set_replica(2, 1000, 0);
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert_ptr_null(topology_master(&cl));
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_SPLIT_BRAIN);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_SPLIT_BRAIN);
	ck_assert_str_eq(cl.why_no_master, "split brain: 127.0.0.1:5432 and "
	    "127.0.0.1:5433 both primary on timeline 2");
	ck_assert_ptr_null(resolve(TOPO_WANT_MASTER));
	ck_assert_ptr_nonnull(strstr(why, "split brain"));
	ck_assert(!hosts[2].lag_known);
}
END_TEST

START_TEST(test_split_brain_below_a_higher_timeline_is_harmless)
{
	use_hosts(3);
	set_primary(0, 2, 1000);
	set_primary(1, 2, 1000);
	set_primary(2, 3, 1000);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 2);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_LOWER_TIMELINE);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_LOWER_TIMELINE);
}
END_TEST

START_TEST(test_three_way_split_brain_names_all)
{
	use_hosts(4);
	set_primary(0, 1, 1000);
	set_primary(1, 3, 1000);
	set_primary(2, 3, 1000);
	set_primary(3, 3, 1000);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_LOWER_TIMELINE);
	ck_assert_str_eq(cl.why_no_master, "split brain: 127.0.0.1:5433, "
	    "127.0.0.1:5434 and 127.0.0.1:5435 all primary on timeline 3");
}
END_TEST

START_TEST(test_split_brain_with_ipv6_hosts_uses_brackets)
{
	use_hosts(2);
	hosts[0].host = "::1";
	hosts[1].host = "db2";
	set_primary(0, 4, 1000);
	set_primary(1, 4, 1000);
	topology_update(&cl);
	ck_assert_str_eq(cl.why_no_master,
	    "split brain: [::1]:5432 and db2:5433 both primary on timeline 4");
}
END_TEST

/* Only the cluster's own hosts count and are named, whatever lies past
 * its last one. */
START_TEST(test_split_brain_names_only_the_clusters_hosts)
{
	use_hosts(2);
	set_primary(0, 2, 1000);
	set_primary(1, 2, 2000);
	set_primary(2, 2, 3000);
	hosts[2].why = TOPO_WHY_SPLIT_BRAIN;	/* not in the cluster */
	topology_update(&cl);
	ck_assert_str_eq(cl.why_no_master, "split brain: 127.0.0.1:5432 and "
	    "127.0.0.1:5433 both primary on timeline 2");
}
END_TEST

/* Names that fill the reason: its end is cut, inside its buffer. */
START_TEST(test_split_brain_reason_is_cut_to_its_buffer)
{
	char	a[81], b[83], want[300];

	memset(a, 'a', sizeof a - 1);
	a[sizeof a - 1] = '\0';
	memset(b, 'b', sizeof b - 1);
	b[sizeof b - 1] = '\0';
	use_hosts(2);
	hosts[0].host = a;
	hosts[1].host = b;
	set_primary(0, 2, 1000);
	set_primary(1, 2, 2000);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, -1);
	strcpy(want, "split brain: ");
	strcat(want, a);
	strcat(want, ":5432 and ");
	strcat(want, b);
	strcat(want, ":5433 both primary on timeline 2");
	ck_assert_uint_gt(strlen(want), sizeof cl.why_no_master - 1);
	want[sizeof cl.why_no_master - 1] = '\0';		/* cut there */
	ck_assert_uint_eq(strnlen(cl.why_no_master, sizeof cl.why_no_master),
	    sizeof cl.why_no_master - 1);
	ck_assert_str_eq(cl.why_no_master, want);
}
END_TEST

START_TEST(test_split_brain_resolved_when_one_side_dies)
{
	use_hosts(2);
	set_primary(0, 2, 1000);
	set_primary(1, 2, 1000);
	ck_assert(!topology_update(&cl));
	set_dead(0);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 1);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_DEAD);
}
END_TEST

/* ------------------------------------------------------------- foreign */

START_TEST(test_foreign_replica_never_gets_role)
{
	int	i;

	use_hosts(3);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	set_replica(2, 1000, 0);
	hosts[2].system_id = OTHERID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_FOREIGN);
	ck_assert(!hosts[2].lag_known);
	for (i = 0; i < 10; i++) {
		ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[1]);
		ck_assert_ptr_eq(resolve(TOPO_WANT_ANY), &hosts[1]);
	}
}
END_TEST

START_TEST(test_foreign_primary_causes_no_split_brain)
{
	use_hosts(4);
	set_primary(0, 2, 1000);
	set_replica(1, 1000, 0);
	set_primary(2, 2, 5000);	/* another cluster's primary */
	hosts[2].system_id = OTHERID;
	set_primary(3, 9, 5000);	/* and one on a higher timeline */
	hosts[3].system_id = THIRDID;
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 0);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_FOREIGN);
	ck_assert_int_eq(hosts[3].why, TOPO_WHY_FOREIGN);
	ck_assert_ptr_eq(resolve(TOPO_WANT_MASTER), &hosts[0]);
}
END_TEST

START_TEST(test_majority_sets_system_id)
{
	use_hosts(3);
	set_primary(0, 1, 1000);
	hosts[0].system_id = OTHERID;	/* first listed, but outvoted */
	set_replica(1, 1000, 0);
	set_replica(2, 1000, 0);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_FOREIGN);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_REPLICA);
}
END_TEST

START_TEST(test_configured_system_id_beats_majority)
{
	topology_cluster_init(&cl, "main", ptrs, 3, OTHERID);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	set_replica(2, 1000, 0);
	hosts[2].system_id = OTHERID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, OTHERID);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_FOREIGN);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_FOREIGN);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_REPLICA);
}
END_TEST

START_TEST(test_system_id_tie_keeps_the_one_in_use)
{
	use_hosts(3);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	/* host 0 dies; a wrongly configured host 2 comes up: a 1-1 tie */
	set_dead(0);
	set_primary(2, 1, 1000);
	hosts[2].system_id = OTHERID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_FOREIGN);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(cl.master, -1);
	/* also when the foreign host is listed first */
	ptrs[0] = &hosts[2];
	ptrs[2] = &hosts[0];
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_FOREIGN);
}
END_TEST

START_TEST(test_system_id_tie_without_one_in_use_takes_first_host)
{
	use_hosts(2);
	set_replica(0, 1000, 0);
	hosts[0].system_id = OTHERID;
	set_primary(1, 1, 1000);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, OTHERID);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_FOREIGN);
}
END_TEST

/* With none in use, a tie goes to the first listed host's identifier,
 * also against hosts that report none. */
START_TEST(test_system_id_tie_with_none_in_use_ignores_unknown_ids)
{
	use_hosts(2);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	hosts[1].system_id = 0;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
}
END_TEST

START_TEST(test_system_id_tie_with_old_one_gone_takes_first_host)
{
	use_hosts(3);
	set_primary(0, 1, 1000);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	set_dead(0);
	set_primary(1, 1, 1000);
	hosts[1].system_id = THIRDID;
	set_primary(2, 1, 1000);
	hosts[2].system_id = OTHERID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, THIRDID);
	ck_assert_int_eq(cl.master, 1);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_FOREIGN);
}
END_TEST

START_TEST(test_system_id_kept_when_all_dead)
{
	use_hosts(2);
	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	topology_update(&cl);
	set_dead(0);
	set_dead(1);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	/* a foreign host coming back alone still takes over by majority */
	set_primary(1, 1, 1000);
	hosts[1].system_id = OTHERID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, OTHERID);
}
END_TEST

START_TEST(test_unprobed_hosts_do_not_vote)
{
	use_hosts(3);
	set_replica(0, 1000, 0);
	hosts[0].system_id = OTHERID;
	hosts[0].probed = false;	/* alive, answer not in yet */
	set_primary(1, 1, 1000);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_UNPROBED);
	ck_assert_int_eq(cl.master, 1);
}
END_TEST

/* ---------------------------------------------------------------- dead */

START_TEST(test_all_dead_gives_no_master_and_no_host_for_any_role)
{
	static const enum topo_want wants[] = {
		TOPO_WANT_MASTER, TOPO_WANT_REPLICA, TOPO_WANT_SYNC_BY_TIME,
		TOPO_WANT_SYNC_BY_BYTES, TOPO_WANT_SYNC_BY_TIME_OR_BYTES,
		TOPO_WANT_SYNC_BY_TIME_AND_BYTES, TOPO_WANT_ANY,
	};
	static const enum topo_fallback fbs[] = {
		TOPO_FALLBACK_DEFAULT, TOPO_FALLBACK_MASTER, TOPO_FALLBACK_NONE,
	};
	struct topo_query	q;
	size_t			i, j;

	standard_cluster();
	ck_assert_int_eq(cl.master, 0);
	set_dead(0);
	set_dead(1);
	set_dead(2);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert_str_eq(cl.why_no_master, "no live primary: all 3 hosts dead");
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(hosts[i].role, TOPO_ROLE_NONE);
		ck_assert_int_eq(hosts[i].why, TOPO_WHY_DEAD);
	}
	for (i = 0; i < sizeof wants / sizeof wants[0]; i++) {
		for (j = 0; j < sizeof fbs / sizeof fbs[0]; j++) {
			topology_query_init(&q, wants[i]);
			q.fallback = fbs[j];
			why[0] = '\0';
			ck_assert_ptr_null(resolve_q(&q));
			ck_assert_msg(why[0] != '\0', "no reason for %zu/%zu",
			    i, j);
		}
	}
}
END_TEST

START_TEST(test_dead_host_loses_its_role)
{
	standard_cluster();
	set_dead(1);
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[1].why, TOPO_WHY_DEAD);
	ck_assert(!hosts[1].lag_known);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);
}
END_TEST

START_TEST(test_hosts_before_first_probe_are_unprobed)
{
	use_hosts(3);
	set_primary(1, 1, 1000);
	hosts[2].alive = true;		/* connected, no answer yet */
	topology_update(&cl);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_UNPROBED);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_UNPROBED);
	ck_assert_int_eq(cl.master, 1);
}
END_TEST

START_TEST(test_nothing_probed_yet_gives_no_master)
{
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert_uint_eq(cl.system_id, 0);
	ck_assert_uint_eq(cl.generation, 0);
	ck_assert_ptr_nonnull(strstr(cl.why_no_master, "no live primary"));
	ck_assert_ptr_null(resolve(TOPO_WANT_REPLICA));
}
END_TEST

/* ---------------------------------------------------------- generation */

START_TEST(test_generation_bumps_once_per_master_change)
{
	use_hosts(2);
	ck_assert_uint_eq(cl.generation, 0);
	ck_assert(!topology_update(&cl));	/* none -> none */
	ck_assert_uint_eq(cl.generation, 0);

	set_primary(0, 1, 1000);
	set_replica(1, 1000, 0);
	ck_assert(topology_update(&cl));	/* none -> 0 */
	ck_assert_uint_eq(cl.generation, 1);
	hosts[0].current_lsn = 2000;
	hosts[1].replay_lsn = 1500;
	ck_assert(!topology_update(&cl));	/* unchanged */
	ck_assert(!topology_update(&cl));
	ck_assert_uint_eq(cl.generation, 1);

	set_dead(0);
	ck_assert(topology_update(&cl));	/* 0 -> none */
	ck_assert_uint_eq(cl.generation, 2);
	ck_assert(!topology_update(&cl));
	ck_assert_uint_eq(cl.generation, 2);

	set_primary(1, 2, 1500);		/* promoted */
	ck_assert(topology_update(&cl));	/* none -> 1 */
	ck_assert_uint_eq(cl.generation, 3);
	ck_assert_int_eq(cl.master, 1);

	set_primary(0, 3, 1500);		/* 0 -> 1 directly */
	set_replica(1, 1500, 0);
	ck_assert(topology_update(&cl));
	ck_assert_uint_eq(cl.generation, 4);
	ck_assert_int_eq(cl.master, 0);
}
END_TEST

START_TEST(test_generation_follows_host_not_index)
{
	standard_cluster();
	ck_assert_uint_eq(cl.generation, 1);
	/* the same hosts, listed in another order (a reload) */
	ptrs[0] = &hosts[2];
	ptrs[2] = &hosts[0];
	ck_assert(!topology_update(&cl));
	ck_assert_uint_eq(cl.generation, 1);
	ck_assert_int_eq(cl.master, 2);
	ck_assert_ptr_eq(topology_master(&cl), &hosts[0]);
}
END_TEST


/* ----------------------------------------------------- timeline memory */

/*
 * Issue 9, item 1: 0 primary on 36; 0 stops, 1 promoted to 37; 1 stops
 * and 0 comes back un-rewound.  0 must never be master again.
 */
static void
diverged_old_primary_back(void)
{
	use_hosts(2);
	set_primary(0, 36, 1000);
	set_replica(1, 1000, 0);
	hosts[1].timeline = 36;
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 0);
	set_dead(0);
	set_primary(1, 37, 2000);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 1);
	ck_assert_uint_eq(cl.max_timeline, 37);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5433");
	set_dead(1);
	set_primary(0, 36, 1000);
	topology_update(&cl);
}

START_TEST(test_old_primary_below_remembered_timeline_is_never_master)
{
	diverged_old_primary_back();
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[0].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_LOWER_TIMELINE);
	ck_assert_str_eq(hosts[0].why_text, "lower timeline: timeline 36 < 37 "
	    "seen on 127.0.0.1:5433");
	ck_assert_str_eq(cl.why_no_master, "no live primary: 127.0.0.1:5432 "
	    "is primary on timeline 36 < 37 seen on 127.0.0.1:5433");
	ck_assert_ptr_null(resolve(TOPO_WANT_MASTER));
	ck_assert_ptr_nonnull(strstr(why, "timeline 36 < 37 seen on "
	    "127.0.0.1:5433"));
	ck_assert_ptr_null(resolve(TOPO_WANT_ANY));
	ck_assert_ptr_null(resolve(TOPO_WANT_REPLICA));
	/* still so after any number of updates */
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
}
END_TEST

START_TEST(test_restored_memory_denies_lower_timeline)
{
	use_hosts(2);
	topology_restore(&cl, 37, "db2:5432", SYSID);
	ck_assert_uint_eq(cl.system_id, SYSID);
	set_primary(0, 36, 1000);
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert_str_eq(hosts[0].why_text, "lower timeline: timeline 36 < 37 "
	    "seen on db2:5432");
	/* the newer primary back: it is master */
	set_primary(1, 37, 2000);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 1);
	ck_assert_str_eq(cl.max_timeline_host, "db2:5432");
}
END_TEST

/* Memory saved with an unknown system identifier belongs to whichever
 * the hosts then report: kept, not cleared, when it is learned. */
START_TEST(test_restored_memory_of_unknown_system_is_kept)
{
	use_hosts(2);
	topology_restore(&cl, 37, "db2:5432", 0);
	set_primary(0, 36, 1000);
	ck_assert(!topology_update(&cl));
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_uint_eq(cl.max_timeline, 37);
	ck_assert_str_eq(hosts[0].why_text, "lower timeline: timeline 36 < 37 "
	    "seen on db2:5432");
}
END_TEST

START_TEST(test_higher_timeline_raises_memory_and_names_its_host)
{
	use_hosts(2);
	topology_restore(&cl, 3, "db2:5432", SYSID);
	set_primary(1, 5, 1000);
	topology_update(&cl);
	ck_assert_uint_eq(cl.max_timeline, 5);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5433");
	ck_assert_uint_eq(cl.memory_system_id, SYSID);
	/* a lower one never lowers it */
	set_dead(1);
	set_primary(0, 4, 1000);
	topology_update(&cl);
	ck_assert_uint_eq(cl.max_timeline, 5);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5433");
}
END_TEST

START_TEST(test_replica_timeline_counts_in_memory)
{
	use_hosts(2);
	set_primary(0, 36, 1000);
	set_replica(1, 1000, 0);
	hosts[1].timeline = 37;		/* follows a primary promoted to 37 */
	topology_update(&cl);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_int_eq(hosts[0].why, TOPO_WHY_LOWER_TIMELINE);
	ck_assert_int_eq(hosts[1].role, TOPO_ROLE_REPLICA);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5433");
}
END_TEST

START_TEST(test_foreign_and_dead_hosts_do_not_raise_memory)
{
	use_hosts(3);
	set_primary(0, 2, 1000);
	set_primary(1, 9, 1000);
	hosts[1].system_id = OTHERID;
	set_primary(2, 2, 1000);
	hosts[2].system_id = THIRDID;
	topology_update(&cl);
	ck_assert_uint_eq(cl.max_timeline, 2);
	ck_assert_int_eq(cl.master, 0);
	/* a dead host's last timeline is no evidence either */
	set_replica(2, 1000, 0);
	hosts[2].timeline = 2;
	hosts[0].timeline = 50;
	set_dead(0);
	topology_update(&cl);
	ck_assert_uint_eq(cl.system_id, SYSID);
	ck_assert_uint_eq(cl.max_timeline, 2);
}
END_TEST

START_TEST(test_forget_lets_the_older_timeline_back)
{
	diverged_old_primary_back();
	ck_assert_int_eq(cl.master, -1);
	topology_forget(&cl);
	ck_assert_uint_eq(cl.max_timeline, 0);
	ck_assert_str_eq(cl.max_timeline_host, "");
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 0);
	ck_assert_uint_eq(cl.max_timeline, 36);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5432");
}
END_TEST

START_TEST(test_new_system_identifier_clears_memory)
{
	use_hosts(2);
	topology_restore(&cl, 37, "db2:5432", SYSID);
	set_primary(0, 1, 1000);	/* rebuilt with initdb */
	hosts[0].system_id = OTHERID;
	ck_assert(topology_update(&cl));
	ck_assert_uint_eq(cl.system_id, OTHERID);
	ck_assert_uint_eq(cl.memory_system_id, OTHERID);
	ck_assert_int_eq(cl.master, 0);
	ck_assert_uint_eq(cl.max_timeline, 1);
	ck_assert_str_eq(cl.max_timeline_host, "127.0.0.1:5432");
}
END_TEST

START_TEST(test_unknown_system_keeps_memory)
{
	use_hosts(2);
	topology_restore(&cl, 37, "db2:5432", SYSID);
	ck_assert(!topology_update(&cl));	/* nothing probed yet */
	ck_assert_uint_eq(cl.max_timeline, 37);
	ck_assert_uint_eq(cl.memory_system_id, SYSID);
}
END_TEST

START_TEST(test_stale_replica_gets_no_role_until_it_reaches_the_timeline)
{
	int	i;

	use_hosts(3);
	set_primary(1, 2, 5000);	/* promoted */
	set_replica(0, 5000, 0);
	hosts[0].timeline = 2;
	set_replica(2, 4000, 0);	/* still follows the dead timeline 1 */
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 1);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_NONE);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_STALE_TIMELINE);
	ck_assert_str_eq(hosts[2].why_text, "stale replica: timeline 1 < 2 "
	    "seen on 127.0.0.1:5433");
	ck_assert(!hosts[2].lag_known);
	for (i = 0; i < 6; i++) {
		ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[0]);
		ck_assert_ptr_eq(resolve(TOPO_WANT_ANY), &hosts[0]);
		ck_assert_ptr_eq(resolve(TOPO_WANT_SYNC_BY_BYTES), &hosts[0]);
	}
	/* the only replica stale: the master, or no host with fallback=none */
	set_dead(0);
	topology_update(&cl);
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[1]);
	{
		struct topo_query q;

		topology_query_init(&q, TOPO_WANT_REPLICA);
		q.fallback = TOPO_FALLBACK_NONE;
		ck_assert_ptr_null(resolve_q(&q));
	}
	/* re-pointed at the new primary, on its timeline: a replica again */
	hosts[2].timeline = 2;
	hosts[2].replay_lsn = 5000;
	topology_update(&cl);
	ck_assert_int_eq(hosts[2].role, TOPO_ROLE_REPLICA);
	ck_assert_str_eq(hosts[2].why_text, "");
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[2]);
}
END_TEST

START_TEST(test_stale_replica_stays_stale_without_primary)
{
	use_hosts(3);
	topology_restore(&cl, 2, "db2:5432", SYSID);
	set_replica(2, 4000, 0);	/* timeline 1 */
	topology_update(&cl);
	ck_assert_int_eq(hosts[2].why, TOPO_WHY_STALE_TIMELINE);
	ck_assert_ptr_null(resolve(TOPO_WANT_REPLICA));
}
END_TEST

/* ----------------------------------------------------------- outage */

/* 0 primary at 10000 (probed at t=1000), 1 caught up, 2 behind by 3000
 * bytes and 300 ms (both probed at t=1000); then 0 dies. */
static void
outage_cluster(void)
{
	use_hosts(3);
	set_primary(0, 1, 10000);
	hosts[0].last_ok_ms = 1000;
	set_replica(1, 10000, 50);
	hosts[1].last_ok_ms = 1000;
	set_replica(2, 7000, 300);
	hosts[2].last_ok_ms = 1000;
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(hosts[1].lag_ms, 0);
	ck_assert_int_eq(hosts[2].lag_ms, 300);
	set_dead(0);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
}

START_TEST(test_outage_bytes_lag_against_last_primary_position)
{
	struct topo_query	q;
	int			i;

	outage_cluster();
	/* STATUS lags stay those against a live primary: unknown */
	ck_assert(!hosts[1].lag_known);
	ck_assert(hosts[1].outage_lag_known);
	ck_assert_uint_eq(hosts[1].outage_lag_bytes, 0);
	ck_assert_uint_eq(hosts[2].outage_lag_bytes, 3000);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_BYTES);
	q.max_lag_bytes = 1000;
	for (i = 0; i < 4; i++)
		ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	q.max_lag_bytes = 3000;
	ck_assert_ptr_nonnull(resolve_q(&q));
	q.max_lag_bytes = 2999;
	for (i = 0; i < 4; i++)
		ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	/* the default limit (1000000) takes both */
	ck_assert_ptr_nonnull(resolve(TOPO_WANT_SYNC_BY_BYTES));
	ck_assert_ptr_nonnull(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES));
	set_dead(1);
	topology_update(&cl);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_ptr_nonnull(strstr(why, "byte lag 3000 bytes"));
	/* a replica that replays more meanwhile catches up */
	hosts[2].replay_lsn = 10000;
	topology_update(&cl);
	ck_assert_uint_eq(hosts[2].outage_lag_bytes, 0);
}
END_TEST

START_TEST(test_outage_time_lag_grows_from_last_measurement)
{
	struct topo_query	q;

	outage_cluster();
	/* probed again 400 ms after the measurement */
	hosts[1].last_ok_ms = 1400;
	hosts[2].last_ok_ms = 1400;
	topology_update(&cl);
	ck_assert_int_eq(hosts[1].outage_lag_ms, 400);
	ck_assert_int_eq(hosts[2].outage_lag_ms, 700);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.max_lag_ms = 500;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	q.max_lag_ms = 700;		/* exactly at the limit qualifies */
	ck_assert_ptr_nonnull(resolve_q(&q));
	ck_assert_ptr_nonnull(resolve_q(&q));
	/* max_lag_ms (default 1000) passed since: nobody qualifies */
	hosts[1].last_ok_ms = 2001;
	hosts[2].last_ok_ms = 2001;
	topology_update(&cl);
	ck_assert_ptr_null(resolve(TOPO_WANT_SYNC_BY_TIME));
	ck_assert_ptr_nonnull(strstr(why, "time lag 1001 ms over 1000 ms"));
	ck_assert_ptr_null(resolve(TOPO_WANT_SYNC_BY_TIME_AND_BYTES));
	/* bytes still qualify: nothing new was written that we know of */
	ck_assert_ptr_nonnull(resolve(TOPO_WANT_SYNC_BY_TIME_OR_BYTES));
	/* a plain replica needs no lag at all */
	ck_assert_ptr_nonnull(resolve(TOPO_WANT_REPLICA));
}
END_TEST

START_TEST(test_outage_lag_unknown_for_replica_not_measured)
{
	struct topo_query	q;

	use_hosts(3);
	set_primary(0, 1, 10000);
	set_replica(1, 10000, 0);
	set_dead(2);			/* no measurement for 2 */
	topology_update(&cl);
	set_dead(0);
	set_replica(2, 10000, 0);	/* back during the outage */
	hosts[1].why = TOPO_WHY_OK;
	topology_update(&cl);
	ck_assert(hosts[2].outage_lag_known);
	ck_assert_int_eq(hosts[2].outage_lag_ms, -1);
	ck_assert_uint_eq(hosts[2].outage_lag_bytes, 0);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME);
	q.max_lag_ms = 100000;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

START_TEST(test_outage_ends_when_a_primary_is_back)
{
	outage_cluster();
	set_primary(1, 2, 12000);
	hosts[2].timeline = 2;
	topology_update(&cl);
	ck_assert_int_eq(cl.master, 1);
	ck_assert(!hosts[2].outage_lag_known);
	ck_assert(hosts[2].lag_known);
	ck_assert_uint_eq(hosts[2].lag_bytes, 5000);
}
END_TEST

/* --------------------------------------------------------------- names */

START_TEST(test_want_parse_knows_every_role_and_alias)
{
	static const struct {
		const char	*name;
		enum topo_want	 want;
	} t[] = {
		{ "master", TOPO_WANT_MASTER },
		{ "primary", TOPO_WANT_MASTER },
		{ "replica", TOPO_WANT_REPLICA },
		{ "standby", TOPO_WANT_REPLICA },
		{ "sync_by_time", TOPO_WANT_SYNC_BY_TIME },
		{ "sync_by_bytes", TOPO_WANT_SYNC_BY_BYTES },
		{ "sync_by_time_or_bytes", TOPO_WANT_SYNC_BY_TIME_OR_BYTES },
		{ "sync_by_time_and_bytes", TOPO_WANT_SYNC_BY_TIME_AND_BYTES },
		{ "any", TOPO_WANT_ANY },
	};
	enum topo_want	w;
	size_t		i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		w = TOPO_WANT_ANY;
		if (t[i].want == TOPO_WANT_ANY)
			w = TOPO_WANT_MASTER;
		ck_assert_msg(topology_want_parse(t[i].name, &w), "%s",
		    t[i].name);
		ck_assert_int_eq(w, t[i].want);
	}
}
END_TEST

START_TEST(test_want_parse_refuses_unknown_names)
{
	static const char *const bad[] = {
		"", "Master", "MASTER", "Replica", "ANY", " master", "master ",
		"sync_by", "sync_by_time_or", "sync_by_lag", "slave", "masterx",
		"replicas",
	};
	enum topo_want	w = TOPO_WANT_SYNC_BY_BYTES;
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(!topology_want_parse(bad[i], &w), "\"%s\"",
		    bad[i]);
		ck_assert_int_eq(w, TOPO_WANT_SYNC_BY_BYTES);
	}
	ck_assert(!topology_want_parse(NULL, &w));
}
END_TEST

START_TEST(test_role_names_and_why_texts)
{
	ck_assert_str_eq(topology_role_name(TOPO_ROLE_MASTER), "master");
	ck_assert_str_eq(topology_role_name(TOPO_ROLE_REPLICA), "replica");
	ck_assert_str_eq(topology_role_name(TOPO_ROLE_NONE), "none");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_OK), "ok");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_UNPROBED),
	    "not probed yet");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_DEAD), "dead");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_FOREIGN),
	    "foreign system identifier");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_LOWER_TIMELINE),
	    "lower timeline");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_SPLIT_BRAIN),
	    "split brain");
	ck_assert_str_eq(topology_why_text(TOPO_WHY_STALE_TIMELINE),
	    "stale replica (lower timeline)");
}
END_TEST

START_TEST(test_query_init_sets_no_options)
{
	struct topo_query	q;

	memset(&q, 0x5a, sizeof q);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_BYTES);
	ck_assert_int_eq(q.want, TOPO_WANT_SYNC_BY_BYTES);
	ck_assert_int_eq(q.max_lag_ms, -1);
	ck_assert_int_eq(q.max_lag_bytes, -1);
	ck_assert(!q.has_min_lsn);
	ck_assert_int_eq(q.fallback, TOPO_FALLBACK_DEFAULT);
}
END_TEST

START_TEST(test_cluster_init_starts_without_master)
{
	struct topo_cluster	c;

	memset(&c, 0x5a, sizeof c);
	topology_cluster_init(&c, "main", ptrs, 3, SYSID);
	ck_assert_str_eq(c.name, "main");
	ck_assert_ptr_eq(c.hosts, ptrs);
	ck_assert_uint_eq(c.nhosts, 3);
	ck_assert_uint_eq(c.configured_system_id, SYSID);
	ck_assert_uint_eq(c.system_id, SYSID);
	ck_assert_int_eq(c.master, -1);
	ck_assert_ptr_null(topology_master(&c));
	ck_assert_uint_eq(c.generation, 0);
	ck_assert_uint_eq(c.rr, 0);
	ck_assert(c.why_no_master[0] != '\0');
}
END_TEST

/* -------------------------------------------------------------- limits */

START_TEST(test_lag_exactly_at_limit_qualifies)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 3000);
	set_replica(1, 2000, 1000);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME_AND_BYTES);
	q.max_lag_ms = 1000;
	q.max_lag_bytes = 1000;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	q.max_lag_ms = 999;
	ck_assert_ptr_null(resolve_q(&q));
	q.max_lag_ms = 1000;
	q.max_lag_bytes = 999;
	ck_assert_ptr_null(resolve_q(&q));
}
END_TEST

START_TEST(test_zero_limit_accepts_caught_up_replica)
{
	struct topo_query	q;

	standard_cluster();
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME_AND_BYTES);
	q.max_lag_ms = 0;
	q.max_lag_bytes = 0;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
	ck_assert_ptr_eq(resolve_q(&q), &hosts[2]);
}
END_TEST

START_TEST(test_huge_lags_compare_without_overflow)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, UINT64_MAX);
	set_replica(1, 0, INT64_C(1) << 50);
	topology_update(&cl);
	ck_assert_uint_eq(hosts[1].lag_bytes, UINT64_MAX);
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME_AND_BYTES);
	q.max_lag_ms = INT64_MAX;
	q.max_lag_bytes = INT64_MAX;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));	/* UINT64_MAX > INT64_MAX */
	q.want = TOPO_WANT_SYNC_BY_TIME;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

START_TEST(test_empty_cluster_has_no_host)
{
	use_hosts(0);
	ck_assert(!topology_update(&cl));
	ck_assert_int_eq(cl.master, -1);
	ck_assert(cl.why_no_master[0] != '\0');
	ck_assert_ptr_null(resolve(TOPO_WANT_MASTER));
	ck_assert_ptr_null(resolve(TOPO_WANT_ANY));
}
END_TEST

START_TEST(test_resolve_without_why_buffer)
{
	struct topo_query	q;

	standard_cluster();
	topology_query_init(&q, TOPO_WANT_REPLICA);
	ck_assert_ptr_eq(topology_resolve(&cl, &q, &lim, NULL, 0), &hosts[1]);
	q.fallback = TOPO_FALLBACK_NONE;
	q.has_min_lsn = true;
	q.min_lsn = 5000;
	ck_assert_ptr_null(topology_resolve(&cl, &q, &lim, NULL, 0));
	/* no config limits: sync roles have no default limit */
	q.has_min_lsn = false;
	q.want = TOPO_WANT_SYNC_BY_TIME;
	ck_assert_ptr_nonnull(topology_resolve(&cl, &q, NULL, NULL, 0));
}
END_TEST

START_TEST(test_why_is_truncated_to_its_buffer)
{
	char			 small[8];
	struct topo_query	 q;

	memset(small, 'x', sizeof small);
	use_hosts(2);
	set_primary(0, 2, 1000);
	set_primary(1, 2, 1000);
	topology_update(&cl);
	topology_query_init(&q, TOPO_WANT_MASTER);
	ck_assert_ptr_null(topology_resolve(&cl, &q, &lim, small, 5));
	ck_assert_uint_eq(strlen(small), 4);
	ck_assert_int_eq(small[5], 'x');
}
END_TEST

START_TEST(test_long_host_names_fit_the_split_brain_reason)
{
	static char	longname[400];

	memset(longname, 'a', sizeof longname - 1);
	use_hosts(3);
	hosts[0].host = longname;
	hosts[1].host = longname;
	hosts[2].host = longname;
	set_primary(0, 2, 1000);
	set_primary(1, 2, 1000);
	set_primary(2, 2, 1000);
	topology_update(&cl);
	ck_assert_int_eq(cl.master, -1);
	ck_assert_uint_eq(strlen(cl.why_no_master),
	    sizeof cl.why_no_master - 1);
	ck_assert(strncmp(cl.why_no_master, "split brain: aaa", 16) == 0);
}
END_TEST

START_TEST(test_round_robin_survives_cursor_wrap)
{
	const struct topo_host	*a, *b;

	standard_cluster();
	cl.rr = UINT_MAX;
	a = resolve(TOPO_WANT_REPLICA);
	b = resolve(TOPO_WANT_REPLICA);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(a->role, TOPO_ROLE_REPLICA);
	ck_assert_int_eq(b->role, TOPO_ROLE_REPLICA);
}
END_TEST

/* A replica at host index 0 (the primary elsewhere) is counted and
 * served like any other. */
START_TEST(test_replica_at_index_zero_is_counted)
{
	const struct topo_host	*h;
	int			 seen0 = 0, seen2 = 0, i;

	use_hosts(3);
	set_replica(0, 1000, 0);
	set_primary(1, 1, 1000);
	set_replica(2, 1000, 0);
	ck_assert(topology_update(&cl));
	ck_assert_int_eq(cl.master, 1);
	for (i = 0; i < 4; i++) {
		h = resolve(TOPO_WANT_REPLICA);
		ck_assert_ptr_nonnull(h);
		ck_assert_msg(strstr(why, "one of 2 qualifying") != NULL,
		    "why: %s", why);
		seen0 += h == &hosts[0];
		seen2 += h == &hosts[2];
	}
	ck_assert_int_eq(seen0, 2);
	ck_assert_int_eq(seen2, 2);

	/* The only replica, at index 0. */
	use_hosts(2);
	ck_assert(topology_update(&cl));
	ck_assert_ptr_eq(resolve(TOPO_WANT_REPLICA), &hosts[0]);
}
END_TEST

/* A replica whose clock is behind its own replay timestamp by 1 ms has a
 * lag of 0, not -1 (unknown); 1 ms ahead gives 1. */
START_TEST(test_clock_skew_of_one_ms_is_clamped)
{
	use_hosts(3);
	set_primary(0, 1, 2000);
	set_replica(1, 1000, 0);
	set_replica(2, 1000, 0);
	hosts[1].replay_ts_ms = hosts[1].host_now_ms + 1;
	hosts[2].replay_ts_ms = hosts[2].host_now_ms - 1;
	ck_assert(topology_update(&cl));
	ck_assert(hosts[1].lag_known);
	ck_assert_int_eq(hosts[1].lag_ms, 0);
	ck_assert_int_eq(hosts[2].lag_ms, 1);
	ck_assert_uint_eq(hosts[1].lag_bytes, 1000);
}
END_TEST

/* Re-initialising a cluster forgets its master. */
START_TEST(test_cluster_init_forgets_the_master)
{
	standard_cluster();
	ck_assert_ptr_eq(cl.master_host, &hosts[0]);
	use_hosts(3);
	ck_assert_ptr_null(cl.master_host);
	ck_assert_ptr_null(topology_master(&cl));
	ck_assert_int_eq(cl.master, -1);
}
END_TEST

/* An out-of-range master index gives no master. */
START_TEST(test_master_index_out_of_range_is_none)
{
	standard_cluster();
	cl.master = 3;
	ck_assert_ptr_null(topology_master(&cl));
	cl.master = -1;
	ck_assert_ptr_null(topology_master(&cl));
}
END_TEST

/* Without a primary the reason counts each kind of host. */
START_TEST(test_no_primary_reason_counts_each_kind)
{
	use_hosts(4);
	set_replica(0, 1000, 0);
	set_dead(1);
	hosts[2].alive = false;			/* never probed */
	set_replica(3, 1000, 0);
	hosts[3].system_id = SYSID + 1;		/* foreign */
	topology_update(&cl);
	ck_assert_str_eq(cl.why_no_master, "no live primary (1 replicas, "
	    "1 dead, 1 not probed, 1 foreign)");
}
END_TEST

/* The master's own lags are 0 whatever they were before. */
START_TEST(test_master_lags_are_reset_to_zero)
{
	use_hosts(2);
	set_primary(0, 1, 5000);
	set_replica(1, 1000, 0);
	hosts[0].lag_bytes = 777;
	hosts[0].lag_ms = 777;
	ck_assert(topology_update(&cl));
	ck_assert(hosts[0].lag_known);
	ck_assert_uint_eq(hosts[0].lag_bytes, 0);
	ck_assert_int_eq(hosts[0].lag_ms, 0);
	ck_assert_uint_eq(hosts[1].lag_bytes, 4000);
}
END_TEST

/* A limit of 0, from the query or from the configuration, is a limit:
 * one byte behind is too far. */
START_TEST(test_zero_byte_limit_refuses_one_byte_behind)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 1001);
	set_replica(1, 1000, 0);
	ck_assert(topology_update(&cl));
	topology_query_init(&q, TOPO_WANT_SYNC_BY_BYTES);
	q.max_lag_bytes = 0;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	q.max_lag_bytes = 1;
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);

	lim.sync_max_lag_bytes = 0;
	topology_query_init(&q, TOPO_WANT_SYNC_BY_BYTES);
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	set_replica(1, 1001, 0);
	ck_assert(!topology_update(&cl));	/* same master: no change */
	ck_assert_ptr_eq(resolve_q(&q), &hosts[1]);
}
END_TEST

/* A replica over both limits says both. */
START_TEST(test_reason_names_both_lags_when_both_are_over)
{
	struct topo_query	q;

	use_hosts(2);
	set_primary(0, 1, 9000);
	set_replica(1, 1000, 5000);
	ck_assert(topology_update(&cl));
	topology_query_init(&q, TOPO_WANT_SYNC_BY_TIME_OR_BYTES);
	q.max_lag_ms = 1000;
	q.max_lag_bytes = 1000;
	q.fallback = TOPO_FALLBACK_NONE;
	ck_assert_ptr_null(resolve_q(&q));
	ck_assert_msg(strstr(why, "time lag 5000 ms over 1000 ms and byte lag "
	    "8000 bytes over 1000 bytes") != NULL, "why: %s", why);
}
END_TEST

static Suite *
topology_suite(void)
{
	Suite	*s = suite_create("topology");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_lone_primary_is_master);
	tcase_add_test(tc, test_host_names_bracket_ipv6_not_socket_dirs);
	tcase_add_test(tc, test_standbys_are_replicas);
	tcase_add_test(tc, test_replica_without_primary_is_still_replica);
	tcase_add_test(tc, test_replica_lag_is_measured_against_master);
	tcase_add_test(tc, test_idle_primary_means_zero_time_lag);
	tcase_add_test(tc, test_replica_ahead_of_last_probe_has_zero_lag);
	tcase_add_test(tc, test_time_lag_unknown_without_replay_timestamp);
	tcase_add_test(tc, test_replay_timestamp_in_the_future_clamps_to_zero);
	tcase_add_test(tc, test_master_has_known_zero_lag);
	tcase_add_test(tc, test_lag_unknown_without_master);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolve");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_resolve_master_and_primary_alias);
	tcase_add_test(tc, test_resolve_master_ignores_replica_options);
	tcase_add_test(tc, test_replica_round_robin_is_fair);
	tcase_add_test(tc, test_round_robin_only_over_qualifying_replicas);
	tcase_add_test(tc, test_replica_alias_standby);
	tcase_add_test(tc, test_replica_falls_back_to_master);
	tcase_add_test(tc, test_fallback_master_gives_master);
	tcase_add_test(tc, test_fallback_none_gives_no_host_with_reason);
	tcase_add_test(tc, test_fallback_reason_names_first_failing_criterion);
	tcase_add_test(tc, test_sync_by_time_uses_config_default);
	tcase_add_test(tc, test_sync_by_time_option_overrides_default);
	tcase_add_test(tc, test_sync_by_time_ignores_bytes_limit);
	tcase_add_test(tc, test_sync_by_bytes_uses_bytes_limit_only);
	tcase_add_test(tc, test_sync_by_bytes_accepts_unknown_time_lag);
	tcase_add_test(tc, test_sync_by_time_or_bytes_needs_either);
	tcase_add_test(tc, test_sync_by_time_and_bytes_needs_both);
	tcase_add_test(tc, test_or_with_one_limit_unset_uses_the_other);
	tcase_add_test(tc, test_replica_options_must_all_pass);
	tcase_add_test(tc, test_unknown_time_lag_fails_time_check);
	tcase_add_test(tc, test_reason_names_a_replica_at_host_index_0);
	tcase_add_test(tc, test_unknown_lag_fails_every_lag_check_without_master);
	tcase_add_test(tc, test_min_lsn_picks_replica_that_replayed_it);
	tcase_add_test(tc, test_min_lsn_not_replayed_gives_master);
	tcase_add_test(tc, test_any_prefers_replicas);
	tcase_add_test(tc, test_any_falls_back_to_master_despite_fallback_none);
	tcase_add_test(tc, test_any_without_any_live_host_gives_none);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeline");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_higher_timeline_wins);
	tcase_add_test(tc, test_timeline_tie_is_split_brain);
	tcase_add_test(tc, test_split_brain_below_a_higher_timeline_is_harmless);
	tcase_add_test(tc, test_three_way_split_brain_names_all);
	tcase_add_test(tc, test_split_brain_with_ipv6_hosts_uses_brackets);
	tcase_add_test(tc, test_split_brain_resolved_when_one_side_dies);
	tcase_add_test(tc, test_split_brain_names_only_the_clusters_hosts);
	tcase_add_test(tc, test_split_brain_reason_is_cut_to_its_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_old_primary_below_remembered_timeline_is_never_master);
	tcase_add_test(tc, test_restored_memory_denies_lower_timeline);
	tcase_add_test(tc, test_restored_memory_of_unknown_system_is_kept);
	tcase_add_test(tc, test_higher_timeline_raises_memory_and_names_its_host);
	tcase_add_test(tc, test_replica_timeline_counts_in_memory);
	tcase_add_test(tc, test_foreign_and_dead_hosts_do_not_raise_memory);
	tcase_add_test(tc, test_forget_lets_the_older_timeline_back);
	tcase_add_test(tc, test_new_system_identifier_clears_memory);
	tcase_add_test(tc, test_unknown_system_keeps_memory);
	tcase_add_test(tc, test_stale_replica_gets_no_role_until_it_reaches_the_timeline);
	tcase_add_test(tc, test_stale_replica_stays_stale_without_primary);
	suite_add_tcase(s, tc);

	tc = tcase_create("outage");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_outage_bytes_lag_against_last_primary_position);
	tcase_add_test(tc, test_outage_time_lag_grows_from_last_measurement);
	tcase_add_test(tc, test_outage_lag_unknown_for_replica_not_measured);
	tcase_add_test(tc, test_outage_ends_when_a_primary_is_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("foreign");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_foreign_replica_never_gets_role);
	tcase_add_test(tc, test_foreign_primary_causes_no_split_brain);
	tcase_add_test(tc, test_majority_sets_system_id);
	tcase_add_test(tc, test_configured_system_id_beats_majority);
	tcase_add_test(tc, test_system_id_tie_keeps_the_one_in_use);
	tcase_add_test(tc, test_system_id_tie_without_one_in_use_takes_first_host);
	tcase_add_test(tc, test_system_id_tie_with_old_one_gone_takes_first_host);
	tcase_add_test(tc, test_system_id_tie_with_none_in_use_ignores_unknown_ids);
	tcase_add_test(tc, test_system_id_kept_when_all_dead);
	tcase_add_test(tc, test_unprobed_hosts_do_not_vote);
	suite_add_tcase(s, tc);

	tc = tcase_create("dead");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_all_dead_gives_no_master_and_no_host_for_any_role);
	tcase_add_test(tc, test_dead_host_loses_its_role);
	tcase_add_test(tc, test_hosts_before_first_probe_are_unprobed);
	tcase_add_test(tc, test_nothing_probed_yet_gives_no_master);
	suite_add_tcase(s, tc);

	tc = tcase_create("generation");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_generation_bumps_once_per_master_change);
	tcase_add_test(tc, test_generation_follows_host_not_index);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_want_parse_knows_every_role_and_alias);
	tcase_add_test(tc, test_want_parse_refuses_unknown_names);
	tcase_add_test(tc, test_role_names_and_why_texts);
	tcase_add_test(tc, test_query_init_sets_no_options);
	tcase_add_test(tc, test_cluster_init_starts_without_master);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_lag_exactly_at_limit_qualifies);
	tcase_add_test(tc, test_zero_limit_accepts_caught_up_replica);
	tcase_add_test(tc, test_huge_lags_compare_without_overflow);
	tcase_add_test(tc, test_empty_cluster_has_no_host);
	tcase_add_test(tc, test_resolve_without_why_buffer);
	tcase_add_test(tc, test_why_is_truncated_to_its_buffer);
	tcase_add_test(tc, test_long_host_names_fit_the_split_brain_reason);
	tcase_add_test(tc, test_round_robin_survives_cursor_wrap);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutants");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_replica_at_index_zero_is_counted);
	tcase_add_test(tc, test_clock_skew_of_one_ms_is_clamped);
	tcase_add_test(tc, test_cluster_init_forgets_the_master);
	tcase_add_test(tc, test_master_index_out_of_range_is_none);
	tcase_add_test(tc, test_no_primary_reason_counts_each_kind);
	tcase_add_test(tc, test_master_lags_are_reset_to_zero);
	tcase_add_test(tc, test_zero_byte_limit_refuses_one_byte_behind);
	tcase_add_test(tc, test_reason_names_both_lags_when_both_are_over);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(topology_suite()));
}
