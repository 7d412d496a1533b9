/*
 * it_proxy_util.h - kept so that tests written against the former
 * static inline header still build: the helpers are compiled now, in
 * support/proxy_util.[ch].  New code includes "support/proxy_util.h".
 */
#ifndef PGB_IT_PROXY_UTIL_H
#define PGB_IT_PROXY_UTIL_H

#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <libpq-fe.h>

#include "it_daemon_util.h"
#include "support/proxy_util.h"

#endif /* PGB_IT_PROXY_UTIL_H */
