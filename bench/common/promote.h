/*
 * promote.h - the failover step the benchmarks time: promote a replica
 * without waiting and note when it accepts writes.
 */
#ifndef PGB_BENCH_PROMOTE_H
#define PGB_BENCH_PROMOTE_H

#include <stdint.h>

#include <libpq-fe.h>

/* A connection as postgres to 127.0.0.1:port; exits the benchmark with
 * libpq's message when it fails.  PQfinish() it. */
PGconn *bench_connect(int port);

/*
 * "SELECT pg_promote(false)" on conn (a replica), then pg_is_in_recovery()
 * every millisecond until it is false; returns stats_now_us() of that
 * moment.  Exits the benchmark when it has not happened limit_us after
 * since_us (a stats_now_us() time).
 */
int64_t bench_promote(PGconn *conn, int64_t since_us, int64_t limit_us);

#endif /* PGB_BENCH_PROMOTE_H */
