/*
 * check_client_session.c - the pure parts of the sessions' commit
 * bookkeeping (session-common.c): which command tags prove a write, the
 * insert position turned into one a replica can reach, when the commit
 * asks for its LSN, and the groups of readers per cluster; and what both
 * kinds of context decide alike: what ending one does with a session's
 * transaction, its error and first error, why a new one failed.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgbeacon.h"
#include "src/db-internal.h"
#include "src/session-internal.h"
#include "src/util-internal.h"
#include "../check_main.h"

START_TEST(test_tags_of_dml_with_rows_prove_a_write)
{
	ck_assert_int_eq(pgbi_tag_wrote("INSERT 0 1"), 1);
	ck_assert_int_eq(pgbi_tag_wrote("INSERT 0 250"), 1);
	ck_assert_int_eq(pgbi_tag_wrote("UPDATE 3"), 1);
	ck_assert_int_eq(pgbi_tag_wrote("DELETE 10"), 1);
	ck_assert_int_eq(pgbi_tag_wrote("MERGE 1"), 1);
}
END_TEST

START_TEST(test_other_tags_prove_nothing)
{
	/* No row: maybe no xid.  A SELECT may write through a function. */
	ck_assert_int_eq(pgbi_tag_wrote("INSERT 0 0"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("UPDATE 0"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("DELETE 00"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("SELECT 1"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("COPY 5"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("CREATE TABLE"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("INSERT"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("INSERTX 0 1"), 0);
	ck_assert_int_eq(pgbi_tag_wrote("UPDATE x"), 0);
	ck_assert_int_eq(pgbi_tag_wrote(""), 0);
	ck_assert_int_eq(pgbi_tag_wrote(NULL), 0);
}
END_TEST

START_TEST(test_insert_position_after_a_page_header_is_the_boundary)
{
	/* Just past a page's short header: the page boundary. */
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x3002018), 0x3002000);
	/* Just past a segment's long header: the segment boundary. */
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x5000028), 0x5000000);
	ck_assert_uint_eq(pgbi_lsn_insert_to_end((UINT64_C(2) << 32) + 0x28),
	    UINT64_C(2) << 32);
	/* Anywhere else: as given. */
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x3006280), 0x3006280);
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x3002000), 0x3002000);
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x3002028), 0x3002028);
	ck_assert_uint_eq(pgbi_lsn_insert_to_end(0x3002030), 0x3002030);
}
END_TEST

START_TEST(test_commit_asks_for_its_lsn_only_when_usable)
{
	struct pgbi_pconn	 c;
	struct pgbi_commit	 cm;
	pgb_db			*m, *r, *other;

	memset(&c, 0, sizeof c);
	strcpy(c.role, "master");
	m = pgb_db_new("", "ut_main", "master", "/nonexistent");
	ck_assert_ptr_nonnull(m);
	/* No reader of the cluster in the process: a bare COMMIT. */
	ck_assert_str_eq(pgbi_commit_sql(&cm, m, &c, 0, 0), "COMMIT");
	ck_assert_int_eq(cm.track, 0);
	other = pgb_db_new("", "ut_other", "replica", "/nonexistent");
	ck_assert_str_eq(pgbi_commit_sql(&cm, m, &c, 0, 1), "COMMIT");
	/* Asked for: the LSN, and whether it wrote unless a tag said so. */
	ck_assert_ptr_nonnull(strstr(pgbi_commit_sql(&cm, m, &c, 1, 0),
	    "pg_current_xact_id_if_assigned"));
	ck_assert_int_eq(cm.check, 1);
	ck_assert_str_eq(pgbi_commit_sql(&cm, m, &c, 1, 1), "COMMIT;SELECT"
	    " CASE WHEN pg_is_in_recovery() THEN NULL ELSE"
	    " pg_current_wal_insert_lsn() END");
	ck_assert_int_eq(cm.check, 0);
	ck_assert_int_eq(cm.wrote, 1);
	/* A reader of the cluster: on while it exists. */
	r = pgb_db_new("", "ut_main", "sync_by_time", "/nonexistent");
	ck_assert_int_eq(pgbi_db_ryw_readers(m), 1);
	ck_assert_str_ne(pgbi_commit_sql(&cm, m, &c, 0, 1), "COMMIT");
	/* Never on a replica's connection. */
	strcpy(c.role, "replica");
	ck_assert_str_eq(pgbi_commit_sql(&cm, m, &c, 1, 1), "COMMIT");
	pgb_db_free(r);
	ck_assert_int_eq(pgbi_db_ryw_readers(m), 0);
	pgb_db_free(other);
	pgb_db_free(m);
}
END_TEST

START_TEST(test_commit_results_give_wrote_and_the_lsn)
{
	struct pgbi_pconn	 c;
	struct pgbi_commit	 cm;
	struct pgbi_ctx_lsn	 l = { 0 };
	char			 lsn[PGB_LSN_MAX] = "";
	pgb_db			*m;

	memset(&c, 0, sizeof c);
	strcpy(c.role, "master");
	m = pgb_db_new("", "ut_main", "master", "/nonexistent");
	(void)pgbi_commit_sql(&cm, m, &c, 1, 1);
	ck_assert_int_eq(pgbi_commit_complete(&cm, 0), 0);
	ck_assert_int_eq(pgbi_commit_complete(&cm, 1), 1);
	pgbi_strlcpy(cm.lsn, "0/3002018", sizeof cm.lsn);
	pgbi_commit_record(&cm, lsn, &l);
	ck_assert_str_eq(lsn, "0/3002000");
	ck_assert_int_eq(l.known, 1);
	ck_assert_uint_eq(l.pos, 0x3002000);
	/* Asked whether it wrote: no, so nothing is recorded. */
	(void)pgbi_commit_sql(&cm, m, &c, 1, 0);
	ck_assert_int_eq(pgbi_commit_complete(&cm, 1), 0);
	ck_assert_int_eq(pgbi_commit_complete(&cm, 2), 1);
	pgbi_strlcpy(cm.lsn, "0/4000100", sizeof cm.lsn);
	pgbi_commit_record(&cm, lsn, &l);
	ck_assert_str_eq(lsn, "0/3002000");
	pgb_db_free(m);
}
END_TEST

/* Which failures before a first statement mean the role is moving. */
START_TEST(test_shutdown_errors_mean_the_role_is_moving)
{
	ck_assert_int_eq(pgbi_role_moving("57P01", NULL), 1);
	ck_assert_int_eq(pgbi_role_moving("57P02", "x"), 1);
	ck_assert_int_eq(pgbi_role_moving("57P03", ""), 1);
	/* A SQLSTATE decides alone: the message is not read. */
	ck_assert_int_eq(pgbi_role_moving("57P04", "the database system is"
	    " shutting down"), 0);
	ck_assert_int_eq(pgbi_role_moving("25006", NULL), 0);
	ck_assert_int_eq(pgbi_role_moving("", "connection to server at"
	    " \"127.0.0.1\", port 5432 failed: FATAL:  the database system"
	    " is shutting down"), 1);
	ck_assert_int_eq(pgbi_role_moving(NULL, "FATAL:  the database system"
	    " is starting up"), 1);
	ck_assert_int_eq(pgbi_role_moving(NULL, "FATAL:  terminating"
	    " connection due to administrator command"), 1);
	ck_assert_int_eq(pgbi_role_moving(NULL, "server closed the"
	    " connection unexpectedly\n\tThis probably means"), 1);
	ck_assert_int_eq(pgbi_role_moving(NULL, "FATAL:  57P03: the"
	    " database system is in recovery mode"), 1);
	/* Not the role: configuration, refusal, no message. */
	ck_assert_int_eq(pgbi_role_moving(NULL, "FATAL:  password"
	    " authentication failed for user \"x\""), 0);
	ck_assert_int_eq(pgbi_role_moving(NULL, "FATAL:  database \"x\""
	    " does not exist"), 0);
	ck_assert_int_eq(pgbi_role_moving(NULL, "connection refused"), 0);
	ck_assert_int_eq(pgbi_role_moving(NULL, NULL), 0);
}
END_TEST

START_TEST(test_ending_a_context_rolls_back_fails_asks_or_commits)
{
	/* A failed request rolls back, whatever else holds. */
	ck_assert_int_eq(pgbi_end_step(500, 0, 0), PGBI_END_ROLLBACK);
	ck_assert_int_eq(pgbi_end_step(400, 1, 1), PGBI_END_ROLLBACK);
	/* A transaction that failed already is not offered to the callback. */
	ck_assert_int_eq(pgbi_end_step(200, 1, 1), PGBI_END_FAILED_TX);
	ck_assert_int_eq(pgbi_end_step(399, 1, 0), PGBI_END_FAILED_TX);
	ck_assert_int_eq(pgbi_end_step(200, 0, 1), PGBI_END_ASK);
	ck_assert_int_eq(pgbi_end_step(200, 0, 0), PGBI_END_COMMIT);
}
END_TEST

START_TEST(test_context_error_keeps_the_first)
{
	char	error[PGBI_CTX_ERROR_MAX] = "", first[PGBI_FIRST_MAX] = "";
	char	why[128];

	pgbi_ctx_why_failed(why, sizeof why, first, "returned", 7);
	ck_assert_str_eq(why, "the callback failed (returned 7) without a"
	    " failure in the library");
	pgbi_ctx_seterr(error, first, "%s: %d", "one", 1);
	pgbi_ctx_seterr(error, first, "%s: %d", "two", 2);
	ck_assert_str_eq(error, "two: 2");
	ck_assert_str_eq(first, "one: 1");
	pgbi_ctx_why_failed(why, sizeof why, first, "returned", 7);
	ck_assert_str_eq(why, "one: 1");
}
END_TEST

START_TEST(test_end_errors_name_db_and_host)
{
	struct pgbi_pconn	 c;
	struct pgbi_serr	 e;
	char			 first[PGBI_FIRST_MAX] = "";
	pgb_db			*m;

	memset(&c, 0, sizeof c);
	strcpy(c.host, "db1");
	c.port = 5433;
	memset(&e, 0, sizeof e);
	e.first = first;
	m = pgb_db_new("", "ut_main", "master", "/nonexistent");
	pgbi_serr_end_failed(&e, m, &c);
	ck_assert_int_eq(e.code, PGB_ERR_STATE);
	ck_assert_str_eq(e.text, "ut_main master on db1:5433: transaction"
	    " failed earlier; rolled back");
	ck_assert_str_eq(first, e.text);
	pgbi_serr_refused(&e, m);
	ck_assert_int_eq(e.code, PGB_ERR_STATE);
	ck_assert_str_eq(e.text, "ut_main master: before-commit callback"
	    " refused; rolled back");
	pgb_db_free(m);
}
END_TEST

static Suite *
client_session_suite(void)
{
	Suite	*s;
	TCase	*tc;

	s = suite_create("client_session");
	tc = tcase_create("core");
	tcase_add_test(tc, test_tags_of_dml_with_rows_prove_a_write);
	tcase_add_test(tc, test_insert_position_after_a_page_header_is_the_boundary);
	tcase_add_test(tc, test_commit_asks_for_its_lsn_only_when_usable);
	tcase_add_test(tc, test_commit_results_give_wrote_and_the_lsn);
	tcase_add_test(tc, test_ending_a_context_rolls_back_fails_asks_or_commits);
	tcase_add_test(tc, test_context_error_keeps_the_first);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, test_other_tags_prove_nothing);
	tcase_add_test(tc, test_shutdown_errors_mean_the_role_is_moving);
	tcase_add_test(tc, test_end_errors_name_db_and_host);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(client_session_suite()));
}
