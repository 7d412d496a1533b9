/*
 * util.c - small helpers; see util-internal.h.
 */
#include <string.h>
#include <time.h>

#include "util-internal.h"

int64_t
pgbi_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

void
pgbi_strlcpy(char *dst, const char *s, size_t dstlen)
{
	size_t	n;

	if (dstlen == 0)
		return;
	if (s == NULL)
		s = "";
	n = strlen(s);
	if (n >= dstlen)
		n = dstlen - 1;
	memmove(dst, s, n);
	dst[n] = '\0';
}

void
pgbi_chomp(char *s)
{
	size_t	n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
	    s[n - 1] == ' '))
		s[--n] = '\0';
}
