/*
 * check_common.c - unit tests of common/ (the protocol grammar shared by
 * pgbeacond and libpgbeacon), and the round trip between them: every
 * reply line the daemon formats (protocol.c) parses back in the library
 * (client-lib/src/proto.c) to the same values.
 */
#include <sys/queue.h>

#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "common/errcodes.h"
#include "common/hostport.h"
#include "common/limits.h"
#include "common/lsn.h"
#include "common/num.h"
#include "common/request.h"
#include "common/roles.h"

#include "protocol.h"
#include "topology.h"

#include "pgbeacon.h"
#include "src/proto-internal.h"
#include "../check_main.h"

#define NELEM(a)	(sizeof (a) / sizeof (a)[0])

/* --- numbers ------------------------------------------------------------ */

static bool
i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	return (pgbc_parse_i64(s, strlen(s), min, max, out));
}

START_TEST(test_i64_reads_the_int64_range_edges)
{
	int64_t	v;

	ck_assert(i64("9223372036854775807", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == INT64_MAX);
	ck_assert(i64("9223372036854775806", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == INT64_MAX - 1);
	ck_assert(i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == INT64_MIN);
	ck_assert(i64("-9223372036854775807", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == INT64_MIN + 1);
	ck_assert(!i64("9223372036854775808", INT64_MIN, INT64_MAX, &v));
	ck_assert(!i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v));
	ck_assert(!i64("99999999999999999999", INT64_MIN, INT64_MAX, &v));
	ck_assert(i64("0", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == 0);
	ck_assert(i64("-1", INT64_MIN, INT64_MAX, &v));
	ck_assert(v == -1);
}
END_TEST

START_TEST(test_i64_keeps_its_bounds)
{
	int64_t	v;

	ck_assert(i64("4", 0, 4, &v));
	ck_assert(v == 4);
	ck_assert(!i64("5", 0, 4, &v));
	ck_assert(i64("0", 0, 4, &v));
	ck_assert(!i64("-1", 0, 4, &v));
	ck_assert(i64("3", 3, 3, &v));
	ck_assert(!i64("2", 3, 3, &v));
	ck_assert(!i64("1", 2, 1, &v));		/* min > max */
	ck_assert(!i64("-1", -1, -2, &v));
	ck_assert(!i64("0", 0, -1, &v));
	/* A range ending at zero. */
	ck_assert(i64("0", -5, 0, &v));
	ck_assert(v == 0);
	ck_assert(i64("-5", -5, 0, &v));
	ck_assert(v == -5);
	ck_assert(!i64("1", -5, 0, &v));
	/* A negative range. */
	ck_assert(i64("-5", -10, -5, &v));
	ck_assert(v == -5);
	ck_assert(i64("-10", -10, -5, &v));
	ck_assert(v == -10);
	ck_assert(!i64("-4", -10, -5, &v));
	ck_assert(!i64("-11", -10, -5, &v));
	ck_assert(!i64("5", -10, -5, &v));
	ck_assert(!i64("0", -10, -5, &v));
	/* A range across zero. */
	ck_assert(i64("-3", -3, 3, &v));
	ck_assert(v == -3);
	ck_assert(!i64("-4", -3, 3, &v));
	ck_assert(i64("3", -3, 3, &v));
	ck_assert(!i64("4", -3, 3, &v));
	/* The socket's bound on lags. */
	ck_assert(i64("4611686018427387904", 0, PGBC_LAG_MAX, &v));
	ck_assert(v == PGBC_LAG_MAX);
	ck_assert(!i64("4611686018427387905", 0, PGBC_LAG_MAX, &v));
	ck_assert(!i64("9223372036854775807", 0, PGBC_LAG_MAX, &v));
}
END_TEST

START_TEST(test_i64_refuses_what_is_not_a_plain_decimal)
{
	static const char *const bad[] = {
		"", "-", "+1", " 1", "1 ", "1\n", "0x10", "1e3", "1.0", "--1",
		"-0", "-00", "1-", "١", "a", "12a", "\t1", "-+1",
	};
	int64_t	v = 42;
	size_t	i;

	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(!i64(bad[i], INT64_MIN, INT64_MAX, &v),
		    "took \"%s\"", bad[i]);
	ck_assert(v == 42);		/* untouched */
	ck_assert(!pgbc_parse_i64(NULL, 1, 0, 1, &v));
	ck_assert(!pgbc_parse_i64("1\0" "2", 3, 0, 1000, &v));
	ck_assert(v == 42);
}
END_TEST

START_TEST(test_i64_takes_leading_zeros_and_slices)
{
	int64_t	v;

	ck_assert(i64("007", 0, 10, &v));
	ck_assert(v == 7);
	ck_assert(i64("0000000000000000000000009223372036854775807",
	    0, INT64_MAX, &v));
	ck_assert(v == INT64_MAX);
	ck_assert(i64("-007", -10, 0, &v));
	ck_assert(v == -7);
	ck_assert(pgbc_parse_i64("123", 2, 0, 1000, &v));
	ck_assert(v == 12);
	ck_assert(!pgbc_parse_i64("123", 0, 0, 1000, &v));
	/* len 0 reads nothing, not even a '-'. */
	ck_assert(!pgbc_parse_i64("-5", 0, -10, 10, &v));
	ck_assert(pgbc_parse_i64("-5", 2, -10, 10, &v));
	ck_assert(v == -5);
	ck_assert(!pgbc_parse_i64("-5", 1, -10, 10, &v));
}
END_TEST

START_TEST(test_u64_reads_the_uint64_range)
{
	uint64_t	v;

	ck_assert(pgbc_parse_u64("18446744073709551615", 20, UINT64_MAX, &v));
	ck_assert(v == UINT64_MAX);
	ck_assert(pgbc_parse_u64("18446744073709551614", 20, UINT64_MAX, &v));
	ck_assert(v == UINT64_MAX - 1);
	ck_assert(!pgbc_parse_u64("18446744073709551616", 20, UINT64_MAX,
	    &v));
	ck_assert(!pgbc_parse_u64("-1", 2, UINT64_MAX, &v));
	ck_assert(!pgbc_parse_u64("", 0, UINT64_MAX, &v));
	ck_assert(!pgbc_parse_u64(NULL, 0, UINT64_MAX, &v));
	ck_assert(pgbc_parse_u64("10", 2, 10, &v));
	ck_assert(v == 10);
	ck_assert(!pgbc_parse_u64("11", 2, 10, &v));
	ck_assert(pgbc_parse_u64("0", 1, 0, &v));
	ck_assert(v == 0);
}
END_TEST

START_TEST(test_port_is_1_to_65535)
{
	int	p = 7;

	ck_assert(pgbc_parse_port("1", 1, &p));
	ck_assert_int_eq(p, 1);
	ck_assert(pgbc_parse_port("65535", 5, &p));
	ck_assert_int_eq(p, 65535);
	ck_assert(pgbc_parse_port("05432", 5, &p));
	ck_assert_int_eq(p, 5432);
	ck_assert(!pgbc_parse_port("0", 1, &p));
	ck_assert(!pgbc_parse_port("65536", 5, &p));
	ck_assert(!pgbc_parse_port("-1", 2, &p));
	ck_assert(!pgbc_parse_port("", 0, &p));
	ck_assert(!pgbc_parse_port("99999999999999999999", 20, &p));
	ck_assert_int_eq(p, 5432);
}
END_TEST

/* --- LSNs --------------------------------------------------------------- */

START_TEST(test_lsn_edges)
{
	static const char *const bad[] = {
		"", "0", "/0", "0/", "0//0", "100000000/0", "0/100000000",
		"g/0", "0/g", " 0/0", "0/0 ", "+1/0", "-1/0", "0x1/0", "1/2/3",
	};
	char		buf[PGBC_LSN_STRLEN];
	uint64_t	v = 5;
	size_t		i;

	ck_assert(pgbc_lsn_parse("0/0", &v));
	ck_assert(v == 0);
	ck_assert(pgbc_lsn_parse("FFFFFFFF/FFFFFFFF", &v));
	ck_assert(v == UINT64_MAX);
	ck_assert(pgbc_lsn_parse("ffffffff/0", &v));
	ck_assert(v == UINT64_C(0xffffffff00000000));
	/* Every decimal digit, 9 included, and both letter edges. */
	ck_assert(pgbc_lsn_parse("19/A9", &v));
	ck_assert(v == (UINT64_C(0x19) << 32 | 0xa9));
	ck_assert(pgbc_lsn_parse("01234567/89aFAf09", &v));
	ck_assert(v == UINT64_C(0x0123456789afaf09));
	ck_assert(pgbc_lsn_parse("00000009/9", &v));
	ck_assert(v == (UINT64_C(9) << 32 | 9));
	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(!pgbc_lsn_parse(bad[i], &v), "took %s", bad[i]);
	ck_assert(!pgbc_lsn_parse(NULL, &v));
	ck_assert(v == (UINT64_C(9) << 32 | 9));

	pgbc_lsn_format(UINT64_MAX, buf);
	ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");
	pgbc_lsn_format(0, buf);
	ck_assert_str_eq(buf, "0/0");
	pgbc_lsn_format(UINT64_C(0x16B374D848), buf);
	ck_assert_str_eq(buf, "16/B374D848");
	ck_assert(pgbc_lsn_diff(10, 3) == 7);
	ck_assert(pgbc_lsn_diff(3, 10) == 0);
	ck_assert(pgbc_lsn_diff(UINT64_MAX, 0) == UINT64_MAX);
}
END_TEST

/* --- host:port ---------------------------------------------------------- */

static bool
hp(const char *s, unsigned flags, struct pgbc_hostport *out, const char **why)
{
	return (pgbc_hostport_parse(s, strlen(s), flags, out, why));
}

static void
ck_host(const struct pgbc_hostport *h, const char *host, int port,
    enum pgbc_host_kind kind)
{
	ck_assert_uint_eq(h->hostlen, strlen(host));
	ck_assert(memcmp(h->host, host, h->hostlen) == 0);
	ck_assert_int_eq(h->port, port);
	ck_assert_int_eq(h->kind, kind);
}

START_TEST(test_hostport_reads_the_three_kinds)
{
	struct pgbc_hostport	h;

	ck_assert(hp("[::1]:5432", 0, &h, NULL));
	ck_host(&h, "::1", 5432, PGBC_HOST_IPV6);
	ck_assert(hp("[::ffff:10.0.0.1]:1", 0, &h, NULL));
	ck_host(&h, "::ffff:10.0.0.1", 1, PGBC_HOST_IPV6);
	ck_assert(hp("[FE80::aB]:65535", 0, &h, NULL));
	ck_host(&h, "FE80::aB", 65535, PGBC_HOST_IPV6);
	ck_assert(hp("db1.example:5432", 0, &h, NULL));
	ck_host(&h, "db1.example", 5432, PGBC_HOST_NAME);
	ck_assert(hp("10.0.0.1:05432", 0, &h, NULL));
	ck_host(&h, "10.0.0.1", 5432, PGBC_HOST_NAME);
	ck_assert(hp("/run/pg:5433", PGBC_HP_ALLOW_DIR, &h, NULL));
	ck_host(&h, "/run/pg", 5433, PGBC_HOST_DIR);
	ck_assert(hp("/run/[a]:b:5433", PGBC_HP_ALLOW_DIR, &h, NULL));
	ck_host(&h, "/run/[a]:b", 5433, PGBC_HOST_DIR);
	/* The slice ends at len. */
	ck_assert(pgbc_hostport_parse("db:12345", 5, 0, &h, NULL));
	ck_host(&h, "db", 12, PGBC_HOST_NAME);
	ck_assert(pgbc_hostport_parse("db:1:", 4, 0, &h, NULL));
	ck_host(&h, "db", 1, PGBC_HOST_NAME);
}
END_TEST

START_TEST(test_hostport_refuses_malformed)
{
	static const struct {
		const char	*s;
		const char	*why;
	} bad[] = {
		{ "[::1", "bad IPv6 address" },
		{ "[::1:5", "bad IPv6 address" },
		{ "[::]x:5", "bad IPv6 address" },
		{ "[::1]", "port must be a number from 1 to 65535" },
		{ "[::1]x5432", "port must be a number from 1 to 65535" },
		{ "[[x]]:5", "bad IPv6 address" },
		{ "[x]:5", "bad IPv6 address" },
		{ "[]:5", "bad IPv6 address" },
		{ "[:]x:5", "bad IPv6 address" },
		{ "[/a:b]:5", "bad IPv6 address" },
		{ "[::1]]:5", "bad IPv6 address" },
		{ "::1:5432", "an IPv6 address needs brackets" },
		{ "a:b:5", "an IPv6 address needs brackets" },
		{ "x]:5", "bad host name" },
		{ "a[b:5", "bad host name" },
		{ "db", "no ':PORT'" },
		{ "", "no ':PORT'" },
		{ ":5432", "no host before ':'" },
		{ "db:", "port must be a number from 1 to 65535" },
		{ "db:0", "port must be a number from 1 to 65535" },
		{ "db:65536", "port must be a number from 1 to 65535" },
		{ "db:+1", "port must be a number from 1 to 65535" },
		{ "db: 1", "port must be a number from 1 to 65535" },
		{ "d b:1", "host must be printable ASCII without spaces" },
		{ "d\x7f" "b:1", "host must be printable ASCII without spaces" },
		{ "d\x80:1", "host must be printable ASCII without spaces" },
		{ "/run/pg:5432", "a path has no port" },
	};
	struct pgbc_hostport	h;
	const char		*why;
	size_t			i;

	for (i = 0; i < NELEM(bad); i++) {
		why = NULL;
		ck_assert_msg(!hp(bad[i].s, 0, &h, &why), "took %s", bad[i].s);
		ck_assert_msg(why != NULL && strcmp(why, bad[i].why) == 0,
		    "%s: %s", bad[i].s, why != NULL ? why : "(null)");
	}
	ck_assert(!hp("/run/a b:1", PGBC_HP_ALLOW_DIR, &h, NULL));
	ck_assert(!pgbc_hostport_parse(NULL, 0, 0, &h, &why));
	ck_assert(!pgbc_hostport_parse("a\0:1", 4, 0, &h, NULL));
}
END_TEST

START_TEST(test_hostport_host_length_limit)
{
	char			s[PGBC_HOST_LEN_MAX + 16];
	struct pgbc_hostport	h;

	memset(s, 'h', PGBC_HOST_LEN_MAX);
	strcpy(s + PGBC_HOST_LEN_MAX, ":1");
	ck_assert(hp(s, 0, &h, NULL));
	ck_assert_uint_eq(h.hostlen, PGBC_HOST_LEN_MAX);
	memset(s, 'h', PGBC_HOST_LEN_MAX + 1);
	strcpy(s + PGBC_HOST_LEN_MAX + 1, ":1");
	ck_assert(!hp(s, 0, &h, NULL));
}
END_TEST

/* PGBC_HP_STRICT: what the configuration takes, a subset of the rest. */
START_TEST(test_hostport_strict_narrows_names_and_v6)
{
	static const struct {
		const char	*s;
		bool		 plain;	/* taken without PGBC_HP_STRICT */
		const char	*why;	/* NULL: strict takes it too */
	} cases[] = {
		{ "db1.example:5432", true, NULL },
		{ "10.0.0.1:1", true, NULL },
		{ "my_db-1:1", true, NULL },
		{ "[::1]:1", true, NULL },
		{ "[::ffff:10.0.0.1]:1", true, NULL },
		{ "/run/pg:5432", true, NULL },
		{ "-db:1", true, "bad host name" },
		{ ".db:1", true, "bad host name" },
		{ "run/pg:1", true, "bad host name" },
		{ "db!:1", true, "bad host name" },
		{ "d b:1", false, "bad host name" },
		{ "[1:2:3]:1", true, "bad IPv6 address" },
		{ "[::1.2]:1", true, "bad IPv6 address" },
		{ "[:::]:1", true, "bad IPv6 address" },
		{ "/run/a b:1", false, "a socket directory must be printable "
		    "ASCII without spaces" },
	};
	char			s[PGBC_HOST_LEN_MAX + 16];
	struct pgbc_hostport	h;
	const char		*why;
	size_t			i;

	for (i = 0; i < NELEM(cases); i++) {
		why = NULL;
		ck_assert_msg(hp(cases[i].s, PGBC_HP_ALLOW_DIR, &h, NULL) ==
		    cases[i].plain, "plain %s", cases[i].s);
		ck_assert_msg(hp(cases[i].s, PGBC_HP_ALLOW_DIR |
		    PGBC_HP_STRICT, &h, &why) == (cases[i].why == NULL),
		    "strict %s", cases[i].s);
		if (cases[i].why != NULL)
			ck_assert_msg(why != NULL &&
			    strcmp(why, cases[i].why) == 0, "%s: %s",
			    cases[i].s, why != NULL ? why : "(null)");
	}
	/* Without PGBC_HP_STRICT, "d b" is refused for its space. */
	ck_assert(!hp("d b:1", 0, &h, &why));
	ck_assert_str_eq(why, "host must be printable ASCII without spaces");

	/* A DNS name is at most PGBC_DNS_NAME_MAX bytes. */
	memset(s, 'h', PGBC_DNS_NAME_MAX);
	strcpy(s + PGBC_DNS_NAME_MAX, ":1");
	ck_assert(hp(s, PGBC_HP_STRICT, &h, NULL));
	ck_assert_uint_eq(h.hostlen, PGBC_DNS_NAME_MAX);
	memset(s, 'h', PGBC_DNS_NAME_MAX + 1);
	strcpy(s + PGBC_DNS_NAME_MAX + 1, ":1");
	ck_assert(!hp(s, PGBC_HP_STRICT, &h, &why));
	ck_assert_str_eq(why, "bad host name");
	ck_assert(hp(s, 0, &h, NULL));

	/* A directory over the host limit is told as a directory. */
	memset(s, 'd', PGBC_HOST_LEN_MAX + 1);
	s[0] = '/';
	strcpy(s + PGBC_HOST_LEN_MAX + 1, ":1");
	ck_assert(!hp(s, PGBC_HP_ALLOW_DIR, &h, &why));
	ck_assert_str_eq(why, "socket directory too long");
}
END_TEST

START_TEST(test_hostport_format_then_parse_round_trips)
{
	static const char *const hosts[] = {
		"db1", "10.0.0.1", "::1", "fe80::1:2", "::ffff:1.2.3.4",
		"/run/pg", "/run/a:b", "/[x]", "!~",
	};
	static const int	ports[] = { 1, 2, 5432, 65534, 65535 };
	char			buf[TOPO_HOST_NAMELEN];
	struct pgbc_hostport	h;
	size_t			i, j;
	int			n;

	for (i = 0; i < NELEM(hosts); i++) {
		for (j = 0; j < NELEM(ports); j++) {
			n = pgbc_hostport_format(buf, sizeof buf, hosts[i],
			    ports[j]);
			ck_assert(n > 0 && (size_t)n < sizeof buf);
			ck_assert_msg(hp(buf, PGBC_HP_ALLOW_DIR, &h, NULL),
			    "%s", buf);
			ck_assert_uint_eq(h.hostlen, strlen(hosts[i]));
			ck_assert(memcmp(h.host, hosts[i], h.hostlen) == 0);
			ck_assert_int_eq(h.port, ports[j]);
		}
	}
	pgbc_hostport_format(buf, sizeof buf, "::1", 5432);
	ck_assert_str_eq(buf, "[::1]:5432");
	pgbc_hostport_format(buf, sizeof buf, "/run/a:b", 5);
	ck_assert_str_eq(buf, "/run/a:b:5");
	pgbc_hostport_format(buf, sizeof buf, "db", 1);
	ck_assert_str_eq(buf, "db:1");
}
END_TEST

/* --- roles, error codes --------------------------------------------------- */

START_TEST(test_roles_names_and_aliases)
{
	static const struct {
		const char	*name;
		enum pgbc_want	 want;
		const char	*canonical;
	} roles[] = {
		{ "master", PGBC_WANT_MASTER, "master" },
		{ "primary", PGBC_WANT_MASTER, "master" },
		{ "replica", PGBC_WANT_REPLICA, "replica" },
		{ "standby", PGBC_WANT_REPLICA, "replica" },
		{ "sync_by_time", PGBC_WANT_SYNC_BY_TIME, "sync_by_time" },
		{ "sync_by_bytes", PGBC_WANT_SYNC_BY_BYTES, "sync_by_bytes" },
		{ "sync_by_time_or_bytes", PGBC_WANT_SYNC_BY_TIME_OR_BYTES,
		    "sync_by_time_or_bytes" },
		{ "sync_by_time_and_bytes", PGBC_WANT_SYNC_BY_TIME_AND_BYTES,
		    "sync_by_time_and_bytes" },
		{ "any", PGBC_WANT_ANY, "any" },
	};
	static const char *const bad[] = {
		"", "Master", "MASTER", "master ", "sync_by", "none", "anyx",
	};
	enum pgbc_want	w = PGBC_WANT_ANY;
	size_t		i;

	for (i = 0; i < NELEM(roles); i++) {
		ck_assert_msg(pgbc_want_parse(roles[i].name, &w), "%s",
		    roles[i].name);
		ck_assert_int_eq(w, roles[i].want);
		ck_assert_str_eq(pgbc_want_name(w), roles[i].canonical);
		ck_assert(pgbc_token_ok(roles[i].name, PGBC_ROLE_NAME_MAX));
		ck_assert(pgbc_want_is_master(roles[i].name) ==
		    (roles[i].want == PGBC_WANT_MASTER));
	}
	w = PGBC_WANT_REPLICA;
	for (i = 0; i < NELEM(bad); i++)
		ck_assert_msg(!pgbc_want_parse(bad[i], &w), "%s", bad[i]);
	ck_assert(!pgbc_want_parse(NULL, &w));
	ck_assert_int_eq(w, PGBC_WANT_REPLICA);
	ck_assert(!pgbc_want_is_master(NULL));
	ck_assert_str_eq(pgbc_want_name((enum pgbc_want)99), "any");
	/* The daemon's enums are the same values. */
	ck_assert_int_eq(TOPO_WANT_SYNC_BY_TIME_AND_BYTES,
	    PGBC_WANT_SYNC_BY_TIME_AND_BYTES);
	ck_assert_int_eq(TOPO_WANT_ANY, PGBC_WANT_ANY);
}
END_TEST

START_TEST(test_role_names_round_trip)
{
	static const enum pgbc_role all[] = {
		PGBC_ROLE_NONE, PGBC_ROLE_MASTER, PGBC_ROLE_REPLICA
	};
	enum pgbc_role	r = PGBC_ROLE_NONE;
	size_t		i;

	ck_assert_str_eq(pgbc_role_name(PGBC_ROLE_NONE), "none");
	ck_assert_str_eq(pgbc_role_name(PGBC_ROLE_MASTER), "master");
	ck_assert_str_eq(pgbc_role_name(PGBC_ROLE_REPLICA), "replica");
	ck_assert_str_eq(pgbc_role_name((enum pgbc_role)3), "none");
	for (i = 0; i < NELEM(all); i++) {
		ck_assert(pgbc_role_parse(pgbc_role_name(all[i]), &r));
		ck_assert_int_eq(r, all[i]);
	}
	ck_assert(!pgbc_role_parse("primary", &r));
	ck_assert(!pgbc_role_parse("", &r));
	ck_assert(!pgbc_role_parse(NULL, &r));
	ck_assert_int_eq(r, PGBC_ROLE_REPLICA);
}
END_TEST

START_TEST(test_err_codes_round_trip)
{
	static const struct {
		enum pgbc_err	 err;
		const char	*name;
	} codes[] = {
		{ PGBC_ERR_NOHOST, "NOHOST" },
		{ PGBC_ERR_NOCLUSTER, "NOCLUSTER" },
		{ PGBC_ERR_BADROLE, "BADROLE" },
		{ PGBC_ERR_BADREQ, "BADREQ" },
		{ PGBC_ERR_DENIED, "DENIED" },
	};
	enum pgbc_err	e = PGBC_OK;
	size_t		i;

	for (i = 0; i < NELEM(codes); i++) {
		ck_assert_str_eq(pgbc_err_name(codes[i].err), codes[i].name);
		ck_assert(pgbc_err_parse(codes[i].name, strlen(codes[i].name),
		    &e));
		ck_assert_int_eq(e, codes[i].err);
	}
	ck_assert_str_eq(pgbc_err_name(PGBC_OK), "OK");
	ck_assert_str_eq(pgbc_err_name((enum pgbc_err)6), "BADREQ");
	ck_assert_str_eq(pgbc_err_name((enum pgbc_err)-1), "BADREQ");
	e = PGBC_ERR_DENIED;
	ck_assert(!pgbc_err_parse("OK", 2, &e));
	ck_assert(!pgbc_err_parse("NOHOS", 5, &e));
	ck_assert(!pgbc_err_parse("NOHOSTS", 7, &e));
	ck_assert(!pgbc_err_parse("nohost", 6, &e));
	ck_assert(!pgbc_err_parse("", 0, &e));
	ck_assert(!pgbc_err_parse(NULL, 0, &e));
	ck_assert(pgbc_err_parse("NOHOSTS", 6, &e));	/* a slice */
	ck_assert_int_eq(e, PGBC_ERR_NOHOST);
}
END_TEST

/* --- tokens, cluster names, options ------------------------------------ */

START_TEST(test_tokens_and_cluster_names)
{
	char	name[PGBC_CLUSTER_NAME_MAX + 2];

	ck_assert(pgbc_token_ok("!~", 2));
	ck_assert(!pgbc_token_ok("!~", 1));
	ck_assert(!pgbc_token_ok("", 5));
	ck_assert(!pgbc_token_ok(NULL, 5));
	ck_assert(!pgbc_token_ok("a b", 5));
	ck_assert(!pgbc_token_ok(" a", 5));
	ck_assert(!pgbc_token_ok("a\t", 5));
	ck_assert(!pgbc_token_ok("a\x7f", 5));
	ck_assert(!pgbc_token_ok("a\x80", 5));
	ck_assert(!pgbc_token_ok("\x1f", 5));

	memset(name, 'c', sizeof name);
	name[PGBC_CLUSTER_NAME_MAX] = '\0';
	ck_assert(pgbc_cluster_name_ok(name));
	name[PGBC_CLUSTER_NAME_MAX] = 'c';
	name[PGBC_CLUSTER_NAME_MAX + 1] = '\0';
	ck_assert(!pgbc_cluster_name_ok(name));
	ck_assert(!pgbc_cluster_name_ok(""));
	ck_assert(!pgbc_cluster_name_ok("a b"));
	ck_assert(pgbc_cluster_name_ok("a"));
	/* What the configuration and the state file take. */
	ck_assert(pgbc_config_name_ok("main-1_a.B9z", 12));
	ck_assert(pgbc_config_name_ok("AZaz09", 6));
	ck_assert(!pgbc_config_name_ok("ma!n", 4));
	ck_assert(!pgbc_config_name_ok("a b", 3));
	ck_assert(!pgbc_config_name_ok("a/", 2));
	ck_assert(!pgbc_config_name_ok("@", 1));
	ck_assert(!pgbc_config_name_ok("[", 1));
	ck_assert(!pgbc_config_name_ok("`", 1));
	ck_assert(!pgbc_config_name_ok("{", 1));
	ck_assert(!pgbc_config_name_ok(":", 1));
	ck_assert(!pgbc_config_name_ok("", 0));
	ck_assert(!pgbc_config_name_ok(NULL, 0));
	ck_assert(pgbc_config_name_ok("ab!", 2));	/* a slice */
	name[PGBC_CLUSTER_NAME_MAX] = 'c';
	ck_assert(pgbc_config_name_ok(name, PGBC_CLUSTER_NAME_MAX));
	ck_assert(!pgbc_config_name_ok(name, PGBC_CLUSTER_NAME_MAX + 1));
	/* The public field has room for every name the grammar takes. */
	ck_assert_int_gt(PGB_CLUSTER_MAX, PGBC_CLUSTER_NAME_MAX);
}
END_TEST

START_TEST(test_option_table)
{
	char			 bound[32];
	size_t			 i;
	const struct pgbc_opt	*o;

	for (i = 0; i < PGBC_OPT_COUNT; i++) {
		ck_assert_int_eq(pgbc_opts[i].id, (int)i);
		ck_assert_ptr_eq(pgbc_opt_find(pgbc_opts[i].name, false),
		    &pgbc_opts[i]);
		ck_assert_ptr_eq(pgbc_opt_find(pgbc_opts[i].name, true),
		    &pgbc_opts[i]);
		if (pgbc_opts[i].alias != NULL) {
			ck_assert_ptr_null(pgbc_opt_find(pgbc_opts[i].alias,
			    false));
			ck_assert_ptr_eq(pgbc_opt_find(pgbc_opts[i].alias,
			    true), &pgbc_opts[i]);
		}
	}
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_MAX_LAG_MS].name, "max_lag_ms");
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_MAX_LAG_MS].alias, "lag_ms");
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_MAX_LAG_BYTES].name,
	    "max_lag_bytes");
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_MAX_LAG_BYTES].alias, "lag_bytes");
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_MIN_LSN].name, "min_lsn");
	ck_assert_str_eq(pgbc_opts[PGBC_OPT_FALLBACK].name, "fallback");
	ck_assert_ptr_null(pgbc_opt_find("max_lag", true));
	ck_assert_ptr_null(pgbc_opt_find("", true));
	ck_assert_ptr_null(pgbc_opt_find(NULL, true));
	/* The message gives the real bound. */
	snprintf(bound, sizeof bound, "%" PRId64, PGBC_LAG_MAX);
	o = &pgbc_opts[PGBC_OPT_MAX_LAG_MS];
	ck_assert_int_eq(o->max, PGBC_LAG_MAX);
	ck_assert_int_eq(o->min, 0);
	ck_assert_ptr_nonnull(strstr(o->expect, bound));
	ck_assert_ptr_nonnull(strstr(pgbc_opts[PGBC_OPT_MAX_LAG_BYTES].expect,
	    bound));
}
END_TEST

START_TEST(test_option_values)
{
	const struct pgbc_opt	*ms = &pgbc_opts[PGBC_OPT_MAX_LAG_MS];
	const struct pgbc_opt	*lsn = &pgbc_opts[PGBC_OPT_MIN_LSN];
	const struct pgbc_opt	*fb = &pgbc_opts[PGBC_OPT_FALLBACK];
	struct pgbc_opt_value	 v;

	memset(&v, 0, sizeof v);
	ck_assert(pgbc_opt_parse(ms, "4611686018427387904", &v));
	ck_assert(v.num == PGBC_LAG_MAX);
	ck_assert(pgbc_opt_parse(ms, "0", &v));
	ck_assert(v.num == 0);
	/* Drift (a) of issue 12: the HTTP parameters took this. */
	ck_assert(!pgbc_opt_parse(ms, "9223372036854775807", &v));
	ck_assert(!pgbc_opt_parse(ms, "4611686018427387905", &v));
	ck_assert(!pgbc_opt_parse(ms, "-1", &v));
	ck_assert(!pgbc_opt_parse(ms, "", &v));
	ck_assert(!pgbc_opt_parse(ms, NULL, &v));
	ck_assert(pgbc_opt_parse(lsn, "16/B374D848", &v));
	ck_assert(v.lsn == UINT64_C(0x16B374D848));
	ck_assert(!pgbc_opt_parse(lsn, "16", &v));
	ck_assert(pgbc_opt_parse(fb, "master", &v));
	ck_assert_int_eq(v.fallback, PGBC_FALLBACK_MASTER);
	ck_assert(pgbc_opt_parse(fb, "none", &v));
	ck_assert_int_eq(v.fallback, PGBC_FALLBACK_NONE);
	ck_assert(!pgbc_opt_parse(fb, "Master", &v));
	ck_assert(!pgbc_opt_parse(fb, "default", &v));
	ck_assert_int_eq(v.fallback, PGBC_FALLBACK_NONE);
}
END_TEST

START_TEST(test_option_format_then_parse_round_trips)
{
	static const int64_t	nums[] = { 0, 1, 9, 10, 1000, PGBC_LAG_MAX - 1,
		PGBC_LAG_MAX };
	static const uint64_t	lsns[] = { 0, 9, UINT64_C(0x900000009),
		UINT64_MAX };
	static const enum pgbc_fallback fbs[] = { PGBC_FALLBACK_MASTER,
		PGBC_FALLBACK_NONE };
	struct pgbc_opt_value	v, back;
	char			buf[64];
	size_t			i, k;

	for (k = PGBC_OPT_MAX_LAG_MS; k <= PGBC_OPT_MAX_LAG_BYTES; k++) {
		for (i = 0; i < NELEM(nums); i++) {
			memset(&v, 0, sizeof v);
			v.num = nums[i];
			pgbc_opt_format(buf, sizeof buf, &pgbc_opts[k], &v);
			ck_assert_msg(pgbc_opt_parse(&pgbc_opts[k], buf, &back),
			    "%s", buf);
			ck_assert(back.num == nums[i]);
		}
	}
	for (i = 0; i < NELEM(lsns); i++) {
		v.lsn = lsns[i];
		pgbc_opt_format(buf, sizeof buf, &pgbc_opts[PGBC_OPT_MIN_LSN],
		    &v);
		ck_assert(pgbc_opt_parse(&pgbc_opts[PGBC_OPT_MIN_LSN], buf,
		    &back));
		ck_assert(back.lsn == lsns[i]);
	}
	for (i = 0; i < NELEM(fbs); i++) {
		v.fallback = fbs[i];
		pgbc_opt_format(buf, sizeof buf, &pgbc_opts[PGBC_OPT_FALLBACK],
		    &v);
		ck_assert(pgbc_opt_parse(&pgbc_opts[PGBC_OPT_FALLBACK], buf,
		    &back));
		ck_assert_int_eq(back.fallback, fbs[i]);
	}
}
END_TEST

/* --- the round trip: daemon formats, library parses ---------------------- */

/* A small deterministic generator of test values. */
static uint64_t
next_rand(uint64_t *state)
{
	*state = *state * UINT64_C(6364136223846793005) +
	    UINT64_C(1442695040888963407);
	return (*state >> 11) ^ *state;
}

/* Boundaries first, then pseudo-random values. */
static uint64_t
gen_u64(size_t i, uint64_t *state)
{
	static const uint64_t edges[] = { 0, 1, 9, 10, UINT32_MAX,
		(uint64_t)UINT32_MAX + 1, INT64_MAX, (uint64_t)INT64_MAX + 1,
		UINT64_MAX - 1, UINT64_MAX };

	if (i < NELEM(edges))
		return (edges[i]);
	return (next_rand(state) >> (next_rand(state) % 64));
}

static int
gen_port(size_t i, uint64_t *state)
{
	static const int edges[] = { 1, 2, 9, 10, 5432, 65534, 65535 };

	if (i < NELEM(edges))
		return (edges[i]);
	return (1 + (int)(next_rand(state) % 65535));
}

/*
 * A host the daemon could have (common/hostport.h's grammar): a DNS
 * name, an IPv6 address or a socket directory, up to the longest.
 */
static void
gen_host(size_t i, uint64_t *state, char *buf, size_t len)
{
	static const char *const fixed[] = {
		"db1", "h", "10.0.0.1", "::1", "::", "fe80::1:2",
		"::ffff:127.0.0.1", "/run/pg", "/tmp/a:b", "/[x]", "!~",
		"a-b_c.d",
	};
	static const char name_chars[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";
	static const char v6_chars[] = "0123456789abcdef:";
	size_t	n, k, max = len - 1 < PGBC_HOST_LEN_MAX ? len - 1 :
	    PGBC_HOST_LEN_MAX;

	if (i < NELEM(fixed)) {
		snprintf(buf, len, "%s", fixed[i]);
		return;
	}
	if (i == NELEM(fixed)) {	/* the longest name */
		memset(buf, 'n', max);
		buf[max] = '\0';
		return;
	}
	n = 1 + next_rand(state) % (i % 7 == 0 ? max : 40);
	switch (next_rand(state) % 3) {
	case 0:
		for (k = 0; k < n; k++)
			buf[k] = name_chars[next_rand(state) %
			    (sizeof name_chars - 1)];
		break;
	case 1:
		buf[0] = ':';
		for (k = 1; k < n; k++)
			buf[k] = v6_chars[next_rand(state) %
			    (sizeof v6_chars - 1)];
		break;
	default:
		buf[0] = '/';
		for (k = 1; k < n; k++)
			buf[k] = (char)('!' + next_rand(state) % 94);
		break;
	}
	buf[n] = '\0';
}

/* A cluster name the daemon could have: 1 to 63 token bytes. */
static void
gen_cluster(size_t i, uint64_t *state, char *buf)
{
	size_t	n, k;

	if (i == 0) {
		memset(buf, 'c', PGBC_CLUSTER_NAME_MAX);
		buf[PGBC_CLUSTER_NAME_MAX] = '\0';
		return;
	}
	n = 1 + next_rand(state) % PGBC_CLUSTER_NAME_MAX;
	for (k = 0; k < n; k++)
		buf[k] = (char)('!' + next_rand(state) % 94);
	buf[n] = '\0';
}

#define ROUNDS	3000

START_TEST(test_resolve_replies_parse_back)
{
	struct topo_host	h;
	pgb_resolved		r;
	char			host[PGB_HOST_MAX], line[PROTO_REPLY_MAX];
	char			why[128];
	uint64_t		state = 1, gen;
	size_t			i, n;

	for (i = 0; i < ROUNDS; i++) {
		memset(&h, 0, sizeof h);
		gen_host(i, &state, host, sizeof host);
		h.host = host;
		h.port = gen_port(i, &state);
		h.role = i % 2 == 0 ? TOPO_ROLE_MASTER : TOPO_ROLE_REPLICA;
		gen = gen_u64(i, &state);
		n = protocol_format_resolve(line, sizeof line, &h, gen);
		ck_assert(n > 0 && line[n - 1] == '\n');
		line[n - 1] = '\0';
		ck_assert_msg(pgbi_proto_parse_resolve(line, &r, why,
		    sizeof why) == 0, "%s: %s", line, why);
		ck_assert_str_eq(r.host, host);
		ck_assert_int_eq(r.port, h.port);
		ck_assert_str_eq(r.role, pgbc_role_name((enum pgbc_role)h.role));
		ck_assert(r.generation == gen);
	}
}
END_TEST

START_TEST(test_events_parse_back)
{
	struct topo_host	 h, *hosts[1] = { &h };
	struct topo_cluster	 c;
	pgb_event		 e;
	char			 host[PGB_HOST_MAX], name[PGBC_CLUSTER_NAME_MAX + 1];
	char			 line[PROTO_REPLY_MAX], why[128];
	uint64_t		 state = 2;
	size_t			 i, n;

	for (i = 0; i < ROUNDS; i++) {
		memset(&h, 0, sizeof h);
		gen_host(i, &state, host, sizeof host);
		gen_cluster(i, &state, name);
		h.host = host;
		h.port = gen_port(i, &state);
		topology_cluster_init(&c, name, hosts, 1, 0);
		c.generation = gen_u64(i, &state);
		if (i % 5 != 4) {
			c.master = 0;
			c.master_host = &h;
		}
		n = protocol_format_event(line, sizeof line, &c);
		ck_assert(n > 0 && line[n - 1] == '\n');
		line[n - 1] = '\0';
		ck_assert_msg(pgbi_proto_parse_event(line, &e, why,
		    sizeof why) == 0, "%s: %s", line, why);
		ck_assert_str_eq(e.cluster, name);
		ck_assert(e.generation == c.generation);
		ck_assert_int_eq(e.resync, 0);
		ck_assert_int_eq(e.has_master, i % 5 != 4);
		if (e.has_master) {
			ck_assert_str_eq(e.master_host, host);
			ck_assert_int_eq(e.master_port, h.port);
		}
	}
}
END_TEST

START_TEST(test_error_replies_parse_back)
{
	static const struct {
		enum proto_err	daemon;
		pgb_errcode	lib;
	} map[] = {
		{ PROTO_ERR_NOHOST, PGB_ERR_NOHOST },
		{ PROTO_ERR_NOCLUSTER, PGB_ERR_NOCLUSTER },
		{ PROTO_ERR_BADROLE, PGB_ERR_BADROLE },
		{ PROTO_ERR_BADREQ, PGB_ERR_BADREQ },
		{ PROTO_ERR_DENIED, PGB_ERR_DAEMON },
	};
	static const char *const texts[] = {
		"", "no primary", "unknown role 'x'", "a  b", "x:y=z",
	};
	char		line[PROTO_REPLY_MAX], text[PROTO_REPLY_MAX];
	char		want[PROTO_REPLY_MAX];
	pgb_errcode	code;
	size_t		i, j, n;

	for (i = 0; i < NELEM(map); i++) {
		for (j = 0; j < NELEM(texts); j++) {
			n = protocol_format_error(line, sizeof line,
			    map[i].daemon, texts[j]);
			ck_assert(n > 0 && line[n - 1] == '\n');
			line[n - 1] = '\0';
			ck_assert_int_eq(pgbi_proto_parse_err(line, &code,
			    text, sizeof text), 0);
			ck_assert_int_eq(code, map[i].lib);
			if (map[i].lib == PGB_ERR_DAEMON)
				snprintf(want, sizeof want, "%s: %s",
				    pgbc_err_name((enum pgbc_err)map[i].daemon),
				    texts[j]);
			else
				snprintf(want, sizeof want, "%s", texts[j]);
			ck_assert_str_eq(text, want);
		}
	}
}
END_TEST

/* The library's RESOLVE request parses in the daemon to what it asked. */
/* The bytes of a request line: the library sends what the daemon takes. */
START_TEST(test_request_line_bytes_agree)
{
	struct proto_request	req;
	char			opts[8], line[64], why[128];
	int			b;
	bool			lib, daemon;

	for (b = 1; b < 256; b++) {
		opts[0] = 'a';
		opts[1] = (char)b;
		opts[2] = 'b';
		opts[3] = '\0';
		ck_assert_int_eq(pgbc_line_text_ok(opts, 3),
		    b == '\t' || (b >= ' ' && b < 0x7f));
		lib = pgbi_proto_options_ok(opts, 3);
		ck_assert_int_eq(lib, pgbc_line_text_ok(opts, 3));
		/* "RESOLVE c master a?b", as the daemon reads it. */
		snprintf(line, sizeof line, "RESOLVE c master %s", opts);
		daemon = protocol_parse_request(line, strlen(line), &req, why,
		    sizeof why) != PROTO_OK && strcmp(why,
		    "binary data in request") == 0;
		ck_assert_msg(lib == !daemon, "byte %d: library %d, daemon %d",
		    b, lib, !daemon);
	}
	ck_assert(pgbc_line_text_ok("", 0));
	ck_assert(!pgbc_line_text_ok("a\0b", 3));
	ck_assert(pgbc_line_text_ok("a\0b", 1));

	ck_assert(pgbc_name_chars_ok("AZaz09_.-", 9));
	ck_assert(pgbc_name_chars_ok("", 0));
	ck_assert(!pgbc_name_chars_ok("a b", 3));
	ck_assert(!pgbc_name_chars_ok("a/b", 3));
	ck_assert(pgbc_name_chars_ok("a/b", 1));
}
END_TEST

START_TEST(test_library_requests_parse_in_the_daemon)
{
	static const char *const roles[] = {
		"master", "primary", "replica", "standby", "sync_by_time",
		"sync_by_bytes", "sync_by_time_or_bytes",
		"sync_by_time_and_bytes", "any",
	};
	struct proto_request	 req;
	struct pgbc_opt_value	 v;
	enum pgbc_want		 want;
	char			 name[PGBC_CLUSTER_NAME_MAX + 1];
	char			 opts[256], line[PGBC_LINE_MAX + 1], why[256];
	uint64_t		 state = 3;
	size_t			 i, k, n;

	for (i = 0; i < ROUNDS; i++) {
		gen_cluster(i, &state, name);
		opts[0] = '\0';
		n = 0;
		memset(&v, 0, sizeof v);
		v.num = (int64_t)(gen_u64(i, &state) % ((uint64_t)PGBC_LAG_MAX +
		    1));
		v.lsn = gen_u64(i, &state);
		v.fallback = i % 2 ? PGBC_FALLBACK_NONE : PGBC_FALLBACK_MASTER;
		for (k = 0; k < PGBC_OPT_COUNT; k++) {
			if ((i >> k) & 1)
				continue;
			n += (size_t)snprintf(opts + n, sizeof opts - n, "%s%s=",
			    n > 0 ? " " : "", pgbc_opts[k].name);
			n += (size_t)pgbc_opt_format(opts + n, sizeof opts - n,
			    &pgbc_opts[k], &v);
		}
		ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line,
		    name, roles[i % NELEM(roles)], opts), 0);
		ck_assert_msg(protocol_parse_request(line, strlen(line), &req,
		    why, sizeof why) == PROTO_OK, "%s: %s", line, why);
		ck_assert_int_eq(req.cmd, PROTO_CMD_RESOLVE);
		ck_assert_str_eq(req.cluster, name);
		ck_assert(pgbc_want_parse(roles[i % NELEM(roles)], &want));
		ck_assert_int_eq(req.query.want, want);
		ck_assert(req.query.max_lag_ms == ((i & 1) ? -1 : v.num));
		ck_assert(req.query.max_lag_bytes == ((i & 2) ? -1 : v.num));
		ck_assert(req.query.has_min_lsn == !(i & 4));
		ck_assert(!req.query.has_min_lsn || req.query.min_lsn == v.lsn);
		ck_assert_int_eq(req.query.fallback, (i & 8) ?
		    PGBC_FALLBACK_DEFAULT : v.fallback);
	}
}
END_TEST

/* The library refuses what the daemon would: the same limits. */
START_TEST(test_library_requests_keep_the_daemons_limits)
{
	char	line[PGBC_LINE_MAX + 8], opts[PGBC_LINE_MAX + 8];
	char	name[PGBC_CLUSTER_NAME_MAX + 2];
	size_t	fixed = strlen("RESOLVE c master ");

	memset(name, 'c', sizeof name);
	name[PGBC_CLUSTER_NAME_MAX] = '\0';
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, name,
	    "master", NULL), 0);
	name[PGBC_CLUSTER_NAME_MAX] = 'c';
	name[PGBC_CLUSTER_NAME_MAX + 1] = '\0';
	/* Drift (b) of issue 12: the daemon refuses over 63 bytes. */
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, name,
	    "master", NULL), -1);
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, "c",
	    "ma ster", NULL), -1);
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, "c",
	    "master", "a\nb"), -1);
	/* A line of exactly PGBC_LINE_MAX bytes, and one byte more. */
	memset(opts, 'x', PGBC_LINE_MAX - fixed);
	opts[PGBC_LINE_MAX - fixed] = '\0';
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, "c",
	    "master", opts), 0);
	ck_assert_uint_eq(strlen(line), PGBC_LINE_MAX);
	ck_assert_int_eq(pgbi_proto_format_resolve(line, PGBC_LINE_MAX, "c",
	    "master", opts), -2);		/* buf too small */
	opts[PGBC_LINE_MAX - fixed] = 'x';
	opts[PGBC_LINE_MAX - fixed + 1] = '\0';
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, "c",
	    "master", opts), -2);
	ck_assert_int_eq(pgbi_proto_format_resolve(line, sizeof line, "c",
	    "master", ""), 0);
	ck_assert_str_eq(line, "RESOLVE c master");
}
END_TEST

START_TEST(test_status_reply_is_an_ok_line)
{
	struct topo_host	 h, *hosts[1] = { &h };
	struct topo_cluster	 c, *cs[1] = { &c };
	struct evbuffer		*out = evbuffer_new();
	const char		*rest;
	char			*line;
	size_t			 n;

	ck_assert_ptr_nonnull(out);
	memset(&h, 0, sizeof h);
	h.host = "::1";
	h.port = 5432;
	topology_cluster_init(&c, "main", hosts, 1, 0);
	ck_assert_int_eq(protocol_format_status(out, cs, 1, 0), 0);
	line = evbuffer_readln(out, &n, EVBUFFER_EOL_LF);
	ck_assert_ptr_nonnull(line);
	ck_assert_int_eq(pgbi_proto_classify(line, &rest), PGBI_REPLY_OK);
	ck_assert(rest[0] == '{');
	free(line);
	evbuffer_free(out);
}
END_TEST

static Suite *
common_suite(void)
{
	Suite	*s = suite_create("common");
	TCase	*tc;

	tc = tcase_create("num");
	tcase_add_test(tc, test_i64_reads_the_int64_range_edges);
	tcase_add_test(tc, test_i64_keeps_its_bounds);
	tcase_add_test(tc, test_i64_refuses_what_is_not_a_plain_decimal);
	tcase_add_test(tc, test_i64_takes_leading_zeros_and_slices);
	tcase_add_test(tc, test_u64_reads_the_uint64_range);
	tcase_add_test(tc, test_port_is_1_to_65535);
	suite_add_tcase(s, tc);

	tc = tcase_create("lsn");
	tcase_add_test(tc, test_lsn_edges);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostport");
	tcase_add_test(tc, test_hostport_reads_the_three_kinds);
	tcase_add_test(tc, test_hostport_refuses_malformed);
	tcase_add_test(tc, test_hostport_host_length_limit);
	tcase_add_test(tc, test_hostport_strict_narrows_names_and_v6);
	tcase_add_test(tc, test_hostport_format_then_parse_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_test(tc, test_roles_names_and_aliases);
	tcase_add_test(tc, test_role_names_round_trip);
	tcase_add_test(tc, test_err_codes_round_trip);
	tcase_add_test(tc, test_tokens_and_cluster_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_test(tc, test_option_table);
	tcase_add_test(tc, test_option_values);
	tcase_add_test(tc, test_option_format_then_parse_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("round_trip");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_resolve_replies_parse_back);
	tcase_add_test(tc, test_events_parse_back);
	tcase_add_test(tc, test_error_replies_parse_back);
	tcase_add_test(tc, test_status_reply_is_an_ok_line);
	tcase_add_test(tc, test_request_line_bytes_agree);
	tcase_add_test(tc, test_library_requests_parse_in_the_daemon);
	tcase_add_test(tc, test_library_requests_keep_the_daemons_limits);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	return (check_run_suite(common_suite()));
}
