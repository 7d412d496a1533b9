/*
 * it_daemon_util.h - small helpers shared by the it_daemon_*.c
 * integration tests: parsing RESOLVE answers, reading STATUS with json-c,
 * polling predicates, and failing with the end of the daemon's log.
 *
 * Everything is static inline so that each test binary takes only what
 * it uses (no -Wunused-function) and no extra object has to be linked.
 */
#ifndef PGB_IT_DAEMON_UTIL_H
#define PGB_IT_DAEMON_UTIL_H

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <json-c/json.h>

#include "support/itest.h"

/* Generous deadlines: tests wait for eventual states, never for time. */
#define ITD_STATE_MS	30000	/* a state the daemon must reach */
#define ITD_REPLY_MS	5000	/* one reply on the socket */

/* Fails the test with a message and the end of d's log (d may be NULL). */
#define ITD_ASSERT(d, expr, ...) do {					\
	if (!(expr)) {							\
		if ((d) != NULL) {					\
			char *itd_tail_ =				\
			    it_file_tail(it_daemon_log(d), 3000);	\
									\
			fprintf(stderr, "--- end of %s:\n%s\n---\n",	\
			    it_daemon_log(d), itd_tail_);		\
			free(itd_tail_);				\
		}							\
		ck_abort_msg(__VA_ARGS__);				\
	}								\
} while (0)

/* The whole file at path (caller frees), or NULL. */
static inline char *
itd_read_file(const char *path)
{
	FILE	*f;
	char	*text = NULL;
	size_t	 len = 0, n;
	char	 chunk[4096];
	FILE	*m;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	if ((m = open_memstream(&text, &len)) == NULL) {
		fclose(f);
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	return text;
}

/* True when the daemon's log contains needle. */
static inline bool
itd_log_contains(const struct it_daemon *d, const char *needle)
{
	char	*text = itd_read_file(it_daemon_log(d));
	bool	 found = text != NULL && strstr(text, needle) != NULL;

	free(text);
	return found;
}

/* --- RESOLVE answers ---------------------------------------------------- */

/* One parsed reply to RESOLVE. */
struct itd_answer {
	bool		 ok;		/* "OK ...", else "ERR ..." */
	char		 host[64];
	int		 port;
	char		 role[16];	/* "master" or "replica" */
	uint64_t	 generation;
	char		 code[16];	/* the ERR code */
};

/* Parses a RESOLVE reply; false when line is neither well-formed OK nor
 * ERR. */
static inline bool
itd_parse_answer(const char *line, struct itd_answer *a)
{
	int	 n = 0;

	memset(a, 0, sizeof *a);
	if (line == NULL)
		return false;
	if (strncmp(line, "ERR ", 4) == 0) {
		return sscanf(line, "ERR %15s", a->code) == 1;
	}
	if (sscanf(line, "OK host=%63s port=%d role=%15s generation=%" SCNu64
	    "%n", a->host, &a->port, a->role, &a->generation, &n) != 4 ||
	    line[n] != '\0')
		return false;
	a->ok = true;
	return true;
}

/* RESOLVE on fd (a persistent connection); false when no well-formed
 * answer came. */
static inline bool
itd_resolve_fd(int fd, const char *cluster, const char *role_and_opts,
    struct itd_answer *a)
{
	char	 line[512];
	char	*reply;
	bool	 ok;

	snprintf(line, sizeof line, "RESOLVE %s %s", cluster, role_and_opts);
	reply = it_sock_request(fd, line, ITD_REPLY_MS);
	ok = itd_parse_answer(reply, a);
	free(reply);
	return ok;
}

/* RESOLVE on a fresh connection; false when no well-formed answer came. */
static inline bool
itd_resolve(const char *sock, const char *cluster, const char *role_and_opts,
    struct itd_answer *a)
{
	char	*reply = it_resolve(sock, cluster, role_and_opts);
	bool	 ok = itd_parse_answer(reply, a);

	free(reply);
	return ok;
}

/* The port RESOLVE answers, or -1 (ERR, or no answer). */
static inline int
itd_resolve_port(const char *sock, const char *cluster,
    const char *role_and_opts)
{
	struct itd_answer a;

	if (!itd_resolve(sock, cluster, role_and_opts, &a) || !a.ok)
		return -1;
	return a.port;
}

/* True when RESOLVE answers "ERR code". */
static inline bool
itd_resolve_err(const char *sock, const char *cluster,
    const char *role_and_opts, const char *code)
{
	struct itd_answer a;

	return itd_resolve(sock, cluster, role_and_opts, &a) && !a.ok &&
	    strcmp(a.code, code) == 0;
}

/* --- STATUS ------------------------------------------------------------ */

/* STATUS [cluster] on a fresh connection, parsed; NULL when the reply is
 * not "OK <json>".  Free with json_object_put(). */
static inline json_object *
itd_status(const char *sock)
{
	json_object	*j = NULL;
	char		*reply = NULL;
	int		 fd;

	if ((fd = it_sock_connect(sock)) == -1)
		return NULL;
	reply = it_sock_request(fd, "STATUS", ITD_REPLY_MS);
	it_sock_close(fd);
	if (reply != NULL && strncmp(reply, "OK ", 3) == 0)
		j = json_tokener_parse(reply + 3);
	free(reply);
	return j;
}

/* The cluster called name in a STATUS object (borrowed), or NULL. */
static inline json_object *
itd_status_cluster(json_object *st, const char *name)
{
	json_object	*arr, *c, *n;
	size_t		 i;

	if (st == NULL || !json_object_object_get_ex(st, "clusters", &arr))
		return NULL;
	for (i = 0; i < json_object_array_length(arr); i++) {
		c = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(c, "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			return c;
	}
	return NULL;
}

/* The host with port in a STATUS cluster object (borrowed), or NULL. */
static inline json_object *
itd_status_host(json_object *cl, int port)
{
	json_object	*arr, *h, *p;
	size_t		 i;

	if (cl == NULL || !json_object_object_get_ex(cl, "hosts", &arr))
		return NULL;
	for (i = 0; i < json_object_array_length(arr); i++) {
		h = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(h, "port", &p) &&
		    json_object_get_int(p) == port)
			return h;
	}
	return NULL;
}

/* obj[key] as a string (borrowed; "" when missing, "null" for null). */
static inline const char *
itd_json_str(json_object *obj, const char *key)
{
	json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v))
		return "";
	if (v == NULL)
		return "null";
	return json_object_get_string(v);
}

/* obj[key] as an integer (0 when missing or null). */
static inline int64_t
itd_json_int(json_object *obj, const char *key)
{
	json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    v == NULL)
		return 0;
	return json_object_get_int64(v);
}

/* obj[key] is JSON true. */
static inline bool
itd_json_true(json_object *obj, const char *key)
{
	json_object	*v;

	return obj != NULL && json_object_object_get_ex(obj, key, &v) &&
	    v != NULL && json_object_get_type(v) == json_type_boolean &&
	    json_object_get_boolean(v);
}

/*
 * True when STATUS shows host port of cluster with that aliveness and
 * role (role NULL: any role).
 */
static inline bool
itd_host_is(const char *sock, const char *cluster, int port, bool alive,
    const char *role)
{
	json_object	*st = itd_status(sock), *h;
	bool		 ok;

	h = itd_status_host(itd_status_cluster(st, cluster), port);
	ok = h != NULL && itd_json_true(h, "alive") == alive &&
	    (role == NULL || strcmp(itd_json_str(h, "role"), role) == 0);
	json_object_put(st);
	return ok;
}

/* The cluster's generation from STATUS, or -1. */
static inline int64_t
itd_generation(const char *sock, const char *cluster)
{
	json_object	*st = itd_status(sock), *cl;
	int64_t		 g = -1;

	if ((cl = itd_status_cluster(st, cluster)) != NULL)
		g = itd_json_int(cl, "generation");
	json_object_put(st);
	return g;
}

/* --- sockets ------------------------------------------------------------- */

/*
 * True when the peer closed fd within timeout_ms: poll() says readable
 * and recv() returns 0 (anything buffered before the EOF is skipped).
 * Use only on fds whose line buffer is empty.
 */
static inline bool
itd_sees_eof(int fd, int timeout_ms)
{
	int64_t		 deadline = it_now_ms() + timeout_ms;
	struct pollfd	 p;
	char		 buf[512];
	ssize_t		 n;
	int		 left;

	for (;;) {
		left = (int)(deadline - it_now_ms());
		if (left < 0)
			return false;
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, left) <= 0)
			return false;
		n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0)
			return true;
		if (n < 0 && errno == ECONNRESET)
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
	}
}

/* "127.0.0.1:<port>" in buf. */
static inline const char *
itd_hostport(char *buf, size_t len, int port)
{
	snprintf(buf, len, "127.0.0.1:%d", port);
	return buf;
}

/* --- the daemon binary ----------------------------------------------------- */

/*
 * Runs "pgbeacond -t -c conf", waits for it, and returns its exit status
 * (128 + signal if killed, -1 on error); its stderr goes to *err (caller
 * frees), its stdout nowhere.
 */
static inline int
itd_run_check(const char *conf, char **err)
{
	char		 errpath[] = "/tmp/pgbeacon-itd-stderr.XXXXXX";
	const char	*argv[5];
	pid_t		 pid;
	int		 fd, st;

	*err = NULL;
	if ((fd = mkstemp(errpath)) == -1)
		return -1;
	argv[0] = it_daemon_binary();
	argv[1] = "-t";
	argv[2] = "-c";
	argv[3] = conf;
	argv[4] = NULL;
	if ((pid = fork()) == -1) {
		close(fd);
		unlink(errpath);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null != -1)
			dup2(null, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			unlink(errpath);
			return -1;
		}
	*err = itd_read_file(errpath);
	unlink(errpath);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* A new empty directory under /tmp (caller frees the string; remove the
 * directory with itd_rmdir_all()). */
static inline char *
itd_mkdtemp(void)
{
	char	*dir = strdup("/tmp/pgbeacon-itd.XXXXXX");

	ck_assert_ptr_nonnull(dir);
	ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	return dir;
}

/* rm -rf dir (a directory made by itd_mkdtemp()); NULL is a no-op. */
static inline void
itd_rmdir_all(const char *dir)
{
	pid_t	 pid;
	int	 st;

	if (dir == NULL || strncmp(dir, "/tmp/pgbeacon-itd.", 18) != 0)
		return;
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
}

#endif /* PGB_IT_DAEMON_UTIL_H */
