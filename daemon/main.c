/*
 * main.c - pgbeacond: arguments, signals, the event loop, sd_notify.
 *
 * Runs in the foreground (systemd's Type=notify) and never forks.
 * READY=1 is sent once the socket listens and every host has answered or
 * failed its first probe, so units ordered after pgbeacon.service get
 * answers, not "no primary yet".  SIGHUP reloads the configuration;
 * SIGTERM and SIGINT leave the loop, and teardown removes the socket.
 */
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "monitor.h"
#include "proxy.h"
#include "server.h"

#include "pgbeacon.h"

/* The one version of the project (client-lib/pgbeacon.h). */
#define PGBEACOND_VERSION PGB_VERSION_STRING

/* The daemon's state.  Everything here is owned by main(). */
struct daemon {
	struct event_base	*base;
	struct evdns_base	*dns;		/* NULL if it could not be set up */
	struct config		*cfg;
	struct monitor		*mon;
	struct server		*srv;		/* NULL until listening */
	struct http		*http;		/* NULL: no http_listen */
	struct proxy		*proxy;		/* connection listeners */
	struct event		*sig_hup;
	struct event		*sig_term;
	struct event		*sig_int;
	struct event		*status_timer;	/* refreshes STATUS= every second */
	bool			 ready;		/* READY=1 was sent */
	size_t			 fds_base;	/* open before any client */
	uint64_t		 failed_digest;	/* of the last file that failed
						   to load, 0: none */
	char			 status[1024];	/* the last STATUS= sent */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pgbeacond [-htV] [-c FILE]\n"
	    "  -c FILE  configuration file (default " CONFIG_DEFAULT_PATH ")\n"
	    "  -t       check the configuration file and exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       print this help and exit\n"
	    "Runs in the foreground; SIGHUP reloads, SIGTERM stops.\n");
}

/*
 * Tells systemd one line about every cluster, with prefix ("READY=1\n",
 * ...) when there is one; without one, only when the line changed.
 */
static void
daemon_notify_status(struct daemon *d, const char *prefix)
{
	struct topo_cluster *const *cl;
	char buf[sizeof(d->status)];
	size_t n, i, j, len = 0;
	int w;

	cl = monitor_clusters(d->mon, &n);
	buf[0] = '\0';
	for (i = 0; i < n && len < sizeof(buf); i++) {
		const struct topo_host *m = topology_master(cl[i]);
		char label[TOPO_HOST_NAMELEN];
		int replicas = 0;

		for (j = 0; j < cl[i]->nhosts; j++)
			replicas += cl[i]->hosts[j]->role == TOPO_ROLE_REPLICA;
		if (m != NULL) {
			topology_host_name(m, label, sizeof(label));
			w = snprintf(buf + len, sizeof(buf) - len,
			    "%s%s: primary %s, %d/%zu replicas (gen %" PRIu64 ")",
			    i ? "; " : "", cl[i]->name, label, replicas,
			    cl[i]->nhosts - 1, cl[i]->generation);
		} else
			w = snprintf(buf + len, sizeof(buf) - len,
			    "%s%s: no primary, %d replicas (gen %" PRIu64 ")",
			    i ? "; " : "", cl[i]->name, replicas,
			    cl[i]->generation);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	if (prefix[0] == '\0' && strcmp(buf, d->status) == 0)
		return;
	memcpy(d->status, buf, sizeof(d->status));
	sd_notifyf(0, "%sSTATUS=%s", prefix, d->status);
}

/* Replica counts change without a change of primary: keep STATUS= true. */
static void
daemon_status_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	daemon_notify_status(arg, "");
}

static void
daemon_master_changed(void *arg, struct topo_cluster *c)
{
	struct daemon *d = arg;

	if (d->srv != NULL)
		server_broadcast(d->srv, c);
	if (d->ready)
		daemon_notify_status(d, "");
}

static void
daemon_topology_updated(void *arg, struct topo_cluster *c)
{
	struct daemon *d = arg;

	proxy_cluster_updated(d->proxy, c);
	/* A change of the live replicas is announced too (server_broadcast
	 * pushes a line only when it differs from the last one). */
	if (d->srv != NULL)
		server_broadcast(d->srv, c);
}

static void
daemon_first_round_done(void *arg)
{
	struct daemon *d = arg;

	struct timeval second = { 1, 0 };

	d->ready = true;
	log_info("first probe round done, ready");
	daemon_notify_status(d, "READY=1\n");
	if (d->status_timer != NULL)
		event_add(d->status_timer, &second);
}

/*
 * Shares the descriptors out between the listeners (server_client_caps()):
 * at start, and at every reload as the number of hosts changes.
 */
static void
daemon_apply_limits(struct daemon *d)
{
	struct server_fd_budget b;
	struct rlimit rl;
	size_t i, sock, http;

	memset(&b, 0, sizeof(b));
	b.limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		b.limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT32_MAX ?
		    INT32_MAX : (size_t)rl.rlim_cur;
	b.in_use = d->fds_base;
	for (i = 0; i < d->cfg->nclusters; i++)
		b.nhosts += d->cfg->clusters[i].nhosts;
	b.socket_setting = (size_t)d->cfg->socket_max_clients;
	b.http_setting = (size_t)d->cfg->http_max_clients;
	b.http = d->http != NULL;
	server_client_caps(&b, &sock, &http);
	server_set_max_clients(d->srv, sock);
	if (d->http != NULL)
		http_set_limits(d->http, http, d->cfg->http_request_timeout_ms);
	if (sock < b.socket_setting || (b.http && http < b.http_setting))
		log_warn("descriptor limit %zu: at most %zu socket and %zu HTTP "
		    "clients, %zu descriptors kept for %zu hosts", b.limit, sock,
		    b.http ? http : 0, (size_t)SERVER_FD_SLACK +
		    SERVER_FDS_PER_HOST * b.nhosts, b.nhosts);
}

static void
daemon_reload(struct daemon *d)
{
	struct config *cfg;
	uint64_t digest = 0;
	char err[512], names[256];

	sd_notify(0, "RELOADING=1");
	log_info("reloading %s", d->cfg->path);
	if (config_file_digest(d->cfg->path, &digest) == 0 &&
	    d->failed_digest != 0 && digest == d->failed_digest) {
		/* Parsing it again would fail again, and libconfig 1.5
		 * leaks a little on some syntax errors (config.h). */
		log_error("reload failed, keeping the running configuration: "
		    "%s is unchanged since the last failed reload",
		    d->cfg->path);
		goto done;
	}
	if ((cfg = config_load(d->cfg->path, err, sizeof(err))) == NULL) {
		log_error("reload failed, keeping the running configuration: %s",
		    err);
		d->failed_digest = digest;
		goto done;
	}
	d->failed_digest = 0;
	if (cfg->warning[0] != '\0')
		log_warn("%s", cfg->warning);
	if (config_restart_changes(d->cfg, cfg, names, sizeof(names)) > 0)
		log_warn("%s changes take effect at restart", names);
	if (monitor_reconfigure(d->mon, cfg) != 0) {
		log_error("reload failed: out of memory");
		config_free(cfg);
		goto done;
	}
	proxy_reconfigure(d->proxy, cfg);
	log_set_level(cfg->log_level);
	config_free(d->cfg);
	d->cfg = cfg;
	daemon_apply_limits(d);
	log_info("reloaded: %zu cluster(s)", cfg->nclusters);
done:
	daemon_notify_status(d, "READY=1\n");
}

static void
daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	if (sig == SIGHUP) {
		daemon_reload(d);
		return;
	}
	log_info("%s received, shutting down", strsignal((int)sig));
	sd_notify(0, "STOPPING=1");
	event_base_loopexit(d->base, NULL);
}

static void
daemon_free(struct daemon *d)
{
	/* Reverse order of creation. */
	if (d->status_timer != NULL)
		event_free(d->status_timer);
	if (d->sig_int != NULL)
		event_free(d->sig_int);
	if (d->sig_term != NULL)
		event_free(d->sig_term);
	if (d->sig_hup != NULL)
		event_free(d->sig_hup);
	if (d->http != NULL)
		http_set_proxy(d->http, NULL);
	if (d->srv != NULL)
		server_set_proxy(d->srv, NULL);
	proxy_free(d->proxy);
	http_free(d->http);
	server_free(d->srv);
	monitor_free(d->mon);
	if (d->dns != NULL)
		evdns_base_free(d->dns, 0);
	if (d->base != NULL)
		event_base_free(d->base);
	config_free(d->cfg);
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct monitor_callbacks cb;
	const char *path = CONFIG_DEFAULT_PATH;
	bool test_only = false;
	char err[512];
	int ch, rc = 1;

	memset(&d, 0, sizeof(d));
	while ((ch = getopt(argc, argv, "c:thV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pgbeacond %s\n", PGBEACOND_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if ((d.cfg = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "pgbeacond: %s\n", err);
		return 1;
	}
	if (test_only) {
		if (d.cfg->warning[0] != '\0')
			fprintf(stderr, "pgbeacond: warning: %s\n",
			    d.cfg->warning);
		printf("%s: configuration OK (%zu cluster(s))\n", path,
		    d.cfg->nclusters);
		config_free(d.cfg);
		return 0;
	}

	log_init(d.cfg->log_level);
	if (d.cfg->warning[0] != '\0')
		log_warn("%s", d.cfg->warning);
	if (server_raise_fd_limit(err, sizeof(err)) >= 0 && err[0] != '\0')
		log_info("%s", err);
	signal(SIGPIPE, SIG_IGN);
	if ((d.base = server_base_new()) == NULL) {
		log_error("cannot create the event loop");
		goto out;
	}
	d.dns = evdns_base_new(d.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (d.dns != NULL && evdns_base_load_hosts(d.dns, NULL) != 0)
		log_warn("cannot read /etc/hosts");

	cb.master_changed = daemon_master_changed;
	cb.topology_updated = daemon_topology_updated;
	cb.first_round_done = daemon_first_round_done;
	cb.arg = &d;
	if ((d.mon = monitor_new(d.base, d.dns, d.cfg, &cb)) == NULL) {
		log_error("cannot start monitoring: out of memory");
		goto out;
	}
	d.srv = server_new(d.base, d.cfg->socket_path, d.cfg->socket_mode,
	    d.mon, err, sizeof(err));
	if (d.srv == NULL) {
		log_error("%s", err);
		goto out;
	}
	if (d.cfg->http_listen != NULL) {
		d.http = http_new(d.base, d.cfg->http_listen, d.cfg->socket_mode,
		    d.mon, d.srv, err, sizeof(err));
		if (d.http == NULL) {
			log_error("%s", err);
			goto out;
		}
	}
	d.proxy = proxy_new(d.base, d.dns, d.mon, d.cfg->socket_mode, d.cfg,
	    err, sizeof(err));
	if (d.proxy == NULL) {
		log_error("%s", err);
		goto out;
	}
	server_set_proxy(d.srv, d.proxy);
	if (d.http != NULL)
		http_set_proxy(d.http, d.proxy);
	d.fds_base = server_fds_in_use();
	daemon_apply_limits(&d);
	d.status_timer = event_new(d.base, -1, EV_PERSIST,
	    daemon_status_timer_cb, &d);
	if (d.status_timer == NULL) {
		log_error("cannot create the status timer");
		goto out;
	}
	d.sig_hup = evsignal_new(d.base, SIGHUP, daemon_signal_cb, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, daemon_signal_cb, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, daemon_signal_cb, &d);
	if (d.sig_hup == NULL || d.sig_term == NULL || d.sig_int == NULL ||
	    event_add(d.sig_hup, NULL) != 0 || event_add(d.sig_term, NULL) != 0 ||
	    event_add(d.sig_int, NULL) != 0) {
		log_error("cannot install signal handlers");
		goto out;
	}
	log_info("pgbeacond %s listening on %s, watching %zu cluster(s)",
	    PGBEACOND_VERSION, d.cfg->socket_path, d.cfg->nclusters);

	if (event_base_dispatch(d.base) != 0) {
		log_error("event loop failed");
		goto out;
	}
	rc = 0;
	log_info("stopped");
out:
	{
		/* Freeing the signal events restores the default handlers: a
		 * second SIGTERM must not kill us half-way through teardown. */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	daemon_free(&d);
	return rc;
}
