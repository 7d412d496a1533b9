/*
 * errcodes.h - the codes of "ERR <CODE> <text>" replies on the socket.
 * One table for the daemon (which writes them) and the library (which
 * maps them to pgb_errcode).
 */
#ifndef PGB_COMMON_ERRCODES_H
#define PGB_COMMON_ERRCODES_H

#include <stdbool.h>
#include <stddef.h>

/* Append-only: old libraries read a new code as an unknown one. */
enum pgbc_err {
	PGBC_OK,		/* no error ("OK") */
	PGBC_ERR_NOHOST,	/* no host holds the role now */
	PGBC_ERR_NOCLUSTER,	/* no cluster of that name */
	PGBC_ERR_BADROLE,	/* unknown role */
	PGBC_ERR_BADREQ,	/* anything else malformed */
	PGBC_ERR_DENIED,	/* the peer may not do that (FORGET) */
};

/* "OK", "NOHOST", "NOCLUSTER", "BADROLE", "BADREQ", "DENIED"; an unknown
 * value reads "BADREQ". */
const char *pgbc_err_name(enum pgbc_err err);

/* Reads the code name of len bytes at s (not "OK"); false when unknown. */
bool pgbc_err_parse(const char *s, size_t len, enum pgbc_err *out)
	__attribute__((warn_unused_result));

#endif /* PGB_COMMON_ERRCODES_H */
