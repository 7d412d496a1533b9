/*
 * check_config.c - config.c: loading, defaults, validation of every
 * setting, and the exact "FILE:LINE: reason" of every error.
 */
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/request.h"
#include "config.h"
#include "../check_main.h"

#define NAME "t.conf"
/* A valid clusters setting, one line, for tests of other settings. */
#define CLUSTERS "clusters = ( { name = \"main\"; hosts = ( \"db1:5432\" ); } );\n"
/* The same as a prefix to a cluster body (line 1 holds the '{'). */
#define CL_OPEN "clusters = ( {\n"
#define CL_CLOSE "} );\n"

static char err[512];

static struct config *
load(const char *text)
{
	err[0] = '\0';
	return config_load_string(text, NAME, err, sizeof err);
}

/* Asserts that text is refused with exactly the error want. */
static void
expect_error(const char *text, const char *want)
{
	struct config	*cfg = load(text);

	ck_assert_msg(cfg == NULL, "accepted: %s", text);
	ck_assert_msg(strcmp(err, want) == 0, "for:\n%s\nwant: %s\ngot:  %s",
	    text, want, err);
}

static struct config *
expect_ok(const char *text)
{
	struct config	*cfg = load(text);

	ck_assert_msg(cfg != NULL, "refused: %s\nerror: %s", text, err);
	return cfg;
}

static char tmpdir[64];

static void
setup_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/check_config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* The directory holds plain files only; removed without a shell, since
 * a fork per test made this suite the slowest part of make mutate. */
static void
teardown_tmpdir(void)
{
	DIR		*d = opendir(tmpdir);
	struct dirent	*e;
	char		 path[512];

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		ck_assert_int_eq(unlink(path), 0);
	}
	ck_assert_int_eq(closedir(d), 0);
	ck_assert_int_eq(rmdir(tmpdir), 0);
}

static void
write_file(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* ---- core ------------------------------------------------------------ */

static const char full_text[] =
    "socket = \"/run/pgb/x.sock\";\n"
    "socket_mode = \"0600\";\n"
    "http_listen = \"[::1]:8008\";\n"
    "log_level = \"debug\";\n"
    "state_file = \"/var/lib/x/pgb.state\";\n"
    "check_interval_ms = 700;\n"
    "fast_check_interval_ms = 30;\n"
    "connect_timeout_ms = 1500;\n"
    "query_timeout_ms = 900;\n"
    "reconnect_max_ms = 8000;\n"
    "max_fails = 5;\n"
    "connect_check_interval_ms = 7000;\n"
    "sync_max_lag_ms = 250;\n"
    "sync_max_lag_bytes = 5000000000L;\n"
    "clusters = (\n"
    "  { name = \"main\";\n"
    "    hosts = ( \"db1.example.com:5432\", \"10.0.0.2:5433\",\n"
    "              \"[fe80::1]:5434\", \"/var/run/postgresql:5432\" );\n"
    "    conninfo = \"user=pgbeacon dbname=postgres password=s3cret\";\n"
    "    system_identifier = \"7301234567890123456\";\n"
    "  },\n"
    "  { name = \"other-1.x_y\";\n"
    "    hosts = [ \"a:1\", \"b:65535\" ];\n"
    "    system_identifier = 7301234567890123456L;\n"
    "  }\n"
    ");\n";

START_TEST(test_full_file_sets_every_setting)
{
	struct config			*cfg = expect_ok(full_text);
	const struct config_cluster	*c;

	ck_assert_str_eq(cfg->path, NAME);
	ck_assert_str_eq(cfg->socket_path, "/run/pgb/x.sock");
	ck_assert_int_eq(cfg->socket_mode, 0600);
	ck_assert_str_eq(cfg->http_listen, "[::1]:8008");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_str_eq(cfg->state_file, "/var/lib/x/pgb.state");
	ck_assert_int_eq(cfg->check_interval_ms, 700);
	ck_assert_int_eq(cfg->fast_check_interval_ms, 30);
	ck_assert_int_eq(cfg->connect_timeout_ms, 1500);
	ck_assert_int_eq(cfg->query_timeout_ms, 900);
	ck_assert_int_eq(cfg->reconnect_max_ms, 8000);
	ck_assert_int_eq(cfg->max_fails, 5);
	ck_assert_int_eq(cfg->connect_check_interval_ms, 7000);
	ck_assert_int_eq(cfg->sync_max_lag_ms, 250);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 5000000000LL);
	ck_assert_uint_eq(cfg->nclusters, 2);

	c = &cfg->clusters[0];
	ck_assert_str_eq(c->name, "main");
	ck_assert_str_eq(c->conninfo,
	    "user=pgbeacon dbname=postgres password=s3cret");
	ck_assert_uint_eq(c->system_identifier, 7301234567890123456ULL);
	ck_assert_uint_eq(c->nhosts, 4);
	ck_assert_str_eq(c->hosts[0].host, "db1.example.com");
	ck_assert_int_eq(c->hosts[0].port, 5432);
	ck_assert_str_eq(c->hosts[1].host, "10.0.0.2");
	ck_assert_int_eq(c->hosts[1].port, 5433);
	ck_assert_str_eq(c->hosts[2].host, "fe80::1");	/* brackets gone */
	ck_assert_int_eq(c->hosts[2].port, 5434);
	ck_assert_str_eq(c->hosts[3].host, "/var/run/postgresql");
	ck_assert_int_eq(c->hosts[3].port, 5432);

	c = &cfg->clusters[1];
	ck_assert_str_eq(c->name, "other-1.x_y");
	ck_assert_str_eq(c->conninfo, "");
	ck_assert_uint_eq(c->system_identifier, 7301234567890123456ULL);
	ck_assert_uint_eq(c->nhosts, 2);
	ck_assert_str_eq(c->hosts[1].host, "b");
	ck_assert_int_eq(c->hosts[1].port, 65535);
	config_free(cfg);
}
END_TEST

START_TEST(test_absent_settings_take_defaults)
{
	struct config	*cfg = expect_ok(CLUSTERS);

	ck_assert_str_eq(cfg->socket_path, CONFIG_DEFAULT_SOCKET);
	ck_assert_int_eq(cfg->socket_mode, 0660);
	ck_assert_ptr_null(cfg->http_listen);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_str_eq(cfg->state_file, "/var/lib/pgbeacon/state");
	ck_assert_int_eq(cfg->check_interval_ms, 500);
	ck_assert_int_eq(cfg->fast_check_interval_ms, 25);
	ck_assert_int_eq(cfg->connect_timeout_ms, 2000);
	ck_assert_int_eq(cfg->query_timeout_ms, 1000);
	ck_assert_int_eq(cfg->reconnect_max_ms, 5000);
	ck_assert_int_eq(cfg->max_fails, 3);
	ck_assert_int_eq(cfg->connect_check_interval_ms, 5000);
	ck_assert_int_eq(cfg->sync_max_lag_ms, 1000);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 1000000);
	ck_assert_uint_eq(cfg->nclusters, 1);
	ck_assert_str_eq(cfg->clusters[0].conninfo, "");
	ck_assert_uint_eq(cfg->clusters[0].system_identifier, 0);
	config_free(cfg);
}
END_TEST

START_TEST(test_example_conf_loads)
{
	struct config	*cfg;

	cfg = config_load("conf/pgbeacon.conf", err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->path, "conf/pgbeacon.conf");
	ck_assert_str_eq(cfg->socket_path, CONFIG_DEFAULT_SOCKET);
	ck_assert_int_eq(cfg->socket_mode, 0660);
	ck_assert_int_eq(cfg->check_interval_ms, 500);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 1000000);
	ck_assert_uint_eq(cfg->nclusters, 1);
	ck_assert_str_eq(cfg->clusters[0].name, "main");
	ck_assert_uint_eq(cfg->clusters[0].nhosts, 3);
	ck_assert_str_eq(cfg->clusters[0].hosts[2].host, "db3");
	config_free(cfg);
}
END_TEST

START_TEST(test_load_reads_a_file_and_names_it_in_errors)
{
	char		 path[128], want[256];
	struct config	*cfg;

	snprintf(path, sizeof path, "%s/a.conf", tmpdir);
	write_file(path, CLUSTERS);
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_str_eq(cfg->path, path);
	config_free(cfg);

	write_file(path, "max_fails = 3;\n\nmax_fails = 0;\n" CLUSTERS);
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	snprintf(want, sizeof want, "%s:3: duplicate setting name", path);
	ck_assert_str_eq(err, want);

	write_file(path, "max_fails = 0;\n" CLUSTERS);
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	snprintf(want, sizeof want, "%s:1: max_fails must be between 1 and "
	    "1000, not 0", path);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_find_cluster_by_name)
{
	struct config	*cfg = expect_ok(full_text);

	ck_assert_ptr_eq(config_find_cluster(cfg, "main"), &cfg->clusters[0]);
	ck_assert_ptr_eq(config_find_cluster(cfg, "other-1.x_y"),
	    &cfg->clusters[1]);
	ck_assert_ptr_null(config_find_cluster(cfg, "MAIN"));
	ck_assert_ptr_null(config_find_cluster(cfg, ""));
	config_free(cfg);
}
END_TEST

/* What a reload compares (monitor.c, proxy.c): a cluster's hosts in
 * their order, its conninfo, and one system_identifier whether written as
 * a string or as an integer. */
START_TEST(test_cluster_fields_as_a_reload_compares_them)
{
	struct config	*a, *b;

	a = expect_ok("clusters = ( { name = \"a\"; hosts = (\"y:2\", "
	    "\"x:1\"); conninfo = \"user=u\"; system_identifier = \"5\"; "
	    "} );\n");
	b = expect_ok("clusters = ( { name = \"a\"; hosts = (\"y:2\", "
	    "\"x:1\"); conninfo = \"user=u\"; system_identifier = 5; } );\n");
	ck_assert_uint_eq(a->clusters[0].system_identifier, 5);
	ck_assert_uint_eq(b->clusters[0].system_identifier, 5);
	ck_assert_uint_eq(a->clusters[0].nhosts, 2);
	ck_assert_str_eq(a->clusters[0].hosts[0].host, "y");
	ck_assert_int_eq(a->clusters[0].hosts[0].port, 2);
	ck_assert_str_eq(a->clusters[0].hosts[1].host, "x");
	ck_assert_int_eq(a->clusters[0].hosts[1].port, 1);
	ck_assert_str_eq(a->clusters[0].conninfo, "user=u");
	config_free(a);
	config_free(b);
}
END_TEST

/* The settings a reload cannot apply are named, the others are not. */
START_TEST(test_restart_changes_names_the_settings_a_reload_keeps)
{
	struct config	*a, *b;
	char		 buf[256];

	a = expect_ok(CLUSTERS);
	b = expect_ok("check_interval_ms = 700;\nlog_level = \"debug\";\n"
	    "max_fails = 5;\n" CLUSTERS);
	ck_assert_uint_eq(config_restart_changes(a, b, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, "");
	config_free(b);

	b = expect_ok("socket_mode = \"0600\";\nhttp_listen = "
	    "\"127.0.0.1:8008\";\n" CLUSTERS);
	ck_assert_uint_eq(config_restart_changes(a, b, buf, sizeof buf), 2);
	ck_assert_str_eq(buf, "socket_mode, http_listen");
	/* Both ways: a listener removed is a change too. */
	ck_assert_uint_eq(config_restart_changes(b, a, buf, sizeof buf), 2);
	config_free(b);

	b = expect_ok("socket = \"/tmp/other.sock\";\nstate_file = \"\";\n"
	    CLUSTERS);
	ck_assert_uint_eq(config_restart_changes(a, b, buf, sizeof buf), 2);
	ck_assert_str_eq(buf, "socket, state_file");
	/* A short buffer is cut, never overrun; the count stays right. */
	ck_assert_uint_eq(config_restart_changes(a, b, buf, 5), 2);
	ck_assert_str_eq(buf, "sock");
	config_free(b);
	config_free(a);
}
END_TEST

START_TEST(test_free_null_is_a_no_op)
{
	config_free(NULL);
}
END_TEST

/* ---- errors ---------------------------------------------------------- */

struct bad {
	const char	*text;
	const char	*want;
};

/* Top-level settings: each bad value on line 1, clusters on line 2. */
static const struct bad bad_top[] = {
	{ "chek_interval_ms = 500;\n", "t.conf:1: unknown setting 'chek_interval_ms'" },
	{ "cluster = 1;\n", "t.conf:1: unknown setting 'cluster'" },
	{ "socket = 5;\n", "t.conf:1: socket must be a string" },
	{ "state_file = 5;\n", "t.conf:1: state_file must be a string" },
	{ "state_file = \"state\";\n", "t.conf:1: state_file must be an absolute file path, or \"\" for none" },
	{ "state_file = \"/var/lib/pgbeacon/\";\n", "t.conf:1: state_file must be an absolute file path, or \"\" for none" },
	{ "socket = \"run/x.sock\";\n", "t.conf:1: socket must be an absolute path" },
	{ "socket = \"\";\n", "t.conf:1: socket must be an absolute path" },
	{ "socket_mode = 0660;\n", "t.conf:1: socket_mode must be a string" },
	{ "socket_mode = \"0800\";\n", "t.conf:1: socket_mode must be octal digits from \"0\" to \"0777\", not \"0800\"" },
	{ "socket_mode = \"1000\";\n", "t.conf:1: socket_mode must be octal digits from \"0\" to \"0777\", not \"1000\"" },
	{ "socket_mode = \"\";\n", "t.conf:1: socket_mode must be octal digits from \"0\" to \"0777\", not \"\"" },
	{ "socket_mode = \"rw\";\n", "t.conf:1: socket_mode must be octal digits from \"0\" to \"0777\", not \"rw\"" },
	{ "socket_mode = \"-660\";\n", "t.conf:1: socket_mode must be octal digits from \"0\" to \"0777\", not \"-660\"" },
	{ "http_listen = 8008;\n", "t.conf:1: http_listen must be a string" },
	{ "http_listen = \"localhost\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: no ':PORT'" },
	{ "http_listen = \"localhost:0\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: port must be a number from 1 to 65535" },
	{ "http_listen = \"localhost:65536\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: port must be a number from 1 to 65535" },
	{ "http_listen = \"localhost:\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: port must be a number from 1 to 65535" },
	{ "http_listen = \":8008\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: no host before ':'" },
	{ "http_listen = \"::1:8008\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: an IPv6 address needs brackets" },
	{ "http_listen = \"[::g]:8008\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: bad IPv6 address" },
	{ "http_listen = \"[]:8008\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: bad IPv6 address" },
	{ "http_listen = \"run/http.sock\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: no ':PORT'" },
	{ "http_listen = \"bad host:80\";\n", "t.conf:1: http_listen must be HOST:PORT, [IPV6]:PORT or an absolute path: bad host name" },
	{ "log_level = \"verbose\";\n", "t.conf:1: log_level must be error, warn, info or debug, not \"verbose\"" },
	{ "log_level = \"INFO\";\n", "t.conf:1: log_level must be error, warn, info or debug, not \"INFO\"" },
	{ "log_level = 3;\n", "t.conf:1: log_level must be a string" },
	{ "check_interval_ms = \"500\";\n", "t.conf:1: check_interval_ms must be an integer" },
	{ "check_interval_ms = 500.0;\n", "t.conf:1: check_interval_ms must be an integer" },
	{ "check_interval_ms = true;\n", "t.conf:1: check_interval_ms must be an integer" },
	{ "check_interval_ms = 9;\n", "t.conf:1: check_interval_ms must be between 10 and 3600000, not 9" },
	{ "check_interval_ms = 3600001;\n", "t.conf:1: check_interval_ms must be between 10 and 3600000, not 3600001" },
	{ "check_interval_ms = -500;\n", "t.conf:1: check_interval_ms must be between 10 and 3600000, not -500" },
	{ "fast_check_interval_ms = \"x\";\n", "t.conf:1: fast_check_interval_ms must be an integer" },
	{ "fast_check_interval_ms = 4;\n", "t.conf:1: fast_check_interval_ms must be between 5 and 500, not 4" },
	{ "fast_check_interval_ms = 501;\n", "t.conf:1: fast_check_interval_ms must be between 5 and 500, not 501" },
	{ "check_interval_ms = 100;\nfast_check_interval_ms = 101;\n", "t.conf:2: fast_check_interval_ms must be between 5 and 100, not 101" },
	{ "connect_timeout_ms = [1];\n", "t.conf:1: connect_timeout_ms must be an integer" },
	{ "connect_timeout_ms = 9;\n", "t.conf:1: connect_timeout_ms must be between 10 and 600000, not 9" },
	{ "connect_timeout_ms = 600001;\n", "t.conf:1: connect_timeout_ms must be between 10 and 600000, not 600001" },
	{ "query_timeout_ms = \"1s\";\n", "t.conf:1: query_timeout_ms must be an integer" },
	{ "query_timeout_ms = 9;\n", "t.conf:1: query_timeout_ms must be between 10 and 600000, not 9" },
	{ "query_timeout_ms = 600001;\n", "t.conf:1: query_timeout_ms must be between 10 and 600000, not 600001" },
	{ "reconnect_max_ms = 1.5;\n", "t.conf:1: reconnect_max_ms must be an integer" },
	{ "reconnect_max_ms = 9;\n", "t.conf:1: reconnect_max_ms must be between 10 and 2147483647, not 9" },
	{ "reconnect_max_ms = 3000000000L;\n", "t.conf:1: reconnect_max_ms must be between 10 and 2147483647, not 3000000000" },
	{ "max_fails = \"3\";\n", "t.conf:1: max_fails must be an integer" },
	{ "max_fails = 0;\n", "t.conf:1: max_fails must be between 1 and 1000, not 0" },
	{ "max_fails = 1001;\n", "t.conf:1: max_fails must be between 1 and 1000, not 1001" },
	{ "connect_check_interval_ms = \"5s\";\n", "t.conf:1: connect_check_interval_ms must be an integer" },
	{ "connect_check_interval_ms = -1;\n", "t.conf:1: connect_check_interval_ms must be between 0 and 3600000, not -1" },
	{ "connect_check_interval_ms = 3600001;\n", "t.conf:1: connect_check_interval_ms must be between 0 and 3600000, not 3600001" },
	{ "max_fails = 3;\nconnect_check_interval_ms = 99;\n", "t.conf:2: connect_check_interval_ms must be 0 (off) or at least 100, not 99" },
	{ "sync_max_lag_ms = \"1s\";\n", "t.conf:1: sync_max_lag_ms must be an integer" },
	{ "sync_max_lag_ms = -1;\n", "t.conf:1: sync_max_lag_ms must be at least 0, not -1" },
	{ "sync_max_lag_bytes = 1e6;\n", "t.conf:1: sync_max_lag_bytes must be an integer" },
	{ "sync_max_lag_bytes = -1L;\n", "t.conf:1: sync_max_lag_bytes must be at least 0, not -1" },
	/* libconfig 1.5 would wrap this to -1474836480 without a word. */
	{ "sync_max_lag_bytes = 20000000000;\n", "t.conf:1: sync_max_lag_bytes does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	{ "sync_max_lag_bytes =\n  4294968296;\n", "t.conf:1: sync_max_lag_bytes does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	/* libconfig keeps the low 32 bits of a hex literal: 3 here. */
	{ "max_fails = 0x100000003;\n", "t.conf:1: max_fails does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	{ "sync_max_lag_bytes = 0xFFFFFFFF;\n", "t.conf:1: sync_max_lag_bytes does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	{ "sync_max_lag_ms = 0x80000000;\n", "t.conf:1: sync_max_lag_ms does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	{ "max_fails = 0x1000000000000000000003;\n", "t.conf:1: max_fails does not fit in 32 bits: write it with an L suffix (1000000000000L)" },
	{ "socket_max_clients = 0;\n", "t.conf:1: socket_max_clients must be between 1 and 1000000, not 0" },
	{ "socket_max_clients = \"9\";\n", "t.conf:1: socket_max_clients must be an integer" },
	{ "http_max_clients = 1000001;\n", "t.conf:1: http_max_clients must be between 1 and 1000000, not 1000001" },
	{ "http_request_timeout_ms = 99;\n", "t.conf:1: http_request_timeout_ms must be between 100 and 3600000, not 99" },
};

START_TEST(test_rejects_bad_top_level_setting)
{
	char	text[1024];

	snprintf(text, sizeof text, "%s%s", bad_top[_i].text, CLUSTERS);
	expect_error(text, bad_top[_i].want);
}
END_TEST

/* A cluster body: line 1 holds "clusters = ( {", the body starts line 2. */
static const struct bad bad_cluster[] = {
	{ "name = \"a\"; hosts = (\"x:1\");\ntypo = 1;\n", "t.conf:3: unknown setting 'typo'" },
	{ "name = \"a\"; hosts = (\"x:1\");\nport = 5432;\n", "t.conf:3: unknown setting 'port'" },
	{ "hosts = (\"x:1\");\n", "t.conf:1: cluster has no name" },
	{ "name = 5; hosts = (\"x:1\");\n", "t.conf:2: name must be a string" },
	{ "name = \"\"; hosts = (\"x:1\");\n", "t.conf:2: cluster name \"\" must be 1 to 63 characters of A-Z a-z 0-9 _ . -" },
	{ "name = \"a b\"; hosts = (\"x:1\");\n", "t.conf:2: cluster name \"a b\" must be 1 to 63 characters of A-Z a-z 0-9 _ . -" },
	{ "name = \"a/b\"; hosts = (\"x:1\");\n", "t.conf:2: cluster name \"a/b\" must be 1 to 63 characters of A-Z a-z 0-9 _ . -" },
	{ "name = \"0123456789012345678901234567890123456789012345678901234567890123\"; hosts = (\"x:1\");\n",
	  "t.conf:2: cluster name \"0123456789012345678901234567890123456789012345678901234567890123\" must be 1 to 63 characters of A-Z a-z 0-9 _ . -" },
	{ "name = \"a\";\n", "t.conf:1: cluster 'a' has no hosts" },
	{ "name = \"a\";\nhosts = ();\n", "t.conf:3: hosts must not be empty" },
	{ "name = \"a\";\nhosts = [];\n", "t.conf:3: hosts must not be empty" },
	{ "name = \"a\";\nhosts = \"x:1\";\n", "t.conf:3: hosts must be a list of \"HOST:PORT\" strings" },
	{ "name = \"a\";\nhosts = { h = \"x:1\"; };\n", "t.conf:3: hosts must be a list of \"HOST:PORT\" strings" },
	{ "name = \"a\";\nhosts = (\"x:1\",\n 5432);\n", "t.conf:4: hosts must be a list of \"HOST:PORT\" strings" },
	{ "name = \"a\";\nhosts = (\"db1\");\n", "t.conf:3: bad host \"db1\": no ':PORT'" },
	{ "name = \"a\";\nhosts = (\"db1:0\");\n", "t.conf:3: bad host \"db1:0\": port must be a number from 1 to 65535" },
	{ "name = \"a\";\nhosts = (\"db1:65536\");\n", "t.conf:3: bad host \"db1:65536\": port must be a number from 1 to 65535" },
	{ "name = \"a\";\nhosts = (\"db1:pg\");\n", "t.conf:3: bad host \"db1:pg\": port must be a number from 1 to 65535" },
	{ "name = \"a\";\nhosts = (\"db1:+5432\");\n", "t.conf:3: bad host \"db1:+5432\": port must be a number from 1 to 65535" },
	{ "name = \"a\";\nhosts = (\"db1:5432 \");\n", "t.conf:3: bad host \"db1:5432 \": port must be a number from 1 to 65535" },
	{ "name = \"a\";\nhosts = (\":5432\");\n", "t.conf:3: bad host \":5432\": no host before ':'" },
	{ "name = \"a\";\nhosts = (\"::1:5432\");\n", "t.conf:3: bad host \"::1:5432\": an IPv6 address needs brackets" },
	{ "name = \"a\";\nhosts = (\"[::1:5432\");\n", "t.conf:3: bad host \"[::1:5432\": bad IPv6 address" },
	{ "name = \"a\";\nhosts = (\"[db1]:5432\");\n", "t.conf:3: bad host \"[db1]:5432\": bad IPv6 address" },
	{ "name = \"a\";\nhosts = (\"db 1:5432\");\n", "t.conf:3: bad host \"db 1:5432\": bad host name" },
	{ "name = \"a\";\nhosts = (\"-db1:5432\");\n", "t.conf:3: bad host \"-db1:5432\": bad host name" },
	{ "name = \"a\";\nhosts = (\"run/pg:5432\");\n", "t.conf:3: bad host \"run/pg:5432\": bad host name" },
	{ "name = \"a\";\nhosts = (\"/run/pg,db2:5432\");\n", "t.conf:3: bad host \"/run/pg,db2:5432\": a socket directory must not contain ','" },
	/* Replies carry hosts between spaces (found by tests/fuzz). */
	{ "name = \"a\";\nhosts = (\"/run/my pg:5432\");\n", "t.conf:3: bad host \"/run/my pg:5432\": a socket directory must be printable ASCII without spaces" },
	{ "name = \"a\";\nhosts = (\"/run/p\xc3\xa9:5432\");\n", "t.conf:3: bad host \"/run/p\xc3\xa9:5432\": a socket directory must be printable ASCII without spaces" },
	/* An error stays one line whatever the value quoted (tests/fuzz). */
	{ "name = \"a\";\nhosts = (\"/run/pg\\n:5432\");\n", "t.conf:3: bad host \"/run/pg?:5432\": a socket directory must be printable ASCII without spaces" },
	{ "name = \"a\";\nhosts = (\"db1:543\\x12\");\n", "t.conf:3: bad host \"db1:543?\": port must be a number from 1 to 65535" },
	{ "name = \"a\\tb\"; hosts = (\"x:1\");\n", "t.conf:2: cluster name \"a?b\" must be 1 to 63 characters of A-Z a-z 0-9 _ . -" },
	{ "name = \"a\";\nhosts = (\"x:1\",\n \"y:1\",\n \"x:1\");\n", "t.conf:5: host \"x:1\" is listed twice in cluster 'a'" },
	{ "name = \"a\";\nhosts = (\"db1:5432\", \"DB1:5432\");\n", "t.conf:3: host \"DB1:5432\" is listed twice in cluster 'a'" },
	{ "name = \"a\";\nhosts = (\"[::1]:5432\", \"[0::1]:5432\");\n", "t.conf:3: host \"[0::1]:5432\" is listed twice in cluster 'a'" },
	{ "name = \"a\";\nhosts = (\"/tmp:5432\", \"/tmp:5432\");\n", "t.conf:3: host \"/tmp:5432\" is listed twice in cluster 'a'" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"host=db1 user=u\";\n", "t.conf:3: conninfo must not set host: list the servers in hosts" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"hostaddr=10.0.0.1\";\n", "t.conf:3: conninfo must not set hostaddr: list the servers in hosts" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"user=u port=5432\";\n", "t.conf:3: conninfo must not set port: list the servers in hosts" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"postgresql://db1/postgres\";\n", "t.conf:3: conninfo must not set host: list the servers in hosts" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"user=u dbname\";\n", "t.conf:3: conninfo is not a valid libpq connection string" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = \"nosuchkeyword=1\";\n", "t.conf:3: conninfo is not a valid libpq connection string" },
	{ "name = \"a\"; hosts = (\"x:1\");\nconninfo = 5;\n", "t.conf:3: conninfo must be a string" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = \"0\";\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = 0;\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = -5;\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = \"\";\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = \"12ab\";\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = \"-5\";\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = \"18446744073709551616\";\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = 1.5;\n", "t.conf:3: system_identifier must be a nonzero decimal number (integer or string of digits)" },
	{ "name = \"a\"; hosts = (\"x:1\");\nsystem_identifier = 7301234567890123456;\n", "t.conf:3: system_identifier does not fit in 32 bits: write it as a string or with an L suffix" },
};

/* Listeners: each cluster body has a valid name and hosts on line 2. */
#define LH "name = \"a\"; hosts = (\"x:1\");\n"
static const struct bad bad_listen[] = {
	{ LH "listen = 5;\n", "t.conf:3: listen must be a list of groups ( { role = ...; address = ...; } )" },
	{ LH "listen = ( \"m\" );\n", "t.conf:3: each listener must be a group { role = ...; address = ...; }" },
	{ LH "listen = ( { address = \"127.0.0.1:1\"; } );\n", "t.conf:3: listener has no role" },
	{ LH "listen = ( { role = \"boss\"; address = \"127.0.0.1:1\"; } );\n", "t.conf:3: unknown role \"boss\"" },
	{ LH "listen = ( { role = \"master\"; } );\n", "t.conf:3: listener has no address" },
	{ LH "listen = ( { role = \"master\";\n address = \"127.0.0.1\"; } );\n", "t.conf:4: listener address must be HOST:PORT, [IPV6]:PORT or /DIR:PORT: no ':PORT'" },
	{ LH "listen = ( { role = \"master\"; address = \"/run/pg:0\"; } );\n", "t.conf:3: listener address must be HOST:PORT, [IPV6]:PORT or /DIR:PORT: port must be a number from 1 to 65535" },
	{ LH "listen = ( { role = \"master\"; address = \"::1:5\"; } );\n", "t.conf:3: listener address must be HOST:PORT, [IPV6]:PORT or /DIR:PORT: an IPv6 address needs brackets" },
	{ LH "listen = ( { role = \"master\"; address = \"h:1\";\n wait_ms = -1; } );\n", "t.conf:4: wait_ms must be between 0 and 3600000, not -1" },
	{ LH "listen = ( { role = \"master\"; address = \"h:1\";\n max_clients = 0; } );\n", "t.conf:4: max_clients must be between 1 and 1000000, not 0" },
	{ LH "listen = ( { role = \"master\"; address = \"h:1\";\n connect_timeout_ms = 1; } );\n", "t.conf:4: connect_timeout_ms must be between 10 and 600000, not 1" },
	{ LH "listen = ( { role = \"master\"; address = \"h:1\";\n client_timeout_ms = \"5\"; } );\n", "t.conf:4: client_timeout_ms must be an integer" },
	{ LH "listen = ( { role = \"replica\"; address = \"h:1\";\n max_lag_ms = -5; } );\n", "t.conf:4: max_lag_ms must be between 0 and 4611686018427387904, not -5" },
	{ LH "listen = ( { role = \"replica\"; address = \"h:1\";\n max_lag_bytes = 1.5; } );\n", "t.conf:4: max_lag_bytes must be an integer" },
	{ LH "listen = ( { role = \"replica\"; address = \"h:1\";\n fallback = \"any\"; } );\n", "t.conf:4: fallback must be master or none" },
	{ LH "listen = ( { role = \"replica\"; address = \"h:1\";\n fence_on_lag = 1; } );\n", "t.conf:4: fence_on_lag must be true or false" },
	{ LH "listen = ( { role = \"replica\"; address = \"h:1\";\n port = 1; } );\n", "t.conf:4: unknown setting 'port'" },
	{ LH "listen = ( { role = \"master\"; address = \"h:1\"; },\n { role = \"replica\"; address = \"H:1\"; } );\n", "t.conf:4: listener address \"H:1\" is used twice" },
};

START_TEST(test_rejects_bad_listener)
{
	char	text[1024];

	snprintf(text, sizeof text, CL_OPEN "%s" CL_CLOSE, bad_listen[_i].text);
	expect_error(text, bad_listen[_i].want);
}
END_TEST

START_TEST(test_rejects_listener_address_of_another_cluster)
{
	expect_error("clusters = (\n"
	    " { name = \"a\"; hosts = (\"x:1\"); listen = ( { role = "
	    "\"master\"; address = \"/tmp:5\"; } ); },\n"
	    " { name = \"b\"; hosts = (\"y:1\"); listen = (\n"
	    "   { role = \"master\"; address = \"/tmp:5\"; } ); }\n);\n",
	    "t.conf:4: listener address \"/tmp:5\" is used twice");
}
END_TEST

START_TEST(test_listeners_parse_with_defaults)
{
	struct config		*cfg;
	const struct config_listen *l;
	char			 why[512];

	cfg = config_load_string("clusters = ( { name = \"a\"; hosts = "
	    "(\"x:1\");\n listen = (\n"
	    "  { role = \"master\"; address = \"/run/pgbeacon:5432\"; },\n"
	    "  { role = \"replica\"; address = \"[::1]:6433\"; max_lag_ms = "
	    "5000; max_lag_bytes = 100; fallback = \"none\"; wait_ms = 0;\n"
	    "    fence_on_lag = true; max_clients = 7; connect_timeout_ms = 300;"
	    " client_timeout_ms = 400; }\n ); } );\n", NAME, why, sizeof why);
	ck_assert_msg(cfg != NULL, "%s", why);
	ck_assert_uint_eq(cfg->clusters[0].nlisten, 2);
	l = &cfg->clusters[0].listen[0];
	ck_assert_str_eq(l->address, "/run/pgbeacon:5432");
	ck_assert_str_eq(l->host, "/run/pgbeacon");
	ck_assert_int_eq(l->port, 5432);
	ck_assert(l->is_unix);
	ck_assert_str_eq(l->role, "master");
	ck_assert_int_eq(l->query.want, TOPO_WANT_MASTER);
	ck_assert_int_eq(l->query.max_lag_ms, -1);
	ck_assert_int_eq(l->query.max_lag_bytes, -1);
	ck_assert_int_eq(l->query.fallback, TOPO_FALLBACK_DEFAULT);
	ck_assert_int_eq(l->wait_ms, 5000);
	ck_assert(!l->fence_on_lag);
	ck_assert_int_eq(l->max_clients, 1000);
	ck_assert_int_eq(l->connect_timeout_ms, 2000);
	ck_assert_int_eq(l->client_timeout_ms, 10000);
	l = &cfg->clusters[0].listen[1];
	ck_assert_str_eq(l->host, "::1");
	ck_assert_int_eq(l->port, 6433);
	ck_assert(!l->is_unix);
	ck_assert_int_eq(l->query.want, TOPO_WANT_REPLICA);
	ck_assert_int_eq(l->query.max_lag_ms, 5000);
	ck_assert_int_eq(l->query.max_lag_bytes, 100);
	ck_assert_int_eq(l->query.fallback, TOPO_FALLBACK_NONE);
	ck_assert_int_eq(l->wait_ms, 0);
	ck_assert(l->fence_on_lag);
	ck_assert_int_eq(l->max_clients, 7);
	ck_assert_int_eq(l->connect_timeout_ms, 300);
	ck_assert_int_eq(l->client_timeout_ms, 400);
	/* Listeners are not part of what the monitor compares. */
	config_free(cfg);
}
END_TEST

START_TEST(test_rejects_bad_cluster_setting)
{
	char	text[1024];

	snprintf(text, sizeof text, CL_OPEN "%s" CL_CLOSE,
	    bad_cluster[_i].text);
	expect_error(text, bad_cluster[_i].want);
}
END_TEST

START_TEST(test_rejects_missing_or_empty_clusters)
{
	expect_error("max_fails = 3;\n", "t.conf: no clusters configured");
	expect_error("", "t.conf: no clusters configured");
	expect_error("max_fails = 3;\nclusters = ();\n",
	    "t.conf:2: clusters must not be empty");
	expect_error("max_fails = 3;\nclusters = [];\n",
	    "t.conf:2: clusters must not be empty");
	expect_error("clusters = 5;\n", "t.conf:1: clusters must be a list "
	    "of groups ( { name = ...; hosts = (...); } )");
	expect_error("clusters = { name = \"a\"; hosts = (\"x:1\"); };\n",
	    "t.conf:1: clusters must be a list of groups ( { name = ...; "
	    "hosts = (...); } )");
	/* libconfig dates a list element by the token after it: keep the
	 * ')' on the element's line. */
	expect_error("clusters = (\n\"main\" );\n", "t.conf:2: each cluster "
	    "must be a group { name = ...; hosts = (...); }");
	expect_error("clusters = [ \"main\" ];\n", "t.conf:1: each cluster "
	    "must be a group { name = ...; hosts = (...); }");
}
END_TEST

START_TEST(test_rejects_duplicate_cluster)
{
	expect_error("clusters = (\n"
	    "  { name = \"a\"; hosts = (\"x:1\"); },\n"
	    "  { name = \"b\"; hosts = (\"x:1\"); },\n"
	    "  { name = \"a\"; hosts = (\"y:1\"); }\n"
	    ");\n", "t.conf:4: cluster 'a' is defined twice");
}
END_TEST

START_TEST(test_conninfo_password_never_in_errors)
{
	static const char *const conninfos[] = {
		"password=s3cret host=db1",
		"password=s3cret hostaddr=10.1.1.1",
		"port=1 password=s3cret",
		"password=s3cret dbname",
		"password s3cret",
		"password='s3cret",
		"password=s3cret nosuch=s3cret",
		"postgresql://u:s3cret@db1/x",
		"postgresql://u:s3cret@/x?nosuch=s3cret",
		"postgresql://u:s3cret@[::1/x",
	};
	char		 text[512];
	size_t		 i;

	for (i = 0; i < sizeof conninfos / sizeof conninfos[0]; i++) {
		snprintf(text, sizeof text, CL_OPEN "name = \"a\"; "
		    "hosts = (\"x:1\");\nconninfo = \"%s\";\n" CL_CLOSE,
		    conninfos[i]);
		ck_assert_ptr_null(load(text));
		ck_assert_msg(strncmp(err, "t.conf:3: conninfo ", 19) == 0,
		    "%s: %s", conninfos[i], err);
		ck_assert_msg(strstr(err, "s3cret") == NULL, "leaked: %s", err);
	}
}
END_TEST

START_TEST(test_client_limits_default_and_set)
{
	struct config	*cfg;

	cfg = load(CLUSTERS);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->socket_max_clients, 4096);
	ck_assert_int_eq(cfg->http_max_clients, 2048);
	ck_assert_int_eq(cfg->http_request_timeout_ms, 10000);
	ck_assert_str_eq(cfg->warning, "");
	config_free(cfg);
	cfg = load("socket_max_clients = 10;\nhttp_max_clients = 0x20;\n"
	    "http_request_timeout_ms = 100;\nmax_fails = 0x7;\n" CLUSTERS);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->socket_max_clients, 10);
	ck_assert_int_eq(cfg->http_max_clients, 32);
	ck_assert_int_eq(cfg->http_request_timeout_ms, 100);
	ck_assert_int_eq(cfg->max_fails, 7);
	config_free(cfg);
	/* Within 32 bits, or with L, a hex literal is what it says. */
	cfg = load("sync_max_lag_bytes = 0x7FFFFFFF;\nsync_max_lag_ms = "
	    "0x100000003L;\n" CLUSTERS);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 0x7FFFFFFF);
	ck_assert_int_eq(cfg->sync_max_lag_ms, INT64_C(0x100000003));
	config_free(cfg);
}
END_TEST

START_TEST(test_socket_mode_open_to_others_is_warned)
{
	static const char *const open_modes[] = { "0777", "0666", "0604",
	    "0661", "0007" };
	struct config	*cfg;
	char		 text[512];
	size_t		 i;

	for (i = 0; i < sizeof open_modes / sizeof open_modes[0]; i++) {
		snprintf(text, sizeof text, "max_fails = 3;\nsocket_mode = "
		    "\"%s\";\n" CLUSTERS, open_modes[i]);
		cfg = load(text);
		ck_assert_msg(cfg != NULL, "%s", err);
		ck_assert_msg(strncmp(cfg->warning, "t.conf:2: socket_mode \"",
		    23) == 0 && strstr(cfg->warning, "every local user") !=
		    NULL, "%s: %s", open_modes[i], cfg->warning);
		config_free(cfg);
	}
	cfg = load("socket_mode = \"0777\";\n" CLUSTERS);
	ck_assert_ptr_nonnull(strstr(cfg->warning, "write to it"));
	config_free(cfg);
	cfg = load("socket_mode = \"0660\";\n" CLUSTERS);
	ck_assert_str_eq(cfg->warning, "");
	config_free(cfg);
	cfg = load("socket_mode = \"0770\";\n" CLUSTERS);
	ck_assert_str_eq(cfg->warning, "");
	config_free(cfg);
}
END_TEST

START_TEST(test_file_digest_tells_changed_files_apart)
{
	char		path[128];
	uint64_t	a, b, c;

	snprintf(path, sizeof path, "%s/d.conf", tmpdir);
	write_file(path, "max_fails = 3;\nx = ;\n");
	ck_assert_int_eq(config_file_digest(path, &a), 0);
	ck_assert_int_eq(config_file_digest(path, &b), 0);
	ck_assert(a == b);
	write_file(path, "max_fails = 3;\nx = 1;\n");
	ck_assert_int_eq(config_file_digest(path, &c), 0);
	ck_assert(a != c);
	snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
	ck_assert_int_eq(config_file_digest(path, &c), -1);
}
END_TEST

START_TEST(test_syntax_error_names_its_line)
{
	expect_error("max_fails = 3;\ncheck_interval_ms = ;\n" CLUSTERS,
	    "t.conf:2: syntax error");
	expect_error("max_fails = 3;\n\n\nclusters = ( { name = \"a\" );\n",
	    "t.conf:4: syntax error");
	expect_error("max_fails = 3;\nmax_fails = 4;\n" CLUSTERS,
	    "t.conf:2: duplicate setting name");
}
END_TEST

START_TEST(test_unreadable_file_says_why)
{
	char	path[128], want[256];

	snprintf(path, sizeof path, "%s/missing.conf", tmpdir);
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	snprintf(want, sizeof want, "%s: cannot read: %s", path,
	    strerror(ENOENT));
	ck_assert_str_eq(err, want);

	ck_assert_ptr_null(config_load(tmpdir, err, sizeof err));
	snprintf(want, sizeof want, "%s: cannot read: %s", tmpdir,
	    strerror(EISDIR));
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_empty_state_file_means_none)
{
	struct config	*cfg = expect_ok("state_file = \"\";\n" CLUSTERS);

	ck_assert_str_eq(cfg->state_file, "");
	config_free(cfg);
}
END_TEST

/* ---- limits ---------------------------------------------------------- */

START_TEST(test_accepts_range_edges)
{
	struct config	*cfg;

	cfg = expect_ok("check_interval_ms = 10;\nfast_check_interval_ms = 10;\n"
	    "connect_timeout_ms = 10;\nquery_timeout_ms = 10;\n"
	    "reconnect_max_ms = 10;\nmax_fails = 1;\nsync_max_lag_ms = 0;\n"
	    "sync_max_lag_bytes = 0;\nsocket_mode = \"0\";\n" CLUSTERS);
	ck_assert_int_eq(cfg->check_interval_ms, 10);
	ck_assert_int_eq(cfg->fast_check_interval_ms, 10);
	ck_assert_int_eq(cfg->connect_timeout_ms, 10);
	ck_assert_int_eq(cfg->query_timeout_ms, 10);
	ck_assert_int_eq(cfg->reconnect_max_ms, 10);
	ck_assert_int_eq(cfg->max_fails, 1);
	ck_assert_int_eq(cfg->sync_max_lag_ms, 0);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 0);
	ck_assert_int_eq(cfg->socket_mode, 0);
	config_free(cfg);

	cfg = expect_ok("check_interval_ms = 3600000;\n"
	    "fast_check_interval_ms = 3600000;\nconnect_timeout_ms = 600000;\n"
	    "query_timeout_ms = 600000;\nreconnect_max_ms = 2147483647;\n"
	    "max_fails = 1000;\nsync_max_lag_ms = 9223372036854775807L;\n"
	    "sync_max_lag_bytes = 2147483647;\nsocket_mode = \"00777\";\n"
	    CLUSTERS);
	ck_assert_int_eq(cfg->check_interval_ms, 3600000);
	ck_assert_int_eq(cfg->fast_check_interval_ms, 3600000);
	ck_assert_int_eq(cfg->connect_timeout_ms, 600000);
	ck_assert_int_eq(cfg->query_timeout_ms, 600000);
	ck_assert_int_eq(cfg->reconnect_max_ms, 2147483647);
	ck_assert_int_eq(cfg->max_fails, 1000);
	ck_assert_int_eq(cfg->sync_max_lag_ms, INT64_MAX);
	ck_assert_int_eq(cfg->sync_max_lag_bytes, 2147483647);
	ck_assert_int_eq(cfg->socket_mode, 0777);
	config_free(cfg);
}
END_TEST

/* 0 turns the connection checks off; else at least 100 ms apart. */
START_TEST(test_connect_check_interval_edges)
{
	static const int ok[] = { 0, 100, 3600000 };
	struct config	*cfg;
	char		 text[256];
	size_t		 i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		snprintf(text, sizeof text, "connect_check_interval_ms = %d;\n"
		    CLUSTERS, ok[i]);
		cfg = expect_ok(text);
		ck_assert_int_eq(cfg->connect_check_interval_ms, ok[i]);
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_accepts_name_and_port_edges)
{
	struct config	*cfg;

	cfg = expect_ok("clusters = ( { name = \"012345678901234567890123456789"
	    "012345678901234567890123456789012\";\n"
	    "hosts = ( \"h:1\", \"h:65535\", \"H:2\", \"[::1]:1\" ); } );\n");
	ck_assert_uint_eq(strlen(cfg->clusters[0].name), 63);
	ck_assert_int_eq(cfg->clusters[0].hosts[0].port, 1);
	ck_assert_int_eq(cfg->clusters[0].hosts[1].port, 65535);
	ck_assert_str_eq(cfg->clusters[0].hosts[3].host, "::1");
	config_free(cfg);

	cfg = expect_ok("clusters = ( { name = \"a\"; hosts = ( \"h:1\" );\n"
	    "system_identifier = \"18446744073709551615\"; } );\n");
	ck_assert_uint_eq(cfg->clusters[0].system_identifier, UINT64_MAX);
	config_free(cfg);

	cfg = expect_ok("clusters = ( { name = \"a\"; hosts = ( \"h:1\" );\n"
	    "system_identifier = 2147483647; } );\n");
	ck_assert_uint_eq(cfg->clusters[0].system_identifier, 2147483647);
	config_free(cfg);
}
END_TEST

START_TEST(test_socket_path_must_fit_sun_path)
{
	char		 text[512], path[200], want[512];
	struct config	*cfg;

	/* 107 bytes plus the NUL fill sun_path exactly. */
	memset(path, 'a', 107);
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof text, "socket = \"%s\";\n" CLUSTERS, path);
	cfg = expect_ok(text);
	ck_assert_str_eq(cfg->socket_path, path);
	config_free(cfg);

	path[107] = 'a';
	path[108] = '\0';
	snprintf(text, sizeof text, "socket = \"%s\";\n" CLUSTERS, path);
	expect_error(text, "t.conf:1: socket must be shorter than 108 bytes");
	snprintf(text, sizeof text, "http_listen = \"%s\";\n" CLUSTERS, path);
	expect_error(text,
	    "t.conf:1: http_listen must be shorter than 108 bytes");

	/* A socket directory leaves room for "/.s.PGSQL.NNNNN". */
	path[91] = '\0';
	snprintf(text, sizeof text, "clusters = ( { name = \"a\";\n"
	    "hosts = ( \"%s:5432\" ); } );\n", path);
	cfg = expect_ok(text);
	ck_assert_str_eq(cfg->clusters[0].hosts[0].host, path);
	config_free(cfg);

	path[91] = 'a';
	path[92] = '\0';
	snprintf(text, sizeof text, "clusters = ( { name = \"a\";\n"
	    "hosts = ( \"%s:5432\" ); } );\n", path);
	snprintf(want, sizeof want, "t.conf:2: bad host \"%s:5432\": socket "
	    "directory too long", path);
	expect_error(text, want);
}
END_TEST

START_TEST(test_small_error_buffer_is_cut_not_overflowed)
{
	char	small[12];

	memset(small, 'x', sizeof small);
	ck_assert_ptr_null(config_load_string("max_fails = 0;\n" CLUSTERS,
	    NAME, small, 8));
	ck_assert_str_eq(small, "t.conf:");
	ck_assert_int_eq(small[8], 'x');
}
END_TEST

/* --- the grammar of common/ (issue 12) ---------------------------------- */

/* A listener's max_lag_* stop where RESOLVE's options do (2^62). */
START_TEST(test_listener_max_lag_stops_at_the_protocol_bound)
{
	static const char *const names[] = { "max_lag_ms", "max_lag_bytes" };
	static const char *const over[] = { "4611686018427387905",
		"9223372036854775807" };
	char		 text[512], want[256];
	struct config	*cfg;
	size_t		 i, j;

	ck_assert(pgbc_opts[PGBC_OPT_MAX_LAG_MS].max == PGBC_LAG_MAX);
	ck_assert(pgbc_opts[PGBC_OPT_MAX_LAG_BYTES].max == PGBC_LAG_MAX);
	cfg = expect_ok(CL_OPEN LH "listen = ( { role = \"sync_by_time\"; "
	    "address = \"h:1\";\n max_lag_ms = 4611686018427387904L;\n"
	    " max_lag_bytes = 4611686018427387904L; } );\n" CL_CLOSE);
	ck_assert(cfg->clusters[0].listen[0].query.max_lag_ms == PGBC_LAG_MAX);
	ck_assert(cfg->clusters[0].listen[0].query.max_lag_bytes ==
	    PGBC_LAG_MAX);
	config_free(cfg);

	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			snprintf(text, sizeof text, CL_OPEN LH "listen = ( { "
			    "role = \"replica\"; address = \"h:1\";\n %s = "
			    "%sL; } );\n" CL_CLOSE, names[i], over[j]);
			snprintf(want, sizeof want, "t.conf:4: %s must be "
			    "between 0 and 4611686018427387904, not %s",
			    names[i], over[j]);
			expect_error(text, want);
		}
	}
}
END_TEST

/*
 * True when a bold line of man page text (".B x" or ".BR x \", \" y"),
 * between sec and end, names the setting name.
 */
static bool
man_names(const char *sec, const char *end, const char *name)
{
	const char	*line, *p;
	size_t		 len = strlen(name);

	for (line = sec; line != NULL && line < end;
	    line = strchr(line + 1, '\n')) {
		if (strncmp(line, "\n.B ", 4) != 0 &&
		    strncmp(line, "\n.BR ", 5) != 0)
			continue;
		for (p = line + 3; *p != '\0' && *p != '\n'; p++) {
			if (p[-1] == ' ' && strncmp(p, name, len) == 0 &&
			    (p[len] == ' ' || p[len] == '\n'))
				return (true);
		}
	}
	return (false);
}

/*
 * pgbeacon.conf(5) documents every setting the parser accepts, in its
 * section, so that the page and the parser cannot drift apart.  Run from
 * the top of the tree, as make test does.
 */
START_TEST(test_man_page_documents_every_setting)
{
	static const struct {
		enum config_level	 level;
		const char		*section;
	} levels[] = {
		{ CONFIG_LEVEL_TOP, "\n.SH GLOBAL SETTINGS" },
		{ CONFIG_LEVEL_CLUSTER, "\n.SH CLUSTER SETTINGS" },
		{ CONFIG_LEVEL_LISTEN, "\n.SH LISTENER SETTINGS" },
	};
	FILE		*f = fopen("docs/man/pgbeacon.conf.5", "r");
	char		 page[32768], *sec, *end;
	const char *const *name;
	size_t		 n, i;

	ck_assert_msg(f != NULL, "docs/man/pgbeacon.conf.5: %s",
	    strerror(errno));
	n = fread(page, 1, sizeof page - 1, f);
	fclose(f);
	ck_assert(n > 0 && n < sizeof page - 1);
	page[n] = '\0';
	for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		sec = strstr(page, levels[i].section);
		ck_assert_msg(sec != NULL, "no%s", levels[i].section);
		end = strstr(sec + 1, "\n.SH ");
		ck_assert_ptr_nonnull(end);
		for (name = config_setting_names(levels[i].level); *name != NULL;
		    name++)
			ck_assert_msg(man_names(sec, end, *name),
			    "pgbeacon.conf(5),%s: no entry for '%s'",
			    levels[i].section + 4, *name);
	}
	/* The check itself: a name the page lacks is found missing. */
	ck_assert(!man_names(page, page + n, "no_such_setting"));
}
END_TEST

/* The whole of path (run from the top of the tree), in buf. */
static void
read_doc(const char *path, char *buf, size_t size)
{
	FILE	*f = fopen(path, "r");
	size_t	 n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	ck_assert_msg(n > 0 && n < size - 1, "%s: %zu bytes", path, n);
	buf[n] = '\0';
}

/* docs/running.md's table of settings has a row for every top-level
 * setting. */
START_TEST(test_readme_table_lists_every_setting)
{
	static char	 readme[256 * 1024];
	const char	*sec, *end;
	const char *const *name;
	char		 row[128];

	read_doc("docs/running.md", readme, sizeof readme);
	sec = strstr(readme, "\n## Configuration\n");
	ck_assert_ptr_nonnull(sec);
	end = strstr(sec + 1, "\n## ");
	ck_assert_ptr_nonnull(end);
	for (name = config_setting_names(CONFIG_LEVEL_TOP); *name != NULL;
	    name++) {
		const char	*p, *line;
		bool		 found = false;

		/* In the first cell of a row: "| `a`" or "| `a`, `b`". */
		snprintf(row, sizeof row, "`%s`", *name);
		for (p = strstr(sec, row); p != NULL && p < end && !found;
		    p = strstr(p + 1, row)) {
			for (line = p; line[-1] != '\n'; line--)
				continue;
			found = strncmp(line, "| ", 2) == 0 &&
			    strchr(line + 2, '|') > p;
		}
		ck_assert_msg(found, "docs/running.md's configuration table has no "
		    "row for '%s'", *name);
	}
}
END_TEST

/*
 * docs/running.md and pgbeacon.conf(5) name the settings a reload cannot apply
 * (config_restart_changes() of two files that differ in every setting),
 * in the sentence that ends "take effect at the next restart".
 */
START_TEST(test_docs_name_the_settings_a_reload_keeps)
{
	static const char *const docs[] = { "docs/running.md",
	    "docs/man/pgbeacon.conf.5" };
	static char	 text[256 * 1024];
	struct config	*a, *b;
	char		 names[256], *name, *save = NULL;
	const char	*at, *from;
	size_t		 i, n;

	a = expect_ok(CLUSTERS);
	b = expect_ok("socket = \"/tmp/o.sock\";\nsocket_mode = \"0600\";\n"
	    "http_listen = \"127.0.0.1:1\";\nlog_level = \"debug\";\n"
	    "state_file = \"\";\ncheck_interval_ms = 600;\n"
	    "fast_check_interval_ms = 30;\nconnect_timeout_ms = 3000;\n"
	    "query_timeout_ms = 3000;\nreconnect_max_ms = 6000;\n"
	    "max_fails = 4;\nconnect_check_interval_ms = 0;\n"
	    "sync_max_lag_ms = 7;\nsync_max_lag_bytes = 7;\n"
	    "socket_max_clients = 7;\nhttp_max_clients = 7;\n"
	    "http_request_timeout_ms = 700;\n" CLUSTERS);
	n = config_restart_changes(a, b, names, sizeof names);
	ck_assert_str_eq(names, "socket, socket_mode, http_listen, state_file");
	ck_assert_uint_eq(n, 4);
	config_free(a);
	config_free(b);
	for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		char	 copy[sizeof names];

		read_doc(docs[i], text, sizeof text);
		at = strstr(text, "take effect at");
		ck_assert_msg(at != NULL, "%s: no \"take effect at\"", docs[i]);
		ck_assert_msg(strncmp(at, "take effect at\nthe next restart",
		    31) == 0 || strncmp(at, "take effect at the next restart",
		    31) == 0, "%s: %.40s", docs[i], at);
		from = at - 160 > text ? at - 160 : text;
		memcpy(copy, names, sizeof copy);
		for (name = strtok_r(copy, ", ", &save); name != NULL;
		    name = strtok_r(NULL, ", ", &save)) {
			const char *p = strstr(from, name);

			ck_assert_msg(p != NULL && p < at, "%s does not say "
			    "that %s takes effect at restart", docs[i], name);
		}
	}
}
END_TEST

/* socket_mode: every character is an octal digit, even where the value
 * would still be below 0777. */
START_TEST(test_socket_mode_digits_are_octal)
{
	static const char *const bad[] = { "9", "08", "8", "0/", "07:" };
	char			 text[256], want[256];
	struct config		*cfg;
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "socket_mode = \"%s\";\n" CLUSTERS,
		    bad[i]);
		snprintf(want, sizeof want, "t.conf:1: socket_mode must be "
		    "octal digits from \"0\" to \"0777\", not \"%s\"", bad[i]);
		expect_error(text, want);
	}
	cfg = expect_ok("socket_mode = \"7\";\n" CLUSTERS);
	ck_assert_int_eq(cfg->socket_mode, 07);
	config_free(cfg);
	cfg = expect_ok("socket_mode = \"0001\";\n" CLUSTERS);
	ck_assert_int_eq(cfg->socket_mode, 01);
	config_free(cfg);
}
END_TEST

/* Writes a valid file of exactly size bytes (the rest comment lines). */
static void
write_padded(const char *path, size_t size)
{
	static const char	head[] = CLUSTERS;
	static char		line[1000];
	FILE			*f = fopen(path, "w");
	size_t			 left = size - (sizeof head - 1), k;

	ck_assert_ptr_nonnull(f);
	memset(line, 'x', sizeof line);
	line[0] = '#';
	line[sizeof line - 1] = '\n';
	ck_assert_int_eq(fputs(head, f) >= 0, 1);
	for (; left > 0; left -= k) {
		k = left > sizeof line ? sizeof line : left;
		/* "#xx...x\n" of k bytes, or a blank line when k is 1 */
		ck_assert_uint_eq(fwrite(line, 1, k - 1, f), k - 1);
		ck_assert_int_eq(fputc('\n', f), '\n');
	}
	ck_assert_int_eq(fclose(f), 0);
}

/* The file-size limit: 4 MiB less a read's margin loads, 4 MiB + 1 is
 * refused with EFBIG, not read into a larger buffer. */
START_TEST(test_file_size_limit)
{
	char		 path[128], want[256];
	struct config	*cfg;

	snprintf(path, sizeof path, "%s/big.conf", tmpdir);
	write_padded(path, 4 * 1024 * 1024 - 4096);
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "refused: %s", err);
	config_free(cfg);

	write_padded(path, 4 * 1024 * 1024 + 1);
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	snprintf(want, sizeof want, "%s: cannot read: %s", path,
	    strerror(EFBIG));
	ck_assert_str_eq(err, want);
}
END_TEST

/* A conninfo setting several server keywords is refused for the first. */
START_TEST(test_conninfo_names_the_first_server_keyword)
{
	expect_error(CL_OPEN "name = \"a\"; hosts = (\"x:1\");\n"
	    "conninfo = \"host=db1 port=5432\";\n" CL_CLOSE,
	    "t.conf:3: conninfo must not set host: list the servers in hosts");
}
END_TEST

/* --- mut3: third round of mutants (issue 11 §4), config_table.c ---------
 * Inputs and the outcome they must give, whatever code reads them. */

/* A literal libconfig wrapped to 32 bits is refused, however written; one
 * it read right is taken, and so are look-alikes of the setting's name
 * elsewhere on its line or on earlier lines. */
START_TEST(test_mut3_int_literal_forms)
{
	static const char *const wrapped[] = {
		"max_fails : 4294967299;\n",		/* ':' for '=' */
		"max_fails = -4294967299;\n",		/* wraps to -3 */
		"max_fails = -2147483649;\n",		/* one below INT32_MIN */
		"max_fails = +2147483648;\n",		/* one above INT32_MAX */
		"max_fails = 0X100000003;\n",		/* upper-case X */
		"max_fails = 04294967299;\n",		/* a leading 0 is decimal */
		"max_fails = 04000000000;\n",
		/* look-alikes that are not the setting are passed over */
		"/* max_fails = 1L */ max_fails = 4294967299;\n",
		"/* max_fails = 0x1L */ max_fails = 4294967299;\n",
		"/* max_fails = x */ max_fails = 4294967299;\n",
		"/* max_fails = 1L max_fails = x */ max_fails = 4294967299;\n",
		"/* max_fails = -1L */ max_fails = 2147483648;\n",
	};
	static const struct {
		const char	*text;
		int		 max_fails;
	} taken[] = {
		{ "# max_fails = 4294967299\nmax_fails = 3;\n", 3 },
		{ "#\n# max_fails = 4294967299\nmax_fails = 2;\n", 2 },
		{ "/* xmax_fails = 4294967299 */ max_fails = 4;\n", 4 },
		{ "/* max_failsx = 4294967299 */ max_fails = 4;\n", 4 },
		{ "/* _max_fails = 4294967299 */ max_fails = 5;\n", 5 },
		{ "/* -max_fails = 4294967299 */ max_fails = 6;\n", 6 },
		{ "/* *max_fails = 4294967299 */ max_fails = 7;\n", 7 },
		{ "max_fails /* n */ = 8;\n", 8 },
		{ "max_fails = 09;\n", 9 },
	};
	char		 text[512], want[256];
	struct config	*cfg;
	size_t		 i;

	for (i = 0; i < sizeof wrapped / sizeof wrapped[0]; i++) {
		snprintf(text, sizeof text, "%s" CLUSTERS, wrapped[i]);
		expect_error(text, "t.conf:1: max_fails does not fit in 32 "
		    "bits: write it with an L suffix (1000000000000L)");
	}
	for (i = 0; i < sizeof taken / sizeof taken[0]; i++) {
		snprintf(text, sizeof text, "%s" CLUSTERS, taken[i].text);
		cfg = expect_ok(text);
		ck_assert_int_eq(cfg->max_fails, taken[i].max_fails);
		config_free(cfg);
	}
	/* INT32_MIN itself is read right: the range check speaks. */
	snprintf(want, sizeof want, "t.conf:1: max_fails must be between 1 "
	    "and 1000, not -2147483648");
	expect_error("max_fails = -2147483648;\n" CLUSTERS, want);
	/* A decimal literal with L is 64 bits. */
	cfg = expect_ok("sync_max_lag_bytes = 20000000000L;\n" CLUSTERS);
	ck_assert(cfg->sync_max_lag_bytes == INT64_C(20000000000));
	config_free(cfg);
}
END_TEST

/* Settings of an @include file: read, and named by their file in errors. */
START_TEST(test_mut3_include_file)
{
	char		 path[128], inc[128];
	struct config	*cfg;

	snprintf(path, sizeof path, "%s/main.conf", tmpdir);
	snprintf(inc, sizeof inc, "%s/inc.conf", tmpdir);
	/* The look-alike after the @include line belongs to the main file. */
	write_file(path, "@include \"inc.conf\"\n# max_fails = 4294967299\n"
	    CLUSTERS);
	write_file(inc, "max_fails = 4;\nsync_max_lag_ms = 7;\n");
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_int_eq(cfg->max_fails, 4);
	ck_assert_int_eq(cfg->sync_max_lag_ms, 7);
	config_free(cfg);

	write_file(inc, "\nmax_fails = 0;\n");
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	/* As the @include line names it. */
	ck_assert_str_eq(err, "inc.conf:2: max_fails must be between 1 and "
	    "1000, not 0");
}
END_TEST

/* Errors stay one line: controls and DEL in a quoted value become '?';
 * a 1-byte buffer gets "". */
START_TEST(test_mut3_error_text_edges)
{
	char	small[4] = "XXX";

	expect_error("log_level = \"a\\x7fb\\x01\";\n" CLUSTERS,
	    "t.conf:1: log_level must be error, warn, info or debug, not "
	    "\"a?b?\"");
	ck_assert_ptr_null(config_load_string("max_fails = 0;\n" CLUSTERS,
	    NAME, small, 1));
	ck_assert_int_eq(small[0], '\0');
	ck_assert_int_eq(small[1], 'X');
}
END_TEST

static bool
mut3_has_name(enum config_level level, const char *want)
{
	const char *const *name;

	for (name = config_setting_names(level); *name != NULL; name++)
		if (strcmp(*name, want) == 0)
			return true;
	return false;
}

/* The name lists hold every setting, the first of each table too. */
START_TEST(test_mut3_setting_names)
{
	static const struct {
		enum config_level	 level;
		const char		*name;
	} want[] = {
		{ CONFIG_LEVEL_TOP, "socket" },
		{ CONFIG_LEVEL_TOP, "max_fails" },
		{ CONFIG_LEVEL_TOP, "clusters" },
		{ CONFIG_LEVEL_CLUSTER, "name" },
		{ CONFIG_LEVEL_CLUSTER, "system_identifier" },
		{ CONFIG_LEVEL_LISTEN, "role" },
		{ CONFIG_LEVEL_LISTEN, "fence_on_lag" },
	};
	size_t	i;

	for (i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_msg(mut3_has_name(want[i].level, want[i].name),
		    "no '%s'", want[i].name);
	ck_assert(!mut3_has_name(CONFIG_LEVEL_TOP, "name"));
	ck_assert(!mut3_has_name(CONFIG_LEVEL_LISTEN, "hosts"));
}
END_TEST

/* config_restart_changes: "" in a 1-byte buffer, nothing in none. */
START_TEST(test_mut3_restart_changes_tiny_buffers)
{
	struct config	*a, *b;
	char		 buf[4];

	a = expect_ok("socket = \"/tmp/a.sock\";\n" CLUSTERS);
	b = expect_ok("socket = \"/tmp/b.sock\";\n" CLUSTERS);
	memcpy(buf, "XXX", 4);
	ck_assert_uint_eq(config_restart_changes(a, a, buf, 1), 0);
	ck_assert_int_eq(buf[0], '\0');
	ck_assert_int_eq(buf[1], 'X');
	memcpy(buf, "XXX", 4);
	ck_assert_uint_eq(config_restart_changes(a, b, buf, 0), 1);
	ck_assert_int_eq(buf[0], 'X');
	ck_assert_uint_eq(config_restart_changes(a, a, buf, 0), 0);
	ck_assert_int_eq(buf[0], 'X');
	config_free(a);
	config_free(b);
}
END_TEST

/* Refused with an error that starts with want. */
static void
mut3_refused(const char *text, const char *want)
{
	struct config	*cfg = load(text);

	ck_assert_msg(cfg == NULL, "accepted: %s", text);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
	    "for:\n%s\nwant: %s...\ngot:  %s", text, want, err);
}

/* Host names of a cluster at their edges: length, first byte, DEL in a
 * socket directory, a lone '['. */
START_TEST(test_mut3_host_edges)
{
	char		 name[300], text[600];
	struct config	*cfg;

	memset(name, 'a', sizeof name);
	name[253] = '\0';
	snprintf(text, sizeof text, CL_OPEN "name = \"m\"; hosts = "
	    "(\"%s:5432\");\n" CL_CLOSE, name);
	cfg = expect_ok(text);
	ck_assert_str_eq(cfg->clusters[0].hosts[0].host, name);
	config_free(cfg);
	name[253] = 'a';
	name[254] = '\0';
	snprintf(text, sizeof text, CL_OPEN "name = \"m\"; hosts = "
	    "(\"%s:5432\");\n" CL_CLOSE, name);
	mut3_refused(text, "t.conf:2: bad host \"");

	mut3_refused(CL_OPEN "name = \"m\"; hosts = (\".db:5432\");\n"
	    CL_CLOSE, "t.conf:2: bad host \".db:5432\"");
	mut3_refused(CL_OPEN "name = \"m\"; hosts = (\"-db:5432\");\n"
	    CL_CLOSE, "t.conf:2: bad host \"-db:5432\"");
	mut3_refused(CL_OPEN "name = \"m\"; hosts = (\"*db:5432\");\n"
	    CL_CLOSE, "t.conf:2: bad host \"*db:5432\"");
	cfg = expect_ok(CL_OPEN "name = \"m\"; hosts = (\"d.b:1\", \"d-b:2\", "
	    "\"d_b:3\");\n" CL_CLOSE);
	ck_assert_str_eq(cfg->clusters[0].hosts[0].host, "d.b");
	config_free(cfg);

	mut3_refused(CL_OPEN "name = \"m\"; hosts = (\"/tmp/a\\x7f:5432\");\n"
	    CL_CLOSE, "t.conf:2: bad host \"");
	mut3_refused(CL_OPEN "name = \"m\"; hosts = (\"/tmp/a\\x80:5432\");\n"
	    CL_CLOSE, "t.conf:2: bad host \"");
	cfg = expect_ok(CL_OPEN "name = \"m\"; hosts = (\"/tmp/~a:5432\");\n"
	    CL_CLOSE);
	ck_assert_str_eq(cfg->clusters[0].hosts[0].host, "/tmp/~a");
	config_free(cfg);

	expect_error(CL_OPEN "name = \"m\"; hosts = (\"[:5432\");\n" CL_CLOSE,
	    "t.conf:2: bad host \"[:5432\": bad IPv6 address");
	/* The root directory is a socket directory like any other. */
	cfg = expect_ok(CL_OPEN "name = \"m\"; hosts = (\"/:5432\");\n"
	    CL_CLOSE);
	ck_assert_str_eq(cfg->clusters[0].hosts[0].host, "/");
	config_free(cfg);
}
END_TEST

/* state_file is shorter than 4000 bytes, as its error says. */
START_TEST(test_mut3_state_file_length)
{
	static char	 path[4001], text[4100];
	struct config	*cfg;

	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[3999] = '\0';
	snprintf(text, sizeof text, "state_file = \"%s\";\n" CLUSTERS, path);
	cfg = expect_ok(text);
	ck_assert_uint_eq(strlen(cfg->state_file), 3999);
	config_free(cfg);
	path[3999] = 'a';
	path[4000] = '\0';
	snprintf(text, sizeof text, "state_file = \"%s\";\n" CLUSTERS, path);
	expect_error(text, "t.conf:1: state_file must be shorter than 4000 "
	    "bytes");
}
END_TEST

/* Descriptors open in this process. */
static int
mut3_open_fds(void)
{
	DIR	*d = opendir("/proc/self/fd");
	int	 n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Smallest values, empty lists, descriptors, digests, held name lists. */
START_TEST(test_mut3_config_edges)
{
	const char *const	*top;
	struct config		*cfg;
	char			 path[128], a[256], b[256];
	uint64_t		 da, db;
	int			 fds;

	cfg = expect_ok(CL_OPEN "name = \"m\"; hosts = (\"h:1\");\n"
	    "system_identifier = 1;\nlisten = ();\n" CL_CLOSE);
	ck_assert_uint_eq(cfg->clusters[0].system_identifier, 1);
	ck_assert_uint_eq(cfg->clusters[0].nlisten, 0);
	config_free(cfg);

	/* Loading and digesting leave no descriptor open. */
	snprintf(path, sizeof path, "%s/f.conf", tmpdir);
	write_file(path, CLUSTERS);
	fds = mut3_open_fds();
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(config_file_digest(path, &da), 0);
	ck_assert_int_eq(mut3_open_fds(), fds);

	/* A change in the first byte of a long file changes the digest. */
	memset(a, ' ', sizeof a - 1);
	a[sizeof a - 1] = '\0';
	memcpy(b, a, sizeof b);
	b[0] = '\t';
	write_file(path, a);
	ck_assert_int_eq(config_file_digest(path, &da), 0);
	write_file(path, b);
	ck_assert_int_eq(config_file_digest(path, &db), 0);
	ck_assert(da != db);
	/* A directory opens but cannot be read. */
	ck_assert_int_eq(config_file_digest(tmpdir, &da), -1);

	/* Each level's list stays as it was when another is asked for. */
	top = config_setting_names(CONFIG_LEVEL_TOP);
	(void)config_setting_names(CONFIG_LEVEL_CLUSTER);
	(void)config_setting_names(CONFIG_LEVEL_LISTEN);
	while (*top != NULL && strcmp(*top, "socket") != 0)
		top++;
	ck_assert_ptr_nonnull(*top);
}
END_TEST

static TCase *
mut3_tcase(void)
{
	TCase	*tc = tcase_create("mutants3");

	tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
	tcase_add_test(tc, test_mut3_int_literal_forms);
	tcase_add_test(tc, test_mut3_include_file);
	tcase_add_test(tc, test_mut3_error_text_edges);
	tcase_add_test(tc, test_mut3_setting_names);
	tcase_add_test(tc, test_mut3_restart_changes_tiny_buffers);
	tcase_add_test(tc, test_mut3_host_edges);
	tcase_add_test(tc, test_mut3_state_file_length);
	tcase_add_test(tc, test_mut3_config_edges);
	return tc;
}

/* --- mut4: fourth round of mutants (issue 11 §4), config.c ------------ */

/* Bytes glibc's malloc has handed out and not had back (0 elsewhere, and
 * under AddressSanitizer, whose allocator glibc does not see: there
 * LeakSanitizer does this job). */
static long long
mut4_heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
	struct mallinfo2	mi = mallinfo2();

	return (long long)(mi.uordblks + mi.hblkhd);
#else
	return 0;
#endif
}

/* Loads, refusals and digests of every kind, each freeing what it made. */
static void
mut4_load_all(const char *dir, bool big)
{
	static const char *const texts[] = {
		full_text,
		"http_listen = \"127.0.0.1:8080\";\n" CL_OPEN
		"name = \"m\"; hosts = (\"h:1\", \"/run/pg:5432\");\n"
		"conninfo = \"user=u\";\n"
		"listen = ( { role = \"replica\"; address = \"127.0.0.1:6432\"; "
		"max_lag_ms = 5; },\n"
		"{ role = \"master\"; address = \"/run/pgb:6433\"; } );\n"
		CL_CLOSE,
		/* refused once some of it is copied */
		CL_OPEN "name = \"m\"; hosts = (\"h:1\", \"H:1\");\n" CL_CLOSE,
		CL_OPEN "name = \"m\"; hosts = (\"h:1\", \"h:x\");\n" CL_CLOSE,
		CL_OPEN "name = \"m\"; hosts = (\"h:1\");\n"
		"listen = ( { role = \"master\"; address = \"a:1\"; },\n"
		"{ role = \"master\"; address = \"a:x\"; } );\n" CL_CLOSE,
		CL_OPEN "name = \"m\"; hosts = (\"h:1\");\n"
		"conninfo = \"=\";\n" CL_CLOSE,
		CL_OPEN "name = \"m\"; hosts = (\"h:1\");\n"
		"conninfo = \"port=1\";\n" CL_CLOSE,
		CLUSTERS "clusters2 = 1;\n",
		"http_listen = \"h:1\";\nsocket_mode = \"9\";\n" CLUSTERS,
		CLUSTERS CL_OPEN "name = \"main\"; hosts = (\"x:1\");\n" CL_CLOSE,
		"clusters = ( { name = \"m\"; ",
	};
	struct config	*cfg;
	char		 path[128];
	uint64_t	 digest;
	size_t		 i;

	for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
		config_free(load(texts[i]));
	snprintf(path, sizeof path, "%s/f.conf", dir);
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	config_free(cfg);
	ck_assert_int_eq(config_file_digest(path, &digest), 0);
	ck_assert_ptr_null(config_load(dir, err, sizeof err));
	ck_assert_int_eq(config_file_digest(dir, &digest), -1);
	snprintf(path, sizeof path, "%s/none.conf", dir);
	ck_assert_ptr_null(config_load(path, err, sizeof err));
	if (big) {
		snprintf(path, sizeof path, "%s/big.conf", dir);
		ck_assert_ptr_null(config_load(path, err, sizeof err));
		ck_assert_int_eq(config_file_digest(path, &digest), -1);
	}
}

/* Nothing a load, a refusal or a digest makes is left behind: the open
 * descriptors stay the same, and the heap in use does not grow in both
 * of two windows of 30 rounds (after 10 rounds to warm up, the
 * allocator's own steps are a few hundred bytes once; a string lost in
 * every round would take at least 32 bytes a round from the heap once
 * the few freed blocks malloc keeps per size are used up). */
START_TEST(test_mut4_loads_leave_nothing_behind)
{
	char		 path[128];
	long long	 h0, h1, h2;
	int		 fds, k;

	snprintf(path, sizeof path, "%s/f.conf", tmpdir);
	write_file(path, "@include \"inc.conf\"\n");
	snprintf(path, sizeof path, "%s/inc.conf", tmpdir);
	write_file(path, full_text);
	snprintf(path, sizeof path, "%s/big.conf", tmpdir);
	write_padded(path, 4 * 1024 * 1024 + 1);

	for (k = 0; k < 10; k++)
		mut4_load_all(tmpdir, k < 2);
	fds = mut3_open_fds();
	h0 = mut4_heap_in_use();
	for (k = 0; k < 30; k++)
		mut4_load_all(tmpdir, k == 0);
	h1 = mut4_heap_in_use();
	for (k = 0; k < 30; k++)
		mut4_load_all(tmpdir, k == 0);
	h2 = mut4_heap_in_use();
	ck_assert_msg(h1 - h0 < 512 || h2 - h1 < 512, "the heap grew by %lld "
	    "then %lld bytes", h1 - h0, h2 - h1);
	ck_assert_int_eq(mut3_open_fds(), fds);
}
END_TEST

/* Smaller edges: a mode open to others but not writable by them, the
 * smallest interval refused, listeners in one of two clusters, names in
 * falling order, a stale EINTR in errno when the file is read. */
START_TEST(test_mut4_config_edges)
{
	static const char *const listen_a =
	    "clusters = (\n"
	    "  { name = \"a\"; hosts = (\"x:1\");\n"
	    "    listen = ( { role = \"master\"; address = \"l:1\"; } ); },\n"
	    "  { name = \"b\"; hosts = (\"y:1\"); }\n"
	    ");\n";
	static const char *const listen_b =
	    "clusters = (\n"
	    "  { name = \"a\"; hosts = (\"x:1\"); },\n"
	    "  { name = \"b\"; hosts = (\"y:1\");\n"
	    "    listen = ( { role = \"master\"; address = \"l:1\"; } ); }\n"
	    ");\n";
	const char *const	*names;
	struct config		*cfg;
	char			 path[128];
	uint64_t		 da, db;

	cfg = expect_ok("socket_mode = \"0601\";\n" CLUSTERS);
	ck_assert_ptr_nonnull(strstr(cfg->warning, "every local user"));
	ck_assert_ptr_null(strstr(cfg->warning, "write to it"));
	config_free(cfg);

	expect_error("connect_check_interval_ms = 1;\n" CLUSTERS, "t.conf:1: "
	    "connect_check_interval_ms must be 0 (off) or at least 100, not 1");

	config_free(expect_ok(listen_a));
	config_free(expect_ok(listen_b));
	cfg = expect_ok("clusters = ( { name = \"b\"; hosts = (\"x:1\"); },\n"
	    "{ name = \"a\"; hosts = (\"x:1\"); } );\n");
	ck_assert_str_eq(cfg->clusters[1].name, "a");
	config_free(cfg);

	snprintf(path, sizeof path, "%s/f.conf", tmpdir);
	write_file(path, full_text);
	errno = EINTR;
	cfg = config_load(path, err, sizeof err);
	ck_assert_msg(cfg != NULL, "%s", err);
	ck_assert_uint_eq(cfg->nclusters, 2);
	config_free(cfg);

	/* The digest tells apart files with the same bytes in another
	 * order. */
	write_file(path, "ab");
	ck_assert_int_eq(config_file_digest(path, &da), 0);
	write_file(path, "ba");
	ck_assert_int_eq(config_file_digest(path, &db), 0);
	ck_assert(da != db);

	/* The cluster's list of names stays when the listener's is asked
	 * for. */
	names = config_setting_names(CONFIG_LEVEL_CLUSTER);
	(void)config_setting_names(CONFIG_LEVEL_LISTEN);
	ck_assert_str_eq(names[0], "name");
	ck_assert_str_eq(names[1], "hosts");
}
END_TEST

static TCase *
mut4_tcase(void)
{
	TCase	*tc = tcase_create("mutants4");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
	tcase_add_test(tc, test_mut4_loads_leave_nothing_behind);
	tcase_add_test(tc, test_mut4_config_edges);
	return tc;
}

static Suite *
config_suite(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
	tcase_add_test(tc, test_full_file_sets_every_setting);
	tcase_add_test(tc, test_absent_settings_take_defaults);
	tcase_add_test(tc, test_empty_state_file_means_none);
	tcase_add_test(tc, test_example_conf_loads);
	tcase_add_test(tc, test_load_reads_a_file_and_names_it_in_errors);
	tcase_add_test(tc, test_find_cluster_by_name);
	tcase_add_test(tc, test_cluster_fields_as_a_reload_compares_them);
	tcase_add_test(tc, test_restart_changes_names_the_settings_a_reload_keeps);
	tcase_add_test(tc, test_readme_table_lists_every_setting);
	tcase_add_test(tc, test_docs_name_the_settings_a_reload_keeps);
	tcase_add_test(tc, test_free_null_is_a_no_op);
	tcase_add_test(tc, test_file_digest_tells_changed_files_apart);
	tcase_add_test(tc, test_listeners_parse_with_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
	tcase_add_loop_test(tc, test_rejects_bad_top_level_setting, 0,
	    sizeof bad_top / sizeof bad_top[0]);
	tcase_add_loop_test(tc, test_rejects_bad_cluster_setting, 0,
	    sizeof bad_cluster / sizeof bad_cluster[0]);
	tcase_add_loop_test(tc, test_rejects_bad_listener, 0,
	    sizeof bad_listen / sizeof bad_listen[0]);
	tcase_add_test(tc, test_rejects_listener_address_of_another_cluster);
	tcase_add_test(tc, test_rejects_missing_or_empty_clusters);
	tcase_add_test(tc, test_rejects_duplicate_cluster);
	tcase_add_test(tc, test_conninfo_password_never_in_errors);
	tcase_add_test(tc, test_syntax_error_names_its_line);
	tcase_add_test(tc, test_unreadable_file_says_why);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_accepts_range_edges);
	tcase_add_test(tc, test_connect_check_interval_edges);
	tcase_add_test(tc, test_accepts_name_and_port_edges);
	tcase_add_test(tc, test_socket_path_must_fit_sun_path);
	tcase_add_test(tc, test_small_error_buffer_is_cut_not_overflowed);
	tcase_add_test(tc, test_client_limits_default_and_set);
	tcase_add_test(tc, test_socket_mode_open_to_others_is_warned);
	tcase_add_test(tc, test_listener_max_lag_stops_at_the_protocol_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("docs");
	tcase_add_test(tc, test_man_page_documents_every_setting);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutants");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup_tmpdir, teardown_tmpdir);
	tcase_add_test(tc, test_socket_mode_digits_are_octal);
	tcase_add_test(tc, test_file_size_limit);
	tcase_add_test(tc, test_conninfo_names_the_first_server_keyword);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, mut3_tcase());
	suite_add_tcase(s, mut4_tcase());
	return s;
}

int
main(void)
{
	return (check_run_suite(config_suite()));
}
