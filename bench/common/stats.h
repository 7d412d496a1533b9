/*
 * stats.h - what every benchmark needs: a monotonic clock and
 * percentiles of samples.
 */
#ifndef PGB_BENCH_STATS_H
#define PGB_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds and in microseconds. */
int64_t stats_now_ns(void);
int64_t stats_now_us(void);

/* Sorts n samples in place, ascending. */
void stats_sort(int64_t *v, size_t n);

/* The p-th percentile (0 .. 100) of n sorted samples; 0 when n is 0. */
int64_t stats_pct(const int64_t *v, size_t n, double p);

#endif /* PGB_BENCH_STATS_H */
