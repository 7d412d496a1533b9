/*
 * stats.c - see stats.h.
 */
#include <stdlib.h>
#include <time.h>

#include "stats.h"

int64_t
stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
stats_now_us(void)
{
	return stats_now_ns() / 1000;
}

static int
stats_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void
stats_sort(int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), stats_cmp);
}

int64_t
stats_pct(const int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i];
}
