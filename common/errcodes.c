/*
 * errcodes.c - ERR codes; see errcodes.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "errcodes.h"

static const char *const errcodes_names[] = {
	[PGBC_OK] = "OK",
	[PGBC_ERR_NOHOST] = "NOHOST",
	[PGBC_ERR_NOCLUSTER] = "NOCLUSTER",
	[PGBC_ERR_BADROLE] = "BADROLE",
	[PGBC_ERR_BADREQ] = "BADREQ",
	[PGBC_ERR_DENIED] = "DENIED",
};

#define ERRCODES_N	(sizeof errcodes_names / sizeof errcodes_names[0])

const char *
pgbc_err_name(enum pgbc_err err)
{
	if ((size_t)err >= ERRCODES_N)
		return ("BADREQ");
	return (errcodes_names[err]);
}

bool
pgbc_err_parse(const char *s, size_t len, enum pgbc_err *out)
{
	size_t	i;

	if (s == NULL)
		return (false);
	for (i = PGBC_ERR_NOHOST; i < ERRCODES_N; i++) {
		if (strlen(errcodes_names[i]) == len &&
		    memcmp(errcodes_names[i], s, len) == 0) {
			*out = (enum pgbc_err)i;
			return (true);
		}
	}
	return (false);
}
