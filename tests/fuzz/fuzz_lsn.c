/*
 * fuzz_lsn.c - LSN text parsing (common/lsn.c, used by the daemon and the
 * library alike), against a reference written apart with strtoull.
 *
 * Properties:
 *  - pgbc_lsn_parse accepts exactly the strings of two halves of 1 to 8
 *    hex digits around one '/', and reads the reference's value;
 *  - format(parse(x)) is x made canonical (upper case, no leading zeros,
 *    as PostgreSQL prints it);
 *  - parse(format(v)) == v for any 64-bit v (taken from the input).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/lsn.h"

#include "fuzz.h"

/* The reference: "X/Y", each half 1 to 8 hex digits, nothing else. */
static bool
reference(const char *s, uint64_t *out)
{
	const char	*slash = strchr(s, '/'), *half[2];
	size_t		 len[2], i, k;
	uint64_t	 v[2];
	char		 buf[9];

	if (slash == NULL || strchr(slash + 1, '/') != NULL)
		return (false);
	half[0] = s;
	len[0] = (size_t)(slash - s);
	half[1] = slash + 1;
	len[1] = strlen(slash + 1);
	for (k = 0; k < 2; k++) {
		if (len[k] == 0 || len[k] > 8)
			return (false);
		for (i = 0; i < len[k]; i++)
			if (!isxdigit((unsigned char)half[k][i]))
				return (false);
		memcpy(buf, half[k], len[k]);
		buf[len[k]] = '\0';
		v[k] = strtoull(buf, NULL, 16);
	}
	*out = v[0] << 32 | v[1];
	return (true);
}

/* x ("X/Y", already known valid) with each half canonical. */
static void
canonical(const char *x, char *out, size_t len)
{
	const char	*half = x;
	size_t		 n = 0;
	int		 i;

	for (i = 0; i < 2; i++) {
		while (half[0] == '0' && isxdigit((unsigned char)half[1]))
			half++;
		while (isxdigit((unsigned char)*half) && n + 2 < len)
			out[n++] = (char)toupper((unsigned char)*half++);
		if (i == 0) {
			out[n++] = '/';
			half++;		/* the '/' */
		}
	}
	out[n] = '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*s, text[PGBC_LSN_STRLEN], want[64];
	uint64_t	 a = 0, b = 0, v;
	bool		 ok, ok_ref;

	if (size > 64)
		return (0);
	s = fuzz_cstr(data, size);
	ok = pgbc_lsn_parse(s, &a);
	ok_ref = reference(s, &b);
	FUZZ_CHECK(ok == ok_ref, "'%s': parse %d, reference %d", s, ok,
	    ok_ref);
	if (ok) {
		FUZZ_CHECK(a == b, "'%s'", s);
		pgbc_lsn_format(a, text);
		canonical(s, want, sizeof want);
		FUZZ_CHECK(strcmp(text, want) == 0, "'%s' -> '%s', not '%s'", s,
		    text, want);
	}
	free(s);

	if (size >= sizeof v) {
		memcpy(&v, data, sizeof v);
		pgbc_lsn_format(v, text);
		FUZZ_CHECK(pgbc_lsn_parse(text, &a) && a == v, "%s", text);
		FUZZ_CHECK(reference(text, &b) && b == v, "%s", text);
	}
	return (0);
}
