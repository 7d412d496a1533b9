/*
 * util-internal.h - small helpers shared by the library's files.
 */
#ifndef PGB_UTIL_INTERNAL_H
#define PGB_UTIL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in milliseconds. */
int64_t	pgbi_now_ms(void);

/*
 * Copies s into dst (dstlen bytes), truncating, always NUL-terminated.
 * NULL s copies "".
 */
void	pgbi_strlcpy(char *dst, const char *s, size_t dstlen);

/* Removes trailing newlines and spaces from s in place (libpq messages). */
void	pgbi_chomp(char *s);

#endif /* PGB_UTIL_INTERNAL_H */
