/*
 * num.h - strict decimal numbers of the socket protocol and the HTTP
 * parameters.  Pure, no errno, no locale.
 *
 * The grammar is -?[0-9]+ and nothing else: no '+', no spaces, no "0x",
 * no "-0"; leading zeros are taken ("007" is 7), as they always were on
 * the socket.  The value must lie within the caller's bounds.
 */
#ifndef PGB_COMMON_NUM_H
#define PGB_COMMON_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses the len bytes at s (no NUL needed; an embedded NUL is refused)
 * into *out when they are a decimal from min to max.  A '-' is refused
 * when min >= 0.  Returns false, leaving *out untouched, otherwise.
 */
bool pgbc_parse_i64(const char *s, size_t len, int64_t min, int64_t max,
	int64_t *out) __attribute__((warn_unused_result));

/* The same for an unsigned decimal from 0 to max (no '-' at all). */
bool pgbc_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
	__attribute__((warn_unused_result));

/* A TCP port: a decimal from PGBC_PORT_MIN to PGBC_PORT_MAX. */
bool pgbc_parse_port(const char *s, size_t len, int *out)
	__attribute__((warn_unused_result));

#endif /* PGB_COMMON_NUM_H */
