/*
 * lib_util.c - see lib_util.h.
 */
#include <stdlib.h>
#include <string.h>

#include "lib_util.h"

void
itl_primary_sql(struct it_watched *w, const char *sql)
{
	char	*r;

	if ((r = it_sql(w->cluster, 0, sql)) == NULL)
		it_fail("%s: %s", sql, it_last_error());
	free(r);
}

void
itl_exec_ok(pgb_session *s, const char *sql)
{
	PGresult	*res;

	if ((res = pgb_exec(s, sql)) == NULL)
		it_fail("%s: %s", sql, pgb_session_error(s));
	PQclear(res);
}

char *
itl_session_value(pgb_session *s, const char *sql)
{
	PGresult	*res;
	char		*v;

	if ((res = pgb_exec(s, sql)) == NULL)
		it_fail("%s: %s", sql, pgb_session_error(s));
	if ((v = strdup(PQgetvalue(res, 0, 0))) == NULL)
		it_fail("out of memory");
	PQclear(res);
	return (v);
}
