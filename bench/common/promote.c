/*
 * promote.c - see promote.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "promote.h"
#include "stats.h"

PGconn *
bench_connect(int port)
{
	PGconn	*conn;
	char	 ci[128];

	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres "
	    "dbname=postgres", port);
	conn = PQconnectdb(ci);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "%s", PQerrorMessage(conn));
		exit(1);
	}
	return conn;
}

int64_t
bench_promote(PGconn *conn, int64_t since_us, int64_t limit_us)
{
	PGresult	*res;
	int64_t		 promoted_us;

	PQclear(PQexec(conn, "SELECT pg_promote(false)"));
	for (;;) {
		res = PQexec(conn, "SELECT pg_is_in_recovery()");
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQgetvalue(res, 0, 0)[0] == 'f') {
			promoted_us = stats_now_us();
			PQclear(res);
			return promoted_us;
		}
		PQclear(res);
		if (stats_now_us() - since_us > limit_us) {
			fprintf(stderr, "promotion did not finish\n");
			exit(1);
		}
		usleep(1000);
	}
}
