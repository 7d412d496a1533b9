/*
 * unixsock.c - see unixsock.h.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unixsock.h"

/* True when something accepts connections on sun. */
static bool
unixsock_answers(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0;
	close(fd);
	return live;
}

int
unixsock_listen(const char *path, mode_t mode, bool check_live, char *err,
    size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_umask;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket",
			    path);
			return -1;
		}
		if (check_live && unixsock_answers(&sun)) {
			snprintf(err, errlen, "%s is in use by another process",
			    path);
			return -1;
		}
		log_info("removing stale socket %s", path);
		if (unlink(path) != 0) {
			snprintf(err, errlen, "cannot remove stale socket %s: %s",
			    path, strerror(errno));
			return -1;
		}
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* The daemon is single-threaded: the umask closes the window in
	 * which the socket would exist with looser permissions. */
	old_umask = umask((mode_t)(~mode & 0777));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old_umask);
		snprintf(err, errlen, "cannot bind %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	umask(old_umask);
	if (chmod(path, mode) != 0 || listen(fd, SOMAXCONN) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}
