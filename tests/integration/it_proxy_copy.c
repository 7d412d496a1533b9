/*
 * it_proxy_copy.c - COPY of 100 MB through a master listener, in and then
 * out, every row compared with its generator and the totals checked
 * directly on the server.  Its own binary: on two shared cores it takes
 * tens of seconds, more than the rest of it_proxy_data together.
 */
#include <check.h>

#include "support/proxy_util.h"
#include "../check_main.h"

static struct it_cluster	*cl;
static struct it_daemon		*dm;

/* Stops the daemon (a sanitizer report makes its exit status nonzero)
 * and destroys the cluster. */
static void
teardown(void)
{
	itp_teardown(&cl, &dm);
}

static void
start_daemon(const char *listen, int replica)
{
	dm = itp_start(cl, listen, NULL, 0, replica);
}

/* Row i of the COPY payload: "i\t" and 100 letters from a xorshift. */
static int
copy_row(char *buf, size_t len, uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
	int n = snprintf(buf, len, "%llu\t", (unsigned long long)i), k;

	for (k = 0; k < 100; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[n++] = (char)('a' + x % 26);
	}
	buf[n++] = '\n';
	return n;
}

#define COPY_BYTES	(100u * 1024 * 1024)

START_TEST(test_copy_100mb_both_ways_intact)
{
	char listen[256], row[256], chunk[65536], want[64], *buf, *v;
	PGconn *conn;
	PGresult *r;
	uint64_t rows = 0, bytes = 0, sum = 0, got_rows = 0;
	size_t used = 0;
	int pm, n;

	cl = it_cluster_create(0);
	pm = it_free_port();
	snprintf(listen, sizeof listen, "{ role = \"master\"; address = "
	    "\"127.0.0.1:%d\"; }", pm);
	start_daemon(listen, -1);
	conn = itp_connect("127.0.0.1", pm, NULL);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s",
	    PQerrorMessage(conn));
	ck_assert(itp_exec_ok(conn, "create table copy_t (i bigint, t text)"));

	/* In. */
	r = PQexec(conn, "copy copy_t from stdin");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COPY_IN);
	PQclear(r);
	while (bytes < COPY_BYTES) {
		n = copy_row(row, sizeof row, rows++);
		if (used + (size_t)n > sizeof chunk) {
			ck_assert_int_eq(PQputCopyData(conn, chunk, (int)used),
			    1);
			used = 0;
		}
		memcpy(chunk + used, row, (size_t)n);
		used += (size_t)n;
		bytes += (uint64_t)n;
		sum += (uint64_t)n - 1;
	}
	ck_assert_int_eq(PQputCopyData(conn, chunk, (int)used), 1);
	ck_assert_int_eq(PQputCopyEnd(conn, NULL), 1);
	r = PQgetResult(conn);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
	    PQresultErrorMessage(r));
	PQclear(r);
	while ((r = PQgetResult(conn)) != NULL)
		PQclear(r);
	/* What landed, seen directly: every row, every byte. */
	snprintf(want, sizeof want, "%llu|%llu", (unsigned long long)rows,
	    (unsigned long long)sum);
	ck_assert(it_sql_is(cl, 0, "select count(*), sum(length(i::text) + 1 "
	    "+ length(t)) from copy_t", want));

	/* Out, in order, compared with the generator byte for byte. */
	r = PQexec(conn, "copy (select i, t from copy_t order by i) to stdout");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COPY_OUT);
	PQclear(r);
	while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
		int m = copy_row(row, sizeof row, got_rows);

		ck_assert_msg(n == m && memcmp(buf, row, (size_t)m) == 0,
		    "row %llu differs", (unsigned long long)got_rows);
		got_rows++;
		PQfreemem(buf);
	}
	ck_assert_int_eq(n, -1);
	r = PQgetResult(conn);
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	ck_assert_uint_eq(got_rows, rows);
	v = itp_value(conn, "select 1");
	ck_assert_str_eq(v, "1");
	free(v);
	PQfinish(conn);
	snprintf(row, sizeof row, "127.0.0.1:%d", pm);
	ck_assert_int_gt(itp_figure(it_daemon_socket(dm), row,
	    "bytes_from_clients"), (int64_t)COPY_BYTES);
	ck_assert_int_gt(itp_figure(it_daemon_socket(dm), row,
	    "bytes_to_clients"), (int64_t)COPY_BYTES);
}
END_TEST

static Suite *
proxy_copy_suite(void)
{
	Suite	*s = suite_create("proxy_copy");
	TCase	*tc;

	tc = tcase_create("core");
	tcase_set_timeout(tc, 900);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_copy_100mb_both_ways_intact);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return (check_run_suite(proxy_copy_suite()));
}
