/*
 * num.c - strict decimal numbers; see num.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"
#include "num.h"

/* Reads the digits at s (len > 0) as a magnitude no larger than max. */
static bool
num_magnitude(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t	v = 0, d;
	size_t		i;

	if (len == 0)
		return (false);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (false);
		d = (uint64_t)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return (false);
		v = v * 10 + d;
	}
	*out = v;
	return (true);
}

bool
pgbc_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	if (s == NULL)
		return (false);
	return (num_magnitude(s, len, max, out));
}

bool
pgbc_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
    int64_t *out)
{
	uint64_t	mag;

	if (s == NULL || len == 0)
		return (false);
	if (s[0] != '-') {
		if (max < 0 || !num_magnitude(s, len, (uint64_t)max, &mag) ||
		    (int64_t)mag < min)
			return (false);
		*out = (int64_t)mag;
		return (true);
	}
	/* Negative: the magnitude of min, computed without overflow. */
	if (min >= 0 || !num_magnitude(s + 1, len - 1,
	    (uint64_t)(-(min + 1)) + 1, &mag) || mag == 0)
		return (false);
	if (max < 0 && mag < (uint64_t)(-(max + 1)) + 1)
		return (false);
	*out = -(int64_t)(mag - 1) - 1;		/* INT64_MIN too */
	return (true);
}

bool
pgbc_parse_port(const char *s, size_t len, int *out)
{
	int64_t	v;

	if (!pgbc_parse_i64(s, len, PGBC_PORT_MIN, PGBC_PORT_MAX, &v))
		return (false);
	*out = (int)v;
	return (true);
}
