/*
 * it_webapp_util.h - kept so that tests written against the former
 * static inline header still build: the helpers are compiled now, in
 * support/webapp_util.[ch] (the service) and support/http.[ch] (the HTTP
 * client).  New code includes "support/webapp_util.h".
 */
#ifndef PGB_IT_WEBAPP_UTIL_H
#define PGB_IT_WEBAPP_UTIL_H

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "support/itest.h"
#include "support/webapp_util.h"

#define WA_UNUSED	__attribute__((unused))

#endif /* PGB_IT_WEBAPP_UTIL_H */
