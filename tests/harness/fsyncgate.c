/*
 * fsyncgate.c - an LD_PRELOAD fault for tests: a slow disk.
 *
 * While the file named by $PGB_FSYNC_GATE exists, every fsync() and
 * fdatasync() of the process waits (as a journal commit on a busy disk
 * can, for seconds); "<gate>.blocked" is created when the first one
 * starts waiting, so a test knows the fault has hit.  Without the
 * variable the calls pass straight through.  Loaded into pgbeacond only.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int	fsync(int fd);
int	fdatasync(int fd);

/* Waits while the gate exists. */
static void
gate_wait(void)
{
	const char *gate = getenv("PGB_FSYNC_GATE");
	struct timespec ms = { 0, 1000000 };
	char mark[4096];
	int fd;

	if (gate == NULL || access(gate, F_OK) != 0)
		return;
	snprintf(mark, sizeof mark, "%s.blocked", gate);
	if ((fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) != -1)
		close(fd);
	while (access(gate, F_OK) == 0)
		nanosleep(&ms, NULL);
}

int
fsync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");

	gate_wait();
	return real(fd);
}

int
fdatasync(int fd)
{
	int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

	gate_wait();
	return real(fd);
}
