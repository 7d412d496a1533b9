/*
 * lsn.h - PostgreSQL WAL positions (LSNs): parsing, formatting, arithmetic,
 * for the daemon and the library alike.
 *
 * Pure functions, no I/O.  An LSN is the 64-bit byte position in the WAL
 * stream; PostgreSQL prints it as two hexadecimal halves, "16/B374D848".
 */
#ifndef PGB_COMMON_LSN_H
#define PGB_COMMON_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limits.h"

/*
 * Parses "X/Y" (each half 1 to 8 hex digits of either case, nothing
 * else: no sign, space or "0x") into *out.  Returns false, leaving *out
 * untouched, on anything else (NULL included).
 */
bool pgbc_lsn_parse(const char *s, uint64_t *out)
	__attribute__((warn_unused_result));

/* Writes the text form of lsn ("%X/%X", as PostgreSQL prints it) into buf
 * (at least PGBC_LSN_STRLEN bytes). */
void pgbc_lsn_format(uint64_t lsn, char buf[PGBC_LSN_STRLEN]);

/* Bytes from b forward to a; 0 when a is not ahead of b (never negative). */
uint64_t pgbc_lsn_diff(uint64_t a, uint64_t b);

#endif /* PGB_COMMON_LSN_H */
