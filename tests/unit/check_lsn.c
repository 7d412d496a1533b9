/*
 * check_lsn.c - unit tests of common/lsn.c (pgbc_lsn_*).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/lsn.h"
#include "../check_main.h"

/* A value pgbc_lsn_parse must leave alone on failure. */
#define SENTINEL UINT64_C(0x1234567890ABCDEF)

static Suite	*lsn_suite(void);

START_TEST(test_parse_reads_both_halves)
{
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse("16/B374D848", &v));
	ck_assert_uint_eq(v, UINT64_C(0x16B374D848));
	ck_assert(pgbc_lsn_parse("0/0", &v));
	ck_assert_uint_eq(v, 0);
	ck_assert(pgbc_lsn_parse("1/0", &v));
	ck_assert_uint_eq(v, UINT64_C(0x100000000));
	ck_assert(pgbc_lsn_parse("0/1", &v));
	ck_assert_uint_eq(v, 1);
}
END_TEST

START_TEST(test_parse_accepts_either_case)
{
	uint64_t	a = 0, b = 0, c = 0;

	ck_assert(pgbc_lsn_parse("ab/cdef0123", &a));
	ck_assert(pgbc_lsn_parse("AB/CDEF0123", &b));
	ck_assert(pgbc_lsn_parse("aB/cDeF0123", &c));
	ck_assert_uint_eq(a, UINT64_C(0xABCDEF0123));
	ck_assert_uint_eq(a, b);
	ck_assert_uint_eq(a, c);
}
END_TEST

START_TEST(test_parse_accepts_leading_zeros)
{
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse("00000016/0000000A", &v));
	ck_assert_uint_eq(v, UINT64_C(0x160000000A));
}
END_TEST

START_TEST(test_format_is_upper_case_without_padding)
{
	char	buf[PGBC_LSN_STRLEN];

	pgbc_lsn_format(UINT64_C(0x16B374D848), buf);
	ck_assert_str_eq(buf, "16/B374D848");
	pgbc_lsn_format(0, buf);
	ck_assert_str_eq(buf, "0/0");
	pgbc_lsn_format(UINT64_C(0x100000000), buf);
	ck_assert_str_eq(buf, "1/0");
	pgbc_lsn_format(UINT64_C(0xabcdef), buf);
	ck_assert_str_eq(buf, "0/ABCDEF");
}
END_TEST

START_TEST(test_format_then_parse_round_trips)
{
	static const uint64_t vals[] = {
		0, 1, UINT64_C(0xFFFFFFFF), UINT64_C(0x100000000),
		UINT64_C(0x16B374D848), UINT64_C(0x8000000000000000),
		UINT64_C(0xDEADBEEFCAFEF00D), UINT64_MAX,
	};
	char		buf[PGBC_LSN_STRLEN];
	uint64_t	v;
	size_t		i;

	for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		pgbc_lsn_format(vals[i], buf);
		v = ~vals[i];
		ck_assert_msg(pgbc_lsn_parse(buf, &v), "parse of \"%s\"", buf);
		ck_assert_uint_eq(v, vals[i]);
	}
}
END_TEST

START_TEST(test_parse_then_format_normalises)
{
	char		buf[PGBC_LSN_STRLEN];
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse("000000ab/00000c0d", &v));
	pgbc_lsn_format(v, buf);
	ck_assert_str_eq(buf, "AB/C0D");
}
END_TEST

START_TEST(test_diff_counts_bytes_forward)
{
	ck_assert_uint_eq(pgbc_lsn_diff(UINT64_C(0x100000010), UINT64_C(0xFFFFFFF0)),
	    0x20);
	ck_assert_uint_eq(pgbc_lsn_diff(100, 40), 60);
	ck_assert_uint_eq(pgbc_lsn_diff(UINT64_MAX, 0), UINT64_MAX);
}
END_TEST

START_TEST(test_diff_is_zero_when_not_ahead)
{
	ck_assert_uint_eq(pgbc_lsn_diff(5, 5), 0);
	ck_assert_uint_eq(pgbc_lsn_diff(40, 100), 0);
	ck_assert_uint_eq(pgbc_lsn_diff(0, UINT64_MAX), 0);
}
END_TEST

/* Every one of these is refused and leaves the output alone. */
static const char *const bad_inputs[] = {
	"",			/* empty */
	"/",			/* both halves empty */
	"16/",			/* empty low half */
	"/B374D848",		/* empty high half */
	"16",			/* no slash */
	"16B374D848",		/* no slash */
	"1/2/3",		/* two slashes */
	"16//B374D848",		/* doubled slash */
	" 16/B374D848",		/* leading space */
	"16/B374D848 ",		/* trailing space */
	"16 /B374D848",		/* space before slash */
	"16/ B374D848",		/* space after slash */
	"16/B374D848\n",	/* newline */
	"+16/B374D848",		/* sign */
	"-1/0",			/* sign */
	"0/-1",			/* sign */
	"0/+1",			/* sign */
	"0x16/B374D848",	/* C prefix */
	"16/0xB374D848",	/* C prefix */
	"16/B374D84G",		/* not hex */
	"g/0",			/* not hex */
	"16/B374D848z",		/* trailing garbage */
	"123456789/0",		/* 9 digits high */
	"0/123456789",		/* 9 digits low */
	"000000000/0",		/* 9 digits, even of zeros */
	"0/000000000",		/* 9 digits, even of zeros */
	"100000000/0",		/* overflows 32 bits */
	"FFFFFFFFF/FFFFFFFF",	/* overflows 32 bits */
	"FFFFFFFF/1FFFFFFFF",	/* overflows 32 bits */
	"FFFFFFFFFFFFFFFFFFFFFFFF/0", /* would wrap a 64-bit accumulator */
	"\xef\xbc\x91/0",	/* a full-width digit one in UTF-8 */
	"hello",		/* garbage */
};

START_TEST(test_parse_refuses_bad_input)
{
	uint64_t	v = SENTINEL;
	const char	*s = bad_inputs[_i];

	ck_assert_msg(!pgbc_lsn_parse(s, &v), "\"%s\" was accepted", s);
	ck_assert_uint_eq(v, SENTINEL);
}
END_TEST

START_TEST(test_parse_refuses_null)
{
	uint64_t	v = SENTINEL;

	ck_assert(!pgbc_lsn_parse(NULL, &v));
	ck_assert_uint_eq(v, SENTINEL);
}
END_TEST

START_TEST(test_parse_stops_at_embedded_nul)
{
	static const char s[] = "1/2\0" "3";
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse(s, &v));
	ck_assert_uint_eq(v, UINT64_C(0x100000002));
}
END_TEST

START_TEST(test_parse_accepts_the_largest_lsn)
{
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse("FFFFFFFF/FFFFFFFF", &v));
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

START_TEST(test_format_of_the_largest_lsn_fits)
{
	char	buf[PGBC_LSN_STRLEN + 4];

	memset(buf, 'x', sizeof buf);
	pgbc_lsn_format(UINT64_MAX, buf);
	ck_assert_str_eq(buf, "FFFFFFFF/FFFFFFFF");
	ck_assert_uint_eq(strlen(buf) + 1, PGBC_LSN_STRLEN);
	/* nothing written past PGBC_LSN_STRLEN */
	ck_assert_int_eq(buf[PGBC_LSN_STRLEN], 'x');
}
END_TEST

/* Every hex digit at the edges of its range: 0 9 a f A F. */
START_TEST(test_parse_reads_every_digit_edge)
{
	uint64_t	v = 0;

	ck_assert(pgbc_lsn_parse("9/9", &v));
	ck_assert_uint_eq(v, ((uint64_t)9 << 32) | 9);
	ck_assert(pgbc_lsn_parse("90/09", &v));
	ck_assert_uint_eq(v, ((uint64_t)0x90 << 32) | 0x09);
	ck_assert(pgbc_lsn_parse("a/f", &v));
	ck_assert_uint_eq(v, ((uint64_t)0xa << 32) | 0xf);
	ck_assert(pgbc_lsn_parse("A/F", &v));
	ck_assert_uint_eq(v, ((uint64_t)0xa << 32) | 0xf);
	ck_assert(pgbc_lsn_parse("0123/456789AB", &v));
	ck_assert_uint_eq(v, ((uint64_t)0x123 << 32) | 0x456789ab);
	/* One past each range is not a digit. */
	ck_assert(!pgbc_lsn_parse("g/0", &v));
	ck_assert(!pgbc_lsn_parse("G/0", &v));
	ck_assert(!pgbc_lsn_parse(":/0", &v));
	ck_assert(!pgbc_lsn_parse("`/0", &v));
	ck_assert(!pgbc_lsn_parse("@/0", &v));
}
END_TEST

static Suite *
lsn_suite(void)
{
	Suite	*s = suite_create("lsn");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_add_test(tc, test_parse_reads_both_halves);
	tcase_add_test(tc, test_parse_accepts_either_case);
	tcase_add_test(tc, test_parse_accepts_leading_zeros);
	tcase_add_test(tc, test_format_is_upper_case_without_padding);
	tcase_add_test(tc, test_format_then_parse_round_trips);
	tcase_add_test(tc, test_parse_then_format_normalises);
	tcase_add_test(tc, test_diff_counts_bytes_forward);
	tcase_add_test(tc, test_diff_is_zero_when_not_ahead);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_parse_refuses_bad_input, 0,
	    (int)(sizeof bad_inputs / sizeof bad_inputs[0]));
	tcase_add_test(tc, test_parse_refuses_null);
	tcase_add_test(tc, test_parse_stops_at_embedded_nul);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_parse_accepts_the_largest_lsn);
	tcase_add_test(tc, test_format_of_the_largest_lsn_fits);
	tcase_add_test(tc, test_parse_reads_every_digit_edge);
	suite_add_tcase(s, tc);

	return (s);
}

int
main(void)
{
	return (check_run_suite(lsn_suite()));
}
