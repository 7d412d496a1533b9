/*
 * webapp_util.h - running the example service (build/examples/webapp)
 * for its tests and its benchmark; its HTTP client is http.h's.
 */
#ifndef PGB_IT_WEBAPP_UTIL_SUPPORT_H
#define PGB_IT_WEBAPP_UTIL_SUPPORT_H

#include <sys/types.h>

#include <stdbool.h>

#include "http.h"

/* A running service.  Owns the process: wa_stop() it. */
struct wa_proc {
	pid_t	 pid;
	int	 port;
	char	 log[512];
};

/* The program: $BUILD/examples/webapp (BUILD defaults to "build"). */
void wa_bin(char *buf, size_t len);

/* True when GET /health on port answers 200. */
bool wa_healthy(int port);

/*
 * Starts $BUILD/examples/webapp (BUILD defaults to "build") on a free
 * port against the daemon at sock, with a pool of pool connections to
 * conninfo; its output goes to dir/webapp-PORT.log (dir:
 * $PGBEACON_WEBAPP_LOGDIR when set).  It dies with the caller.  Returns
 * once /health answers 200; fails the test (it_fail()) when it does not
 * within 20 s.
 */
void wa_start(struct wa_proc *p, const char *sock, const char *dir,
    const char *conninfo, int pool);
/* The same with "-w role_wait_ms" (how long a request waits for a host
 * of its role during a failover); < 0: the webapp's default. */
void wa_start_role_wait(struct wa_proc *p, const char *sock, const char *dir,
    const char *conninfo, int pool, int role_wait_ms);

/* SIGTERM, waits up to 20 s (then SIGKILL); returns the exit status
 * (128 + signal when killed), -1 when p is not running. */
int wa_stop(struct wa_proc *p);

#endif /* PGB_IT_WEBAPP_UTIL_SUPPORT_H */
