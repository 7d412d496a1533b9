/*
 * check_state.c - unit tests of daemon/state.c: the state file's format
 * (parse and format, pure), and loading and saving it in a temporary
 * directory.
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state.h"
#include "../check_main.h"

static struct state	*st;
static char		 err[256];
static char		 dir[64];
static char		 path[128];

static void
setup(void)
{
	st = state_new(NULL);
	ck_assert_ptr_nonnull(st);
	err[0] = '\0';
	dir[0] = '\0';
}

static void
teardown(void)
{
	char	tmp[160];

	state_free(st);
	st = NULL;
	if (dir[0] != '\0') {
		unlink(path);
		snprintf(tmp, sizeof tmp, "%s.tmp", path);
		unlink(tmp);
		rmdir(dir);
	}
}

/* A fresh directory, and path = dir/state, st saving there. */
static void
use_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/pgbeacon-state.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/state", dir);
	state_free(st);
	st = state_new(path);
	ck_assert_ptr_nonnull(st);
}

static int
parse(const char *text)
{
	return (state_parse(st, text, strlen(text), err, sizeof err));
}

static void
write_file(const char *text)
{
	FILE	*f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* ---------------------------------------------------------------- format */

START_TEST(test_parse_reads_every_field)
{
	struct state_entry	*e;

	ck_assert_int_eq(parse("# a comment\n\npgbeacon-state 1\n"
	    "cluster=main generation=12 system_identifier=7312345678901234567"
	    " timeline=37 timeline_host=127.0.0.2:5432\n"
	    "cluster=b.2-x_y generation=18446744073709551615\n"), 0);
	ck_assert_uint_eq(st->n, 2);
	e = state_find(st, "main");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->generation, 12);
	ck_assert_uint_eq(e->system_id, UINT64_C(7312345678901234567));
	ck_assert_uint_eq(e->timeline, 37);
	ck_assert_str_eq(e->timeline_host, "127.0.0.2:5432");
	e = state_find(st, "b.2-x_y");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->generation, UINT64_MAX);
	ck_assert_uint_eq(e->timeline, 0);
	ck_assert_str_eq(e->timeline_host, "");
	ck_assert_ptr_null(state_find(st, "other"));
}
END_TEST

START_TEST(test_format_parses_back)
{
	struct state_entry	*e;
	struct state		*back;
	char			*text;

	e = state_get(st, "main");
	ck_assert_ptr_nonnull(e);
	e->generation = 7;
	e->system_id = 99;
	e->timeline = 4;
	snprintf(e->timeline_host, sizeof e->timeline_host, "[::1]:5432");
	e = state_get(st, "empty");
	ck_assert_ptr_nonnull(e);
	text = state_format(st);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\npgbeacon-state 1\n"
	    "cluster=main generation=7 system_identifier=99 timeline=4 "
	    "timeline_host=[::1]:5432\n"
	    "cluster=empty generation=0 system_identifier=0 timeline=0\n"));
	back = state_new(NULL);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(state_parse(back, text, strlen(text), err,
	    sizeof err), 0);
	ck_assert_uint_eq(back->n, 2);
	e = state_find(back, "main");
	ck_assert_uint_eq(e->generation, 7);
	ck_assert_uint_eq(e->system_id, 99);
	ck_assert_uint_eq(e->timeline, 4);
	ck_assert_str_eq(e->timeline_host, "[::1]:5432");
	state_free(back);
	free(text);
}
END_TEST

START_TEST(test_format_keeps_hosts_on_one_token)
{
	struct state_entry	*e = state_get(st, "main");
	char			*text;

	ck_assert_ptr_nonnull(e);
	snprintf(e->timeline_host, sizeof e->timeline_host, "/run/my pg\n:5432");
	text = state_format(st);
	ck_assert_ptr_nonnull(strstr(text, "timeline_host=/run/my?pg?:5432\n"));
	ck_assert_int_eq(parse(text), 0);
	free(text);
}
END_TEST

START_TEST(test_unknown_keys_are_ignored)
{
	ck_assert_int_eq(parse("pgbeacon-state 1\ncluster=main generation=3 "
	    "future=thing\n"), 0);
	ck_assert_uint_eq(state_find(st, "main")->generation, 3);
}
END_TEST

START_TEST(test_get_adds_and_grows)
{
	char	name[16];
	int	i;

	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "c%d", i);
		ck_assert_ptr_nonnull(state_get(st, name));
		state_find(st, name)->generation = (uint64_t)i;
	}
	ck_assert_uint_eq(st->n, 100);
	ck_assert_uint_eq(state_find(st, "c42")->generation, 42);
	ck_assert_ptr_eq(state_get(st, "c42"), state_find(st, "c42"));
	ck_assert_uint_eq(st->n, 100);
	ck_assert_ptr_null(state_get(st, "a-name-that-is-much-longer-than-"
	    "sixty-three-bytes-which-no-config-allows"));
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_bad_files_are_refused_with_line)
{
	static const struct {
		const char	*text;
		const char	*err;
	} cases[] = {
		{ "", "empty file" },
		{ "# only comments\n", "empty file" },
		{ "cluster=main generation=1\n", "line 1: not a pgbeacon state" },
		{ "pgbeacon-state 2\n", "line 1: version 2 unknown here" },
		{ "pgbeacon-state x\n", "line 1: not a pgbeacon state" },
		{ "pgbeacon-state 1\ncluster=main\n",
		    "line 2: a cluster line needs cluster= and generation=" },
		{ "pgbeacon-state 1\ngeneration=1\n",
		    "line 2: expected cluster=" },
		{ "pgbeacon-state 1\ncluster=main generation=-1\n",
		    "line 2: bad generation" },
		{ "pgbeacon-state 1\ncluster=main generation=18446744073709551616\n",
		    "line 2: bad generation" },
		{ "pgbeacon-state 1\ncluster=main generation=1 timeline=4294967296\n",
		    "line 2: bad timeline" },
		{ "pgbeacon-state 1\ncluster=main generation=1 system_identifier=x\n",
		    "line 2: bad system_identifier" },
		{ "pgbeacon-state 1\ncluster=ma/in generation=1\n",
		    "line 2: bad cluster name" },
		{ "pgbeacon-state 1\ncluster=main generation=1 junk\n",
		    "line 2: expected key=value" },
		{ "pgbeacon-state 1\ncluster=a generation=1\n"
		    "cluster=a generation=2\n", "line 3: cluster a twice" },
		{ "pgbeacon-state 1\ncluster=main generation=1",
		    "line 2: last line unterminated" },
	};
	size_t	i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		ck_assert_msg(parse(cases[i].text) == -1, "accepted: %s",
		    cases[i].text);
		ck_assert_msg(strncmp(err, cases[i].err, strlen(cases[i].err))
		    == 0, "for %s: got \"%s\", want \"%s\"", cases[i].text, err,
		    cases[i].err);
		ck_assert_uint_eq(st->n, 0);
	}
}
END_TEST

START_TEST(test_binary_data_is_refused)
{
	static const char text[] = "pgbeacon-state 1\ncluster=a\0 generation=1\n";

	ck_assert_int_eq(state_parse(st, text, sizeof text - 1, err,
	    sizeof err), -1);
	ck_assert_str_eq(err, "binary data");
}
END_TEST

/* ---------------------------------------------------------------- files */

START_TEST(test_save_then_load_round_trips)
{
	struct state_entry	*e;
	struct stat		 sb;
	char			 tmp[160];

	use_dir();
	e = state_get(st, "main");
	e->generation = 41;
	e->timeline = 3;
	snprintf(e->timeline_host, sizeof e->timeline_host, "db1:5432");
	ck_assert_int_eq(state_save(st, err, sizeof err), 0);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	ck_assert_int_eq(stat(tmp, &sb), -1);	/* renamed away */
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0640);

	state_free(st);
	st = state_new(path);
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_LOADED);
	e = state_find(st, "main");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->generation, 41);
	ck_assert_uint_eq(e->timeline, 3);
	ck_assert_str_eq(e->timeline_host, "db1:5432");
	/* saved again over the old file */
	e->generation = 42;
	ck_assert_int_eq(state_save(st, err, sizeof err), 0);
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_LOADED);
	ck_assert_uint_eq(state_find(st, "main")->generation, 42);
}
END_TEST

START_TEST(test_missing_file_is_missing)
{
	use_dir();
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_MISSING);
	ck_assert_uint_eq(st->n, 0);
}
END_TEST

START_TEST(test_corrupt_file_is_corrupt_and_empty)
{
	use_dir();
	write_file("pgbeacon-state 1\ncluster=main generation=zz\n");
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_CORRUPT);
	ck_assert_str_eq(err, "line 2: bad generation");
	ck_assert_uint_eq(st->n, 0);
	write_file("garbage");
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_CORRUPT);
}
END_TEST

START_TEST(test_save_into_missing_directory_fails_with_reason)
{
	state_free(st);
	st = state_new("/nonexistent-pgbeacon-dir/state");
	ck_assert_ptr_nonnull(state_get(st, "main"));
	ck_assert_int_eq(state_save(st, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot create "
	    "/nonexistent-pgbeacon-dir/state.tmp"));
}
END_TEST

START_TEST(test_no_path_keeps_state_in_memory_only)
{
	state_free(st);
	st = state_new("");
	ck_assert_ptr_null(st->path);
	ck_assert_ptr_nonnull(state_get(st, "main"));
	ck_assert_int_eq(state_save(st, err, sizeof err), 0);
	ck_assert_int_eq(state_load(st, err, sizeof err), STATE_MISSING);
}
END_TEST

static Suite *
state_suite(void)
{
	Suite	*s = suite_create("state");
	TCase	*tc;

	tc = tcase_create("format");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_parse_reads_every_field);
	tcase_add_test(tc, test_format_parses_back);
	tcase_add_test(tc, test_format_keeps_hosts_on_one_token);
	tcase_add_test(tc, test_unknown_keys_are_ignored);
	tcase_add_test(tc, test_get_adds_and_grows);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_bad_files_are_refused_with_line);
	tcase_add_test(tc, test_binary_data_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_save_then_load_round_trips);
	tcase_add_test(tc, test_missing_file_is_missing);
	tcase_add_test(tc, test_corrupt_file_is_corrupt_and_empty);
	tcase_add_test(tc, test_save_into_missing_directory_fails_with_reason);
	tcase_add_test(tc, test_no_path_keeps_state_in_memory_only);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(state_suite()));
}
