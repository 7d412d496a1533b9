/*
 * check_protocol.c - protocol.c: every request form and every refusal,
 * byte-exact replies, and the STATUS JSON read back with json-c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <json-c/json.h>

#include "protocol.h"
#include "topology.h"
#include "../check_main.h"

static char line[PROTO_MAX_LINE + 64];
static char why[256];
static struct proto_request req;

/* Parses the len bytes at text as one request. */
static enum proto_err
parse_bytes(const char *text, size_t len)
{
	ck_assert_uint_le(len, sizeof line - 1);
	memcpy(line, text, len);
	line[len] = '\0';
	why[0] = 'x';
	why[1] = '\0';
	return protocol_parse_request(line, len, &req, why, sizeof why);
}

static enum proto_err
parse(const char *text)
{
	return parse_bytes(text, strlen(text));
}

/* ---- parsing: accepted forms ----------------------------------------- */

START_TEST(test_ping_in_any_case)
{
	static const char *const forms[] = { "PING", "ping", "PiNg",
	    "  PING  ", "\tping\t" };
	size_t	i;

	for (i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		ck_assert_int_eq(parse(forms[i]), PROTO_OK);
		ck_assert_int_eq(req.cmd, PROTO_CMD_PING);
		ck_assert_ptr_null(req.cluster);
		ck_assert_str_eq(why, "");
	}
}
END_TEST

START_TEST(test_forget_takes_one_cluster)
{
	ck_assert_int_eq(parse("FORGET main"), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_FORGET);
	ck_assert_str_eq(req.cluster, "main");
	ck_assert_int_eq(parse("forget  x.y-z_1 "), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_FORGET);
	ck_assert_str_eq(req.cluster, "x.y-z_1");
}
END_TEST

START_TEST(test_status_and_watch_with_and_without_cluster)
{
	ck_assert_int_eq(parse("STATUS"), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_STATUS);
	ck_assert_ptr_null(req.cluster);

	ck_assert_int_eq(parse("status main"), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_STATUS);
	ck_assert_str_eq(req.cluster, "main");

	ck_assert_int_eq(parse("Watch"), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_WATCH);
	ck_assert_ptr_null(req.cluster);

	ck_assert_int_eq(parse("WATCH \t other-1 "), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_WATCH);
	ck_assert_str_eq(req.cluster, "other-1");
}
END_TEST

START_TEST(test_resolve_without_options_uses_defaults)
{
	ck_assert_int_eq(parse("RESOLVE main master"), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_RESOLVE);
	ck_assert_str_eq(req.cluster, "main");
	/* The cluster borrows from the line. */
	ck_assert_ptr_eq(req.cluster, line + 8);
	ck_assert_int_eq(req.query.want, TOPO_WANT_MASTER);
	ck_assert_int_eq(req.query.max_lag_ms, -1);
	ck_assert_int_eq(req.query.max_lag_bytes, -1);
	ck_assert(!req.query.has_min_lsn);
	ck_assert_int_eq(req.query.fallback, TOPO_FALLBACK_DEFAULT);
	ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(test_resolve_every_role_name)
{
	static const struct {
		const char	*role;
		enum topo_want	 want;
	} roles[] = {
		{ "master", TOPO_WANT_MASTER },
		{ "primary", TOPO_WANT_MASTER },
		{ "replica", TOPO_WANT_REPLICA },
		{ "standby", TOPO_WANT_REPLICA },
		{ "sync_by_time", TOPO_WANT_SYNC_BY_TIME },
		{ "sync_by_bytes", TOPO_WANT_SYNC_BY_BYTES },
		{ "sync_by_time_or_bytes", TOPO_WANT_SYNC_BY_TIME_OR_BYTES },
		{ "sync_by_time_and_bytes", TOPO_WANT_SYNC_BY_TIME_AND_BYTES },
		{ "any", TOPO_WANT_ANY },
	};
	char	text[128];
	size_t	i;

	for (i = 0; i < sizeof roles / sizeof roles[0]; i++) {
		snprintf(text, sizeof text, "resolve main %s", roles[i].role);
		ck_assert_int_eq(parse(text), PROTO_OK);
		ck_assert_int_eq(req.query.want, roles[i].want);
	}
}
END_TEST

START_TEST(test_resolve_with_every_option)
{
	ck_assert_int_eq(parse("RESOLVE main sync_by_time max_lag_ms=250 "
	    "max_lag_bytes=1048576 min_lsn=16/B374D848 fallback=none"),
	    PROTO_OK);
	ck_assert_str_eq(req.cluster, "main");
	ck_assert_int_eq(req.query.want, TOPO_WANT_SYNC_BY_TIME);
	ck_assert_int_eq(req.query.max_lag_ms, 250);
	ck_assert_int_eq(req.query.max_lag_bytes, 1048576);
	ck_assert(req.query.has_min_lsn);
	ck_assert_uint_eq(req.query.min_lsn, 0x16B374D848ULL);
	ck_assert_int_eq(req.query.fallback, TOPO_FALLBACK_NONE);

	ck_assert_int_eq(parse("RESOLVE main replica fallback=master"),
	    PROTO_OK);
	ck_assert_int_eq(req.query.fallback, TOPO_FALLBACK_MASTER);
	ck_assert_int_eq(req.query.max_lag_ms, -1);
}
END_TEST

START_TEST(test_tokens_split_on_runs_of_spaces_and_tabs)
{
	ck_assert_int_eq(parse("  \tRESOLVE \t  main\t\treplica   "
	    "max_lag_ms=5\t "), PROTO_OK);
	ck_assert_str_eq(req.cluster, "main");
	ck_assert_int_eq(req.query.want, TOPO_WANT_REPLICA);
	ck_assert_int_eq(req.query.max_lag_ms, 5);
}
END_TEST

START_TEST(test_err_codes_are_the_protocol_words)
{
	ck_assert_str_eq(protocol_err_code(PROTO_OK), "OK");
	ck_assert_str_eq(protocol_err_code(PROTO_ERR_NOHOST), "NOHOST");
	ck_assert_str_eq(protocol_err_code(PROTO_ERR_NOCLUSTER), "NOCLUSTER");
	ck_assert_str_eq(protocol_err_code(PROTO_ERR_BADROLE), "BADROLE");
	ck_assert_str_eq(protocol_err_code(PROTO_ERR_BADREQ), "BADREQ");
	ck_assert_str_eq(protocol_err_code(PROTO_ERR_DENIED), "DENIED");
}
END_TEST

/* ---- parsing: refusals ------------------------------------------------ */

struct bad {
	const char	*text;
	enum proto_err	 err;
	const char	*why;
};

static const struct bad bad_requests[] = {
	{ "", PROTO_ERR_BADREQ, "empty request" },
	{ " \t  ", PROTO_ERR_BADREQ, "empty request" },
	{ "HELLO", PROTO_ERR_BADREQ, "unknown command 'HELLO'" },
	{ "RESOLVEX main master", PROTO_ERR_BADREQ, "unknown command 'RESOLVEX'" },
	{ "PING now", PROTO_ERR_BADREQ, "PING takes no arguments" },
	{ "ping  \t x", PROTO_ERR_BADREQ, "PING takes no arguments" },
	{ "STATUS a b", PROTO_ERR_BADREQ, "STATUS takes at most one cluster" },
	{ "FORGET", PROTO_ERR_BADREQ, "FORGET takes one cluster" },
	{ "FORGET a b", PROTO_ERR_BADREQ, "FORGET takes one cluster" },
	{ "WATCH a b", PROTO_ERR_BADREQ, "WATCH takes at most one cluster" },
	{ "RESOLVE", PROTO_ERR_BADREQ, "RESOLVE needs a cluster and a role" },
	{ "RESOLVE main", PROTO_ERR_BADREQ, "RESOLVE needs a cluster and a role" },
	{ "RESOLVE main leader", PROTO_ERR_BADROLE, "unknown role 'leader'" },
	{ "RESOLVE main MASTER", PROTO_ERR_BADROLE, "unknown role 'MASTER'" },
	{ "RESOLVE main max_lag_ms=5", PROTO_ERR_BADROLE, "unknown role 'max_lag_ms=5'" },
	{ "RESOLVE main replica max_lag_ms", PROTO_ERR_BADREQ, "option 'max_lag_ms' needs key=value" },
	{ "RESOLVE main replica max_lag_ms=", PROTO_ERR_BADREQ, "option max_lag_ms has an empty value" },
	{ "RESOLVE main replica min_lsn=", PROTO_ERR_BADREQ, "option min_lsn has an empty value" },
	{ "RESOLVE main replica fallback=", PROTO_ERR_BADREQ, "option fallback has an empty value" },
	{ "RESOLVE main replica =5", PROTO_ERR_BADREQ, "option without a name" },
	{ "RESOLVE main replica colour=red", PROTO_ERR_BADREQ, "unknown option 'colour'" },
	{ "RESOLVE main replica MAX_LAG_MS=5", PROTO_ERR_BADREQ, "unknown option 'MAX_LAG_MS'" },
	{ "RESOLVE main replica max_lag_ms=1 max_lag_ms=2", PROTO_ERR_BADREQ, "option max_lag_ms given twice" },
	{ "RESOLVE main replica fallback=none max_lag_bytes=1 fallback=none", PROTO_ERR_BADREQ, "option fallback given twice" },
	{ "RESOLVE main replica max_lag_ms=-1", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_ms=+1", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_ms=1x", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_ms=0x10", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_ms=1.5", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_ms=4611686018427387905", PROTO_ERR_BADREQ, "max_lag_ms must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_bytes=99999999999999999999999", PROTO_ERR_BADREQ, "max_lag_bytes must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica max_lag_bytes=1e6", PROTO_ERR_BADREQ, "max_lag_bytes must be a number from 0 to 4611686018427387904" },
	{ "RESOLVE main replica min_lsn=16", PROTO_ERR_BADREQ, "min_lsn must be an LSN like 16/B374D848" },
	{ "RESOLVE main replica min_lsn=G/1", PROTO_ERR_BADREQ, "min_lsn must be an LSN like 16/B374D848" },
	{ "RESOLVE main replica min_lsn=1/2/3", PROTO_ERR_BADREQ, "min_lsn must be an LSN like 16/B374D848" },
	{ "RESOLVE main replica min_lsn=123456789/0", PROTO_ERR_BADREQ, "min_lsn must be an LSN like 16/B374D848" },
	{ "RESOLVE main replica fallback=replica", PROTO_ERR_BADREQ, "fallback must be master or none" },
	{ "RESOLVE main replica fallback=MASTER", PROTO_ERR_BADREQ, "fallback must be master or none" },
	{ "RESOLVE main replica max_lag_ms=1 max_lag_bytes=1 min_lsn=0/1 fallback=none max_lag_ms=2", PROTO_ERR_BADREQ, "option max_lag_ms given twice" },
	{ "RESOLVE main replica a=1 b=2 c=3 d=4 e=5 f=6", PROTO_ERR_BADREQ, "too many options" },
	{ "RESOLVE 0123456789012345678901234567890123456789012345678901234567890123 master", PROTO_ERR_BADREQ, "cluster name longer than 63 bytes" },
	{ "STATUS 0123456789012345678901234567890123456789012345678901234567890123", PROTO_ERR_BADREQ, "cluster name longer than 63 bytes" },
	{ "WATCH 0123456789012345678901234567890123456789012345678901234567890123", PROTO_ERR_BADREQ, "cluster name longer than 63 bytes" },
	/* Bytes the ASCII protocol never carries. */
	{ "PING\x01", PROTO_ERR_BADREQ, "binary data in request" },
	{ "RESOLVE main\x1b[31m master", PROTO_ERR_BADREQ, "binary data in request" },
	{ "RESOLVE main master\r", PROTO_ERR_BADREQ, "binary data in request" },
	{ "RESOLVE ma\nin master", PROTO_ERR_BADREQ, "binary data in request" },
	{ "STATUS \x7f", PROTO_ERR_BADREQ, "binary data in request" },
	{ "STATUS caf\xc3\xa9", PROTO_ERR_BADREQ, "binary data in request" },
	{ "\xff\xfe\xfd", PROTO_ERR_BADREQ, "binary data in request" },
	{ "RESOLVE \x80 master", PROTO_ERR_BADREQ, "binary data in request" },
};

START_TEST(test_refuses_malformed_request)
{
	const struct bad	*b = &bad_requests[_i];
	enum proto_err		 got = parse(b->text);

	ck_assert_msg(got == b->err, "%s: got %d, %s", b->text, (int)got, why);
	ck_assert_msg(strcmp(why, b->why) == 0, "%s: want '%s', got '%s'",
	    b->text, b->why, why);
}
END_TEST

START_TEST(test_refuses_embedded_nul)
{
	ck_assert_int_eq(parse_bytes("PING\0", 5), PROTO_ERR_BADREQ);
	ck_assert_str_eq(why, "binary data in request");
	ck_assert_int_eq(parse_bytes("RESOLVE main\0x master", 21),
	    PROTO_ERR_BADREQ);
	ck_assert_str_eq(why, "binary data in request");
	ck_assert_int_eq(parse_bytes("\0", 1), PROTO_ERR_BADREQ);
	ck_assert_str_eq(why, "binary data in request");
}
END_TEST

START_TEST(test_refuses_random_binary_lines)
{
	char		buf[256];
	unsigned	seed = 12345;
	size_t		i, j, len;
	bool		binary;

	/* Whatever the bytes, the parser answers without crashing, and a
	 * line with a byte outside printable ASCII is always binary. */
	for (i = 0; i < 2000; i++) {
		len = (size_t)(rand_r(&seed) % (int)sizeof buf);
		binary = false;
		for (j = 0; j < len; j++) {
			buf[j] = (char)(rand_r(&seed) & 0xff);
			if (((unsigned char)buf[j] < 0x20 && buf[j] != '\t') ||
			    (unsigned char)buf[j] >= 0x7f)
				binary = true;
		}
		if (parse_bytes(buf, len) != PROTO_OK)
			ck_assert_uint_gt(strlen(why), 0);
		if (binary) {
			ck_assert_str_eq(why, "binary data in request");
		}
	}
}
END_TEST

START_TEST(test_why_may_be_short_or_absent)
{
	char	small[8];

	strcpy(line, "HELLO");
	ck_assert_int_eq(protocol_parse_request(line, 5, &req, small,
	    sizeof small), PROTO_ERR_BADREQ);
	ck_assert_str_eq(small, "unknown");
	strcpy(line, "HELLO");
	ck_assert_int_eq(protocol_parse_request(line, 5, &req, NULL, 0),
	    PROTO_ERR_BADREQ);
}
END_TEST

/* A success empties why, however short; a failure fills what fits. */
START_TEST(test_why_is_emptied_on_success)
{
	char	one[1] = { 'x' };
	char	two[2] = { 'x', 'y' };

	strcpy(line, "PING");
	ck_assert_int_eq(protocol_parse_request(line, 4, &req, one,
	    sizeof one), PROTO_OK);
	ck_assert_int_eq(one[0], '\0');
	strcpy(line, "PING");
	ck_assert_int_eq(protocol_parse_request(line, 4, &req, two,
	    sizeof two), PROTO_OK);
	ck_assert_int_eq(two[0], '\0');
	strcpy(line, "HELLO");
	ck_assert_int_eq(protocol_parse_request(line, 5, &req, two,
	    sizeof two), PROTO_ERR_BADREQ);
	ck_assert_str_eq(two, "u");
}
END_TEST

/* ---- parsing: limits -------------------------------------------------- */

START_TEST(test_line_of_max_length_is_parsed)
{
	char	*text = malloc(PROTO_MAX_LINE + 2);

	ck_assert_ptr_nonnull(text);
	memset(text, ' ', PROTO_MAX_LINE + 1);
	memcpy(text, "PING", 4);
	ck_assert_int_eq(parse_bytes(text, PROTO_MAX_LINE), PROTO_OK);
	ck_assert_int_eq(req.cmd, PROTO_CMD_PING);

	ck_assert_int_eq(parse_bytes(text, PROTO_MAX_LINE + 1),
	    PROTO_ERR_BADREQ);
	ck_assert_str_eq(why, "line too long");
	free(text);
}
END_TEST

START_TEST(test_lag_options_at_their_edges)
{
	ck_assert_int_eq(parse("RESOLVE main sync_by_bytes max_lag_ms=0 "
	    "max_lag_bytes=4611686018427387904"), PROTO_OK);
	ck_assert_int_eq(req.query.max_lag_ms, 0);
	ck_assert_int_eq(req.query.max_lag_bytes, INT64_C(1) << 62);

	ck_assert_int_eq(parse("RESOLVE main sync_by_bytes max_lag_ms=007"),
	    PROTO_OK);
	ck_assert_int_eq(req.query.max_lag_ms, 7);

	ck_assert_int_eq(parse("RESOLVE main replica "
	    "min_lsn=FFFFFFFF/FFFFFFFF"), PROTO_OK);
	ck_assert_uint_eq(req.query.min_lsn, UINT64_MAX);
	ck_assert_int_eq(parse("RESOLVE main replica min_lsn=0/0"), PROTO_OK);
	ck_assert(req.query.has_min_lsn);
	ck_assert_uint_eq(req.query.min_lsn, 0);
}
END_TEST

START_TEST(test_cluster_name_of_63_bytes_is_accepted)
{
	static const char name[] =
	    "012345678901234567890123456789012345678901234567890123456789012";
	char	text[128];

	snprintf(text, sizeof text, "RESOLVE %s any", name);
	ck_assert_int_eq(parse(text), PROTO_OK);
	ck_assert_str_eq(req.cluster, name);
	snprintf(text, sizeof text, "WATCH %s", name);
	ck_assert_int_eq(parse(text), PROTO_OK);
	ck_assert_str_eq(req.cluster, name);
}
END_TEST

/* ---- formatting ------------------------------------------------------- */

static struct topo_host h_db1, h_db2, h_db3, h_v6;
static struct topo_host *main_hosts[3] = { &h_db1, &h_db2, &h_db3 };
static struct topo_host *v6_hosts[1] = { &h_v6 };
static struct topo_cluster c_main, c_v6;

static void
setup_topology(void)
{
	memset(&h_db1, 0, sizeof h_db1);
	h_db1.host = "db1";
	h_db1.port = 5432;
	h_db1.alive = true;
	h_db1.probed = true;
	h_db1.timeline = 2;
	h_db1.current_lsn = 0x3000060;
	h_db1.last_ok_ms = 750;
	h_db1.role = TOPO_ROLE_MASTER;
	h_db1.why = TOPO_WHY_OK;
	h_db1.lag_ms = -1;

	memset(&h_db2, 0, sizeof h_db2);
	h_db2.host = "db2";
	h_db2.port = 5433;
	h_db2.alive = true;
	h_db2.probed = true;
	h_db2.in_recovery = true;
	h_db2.timeline = 2;
	h_db2.replay_lsn = 0x16B374D848ULL;
	h_db2.last_ok_ms = 900;
	h_db2.role = TOPO_ROLE_REPLICA;
	h_db2.why = TOPO_WHY_OK;
	h_db2.lag_known = true;
	h_db2.lag_bytes = 96;
	h_db2.lag_ms = 12;

	memset(&h_db3, 0, sizeof h_db3);
	h_db3.host = "/var/run/postgresql";
	h_db3.port = 5434;
	h_db3.role = TOPO_ROLE_NONE;
	h_db3.why = TOPO_WHY_DEAD;
	h_db3.lag_ms = -1;
	h_db3.lag_known = true;		/* lag_ms -1 stays null */
	h_db3.lag_bytes = 0;
	h_db3.fails = 3;
	strcpy(h_db3.error, "could not connect: \"refused\"\n\tC:\\x\x01");

	memset(&c_main, 0, sizeof c_main);
	c_main.name = "main";
	c_main.hosts = main_hosts;
	c_main.nhosts = 3;
	c_main.system_id = 7301234567890123456ULL;
	c_main.master = 0;
	c_main.master_host = &h_db1;
	c_main.generation = 3;

	memset(&h_v6, 0, sizeof h_v6);
	h_v6.host = "fe80::1";
	h_v6.port = 5432;
	h_v6.role = TOPO_ROLE_MASTER;
	h_v6.why = TOPO_WHY_OK;
	h_v6.alive = true;
	h_v6.probed = true;
	h_v6.timeline = 1;
	h_v6.last_ok_ms = 1000;
	h_v6.lag_ms = -1;

	memset(&c_v6, 0, sizeof c_v6);
	c_v6.name = "v6";
	c_v6.hosts = v6_hosts;
	c_v6.nhosts = 1;
	c_v6.master = 0;
	c_v6.master_host = &h_v6;
	c_v6.generation = 1;
}

static void
teardown_topology(void)
{
}

START_TEST(test_format_resolve_exact)
{
	char	buf[PROTO_REPLY_MAX];
	size_t	n;

	n = protocol_format_resolve(buf, sizeof buf, &h_db1, 3);
	ck_assert_str_eq(buf, "OK host=db1 port=5432 role=master "
	    "generation=3\n");
	ck_assert_uint_eq(n, strlen(buf));

	n = protocol_format_resolve(buf, sizeof buf, &h_db2,
	    UINT64_MAX);
	ck_assert_str_eq(buf, "OK host=db2 port=5433 role=replica "
	    "generation=18446744073709551615\n");
	ck_assert_uint_eq(n, strlen(buf));

	n = protocol_format_resolve(buf, sizeof buf, &h_v6, 0);
	ck_assert_str_eq(buf, "OK host=fe80::1 port=5432 role=master "
	    "generation=0\n");
}
END_TEST

/* protocol_format_request: the canonical line, which parses back. */
START_TEST(test_format_request_is_canonical_and_parses_back)
{
	static const struct {
		const char	*in, *out;
	} cases[] = {
		{ "ping", "PING\n" },
		{ "status", "STATUS\n" },
		{ " watch\tmain ", "WATCH main\n" },
		{ "Status x", "STATUS x\n" },
		{ "forget  main", "FORGET main\n" },
		{ "resolve c primary", "RESOLVE c master\n" },
		{ "RESOLVE c standby fallback=master min_lsn=0/0a "
		  "max_lag_bytes=07 max_lag_ms=5",
		  "RESOLVE c replica max_lag_ms=5 max_lag_bytes=7 min_lsn=0/A "
		  "fallback=master\n" },
		{ "RESOLVE c sync_by_time_and_bytes max_lag_ms=0",
		  "RESOLVE c sync_by_time_and_bytes max_lag_ms=0\n" },
		{ "RESOLVE c any fallback=none", "RESOLVE c any fallback=none\n" },
	};
	struct proto_request	first;
	char			buf[PROTO_MAX_LINE + 2], again[PROTO_MAX_LINE + 2];
	size_t			i, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_assert_int_eq(parse(cases[i].in), PROTO_OK);
		n = protocol_format_request(buf, sizeof buf, &req);
		ck_assert_str_eq(buf, cases[i].out);
		ck_assert_uint_eq(n, strlen(cases[i].out));
		first = req;
		ck_assert_int_eq(parse_bytes(buf, n - 1), PROTO_OK);
		ck_assert_int_eq(req.cmd, first.cmd);
		ck_assert_int_eq(req.query.want, first.query.want);
		ck_assert_int_eq(req.query.max_lag_ms, first.query.max_lag_ms);
		ck_assert_int_eq(req.query.fallback, first.query.fallback);
		protocol_format_request(again, sizeof again, &req);
		ck_assert_str_eq(again, buf);
	}
}
END_TEST

START_TEST(test_format_error_exact)
{
	char	buf[PROTO_REPLY_MAX];
	size_t	n;

	n = protocol_format_error(buf, sizeof buf, PROTO_ERR_NOHOST,
	    "no replica within 100 ms");
	ck_assert_str_eq(buf, "ERR NOHOST no replica within 100 ms\n");
	ck_assert_uint_eq(n, strlen(buf));
	protocol_format_error(buf, sizeof buf, PROTO_ERR_NOCLUSTER,
	    "no cluster 'x'");
	ck_assert_str_eq(buf, "ERR NOCLUSTER no cluster 'x'\n");
	protocol_format_error(buf, sizeof buf, PROTO_ERR_BADROLE,
	    "unknown role 'y'");
	ck_assert_str_eq(buf, "ERR BADROLE unknown role 'y'\n");
	protocol_format_error(buf, sizeof buf, PROTO_ERR_BADREQ,
	    "line too long");
	ck_assert_str_eq(buf, "ERR BADREQ line too long\n");
}
END_TEST

START_TEST(test_format_error_makes_one_line_of_control_characters)
{
	char	buf[PROTO_REPLY_MAX];
	size_t	n;

	n = protocol_format_error(buf, sizeof buf, PROTO_ERR_BADREQ,
	    "a\nb\r\nc\td\x01\x1f\x7f" "e");
	ck_assert_str_eq(buf, "ERR BADREQ a b  c d   e\n");
	ck_assert_uint_eq(n, strlen(buf));
	protocol_format_error(buf, sizeof buf, PROTO_ERR_BADREQ, NULL);
	ck_assert_str_eq(buf, "ERR BADREQ \n");
}
END_TEST

START_TEST(test_format_event_exact)
{
	char	buf[PROTO_REPLY_MAX];
	size_t	n;

	n = protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432"
	    " replicas=db2:5433\n");
	ck_assert_uint_eq(n, strlen(buf));

	c_main.master = -1;
	c_main.master_host = NULL;
	c_main.generation = 4;
	protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=4 master=none"
	    " replicas=db2:5433\n");

	protocol_format_event(buf, sizeof buf, &c_v6);
	ck_assert_str_eq(buf, "EVENT v6 generation=1 master=[fe80::1]:5432"
	    " replicas=none\n");
}
END_TEST

/* Every live replica, in host order; IPv6 ones bracketed. */
START_TEST(test_format_event_lists_live_replicas)
{
	char	buf[PROTO_REPLY_MAX];

	h_db3.role = TOPO_ROLE_REPLICA;
	h_v6.role = TOPO_ROLE_REPLICA;
	protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432"
	    " replicas=db2:5433,/var/run/postgresql:5434\n");
	h_db2.role = TOPO_ROLE_NONE;
	h_db3.role = TOPO_ROLE_NONE;
	protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432"
	    " replicas=none\n");
	main_hosts[1] = &h_v6;
	protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432"
	    " replicas=[fe80::1]:5432\n");
	main_hosts[1] = &h_db2;
}
END_TEST

/*
 * A replicas list that does not fit whole, or a name with a comma, is
 * left out: the line stays an old-style EVENT, never a cut list.
 */
START_TEST(test_format_event_leaves_out_replicas_that_do_not_fit)
{
	char	buf[PROTO_REPLY_MAX];
	size_t	full, n;

	full = protocol_format_event(buf, sizeof buf, &c_main);
	for (n = full; n > full - 12; n--) {
		protocol_format_event(buf, n, &c_main);
		ck_assert_str_eq(buf, "EVENT main generation=3"
		    " master=db1:5432\n");
	}
	protocol_format_event(buf, full + 1, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432"
	    " replicas=db2:5433\n");
	h_db2.host = "db,2";
	protocol_format_event(buf, sizeof buf, &c_main);
	ck_assert_str_eq(buf, "EVENT main generation=3 master=db1:5432\n");
	h_db2.host = "db2";
}
END_TEST

START_TEST(test_formatters_cut_lines_but_keep_the_newline)
{
	char	buf[PROTO_REPLY_MAX + 16], text[2000];
	size_t	len, n;

	for (len = 0; len <= 48; len++) {
		memset(buf, '#', sizeof buf);
		n = protocol_format_resolve(buf, len, &h_db1, 3);
		if (len == 0) {
			ck_assert_uint_eq(n, 0);
			ck_assert_int_eq(buf[0], '#');
			continue;
		}
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_uint_le(n, len - 1);
		ck_assert_int_eq(buf[len], '#');	/* nothing past len */
		if (len > 1)
			ck_assert_int_eq(buf[n - 1], '\n');

		memset(buf, '#', sizeof buf);
		n = protocol_format_error(buf, len, PROTO_ERR_NOHOST,
		    "no host holds the role");
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_uint_le(n, len - 1);
		ck_assert_int_eq(buf[len], '#');
		if (len > 1)
			ck_assert_int_eq(buf[n - 1], '\n');

		memset(buf, '#', sizeof buf);
		n = protocol_format_event(buf, len, &c_main);
		ck_assert_uint_eq(n, strlen(buf));
		ck_assert_uint_le(n, len - 1);
		ck_assert_int_eq(buf[len], '#');
		if (len > 1)
			ck_assert_int_eq(buf[n - 1], '\n');
	}
	memset(text, 'z', sizeof text - 1);
	text[sizeof text - 1] = '\0';
	n = protocol_format_error(buf, PROTO_REPLY_MAX, PROTO_ERR_BADREQ, text);
	ck_assert_uint_eq(n, PROTO_REPLY_MAX - 1);
	ck_assert_uint_eq(strlen(buf), PROTO_REPLY_MAX - 1);
	ck_assert_int_eq(buf[n - 1], '\n');
	ck_assert_ptr_null(memchr(buf, '\n', n - 1));
	ck_assert_int_eq(strncmp(buf, "ERR BADREQ zzz", 14), 0);
}
END_TEST

/* Returns the contents of b as a new string; frees b. */
static char *
drain(struct evbuffer *b)
{
	size_t	 len = evbuffer_get_length(b);
	char	*s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static char *
json_of(const char *s)
{
	struct evbuffer	*b = evbuffer_new();

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(protocol_json_string(b, s), 0);
	return drain(b);
}

START_TEST(test_json_string_escapes)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "say \"hi\"", "\"say \\\"hi\\\"\"" },
		{ "C:\\dir", "\"C:\\\\dir\"" },
		{ "a\nb\tc\rd", "\"a\\u000ab\\u0009c\\u000dd\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		{ "bad \xff\xc3", "\"bad \\ufffd\\ufffd\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },		/* overlong */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },	/* surrogate */
		{ "/path</script>", "\"/path</script>\"" },
	};
	char	*got;
	size_t	 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = json_of(cases[i].in);
		ck_assert_msg(strcmp(got, cases[i].out) == 0,
		    "case %zu: want %s got %s", i, cases[i].out, got);
		free(got);
	}
	got = json_of(NULL);
	ck_assert_str_eq(got, "null");
	free(got);
}
END_TEST

START_TEST(test_json_string_round_trips_through_json_c)
{
	const char		*in = "q\"b\\s/\n\x01\x7f" "caf\xc3\xa9";
	char			*lit = json_of(in);
	struct json_object	*o = json_tokener_parse(lit);

	ck_assert_ptr_nonnull(o);
	ck_assert(json_object_is_type(o, json_type_string));
	ck_assert_str_eq(json_object_get_string(o), in);
	json_object_put(o);
	free(lit);
}
END_TEST

static char *
status_of(struct topo_cluster *const *cs, size_t n, int64_t now_ms)
{
	struct evbuffer	*b = evbuffer_new();

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(evbuffer_add(b, "prev\n", 5), 0);
	ck_assert_int_eq(protocol_format_status(b, cs, n, now_ms), 0);
	return drain(b);
}

START_TEST(test_format_status_exact)
{
	struct topo_cluster	*cs[2] = { &c_main, &c_v6 };
	char			*got;

	got = status_of(cs, 2, 1000);
	ck_assert_str_eq(got, "prev\n"
	    "OK {\"clusters\":["
	    "{\"name\":\"main\",\"generation\":3,\"master\":\"db1:5432\","
	    "\"why_no_master\":null,"
	    "\"system_identifier\":\"7301234567890123456\","
	    "\"max_timeline\":null,\"max_timeline_host\":null,\"hosts\":["
	    "{\"host\":\"db1\",\"port\":5432,\"alive\":true,\"role\":\"master\","
	    "\"why\":\"ok\",\"lag_bytes\":null,\"lag_ms\":null,"
	    "\"replay_lsn\":null,\"current_lsn\":\"0/3000060\",\"timeline\":2,"
	    "\"last_ok_ms_ago\":250,\"fails\":0,\"error\":null},"
	    "{\"host\":\"db2\",\"port\":5433,\"alive\":true,\"role\":\"replica\","
	    "\"why\":\"ok\",\"lag_bytes\":96,\"lag_ms\":12,"
	    "\"replay_lsn\":\"16/B374D848\",\"current_lsn\":null,\"timeline\":2,"
	    "\"last_ok_ms_ago\":100,\"fails\":0,\"error\":null},"
	    "{\"host\":\"/var/run/postgresql\",\"port\":5434,\"alive\":false,"
	    "\"role\":\"none\",\"why\":\"dead\",\"lag_bytes\":0,\"lag_ms\":null,"
	    "\"replay_lsn\":null,\"current_lsn\":null,\"timeline\":null,"
	    "\"last_ok_ms_ago\":null,\"fails\":3,"
	    "\"error\":\"could not connect: "
	    "\\\"refused\\\"\\u000a\\u0009C:\\\\x\\u0001\"}]},"
	    "{\"name\":\"v6\",\"generation\":1,\"master\":\"[fe80::1]:5432\","
	    "\"why_no_master\":null,\"system_identifier\":null,"
	    "\"max_timeline\":null,\"max_timeline_host\":null,\"hosts\":["
	    "{\"host\":\"fe80::1\",\"port\":5432,\"alive\":true,"
	    "\"role\":\"master\",\"why\":\"ok\",\"lag_bytes\":null,"
	    "\"lag_ms\":null,\"replay_lsn\":null,\"current_lsn\":\"0/0\","
	    "\"timeline\":1,\"last_ok_ms_ago\":0,\"fails\":0,\"error\":null}]}"
	    "]}\n");
	/* v6's master has current_lsn 0: still a value, "0/0". */
	free(got);
}
END_TEST

START_TEST(test_format_status_shows_timeline_memory_and_reasons)
{
	struct topo_cluster	*cs[1] = { &c_main };
	char			*got;

	c_main.max_timeline = 37;
	strcpy(c_main.max_timeline_host, "db9:5432");
	h_db2.role = TOPO_ROLE_NONE;
	h_db2.why = TOPO_WHY_STALE_TIMELINE;
	strcpy(h_db2.why_text, "stale replica: timeline 36 < 37 seen on "
	    "db9:5432");
	got = status_of(cs, 1, 1000);
	ck_assert_ptr_nonnull(strstr(got, "\"system_identifier\":"
	    "\"7301234567890123456\",\"max_timeline\":37,"
	    "\"max_timeline_host\":\"db9:5432\",\"hosts\":["));
	ck_assert_ptr_nonnull(strstr(got, "\"port\":5433,\"alive\":true,"
	    "\"role\":\"none\",\"why\":\"stale replica: timeline 36 < 37 "
	    "seen on db9:5432\","));
	/* without a text, the short reason */
	ck_assert_ptr_nonnull(strstr(got, "\"why\":\"dead\""));
	free(got);
}
END_TEST

START_TEST(test_format_status_of_no_cluster)
{
	char	*got = status_of(NULL, 0, 0);

	ck_assert_str_eq(got, "prev\nOK {\"clusters\":[]}\n");
	free(got);
}
END_TEST

START_TEST(test_format_status_lists_listeners_after_clusters)
{
	struct proto_listener_stats	 ls[2];
	struct evbuffer			*b = evbuffer_new();
	char				*got;

	memset(ls, 0, sizeof ls);
	ls[0].cluster = "main";
	ls[0].address = "/run/pgbeacon:5432";
	ls[0].role = "master";
	ls[0].clients = 2;
	ls[0].held = 1;
	ls[0].relayed_total = 9;
	ls[0].fenced_total = 3;
	ls[0].refused_total = 4;
	ls[0].bytes_up = 10;
	ls[0].bytes_down = 20;
	ls[1].cluster = "main";
	ls[1].address = "127.0.0.1:6433";
	ls[1].role = "replica";
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(protocol_format_status_listeners(b, NULL, 0, 0, ls, 2),
	    0);
	got = drain(b);
	ck_assert_str_eq(got, "OK {\"clusters\":[],\"listeners\":["
	    "{\"cluster\":\"main\",\"address\":\"/run/pgbeacon:5432\","
	    "\"role\":\"master\",\"clients\":2,\"held\":1,"
	    "\"relayed_total\":9,\"fenced_total\":3,\"refused_total\":4,"
	    "\"bytes_from_clients\":10,\"bytes_to_clients\":20},"
	    "{\"cluster\":\"main\",\"address\":\"127.0.0.1:6433\","
	    "\"role\":\"replica\",\"clients\":0,\"held\":0,"
	    "\"relayed_total\":0,\"fenced_total\":0,\"refused_total\":0,"
	    "\"bytes_from_clients\":0,\"bytes_to_clients\":0}]}\n");
	free(got);
	/* Without listeners, the reply is what it always was. */
	b = evbuffer_new();
	ck_assert_int_eq(protocol_format_status_listeners(b, NULL, 0, 0, ls, 0),
	    0);
	got = drain(b);
	ck_assert_str_eq(got, "OK {\"clusters\":[]}\n");
	free(got);
}
END_TEST

/* Edges of a host's values: a lag of 0 ms is a value, not unknown; an
 * error of one character is shown. */
START_TEST(test_format_status_lag_zero_and_one_byte_error)
{
	struct topo_cluster	*cs[1] = { &c_main };
	char			*got;

	h_db2.lag_ms = 0;
	strcpy(h_db3.error, "x");
	got = status_of(cs, 1, 1000);
	ck_assert_ptr_nonnull(strstr(got, "\"lag_bytes\":96,\"lag_ms\":0,"));
	ck_assert_ptr_nonnull(strstr(got, "\"fails\":3,\"error\":\"x\"}"));
	free(got);
}
END_TEST

START_TEST(test_format_status_with_one_listener)
{
	struct proto_listener_stats	 ls;
	struct evbuffer			*b = evbuffer_new();
	char				*got;

	memset(&ls, 0, sizeof ls);
	ls.cluster = "main";
	ls.address = "127.0.0.1:6432";
	ls.role = "master";
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(protocol_format_status_listeners(b, NULL, 0, 0, &ls,
	    1), 0);
	got = drain(b);
	ck_assert_str_eq(got, "OK {\"clusters\":[],\"listeners\":["
	    "{\"cluster\":\"main\",\"address\":\"127.0.0.1:6432\","
	    "\"role\":\"master\",\"clients\":0,\"held\":0,"
	    "\"relayed_total\":0,\"fenced_total\":0,\"refused_total\":0,"
	    "\"bytes_from_clients\":0,\"bytes_to_clients\":0}]}\n");
	free(got);
}
END_TEST

START_TEST(test_format_status_parses_back_with_json_c)
{
	struct topo_cluster	*cs[1] = { &c_main };
	struct json_object	*root, *clusters, *c, *hosts, *h, *v;
	char			*got, *nl;

	c_main.master = -1;
	c_main.master_host = NULL;
	c_main.system_id = 0;
	strcpy(c_main.why_no_master, "split brain: db1 and \"db2\" on tl 2");
	h_db1.role = TOPO_ROLE_NONE;
	h_db1.why = TOPO_WHY_SPLIT_BRAIN;
	h_db2.lag_known = false;

	got = status_of(cs, 1, 5000);
	ck_assert_int_eq(strncmp(got, "prev\nOK {", 9), 0);
	nl = strchr(got + 8, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_str_eq(nl, "\n");		/* one line */
	*nl = '\0';
	root = json_tokener_parse(got + 8);
	ck_assert_ptr_nonnull(root);

	ck_assert(json_object_object_get_ex(root, "clusters", &clusters));
	ck_assert_int_eq(json_object_array_length(clusters), 1);
	c = json_object_array_get_idx(clusters, 0);
	ck_assert(json_object_object_get_ex(c, "name", &v));
	ck_assert_str_eq(json_object_get_string(v), "main");
	ck_assert(json_object_object_get_ex(c, "generation", &v));
	ck_assert_int_eq(json_object_get_int64(v), 3);
	ck_assert(json_object_object_get_ex(c, "master", &v));
	ck_assert_ptr_null(v);
	ck_assert(json_object_object_get_ex(c, "why_no_master", &v));
	ck_assert_str_eq(json_object_get_string(v),
	    "split brain: db1 and \"db2\" on tl 2");
	ck_assert(json_object_object_get_ex(c, "system_identifier", &v));
	ck_assert_ptr_null(v);

	ck_assert(json_object_object_get_ex(c, "hosts", &hosts));
	ck_assert_int_eq(json_object_array_length(hosts), 3);
	h = json_object_array_get_idx(hosts, 0);
	ck_assert(json_object_object_get_ex(h, "role", &v));
	ck_assert_str_eq(json_object_get_string(v), "none");
	ck_assert(json_object_object_get_ex(h, "why", &v));
	ck_assert_str_eq(json_object_get_string(v), "split brain");
	ck_assert(json_object_object_get_ex(h, "current_lsn", &v));
	ck_assert_ptr_null(v);
	ck_assert(json_object_object_get_ex(h, "last_ok_ms_ago", &v));
	ck_assert_int_eq(json_object_get_int64(v), 4250);

	h = json_object_array_get_idx(hosts, 1);
	ck_assert(json_object_object_get_ex(h, "port", &v));
	ck_assert_int_eq(json_object_get_int(v), 5433);
	ck_assert(json_object_object_get_ex(h, "alive", &v));
	ck_assert(json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(h, "lag_bytes", &v));
	ck_assert_ptr_null(v);
	ck_assert(json_object_object_get_ex(h, "lag_ms", &v));
	ck_assert_ptr_null(v);
	ck_assert(json_object_object_get_ex(h, "replay_lsn", &v));
	ck_assert_str_eq(json_object_get_string(v), "16/B374D848");
	ck_assert(json_object_object_get_ex(h, "timeline", &v));
	ck_assert_int_eq(json_object_get_int(v), 2);

	h = json_object_array_get_idx(hosts, 2);
	ck_assert(json_object_object_get_ex(h, "host", &v));
	ck_assert_str_eq(json_object_get_string(v), "/var/run/postgresql");
	ck_assert(json_object_object_get_ex(h, "alive", &v));
	ck_assert(!json_object_get_boolean(v));
	ck_assert(json_object_object_get_ex(h, "error", &v));
	ck_assert_str_eq(json_object_get_string(v),
	    "could not connect: \"refused\"\n\tC:\\x\x01");
	ck_assert(json_object_object_get_ex(h, "last_ok_ms_ago", &v));
	ck_assert_ptr_null(v);

	json_object_put(root);
	free(got);
}
END_TEST

START_TEST(test_format_status_never_ages_evidence_below_zero)
{
	struct topo_cluster	*cs[1] = { &c_main };
	char			*got;

	got = status_of(cs, 1, 100);	/* clock before last_ok_ms */
	ck_assert_ptr_nonnull(strstr(got, "\"last_ok_ms_ago\":0,"));
	ck_assert_ptr_null(strstr(got, "\"last_ok_ms_ago\":-"));
	free(got);
}
END_TEST

START_TEST(test_format_status_error_without_nul_stays_in_bounds)
{
	struct topo_cluster	*cs[1] = { &c_main };
	char			*got, want[sizeof h_db3.error + 16];

	memset(h_db3.error, 'e', sizeof h_db3.error);	/* no NUL */
	got = status_of(cs, 1, 1000);
	snprintf(want, sizeof want, "\"error\":\"%.*s\"",
	    (int)sizeof h_db3.error, h_db3.error);
	ck_assert_ptr_nonnull(strstr(got, want));
	free(got);
}
END_TEST

/* The edges of UTF-8: the last and first lead byte of each length, the
 * smallest and largest code point of each length, the surrogates' edges,
 * and a continuation byte that is not one. */
START_TEST(test_json_string_utf8_edges)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "\xc3(", "\"\\ufffd(\"" },		/* bad continuation */
		{ "\xc3\xc0", "\"\\ufffd\\ufffd\"" },
		{ "\xc3\x7f", "\"\\ufffd\\u007f\"" },
		{ "\xe2\x82(", "\"\\ufffd\\ufffd(\"" },
		{ "\xe2\x82", "\"\\ufffd\\ufffd\"" },	/* cut short */
		{ "\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\x80", "\"\\ufffd\"" },			/* lone continuation */
		{ "\xbf", "\"\\ufffd\"" },
		{ "\xc1\xbf", "\"\\ufffd\\ufffd\"" },	/* overlong 2 */
		{ "\xc2\x80", "\"\xc2\x80\"" },		/* U+0080 */
		{ "\xdf\xbf", "\"\xdf\xbf\"" },		/* U+07FF */
		{ "\xe0\x9f\xbf", "\"\\ufffd\\ufffd\\ufffd\"" },	/* overlong 3 */
		{ "\xe0\xa0\x80", "\"\xe0\xa0\x80\"" },	/* U+0800 */
		{ "\xed\x9f\xbf", "\"\xed\x9f\xbf\"" },	/* U+D7FF */
		{ "\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"" },	/* U+DFFF */
		{ "\xee\x80\x80", "\"\xee\x80\x80\"" },	/* U+E000 */
		{ "\xef\xbf\xbf", "\"\xef\xbf\xbf\"" },	/* U+FFFF */
		{ "\xf0\x8f\xbf\xbf",
		    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },		/* overlong 4 */
		{ "\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\"" },	/* U+10000 */
		{ "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"" },	/* U+10FFFF */
		{ "\xf4\x90\x80\x80",
		    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },		/* > U+10FFFF */
		{ "\xf5\x80\x80\x80",
		    "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "\xf8", "\"\\ufffd\"" },
		{ " ~", "\" ~\"" },				/* printable edges */
		{ "\x1f ", "\"\\u001f \"" },
		{ "a\xc3\xa9\x01" "b", "\"a\xc3\xa9\\u0001b\"" },
	};
	char	*got;
	size_t	 i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = json_of(cases[i].in);
		ck_assert_msg(strcmp(got, cases[i].out) == 0,
		    "case %zu: want %s got %s", i, cases[i].out, got);
		free(got);
	}
}
END_TEST

/* Freezes the end of a buffer once it holds *arg bytes or more: every
 * later append fails, as when memory runs out. */
static void
freeze_at_cb(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	(void)info;
	if (evbuffer_get_length(b) >= *(const size_t *)arg)
		evbuffer_freeze(b, 0);
}

/* A formatter whose buffer stops growing at any point returns -1: it
 * never reports success for a cut reply. */
START_TEST(test_formatters_never_succeed_with_a_cut_reply)
{
	struct topo_cluster	*cs[2] = { &c_main, &c_v6 };
	struct evbuffer		*full = evbuffer_new(), *b;
	size_t			 len, jlen, limit;
	int			 rc;
	static const char	 js[] = "a\"b\\c\x01\xff\xc3\xa9 d";

	ck_assert_ptr_nonnull(full);
	ck_assert_int_eq(protocol_format_status(full, cs, 2, 1000), 0);
	len = evbuffer_get_length(full);
	evbuffer_drain(full, len);
	ck_assert_int_eq(protocol_json_string(full, js), 0);
	jlen = evbuffer_get_length(full);
	evbuffer_free(full);
	for (limit = 0; limit < len; limit++) {
		ck_assert_ptr_nonnull(b = evbuffer_new());
		if (limit == 0)
			evbuffer_freeze(b, 0);
		else
			evbuffer_add_cb(b, freeze_at_cb, &limit);
		rc = protocol_format_status(b, cs, 2, 1000);
		ck_assert_msg(rc == -1 || evbuffer_get_length(b) == len,
		    "status cut at %zu: %d with %zu of %zu bytes", limit, rc,
		    evbuffer_get_length(b), len);
		evbuffer_free(b);
		if (limit >= jlen)
			continue;
		ck_assert_ptr_nonnull(b = evbuffer_new());
		if (limit == 0)
			evbuffer_freeze(b, 0);
		else
			evbuffer_add_cb(b, freeze_at_cb, &limit);
		rc = protocol_json_string(b, js);
		ck_assert_msg(rc == -1 || evbuffer_get_length(b) == jlen,
		    "json cut at %zu: %d with %zu of %zu bytes", limit, rc,
		    evbuffer_get_length(b), jlen);
		evbuffer_free(b);
	}
}
END_TEST

static Suite *
protocol_suite(void)
{
	Suite	*s = suite_create("protocol");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup_topology, teardown_topology);
	tcase_add_test(tc, test_ping_in_any_case);
	tcase_add_test(tc, test_forget_takes_one_cluster);
	tcase_add_test(tc, test_status_and_watch_with_and_without_cluster);
	tcase_add_test(tc, test_resolve_without_options_uses_defaults);
	tcase_add_test(tc, test_resolve_every_role_name);
	tcase_add_test(tc, test_resolve_with_every_option);
	tcase_add_test(tc, test_tokens_split_on_runs_of_spaces_and_tabs);
	tcase_add_test(tc, test_err_codes_are_the_protocol_words);
	tcase_add_test(tc, test_format_resolve_exact);
	tcase_add_test(tc, test_format_request_is_canonical_and_parses_back);
	tcase_add_test(tc, test_format_error_exact);
	tcase_add_test(tc, test_format_event_exact);
	tcase_add_test(tc, test_format_event_lists_live_replicas);
	tcase_add_test(tc, test_format_event_leaves_out_replicas_that_do_not_fit);
	tcase_add_test(tc, test_json_string_escapes);
	tcase_add_test(tc, test_json_string_round_trips_through_json_c);
	tcase_add_test(tc, test_format_status_exact);
	tcase_add_test(tc, test_format_status_shows_timeline_memory_and_reasons);
	tcase_add_test(tc, test_format_status_of_no_cluster);
	tcase_add_test(tc, test_format_status_lists_listeners_after_clusters);
	tcase_add_test(tc, test_format_status_parses_back_with_json_c);
	tcase_add_test(tc, test_format_status_lag_zero_and_one_byte_error);
	tcase_add_test(tc, test_format_status_with_one_listener);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup_topology, teardown_topology);
	tcase_add_loop_test(tc, test_refuses_malformed_request, 0,
	    sizeof bad_requests / sizeof bad_requests[0]);
	tcase_add_test(tc, test_refuses_embedded_nul);
	tcase_add_test(tc, test_refuses_random_binary_lines);
	tcase_add_test(tc, test_why_may_be_short_or_absent);
	tcase_add_test(tc, test_why_is_emptied_on_success);
	tcase_add_test(tc, test_format_error_makes_one_line_of_control_characters);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup_topology, teardown_topology);
	tcase_add_test(tc, test_line_of_max_length_is_parsed);
	tcase_add_test(tc, test_lag_options_at_their_edges);
	tcase_add_test(tc, test_cluster_name_of_63_bytes_is_accepted);
	tcase_add_test(tc, test_formatters_cut_lines_but_keep_the_newline);
	tcase_add_test(tc, test_format_status_never_ages_evidence_below_zero);
	tcase_add_test(tc, test_format_status_error_without_nul_stays_in_bounds);
	tcase_add_test(tc, test_json_string_utf8_edges);
	tcase_add_test(tc, test_formatters_never_succeed_with_a_cut_reply);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(protocol_suite()));
}
