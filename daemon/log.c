/*
 * log.c - one line per event on stderr.
 *
 * Under journald (JOURNAL_STREAM names our stderr) a line is
 * "<6>info: message"; on a terminal or in a file it is
 * "2026-11-25 17:30:00.123 info: message".  Each line is built in a local
 * buffer and written with one fwrite, so threads never interleave inside
 * a line.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#define LOG_LINE_MAX	2048

/* Output format: unknown until the first line or log_init(). */
enum log_sink {
	LOG_SINK_UNKNOWN,	/* not decided yet */
	LOG_SINK_PLAIN,		/* timestamp and level word */
	LOG_SINK_JOURNAL,	/* sd-daemon "<N>" prefix and level word */
};

static atomic_int log_level = LOG_LEVEL_INFO;
static atomic_int log_sink = LOG_SINK_UNKNOWN;

static const char *const log_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};
static const char *const log_prefixes[] = {
	[LOG_LEVEL_ERROR] = "<3>",
	[LOG_LEVEL_WARN] = "<4>",
	[LOG_LEVEL_INFO] = "<6>",
	[LOG_LEVEL_DEBUG] = "<7>",
};

/* True when JOURNAL_STREAM is set and names the file stderr is. */
static bool
log_stderr_is_journal(void)
{
	const char		*env = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;

	if (env == NULL || *env == '\0')
		return false;
	if (sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

static enum log_sink
log_get_sink(void)
{
	int	sink = atomic_load_explicit(&log_sink, memory_order_relaxed);

	if (sink == LOG_SINK_UNKNOWN) {
		sink = log_stderr_is_journal() ? LOG_SINK_JOURNAL :
		    LOG_SINK_PLAIN;
		atomic_store_explicit(&log_sink, sink, memory_order_relaxed);
	}
	return (enum log_sink)sink;
}

static void
log_event_cb(int severity, const char *msg)
{
	enum log_level	level;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		level = LOG_LEVEL_DEBUG;
		break;
	case EVENT_LOG_MSG:
		level = LOG_LEVEL_INFO;
		break;
	case EVENT_LOG_WARN:
		level = LOG_LEVEL_WARN;
		break;
	default:
		level = LOG_LEVEL_ERROR;
		break;
	}
	log_msg(level, "libevent: %s", msg);
}

void
log_init(enum log_level level)
{
	log_set_level(level);
	atomic_store_explicit(&log_sink, log_stderr_is_journal() ?
	    LOG_SINK_JOURNAL : LOG_SINK_PLAIN, memory_order_relaxed);
	event_set_log_callback(log_event_cb);
}

void
log_set_level(enum log_level level)
{
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

bool
log_level_parse(const char *name, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof log_names / sizeof log_names[0]; i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		 line[LOG_LINE_MAX];
	size_t		 off, i, max;
	int		 n;
	struct timespec	 ts;
	struct tm	 tm;
	va_list		 ap;

	if ((int)level > atomic_load_explicit(&log_level,
	    memory_order_relaxed))
		return;
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;

	if (log_get_sink() == LOG_SINK_JOURNAL)
		off = (size_t)snprintf(line, sizeof line, "%s%s: ",
		    log_prefixes[level], log_names[level]);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		off = strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &tm);
		off += (size_t)snprintf(line + off, sizeof line - off,
		    ".%03ld %s: ", ts.tv_nsec / 1000000L, log_names[level]);
	}

	/* Leave room for the newline. */
	max = sizeof line - 1;
	va_start(ap, fmt);
	n = vsnprintf(line + off, max - off, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= max - off) {
		n = (int)(max - off - 1);
		memcpy(line + off + (size_t)n - 3, "...", 3);
	}
	for (i = off; i < off + (size_t)n; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	off += (size_t)n;
	line[off++] = '\n';
	fwrite(line, 1, off, stderr);
}
