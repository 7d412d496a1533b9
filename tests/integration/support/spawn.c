/*
 * spawn.c - starting and reaping the programs of the integration tests,
 * the soak and the benchmarks; see spawn.h.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "spawn.h"

extern char **environ;

pid_t
it_spawn(const struct it_spawn *s)
{
	sigset_t	 all;
	pid_t		 parent = getpid(), pid;
	int		 logfd = -1, devnull, in, out, err, sig, saved;

	/* everything the child needs, made before fork */
	if (s->log_path != NULL &&
	    (logfd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND |
	    O_CLOEXEC, 0644)) == -1)
		return -1;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	in = s->in;
	out = logfd != -1 ? logfd : s->out;
	err = logfd != -1 ? logfd : s->err;
	sigfillset(&all);

	if ((pid = fork()) == -1) {
		saved = errno;
		if (logfd != -1)
			close(logfd);
		if (devnull != -1)
			close(devnull);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		/* dies with the test, however the test dies */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (s->reset_signals) {
			for (sig = 1; sig < NSIG; sig++)
				if (sig != SIGKILL && sig != SIGSTOP)
					signal(sig, SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &all, NULL);
		}
		if (in != 0)
			dup2(in < 0 ? devnull : in, STDIN_FILENO);
		if (out != 0)
			dup2(out < 0 ? devnull : out, STDOUT_FILENO);
		if (err != 0)
			dup2(err < 0 ? devnull : err, STDERR_FILENO);
		if (s->envp != NULL)
			execvpe(s->argv[0], (char *const *)s->argv,
			    (char *const *)s->envp);
		else
			execvp(s->argv[0], (char *const *)s->argv);
		dprintf(STDERR_FILENO, "itest: exec %s: %s\n", s->argv[0],
		    strerror(errno));
		_exit(127);
	}
	if (logfd != -1)
		close(logfd);
	if (devnull != -1)
		close(devnull);
	return pid;
}

pid_t
it_spawn_argv(const char *const *argv, const char *log_path)
{
	struct it_spawn	 s;

	memset(&s, 0, sizeof s);
	s.argv = argv;
	s.in = -1;
	s.log_path = log_path;
	return it_spawn(&s);
}

int
it_exit_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

bool
it_wait_pid(pid_t pid, int timeout_ms, int *wstatus)
{
	int64_t	 deadline = it_now_ms() + timeout_ms;
	pid_t	 r;
	int	 st;

	for (;;) {
		r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid) {
			if (wstatus != NULL)
				*wstatus = st;
			return true;
		}
		if (r == -1 && errno != EINTR)
			return false;
		if (timeout_ms >= 0 && r == 0) {
			if (it_now_ms() >= deadline)
				return false;
			it_sleep_ms(5);
		}
	}
}

int
it_stop_pid(pid_t pid, int sig, int timeout_ms)
{
	int	 st;

	if (pid <= 0)
		return -1;
	if (sig != 0)
		kill(pid, sig);
	if (it_wait_pid(pid, timeout_ms, &st))
		return st;
	kill(pid, SIGKILL);
	if (it_wait_pid(pid, -1, &st))
		return st;
	return -1;
}

int
it_run_capture(const char *const *argv, char **out)
{
	struct it_spawn	 s;
	char		*buf, *nbuf;
	size_t		 len = 0, cap = 4096;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], st;

	if ((buf = malloc(cap)) == NULL)
		abort();
	buf[0] = '\0';
	*out = buf;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	memset(&s, 0, sizeof s);
	s.argv = argv;
	s.in = -1;
	s.out = p[1];
	s.err = p[1];
	pid = it_spawn(&s);
	close(p[1]);
	if (pid == -1) {
		close(p[0]);
		return -1;
	}
	for (;;) {
		if (cap - len < 1024) {
			cap *= 2;
			if ((nbuf = realloc(buf, cap)) == NULL)
				abort();
			*out = buf = nbuf;
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(p[0]);
	if (!it_wait_pid(pid, -1, &st))
		return -1;
	return it_exit_code(st);
}

/* --- popen, pclose, system ------------------------------------------- */

/* The children of it_popen(), by stream. */
struct it_popen_entry {
	FILE			*f;
	pid_t			 pid;
	struct it_popen_entry	*next;
};

static pthread_mutex_t		 it_popen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct it_popen_entry	*it_popen_list;	/* owned */

FILE *
it_popen(const char *cmd)
{
	const char		*argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct it_popen_entry	*e;
	struct it_spawn		 s;
	int			 p[2];

	if ((e = calloc(1, sizeof *e)) == NULL)
		return NULL;
	if (pipe2(p, O_CLOEXEC) == -1) {
		free(e);
		return NULL;
	}
	memset(&s, 0, sizeof s);
	s.argv = argv;
	s.out = p[1];
	e->pid = it_spawn(&s);
	close(p[1]);
	if (e->pid == -1 || (e->f = fdopen(p[0], "r")) == NULL) {
		close(p[0]);
		if (e->pid != -1)
			it_stop_pid(e->pid, SIGKILL, -1);
		free(e);
		return NULL;
	}
	pthread_mutex_lock(&it_popen_lock);
	e->next = it_popen_list;
	it_popen_list = e;
	pthread_mutex_unlock(&it_popen_lock);
	return e->f;
}

int
it_pclose(FILE *f)
{
	struct it_popen_entry	**pp, *e = NULL;
	int			  st;

	pthread_mutex_lock(&it_popen_lock);
	for (pp = &it_popen_list; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->f == f) {
			e = *pp;
			*pp = e->next;
			break;
		}
	pthread_mutex_unlock(&it_popen_lock);
	if (e == NULL)
		return -1;
	fclose(f);
	if (!it_wait_pid(e->pid, -1, &st))
		st = -1;
	free(e);
	return st;
}

int
it_system(const char *cmd)
{
	const char	*argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct it_spawn	 s;
	pid_t		 pid;
	int		 st;

	memset(&s, 0, sizeof s);
	s.argv = argv;
	if ((pid = it_spawn(&s)) == -1 || !it_wait_pid(pid, -1, &st))
		return -1;
	return st;
}
