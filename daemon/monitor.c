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
#include "monitor_int.h"
#include "pqerror.h"


/*
 * One probe: role, WAL positions, replay time, timeline, system
 * identifier.  The CTE reads pg_is_in_recovery() once, so a promotion
 * between two calls cannot make the row contradict itself.  A primary's
 * timeline comes from the WAL file it is writing, which changes the moment
 * a promotion ends (pg_control_checkpoint() lags until the next
 * checkpoint).  Needs pg_monitor (or superuser) for pg_stat_wal_receiver
 * and pg_control_*().
 */
const char monitor_probe_sql[] =
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


static void	monitor_connect_start(struct mon_host *);
static void	monitor_probe_send(struct mon_host *);

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

void
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
void
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

	msg = pqerror_strip_severity(msg);
	n = strcspn(msg, "\n");
	if (n >= sizeof(h->topo.error))
		n = sizeof(h->topo.error) - 1;
	memcpy(h->topo.error, msg, n);
	h->topo.error[n] = '\0';
}

/* The probe of h is over, answered or not: it is no longer late. */
void
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

void
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

int
monitor_jitter(int ms)
{
	/* +-20%, so that many sidecars do not retry in step. */
	int spread = ms / 5;

	if (spread <= 0)
		return ms;
	return ms - spread + (int)arc4random_uniform((uint32_t)(2 * spread + 1));
}

void
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
 * a generation the file does not hold; its fsyncs follow on the syncer's
 * thread, so a slow disk never holds the announcement back.  The file is tiny and written
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
	if (cl->mon->syncer != NULL)
		state_syncer_kick(cl->mon->syncer);
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
void
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
void
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
PGconn *
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

void
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

	if (!PQsendQuery(h->conn, monitor_probe_sql)) {
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

void
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

void
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
void
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
