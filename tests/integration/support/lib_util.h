/*
 * lib_util.h - what the library's integration tests (it_lib_*.c) and the
 * example service's tests share around a watched cluster (itest.h's
 * struct it_watched): SQL on the primary outside the library, and
 * statements on a pgb_session that must succeed.  Each fails the test
 * (it_fail()) with the statement and the reason.
 */
#ifndef PGB_IT_LIB_UTIL_H
#define PGB_IT_LIB_UTIL_H

#include "pgbeacon.h"
#include "itest.h"

/* Runs sql on w's primary (node 0) as it_sql() does; fails the test
 * when it fails. */
void itl_primary_sql(struct it_watched *w, const char *sql);

/* Runs sql on s; fails the test when pgb_exec() returns NULL. */
void itl_exec_ok(pgb_session *s, const char *sql);

/* The first cell of sql's first row on s (caller frees); fails the
 * test when pgb_exec() returns NULL. */
char *itl_session_value(pgb_session *s, const char *sql);

#endif /* PGB_IT_LIB_UTIL_H */
