/*
 * check_pqerror.c - unit tests of daemon/pqerror.c: telling an error a
 * server sent from one libpq made up, in any server language.
 */
#include <check.h>
#include <stddef.h>
#include <string.h>

#include "daemon/pqerror.h"
#include "../check_main.h"

static Suite	*pqerror_suite(void);

/* Messages as libpq 15 builds them after a failed connection. */
#define CONN	"connection to server at \"127.0.0.1\", port 5432 failed: "

START_TEST(test_server_errors_are_found_in_any_language)
{
	const char *t;

	t = pqerror_server_text(CONN "FATAL:  sorry, too many clients "
	    "already\n");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t, "sorry, too many clients already\n");
	/* Russian lc_messages on the server */
	t = pqerror_server_text(CONN "ВАЖНО:  слишком много подключений\n");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t, "слишком много подключений\n");
	/* German: "FATAL" too, but after libpq's own translated prefix */
	t = pqerror_server_text("Verbindung zum Server auf \"h\" "
	    "fehlgeschlagen: FATAL:  Passwort-Authentifizierung\n");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t, "Passwort-Authentifizierung\n");
	/* a whole message that is the server's */
	ck_assert_str_eq(pqerror_server_text("ERROR:  x"), "x");
	/* a severity at the start of a line of libpq's message */
	ck_assert_str_eq(pqerror_server_text("lost\nFATAL:  y"), "y");
}
END_TEST

/* Letters at the edges of each range, one-letter words, UTF-8 bytes. */
START_TEST(test_severity_letters)
{
	ck_assert_str_eq(pqerror_strip_severity("A:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("Z:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("a:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("z:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("\x80:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("\xff:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity("@:  x"), "@:  x");
	ck_assert_str_eq(pqerror_strip_severity("[:  x"), "[:  x");
	ck_assert_str_eq(pqerror_strip_severity("`:  x"), "`:  x");
	ck_assert_str_eq(pqerror_strip_severity("{:  x"), "{:  x");
	ck_assert_str_eq(pqerror_strip_severity("\x7f:  x"), "\x7f:  x");
	ck_assert_str_eq(pqerror_strip_severity("(FATAL:  x"), "(FATAL:  x");
	ck_assert_ptr_null(pqerror_server_text(CONN "(FATAL:  x"));
	ck_assert_ptr_null(pqerror_server_text(CONN "A1:  x"));
}
END_TEST

/* What libpq says when no server answered: never "<word>:  ". */
static const char *const unanswered[] = {
	CONN "Connection refused\n\tIs the server running on that host "
	    "and accepting TCP/IP connections?\n",
	CONN "server closed the connection unexpectedly\n\tThis probably "
	    "means the server terminated abnormally\n",
	CONN "could not fork new process for connection: Resource "
	    "temporarily unavailable\n",
	"connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: "
	    "No such file or directory\n",
	"timeout expired\n",
	"",
	/* a colon and two spaces with no word before them */
	CONN ":  nothing\n",
	/* a "word" too long to be a severity */
	CONN "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:  x\n",
	/* the word must start after a space, not inside another word */
	CONN "x\"FATAL\":  quoted\n",
};

START_TEST(test_libpq_own_messages_are_not_server_errors)
{
	ck_assert_msg(pqerror_server_text(unanswered[_i]) == NULL,
	    "taken for a server error: %s", unanswered[_i]);
}
END_TEST

START_TEST(test_strip_removes_only_a_leading_severity)
{
	ck_assert_str_eq(pqerror_strip_severity("FATAL:  the database system "
	    "is starting up"), "the database system is starting up");
	ck_assert_str_eq(pqerror_strip_severity("ВАЖНО:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity(CONN "FATAL:  x"),
	    CONN "FATAL:  x");
	ck_assert_str_eq(pqerror_strip_severity("probe timeout (1000 ms)"),
	    "probe timeout (1000 ms)");
	ck_assert_str_eq(pqerror_strip_severity(""), "");
	/* 32 bytes is the longest severity taken, 33 is not one */
	ck_assert_str_eq(pqerror_strip_severity(
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:  x"), "x");
	ck_assert_str_eq(pqerror_strip_severity(
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:  x"),
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:  x");
	/* one space after the colon is libpq's own "failed: " */
	ck_assert_str_eq(pqerror_strip_severity("failed: x"), "failed: x");
}
END_TEST

static Suite *
pqerror_suite(void)
{
	Suite	*s = suite_create("pqerror");
	TCase	*tc = tcase_create("pqerror");

	tcase_add_test(tc, test_server_errors_are_found_in_any_language);
	tcase_add_loop_test(tc, test_libpq_own_messages_are_not_server_errors,
	    0, (int)(sizeof unanswered / sizeof unanswered[0]));
	tcase_add_test(tc, test_strip_removes_only_a_leading_severity);
	tcase_add_test(tc, test_severity_letters);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (check_run_suite(pqerror_suite()));
}
