/*
 * spawn.h - the one way the integration tests, the soak and the
 * benchmarks start a program: pgbeacond, the fault relay, the webapp,
 * pgcluster, psql, pgbench, wrk, a shell command.
 *
 * Every child gets PR_SET_PDEATHSIG(SIGKILL), checked against the race
 * with its parent's death: it dies with the test however the test dies
 * (a failed ck_assert _exit()s without running checked teardowns; a Check
 * timeout SIGKILLs the test).  The signal comes when the *thread* that
 * spawned the child exits: spawn from a thread that outlives the child.
 * The only process the support code starts otherwise is a cluster's
 * watchdog (itest.c), which must outlive the test to clean up after it.
 *
 * Errors: it_spawn() returns -1 with errno set; the callers decide
 * whether that fails the test.
 */
#ifndef PGB_IT_SPAWN_H
#define PGB_IT_SPAWN_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdio.h>

/* What it_spawn() runs and where its standard streams go. */
struct it_spawn {
	/* argv[0] is run: a path, or a name looked up in $PATH when it has
	 * no '/'.  NULL-terminated; borrowed. */
	const char *const	*argv;
	/* The environment, NULL-terminated; NULL: the caller's.  Borrowed. */
	const char *const	*envp;
	/* Descriptors for the child's stdin, stdout and stderr: 0 keeps
	 * the caller's, -1 is /dev/null, any other is dup2()ed (and stays
	 * open in the caller).  log_path, when set, wins over out and err:
	 * both are appended to that file. */
	int			 in;
	int			 out;
	int			 err;
	const char		*log_path;
	/* Default dispositions and an empty signal mask in the child (the
	 * daemon's SIGTERM/SIGHUP handling must not inherit an ignore). */
	bool			 reset_signals;
};

/* Forks and execs s; the child's pid, or -1 (errno set) when it could
 * not fork or open log_path.  An exec failure shows as exit status 127,
 * with the reason on the child's stderr. */
pid_t it_spawn(const struct it_spawn *s)
    __attribute__((warn_unused_result));

/* argv with stdin from /dev/null, stdout and stderr appended to log_path
 * (NULL: the caller's); -1 when it could not be started. */
pid_t it_spawn_argv(const char *const *argv, const char *log_path)
    __attribute__((warn_unused_result));

/* A wait status as the tests compare it: the exit code, or 128 + the
 * signal that ended it, or -1. */
int it_exit_code(int wstatus);

/* Waits up to timeout_ms (< 0: for ever) for pid; true when it exited,
 * *wstatus (may be NULL) then holds its raw wait status. */
bool it_wait_pid(pid_t pid, int timeout_ms, int *wstatus);

/* Sends sig (0: none) to pid, waits up to timeout_ms for it, then
 * SIGKILLs and reaps it.  Returns its raw wait status; -1 when pid was
 * not a child. */
int it_stop_pid(pid_t pid, int sig, int timeout_ms);

/*
 * Runs argv to its end, stdin from /dev/null, stdout and stderr both
 * captured into *out (the caller frees; "" at worst, never NULL).
 * Returns it_exit_code() of the run, -1 when it could not start.
 */
int it_run_capture(const char *const *argv, char **out);

/*
 * popen(3), system(3) and pclose(3) with the spawn rules above: the
 * command runs as "/bin/sh -c CMD".  The shell execs a simple command in
 * its place (dash and bash do), which then dies with the test; in a
 * compound command only the shell does.  it_popen() is "r" only:
 * the command's stdout (stderr is the caller's unless CMD redirects it).
 * it_pclose() and it_system() return the raw wait status, as pclose(3)
 * and system(3) do, or -1.
 */
FILE *it_popen(const char *cmd);
int it_pclose(FILE *f);
int it_system(const char *cmd);

#endif /* PGB_IT_SPAWN_H */
