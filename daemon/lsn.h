/*
 * lsn.h - PostgreSQL WAL positions (LSNs): parsing, formatting, arithmetic.
 *
 * Pure functions, no I/O.  An LSN is the 64-bit byte position in the WAL
 * stream; PostgreSQL prints it as two hexadecimal halves, "16/B374D848".
 */
#ifndef PGB_LSN_H
#define PGB_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text form: "FFFFFFFF/FFFFFFFF" plus the terminating NUL. */
#define LSN_STRLEN 18

/*
 * Parses "X/Y" (each half 1 to 8 hex digits, nothing else) into *out.
 * Returns false, leaving *out untouched, on anything else.
 */
bool lsn_parse(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* Writes the text form of lsn into buf (at least LSN_STRLEN bytes). */
void lsn_format(uint64_t lsn, char buf[LSN_STRLEN]);

/* Bytes from b forward to a; 0 when a is not ahead of b (never negative). */
uint64_t lsn_diff(uint64_t a, uint64_t b);

#endif /* PGB_LSN_H */
