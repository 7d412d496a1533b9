/*
 * it_daemon_util.h - kept so that tests written against the former
 * static inline header still build: the helpers are compiled now, in
 * support/daemon_util.[ch].  New code includes "support/daemon_util.h".
 */
#ifndef PGB_IT_DAEMON_UTIL_H
#define PGB_IT_DAEMON_UTIL_H

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "support/daemon_util.h"

#endif /* PGB_IT_DAEMON_UTIL_H */
