/*
 * pqerror.c - reading libpq's error messages without depending on their
 * language (see pqerror.h).
 */
#include <stddef.h>
#include <string.h>

#include "pqerror.h"

/* The longest severity word accepted, in bytes (UTF-8 allowed). */
#define SEVERITY_MAX	32

/*
 * Returns the length of the severity word that starts at p and is
 * followed by ":  ", or 0 if there is none.  A severity is made of
 * letters: ASCII ones, or any byte of a UTF-8 sequence.
 */
static size_t
severity_len(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t n = 0;

	while (u[n] >= 0x80 || (u[n] >= 'A' && u[n] <= 'Z') ||
	    (u[n] >= 'a' && u[n] <= 'z'))
		n++;
	if (n == 0 || n > SEVERITY_MAX)
		return 0;
	return strncmp(p + n, ":  ", 3) == 0 ? n : 0;
}

const char *
pqerror_server_text(const char *msg)
{
	const char *p;
	size_t n;

	for (p = msg; *p != '\0'; p++) {
		/* a word starts the message or follows a space */
		if (p != msg && p[-1] != ' ' && p[-1] != '\n')
			continue;
		if ((n = severity_len(p)) != 0)
			return p + n + 3;
	}
	return NULL;
}

const char *
pqerror_strip_severity(const char *msg)
{
	size_t n = severity_len(msg);

	return n != 0 ? msg + n + 3 : msg;
}
