/*
 * monitor_side.c - a host's second connection, never used for probes of
 * record: the periodic new-connection check, and the connection made with
 * a reloaded conninfo that replaces the first once it answers a probe
 * (make-before-break).  See struct mon_host.
 */

#include "monitor_int.h"
#include "pqerror.h"

/* --- the second connection: connection checks, make-before-break ------ */


/* Closes h's second connection, if any, and stops its timer. */
void
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
void
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
void
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
	    !PQsendQuery(h->side_conn, monitor_probe_sql) ||
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

void
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
		/* An error the server sent has libpq's "<severity>:  "
		 * shape, in any lc_messages; a fork failure, a refusal or
		 * a reset has not (pqerror.h). */
		msg = PQerrorMessage(h->side_conn);
		monitor_side_failed(h, pqerror_server_text(msg) == NULL, msg);
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

void
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
