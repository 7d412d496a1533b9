/*
 * unixsock.h - a listening Unix stream socket with a given mode, for the
 * protocol socket and the HTTP listener's Unix form.
 */
#ifndef PGB_UNIXSOCK_H
#define PGB_UNIXSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Returns a non-blocking, close-on-exec socket listening on path, created
 * with mode (no window with looser permissions), or -1 with the reason in
 * err.  A socket file already at path is a leftover to replace, unless
 * check_live is set and something still accepts connections there.  Any
 * other kind of file at path is an error.  The caller unlinks path when
 * it closes the socket.
 */
int unixsock_listen(const char *path, mode_t mode, bool check_live,
	char *err, size_t errlen)
	__attribute__((warn_unused_result, nonnull(1, 4)));

#endif /* PGB_UNIXSOCK_H */
