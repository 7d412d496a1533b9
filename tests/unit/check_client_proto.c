/*
 * check_client_proto.c - the client library's parser of daemon replies:
 * every reply form of the socket protocol, and malformed ones.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lsn.h"
#include "common/request.h"

#include "pgbeacon.h"
#include "src/proto-internal.h"
#include "../check_main.h"

/* --- classify --------------------------------------------------------- */

START_TEST(test_classify_recognises_every_reply_form)
{
	const char	*rest;

	ck_assert_int_eq(pgbi_proto_classify("OK watching", &rest),
	    PGBI_REPLY_OK);
	ck_assert_str_eq(rest, "watching");
	ck_assert_int_eq(pgbi_proto_classify("OK", &rest), PGBI_REPLY_OK);
	ck_assert_str_eq(rest, "");
	ck_assert_int_eq(pgbi_proto_classify("ERR NOHOST x", &rest),
	    PGBI_REPLY_ERR);
	ck_assert_str_eq(rest, "NOHOST x");
	ck_assert_int_eq(pgbi_proto_classify("PONG", NULL), PGBI_REPLY_PONG);
	ck_assert_int_eq(pgbi_proto_classify("EVENT main generation=1 "
	    "master=none", &rest), PGBI_REPLY_EVENT);
	ck_assert_str_eq(rest, "main generation=1 master=none");
}
END_TEST

START_TEST(test_classify_rejects_lookalikes)
{
	ck_assert_int_eq(pgbi_proto_classify("OKAY", NULL), PGBI_REPLY_BAD);
	ck_assert_int_eq(pgbi_proto_classify("ok x", NULL), PGBI_REPLY_BAD);
	ck_assert_int_eq(pgbi_proto_classify("PONGS", NULL), PGBI_REPLY_BAD);
	ck_assert_int_eq(pgbi_proto_classify("", NULL), PGBI_REPLY_BAD);
	ck_assert_int_eq(pgbi_proto_classify("ERRNOHOST", NULL),
	    PGBI_REPLY_BAD);
	ck_assert_int_eq(pgbi_proto_classify(NULL, NULL), PGBI_REPLY_BAD);
}
END_TEST

/* --- RESOLVE ------------------------------------------------------------ */

START_TEST(test_resolve_reply_parses_all_fields)
{
	pgb_resolved	r;
	char		why[128];

	ck_assert_int_eq(pgbi_proto_parse_resolve("OK host=10.0.0.7 "
	    "port=5433 role=replica generation=42", &r, why, sizeof why), 0);
	ck_assert_str_eq(r.host, "10.0.0.7");
	ck_assert_int_eq(r.port, 5433);
	ck_assert_str_eq(r.role, "replica");
	ck_assert_uint_eq(r.generation, 42);
}
END_TEST

START_TEST(test_resolve_reply_accepts_any_key_order_and_unknown_keys)
{
	pgb_resolved	r;
	char		why[128];

	ck_assert_int_eq(pgbi_proto_parse_resolve("OK generation="
	    "18446744073709551615 role=master lag_ms=3 port=1 host=db1",
	    &r, why, sizeof why), 0);
	ck_assert_str_eq(r.host, "db1");
	ck_assert_int_eq(r.port, 1);
	ck_assert_str_eq(r.role, "master");
	ck_assert_uint_eq(r.generation, UINT64_MAX);
}
END_TEST

START_TEST(test_resolve_reply_rejects_malformed)
{
	static const char *bad[] = {
		"OK",
		"OK host=db1 port=5432 role=master",		/* no generation */
		"OK host=db1 role=master generation=1",		/* no port */
		"OK port=5432 role=master generation=1",	/* no host */
		"OK host=db1 port=5432 generation=1",		/* no role */
		"OK host=db1 port=0 role=master generation=1",
		"OK host=db1 port=65536 role=master generation=1",
		"OK host=db1 port=-1 role=master generation=1",
		"OK host=db1 port=54x role=master generation=1",
		"OK host=db1 port=5432 role=master generation=18446744073709551616",
		"OK host=db1 port=5432 role=master generation=",
		"OK host= port=5432 role=master generation=1",
		"OK host=db1 host=db2 port=5432 role=master generation=1",
		"OK host=db1  port=5432 role=master generation=1",
		"OK host=db1 port=5432 role=mastermastermaster generation=1",
		"OK host=db1 port=5432 junk role=master generation=1",
		"OK host=d\tb port=5432 role=master generation=1",
		"ERR NOHOST no primary",
		"PONG",
		"",
	};
	pgb_resolved	r;
	char		why[128];
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		ck_assert_msg(pgbi_proto_parse_resolve(bad[i], &r, why,
		    sizeof why) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_msg(why[0] != '\0', "no reason for \"%s\"", bad[i]);
	}
}
END_TEST

START_TEST(test_resolve_reply_rejects_overlong_host)
{
	char		line[PGB_HOST_MAX + 100], why[128];
	pgb_resolved	r;

	strcpy(line, "OK host=");
	memset(line + 8, 'h', PGB_HOST_MAX);
	strcpy(line + 8 + PGB_HOST_MAX, " port=1 role=master generation=1");
	ck_assert_int_eq(pgbi_proto_parse_resolve(line, &r, why, sizeof why),
	    -1);
}
END_TEST

/* --- ERR ---------------------------------------------------------------- */

START_TEST(test_err_reply_keeps_code_and_text)
{
	static const struct {
		const char	*line;
		pgb_errcode	 code;
		const char	*text;
	} cases[] = {
		{ "ERR NOHOST no live primary in cluster main",
		    PGB_ERR_NOHOST, "no live primary in cluster main" },
		{ "ERR NOCLUSTER no cluster \"x\"", PGB_ERR_NOCLUSTER,
		    "no cluster \"x\"" },
		{ "ERR BADROLE unknown role boss", PGB_ERR_BADROLE,
		    "unknown role boss" },
		{ "ERR BADREQ line too long", PGB_ERR_BADREQ,
		    "line too long" },
		{ "ERR NOHOST", PGB_ERR_NOHOST, "" },
		{ "ERR WHAT future code", PGB_ERR_DAEMON,
		    "WHAT: future code" },
	};
	pgb_errcode	code;
	char		text[256];
	size_t		i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_assert_int_eq(pgbi_proto_parse_err(cases[i].line, &code,
		    text, sizeof text), 0);
		ck_assert_int_eq(code, cases[i].code);
		ck_assert_str_eq(text, cases[i].text);
	}
}
END_TEST

START_TEST(test_err_reply_truncates_long_text)
{
	pgb_errcode	code;
	char		text[8];

	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOHOST 0123456789",
	    &code, text, sizeof text), 0);
	ck_assert_str_eq(text, "0123456");
}
END_TEST

START_TEST(test_err_reply_rejects_malformed)
{
	pgb_errcode	code;
	char		text[64];

	ck_assert_int_eq(pgbi_proto_parse_err("ERR", &code, text,
	    sizeof text), -1);
	ck_assert_int_eq(pgbi_proto_parse_err("ERR  text", &code, text,
	    sizeof text), -1);
	ck_assert_int_eq(pgbi_proto_parse_err("OK host=x", &code, text,
	    sizeof text), -1);
}
END_TEST

/* --- EVENT -------------------------------------------------------------- */

START_TEST(test_event_with_master_parses)
{
	pgb_event	ev;
	char		why[128];

	ck_assert_int_eq(pgbi_proto_parse_event("EVENT main generation=7 "
	    "master=127.0.0.1:54321", &ev, why, sizeof why), 0);
	ck_assert_str_eq(ev.cluster, "main");
	ck_assert_uint_eq(ev.generation, 7);
	ck_assert_int_eq(ev.has_master, 1);
	ck_assert_str_eq(ev.master_host, "127.0.0.1");
	ck_assert_int_eq(ev.master_port, 54321);
	ck_assert_int_eq(ev.resync, 0);
}
END_TEST

START_TEST(test_event_without_master_parses)
{
	pgb_event	ev;
	char		why[128];

	ck_assert_int_eq(pgbi_proto_parse_event("EVENT other generation=0 "
	    "master=none", &ev, why, sizeof why), 0);
	ck_assert_str_eq(ev.cluster, "other");
	ck_assert_int_eq(ev.has_master, 0);
	ck_assert_str_eq(ev.master_host, "");
}
END_TEST

START_TEST(test_event_with_ipv6_master_parses)
{
	pgb_event	ev;
	char		why[128];

	ck_assert_int_eq(pgbi_proto_parse_event("EVENT c generation=2 "
	    "master=[::1]:5432", &ev, why, sizeof why), 0);
	ck_assert_str_eq(ev.master_host, "::1");
	ck_assert_int_eq(ev.master_port, 5432);
}
END_TEST

/*
 * The EVENT of a daemon since 0.6 carries replicas=; one of an older
 * daemon does not.  Both parse to the same event; the replicas field is
 * read on its own, and unknown fields are ignored.
 */
START_TEST(test_event_old_and_new_formats_both_parse)
{
	pgb_event	 ev_old, ev_new;
	char		 why[128];
	const char	*list;
	size_t		 len;
	const char	*old_line = "EVENT main generation=7 master=db1:5432";
	const char	*new_line = "EVENT main generation=7 master=db1:5432"
			    " replicas=db2:5433,[::1]:5434,/run/pg:5435"
			    " future=1";

	ck_assert_int_eq(pgbi_proto_parse_event(old_line, &ev_old, why,
	    sizeof why), 0);
	ck_assert_int_eq(pgbi_proto_parse_event(new_line, &ev_new, why,
	    sizeof why), 0);
	ck_assert_mem_eq(&ev_old, &ev_new, sizeof ev_old);
	ck_assert_int_eq(pgbi_proto_event_replicas(old_line, &list, &len), 0);
	ck_assert_int_eq(pgbi_proto_event_replicas(new_line, &list, &len), 1);
	ck_assert_uint_eq(len, strlen("db2:5433,[::1]:5434,/run/pg:5435"));
	ck_assert_int_eq(strncmp(list, "db2:5433,[::1]:5434,/run/pg:5435",
	    len), 0);
	ck_assert(pgbi_proto_replicas_has(list, len, "db2", 5433));
	ck_assert(pgbi_proto_replicas_has(list, len, "::1", 5434));
	ck_assert(pgbi_proto_replicas_has(list, len, "/run/pg", 5435));
	ck_assert(!pgbi_proto_replicas_has(list, len, "db2", 5434));
	ck_assert(!pgbi_proto_replicas_has(list, len, "db1", 5432));
	ck_assert(!pgbi_proto_replicas_has(list, len, "db", 5433));
}
END_TEST

START_TEST(test_event_replicas_none_and_malformed)
{
	pgb_event	 ev;
	char		 why[128];
	const char	*list;
	size_t		 len;
	static const char *bad[] = {
		"EVENT m generation=1 master=none replicas=",
		"EVENT m generation=1 master=none replicas=db2",
		"EVENT m generation=1 master=none replicas=db2:1,",
		"EVENT m generation=1 master=none replicas=,db2:1",
		"EVENT m generation=1 master=none replicas=db2:x",
	};
	size_t		 i;

	ck_assert_int_eq(pgbi_proto_event_replicas("EVENT m generation=1"
	    " master=none replicas=none", &list, &len), 1);
	ck_assert_uint_eq(len, 0);
	ck_assert(!pgbi_proto_replicas_has(list, len, "none", 0));
	/* A cluster named like the field is the cluster, not the field. */
	ck_assert_int_eq(pgbi_proto_event_replicas("EVENT replicas=db:1"
	    " generation=1 master=none", &list, &len), 0);
	ck_assert_int_eq(pgbi_proto_event_replicas("OK host=a", &list, &len),
	    -1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		/* The event itself still parses: the field is ignored. */
		ck_assert_int_eq(pgbi_proto_parse_event(bad[i], &ev, why,
		    sizeof why), 0);
		ck_assert_msg(pgbi_proto_event_replicas(bad[i], &list, &len) ==
		    -1, "accepted: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_event_rejects_malformed)
{
	static const char *bad[] = {
		"EVENT",
		"EVENT main",
		"EVENT main generation=1",
		"EVENT main master=none",
		"EVENT main generation=x master=none",
		"EVENT main generation=1 master=db1",
		"EVENT main generation=1 master=db1:0",
		"EVENT main generation=1 master=:5432",
		"EVENT main generation=1 generation=2 master=none",
		"EVENT  generation=1 master=none",
		"OK watching",
	};
	pgb_event	ev;
	char		why[128];
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(pgbi_proto_parse_event(bad[i], &ev, why,
		    sizeof why) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

/* --- request arguments, LSNs ------------------------------------------ */

START_TEST(test_request_tokens_refuse_spaces_and_controls)
{
	ck_assert(pgbc_token_ok("main", 10));
	ck_assert(!pgbc_token_ok("", 10));
	ck_assert(!pgbc_token_ok(NULL, 10));
	ck_assert(!pgbc_token_ok("ma in", 10));
	ck_assert(!pgbc_token_ok("main\n", 10));
	ck_assert(!pgbc_token_ok("0123456789a", 10));
	ck_assert(pgbi_proto_options_ok(NULL, 10));
	ck_assert(pgbi_proto_options_ok("a=1 b=2", 10));
	ck_assert(!pgbi_proto_options_ok("a=1\nPING", 100));
}
END_TEST

/* Every role the daemon knows fits, whatever the size of an answer's. */
START_TEST(test_resolve_args_take_every_role_of_the_daemon)
{
	ck_assert(pgbi_proto_resolve_args_ok("main", "master"));
	ck_assert(pgbi_proto_resolve_args_ok("main", "sync_by_time_and_bytes"));
	ck_assert(pgbi_proto_resolve_args_ok("main", "sync_by_time_or_bytes"));
	ck_assert(!pgbi_proto_resolve_args_ok("main", "ma ster"));
	ck_assert(!pgbi_proto_resolve_args_ok("main\nPING", "master"));
	ck_assert(!pgbi_proto_resolve_args_ok(NULL, "master"));
	ck_assert(!pgbi_proto_resolve_args_ok("main", NULL));
}
END_TEST

/* The daemon refuses cluster names over 63 bytes (PROTO_NAME_MAX): the
 * library used to send up to 127 (PGB_CLUSTER_MAX - 1) and get BADREQ. */
START_TEST(test_resolve_args_keep_the_daemons_cluster_limit)
{
	char	name[PGB_CLUSTER_MAX];

	memset(name, 'c', sizeof name);
	name[63] = '\0';
	ck_assert(pgbi_proto_resolve_args_ok(name, "master"));
	ck_assert(pgbc_cluster_name_ok(name));
	name[63] = 'c';
	name[64] = '\0';
	ck_assert(!pgbi_proto_resolve_args_ok(name, "master"));
	ck_assert(!pgbc_cluster_name_ok(name));
	memset(name, 'c', 100);
	name[100] = '\0';
	ck_assert(!pgbi_proto_resolve_args_ok(name, "master"));
}
END_TEST

/* The same limit before any connection: a too long name is PGB_ERR_ARG,
 * not the daemon's BADREQ (nothing listens on the socket given). */
START_TEST(test_client_refuses_a_cluster_name_the_daemon_would)
{
	char		 name[PGB_CLUSTER_MAX], *json = NULL;
	pgb_client	*cl;
	pgb_resolved	 r;
	pgb_watch	*w;

	memset(name, 'c', 64);
	name[64] = '\0';
	cl = pgb_client_new("/nonexistent/pgbeacon.sock");
	ck_assert_ptr_nonnull(cl);
	ck_assert_int_eq(pgb_client_resolve(cl, name, "master", NULL, &r), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_ARG);
	ck_assert_int_eq(pgb_client_status(cl, name, &json), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_ARG);
	ck_assert_ptr_null(json);
	name[63] = '\0';
	ck_assert_int_eq(pgb_client_status(cl, name, &json), -1);
	ck_assert_int_eq(pgb_client_errcode(cl), PGB_ERR_UNREACHABLE);
	pgb_client_free(cl);

	name[63] = 'c';
	w = pgb_watch_new("/nonexistent/pgbeacon.sock", name);
	ck_assert_ptr_nonnull(w);
	ck_assert_str_eq(pgb_watch_error(w), "bad cluster name for WATCH");
	pgb_watch_free(w);
}
END_TEST

/* host:port splits as the daemon's topology_host_name() joins (the
 * round trip tests/fuzz/fuzz_client_proto checks: "[[x]]:5" used to read
 * as "[x]", which the daemon writes "[x]:5", read back as "x"). */
START_TEST(test_hostport_is_the_inverse_of_the_daemons_join)
{
	char	host[PGB_HOST_MAX];
	int	port;

#define HP(s)	pgbi_proto_parse_hostport((s), strlen(s), host, sizeof host, \
	    &port)
	ck_assert_int_eq(HP("[::1]:5432"), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_int_eq(port, 5432);
	ck_assert_int_eq(HP("/run/pg:5433"), 0);
	ck_assert_str_eq(host, "/run/pg");
	ck_assert_int_eq(HP("/run/a:b:5433"), 0);
	ck_assert_str_eq(host, "/run/a:b");
	ck_assert_int_eq(HP("db1:1"), 0);
	ck_assert_str_eq(host, "db1");
	/* Brackets hold an IPv6 address (common/hostport.h): the daemon
	 * writes none around a name, and none is part of a name. */
	ck_assert_int_eq(HP("[x]:5"), -1);
	ck_assert_int_eq(HP("[[x]]:5"), -1);
	ck_assert_int_eq(HP("x]:5"), -1);
	/* A ':' outside a socket directory needs the brackets. */
	ck_assert_int_eq(HP("::1:5432"), -1);
	ck_assert_int_eq(HP("a:b:5"), -1);
	ck_assert_int_eq(HP("[/a:b]:5"), -1);
#undef HP
}
END_TEST

START_TEST(test_lsn_round_trips)
{
	uint64_t	v;
	char		buf[PGB_LSN_MAX];

	ck_assert(pgbc_lsn_parse("16/B374D848", &v));
	ck_assert_uint_eq(v, 0x16B374D848ULL);
	pgbc_lsn_format(v, buf);
	ck_assert_str_eq(buf, "16/B374D848");
	ck_assert(pgbc_lsn_parse("FFFFFFFF/FFFFFFFF", &v));
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert(pgbc_lsn_parse("0/0", &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(!pgbc_lsn_parse("", &v));
	ck_assert(!pgbc_lsn_parse("16", &v));
	ck_assert(!pgbc_lsn_parse("/1", &v));
	ck_assert(!pgbc_lsn_parse("1/", &v));
	ck_assert(!pgbc_lsn_parse("1/2/3", &v));
	ck_assert(!pgbc_lsn_parse("123456789/0", &v));
	ck_assert(!pgbc_lsn_parse("1/g", &v));
}
END_TEST

/* Each malformed EVENT is refused with its own reason. */
START_TEST(test_event_errors_name_their_reason)
{
	static const struct {
		const char	*line;
		const char	*why;
	} cases[] = {
		{ "OK watching", "not an EVENT line" },
		{ "EVENT main", "missing cluster" },
		{ "EVENT  generation=1 master=none", "missing cluster" },
		{ "EVENT main generation=x master=none", "bad generation" },
		{ "EVENT main generation=1 generation=1 master=none",
		    "bad generation" },
		{ "EVENT main generation=1 master=none master=none",
		    "master given twice" },
		{ "EVENT main generation=1 master=db1", "bad master" },
		{ "EVENT main generation=1 master=nonex", "bad master" },
		{ "EVENT main generation=1 master=db1:65536", "bad master" },
		{ "EVENT main generation=1 master=db\x7f:5432", "bad master" },
		{ "EVENT main generation=1 master=db\x1f:5432", "bad master" },
		{ "EVENT main generation=1 master=d\xc3\xa9:5432", "bad master" },
		{ "EVENT main generation=1 master=[::1]x:5432", "bad master" },
		{ "EVENT main generation=1  master=none", "empty field" },
		{ "EVENT main master=none", "missing generation" },
		{ "EVENT main generation= master=none", "missing generation" },
		{ "EVENT main generation=1", "missing master" },
		{ "EVENT main generation=1 master=", "missing master" },
	};
	pgb_event	ev;
	char		why[128];
	size_t		i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		why[0] = '\0';
		ck_assert_msg(pgbi_proto_parse_event(cases[i].line, &ev, why,
		    sizeof why) == -1, "accepted \"%s\"", cases[i].line);
		ck_assert_msg(strcmp(why, cases[i].why) == 0,
		    "\"%s\": want \"%s\" got \"%s\"", cases[i].line,
		    cases[i].why, why);
	}
}
END_TEST

/* The edges an EVENT may reach: the longest cluster name, printable
 * host bytes, port 1 and 65535, an unknown field, a trailing space. */
START_TEST(test_event_edges_parse)
{
	char		line[512], name[PGB_CLUSTER_MAX + 1], why[128];
	pgb_event	ev;

	/* One byte over the daemon's limit (not PGB_CLUSTER_MAX's): refused. */
	memset(name, 'c', PGBC_CLUSTER_NAME_MAX + 1);
	name[PGBC_CLUSTER_NAME_MAX + 1] = '\0';
	snprintf(line, sizeof line, "EVENT %s generation=1 master=none", name);
	ck_assert_int_eq(pgbi_proto_parse_event(line, &ev, why, sizeof why),
	    -1);
	ck_assert_str_eq(why, "cluster name too long");

	name[PGBC_CLUSTER_NAME_MAX] = '\0';
	snprintf(line, sizeof line, "EVENT %s generation=18446744073709551615 "
	    "master=!~:65535 future=1 ", name);
	ck_assert_msg(pgbi_proto_parse_event(line, &ev, why, sizeof why) == 0,
	    "%s", why);
	ck_assert_str_eq(ev.cluster, name);
	ck_assert_uint_eq(ev.generation, UINT64_MAX);
	ck_assert_int_eq(ev.has_master, 1);
	ck_assert_str_eq(ev.master_host, "!~");
	ck_assert_int_eq(ev.master_port, 65535);

	ck_assert_int_eq(pgbi_proto_parse_event("EVENT m master=[::1]:1 "
	    "generation=0", &ev, why, sizeof why), 0);
	ck_assert_str_eq(ev.master_host, "::1");
	ck_assert_int_eq(ev.master_port, 1);
	ck_assert_uint_eq(ev.generation, 0);

	memset(name, 'c', PGB_CLUSTER_MAX);
	name[PGB_CLUSTER_MAX] = '\0';
	snprintf(line, sizeof line, "EVENT %s generation=1 master=none", name);
	ck_assert_int_eq(pgbi_proto_parse_event(line, &ev, why, sizeof why),
	    -1);
	ck_assert_str_eq(why, "cluster name too long");
}
END_TEST

/* "host:port" with the host just fitting, and one byte too long. */
START_TEST(test_hostport_edges)
{
	char	host[4];
	int	port = 0;

	ck_assert_int_eq(pgbi_proto_parse_hostport("abc:9", 5, host,
	    sizeof host, &port), 0);
	ck_assert_str_eq(host, "abc");
	ck_assert_int_eq(port, 9);
	ck_assert_int_eq(pgbi_proto_parse_hostport("[::]:7", 6, host,
	    sizeof host, &port), 0);
	ck_assert_str_eq(host, "::");

	ck_assert_int_eq(pgbi_proto_parse_hostport("abcd:9", 6, host,
	    sizeof host, &port), -1);
	ck_assert_int_eq(pgbi_proto_parse_hostport("a b:9", 5, host,
	    sizeof host, &port), -1);
	ck_assert_int_eq(pgbi_proto_parse_hostport("ab:9x", 4, host,
	    sizeof host, &port), 0);	/* len stops before the x */
	ck_assert_int_eq(port, 9);
}
END_TEST

/* Reply values: 0x20..0x7e are taken, controls, DEL and high bytes not. */
START_TEST(test_resolve_reply_value_bytes)
{
	static const char *const bad[] = {
		"OK host=db\x7f port=5432 role=master generation=1",
		"OK host=db\x1f port=5432 role=master generation=1",
		"OK host=db\x80 port=5432 role=master generation=1",
		"OK host=db port=5432 role=m\x01 generation=1",
	};
	pgb_resolved	r;
	char		why[128];
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		ck_assert_int_eq(pgbi_proto_parse_resolve(bad[i], &r, why,
		    sizeof why), -1);
		ck_assert_str_eq(why, "control character");
	}
	ck_assert_int_eq(pgbi_proto_parse_resolve("OK host=!~ port=65535 "
	    "role=r generation=0 x=~", &r, why, sizeof why), 0);
	ck_assert_str_eq(r.host, "!~");
	ck_assert_int_eq(r.port, 65535);
	ck_assert_uint_eq(r.generation, 0);
	ck_assert_int_eq(pgbi_proto_parse_resolve("OK host=a port=1 role=r "
	    "generation=1 ", &r, why, sizeof why), 0);
	ck_assert_int_eq(r.port, 1);
}
END_TEST

/* Request tokens and options at their length and byte edges. */
START_TEST(test_request_token_edges)
{
	ck_assert(pgbc_token_ok("0123456789", 10));
	ck_assert(pgbc_token_ok("!~", 2));
	ck_assert(!pgbc_token_ok("a\x7f", 10));
	ck_assert(!pgbc_token_ok("a\x80", 10));
	ck_assert(pgbi_proto_options_ok("", 0));
	ck_assert(pgbi_proto_options_ok("a b", 3));
	ck_assert(!pgbi_proto_options_ok("a bc", 3));
	ck_assert(!pgbi_proto_options_ok("a\x7f", 10));
	ck_assert(!pgbi_proto_options_ok("a\x1f", 10));
	ck_assert(pgbi_proto_options_ok("!~ ", 10));
}
END_TEST

/* Unknown ERR codes become PGB_ERR_DAEMON with the code in the text. */
START_TEST(test_err_reply_every_code)
{
	pgb_errcode	code;
	char		text[64];

	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOCLUSTER x", &code, text,
	    sizeof text), 0);
	ck_assert_int_eq(code, PGB_ERR_NOCLUSTER);
	ck_assert_str_eq(text, "x");
	ck_assert_int_eq(pgbi_proto_parse_err("ERR BADROLE", &code, text,
	    sizeof text), 0);
	ck_assert_int_eq(code, PGB_ERR_BADROLE);
	ck_assert_str_eq(text, "");
	ck_assert_int_eq(pgbi_proto_parse_err("ERR BADREQ y", &code, text,
	    sizeof text), 0);
	ck_assert_int_eq(code, PGB_ERR_BADREQ);
	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOHOS y", &code, text,
	    sizeof text), 0);
	ck_assert_int_eq(code, PGB_ERR_DAEMON);
	ck_assert_str_eq(text, "NOHOS: y");
	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOHOSTS y", &code, text,
	    sizeof text), 0);
	ck_assert_int_eq(code, PGB_ERR_DAEMON);
	ck_assert_str_eq(text, "NOHOSTS: y");
}
END_TEST

/* The first byte is checked like the others; a 1-byte buffer gets "". */
START_TEST(test_first_byte_and_tiny_buffers)
{
	pgb_errcode	code;
	char		text[8] = "XXXXXXX", host[8];
	int		port;

	ck_assert(!pgbc_token_ok(" a", 10));
	ck_assert(!pgbc_token_ok("\x7f" "a", 10));
	ck_assert(!pgbi_proto_options_ok("\x01" "a", 10));
	ck_assert(!pgbi_proto_options_ok("\x7f" "a", 10));
	ck_assert_int_eq(pgbi_proto_parse_hostport("\x01" "b:9", 4, host,
	    sizeof host, &port), -1);
	ck_assert_int_eq(pgbi_proto_parse_hostport("\x7f" "b:9", 4, host,
	    sizeof host, &port), -1);
	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOHOST abc", &code, text,
	    1), 0);
	ck_assert_int_eq(text[0], '\0');
	ck_assert_int_eq(text[1], 'X');
	ck_assert_int_eq(pgbi_proto_parse_err("ERR NOHOST abc", &code, text,
	    3), 0);
	ck_assert_str_eq(text, "ab");
}
END_TEST

/* Third round of mutants (issue 11 §4): the edges left unpinned. */
START_TEST(test_reply_parser_edges_round3)
{
	static const char pong[] = "PONG\0X";
	char		 line[256], why[128], role[PGB_ROLE_MAX + 1];
	const char	*rest, *list;
	size_t		 len;
	pgb_resolved	 r;
	pgb_event	 ev;

	/* PONG has an empty rest, not NULL nor past the end. */
	rest = NULL;
	ck_assert_int_eq(pgbi_proto_classify(pong, &rest), PGBI_REPLY_PONG);
	ck_assert_ptr_nonnull(rest);
	ck_assert_str_eq(rest, "");

	/* The first byte of a value is checked like the others. */
	ck_assert_int_eq(pgbi_proto_parse_resolve("OK host=\x01" "db port=1 "
	    "role=master generation=1", &r, why, sizeof why), -1);
	ck_assert_str_eq(why, "control character");

	/* Unknown keys of the lengths of known ones are ignored. */
	ck_assert_msg(pgbi_proto_parse_resolve("OK host=db port=1 role=master "
	    "generation=7 abcd=x zzzzzzzzzz=y", &r, why, sizeof why) == 0,
	    "%s", why);
	ck_assert_str_eq(r.role, "master");
	ck_assert_uint_eq(r.generation, 7);
	ck_assert_msg(pgbi_proto_parse_resolve("OK abcd=x zzzzzzzzzz=y "
	    "host=db port=1 role=replica generation=8", &r, why,
	    sizeof why) == 0, "%s", why);
	ck_assert_str_eq(r.role, "replica");
	ck_assert_uint_eq(r.generation, 8);

	/* A role fills r.role at most up to its last byte, the NUL. */
	memset(role, 'r', PGB_ROLE_MAX);
	role[PGB_ROLE_MAX - 1] = '\0';
	snprintf(line, sizeof line, "OK host=db port=1 role=%s generation=1",
	    role);
	ck_assert_int_eq(pgbi_proto_parse_resolve(line, &r, why, sizeof why),
	    0);
	ck_assert_str_eq(r.role, role);
	role[PGB_ROLE_MAX - 1] = 'r';
	role[PGB_ROLE_MAX] = '\0';
	snprintf(line, sizeof line, "OK host=db port=1 role=%s generation=1",
	    role);
	ck_assert_int_eq(pgbi_proto_parse_resolve(line, &r, why, sizeof why),
	    -1);
	ck_assert_str_eq(why, "bad role");

	/* An unknown code into a 1-byte buffer: "", as for known codes. */
	strcpy(why, "XX");
	ck_assert_int_eq(pgbi_proto_parse_err("ERR WHAT abc", &(pgb_errcode){ 0 },
	    why, 1), 0);
	ck_assert_int_eq(why[0], '\0');
	ck_assert_int_eq(why[1], 'X');

	/* EVENT: a cluster name the daemon refuses; a one-byte master. */
	ck_assert_int_eq(pgbi_proto_parse_event("EVENT ma\x01" "n generation=1 "
	    "master=none", &ev, why, sizeof why), -1);
	ck_assert_str_eq(why, "bad cluster name");
	ck_assert_int_eq(pgbi_proto_parse_event("EVENT main generation=1 "
	    "master=x", &ev, why, sizeof why), -1);
	ck_assert_str_eq(why, "bad master");

	/* replicas=: only on EVENT lines; first field; "none" exactly. */
	ck_assert_int_eq(pgbi_proto_event_replicas("OK main replicas=a:1",
	    &list, &len), -1);
	list = NULL;
	len = 99;
	ck_assert_int_eq(pgbi_proto_event_replicas("EVENT main replicas=none "
	    "generation=1 master=none", &list, &len), 1);
	ck_assert_ptr_nonnull(list);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(pgbi_proto_event_replicas("EVENT main replicas=a:12 "
	    "generation=1", &list, &len), 1);
	ck_assert_uint_eq(len, 4);
	ck_assert_int_eq(strncmp(list, "a:12", 4), 0);
	ck_assert_int_eq(pgbi_proto_event_replicas("EVENT main generation=1 "
	    "replicas=nonex:5", &list, &len), 1);
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(strncmp(list, "nonex:5", 7), 0);
	ck_assert_int_eq(pgbi_proto_replicas_has(list, len, "nonex", 5), 1);
	ck_assert_int_eq(pgbi_proto_replicas_has(list, len, "nonex", 6), 0);
}
END_TEST

static Suite *
client_proto_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("client_proto");
	tc = tcase_create("core");
	tcase_add_test(tc, test_classify_recognises_every_reply_form);
	tcase_add_test(tc, test_resolve_reply_parses_all_fields);
	tcase_add_test(tc,
	    test_resolve_reply_accepts_any_key_order_and_unknown_keys);
	tcase_add_test(tc, test_err_reply_keeps_code_and_text);
	tcase_add_test(tc, test_event_with_master_parses);
	tcase_add_test(tc, test_event_old_and_new_formats_both_parse);
	tcase_add_test(tc, test_event_replicas_none_and_malformed);
	tcase_add_test(tc, test_event_without_master_parses);
	tcase_add_test(tc, test_event_with_ipv6_master_parses);
	tcase_add_test(tc, test_lsn_round_trips);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, test_classify_rejects_lookalikes);
	tcase_add_test(tc, test_resolve_reply_rejects_malformed);
	tcase_add_test(tc, test_err_reply_rejects_malformed);
	tcase_add_test(tc, test_event_rejects_malformed);
	tcase_add_test(tc, test_request_tokens_refuse_spaces_and_controls);
	tcase_add_test(tc, test_resolve_args_take_every_role_of_the_daemon);
	tcase_add_test(tc, test_resolve_args_keep_the_daemons_cluster_limit);
	tcase_add_test(tc, test_client_refuses_a_cluster_name_the_daemon_would);
	tcase_add_test(tc, test_hostport_is_the_inverse_of_the_daemons_join);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, test_resolve_reply_rejects_overlong_host);
	tcase_add_test(tc, test_err_reply_truncates_long_text);
	suite_add_tcase(s, tc);
	tc = tcase_create("mutants");
	tcase_add_test(tc, test_event_errors_name_their_reason);
	tcase_add_test(tc, test_event_edges_parse);
	tcase_add_test(tc, test_hostport_edges);
	tcase_add_test(tc, test_resolve_reply_value_bytes);
	tcase_add_test(tc, test_request_token_edges);
	tcase_add_test(tc, test_err_reply_every_code);
	tcase_add_test(tc, test_first_byte_and_tiny_buffers);
	tcase_add_test(tc, test_reply_parser_edges_round3);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(client_proto_suite()));
}
