/*
 * fuzz_lsn.c - LSN text parsing, in the daemon (lsn.c) and in the library
 * (proto.c), which must agree.
 *
 * Properties:
 *  - both parsers accept the same strings and read the same value;
 *  - format(parse(x)) is x made canonical (upper case, no leading zeros,
 *    as PostgreSQL prints it), the same from both formatters;
 *  - parse(format(v)) == v for any 64-bit v (taken from the input).
 */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "lsn.h"
#include "pgbeacon.h"
#include "src/proto-internal.h"

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
	char		*s, text[LSN_STRLEN], text2[PGB_LSN_MAX], want[64];
	uint64_t	 a = 0, b = 0, v;
	bool		 ok_d, ok_l;

	if (size > 64)
		return (0);
	s = fuzz_cstr(data, size);
	ok_d = lsn_parse(s, &a);
	ok_l = pgbi_lsn_parse(s, &b);
	FUZZ_CHECK(ok_d == ok_l, "'%s': daemon %d, library %d", s, ok_d, ok_l);
	if (ok_d) {
		FUZZ_CHECK(a == b, "'%s'", s);
		lsn_format(a, text);
		pgbi_lsn_format(a, text2);
		canonical(s, want, sizeof want);
		FUZZ_CHECK(strcmp(text, want) == 0, "'%s' -> '%s', not '%s'", s,
		    text, want);
		FUZZ_CHECK(strcmp(text, text2) == 0, "'%s' vs '%s'", text,
		    text2);
	}
	free(s);

	if (size >= sizeof v) {
		memcpy(&v, data, sizeof v);
		lsn_format(v, text);
		pgbi_lsn_format(v, text2);
		FUZZ_CHECK(strcmp(text, text2) == 0, "'%s' vs '%s'", text,
		    text2);
		FUZZ_CHECK(lsn_parse(text, &a) && a == v, "%s", text);
		FUZZ_CHECK(pgbi_lsn_parse(text, &b) && b == v, "%s", text);
	}
	return (0);
}
