/*
 * daemon_util.c - RESOLVE and STATUS helpers of the daemon's integration
 * tests; see daemon_util.h.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon_util.h"
#include "spawn.h"

void
itd_print_log_tail(const struct it_daemon *d, size_t max)
{
	char	*tail;

	if (d == NULL)
		return;
	tail = it_file_tail(it_daemon_log(d), max);
	fprintf(stderr, "--- end of %s:\n%s\n---\n", it_daemon_log(d), tail);
	free(tail);
}

char *
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

bool
itd_log_contains(const struct it_daemon *d, const char *needle)
{
	char	*text = itd_read_file(it_daemon_log(d));
	bool	 found = text != NULL && strstr(text, needle) != NULL;

	free(text);
	return found;
}

int
itd_stop_showing_log(struct it_daemon *d)
{
	char	*log, *tail;
	int	 st;

	if (d == NULL)
		return 0;
	if ((log = strdup(it_daemon_log(d))) == NULL)
		it_fail("out of memory");
	st = it_daemon_stop(d);
	if (st != 0) {
		tail = it_file_tail(log, 6000);
		fprintf(stderr, "--- end of %s:\n%s\n---\n", log, tail);
		free(tail);
	}
	free(log);
	return st;
}

/* --- RESOLVE answers ---------------------------------------------------- */

bool
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

bool
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

bool
itd_resolve(const char *sock, const char *cluster, const char *role_and_opts,
    struct itd_answer *a)
{
	char	*reply = it_resolve(sock, cluster, role_and_opts);
	bool	 ok = itd_parse_answer(reply, a);

	free(reply);
	return ok;
}

int
itd_resolve_port(const char *sock, const char *cluster,
    const char *role_and_opts)
{
	struct itd_answer a;

	if (!itd_resolve(sock, cluster, role_and_opts, &a) || !a.ok)
		return -1;
	return a.port;
}

bool
itd_resolve_err(const char *sock, const char *cluster,
    const char *role_and_opts, const char *code)
{
	struct itd_answer a;

	return itd_resolve(sock, cluster, role_and_opts, &a) && !a.ok &&
	    strcmp(a.code, code) == 0;
}

/* --- STATUS ------------------------------------------------------------ */

json_object *
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

json_object *
itd_json_find(json_object *obj, const char *array_key, const char *key,
    const char *value)
{
	json_object	*arr, *e, *v;
	size_t		 i;

	if (obj == NULL || !json_object_object_get_ex(obj, array_key, &arr))
		return NULL;
	for (i = 0; i < json_object_array_length(arr); i++) {
		e = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(e, key, &v) &&
		    strcmp(json_object_get_string(v), value) == 0)
			return e;
	}
	return NULL;
}

json_object *
itd_status_cluster(json_object *st, const char *name)
{
	return itd_json_find(st, "clusters", "name", name);
}

json_object *
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

const char *
itd_json_str(json_object *obj, const char *key)
{
	json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v))
		return "";
	if (v == NULL)
		return "null";
	return json_object_get_string(v);
}

int64_t
itd_json_int(json_object *obj, const char *key)
{
	json_object	*v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    v == NULL)
		return 0;
	return json_object_get_int64(v);
}

bool
itd_json_true(json_object *obj, const char *key)
{
	json_object	*v;

	return obj != NULL && json_object_object_get_ex(obj, key, &v) &&
	    v != NULL && json_object_get_type(v) == json_type_boolean &&
	    json_object_get_boolean(v);
}

bool
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

int64_t
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

bool
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

const char *
itd_hostport(char *buf, size_t len, int port)
{
	snprintf(buf, len, "127.0.0.1:%d", port);
	return buf;
}

/* --- the daemon binary ----------------------------------------------------- */

int
itd_run_check(const char *conf, char **err)
{
	const char	*argv[5];
	struct it_spawn	 s;
	char		*errpath;
	pid_t		 pid;
	int		 fd, st;

	*err = NULL;
	if (asprintf(&errpath, "%sitd-stderr-XXXXXX", it_tmp_prefix()) < 0)
		return -1;
	if ((fd = mkostemp(errpath, O_CLOEXEC)) == -1) {
		free(errpath);
		return -1;
	}
	argv[0] = it_daemon_binary();
	argv[1] = "-t";
	argv[2] = "-c";
	argv[3] = conf;
	argv[4] = NULL;
	memset(&s, 0, sizeof s);
	s.argv = argv;
	s.out = -1;
	s.err = fd;
	pid = it_spawn(&s);
	close(fd);
	if (pid == -1 || !it_wait_pid(pid, -1, &st)) {
		unlink(errpath);
		free(errpath);
		return -1;
	}
	*err = itd_read_file(errpath);
	unlink(errpath);
	free(errpath);
	return it_exit_code(st);
}

char *
itd_mkdtemp(void)
{
	return it_tmpdir("itd");
}

void
itd_rmdir_all(const char *dir)
{
	it_rmdir_all(dir);
}
