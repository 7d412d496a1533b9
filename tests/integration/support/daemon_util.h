/*
 * daemon_util.h - what the daemon's integration tests (it_daemon_*.c,
 * it_http.c, it_proxy*.c) share: parsing RESOLVE answers, reading STATUS
 * with json-c, polling predicates, running "pgbeacond -t", and failing
 * with the end of the daemon's log.
 *
 * Failure convention as in itest.h: queries return false, -1 or NULL so
 * that they can be polled; set-up steps fail the test.
 */
#ifndef PGB_IT_DAEMON_UTIL_SUPPORT_H
#define PGB_IT_DAEMON_UTIL_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <check.h>
#include <json-c/json.h>

#include "itest.h"

/* Generous deadlines: tests wait for eventual states, never for time. */
#define ITD_STATE_MS	30000	/* a state the daemon must reach */
#define ITD_REPLY_MS	5000	/* one reply on the socket */

/* Prints the last max bytes of d's log to stderr (d NULL: nothing). */
void itd_print_log_tail(const struct it_daemon *d, size_t max);

/* Fails the test with a message and the end of d's log (d may be NULL). */
#define ITD_ASSERT(d, expr, ...) do {					\
	if (!(expr)) {							\
		itd_print_log_tail((d), 3000);				\
		ck_abort_msg(__VA_ARGS__);				\
	}								\
} while (0)

/* The whole file at path (caller frees), or NULL. */
char *itd_read_file(const char *path);
/* True when the daemon's log contains needle. */
bool itd_log_contains(const struct it_daemon *d, const char *needle);

/*
 * Stops d (it_daemon_stop()); when its exit status is not 0 (a sanitizer
 * report makes it nonzero), prints the last 6000 bytes of its log.
 * Returns the status; 0 for NULL.  Frees d.
 */
int itd_stop_showing_log(struct it_daemon *d);

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
bool itd_parse_answer(const char *line, struct itd_answer *a);
/* RESOLVE on fd (a persistent connection); false when no well-formed
 * answer came. */
bool itd_resolve_fd(int fd, const char *cluster, const char *role_and_opts,
    struct itd_answer *a);
/* RESOLVE on a fresh connection; false when no well-formed answer came. */
bool itd_resolve(const char *sock, const char *cluster,
    const char *role_and_opts, struct itd_answer *a);
/* The port RESOLVE answers, or -1 (ERR, or no answer). */
int itd_resolve_port(const char *sock, const char *cluster,
    const char *role_and_opts);
/* True when RESOLVE answers "ERR code". */
bool itd_resolve_err(const char *sock, const char *cluster,
    const char *role_and_opts, const char *code);

/* --- STATUS ------------------------------------------------------------ */

/* STATUS on a fresh connection, parsed; NULL when the reply is not
 * "OK <json>".  Free with json_object_put(). */
json_object *itd_status(const char *sock);
/* The cluster called name in a STATUS object (borrowed), or NULL. */
json_object *itd_status_cluster(json_object *st, const char *name);
/* The host with port in a STATUS cluster object (borrowed), or NULL. */
json_object *itd_status_host(json_object *cl, int port);
/* The element of the array obj[array_key] whose member key is the
 * string value (borrowed), or NULL. */
json_object *itd_json_find(json_object *obj, const char *array_key,
    const char *key, const char *value);
/* obj[key] as a string (borrowed; "" when missing, "null" for null). */
const char *itd_json_str(json_object *obj, const char *key);
/* obj[key] as an integer (0 when missing or null). */
int64_t itd_json_int(json_object *obj, const char *key);
/* obj[key] is JSON true. */
bool itd_json_true(json_object *obj, const char *key);
/* True when STATUS shows host port of cluster with that aliveness and
 * role (role NULL: any role). */
bool itd_host_is(const char *sock, const char *cluster, int port, bool alive,
    const char *role);
/* The cluster's generation from STATUS, or -1. */
int64_t itd_generation(const char *sock, const char *cluster);

/* --- sockets ------------------------------------------------------------- */

/*
 * True when the peer closed fd within timeout_ms: poll() says readable
 * and recv() returns 0 (anything buffered before the EOF is skipped).
 * Use only on fds whose line buffer is empty.
 */
bool itd_sees_eof(int fd, int timeout_ms);
/* "127.0.0.1:<port>" in buf. */
const char *itd_hostport(char *buf, size_t len, int port);

/* --- the daemon binary ----------------------------------------------------- */

/*
 * Runs "pgbeacond -t -c conf", waits for it, and returns its exit status
 * (128 + signal if killed, -1 on error); its stderr goes to *err (caller
 * frees), its stdout nowhere.
 */
int itd_run_check(const char *conf, char **err);

/* A new empty directory under the prefix tests/run.sh reaps
 * (it_tmpdir("itd")); the caller frees the string; remove the directory
 * with itd_rmdir_all(). */
char *itd_mkdtemp(void);
/* rm -rf dir (a directory made by itd_mkdtemp()); NULL is a no-op. */
void itd_rmdir_all(const char *dir);

#endif /* PGB_IT_DAEMON_UTIL_SUPPORT_H */
