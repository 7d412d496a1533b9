/*
 * lsn.c - PostgreSQL WAL positions (LSNs): parsing, formatting, arithmetic.
 *
 * Pure functions, no I/O; see lsn.h.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lsn.h"

/* Most hex digits in one half of "X/Y": each half is 32 bits. */
#define LSN_HALF_DIGITS 8

static int	lsn_hex_value(char c);
static const char *lsn_parse_half(const char *s, uint32_t *out);

/* The value of hex digit c (either case), or -1. */
static int
lsn_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

/*
 * Reads 1 to 8 hex digits at s into *out.  Returns the first character
 * after them, or NULL when there are none or more than 8.  Signs, spaces
 * and "0x" are not digits, so they are refused here (strtoul would take
 * them).
 */
static const char *
lsn_parse_half(const char *s, uint32_t *out)
{
	uint32_t	v = 0;
	size_t		n = 0;
	int		d;

	while ((d = lsn_hex_value(s[n])) != -1) {
		if (n == LSN_HALF_DIGITS)
			return (NULL);
		v = (v << 4) | (uint32_t)d;
		n++;
	}
	if (n == 0)
		return (NULL);
	*out = v;
	return (s + n);
}

bool
pgbc_lsn_parse(const char *s, uint64_t *out)
{
	uint32_t	hi, lo;
	const char	*p;

	if (s == NULL)
		return (false);
	if ((p = lsn_parse_half(s, &hi)) == NULL || *p != '/')
		return (false);
	if ((p = lsn_parse_half(p + 1, &lo)) == NULL || *p != '\0')
		return (false);
	*out = ((uint64_t)hi << 32) | lo;
	return (true);
}

void
pgbc_lsn_format(uint64_t lsn, char buf[PGBC_LSN_STRLEN])
{
	/* As PostgreSQL's "%X/%X": upper case, no leading zeros. */
	snprintf(buf, PGBC_LSN_STRLEN, "%" PRIX32 "/%" PRIX32,
	    (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

uint64_t
pgbc_lsn_diff(uint64_t a, uint64_t b)
{
	return (a > b ? a - b : 0);
}
