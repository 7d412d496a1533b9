/*
 * statesync.c - fsync of the state file on a thread of its own (see
 * statesync.h).  The thread touches nothing of the daemon's but this
 * struct and the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "statesync.h"

/* Owned by the monitor; the fields under mtx are shared with the thread. */
struct state_syncer {
	char		*path;		/* owned; the state file */
	char		*dir;		/* owned; the directory holding it */
	pthread_t	 thread;
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	bool		 pending;	/* under mtx: an fsync is asked for */
	bool		 stop;		/* under mtx: finish and exit */
	bool		 failing;	/* thread only: the last fsync failed */
};

/* fsync of the file or directory at path; 0 or -1 with errno. */
static int
state_syncer_fsync(const char *path, int flags)
{
	int fd, rc, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | flags)) == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* One round: the file's data, then the rename in its directory. */
static void
state_syncer_run(struct state_syncer *s)
{
	const char *what = s->path;

	if (state_syncer_fsync(s->path, 0) == 0) {
		what = s->dir;
		if (state_syncer_fsync(s->dir, O_DIRECTORY) == 0) {
			if (s->failing)
				log_info("state file %s is durable again",
				    s->path);
			s->failing = false;
			return;
		}
	}
	if (!s->failing)
		log_error("state file %s: cannot fsync %s: %s (it is written, "
		    "but a power loss could lose the last change)", s->path,
		    what, strerror(errno));
	s->failing = true;
}

static void *
state_syncer_main(void *arg)
{
	struct state_syncer *s = arg;

	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (!s->pending && !s->stop)
			pthread_cond_wait(&s->cond, &s->mtx);
		if (s->pending) {
			s->pending = false;
			pthread_mutex_unlock(&s->mtx);
			state_syncer_run(s);
			pthread_mutex_lock(&s->mtx);
			continue;
		}
		break;		/* stop, nothing pending */
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

struct state_syncer *
state_syncer_new(const char *path)
{
	struct state_syncer *s;
	const char *slash = strrchr(path, '/');
	int rc;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto oom;
	if ((s->path = strdup(path)) == NULL)
		goto oom;
	if (slash == NULL)
		s->dir = strdup(".");
	else if (slash == path)
		s->dir = strdup("/");
	else
		s->dir = strndup(path, (size_t)(slash - path));
	if (s->dir == NULL)
		goto oom;
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cond, NULL);
	if ((rc = pthread_create(&s->thread, NULL, state_syncer_main, s)) != 0) {
		log_error("state file %s: cannot start the fsync thread: %s",
		    path, strerror(rc));
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mtx);
		goto fail;
	}
	return s;
oom:
	log_error("state file %s: out of memory", path);
fail:
	if (s != NULL) {
		free(s->dir);
		free(s->path);
		free(s);
	}
	return NULL;
}

void
state_syncer_kick(struct state_syncer *s)
{
	pthread_mutex_lock(&s->mtx);
	s->pending = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mtx);
}

void
state_syncer_free(struct state_syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mtx);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mtx);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mtx);
	free(s->dir);
	free(s->path);
	free(s);
}
