/*
 * check_pgwire.c - the first packets, the cancel-key tracker and the
 * ErrorResponse of pgwire.c; and proxy_fence_reason() of proxy.c, the pure
 * rule of fencing.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "pgwire.h"
#include "proxy.h"
#include "topology.h"
#include "../check_main.h"

static size_t
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

/* A StartupMessage for user u, protocol 3.0, into buf; its length. */
static size_t
startup(uint8_t *buf, const char *u)
{
	size_t n = 8;

	memcpy(buf + n, "user", 5);
	n += 5;
	memcpy(buf + n, u, strlen(u) + 1);
	n += strlen(u) + 1;
	buf[n++] = '\0';
	put32(buf, (uint32_t)n);
	put32(buf + 4, 3u << 16);
	return n;
}

START_TEST(test_first_startup_whole_and_partial)
{
	uint8_t buf[128];
	struct pgwire_first f;
	char why[128];
	size_t n = startup(buf, "postgres"), i;

	ck_assert_int_eq(pgwire_parse_first(buf, n, &f, why, sizeof why),
	    PGWIRE_STARTUP);
	ck_assert_uint_eq(f.len, n);
	ck_assert_uint_eq(f.version, 3u << 16);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(pgwire_parse_first(buf, i, &f, why,
		    sizeof why), PGWIRE_NEED_MORE);
}
END_TEST

START_TEST(test_first_ssl_gss_cancel)
{
	uint8_t buf[32];
	struct pgwire_first f;
	char why[128];

	put32(buf, 8);
	put32(buf + 4, PGWIRE_SSL_CODE);
	ck_assert_int_eq(pgwire_parse_first(buf, 8, &f, why, sizeof why),
	    PGWIRE_SSL);
	put32(buf + 4, PGWIRE_GSSENC_CODE);
	ck_assert_int_eq(pgwire_parse_first(buf, 8, &f, why, sizeof why),
	    PGWIRE_GSSENC);
	put32(buf, 16);
	put32(buf + 4, PGWIRE_CANCEL_CODE);
	put32(buf + 8, 4242);
	put32(buf + 12, 0xdeadbeef);
	ck_assert_int_eq(pgwire_parse_first(buf, 15, &f, why, sizeof why),
	    PGWIRE_NEED_MORE);
	ck_assert_int_eq(pgwire_parse_first(buf, 16, &f, why, sizeof why),
	    PGWIRE_CANCEL);
	ck_assert_uint_eq(f.keylen, 8);
	ck_assert_mem_eq(f.key, buf + 8, 8);
}
END_TEST

START_TEST(test_first_garbage_is_bad)
{
	uint8_t buf[64];
	struct pgwire_first f;
	char why[128];
	static const char http[] = "GET / HTTP/1.1\r\n\r\n";

	ck_assert_int_eq(pgwire_parse_first((const uint8_t *)http,
	    sizeof http - 1, &f, why, sizeof why), PGWIRE_BAD);
	put32(buf, 4);
	ck_assert_int_eq(pgwire_parse_first(buf, 4, &f, why, sizeof why),
	    PGWIRE_BAD);
	put32(buf, 100000);
	ck_assert_int_eq(pgwire_parse_first(buf, 4, &f, why, sizeof why),
	    PGWIRE_BAD);
	put32(buf, 12);
	put32(buf + 4, PGWIRE_SSL_CODE);
	ck_assert_int_eq(pgwire_parse_first(buf, 8, &f, why, sizeof why),
	    PGWIRE_BAD);
	put32(buf, 12);
	put32(buf + 4, 2u << 16);	/* protocol 2 */
	ck_assert_int_eq(pgwire_parse_first(buf, 8, &f, why, sizeof why),
	    PGWIRE_BAD);
	ck_assert_ptr_nonnull(strstr(why, "protocol 2.0"));
	put32(buf, 12);
	put32(buf + 4, PGWIRE_CANCEL_CODE);
	ck_assert_int_eq(pgwire_parse_first(buf, 12, &f, why, sizeof why),
	    PGWIRE_BAD);
	put32(buf, 10);
	put32(buf + 4, 3u << 16);
	buf[8] = 'x';
	buf[9] = 'y';	/* not NUL-terminated */
	ck_assert_int_eq(pgwire_parse_first(buf, 10, &f, why, sizeof why),
	    PGWIRE_BAD);
}
END_TEST

/* Server bytes: AuthenticationOk, a ParameterStatus, BackendKeyData,
 * ReadyForQuery. */
static size_t
server_hello(uint8_t *b, uint32_t pid, uint32_t secret)
{
	size_t n = 0;

	b[n++] = 'R';
	n += put32(b + n, 8);
	n += put32(b + n, 0);
	b[n++] = 'S';
	n += put32(b + n, 4 + 4);
	memcpy(b + n, "a\0b\0", 4);
	n += 4;
	b[n++] = 'K';
	n += put32(b + n, 12);
	n += put32(b + n, pid);
	n += put32(b + n, secret);
	b[n++] = 'Z';
	n += put32(b + n, 5);
	b[n++] = 'I';
	return n;
}

START_TEST(test_track_learns_key_byte_by_byte)
{
	struct pgwire_track t;
	uint8_t c[64], s[64], want[8];
	size_t cn = startup(c, "u"), sn = server_hello(s, 77, 99), i;

	pgwire_track_init(&t);
	for (i = 0; i < cn; i++)
		pgwire_track_client(&t, c + i, 1);
	ck_assert_int_eq(t.state, PGWIRE_TR_SERVER_MSGS);
	for (i = 0; i < sn; i++)
		pgwire_track_server(&t, s + i, 1);
	ck_assert(t.has_key);
	ck_assert_uint_eq(t.keylen, 8);
	put32(want, 77);
	put32(want + 4, 99);
	ck_assert_mem_eq(t.key, want, 8);
	ck_assert_int_eq(t.state, PGWIRE_TR_DONE);
	ck_assert(!t.encrypted);
}
END_TEST

START_TEST(test_track_ssl_refused_then_clear)
{
	struct pgwire_track t;
	uint8_t c[64], s[64];
	size_t sn = server_hello(s, 5, 6), cn;

	pgwire_track_init(&t);
	put32(c, 8);
	put32(c + 4, PGWIRE_SSL_CODE);
	pgwire_track_client(&t, c, 8);
	ck_assert_int_eq(t.state, PGWIRE_TR_SERVER_BYTE);
	pgwire_track_server(&t, (const uint8_t *)"N", 1);
	ck_assert_int_eq(t.state, PGWIRE_TR_CLIENT_PACKET);
	cn = startup(c, "u");
	pgwire_track_client(&t, c, cn);
	pgwire_track_server(&t, s, sn);
	ck_assert(t.has_key);
}
END_TEST

START_TEST(test_track_tls_learns_nothing)
{
	struct pgwire_track t;
	uint8_t c[8], s[64];
	size_t sn = server_hello(s, 5, 6);

	pgwire_track_init(&t);
	put32(c, 8);
	put32(c + 4, PGWIRE_SSL_CODE);
	pgwire_track_client(&t, c, 8);
	pgwire_track_server(&t, (const uint8_t *)"S", 1);
	ck_assert_int_eq(t.state, PGWIRE_TR_DONE);
	ck_assert(t.encrypted);
	pgwire_track_server(&t, s, sn);
	ck_assert(!t.has_key);
}
END_TEST

START_TEST(test_track_error_before_key_stops)
{
	struct pgwire_track t;
	uint8_t c[64], e[PGWIRE_ERROR_MAX];
	size_t cn = startup(c, "u"), en;

	pgwire_track_init(&t);
	pgwire_track_client(&t, c, cn);
	en = pgwire_format_error(e, "28000", "no");
	pgwire_track_server(&t, e, en);
	ck_assert_int_eq(t.state, PGWIRE_TR_DONE);
	ck_assert(!t.has_key);
}
END_TEST

/* Appends a server message of type t with body b (n bytes) at buf + pos;
 * returns the new end. */
static size_t
add_msg(uint8_t *buf, size_t pos, uint8_t t, const void *b, size_t n)
{
	buf[pos] = t;
	put32(buf + pos + 1, (uint32_t)(4 + n));
	memcpy(buf + pos + 5, b, n);
	return pos + 5 + n;
}

/* The verdict on buf[0..n), and MORE on every prefix shorter than
 * decided (the bytes that decide it). */
static void
check_answer(const uint8_t *buf, size_t n, size_t decided,
    enum pgwire_answer want, const char *state)
{
	char st[6];
	size_t i;

	for (i = 0; i < decided; i++)
		ck_assert_msg(pgwire_startup_answer(buf, i, st) ==
		    PGWIRE_ANS_MORE, "prefix %zu of %zu", i, n);
	ck_assert_int_eq(pgwire_startup_answer(buf, n, st), want);
	ck_assert_str_eq(st, state);
	ck_assert_int_eq(pgwire_startup_answer(buf, decided, st), want);
}

/* What ends a startup: ReadyForQuery after AuthenticationOk and the
 * messages that follow it; an authentication request the client must
 * answer; an ErrorResponse, first or after AuthenticationOk. */
START_TEST(test_startup_answer_verdicts)
{
	static const uint8_t ok[4] = { 0, 0, 0, 0 }, md5[8] = { 0, 0, 0, 5 };
	static const uint8_t sasl[] = { 0, 0, 0, 10, 'S', 'C', 'R', 'A', 'M',
	    '-', 'S', 'H', 'A', '-', '2', '5', '6', 0, 0 };
	static const uint8_t key[8] = { 0, 0, 0x10, 0x92, 1, 2, 3, 4 };
	static const uint8_t npv[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t buf[2048], e[PGWIRE_ERROR_MAX];
	size_t n, at, en;

	/* trust: every message before ReadyForQuery is read past */
	n = add_msg(buf, 0, 'v', npv, sizeof npv);
	n = add_msg(buf, n, 'R', ok, sizeof ok);
	n = add_msg(buf, n, 'S', "server_version\0" "15.8", 20);
	n = add_msg(buf, n, 'N', "SNOTICE\0Mhi\0", 13);
	n = add_msg(buf, n, 'K', key, sizeof key);
	at = n;
	n = add_msg(buf, n, 'Z', "I", 1);
	check_answer(buf, n, at + 5, PGWIRE_ANS_READY, "");

	/* a password, or SASL: the client must answer */
	n = add_msg(buf, 0, 'R', md5, sizeof md5);
	check_answer(buf, n, 9, PGWIRE_ANS_AUTH, "");
	n = add_msg(buf, 0, 'R', sasl, sizeof sasl);
	check_answer(buf, n, 9, PGWIRE_ANS_AUTH, "");

	/* 57P03 first, and 57P01 after AuthenticationOk: read whole */
	en = pgwire_format_error(e, "57P03", "the database system is shutting "
	    "down");
	memcpy(buf, e, en);
	check_answer(buf, en, en, PGWIRE_ANS_ERROR, "57P03");
	n = add_msg(buf, 0, 'R', ok, sizeof ok);
	n = add_msg(buf, n, 'S', "a\0b", 4);
	en = pgwire_format_error(e, "57P01", "terminating connection due to "
	    "administrator command");
	memcpy(buf + n, e, en);
	check_answer(buf, n + en, n + en, PGWIRE_ANS_ERROR, "57P01");
	/* an error after AuthenticationOk of another class is an error too
	 * (the caller relays it) */
	en = pgwire_format_error(e, "3D000", "database \"x\" does not exist");
	memcpy(buf + 9, e, en);
	check_answer(buf, 9 + en, 9 + en, PGWIRE_ANS_ERROR, "3D000");
}
END_TEST

/* Errors without a readable code, messages a startup never sends, and
 * more than PGWIRE_MAX_ANSWER bytes without a verdict. */
START_TEST(test_startup_answer_odd_input)
{
	static const uint8_t nocode[] = { 'E', 0, 0, 0, 12, 'M', 'o', 'o',
	    'p', 's', 0, 'X', 0 };
	static const uint8_t cut[] = { 'E', 0, 0, 0, 10, 'C', '5', '7', 'P',
	    '0', '3' };
	static const uint8_t shortauth[] = { 'R', 0, 0, 0, 4, 'Z', 0, 0, 0,
	    5, 'I' };
	static const uint8_t ok[4] = { 0 };
	static uint8_t big[PGWIRE_MAX_ANSWER + 256];
	uint8_t buf[64];
	char st[6];
	size_t n;

	check_answer(nocode, sizeof nocode, sizeof nocode, PGWIRE_ANS_ERROR,
	    "");
	/* its fields run off its end: the length says 11 bytes are whole */
	check_answer(cut, sizeof cut, sizeof cut, PGWIRE_ANS_ERROR, "");
	/* an error whose length no server sends: known from its header */
	memcpy(buf, nocode, sizeof nocode);
	buf[1] = 0x7f;
	check_answer(buf, sizeof nocode, 5, PGWIRE_ANS_ERROR, "");
	/* a length below 4, and an authentication request too short to
	 * hold its code */
	n = add_msg(buf, 0, 'R', ok, sizeof ok);
	memcpy(buf + n, "S\0\0\0\3", 5);
	check_answer(buf, n + 5, n + 5, PGWIRE_ANS_OTHER, "");
	check_answer(shortauth, sizeof shortauth, 5, PGWIRE_ANS_OTHER, "");
	/* a DataRow, or a one-byte SSL answer, is no startup answer */
	n = add_msg(buf, 0, 'R', ok, sizeof ok);
	n = add_msg(buf, n, 'D', "\0\0", 2);
	check_answer(buf, n, 9 + 5, PGWIRE_ANS_OTHER, "");
	buf[0] = 'N';
	ck_assert_int_eq(pgwire_startup_answer(buf, 1, st), PGWIRE_ANS_MORE);
	/* a huge message of a known type, header alone */
	buf[0] = 'S';
	put32(buf + 1, PGWIRE_MAX_ANSWER + 1);
	check_answer(buf, 5, 5, PGWIRE_ANS_OTHER, "");
	/* parameters without end: undecided up to the bound, then other */
	for (n = 0; n + 105 <= sizeof big; )
		n = add_msg(big, n, 'S', "p\0vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
		    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
		    100);
	ck_assert_int_eq(pgwire_startup_answer(big, PGWIRE_MAX_ANSWER - 1, st),
	    PGWIRE_ANS_MORE);
	ck_assert_int_eq(pgwire_startup_answer(big, PGWIRE_MAX_ANSWER, st),
	    PGWIRE_ANS_OTHER);
	ck_assert_int_eq(pgwire_startup_answer(big, n, st), PGWIRE_ANS_OTHER);
}
END_TEST

START_TEST(test_error_response_layout)
{
	uint8_t e[PGWIRE_ERROR_MAX];
	char big[2000];
	size_t n = pgwire_format_error(e, "57P03", "no primary");
	static const uint8_t want[] = "E\0\0\0\x26" "SFATAL\0VFATAL\0C57P03\0"
	    "Mno primary\0";

	ck_assert_uint_eq(n, sizeof want);	/* the final NUL included */
	ck_assert_mem_eq(e, want, sizeof want);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	n = pgwire_format_error(e, "08006", big);
	ck_assert_uint_le(n, PGWIRE_ERROR_MAX);
	ck_assert_int_eq(e[n - 1], '\0');
	ck_assert_int_eq(e[n - 2], '\0');
}
END_TEST

/* --- fencing rule ----------------------------------------------------------- */

static struct topo_host fh[3];
static struct topo_host *fhp[3] = { &fh[0], &fh[1], &fh[2] };
static struct topo_cluster fc;
static struct config_listen fl;

static void
fence_setup(void)
{
	memset(fh, 0, sizeof fh);
	topology_cluster_init(&fc, "main", fhp, 3, 0);
	fh[0].host = fh[1].host = fh[2].host = "127.0.0.1";
	fh[0].port = 1;
	fh[1].port = 2;
	fh[2].port = 3;
	fh[0].role = TOPO_ROLE_MASTER;
	fh[1].role = fh[2].role = TOPO_ROLE_REPLICA;
	fh[0].alive = fh[1].alive = fh[2].alive = true;
	fh[1].lag_known = fh[2].lag_known = true;
	fh[1].lag_ms = 100;
	fh[2].lag_ms = 9000;
	fc.master = 0;
	fc.master_host = &fh[0];
	fc.generation = 4;
	memset(&fl, 0, sizeof fl);
	topology_query_init(&fl.query, TOPO_WANT_REPLICA);
	fl.query.max_lag_ms = 1000;
}

START_TEST(test_fence_master_on_generation_or_loss)
{
	ck_assert_ptr_null(proxy_fence_reason(&fc, &fh[0], TOPO_ROLE_MASTER,
	    4, &fl, NULL));
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[0], TOPO_ROLE_MASTER, 3,
	    &fl, NULL), "the primary changed");
	fc.master_host = &fh[1];
	fh[0].role = TOPO_ROLE_NONE;
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[0], TOPO_ROLE_MASTER, 4,
	    &fl, NULL), "no longer the primary");
	fh[0].alive = false;
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[0], TOPO_ROLE_MASTER, 4,
	    &fl, NULL), "primary is dead");
	ck_assert_str_eq(proxy_fence_reason(&fc, NULL, TOPO_ROLE_MASTER, 4,
	    &fl, NULL), "host no longer configured");
}
END_TEST

START_TEST(test_fence_replica_on_death_or_role_not_lag)
{
	/* Over its lag bound: kept unless fence_on_lag. */
	ck_assert_ptr_null(proxy_fence_reason(&fc, &fh[2], TOPO_ROLE_REPLICA,
	    1, &fl, NULL));
	fl.fence_on_lag = true;
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[2], TOPO_ROLE_REPLICA, 1,
	    &fl, NULL), "replica over the lag bound");
	ck_assert_ptr_null(proxy_fence_reason(&fc, &fh[1], TOPO_ROLE_REPLICA,
	    1, &fl, NULL));
	/* The generation does not matter to a replica. */
	ck_assert_ptr_null(proxy_fence_reason(&fc, &fh[1], TOPO_ROLE_REPLICA,
	    99, &fl, NULL));
	fh[1].role = TOPO_ROLE_NONE;	/* stale, foreign, ... */
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[1], TOPO_ROLE_REPLICA, 1,
	    &fl, NULL), "no longer a replica");
	fh[1].alive = false;
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[1], TOPO_ROLE_REPLICA, 1,
	    &fl, NULL), "replica is dead");
}
END_TEST

START_TEST(test_fence_on_lag_uses_sync_defaults)
{
	struct topo_limits lim = { 5000, -1 };

	topology_query_init(&fl.query, TOPO_WANT_SYNC_BY_TIME);
	fl.fence_on_lag = true;
	ck_assert_str_eq(proxy_fence_reason(&fc, &fh[2], TOPO_ROLE_REPLICA, 1,
	    &fl, &lim), "replica over the lag bound");
	lim.sync_max_lag_ms = 10000;
	ck_assert_ptr_null(proxy_fence_reason(&fc, &fh[2], TOPO_ROLE_REPLICA,
	    1, &fl, &lim));
	fh[2].lag_known = false;	/* unknown lag never passes a bound */
	ck_assert_ptr_nonnull(proxy_fence_reason(&fc, &fh[2],
	    TOPO_ROLE_REPLICA, 1, &fl, &lim));
}
END_TEST

static Suite *
pgwire_suite(void)
{
	Suite	*s = suite_create("pgwire");
	TCase	*tc;

	tc = tcase_create("first");
	tcase_add_test(tc, test_first_startup_whole_and_partial);
	tcase_add_test(tc, test_first_ssl_gss_cancel);
	tcase_add_test(tc, test_first_garbage_is_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("track");
	tcase_add_test(tc, test_track_learns_key_byte_by_byte);
	tcase_add_test(tc, test_track_ssl_refused_then_clear);
	tcase_add_test(tc, test_track_tls_learns_nothing);
	tcase_add_test(tc, test_track_error_before_key_stops);
	tcase_add_test(tc, test_error_response_layout);
	tcase_add_test(tc, test_startup_answer_verdicts);
	tcase_add_test(tc, test_startup_answer_odd_input);
	suite_add_tcase(s, tc);

	tc = tcase_create("fence");
	tcase_add_checked_fixture(tc, fence_setup, NULL);
	tcase_add_test(tc, test_fence_master_on_generation_or_loss);
	tcase_add_test(tc, test_fence_replica_on_death_or_role_not_lag);
	tcase_add_test(tc, test_fence_on_lag_uses_sync_defaults);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(pgwire_suite()));
}
