/*
 * webapp_util.c - the example service under test; see webapp_util.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "spawn.h"
#include "webapp_util.h"

void
wa_bin(char *buf, size_t len)
{
	const char	*build = getenv("BUILD");

	snprintf(buf, len, "%s/examples/webapp",
	    build != NULL && *build != '\0' ? build : "build");
}

bool
wa_healthy(int port)
{
	struct wa_resp	r;

	wa_get(port, "/health", NULL, &r);
	return (r.status == 200);
}

void
wa_start(struct wa_proc *p, const char *sock, const char *dir,
    const char *conninfo, int pool)
{
	wa_start_role_wait(p, sock, dir, conninfo, pool, -1);
}

void
wa_start_role_wait(struct wa_proc *p, const char *sock, const char *dir,
    const char *conninfo, int pool, int role_wait_ms)
{
	const char	*argv[12];
	char		 bin[512], port[16], npool[16], wait[16];

	wa_bin(bin, sizeof bin);
	p->port = it_free_port();
	/* $PGBEACON_WEBAPP_LOGDIR keeps the log after the cluster is gone. */
	if (getenv("PGBEACON_WEBAPP_LOGDIR") != NULL)
		dir = getenv("PGBEACON_WEBAPP_LOGDIR");
	snprintf(p->log, sizeof p->log, "%s/webapp-%d.log", dir, p->port);
	snprintf(port, sizeof port, "%d", p->port);
	snprintf(npool, sizeof npool, "%d", pool);
	argv[0] = bin;
	argv[1] = "-p";
	argv[2] = port;
	argv[3] = "-s";
	argv[4] = sock;
	argv[5] = "-c";
	argv[6] = conninfo;
	argv[7] = "-n";
	argv[8] = npool;
	argv[9] = NULL;
	if (role_wait_ms >= 0) {
		snprintf(wait, sizeof wait, "%d", role_wait_ms);
		argv[9] = "-w";
		argv[10] = wait;
		argv[11] = NULL;
	}
	if ((p->pid = it_spawn_argv(argv, p->log)) == -1)
		it_fail("spawn %s: %s", bin, strerror(errno));
	if (!IT_POLL_UNTIL(wa_healthy(p->port), 20000))
		it_fail("webapp did not answer /health; see %s", p->log);
}

int
wa_stop(struct wa_proc *p)
{
	int	st;

	if (p->pid <= 0)
		return (-1);
	st = it_stop_pid(p->pid, SIGTERM, 20000);
	p->pid = 0;
	return (it_exit_code(st));
}
