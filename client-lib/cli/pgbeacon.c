/*
 * pgbeacon.c - the pgbeacon command-line tool, on libpgbeacon's daemon
 * client.
 *
 *   pgbeacon [-s SOCKET] resolve CLUSTER ROLE [key=value ...]
 *   pgbeacon [-s SOCKET] status [--json] [CLUSTER]
 *   pgbeacon [-s SOCKET] watch [CLUSTER]
 *   pgbeacon [-s SOCKET] ping
 *   pgbeacon [-s SOCKET] forget CLUSTER
 *
 * Exit status (sysexits.h style, documented in the README): 0 success;
 * 1 the daemon answered but has no host for the question; 64 (EX_USAGE)
 * bad command line or a request the daemon refused as malformed; 69
 * (EX_UNAVAILABLE) the daemon cannot be reached; 71 (EX_OSERR) out of
 * memory; 75 (EX_TEMPFAIL) no reply in time; 76 (EX_PROTOCOL) a reply
 * that cannot be understood.  The error text goes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <json.h>

#include "pgbeacon.h"

#define EXIT_NOHOST	1		/* the daemon has no such host */
#define EXIT_USAGE	EX_USAGE	/* 64: bad command line */
#define EXIT_NODAEMON	EX_UNAVAILABLE	/* 69: the daemon cannot be reached */
#define EXIT_NOMEM	EX_OSERR	/* 71: out of memory */
#define EXIT_TIMEOUT	EX_TEMPFAIL	/* 75: no reply in time */
#define EXIT_PROTOCOL	EX_PROTOCOL	/* 76: a reply not understood */

static void	usage(FILE *f);
static int	exit_code(pgb_errcode code);
static int	cmd_resolve(pgb_client *cl, int argc, char **argv);
static int	cmd_status(pgb_client *cl, int argc, char **argv);
static int	cmd_watch(const char *socket, int argc, char **argv);
static int	cmd_ping(pgb_client *cl, int argc, char **argv);
static int	cmd_forget(pgb_client *cl, int argc, char **argv);
static void	print_status(json_object *root);
static void	print_timestamp(void);

static volatile sig_atomic_t stop;

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pgbeacon [-s SOCKET] resolve CLUSTER ROLE [key=value ...]\n"
	    "       pgbeacon [-s SOCKET] status [--json] [CLUSTER]\n"
	    "       pgbeacon [-s SOCKET] watch [CLUSTER]\n"
	    "       pgbeacon [-s SOCKET] ping\n"
	    "       pgbeacon [-s SOCKET] forget CLUSTER\n"
	    "       pgbeacon -h | -V\n"
	    "\n"
	    "  -s SOCKET  daemon socket (default: $%s, else %s)\n"
	    "\n"
	    "  resolve    print host:port of the host holding ROLE (master,\n"
	    "             replica, sync_by_time, sync_by_bytes,\n"
	    "             sync_by_time_or_bytes, sync_by_time_and_bytes, any);\n"
	    "             options max_lag_ms=N max_lag_bytes=N min_lsn=X/Y\n"
	    "             fallback=master|none\n"
	    "  status     table of hosts, roles, lag and last check\n"
	    "             (--json: the daemon's JSON)\n"
	    "  watch      print each role change as it happens\n"
	    "  ping       check that the daemon answers\n"
	    "  forget     clear the highest timeline the daemon remembers for\n"
	    "             CLUSTER (root or the daemon's user only; logged)\n"
	    "\n"
	    "  -V         print the version\n"
	    "\n"
	    "exit status: 0 ok, 1 no host for the question, 64 usage error,\n"
	    "69 daemon unreachable, 71 out of memory, 75 no reply in time,\n"
	    "76 reply not understood\n", PGB_SOCKET_ENV, PGB_DEFAULT_SOCKET);
}

/* Exit status for a failed request. */
static int
exit_code(pgb_errcode code)
{
	switch (code) {
	case PGB_ERR_NOHOST:
	case PGB_ERR_NOCLUSTER:
	case PGB_ERR_DAEMON:
		return (EXIT_NOHOST);
	case PGB_ERR_UNREACHABLE:
		return (EXIT_NODAEMON);
	case PGB_ERR_TIMEOUT:
		return (EXIT_TIMEOUT);
	case PGB_ERR_PROTOCOL:
		return (EXIT_PROTOCOL);
	case PGB_ERR_NOMEM:
		return (EXIT_NOMEM);
	default:	/* BADROLE, BADREQ, ARG: what the user typed */
		return (EXIT_USAGE);
	}
}

static int
cmd_resolve(pgb_client *cl, int argc, char **argv)
{
	pgb_resolved	 r;
	char		 opts[4096];
	size_t		 len = 0, n;
	int		 i;

	if (argc < 3) {
		usage(stderr);
		return (EXIT_USAGE);
	}
	opts[0] = '\0';
	for (i = 3; i < argc; i++) {
		n = strlen(argv[i]);
		if (strchr(argv[i], '=') == NULL || strchr(argv[i], ' ') ||
		    len + n + 2 > sizeof opts) {
			fprintf(stderr, "pgbeacon: bad option \"%s\" (expected"
			    " key=value)\n", argv[i]);
			return (EXIT_USAGE);
		}
		if (len > 0)
			opts[len++] = ' ';
		memcpy(opts + len, argv[i], n + 1);
		len += n;
	}
	if (pgb_client_resolve(cl, argv[1], argv[2], len > 0 ? opts : NULL,
	    &r) == -1) {
		fprintf(stderr, "pgbeacon: %s\n", pgb_client_error(cl));
		return (exit_code(pgb_client_errcode(cl)));
	}
	if (strchr(r.host, ':') != NULL)
		printf("[%s]:%d\n", r.host, r.port);
	else
		printf("%s:%d\n", r.host, r.port);
	return (0);
}

/* Member of o as a string, or dflt when absent or null. */
static const char *
jstr(json_object *o, const char *key, const char *dflt)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return (dflt);
	return (json_object_get_string(v));
}

/* Member of o as a number in buf, or "-" when absent or null. */
static const char *
jnum(json_object *o, const char *key, char *buf, size_t len)
{
	json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return ("-");
	snprintf(buf, len, "%" PRId64, json_object_get_int64(v));
	return (buf);
}

static void
print_status(json_object *root)
{
	json_object	*clusters, *c, *hosts, *h, *v;
	char		 b1[32], b2[32], b3[32], hp[300], last[48], why[512];
	const char	*err, *reason;
	size_t		 i, j;

	if (!json_object_object_get_ex(root, "clusters", &clusters) ||
	    !json_object_is_type(clusters, json_type_array)) {
		printf("(no clusters)\n");
		return;
	}
	for (i = 0; i < json_object_array_length(clusters); i++) {
		c = json_object_array_get_idx(clusters, i);
		if (i > 0)
			printf("\n");
		printf("cluster %s  generation %s  master %s\n",
		    jstr(c, "name", "?"), jnum(c, "generation", b1, sizeof b1),
		    jstr(c, "master", "none"));
		if (json_object_object_get_ex(c, "why_no_master", &v) &&
		    v != NULL)
			printf("  no master: %s\n", json_object_get_string(v));
		if (json_object_object_get_ex(c, "system_identifier", &v) &&
		    v != NULL)
			printf("  system identifier %s\n",
			    json_object_get_string(v));
		printf("  %-22s %-8s %-5s %12s %8s %-18s %3s %-14s %s\n",
		    "HOST", "ROLE", "ALIVE", "LAG_BYTES", "LAG_MS",
		    "LSN", "TL", "LAST_CHECK", "WHY/ERROR");
		if (!json_object_object_get_ex(c, "hosts", &hosts) ||
		    !json_object_is_type(hosts, json_type_array))
			continue;
		for (j = 0; j < json_object_array_length(hosts); j++) {
			h = json_object_array_get_idx(hosts, j);
			snprintf(hp, sizeof hp, "%s:%s", jstr(h, "host", "?"),
			    jnum(h, "port", b1, sizeof b1));
			if (json_object_object_get_ex(h, "last_ok_ms_ago", &v) &&
			    v != NULL)
				snprintf(last, sizeof last, "%" PRId64 " ms ago",
				    json_object_get_int64(v));
			else
				snprintf(last, sizeof last, "never");
			reason = jstr(h, "why", "");
			if (strcmp(reason, "ok") == 0)
				reason = "";
			err = jstr(h, "error", "");
			snprintf(why, sizeof why, "%s%s%s", reason,
			    *reason != '\0' && *err != '\0' ? "; " : "", err);
			printf("  %-22s %-8s %-5s %12s %8s %-18s %3s %-14s %s\n",
			    hp, jstr(h, "role", "none"),
			    json_object_object_get_ex(h, "alive", &v) &&
			    json_object_get_boolean(v) ? "yes" : "no",
			    jnum(h, "lag_bytes", b1, sizeof b1),
			    jnum(h, "lag_ms", b2, sizeof b2),
			    jstr(h, "replay_lsn", jstr(h, "current_lsn", "-")),
			    jnum(h, "timeline", b3, sizeof b3), last, why);
		}
	}
}

static int
cmd_status(pgb_client *cl, int argc, char **argv)
{
	const char	*cluster = NULL;
	json_object	*root;
	char		*json;
	int		 i, raw = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			raw = 1;
		else if (argv[i][0] == '-' || cluster != NULL) {
			usage(stderr);
			return (EXIT_USAGE);
		} else
			cluster = argv[i];
	}
	if (pgb_client_status(cl, cluster, &json) == -1) {
		fprintf(stderr, "pgbeacon: %s\n", pgb_client_error(cl));
		return (exit_code(pgb_client_errcode(cl)));
	}
	if (raw) {
		printf("%s\n", json);
		pgb_free(json);
		return (0);
	}
	root = json_tokener_parse(json);
	if (root == NULL) {
		fprintf(stderr, "pgbeacon: the daemon's STATUS is not valid"
		    " JSON\n");
		pgb_free(json);
		return (EXIT_PROTOCOL);
	}
	print_status(root);
	json_object_put(root);
	pgb_free(json);
	return (0);
}

/* "2024-05-01 12:00:00.123 " in local time. */
static void
print_timestamp(void)
{
	struct timeval	tv;
	struct tm	tm;
	char		buf[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s.%03ld ", buf, (long)(tv.tv_usec / 1000));
}

static void
stop_cb(int sig)
{
	(void)sig;
	stop = 1;
}

static int
cmd_watch(const char *socket, int argc, char **argv)
{
	struct sigaction sa;
	pgb_watch	*w;
	pgb_event	 ev;
	int		 rc, broken = 0;

	if (argc > 2) {
		usage(stderr);
		return (EXIT_USAGE);
	}
	w = pgb_watch_new(socket, argc == 2 ? argv[1] : NULL);
	if (w == NULL) {
		fprintf(stderr, "pgbeacon: out of memory\n");
		return (EXIT_NOMEM);
	}
	if (!pgb_watch_connected(w)) {
		fprintf(stderr, "pgbeacon: %s\n", pgb_watch_error(w));
		pgb_watch_free(w);
		return (EXIT_NODAEMON);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = stop_cb;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	print_timestamp();
	printf("watching %s\n", argc == 2 ? argv[1] : "every cluster");
	while (!stop) {
		rc = pgb_watch_wait(w, &ev, 200);
		if (rc == 1) {
			broken = 0;
			print_timestamp();
			if (ev.resync)
				printf("resync: subscribed again, role changes"
				    " may have been missed\n");
			else if (ev.has_master)
				printf("%s generation=%" PRIu64 " master=%s:%d\n",
				    ev.cluster, ev.generation, ev.master_host,
				    ev.master_port);
			else
				printf("%s generation=%" PRIu64 " master=none\n",
				    ev.cluster, ev.generation);
		} else if (!pgb_watch_connected(w) && !broken) {
			broken = 1;
			print_timestamp();
			printf("lost the daemon (%s); retrying\n",
			    pgb_watch_error(w));
		}
	}
	pgb_watch_free(w);
	return (0);
}

static int
cmd_ping(pgb_client *cl, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		usage(stderr);
		return (EXIT_USAGE);
	}
	if (pgb_client_ping(cl) == -1) {
		fprintf(stderr, "pgbeacon: %s\n", pgb_client_error(cl));
		return (exit_code(pgb_client_errcode(cl)));
	}
	printf("PONG\n");
	return (0);
}

static int
cmd_forget(pgb_client *cl, int argc, char **argv)
{
	if (argc != 2) {
		usage(stderr);
		return (EXIT_USAGE);
	}
	if (pgb_client_forget(cl, argv[1]) == -1) {
		fprintf(stderr, "pgbeacon: %s\n", pgb_client_error(cl));
		return (exit_code(pgb_client_errcode(cl)));
	}
	printf("forgot the timeline memory of %s\n", argv[1]);
	return (0);
}

int
main(int argc, char **argv)
{
	const char	*socket = NULL, *cmd;
	pgb_client	*cl;
	int		 ch, rc;

	while ((ch = getopt(argc, argv, "+hs:V")) != -1) {
		switch (ch) {
		case 's':
			socket = optarg;
			break;
		case 'h':
			usage(stdout);
			return (0);
		case 'V':
			printf("pgbeacon %s\n", PGB_VERSION_STRING);
			return (0);
		default:
			usage(stderr);
			return (EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return (EXIT_USAGE);
	}
	cmd = argv[0];
	if (strcmp(cmd, "watch") == 0)
		return (cmd_watch(socket, argc, argv));
	cl = pgb_client_new(socket);
	if (cl == NULL) {
		fprintf(stderr, "pgbeacon: out of memory\n");
		return (EXIT_NOMEM);
	}
	if (strcmp(cmd, "resolve") == 0)
		rc = cmd_resolve(cl, argc, argv);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(cl, argc, argv);
	else if (strcmp(cmd, "ping") == 0)
		rc = cmd_ping(cl, argc, argv);
	else if (strcmp(cmd, "forget") == 0)
		rc = cmd_forget(cl, argc, argv);
	else {
		fprintf(stderr, "pgbeacon: unknown command \"%s\"\n", cmd);
		usage(stderr);
		rc = EXIT_USAGE;
	}
	pgb_client_free(cl);
	return (rc);
}
