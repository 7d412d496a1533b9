/*
 * itest.c - clusters, daemons and a socket client for the integration
 * tests; see itest.h.
 *
 * Clusters are driven through tests/harness/pgcluster (one fork+exec per
 * operation); queries go through libpq directly.  Failures that end a test
 * go through it_fail(), which calls Check when it is linked in (a weak
 * reference, so that the benchmarks can use this file without Check).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <libpq-fe.h>

#include "itest.h"
#include "spawn.h"

/* Check's failure entry point; weak so that programs without Check link. */
#pragma weak _ck_assert_failed

extern char **environ;

struct it_cluster {
	char	*dir;			/* owned; removed by destroy */
	int	 nnodes;		/* nodes 0 .. nnodes-1 exist */
	int	 ports[IT_MAX_NODES];
	bool	 foreign[IT_MAX_NODES];
	pid_t	 reaper;		/* watchdog that destroys dir; -1: none */
	int	 reaper_fd;		/* write end of its pipe; -1: none */
};

struct it_daemon {
	pid_t	 pid;			/* the daemon */
	bool	 reaped;		/* waited for; status is valid */
	int	 status;		/* exit code, or 128 + signal */
	char	*conf_path;		/* owned: dir/pgbeacon.conf */
	char	*socket_path;		/* owned */
	char	*log_path;		/* owned: dir/pgbeacond.log */
};

/* Read-ahead of one socket, owned by the table below. */
struct it_linebuf {
	char	*buf;			/* owned */
	size_t	 len;
	size_t	 cap;
};

static pid_t		  it_main_pid;	/* the process that loaded us */
static char		  it_harness_path[PATH_MAX];
static char		  it_prefix[PATH_MAX];
static char		  it_errbuf[1024];	/* it_last_error() */

static pthread_mutex_t	  it_bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct it_linebuf **it_bufs;	/* owned, indexed by fd */
static size_t		  it_nbufs;

/* --- process-wide set-up --------------------------------------------- */

/* At exit of the process that loaded us (not of Check's forked children),
 * destroys every cluster still under our prefix. */
static void
it_atexit_reap(void)
{
	const char	*argv[] = { it_harness_path, "reap", it_prefix, NULL };
	glob_t		 g;
	char		 pattern[PATH_MAX + 2];
	pid_t		 pid;

	if (getpid() != it_main_pid)
		return;
	snprintf(pattern, sizeof pattern, "%s*", it_prefix);
	if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
		return;
	globfree(&g);
	fprintf(stderr, "itest: reaping clusters left under %s\n", it_prefix);
	if ((pid = it_spawn_argv(argv, NULL)) != -1)
		it_wait_pid(pid, -1, NULL);
}

__attribute__((constructor)) static void
it_init(void)
{
	const char	*p;

	it_main_pid = getpid();
	p = getenv("PGCLUSTER");
	if (p == NULL || *p == '\0')
		p = "tests/harness/pgcluster";
	/* absolute, so that a test may chdir */
	if (realpath(p, it_harness_path) == NULL)
		snprintf(it_harness_path, sizeof it_harness_path, "%s", p);
	p = getenv("PGBEACON_IT_PREFIX");
	if (p != NULL && *p != '\0')
		snprintf(it_prefix, sizeof it_prefix, "%s", p);
	else
		snprintf(it_prefix, sizeof it_prefix, "/tmp/pgbeacon-it.%ld.",
		    (long)it_main_pid);
	atexit(it_atexit_reap);
}

void
it_fail(const char *fmt, ...)
{
	char	 msg[4096];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "itest: %s\n", msg);
	fflush(stderr);
	if (_ck_assert_failed != NULL)
		_ck_assert_failed(__FILE__, __LINE__, "Failed", "%s", msg);
	exit(1);
}

static void *
it_xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n)) == NULL)
		it_fail("out of memory");
	return p;
}

static char *
it_xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
it_xprintf(const char *fmt, ...)
{
	char	*s;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		it_fail("out of memory");
	return s;
}

/* The last max bytes of s (all of it when shorter).  Borrowed from s. */
static const char *
it_tail(const char *s, size_t max)
{
	size_t	 n = strlen(s);

	return n > max ? s + n - max : s;
}

/* --- running the harness ---------------------------------------------- */

/* Runs argv[0] with argv, stdout and stderr captured into *out (owned by
 * the caller; "" at worst); see it_run_capture(). */
static int
it_run(char *const argv[], char **out)
{
	return it_run_capture((const char *const *)argv, out);
}

/* pgcluster CMD DIR ARGS... (a NULL-terminated list); see it_run(). */
static int
it_harness_v(const char *dir, char **out, const char *cmd, va_list ap)
{
	const char	*argv[8];
	const char	*a;
	int		 n = 0;

	argv[n++] = it_harness_path;
	argv[n++] = cmd;
	argv[n++] = dir;
	while ((a = va_arg(ap, const char *)) != NULL && n < 7)
		argv[n++] = a;
	argv[n] = NULL;
	return it_run((char *const *)argv, out);
}

static int
it_harness(const char *dir, char **out, const char *cmd, ...)
{
	va_list	 ap;
	int	 rc;

	va_start(ap, cmd);
	rc = it_harness_v(dir, out, cmd, ap);
	va_end(ap);
	return rc;
}

/* Runs pgcluster CMD DIR ARGS... (NULL-terminated) and fails the test,
 * with the harness output, when it fails. */
static void
it_harness_or_fail(const struct it_cluster *c, const char *cmd, ...)
{
	va_list	 ap;
	char	*out;
	int	 rc;

	va_start(ap, cmd);
	rc = it_harness_v(c->dir, &out, cmd, ap);
	va_end(ap);
	if (rc != 0)
		it_fail("pgcluster %s %s failed (exit %d):\n%s", cmd, c->dir,
		    rc, it_tail(out, 3000));
	free(out);
}

/*
 * Forks the watchdog of c->dir: it waits on a pipe whose write end only
 * we hold; a byte means "destroyed, just exit", EOF (we died, however)
 * means "run pgcluster destroy".  It leaves our process group so that
 * Check's kill of a timed-out test does not take it along.
 */
static void
it_reaper_start(struct it_cluster *c)
{
	const char	*argv[] = { it_harness_path, "destroy", c->dir, NULL };
	char		 byte;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], devnull;

	if (pipe2(p, O_CLOEXEC) == -1)
		it_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == -1)
		it_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		/* stdin is the pipe; nothing else of the test stays open,
		 * so that other watchdogs see their EOF */
		dup2(p[0], STDIN_FILENO);
		devnull = open("/dev/null", O_WRONLY);
		if (devnull != -1)
			dup2(devnull, STDOUT_FILENO);
		close_range(3, ~0U, 0);
		do
			n = read(STDIN_FILENO, &byte, 1);
		while (n == -1 && errno == EINTR);
		if (n == 1)
			_exit(0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[0]);
	c->reaper = pid;
	c->reaper_fd = p[1];
}

static int
it_read_port(const struct it_cluster *c, int node)
{
	char	 path[PATH_MAX], buf[32];
	FILE	*f;
	int	 port = -1;

	snprintf(path, sizeof path, "%s/node%d/port", c->dir, node);
	if ((f = fopen(path, "r")) == NULL)
		it_fail("%s: %s", path, strerror(errno));
	if (fgets(buf, sizeof buf, f) != NULL)
		port = atoi(buf);
	fclose(f);
	if (port <= 0 || port > 65535)
		it_fail("%s: no port in it", path);
	return port;
}

/* --- clusters --------------------------------------------------------- */

struct it_cluster *
it_cluster_create(int nreplicas)
{
	return it_cluster_create_opts(nreplicas, NULL);
}

struct it_cluster *
it_cluster_create_opts(int nreplicas, const struct it_cluster_opts *opts)
{
	struct it_cluster	*c;
	const char		*sc;
	char			 n[16], setting[64], *out, *msg;
	int			 i, rc;

	if (nreplicas < 0 || nreplicas >= IT_MAX_NODES)
		it_fail("it_cluster_create: %d replicas is out of range",
		    nreplicas);
	if (access(it_harness_path, X_OK) != 0)
		it_fail("no harness at %s (run from the repository root or "
		    "set PGCLUSTER)", it_harness_path);
	c = it_xmalloc(sizeof *c);
	memset(c, 0, sizeof *c);
	c->reaper = -1;
	c->reaper_fd = -1;
	c->dir = it_xprintf("%sXXXXXX", it_prefix);
	if (mkdtemp(c->dir) == NULL) {
		msg = it_xprintf("mkdtemp %s: %s", c->dir, strerror(errno));
		free(c->dir);
		free(c);
		it_fail("%s", msg);
	}
	it_reaper_start(c);

	snprintf(n, sizeof n, "%d", nreplicas);
	sc = opts != NULL && opts->synchronous_commit != NULL ?
	    opts->synchronous_commit : getenv("PGBEACON_IT_SYNCHRONOUS_COMMIT");
	if (sc != NULL && *sc != '\0') {
		snprintf(setting, sizeof setting, "synchronous_commit=%s", sc);
		rc = it_harness(c->dir, &out, "create", n, setting,
		    (char *)NULL);
	} else
		rc = it_harness(c->dir, &out, "create", n, (char *)NULL);
	if (rc != 0) {
		msg = it_xprintf("pgcluster create %s %d failed (exit %d):\n%s",
		    c->dir, nreplicas, rc, it_tail(out, 3000));
		free(out);
		it_cluster_destroy(c);
		it_fail("%s", msg);
	}
	free(out);
	c->nnodes = 1 + nreplicas;
	for (i = 0; i < c->nnodes; i++)
		c->ports[i] = it_read_port(c, i);
	return c;
}

void
it_cluster_destroy(struct it_cluster *c)
{
	char	*out;
	int	 rc, st;

	if (c == NULL)
		return;
	rc = it_harness(c->dir, &out, "destroy", (char *)NULL);
	if (rc != 0)
		fprintf(stderr, "itest: pgcluster destroy %s failed (exit %d),"
		    " its watchdog will retry:\n%s\n", c->dir, rc,
		    it_tail(out, 3000));
	free(out);
	if (c->reaper_fd != -1) {
		/* a byte tells the watchdog all is done; EOF would make it
		 * run destroy once more */
		if (rc == 0 && write(c->reaper_fd, "q", 1) != 1)
			fprintf(stderr, "itest: watchdog of %s: %s\n", c->dir,
			    strerror(errno));
		close(c->reaper_fd);
	}
	if (c->reaper != -1 && rc == 0)
		while (waitpid(c->reaper, &st, 0) == -1 && errno == EINTR)
			;
	free(c->dir);
	free(c);
}

const char *
it_cluster_dir(const struct it_cluster *c)
{
	return c->dir;
}

int
it_cluster_nodes(const struct it_cluster *c)
{
	return c->nnodes;
}

static void
it_check_node(const struct it_cluster *c, int node)
{
	if (node < 0 || node >= c->nnodes)
		it_fail("node %d does not exist (cluster %s has %d)", node,
		    c->dir, c->nnodes);
}

bool
it_is_foreign(const struct it_cluster *c, int node)
{
	it_check_node(c, node);
	return c->foreign[node];
}

int
it_port(const struct it_cluster *c, int node)
{
	it_check_node(c, node);
	return c->ports[node];
}

int
it_pid(const struct it_cluster *c, int node)
{
	char	 path[PATH_MAX], buf[32];
	FILE	*f;
	long	 pid = -1;

	it_check_node(c, node);
	snprintf(path, sizeof path, "%s/node%d/data/postmaster.pid", c->dir,
	    node);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof buf, f) != NULL)
		pid = strtol(buf, NULL, 10);
	fclose(f);
	if (pid <= 0 || kill((pid_t)pid, 0) == -1)
		return -1;
	return (int)pid;
}

void
it_stop(struct it_cluster *c, int node, const char *mode)
{
	char	 n[16];

	it_check_node(c, node);
	snprintf(n, sizeof n, "%d", node);
	it_harness_or_fail(c, "stop", n, mode != NULL ? mode : "fast",
	    (char *)NULL);
}

void
it_start(struct it_cluster *c, int node)
{
	char	 n[16];

	it_check_node(c, node);
	snprintf(n, sizeof n, "%d", node);
	it_harness_or_fail(c, "start", n, (char *)NULL);
}

void
it_promote(struct it_cluster *c, int node)
{
	char	 n[16];

	it_check_node(c, node);
	snprintf(n, sizeof n, "%d", node);
	it_harness_or_fail(c, "promote", n, (char *)NULL);
}

void
it_reattach(struct it_cluster *c, int node, int upstream)
{
	char	 n[16], u[16];

	it_check_node(c, node);
	it_check_node(c, upstream);
	snprintf(n, sizeof n, "%d", node);
	snprintf(u, sizeof u, "%d", upstream);
	it_harness_or_fail(c, "reattach", n, u, (char *)NULL);
}

void
it_wait_streaming(struct it_cluster *c, int primary, int nreplicas)
{
	char	 n[16], p[16];

	it_check_node(c, primary);
	snprintf(p, sizeof p, "%d", primary);
	snprintf(n, sizeof n, "%d", nreplicas);
	it_harness_or_fail(c, "wait-streaming", p, n, (char *)NULL);
}

int
it_foreign_create(struct it_cluster *c)
{
	char	 name[16];
	int	 node = c->nnodes;

	if (node >= IT_MAX_NODES)
		it_fail("cluster %s is full", c->dir);
	snprintf(name, sizeof name, "node%d", node);
	it_harness_or_fail(c, "create-foreign", name, (char *)NULL);
	c->foreign[node] = true;
	c->ports[node] = it_read_port(c, node);
	c->nnodes++;
	return node;
}

/* --- SQL -------------------------------------------------------------- */

const char *
it_last_error(void)
{
	return it_errbuf;
}

char *
it_sql(struct it_cluster *c, int node, const char *sql)
{
	PGconn		*conn;
	PGresult	*res;
	FILE		*f;
	char		 conninfo[256], *text = NULL;
	size_t		 len = 0;
	bool		 failed = false;
	int		 i, j;

	it_check_node(c, node);
	snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d "
	    "user=postgres dbname=postgres connect_timeout=10 "
	    "sslmode=disable gssencmode=disable application_name=itest",
	    c->ports[node]);
	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(it_errbuf, sizeof it_errbuf, "node %d: %s", node,
		    PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	if (!PQsendQuery(conn, sql)) {
		snprintf(it_errbuf, sizeof it_errbuf, "node %d: %s", node,
		    PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	if ((f = open_memstream(&text, &len)) == NULL)
		it_fail("open_memstream: %s", strerror(errno));
	/* every result, as psql -A -t prints them */
	while ((res = PQgetResult(conn)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_TUPLES_OK:
			for (i = 0; i < PQntuples(res); i++) {
				for (j = 0; j < PQnfields(res); j++) {
					if (j > 0)
						fputc('|', f);
					fputs(PQgetvalue(res, i, j), f);
				}
				fputc('\n', f);
			}
			break;
		case PGRES_COMMAND_OK:
		case PGRES_EMPTY_QUERY:
			break;
		default:
			if (!failed)
				snprintf(it_errbuf, sizeof it_errbuf,
				    "node %d: %s", node,
				    PQresultErrorMessage(res));
			failed = true;
			break;
		}
		PQclear(res);
	}
	if (PQstatus(conn) != CONNECTION_OK && !failed) {
		snprintf(it_errbuf, sizeof it_errbuf, "node %d: %s", node,
		    PQerrorMessage(conn));
		failed = true;
	}
	PQfinish(conn);
	if (fclose(f) != 0)
		it_fail("open_memstream: %s", strerror(errno));
	if (failed) {
		free(text);
		return NULL;
	}
	if (len > 0 && text[len - 1] == '\n')
		text[len - 1] = '\0';
	return text;
}

bool
it_sql_is(struct it_cluster *c, int node, const char *sql,
    const char *expected)
{
	char	*out;
	bool	 ok;

	out = it_sql(c, node, sql);
	ok = out != NULL && strcmp(out, expected) == 0;
	free(out);
	return ok;
}

/* --- configuration ---------------------------------------------------- */

static bool
it_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '*';
}

/*
 * Where the value of setting key starts in text (after "key =" or
 * "key :" and blanks), or NULL when text does not set key.  Comments and
 * strings are not skipped: keys are what tests write, not arbitrary text.
 */
static const char *
it_find_key(const char *text, const char *key)
{
	const char	*p, *q;
	size_t		 n = strlen(key);

	if (text == NULL)
		return NULL;
	for (p = text; (p = strstr(p, key)) != NULL; p += n) {
		if (p > text && it_name_char(p[-1]))
			continue;
		q = p + n;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		q++;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		return q;
	}
	return NULL;
}

char *
it_config_hosts(const char *dir, const char *cluster_name,
    const char *const *hosts, int nhosts, const char *extra)
{
	static const struct {
		const char	*key;
		const char	*fmt;	/* one %s: dir, where used */
	} defaults[] = {
		{ "socket",			"\"%s/pgbeacon.sock\"" },
		{ "state_file",			"\"%s/pgbeacon.state\"" },
		{ "check_interval_ms",		"100" },
		{ "fast_check_interval_ms",	"20" },
		{ "connect_timeout_ms",		"1000" },
		{ "query_timeout_ms",		"1000" },
		{ "max_fails",			"2" },
		{ "reconnect_max_ms",		"500" },
		{ "log_level",			"\"debug\"" },
	};
	FILE	*f;
	char	*text = NULL;
	size_t	 len = 0, i;
	int	 h;

	if ((f = open_memstream(&text, &len)) == NULL)
		it_fail("open_memstream: %s", strerror(errno));
	fputs("# written by it_config()\n", f);
	for (i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
		if (it_find_key(extra, defaults[i].key) != NULL)
			continue;
		fprintf(f, "%s = ", defaults[i].key);
		fprintf(f, defaults[i].fmt, dir);
		fputs(";\n", f);
	}
	if (extra != NULL) {
		fputs(extra, f);
		fputc('\n', f);
	}
	if (it_find_key(extra, "clusters") == NULL) {
		fprintf(f, "clusters = (\n  {\n    name = \"%s\";\n"
		    "    hosts = (", cluster_name);
		for (h = 0; h < nhosts; h++)
			fprintf(f, "%s\"%s\"", h > 0 ? ", " : " ", hosts[h]);
		fputs(" );\n    conninfo = \"user=postgres dbname=postgres\";\n"
		    "  }\n);\n", f);
	}
	if (fclose(f) != 0)
		it_fail("open_memstream: %s", strerror(errno));
	return text;
}

char *
it_config(const struct it_cluster *c, const char *cluster_name,
    const char *extra)
{
	char		 buf[IT_MAX_NODES][32];
	const char	*hosts[IT_MAX_NODES];
	int		 i;

	for (i = 0; i < c->nnodes; i++) {
		snprintf(buf[i], sizeof buf[i], "127.0.0.1:%d", c->ports[i]);
		hosts[i] = buf[i];
	}
	return it_config_hosts(c->dir, cluster_name, hosts, c->nnodes, extra);
}

/* --- the daemon ------------------------------------------------------- */

/* Writes text to path through a temporary file and rename(2). */
static void
it_write_file(const char *path, const char *text)
{
	char	*tmp;
	FILE	*f;

	tmp = it_xprintf("%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		it_fail("%s: %s", tmp, strerror(errno));
	if (fputs(text, f) == EOF || fclose(f) != 0)
		it_fail("%s: %s", tmp, strerror(errno));
	if (rename(tmp, path) == -1)
		it_fail("rename %s: %s", tmp, strerror(errno));
	free(tmp);
}

char *
it_file_tail(const char *path, size_t max)
{
	FILE	*f;
	char	*buf;
	size_t	 n = 0;
	long	 size;

	buf = it_xmalloc(max + 1);
	buf[0] = '\0';
	if ((f = fopen(path, "r")) == NULL)
		return buf;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > (long)max)
		fseek(f, size - (long)max, SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	n = fread(buf, 1, max, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The quoted value of "socket" in text, malloc'd, or NULL. */
static char *
it_config_socket(const char *text)
{
	const char	*p, *end;
	char		*s;

	if ((p = it_find_key(text, "socket")) == NULL || *p != '"')
		return NULL;
	p++;
	if ((end = strchr(p, '"')) == NULL)
		return NULL;
	s = it_xmalloc(end - p + 1);
	memcpy(s, p, end - p);
	s[end - p] = '\0';
	return s;
}

const char *
it_daemon_binary(void)
{
	static char	 path[PATH_MAX];
	const char	*p, *build;

	if ((p = getenv("PGBEACOND")) != NULL && *p != '\0')
		return p;
	build = getenv("BUILD");
	snprintf(path, sizeof path, "%s/pgbeacond",
	    build != NULL && *build != '\0' ? build : "build");
	return path;
}

struct it_daemon *
it_daemon_spawn(const char *config_text, const char *dir)
{
	struct it_daemon	*d;
	const char		*bin;
	const char		*argv[4];
	struct it_spawn		 sp;
	char			**envp, *notify;
	FILE			*logf;
	size_t			 n, i, j;
	pid_t			 pid;

	bin = it_daemon_binary();
	if (access(bin, X_OK) != 0)
		it_fail("no daemon binary at %s (make build/pgbeacond, or "
		    "set PGBEACOND)", bin);
	d = it_xmalloc(sizeof *d);
	memset(d, 0, sizeof *d);
	d->conf_path = it_xprintf("%s/pgbeacon.conf", dir);
	d->log_path = it_xprintf("%s/pgbeacond.log", dir);
	if ((d->socket_path = it_config_socket(config_text)) == NULL)
		d->socket_path = it_xprintf("%s/pgbeacon.sock", dir);
	it_write_file(d->conf_path, config_text);

	if ((logf = fopen(d->log_path, "a")) == NULL)
		it_fail("%s: %s", d->log_path, strerror(errno));
	fprintf(logf, "=== itest: starting %s -c %s\n", bin, d->conf_path);
	fclose(logf);
	for (n = 0; environ[n] != NULL; n++)
		;
	envp = it_xmalloc((n + 2) * sizeof *envp);
	for (i = j = 0; i < n; i++)	/* the daemon is not under systemd */
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			envp[j++] = environ[i];
	/* ... unless a test plays systemd: IT_NOTIFY_SOCKET becomes the
	 * daemon's NOTIFY_SOCKET. */
	notify = getenv("IT_NOTIFY_SOCKET") != NULL ?
	    it_xprintf("NOTIFY_SOCKET=%s", getenv("IT_NOTIFY_SOCKET")) : NULL;
	if (notify != NULL)
		envp[j++] = notify;
	envp[j] = NULL;
	argv[0] = bin;
	argv[1] = "-c";
	argv[2] = d->conf_path;
	argv[3] = NULL;
	memset(&sp, 0, sizeof sp);
	sp.argv = argv;
	sp.envp = (const char *const *)envp;
	sp.in = -1;
	sp.log_path = d->log_path;
	sp.reset_signals = true;
	pid = it_spawn(&sp);
	free(envp);
	free(notify);
	if (pid == -1)
		it_fail("spawn %s: %s", bin, strerror(errno));
	d->pid = pid;
	return d;
}

bool
it_daemon_exited(struct it_daemon *d, int timeout_ms, int *status)
{
	int64_t	 deadline = it_now_ms() + timeout_ms;
	pid_t	 r;
	int	 st;

	while (!d->reaped) {
		r = waitpid(d->pid, &st, WNOHANG);
		if (r == d->pid) {
			d->reaped = true;
			d->status = it_exit_code(st);
			break;
		}
		if (r == -1 && errno != EINTR) {
			/* not our child any more: treat as gone */
			d->reaped = true;
			d->status = -1;
			break;
		}
		if (it_now_ms() >= deadline)
			return false;
		it_sleep_ms(5);
	}
	if (status != NULL)
		*status = d->status;
	return true;
}

bool
it_daemon_wait_ready(struct it_daemon *d, int timeout_ms)
{
	int64_t	 deadline = it_now_ms() + timeout_ms;
	char	*reply;
	bool	 ok;
	int	 fd;

	for (;;) {
		if (it_daemon_exited(d, 0, NULL))
			return false;
		if ((fd = it_sock_connect(d->socket_path)) != -1) {
			reply = it_sock_request(fd, "PING", 1000);
			it_sock_close(fd);
			ok = reply != NULL && strcmp(reply, "PONG") == 0;
			free(reply);
			if (ok)
				return true;
		}
		if (it_now_ms() >= deadline)
			return false;
		it_sleep_ms(10);
	}
}

static void
it_daemon_free(struct it_daemon *d)
{
	free(d->conf_path);
	free(d->socket_path);
	free(d->log_path);
	free(d);
}

struct it_daemon *
it_daemon_start(const char *config_text, const char *dir)
{
	struct it_daemon	*d;
	char			*tail, *msg;
	int			 st;

	d = it_daemon_spawn(config_text, dir);
	if (it_daemon_wait_ready(d, 15000))
		return d;
	if (!it_daemon_exited(d, 0, &st)) {
		kill(d->pid, SIGKILL);
		it_daemon_exited(d, 5000, &st);
		msg = it_xprintf("pgbeacond (pid %d) did not answer PING on %s "
		    "within 15 s", (int)d->pid, d->socket_path);
	} else
		msg = it_xprintf("pgbeacond exited with status %d before "
		    "answering PING on %s", st, d->socket_path);
	tail = it_file_tail(d->log_path, 2500);
	it_daemon_free(d);
	it_fail("%s; end of its log:\n%s", msg, tail);
}

const char *
it_daemon_socket(const struct it_daemon *d)
{
	return d->socket_path;
}

const char *
it_daemon_log(const struct it_daemon *d)
{
	return d->log_path;
}

int
it_daemon_pid(const struct it_daemon *d)
{
	return (int)d->pid;
}

void
it_daemon_reload(struct it_daemon *d, const char *new_config_text)
{
	it_write_file(d->conf_path, new_config_text);
	if (d->reaped || kill(d->pid, SIGHUP) == -1)
		it_fail("it_daemon_reload: pgbeacond (pid %d) is gone",
		    (int)d->pid);
}

int
it_daemon_stop(struct it_daemon *d)
{
	int	 st;

	if (!it_daemon_exited(d, 0, &st)) {
		kill(d->pid, SIGTERM);
		if (!it_daemon_exited(d, 10000, &st)) {
			fprintf(stderr, "itest: pgbeacond (pid %d) ignored "
			    "SIGTERM for 10 s; killing it\n", (int)d->pid);
			kill(d->pid, SIGKILL);
			if (!it_daemon_exited(d, 10000, &st))
				st = -1;
		}
	}
	it_daemon_free(d);
	return st;
}

void
it_daemon_kill(struct it_daemon *d)
{
	if (d == NULL)
		return;
	if (!it_daemon_exited(d, 0, NULL)) {
		kill(d->pid, SIGKILL);
		it_daemon_exited(d, 10000, NULL);
	}
	it_daemon_free(d);
}

/* --- the socket protocol ---------------------------------------------- */

/* fd's read-ahead buffer, created on first use.  The entry stays put
 * while the table grows; one fd is used by one thread at a time. */
static struct it_linebuf *
it_linebuf_get(int fd)
{
	struct it_linebuf	**t, *b;
	size_t			  n;

	pthread_mutex_lock(&it_bufs_lock);
	if ((size_t)fd >= it_nbufs) {
		n = (size_t)fd + 64;
		if ((t = realloc(it_bufs, n * sizeof *t)) == NULL)
			it_fail("out of memory");
		memset(t + it_nbufs, 0, (n - it_nbufs) * sizeof *t);
		it_bufs = t;
		it_nbufs = n;
	}
	if ((b = it_bufs[fd]) == NULL) {
		b = it_xmalloc(sizeof *b);
		memset(b, 0, sizeof *b);
		it_bufs[fd] = b;
	}
	pthread_mutex_unlock(&it_bufs_lock);
	return b;
}

/* Forgets what was read ahead on fd. */
static void
it_linebuf_reset(int fd)
{
	struct it_linebuf	*b = NULL;

	pthread_mutex_lock(&it_bufs_lock);
	if ((size_t)fd < it_nbufs) {
		b = it_bufs[fd];
		it_bufs[fd] = NULL;
	}
	pthread_mutex_unlock(&it_bufs_lock);
	if (b != NULL) {
		free(b->buf);
		free(b);
	}
}

int
it_sock_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		close(fd);
		return -1;
	}
	it_linebuf_reset(fd);
	return fd;
}

void
it_sock_close(int fd)
{
	if (fd < 0)
		return;
	it_linebuf_reset(fd);
	close(fd);
}

int
it_sock_send(int fd, const char *line)
{
	char	*msg;
	size_t	 len, off = 0;
	ssize_t	 n;

	msg = it_xprintf("%s\n", line);
	len = strlen(msg);
	while (off < len) {
		n = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(msg);
			return -1;
		}
		off += n;
	}
	free(msg);
	return 0;
}

char *
it_sock_readline(int fd, int timeout_ms)
{
	struct it_linebuf	*b;
	struct pollfd		 pfd;
	int64_t			 deadline = it_now_ms() + timeout_ms, left;
	char			*nl, *line, *nb;
	size_t			 n;
	ssize_t			 r;
	int			 pr;

	if (fd < 0)
		return NULL;
	b = it_linebuf_get(fd);
	for (;;) {
		if (b->len > 0 && (nl = memchr(b->buf, '\n', b->len)) != NULL) {
			n = nl - b->buf;
			line = it_xmalloc(n + 1);
			memcpy(line, b->buf, n);
			line[n] = '\0';
			b->len -= n + 1;
			memmove(b->buf, nl + 1, b->len);
			return line;
		}
		left = deadline - it_now_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		pr = poll(&pfd, 1, (int)left);
		if (pr == -1 && errno == EINTR)
			continue;
		if (pr <= 0)
			return NULL;	/* timeout or error */
		if (b->cap - b->len < 4096) {
			if ((nb = realloc(b->buf, b->cap + 65536)) == NULL)
				it_fail("out of memory");
			b->buf = nb;
			b->cap += 65536;
		}
		r = read(fd, b->buf + b->len, b->cap - b->len);
		if (r == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return NULL;	/* EOF or error */
		b->len += r;
	}
}

char *
it_sock_request(int fd, const char *line, int timeout_ms)
{
	if (it_sock_send(fd, line) == -1)
		return NULL;
	return it_sock_readline(fd, timeout_ms);
}

int
it_free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof sin;
	int			 fd, port;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		it_fail("socket: %s", strerror(errno));
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		close(fd);
		it_fail("bind 127.0.0.1:0: %s", strerror(errno));
	}
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

char *
it_resolve(const char *socket, const char *cluster, const char *role_and_opts)
{
	char	*req, *reply;
	int	 fd;

	if ((fd = it_sock_connect(socket)) == -1)
		return NULL;
	req = it_xprintf("RESOLVE %s %s", cluster,
	    role_and_opts != NULL ? role_and_opts : "");
	reply = it_sock_request(fd, req, 5000);
	free(req);
	it_sock_close(fd);
	return reply;
}

bool
it_resolves_to(const char *socket, const char *cluster, const char *role,
    int port)
{
	char	*reply, got[16];
	int	 p;
	bool	 ok;

	reply = it_resolve(socket, cluster, role);
	ok = reply != NULL && sscanf(reply, "OK host=%*s port=%d role=%15s",
	    &p, got) == 2 && strcmp(got, role) == 0 && (port <= 0 || p == port);
	free(reply);
	return ok;
}

/* --- a cluster watched by a daemon -------------------------------------- */

void
it_watched_start(struct it_watched *w, int nreplicas)
{
	it_watched_start_opts(w, nreplicas, NULL);
}

void
it_watched_start_opts(struct it_watched *w, int nreplicas,
    const struct it_cluster_opts *opts)
{
	memset(w, 0, sizeof *w);
	w->cluster = it_cluster_create_opts(nreplicas, opts);
	w->config = it_config(w->cluster, "main", NULL);
	it_watched_daemon_start(w);
}

void
it_watched_daemon_start(struct it_watched *w)
{
	struct it_cluster	*c = w->cluster;

	w->daemon = it_daemon_start(w->config, it_cluster_dir(c));
	snprintf(w->sock, sizeof w->sock, "%s", it_daemon_socket(w->daemon));
	if (!IT_POLL_UNTIL(it_resolves_to(w->sock, "main", "master",
	    it_port(c, 0)) && (it_cluster_nodes(c) == 1 ||
	    it_resolves_to(w->sock, "main", "replica", 0)), 15000))
		it_fail("the daemon at %s did not find the primary (port %d)"
		    " and a replica within 15 s; see %s", w->sock,
		    it_port(c, 0), it_daemon_log(w->daemon));
}

void
it_watched_stop(struct it_watched *w)
{
	if (w->daemon != NULL)
		it_daemon_stop(w->daemon);
	it_cluster_destroy(w->cluster);
	free(w->config);
	memset(w, 0, sizeof *w);
}

/* --- faults ------------------------------------------------------------ */

/* The state letter of /proc/pid/stat ('T' stopped), or 0 when gone;
 * *ppid (may be NULL) gets the parent. */
static char
it_proc_state(pid_t pid, pid_t *ppid)
{
	char	 path[64], buf[512], *p;
	long	 pp = 0;
	char	 st = 0;
	FILE	*f;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof buf, f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL &&
	    sscanf(p + 1, " %c %ld", &st, &pp) != 2)
		st = 0;
	fclose(f);
	if (ppid != NULL)
		*ppid = (pid_t)pp;
	return st;
}

/* Sends sig to the children of pid (children: true) and to pid; with
 * SIGSTOP, waits until every one of them is stopped. */
static void
it_signal_node(struct it_cluster *c, int node, int sig, bool children)
{
	pid_t	 pids[512], pp;
	size_t	 n = 0, i;
	glob_t	 g;
	int64_t	 deadline;
	int	 pm;

	if ((pm = it_pid(c, node)) == -1)
		it_fail("node %d of %s is not running", node, c->dir);
	if (sig == SIGSTOP)	/* first, so that it forks nothing new */
		kill(pm, sig);
	if (children && glob("/proc/[0-9]*", GLOB_NOSORT, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc && n < sizeof pids / sizeof pids[0];
		    i++) {
			pid_t pid = (pid_t)strtol(g.gl_pathv[i] + 6, NULL, 10);

			if (it_proc_state(pid, &pp) != 0 && pp == pm)
				pids[n++] = pid;
		}
		globfree(&g);
	}
	for (i = 0; i < n; i++)
		kill(pids[i], sig);
	if (sig != SIGSTOP) {
		kill(pm, sig);
		return;
	}
	deadline = it_now_ms() + 10000;
	for (i = 0; i <= n; i++) {
		pid_t pid = i < n ? pids[i] : pm;
		char st;

		/* a zombie ('Z') waits for its stopped parent: done too */
		while ((st = it_proc_state(pid, NULL)) != 0 && st != 'T' &&
		    st != 't' && st != 'Z' && st != 'X') {
			if (it_now_ms() > deadline)
				it_fail("process %ld of node %d did not stop",
				    (long)pid, node);
			it_sleep_ms(1);
		}
	}
}

void
it_freeze(struct it_cluster *c, int node)
{
	it_signal_node(c, node, SIGSTOP, true);
}

void
it_freeze_postmaster(struct it_cluster *c, int node)
{
	it_signal_node(c, node, SIGSTOP, false);
}

void
it_thaw(struct it_cluster *c, int node)
{
	it_signal_node(c, node, SIGCONT, true);
}

struct it_relay {
	pid_t	 pid;
	int	 in;		/* its stdin: commands */
	int	 out;		/* its stdout: answers */
	int	 port;
	const char *name;	/* "faultrelay", "slowdns": static */
};

#define IT_HELPER_EXIT_MS	20000	/* EOF to exit, leak check included */

/* The next line from the relay (without "\n") into buf; false on
 * timeout or EOF. */
static bool
it_relay_readline(struct it_relay *r, char *buf, size_t len, int timeout_ms)
{
	int64_t		 deadline = it_now_ms() + timeout_ms;
	struct pollfd	 p;
	size_t		 n = 0;
	ssize_t		 k;
	char		 ch;

	while (n + 1 < len) {
		p.fd = r->out;
		p.events = POLLIN;
		if (poll(&p, 1, (int)(deadline - it_now_ms())) <= 0 ||
		    (k = read(r->out, &ch, 1)) <= 0)
			return false;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return true;
}

/*
 * Stops the helper r and frees r: EOF on its stdin, on which it frees
 * everything and exits 0 (an ASan build's leak check included), then up
 * to IT_HELPER_EXIT_MS for it to do so (then SIGKILL).  True when it
 * exited 0; else false with why it did not, naming it, in why.
 */
static bool
it_helper_reap(struct it_relay *r, char *why, size_t len)
{
	const char	*name = r->name;
	pid_t		 pid = r->pid;
	bool		 late = false;
	int		 st;

	close(r->in);
	close(r->out);
	free(r);
	if (!it_wait_pid(pid, IT_HELPER_EXIT_MS, &st)) {
		late = true;
		st = it_stop_pid(pid, SIGKILL, -1);
	}
	if (late)
		snprintf(why, len, "harness helper %s (pid %ld) did not exit"
		    " within %d ms of EOF on its stdin: killed", name,
		    (long)pid, IT_HELPER_EXIT_MS);
	else if (st == -1)
		snprintf(why, len, "harness helper %s (pid %ld): cannot reap"
		    " it: %s", name, (long)pid, strerror(errno));
	else if (WIFSIGNALED(st))
		snprintf(why, len, "harness helper %s (pid %ld) was killed by"
		    " signal %d (%s)", name, (long)pid, WTERMSIG(st),
		    strsignal(WTERMSIG(st)));
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		snprintf(why, len, "harness helper %s (pid %ld) exited with"
		    " status %d (a sanitizer's report at its exit, if any, is"
		    " on stderr above)", name, (long)pid, WEXITSTATUS(st));
	else if (!WIFEXITED(st))
		snprintf(why, len, "harness helper %s (pid %ld): wait status"
		    " %#x", name, (long)pid, (unsigned)st);
	else
		return true;
	return false;
}

/*
 * Runs a harness helper (the fault relay, the slow DNS server) that prints
 * "PORT n" on its stdout once it listens and then reads commands on its
 * stdin; bin is $env_name, else $BUILD/tests/base.  Never NULL.
 */
static struct it_relay *
it_helper_start(const char *env_name, const char *base, const char *arg1,
    const char *arg2)
{
	struct it_relay	*r;
	const char	*bin, *build;
	char		 path[PATH_MAX], line[128], why[256];
	const char	*argv[4];
	struct it_spawn	 sp;
	int		 in[2], out[2];

	if ((bin = getenv(env_name)) == NULL || *bin == '\0') {
		build = getenv("BUILD");
		snprintf(path, sizeof path, "%s/tests/%s",
		    build != NULL && *build != '\0' ? build : "build", base);
		bin = path;
	}
	if (access(bin, X_OK) != 0)
		it_fail("no %s at %s (make %s, or set %s)", base, bin, bin,
		    env_name);
	argv[0] = bin;
	argv[1] = arg1;
	argv[2] = arg2;
	argv[3] = NULL;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		it_fail("pipe: %s", strerror(errno));
	r = it_xmalloc(sizeof *r);
	r->in = in[1];
	r->out = out[0];
	r->name = base;
	memset(&sp, 0, sizeof sp);
	sp.argv = argv;
	sp.in = in[0];
	sp.out = out[1];
	if ((r->pid = it_spawn(&sp)) == -1)
		it_fail("spawn %s: %s", bin, strerror(errno));
	close(in[0]);
	close(out[1]);
	if (!it_relay_readline(r, line, sizeof line, 10000) ||
	    sscanf(line, "PORT %d", &r->port) != 1) {
		if (it_helper_reap(r, why, sizeof why))
			snprintf(why, sizeof why, "no \"PORT n\" line");
		it_fail("%s did not start: %s", bin, why);
	}
	return r;
}

struct it_relay *
it_relay_start(int target_port)
{
	char	tport[16];

	snprintf(tport, sizeof tport, "%d", target_port);
	return it_helper_start("FAULTRELAY", "faultrelay", "127.0.0.1", tport);
}

int
it_relay_port(const struct it_relay *r)
{
	return r->port;
}

void
it_relay_set(struct it_relay *r, const char *mode)
{
	char	 line[256];

	if (dprintf(r->in, "%s\n", mode) < 0)
		it_fail("fault relay: %s: %s", mode, strerror(errno));
	if (!it_relay_readline(r, line, sizeof line, 10000))
		it_fail("fault relay: no answer to %s", mode);
	if (strcmp(line, "OK") != 0)
		it_fail("fault relay: %s: %s", mode, line);
}

void
it_relay_stop(struct it_relay *r)
{
	char	why[256];

	if (r != NULL && !it_helper_reap(r, why, sizeof why))
		it_fail("%s", why);
}

struct it_relay *
it_slowdns_start(int delay_ms, const char *name, const char *ipv4)
{
	char	delay[16], arg[512];

	snprintf(delay, sizeof delay, "%d", delay_ms);
	snprintf(arg, sizeof arg, "%s=%s", name, ipv4);
	return it_helper_start("SLOWDNS", "slowdns", delay, arg);
}

/* --- temporary directories ------------------------------------------- */

const char *
it_tmp_prefix(void)
{
	return it_prefix;
}

char *
it_tmpdir(const char *tag)
{
	char	*dir;

	dir = it_xprintf("%s%s-XXXXXX", it_prefix, tag);
	if (mkdtemp(dir) == NULL)
		it_fail("mkdtemp %s: %s", dir, strerror(errno));
	return dir;
}

void
it_rmdir_all(const char *dir)
{
	const char	*argv[] = { "rm", "-rf", "--", dir, NULL };
	char		*out;

	if (dir == NULL || strncmp(dir, it_prefix, strlen(it_prefix)) != 0 ||
	    strstr(dir, "/..") != NULL)
		return;
	if (it_run_capture(argv, &out) != 0)
		fprintf(stderr, "itest: rm -rf %s: %s\n", dir, out);
	free(out);
}

/* --- time ------------------------------------------------------------- */

int64_t
it_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
it_sleep_ms(int ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
