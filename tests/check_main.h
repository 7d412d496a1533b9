/*
 * check_main.h - the one Check runner of every test binary, unit and
 * integration alike:
 *
 *	int
 *	main(void)
 *	{
 *		return (check_run_suite(foo_suite()));
 *	}
 *
 * Static inline so that the unit tests, which do not link the
 * integration support code, need nothing more than this header.
 */
#ifndef PGB_CHECK_MAIN_H
#define PGB_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* Runs every test of s (CK_NORMAL output, the summary line tests/run.sh
 * totals) and frees it; EXIT_SUCCESS when none failed, else EXIT_FAILURE. */
static inline int
check_run_suite(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

#endif /* PGB_CHECK_MAIN_H */
